"""The search report: its plots from real and synthetic records, hypervolume and importance, pruned trials
never ranked, fronts decided on validation, SearchResult.hypervolume / dataframe."""

import json

import numpy as np
import pytest

import tuning
import zoo.data
from tuning.indicators import default_reference, hypervolume
from tuning.manifest import make_manifest, read_manifest
from tuning.records import new_record
from tuning.report import regenerate, summarize_records, write_report
from tuning.report import plots as report_plots
from tuning.report import search_plots as sp
from tuning.report.write import search_context
from tuning.searches import SearchResult
from zoo.training import TrainingConfig

PNG = b"\x89PNG\r\n\x1a\n"
QUICK = {"optimizer": ("adam",), "schedule": ("constant",), "weight_decay": (0.0,)}
SEARCH_PLOTS = ("search_history", "search_hypervolume", "search_parallel", "search_importance", "search_slices")


def assert_png(path):
    from matplotlib.image import imread

    with open(path, "rb") as f:
        assert f.read(8) == PNG, path
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01  # not blank


# ---------------------------------------------------------------------------- a real small search

@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    """Eight trials of an MLP on moons (1 epoch), with the search report written."""
    directory = tmp_path_factory.mktemp("search")
    data = zoo.data.load("moons", num_samples=300)
    result = tuning.search("mlp", data=data, objectives="val_loss", algorithm="random", budget=8,
                           training=TrainingConfig(epochs=1), directory=directory, seed=3,
                           space=tuning.SearchSpace(training={**QUICK, "batch_size": (16, 64)}),
                           options=tuning.RunOptions(measure_speed=False, save_models=None, verbose=0))
    return result


def test_real_search_report_has_the_search_section(search_run):
    result = search_run
    completed = result.completed
    assert len(completed) >= sp.MIN_IMPORTANCE_RECORDS
    paths = result.report
    assert paths, result.notes
    for name in SEARCH_PLOTS:
        assert_png(paths[name])
    md = open(paths["markdown"], encoding="utf-8").read()
    html = open(paths["html"], encoding="utf-8").read()
    assert "## Search" in md and "<h2>Search</h2>" in html
    assert "`val_loss` (min), `params` (min)" in md and "from the run manifest" in md
    reference = default_reference(result.records, [("val_loss", "min"), ("params", "min")])
    value = hypervolume(result.records, fields=[("val_loss", "min"), ("params", "min")], reference=reference)
    assert value > 0 and f"**{value:.6g}**, reference point ({', '.join(f'{v:.6g}' for v in reference)})" in md
    for name in SEARCH_PLOTS:
        assert f"plots/{name}.png" in md
    assert html.count("data:image/png;base64,") == md.count("](plots/")
    assert "Pareto front computed on validation accuracy; test values shown for reference" in md
    # the SearchResult agrees with the report
    assert result.objectives == [("val_loss", "min"), ("params", "min")]
    assert result.default_reference() == reference and result.hypervolume() == pytest.approx(value)
    assert f"hypervolume {value:.6g}" in result.summary()
    # regenerated from the directory alone: the same section
    again = regenerate(result.directory).paths
    assert open(again["markdown"], encoding="utf-8").read() == md


def test_every_search_plot_renders_from_real_records(search_run, tmp_path):
    records = search_run.records
    objectives = [("val_loss", "min"), ("params", "min")]
    paths = [
        sp.plot_history(records, str(tmp_path / "history.png"), objective="val_accuracy", direction="max"),
        sp.plot_hypervolume_history(records, str(tmp_path / "hv.png"), objectives=objectives,
                                    reference=default_reference(records, objectives)),
        sp.plot_parallel_coordinates(records, str(tmp_path / "parallel.png"), objective="val_loss", direction="min"),
    ]
    importances = sp.hyperparameter_importance(records, objective="val_loss")
    assert {name for name, _, _ in importances} <= set(sp.hyperparameter_table(records, objective="val_loss")["names"])
    paths.append(sp.plot_importance(importances, str(tmp_path / "importance.png"), objective="val_loss"))
    top = [name for name, _, _ in importances[:3]]
    paths.append(sp.plot_slices(records, str(tmp_path / "slices.png"), names=top, objective="val_loss",
                                direction="min"))
    for path in paths:
        assert_png(path)
    assert sp.hyperparameter_importance(records, objective="val_loss") == importances  # deterministic


def test_search_result_dataframe(search_run):
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            search_run.dataframe()
    pandas = pytest.importorskip("pandas")
    frame = search_run.dataframe()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == len(search_run.records)
    assert {"id", "status", "val_loss", "params", "hp/learning_rate", "hp/batch_size"} <= set(frame.columns)
    assert "history" not in frame.columns


