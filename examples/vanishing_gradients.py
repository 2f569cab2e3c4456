"""Vanishing gradients: a deep MLP with sigmoid and N(0, 1) weights against ReLU with He initialisation.

The courses show why deep networks trained badly before ReLU and careful initialisation: on its way back
the gradient is multiplied, layer after layer, by a weight and by the activation's derivative; a sigmoid's
is at most 1/4 (nearly 0 where a unit saturates), so the gradient reaching the first layers vanishes. This
example builds the same deep, narrow MLP (15 layers of 8 units, where few paths add up) both ways, measures
the gradient norm of every layer's kernel on one batch (``zoo.explain.gradient_stats``) and the mean of the
activations' derivative (``zoo.explain.activation_stats``), plots the norms per layer on a log scale and
trains both for a few epochs. (In wide layers N(0, 1) weights make the sums grow with the width instead:
LeCun's and He's variance 1/fan-in is the cure for both.)

Run:
    python examples/vanishing_gradients.py            # 20 epochs on spirals
    python examples/vanishing_gradients.py --fast     # 3 epochs (CI)
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="3 epochs (CI)")
    parser.add_argument("--depth", type=int, default=15, help="hidden layers (default 15)")
    parser.add_argument("--width", type=int, default=8, help="units per hidden layer (default 8)")
    parser.add_argument("--out", default="runs/examples/vanishing", help="folder for the plot")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    import zoo
    from zoo import explain, training

    data = zoo.data.load("spirals", num_classes=3, num_samples=900, seed=0)
    x, y = data.arrays("train")
    batch = (x[:256], y[:256])
    setups = {"sigmoid + N(0, 1)": ("sigmoid", "normal"), "relu + He": ("relu", "he_normal")}
    stats, first, last = {}, {}, {}
    for label, (activation, initializer) in setups.items():
        keras.utils.set_random_seed(0)
        model = zoo.build("mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                          hidden_units=(args.width,) * args.depth, activation=activation, kernel_initializer=initializer)
        training.compile_model(model)
        stats[label] = explain.gradient_stats(model, batch)
        kernels = [r for r in stats[label] if r["weight"].endswith("kernel")]
        first[label], last[label] = kernels[0]["grad_norm"], kernels[-1]["grad_norm"]
        slope = np.mean([r["slope"] for r in explain.activation_stats(model, batch[0]) if r["slope"] is not None])
        history = training.fit(model, (x, y), data.arrays("validation"), epochs=3 if args.fast else 20,
                               batch_size=64, verbose=0, compile=False)
        print(f"{label:>18}: first-layer gradient norm {first[label]:.2e}, last layer {last[label]:.2e} "
              f"(ratio {first[label] / last[label]:.1e}); mean activation slope {slope:.2f}; validation accuracy "
              f"after {len(history.epoch)} epochs {history.history['val_accuracy'][-1]:.3f}")
    ratio = first["relu + He"] / first["sigmoid + N(0, 1)"]
    print(f"The first layer's gradient is {ratio:.1e} times larger with relu + He than with sigmoid + N(0, 1).")
    os.makedirs(args.out, exist_ok=True)
    path = explain.plot_gradient_norms(stats, os.path.join(args.out, "vanishing_gradients.png"),
                                       title=f"Kernel gradient norm per layer, MLP {args.depth} x {args.width}, one batch")
    print(f"Plot: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
