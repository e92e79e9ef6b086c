"""Checkpoint upload/download throughput to S3 (moto on loopback): parallel multipart vs single stream.

    python bench/checkpoint_io.py                 # 256 MB in 4 shards, about a minute
    python bench/checkpoint_io.py --size-mb 1024 --shards 8 --repeats 3

Both modes move the same files through the same ObjectStore code; only the transfer settings
differ: "single" = one PUT / one GET per file, files one after another (no threads);
"parallel" = CheckpointConfig's defaults (16 MiB parts, 8 at a time, shared by all files).
moto runs as its own process so it does not share the client's GIL.

Two measurements:
- raw loopback: on a 2-core machine the moto server (pure Python, one core) is the bottleneck
  and parallel parts only add overhead, so expect a ratio at or below 1;
- through a proxy that caps every TCP connection at --per-connection-mibps (default 16): this
  models real S3, where one connection tops out well below the host's bandwidth and throughput
  grows with parallel connections. The ratio here is the figure compared with the target.
"""

from __future__ import annotations

import argparse
import json
import asyncio
import contextlib
import os
import threading
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for infra and tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "infra"))

from infra.storage import CheckpointConfig, open_checkpoints  # noqa: E402
from infra.storage.objects import MIB, TransferSettings, open_store  # noqa: E402

TARGET = 1.5  # parallel/single upload ratio we expect against real S3 (not reachable on loopback moto)


def make_checkpoint(root: Path, size_mb: int, shards: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    per = size_mb * MIB // shards
    paths = []
    for i in range(shards):
        path = root / f"model-{i:05d}-of-{shards:05d}.bin"
        with open(path, "wb") as handle:
            for _ in range(per // MIB):
                handle.write(os.urandom(MIB))
            handle.write(os.urandom(per % MIB))
        paths.append(path)
    (root / "config.json").write_text('{"bench": true}')
    return paths + [root / "config.json"]


@contextlib.contextmanager
def throttled_proxy(target_port: int, mib_per_s: float):
    """A TCP proxy on 127.0.0.1 that limits each connection, each direction, to `mib_per_s`."""
    rate = mib_per_s * MIB
    loop = asyncio.new_event_loop()

    async def pump(reader, writer):
        start, sent = time.perf_counter(), 0
        try:
            while data := await reader.read(256 * 1024):
                writer.write(data)
                await writer.drain()
                sent += len(data)
                ahead = sent / rate - (time.perf_counter() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer), pump(server_reader, client_writer))

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        async def shutdown():
            server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    from _servers import s3_server  # tests/infra/_servers.py
    import boto3

    defaults = CheckpointConfig()
    modes = {
        "single": TransferSettings(multipart_threshold=1 << 62, multipart_chunk=8 * MIB, max_concurrency=1),
        "parallel": TransferSettings(multipart_threshold=int(defaults.multipart_threshold_mb * MIB),
                                     multipart_chunk=int(defaults.multipart_chunk_mb * MIB),
                                     max_concurrency=defaults.max_concurrency),
    }
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp, s3_server(in_process=False) as endpoint:
        src = Path(tmp, "src")
        files = make_checkpoint(src, args.size_mb, args.shards)
        total = sum(p.stat().st_size for p in files) / MIB
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        print(f"checkpoint: {total:.0f} MiB in {len(files)} files; moto_server on 127.0.0.1 (own process)")

        print("-- raw loopback (moto-bound)")
        compare(bucket, files, total, modes, args.repeats, Path(tmp))
        ratio = None
        if args.per_connection_mibps > 0:
            port = int(endpoint.rsplit(":", 1)[1])
            with throttled_proxy(port, args.per_connection_mibps) as proxy:
                os.environ["AWS_ENDPOINT_URL"] = proxy
                print(f"-- each connection capped at {args.per_connection_mibps:g} MiB/s (models real S3)")
                ratio = compare(bucket, files, total, modes, args.repeats, Path(tmp))
                os.environ["AWS_ENDPOINT_URL"] = endpoint
        if ratio is not None:
            verdict = "meets" if ratio >= TARGET else "below"
            print(f"upload ratio parallel/single with capped connections: {ratio:.2f}x "
                  f"(target >= {TARGET}x: {verdict})")

        # The whole save/restore path for context: SHA-256 of every file, manifest, verification.
        store = open_checkpoints(f"s3://{bucket}/full", keep_last=1)
        save_s = timed(lambda: store.save(1, src, {"bench": True}))
        restore_s = timed(lambda: store.restore(store.latest(), Path(tmp, "restored")))
        print(f"CheckpointStore.save (hash + upload + manifest), loopback: {total / save_s:7.1f} MiB/s; "
              f"restore (download + verify): {total / restore_s:7.1f} MiB/s")
    return {"bench": "checkpoint_io", "value": None if ratio is None else round(ratio, 2), "unit": "x",
            "figure": (f"{'n/a' if ratio is None else f'{ratio:.2f}x'} parallel/single upload (capped connections); "
                       f"save {total / save_s:.0f} MiB/s, restore {total / restore_s:.0f} MiB/s on loopback"),
            "target": f">= {TARGET}x", "met": ratio is not None and ratio >= TARGET}


def compare(bucket: str, files: list[Path], total: float, modes: dict, repeats: int, tmp: Path) -> float:
    """Upload and download `files` in each mode; print MiB/s; return the upload ratio parallel/single."""
    results: dict[str, tuple[float, float]] = {}
    for name, settings in modes.items():
        ups, downs = [], []
        for r in range(repeats):
            prefix = f"{name}-{uuid.uuid4().hex[:6]}"
            store = open_store(f"s3://{bucket}/{prefix}", settings)
            items = [(p, p.name) for p in files]
            ups.append(timed(lambda: store.put_files(items)))
            out = tmp / f"out-{prefix}"
            downs.append(timed(lambda: store.get_files([(p.name, out / p.name) for p in files])))
            for p in files:
                assert (out / p.name).stat().st_size == p.stat().st_size
            store.delete([p.name for p in files])
        results[name] = (min(ups), min(downs))
        print(f"{name:>9}: upload {total / min(ups):7.1f} MiB/s   download {total / min(downs):7.1f} MiB/s"
              f"   (best of {repeats})")
    up_ratio = results["single"][0] / results["parallel"][0]
    down_ratio = results["single"][1] / results["parallel"][1]
    print(f"    ratio parallel/single: upload {up_ratio:.2f}x, download {down_ratio:.2f}x")
    return up_ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="checkpoint size in MiB (default 256)")
    parser.add_argument("--shards", type=int, default=4, help="number of weight files (default 4)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per mode; the best is reported")
    parser.add_argument("--per-connection-mibps", type=float, default=16.0,
                        help="cap per TCP connection for the modelled-S3 run; 0 skips it (default 16)")
    print("RESULT " + json.dumps(run(parser.parse_args())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
