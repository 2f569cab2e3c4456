"""Exact hypervolume (tuning.indicators): against a brute-force count of dominated cells, hand-computed cases, ZDT1."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tuning
from tuning.indicators import default_reference, hypervolume, hypervolume_history
from tuning.objectives import objective_fields
from tuning.records import new_record


def brute_force(points, reference):
    """The dominated volume (all minimised) by coordinate compression: every cell of the grid of the points' and
    the reference's coordinates is dominated or not as a whole; add the volumes of the dominated ones."""
    points = [p for p in np.asarray(points, dtype=float).reshape(-1, len(reference)) if np.all(p < reference)]
    if not points:
        return 0.0
    m = len(reference)
    axes = [sorted({float(p[d]) for p in points} | {float(reference[d])}) for d in range(m)]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        low = [axes[d][cell[d]] for d in range(m)]
        if any(all(p[d] <= low[d] for d in range(m)) for p in points):
            total += math.prod(axes[d][cell[d] + 1] - low[d] for d in range(m))
    return total


coordinate = st.one_of(st.integers(0, 6).map(float), st.floats(0, 10, allow_nan=False, allow_infinity=False))


def point_sets(m, max_size):
    return st.lists(st.tuples(*[coordinate] * m), min_size=0, max_size=max_size)


# ---------------------------------------------------------------------------- against brute force

