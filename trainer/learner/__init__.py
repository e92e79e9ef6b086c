"""The GRPO learner: log-probs of video completions, DeepSpeed ZeRO-3 (or plain torch) training,
experience distribution over ranks, weight export, checkpoints, and the Ray Train wiring.

Import heavy pieces from their modules (trainer.learner.learner, trainer.learner.ray_train); this
package root re-exports the light ones, loaded on first use (PEP 562) so that reading a run config
(trainer.learner.config) does not import torch.
"""

from infra.lazy import lazy_exports

_HOMES = {"LearnerConfig": "config", "TrainItem": "batch", "scatter_items": "distribute"}
__all__ = sorted(_HOMES)

__getattr__ = lazy_exports(__name__, _HOMES)
