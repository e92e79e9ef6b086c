"""Run every benchmark of the project and rewrite the results table in bench/README.md.

Each bench prints its headline as a last line `RESULT {json}` (bench, value, unit, figure, target,
met). This script runs them one after the other (`--quick`: small sizes, a fast smoke pass whose
figures are not comparable with the targets), keeps the latest result of each bench in
bench/results/<name>.json (not versioned) with the machine it was measured on (nproc, CPU model,
RAM, load average, date), and rewrites that bench's row of the table between the markers in
bench/README.md (rows of benches not run this time are kept as they were).

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--timeout 3600]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
RESULTS = HERE / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# name -> (full-run arguments, quick-run arguments)
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "reward_scoring": ([], ["--completions", "2000", "--repeats", "1"]),
    "reward_server": ([], ["--seconds", "2", "--batches", "64"]),
    "weight_sync": ([], ["--hidden", "256", "--layers", "4", "--repeats", "2"]),
    "weight_sync_memory": ([], ["--hidden", "256", "--layers", "4", "--bucket-mb", "4"]),
    "zero3_memory": ([], ["--hidden", "256", "--layers", "2"]),
    "video_decode": ([], ["--seconds", "20", "--repeats", "1"]),
    "checkpoint_io": ([], ["--size-mb", "32", "--shards", "2"]),
    "pipeline_speed": ([], ["--quick"]),
    "learning_run": ([], ["--quick"]),
}


def machine() -> dict[str, str]:
    """nproc, CPU model, RAM and load: the conditions a figure was measured under."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.0f} GiB"
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": ram, "load": f"{os.getloadavg()[0]:.1f}",
            "date": datetime.date.today().isoformat()}


def run_bench(name: str, args: list[str], timeout: float) -> dict:
    """Run bench/<name>.py; its RESULT line, or a failure record."""
    command = [sys.executable, str(HERE / f"{name}.py"), *args]
    started = time.perf_counter()
    where = machine()  # load average when the bench starts
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
        output, code = proc.stdout, proc.returncode
        tail = (proc.stdout + proc.stderr)[-2000:]
    except subprocess.TimeoutExpired:
        output, code, tail = "", -1, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - started
    result = None
    for line in reversed(output.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            break
    if result is None:
        result = {"bench": name, "figure": f"FAILED (exit {code})", "met": False, "error": tail}
    result.update(command=" ".join(["python", f"bench/{name}.py", *args]), seconds=round(seconds, 1),
                  machine=where)
    return result


def render_row(r: dict) -> str:
    m = r.get("machine", {})
    where = f"{m.get('nproc', '?')} x {m.get('cpu', '?')}, {m.get('ram', '?')}, load {m.get('load', '?')}, " \
            f"{m.get('date', '?')}"
    met = {True: "yes", False: "no"}.get(r.get("met"), "")
    quick = " (quick)" if r.get("quick") else ""
    figure = str(r.get("figure", "")).replace("|", "/")
    return (f"| {r['bench']} | `{r.get('command', '')}` | {r.get('target', '')} | {figure}{quick} | {met} | "
            f"{where} | {r.get('seconds', '')} s |")


HEADER = ["| bench | command | target | last measured | met | machine | run time |",
          "|---|---|---|---|---|---|---|"]


def write_readme(fresh: dict[str, dict]) -> None:
    """Rewrite the rows of the benches in `fresh`; keep the other rows as they are."""
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    old, tail = rest.split(END, 1)
    rows = {line.split("|")[1].strip(): line for line in old.strip().splitlines()
            if line.startswith("| ") and not line.startswith(HEADER[0][:9])}
    rows.update({name: render_row(result) for name, result in fresh.items()})
    body = [rows.get(name, f"| {name} | `python bench/{name}.py` | | not run yet | | | |") for name in BENCHES]
    README.write_text(f"{head}{START}\n" + "\n".join(HEADER + body) + f"\n{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a fast smoke pass")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="run only these benches")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per bench")
    args = parser.parse_args()

    RESULTS.mkdir(exist_ok=True)
    results: dict[str, dict] = {}
    for name in args.only or BENCHES:
        full, quick = BENCHES[name]
        print(f"== {name} ({'quick' if args.quick else 'full'})", flush=True)
        result = run_bench(name, quick if args.quick else full, args.timeout)
        result["quick"] = args.quick
        print(f"   {result.get('figure')}  target {result.get('target', '?')}  met {result.get('met')}  "
              f"({result['seconds']} s)", flush=True)
        results[name] = result
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        write_readme(results)
    print(f"table written to {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