@settings(max_examples=150, deadline=None)
@given(points=point_sets(2, 12), reference=st.tuples(coordinate, coordinate))
def test_two_objectives_match_brute_force(points, reference):
    value = hypervolume(np.array(points, dtype=float).reshape(-1, 2), reference=reference)
    assert value == pytest.approx(brute_force(points, reference), rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(points=point_sets(3, 8), reference=st.tuples(coordinate, coordinate, coordinate))
def test_three_objectives_match_brute_force(points, reference):
    value = hypervolume(np.array(points, dtype=float).reshape(-1, 3), reference=reference)
    assert value == pytest.approx(brute_force(points, reference), rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(points=point_sets(3, 8), reference=st.tuples(coordinate, coordinate, coordinate),
       directions=st.tuples(*[st.sampled_from(["max", "min"])] * 3))
def test_maximised_objectives_are_negated_minimised_ones(points, reference, directions):
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    flipped = np.array(points, dtype=float).reshape(-1, 3) * sign
    value = hypervolume(flipped, reference=np.array(reference) * sign, directions=list(directions))
    assert value == pytest.approx(brute_force(points, reference), rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(points=st.one_of(point_sets(2, 10), point_sets(3, 7)), data=st.data())
def test_history_is_the_hypervolume_of_each_prefix(points, data):
    m = len(points[0]) if points else 2
    reference = data.draw(st.tuples(*[coordinate] * m))
    names = ["a", "b", "c"][:m]
    statuses = data.draw(st.lists(st.sampled_from(["completed", "completed", "failed", "pruned", "infeasible"]),
                                  min_size=len(points), max_size=len(points)))
    records = [{"id": str(i), "status": s, **dict(zip(names, p))} for i, (p, s) in enumerate(zip(points, statuses))]
    fields = [(n, "min") for n in names]
    history = hypervolume_history(records, fields, reference)
    assert len(history) == len(records)
    for k in range(len(records)):
        counted = [p for p, s in zip(points[:k + 1], statuses[:k + 1]) if s == "completed"]
        assert history[k] == pytest.approx(brute_force(counted, reference), rel=1e-9, abs=1e-9)
    assert history == sorted(history)  # the front only grows


# ---------------------------------------------------------------------------- hand-computed cases

def test_hand_computed_cases():
    assert hypervolume([[0.5, 0.5]], reference=[1, 1]) == 0.25
    assert hypervolume([[1, 2], [2, 1]], reference=[3, 3]) == 3.0  # two 2x1 boxes overlapping in a 1x1 square
    assert hypervolume([[1, 2], [2, 1], [2, 2]], reference=[3, 3]) == 3.0  # a dominated point adds nothing
    assert hypervolume([[1, 1, 1]], reference=[2, 3, 4]) == 6.0
    # two 3-D boxes, 2x2x1 and 1x1x2 (overlap 1x1x1): 4 + 2 - 1
    assert hypervolume([[0, 0, 1], [1, 1, 0]], reference=[2, 2, 2]) == 5.0
    assert hypervolume([[3.0]], reference=[5.0]) == 2.0
    assert hypervolume(np.empty((0, 2)), reference=[1, 1]) == 0.0
    assert hypervolume([], reference=[1, 1]) == 0.0


def test_points_not_strictly_better_than_the_reference_add_nothing():
    assert hypervolume([[1, 3], [3, 1], [4, 0]], reference=[3, 3]) == 0.0
    assert hypervolume([[1, 3], [2, 2]], reference=[3, 3]) == 1.0
    assert hypervolume([[1, 1, 3]], reference=[3, 3, 3]) == 0.0


def test_zdt1_true_front():
    # ZDT1's front f2 = 1 - sqrt(f1), f1 in [0, 1]; with reference (1, 1) the dominated area is
    # 1 - integral of (1 - sqrt(f1)) = 1 - 1/3 = 2/3 (the 1/3 is the area under the front, not dominated)
    true = 2.0 / 3.0
    errors = []
    for n in (11, 101, 1001, 10001):
        f1 = np.linspace(0.0, 1.0, n)
        value = hypervolume(np.c_[f1, 1.0 - np.sqrt(f1)], reference=(1.0, 1.0))
        assert value < true
        errors.append(true - value)
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-4
    # the same front maximised: 1 - f1 and sqrt(f1), reference (0, 0)
    f1 = np.linspace(0.0, 1.0, 10001)
    flipped = hypervolume(np.c_[1.0 - f1, np.sqrt(f1)], reference=(0.0, 0.0), directions=["max", "max"])
    assert flipped == pytest.approx(true, abs=1e-4)


def test_a_sphere_front_in_three_objectives():
    # points on the unit sphere's positive octant, reference (1, 1, 1): the dominated volume approaches 1 - pi/6
    rng = np.random.default_rng(0)
    points = np.abs(rng.normal(size=(4000, 3)))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    value = hypervolume(points, reference=(1, 1, 1))
    assert 1 - math.pi / 6 - 0.02 < value < 1 - math.pi / 6


# ---------------------------------------------------------------------------- records and directions

def _records():
    rows = [("completed", 0.9, 1000), ("completed", 0.8, 100), ("failed", 0.99, 10), ("pruned", 0.95, 20),
            ("infeasible", 0.97, 30), ("completed", float("nan"), 5), ("completed", 0.5, 500)]
    out = []
    for i, (status, acc, params) in enumerate(rows):
        r = new_record(id=i, model="mlp", status=status, params=params)
        r["val_accuracy"] = acc  # NaN kept, as a record read from another writer may have it
        out.append(r)
    return out


def test_records_count_only_completed_finite_trials():
    records = _records()
    fields = [("val_accuracy", "max"), ("params", "min")]
    # (0.9, 1000) and (0.8, 100) below reference (0, 2000): 0.8 * 1900 + 0.1 * 1000
    expected = 0.8 * 1900 + 0.1 * 1000
    assert hypervolume(records, fields=fields, reference=(0.0, 2000)) == pytest.approx(expected)
    assert hypervolume(records, fields=["val_accuracy", "params"], directions=["max", "min"],
                       reference=(0.0, 2000)) == pytest.approx(expected)
    manifest_style = [{"name": "val_accuracy", "direction": "max"}, {"name": "params", "direction": "min"}]
    assert hypervolume(records, fields=manifest_style, reference=(0.0, 2000)) == pytest.approx(expected)
    assert tuning.hypervolume is hypervolume and tuning.hypervolume_history is hypervolume_history
    history = hypervolume_history(records, fields, (0.0, 2000))
    assert history == pytest.approx([0.9 * 1000, expected, expected, expected, expected, expected, expected])


def test_default_reference_rule():
    records = _records()
    assert default_reference(records, [("val_accuracy", "max"), ("params", "min")]) == (0.0, pytest.approx(1100.0))
    scores = [new_record(id=i, model="m", score=s, loss=l) for i, (s, l) in enumerate([(3.0, 0.5), (5.0, 0.2)])]
    assert default_reference(scores, [("score", "max"), ("loss", "min")]) == (pytest.approx(2.7), pytest.approx(0.55))
    zeros = [new_record(id=i, model="m", cost=0.0, gain=g) for i, g in enumerate([-2.0, 0.0])]
    assert default_reference(zeros, [("cost", "min"), ("gain", "max")]) == (1.0, pytest.approx(-2.2))
    with pytest.raises(ValueError, match="No completed record.*pass `reference`"):
        default_reference([r for r in records if r["status"] != "completed"], [("params", "min")])


# ---------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(points_or_records=[[1, 2, 3, 4]], reference=[5, 5, 5, 5]), ValueError, "1 to 3 objectives.*4"),
    (dict(points_or_records=[[float("nan"), 1]], reference=[2, 2]), ValueError, "must be finite.*row 0"),
    (dict(points_or_records=[[1, 1]], reference=[2, float("nan")]), ValueError, "`reference` must be finite"),
    (dict(points_or_records=[[1, 1]], reference=[2, 2, 2]), ValueError, "one value per objective \\(2\\)"),
    (dict(points_or_records=[1, 2], reference=[2, 2]), ValueError, "\\(n, m\\) array.*shape \\(2,\\)"),
    (dict(points_or_records=[[1, 1]], reference=[2, 2], directions=["up", "min"]), ValueError, "directions=\\['up'"),
    (dict(points_or_records=[[1, 1]], reference=[2, 2], directions=["min"]), ValueError, "one direction per"),
    (dict(points_or_records=[{"a": 1}], reference=[2]), TypeError, "Records need `fields`"),
    (dict(points_or_records=[["a", "b"]], reference=[2, 2]), TypeError, "array of numbers"),
    (dict(points_or_records=[[1, 1]], reference="ab"), TypeError, "`reference` must be a sequence"),
    (dict(points_or_records=[{"a": 1}], reference=[2], fields=[("a", "maximize")]), ValueError, "'maximize'"),
    (dict(points_or_records=[{"a": 1}], reference=[2], fields="a"), TypeError, "fields='a'"),
    (dict(points_or_records=[{"a": 1}], reference=[2], fields=[("a", "min"), ("a", "max")]), ValueError, "twice"),
    (dict(points_or_records=[{k: 1 for k in "abcd"}], reference=[2] * 4, fields=[(k, "min") for k in "abcd"]),
     ValueError, "1 to 3 objectives"),
    (dict(points_or_records=[[1, 1]], reference=[2, 2], fields=[("a", "min"), ("b", "min")]), TypeError,
     "must be records"),
])
def test_bad_input_names_the_argument(kwargs, error, match):
    points = kwargs.pop("points_or_records")
    with pytest.raises(error, match=match):
        hypervolume(points, **kwargs)


def test_objective_fields_forms():
    assert objective_fields([("a", "max"), ["b", "min"], {"name": "c", "direction": "min"}]) == [
        ("a", "max"), ("b", "min"), ("c", "min")]
    with pytest.raises(ValueError, match="at least one"):
        objective_fields([])
    with pytest.raises(ValueError, match="`directions` must give one"):
        objective_fields(["a", "b"], ["max"])
    with pytest.raises(ValueError, match="1 to 3 objectives"):
        hypervolume_history([], [(k, "min") for k in "abcd"], [1] * 4)
