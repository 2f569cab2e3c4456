"""T1: fit a noisy sinusoid with a multi-layer perceptron (regression).

The first hands-on of most introductory courses: ``y = sin(x) + noise`` with
``x`` in [-pi, pi]. A small MLP with a smooth activation learns the curve by
minimising the mean squared error. Saves the fitted curve and the loss curves
as PNG and prints the loss-curve diagnosis.

Run:
    python examples/t1_sinusoid.py            # about 30 s on 2 CPU cores
    python examples/t1_sinusoid.py --fast     # a few seconds (CI)
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fewer epochs (CI)")
    parser.add_argument("--out", default="runs/examples/t1", help="folder for the plots")
    parser.add_argument("--hidden", default="64,64", help="hidden layer widths (default 64,64)")
    parser.add_argument("--activation", default="tanh", help="tanh, relu, gelu, ... (default tanh)")
    parser.add_argument("--noise", type=float, default=0.1, help="noise standard deviation (default 0.1)")
    args = parser.parse_args(argv)

    import numpy as np

    import zoo
    import zoo.data
    from tuning.diagnosis import diagnose
    from tuning.report import plot_curves
    from zoo import training

    data = zoo.data.load("sinusoid", num_samples=1000, noise=args.noise, seed=0)
    (x, y), (xv, yv), (xt, yt) = (data.arrays(s) for s in ("train", "validation", "test"))
    print(f"Data: {len(x)} training, {len(xv)} validation, {len(xt)} test points of y = sin(x) + noise")

    hidden = tuple(int(h) for h in args.hidden.split(","))
    model = zoo.build("mlp", input_shape=data.input_shape, hidden_units=hidden, activation=args.activation,
                      task="regression")
    epochs = 40 if args.fast else 200
    history = training.fit(model, (x, y), (xv, yv), epochs=epochs, batch_size=32, optimizer="adam",
                           learning_rate=1e-2, schedule="cosine", seed=0, verbose=0)
    losses = model.evaluate(xt, yt, verbose=0, return_dict=True)
    print(f"{model.name} {hidden} {args.activation}: {model.count_params():,} parameters, {epochs} epochs")
    print(f"test MSE {losses['loss']:.4f} (the noise alone gives {args.noise ** 2:.4f}), test MAE {losses['mae']:.4f}")
    label, reason = diagnose(history.history)
    print(f"loss curves: {label}: {reason}")

    os.makedirs(args.out, exist_ok=True)
    from matplotlib.figure import Figure

    grid = np.linspace(-np.pi, np.pi, 400, dtype="float32")[:, None]
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(x[:, 0], y[:, 0], s=6, alpha=0.35, color="tab:gray", label="training points")
    ax.plot(grid[:, 0], np.sin(grid[:, 0]), "--", color="black", label="sin(x)")
    ax.plot(grid[:, 0], model.predict(grid, verbose=0)[:, 0], color="tab:red", linewidth=2, label="MLP")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"T1: MLP {hidden} ({args.activation}) fitted to a noisy sinusoid; test MSE {losses['loss']:.4f}")
    ax.legend()
    fit_png = os.path.join(args.out, "t1_fit.png")
    fig.savefig(fit_png)
    curves_png = plot_curves([("MLP", [history.history], label)], os.path.join(args.out, "t1_loss.png"),
                             metric="mae")
    print(f"Plots: {fit_png} (fitted curve), {curves_png} (loss curves)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
