"""Trials in their own processes: a crash by signal is one failed record, and the search goes on."""

import os
import signal

import keras
import pytest

import tuning
import zoo.data
from tuning.isolation import WorkerDied, WorkerPool, check_picklable, data_spec
from zoo.training import TrainingConfig

DATA = {"name": "moons", "num_samples": 200}


def crashing_build(hp):
    """A model, unless the trial asks its worker process to die by a signal (never in the caller's process:
    KerasTuner declares the space with the default, "none")."""
    how = hp.Choice("crash", ["none", "SIGSEGV"])
    if how != "none":
        os.kill(os.getpid(), getattr(signal, how))
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(inputs)))


def test_a_trial_killed_by_a_signal_is_a_failed_record_naming_it_and_the_search_completes(tmp_path, capsys):
    data = zoo.data.load(**DATA)
    options = tuning.RunOptions(report=False, measure_speed=False, isolation="process", save_models=None)
    result = tuning.search(crashing_build, data=data, directory=tmp_path, algorithm="grid", budget=None,
                           training=TrainingConfig(epochs=1), options=options)
    by_crash = {r["hyperparameters"]["crash"]: r for r in result.records}
    assert set(by_crash) == {"none", "SIGSEGV"}
    assert by_crash["none"]["status"] == "completed" and by_crash["none"]["val_accuracy"] > 0
    record = by_crash["SIGSEGV"]
    assert record["status"] == "failed" and record["exit_signal"] == "SIGSEGV" and record["exit_code"] == -11
    assert "killed by SIGSEGV (signal 11)" in record["error"]
    assert result.best_record["hyperparameters"]["crash"] == "none"
    assert "killed by SIGSEGV" in capsys.readouterr().out  # the trial's progress line says so


def _double(data, *, value):
    return {"value": 2 * value, "examples": int(data.num_examples["train"]), "pid": os.getpid()}


def _fail(data):
    raise ValueError("bad trial argument")


def test_worker_pool_runs_calls_in_another_process_and_passes_errors_back():
    with WorkerPool(zoo.data.load(**DATA), prestart=False) as pool:
        first = pool.run(_double, value=3)
        with pytest.raises(ValueError, match="bad trial argument"):
            pool.run(_fail)
        assert pool._spare is None  # nothing started ahead without prestart
    assert first["value"] == 6 and first["examples"] > 0 and first["pid"] != os.getpid()


def test_worker_died_names_the_signal():
    assert WorkerDied(-9).signal_name == "SIGKILL" and "out-of-memory killer" in str(WorkerDied(-9))
    assert WorkerDied(-6).signal_name == "SIGABRT" and "killed by SIGABRT (signal 6)" in str(WorkerDied(-6))
    assert WorkerDied(3).signal_name is None and "exited with status 3" in str(WorkerDied(3))


def test_bad_isolation_arguments_fail_before_any_trial(tmp_path):
    data = zoo.data.load(**DATA)
    with pytest.raises(ValueError, match="isolation"):
        tuning.search("mlp", data=data, directory=tmp_path, options=tuning.RunOptions(isolation="thread"))
    with pytest.raises(TypeError, match="callbacks"):
        tuning.search("mlp", data=data, directory=tmp_path, options=tuning.RunOptions(
            isolation="process", callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda *a: None)]))
    with pytest.raises(TypeError, match="models"):
        check_picklable(lambda hp: None, "models")
    with pytest.raises(ValueError, match="zoo.data.load"):
        data_spec(object())
    assert not (tmp_path / "records.jsonl").exists()
