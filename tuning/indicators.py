"""The hypervolume of a set of trials: exact for 1 to 3 objectives, its history trial by trial, a stated reference.

Only ``completed`` records whose objectives are all finite count (:func:`tuning.objectives.eligible`):
failed, infeasible, pruned or NaN trials never add to a hypervolume.
"""

from __future__ import annotations

import bisect

import numpy as np

from tuning.objectives import eligible, objective_fields

__all__ = ["MAX_HV_OBJECTIVES", "default_reference", "hypervolume", "hypervolume_history"]

MAX_HV_OBJECTIVES = 3  # exact sweeps for 1 to 3 objectives; more would need another algorithm


def _check_count(m, what):
    if not 1 <= m <= MAX_HV_OBJECTIVES:
        raise ValueError(f"The hypervolume is computed for 1 to {MAX_HV_OBJECTIVES} objectives. "
                         f"Received: {m} objectives ({what})")


def _hv_points(points_or_records, directions, fields):
    """``(points, directions)``: an ``(n, m)`` float array in the objectives' own units, and their directions."""
    if fields is not None:
        objectives = objective_fields(fields, directions)
        _check_count(len(objectives), f"fields={fields!r}")
        names = [name for name, _ in objectives]
        records = list(points_or_records)
        if not all(isinstance(r, dict) for r in records):
            raise TypeError(f"With `fields`, `points_or_records` must be records (dicts). "
                            f"Received: {type(next(r for r in records if not isinstance(r, dict))).__name__}")
        pool = eligible(records, names)
        points = np.array([[float(r[n]) for n in names] for r in pool], dtype=float).reshape(len(pool), len(names))
        return points, [d for _, d in objectives]
    if isinstance(points_or_records, dict) or any(isinstance(p, dict) for p in _peek(points_or_records)):
        raise TypeError("Records need `fields`, e.g. fields=[('val_accuracy', 'max'), ('params', 'min')]. "
                        "Received: fields=None")
    try:
        points = np.asarray(points_or_records, dtype=float)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`points_or_records` must be an (n, m) array of numbers or a list of records. "
                        f"Received: {str(points_or_records)[:200]} ({e})") from None
    if points.size == 0 and points.ndim == 1:
        points = points.reshape(0, len(directions) if directions is not None else 0)
    if points.ndim != 2:
        raise ValueError(f"`points_or_records` must be an (n, m) array, one row per point. "
                         f"Received: an array of shape {points.shape}")
    if not np.all(np.isfinite(points)):
        row = int(np.argwhere(~np.isfinite(points))[0][0])
        raise ValueError(f"`points_or_records` must be finite. Received: row {row} = {points[row].tolist()}")
    if directions is None:
        directions = ["min"] * points.shape[1]
    if isinstance(directions, str) or not all(d in ("max", "min") for d in directions):
        raise ValueError(f"`directions` must be a list of 'max' or 'min'. Received: directions={directions!r}")
    directions = list(directions)
    if points.shape[1] and len(directions) != points.shape[1]:
        raise ValueError(f"`directions` must give one direction per objective ({points.shape[1]}). "
                         f"Received: directions={directions!r}")
    return points, directions


def _peek(value):
    """The items of a list or tuple (nothing for arrays and other iterables, which hold no records)."""
    return value if isinstance(value, (list, tuple)) else ()


def _hv_reference(reference, m):
    try:
        ref = np.asarray(reference, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`reference` must be a sequence of {m} numbers. Received: reference={reference!r}") from None
    if ref.shape != (m,):
        raise ValueError(f"`reference` must hold one value per objective ({m}). Received: reference={reference!r}")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"`reference` must be finite. Received: reference={reference!r}")
    return ref


