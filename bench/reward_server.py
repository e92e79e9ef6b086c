"""Benchmark: reward server throughput and latency under many concurrent clients.

Starts `stvg serve-rewards --workers 2` on 127.0.0.1, then drives it from a second process with
`--clients` concurrent keep-alive connections (raw asyncio HTTP/1.1), each posting STVG-o1 batches (the costliest
task: ~8 boxes per list) back to back for `--seconds` per batch size. Prints completions/s and p50/p99
request latency at batch sizes 1, 16 and 64, and the ratio against in-process `score_batch` measured
side by side in this run (one core, no HTTP: the ceiling of one worker).

Target (one 2-core machine, server and load generator sharing it): >= 2,000 completions/s at batch 64
with p99 < 100 ms.

    .venv/bin/python bench/reward_server.py [--clients 8] [--seconds 5] [--batches 1,16,64]
                                            [--workers 2] [--pool thread|process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "rewards"))  # the test suite's server launcher

TARGET_RATE = 2000.0
TARGET_P99_MS = 100.0
TARGET_BATCH = 64


def make_items(count: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    """Distinct STVG-o1 completions (3 in 4 well formed) and targets, ~8 indices per span."""
    import random

    rng = random.Random(seed)
    completions, targets = [], []
    for i in range(count):
        ts = rng.randint(0, 12)
        te = ts + rng.randint(4, 10)
        gs = max(0, ts + rng.randint(-3, 3))
        ge = gs + rng.randint(4, 10)

        def boxes(jitter: float) -> str:
            return ", ".join(f"{t}. [{40 + rng.uniform(-jitter, jitter):.1f}, {30 + rng.uniform(-jitter, jitter):.1f}, "
                             f"{180 + rng.uniform(-jitter, jitter):.1f}, {200 + rng.uniform(-jitter, jitter):.1f}]"
                             for t in range(ts, te + 1))

        text = (f"<time> {ts} - {te} </time> <think_bbox> {boxes(20)} </think_bbox> "
                f"<pred_bbox> {boxes(8)} </pred_bbox>")
        completions.append(text if i % 4 else text[: rng.randint(0, len(text))])  # truncated: malformed
        targets.append({"t_start": gs, "t_end": ge, "width": 336.0, "height": 252.0,
                        "boxes": [[t, 42.0, 28.0, 178.0, 205.0] for t in range(gs, ge + 1)]})
    return completions, targets


def in_process_rate(completions: list[str], targets: list[dict], seconds: float) -> float:
    from rewards import score_batch

    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        score_batch("stvg-o1", completions[:64], targets[:64])
        done += 64
    return done / (time.perf_counter() - start)


def drive(host: str, port: int, bodies: list[bytes], clients: int, seconds: float, rate: float, out) -> None:
    """Load generator (runs in its own process) over `clients` keep-alive connections.

    rate == 0: closed loop, each connection posts back to back (saturation). rate > 0: open loop,
    requests are issued at Poisson times of `rate` per second, each on the next free connection,
    and latency counts from the scheduled time (so a queue in front of the server is not hidden).
    A minimal HTTP/1.1 client on raw asyncio streams: a client library costs more CPU per request
    than the server does at small batches, and the two share the same two cores.
    """
    import random

    requests = [(f"POST /v1/score HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]

    async def exchange(conn, payload: bytes) -> None:
        reader, writer = conn
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        answer = await reader.readexactly(length)
        if head.split(b" ", 2)[1] != b"200":
            raise RuntimeError(f"HTTP {head[:40]!r}: {answer[:200]!r}")

    async def run() -> tuple[list[float], float]:
        conns = [await asyncio.open_connection(host, port) for _ in range(clients)]
        latencies: list[float] = []
        begin = time.perf_counter()
        end = begin + seconds
        if rate <= 0:
            async def loop(k: int) -> None:
                i = k
                while time.perf_counter() < end:
                    sent = time.perf_counter()
                    await exchange(conns[k], requests[i % len(requests)])
                    latencies.append(time.perf_counter() - sent)
                    i += clients

            await asyncio.gather(*(loop(k) for k in range(clients)))
        else:
            free: asyncio.Queue = asyncio.Queue()
            for conn in conns:
                free.put_nowait(conn)

            async def one(i: int, scheduled: float) -> None:
                conn = await free.get()
                await exchange(conn, requests[i % len(requests)])
                free.put_nowait(conn)
                latencies.append(time.perf_counter() - scheduled)

            rng, tasks, at, i = random.Random(1), [], begin, 0
            while at < end:
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                tasks.append(asyncio.ensure_future(one(i, at)))
                at += rng.expovariate(rate)
                i += 1
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
        for _, writer in conns:
            writer.close()
        return latencies, elapsed

    out.put(asyncio.run(run()))


def measure(url: str, batch: int, completions: list[str], targets: list[dict], clients: int,
            seconds: float, rate: float = 0.0) -> tuple[float, float, float]:
    """(completions/s, p50 ms, p99 ms) for requests of `batch` items; `rate` in requests/s (0: saturate)."""
    bodies = []
    for k in range(0, len(completions) - batch + 1, batch):
        items = [{"completion": c, "target": t} for c, t in zip(completions[k:k + batch], targets[k:k + batch])]
        bodies.append(json.dumps({"task": "stvg-o1", "items": items}).encode())
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    host, port = url.removeprefix("http://").split(":")
    driver = ctx.Process(target=drive, args=(host, int(port), bodies, clients, seconds, rate, queue))
    driver.start()
    latencies, elapsed = queue.get(timeout=seconds + 120)
    driver.join(30)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return len(latencies) * batch / elapsed, p50, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections of the load generator")
    parser.add_argument("--seconds", type=float, default=5.0, help="load duration per measurement")
    parser.add_argument("--batches", default="1,16,64", help="comma-separated batch sizes")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--pool", default="thread", choices=("thread", "process"), help="server scoring pool")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]

    from _reward_servers import reward_server

    completions, targets = make_items(4096)
    base = in_process_rate(completions, targets, seconds=2.0)
    print(f"baseline: in-process score_batch (1 core, no HTTP): {base:,.0f} completions/s")
    print(f"server: {args.workers} workers, {args.pool} pool; STVG-o1 items; load from a second process; "
          f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work skews the figures)")
    with reward_server("--workers", str(args.workers), "--pool", args.pool, "--max-items", "1024") as server:
        measure(server.url, max(batches), completions, targets, args.clients, 1.0)  # warm up both workers
        print(f"saturation: {args.clients} clients posting back to back, {args.seconds:g} s per batch size")
        print(f"{'batch':>6} {'completions/s':>14} {'x baseline':>11} {'p50 ms':>8} {'p99 ms':>8}")
        for batch in batches:
            rate, p50, p99 = measure(server.url, batch, completions, targets, args.clients, args.seconds)
            print(f"{batch:>6} {rate:>14,.0f} {rate / base:>11.2f} {p50:>8.1f} {p99:>8.1f}")
        offered = TARGET_RATE / TARGET_BATCH
        rate, p50, p99 = measure(server.url, TARGET_BATCH, completions, targets, 4 * args.clients,
                                 args.seconds, rate=offered)
    print(f"target: >= {TARGET_RATE:,.0f} completions/s at batch {TARGET_BATCH} with p99 < {TARGET_P99_MS:g} ms")
    met = rate >= 0.95 * TARGET_RATE and p99 < TARGET_P99_MS  # Poisson arrivals: +-5% in a few seconds
    print(f"at the target load ({offered:.1f} requests/s of {TARGET_BATCH}, Poisson arrivals, up to "
          f"{4 * args.clients} in flight): {rate:,.0f} completions/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms: "
          f"{'MET' if met else 'NOT MET'}")
    print("RESULT " + json.dumps({"bench": "reward_server", "value": round(rate), "unit": "completions/s",
                                  "figure": f"{rate:,.0f} completions/s at batch {TARGET_BATCH}, p99 {p99:.0f} ms",
                                  "target": f">= {TARGET_RATE:,.0f}/s, p99 < {TARGET_P99_MS:g} ms", "met": met}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
