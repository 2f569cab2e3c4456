"""Searches and comparisons give models: saved, checked, exported; training that stops early, logs and resumes."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tuning
import zoo
from tuning.artifacts import ModelFileError, TrialFiles
from tuning.trial import TrialPlan, run_trial
from zoo import training
from zoo.cli import main
from zoo.training import TrainingConfig

MLP = {"hidden_units": (16,)}


def _test_accuracy_in_a_fresh_process(path):
    """The test accuracy of a saved model on the moons fixture, loaded by plain Keras (after ``import zoo``)."""
    script = textwrap.dedent(f"""
        import keras, zoo
        model = keras.saving.load_model({str(path)!r})
        data = zoo.data.load("moons", num_samples=200, seed=0)
        print(repr(model.evaluate(data.test, verbose=0, return_dict=True)["accuracy"]))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return float(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def moons():
    return zoo.data.load("moons", num_samples=200, seed=0)


def test_label_smoothing_works_with_integer_labels():
    y = np.array([0, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]], "float32")
    smoothed = training.make_loss("multiclass", label_smoothing=0.2)
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(np.eye(3)[y], p)
    np.testing.assert_allclose(float(smoothed(y, p)), float(reference), rtol=1e-6)
    assert float(smoothed(y, p)) > float(training.make_loss("multiclass")(y, p)) + 1e-3  # it does something
    with pytest.raises(ValueError, match="`label_smoothing` applies to cross-entropy losses"):
        training.make_loss("regression", label_smoothing=0.1)
    model = zoo.build("mlp", input_shape=(2,), num_classes=3, hidden_units=(4,))
    training.compile_model(model, label_smoothing=0.1)
    assert model.loss.label_smoothing == 0.1


