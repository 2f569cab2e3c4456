"""Tuning: HyperModels from the registry, searches that record everything, failures, Pareto selection."""

import json
import math
import re

import keras
import keras_tuner as kt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tuning
import zoo
import zoo.data
from tuning import fronts as P
from tuning.constraints import apply_constraints
from tuning.hypermodels import (
    ArchitectureHyperModel,
    FamilyHyperModel,
    TrainingSpace,
    families,
    family_hypermodels,
    make_hypermodel,
)
from tuning.records import read_records
from tuning.trial import speed_key, speed_table
from tuning.searches.engine import declared_space as _declared_space
from zoo.cli import main
from zoo.training import TrainingConfig

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
# A small search space: the MLP family with Adam only, so that trials are quick.
QUICK = {"optimizer": ("adam",), "schedule": ("constant",), "weight_decay": (0.0,)}


@pytest.fixture(scope="module")
def moons():
    return zoo.data.load("moons", num_samples=400)


# --------------------------------------------------------------------------- Pareto and constraints

def _record(i, status, acc, params, secs):
    return {"id": str(i), "status": status, "val_accuracy": acc, "params": params, "fit_seconds": secs}


_value = st.one_of(st.integers(0, 6).map(float), st.just(float("nan")), st.none())
_records = st.lists(
    st.tuples(st.sampled_from(["completed", "completed", "completed", "failed", "infeasible"]), _value, _value, _value),
    max_size=25,
).map(lambda rows: [_record(i, *row) for i, row in enumerate(rows)])


def _brute_front(records, maximize, minimize):
    def ok(r):
        return r["status"] == "completed" and all(
            isinstance(r[f], float) and math.isfinite(r[f]) for f in maximize + minimize)

    pool = [r for r in records if ok(r)]

    def at_least(a, b):  # a is at least as good as b everywhere
        return all(a[f] >= b[f] for f in maximize) and all(a[f] <= b[f] for f in minimize)

    def better(a, b):
        return any(a[f] > b[f] for f in maximize) or any(a[f] < b[f] for f in minimize)

    return [r for r in pool if not any(at_least(q, r) and better(q, r) for q in pool)]


@settings(max_examples=150, deadline=None, database=None)
@given(_records)
def test_pareto_matches_brute_force(records):
    for maximize, minimize in ((("val_accuracy",), ("params", "fit_seconds")), (("val_accuracy",), ("params",)),
                               ((), ("params", "fit_seconds"))):
        front = tuning.pareto(records, maximize=maximize, minimize=minimize)
        assert [r["id"] for r in front] == [r["id"] for r in _brute_front(records, maximize, minimize)]
        assert all(r["status"] == "completed" for r in front)
        knee = P.knee_point(records, maximize=maximize, minimize=minimize)
        assert (knee is None) == (not front) and (knee is None or knee in front)


@settings(max_examples=100, deadline=None, database=None)
@given(_records, st.integers(0, 7).map(float))
def test_best_under_matches_brute_force(records, bound):
    got = P.best_under(records, objective="val_accuracy", max_params=bound)
    pool = [r for r in records if r["status"] == "completed" and isinstance(r["val_accuracy"], float)
            and math.isfinite(r["val_accuracy"]) and isinstance(r["params"], float) and math.isfinite(r["params"])
            and r["params"] <= bound]
    if not pool:
        assert got is None
    else:
        assert got["val_accuracy"] == max(r["val_accuracy"] for r in pool)
        assert got["params"] <= bound


def test_knee_point_prefers_the_elbow():
    records = [_record(0, "completed", 0.50, 10.0, 1.0), _record(1, "completed", 0.90, 100.0, 1.0),
               _record(2, "completed", 0.91, 1e6, 1.0), _record(3, "failed", 0.99, 5.0, 1.0)]
    assert P.knee_point(records, maximize="val_accuracy", minimize="params")["id"] == "1"
    assert [r["id"] for r in P.pareto(records, maximize="val_accuracy", minimize="params")] == ["0", "1", "2"]
    assert P.best_under(records, objective="params", direction="min")["id"] == "0"  # failed trial 3 never counts
    with pytest.raises(ValueError, match="direction='best'"):
        P.best_under(records, direction="best")
    with pytest.raises(ValueError, match="Unknown constraint"):
        P.best_under(records, max_parms=3)
    with pytest.raises(ValueError, match="at least one objective"):
        P.pareto(records)


