"""Moving the learner's weights to the rollout workers, one bounded bucket at a time.

The learner gathers its ZeRO-3 shards one bucket at a time (at most `rollout.weight_bucket_mb`,
a tensor larger than that alone) and hands each bucket to a transport before gathering the next,
so the sender holds about one bucket beyond its shards, never the whole model. Two transports,
chosen by `RolloutPool` (rollout.pool), with the same bucket stream:

- Object store (CPU default): each bucket is packed into numpy arrays (bfloat16 travels as its raw
  16-bit pattern) and `ray.put` once; every worker maps the same shared-memory objects and copies
  them into its engine. The buckets stay in the object store until the next update, so a worker
  that replaces a dead one loads them too.
- Collective (GPU default): a torch process group between the sender (rank 0, learner rank 0) and
  the workers (ranks 1..N), built once from a standalone TCPStore and `ProcessGroupNCCL` (CUDA) or
  `ProcessGroupGloo` (CPU; the same code, which is what the tests run), and reused by every update
  until the pool's workers change. The learner's own (DeepSpeed) process group is never touched.
  Each bucket is broadcast in place from the gathered parameters. Every wait is bounded: a worker
  polls the store's abort flag while it waits for data, the sender watches each worker's Ray call.

NCCL is selected on GPUs and written against torch's public ProcessGroupNCCL API; it has not run
here (no GPU). The gloo group binds the node's own address (Ray's node IP), never every interface.
"""

from __future__ import annotations

import datetime
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

Bucket = list  # [(Hugging Face name, tensor)], at most one bucket's bytes
_RAW_DTYPES = {"bfloat16": "uint16"}  # numpy has no bfloat16: ship the bits
_ABORT_KEY = "abort"
_POLL_S = 0.002
_ABORT_POLL_S = 0.05


class TransferAborted(RuntimeError):
    """A collective transfer stopped part-way (a peer died or hung, or the sender gave up). The
    worker is fine and joins the next group; the pool finds out whose fault it was."""


def tensor_bytes(tensor: Any) -> int:
    """Bytes of the full tensor, also for a ZeRO-3 parameter whose local data is empty."""
    return int(getattr(tensor, "ds_numel", tensor.numel())) * tensor.element_size()


def buckets(named_tensors: Iterable[tuple[str, Any]], bucket_bytes: int) -> Iterator[Bucket]:
    """Consecutive (name, tensor) pairs grouped into buckets of at most `bucket_bytes` (a tensor
    bigger than that is a bucket of its own). Same input, same buckets, on every rank."""
    bucket, size = [], 0
    for name, tensor in named_tensors:
        nbytes = tensor_bytes(tensor)
        if bucket and size + nbytes > bucket_bytes:
            yield bucket
            bucket, size = [], 0
        bucket.append((name, tensor))
        size += nbytes
    if bucket:
        yield bucket


# --- object store ------------------------------------------------------------------------------

def pack_bucket(bucket: Iterable[tuple[str, Any]]) -> dict[str, tuple[str, Any]]:
    """name -> (torch dtype name, numpy array) on CPU, ready for ray.put (no copy for CPU tensors:
    ray.put copies them into shared memory)."""
    import torch

    packed = {}
    for name, tensor in bucket:
        tensor = tensor.detach()
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype in _RAW_DTYPES:
            tensor = tensor.view(getattr(torch, _RAW_DTYPES[dtype]))
        packed[name] = (dtype, tensor.to("cpu").contiguous().numpy())
    return packed


