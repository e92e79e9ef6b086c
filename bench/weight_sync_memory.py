"""Benchmark: peak extra memory of the weight sender (learner rank 0) against the model size.

A DeepSpeed ZeRO-3 learner on 2 CPU ranks (two processes over gloo: each holds half of every
parameter, and the export gathers them, as on a real run) pushes a ~100M-parameter Qwen2.5-VL
(the tiny-model factory at a bigger size) from rank 0 to 2 rollout workers through
`trainer.loop.sync_weights`, side by side in one run:
with bounded buckets (--bucket-mb, default 64) and with the whole model as one bucket, which is what
a sender that gathers the whole state before sending holds. Both transports: the gloo collective
(the code path NCCL takes on GPUs) and the object store.

Measured in rank 0's process (the sender), around each push: the peak resident set minus the
resident set before it (VmHWM, reset through /proc/self/clear_refs; free heap is returned with
malloc_trim first so earlier pushes leave no slack to hide in), and the peak of anonymous memory,
sampled every millisecond. The object-store transport writes each bucket into Ray's shared-memory
store, whose pages count in the sender's resident set while it writes them but belong to the store
(the copy kept for replacement workers): for it the anonymous figure is the sender's own.

Two allocator settings, side by side: glibc's default, which keeps freed parameter buffers (under
its dynamic mmap threshold, up to 32 MiB) in its heap instead of reusing them for the next bucket,
so the resident set creeps up over a push and is only returned by malloc_trim or at exit; and
large allocations pinned to mmap (mallopt M_MMAP_THRESHOLD = 128 KiB), where a freed bucket goes
back to the system at once and the figure is what the push itself holds. CUDA tensors on a GPU
learner go through PyTorch's caching allocator instead, which reuses a freed bucket's blocks.

Target: with buckets, the sender's peak extra memory is at most 2 buckets (one bucket gathered,
plus slack), whatever the model size; the headline is the collective transport's with freed
buckets returned, the glibc-default figure is printed beside it.

    .venv/bin/python bench/weight_sync_memory.py [--hidden 768] [--layers 14] [--bucket-mb 64]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MiB = 2**20


def status() -> dict[str, int]:
    """VmHWM, VmRSS and RssAnon of this process, in bytes."""
    text = Path("/proc/self/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", text).group(1)) * 1024 for key in ("VmHWM", "VmRSS", "RssAnon")}


def measure(push) -> dict[str, float]:
    """Run push(); peak resident-set and anonymous-memory growth over the state before it."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = status()
    peak_anon, running = [before["RssAnon"]], [True]

    def sample() -> None:
        while running[0]:
            peak_anon[0] = max(peak_anon[0], status()["RssAnon"])
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    push()
    seconds = time.perf_counter() - started
    running[0] = False
    sampler.join()
    after = status()
    return {"rss": (after["VmHWM"] - before["VmRSS"]) / MiB, "anon": (peak_anon[0] - before["RssAnon"]) / MiB,
            "seconds": seconds}


