"""The comparison job against the Keras script a user would write for it, alternated in one run.

The zoo side is ``tuning.compare(models, data, TrainingConfig(epochs), seeds=1)`` as ``zoo compare`` runs it
(records, saved models, latency timing, report; each switchable to see what it costs). The plain side is what
a user writes without the package: for each model, ``keras.utils.set_random_seed``, the same builder
(``zoo.build``, so both train the same network), ``compile`` (Adam 1e-3, sparse cross-entropy, accuracy),
``fit`` on the same batched training pipeline with validation, ``evaluate`` on the test split, then
``keras.backend.clear_session()``. Both run in this process, alternated ``--repeats`` times (zoo, plain, zoo,
plain, ...), so a change in the machine's load falls on both; the ratio of the medians is reported, of the wall
clock and of the process's CPU time (every thread's; steadier on a shared machine, where another tenant's load
stretches the wall clock of one side and not the other's). Both train the same network the same way, so the
seconds outside ``fit`` are also compared: their difference over the plain script's median is the ratio with
``fit``'s own noise left out (``outside_fit_ratio``; what the zoo does inside ``fit``, its per-epoch
checkpoints, is then not counted).

Run:
    python benchmarks/compare_vs_keras.py --out /tmp/compare_vs_keras.json        # mlp, lenet5, resnet20, 3 epochs
    python benchmarks/compare_vs_keras.py --no-report --no-speed --out /tmp/c.json  # the bookkeeping switched off
    python benchmarks/compare_vs_keras.py --fast --out /tmp/c.json                  # a smoke run (seconds)

Results (machine, backend and versions included) go to ``--out`` only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import tuning  # noqa: E402
import zoo  # noqa: E402
import zoo.data  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402
from zoo.training import TrainingConfig  # noqa: E402

GOAL = 1.05


def plain_keras(models, data, epochs):
    """The user's script: build, compile, fit, evaluate, clear; per-model seconds, and the seconds of ``fit``."""
    seconds, fit = {}, 0.0
    for name in models:
        start = time.perf_counter()
        keras.utils.set_random_seed(0)
        model = zoo.build(name, input_shape=data.input_shape, num_classes=data.num_classes)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        fitting = time.perf_counter()
        model.fit(data.restarted().train, validation_data=data.validation, epochs=epochs, verbose=0)
        fit += time.perf_counter() - fitting
        model.evaluate(data.test, verbose=0)
        del model
        keras.backend.clear_session()
        seconds[name] = time.perf_counter() - start
    return seconds, fit


def zoo_compare(models, data, epochs, *, report, speed):
    with tempfile.TemporaryDirectory() as out:
        start, cpu = time.perf_counter(), time.process_time()
        result = tuning.compare(models, data=data, training=TrainingConfig(epochs=epochs), seeds=1, out=out,
                                options=tuning.RunOptions(report=report, measure_speed=speed, verbose=0))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    phases = {}
    for record in result.records:
        for phase, value in (record.get("timings") or {}).items():
            phases[phase] = phases.get(phase, 0.0) + (value or 0.0)
    return wall, cpu, phases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "lenet5", "resnet20"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="zoo side without its report")
    parser.add_argument("--no-speed", action="store_true", help="zoo side without latency/throughput timing")
    parser.add_argument("--fast", action="store_true", help="mlp only, 1 epoch, 1 repeat")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    models, epochs, repeats = (["mlp"], 1, 1) if args.fast else (args.models, args.epochs, args.repeats)
    data = zoo.data.load("digits", image_size=32)
    # warm-up, as measured (matplotlib's import with the report): imports and first traces count for neither side
    zoo_compare(models[:1], data, 1, report=not args.no_report, speed=not args.no_speed)
    plain_keras(models[:1], data, 1)
    runs = []
    for i in range(repeats):
        wall, cpu, phases = zoo_compare(models, data, epochs, report=not args.no_report, speed=not args.no_speed)
        start, plain_cpu = time.perf_counter(), time.process_time()
        per_model, plain_fit = plain_keras(models, data, epochs)
        plain, plain_cpu = time.perf_counter() - start, time.process_time() - plain_cpu
        runs.append({"zoo_seconds": wall, "plain_seconds": plain, "ratio": wall / plain, "zoo_cpu_seconds": cpu,
                     "plain_cpu_seconds": plain_cpu, "cpu_ratio": cpu / plain_cpu, "zoo_phases": phases,
                     "plain_per_model": per_model, "plain_fit_seconds": plain_fit,
                     "zoo_outside_fit_seconds": wall - phases.get("fit", 0.0),
                     "plain_outside_fit_seconds": plain - plain_fit})
        print(f"[{i + 1}/{repeats}] zoo compare {wall:.1f} s ({cpu:.1f} s CPU), plain Keras {plain:.1f} s "
              f"({plain_cpu:.1f} s CPU), ratio {wall / plain:.2f} (CPU {cpu / plain_cpu:.2f})", flush=True)
    median = {key: statistics.median(r[key] for r in runs)
              for key in ("zoo_seconds", "plain_seconds", "zoo_cpu_seconds", "plain_cpu_seconds",
                          "zoo_outside_fit_seconds", "plain_outside_fit_seconds", "plain_fit_seconds")}
    summary = {"zoo_median_seconds": median["zoo_seconds"], "plain_median_seconds": median["plain_seconds"],
               "ratio_of_medians": median["zoo_seconds"] / median["plain_seconds"],
               "zoo_median_cpu_seconds": median["zoo_cpu_seconds"],
               "plain_median_cpu_seconds": median["plain_cpu_seconds"],
               "cpu_ratio_of_medians": median["zoo_cpu_seconds"] / median["plain_cpu_seconds"],
               "zoo_median_outside_fit_seconds": median["zoo_outside_fit_seconds"],
               "plain_median_outside_fit_seconds": median["plain_outside_fit_seconds"],
               # what the zoo adds outside fit, on the plain script's median: the ratio with fit's noise left out
               # (both train the same network the same way; the zoo's checkpoints inside fit are not counted)
               "outside_fit_ratio": 1 + (median["zoo_outside_fit_seconds"] - median["plain_outside_fit_seconds"])
               / median["plain_seconds"], "goal": GOAL}
    print(f"median: zoo {median['zoo_seconds']:.1f} s, plain {median['plain_seconds']:.1f} s, ratio "
          f"{summary['ratio_of_medians']:.2f}; CPU ratio {summary['cpu_ratio_of_medians']:.2f}; outside fit: zoo "
          f"{median['zoo_outside_fit_seconds']:.2f} s, plain {median['plain_outside_fit_seconds']:.2f} s, ratio with "
          f"fit's noise left out {summary['outside_fit_ratio']:.3f} (goal <= {GOAL})")
    write_json_atomic(args.out, {"benchmark": "compare_vs_keras", "models": models, "epochs": epochs,
                                 "report": not args.no_report, "measure_speed": not args.no_speed,
                                 "load_average": os.getloadavg(), "runs": runs, "summary": summary,
                                 "environment": environment(), "date": time.strftime("%Y-%m-%d")})


if __name__ == "__main__":
    main()
