"""Record summaries: groups of ``(model, hyperparameters)``, mean ± std rows, the primary metric.

Also the confusion matrix of predictions and the number formatting shared by
the report's tables.
"""

from __future__ import annotations

import json

import numpy as np

from tuning.diagnosis import diagnose, summarize
from tuning.objectives import minimised, non_dominated
from tuning.records import finite, latest_records
from zoo.utils import metric_direction

# Record fields summarised per group (mean and std over seeds), when present.
SUMMARY_FIELDS = (
    "val_accuracy", "test_accuracy", "val_mae", "test_mae", "val_loss", "test_loss",
    "params", "trainable_params", "macs", "weight_bytes", "fit_seconds", "seconds_per_epoch",
    "latency_ms", "throughput", "peak_memory_bytes",
)


# ----------------------------------------------------------------------------- grouping

def canonical(hp) -> str:
    """``hp`` as sorted-key JSON: equal settings give equal strings."""
    return json.dumps(hp or {}, sort_keys=True, default=str)


def group_records(records) -> list[dict]:
    """Group records by ``(model, hyperparameters)``.

    Returns:
        groups in first-seen order: ``{"label", "model", "hyperparameters", "records"}``.
        ``label`` is the model name, with the hyperparameters appended when
        several groups share a model name.
    """
    groups = {}
    for r in latest_records(records, sort=False):
        key = (str(r.get("model")), canonical(r.get("hyperparameters")))
        groups.setdefault(key, {"model": key[0], "hyperparameters": r.get("hyperparameters") or {}, "records": []})
        groups[key]["records"].append(r)
    out = list(groups.values())
    per_model = {}
    for g in out:
        per_model[g["model"]] = per_model.get(g["model"], 0) + 1
    # Hyperparameters that tell apart the groups of one model name.
    differing = {}
    for model in per_model:
        hps = [g["hyperparameters"] for g in out if g["model"] == model]
        keys = sorted({k for hp in hps for k in hp})
        differing[model] = [k for k in keys if len({canonical(hp.get(k)) for hp in hps}) > 1]
    seen = set()
    for g in out:
        label = g["model"]
        if per_model[label] > 1:
            hp = ",".join(f"{k}={_short(g['hyperparameters'].get(k))}" for k in differing[label])
            label = f"{label}[{hp}]" if hp else label
            if len(label) > 40:  # a search: many settings differ; the trial id names the group
                label = f"{g['model']} (trial {g['records'][0].get('id')})"
        base, i = label, 2
        while label in seen:
            label, i = f"{base}#{i}", i + 1
        seen.add(label)
        g["label"] = label
    return out


def _short(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(_short(v)) for v in value)
    return str(value)


# ----------------------------------------------------------------------------- summary rows

def primary_metric(records) -> tuple[str, bool]:
    """``(metric, higher_is_better)``: ``accuracy`` if recorded, else ``mae``, else ``loss``."""
    keys = set()
    for r in records:
        keys.update(k for k, v in r.items() if finite(v))
    metric = next((m for m in ("accuracy", "mae") if f"val_{m}" in keys or f"test_{m}" in keys), "loss")
    return metric, metric_direction(metric) == "max"


def _mean_std(values):
    values = [float(v) for v in values if finite(v)]
    if not values:
        return None, None
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    if std <= 1e-9 * max(1.0, abs(mean)):  # equal values up to float round-off (a "350 ± 6.96e-14")
        std = 0.0
    return mean, std


def infer_num_classes(records):
    """The first recorded ``num_classes`` (or size of a confusion matrix); ``None`` when none."""
    for r in records:
        if r.get("num_classes"):
            return r["num_classes"]
        cm = r.get("confusion_matrix")
        if cm:
            return len(cm)
    return None


def summarize_records(records) -> list[dict]:
    """One row per group, best first (by the mean validation metric), failed groups last.

    Each row has ``label, model, hyperparameters, seeds, completed, failed`` (failed and
    infeasible records), ``pruned``, ``record_ids`` (the completed records the means come
    from), ``failed_ids``, ``pruned_ids``,
    ``<field>_mean`` and ``<field>_std`` for :data:`SUMMARY_FIELDS` (sample
    std, 0 for one seed), ``epochs``, ``diagnosis``, ``diagnosis_reason``,
    ``diagnosis_per_seed``, ``best``, ``pareto_time`` and ``pareto_latency`` (fronts of the validation
    metric when there is one: test values never decide a front or a rank). Only completed records are
    ranked; pruned ones are counted apart.
    """
    records = latest_records(records, sort=False)
    metric, higher = primary_metric(records)
    present = [f for f in SUMMARY_FIELDS if any(finite(r.get(f)) for r in records)]
    rows = [_summary_row(g, present) for g in group_records(records)]
    select = select_field(rows, metric)

    def rank(row):
        v = row.get(f"{select}_mean")
        if v is None:
            return (1, 0.0)
        return (0, -v if higher else v)

    rows.sort(key=rank)
    for i, row in enumerate(rows):
        row["best"] = i == 0 and row.get(f"{select}_mean") is not None
    for name, x in (("pareto_time", "fit_seconds"), ("pareto_latency", "latency_ms")):
        front = pareto_front(rows, x, select, "max" if higher else "min")
        for i, row in enumerate(rows):
            row[name] = i in front
    return rows


