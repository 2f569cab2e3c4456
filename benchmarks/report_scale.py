"""Report time against the number of records: ``tuning.report.write_report`` on synthetic search records.

Each record is one trial (its own hyperparameters, so one summary row per record, as in a search), with a
5-epoch history and the usual metrics and costs. The time covers the summary, every plot and the
Markdown/HTML/CSV/JSON files.

Run:
    python benchmarks/report_scale.py --out benchmarks/results/report_scale.json            # 10, 100, 1000, 5000
    python benchmarks/report_scale.py --sizes 10 100 --out /tmp/report_scale.json

The results (seconds per size, the ratio of the largest to 100 records, machine, backend and versions) go to
``--out`` only: nothing tracked is overwritten unless named.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tuning.records import new_record  # noqa: E402
from tuning.report import write_report  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402


def synthetic_records(n, seed=0):
    """``n`` completed trial records of one search, each with its own hyperparameters."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        loss = list(np.linspace(1.0, 0.3, 5) + rng.random(5) * 0.05)
        records.append(new_record(
            id=f"{i:04d}", model="mlp", seed=0, status="completed", epochs=5, batch_size=32,
            hyperparameters={"units": int(rng.integers(8, 512)), "learning_rate": float(rng.random())},
            history={"loss": loss, "val_loss": [v + 0.05 for v in loss], "accuracy": [0.9] * 5,
                     "val_accuracy": [0.88] * 5},
            val_accuracy=float(rng.random()), test_accuracy=float(rng.random()), val_loss=0.4, test_loss=0.4,
            params=int(rng.integers(1_000, 1_000_000)), macs=int(rng.integers(10_000, 10_000_000)),
            fit_seconds=float(rng.random() * 10), latency_ms=float(rng.random()), throughput=1000.0,
            dataset="digits", data="synthetic",
        ))
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            records = synthetic_records(n)
            start = time.perf_counter()
            write_report(records, os.path.join(folder, str(n)), title=f"{n} records")
            seconds[n] = round(time.perf_counter() - start, 2)
            print(f"{n:>6} records: {seconds[n]:8.2f} s", flush=True)
    payload = {"benchmark": "report_scale", "seconds": seconds, "environment": environment()}
    if 100 in seconds and max(seconds) != 100:
        payload["ratio_largest_to_100"] = round(seconds[max(seconds)] / seconds[100], 2)
        print(f"ratio {max(seconds)}/100 records: {payload['ratio_largest_to_100']}")
    print(f"results: {write_json_atomic(args.out, payload, sort_keys=False)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
