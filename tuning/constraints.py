"""Upper bounds on a trial's measurements (``max_params``, ``max_latency_ms``, ...): checked, applied to records.

A completed record that breaks a bound becomes ``infeasible`` and keeps its measurements; ranking,
fronts and hypervolumes then leave it out. The bounds of :data:`BUILD_TIME_CONSTRAINTS` are known as soon as
the model is built, so a trial over one of them is never trained.
"""

from __future__ import annotations

from tuning.records import finite

__all__ = ["BUILD_TIME_CONSTRAINTS", "CONSTRAINT_FIELDS", "apply_constraints", "broken_constraints",
           "check_constraints"]

# constraint name -> record field it bounds from above
CONSTRAINT_FIELDS = {
    "max_params": "params",
    "max_macs": "macs",
    "max_latency_ms": "latency_ms",
    "max_fit_seconds": "fit_seconds",
    "max_weight_bytes": "weight_bytes",
    "max_peak_memory_bytes": "peak_memory_bytes",
}

# Known as soon as the model is built: a trial over one of these bounds is never trained.
BUILD_TIME_CONSTRAINTS = ("max_params", "max_macs", "max_weight_bytes")


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
