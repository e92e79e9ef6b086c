"""The model under training, behind one small interface with two implementations:

- DeepSpeedEngine: ZeRO-3 (parameters, gradients, optimizer state sharded over ranks), built the
  way transformers supports it: an `HfDeepSpeedConfig` alive before `from_pretrained`, so the
  model is created inside `deepspeed.zero.Init` and loaded shard by shard; a plain
  `torch.optim.AdamW` handed to `deepspeed.initialize` (no fused-op compile); gradient accumulation
  owned by the caller (`managed_gradient_accumulation: false`, one `step()` per learner step).
- TorchEngine: a full replica per rank, gradients all-reduced by hand (the zero_stage=0 twin).

Both take losses already normalised by the step's global token/sequence counts: each rank's
gradients are its share of the global loss, so the reduction over ranks must be a SUM. DeepSpeed
averages over ranks, so DeepSpeedEngine multiplies the loss by the world size first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from rollout.models.attention import choose_attention, flash_attn_importable
from trainer.learner.batch import MicroBatch
from trainer.learner.config import LearnerConfig
from trainer.learner.distribute import ensure_process_group, rank_and_world
from trainer.learner.logprobs import CompletionScorer

CHECKPOINT_TAG = "learner"
WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".index.json")


@dataclass(frozen=True)
class Runtime:
    """What LearnerConfig's "auto" values resolved to on this worker."""

    device: torch.device
    bf16: bool
    attn_implementation: str

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.bf16 else torch.float32

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"


def _flag(value: str, auto: bool) -> bool:
    value = str(value).lower()
    return auto if value == "auto" else value == "true"


def resolve_runtime(cfg: LearnerConfig) -> Runtime:
    use_gpu = _flag(cfg.use_gpu, torch.cuda.is_available())
    if use_gpu:
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # read when deepspeed picks its accelerator
    bf16 = _flag(cfg.bf16, use_gpu)
    # both engines compute in bf16 when bf16 is on: ZeRO-3 holds bf16 weights, the plain engine
    # keeps fp32 weights under bf16 autocast; with bf16 off everything is fp32
    attn = choose_attention(cfg.attn_implementation, cuda=use_gpu, half_precision=bf16,
                            flash_available=flash_attn_importable(), key="learner.attn_implementation",
                            precision_key="learner.bf16")
    return Runtime(device=device, bf16=bf16, attn_implementation=attn)


def optimizer_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on matrices, none on biases and norm weights (1-D)."""
    decay, plain = [], []
    for param in module.parameters():
        if not param.requires_grad:
            continue
        shape = getattr(param, "ds_shape", param.shape)  # ZeRO-3 params are empty until gathered
        (decay if len(shape) >= 2 else plain).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def make_optimizer(module: nn.Module, cfg: LearnerConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(optimizer_groups(module, cfg.weight_decay), lr=cfg.lr,
                             betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps)


def enable_checkpointing(policy: nn.Module) -> None:
    # non-reentrant checkpointing: works with ZeRO-3's parameter hooks and frozen inputs. transformers
    # 5.20 (constraints.txt, vLLM's range) names it gradient_checkpointing_enable; 5.23 renamed it.
    policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def load_policy(model_dir: str | Path, runtime: Runtime, dtype: torch.dtype) -> nn.Module:
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=dtype,
                                                        attn_implementation=runtime.attn_implementation)
    model.config.use_cache = False
    return model


def deepspeed_config(cfg: LearnerConfig, runtime: Runtime, hidden_size: int, train: bool) -> dict:
    """ZeRO-3 config; bucket sizes follow transformers' "auto" rules (hidden^2, 10 x hidden)."""
    zero = {
        "stage": 3,
        "overlap_comm": runtime.device.type == "cuda",
        "contiguous_gradients": True,
        "reduce_bucket_size": hidden_size * hidden_size,
        "stage3_prefetch_bucket_size": int(0.9 * hidden_size * hidden_size),
        # parameters smaller than this stay whole on every rank (norm weights, biases)
        "stage3_param_persistence_threshold": 10 * hidden_size,
        "stage3_gather_16bit_weights_on_model_save": False,
    }
    config = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": 1,
        "zero_optimization": zero,
        "bf16": {"enabled": runtime.bf16},
        "fp16": {"enabled": False},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if train:
        config.update({
            # the learner owns accumulation: backward() only accumulates, each step() updates
            "managed_gradient_accumulation": False,
            "gradient_clipping": cfg.max_grad_norm,
            # torch.optim.AdamW is "untested" with ZeRO in DeepSpeed's book; it works and needs no compile
            "zero_allow_untested_optimizer": True,
        })
    return config


