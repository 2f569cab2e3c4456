"""Data-parallel training throughput: samples/s of ``zoo.training.fit`` with 1 and N local devices.

    python benchmarks/data_parallel.py --out benchmarks/results/data_parallel_cpu.json
    python benchmarks/data_parallel.py --backends jax --devices 1,2,4,8 --out ...   # on a multi-GPU machine

Each (backend, device count) runs in a fresh process: the device count of a CPU is fixed before the framework
starts (``ZOO_VIRTUAL_CPUS``), and each backend needs its own process. Without accelerators the host CPU is split
into virtual devices, which share its cores: the figure says what the distribution costs, not a speed-up. With
accelerators the real devices are used (``ZOO_VIRTUAL_CPUS`` unset). Per run: a warm-up epoch (tracing), then the
steady epochs' samples/s, the median of ``--repeats`` epochs; resnet20 at 32x32 with a global batch of 128.
Results go to ``--out`` with the machine, the backend and the versions.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def child(devices, model_name, batch, steps, repeats):
    """One measurement in this process (its device count fixed by the parent's environment)."""
    import numpy as np

    import zoo
    from zoo import training
    from zoo.runtime import environment

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * steps, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, batch * steps)
    model = zoo.build(model_name, input_shape=(32, 32, 3), num_classes=10)
    timer = training.EpochTimer()
    training.fit(model, (x, y), epochs=1 + repeats, batch_size=batch, verbose=0, devices=devices,
                 callbacks=[timer], optimizer="momentum", learning_rate=0.05)
    steady = sorted(timer.seconds[1:])
    median = steady[len(steady) // 2]
    return {"devices": devices, "model": model_name, "global_batch": batch, "steps_per_epoch": steps,
            "samples_per_second": round(batch * steps / median, 1), "first_epoch_seconds": round(timer.seconds[0], 2),
            "epoch_seconds": [round(s, 3) for s in timer.seconds[1:]], "environment": environment()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--devices", default="1,2", help="device counts, e.g. 1,2")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="batches per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="steady epochs measured")
    parser.add_argument("--out", required=True)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.model, args.batch, args.steps, args.repeats)))
        return
    from zoo.runtime import write_json_atomic

    counts = [int(n) for n in args.devices.split(",")]
    runs = []
    for backend in args.backends.split(","):
        for count in counts:
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
            accelerated = _has_accelerators(env)
            if not accelerated:
                env["ZOO_VIRTUAL_CPUS"] = str(max(counts))  # the same split for every count: only N differs
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--child", str(count), "--model", args.model,
                                   "--batch", str(args.batch), "--steps", str(args.steps),
                                   "--repeats", str(args.repeats), "--out", args.out],
                                  env=env, capture_output=True, text=True, cwd=ROOT)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not lines:
                runs.append({"backend": backend, "devices": count, "error": proc.stderr[-2000:]})
                print(f"{backend} devices={count}: failed\n{proc.stderr[-2000:]}", flush=True)
                continue
            run = {"backend": backend, "virtual_cpus": not accelerated, **json.loads(lines[-1][len("RESULT "):]),
                   "wall_seconds": round(time.perf_counter() - start, 1)}
            runs.append(run)
            print(f"{backend} devices={count}: {run['samples_per_second']} samples/s "
                  f"(first epoch {run['first_epoch_seconds']} s)", flush=True)
    for backend in args.backends.split(","):
        base = next((r for r in runs if r["backend"] == backend and r.get("devices") == 1 and "error" not in r), None)
        for r in runs:
            if base and r["backend"] == backend and "error" not in r:
                r["relative_to_1_device"] = round(r["samples_per_second"] / base["samples_per_second"], 2)
    write_json_atomic(args.out, {"benchmark": "data_parallel", "load_average": os.getloadavg(), "runs": runs})
    print(f"wrote {args.out}")


def _has_accelerators(env):
    """Whether the backend sees GPUs/TPUs (then the real devices are used), asked in a throwaway process."""
    probe = ("import keras, sys\nb = keras.backend.backend()\n"
             "if b == 'jax':\n import jax; n = len([d for d in jax.devices() if d.platform != 'cpu'])\n"
             "else:\n import tensorflow as tf; n = len(tf.config.list_physical_devices('GPU'))\nprint(n)")
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    try:
        return int(proc.stdout.strip().splitlines()[-1]) > 0
    except (ValueError, IndexError):
        return False


if __name__ == "__main__":
    main()
