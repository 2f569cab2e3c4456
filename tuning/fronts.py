"""Multi-objective selection over trial records: the Pareto front, its knee point, the best record under bounds.

Only ``completed`` records whose objectives are all finite take part (:func:`tuning.objectives.eligible`):
failed, infeasible, pruned or NaN trials never enter a ranking. Dominance is :mod:`tuning.objectives`'.
"""

from __future__ import annotations

import math

from tuning.constraints import CONSTRAINT_FIELDS, check_constraints
from tuning.objectives import check_direction, eligible, minimised, non_dominated
from tuning.records import finite

__all__ = ["best_under", "knee_point", "pareto"]


def _names(value, arg):
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"`{arg}` must be a field name or a sequence of them. Received: {arg}={value!r}") from None
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"`{arg}` must contain field names. Received: {arg}={value!r}")
    return names


def pareto(records, *, maximize=(), minimize=()) -> list[dict]:
    """The non-dominated records (the Pareto front), in input order; records with equal objectives all stay.

    Args:
        records: trial records (dicts).
        maximize: field name(s) to maximise, e.g. ``"val_accuracy"``.
        minimize: field name(s) to minimise, e.g. ``("params", "fit_seconds")``.

    Example:
        >>> front = pareto(records, maximize="val_accuracy", minimize=("params", "fit_seconds"))
    """
    maximize, minimize = _names(maximize, "maximize"), _names(minimize, "minimize")
    if not maximize and not minimize:
        raise ValueError("Give at least one objective in `maximize` or `minimize`. Received: none")
    fields = maximize + minimize
    directions = ("max",) * len(maximize) + ("min",) * len(minimize)
    pool = eligible(records, fields)
    return [pool[i] for i in non_dominated([minimised([r[f] for f in fields], directions) for r in pool])]


def knee_point(records, *, maximize, minimize, log_scale=("params", "macs", "weight_bytes")):
    """The front member closest to the ideal point after min-max normalising each objective.

    Size-like objectives (``log_scale``) are compared on a log scale, so that
    going from 10k to 100k parameters counts as much as from 1M to 10M.
    Returns ``None`` when no record qualifies.
    """
    maximize, minimize = _names(maximize, "maximize"), _names(minimize, "minimize")
    front = pareto(records, maximize=maximize, minimize=minimize)
    if not front:
        return None

    def value(r, f):
        v = float(r[f])
        return math.log10(max(v, 1e-12)) if f in log_scale else v

    fields = maximize + minimize
    lo = {f: min(value(r, f) for r in front) for f in fields}
    hi = {f: max(value(r, f) for r in front) for f in fields}

    def distance(r):
        total = 0.0
        for f in fields:
            span = hi[f] - lo[f] or 1.0
            norm = (value(r, f) - lo[f]) / span
            total += (1.0 - norm) ** 2 if f in maximize else norm**2
        return total

    return min(front, key=distance)


def best_under(records, *, objective="val_accuracy", direction="max", **constraints):
    """The best completed record that satisfies upper-bound constraints (``None`` if none).

    Example:
        >>> best_under(records, objective="val_accuracy", max_params=100_000)
    """
    check_direction(direction)
    constraints = check_constraints(constraints)
    pool = [
        r for r in eligible(records, (objective,))
        if all(finite(r.get(CONSTRAINT_FIELDS[c])) and r[CONSTRAINT_FIELDS[c]] <= b for c, b in constraints.items())
    ]
    if not pool:
        return None
    return (max if direction == "max" else min)(pool, key=lambda r: r[objective])