class TorchEngine:
    """A full replica per rank; plain torch AdamW; gradients summed over ranks by hand."""

    def __init__(self, model_dir: str | Path, cfg: LearnerConfig, runtime: Runtime, temperature: float,
                 train: bool = True):
        self.cfg, self.runtime = cfg, runtime
        policy = load_policy(model_dir, runtime, torch.float32).to(runtime.device)
        if train and cfg.gradient_checkpointing:
            enable_checkpointing(policy)
        policy.train(train)
        policy.requires_grad_(train)
        self.module = CompletionScorer(policy, temperature)
        self.optimizer = make_optimizer(self.module, cfg) if train else None

    def forward(self, batch: MicroBatch, with_entropy: bool = False):
        autocast = torch.autocast(self.runtime.device.type, dtype=torch.bfloat16, enabled=self.runtime.bf16)
        with autocast:
            return self.module(batch, with_entropy)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> float:
        params = [p for p in self.module.parameters() if p.requires_grad]
        if rank_and_world()[1] > 1:
            import torch.distributed as dist

            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        limit = self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, limit)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def gathered(self, params: Sequence[nn.Parameter]):
        return contextlib.nullcontext()

    def save(self, directory: Path, client_state: dict) -> None:
        rank, _ = rank_and_world()
        if rank == 0:
            torch.save({"model": self.module.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "client_state": client_state}, directory / "torch_learner.pt")

    def load(self, directory: Path) -> dict:
        state = torch.load(directory / "torch_learner.pt", map_location=self.runtime.device, weights_only=False)
        self.module.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        return state["client_state"]


class DeepSpeedEngine:
    """ZeRO-3 via deepspeed.initialize over the CompletionScorer wrapper."""

    def __init__(self, model_dir: str | Path, cfg: LearnerConfig, runtime: Runtime, temperature: float,
                 train: bool = True):
        import transformers  # noqa: F401  (before deepspeed.zero.Init, or its patched __init__s clash)
        from transformers import AutoConfig
        from transformers.integrations import HfDeepSpeedConfig

        import deepspeed

        self.cfg, self.runtime = cfg, runtime
        if runtime.device.type == "cpu":
            _skip_shm_comm_kernel()
        # DeepSpeed 0.19 calls torch's renamed collectives by their old names on every bucket
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.distributed\..* is deprecated")
        ensure_process_group(runtime.backend)
        hidden = AutoConfig.from_pretrained(str(model_dir)).get_text_config().hidden_size
        config = deepspeed_config(cfg, runtime, hidden, train)
        # must stay alive while models are built: from_pretrained then runs under zero.Init
        self._hf_ds_config = HfDeepSpeedConfig(config)
        policy = load_policy(model_dir, runtime, runtime.dtype)
        if train and cfg.gradient_checkpointing:
            enable_checkpointing(policy)
        policy.train(train)
        policy.requires_grad_(train)
        scorer = CompletionScorer(policy, temperature)
        optimizer = make_optimizer(scorer, cfg) if train else None
        self.engine, self.optimizer, _, _ = deepspeed.initialize(model=scorer, optimizer=optimizer, config=config)
        self.module: CompletionScorer = self.engine.module
        self._world = rank_and_world()[1]

    def forward(self, batch: MicroBatch, with_entropy: bool = False):
        return self.engine(batch, with_entropy)

    def backward(self, loss: torch.Tensor) -> None:
        # ZeRO-3 AVERAGES gradients over ranks; our loss shares must be SUMMED: undo the 1/world.
        self.engine.backward(loss * self._world, scale_wrt_gas=False)

    def step(self) -> float:
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else 0.0

    def gathered(self, params: Sequence[nn.Parameter]):
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(params), modifier_rank=None)

    def save(self, directory: Path, client_state: dict) -> None:
        self.engine.save_checkpoint(str(directory), tag=CHECKPOINT_TAG, client_state={"learner": client_state})

    def load(self, directory: Path) -> dict:
        _, client_state = self.engine.load_checkpoint(str(directory), tag=CHECKPOINT_TAG)
        if client_state is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint with tag {CHECKPOINT_TAG!r} under {directory}")
        return client_state.get("learner", {})


def _skip_shm_comm_kernel() -> None:
    """On CPU, DeepSpeed's comm layer JIT-compiles a shared-memory all-reduce kernel on first use
    (30-70 s, needs a C++ toolchain) after probing every op with compiler runs. ZeRO-3 needs neither:
    gloo does the collectives. `deepspeed.ops.__compatible_ops__` is read only by that kernel's
    loader, so marking the kernel incompatible before deepspeed.comm starts skips probe and build."""
    import deepspeed.ops

    deepspeed.ops.__dict__.setdefault("__compatible_ops__", {})["deepspeed_shm_comm"] = False


def build_engine(model_dir: str | Path, cfg: LearnerConfig, runtime: Runtime, temperature: float,
                 train: bool = True) -> TorchEngine | DeepSpeedEngine:
    cls = DeepSpeedEngine if cfg.zero_stage == 3 else TorchEngine
    return cls(model_dir, cfg, runtime, temperature, train)


def hf_state_names(policy: nn.Module) -> Iterator[tuple[str, Any]]:
    """(name, tensor) of the HF model's parameters (a tied weight once, under its first name, as
    `named_parameters()` lists it: loaders re-tie) then its persistent buffers."""
    yield from policy.named_parameters()
    for module_name, module in policy.named_modules():
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is not None and name not in module._non_persistent_buffers_set:
                yield (f"{module_name}.{name}" if module_name else name), buffer


def copy_processor_files(model_dir: str | Path, out_dir: Path) -> None:
    """Tokenizer / processor / chat template files of the source checkpoint (no weights, no config)."""
    for path in Path(model_dir).iterdir():
        if path.is_file() and not path.name.endswith(WEIGHT_FILES) and path.name not in (
                "config.json", "generation_config.json"):
            shutil.copy2(path, out_dir / path.name)