def test_apply_constraints_marks_infeasible_and_keeps_measurements():
    r = apply_constraints(_record(0, "completed", 0.9, 5000.0, 2.0), {"max_params": 1000, "max_fit_seconds": 10})
    assert r["status"] == "infeasible" and "params=5000.0 > 1000" in r["error"] and r["params"] == 5000.0
    ok = apply_constraints(_record(1, "completed", 0.9, 500.0, 2.0), {"max_params": 1000})
    assert ok["status"] == "completed" and ok.get("error") is None and ok["constraints"] == {"max_params": 1000}
    failed = apply_constraints(_record(2, "failed", None, 5000.0, 2.0), {"max_params": 1000})
    assert failed["status"] == "failed"
    with pytest.raises(ValueError, match="Unknown constraint"):
        apply_constraints(_record(3, "completed", 0.9, 1.0, 1.0), {"max_size": 3})
    assert P.best_under([r, ok], max_params=1e4)["id"] == "1"  # infeasible records are not ranked


# --------------------------------------------------------------------------- HyperModels

def test_every_family_gets_a_hypermodel_with_stable_names_and_defaults():
    by_family = family_hypermodels(input_shape=(32, 32, 3), num_classes=10)
    # every family takes 32x32x3 (the MLP flattens it) but Inception v3, at least 75x75 as torchvision's
    assert set(by_family) == set(families()) - {"inception_v3"}
    assert zoo.get_card("inception_v3").min_input_size == 75
    by_family["mlp"] = FamilyHyperModel("mlp", input_shape=(2,), num_classes=2)
    for family, hm in by_family.items():
        hp = _declared_space(hm, None)
        assert all(SNAKE.match(p.name) for p in hp.space), family
        assert all(p.default is not None for p in hp.space), family
        names = {p.name for p in hp.space}
        assert {"optimizer", "learning_rate", "schedule", "weight_decay", "batch_size"} <= names
        if len(hm.variants) > 1:
            assert hp.get("variant") == hm.variants[0]
        lr = next(p for p in hp.space if p.name == "learning_rate")
        assert lr.sampling == "log"


def test_family_hypermodel_builds_the_zoo_model():
    hm = FamilyHyperModel("convnet", input_shape=(16, 16, 3), num_classes=4, tiny=True, fixed={"dense_units": (8,)})
    hp = kt.HyperParameters()
    model = hm.build(hp)
    expected = zoo.build("convnet", **{**zoo.get_card("convnet").test_kwargs, "input_shape": (16, 16, 3),
                                       "num_classes": 4, "dense_units": (8,), "width": 1.0, "dropout": 0.0,
                                       "convs_per_stage": 2, "kernel_size": 3})
    assert model.name == "convnet" and model.count_params() == expected.count_params()
    assert "batch_norm" not in hp.values and "dense_units" not in hp.values  # fixed by the card / by `fixed`
    hp.values["width"] = 0.5
    assert hm.build(hp).count_params() < model.count_params()


