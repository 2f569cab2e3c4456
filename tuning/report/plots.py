"""The report's plots: metric vs cost trade-offs, training curves and confusion matrices (PNG files).

Figures come from :mod:`zoo.plots` (a bare Agg figure, no ``pyplot``).
"""

from __future__ import annotations

import warnings

import numpy as np

from tuning.objectives import check_direction
from tuning.records import finite
from tuning.report.summary import pareto_front
from zoo.plots import figure, save

# cost field -> (axis label, log scale)
AXES = {
    "params": ("parameters", True),
    "macs": ("MACs per sample", True),
    "fit_seconds": ("training time (s)", False),
    "latency_ms": ("latency at batch 1 (ms)", False),
}


def metric_title(metric):
    """The words for a metric name on an axis: ``mae`` -> ``mean absolute error``."""
    return {"accuracy": "accuracy", "mae": "mean absolute error", "loss": "loss"}.get(metric, metric)


LABEL_ALL = 20  # up to this many points each gets its label; past it, only the front's (if it is that small)


def plot_tradeoff(rows, path, *, x, y, direction="max", title=None, test=None):
    """Scatter mean ``y`` vs mean ``x`` per row (error bars: std over seeds), its Pareto front marked.

    The front is decided on ``y``, which should be a validation metric: test values never decide a front.
    A ``test_*`` ``y`` whose ``val_*`` counterpart the rows have is moved aside for it (and shown as ``test``).
    The ``test`` field is drawn beside each point as a hollow grey marker, for reference only.

    Args:
        rows: rows of :func:`summarize_records`.
        x: a cost field (``params``, ``macs``, ``fit_seconds``, ``latency_ms``); sizes use a log axis.
        y: the metric field that decides the front, e.g. ``val_accuracy``.
        direction: ``"max"`` when a higher ``y`` is better, ``"min"`` when a lower one is.
        test: the field shown for reference (default: the ``test_*`` counterpart of a ``val_*`` ``y``,
            when the rows have it; ``False``: none).
    Returns:
        ``path``.
    """
    check_direction(direction)
    y, test = front_fields(rows, y, test)
    xlabel, log = AXES.get(x, (x, False))
    pts = [(r, r.get(f"{x}_mean"), r.get(f"{y}_mean")) for r in rows]
    pts = [(r, a, b) for r, a, b in pts if a is not None and b is not None and (a > 0 or not log)]
    front = set(pareto_front([r for r, _, _ in pts], x, y, direction))
    split, _, metric = y.partition("_")
    words = {"val": "validation", "test": "test"}.get(split, split)
    fig = figure()
    ax = fig.add_subplot()
    if test:
        shown = [(a, r.get(f"{test}_mean"), b) for r, a, b in pts if r.get(f"{test}_mean") is not None]
        if shown:
            from matplotlib.collections import LineCollection

            # a faint link from each point to its test value: one collection, however many points
            ax.add_collection(LineCollection([[(a, t), (a, b)] for a, t, b in shown], colors="0.75",
                                             linewidths=0.6, zorder=1))
            ax.scatter([a for a, _, _ in shown], [t for _, t, _ in shown], s=16 if len(pts) <= LABEL_ALL else 6,
                       facecolors="none", edgecolors="0.45", linewidths=0.8, zorder=2,
                       label=f"test {metric_title(test.partition('_')[2])} (for reference)")
    # One errorbar call per colour and labels only where they can be read (every point of a small plot, the
    # front's of a large one): the cost of drawing grows with the artists, not with the points.
    for on, colour, size in ((False, "tab:blue", 5), (True, "tab:red", 7)):
        group = [p for i, p in enumerate(pts) if (i in front) == on]
        if group:
            ax.errorbar([a for _, a, _ in group], [b for _, _, b in group],
                        xerr=[r.get(f"{x}_std") or 0 for r, _, _ in group],
                        yerr=[r.get(f"{y}_std") or 0 for r, _, _ in group], fmt="o", color=colour, ecolor="0.6",
                        capsize=3 if len(pts) <= LABEL_ALL else 0, markersize=size if len(pts) <= LABEL_ALL else 3,
                        zorder=3, label=f"{words} {metric_title(metric)}" if not on else None)
    for i, (r, a, b) in enumerate(pts):
        if len(pts) <= LABEL_ALL or (i in front and len(front) <= LABEL_ALL):
            label = r["label"] if len(r["label"]) <= 32 else r["label"][:31] + "…"
            note = ax.annotate(label, (a, b), textcoords="offset points", xytext=(5, 4), fontsize=8)
            note.set_in_layout(len(pts) <= LABEL_ALL)  # a crowded plot's labels never shrink its axes
    if front:
        f = sorted((pts[i][1], pts[i][2]) for i in front)
        ax.step([p[0] for p in f], [p[1] for p in f], where="post", color="tab:red", alpha=0.6,
                label=f"Pareto front on {words} {metric_title(metric)} (red)")
    if ax.get_legend_handles_labels()[0]:
        # a fixed corner away from the front (searching for the "best" one scans every point)
        ax.legend(loc="lower right" if direction == "max" else "upper right", fontsize=8)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel + (" (log scale)" if log else ""))
    ax.set_ylabel(f"{metric_title(metric)} (mean ± std over seeds)")
    ax.set_title(title or f"{words} {metric_title(metric)} vs {xlabel}"
                 + (f"\nfront on {words}; test shown for reference" if test else ""), fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    return save(fig, path)


def front_fields(rows, y, test=None):
    """``(y, test)``: the field that decides a front (validation when the rows have it) and the one shown beside it."""
    split, _, metric = y.partition("_")
    has = lambda f: any(r.get(f"{f}_mean") is not None for r in rows)  # noqa: E731
    if split == "test" and has(f"val_{metric}"):
        return f"val_{metric}", (y if test is None else test) or None
    if test is None:
        test = f"test_{metric}" if split == "val" and has(f"test_{metric}") else None
    return y, test or None


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
    with np.errstate(all="ignore"), warnings.catch_warnings():
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
    fig = figure(4.2 * cols, 2.5 * max(1, len(groups)) + 0.4)
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
    return save(fig, path)


def plot_confusion_matrix(cm, path, *, class_names=None, title="Confusion matrix"):
    """Counts in each cell, colour by row-normalised rate (recall of each true class)."""
    cm = np.asarray(cm, dtype=float)
    k = cm.shape[0]
    names = list(class_names) if class_names and len(class_names) == k else [str(i) for i in range(k)]
    with np.errstate(all="ignore"):
        rate = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    size = min(12.0, 2.5 + 0.45 * k)
    fig = figure(size + 1.0, size)
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
    return save(fig, path)
