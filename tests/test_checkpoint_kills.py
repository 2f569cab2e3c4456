"""A trial killed at any of its writes resumes from a consistent epoch and leaves no temporary file; a damaged
checkpoint is discarded with a note naming its folder (issue 29, items 1, 5, 6)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest

import tuning
import zoo
from tuning import artifacts, comparison
from tuning.artifacts import TrialFiles, load_saved_model
from tuning.manifest import read_manifest
from tuning.trial import TrialPlan, run_trial
from zoo.training import TrainingConfig

MLP = {"hidden_units": (16,)}
EPOCHS = 3


@pytest.fixture(scope="module")
def moons():
    return zoo.data.load("moons", num_samples=200, seed=0)


def _compare(moons, out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a records line cut by the kill is reported, and expected here
        result = tuning.compare(["mlp"], data=moons, training=TrainingConfig(epochs=EPOCHS), seeds=1, out=str(out),
                                model_kwargs={"mlp": MLP},
                                options=tuning.RunOptions(save_models="all", measure_speed=False, report=False,
                                                          verbose=0))
    return result.records[0]


def _temporaries(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, names in os.walk(folder) for f in names
                  if ".tmp-" in f)


@pytest.mark.heavy
def test_a_kill_at_any_write_of_a_trial_resumes_from_a_consistent_epoch(moons, tmp_path, monkeypatch):
    # One uninterrupted run copies its folder at every write point of the trial (each rename of a checkpoint's
    # model and state, of the saved model and its card: just before and just after it; the record: cut
    # mid-line, and written but the checkpoint not yet deleted): each copy is what a kill there leaves.
    # Each copy is then resumed; the copies' temporary files name this (living) process, which writes
    # nothing while a trial starts, so they count as a killed writer's.
    run, kills = tmp_path / "run", []

    def snapshot(label, cut_record=None):
        copy = tmp_path / f"kill{len(kills):02d}"
        shutil.copytree(run, copy)
        if cut_record is not None:  # the kill came mid-line
            with open(copy / "records.jsonl", "a") as f:
                f.write(json.dumps(cut_record)[:40])
        kills.append((label, copy))

    real_replace, real_append = os.replace, comparison.append_record

    def replace(src, dst, *args, **kwargs):
        where = os.path.relpath(os.fspath(dst), run)
        watched = where.startswith(("models", "checkpoints"))
        if watched:
            snapshot(f"before renaming {where}")
        real_replace(src, dst, *args, **kwargs)
        if watched:
            snapshot(f"after renaming {where}")

    def append(path, record):
        snapshot("during the record's append", cut_record=record)
        real_append(path, record)
        snapshot("after the record's append")

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(comparison, "append_record", append)
    whole = _compare(moons, run)
    monkeypatch.undo()
    assert whole["status"] == "completed" and len(kills) == 4 * (EPOCHS - 1) + 4 + 2

    worst = 0.0
    for label, folder in kills:
        states = list(folder.glob("checkpoints/*/state.json"))
        epoch = json.loads(states[0].read_text())["epoch"] if states else None
        record = _compare(moons, folder)
        where = f"kill {label}: {record.get('notes')}"
        assert record["status"] == "completed" and "notes" not in record, where
        assert record.get("resumed_from_epoch") == (epoch if label != "after the record's append" else None), where
        assert all(len(values) == EPOCHS for values in record["history"].values()), where
        if record.get("resumed_from_epoch"):
            assert record["epochs_run"] == EPOCHS - epoch, where
        worst = max(worst, abs(record["history"]["loss"][-1] - whole["history"]["loss"][-1]),
                    abs(record["val_loss"] - whole["val_loss"]))
        assert _temporaries(folder) == [], where
        assert load_saved_model(str(folder), record).count_params() == whole["params"], where
    print(f"{len(kills)} kill points; largest loss difference from the uninterrupted run: {worst:.2e}")
    assert worst < 0.01


def test_a_saved_model_write_killed_by_sigkill_leaves_no_temporary_after_the_resume(moons, tmp_path):
    # A real kill -9 between the saved model's write and its rename: its temporary file names a dead process.
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, tuning, zoo
        from zoo.training import TrainingConfig
        real = os.replace
        def replace(src, dst):
            if os.path.basename(os.path.dirname(dst)) == "models":
                os.kill(os.getpid(), 9)
            real(src, dst)
        os.replace = replace
        tuning.compare(["mlp"], data=zoo.data.load("moons", num_samples=200, seed=0),
                       training=TrainingConfig(epochs={EPOCHS}), seeds=1, out={str(out)!r},
                       model_kwargs={{"mlp": {MLP!r}}},
                       options=tuning.RunOptions(save_models="all", measure_speed=False, report=False, verbose=0))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    left = _temporaries(out)
    assert len(left) == 1 and left[0].startswith(os.path.join("models", "")) and left[0].endswith(".keras")
    record = _compare(moons, out)
    assert record["status"] == "completed" and record["resumed_from_epoch"] == EPOCHS - 1
    assert _temporaries(out) == []


def test_only_a_dead_or_older_writers_temporary_files_are_removed(tmp_path):
    files = TrialFiles(str(tmp_path), "t1")
    os.makedirs(files.checkpoint_dir)
    os.makedirs(os.path.dirname(files.model_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead": os.path.join(tmp_path, "models", f"t1.tmp-{dead.pid}.keras"),
            "dead card": os.path.join(tmp_path, "models", f"t1.json.tmp-{dead.pid}"),
            "dead state": os.path.join(files.checkpoint_dir, f"state.json.tmp-{dead.pid}"),
            "live": os.path.join(tmp_path, "models", f"t1.tmp-{live.pid}.keras"),
            "live but older than this run": os.path.join(files.checkpoint_dir, f"model-2.tmp-{live.pid}.keras"),
            "another trial's": os.path.join(tmp_path, "models", f"t10.tmp-{dead.pid}.keras"),
        }
        for path in names.values():
            open(path, "w").close()
        old = artifacts._STARTED - 60
        os.utime(names["live but older than this run"], (old, old))
        removed = files.remove_dead_temporaries()
        assert sorted(removed) == sorted(names[k] for k in ("dead", "dead card", "dead state",
                                                            "live but older than this run"))
        assert os.path.exists(names["live"]) and os.path.exists(names["another trial's"])
    finally:
        live.kill()
        live.wait()


@pytest.fixture(scope="module")
def checkpoint(moons, tmp_path_factory):
    """A trial's checkpoint after its first epoch (a run of 2 epochs leaves it: its caller deletes it)."""
    folder = tmp_path_factory.mktemp("template")
    files = TrialFiles(str(folder), "t1")
    record = run_trial("mlp", moons, TrialPlan(training=TrainingConfig(epochs=2), measure_speed=False), trial_id="t1",
                       files=files)
    assert record["status"] == "completed" and os.path.exists(os.path.join(files.checkpoint_dir, "state.json"))
    return files.checkpoint_dir


