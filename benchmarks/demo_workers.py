"""`make demo` one model at a time against two at a time (`zoo demo --workers 2`), alternated in one run.

Each side is the whole command as a user runs it, ``python -m zoo.cli demo --fresh --out FOLDER --workers N``, in
a fresh process (imports, data, the trials, the report), timed from start to exit; the sides alternate
``--repeats`` times (1, 2, 1, 2, ...), so a change in the machine's load falls on both, and the ratio of the
medians is reported, with the trials' ``fit`` seconds added up (two trials side by side slow each other's).
Every run's records are compared with the first one-at-a-time run's, by trial id: their
histories (every epoch's loss and metrics) and test metrics must be equal, only the times may differ.

Run:
    python benchmarks/demo_workers.py --out /tmp/demo_workers.json              # the demo, 2 alternations
    python benchmarks/demo_workers.py --quick --repeats 1 --out /tmp/d.json     # zoo demo --quick (a smoke run)

Results (seconds of every run, the ratio, whether the records matched, machine, versions, load) go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

COMPARED = ("status", "history", "test_accuracy", "test_loss", "confusion_matrix", "params")  # what a trial learned, not how long it took


def read(folder) -> tuple[dict, float]:
    """``({trial id: what it learned}, the trials' fit seconds added up)`` from a run folder's records."""
    with open(os.path.join(folder, "records.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {r["id"]: {k: r.get(k) for k in COMPARED} for r in records}, sum(r["fit_seconds"] for r in records)


def run_demo(folder, workers, quick) -> float:
    """Seconds of one ``zoo demo`` process, from start to exit."""
    argv = [sys.executable, "-m", "zoo.cli", "demo", "--fresh", "--out", folder, "--workers", str(workers)]
    start = time.perf_counter()
    subprocess.run(argv + (["--quick"] if quick else []), cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternations of the two sides")
    parser.add_argument("--quick", action="store_true", help="zoo demo --quick: two tiny models, one epoch")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    from zoo.runtime import environment, write_json_atomic

    seconds, fits, same, reference = {1: [], 2: []}, {1: [], 2: []}, [], None
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for workers in (1, 2):
                folder = os.path.join(scratch, f"demo-{workers}-{repeat}")
                seconds[workers].append(run_demo(folder, workers, args.quick))
                records, fit = read(folder)
                fits[workers].append(fit)
                reference = reference or records
                same.append(records == reference)
                print(f"  workers={workers} run {repeat + 1}: {seconds[workers][-1]:.1f} s (the trials' fit "
                      f"{fit:.1f} s added up), records {'equal' if same[-1] else 'DIFFERENT'}", flush=True)
    one, two = statistics.median(seconds[1]), statistics.median(seconds[2])
    result = {
        "benchmark": "demo_workers", "quick": args.quick, "repeats": args.repeats,
        "seconds": {"workers_1": seconds[1], "workers_2": seconds[2]},
        "fit_seconds_added_up": {"workers_1": fits[1], "workers_2": fits[2]}, "median_workers_1": one,
        "median_workers_2": two, "ratio": two / one, "records_equal": all(same), "trials": len(reference),
        "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M"), "environment": environment(),
    }
    write_json_atomic(args.out, result, sort_keys=False)
    print(f"\nmake demo: {one:.1f} s one model at a time, {two:.1f} s two at a time (ratio {two / one:.2f}); "
          f"records {'equal' if all(same) else 'DIFFERENT'} over {len(reference)} trials -> {args.out}")
    return 0 if all(same) else 1


if __name__ == "__main__":
    sys.exit(main())
