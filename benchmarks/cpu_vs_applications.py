"""Training step time of zoo models vs their keras.applications equivalents, measured alternately.

    python benchmarks/cpu_vs_applications.py [--size 96] [--batch 8] [--steps 6] [--models resnet50,densenet121,vgg16]

Both models of a pair are compiled the same way (SGD with momentum, sparse
cross-entropy, the zoo's training helper) and trained on the same random
batch; after warm-up, steps alternate A, B, A, B, ... so that machine noise
hits both alike. Writes ``--out`` (e.g. benchmarks/results/cpu_vs_applications_<backend>.json).
"""

import argparse
import os
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import zoo  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402
from zoo import training  # noqa: E402

PAIRS = {"resnet50": "ResNet50", "densenet121": "DenseNet121", "vgg16": "VGG16", "resnet101": "ResNet101"}


def _compiled(model):
    training.compile_model(model, optimizer="momentum", learning_rate=0.01, task="multiclass", metrics=[])
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,densenet121,vgg16")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=6, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--out", required=True, help="JSON file for the results")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, args.size, args.size, 3)).astype("float32")
    y = rng.integers(0, args.num_classes, size=(args.batch,))
    rows = []
    for name in args.models.split(","):
        shape = (args.size, args.size, 3)
        ours = _compiled(zoo.build(name, input_shape=shape, num_classes=args.num_classes))
        theirs = _compiled(getattr(keras.applications, PAIRS[name])(weights=None, input_shape=shape,
                                                                    classes=args.num_classes))
        for _ in range(args.warmup):
            ours.train_on_batch(x, y)
            theirs.train_on_batch(x, y)
        times = {"zoo": [], "keras": []}
        for _ in range(args.steps):
            for key, model in (("zoo", ours), ("keras", theirs)):
                start = time.perf_counter()
                model.train_on_batch(x, y)
                times[key].append(time.perf_counter() - start)
        z, k = float(np.median(times["zoo"])), float(np.median(times["keras"]))
        row = {"model": name, "keras_application": PAIRS[name], "zoo_step_s": z, "keras_step_s": k,
               "ratio": z / k, "zoo_macs": zoo.profile(ours).macs, "keras_macs": zoo.profile(theirs).macs,
               "zoo_params": ours.count_params(), "keras_params": theirs.count_params()}
        rows.append(row)
        print(f"{name:<12} zoo {z * 1e3:8.1f} ms/step  keras.applications {k * 1e3:8.1f} ms/step  "
              f"ratio {row['ratio']:.3f}  (MACs zoo/keras {row['zoo_macs'] / row['keras_macs']:.3f})", flush=True)
        del ours, theirs
        keras.backend.clear_session()
    payload = {"command": " ".join(sys.argv), "size": args.size, "batch": args.batch, "steps": args.steps,
               "environment": environment(), "results": rows}
    write_json_atomic(args.out, payload, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