def _damage(checkpoint, tmp_path, change, moons, whole=False):
    """The note of the trial (2 epochs) resumed from a copy of ``checkpoint`` whose state ``change`` altered (its
    record, ``whole=True``)."""
    files = TrialFiles(str(tmp_path), "t1")
    shutil.copytree(checkpoint, files.checkpoint_dir)
    path = os.path.join(files.checkpoint_dir, "state.json")
    with open(path) as f:
        state = json.load(f)
    change(state, files.checkpoint_dir)
    with open(path, "w") as f:
        json.dump(state, f)
    record = run_trial("mlp", moons, TrialPlan(training=TrainingConfig(epochs=2), measure_speed=False),
                       trial_id="t1", files=files)
    assert record["status"] == "completed" and record.get("resumed_from_epoch") is None
    assert len(record["history"]["loss"]) == 2
    with open(path) as f:  # the checkpoint there is the restarted trial's (its caller deletes it)
        assert json.load(f)["history"]["loss"] == record["history"]["loss"][:1]
    (note,) = record["notes"]
    assert note.startswith(f"{files.checkpoint_dir}: discarded a damaged checkpoint") and "restarts" in note
    return record if whole else note


def test_a_checkpoint_whose_epoch_is_a_boolean_is_discarded(checkpoint, moons, tmp_path):
    note = _damage(checkpoint, tmp_path, lambda state, _: state.update(epoch=True), moons)
    assert "epoch True is not a whole number" in note


def test_a_checkpoint_whose_history_holds_strings_is_discarded(checkpoint, moons, tmp_path):
    note = _damage(checkpoint, tmp_path, lambda state, _: state["history"].update(loss=["0.5"]), moons)
    assert "history of 'loss' is not 1 finite number" in note


