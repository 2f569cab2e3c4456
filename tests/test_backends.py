"""The builders, the training path and zoo bench on the JAX backend, and the training path, zoo.explain and a
comparison's Grad-CAM figure on the torch backend (each a fresh process; CPU)."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.heavy
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e .[dev])")
def test_jax_backend_trains_benchmarks_and_keeps_gradients():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "backend_checks.py")], env=env,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["backend"] == "jax"
    assert out["conv_dtype"] == "bfloat16"  # built under mixed_bfloat16
    assert out["finite"] and len(out["losses"]) == 2
    assert out["device_array"] in ("jaxlib", "jax")
    # Keras' array adapter copies JAX arrays back to NumPy; DeviceArrays' batches stay device arrays
    assert out["fed"]["arrays"] == "numpy" and out["fed"]["device"] in ("jaxlib", "jax")
    first, second = out["device_epochs"]
    assert sorted(first) == sorted(second) == list(range(10)) and first != second  # reshuffled every epoch
    assert out["variants"] == ["fit:keras", "loop:vjp"] and out["policy_after_variants"] == "float32"
    assert [r["input"] for r in out["bench"]] == ["numpy", "device"]
    assert all(r["framework"] == "keras-jax" and r["train_samples_per_second"] > 0 and r["mfu"] > 0
               for r in out["bench"])
    assert out["layer_decay_max_rel_error"] < 2e-3  # each variable's AdamW step times decay ** depth
    # one-pass statistics and the closed-form backward match Keras' batch norm to float32 rounding
    assert all(err < 1e-4 for err in out["bn_variant_max_rel_error"].values()), out["bn_variant_max_rel_error"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed (CI does not install it; a side environment with torch runs this)")
def test_torch_backend_trains_and_explains(tmp_path):
    import numpy as np

    import zoo
    from torch_checks import TINY  # torch itself is imported by the subprocess only
    from zoo import explain

    # the same weights and images on this process' backend (TensorFlow by default): the maps must agree
    reference = zoo.build("convnet", **TINY)
    reference.save_weights(tmp_path / "w.weights.h5")
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "torch_checks.py"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["backend"] == "torch"
    # training: 2 finite epochs that lower the loss, and an evaluation
    assert out["finite"] and len(out["losses"]) == 2 and out["losses"][1] < out["losses"][0], out["losses"]
    assert set(out["evaluate"]) >= {"loss", "accuracy"} and 0 <= out["evaluate"]["accuracy"] <= 1
    # explanations: the right shapes, finite, not constant, and equal to this backend's
    for name, shape in (("cam", [4, 8, 8]), ("campp", [4, 8, 8]), ("sal", [4, 16, 16]), ("ig", [4, 16, 16])):
        stats = out["maps"][name]
        assert stats["shape"] == shape and stats["finite"] and not any(stats["constant"]), (name, stats)
    for key, shape in (("upsampled_cam", [4, 16, 16]), ("resnet_cam", [2, 16, 16])):
        stats = out[key]
        assert stats["shape"] == shape and stats["finite"] and not any(stats["constant"]), (key, stats)
        assert stats["min"] == 0 and stats["max"] == pytest.approx(1), (key, stats)
    expected = {"cam": explain.grad_cam(reference, x, upsample=False, normalize=False),
                "campp": explain.grad_cam(reference, x, method="gradcam++", upsample=False, normalize=False),
                "sal": explain.saliency(reference, x),
                "ig": explain.saliency(reference, x, method="integrated_gradients", steps=8)}
    for name, value in expected.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), value, atol=1e-4, err_msg=name)
    assert out["feature_maps"] == {"stage1": [4, 8, 8, 8], "stage2_conv1_relu": [4, 8, 8, 16]}
    assert [r["layer"] for r in out["activation_stats"]] == [r["layer"] for r in explain.activation_stats(reference, x)]
    assert all(r["activation"] == "relu" and 0 < r["dead"] < 1 and r["mean"] > 0 for r in out["activation_stats"])
    grads = out["gradient_stats"]
    assert len(grads) == len(reference.trainable_weights) and all(math.isfinite(r["grad_norm"]) for r in grads)
    assert all(r["grad_norm"] > 0 for r in grads)
    assert out["filters"] == [8, 3, 3, 3] and out["maximize"] == [2, 16, 16, 3]
    assert out["weights_without_grad"]  # torch.autograd.grad, not backward(): explaining leaves no .grad behind
    # a comparison's report carries the Grad-CAM figure (it was left out, with one printed line, before)
    cmp = out["compare"]
    assert cmp["status"] == ["completed"] and not cmp["not_drawn"], cmp
    assert cmp["gradcam_png"] and os.path.isfile(cmp["gradcam_png"]) and cmp["gradcam_bytes"] > 2000
    assert cmp["report_has_gradcam"]
