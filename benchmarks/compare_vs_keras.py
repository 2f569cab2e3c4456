"""The comparison job against the Keras script a user would write for it, alternated in one run.

The zoo side is ``tuning.compare(models, data, TrainingConfig(epochs), seeds=1)`` as ``zoo compare`` runs it
(records, saved models, latency timing, report; each switchable to see what it costs). The plain side is what
a user writes without the package: for each model, ``keras.utils.set_random_seed``, the same builder
(``zoo.build``, so both train the same network), ``compile`` (Adam 1e-3, sparse cross-entropy, accuracy),
``fit`` on the same batched training pipeline with validation, ``evaluate`` on the test split, then
``keras.backend.clear_session()``. Both run in this process, alternated ``--repeats`` times (zoo, plain, zoo,
plain, ...), so a change in the machine's load falls on both; the ratio of the medians is reported.

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
    """The user's script: build, compile, fit, evaluate, clear; per-model seconds."""
    seconds = {}
    for name in models:
        start = time.perf_counter()
        keras.utils.set_random_seed(0)
        model = zoo.build(name, input_shape=data.input_shape, num_classes=data.num_classes)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(data.restarted().train, validation_data=data.validation, epochs=epochs, verbose=0)
        model.evaluate(data.test, verbose=0)
        del model
        keras.backend.clear_session()
        seconds[name] = time.perf_counter() - start
    return seconds


def zoo_compare(models, data, epochs, *, report, speed):
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = tuning.compare(models, data=data, training=TrainingConfig(epochs=epochs), seeds=1, out=out,
                                options=tuning.RunOptions(report=report, measure_speed=speed, verbose=0))
        wall = time.perf_counter() - start
    phases = {}
    for record in result.records:
        for phase, value in (record.get("timings") or {}).items():
            phases[phase] = phases.get(phase, 0.0) + (value or 0.0)
    return wall, phases


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
    zoo_compare(models[:1], data, 1, report=False, speed=False)  # warm-up: imports and first traces for neither side
    plain_keras(models[:1], data, 1)
    runs = []
    for i in range(repeats):
        wall, phases = zoo_compare(models, data, epochs, report=not args.no_report, speed=not args.no_speed)
        start = time.perf_counter()
        per_model = plain_keras(models, data, epochs)
        plain = time.perf_counter() - start
        runs.append({"zoo_seconds": wall, "plain_seconds": plain, "ratio": wall / plain, "zoo_phases": phases,
                     "plain_per_model": per_model})
        print(f"[{i + 1}/{repeats}] zoo compare {wall:.1f} s, plain Keras {plain:.1f} s, ratio {wall / plain:.2f}",
              flush=True)
    zoo_median = statistics.median(r["zoo_seconds"] for r in runs)
    plain_median = statistics.median(r["plain_seconds"] for r in runs)
    summary = {"zoo_median_seconds": zoo_median, "plain_median_seconds": plain_median,
               "ratio_of_medians": zoo_median / plain_median, "goal": GOAL}
    print(f"median: zoo {zoo_median:.1f} s, plain {plain_median:.1f} s, ratio {zoo_median / plain_median:.2f} "
          f"(goal <= {GOAL})")
    write_json_atomic(args.out, {"benchmark": "compare_vs_keras", "models": models, "epochs": epochs,
                                 "report": not args.no_report, "measure_speed": not args.no_speed,
                                 "load_average": os.getloadavg(), "runs": runs, "summary": summary,
                                 "environment": environment(), "date": time.strftime("%Y-%m-%d")})


if __name__ == "__main__":
    main()
