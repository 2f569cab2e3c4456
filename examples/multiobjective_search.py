"""Search for the accuracy/size trade-off itself: NSGA-II over KerasTuner's space, with median pruning.

The search keeps its objectives apart (no weighted sum) and evolves trials towards
their Pareto front; a constraint bounds the model size, and trials that trail the
median at the same epoch stop early (``pruned``, never ranked). Every trial is a
record in ``<out>/records.jsonl``; rerunning the command continues the same
evolution. The report (``<out>/report/report.html``) shows the front, the
hypervolume history, parallel coordinates, hyperparameter importance and slices.

Run:
    python examples/multiobjective_search.py --fast     # CI mode: a tiny MLP on moons, 6 trials, < 60 s
    python examples/multiobjective_search.py            # convnet on digits, 40 trials
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
from tuning.searches.pruning import MedianPruner  # noqa: E402
from zoo.training import TrainingConfig  # noqa: E402

OBJECTIVES = [("val_accuracy", "max"), ("params", "min")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="CI mode: a tiny search (< 60 s)")
    parser.add_argument("--out", default=None, help="search directory (default runs/example_multiobjective[_fast])")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of continuing")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.fast:
        data = zoo.data.load("moons", num_samples=400)
        models, trials, population, epochs, max_params = "mlp", 6, 3, 3, 10_000
        space = tuning.SearchSpace(training={"optimizer": ("adam",), "schedule": ("constant",), "weight_decay": (0.0,)})
    else:
        data = zoo.data.load("digits", image_size=16)
        models, trials, population, epochs, max_params = "convnet", 40, 8, 4, 200_000
        space = tuning.SearchSpace(training={"optimizer": ("adam",)})
    directory = args.out or ("runs/example_multiobjective_fast" if args.fast else "runs/example_multiobjective")
    # The algorithm holds its own settings: NSGA-II's generation size and its pruner.
    algorithm = tuning.NSGA2(population_size=population, pruning=MedianPruner(min_trials=3, warmup_epochs=1))
    result = tuning.search(models, data=data, objectives=OBJECTIVES, training=TrainingConfig(epochs=epochs),
                           space=space, algorithm=algorithm, budget=trials, constraints={"max_params": max_params},
                           seed=0, directory=directory, options=tuning.RunOptions(resume=not args.overwrite))

    front = sorted(result.pareto(), key=lambda r: r["params"])  # over the search's own objectives
    reference = result.default_reference()
    print(f"\nPareto front of {len(result.records)} trials ({len(result.completed)} completed, "
          f"{len(result.infeasible)} over the size bound, {len(result.pruned)} pruned): val_accuracy (max) vs params")
    for r in front:
        print(f"  trial {r['id']}  val_accuracy={r['val_accuracy']:.3f}  params={r['params']:,}")
    print(f"hypervolume {result.hypervolume():.4g} (reference point val_accuracy={reference[0]:g}, "
          f"params={reference[1]:,.0f})")
    if result.report:
        print(f"report: {os.path.join(directory, 'report', 'report.html')}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0 if result.completed else 1


if __name__ == "__main__":
    sys.exit(main())