def test_a_checkpoint_whose_history_is_longer_than_its_epoch_is_discarded(checkpoint, moons, tmp_path):
    note = _damage(checkpoint, tmp_path, lambda state, _: state["history"].update(loss=[0.7, 0.6, 0.5]), moons)
    assert "history of 'loss' is not 1 finite number" in note


def test_a_checkpoint_at_another_optimizer_iteration_is_discarded(checkpoint, moons, tmp_path):
    note = _damage(checkpoint, tmp_path, lambda state, _: state.update(iterations=state["iterations"] + 1), moons)
    assert "optimizer is at iteration" in note


def test_a_checkpoint_whose_model_file_changed_is_discarded(checkpoint, moons, tmp_path):
    def change(state, folder):
        with open(os.path.join(folder, state["model"]), "ab") as f:
            f.write(b"\0")
    assert "is not the file its state names" in _damage(checkpoint, tmp_path, change, moons)


def _other_variables(state, folder, moons):
    """The checkpoint's variables file replaced by a trained model of another width's (its hash updated)."""
    other = zoo.build("mlp", input_shape=(2,), num_classes=2, hidden_units=(3,))
    zoo.training.compile_model(other)
    x, y = moons.arrays("train")
    other.fit(x[:8], y[:8], verbose=0)  # its optimizer built
    other.optimizer.iterations.assign(state["iterations"])
    path = os.path.join(folder, state["model"])
    os.remove(path)
    artifacts.save_variables(other, path)
    state["model_sha256"] = artifacts._sha256(path)
    return other


def test_a_checkpoint_of_another_architecture_is_discarded(checkpoint, moons, tmp_path):
    # Its state rewritten to match (hash and iterations): only the variables' shapes tell it from the trial's.
    note = _damage(checkpoint, tmp_path / "a", lambda state, folder: _other_variables(state, folder, moons), moons)
    assert "variables-1.npz is not of the trial's architecture (its variables' number or shapes" in note

    def also_its_architecture(state, folder):  # the state names the other model's layers too
        state["architecture"] = artifacts._as_json(artifacts.architecture(_other_variables(state, folder, moons)))
    note = _damage(checkpoint, tmp_path / "b", also_its_architecture, moons)
    assert "variables-1.npz is not of the trial's architecture (its layers" in note


def test_a_checkpoint_whose_optimizer_differs_is_discarded_and_the_trial_restarts_untouched(checkpoint, moons,
                                                                                            tmp_path):
    # One optimizer array less, hash updated: found once the optimizer is built, before anything is assigned.
    def change(state, folder):
        path = os.path.join(folder, state["model"])
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        del arrays[max(k for k in arrays if k.startswith("o"))]
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        state["model_sha256"] = artifacts._sha256(path)
    note = _damage(checkpoint, tmp_path / "a", change, moons)
    assert "CheckpointMismatch: its 13 optimizer arrays are not the trial's optimizer's 14 variables" in note
    fresh = run_trial("mlp", moons, TrialPlan(training=TrainingConfig(epochs=2), measure_speed=False), trial_id="t1")
    again = _damage(checkpoint, tmp_path / "b", change, moons, whole=True)
    assert again["history"] == fresh["history"]  # the restart trained from the model as built, as a fresh trial


def test_a_checkpoint_with_a_compressed_or_oversized_array_is_discarded(checkpoint, moons, tmp_path):
    def rewrite(name, data, compress):
        def change(state, folder):
            path = os.path.join(folder, state["model"])
            with zipfile.ZipFile(path) as z:
                members = {m: z.read(m) for m in z.namelist()}
            members[name] = data(members[name])
            with zipfile.ZipFile(path, "w", compression=compress) as z:
                for m, content in members.items():
                    z.writestr(m, content)
            state["model_sha256"] = artifacts._sha256(path)
        return change
    note = _damage(checkpoint, tmp_path / "a", rewrite("m00000.npy", lambda b: b, zipfile.ZIP_DEFLATED), moons)
    assert "its member 'm00000.npy' is not an array it writes" in note
    note = _damage(checkpoint, tmp_path / "b", rewrite("o00001.npy", lambda b: b + bytes(1 << 20), zipfile.ZIP_STORED),
                   moons)
    assert "its array 'o00001.npy' is 104" in note and "larger than any variable" in note


