"""The attention kernel rule shared by the rollout engines and the learner: flash-attention 2 only
where it can run (CUDA, flash-attn, half-precision compute), a clear error for an explicit choice
that cannot."""

from __future__ import annotations

import pytest

from infra.errors import ConfigError
from rollout.models.attention import choose_attention


def choose(requested, cuda=True, half=True, flash=True):
    return choose_attention(requested, cuda=cuda, half_precision=half, flash_available=flash,
                            key="learner.attn_implementation", precision_key="learner.bf16")


@pytest.mark.parametrize("cuda, half, flash, expected", [
    (True, True, True, "flash_attention_2"),
    (True, False, True, "sdpa"),   # fp32 compute: flash-attention would refuse it
    (True, True, False, "sdpa"),   # flash-attn not installed
    (False, True, True, "sdpa"),   # no CUDA
    (False, False, False, "sdpa"),
])
def test_auto_picks_flash_attention_only_where_it_runs(cuda, half, flash, expected):
    assert choose("auto", cuda, half, flash) == expected


@pytest.mark.parametrize("requested", ["sdpa", "eager"])
def test_explicit_kernels_other_than_flash_are_kept_everywhere(requested):
    assert choose(requested, cuda=False, half=False, flash=False) == requested


def test_explicit_flash_attention_in_fp32_names_the_precision_setting():
    with pytest.raises(ConfigError, match=r"learner.attn_implementation=flash_attention_2 runs in bf16/fp16 only "
                                          r"but learner.bf16 .* or learner.attn_implementation=sdpa"):
        choose("flash_attention_2", half=False)


@pytest.mark.parametrize("cuda, flash", [(False, True), (True, False)])
def test_explicit_flash_attention_without_cuda_or_the_package_is_a_config_error(cuda, flash):
    with pytest.raises(ConfigError, match="needs a CUDA device and the flash-attn package"):
        choose("flash_attention_2", cuda=cuda, flash=flash)


def test_the_learner_on_cpu_resolves_auto_to_sdpa_and_refuses_explicit_flash_attention():
    from trainer.learner.config import LearnerConfig
    from trainer.learner.engine import resolve_runtime

    assert resolve_runtime(LearnerConfig(use_gpu="false")).attn_implementation == "sdpa"
    with pytest.raises(ConfigError, match="learner.attn_implementation=flash_attention_2"):
        resolve_runtime(LearnerConfig(use_gpu="false", attn_implementation="flash_attention_2"))
