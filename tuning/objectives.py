"""Which way is better: objective directions, Pareto dominance and non-dominated sorting.

The one place of the tuning package that decides "better". :func:`objective` and :func:`objective_fields`
turn what a caller writes (``"val_accuracy"``, ``("params", "min")``, a search manifest's
``{"name", "direction"}``, a ``keras_tuner.Objective``) into ``(name, direction)`` pairs; a bare name
takes its direction from :func:`zoo.utils.metric_direction`, the rule the zoo's early stopping uses too.
:func:`minimised` turns values into a point that is better where it is lower in every coordinate;
:func:`dominates`, :func:`non_dominated` and :func:`non_dominated_fronts` compare such points;
:func:`front_fields` says which objectives a search's front is over, :func:`front_points` where it stands.

Example:
    >>> objective_fields(["val_accuracy", ("params", "min")])
    [('val_accuracy', 'max'), ('params', 'min')]
    >>> non_dominated_fronts([minimised(p, ("max", "min")) for p in [(0.9, 100), (0.8, 10), (0.7, 50)]])
    [[0, 1], [2]]
"""

from __future__ import annotations

import bisect

from tuning.records import finite
from zoo.utils import metric_direction

__all__ = ["DIRECTIONS", "check_direction", "dominates", "eligible", "front_fields", "front_points", "minimised",
           "non_dominated", "non_dominated_fronts", "objective", "objective_fields"]

DIRECTIONS = ("max", "min")


def check_direction(direction, *, arg="direction") -> str:
    """``direction`` when it is ``"max"`` or ``"min"``; a ValueError naming ``arg`` otherwise."""
    if direction not in DIRECTIONS:
        raise ValueError(f"`{arg}` must be 'max' or 'min'. Received: {arg}={direction!r}")
    return direction


def objective(value, direction=None, *, arg="objective") -> tuple[str, str]:
    """``(name, direction)`` of one objective.

    Args:
        value: a record field name (``"val_accuracy"``), a ``(name, direction)`` pair, a
            ``{"name", "direction"}`` dict, or an object with ``name`` and ``direction`` (``keras_tuner.Objective``).
        direction: ``"max"`` or ``"min"`` for a bare name; by default the name's
            :func:`zoo.utils.metric_direction`.
        arg: the argument named in errors.

    Raises:
        TypeError: ``value`` has none of those forms.
        ValueError: the direction is neither ``"max"`` nor ``"min"``, or a bare name does not tell it.

    Example:
        >>> objective("val_loss"), objective("val_widgets", "max")
        (('val_loss', 'min'), ('val_widgets', 'max'))
    """
    return _objective(value, direction, f"{arg}={value!r}")


def _objective(value, direction, received):
    if isinstance(value, dict):
        name, direction = value.get("name"), value.get("direction") or direction
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        name, direction = value[0], value[1] or direction
    elif hasattr(value, "name") and hasattr(value, "direction"):
        name, direction = value.name, value.direction or direction
    else:
        name = value
    if not isinstance(name, str) or not name:
        raise TypeError(f"An objective must be a field name, a (name, 'max'|'min') pair or a "
                        f"{{'name', 'direction'}} dict. Received: {received}")
    direction = direction or metric_direction(name)
    if direction is None:
        raise ValueError(f"Cannot tell whether to maximise or minimise {name!r}; give ({name!r}, 'max') or "
                         f"({name!r}, 'min'). Received: {received}")
    if direction not in DIRECTIONS:
        raise ValueError(f"Each direction must be 'max' or 'min'. Received: {direction!r} for {name!r} in {received}")
    return name, direction


def objective_fields(fields, directions=None, *, arg="fields") -> list[tuple[str, str]]:
    """``[(name, "max" | "min"), ...]``: a list of objectives, each in a form :func:`objective` takes,
    or names with their ``directions`` beside them. Names must be distinct.

    Example:
        >>> objective_fields([("val_accuracy", "max"), {"name": "params", "direction": "min"}, "latency_ms"])
        [('val_accuracy', 'max'), ('params', 'min'), ('latency_ms', 'min')]
    """
    if isinstance(fields, (str, bytes, dict)) or not hasattr(fields, "__iter__"):
        raise TypeError(f"`{arg}` must be a list of names or (name, 'max'|'min') pairs. Received: {arg}={fields!r}")
    items = list(fields)
    if directions is not None:
        if isinstance(directions, str) or len(list(directions)) != len(items):
            raise ValueError(f"`directions` must give one 'max' or 'min' per field ({len(items)}). "
                             f"Received: directions={directions!r}")
        if not all(isinstance(f, str) for f in items):
            raise TypeError(f"With `directions`, `{arg}` must be field names. Received: {arg}={fields!r}")
        items = list(zip(items, directions))
    out = [_objective(item, None, f"{item!r} in {arg}={fields!r}") for item in items]
    if not out:
        raise ValueError(f"`{arg}` must name at least one objective. Received: {arg}={fields!r}")
    if len({name for name, _ in out}) != len(out):
        raise ValueError(f"`{arg}` names an objective twice. Received: {arg}={fields!r}")
    return out


