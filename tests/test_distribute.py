"""devices=N: synchronous data parallelism on Keras' engines (zoo.training.distribute), checked on 2 virtual CPU
devices (ZOO_VIRTUAL_CPUS=2, a fresh process per backend: tests/distribute_checks.py) against one device."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import zoo
from zoo import training
from zoo.training.distribute import check_devices, resolve_devices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_checks(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "ZOO_VIRTUAL_CPUS": "2", "TF_CPP_MIN_LOG_LEVEL": "3",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "distribute_checks.py")], env=env,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.parametrize("backend", [
    "tensorflow",
    pytest.param("jax", marks=pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")),
])
@pytest.mark.heavy
def test_two_devices_train_the_weights_of_one(backend):
    out = _run_checks(backend)
    assert out["backend"] == backend and out["devices"] == 2  # ZOO_VIRTUAL_CPUS split the CPU before start-up
    # the same global batch on 1 and 2 devices: the same weights to float32 rounding, BatchNorm included. AdamW
    # divides each gradient by its own running size, so the rounding of a near-zero gradient (BatchNorm's
    # statistics summed per replica) moves a weight by up to a few 1e-5 in 8 steps at lr 0.01 (1.15e-5 on one
    # CPU, 3.6e-7 on another); a wrong all-reduce or a batch seen twice moves weights by 1e-2.
    assert out["max_weight_diff"]["mlp"] < 1e-5 and out["max_weight_diff"]["convnet_bn"] < 1e-4, out
    assert out["history_devices"] == {"mlp": 2, "convnet_bn": 2} and out["history_model_is_the_model"]
    # the optimizer state came back into the caller's model: a further step agrees too
    assert all(d < 1e-4 for d in out["after_one_more_step"].values()) and out["iterations"]["mlp"] == [9, 9]
    assert out["distribution_left"] == "None" and not out.get("strategy_left", False)
    if backend == "tensorflow":
        assert out["fine_tune_diff"] < 1e-5  # both phases, recompiled between them
        assert out["record_devices"] == [2] and out["record_status"] == ["completed"]  # the record says so
        assert out["resumed"] == ["completed", 1, None]  # its checkpoint read the replica's optimizer iterations
        # the check can fail: replicas normalising by their own half batch end elsewhere
        assert out["unsynchronised_bn_diff"] > 1e-3
        assert out["uneven"] == "trained"  # MirroredStrategy splits an odd last batch
    else:  # JAX shards each batch evenly: an odd last batch is refused before training, saying how to fix it
        assert "last batch of `train` (49 examples, batches of 16) has 1" in out["uneven"]


def test_devices_are_checked_before_anything_trains():
    with pytest.raises(ValueError, match="devices"):
        training.TrainingConfig(devices=0)
    for bad in (True, 1.5, "two"):
        with pytest.raises(TypeError, match="devices"):
            training.TrainingConfig(devices=bad)
    assert check_devices("2") == 2 and check_devices("all") == "all" and resolve_devices(None) == 1
    assert resolve_devices("all") == resolve_devices(1) == 1  # this process: one CPU device
    model = zoo.build("mlp", input_shape=(4,), num_classes=2)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"devices=2.*ZOO_VIRTUAL_CPUS=2"):
        training.fit(model, (np.zeros((8, 4), "float32"), np.zeros(8, "int32")), epochs=1, devices=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_run_with_too_many_devices_is_refused_before_its_first_trial(tmp_path):
    import tuning

    with pytest.raises(ValueError, match="devices=4"):
        tuning.compare(["mlp"], data="moons", training=training.TrainingConfig(epochs=1, devices=4), seeds=1,
                       out=str(tmp_path / "c"))
    assert not os.path.exists(tmp_path / "c" / "records.jsonl")


def test_the_cli_takes_devices():
    from zoo.cli import build_parser

    parser = build_parser()
    for command in (["compare", "mlp"], ["tune", "mlp"], ["transfer", "--backbone", "resnet20"]):
        assert parser.parse_args([*command, "--devices", "all"]).devices == "all"
        assert parser.parse_args([*command, "--devices", "2"]).devices == 2
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--devices", "0"])
