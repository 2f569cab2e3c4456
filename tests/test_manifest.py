"""The run manifest (tuning/manifest.py): one format for comparisons and searches, and the one migration step
through which folders of the earlier format (tests/fixtures/runs_format1) still report and resume."""

import json
import pathlib
import shutil

import pytest

import tuning
import zoo.data
from tuning.manifest import make_manifest, objectives_of, read_manifest, write_manifest
from tuning.records import new_record, read_records
from tuning.report import regenerate
from zoo.training import TrainingConfig

FORMAT_1 = pathlib.Path(__file__).parent / "fixtures" / "runs_format1"
DATA = {"name": "moons", "num_samples": 200}
DATA_ENTRY = {"name": "moons", "fingerprint": "abc", "batch_size": 32}


def _copy(name, tmp_path):
    return pathlib.Path(shutil.copytree(FORMAT_1 / name, tmp_path / name))


def test_a_manifest_reads_back_as_written_and_its_id_is_what_the_run_is(tmp_path):
    manifest = make_manifest("search", identity={"seed": 1}, objectives=[("val_loss", "min")], data=DATA_ENTRY,
                             budget={"max_trials": 3}, provenance={"b": 1, "a": [1, 2]})
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest and objectives_of(manifest) == [("val_loss", "min")]
    more = make_manifest("search", identity={"seed": 1}, objectives=[("val_loss", "min")], data=DATA_ENTRY,
                         budget={"max_trials": 30})
    other = make_manifest("search", identity={"seed": 2}, objectives=[("val_loss", "min")], data=DATA_ENTRY)
    assert more["id"] == manifest["id"] != other["id"]  # the budget may grow; the identity may not change
    with pytest.raises(ValueError, match="`kind`"):
        make_manifest("sweep", identity={}, objectives=[], data=DATA_ENTRY)
    (tmp_path / "run.json").write_text("{cut sh")
    with pytest.raises(ValueError, match=r"run\.json is unreadable .* cannot be guessed"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path / "empty") is None  # no run there


def test_records_that_do_not_say_which_way_is_better_are_refused_not_guessed(tmp_path):
    records = [new_record(id="0", model="mlp", algorithm="random", objective="val_widgets", val_widgets=3.0)]
    with pytest.raises(ValueError, match="Cannot tell whether to maximise or minimise 'val_widgets'"):
        read_manifest(tmp_path, records=records)
    stated = [new_record(id="0", model="mlp", algorithm="random", objectives=[["val_widgets", "max"]])]
    assert objectives_of(read_manifest(tmp_path, records=stated)) == [("val_widgets", "max")]


def test_a_format_1_comparison_reports_and_resumes(tmp_path, capsys):
    run = _copy("comparison", tmp_path)
    manifest = read_manifest(run)
    assert manifest["kind"] == "comparison" and objectives_of(manifest) == [("val_accuracy", "max")]
    assert "records.jsonl" in manifest["migrated_from"]
    for _ in range(2):  # its report keeps the data, training and models of the earlier report, written again
        report = regenerate(run)
        md = open(report.paths["markdown"], encoding="utf-8").read()
        assert [(row["label"], row["completed"]) for row in report.rows] == [("mlp", 2)]
        for text in ("data: `moons` (embedded", '"learning_rate": 0.01', '"patience": 3', '"hidden_units": [8]',
                     "seeds: 0, 1"):
            assert text in md, text
    capsys.readouterr()
    training = TrainingConfig(epochs=2, learning_rate=0.01, patience=3)
    result = tuning.compare(["mlp"], data=zoo.data.load(**DATA), training=training, seeds=2, out=run,
                            model_kwargs={"mlp": {"hidden_units": (8,)}},
                            options=tuning.RunOptions(measure_speed=False, save_models=None, report=False))
    assert capsys.readouterr().out.count("reused from") == 2  # the same trials, recognised: nothing retrained
    assert len(read_records(run / "records.jsonl")) == 2 and len(result.records) == 2
    assert read_manifest(run)["kind"] == "comparison" and "migrated_from" not in read_manifest(run)