def unpack_bucket(packed: dict[str, tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Inverse of pack_bucket, without copying the arrays (they may be read-only shared memory)."""
    import warnings

    import torch

    for name, (dtype, array) in packed.items():
        with warnings.catch_warnings():  # read-only object-store buffers: we only read them
            warnings.simplefilter("ignore", UserWarning)
            tensor = torch.from_numpy(array)
        if dtype in _RAW_DTYPES:
            tensor = tensor.view(getattr(torch, dtype))
        yield name, tensor


# --- collective ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupSpec:
    """How one rank joins a weight-sync process group."""

    group_id: str
    host: str
    """Address of the sender's TCPStore (the learner's node)."""
    port: int
    world_size: int
    """Workers + 1 (the sender is rank 0)."""
    rank: int
    backend: str
    """'nccl' or 'gloo'."""
    timeout_s: float
    """Bound of every wait: joining, one bucket's data."""


@dataclass(frozen=True)
class CollectiveBucket:
    """What a worker receives next: bucket `index` of an update, over the group of `group`."""

    group: GroupSpec
    index: int
    metadata: tuple[tuple[str, str, tuple[int, ...]], ...]
    """(name, torch dtype name, shape) of each tensor, in broadcast order."""


def node_ip() -> str:
    """This process's node address as Ray knows it (127.0.0.1 outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - not inside Ray: a local run
        pass
    return "127.0.0.1"


def _listen(host: str) -> socket.socket:
    """A listening socket on `host` only, handed to the TCPStore (it would otherwise listen on
    every interface)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


class WeightGroup:
    """One rank's end of a weight-sync process group. Rank 0 hosts the store (`host`), workers
    `join`; both then `broadcast` each bucket (rank 0 sends, the others receive)."""

    def __init__(self, spec: GroupSpec, store: Any):
        self.spec, self._store = spec, store
        self._pg = None
        self._pending: list = []

    @classmethod
    def host(cls, num_workers: int, backend: str, timeout_s: float, address: Optional[str] = None) -> "WeightGroup":
        """Rank 0: listen and start the store now (cheap); `connect()` waits for the workers."""
        import torch.distributed as dist

        address = address or node_ip()
        listener = _listen(address)
        port = listener.getsockname()[1]
        store = dist.TCPStore(address, port, num_workers + 1, is_master=True, wait_for_workers=False,
                              timeout=datetime.timedelta(seconds=timeout_s), master_listen_fd=listener.fileno())
        listener.detach()  # the store owns the socket now and closes it when it goes
        spec = GroupSpec(f"{uuid.uuid4().hex[:12]}", address, port, num_workers + 1, 0, backend, timeout_s)
        return cls(spec, store)

    @classmethod
    def join(cls, spec: GroupSpec) -> "WeightGroup":
        """A worker: connect to rank 0's store and build the group (blocks until every rank is in,
        at most `spec.timeout_s`)."""
        import torch.distributed as dist

        try:
            store = dist.TCPStore(spec.host, spec.port, spec.world_size, is_master=False,
                                  timeout=datetime.timedelta(seconds=spec.timeout_s))
        except Exception as err:  # noqa: BLE001 - the sender is gone or unreachable
            raise TransferAborted(f"could not reach weight group {spec.group_id}: {err}") from None
        group = cls(spec, store)
        group.connect()
        return group

    def spec_for(self, rank: int) -> GroupSpec:
        return GroupSpec(self.spec.group_id, self.spec.host, self.spec.port, self.spec.world_size, rank,
                         self.spec.backend, self.spec.timeout_s)

    @property
    def connected(self) -> bool:
        return self._pg is not None

    @property
    def device(self) -> str:
        return "cuda" if self.spec.backend == "nccl" else "cpu"

    def connect(self) -> None:
        """Build this rank's process group (gloo: blocks until all ranks are connected)."""
        if self._pg is not None:
            return
        import torch.distributed as dist

        spec, timeout = self.spec, datetime.timedelta(seconds=self.spec.timeout_s)
        try:
            if spec.backend == "nccl":  # lazy: the communicator forms at the first broadcast
                options = dist.ProcessGroupNCCL.Options()
                options._timeout = timeout
                self._pg = dist.ProcessGroupNCCL(self._store, spec.rank, spec.world_size, options)
            else:
                options = dist.ProcessGroupGloo._Options()
                options._timeout = timeout
                options._devices = [dist.ProcessGroupGloo.create_device(hostname=node_ip())]
                self._pg = dist.ProcessGroupGloo(self._store, spec.rank, spec.world_size, options)
        except Exception as err:  # noqa: BLE001 - torch raises several types for a failed rendezvous
            raise TransferAborted(f"weight group {spec.group_id} did not form within {spec.timeout_s:g} s: "
                                  f"{err}") from None

    def broadcast(self, tensors: list) -> list:
        """Start broadcasting `tensors` from rank 0 (in place: rank 0 sends them, the others
        receive into them); returns the pending works."""
        import torch.distributed as dist

        release_retired_groups()  # a group aborted in an earlier push whose works have ended since
        opts = dist.BroadcastOptions()
        opts.rootRank = 0
        self._pending = [self._pg.broadcast([tensor], opts) for tensor in tensors]
        return self._pending

    def wait(self, works: list, deadline: float, stop: Callable[[], Optional[str]]) -> None:
        """Until every work is done; raises TransferAborted when one fails, when `stop()` gives a
        reason, or at `deadline` (time.monotonic())."""
        checked = 0.0
        while not all(work.is_completed() for work in works):
            now = time.monotonic()
            if now > deadline:
                raise TransferAborted(f"weight broadcast: no progress for {self.spec.timeout_s:g} s")
            if now - checked >= _ABORT_POLL_S:
                checked = now
                reason = stop()
                if reason:
                    raise TransferAborted(reason)
            time.sleep(_POLL_S)
        try:
            for work in works:
                work.wait()
        except Exception as err:  # noqa: BLE001 - gloo/NCCL errors of a lost peer
            raise TransferAborted(f"weight broadcast failed: {err}") from None
        self._pending = []  # done: the works no longer pin the bucket's tensors

    def abort(self, reason: str) -> None:
        """Rank 0: tell every worker still waiting on this group to give up (they poll this flag)."""
        try:
            self._store.set(_ABORT_KEY, reason)
        except Exception:  # noqa: BLE001 - the store may be gone already; workers then time out
            pass

    def abort_reason(self) -> Optional[str]:
        """A worker: why rank 0 gave up on this group, if it did (an unreachable store counts)."""
        try:
            if self._store.check([_ABORT_KEY]):
                return self._store.get(_ABORT_KEY).decode()
        except Exception as err:  # noqa: BLE001 - the sender is gone
            return f"weight sender unreachable: {err}"
        return None

    def close(self) -> None:
        """Release the communicator and the store (NCCL frees its GPU resources). A group with work
        still pending is aborted and kept referenced until that work ends: gloo's threads use it."""
        if self._pg is not None and not all(work.is_completed() for work in self._pending):
            self._pg.abort()
            _RETIRED.append(self)
        else:
            if self._pg is not None:
                self._pg.shutdown()
            self._release()
        release_retired_groups()

    def _release(self) -> None:
        # Finished works (failed ones too, after a lost peer) reference the process group and
        # through it the store: drop them with it, or the store keeps listening.
        self._pg = self._store = None
        self._pending = []


_RETIRED: list[WeightGroup] = []
"""Aborted groups whose works were still pending: gloo's threads may still write into their
buffers, so they are kept until those works end (checked at every close and every broadcast)."""


def release_retired_groups() -> None:
    """Release the aborted groups whose works have all ended since."""
    for group in [g for g in _RETIRED if all(w.is_completed() for w in g._pending)]:
        _RETIRED.remove(group)
        group._release()


def send_bucket(group: WeightGroup, bucket: Bucket) -> list:
    """Rank 0: start broadcasting a bucket, in place when it already sits on the group's device."""
    tensors = []
    for _, tensor in bucket:
        tensor = tensor.detach()
        if tensor.device.type != group.device or not tensor.is_contiguous():
            tensor = tensor.to(group.device).contiguous()
        tensors.append(tensor)
    return group.broadcast(tensors)


def bucket_metadata(bucket: Bucket) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    return tuple((name, str(t.dtype).removeprefix("torch."), tuple(t.shape)) for name, t in bucket)


def receive_bucket(group: WeightGroup, metadata, device: str) -> Bucket:
    """A worker: receive one bucket, waiting at most the group's timeout and giving up as soon as
    rank 0 raises the abort flag."""
    import torch

    tensors = [torch.empty(shape, dtype=getattr(torch, dtype), device=device) for _, dtype, shape in metadata]
    works = group.broadcast(tensors)
    group.wait(works, time.monotonic() + group.spec.timeout_s, group.abort_reason)
    if device.startswith("cuda"):
        torch.cuda.current_stream().synchronize()
    return [(name, tensor) for (name, _, _), tensor in zip(metadata, tensors)]
