"""The GRPO learner: log-probs of video completions, DeepSpeed ZeRO-3 (or plain torch) training,
experience distribution over ranks, weight export, checkpoints, and the Ray Train wiring.

Import heavy pieces from their modules (trainer.learner.learner, trainer.learner.ray_train); this
package root only re-exports the light ones.
"""

from trainer.learner.batch import TrainItem
from trainer.learner.config import LearnerConfig
from trainer.learner.distribute import scatter_items

__all__ = ["LearnerConfig", "TrainItem", "scatter_items"]