def test_architecture_choice_uses_conditional_scopes():
    hm = ArchitectureHyperModel(["convnet", "resnet20"], input_shape=(16, 16, 3), num_classes=3, tiny=True)
    space = _declared_space(hm, None)
    names = {p.name: p for p in space.space}
    assert names["model"].values == ["convnet", "resnet20"]
    assert names["convnet_dropout"].conditions[0].values == ["convnet"]
    assert not names["optimizer"].conditions  # training hyperparameters are shared
    hp = space.copy()
    hp.values["model"] = "resnet20"
    assert hm.build(hp).name.startswith("resnet20")
    assert not hp.is_active(names["convnet_dropout"])
    assert isinstance(make_hypermodel(["convnet", "resnet20"], input_shape=(16, 16, 3), num_classes=3),
                      ArchitectureHyperModel)
    assert isinstance(make_hypermodel("resnet2*", input_shape=(16, 16, 3), num_classes=3), FamilyHyperModel)
    with pytest.raises(ValueError, match="cannot take inputs"):
        make_hypermodel(["lenet5"], input_shape=(16, 16, 1), num_classes=3)
    with pytest.raises(ValueError, match="No registered model or family"):
        make_hypermodel("nosuchnet*", input_shape=(16, 16, 1), num_classes=3)
    with pytest.raises(ValueError, match="optimizer"):
        TrainingSpace(optimizer=("adamx",))


def test_hypermodel_fit_trains_with_the_hp_chosen_settings(moons):
    hm = make_hypermodel("mlp", data=moons, training={**QUICK, "batch_size": (16, 64)})
    hp = kt.HyperParameters()
    model = hm.build(hp)
    history = hm.fit(hp, model, *moons.arrays("train"), validation_data=moons.arrays("validation"), epochs=1)
    assert hp.values["batch_size"] == 16 and model.optimizer.__class__.__name__ == "Adam"
    assert math.isfinite(history.history["val_loss"][0])


# --------------------------------------------------------------------------- searches

RECORD_FIELDS = ("params", "trainable_params", "macs", "weight_bytes", "fit_seconds", "seconds_per_epoch",
                 "latency_ms", "throughput", "peak_memory_bytes", "val_accuracy", "val_loss", "test_accuracy",
                 "trial_seconds")


