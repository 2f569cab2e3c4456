"""T4: CIFAR-10 classification with a simple convolutional network.

The classic pattern INPUT -> [[CONV -> RELU] x 2 -> POOL] x 2 -> FC -> RELU -> FC
(``zoo.build("convnet")``), trained with Adam on 32x32 colour images. CIFAR-10
comes from TensorFlow Datasets when it is already prepared on this machine
(nothing is downloaded); otherwise the embedded ``shapes`` images (8 classes of
procedural geometric shapes, 32x32 RGB) stand in, and a line says so. Saves
the loss/accuracy curves, the confusion matrix and a grid of test predictions
as PNG and prints the loss-curve diagnosis; then shows what the network looks
at: Grad-CAM maps of right and wrong test predictions, the first stage's
feature maps of one image and the first layer's filters.

Run:
    python examples/t4_cifar10_cnn.py            # CIFAR-10: minutes per epoch on 2 CPU cores; shapes: ~2 min
    python examples/t4_cifar10_cnn.py --fast     # a small slice, 2 epochs (CI)
"""

from __future__ import annotations

import argparse
import os


def load_data(fast, batch_size):
    """``tfds:cifar10`` if prepared locally, else the embedded ``shapes`` stand-in; says which."""
    import zoo.data

    split = ("train[:2000]", "train[45000:45500]", "test[:1000]") if fast else \
        ("train[:45000]", "train[45000:]", "test")
    try:
        data = zoo.data.load("tfds:cifar10", split=split, batch_size=batch_size)
        print(f"Data: CIFAR-10 from TensorFlow Datasets ({zoo.data.default_data_dir()}), "
              f"{dict(data.num_examples)}")
        return data
    except (zoo.data.DatasetNotAvailableError, ImportError) as e:
        reason = str(e).splitlines()[0].split(": expected")[0]
    data = zoo.data.load("shapes", image_size=32, channels=3, samples_per_class=60 if fast else 400,
                         batch_size=batch_size, seed=0)
    print(f"Data: CIFAR-10 is not available here ({reason[:200]}); using the embedded stand-in 'shapes' "
          f"({data.num_classes} classes of 32x32 RGB shapes, {dict(data.num_examples)}). "
          f"Prepare CIFAR-10 with `tfds build cifar10` to train on the real thing.")
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small slice, 2 epochs, narrow network (CI)")
    parser.add_argument("--epochs", type=int, default=None, help="default 15 (2 with --fast)")
    parser.add_argument("--out", default="runs/examples/t4", help="folder for the plots")
    args = parser.parse_args(argv)

    import numpy as np

    import zoo
    from tuning.diagnosis import diagnose
    from tuning.report import confusion_matrix, plot_confusion_matrix, plot_curves
    from zoo import training

    data = load_data(args.fast, batch_size=64)
    model = zoo.build("convnet", input_shape=data.input_shape, num_classes=data.num_classes, filters=(32, 64),
                      convs_per_stage=2, dense_units=(128,), dropout=0.3, width=0.25 if args.fast else 1.0)
    epochs = args.epochs or (2 if args.fast else 15)
    print(f"Model: convnet, {model.count_params():,} parameters; training {epochs} epochs")
    history = training.fit(model, data.train, data.validation, epochs=epochs, optimizer="adam",
                           learning_rate=1e-3, seed=0, verbose=2)
    test = model.evaluate(data.test, verbose=0, return_dict=True)
    x_test, y_test = data.arrays("test")
    pred = model.predict(x_test, verbose=0, batch_size=256).argmax(axis=1)
    label, reason = diagnose(history.history, num_classes=data.num_classes)
    print(f"test accuracy {test['accuracy']:.3f} (chance {1 / data.num_classes:.3f}); loss curves: {label}: {reason}")

    os.makedirs(args.out, exist_ok=True)
    curves_png = plot_curves([("convnet", [history.history], label)], os.path.join(args.out, "t4_curves.png"))
    cm_png = plot_confusion_matrix(confusion_matrix(y_test, pred, data.num_classes),
                                   os.path.join(args.out, "t4_confusion_matrix.png"), class_names=data.class_names,
                                   title=f"convnet on {data.name} (test split)")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 8.6), layout="constrained")
    idx = np.random.default_rng(0).choice(len(x_test), size=min(16, len(x_test)), replace=False)
    for ax, i in zip(fig.subplots(4, 4).ravel(), idx):
        ax.imshow(np.clip(x_test[i].squeeze(), 0, 1), cmap="gray" if x_test.shape[-1] == 1 else None)
        ok = pred[i] == y_test[i]
        ax.set_title(f"{data.class_names[pred[i]]}" + ("" if ok else f"\n(true: {data.class_names[y_test[i]]})"),
                     fontsize=8, color="tab:green" if ok else "tab:red")
        ax.axis("off")
    fig.suptitle(f"T4: convnet predictions on {data.name} test images (green: right, red: wrong)")
    grid_png = os.path.join(args.out, "t4_predictions.png")
    fig.savefig(grid_png)
    print(f"Plots: {curves_png}, {cm_png}, {grid_png}")

    # What the network looks at: Grad-CAM on 8 right and 8 wrong predictions (the last conv map of the last
    # stage, for the predicted class), then stage 1's feature maps of one image and the first layer's filters.
    right, wrong = np.flatnonzero(pred == y_test)[:8], np.flatnonzero(pred != y_test)[:8]
    chosen = np.concatenate([right, wrong])
    maps = zoo.explain.grad_cam(model, x_test[chosen], pred[chosen])
    titles = [f"{data.class_names[pred[i]]}" + ("" if pred[i] == y_test[i] else f" (not {data.class_names[y_test[i]]})")
              for i in chosen]
    cam_png = zoo.explain.plot_overlays(x_test[chosen], maps, os.path.join(args.out, "t4_gradcam.png"), titles=titles)
    features = zoo.explain.feature_maps(model, x_test[chosen[:1]], stage="stage1")[0]
    maps_png = zoo.explain.plot_maps(features, os.path.join(args.out, "t4_feature_maps.png"),
                                     title=f"stage1 feature maps of a {data.class_names[y_test[chosen[0]]]}")
    filters_png = zoo.explain.plot_filters(model, os.path.join(args.out, "t4_filters.png"))
    print(f"Grad-CAM: {cam_png} ({len(right)} right, {len(wrong)} wrong); feature maps: {maps_png}; "
          f"filters: {filters_png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