class _Staircase:
    """The 2-D front of minimised points below ``(rx, ry)`` and the area it dominates, kept as points arrive.

    The front is held sorted by ``x`` (``y`` then strictly decreasing); a new point adds the area between
    its own box and the staircase, a sum of non-negative terms (no cancellation).
    """

    def __init__(self, rx, ry):
        self.rx, self.ry = float(rx), float(ry)
        self.xs, self.ys = [], []
        self.area = 0.0

    def add(self, x, y) -> bool:
        """Add the point; ``True`` when it dominates some area not dominated before."""
        x, y = float(x), float(y)
        if not (x < self.rx and y < self.ry):
            return False
        xs, ys = self.xs, self.ys
        i = bisect.bisect_left(xs, x)
        if (i > 0 and ys[i - 1] <= y) or (i < len(xs) and xs[i] == x and ys[i] <= y):
            return False
        j = i
        while j < len(xs) and ys[j] >= y:
            j += 1
        ceiling = ys[i - 1] if i > 0 else self.ry
        added = ((xs[i] if i < len(xs) else self.rx) - x) * (ceiling - y)
        for k in range(i, j):
            added += ((xs[k + 1] if k + 1 < len(xs) else self.rx) - xs[k]) * (ys[k] - y)
        del xs[i:j], ys[i:j]
        xs.insert(i, x)
        ys.insert(i, y)
        self.area += added
        return True


def _hv_min(points, ref) -> float:
    """Exact hypervolume of minimised ``points`` (an ``(n, m)`` array, m <= 3) below ``ref``."""
    points = points[np.all(points < ref, axis=1)]
    if not len(points):
        return 0.0
    m = points.shape[1]
    if m == 1:
        return float(ref[0] - points[:, 0].min())
    if m == 2:
        stair = _Staircase(ref[0], ref[1])
        for x, y in points[np.lexsort((points[:, 1], points[:, 0]))]:
            stair.add(x, y)
        return stair.area
    # 3-D: sweep up the third axis; between consecutive z the dominated slice is the 2-D front's area.
    order = np.argsort(points[:, 2], kind="stable")
    zs = points[order, 2]
    stair, volume = _Staircase(ref[0], ref[1]), 0.0
    for k, index in enumerate(order):
        stair.add(points[index, 0], points[index, 1])
        volume += stair.area * ((zs[k + 1] if k + 1 < len(zs) else ref[2]) - zs[k])
    return float(volume)


def hypervolume(points_or_records, *, reference, directions=None, fields=None) -> float:
    """The exact hypervolume dominated by a set of points (1 to 3 objectives), bounded by ``reference``.

    The volume of objective space that is at least as good as some point and better than the
    reference point, in every objective (Zitzler & Thiele 1998, "Multiobjective optimization using
    evolutionary algorithms: a comparative case study"). Exact: a sort and a sweep for 2 objectives,
    a sweep over the third axis with an incremental 2-D front for 3 (O(n log n) and O(n^2)).
    A point that is not strictly better than the reference in every objective adds nothing;
    of records, only ``completed`` ones whose objectives are all finite count (failed,
    infeasible and pruned trials never do).

    Args:
        points_or_records: an ``(n, m)`` array of objective values, or trial records (dicts) with ``fields``.
        reference: the reference point, one value per objective in the objectives' own units
            (e.g. ``(0.0, 2e6)`` for ``val_accuracy`` max and ``params`` min); see :func:`default_reference`.
        directions: ``"max"`` or ``"min"`` per column of an array (default: all ``"min"``), or per
            field name when ``fields`` are names.
        fields: for records, the objectives as ``[(name, "max" | "min"), ...]`` (or names with ``directions``).

    Returns:
        the hypervolume, a float (0.0 when no point counts), in the product of the objectives' units.

    Example:
        >>> hypervolume([[0.5, 0.5]], reference=[1, 1])
        0.25
        >>> hypervolume(records, fields=[("val_accuracy", "max"), ("params", "min")], reference=(0.0, 1e6))
    """
    points, directions = _hv_points(points_or_records, directions, fields)
    m = points.shape[1] or np.size(np.asarray(reference, dtype=object))
    _check_count(m, f"points of shape {points.shape}" if points.shape[1] else f"reference={reference!r}")
    ref = _hv_reference(reference, m)
    if not len(points):
        return 0.0
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return _finite_volume(_hv_min(points * sign, ref * sign), ref)


