"""Tutorial T5: transfer learning with a pretrained backbone (cats vs dogs, or an embedded stand-in).

The real recipe, when torchvision's ImageNet weights of ``--backbone`` (ResNet-18 by default; any
torchvision architecture of ``zoo weights list``: convnext_tiny, efficientnet_b0, swin_t ...) are in
the Keras cache (or downloadable) and TensorFlow Datasets' ``cats_vs_dogs`` is prepared locally: images at
160 px, normalised as the weights require, 10 % of the training images held out for
validation, the ImageNet head replaced by a 2-way one, trained with the backbone frozen,
then the last block fine-tuned (``--layer-decay 0.75`` lets every block learn, slower with depth). Otherwise (the usual case offline) the same recipe runs on
an embedded stand-in: a CIFAR ResNet pre-trained on four shapes is transferred to two
*other* shapes with only a few labelled images each, and compared with training from
scratch on the same budget. It prints which one it ran.

    python examples/t5_transfer.py          # full run (a few minutes on 2 cores)
    python examples/t5_transfer.py --backbone convnext_tiny --layer-decay 0.75
    python examples/t5_transfer.py --fast   # CI mode
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import zoo  # noqa: E402
from tuning.diagnosis import diagnose  # noqa: E402
from zoo import data, training, transfer  # noqa: E402


def pretrained_recipe(fast, out, name="resnet18", layer_decay=None):
    """ImageNet ``name`` -> cats vs dogs; ``None`` (and why) when the weights or the data are missing."""
    entry = zoo.weights.resolve(name, "torchvision")  # a model without torchvision weights fails here
    try:
        zoo.weights.fetch(entry)  # the cache first; offline this fails within a second
        bundle = data.load("tfds:cats_vs_dogs", image_size=160, channels=3, batch_size=32, validation_split=0.1,
                           test_split=0.1)
    except (zoo.weights.WeightsDownloadError, data.DatasetNotAvailableError) as e:
        return f"{str(e).splitlines()[0][:160]}..."
    print(f"recipe: ImageNet {name} ({entry['source']}:{entry['tag']}, top-1 {entry['top1']}%) -> "
          f"tfds:cats_vs_dogs at 160 px, {dict(bundle.num_examples)}")
    train, val, test = (zoo.weights.normalize_dataset(d, entry) for d in (bundle.train, bundle.validation, bundle.test))
    if fast:
        train, val, test = train.take(4), val.take(2), test.take(2)
    backbone = zoo.build(name, input_shape=bundle.input_shape, include_top=False)
    print(zoo.weights.load(backbone, "torchvision", card=zoo.get_card(name)))
    model = transfer.replace_head(backbone, bundle.num_classes, dropout=0.2)
    epochs = 1 if fast else 3
    decay = {} if layer_decay is None else {"layer_decay": layer_decay}
    result = transfer.fine_tune(model, train, val, head_epochs=epochs, unfreeze="all" if decay else "last_block",
                                ft_epochs=epochs, ft_lr=1e-4, min_steps=None if fast else 100, verbose=2, **decay)
    print(transfer.trainability(model))
    print(f"phases: {result.phases}; plot: {plot_phases(result, out)}")
    label, reason = diagnose(result.history)
    print(f"loss curves: {label} ({reason})")
    print(f"test accuracy: {model.evaluate(test, verbose=0, return_dict=True)['accuracy']:.3f}")
    return None


def target_data(size, per_class, fast):
    """Two held-out shapes, a few labelled images each (the stand-in for cats vs dogs)."""
    x, y = data.make_shapes(classes=("ring", "star"), samples_per_class=per_class + (60 if fast else 200),
                            image_size=size, seed=7)[:2]
    rng = np.random.default_rng(0)
    few = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in (0, 1)])
    rest = np.setdiff1d(np.arange(len(y)), few)
    return x[few], y[few], x[rest], y[rest], ("ring", "star")


def plot_phases(result, out):
    """Loss and accuracy over both phases, with the phase boundary marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(result.history[metric], label=f"train {metric}")
        if f"val_{metric}" in result.history:
            ax.plot(result.history[f"val_{metric}"], label=f"validation {metric}")
        for name, start, _ in result.phases[1:]:
            ax.axvline(start - 0.5, color="grey", linestyle="--")
            ax.text(start - 0.4, ax.get_ylim()[1], name, va="top", fontsize=8)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.suptitle("transfer (head only), then fine-tuning")
    path = os.path.join(out, "t5_phases.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="tiny budget for CI")
    p.add_argument("--out", default="runs/t5", help="folder for the plot")
    p.add_argument("--backbone", default="resnet18", help="a torchvision architecture (zoo weights list)")
    p.add_argument("--layer-decay", type=float, default=None, help="fine-tune every block, rates decaying with depth")
    args = p.parse_args(argv)
    why = pretrained_recipe(args.fast, args.out, args.backbone, args.layer_decay)
    if why is None:
        return 0
    print(f"recipe: embedded stand-in (ResNet-20 pre-trained on four shapes -> ring vs star), because {why}")
    size, width = (16, 0.25) if args.fast else (32, 0.5)
    epochs = 1 if args.fast else 8
    per_class = 10 if args.fast else 20

    # 1. a model trained on a similar task: ResNet-20 on four shapes
    xs, ys = data.make_shapes(classes=("circle", "square", "triangle", "cross"),
                              samples_per_class=50 if args.fast else 400, image_size=size, seed=1)[:2]
    base = zoo.build("resnet20", input_shape=(size, size, 3), num_classes=4, width=width)
    training.fit(base, (xs, ys), epochs=epochs, batch_size=32, learning_rate=3e-3, verbose=2)

    # 2-4. load its layers, freeze them, put a new head on top
    x, y, xt, yt, names = target_data(size, per_class, args.fast)
    model = transfer.replace_head(base, len(names), dropout=0.2)
    # 5. train the head (transfer learning), then the last block too (fine-tuning)
    result = transfer.fine_tune(model, (x, y), None, head_epochs=epochs * 2, head_lr=3e-3, unfreeze=1,
                                ft_epochs=epochs, ft_lr=3e-4, batch_size=16, min_steps=None if args.fast else 100,
                                verbose=0)
    print(transfer.trainability(model))
    transfer_acc = model.evaluate(xt, yt, verbose=0)[1]

    scratch = zoo.build("resnet20", input_shape=(size, size, 3), num_classes=len(names), width=width)
    training.fit(scratch, (x, y), epochs=epochs * 3, batch_size=16, learning_rate=3e-3, verbose=0)
    scratch_acc = scratch.evaluate(xt, yt, verbose=0)[1]
    print(f"phases: {result.phases}")
    label, reason = diagnose(result.history)
    print(f"loss curves: {label} ({reason})")
    print(f"plot: {plot_phases(result, args.out)}")
    print(f"test accuracy with {len(y)} labelled images: transfer {transfer_acc:.3f}, from scratch {scratch_acc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
