"""Zero-shot STVG inference strategies (Yang et al., NeurIPS 2025): query decomposition (the DSTH
strategy's first step, `decompose`) and temporal-augmented assembling (TAS, `assemble`).

Left out: the paper's logit-guided re-attention (LRA), which learns latent spatial/temporal prompts
by test-time optimisation of the model's attention over the sub-queries' grounding tokens. It needs
per-layer access to the model internals during generation; the sub-queries here can be used as
plain prompts instead (docs/seed-methods.md).
"""

from rollout.zero_shot.assemble import (AUGMENTATIONS, TemporalView, assemble_boxes, assemble_spans,
                                        augment_timestamps, sample_views, shift_of, unreverse_boxes,
                                        unreverse_span, vote_ids)
from rollout.zero_shot.decompose import (DECOMPOSE_PROMPT, GERUNDS, PAST_VERBS, PRESENT_VERBS, SubQueries,
                                         decompose_by_rules, decompose_query, normalise_query, parse_decomposition)

__all__ = ["AUGMENTATIONS", "DECOMPOSE_PROMPT", "GERUNDS", "PAST_VERBS", "PRESENT_VERBS", "SubQueries", "TemporalView",
           "assemble_boxes", "assemble_spans", "augment_timestamps", "decompose_by_rules", "decompose_query",
           "normalise_query", "parse_decomposition", "sample_views", "shift_of", "unreverse_boxes", "unreverse_span",
           "vote_ids"]