def _finite_volume(volume, ref):
    """``volume``, or a ``ValueError`` when it overflows float64 (never an ``inf`` passed off as an answer)."""
    if not np.isfinite(volume):
        raise ValueError(f"The hypervolume overflows a 64-bit float (reference={list(map(float, ref))}): express "
                         "the objectives in larger units (e.g. millions of parameters) or choose a closer reference")
    return volume


def hypervolume_history(records, fields, reference) -> list:
    """The hypervolume of the first ``k`` records for each ``k``: how a search's front grew, trial by trial.

    Args:
        records: trial records in trial order (as :attr:`tuning.SearchResult.records` are).
        fields: the objectives, ``[(name, "max" | "min"), ...]``.
        reference: the reference point (see :func:`hypervolume`).

    Returns:
        one float per record: the hypervolume of the completed, finite records among
        ``records[:i + 1]``; a failed, infeasible, pruned or dominated trial repeats the previous value.

    Example:
        >>> hypervolume_history(result.records, [("val_accuracy", "max"), ("params", "min")], (0.0, 2e6))
    """
    objectives = objective_fields(fields)
    _check_count(len(objectives), f"fields={fields!r}")
    names = [name for name, _ in objectives]
    sign = np.array([-1.0 if d == "max" else 1.0 for _, d in objectives])
    ref = _hv_reference(reference, len(objectives)) * sign
    records = list(records)
    counted = {id(r) for r in eligible(records, names)}
    history, value = [], 0.0
    points = np.empty((0, len(ref)))  # the points that changed the volume when they came
    stair = _Staircase(ref[0], ref[1]) if len(ref) == 2 else None
    for r in records:
        if id(r) in counted:
            p = np.array([float(r[n]) for n in names]) * sign
            if stair is not None:
                stair.add(*p)
                value = stair.area
            elif np.all(p < ref) and not np.any(np.all(points <= p, axis=1)):
                # only a point outside the union so far changes the volume; those it dominates no longer count
                points = np.vstack([points[~np.all(p <= points, axis=1)], p])
                value = _hv_min(points, ref)
        history.append(float(_finite_volume(value, ref * sign)))
    return history


def default_reference(records, fields) -> tuple:
    """A stated reference point for :func:`hypervolume`, from the records' observed values.

    The rule, per objective (over the completed records whose objectives are all finite):

    - ``"max"`` with every observed value in [0, 1] (accuracy-like): ``0.0``, the worst possible score;
    - otherwise the worst observed value, moved a further 10% of its magnitude in the bad direction
      (``max × 1.1`` for a positive cost such as ``params``); 10% of the observed range when the worst
      is 0, and 1 when every value is 0.

    A reference a little past the worst point lets the extreme points of the front count.
    Hypervolumes are only comparable under the same reference: reports state the one they use.

    Raises:
        ValueError: no completed record has finite values of all the objectives.

    Example:
        >>> default_reference(records, [("val_accuracy", "max"), ("params", "min")])
        (0.0, 1100000.0)
    """
    objectives = objective_fields(fields)
    pool = eligible(records, [name for name, _ in objectives])
    if not pool:
        raise ValueError(f"No completed record with finite values of {[n for n, _ in objectives]} to place a "
                         f"reference point; pass `reference`. Received: {len(list(records))} record(s)")
    out = []
    for name, direction in objectives:
        values = [float(r[name]) for r in pool]
        if direction == "max" and all(0.0 <= v <= 1.0 for v in values):
            out.append(0.0)
            continue
        worst = min(values) if direction == "max" else max(values)
        margin = 0.1 * abs(worst) or 0.1 * (max(values) - min(values)) or 1.0
        out.append(worst - margin if direction == "max" else worst + margin)
    return tuple(out)
