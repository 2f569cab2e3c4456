"""The builders, the training path and zoo bench on the JAX backend (a fresh process; CPU)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    # one-pass statistics and the closed-form backward match Keras' batch norm to float32 rounding
    assert all(err < 1e-4 for err in out["bn_variant_max_rel_error"].values()), out["bn_variant_max_rel_error"]
