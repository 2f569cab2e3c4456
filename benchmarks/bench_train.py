"""Training throughput: zoo models through the zoo's training path vs peers.

Runs on every Keras backend. Peers measured in the same run:
- ``keras``: the same architecture from keras.applications (when it has one);
- ``torch``: torchvision's model with ``torch.compile`` (when PyTorch and a GPU are there).

Input paths for the Keras side (``--input``):
- ``numpy``: float32 NumPy batches fed from the host every step (what a plain ``fit`` does);
- ``device``: uint8 images put on the accelerator once, normalised inside the model
  (``zoo.training.uint8_inputs``), sliced on device each step.

Examples:
    python benchmarks/bench_train.py --models resnet50 --size 224 --batch 256 \
        --precision mixed_bfloat16 --input device --steps-per-execution 10 --peers torch
    python benchmarks/bench_train.py --models resnet18 --size 32 --batch 8 --steps 5 --peers keras  # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# keras.applications names of the zoo's reference layouts
KERAS_PEERS = {"resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152",
               "densenet121": "DenseNet121", "densenet169": "DenseNet169", "vgg16": "VGG16", "vgg19": "VGG19"}


def _make_data(n, size, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, num_classes, size=(n,)).astype("int32")
    return x, y


def _to_device(x):
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.device_put(x)
    return x


class _StepTimer:
    def __init__(self):
        import keras

        class CB(keras.callbacks.Callback):
            def on_train_begin(cb, logs=None):
                cb.epochs = []

            def on_epoch_begin(cb, epoch, logs=None):
                cb._t = time.perf_counter()

            def on_epoch_end(cb, epoch, logs=None):
                cb.epochs.append(time.perf_counter() - cb._t)

        self.callback = CB()


def bench_keras(model_fn, *, label, size, batch, steps, epochs, precision, input_path, spe, jit, num_classes):
    import keras

    from zoo import training

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision)
    model = model_fn()
    if input_path == "device":
        model = training.uint8_inputs(model)
    training.compile_model(model, optimizer="momentum", learning_rate=0.01, task="multiclass",
                           jit_compile=jit, steps_per_execution=spe, metrics=[])
    n = batch * steps
    x, y = _make_data(n, size, num_classes)
    if input_path == "device":
        x, y = _to_device(x), _to_device(y)
    else:
        x = (x.astype("float32") / 255.0)
    timer = _StepTimer()
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer.callback])
    total = time.perf_counter() - start
    per_epoch = timer.callback.epochs
    steady = float(np.median(per_epoch[1:])) if len(per_epoch) > 1 else per_epoch[0]
    keras.mixed_precision.set_global_policy("float32")
    return {
        "label": label, "framework": f"keras-{keras.backend.backend()}", "input": input_path,
        "precision": precision, "steps_per_execution": spe, "batch": batch, "size": size,
        "first_epoch_seconds": per_epoch[0], "step_ms": steady / steps * 1e3,
        "images_per_second": batch * steps / steady, "total_seconds": total,
    }


def bench_torch(arch, *, size, batch, steps, epochs, num_classes):
    try:
        import torch
        import torchvision
    except ImportError:
        print("torch peer skipped: PyTorch/torchvision not installed", flush=True)
        return None
    if not torch.cuda.is_available():
        print("torch peer skipped: no CUDA device", flush=True)
        return None
    dev = "cuda"
    model = getattr(torchvision.models, arch)(num_classes=num_classes).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x8, y = _make_data(batch * steps, size, num_classes)
    x8 = torch.from_numpy(x8).to(dev).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(y).long().to(dev)

    def step(xb, yb):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(xb.float().div_(255.0))
            loss = loss_fn(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    step = torch.compile(step)
    times = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(steps):
            step(x8[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    steady = float(np.median(times[1:]))
    return {"label": f"torchvision {arch} (torch.compile)", "framework": f"torch-{torch.__version__}",
            "input": "device", "precision": "bf16 autocast", "batch": batch, "size": size,
            "first_epoch_seconds": times[0], "step_ms": steady / steps * 1e3,
            "images_per_second": batch * steps / steady}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50", help="comma-separated zoo names")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=20, help="steps per epoch")
    p.add_argument("--epochs", type=int, default=3, help="the first is warm-up (compilation)")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_float16", "mixed_bfloat16"])
    p.add_argument("--input", default="device", choices=["numpy", "device", "both"])
    p.add_argument("--steps-per-execution", type=int, default=1)
    p.add_argument("--jit", default="auto")
    p.add_argument("--peers", default="keras", help="comma-separated: keras, torch, none")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--zoo-kwargs", default="{}", help='JSON builder arguments, e.g. \'{"stem": "imagenet"}\'')
    p.add_argument("--out", default=None, help="JSON file for the results")
    args = p.parse_args(argv)

    import keras

    import zoo
    from tuning.records import environment

    jit = {"auto": "auto", "true": True, "false": False}[str(args.jit).lower()]
    inputs = ["numpy", "device"] if args.input == "both" else [args.input]
    peers = [s for s in args.peers.split(",") if s and s != "none"]
    common = dict(size=args.size, batch=args.batch, steps=args.steps, epochs=args.epochs,
                  precision=args.precision, spe=args.steps_per_execution, jit=jit, num_classes=args.num_classes)
    results = []
    for name in args.models.split(","):
        def zoo_fn(name=name):
            return zoo.build(name, input_shape=(args.size, args.size, 3), num_classes=args.num_classes,
                             **json.loads(args.zoo_kwargs))

        for inp in inputs:
            results.append(bench_keras(zoo_fn, label=f"zoo {name}", input_path=inp, **common))
            print(json.dumps(results[-1]), flush=True)
        if "keras" in peers and name in KERAS_PEERS:
            app = getattr(keras.applications, KERAS_PEERS[name])

            def app_fn(app=app):
                return app(weights=None, input_shape=(args.size, args.size, 3), classes=args.num_classes)

            for inp in inputs:
                results.append(bench_keras(app_fn, label=f"keras.applications {KERAS_PEERS[name]}", input_path=inp,
                                           **common))
                print(json.dumps(results[-1]), flush=True)
        if "torch" in peers:
            r = bench_torch(name, size=args.size, batch=args.batch, steps=args.steps, epochs=args.epochs,
                            num_classes=args.num_classes)
            if r:
                results.append(r)
                print(json.dumps(r), flush=True)
    env = environment()
    payload = {"command": " ".join(sys.argv), "environment": env, "results": results}
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(payload, f, indent=2)
    for r in results:
        print(f"{r['label']:<44} {r['input']:<7} {r['precision']:<15} {r['images_per_second']:>10.1f} img/s "
              f"{r['step_ms']:>9.2f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
