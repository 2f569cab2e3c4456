"""T3: multi-class classification of 2-D points with a multi-layer perceptron.

Three interleaved spirals (or Gaussian blobs with ``--data blobs``): a softmax
output with one unit per class and the (sparse) categorical cross-entropy.
Spirals need a deeper/wider network than blobs; ``--hidden`` lets you see
under- and overfitting happen. Saves the decision regions, the confusion matrix
and the loss curves as PNG and prints the loss-curve diagnosis.

Run:
    python examples/t3_multiclass.py [--data spirals|blobs]   # about 40 s on 2 CPU cores
    python examples/t3_multiclass.py --fast                   # a few seconds (CI)
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="spirals", choices=("spirals", "blobs"))
    parser.add_argument("--classes", type=int, default=3, help="number of classes (default 3)")
    parser.add_argument("--hidden", default="64,64,64", help="hidden layer widths (default 64,64,64)")
    parser.add_argument("--fast", action="store_true", help="fewer epochs (CI)")
    parser.add_argument("--out", default="runs/examples/t3", help="folder for the plots")
    args = parser.parse_args(argv)

    import numpy as np

    import zoo
    import zoo.data
    from tuning.diagnosis import diagnose
    from tuning.report import confusion_matrix, plot_confusion_matrix, plot_curves
    from zoo import training

    data = zoo.data.load(args.data, num_classes=args.classes, seed=0)
    (x, y), (xv, yv), (xt, yt) = (data.arrays(s) for s in ("train", "validation", "test"))
    print(f"Data: {args.data}, {data.num_classes} classes, {len(x)} training / {len(xv)} validation / "
          f"{len(xt)} test points")
    hidden = tuple(int(h) for h in args.hidden.split(","))
    model = zoo.build("mlp", input_shape=data.input_shape, num_classes=data.num_classes, hidden_units=hidden)
    epochs = 30 if args.fast else 200
    history = training.fit(model, (x, y), (xv, yv), epochs=epochs, batch_size=32, optimizer="adam",
                           learning_rate=3e-3, seed=0, verbose=0)
    test = model.evaluate(xt, yt, verbose=0, return_dict=True)
    pred = model.predict(xt, verbose=0).argmax(axis=1)
    label, reason = diagnose(history.history, num_classes=data.num_classes)
    print(f"MLP {hidden}: {model.count_params():,} parameters, {epochs} epochs, test accuracy "
          f"{test['accuracy']:.3f}; loss curves: {label}: {reason}")

    os.makedirs(args.out, exist_ok=True)
    from matplotlib.figure import Figure

    pad = 0.2
    (x0, y0), (x1, y1) = x.min(axis=0) - pad, x.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, 250), np.linspace(y0, y1, 250))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype("float32")
    regions = model.predict(grid, verbose=0, batch_size=8192).argmax(axis=1).reshape(gx.shape)
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.add_subplot()
    ax.contourf(gx, gy, regions, levels=np.arange(data.num_classes + 1) - 0.5, cmap="tab10", alpha=0.3,
                vmin=0, vmax=9)
    ax.scatter(xt[:, 0], xt[:, 1], c=yt, cmap="tab10", vmin=0, vmax=9, s=10, edgecolors="black", linewidths=0.2)
    ax.set_title(f"T3: MLP {hidden} on {args.data}: decision regions, test accuracy {test['accuracy']:.3f}",
                 fontsize=9)
    ax.set_aspect("equal")
    regions_png = os.path.join(args.out, "t3_decision_regions.png")
    fig.savefig(regions_png)
    cm_png = plot_confusion_matrix(confusion_matrix(yt, pred, data.num_classes),
                                   os.path.join(args.out, "t3_confusion_matrix.png"),
                                   class_names=data.class_names, title=f"MLP on {args.data} (test split)")
    curves_png = plot_curves([("MLP", [history.history], label)], os.path.join(args.out, "t3_curves.png"))
    print(f"Plots: {regions_png}, {cm_png}, {curves_png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
