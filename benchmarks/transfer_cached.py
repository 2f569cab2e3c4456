"""Per-epoch head training time: cached features vs running the frozen backbone every epoch.

    python benchmarks/transfer_cached.py [--model resnet20] [--width 0.5] [--n 2048] [--epochs 3]

Writes ``--out`` (e.g. benchmarks/results/transfer_cached_<backend>.json), with the machine, backend and versions.
"""

import argparse
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import zoo  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402
from zoo import training, transfer  # noqa: E402
from zoo.data import make_shapes  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--n", type=int, default=2048, help="training images")
    p.add_argument("--epochs", type=int, default=4, help="the first epoch (tracing) is not counted")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", required=True, help="JSON file for the results")
    args = p.parse_args(argv)
    classes = ("ring", "star", "ellipse", "crescent")
    x, y = make_shapes(classes=classes, samples_per_class=args.n // len(classes), image_size=args.size, seed=0)[:2]
    base = zoo.build(args.model, input_shape=(args.size, args.size, 3), width=args.width, num_classes=4)

    frozen = transfer.replace_head(base, 4)
    transfer.freeze(frozen)
    t1 = training.EpochTimer()
    training.fit(frozen, (x, y), epochs=args.epochs, batch_size=args.batch_size, verbose=0, callbacks=[t1])
    backbone_epoch = float(np.median(t1.seconds[1:]))

    cached = transfer.replace_head(base, 4)
    transfer.freeze(cached)
    t2 = training.EpochTimer()
    h = transfer.train_head_on_features(cached, (x, y), epochs=args.epochs, batch_size=args.batch_size, verbose=0,
                                        callbacks=[t2])
    cached_epoch = float(np.median(t2.seconds[1:]))
    result = {
        "model": args.model, "width": args.width, "size": args.size, "images": len(x), "batch_size": args.batch_size,
        "frozen_backbone_epoch_seconds": backbone_epoch, "cached_features_epoch_seconds": cached_epoch,
        "feature_extraction_seconds": h.feature_seconds, "speedup": backbone_epoch / cached_epoch,
        "command": " ".join(sys.argv), "environment": environment(),
    }
    write_json_atomic(args.out, result, sort_keys=False)
    print(f"{args.model} width {args.width}: frozen backbone {backbone_epoch:.3f} s/epoch, cached features "
          f"{cached_epoch:.4f} s/epoch (one-off extraction {h.feature_seconds:.2f} s): {result['speedup']:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
