"""Bad input gets one ValueError/TypeError naming the argument and the value, before any expensive work."""

import json
import os

import numpy as np
import pytest

import zoo
from zoo import training, transfer
from zoo.cli import main
from zoo.training import TrainingConfig


@pytest.fixture(scope="module")
def small_resnet():
    return zoo.build("resnet20", input_shape=(16, 16, 3), num_classes=3, width=0.25)


@pytest.mark.parametrize("width", [float("inf"), float("nan"), 1e30, -1.0])
def test_width_must_be_finite_and_sensible(width):
    with pytest.raises(ValueError, match=r"`width`.*Received: width="):
        zoo.build("resnet20", input_shape=(16, 16, 3), width=width)


def test_compression_nan_is_refused():
    with pytest.raises(ValueError, match=r"`compression`.*nan"):
        zoo.build("densenet_bc_40", input_shape=(16, 16, 3), compression=float("nan"))


def test_freeze_and_unfreeze_arguments_are_named(small_resnet):
    with pytest.raises(ValueError, match=r"`pattern` is not a valid regex.*Received: pattern='\['"):
        transfer.freeze(small_resnet, pattern="[")
    with pytest.raises(ValueError, match=r"`fraction` must be a finite number.*nan"):
        transfer.freeze(small_resnet, fraction=float("nan"))
    with pytest.raises(ValueError, match=r"`last_blocks` must be at most \d+.*Received: last_blocks=1000000000"):
        transfer.unfreeze(small_resnet, last_blocks=10**9)


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), -1.0])
def test_learning_rate_must_be_finite_and_positive(lr):
    model = zoo.build("mlp", input_shape=(2,), num_classes=2, hidden_units=(4,))
    with pytest.raises(ValueError, match=r"`learning_rate`.*Received: learning_rate="):
        training.fit(model, (np.zeros((8, 2), "float32"), np.zeros(8, "int32")), epochs=1, learning_rate=lr, verbose=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_refuses_nan_or_inf_inputs(bad):
    model = zoo.build("mlp", input_shape=(2,), num_classes=2, hidden_units=(4,))
    x = np.full((8, 2), bad, "float32")
    y = np.zeros(8, "int32")
    with pytest.raises(ValueError, match=r"`train\[0\] \(x\)` holds 16 of 16 values that are NaN or infinite"):
        training.fit(model, (x, y), epochs=1, verbose=0)
    ok = np.zeros((8, 2), "float32")
    with pytest.raises(ValueError, match=r"validation\[0\] \(x\)` holds 1 of 16"):
        training.fit(model, (ok, y), (np.where(np.arange(16).reshape(8, 2) == 3, bad, 0).astype("float32"), y),
                     epochs=1, verbose=0)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with pytest.raises(ValueError, match=r"the first batch of train \(x\)"):
        training.fit(model, ds, epochs=1, verbose=0)


def test_a_folder_with_one_class_is_refused(tmp_path):
    import tensorflow as tf

    os.makedirs(tmp_path / "only")
    for i in range(3):
        tf.io.write_file(str(tmp_path / "only" / f"{i}.png"), tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(zoo.data.BadDataError, match="only one class folder \\('only'\\)"):
        zoo.data.load(f"folder:{tmp_path}")


def test_cli_names_an_infinite_width_in_one_line(capsys):
    assert main(["profile", "resnet20", "--arg", "width=1e400"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "width" in err[0] and "inf" in err[0]


def test_build_time_constraints_are_checked_before_training(tmp_path):
    import tuning

    data = zoo.data.load("moons", num_samples=200)
    result = tuning.search("mlp", data=data, directory=str(tmp_path), budget=2, training=TrainingConfig(epochs=1),
                           options=tuning.RunOptions(report=False, measure_speed=False), constraints={"max_params": 10})
    assert len(result.records) == 2
    for r in result.records:  # infeasible, and never trained
        assert r["status"] == "infeasible" and "params=" in r["error"] and "> 10.0" in r["error"]
        assert r["history"] is None and r["fit_seconds"] is None and r["params"] > 10
        assert r["timings"].get("fit") is None


def test_saved_models_load_in_plain_keras_or_through_zoo_load_model(tmp_path):
    import subprocess
    import sys
    import textwrap

    plain = {"resnet20": dict(width=0.25), "vgg11": dict(input_shape=(224, 224, 3), width=0.0625),
             "alexnet": dict(input_shape=(224, 224, 3), width=0.0625)}
    for name, kwargs in plain.items():
        zoo.build(name, num_classes=3, **kwargs).save(tmp_path / f"{name}.keras")
    small_vgg = zoo.build("vgg11", input_shape=(32, 32, 3), num_classes=3, width=0.0625)  # pools 1x1 up to 7x7
    small_vgg.save(tmp_path / "small_vgg.keras")
    script = textwrap.dedent(f"""
        import sys, keras
        for name in {sorted(plain)!r}:
            keras.saving.load_model({str(tmp_path)!r} + "/" + name + ".keras")
        assert "zoo" not in sys.modules
        try:
            keras.saving.load_model({str(tmp_path / "small_vgg.keras")!r})
        except Exception:
            print("needs zoo")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "needs zoo"
    loaded = zoo.load_model(tmp_path / "small_vgg.keras")
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype="float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), small_vgg.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        zoo.load_model(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match=r"`path` must name a .keras file.*w.weights.h5"):
        zoo.load_model(tmp_path / "w.weights.h5")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.keras: not a loadable Keras model file"):
        zoo.load_model(tmp_path / "junk.keras")


@pytest.mark.parametrize("max_trials", [3, 9, 12, None])
def test_trial_ids_have_one_width_whatever_max_trials(max_trials, tmp_path):
    # KerasTuner pads ids to len(str(max_trials)): "7" then "08" once a resume raises max_trials.
    import keras_tuner as kt

    from tuning.searches import engine
    from tuning.searches.algorithms import Random

    hp = kt.HyperParameters()
    hp.Int("units", 1, 100)
    oracle = engine.make_oracle(Random(), objectives=[("val_loss", "min")], max_trials=max_trials, epochs=1, seed=0,
                                hyperparameters=hp)
    oracle._set_project_dir(str(tmp_path), "p")
    ids = []
    for _ in range(3):
        trial = oracle.create_trial("tuner0")
        ids.append(trial.trial_id)
        oracle.ongoing_trials.pop("tuner0")
    assert ids == ["0000", "0001", "0002"] and sorted(ids) == ids
    assert oracle.max_trials == max_trials and json.dumps(oracle.max_trials) == json.dumps(max_trials)


def test_a_bad_builder_argument_fails_once_before_any_trial(tmp_path, capsys):
    import tuning

    data = zoo.data.load("moons", num_samples=200)
    with pytest.raises(ValueError, match=r"`fixed` builder arguments \{'dropout': 7.0\}: `dropout`.*7.0"):
        tuning.search("mlp", data=data, directory=str(tmp_path / "s"), budget=3, training=TrainingConfig(epochs=1),
                      space=tuning.SearchSpace(fixed={"dropout": 7.0}), options=tuning.RunOptions(report=False))
    assert not os.path.exists(tmp_path / "s" / "records.jsonl")
    out = str(tmp_path / "c")
    argv = ["compare", "mlp", "--data", "moons", "--epochs", "1", "--seeds", "1", "--out", out]
    for bad, word in ([["--model-arg", "mlp:hidden_units=-3"], "hidden_units"],
                      [["--learning-rate", "-1"], "learning_rate"], [["--optimizer", "nope"], "optimizer"]):
        assert main(argv + bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0], err
        assert not os.path.exists(os.path.join(out, "records.jsonl"))  # nothing trained, no report


def test_a_full_disk_stops_the_run_with_one_message_naming_the_folder(tmp_path, monkeypatch, capsys):
    import errno

    import tuning.comparison

    written = []

    def full(path, record):
        written.append(record)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tuning.comparison, "append_record", full)
    out = tmp_path / "c"
    with pytest.raises(OSError, match=rf"No space left on the device of {out}.*run the same command again") as info:
        tuning.compare(["mlp"], data=zoo.data.load("moons", num_samples=200), training=TrainingConfig(epochs=1),
                       seeds=1, out=out, options=tuning.RunOptions(report=False, verbose=0, measure_speed=False))
    assert info.value.errno == errno.ENOSPC and len(written) == 1
    argv = ["compare", "mlp", "--data", "moons", "--epochs", "1", "--seeds", "1", "--no-speed", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "No space left" in err[0], err


def test_models_whose_weights_would_not_fit_are_refused_before_building(monkeypatch):
    import zoo.utils

    with pytest.raises(ValueError, match=r"`num_classes` must be <= 1,000,000. Received: num_classes=1000000000"):
        zoo.build("resnet18", num_classes=10**9)
    with pytest.raises(ValueError, match=r"`input_shape` must hold at most .* values per sample"):
        zoo.build("resnet20", input_shape=(60_000, 60_000, 3))
    monkeypatch.setattr(zoo.utils, "memory_bytes", lambda: 2**30)  # a 1 GiB machine
    # resnet20 at width 16: about 70M weights, 1.0 GiB to train; counted without allocating them
    with pytest.raises(ValueError, match=r"resnet20 with width=16 would have about 6\d,\d{3},\d{3} weights.*"
                                         r"more than this machine's 1.0 GiB"):
        zoo.build("resnet20", width=16)
    with pytest.raises(ValueError, match=r"input_shape=\(100000,\), hidden_units=\(4096,\) .* would have about"):
        zoo.build("mlp", input_shape=(100_000,), hidden_units=(4096,))
    assert zoo.build("resnet20", width=0.25, num_classes=3).count_params() < 20_000  # small models still build


def test_is_disk_full_knows_tensorflows_error_and_it_is_no_out_of_memory():
    import errno

    import tensorflow as tf

    from zoo.runtime import is_disk_full, is_out_of_memory

    tf_error = tf.errors.ResourceExhaustedError(None, None, "runs/x/trial.json; No space left on device")
    assert is_disk_full(tf_error) and not is_out_of_memory(tf_error)
    assert is_disk_full(OSError(errno.ENOSPC, "full")) and is_disk_full(OSError(errno.EDQUOT, "quota"))
    assert not is_disk_full(OSError(errno.EACCES, "denied")) and not is_disk_full(MemoryError())
    assert is_out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))


def test_negative_zero_noise_is_zero():
    # found by the fuzz: -0.0 passed `noise >= 0` and NumPy's normal() then refused scale=-0.0
    for name in ("moons", "circles", "sinusoid", "blobs", "spirals"):
        assert zoo.data.load(name, num_samples=60, noise=-0.0).num_examples["train"] > 0


def test_rates_beyond_any_use_are_refused():
    # found by the fuzz: learning_rate=1e308 is finite in float64 and overflows to inf in float32
    model = zoo.build("mlp", input_shape=(2,), num_classes=2, hidden_units=(4,))
    data = (np.zeros((8, 2), "float32"), np.zeros(8, "int32"))
    for name in ("learning_rate", "weight_decay"):
        with pytest.raises(ValueError, match=rf"`{name}` must be <= 1000.0. Received: {name}=1e\+308"):
            training.fit(model, data, epochs=1, verbose=0, **{name: 1e308})


def test_results_are_written_whole_or_not_at_all(tmp_path):
    """zoo.runtime.write_json_atomic (manifests, model cards, benchmark results): the folder is made, keys sorted
    unless asked otherwise, and a payload that cannot be written leaves the previous file and no partial one."""
    from zoo.runtime import write_json_atomic

    path = tmp_path / "new" / "results.json"
    assert write_json_atomic(str(path), {"b": 1, "a": float("nan"), "c": tmp_path}) == str(path)
    text = path.read_text()
    assert text.index('"a"') < text.index('"b"') and json.loads(text)["c"] == str(tmp_path)  # str() for the rest
    write_json_atomic(str(path), {"z": 1, "a": 2}, sort_keys=False)
    assert list(json.loads(path.read_text())) == ["z", "a"]
    circular = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="[Cc]ircular"):
        write_json_atomic(str(path), circular)
    assert json.loads(path.read_text()) == {"z": 1, "a": 2}
    assert os.listdir(path.parent) == ["results.json"]


def test_learning_rate_message_states_the_bound_it_checks():
    """Issue 28: `--learning-rate -1` said "must be >= 0.0", then 0 was refused too."""
    for rate in (-1.0, 0.0):
        with pytest.raises(ValueError, match=r"`learning_rate` must be > 0.0. Received: learning_rate="):
            TrainingConfig(learning_rate=rate)
        with pytest.raises(ValueError, match=r"`learning_rate` must be > 0.0"):
            training.make_schedule("constant", rate)