def _summary_row(group, present) -> dict:
    """The row of one group of :func:`group_records` (no ``best`` or Pareto flags yet)."""
    done = [r for r in group["records"] if r.get("status") == "completed"]
    pruned = [r for r in group["records"] if r.get("status") == "pruned"]
    failed = [r for r in group["records"] if r.get("status") not in ("completed", "pruned")]
    row = {
        "label": group["label"],
        "model": group["model"],
        "hyperparameters": group["hyperparameters"],
        "seeds": [r.get("seed") for r in done],
        "completed": len(done),
        "failed": len(failed),
        "pruned": len(pruned),
        "epochs": max((r.get("epochs_run") or r.get("epochs") or 0 for r in done), default=None),
    }
    for f in present:
        row[f"{f}_mean"], row[f"{f}_std"] = _mean_std(r.get(f) for r in done)
    labels, reasons = [], []
    for r in done:
        label, reason = diagnose(r.get("history") or {}, num_classes=r.get("num_classes") or infer_num_classes([r]))
        labels.append(label)
        reasons.append(reason)
    infeasible = failed and all(r.get("status") == "infeasible" for r in failed)
    row["diagnosis"] = summarize(labels) if done else ("infeasible" if infeasible else "failed" if failed else "pruned")
    row["diagnosis_reason"] = (
        next(reason for label, reason in zip(labels, reasons) if label == row["diagnosis"]) if done
        else "; ".join(sorted({str(r.get("error")) for r in failed + pruned}))[:300]
    )
    if len(done) > 1:
        row["diagnosis_reason"] += f" (seed {done[labels.index(row['diagnosis'])].get('seed')})"
    row["diagnosis_per_seed"] = labels
    row["record_ids"] = [r["id"] for r in done]
    row["failed_ids"] = [r["id"] for r in failed]
    row["pruned_ids"] = [r["id"] for r in pruned]
    return row


def select_field(rows, metric):
    """Models are ranked, and fronts decided, on validation (never on test) when there is a validation split."""
    return f"val_{metric}" if any(r.get(f"val_{metric}_mean") is not None for r in rows) else f"test_{metric}"


def reference_field(rows, metric):
    """The test metric shown beside the validation one for reference (``None`` when either is missing)."""
    if select_field(rows, metric) == f"val_{metric}" and any(r.get(f"test_{metric}_mean") is not None for r in rows):
        return f"test_{metric}"
    return None


def pareto_front(rows, x, y, direction) -> set:
    """Indices of rows on the Pareto front of mean ``y`` (``direction`` ``"max"`` or ``"min"``) vs mean ``x`` (min)."""
    kept = [i for i, r in enumerate(rows) if finite(r.get(f"{x}_mean")) and finite(r.get(f"{y}_mean"))]
    points = [minimised((rows[i][f"{y}_mean"], rows[i][f"{x}_mean"]), (direction, "min")) for i in kept]
    return {kept[k] for k in non_dominated(points)}


# ----------------------------------------------------------------------------- confusion matrix

def confusion_matrix(y_true, y_pred, num_classes) -> list[list[int]]:
    """``cm[i][j]``: examples of true class ``i`` predicted as ``j``."""
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    y_pred = np.asarray(y_pred).reshape(-1).astype(int)
    k = int(num_classes)
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k).tolist()


# ----------------------------------------------------------------------------- formatting

def format_value(value, std=None, *, kind="float"):
    """``value`` (± ``std``) for a table: ``kind`` is ``int`` (1.2M), ``acc`` (4 decimals), ``sec`` or ``float``."""
    if value is None:
        return "–"
    if kind == "int":
        text = human(value)
    elif kind == "acc":
        text = f"{value:.4f}"
    elif kind == "sec":
        text = f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    else:
        text = f"{value:.4g}"
    if std:
        s = human(std) if kind == "int" else (f"{std:.4f}" if kind == "acc" else f"{std:.2g}")
        text += f" ± {s}"
    return text


def human(n):
    """A count with a k/M/G suffix and 3 significant digits: ``1234567`` -> ``1.23M``."""
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}" if n == int(n) else f"{n:.3g}"
