"""Tuning overhead: the time a search spends outside ``model.fit``, as a fraction of trial time.

Runs a small search and reads its records: ``fit_seconds`` is ``model.fit``
(training plus its per-epoch validation), ``trial_seconds`` the whole trial as
the tuner sees it (build, profile, fit, evaluation, latency/throughput timing,
clean-up, record write), and the search's wall clock adds the oracle's work
between trials and the start-up (space declaration, manifest, resume replay).
Goal: at most 5 % of a trial outside ``model.fit``.

The same search also runs through stock KerasTuner (``keras_tuner.RandomSearch``
on a HyperModel that builds and compiles the same model, ``model.fit`` on the
same data, epochs and batch size; a Keras callback times ``fit`` and the
tuner's ``on_trial_begin``/``on_trial_end`` the trial), in the same process
run, so that both shares and the ratio of the two searches' wall clocks come
from one run on one machine state.

Run:
    python benchmarks/tuning_overhead.py --out /tmp/tuning_overhead.json   # convnet, 32x32 digits, 3 trials of 5 and 12 epochs
    python benchmarks/tuning_overhead.py --fast --out /tmp/t.json           # a tiny check (seconds, not representative)

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

import tuning  # noqa: E402
import zoo.data  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402
from zoo.training import TrainingConfig  # noqa: E402

GOAL = 0.05


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def run(*, model, data_name, image_size, trials, epochs, measure_speed, seed=0):
    data = zoo.data.load(data_name, image_size=image_size) if image_size else zoo.data.load(data_name)
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        result = tuning.search(model, data=data, budget=trials, training=TrainingConfig(epochs=epochs),
                               directory=directory, seed=seed,
                               space=tuning.SearchSpace(training={"optimizer": ("adam",), "schedule": ("constant",)}),
                               options=tuning.RunOptions(measure_speed=measure_speed, report=False))
        wall = time.perf_counter() - start
    done = [r for r in result.records if r.get("fit_seconds")]
    fit = sum(r["fit_seconds"] for r in done)
    trial = sum(r["trial_seconds"] for r in done)
    phases = {}
    for r in done:
        timings = r.get("timings") or {}
        other = r["trial_seconds"] - sum(timings.values())
        for name, seconds in {**timings, "other (clean-up, record write, tuner)": other}.items():
            phases.setdefault(name, []).append(seconds)
    per_trial = [(r["trial_seconds"] - r["fit_seconds"]) / r["trial_seconds"] for r in done]
    return {
        "config": {"model": model, "data": data_name, "image_size": image_size, "trials": trials, "epochs": epochs,
                   "measure_speed": measure_speed},
        "trials_completed": len(done),
        "trials_saved": sum("save" in (r.get("timings") or {}) for r in done),  # those on the front as they ended
        "search_wall_seconds": wall,
        "sum_fit_seconds": fit,
        "sum_trial_seconds": trial,
        "mean_fit_seconds": fit / max(1, len(done)),
        "overhead_fraction_per_trial": trial and (trial - fit) / trial,
        "overhead_fraction_per_trial_mean": _mean(per_trial),
        "overhead_fraction_of_search": wall and (wall - fit) / wall,
        "search_outside_trials_seconds": wall - trial,
        # per trial: a phase some trials skip (a copied speed, a model not saved) counts 0 s in those
        "phase_seconds_mean": {k: sum(v) / len(done) for k, v in phases.items()} if done else {},
        "goal": GOAL,
        "meets_goal": bool(trial and (trial - fit) / trial <= GOAL),
    }


def stock(*, model, data_name, image_size, trials, epochs, seed=0):
    """The same search through unmodified KerasTuner: its share of trial time outside ``model.fit``."""
    import keras
    import keras_tuner as kt

    data = zoo.data.load(data_name, image_size=image_size) if image_size else zoo.data.load(data_name)
    fits, spans = [], {}

    class FitTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_train_end(self, logs=None):
            fits.append(time.perf_counter() - self.start)

    class TimedSearch(kt.RandomSearch):  # timing only: KerasTuner's own trial loop is unchanged
        def on_trial_begin(self, trial):
            spans[trial.trial_id] = time.perf_counter()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            spans[trial.trial_id] = time.perf_counter() - spans[trial.trial_id]

    def build(hp):
        net = zoo.build(model, input_shape=data.input_shape, num_classes=data.num_classes,
                        dropout=hp.Choice("dropout", [0.0, 0.1, 0.2]))
        net.compile(optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")),
                    loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])  # softmax outputs
        return net

    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        tuner = TimedSearch(build, objective="val_accuracy", max_trials=trials, seed=seed + 1, directory=directory,
                            project_name="stock", overwrite=True)
        tuner.search(data.train, validation_data=data.validation, epochs=epochs, callbacks=[FitTimer()], verbose=0)
        wall = time.perf_counter() - start
    fit, trial = sum(fits), sum(spans.values())
    return {"trials": len(fits), "search_wall_seconds": wall, "sum_fit_seconds": fit, "sum_trial_seconds": trial,
            "overhead_fraction_per_trial": trial and (trial - fit) / trial}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny run: checks the script, not the goal")
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, nargs="+", default=[5, 12], help="one search per value")
    parser.add_argument("--no-speed", action="store_true", help="skip latency/throughput timing")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.fast:
        args.model, args.data, args.image_size, args.trials, args.epochs = "mlp", "moons", None, 2, [1]
    results = [run(model=args.model, data_name=args.data, image_size=args.image_size, trials=args.trials,
                   epochs=epochs, measure_speed=not args.no_speed) for epochs in args.epochs]
    payload = {"benchmark": "tuning_overhead", "environment": environment(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": results}
    for r, epochs in zip(results, args.epochs):
        r["stock_keras_tuner"] = stock(model=args.model, data_name=args.data, image_size=args.image_size,
                                       trials=args.trials, epochs=epochs)
        r["wall_ratio_vs_stock"] = r["search_wall_seconds"] / r["stock_keras_tuner"]["search_wall_seconds"]
    if args.out:
        write_json_atomic(args.out, payload, sort_keys=False)
    print()
    for r in results:
        outside = r["sum_trial_seconds"] - r["sum_fit_seconds"]
        print(f"{r['config']['epochs']} epochs, {r['trials_completed']} trials, "
              f"mean fit {r['mean_fit_seconds']:.1f} s: "
              f"{100 * r['overhead_fraction_per_trial']:.1f}% of trial time outside model.fit "
              f"({outside / max(1, r['trials_completed']):.2f} s per trial; goal <= {100 * GOAL:.0f}%: "
              f"{'met' if r['meets_goal'] else 'NOT met'}); {100 * r['overhead_fraction_of_search']:.1f}% of "
              f"the whole search incl. start-up")
        print("  mean seconds per phase and trial: "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["phase_seconds_mean"].items())
              + f"; models written: {r['trials_saved']} of {r['trials_completed']}")
        k = r["stock_keras_tuner"]
        print(f"  stock KerasTuner on the same search: {100 * k['overhead_fraction_per_trial']:.1f}% of trial time "
              f"outside model.fit; wall clock zoo/stock = {r['wall_ratio_vs_stock']:.2f}")
    if args.out:
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
