"""Reports from trial records: Markdown, self-contained HTML, CSV/JSON and matplotlib plots.

Shared by :func:`tuning.compare` and the searches. A report is a pure function
of the records (plus an optional title, provenance and command line, kept in
``report_meta.json``), so ``zoo report RUN_DIR`` regenerates the same files
without retraining anything.

Records are grouped by ``model`` and ``hyperparameters``: each group is one
row, summarised as mean ± sample standard deviation over its completed
records (seeds). Its loss curves get a diagnosis (:mod:`tuning.diagnosis`).

Files written to ``out_dir``: ``report.md``, ``report.html`` (plots embedded
as base64 data URIs: it opens in a browser with no server and no other file),
``results.csv``, ``results.json``, ``report_meta.json`` and ``plots/*.png``.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import re
import shlex

import numpy as np

from tuning.diagnosis import THRESHOLDS, diagnose, rules, summarize
from tuning.pareto import pareto
from tuning.records import finite, read_records

__all__ = [
    "SUMMARY_FIELDS",
    "group_records",
    "primary_metric",
    "summarize_records",
    "write_report",
    "regenerate",
    "format_summary",
    "plot_curves",
    "plot_confusion_matrix",
    "plot_tradeoff",
    "confusion_matrix",
]

# Record fields summarised per group (mean and std over seeds), when present.
SUMMARY_FIELDS = (
    "val_accuracy", "test_accuracy", "val_mae", "test_mae", "val_loss", "test_loss",
    "params", "trainable_params", "macs", "weight_bytes", "fit_seconds", "seconds_per_epoch",
    "latency_ms", "throughput", "peak_memory_bytes",
)
META_FILE = "report_meta.json"
MAX_CURVE_ROWS = 12  # curves of at most this many groups (the best ones) in one figure

_AXES = {
    "params": ("parameters", True),
    "macs": ("MACs per sample", True),
    "fit_seconds": ("training time (s)", False),
    "latency_ms": ("latency at batch 1 (ms)", False),
}


# ----------------------------------------------------------------------------- grouping and summary

def _canonical(hp) -> str:
    return json.dumps(hp or {}, sort_keys=True, default=str)


def _dedupe(records):
    """Latest record per id (a resumed run may have retried a failed trial), in first-seen order."""
    by_id = {}
    for r in records:
        by_id[str(r.get("id"))] = r  # dict keeps first-insertion order, value is the last record
    return list(by_id.values())


def group_records(records) -> list[dict]:
    """Group records by ``(model, hyperparameters)``.

    Returns:
        groups in first-seen order: ``{"label", "model", "hyperparameters", "records"}``.
        ``label`` is the model name, with the hyperparameters appended when
        several groups share a model name.
    """
    groups = {}
    for r in _dedupe(records):
        key = (str(r.get("model")), _canonical(r.get("hyperparameters")))
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
        differing[model] = [k for k in keys if len({_canonical(hp.get(k)) for hp in hps}) > 1]
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


def primary_metric(records) -> tuple[str, bool]:
    """``(metric, higher_is_better)``: ``accuracy`` if recorded, else ``mae``, else ``loss``."""
    keys = set()
    for r in records:
        keys.update(k for k, v in r.items() if finite(v))
    for metric, higher in (("accuracy", True), ("mae", False), ("loss", False)):
        if f"val_{metric}" in keys or f"test_{metric}" in keys:
            return metric, higher
    return "loss", False


def _mean_std(values):
    values = [float(v) for v in values if finite(v)]
    if not values:
        return None, None
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return mean, std


def _num_classes(records):
    for r in records:
        if r.get("num_classes"):
            return r["num_classes"]
        cm = r.get("confusion_matrix")
        if cm:
            return len(cm)
    return None


def summarize_records(records) -> list[dict]:
    """One row per group, best first (by the mean validation metric), failed groups last.

    Each row has ``label, model, hyperparameters, seeds, completed, failed,
    record_ids`` (the completed records the means come from), ``failed_ids``,
    ``<field>_mean`` and ``<field>_std`` for :data:`SUMMARY_FIELDS` (sample
    std, 0 for one seed), ``epochs``, ``diagnosis``, ``diagnosis_reason``,
    ``diagnosis_per_seed``, ``best``, ``pareto_time`` and ``pareto_latency``.
    """
    records = _dedupe(records)
    metric, higher = primary_metric(records)
    present = [f for f in SUMMARY_FIELDS if any(finite(r.get(f)) for r in records)]
    rows = []
    for g in group_records(records):
        done = [r for r in g["records"] if r.get("status") == "completed"]
        failed = [r for r in g["records"] if r.get("status") != "completed"]
        row = {
            "label": g["label"],
            "model": g["model"],
            "hyperparameters": g["hyperparameters"],
            "seeds": [r.get("seed") for r in done],
            "completed": len(done),
            "failed": len(failed),
            "epochs": max((r.get("epochs_run") or r.get("epochs") or 0 for r in done), default=None),
        }
        for f in present:
            row[f"{f}_mean"], row[f"{f}_std"] = _mean_std(r.get(f) for r in done)
        labels, reasons = [], []
        for r in done:
            label, reason = diagnose(r.get("history") or {}, num_classes=r.get("num_classes") or _num_classes([r]))
            labels.append(label)
            reasons.append(reason)
        row["diagnosis"] = summarize(labels) if done else "failed"
        row["diagnosis_reason"] = (
            next(reason for label, reason in zip(labels, reasons) if label == row["diagnosis"]) if done
            else "; ".join(sorted({str(r.get("error")) for r in failed}))[:300]
        )
        if len(done) > 1:
            row["diagnosis_reason"] += f" (seed {done[labels.index(row['diagnosis'])].get('seed')})"
        row["diagnosis_per_seed"] = labels
        row["record_ids"] = [r["id"] for r in done]
        row["failed_ids"] = [r["id"] for r in failed]
        rows.append(row)

    select = _select_field(rows, metric)

    def rank(row):
        v = row.get(f"{select}_mean")
        if v is None:
            return (1, 0.0)
        return (0, -v if higher else v)

    rows.sort(key=rank)
    for i, row in enumerate(rows):
        row["best"] = i == 0 and row.get(f"{select}_mean") is not None
    y = _y_field(rows, metric)
    for name, x in (("pareto_time", "fit_seconds"), ("pareto_latency", "latency_ms")):
        front = _front(rows, x, y, higher)
        for i, row in enumerate(rows):
            row[name] = i in front
    return rows


def _select_field(rows, metric):
    """Models are ranked on validation (never on test) when there is a validation split."""
    return f"val_{metric}" if any(r.get(f"val_{metric}_mean") is not None for r in rows) else f"test_{metric}"


def _y_field(rows, metric):
    return f"test_{metric}" if any(r.get(f"test_{metric}_mean") is not None for r in rows) else f"val_{metric}"


def _front(rows, x, y, higher) -> set:
    """Indices of rows on the Pareto front of mean ``y`` (max if ``higher``) vs mean ``x`` (min)."""
    points = [
        {"status": "completed", "i": i, "x": r.get(f"{x}_mean"), "y": r.get(f"{y}_mean")}
        for i, r in enumerate(rows)
    ]
    if higher:
        front = pareto(points, maximize="y", minimize="x")
    else:
        front = pareto(points, minimize=("y", "x"))
    return {p["i"] for p in front}


# ----------------------------------------------------------------------------- plots

def _figure(width=6.4, height=4.4):
    # A bare Figure (no pyplot): no global backend switch, no GUI, always Agg for PNG.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def _metric_title(metric):
    return {"accuracy": "accuracy", "mae": "mean absolute error", "loss": "loss"}.get(metric, metric)


def plot_tradeoff(rows, path, *, x, y, higher=True, title=None):
    """Scatter mean ``y`` vs mean ``x`` per row (error bars: std over seeds), Pareto front marked.

    Args:
        rows: rows of :func:`summarize_records`.
        x: a cost field (``params``, ``macs``, ``fit_seconds``, ``latency_ms``); sizes use a log axis.
        y: a metric field, e.g. ``test_accuracy``.
        higher: whether a higher ``y`` is better.
    Returns:
        ``path``.
    """
    xlabel, log = _AXES.get(x, (x, False))
    pts = [(r, r.get(f"{x}_mean"), r.get(f"{y}_mean")) for r in rows]
    pts = [(r, a, b) for r, a, b in pts if a is not None and b is not None and (a > 0 or not log)]
    front = _front([r for r, _, _ in pts], x, y, higher)
    fig = _figure()
    ax = fig.add_subplot()
    for i, (r, a, b) in enumerate(pts):
        on = i in front
        ax.errorbar(a, b, xerr=r.get(f"{x}_std") or 0, yerr=r.get(f"{y}_std") or 0, fmt="o",
                    color="tab:red" if on else "tab:blue", ecolor="0.6", capsize=3, markersize=7 if on else 5)
        ax.annotate(r["label"], (a, b), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if front:
        f = sorted((pts[i][1], pts[i][2]) for i in front)
        ax.step([p[0] for p in f], [p[1] for p in f], where="post", color="tab:red", alpha=0.6,
                label="Pareto front (red points)")
        ax.legend(loc="best", fontsize=8)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel + (" (log scale)" if log else ""))
    split, _, metric = y.partition("_")
    ax.set_ylabel(f"{split} {_metric_title(metric)} (mean ± std over seeds)")
    ax.set_title(title or f"{split} {_metric_title(metric)} vs {xlabel}")
    ax.grid(True, alpha=0.3, which="both")
    return _save(fig, path)


def _stack(histories, key):
    """Mean and std per epoch of ``key`` over runs (runs of different lengths are NaN-padded)."""
    curves = [[float(v) if finite(v) else np.nan for v in h.get(key, [])] for h in histories]
    curves = [c for c in curves if c]
    if not curves:
        return None, None
    n = max(len(c) for c in curves)
    a = np.full((len(curves), n), np.nan)
    for i, c in enumerate(curves):
        a[i, : len(c)] = c
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(a, axis=0), (np.nanstd(a, axis=0) if len(curves) > 1 else np.zeros(n))


def plot_curves(groups, path, *, metric="accuracy", title=None):
    """Training and validation loss (left) and ``metric`` (right) per epoch, one row per group.

    Args:
        groups: ``[(label, [history, ...], subtitle), ...]``; several histories
            (seeds) are drawn as mean with a ±std band. A single ``History.history``
            dict is accepted too.
        metric: the second column (``accuracy``, ``mae``, ...); omitted when absent.
    Returns:
        ``path``.
    """
    from matplotlib.ticker import MaxNLocator

    if isinstance(groups, dict):
        groups = [("model", [groups], "")]
    groups = list(groups)
    has_metric = any(h.get(metric) for _, hs, _ in groups for h in hs)
    cols = 2 if has_metric else 1
    fig = _figure(4.2 * cols, 2.5 * max(1, len(groups)) + 0.4)
    axes = fig.subplots(max(1, len(groups)), cols, squeeze=False)
    for row, (label, histories, subtitle) in enumerate(groups):
        for col, key in enumerate(["loss", metric][:cols]):
            ax = axes[row][col]
            for prefix, color, name in (("", "tab:blue", "training"), ("val_", "tab:orange", "validation")):
                mean, std = _stack(histories, prefix + key)
                if mean is None:
                    continue
                epochs = np.arange(1, len(mean) + 1)
                ax.plot(epochs, mean, "o-" if len(mean) < 3 else "-", color=color, label=name, markersize=3)
                if np.any(std > 0):
                    ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
            ax.set_title(f"{label}: {key}" + (f"\n{subtitle}" if subtitle and col == 0 else ""), fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(y_true, y_pred, num_classes) -> list[list[int]]:
    """``cm[i][j]``: examples of true class ``i`` predicted as ``j``."""
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    y_pred = np.asarray(y_pred).reshape(-1).astype(int)
    k = int(num_classes)
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k).tolist()


def plot_confusion_matrix(cm, path, *, class_names=None, title="Confusion matrix"):
    """Counts in each cell, colour by row-normalised rate (recall of each true class)."""
    cm = np.asarray(cm, dtype=float)
    k = cm.shape[0]
    names = list(class_names) if class_names and len(class_names) == k else [str(i) for i in range(k)]
    with np.errstate(all="ignore"):
        rate = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    size = min(12.0, 2.5 + 0.45 * k)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    im = ax.imshow(rate, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7 if k > 12 else 9,
                        color="white" if rate[i, j] > 0.5 else "black")
        ax.set_xticks(range(k), names, rotation=45 if max(len(n) for n in names) > 2 else 0, ha="right"
                      if max(len(n) for n in names) > 2 else "center", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


# ----------------------------------------------------------------------------- documents

def _fmt(value, std=None, *, kind="float"):
    if value is None:
        return "–"
    if kind == "int":
        text = _human(value)
    elif kind == "acc":
        text = f"{value:.4f}"
    elif kind == "sec":
        text = f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    else:
        text = f"{value:.4g}"
    if std:
        s = _human(std) if kind == "int" else (f"{std:.4f}" if kind == "acc" else f"{std:.2g}")
        text += f" ± {s}"
    return text


def _human(n):
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}" if n == int(n) else f"{n:.3g}"


class _Doc:
    """A few block types rendered both to Markdown and to HTML."""

    def __init__(self):
        self.blocks = []

    def add(self, kind, *args):
        self.blocks.append((kind, *args))

    def markdown(self) -> str:
        out = []
        for kind, *a in self.blocks:
            if kind in ("h1", "h2", "h3"):
                out.append("#" * int(kind[1]) + " " + a[0])
            elif kind == "p":
                out.append(a[0])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in a[0]))
            elif kind == "pre":
                out.append("```\n" + a[0] + "\n```")
            elif kind == "img":
                out.append(f"![{a[1]}]({a[0]})")
            elif kind == "table":
                header, rows = a
                lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
                lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
                out.append("\n".join(lines))
        return "\n\n".join(out) + "\n"

    def html(self, base_dir, title) -> str:
        body = []
        for kind, *a in self.blocks:
            if kind in ("h1", "h2", "h3"):
                body.append(f"<{kind}>{_inline(a[0])}</{kind}>")
            elif kind == "p":
                body.append(f"<p>{_inline(a[0])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in a[0]) + "</ul>")
            elif kind == "pre":
                body.append(f"<pre>{html.escape(a[0])}</pre>")
            elif kind == "img":
                with open(os.path.join(base_dir, a[0]), "rb") as f:
                    data = base64.b64encode(f.read()).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(a[1])}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{html.escape(a[1])}</figcaption></figure>")
            elif kind == "table":
                header, rows = a
                head = "".join(f"<th>{_inline(h)}</th>" for h in header)
                trs = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in r) + "</tr>" for r in rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n"
        )


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}tr:nth-child(even){background:#fafafa}"
    "img{max-width:100%;height:auto;border:1px solid #eee}figure{margin:1em 0}"
    "figcaption{color:#666;font-size:0.85em}pre{background:#f6f6f6;padding:0.8em;overflow-x:auto}"
    "code{background:#f3f3f3;padding:0 3px}"
)


def _inline(text) -> str:
    text = html.escape(str(text))
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


# ----------------------------------------------------------------------------- the report

def _environment(records):
    keys = ("backend", "versions", "host")
    envs = []
    for r in records:
        env = {k: r.get(k) for k in keys}
        if env not in envs:
            envs.append(env)
    return envs


def _provenance_items(records, provenance, command):
    items = []
    if command:
        cmd = command if isinstance(command, str) else shlex.join(str(c) for c in command)
        items.append(f"command: `{cmd}`")
    prov = dict(provenance or {})
    if "fingerprint" in prov and "source" in prov:  # a bare DataBundle.provenance()
        prov = {"data": prov}
    data = prov.pop("data", None)
    if data:
        sizes = ", ".join(f"{k} {v}" for k, v in (data.get("num_examples") or {}).items())
        items.append(
            f"data: `{data.get('name')}` ({data.get('source')}, task {data.get('task')}, input shape "
            f"{tuple(data.get('input_shape') or ())}, {data.get('num_classes')} classes; {sizes})"
        )
        items.append(f"data fingerprint: `{data.get('fingerprint')}`")
        if data.get("options"):
            items.append(f"data options: `{json.dumps(data['options'], sort_keys=True)}`")
    else:
        prints = sorted({str(r.get("data")) for r in records if r.get("data")})
        names = sorted({str(r.get("dataset")) for r in records if r.get("dataset")})
        if names:
            items.append(f"data: {', '.join(f'`{n}`' for n in names)}")
        if prints:
            items.append("data fingerprint: " + ", ".join(f"`{p}`" for p in prints))
    seeds = prov.pop("seeds", None)
    if seeds is None:
        seeds = sorted({r.get("seed") for r in records if r.get("seed") is not None})
    items.append(f"seeds: {', '.join(str(s) for s in seeds) or '–'}")
    epochs = prov.pop("epochs", None) or ", ".join(
        map(str, sorted({r.get("epochs") for r in records if r.get("epochs")}))) or "?"
    batch = prov.pop("batch_size", None) or ", ".join(
        map(str, sorted({r.get("batch_size") for r in records if r.get("batch_size")}))) or "?"
    items.append(f"budget: {epochs} epoch(s), batch size {batch}")
    fit = prov.pop("fit_kwargs", None)
    if fit is None:
        fits = {_canonical(r.get("fit_kwargs")) for r in records if r.get("fit_kwargs") is not None}
        fit = json.loads(fits.pop()) if len(fits) == 1 else None
    if fit is not None:
        items.append(f"training: `{json.dumps(fit, sort_keys=True)}` (shared `zoo.training.fit`)")
    for env in _environment(records):
        host = env.get("host") or {}
        versions = ", ".join(f"{k} {v}" for k, v in sorted((env.get("versions") or {}).items()))
        items.append(f"backend: {env.get('backend')}; versions: {versions}")
        items.append(f"device: {host.get('device')}; host: {host.get('platform')}, {host.get('cpu_count')} CPUs")
    for key, value in sorted(prov.items()):
        items.append(f"{key}: `{json.dumps(value, sort_keys=True, default=str)}`")
    return items


def _results_table(rows, metric, higher):
    kind = "acc" if metric == "accuracy" else "float"
    have = lambda f: any(r.get(f"{f}_mean") is not None for r in rows)  # noqa: E731
    cols = [(f"val {metric}", f"val_{metric}", kind), (f"test {metric}", f"test_{metric}", kind)]
    if metric != "loss":
        cols.append(("test loss" if have("test_loss") else "val loss",
                     "test_loss" if have("test_loss") else "val_loss", "float"))
    cols += [("params", "params", "int"), ("MACs", "macs", "int"), ("fit s", "fit_seconds", "sec"),
             ("latency ms", "latency_ms", "sec"), ("samples/s", "throughput", "int")]
    cols = [c for c in cols if have(c[1])]
    header = ["model", *[c[0] for c in cols], "seeds", "diagnosis"]
    body = []
    for r in rows:
        mark = " **(best)**" if r.get("best") else ""
        seeds = f"{r['completed']}" + (f" (+{r['failed']} failed)" if r["failed"] else "")
        body.append([f"{r['label']}{mark}", *[_fmt(r.get(f"{f}_mean"), r.get(f"{f}_std"), kind=k) for _, f, k in cols],
                     seeds, r["diagnosis"]])
    return header, body


def _flat(row) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out[k] = json.dumps(v, sort_keys=True)
        elif isinstance(v, list):
            out[k] = ";".join(str(x) for x in v)
        else:
            out[k] = v
    return out


def write_report(records, out_dir, *, title, provenance=None, command=None, selection=None) -> dict:
    """Write the report of ``records`` to ``out_dir``; returns ``{kind: path}``.

    Args:
        records: trial records (completed, failed or infeasible), from one or
            several models and hyperparameter settings.
        out_dir: folder for ``report.md``, ``report.html``, ``results.csv``,
            ``results.json``, ``report_meta.json`` and ``plots/``.
        title: first heading.
        provenance: what produced the records, e.g. ``{"data": bundle.provenance(),
            "seeds": [0, 1, 2], "epochs": 5, "fit_kwargs": {...}}``; versions,
            backend and device are read from the records.
        command: the command line (``sys.argv``) to show.
        selection: record ids this report is about; kept in ``report_meta.json``
            so that :func:`regenerate` picks the same records from a
            ``records.jsonl`` shared with other runs. ``None``: all records.

    Example:
        >>> paths = write_report(read_records("runs/cmp/records.jsonl"), "runs/cmp", title="Comparison")
        >>> paths["html"]
        'runs/cmp/report.html'
    """
    records = _dedupe(records)
    if not records:
        raise ValueError(
            f"No records to report on. Received: {len(records)} records for out_dir={os.fspath(out_dir)!r}")
    out_dir = os.fspath(out_dir)
    plot_dir = os.path.join(out_dir, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    metric, higher = primary_metric(records)
    rows = summarize_records(records)
    by_label = {g["label"]: g for g in group_records(records)}
    y = _y_field(rows, metric)
    paths = {}
    doc = _Doc()
    doc.add("h1", title)

    done = [r for r in records if r.get("status") == "completed"]
    datasets = sorted({str(r.get("dataset")) for r in records if r.get("dataset")})
    epochs = sorted({r.get("epochs") for r in records if r.get("epochs")})
    doc.add("p", (
        f"{len(rows)} model configuration(s), {len(records)} trial(s) ({len(done)} completed) on "
        f"{', '.join(f'`{d}`' for d in datasets) or 'unnamed data'}, {', '.join(map(str, epochs)) or '?'} epoch(s) "
        f"each. Numbers are mean ± sample standard deviation over seeds; a single seed shows no ±."))
    best = next((r for r in rows if r.get("best")), None)
    select = _select_field(rows, metric).split("_")[0]
    if best:
        details = ", ".join(
            f"{name} {_fmt(best.get(f + '_mean'), best.get(f + '_std'), kind=k)}"
            for name, f, k in ((f"validation {metric}", f"val_{metric}", "acc" if higher else "float"),
                               (f"test {metric}", f"test_{metric}", "acc" if higher else "float"),
                               ("parameters", "params", "int"), ("training time (s)", "fit_seconds", "sec"))
            if best.get(f + "_mean") is not None
        )
        doc.add("p", f"Best model by mean {'validation' if select == 'val' else select} {metric}: "
                     f"**{best['label']}**: {details}; loss curves: {best['diagnosis']}.")

    doc.add("h2", "Results")
    header, body = _results_table(rows, metric, higher)
    doc.add("table", header, body)
    doc.add("p", "The same table, unrounded, with the record ids every number comes from: `results.csv`, "
                 "`results.json`. Records: `records.jsonl` (one JSON object per trained model).")
    if any(r["hyperparameters"] for r in rows):
        doc.add("h3", "Configurations")
        doc.add("table", ["model", "hyperparameters / builder arguments", "records"],
                [[r["label"], "`" + json.dumps(r["hyperparameters"], sort_keys=True) + "`",
                  ", ".join(r["record_ids"] + r["failed_ids"])] for r in rows])

    if any(r.get(f"{y}_mean") is not None for r in rows):
        doc.add("h2", "Size, compute and speed trade-offs")
        fronts = []
        for x in ("params", "macs", "fit_seconds", "latency_ms"):
            if not any(r.get(f"{x}_mean") is not None for r in rows):
                continue
            name = f"{metric}_vs_{x}"
            paths[name] = plot_tradeoff(rows, os.path.join(plot_dir, f"{name}.png"), x=x, y=y, higher=higher)
            doc.add("img", f"plots/{name}.png", f"{y.replace('_', ' ')} vs {_AXES[x][0]}")
            members = [rows[i]["label"] for i in sorted(_front(rows, x, y, higher))]
            fronts.append(f"{_AXES[x][0]}: {', '.join(members)}")
        doc.add("p", f"Pareto front, marked in red on each plot: the models that no other model beats on both "
                     f"{y.replace('_', ' ')} and cost (at least as good on both, better on one):")
        doc.add("ul", fronts)

    curve_rows = [r for r in rows if r["completed"]][:MAX_CURVE_ROWS]
    if curve_rows:
        doc.add("h2", "Training curves")
        groups = [(r["label"], [rec.get("history") or {} for rec in by_label[r["label"]]["records"]
                                if rec.get("status") == "completed"], r["diagnosis"]) for r in curve_rows]
        paths["curves"] = plot_curves(groups, os.path.join(plot_dir, "curves.png"), metric=metric)
        more = f" (the {MAX_CURVE_ROWS} best of {len(rows)} shown)" if len(rows) > len(curve_rows) else ""
        doc.add("p", f"Training (blue) and validation (orange) loss and {metric} per epoch, mean over seeds with "
                     f"a ±std band{more}.")
        doc.add("img", "plots/curves.png", "training and validation curves per model")

    doc.add("h2", "Loss-curve diagnosis")
    doc.add("table", ["model", "diagnosis", "per seed", "why"],
            [[r["label"], r["diagnosis"], ", ".join(r["diagnosis_per_seed"]) or "–", r["diagnosis_reason"]]
             for r in rows])
    doc.add("p", "Rules, checked in this order on each seed's curves (the first that matches gives the label; "
                 "a model's label is the most frequent over its seeds):")
    doc.add("ul", [f"**{label}**: {rule}" for label, rule in rules(_num_classes(records))])
    doc.add("p", "Thresholds: `" + json.dumps(THRESHOLDS, sort_keys=True) + "` (`tuning.diagnosis.THRESHOLDS`).")

    if best:
        cms = [r.get("confusion_matrix") for r in by_label[best["label"]]["records"]
               if r.get("status") == "completed" and r.get("confusion_matrix")]
        if cms:
            cm = np.sum(np.asarray(cms, dtype=np.int64), axis=0)
            source = next(r for r in by_label[best["label"]]["records"] if r.get("confusion_matrix"))
            names = source.get("class_names") or ((provenance or {}).get("data") or {}).get("class_names")
            split = source.get("confusion_split", "test")
            doc.add("h2", f"Confusion matrix of the best model ({best['label']})")
            paths["confusion_matrix"] = plot_confusion_matrix(
                cm, os.path.join(plot_dir, "confusion_matrix.png"), class_names=names,
                title=f"{best['label']} on the {split} split, summed over {len(cms)} seed(s)")
            doc.add("img", "plots/confusion_matrix.png", f"confusion matrix of {best['label']} ({split} split)")
            diag = np.trace(cm) / max(1, cm.sum())
            doc.add("p", f"Rows are true classes, columns predictions; {int(cm.sum())} {split} predictions "
                         f"over {len(cms)} seed(s), {diag:.4f} correct.")

    failed = [r for r in records if r.get("status") != "completed"]
    if failed:
        doc.add("h2", "Failed and infeasible trials")
        doc.add("table", ["id", "model", "status", "error"],
                [[r.get("id"), r.get("model"), r.get("status"), str(r.get("error"))[:200]] for r in failed])

    doc.add("h2", "Provenance")
    doc.add("ul", _provenance_items(records, provenance, command))

    paths["markdown"] = os.path.join(out_dir, "report.md")
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(doc.markdown())
    paths["html"] = os.path.join(out_dir, "report.html")
    with open(paths["html"], "w", encoding="utf-8") as f:
        f.write(doc.html(out_dir, title))
    paths["json"] = os.path.join(out_dir, "results.json")
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=2, default=str)
        f.write("\n")
    paths["csv"] = os.path.join(out_dir, "results.csv")
    flat = [_flat(r) for r in rows]
    fields = list(dict.fromkeys(k for r in flat for k in r))
    with open(paths["csv"], "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in flat:
            writer.writerow({k: ("" if v is None else (repr(v) if isinstance(v, float) else v)) for k, v in r.items()})
    paths["meta"] = os.path.join(out_dir, META_FILE)
    meta = {"title": title, "provenance": provenance, "command": command,
            "selection": list(selection) if selection is not None else None}
    with open(paths["meta"], "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, default=str)
        f.write("\n")
    return paths


def format_summary(rows, paths=None) -> str:
    """The headline table of a report as plain text (what the command line prints), and where its files are."""
    metric = next((m for m in ("accuracy", "mae") if any(
        r.get(f"val_{m}_mean") is not None or r.get(f"test_{m}_mean") is not None for r in rows)), "loss")

    def ms(r, f):
        m, s = r.get(f + "_mean"), r.get(f + "_std")
        return "-" if m is None else f"{m:.4f}" + (f"±{s:.3f}" if s else "")

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = [f"{'model':<22} {'val ' + metric:>15} {'test ' + metric:>15} {'params':>10} {'MACs':>12} "
             f"{'fit s':>7} {'latency ms':>10}  diagnosis"]
    for r in rows:
        label = r["label"] + (" *" if r.get("best") else "")
        lines.append(
            f"{label[:22]:<22} {ms(r, 'val_' + metric):>15} {ms(r, 'test_' + metric):>15} "
            f"{num(r.get('params_mean'), ',.0f'):>10} {num(r.get('macs_mean'), ',.0f'):>12} "
            f"{num(r.get('fit_seconds_mean'), '.1f'):>7} {num(r.get('latency_ms_mean'), '.2f'):>10}  {r['diagnosis']}"
        )
    if any(r.get("best") for r in rows):
        lines.append("* best by mean validation " + metric)
    if paths:
        lines.append(f"\nReport:  {paths.get('html')}\n         {paths.get('markdown')}\nResults: {paths.get('csv')}")
    return "\n".join(lines)


def regenerate(run_dir, out_dir=None, *, title=None, all_records=False) -> dict:
    """Rebuild a report from ``<run_dir>/records.jsonl`` (and ``report_meta.json`` if there), no training.

    Args:
        run_dir: a folder with ``records.jsonl``.
        out_dir: where to write (default: where the stored report is, ``run_dir`` or
            ``run_dir/report``; ``run_dir`` when there is none).
        title: overrides the stored title.
        all_records: ignore the stored selection of record ids.

    Raises:
        FileNotFoundError: no ``records.jsonl`` in ``run_dir``.
    """
    run_dir = os.fspath(run_dir)
    path = os.path.join(run_dir, "records.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No records.jsonl in {run_dir!r}. Received: run_dir={run_dir!r}")
    records = read_records(path)
    meta = {}
    # a comparison keeps its report next to the records; a search in RUN_DIR/report
    for folder in (run_dir, os.path.join(run_dir, "report")):
        if os.path.isfile(os.path.join(folder, META_FILE)):
            with open(os.path.join(folder, META_FILE), encoding="utf-8") as f:
                meta = json.load(f)
            out_dir = out_dir or folder
            break
    selection = None if all_records else meta.get("selection")
    if selection is not None:
        wanted = set(selection)
        records = [r for r in records if r.get("id") in wanted]
    title = title or meta.get("title") or f"Report of {os.path.basename(os.path.abspath(run_dir))}"
    return write_report(records, out_dir or run_dir, title=title, provenance=meta.get("provenance"),
                        command=meta.get("command"), selection=selection)