def test_a_checkpoint_written_by_earlier_versions_as_a_keras_model_still_resumes(moons, tmp_path):
    # The format of runs killed before the variables checkpoint: model-E.keras, its optimizer state included.
    files = TrialFiles(str(tmp_path), "t1")
    plan = TrialPlan(training=TrainingConfig(epochs=3), measure_speed=False)
    whole = run_trial("mlp", moons, plan, trial_id="t1")
    zoo.training.set_seed(0)
    model = zoo.build("mlp", input_shape=moons.input_shape, num_classes=moons.num_classes)
    history = zoo.training.fit(model, moons.restarted().train, moons.validation, epochs=1, seed=0, verbose=0)
    os.makedirs(files.checkpoint_dir)
    path = os.path.join(files.checkpoint_dir, "model-1.keras")
    model.save(path)
    with open(os.path.join(files.checkpoint_dir, "state.json"), "w") as f:
        json.dump({"epoch": 1, "seed": 0, "history": {k: [float(v[0])] for k, v in history.history.items()},
                   "epoch_seconds": [0.5], "model": "model-1.keras", "model_sha256": artifacts._sha256(path),
                   "iterations": int(model.optimizer.iterations)}, f)
    record = run_trial("mlp", moons, plan, trial_id="t1", files=files)
    assert record["status"] == "completed" and "notes" not in record and record["resumed_from_epoch"] == 1
    assert record["epochs_run"] == 2 and len(record["history"]["loss"]) == 3
    assert abs(record["history"]["loss"][-1] - whole["history"]["loss"][-1]) < 0.01
    state = json.loads(open(os.path.join(files.checkpoint_dir, "state.json")).read())
    # its next epoch's checkpoint is a variables file, and the .keras one is gone
    assert state["model"] == "variables-2.npz"
    assert sorted(os.listdir(files.checkpoint_dir)) == ["state.json", "variables-2.npz"]


def test_a_run_manifest_nested_too_deep_is_refused_naming_it(tmp_path):
    (tmp_path / "search.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"search\.json is unreadable \(is nested deeper than 64 levels\)"):
        read_manifest(tmp_path)
    (tmp_path / "search.json").write_text('{"a": ' * 100 + "1" + "}" * 100)  # parses, but no manifest is so deep
    with pytest.raises(ValueError, match=r"search\.json is unreadable \(is nested deeper"):
        read_manifest(tmp_path)


def test_checkpoints_of_recorded_trials_go_and_a_fresh_run_keeps_none(tmp_path):
    """A kill between a record's append and its checkpoint's deletion left the folder for good; a run that
    starts over (resume=False) could resume a trial from the old run's checkpoint."""
    from tuning.artifacts import CHECKPOINTS_DIR, clear_checkpoints

    root = tmp_path / CHECKPOINTS_DIR
    for name in ("0001", "0001-x1", "0002", "lenet5-seed0-abc"):
        (root / name).mkdir(parents=True)
        (root / name / "state.json").write_text("{}")
    removed = clear_checkpoints(str(tmp_path), [{"id": "0001"}, {"id": "lenet5-seed0-abc"}])
    assert sorted(os.path.basename(p) for p in removed) == ["0001", "0001-x1", "lenet5-seed0-abc"]
    assert sorted(os.listdir(root)) == ["0002"]  # a trial without a record keeps its checkpoint
    clear_checkpoints(str(tmp_path))
    assert os.listdir(root) == []


def test_a_mixed_float16_trial_resumes_with_its_loss_scale(moons, tmp_path):
    # The .keras checkpoint lost the loss-scale optimizer's state ("optimizer is at iteration 0") and restarted.
    files = TrialFiles(str(tmp_path), "t1")
    plan = TrialPlan(training=TrainingConfig(epochs=2, precision="mixed_float16"), measure_speed=False)
    first = run_trial("mlp", moons, plan, trial_id="t1", files=files)  # 2 epochs leave the first's checkpoint
    again = run_trial("mlp", moons, plan, trial_id="t1", files=files)
    assert first["status"] == again["status"] == "completed" and "notes" not in again
    assert again["resumed_from_epoch"] == 1 and again["history"]["loss"][0] == first["history"]["loss"][0]
