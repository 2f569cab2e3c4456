"""Benchmarks: training and inference speed of registered models, with peers in the same run.

For each model: training samples/s and step time through the zoo's training
path (:mod:`zoo.training`), compile time (first epoch minus a steady one),
inference samples/s, parameters, MACs and model-FLOPs utilisation (MFU)
against a matmul peak measured on the same device and dtype. Mixed precision
(``mixed_float16``, ``mixed_bfloat16``), ``jit_compile``, ``steps_per_execution``
and the input path are options; the batch size is halved and retried on
out-of-memory. Runs on every Keras backend.

Peers measured in the same run (``peers``):
- ``keras``: the same architecture from keras.applications, where there is one;
- ``torch``: torchvision's model with ``torch.compile`` (needs PyTorch and a GPU).

Input paths (``input``):
- ``numpy``: float32 NumPy batches sent from the host every step;
- ``device``: uint8 images normalised inside the model
  (:func:`zoo.training.uint8_inputs`, 4x fewer bytes) and trained with
  ``fit(device_data=True)``: on JAX they stay on the accelerator
  (:class:`zoo.training.DeviceArrays`), on TensorFlow ``tf.data`` sends them.

Examples:
    zoo bench resnet50 --image-size 224 --batch-size 256 --precision mixed_bfloat16 --peers torch,keras
    python -m zoo.cli bench resnet18 --image-size 32 --batch-size 8 --steps 4 --epochs 2   # CPU smoke run
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import numpy as np

from zoo.runtime import environment, is_out_of_memory, resolve_precision, write_json_atomic
from zoo.utils import check_choice, check_int

# keras.applications names of the zoo's reference layouts
KERAS_PEERS = {"resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152",
               "densenet121": "DenseNet121", "densenet169": "DenseNet169", "densenet201": "DenseNet201",
               "vgg16": "VGG16", "vgg19": "VGG19"}
INPUTS = ("numpy", "device")

__all__ = ["PeerUnavailable", "matmul_peak_flops", "bench_keras", "bench_torch", "run", "write_csv", "plot",
           "speed_ratios"]


def _sync(x):
    """Block until ``x`` is computed (asynchronous backends)."""
    import keras

    if hasattr(x, "block_until_ready"):
        x.block_until_ready()
    return keras.ops.convert_to_numpy(x[:1, :1] if len(getattr(x, "shape", ())) >= 2 else x)


def matmul_peak_flops(dtype="float32", n=None, repeats=10):
    """Measured FLOP/s of a square matmul in ``dtype`` on the default device (the MFU reference)."""
    import keras

    from zoo.runtime import accelerator

    n = n or (8192 if accelerator()["platform"] != "cpu" else 2048)
    a = keras.random.normal((n, n), dtype=dtype, seed=0)
    b = keras.random.normal((n, n), dtype=dtype, seed=1)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        fn = jax.jit(lambda x, y: x @ y)
    else:  # TensorFlow's eager MatMul already calls the vendor kernel (oneDNN, cuBLAS)
        fn = keras.ops.matmul
    for _ in range(2):
        _sync(fn(a, b))
    # queue the products back to back and wait once: a wait (and a copy to the
    # host) after each one would count launch and transfer latency as matmul time
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            c = fn(a, b)
        _sync(c)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * n**3 / best


def _make_data(n, image_size, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, image_size, image_size, 3), dtype=np.uint8)
    y = rng.integers(0, num_classes, size=(n,)).astype("int32")
    return x, y


class PeerUnavailable(RuntimeError):
    """A peer that cannot run here (missing framework, device or model); recorded as skipped."""


def bench_keras(model_fn, *, label, image_size, batch_size, steps, epochs, precision, input_path, steps_per_execution=1,
                jit_compile="auto", num_classes=1000, inference=True):
    """Train a Keras model on random data for ``epochs`` x ``steps`` and time it.

    The first epoch includes tracing and compilation; throughput is the median
    of the later ones. Returns a dict of measurements.
    """
    import keras

    import zoo
    from zoo import training

    keras.backend.clear_session()
    with training.precision_policy(precision):
        model = model_fn()
        macs = zoo.profile(model).macs
        params = model.count_params()
        if input_path == "device":  # the wrapper too: its Rescaling then runs in the compute dtype
            model = training.uint8_inputs(model)
    x, y = _make_data(batch_size * steps, image_size, num_classes)
    if input_path != "device":
        x = x.astype("float32") / 255.0
    timer = training.EpochTimer()
    # the shared training path, as comparisons and searches use it (no shuffling, like the peers)
    training.fit(model, (x, y), epochs=epochs, batch_size=batch_size, seed=0, callbacks=[timer], verbose=0,
                 shuffle=False, device_data=input_path == "device", optimizer="momentum", learning_rate=0.01,
                 task="multiclass", metrics=[], jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    per_epoch = timer.seconds
    steady = float(np.median(per_epoch[1:])) if len(per_epoch) > 1 else per_epoch[0]
    result = {
        "label": label, "framework": f"keras-{keras.backend.backend()}", "input": input_path,
        "precision": training.resolve_precision(precision), "steps_per_execution": steps_per_execution,
        "jit_compile": str(jit_compile), "batch_size": batch_size, "image_size": image_size, "params": params,
        "macs": macs,
        "compile_seconds": max(0.0, per_epoch[0] - steady), "step_ms": steady / steps * 1e3,
        "train_samples_per_second": batch_size * steps / steady,
    }
    if inference:
        speed = zoo.measure_speed(model, batch_size=batch_size, iterations=5, warmup=2)
        result["inference_samples_per_second"] = speed["throughput"]
    return result


def bench_torch(arch, *, image_size, batch_size, steps, epochs, num_classes=1000, mode=None, precision="mixed_bfloat16"):
    """torchvision ``arch`` with ``torch.compile`` on CUDA, autocast to the precision's dtype.

    Raises:
        PeerUnavailable: without PyTorch, a GPU, or a torchvision model of that name.
    """
    try:
        import torch
        import torchvision
    except ImportError:
        raise PeerUnavailable("PyTorch/torchvision not installed") from None
    if not torch.cuda.is_available():
        raise PeerUnavailable("no CUDA device")
    if not hasattr(torchvision.models, arch):
        raise PeerUnavailable(f"torchvision has no {arch!r}")
    dev = "cuda"
    autocast = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(precision)
    model = getattr(torchvision.models, arch)(num_classes=num_classes).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = batch_size
    x8, y = _make_data(batch * steps, image_size, num_classes)
    x8 = torch.from_numpy(x8).to(dev).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(y).long().to(dev)

    def step(xb, yb):
        with torch.autocast("cuda", dtype=autocast) if autocast else contextlib.nullcontext():
            loss = loss_fn(model(xb.float().div_(255.0)), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    step = torch.compile(step, mode=mode)
    times = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(steps):
            step(x8[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    steady = float(np.median(times[1:])) if len(times) > 1 else times[0]
    return {"label": f"torchvision {arch} (torch.compile{', ' + mode if mode else ''})",
            "framework": f"torch-{torch.__version__}", "input": "device",
            "precision": f"autocast {autocast}" if autocast else "float32",
            "batch_size": batch, "image_size": image_size, "compile_seconds": max(0.0, times[0] - steady),
            "step_ms": steady / steps * 1e3, "train_samples_per_second": batch * steps / steady}


def _with_oom_retry(fn, batch_size, **kwargs):
    """Run ``fn(batch_size=...)``, halving the batch on out-of-memory until it fits."""
    while True:
        try:
            return fn(batch_size=batch_size, **kwargs)
        except Exception as e:  # noqa: BLE001 - only out-of-memory is retried
            if not is_out_of_memory(e) or batch_size <= 1:
                raise
            print(f"out of memory at batch size {batch_size}; retrying with {batch_size // 2}", flush=True)
            batch_size //= 2


def run(models, *, image_size=224, batch_size=64, steps=20, epochs=3, precision="float32", inputs=("device",),
        steps_per_execution=1, jit_compile="auto", peers=("keras",), num_classes=1000, zoo_kwargs=None,
        torch_mode=None, out=None):
    """Benchmark ``models`` (registry names) and their peers; returns the JSON payload (and writes ``out``).

    Arguments are checked, and every zoo model is built once with its
    arguments, before anything is timed. A measurement that fails for another
    reason than memory is recorded under ``failed`` and the run goes on.
    """
    import keras

    import zoo

    if isinstance(models, str):
        models = [models]
    if not models:
        raise ValueError(f"`models` must name at least one registered model. Received: models={models!r}")
    for name in models:
        zoo.get_card(name)
    precision = resolve_precision(precision)
    inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
    peers = tuple(p for p in peers.split(",") if p) if isinstance(peers, str) else tuple(peers)
    if not inputs:
        raise ValueError(f"`inputs` must name at least one of {INPUTS}. Received: inputs={inputs!r}")
    for inp in inputs:
        check_choice("input", inp, INPUTS)
    for peer in peers:
        check_choice("peers", peer, ("keras", "torch"))
    image_size, batch_size = check_int("image_size", image_size), check_int("batch_size", batch_size)
    steps, epochs = check_int("steps", steps), check_int("epochs", epochs)
    check_int("steps_per_execution", steps_per_execution)
    check_int("num_classes", num_classes, minimum=2)
    if jit_compile not in ("auto", True, False):
        raise ValueError(f"`jit_compile` must be 'auto', True or False. Received: jit_compile={jit_compile!r}")
    if not isinstance(zoo_kwargs or {}, dict):
        raise TypeError(f"`zoo_kwargs` must be a dict of builder arguments. Received: {zoo_kwargs!r}")

    def zoo_fn(name):
        return zoo.build(name, input_shape=(image_size, image_size, 3), num_classes=num_classes, **(zoo_kwargs or {}))

    for name in models:  # a builder refuses a bad size or argument here, before anything is timed
        zoo_fn(name)
        keras.backend.clear_session()
    common = dict(image_size=image_size, steps=steps, epochs=epochs, precision=precision,
                  steps_per_execution=steps_per_execution, jit_compile=jit_compile, num_classes=num_classes)
    compute_dtype = keras.DTypePolicy(precision).compute_dtype
    peak = matmul_peak_flops(compute_dtype)
    print(f"measured {compute_dtype} matmul peak: {peak / 1e12:.2f} TFLOP/s", flush=True)
    results, skipped, failed = [], [], []

    def skip(model, peer, reason):
        skipped.append({"model": model, "peer": peer, "reason": reason})
        print(f"{peer} peer of {model} skipped: {reason}", flush=True)

    def measure(what, fn, *args, model, peer=None, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PeerUnavailable as e:
            skip(model, peer, str(e))
            return None
        except Exception as e:  # noqa: BLE001 - one failed measurement must not lose the others
            failed.append({"label": what, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})
            print(f"{what} failed: {failed[-1]['error']}", flush=True)
            return None

    def report(r, model):
        if r is None:
            return
        r["model"] = model  # the registry name the measurement compares against
        if r.get("macs"):
            # training ~ 3x the forward pass (forward, input gradients, weight gradients)
            r["mfu"] = 3 * 2 * r["macs"] * r["train_samples_per_second"] / peak
        results.append(r)
        print(json.dumps(r), flush=True)

    for name in models:
        for inp in inputs:
            label = f"zoo {name}"
            report(measure(label, _with_oom_retry, bench_keras, batch_size, model=name,
                           model_fn=lambda n=name: zoo_fn(n), label=label, input_path=inp, **common), name)
        if "keras" in peers and name in KERAS_PEERS:
            app = getattr(keras.applications, KERAS_PEERS[name])

            def app_fn(app=app):
                return app(weights=None, input_shape=(image_size, image_size, 3), classes=num_classes)

            label = f"keras.applications {KERAS_PEERS[name]}"
            for inp in inputs:
                report(measure(label, _with_oom_retry, bench_keras, batch_size, model=name, model_fn=app_fn,
                               label=label, input_path=inp, **common), name)
        elif "keras" in peers:
            skip(name, "keras", f"keras.applications has no {name!r} (peers: {sorted(KERAS_PEERS)})")
        if "torch" in peers:
            report(measure(f"torchvision {name}", bench_torch, name, model=name, peer="torch", image_size=image_size,
                           batch_size=batch_size, steps=steps, epochs=epochs, num_classes=num_classes, mode=torch_mode,
                           precision=precision), name)
    payload = {"command": " ".join(sys.argv), "matmul_peak_flops": peak, "compute_dtype": compute_dtype,
               "environment": environment(), "results": results, "skipped": skipped, "failed": failed}
    if out:  # BASE.json, BASE.csv and BASE.png, whatever the extension given
        base = os.path.splitext(os.path.abspath(out))[0]
        write_json_atomic(base + ".json", payload, sort_keys=False)
        write_csv(payload, base + ".csv")
        if results:
            plot(payload, base + ".png")
    print(f"\n{'':<46} {'input':<7} {'train img/s':>12} {'ms/step':>9} {'compile s':>9} {'MFU':>6}")
    for r in results:
        mfu = f"{r['mfu']:.1%}" if "mfu" in r else "-"
        print(f"{r['label']:<46} {r['input']:<7} {r['train_samples_per_second']:>12.1f} {r['step_ms']:>9.2f} "
              f"{r['compile_seconds']:>9.1f} {mfu:>6}")
    return payload


def write_csv(payload, path):
    """One row per measurement, stamped with the device, backend and versions of the run."""
    import csv

    env = payload["environment"]
    host = env.get("host", {})
    stamp = {"device": host.get("device"), "cpu_count": host.get("cpu_count"), "backend": env.get("backend"),
             "versions": json.dumps(env.get("versions", {}), sort_keys=True),
             "matmul_peak_flops": payload["matmul_peak_flops"]}
    columns = sorted({k for r in payload["results"] for k in r})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["label", *[c for c in columns if c != "label"], *stamp])
        writer.writeheader()
        for r in payload["results"]:
            writer.writerow({**r, **stamp})
    return path


def speed_ratios(results):
    """Training samples/s of each result over its model's reference: the torch peer, else the first result."""
    reference = {}
    for r in results:
        if r["framework"].startswith("torch") or r["model"] not in reference:
            reference[r["model"]] = r["train_samples_per_second"]
    return [r["train_samples_per_second"] / reference[r["model"]] for r in results]