def test_dataframe_without_pandas_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match="needs pandas.*pip install pandas"):
        SearchResult(directory="runs/x", records=[]).dataframe()


# ---------------------------------------------------------------------------- synthetic search records

def _search_records(n=40, seed=0, statuses=True):
    """A search's records: val_accuracy driven by `hp_a` (plus a little noise); `hp_b` and `colour` are noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b = float(rng.uniform(0, 1)), float(rng.uniform(0, 1))
        colour = ["red", "green", "blue"][int(rng.integers(3))]
        acc = 0.5 + 0.4 * a ** 2 + 0.01 * float(rng.normal())
        status = "completed"
        if statuses and i % 10 == 4:
            status = "failed"
        elif statuses and i % 10 == 7:
            status = "pruned"
        out.append(new_record(
            id=f"{i:04d}", model="mlp", hyperparameters={"hp_a": a, "hp_b": b, "colour": colour}, seed=0,
            status=status, epochs=2, history={"loss": [1.0, 0.5], "val_loss": [1.1, 0.6]},
            val_accuracy=None if status == "failed" else min(acc, 1.0), test_accuracy=acc - 0.02, val_loss=1 - acc,
            params=int(1000 + 9000 * b), fit_seconds=1.0 + a, algorithm="random", objective="val_accuracy",
        ))
    return out


def test_importance_ranks_the_driving_hyperparameter_first():
    importances = sp.hyperparameter_importance(_search_records(60), objective="val_accuracy")
    names = [name for name, _, _ in importances]
    assert names[0] == "hp_a", importances
    assert importances[0][1] > 5 * max(m for n, m, _ in importances if n != "hp_a")


def test_importance_skips_with_a_reason():
    with pytest.raises(ValueError, match="at least 6"):
        sp.hyperparameter_importance(_search_records(5, statuses=False), objective="val_accuracy")
    same = [dict(r, hyperparameters={"hp_a": 1.0}) for r in _search_records(10, statuses=False)]
    with pytest.raises(ValueError, match="no hyperparameter takes more than one value"):
        sp.hyperparameter_importance(same, objective="val_accuracy")


def test_hyperparameter_table_encodings():
    records = _search_records(12, statuses=False)
    records[0]["hyperparameters"]["hp_a"] = 1000.0  # a span of 1000x: log axis
    records[1]["hyperparameters"].pop("hp_b")  # an absent conditional value
    records[2]["hyperparameters"]["units"] = [32, 32]
    records[3]["model"] = "lenet5"  # two models: `model` becomes a column
    table = sp.hyperparameter_table(records, objective="val_accuracy")
    assert table["kinds"] == {"hp_a": "log", "hp_b": "numeric", "colour": "categorical", "units": "categorical",
                              "model": "categorical"}
    assert table["categories"]["units"] == ["(absent)", "32x32"]
    j = table["names"].index("hp_b")
    assert table["encoded"][1, j] < np.delete(table["encoded"][:, j], 1).min()
    assert table["encoded"].shape == (12, 5) and np.isfinite(table["encoded"]).all()


def test_synthetic_search_report_and_pruned_trials_never_ranked(tmp_path):
    records = _search_records(30)
    pruned = [r for r in records if r["status"] == "pruned"]
    for r in pruned:  # a pruned trial may carry the best partial score: it still never ranks
        r["val_accuracy"], r["params"] = 0.999, 10
    paths = write_report(records, tmp_path, title="Search").paths
    for name in SEARCH_PLOTS:
        assert_png(paths[name])
    md = open(paths["markdown"], encoding="utf-8").read()
    assert "3 failed, 0 infeasible, 3 pruned" in md and "## Failed, infeasible and pruned trials" in md
    assert "from records.jsonl (no manifest), an older run folder" in md
    rows = summarize_records(records)
    best = next(r for r in rows if r["best"])
    assert best["record_ids"] and best["val_accuracy_mean"] < 0.999
    assert sum(r["pruned"] for r in rows) == 3 and not any(set(r["record_ids"]) & {p["id"] for p in pruned}
                                                           for r in rows)
    pruned_rows = [r for r in rows if r["pruned"]]
    assert all(r["diagnosis"] == "pruned" and not r["best"] and not r["pareto_time"] for r in pruned_rows)
    result = SearchResult(directory=str(tmp_path), records=records)
    assert len(result.pruned) == 3 and "3 pruned" in result.summary() and "pruned=3" in repr(result)
    ids = {r["id"] for r in pruned}
    assert result.best_record["id"] not in ids
    assert not ids & {r["id"] for r in result.pareto()} and result.knee()["id"] not in ids
    assert result.best_under(max_params=100) is None
    fields = [("val_accuracy", "max"), ("params", "min")]
    assert result.hypervolume() == hypervolume([r for r in records if r["status"] == "completed"], fields=fields,
                                               reference=default_reference(records, fields))


def test_search_result_objectives_from_the_manifest():
    records = _search_records(20)
    manifest = {"objectives": [{"name": "val_accuracy", "direction": "max"}, {"name": "fit_seconds",
                                                                                "direction": "min"}]}
    result = SearchResult(directory="x", records=records, manifest=manifest)
    assert result.objectives == [("val_accuracy", "max"), ("fit_seconds", "min")]
    reference = result.default_reference()
    assert reference[0] == 0.0 and reference[1] == pytest.approx(1.1 * max(
        r["fit_seconds"] for r in records if r["status"] == "completed"))
    assert result.hypervolume(reference=(0.5, 3.0)) == hypervolume(records, fields=result.objectives,
                                                                   reference=(0.5, 3.0))
    assert result.hypervolume([("val_loss", "min"), ("params", "min")], (1.0, 1e5)) > 0
    assert SearchResult(directory="x", records=[]).hypervolume() == 0.0


def test_search_context_reads_the_objectives_from_the_manifest(tmp_path):
    records = _search_records(10)
    bare = [{k: v for k, v in r.items() if k not in ("algorithm", "objective")} for r in records]
    data = {"name": "moons", "fingerprint": "abc", "batch_size": 32}
    comparison = make_manifest("comparison", identity={}, objectives=[("val_accuracy", "max")], data=data)
    assert search_context(records, comparison) is None  # no search section
    single = make_manifest("search", identity={}, objectives=[("val_loss", "min")], data=data)
    context = search_context(records, single)
    assert context["objectives"] == [("val_loss", "min"), ("params", "min")] and context["algorithm"] == "random"
    assert context["source"] == "from the run manifest"
    # a search folder of format 1 (search.json) is migrated: its three objectives and its algorithm
    (tmp_path / "search.json").write_text(json.dumps({
        "search": "0123456789abcdef", "algorithm": {"name": "nsga2", "population_size": 4},
        "objectives": [{"name": "val_accuracy", "direction": "max"}, {"name": "params", "direction": "min"},
                       {"name": "fit_seconds", "direction": "min"}]}))
    context = search_context(bare, read_manifest(tmp_path))
    assert context["objectives"][2] == ("fit_seconds", "min") and context["algorithm"] == "nsga2"
    assert "search.json (format 1)" in context["source"]
    # three objectives: the report states a 3-D hypervolume
    paths = write_report(records, tmp_path / "report", title="3 objectives", run_dir=str(tmp_path)).paths
    md = open(paths["markdown"], encoding="utf-8").read()
    assert "`val_accuracy` (max), `params` (min), `fit_seconds` (min): **" in md
    assert_png(paths["search_hypervolume"])
    given = write_report(records, tmp_path / "given", title="given", manifest=single).paths
    assert "`val_loss` (min), `params` (min)" in open(given["markdown"], encoding="utf-8").read()


def test_plots_of_thousands_of_trials_stay_cheap(tmp_path):
    import time

    records = []
    for k in range(4):
        for r in _search_records(500, seed=k):
            records.append(dict(r, id=f"{k}{r['id']}"))
    start = time.perf_counter()
    sp.plot_history(records, str(tmp_path / "h.png"), objective="val_accuracy")
    sp.plot_parallel_coordinates(records, str(tmp_path / "p.png"), objective="val_accuracy")
    sp.plot_hypervolume_history(records, str(tmp_path / "hv.png"), objectives=[("val_accuracy", "max"),
                                                                                ("params", "min")],
                                reference=(0.0, 1e4))
    sp.plot_slices(records, str(tmp_path / "s.png"), names=["hp_a", "colour"], objective="val_accuracy")
    assert time.perf_counter() - start < 30
    for name in ("h", "p", "hv", "s"):
        assert_png(str(tmp_path / f"{name}.png"))


def test_plot_arguments_are_checked(tmp_path):
    records = _search_records(10)
    with pytest.raises(ValueError, match="direction='up'"):
        sp.plot_history(records, str(tmp_path / "x.png"), objective="val_accuracy", direction="up")
    with pytest.raises(ValueError, match="no completed trial varies"):
        sp.plot_slices(records, str(tmp_path / "x.png"), names=["nope"], objective="val_accuracy")
    with pytest.raises(ValueError, match="hyperparameter that varies"):
        sp.plot_parallel_coordinates([], str(tmp_path / "x.png"), objective="val_accuracy")


# ---------------------------------------------------------------------------- fronts on validation

def _disagreeing_records():
    """Three models whose validation front is {small, big} and whose test front is {small, mid}."""
    specs = [("small", 1_000, 0.85, 0.70), ("mid", 10_000, 0.80, 0.95), ("big", 100_000, 0.95, 0.80)]
    return [new_record(id=name, model=name, seed=0, params=params, val_accuracy=val, test_accuracy=test,
                       fit_seconds=float(i + 1), history={"loss": [1.0, 0.5], "val_loss": [1.1, 0.6]}, epochs=2)
            for i, (name, params, val, test) in enumerate(specs)]


def _front_line(md):
    line = next(line for line in md.splitlines() if line.startswith("- parameters: "))
    return set(line.removeprefix("- parameters: ").split(", "))


def _red_points(monkeypatch, **kwargs):
    """The x values of the points plot_tradeoff draws in the front's colour."""
    from matplotlib.colors import to_rgba

    figures = []
    monkeypatch.setattr(report_plots, "save", lambda fig, path: figures.append(fig) or path)
    rows = summarize_records(_disagreeing_records())
    report_plots.plot_tradeoff(rows, "unused.png", x="params", **kwargs)
    ax = figures[-1].axes[0]
    red = [line for line in ax.get_lines() if line.get_marker() == "o" and line.get_color() == "tab:red"]
    assert len(red) == 1 and to_rgba(red[0].get_color()) == to_rgba("tab:red")
    return sorted(red[0].get_xdata()), ax


