"""Where `make demo`'s time goes: its wall clock split into phases, from one run.

Runs the demo (:func:`zoo.cli.demo.run`, the code of ``make demo``, one model at a time: ``demo_workers.py``
times two at a time) into a temporary folder, with nothing reused, and splits the time from the start of the
process to the end of the demo:

- start-up: importing the zoo, TensorFlow and KerasTuner, loading the data;
- per trial, from its record: build, profile, the first epoch (it traces the train and test steps), the later
  epochs, inside ``fit`` but outside its epochs (set-up, callbacks, checkpoints), evaluation, latency and
  throughput, saving the model;
- between trials (clean-up, records, progress lines): the trials' wall clock less their phases;
- after the trials: the Grad-CAM figure and the report.

Every phase is measured where it happens (timers around ``tuning.comparison``'s functions and the phases the
records hold); what no timer covers is reported as ``unaccounted``.

Run:
    python benchmarks/demo_phases.py --out /tmp/demo_phases.json            # the demo: 7 models, 5 epochs
    python benchmarks/demo_phases.py --quick --out /tmp/demo_phases.json    # zoo demo --quick (seconds)

Results (phases in seconds and shares, per model, machine, backend, versions, load) go to ``--out`` only.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TRIAL_PHASES = ("build", "profile", "evaluate", "speed", "save")


def timed(module, name, totals):
    """Replace ``module.name`` by a wrapper that adds its wall clock to ``totals[name]``."""
    function = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)


def trial_phases(record) -> dict:
    """One record's phases in seconds: its timings, the first and later epochs, and fit's own overhead."""
    timings = record.get("timings") or {}
    epochs = record.get("epoch_seconds") or []
    fit = record.get("fit_seconds") or 0.0
    phases = {p: timings.get(p) or 0.0 for p in TRIAL_PHASES}
    phases.update(first_epoch=epochs[0] if epochs else 0.0, later_epochs=sum(epochs[1:]),
                  fit_outside_epochs=max(0.0, fit - sum(epochs)))
    return phases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="zoo demo --quick: two tiny models, one epoch")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args(argv)

    import zoo.data  # the imports a demo makes, timed as start-up
    from tuning import comparison
    from zoo.cli import demo
    from zoo.runtime import environment, write_json_atomic

    totals = {}
    timed(zoo.data, "load", totals)
    timed(comparison, "_train", totals)
    timed(comparison, "_gradcam_figure", totals)
    timed(comparison, "write_report", totals)
    imported = time.perf_counter() - START
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "demo")
        start = time.perf_counter()
        status = demo.run(quick=args.quick, out=out, fresh=True, workers=1)  # its timers are in this process
        demo_seconds = time.perf_counter() - start
        with open(os.path.join(out, "records.jsonl"), encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    total = time.perf_counter() - START
    per_model = {r["model"]: {k: round(v, 3) for k, v in trial_phases(r).items()} for r in records}
    phases = {"start-up: imports": imported, "start-up: data": totals.get("load", 0.0)}
    for name in ("first_epoch", "later_epochs", "fit_outside_epochs", *TRIAL_PHASES):
        phases[f"trials: {name}"] = sum(trial_phases(r)[name] for r in records)
    in_trials = sum(v for k, v in phases.items() if k.startswith("trials: "))
    phases["between trials: clean-up, records, progress"] = max(0.0, totals.get("_train", 0.0) - in_trials)
    phases["after: Grad-CAM figure"] = totals.get("_gradcam_figure", 0.0)
    phases["after: report"] = totals.get("write_report", 0.0)
    phases["unaccounted"] = total - sum(phases.values())
    result = {
        "benchmark": "demo_phases", "quick": args.quick, "status": status, "total_seconds": total,
        "demo_seconds": demo_seconds, "trials": len(records),
        "phases": {k: {"seconds": round(v, 3), "share": round(v / total, 4)} for k, v in phases.items()},
        "per_model": per_model, "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "environment": environment(),
    }
    write_json_atomic(args.out, result, sort_keys=False)
    print(f"\nmake demo: {total:.1f} s from process start ({demo_seconds:.1f} s in zoo.cli.demo.run), "
          f"{len(records)} trials")
    for name, value in phases.items():
        print(f"  {name:<48} {value:7.2f} s  {100 * value / total:5.1f}%")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