def plot(payload, path):
    """Bar chart of training samples/s per measurement, each bar labelled with its ratio to its reference.

    A measurement's reference is the torch.compile peer of the same model when
    there is one, else that model's first measurement. Returns ``path`` (a PNG).
    """
    from zoo.plots import figure, save

    results = payload["results"]
    ratios = speed_ratios(results)
    labels = [f"{r['label']} ({r['input']})" for r in results]
    values = [r["train_samples_per_second"] for r in results]
    fig = figure(width=7.5, height=1.2 + 0.45 * len(results))
    ax = fig.add_subplot()
    colors = ["tab:orange" if r["framework"].startswith("torch") else
              "tab:blue" if r["label"].startswith("zoo") else "tab:gray" for r in results]
    ax.barh(range(len(results)), values, color=colors)
    ax.set_yticks(range(len(results)), labels)
    ax.invert_yaxis()
    for i, v in enumerate(values):
        ax.annotate(f" {v:,.0f}  ({ratios[i]:.2f}x)", (v, i), va="center", fontsize=8)
    ax.set_xlim(0, max(values) * 1.3)
    ax.set_xlabel("training samples/s (higher is better)")
    env = payload["environment"]
    ax.set_title(f"{env['host'].get('device')}, Keras on {env['backend']}, {payload['compute_dtype']}, "
                 f"batch {results[0]['batch_size']}, {results[0]['image_size']} px", fontsize=9)
    return save(fig, path)