def test_search_records_every_field(moons, tmp_path, capsys):
    result = tuning.search("mlp", data=moons, algorithm=tuning.Bayesian(num_initial_points=2), budget=3,
                           training=TrainingConfig(epochs=2), directory=tmp_path,
                           space=tuning.SearchSpace(training=QUICK),
                           options=tuning.RunOptions(report=False), seed=1)
    out = capsys.readouterr().out
    assert len(result.records) == 3 and [r["id"] for r in result.records] == ["0000", "0001", "0002"]
    assert len(read_records(tmp_path / "records.jsonl")) == 3
    for r in result.records:
        assert r["status"] == "completed" and r["error"] is None and r["model"] == "mlp"
        for f in RECORD_FIELDS:
            assert isinstance(r[f], (int, float)) and r[f] >= 0 and math.isfinite(r[f]), f
        assert r["params"] > 0 and r["macs"] > 0 and r["latency_ms"] > 0 and r["throughput"] > 0
        assert set(r["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert all(len(v) == 2 for v in r["history"].values()) and r["epochs"] == 2
        assert r["backend"] == keras.backend.backend() and r["versions"]["keras_tuner"] == kt.__version__
        assert r["host"]["name"] and r["data"] == moons.fingerprint
        assert {"learning_rate", "hidden_units", "batch_size"} <= set(r["hyperparameters"])
        assert r["tuner_id"] == "tuner0" and r["algorithm"] == "bayesian" and r["search"] == result.manifest["id"]
        assert f"trial {r['id']} completed" in out
    manifest = json.loads((tmp_path / "run.json").read_text())
    assert manifest["data"]["fingerprint"] == moons.fingerprint and manifest["kind"] == "search"
    assert manifest["objectives"] == [{"name": "val_accuracy", "direction": "max"}]
    best = max(result.records, key=lambda r: r["val_accuracy"])
    assert result.best["val_accuracy"] == best["val_accuracy"]
    front = result.pareto()
    assert front == tuning.pareto(result.records, maximize="val_accuracy", minimize="params")  # the search's own
    assert result.knee() in front and result.best_under(max_params=1e9)["val_accuracy"] == best["val_accuracy"]
    assert result.best_under(max_params=1) is None
    assert "best: trial" in result.summary()


class _Cases(kt.HyperModel):
    """One trial per case, in order under GridSearch: four NaN losses in a row, an OOM, an invalid config."""

    CASES = ["nan_a", "nan_b", "nan_c", "nan_d", "ok_a", "oom", "invalid", "ok_b"]

    def build(self, hp):
        case = hp.Choice("case", self.CASES)
        if case == "oom":
            import tensorflow as tf

            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape [1000000000]")
        model = zoo.build("mlp", input_shape=(2,), num_classes=2, hidden_units=(0,) if case == "invalid" else (8,))
        if case.startswith("nan"):
            kernel = model.get_layer("head_predictions").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model


def test_failed_trials_are_recorded_and_never_abort_or_rank(moons, tmp_path):
    result = tuning.search(_Cases(), data=moons, algorithm="grid", budget=8, training=TrainingConfig(epochs=1),
                           directory=tmp_path, options=tuning.RunOptions(report=False, measure_speed=False, verbose=0))
    by_case = {r["hyperparameters"]["case"]: r for r in result.records}
    assert list(by_case) == _Cases.CASES  # all eight ran although four failed in a row
    for case in ("nan_a", "nan_b", "nan_c", "nan_d"):
        assert by_case[case]["status"] == "failed" and "non-finite loss" in by_case[case]["error"]
        assert by_case[case]["params"] > 0 and by_case[case].get("val_accuracy") is None
    assert by_case["oom"]["status"] == "failed" and by_case["oom"]["error"].startswith("out of memory")
    assert by_case["invalid"]["status"] == "failed" and by_case["invalid"]["error"].startswith("invalid configuration")
    assert by_case["ok_a"]["status"] == by_case["ok_b"]["status"] == "completed"
    assert by_case["ok_a"]["model"] == "mlp"  # the built model's name, not the HyperModel's
    assert result.best["hyperparameters"]["case"] in ("ok_a", "ok_b")
    assert {r["hyperparameters"]["case"] for r in result.pareto()} <= {"ok_a", "ok_b"}
    # the oracle saw FAILED trials without a score: nothing fake entered its ranking
    trials = result.tuner.oracle.trials.values()
    assert sorted(t.status for t in trials) == ["COMPLETED"] * 2 + ["FAILED"] * 6
    assert all(t.score is None for t in trials if t.status == "FAILED")
    assert result.tuner.oracle.get_best_trials(1)[0].hyperparameters.values["case"] in ("ok_a", "ok_b")


def test_cli_tune_with_hyperband_and_bad_input(tmp_path, capsys):
    assert main(["tune", "mlp", "--data", "moons", "--epochs", "3", "--max-trials", "2", "--algorithm",
                 "hyperband", "--directory", str(tmp_path), "--constraint", "max_params=1e9", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "trial 0000 completed" in out and "best: trial" in out and "Pareto front" in out
    records = read_records(tmp_path / "records.jsonl")
    assert len(records) == 2 and all(r["hyperparameters"]["tuner/epochs"] == r["epochs"] == 1 for r in records)
    for bad, message in ((["--constraint", "max_parms=3"], "Unknown constraint"),
                         (["--constraint", "max_params"], "look like"),
                         (["--algorithm", "grid", "--objective", "val_fun"], "maximise or minimise")):
        assert main(["tune", "mlp", "--data", "moons", "--directory", str(tmp_path / "bad"), *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("zoo tune: error:") and message in err[0]
    assert main(["tune", "nosuchnet", "--data", "moons", "--directory", str(tmp_path / "bad")]) == 2
    assert "nosuchnet" in capsys.readouterr().err


def test_each_trial_starts_from_a_clear_session(moons):
    """No per-trial slow-down: Keras' global state (graphs, layer-name counters) is dropped after every trial."""
    from tuning.trial import TrialPlan, run_trial

    names = []

    def build():
        inputs = keras.Input(moons.input_shape)
        hidden = keras.layers.Dense(8, activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
        names.append([layer.name for layer in model.layers[1:]])
        return model

    for trial in range(3):
        plan = TrialPlan(training=TrainingConfig(epochs=1, precision="mixed_bfloat16" if trial == 1 else None),
                         measure_speed=False)
        record = run_trial(build, moons, plan, trial_id=str(trial))
        assert record["status"] == "completed", record["error"]
        assert record["precision"] == ("mixed_bfloat16" if trial == 1 else "float32")
    assert names[0] == names[1] == names[2] == ["dense", "dense_1"]
    assert keras.mixed_precision.global_policy().name == "float32"


def test_modern_families_offer_their_variants_smallest_first_with_width_and_stochastic_depth():
    import keras_tuner as kt

    from tuning.hypermodels import FamilyHyperModel

    hm = FamilyHyperModel("convnext", input_shape=(32, 32, 3), num_classes=3)
    assert hm.variants == ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]
    assert set(hm._available()) == {"width", "stochastic_depth"}
    hm = FamilyHyperModel("regnet", input_shape=(32, 32, 3), num_classes=3, tiny=True,
                          variants=["regnet_x_400mf", "regnet_y_400mf"])
    hp = kt.HyperParameters()
    model = hm.build(hp)
    assert hp.get("variant") == "regnet_x_400mf" and model.output_shape == (None, 3)
    assert FamilyHyperModel("efficientnet", input_shape=(32, 32, 3), num_classes=3).variants[0] == "efficientnet_b0"


def test_a_search_times_each_architecture_once_and_later_trials_copy_its_figures(moons, tmp_path):
    """Issue 33: a model's speed does not depend on its weights: a search that varies only training settings
    times the architecture in its first trial; the others copy those figures and say from which trial."""
    result = tuning.search("mlp", data=moons, budget=3, training=TrainingConfig(epochs=1), directory=tmp_path,
                           space=tuning.SearchSpace(training=QUICK, fixed={"hidden_units": (8,)}, tune=()),
                           options=tuning.RunOptions(report=False, verbose=0, speed_iterations=2), seed=0)
    first, *later = result.records
    assert len({r["hyperparameters"]["learning_rate"] for r in result.records}) == 3  # three trainings...
    assert len({r["architecture"] for r in result.records}) == 1 and first["architecture"]  # ...of one model
    assert "speed" in first["timings"] and "speed_from_trial" not in first
    for r in later:
        assert "speed" not in r["timings"] and r["speed_from_trial"] == first["id"]
        assert (r["latency_ms"], r["throughput"]) == (first["latency_ms"], first["throughput"])
    # another architecture (or batch size, or precision) is timed anew
    other = dict(first, id="9", architecture="another", speed_from_trial=None, latency_ms=9.0)
    table = speed_table([first, *later, other])
    assert table[speed_key(first)]["speed_from_trial"] == first["id"] and table[speed_key(other)]["latency_ms"] == 9.0
    assert speed_key(dict(first, batch_size=7)) not in table and speed_key(dict(first, architecture=None)) is None


def test_a_trial_at_another_batch_size_steps_once_a_batch(moons):
    # The data's pipeline rebatched to 7 loses its length; over a dataset of unknown length Keras stepped once
    # past the end of each epoch and counted that step in the optimizer's iterations (Adam's bias correction and
    # a schedule's position ran ahead), with a "ran out of data" warning.
    import warnings

    from tuning.trial import TrialPlan, run_trial

    seen = []

    class Iterations(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = run_trial("mlp", moons, TrialPlan(training=TrainingConfig(epochs=2, batch_size=7), measure_speed=False,
                                                   callbacks=(Iterations(),)), trial_id="t1")
    steps = math.ceil(moons.num_examples["train"] / 7)
    assert record["status"] == "completed" and seen == [steps, 2 * steps]
    assert not [w for w in caught if "ran out of data" in str(w.message)]