def test_fronts_are_decided_on_validation_and_test_is_shown_beside(monkeypatch, tmp_path):
    rows = summarize_records(_disagreeing_records())
    by_label = {r["label"]: r for r in rows}
    assert by_label["mid"]["pareto_time"] is False and by_label["big"]["pareto_time"] is True  # not test's front
    for y in ("val_accuracy", "test_accuracy"):  # a test y is moved aside for its validation counterpart
        xs, ax = _red_points(monkeypatch, y=y)
        assert xs == [1_000, 100_000]
        labels = ax.get_legend_handles_labels()[1]
        assert "test accuracy (for reference)" in labels and "Pareto front on validation accuracy (red)" in labels
    xs, _ = _red_points(monkeypatch, y="val_accuracy", test=False)
    assert xs == [1_000, 100_000]
    monkeypatch.undo()
    paths = write_report(_disagreeing_records(), tmp_path, title="Comparison").paths
    md = open(paths["markdown"], encoding="utf-8").read()
    assert "Pareto front computed on validation accuracy; test values shown for reference" in md
    assert _front_line(md) == {"small", "big"}
    assert "## Search" not in md  # a comparison has no search section


def test_without_validation_the_front_is_on_test_and_says_so(tmp_path):
    records = [{k: v for k, v in r.items() if k != "val_accuracy"} for r in _disagreeing_records()]
    md = open(write_report(records, tmp_path, title="t").paths["markdown"], encoding="utf-8").read()
    assert "Pareto front computed on test accuracy: the records have no validation accuracy." in md
    assert _front_line(md) == {"small", "mid"}


