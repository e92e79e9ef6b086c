"""Process-group helpers for the learner: rank/world, small all-reduces, experience scatter.

All of them work with or without an initialised torch.distributed group (world size 1), so the
same learner code runs in a single test process, under torchrun, or inside Ray Train workers.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist

from trainer.learner.batch import TrainItem


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def ensure_process_group(backend: str) -> None:
    """A one-process group on 127.0.0.1 when none exists (DeepSpeed needs one even on one rank)."""
    if dist.is_initialized():
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    os.environ.setdefault("LOCAL_RANK", "0")


def all_reduce_sum(values: Sequence[float], device: torch.device | str = "cpu") -> list[float]:
    """Element-wise sum over ranks (float64)."""
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    if rank_and_world()[1] > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_reduce_max(value: int, device: torch.device | str = "cpu") -> int:
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    if rank_and_world()[1] > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (small Python objects only)."""
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def split_contiguous(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """`parts` contiguous runs of `items` in order, sizes differing by at most one (the first ones
    longer); runs are empty when there are fewer items than parts."""
    base, extra = divmod(len(items), parts)
    out, start = [], 0
    for r in range(parts):
        size = base + (1 if r < extra else 0)
        out.append(list(items[start:start + size]))
        start += size
    return out


def split_balanced(items: Sequence[TrainItem], world_size: int) -> list[list[TrainItem]]:
    """Contiguous shares of equal length: sizes differ by at most one before padding, then every
    shorter share gets padding copies of its own first item (or of item 0 when it is empty).

    Contiguous (not round-robin) so the completions of a group mostly stay on one rank and share one
    vision-tower pass inside a micro-batch. Equal lengths keep ZeRO-3 ranks in lockstep (every rank
    runs the same number of forwards); padding copies weigh nothing in the loss.
    """
    if not items:
        return [[] for _ in range(world_size)]
    shares = split_contiguous(items, world_size)
    width = max(len(s) for s in shares)
    for share in shares:
        template = share[0] if share else items[0]
        share.extend(dataclasses.replace(template, is_padding=True) for _ in range(width - len(share)))
    return shares


def scatter_items(items: Optional[Sequence[TrainItem]], rank: int, world_size: int, src: int = 0) -> list[TrainItem]:
    """This rank's share of the step's experience, which rank `src` holds in full (others pass None).

    Every rank receives the same number of items (split_balanced). Uses torch.distributed's object
    scatter (pickled, over gloo on CPU or NCCL on GPU); without a process group it returns the items.
    """
    if world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return list(items or [])
    shares = split_balanced(list(items or []), world_size) if rank == src else None
    received: list[Any] = [None]
    dist.scatter_object_list(received, shares, src=src)
    return received[0]
