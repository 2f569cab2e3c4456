"""Search a few small architectures on embedded data; print the best trial and the Pareto front.

Every trial is recorded (size, accuracy, time) in ``<directory>/records.jsonl``;
rerunning the same command resumes the search instead of starting over.

Run:
    python examples/tuning_search.py --fast      # CI mode: two tiny architectures, < 60 s
    python examples/tuning_search.py             # more architectures and trials, Bayesian search
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tuning  # noqa: E402
import zoo.data  # noqa: E402
from zoo.training import TrainingConfig  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="CI mode: tiny models, few trials (< 60 s)")
    parser.add_argument("--out", "--directory", dest="directory", default=None,
                        help="search directory: records, manifest, report (default runs/example_tuning[_fast])")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.fast:
        data = zoo.data.load("digits", image_size=16, batch_size=32)
        models, algorithm, epochs = ["convnet", "alexnet_cifar"], "random", 2
        budget = tuning.Budget(max_trials=4, max_seconds=30)
        space = tuning.SearchSpace(tiny=True, training=tuning.TrainingSpace(
            optimizer=("adam",), learning_rate=(2e-3, 2e-2), default_learning_rate=5e-3, schedule=("constant",)))
    else:
        data = zoo.data.load("digits", image_size=32)
        models, algorithm, epochs = ["convnet", "resnet20", "alexnet_cifar", "lenet5_modern"], "bayesian", 5
        budget = tuning.Budget(max_trials=16)
        space = tuning.SearchSpace(training=tuning.TrainingSpace(
            optimizer=("adam", "momentum"), augmentation=(None, "light"), augmentation_flip=None))
    directory = args.directory or ("runs/example_tuning_fast" if args.fast else "runs/example_tuning")
    result = tuning.search(
        models, data=data, objectives="val_accuracy", training=TrainingConfig(epochs=epochs), space=space,
        algorithm=algorithm, budget=budget, constraints={"max_params": 500_000}, seed=0, directory=directory,
        options=tuning.RunOptions(resume=not args.overwrite),
    )

    front = result.pareto(minimize=("params", "latency_ms"))
    print(f"\nPareto front: val_accuracy (max) vs params and batch-1 latency (min), {len(front)} of "
          f"{len(result.records)} trials")
    print(f"{'trial':>5}  {'model':<16} {'val_acc':>8} {'params':>9} {'latency ms':>10} {'fit s':>7}")
    for r in sorted(front, key=lambda r: r["params"]):
        print(f"{r['id']:>5}  {r['model']:<16} {r['val_accuracy']:>8.3f} {r['params']:>9,} "
              f"{r['latency_ms']:>10.2f} {r['fit_seconds']:>7.1f}")
    knee = result.knee(minimize=("params", "latency_ms"))
    if knee:
        print(f"knee point: trial {knee['id']} ({knee['model']}), val_accuracy={knee['val_accuracy']:.3f}, "
              f"params={knee['params']:,}")
    small = result.best_under(max_params=20_000)
    if small:
        print(f"best under 20k parameters: trial {small['id']} ({small['model']}), "
              f"val_accuracy={small['val_accuracy']:.3f}")
    if result.report:
        print(f"report: {os.path.join(directory, 'report')}")
    print(f"done in {time.perf_counter() - start:.1f} s; records in {os.path.join(directory, 'records.jsonl')}")
    return 0 if result.completed else 1


if __name__ == "__main__":
    sys.exit(main())