def test_a_search_without_completed_trials_still_reports(tmp_path):
    records = [new_record(id=i, model="mlp", status="failed", error="boom", hyperparameters={"a": i},
                          algorithm="random") for i in range(3)]
    paths = write_report(records, tmp_path, title="all failed").paths
    md = open(paths["markdown"], encoding="utf-8").read()
    assert "0 completed, 3 failed" in md and "`val_accuracy` (max)" in md  # records that state no objective
    assert "No hypervolume: no completed trial" in md and "no parallel coordinates, importance or slices" in md
    assert_png(paths["search_history"])


def test_best_record_breaks_ties_on_the_other_objectives():
    """Issue 28 (README run): a tie on val_accuracy went to the first trial, which the second dominated, so
    `save_models="pareto"` had deleted its model and `result.load_best()` failed."""
    records = [dict(id=f"{i:04d}", model="convnet", status="completed", val_accuracy=acc, params=params,
                    fit_seconds=seconds) for i, (acc, params, seconds) in
               enumerate([(0.916, 705_898, 4.76), (0.150, 34_450, 1.45), (0.916, 577_802, 3.46),
                          (0.916, 577_802, 3.10)])]
    manifest = {"objectives": [{"name": "val_accuracy", "direction": "max"}, {"name": "params", "direction": "min"},
                               {"name": "fit_seconds", "direction": "min"}]}
    result = SearchResult(directory="x", records=records, manifest=manifest)
    assert result.best_record["id"] == "0003"
    assert result.best_record["id"] in {r["id"] for r in result.pareto()}
    single = SearchResult(directory="x", records=records[:3])  # one objective: params breaks the tie
    assert single.best_record["id"] == "0002"
    records[2]["params"] = float("nan")  # a broken value never wins a tie
    assert SearchResult(directory="x", records=records[:3]).best_record["id"] == "0000"