def learner_rank(rank: int, model_dir: str, port: int, bucket_mb: int, out: str, pinned: bool) -> None:
    """One ZeRO-3 learner rank; rank 0 also drives the rollout pools and measures every push.
    `pinned`: allocations of 128 KiB and more are mmap-ed, so a freed bucket leaves at once."""
    import os

    if pinned:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD, fixed (no dynamic raise)

    import torch.distributed as dist

    from infra.loopback import init_local_ray, loopback_worker_env
    from trainer.learner.rendezvous import bind_store_to_loopback

    # everything on loopback: the ranks' rendezvous store and gloo sockets, Ray's servers
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", **loopback_worker_env())
    bind_store_to_loopback()
    dist.init_process_group("gloo", rank=rank, world_size=2)

    from transformers.utils import logging as hf_logging

    from trainer.grpo import GRPOConfig
    from trainer.learner import LearnerConfig
    from trainer.learner.learner import Learner
    from trainer.loop import sync_weights

    hf_logging.disable_progress_bar()
    learner = Learner(model_dir, LearnerConfig(zero_stage=3), GRPOConfig(kl_coef=0.0))
    bucket, rows, version = bucket_mb * MiB, [], 0
    sizes = ((f"{bucket_mb} MiB buckets", bucket), ("one whole-model bucket", 2**62))
    if rank == 0:
        import ray

        from rollout.config import RolloutConfig
        from rollout.pool import RolloutPool

        init_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for transport in ("collective", "object_store"):
        pool = (RolloutPool(model_dir, RolloutConfig(engine="hf", num_workers=2, num_cpus_per_worker=0.5,
                                                     weight_sync=transport)) if rank == 0 else None)
        version += 1
        sync_weights(learner, pool, version, bucket)  # warm-up: groups, caches, allocator
        for label, size in sizes:
            version += 1
            figures = measure(lambda: sync_weights(learner, pool, version, size))
            if pool is not None:
                assert {int(s["policy_version"]) for s in pool.stats()} == {version}
                rows.append((transport, label, figures))
        if pool is not None:
            pool.shutdown()
    if rank == 0:
        policy = learner.policy.module.policy
        local = sum(p.ds_tensor.numel() * p.ds_tensor.element_size() for p in policy.parameters()) / MiB
        Path(out).write_text(json.dumps({"rows": rows, "local_mb": local}))
        ray.shutdown()
    dist.barrier()
    dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--layers", type=int, default=14)
    parser.add_argument("--bucket-mb", type=int, default=64)
    args = parser.parse_args()

    import socket

    import torch.multiprocessing as mp
    from transformers import AutoConfig

    from rollout.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "model", hidden_size=args.hidden, num_layers=args.layers,
                                     num_heads=args.hidden // 64, vocab_size=2000, vision_hidden=256, vision_depth=4)
        weights = sum(f.stat().st_size for f in Path(model_dir).glob("*.safetensors"))
        model_mb = weights / MiB
        AutoConfig.from_pretrained(model_dir)  # fail here, not in a child, if the folder is unusable
        results = {}
        for allocator, pinned in (("freed at once", True), ("glibc default", False)):
            out = Path(tmp) / "rows.json"
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            mp.spawn(learner_rank, args=(str(model_dir), port, args.bucket_mb, str(out), pinned), nprocs=2)
            results[allocator] = json.loads(out.read_text())
    local_mb = results["freed at once"]["local_mb"]
    print(f"model: {model_mb:.0f} MiB of float32 weights; each of the 2 ZeRO-3 ranks holds {local_mb:.0f} MiB")
    print(f"{'allocator':<14} {'transport':<13} {'buckets':<24} {'peak RSS +MiB':>14} {'x model':>8} "
          f"{'peak anon +MiB':>15} {'x model':>8} {'push s':>7}")
    for allocator, result in results.items():
        for transport, label, f in result["rows"]:
            print(f"{allocator:<14} {transport:<13} {label:<24} {f['rss']:>14.0f} {f['rss'] / model_mb:>8.2f} "
                  f"{f['anon']:>15.0f} {f['anon'] / model_mb:>8.2f} {f['seconds']:>7.2f}")
    bounded, whole = (row[2] for row in results["freed at once"]["rows"][:2])
    retained = results["glibc default"]["rows"][0][2]
    value = bounded["rss"] / model_mb
    met = bounded["rss"] <= 2 * args.bucket_mb
    print(f"collective, {args.bucket_mb} MiB buckets: peak {bounded['rss']:.0f} MiB = {value:.2f}x the model "
          f"({whole['rss'] / model_mb:.2f}x with one whole-model bucket; {retained['rss'] / model_mb:.2f}x with "
          f"glibc's default heap retention); target <= 2 buckets ({2 * args.bucket_mb} MiB): "
          f"{'met' if met else 'NOT met'}")
    print("RESULT " + json.dumps({"bench": "weight_sync_memory", "value": round(value, 3), "unit": "x model",
                                  "figure": f"{bounded['rss']:.0f} MiB peak extra ({value:.2f}x a {model_mb:.0f} MiB "
                                            f"model) with {args.bucket_mb} MiB buckets; {whole['rss'] / model_mb:.2f}x "
                                            f"with one whole-model bucket; {retained['rss'] / model_mb:.2f}x "
                                            f"buckets under glibc's default heap retention",
                                  "target": f"<= 2 buckets ({2 * args.bucket_mb} MiB)", "met": met}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
