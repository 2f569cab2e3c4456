"""One rule for "better" (issue 27): metric directions, objectives as (name, direction) pairs, dominance and
non-dominated sorting against brute force."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tuning.objectives as objectives
from tuning.fronts import pareto
from tuning.objectives import (
    dominates,
    minimised,
    non_dominated,
    non_dominated_fronts,
    objective,
    objective_fields,
)
from tuning.report.summary import pareto_front
from zoo.utils import metric_direction

DIRECTIONS = [
    # record fields: costs are minimised, throughput maximised
    ("flops", "min"), ("macs", "min"), ("params", "min"), ("trainable_params", "min"), ("weight_bytes", "min"),
    ("latency_ms", "min"), ("fit_seconds", "min"), ("seconds_per_epoch", "min"), ("peak_memory_bytes", "min"),
    ("throughput", "max"),
    # losses and errors
    ("loss", "min"), ("val_loss", "min"), ("test_loss", "min"), ("val_mae", "min"), ("val_mape", "min"),
    ("val_mse", "min"), ("val_root_mean_squared_error", "min"), ("val_mean_absolute_percentage_error", "min"),
    ("val_sparse_categorical_crossentropy", "min"), ("val_kl_divergence", "min"), ("val_logcosh", "min"),
    ("val_squared_hinge", "min"), ("val_false_positives", "min"), ("categorical_generalized_cross_entropy", "min"),
    # scores
    ("val_accuracy", "max"), ("test_accuracy", "max"), ("val_acc", "max"), ("test_auc", "max"), ("val_auc_1", "max"),
    ("val_r2", "max"), ("val_r2_score", "max"), ("val_sparse_categorical_accuracy", "max"),
    ("val_top_k_categorical_accuracy", "max"), ("val_sparse_top_k_categorical_accuracy", "max"),
    ("val_precision", "max"), ("val_recall", "max"), ("val_f1_score", "max"), ("val_fbeta_score", "max"),
    ("val_mean_io_u", "max"), ("val_iou", "max"), ("val_true_positives", "max"), ("val_cosine_similarity", "max"),
    ("val_pearson_correlation", "max"), ("val_precision_at_recall", "max"),
    # unknown, or words that disagree: the caller must say
    ("val_widgets", None), ("score", None), ("", None), ("val_accuracy_loss", None), (None, None), (3, None),
]


@pytest.mark.parametrize("name, direction", DIRECTIONS)
def test_metric_direction_table(name, direction):
    assert metric_direction(name) == direction


def test_one_rule_everywhere():
    """The zoo's early stopping and the tuning objectives read the same rule."""
    from zoo.training import metric_direction as training_rule

    assert training_rule is metric_direction and objectives.metric_direction is metric_direction
    assert metric_direction("val_macs") == "min"  # whole words: "macs" holds "acc" but is a cost


class _KerasTunerObjective:  # what keras_tuner.Objective offers: name and direction
    def __init__(self, name, direction):
        self.name, self.direction = name, direction


def test_objective_forms():
    assert objective("val_accuracy") == ("val_accuracy", "max")
    assert objective("val_widgets", "min") == ("val_widgets", "min")
    assert objective(("params", "min")) == objective(["params", "min"]) == ("params", "min")
    assert objective({"name": "params", "direction": "min"}) == ("params", "min")
    assert objective(_KerasTunerObjective("val_loss", "min")) == ("val_loss", "min")
    assert objective(("latency_ms", None)) == ("latency_ms", "min")  # a missing direction follows the rule
    assert objective_fields(["val_accuracy", ("params", "min"), {"name": "fit_seconds", "direction": "min"}]) == [
        ("val_accuracy", "max"), ("params", "min"), ("fit_seconds", "min")]
    assert objective_fields(["a", "b"], ["max", "min"]) == [("a", "max"), ("b", "min")]


