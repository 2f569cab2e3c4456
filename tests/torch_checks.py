"""Checks run in a fresh process under ``KERAS_BACKEND=torch``; prints one ``RESULT {json}`` line.

Used by ``tests/test_backends.py`` (skipped where torch is not installed): the training path, ``zoo.explain``
and a comparison's Grad-CAM figure on the torch backend. On torch a model's outputs track gradients (its
weights are ``torch.nn.Parameter``), so every NumPy conversion must detach them first.

Usage: ``KERAS_BACKEND=torch python tests/torch_checks.py WORKDIR`` where ``WORKDIR`` may hold ``w.weights.h5``
(weights of :data:`TINY`'s convnet) and ``x.npy`` (images) to explain, written by another backend to compare;
the maps are saved there as ``cam.npy``, ``campp.npy``, ``sal.npy`` and ``ig.npy``.
"""

import contextlib
import io
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY = dict(input_shape=(16, 16, 3), filters=(8, 16), dense_units=(), flatten=False, num_classes=3,
            classifier_activation=None)


def _map_stats(maps):
    return {"shape": list(maps.shape), "finite": bool(np.isfinite(maps).all()),
            "min": float(maps.min()), "max": float(maps.max()),
            "constant": [bool(np.ptp(m) == 0) for m in maps.reshape(len(maps), -1)]}


def main(workdir):
    import keras
    import torch

    import tuning
    import zoo
    import zoo.data
    from zoo import explain, training

    out = {"backend": keras.backend.backend()}
    keras.utils.set_random_seed(0)

    # the training path: a residual network with batch norm, 2 epochs, then evaluation
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 3, size=(32,))
    model = zoo.build("resnet20", input_shape=(16, 16, 3), num_classes=3, width=0.25)
    history = training.fit(model, (x, y), (x, y), epochs=2, batch_size=8, verbose=0, learning_rate=0.01)
    out["losses"] = history.history["loss"]
    out["val_losses"] = history.history["val_loss"]
    evaluated = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    out["evaluate"] = {k: float(v) for k, v in evaluated.items()}
    out["finite"] = all(math.isfinite(v) for v in out["losses"] + out["val_losses"] + list(out["evaluate"].values()))
    out["resnet_cam"] = _map_stats(explain.grad_cam(model, x[:2]))  # a cut point inside a residual graph

    # zoo.explain on a tiny convnet (the other backend's weights and images when given, to compare maps)
    tiny = zoo.build("convnet", **TINY)
    weights, images = os.path.join(workdir, "w.weights.h5"), os.path.join(workdir, "x.npy")
    if os.path.exists(weights):
        tiny.load_weights(weights)
    xs = np.load(images) if os.path.exists(images) else rng.random((4, 16, 16, 3)).astype("float32")
    maps = {"cam": explain.grad_cam(tiny, xs, upsample=False, normalize=False),
            "campp": explain.grad_cam(tiny, xs, method="gradcam++", upsample=False, normalize=False),
            "sal": explain.saliency(tiny, xs),
            "ig": explain.saliency(tiny, xs, method="integrated_gradients", steps=8)}
    for name, value in maps.items():
        np.save(os.path.join(workdir, f"{name}.npy"), value)
    out["maps"] = {name: _map_stats(value) for name, value in maps.items()}
    out["upsampled_cam"] = _map_stats(explain.grad_cam(tiny, xs))
    out["feature_maps"] = {"stage1": list(explain.feature_maps(tiny, xs, stage="stage1").shape),
                           "stage2_conv1_relu": list(explain.feature_maps(tiny, xs, layer="stage2_conv1_relu").shape)}
    stats = explain.activation_stats(tiny, xs)
    out["activation_stats"] = [{k: r[k] for k in ("layer", "activation", "mean", "dead")} for r in stats]
    grads = explain.gradient_stats(tiny, (xs, np.arange(len(xs)) % 3))
    out["gradient_stats"] = [{k: r[k] for k in ("weight", "grad_norm", "weight_norm")} for r in grads]
    out["filters"] = list(explain.filters(tiny).shape)
    out["maximize"] = list(explain.filters(tiny, method="maximize", count=2, steps=3).shape)
    # explanations differentiate with torch.autograd.grad: no .grad left on the model's weights
    out["weights_without_grad"] = all(w.value.grad is None for w in tiny.trainable_weights)
    out["torch_version"] = torch.__version__

    # a comparison draws Grad-CAM of its best saved model into its report
    data = zoo.data.load("digits", image_size=16, channels=1, batch_size=128)
    folder = os.path.join(workdir, "compare")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = tuning.compare(["convnet"], data=data, training=training.TrainingConfig(epochs=1), seeds=1,
                                out=folder, model_kwargs={"convnet": {"filters": (8, 16), "dense_units": ()}},
                                options=tuning.RunOptions(verbose=1, measure_speed=False))
    figure = os.path.join(folder, "plots", "gradcam.png")
    report = open(os.path.join(folder, "report.md"), encoding="utf-8").read()
    out["compare"] = {"status": [r["status"] for r in result.records],
                      "gradcam_png": figure if os.path.isfile(figure) else None,
                      "gradcam_bytes": os.path.getsize(figure) if os.path.isfile(figure) else 0,
                      "report_has_gradcam": "plots/gradcam.png" in report,
                      "not_drawn": [line for line in printed.getvalue().splitlines() if "Grad-CAM" in line]}
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    import tempfile

    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="torch_checks_"))