def eligible(records, fields) -> list[dict]:
    """The records that may be ranked, enter a front or add to a hypervolume: ``completed`` ones whose
    ``fields`` are all finite numbers (failed, infeasible, pruned and NaN trials never are)."""
    return [r for r in records if r.get("status", "completed") == "completed" and all(finite(r.get(f)) for f in fields)]


def front_fields(objectives) -> list:
    """The ``(name, direction)`` pairs a search's Pareto front is over: its objectives when it has several, else
    its one objective and ``("params", "min")``."""
    pairs = list(objectives)
    if len(pairs) == 1 and pairs[0][0] != "params":
        pairs.append(("params", "min"))
    return pairs


def front_points(records, objectives) -> tuple:
    """The minimised points (:func:`minimised`) of the non-dominated :func:`eligible` ``records`` over the
    ``(name, direction)`` pairs ``objectives``: a record that none of them dominates is on the front."""
    fields, directions = [n for n, _ in objectives], [d for _, d in objectives]
    points = [minimised([r[f] for f in fields], directions) for r in eligible(records, fields)]
    return tuple(points[i] for i in non_dominated(points))


def minimised(values, directions) -> tuple:
    """``values`` as a point that is better where it is lower in every coordinate (a ``"max"`` value negated)."""
    return tuple(-float(v) if d == "max" else float(v) for v, d in zip(values, directions, strict=True))


def dominates(a, b) -> bool:
    """Whether point ``a`` dominates ``b`` (both minimised): no worse anywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(points) -> list[int]:
    """The indices, in order, of the minimised ``points`` that no point dominates (equal points all stay)."""
    fronts = _sort(points, first=True)
    return fronts[0] if fronts else []


def non_dominated_fronts(points) -> list[list[int]]:
    """Indices of the minimised ``points`` by non-dominated front, best first, each front in index order.

    Front 0 holds the points no point dominates; front ``k`` the points that only points of fronts
    ``< k`` dominate; equal points share a front. The points are visited in lexicographic order, in which
    a point comes after every point that dominates it, and each joins the first front none of whose
    members dominates it (Zhang et al. 2015, "An efficient approach to non-dominated sorting for
    evolutionary multiobjective optimization"). For 1 or 2 objectives that front is found by binary
    search, O(n log n) in all (Jensen 2003, "Reducing the run-time complexity of multiobjective EAs");
    for more, by comparing with the fronts' members, O(m n^2) at worst.

    Example:
        >>> non_dominated_fronts([(1, 2), (2, 1), (2, 2), (1, 2), (3, 3)])
        [[0, 1, 3], [2], [4]]
    """
    return _sort(points, first=False)


def _sort(points, *, first):
    """:func:`non_dominated_fronts`, or only its front 0 when ``first``."""
    points = [tuple(p) for p in points]
    order = sorted(range(len(points)), key=points.__getitem__)
    fronts = []
    if points and len(points[0]) <= 2:
        # Padded to (x, y). Visited in (x, y) order, a front's members have falling y, and the front dominates
        # the next point p exactly when its last member is lower than p in (y, x): true for the fronts up to
        # p's own, false from there on, so bisecting the fronts' last members, kept sorted, finds p's front.
        last = []
        for i in order:
            x, y = (points[i] + (0.0, 0.0))[:2]
            k = bisect.bisect_left(last, (y, x))
            if k == len(last):
                if first and fronts:
                    continue
                last.append((y, x))
                fronts.append([])
            last[k] = (y, x)
            fronts[k].append(i)
    else:
        for i in order:
            k = 0
            while k < len(fronts) and any(dominates(points[j], points[i]) for j in fronts[k]):
                k += 1
            if k == len(fronts):
                if first and fronts:
                    continue
                fronts.append([])
            fronts[k].append(i)
    return [sorted(front) for front in fronts]
