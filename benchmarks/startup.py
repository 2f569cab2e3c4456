"""Start-up time of the command line: ``zoo --help``, ``zoo list``, ``zoo report RUN`` and ``import tuning.report``.

Each command runs in a fresh Python process (``python -m zoo.cli ...``, the same code as the ``zoo`` script,
from this checkout), once to warm the file cache and then ``--runs`` times; the median and the fastest run
are kept. ``zoo report`` reads a folder of ``--records`` synthetic trial records (``report_scale.py``'s
records), so its figure is start-up plus the report itself. One more run of each command, under a small
driver, names the deep-learning frameworks it imported (none is the goal for all but ``zoo list``).

Run:
    python benchmarks/startup.py --out benchmarks/results/startup.json
    python benchmarks/startup.py --runs 3 --out /tmp/startup.json

The results (seconds per command, the frameworks each imported, machine, backend and versions) go to
``--out`` only: nothing tracked is overwritten unless named.
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
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from report_scale import synthetic_records  # noqa: E402

FRAMEWORKS = ("tensorflow", "keras", "jax", "keras_tuner", "torch")


def commands(run_dir) -> dict:
    """``{label: arguments after python}``."""
    return {
        "zoo --help": ["-m", "zoo.cli", "--help"],
        "zoo list": ["-m", "zoo.cli", "list"],
        "zoo tune --help": ["-m", "zoo.cli", "tune", "--help"],
        "zoo info lenet5": ["-m", "zoo.cli", "info", "lenet5"],
        "zoo weights list": ["-m", "zoo.cli", "weights", "list"],
        "zoo report RUN": ["-m", "zoo.cli", "report", run_dir],
        "import tuning.report": ["-c", "import tuning.report"],
    }


def write_run(folder, n) -> str:
    """A run folder with ``n`` synthetic records in ``records.jsonl``."""
    from tuning.records import append_record

    os.makedirs(folder, exist_ok=True)
    for record in synthetic_records(n):
        append_record(os.path.join(folder, "records.jsonl"), record)
    return folder


def seconds(argv) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def frameworks(argv) -> list:
    """The frameworks one run of the command leaves in ``sys.modules``."""
    if argv[0] == "-m":
        run = f"sys.argv = {['zoo', *argv[2:]]!r}; runpy.run_module({argv[1]!r}, run_name='__main__', alter_sys=True)"
    else:
        run = argv[1]
    script = (f"import json, runpy, sys\ntry:\n    {run}\nexcept SystemExit:\n    pass\n"
              f"print(json.dumps(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--records", type=int, default=100, help="records in the reported run (default 100)")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        run_dir = write_run(os.path.join(folder, "run"), args.records)
        for label, command in commands(run_dir).items():
            seconds(command)  # warm-up: file cache and bytecode
            times = sorted(seconds(command) for _ in range(args.runs))
            results[label] = {"median_s": round(statistics.median(times), 2), "min_s": round(times[0], 2),
                              "runs_s": [round(t, 2) for t in times],
                              "frameworks": frameworks(command)}
            print(f"{label:<22} median {results[label]['median_s']:6.2f} s  min {results[label]['min_s']:6.2f} s"
                  f"  frameworks: {', '.join(results[label]['frameworks']) or 'none'}", flush=True)
    from zoo.runtime import environment, write_json_atomic

    payload = {"benchmark": "startup", "records": args.records, "runs": args.runs, "commands": results,
               "environment": environment()}
    print(f"results: {write_json_atomic(args.out, payload, sort_keys=False)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
