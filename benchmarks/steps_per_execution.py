"""Does ``steps_per_execution`` pay for the comparison job's small models on this machine?

Per model, the plain Keras training of ``compare_vs_keras.py`` (``set_random_seed``, ``zoo.build``, Adam 1e-3,
``fit`` on digits at 32x32 with validation) with ``compile(steps_per_execution=1)`` and with ``N``, alternated
``--repeats`` times after a warm-up; the seconds of ``fit`` and whether both end with the same weights (the
same steps in the same order: they should).

Run:
    python benchmarks/steps_per_execution.py --out /tmp/spe.json                 # mlp, lenet5, resnet20; N = 8
    python benchmarks/steps_per_execution.py --models mlp --epochs 1 --repeats 1 --out /tmp/spe.json

Results (machine, backend and versions included) go to ``--out`` only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402
import zoo.data  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402


def fit_seconds(name, data, epochs, steps_per_execution):
    """``(seconds of fit, final weights)`` of one model trained from seed 0."""
    keras.utils.set_random_seed(0)
    model = zoo.build(name, input_shape=data.input_shape, num_classes=data.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=steps_per_execution)
    start = time.perf_counter()
    model.fit(data.restarted().train, validation_data=data.validation, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    weights = [np.array(v) for v in model.weights]
    del model
    keras.backend.clear_session()
    return seconds, weights


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "lenet5", "resnet20"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-execution", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    data = zoo.data.load("digits", image_size=32)
    results = {}
    for name in args.models:
        fit_seconds(name, data, 1, 1)  # warm-up: the first traces of this process
        times, last = {1: [], args.steps_per_execution: []}, {}
        for _ in range(args.repeats):
            for n in times:
                seconds, last[n] = fit_seconds(name, data, args.epochs, n)
                times[n].append(round(seconds, 3))
        one, many = (statistics.median(times[n]) for n in times)
        same = all(np.array_equal(a, b) for a, b in zip(last[1], last[args.steps_per_execution]))
        results[name] = {"fit_seconds": {str(n): t for n, t in times.items()}, "ratio": round(many / one, 3),
                         "same_weights": same}
        print(f"{name:<10} steps_per_execution=1 {one:6.2f} s  ={args.steps_per_execution} {many:6.2f} s  "
              f"ratio {many / one:5.2f}  same weights: {same}", flush=True)
    payload = {"benchmark": "steps_per_execution", "epochs": args.epochs, "repeats": args.repeats,
               "steps_per_execution": args.steps_per_execution, "models": results, "environment": environment()}
    print(f"results: {write_json_atomic(args.out, payload, sort_keys=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