@pytest.mark.parametrize("call, error, match", [
    (lambda: objective("val_widgets"), ValueError, r"maximise or minimise 'val_widgets'.*objective='val_widgets'"),
    (lambda: objective(("params", "lower")), ValueError, r"'max' or 'min'.*'lower'.*objective=\('params', 'lower'\)"),
    (lambda: objective(3, arg="metric"), TypeError, "metric=3"),
    (lambda: objective(("", "max")), TypeError, "field name"),
    (lambda: objective_fields("val_accuracy", arg="objectives"), TypeError, "objectives='val_accuracy'"),
    (lambda: objective_fields(["val_accuracy", "val_widgets"], arg="objectives"), ValueError,
     r"'val_widgets'.*in objectives=\['val_accuracy', 'val_widgets'\]"),
    (lambda: objective_fields(["params", ("params", "min")]), ValueError, "twice"),
    (lambda: objective_fields([]), ValueError, "at least one"),
    (lambda: objective_fields([("a", "min", 1)]), TypeError, r"\('a', 'min', 1\) in fields="),
    (lambda: objective_fields(["a", "b"], ["max"]), ValueError, "one 'max' or 'min' per field"),
    (lambda: objectives.check_direction("up", arg="mode"), ValueError, "`mode` must be 'max' or 'min'.*mode='up'"),
])
def test_bad_objectives_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_minimised_and_dominates():
    assert minimised((0.9, 100), ("max", "min")) == (-0.9, 100.0)
    assert dominates((1, 2), (1, 3)) and not dominates((1, 3), (1, 2))
    assert not dominates((1, 2), (1, 2)) and not dominates((1, 3), (2, 2))
    with pytest.raises(ValueError):
        minimised((1, 2), ("max",))


def _peel(points):
    """Fronts by brute force: repeatedly take the points no remaining point dominates."""
    left, fronts = set(range(len(points))), []
    while left:
        front = sorted(i for i in left if not any(dominates(points[j], points[i]) for j in left))
        fronts.append(front)
        left -= set(front)
    return fronts


# small integer coordinates: many ties in one coordinate and many duplicate points
_points = st.integers(1, 4).flatmap(
    lambda m: st.lists(st.tuples(*[st.integers(0, 4)] * m), max_size=40))


@settings(max_examples=300, deadline=None, database=None)
@given(_points)
def test_non_dominated_sorting_equals_brute_force(points):
    fronts = _peel(points)
    assert non_dominated_fronts(points) == fronts
    assert non_dominated(points) == (fronts[0] if fronts else [])


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.sampled_from([0.0, 0.5, 1.0])), max_size=30))
def test_two_objective_sweep_with_float_ties(points):
    points = points + points[: len(points) // 3]  # duplicates
    assert non_dominated_fronts(points) == _peel(points)


def test_a_front_of_5000_records_makes_no_pairwise_comparisons(monkeypatch):
    """2 objectives: a sort and a sweep, never the quadratic all-pairs dominance test."""
    calls = []
    real = objectives.dominates
    monkeypatch.setattr(objectives, "dominates", lambda a, b: calls.append(1) or real(a, b))
    rng = np.random.default_rng(0)
    acc, params = rng.integers(0, 200, 5000) / 200, rng.integers(1, 300, 5000) * 1000.0
    records = [{"id": i, "status": "completed", "val_accuracy": float(a), "params": float(p)}
               for i, (a, p) in enumerate(zip(acc, params))]
    front = pareto(records, maximize="val_accuracy", minimize="params")
    rows = [{"val_accuracy_mean": r["val_accuracy"], "params_mean": r["params"]} for r in records]
    assert pareto_front(rows, "params", "val_accuracy", "max") == {r["id"] for r in front}
    fronts = non_dominated_fronts([minimised((r["val_accuracy"], r["params"]), ("max", "min")) for r in records])
    assert calls == [] and fronts[0] == [r["id"] for r in front]
    # against brute force, vectorised: j dominates i
    x, y = -acc, params
    better = (x[:, None] <= x) & (y[:, None] <= y) & ((x[:, None] < x) | (y[:, None] < y))
    assert [r["id"] for r in front] == np.flatnonzero(~better.any(axis=0)).tolist()
    assert sum(len(f) for f in fronts) == 5000
