"""Moving the learner's weights to the rollout workers.

Two transports behind `RolloutPool.update_weights`:

- Object store (CPU default): the state is packed once into numpy arrays (bfloat16 travels as its
  raw 16-bit pattern) and `ray.put` once; every worker maps the same shared-memory object
  (zero-copy on a node) and copies it into its engine. One serialisation, N loads.
- Collective (GPU default): a torch process group created for this one update between the caller
  (rank 0: learner rank 0, holding the gathered tensors) and the workers (ranks 1..N), each tensor
  broadcast from rank 0. NCCL when CUDA is available, gloo otherwise. The group is built from a
  standalone TCPStore and `ProcessGroupNCCL`/`ProcessGroupGloo`, so it never touches the learner's
  own default process group (DeepSpeed's). Tested on CPU with gloo; NCCL is not verified here.
"""

from __future__ import annotations

import datetime
import socket
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

_RAW_DTYPES = {"bfloat16": "uint16"}  # numpy has no bfloat16: ship the bits


def pack_state(named_tensors: Iterable[tuple[str, Any]]) -> dict[str, tuple[str, Any]]:
    """name -> (torch dtype name, numpy array) on CPU, ready for ray.put."""
    import torch

    packed = {}
    for name, tensor in named_tensors:
        tensor = tensor.detach()
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype in _RAW_DTYPES:
            tensor = tensor.view(getattr(torch, _RAW_DTYPES[dtype]))
        packed[name] = (dtype, tensor.to("cpu").contiguous().numpy())
    return packed


def unpack_state(packed: dict[str, tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Inverse of pack_state, without copying the arrays (they may be read-only shared memory)."""
    import warnings

    import torch

    for name, (dtype, array) in packed.items():
        with warnings.catch_warnings():  # read-only object-store buffers: we only read them
            warnings.simplefilter("ignore", UserWarning)
            tensor = torch.from_numpy(array)
        if dtype in _RAW_DTYPES:
            tensor = tensor.view(getattr(torch, dtype))
        yield name, tensor


@dataclass(frozen=True)
class CollectiveSource:
    """Where a worker joins one broadcast of weights, and what it will receive."""

    host: str
    port: int
    world_size: int
    rank: int
    backend: str
    """'nccl' or 'gloo'."""
    metadata: tuple[tuple[str, str, tuple[int, ...]], ...]
    """(name, torch dtype name, shape) of each tensor, in broadcast order."""
    timeout_s: float = 600.0


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def node_ip() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except Exception:  # not inside Ray: a local run
        pass
    return "127.0.0.1"


def _process_group(host: str, port: int, world_size: int, rank: int, backend: str, timeout_s: float):
    import torch.distributed as dist

    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(host, port, world_size, is_master=rank == 0, timeout=timeout, wait_for_workers=False)
    if backend == "nccl":
        options = dist.ProcessGroupNCCL.Options()
        options._timeout = timeout
        return store, dist.ProcessGroupNCCL(store, rank, world_size, options)
    return store, dist.ProcessGroupGloo(store, rank, world_size, timeout)


def _broadcast(group, tensor) -> None:
    import torch.distributed as dist

    opts = dist.BroadcastOptions()
    opts.rootRank = 0
    group.broadcast([tensor], opts).wait()


class CollectiveSender:
    """Rank 0 of one weight broadcast. `sources()` describes the group to the workers (send them
    first: group creation blocks until every rank has joined), then `send()` broadcasts."""

    def __init__(self, named_tensors: list[tuple[str, Any]], num_workers: int, *, backend: str,
                 host: str | None = None, timeout_s: float = 600.0):
        self.tensors = named_tensors
        self.backend = backend
        self.host = host or node_ip()
        self.port = free_port(self.host)
        self.world_size = num_workers + 1
        self.timeout_s = timeout_s
        self.metadata = tuple((name, str(t.dtype).removeprefix("torch."), tuple(t.shape)) for name, t in named_tensors)

    def sources(self) -> list[CollectiveSource]:
        return [CollectiveSource(self.host, self.port, self.world_size, rank, self.backend, self.metadata,
                                 self.timeout_s) for rank in range(1, self.world_size)]

    def send(self) -> None:
        import torch

        device = "cuda" if self.backend == "nccl" else "cpu"
        store, group = _process_group(self.host, self.port, self.world_size, 0, self.backend, self.timeout_s)
        try:
            for _, tensor in self.tensors:
                tensor = tensor.detach()
                if tensor.device.type != device or not tensor.is_contiguous():
                    tensor = tensor.to(device).contiguous()
                _broadcast(group, tensor)
            if device == "cuda":
                torch.cuda.synchronize()
        finally:
            del group, store


def receive(source: CollectiveSource, device: str = "cpu") -> Iterator[tuple[str, Any]]:
    """Join the broadcast described by `source` (a worker rank) and yield (name, tensor) as each
    arrives, so an engine can load it before the next one comes (no second full copy)."""
    import torch

    store, group = _process_group(source.host, source.port, source.world_size, source.rank, source.backend,
                                  source.timeout_s)
    try:
        for name, dtype, shape in source.metadata:
            tensor = torch.empty(shape, dtype=getattr(torch, dtype), device=device)
            _broadcast(group, tensor)
            yield name, tensor
    finally:
        del group, store
