"""T2: binary classification of 2-D points with a multi-layer perceptron.

Two interleaving half moons (or two concentric circles with ``--data circles``)
cannot be separated by a straight line: a logistic regression (no hidden
layer) underfits, an MLP with a hidden layer draws a curved boundary. One
sigmoid output, binary cross-entropy. Saves the decision boundaries and the
loss curves as PNG and prints accuracies and the loss-curve diagnosis.

Run:
    python examples/t2_binary.py [--data moons|circles]   # about 30 s on 2 CPU cores
    python examples/t2_binary.py --fast                   # a few seconds (CI)
"""

from __future__ import annotations

import argparse
import os


def decision_plot(ax, model, x, y, title):
    """Probability of class 1 on a grid, the 0.5 contour and the points."""
    import numpy as np

    pad = 0.3
    (x0, y0), (x1, y1) = x.min(axis=0) - pad, x.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype("float32")
    p = model.predict(grid, verbose=0, batch_size=4096).reshape(gx.shape)
    ax.contourf(gx, gy, p, levels=20, cmap="RdBu_r", alpha=0.5, vmin=0, vmax=1)
    ax.contour(gx, gy, p, levels=[0.5], colors="black", linewidths=1.5)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", s=8, edgecolors="none")
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="moons", choices=("moons", "circles"))
    parser.add_argument("--fast", action="store_true", help="fewer epochs (CI)")
    parser.add_argument("--out", default="runs/examples/t2", help="folder for the plots")
    args = parser.parse_args(argv)

    import zoo
    import zoo.data
    from tuning.diagnosis import diagnose
    from tuning.report import plot_curves
    from zoo import training

    data = zoo.data.load(args.data, seed=0)
    (x, y), (xv, yv), (xt, yt) = (data.arrays(s) for s in ("train", "validation", "test"))
    print(f"Data: {args.data}, {len(x)} training / {len(xv)} validation / {len(xt)} test points, classes "
          f"{list(data.class_names)}")
    epochs = 15 if args.fast else 150
    runs = []
    for title, hidden in (("logistic regression (no hidden layer)", ()), ("MLP (32, 32) relu", (32, 32))):
        model = zoo.build("mlp", input_shape=data.input_shape, hidden_units=hidden, task="binary")
        history = training.fit(model, (x, y), (xv, yv), epochs=epochs, batch_size=32, optimizer="adam",
                               learning_rate=1e-2, seed=0, verbose=0)
        test = model.evaluate(xt, yt, verbose=0, return_dict=True)
        label, reason = diagnose(history.history, num_classes=2)
        print(f"{title}: test accuracy {test['accuracy']:.3f}, loss {test['loss']:.3f}; loss curves: {label}: "
              f"{reason}")
        runs.append((title, model, history.history, test, label))

    os.makedirs(args.out, exist_ok=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.6), layout="constrained")
    for ax, (title, model, _, test, _) in zip(fig.subplots(1, len(runs)), runs):
        decision_plot(ax, model, xt, yt, f"{title}\ntest accuracy {test['accuracy']:.3f}")
    fig.suptitle(f"T2: binary classification on {args.data} (test points)")
    boundary_png = os.path.join(args.out, "t2_decision_boundary.png")
    fig.savefig(boundary_png)
    curves_png = plot_curves([(t, [h], lab) for t, _, h, _, lab in runs], os.path.join(args.out, "t2_curves.png"))
    print(f"Plots: {boundary_png} (decision boundaries), {curves_png} (loss and accuracy curves)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
