"""Multi-objective selection over trial records: Pareto fronts, constraints, knee point.

Only ``completed`` records whose objectives are all finite take part: failed,
infeasible or NaN trials never enter a ranking.
"""

from __future__ import annotations

import math
import warnings

from tuning.records import finite

__all__ = ["pareto", "apply_constraints", "check_constraints", "knee_point", "best_under", "CONSTRAINT_FIELDS"]

# constraint name -> record field it bounds from above
CONSTRAINT_FIELDS = {
    "max_params": "params",
    "max_macs": "macs",
    "max_latency_ms": "latency_ms",
    "max_fit_seconds": "fit_seconds",
    "max_weight_bytes": "weight_bytes",
    "max_peak_memory_bytes": "peak_memory_bytes",
}


def check_constraints(constraints) -> dict:
    """Validated upper bounds: known names of :data:`CONSTRAINT_FIELDS`, finite numbers (as floats)."""
    constraints = dict(constraints or {})
    unknown = set(constraints) - set(CONSTRAINT_FIELDS)
    if unknown:
        raise ValueError(
            f"Unknown constraint(s) {sorted(unknown)}; valid: {sorted(CONSTRAINT_FIELDS)}. "
            f"Received: constraints={constraints!r}"
        )
    if not all(finite(v) for v in constraints.values()):
        raise ValueError(f"Constraint bounds must be finite numbers. Received: constraints={constraints!r}")
    return {k: float(v) for k, v in constraints.items()}


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


def _eligible(records, fields):
    return [
        r for r in records
        if r.get("status", "completed") == "completed" and all(finite(r.get(f)) for f in fields)
    ]


def _dominates(a, b):
    """a dominates b: no worse in every objective, strictly better in one (all minimised)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto(records, *, maximize=(), minimize=()) -> list[dict]:
    """The non-dominated records (the Pareto front), in input order.

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
    pool = _eligible(records, fields)
    points = [tuple(-float(r[f]) for f in maximize) + tuple(float(r[f]) for f in minimize) for r in pool]
    # Records with identical objectives do not dominate each other: all stay.
    return [r for i, r in enumerate(pool) if not any(_dominates(q, points[i]) for q in points)]


# Known as soon as the model is built: a trial over one of these bounds is never trained.
BUILD_TIME_CONSTRAINTS = ("max_params", "max_macs", "max_weight_bytes")


def broken_constraints(record: dict, constraints: dict, names=None) -> list:
    """``["params=123 > 100.0", ...]``: the bounds of ``constraints`` (or of its ``names``) that ``record`` breaks."""
    return [
        f"{CONSTRAINT_FIELDS[name]}={record.get(CONSTRAINT_FIELDS[name])} > {bound}"
        for name, bound in constraints.items()
        if (names is None or name in names)
        and finite(record.get(CONSTRAINT_FIELDS[name])) and record[CONSTRAINT_FIELDS[name]] > bound
    ]


def apply_constraints(record: dict, constraints: dict | None) -> dict:
    """Mark a completed record ``infeasible`` if it breaks a constraint; returns the record.

    ``constraints`` maps names of :data:`CONSTRAINT_FIELDS` (``max_params``,
    ``max_latency_ms``, ``max_fit_seconds``, ...) to upper bounds. The reason
    goes to ``record["error"]``; the record keeps all its measurements.
    """
    if not constraints:
        return record
    constraints = check_constraints(constraints)
    if record.get("status") != "completed":
        return record
    broken = broken_constraints(record, constraints)
    if broken:
        record["status"] = "infeasible"
        record["error"] = "constraint violated: " + ", ".join(broken)
    record["constraints"] = dict(constraints)
    return record


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


def best_under(records, *, objective="val_accuracy", direction="max", mode=None, **constraints):
    """The best completed record that satisfies upper-bound constraints (``None`` if none).

    ``mode`` is the deprecated name of ``direction``.

    Example:
        >>> best_under(records, objective="val_accuracy", max_params=100_000)
    """
    if mode is not None:
        warnings.warn("best_under(mode=) is deprecated; use direction=", DeprecationWarning, stacklevel=2)
        direction = mode
    if direction not in ("max", "min"):
        arg = "direction" if mode is None else "mode"
        raise ValueError(f"`{arg}` must be 'max' or 'min'. Received: {arg}={direction!r}")
    constraints = check_constraints(constraints)
    pool = [
        r for r in _eligible(records, (objective,))
        if all(finite(r.get(CONSTRAINT_FIELDS[c])) and r[CONSTRAINT_FIELDS[c]] <= b for c, b in constraints.items())
    ]
    if not pool:
        return None
    return (max if direction == "max" else min)(pool, key=lambda r: r[objective])