def test_a_format_1_search_reports_and_resumes_and_refuses_a_changed_search(tmp_path):
    run = _copy("search", tmp_path)
    manifest = read_manifest(run)
    assert manifest["kind"] == "search" and manifest["id"] == json.loads((run / "search.json").read_text())["search"]
    assert objectives_of(manifest) == [("val_accuracy", "max"), ("params", "min")]
    md = open(regenerate(run).paths["markdown"], encoding="utf-8").read()
    assert "## Search" in md and "from search.json (format 1), an older run folder" in md
    before = read_records(run / "records.jsonl")

    def search(seed=2):
        return tuning.search(
            "mlp", data=zoo.data.load(**DATA), objectives=[("val_accuracy", "max"), ("params", "min")],
            training=TrainingConfig(epochs=1), algorithm=tuning.NSGA2(population_size=2), budget=4, seed=seed,
            space=tuning.SearchSpace(training={"optimizer": ("adam",), "schedule": ("constant",),
                                               "weight_decay": (0.0,)}, fixed={"hidden_units": (8,)}),
            directory=run, options=tuning.RunOptions(measure_speed=False, save_models=None, report=False, verbose=0))

    with pytest.raises(ValueError, match=r"different search: identity\.seed 2 -> 5"):
        search(seed=5)
    result = search()
    assert [r["id"] for r in result.records] == ["0000", "0001", "0002", "0003"]
    assert result.records[:3] == before and any("resumed: 3" in note for note in result.notes)
    assert {r["search"] for r in result.records} == {manifest["id"]}  # the run keeps its id
    assert read_manifest(run)["format"] == 2 and read_manifest(run)["id"] == manifest["id"]


def test_a_resumed_search_refuses_changed_training_settings_of_its_own_hypermodel(tmp_path):
    """A HyperModel that builds its own model trains with the whole TrainingConfig: all of it is the identity."""
    import keras

    def build(hp):
        inputs = keras.Input((2,))
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(hp.Int("units", 2, 8))(inputs)))

    def search(**training):
        options = tuning.RunOptions(measure_speed=False, report=False, verbose=0)
        return tuning.search(build, data=zoo.data.load(**DATA), training=TrainingConfig(epochs=1, **training), budget=1,
                             directory=tmp_path, options=options)

    assert search(optimizer="sgd", learning_rate=0.5).records[0]["status"] == "completed"
    with pytest.raises(ValueError, match=r"identity\.training\.batch_size None -> 7.*identity\.training\.optimizer"):
        search(optimizer="adam", batch_size=7)
    with pytest.raises(ValueError, match="The search space sets \\['optimizer'\\]"):
        tuning.search("mlp", data=zoo.data.load(**DATA), training=TrainingConfig(optimizer="sgd"),
                      directory=tmp_path / "z")


def test_a_misspelled_objective_or_a_run_folder_of_another_kind_fails_before_any_trial(tmp_path, capsys):
    """Issue 28: `val_acc` trained every trial and ended "best: none"; a search and a comparison mixed their
    records in one folder. Both are refused before anything is trained or written."""
    from zoo.cli import main

    data = zoo.data.load(**DATA)
    with pytest.raises(ValueError, match=r"objective 'val_acc' is not a field the trials record\. Did you mean: "
                                         r"val_accuracy"):
        tuning.search("mlp", data=data, objectives=("val_acc", "max"), directory=tmp_path / "s")
    assert not (tmp_path / "s" / "records.jsonl").exists()
    assert main(["tune", "mlp", "--data", "moons", "--objectives", "val_acc:max", "--directory",
                 str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "val_acc" in err[0]
    comparison = _copy("comparison", tmp_path)
    with pytest.raises(ValueError, match=r"holds a comparison, not a search"):
        tuning.search("mlp", data=data, directory=comparison, budget=1)
    search_run = _copy("search", tmp_path)
    with pytest.raises(ValueError, match=r"holds a search, not a comparison"):
        tuning.compare(["mlp"], data=data, out=search_run)
    assert len(read_records(comparison / "records.jsonl")) == 2 and len(read_records(search_run / "records.jsonl")) == 3
