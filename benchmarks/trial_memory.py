"""Memory over consecutive trials: the search process's RSS after each trial, in-process and isolated.

A thread samples the process's resident memory (``/proc/self/status``) and
notes it each time a record is appended to ``records.jsonl``; the growth per
trial is the slope of a least-squares line through trials 10 to N (the first
trials load libraries and fill caches). ``--isolation process`` runs each
trial in its own worker (:mod:`tuning.isolation`), so the search process
should stay flat whatever the trials leak. ``--bare`` measures plain Keras
(build, compile, fit, evaluate, ``keras.backend.clear_session()``) with no zoo
or KerasTuner code at all, to show where in-process growth comes from; ``--released`` wraps each of those fits
in :func:`zoo.runtime.released_graphs`, as every trial is.

Run:
    python benchmarks/trial_memory.py --trials 100 --out /tmp/trial_memory.json
    python benchmarks/trial_memory.py --trials 100 --isolation process --out /tmp/trial_memory_iso.json
    python benchmarks/trial_memory.py --trials 100 --bare --out /tmp/trial_memory_bare.json
    python benchmarks/trial_memory.py --trials 100 --bare --released --out /tmp/trial_memory_bare_released.json

Results (RSS per trial, slope, machine, backend and versions) go to ``--out`` only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.runtime import environment, write_json_atomic  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def slope(values, skip=10) -> float:
    """MB per trial: the least-squares slope over trials ``skip + 1`` to N."""
    tail = values[skip:] if len(values) > skip + 2 else values
    return float(np.polyfit(np.arange(len(tail)), tail, 1)[0])


def search_rss(trials, isolation):
    import tuning
    import zoo.data
    from zoo.training import TrainingConfig

    data = zoo.data.load("moons", num_samples=400)
    samples, stop = [], threading.Event()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "records.jsonl")

        def watch():
            seen = 0
            while not stop.is_set():
                count = open(path, "rb").read().count(b"\n") if os.path.exists(path) else 0
                if count > seen:
                    samples.extend([rss_mb()] * (count - seen))
                    seen = count
                time.sleep(0.05)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        start = time.perf_counter()
        tuning.search("mlp", data=data, directory=directory, budget=trials, training=TrainingConfig(epochs=2), seed=0,
                      options=tuning.RunOptions(report=False, save_models=None, checkpoint=False, measure_speed=False,
                                                verbose=0, isolation=isolation))
        seconds = time.perf_counter() - start
        time.sleep(0.2)
        stop.set()
        thread.join()
    return samples, seconds


def bare_rss(trials, released=False):
    """Plain Keras fits one after another; with ``released`` each inside :func:`zoo.runtime.released_graphs`."""
    import contextlib

    import keras

    from zoo.runtime import released_graphs

    rng = np.random.default_rng(0)
    x = rng.random((320, 2), dtype="float32")
    y = (x[:, 0] > 0.5).astype("int32")

    def fit():
        inputs = keras.Input((2,))
        model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(32, activation="relu")(inputs)))
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        model.fit(x, y, epochs=2, batch_size=32, validation_data=(x, y), verbose=0)
        model.evaluate(x, y, verbose=0)

    samples, start = [], time.perf_counter()
    for _ in range(trials):
        with released_graphs() if released else contextlib.nullcontext():
            fit()
        keras.backend.clear_session()
        samples.append(rss_mb())
    return samples, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--isolation", choices=("process",), default=None)
    parser.add_argument("--bare", action="store_true", help="plain Keras fits, no zoo or KerasTuner")
    parser.add_argument("--released", action="store_true",
                        help="with --bare: each fit inside zoo.runtime.released_graphs (as a trial is)")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.bare:
        samples, seconds = bare_rss(args.trials, released=args.released)
        mode = "bare keras" + (", released_graphs" if args.released else "")
    else:
        samples, seconds = search_rss(args.trials, args.isolation)
        mode = f"search, isolation={args.isolation}"
    result = {
        "benchmark": "trial_memory", "mode": mode, "trials": len(samples), "seconds": seconds,
        "rss_mb": [round(v, 1) for v in samples], "mb_per_trial": slope(samples),
        "first_mb": samples[0] if samples else None, "last_mb": samples[-1] if samples else None,
        "environment": environment(),
    }
    write_json_atomic(args.out, result, sort_keys=False)
    print(f"{mode}: {len(samples)} trials in {seconds:.0f} s, RSS {result['first_mb']:.0f} -> "
          f"{result['last_mb']:.0f} MB, {result['mb_per_trial']:.2f} MB per trial -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
