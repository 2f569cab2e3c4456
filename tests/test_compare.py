"""A tiny equal-budget comparison: 2 tiny models x 2 seeds x 1 epoch on the embedded digits at 16x16."""

import csv
import json
import os
import re
import shutil

import pytest

import zoo.data
from tuning import RunOptions, compare
from tuning.records import read_records
from zoo.cli import main as cli_main
from zoo.training import TrainingConfig

MODELS = ["mlp", "convnet"]
KWARGS = {"mlp": {"hidden_units": (16,)}, "convnet": {"filters": (8, 16), "dense_units": (16,)}}


@pytest.fixture(scope="module")
def data():
    return zoo.data.load("digits", image_size=16, channels=1, batch_size=128)


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("cmp")
    result = compare(MODELS, data=data, training=TrainingConfig(epochs=1), seeds=2, out=out, model_kwargs=KWARGS,
                     options=RunOptions(verbose=0, speed_iterations=2), command=["zoo", "compare", "mlp", "convnet"])
    return out, result


def test_records_and_progress(run, capsys):
    out, result = run
    records = read_records(os.path.join(out, "records.jsonl"))
    assert len(records) == 4 and len(result.records) == 4
    assert {(r["model"], r["seed"]) for r in records} == {(m, s) for m in MODELS for s in (0, 1)}
    for r in records:
        assert r["status"] == "completed", r["error"]
        assert r["epochs"] == 1 and r["batch_size"] == 128 and r["data"] == result.records[0]["data"]
        assert len(r["history"]["loss"]) == 1 and "val_accuracy" in r["history"]
        assert r["confusion_split"] == "test" and len(r["confusion_matrix"]) == 10
        assert sum(map(sum, r["confusion_matrix"])) == 359
        for field in ("val_accuracy", "test_accuracy", "params", "macs", "fit_seconds", "latency_ms", "throughput"):
            assert r[field] is not None, field


def test_every_result_row_traces_to_records(run):
    out, result = run
    by_id = {r["id"]: r for r in read_records(os.path.join(out, "records.jsonl"))}
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model"] for r in rows) == sorted(MODELS)
    for row in rows:
        ids = row["record_ids"].split(";")
        assert len(ids) == 2 and all(i in by_id for i in ids)
        assert {by_id[i]["model"] for i in ids} == {row["model"]}
        for field in ("val_accuracy", "test_accuracy", "val_loss", "params", "macs", "fit_seconds", "latency_ms",
                      "throughput"):
            values = [by_id[i][field] for i in ids]
            assert float(row[f"{field}_mean"]) == pytest.approx(sum(values) / 2, rel=1e-12), field
        assert row["diagnosis"] in ("still improving", "good fit", "unclear", "underfitting", "overfitting", "unstable",
                                    "unrepresentative validation")
    assert json.load(open(os.path.join(out, "results.json")))[0]["best"] is True
    assert result.best_row["label"] in MODELS
    best = result.best_record  # the best seed of the best configuration, as SearchResult.best_record is a record
    assert best["id"] in result.best_row["record_ids"]
    assert best["val_accuracy"] == max(by_id[i]["val_accuracy"] for i in result.best_row["record_ids"])


def test_html_is_self_contained_with_every_plot(run):
    out, result = run
    plots = sorted(os.listdir(os.path.join(out, "plots")))
    assert {"accuracy_vs_params.png", "accuracy_vs_macs.png", "accuracy_vs_fit_seconds.png",
            "accuracy_vs_latency_ms.png", "curves.png", "confusion_matrix.png"} <= set(plots)
    html = open(result.paths["html"]).read()
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == len(plots)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in html and "<script" not in html
    md = open(result.paths["markdown"]).read()
    for plot in plots:
        assert f"(plots/{plot})" in md
    for text in ("data fingerprint: `", "seeds: 0, 1", "command: `zoo compare mlp convnet`", "backend: tensorflow",
                 "device: ", "Loss-curve diagnosis"):
        assert text in md, text


def test_report_regenerated_from_records_equals_the_first(run, tmp_path, capsys):
    out, result = run
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("records.jsonl", "run.json", "report_meta.json"):
        shutil.copy(os.path.join(out, name), copy / name)
    shutil.copytree(os.path.join(out, "models"), copy / "models")  # the report links the saved models
    assert cli_main(["report", str(copy)]) == 0
    assert "Report:" in capsys.readouterr().out
    for name in ("report.md", "report.html", "results.csv", "results.json", "plots/curves.png"):
        assert (copy / name).read_bytes() == open(os.path.join(out, name), "rb").read(), name


def test_resume_reuses_completed_trials(run, data, capsys):
    out, result = run
    again = compare(MODELS, data=data, training=TrainingConfig(epochs=1), seeds=2, out=out, model_kwargs=KWARGS,
                    options=RunOptions(report=False))
    assert [r["id"] for r in again.records] == [r["id"] for r in result.records]
    assert capsys.readouterr().out.count("reused from") == 4
    assert len(read_records(os.path.join(out, "records.jsonl"))) == 4


def test_precision_is_recorded_and_part_of_the_trial_identity(run, data, capsys):
    out, result = run
    assert {r["precision"] for r in result.records} == {"float32"}
    mixed = compare(["mlp"], data=data, training=TrainingConfig(epochs=1, precision="mixed_bfloat16"), seeds=1,
                    out=out, model_kwargs={"mlp": KWARGS["mlp"]}, options=RunOptions(report=False, measure_speed=False))
    record = mixed.records[0]
    assert record["status"] == "completed", record["error"]
    assert record["precision"] == "mixed_bfloat16"
    assert record["id"] not in {r["id"] for r in result.records}  # trained again, not reused from float32
    assert "reused from" not in capsys.readouterr().out
    on_file = read_records(os.path.join(out, "records.jsonl"))
    assert [r["id"] for r in on_file if r["precision"] == "mixed_bfloat16"] == [record["id"]]


def test_bad_input_fails_before_training(data, tmp_path):
    with pytest.raises(ValueError, match="Did you mean: resnet20"):
        compare(["resnt20"], data=data, out=tmp_path)
    with pytest.raises(ValueError, match=r"at least \d+x\d+"):
        compare(["lenet5"], data=data, out=tmp_path)
    with pytest.raises(ValueError, match="takes images"):
        compare(["lenet5"], data=zoo.data.load("moons"), out=tmp_path)
    with pytest.raises(ValueError, match="`seeds` must be >= 1"):
        compare(["mlp"], data=data, seeds=0, out=tmp_path)
    with pytest.raises(ValueError, match="not compared"):
        compare(["mlp"], data=data, out=tmp_path, model_kwargs={"lenet5": {}})
    with pytest.raises(ValueError, match="precision.*'half'"):
        compare(["mlp"], data=data, out=tmp_path, training=TrainingConfig(precision="half"))
    assert not os.path.exists(tmp_path / "records.jsonl")