def test_early_stopping_stops_and_restores_the_best_epoch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype("float32")
    y = (rng.random(40) < 0.5).astype("int32")  # random labels: validation loss gets worse as it memorises
    xv, yv = rng.normal(size=(40, 8)).astype("float32"), (rng.random(40) < 0.5).astype("int32")
    model = zoo.build("mlp", input_shape=(8,), num_classes=2, hidden_units=(64, 64))
    history = training.fit(model, (x, y), (xv, yv), epochs=60, batch_size=8, learning_rate=1e-2, patience=3,
                           verbose=0)
    losses = history.history["val_loss"]
    assert history.stopped_epoch is not None and history.stopped_epoch == len(losses) < 60
    assert history.best_epoch == int(np.argmin(losses)) + 1 and history.stopped_epoch - history.best_epoch == 3
    restored = model.evaluate(xv, yv, batch_size=8, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(restored, min(losses), rtol=1e-5)
    with pytest.raises(ValueError, match=r"`patience` must be >= 0. Received: patience=-1"):
        training.fit(model, (x, y), epochs=1, patience=-1, verbose=0)


def test_compare_saves_the_best_seed_and_it_reproduces_its_test_accuracy(moons, tmp_path, capsys):
    out = tmp_path / "cmp"
    result = tuning.compare(["mlp"], data=moons, training=TrainingConfig(epochs=3, patience=5), seeds=2, out=out,
                            model_kwargs={"mlp": MLP}, options=tuning.RunOptions(measure_speed=False, verbose=0))
    saved = [r for r in result.records if r.get("model_path") and os.path.exists(out / r["model_path"])]
    assert len(result.records) == 2 and len(saved) == 1  # save_models="best": one per configuration
    record = saved[0]
    assert record["best_epoch"] >= 1 and record["stopped_epoch"] is None  # 3 epochs < patience: ran them all
    card = json.loads((out / record["model_path"]).with_suffix(".json").read_text())
    assert card["id"] == record["id"] and card["metrics"]["test_accuracy"] == record["test_accuracy"]
    assert "models/" in (out / "report.md").read_text()  # the report links it
    assert _test_accuracy_in_a_fresh_process(out / record["model_path"]) == record["test_accuracy"]  # exactly
    assert result.load().count_params() == record["params"]
    exported = tmp_path / "best.keras"
    assert main(["export", str(out), "--out", str(exported)]) == 0
    assert keras.saving.load_model(exported).count_params() == record["params"]
    with open(out / record["model_path"], "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelFileError, match=r"was altered since it was saved: .*\.keras"):
        result.load()
    os.remove(out / record["model_path"])
    with pytest.raises(ModelFileError, match=r"is missing: .*\.keras"):
        result.load()
    capsys.readouterr()
    again = tuning.compare(["mlp"], data=moons, training=TrainingConfig(epochs=3, patience=5), seeds=2, out=out,
                           model_kwargs={"mlp": MLP}, options=tuning.RunOptions(measure_speed=False, report=False))
    assert [r["id"] for r in again.records] == [r["id"] for r in result.records]  # nothing retrained
    assert "is missing (not retrained)" in capsys.readouterr().out


def test_search_keeps_the_front_loads_the_best_and_logs_tensorboard(moons, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    directory, logs = tmp_path / "s", tmp_path / "tb"
    result = tuning.search("mlp", data=moons, directory=str(directory), budget=4, training=TrainingConfig(epochs=2),
                           options=tuning.RunOptions(report=False, measure_speed=False, log_dir=str(logs), verbose=0))
    front = {r["id"] for r in result.pareto()}
    on_disk = {r["id"] for r in result.records if r.get("model_path") and os.path.exists(directory / r["model_path"])}
    assert on_disk == front and result.best_record["id"] in front
    # a trial that an earlier one dominates was never written (it could not come back on the front): brute force
    assert result.objectives == [("val_accuracy", "max"), ("params", "min")]
    written = [r.get("model_path") is not None for r in result.records]
    assert written == [not any(e["val_accuracy"] >= r["val_accuracy"] and e["params"] <= r["params"]
                               and (e["val_accuracy"], e["params"]) != (r["val_accuracy"], r["params"])
                               for e in result.records[:k])
                       for k, r in enumerate(result.records)]
    assert not all(written), written  # the check above met a dominated trial
    assert result.load_best().count_params() == result.best_record["params"]
    best = result.best_record
    assert _test_accuracy_in_a_fresh_process(directory / best["model_path"]) == best["test_accuracy"]
    assert not os.path.exists(directory / "checkpoints") or not os.listdir(directory / "checkpoints")
    for r in result.records:  # one TensorBoard run per trial, with its scalars and HParams
        events = EventAccumulator(str(logs / r["id"] / "train"))
        events.Reload()
        assert "epoch_loss" in events.Tags()["tensors"] + events.Tags()["scalars"]
        assert len(open(logs / r["id"] / "log.csv").read().strip().splitlines()) == 3  # header + 2 epochs
        session = EventAccumulator(str(logs / r["id"]))
        session.Reload()
        content = session.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
        assert start.group_name == r["id"] and set(start.hparams) >= {"model", *r["hyperparameters"]} - {"tuner/epochs"}
        assert {"val_accuracy", "params"} <= set(session.Tags()["tensors"])


def test_a_killed_trial_resumes_from_its_last_finished_epoch(moons, tmp_path):
    # The first run is killed (SIGKILL) as epoch 3 of 6 begins; the second trains only epochs 4 to 6.
    out = tmp_path / "cmp"
    script = textwrap.dedent(f"""
        import os, tuning, zoo
        from tuning import artifacts
        from zoo.training import TrainingConfig
        saved = artifacts.EpochCheckpoint.on_epoch_end
        def on_epoch_end(self, epoch, logs=None):
            saved(self, epoch, logs)
            if epoch == 1:  # the checkpoint of epoch 2 is on disk: die as epoch 3 starts
                os.kill(os.getpid(), 9)
        artifacts.EpochCheckpoint.on_epoch_end = on_epoch_end
        tuning.compare(["mlp"], data=zoo.data.load("moons", num_samples=200, seed=0), training=TrainingConfig(epochs=6),
                       seeds=1, out={str(out)!r}, model_kwargs={{"mlp": {MLP!r}}},
                       options=tuning.RunOptions(measure_speed=False, verbose=0))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]
    state = json.loads(next((out / "checkpoints").iterdir()).joinpath("state.json").read_text())
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2
    result = tuning.compare(["mlp"], data=moons, training=TrainingConfig(epochs=6), seeds=1, out=out,
                            model_kwargs={"mlp": MLP},
                            options=tuning.RunOptions(measure_speed=False, report=False, verbose=0))
    record = result.records[0]
    assert record["resumed_from_epoch"] == 2 and record["epochs_run"] == 4
    assert all(len(v) == 6 for v in record["history"].values())
    assert record["history"]["loss"][:2] == state["history"]["loss"]
    # the two epochs before the kill count in its training time (issue 28: they were left out)
    assert len(state["epoch_seconds"]) == 2 and record["epoch_seconds"][:2] == state["epoch_seconds"]
    assert len(record["epoch_seconds"]) == 6 and record["fit_seconds"] > sum(record["epoch_seconds"][2:])
    assert record["seconds_per_epoch"] == pytest.approx(record["fit_seconds"] / 6)
    assert not os.listdir(out / "checkpoints")  # deleted once the record was written


def test_a_damaged_checkpoint_is_discarded_with_a_note(moons, tmp_path):
    files = TrialFiles(str(tmp_path), "t1", checkpoint=True)
    os.makedirs(files.checkpoint_dir)
    with open(os.path.join(files.checkpoint_dir, "state.json"), "w") as f:
        json.dump({"epoch": 1, "seed": 0, "history": {"loss": [0.5]}}, f)
    with open(os.path.join(files.checkpoint_dir, "model.keras"), "wb") as f:
        f.write(b"not a zip")
    record = run_trial("mlp", moons, TrialPlan(training=TrainingConfig(epochs=2), measure_speed=False), trial_id="t1",
                       files=files)
    assert record["status"] == "completed" and record.get("resumed_from_epoch") is None
    assert "discarded a damaged checkpoint" in record["notes"][0] and len(record["history"]["loss"]) == 2


def test_onecycle_and_plateau_schedules():
    lr = training.make_schedule("onecycle", 0.1, total_steps=100)
    values = [float(lr(step)) for step in (0, 30, 100)]
    np.testing.assert_allclose(values, [0.1 / 25, 0.1, 0.1 / 25 / 1e4], rtol=1e-4)
    assert training.make_schedule("plateau", 0.1) == 0.1  # fit adds ReduceLROnPlateau
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 8)).astype("float32"), (rng.random(40) < 0.5).astype("int32")
    xv, yv = rng.normal(size=(40, 8)).astype("float32"), (rng.random(40) < 0.5).astype("int32")
    model = zoo.build("mlp", input_shape=(8,), num_classes=2, hidden_units=(64, 64))
    history = training.fit(model, (x, y), (xv, yv), epochs=12, batch_size=8, learning_rate=1e-2,
                           schedule="plateau", verbose=0)
    rates = history.history["learning_rate"]
    assert rates[0] == pytest.approx(1e-2) and min(rates) <= 1e-3 + 1e-9  # reduced once validation stalled


def test_lr_find_suggests_a_rate_that_trains(tmp_path):
    bundle = zoo.data.load("digits", image_size=32, channels=1)
    keras.utils.set_random_seed(0)
    model = zoo.build("lenet5", input_shape=bundle.input_shape, num_classes=10)
    before = [w.copy() for w in model.get_weights()]
    result = training.lr_find(model, bundle.train, steps=100)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the sweep left no trace
    assert result.stopped_early and 1e-4 < result.suggestion < 1e-1
    assert result.rates == sorted(result.rates) and len(result.losses) == len(result.rates)
    assert os.path.getsize(result.plot(str(tmp_path / "lr.png"))) > 5_000
    fresh = zoo.build("lenet5", input_shape=bundle.input_shape, num_classes=10)
    history = training.fit(fresh, bundle.train, bundle.validation, epochs=3, learning_rate=result.suggestion, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.85  # it converges at the suggestion
    with pytest.raises(ValueError, match=r"`end_lr` must be larger than `start_lr`"):
        training.lr_find(model, bundle.train, start_lr=1.0, end_lr=0.1)


def test_cli_lr_find(tmp_path, capsys):
    out = tmp_path / "lr.png"
    code = main(["lr-find", "mlp", "--data", "moons", "--arg", "hidden_units=[16]", "--steps", "60",
                 "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "suggested learning rate:" in text and out.exists()


def test_a_search_keeping_the_best_model_writes_only_the_best_so_far(moons, tmp_path):
    result = tuning.search("mlp", data=moons, directory=str(tmp_path), budget=4, training=TrainingConfig(epochs=1),
                           options=tuning.RunOptions(report=False, measure_speed=False, verbose=0,
                                                     save_models="best"))
    accuracy = [r["val_accuracy"] for r in result.records]
    written = [r.get("model_path") is not None for r in result.records]
    assert written == [a >= max(accuracy[:k], default=a) for k, a in enumerate(accuracy)]  # ties are written
    assert not all(written), accuracy  # the check met a trial worse than an earlier one
    on_disk = [r["id"] for r in result.records if r.get("model_path") and os.path.exists(tmp_path / r["model_path"])]
    assert on_disk == [result.best_record["id"]]


def test_a_trial_is_not_saved_only_when_a_point_of_the_kept_front_dominates_it():
    from tuning.trial import _dominated

    record = {"val_accuracy": 0.9, "params": 1000, "val_loss": float("nan")}
    best = (("val_accuracy", "max"),)  # save_models="best": the front of the one objective
    assert not _dominated(record, None) and not _dominated(record, (best, ()))
    assert not _dominated(record, (best, ((-0.9,),)))  # a tie may still be the best record (on other objectives)
    assert _dominated(record, (best, ((-0.91,),)))
    pareto = (("val_accuracy", "max"), ("params", "min"))
    assert not _dominated(record, (pareto, ((-0.95, 2000.0), (-0.8, 10.0))))  # better in one objective each
    assert _dominated(record, (pareto, ((-0.95, 2000.0), (-0.9, 999.0))))
    assert not _dominated(record, ((("val_loss", "min"),), ((0.1,),)))  # not finite: kept, as the run decides


def test_validation_metrics_taken_from_the_last_epoch_equal_evaluating_the_final_weights(moons, tmp_path):
    """Without early stopping, run_trial reads the validation metrics from fit's last epoch instead of a
    second pass: they are the final weights' metrics (the saved model, evaluated again, gives the same)."""
    files = TrialFiles(str(tmp_path), "t0", save_model=True, checkpoint=False)
    record = run_trial("mlp", moons, TrialPlan(training=TrainingConfig(epochs=2), measure_speed=False), trial_id="t0",
                       seed=1, files=files)
    assert record["status"] == "completed"
    assert record["val_loss"] == record["history"]["val_loss"][-1]
    model = keras.saving.load_model(tmp_path / record["model_path"])
    again = model.evaluate(moons.validation, verbose=0, return_dict=True)
    assert again["loss"] == pytest.approx(record["val_loss"], abs=1e-6)
    assert again["accuracy"] == pytest.approx(record["val_accuracy"], abs=1e-6)


def test_compare_times_each_model_once_and_its_other_seeds_copy_it(moons, tmp_path):
    result = tuning.compare(["mlp"], data=moons, training=TrainingConfig(epochs=1), seeds=2, out=tmp_path,
                            model_kwargs={"mlp": MLP},
                            options=tuning.RunOptions(report=False, verbose=0, save_models=None))
    first, second = result.records
    assert first["latency_ms"] > 0 and "speed_from_seed" not in first
    assert second["speed_from_seed"] == first["seed"]
    assert (second["latency_ms"], second["throughput"]) == (first["latency_ms"], first["throughput"])
    assert "speed" in first["timings"] and "speed" not in second["timings"]
