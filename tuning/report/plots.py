"""The report's plots: metric vs cost trade-offs, training curves and confusion matrices (PNG files).

Figures come from :mod:`zoo.plots` (a bare Agg figure, no ``pyplot``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from tuning.objectives import check_direction
from tuning.records import finite
from tuning.report.summary import pareto_front
from zoo.plots import figure, integer_axis, legend_below, log_axis, place_labels, save, set_title, subplots

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
    fig = figure(6.4, 5.0, margins=(0.85, 0.6, 0.25, 0.55 if test else 0.35))
    ax = fig.add_subplot()
    shown = []
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
    if front:
        f = sorted((pts[i][1], pts[i][2]) for i in front)
        ax.step([p[0] for p in f], [p[1] for p in f], where="post", color="tab:red", alpha=0.6,
                label=f"Pareto front on {words} {metric_title(metric)} (red)")
    if log and pts:
        log_axis(ax.xaxis, min(a for _, a, _ in pts), max(a for _, a, _ in pts))
    ax.margins(x=0.06, y=0.08)
    legend_below(fig, ax, ncol=2)  # below the axes: it covers no point (before the labels: it moves the axes)
    # labels where they cover no point and no other label, inside the axes: the front's first
    order = sorted(range(len(pts)), key=lambda i: (i not in front, i))
    order = [i for i in order if len(pts) <= LABEL_ALL or (i in front and len(front) <= LABEL_ALL)]
    place_labels(ax, [(pts[i][1], pts[i][2]) for i in order],
                 [_short(pts[i][0]["label"], 32) for i in order],
                 # a crowded plot's front labels may sit on the cloud (on a white box), never on each other
                 obstacles=[] if len(pts) > LABEL_ALL else [(a, t) for a, t, _ in shown],
                 bbox=None if len(pts) <= LABEL_ALL else {"boxstyle": "square,pad=0.1", "facecolor": "white",
                                                          "edgecolor": "none", "alpha": 0.75})
    ax.set_xlabel(xlabel + (" (log scale)" if log else ""))
    ax.set_ylabel(f"{metric_title(metric)} (mean ± std over seeds)")
    set_title(ax, title or f"{words} {metric_title(metric)} vs {xlabel}"
                 + (f"\nfront on {words}; test shown for reference" if test else ""), fontsize=10)
    ax.grid(True, alpha=0.3, which="major")
    ax.grid(True, alpha=0.12, which="minor")
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


MAX_CURVE_GROUPS = 10  # groups whose colours one can tell apart in one panel (matplotlib's tab10)
SPLITS = (("val_", "validation", "-"), ("", "training", "--"))  # validation solid, training dashed


def plot_curves(groups, path, *, metric="accuracy", title=None):
    """Loss (left) and ``metric`` (right) per epoch of every group, in one pair of panels.

    One group is drawn training blue and validation orange, its subtitle under the panels' titles. Several
    groups share the panels, a colour each, validation solid and training dashed, named in the legend below
    with their subtitles: curves side by side compare at a glance, and a figure of two panels costs a tenth
    of one panel pair per group. Several histories in a group (seeds) are drawn as their mean, with a ±std
    band around the validation curve.

    Args:
        groups: ``[(label, [history, ...], subtitle), ...]``, at most :data:`MAX_CURVE_GROUPS` (pass the best
            ones). A single ``History.history`` dict is accepted too.
        metric: the second panel (``accuracy``, ``mae``, ...); omitted when no history has it.
    Returns:
        ``path``.
    Raises:
        ValueError: more than :data:`MAX_CURVE_GROUPS` groups.
    """
    if isinstance(groups, dict):
        groups = [("model", [groups], "")]
    groups = list(groups)
    if len(groups) > MAX_CURVE_GROUPS:
        raise ValueError(f"`groups` holds at most {MAX_CURVE_GROUPS} groups (colours one can tell apart in a "
                         f"panel); pass the best ones. Received: {len(groups)} groups")
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    keys = ["loss", metric] if any(h.get(metric) for _, hs, _ in groups for h in hs) else ["loss"]
    single = len(groups) <= 1
    label, _, subtitle = groups[0] if single and groups else ("model", [], "")
    if single:
        colours = {}
        handles = [Line2D([], [], color="tab:blue", label="training"),
                   Line2D([], [], color="tab:orange", label="validation")]
    else:
        palette = [f"tab:{c}" for c in ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray",
                                        "olive", "cyan")]
        colours = {i: palette[i] for i in range(len(groups))}
        handles = [Line2D([], [], color="black", linestyle=style, label=name) for _, name, style in SPLITS]
        handles += [Line2D([], [], color=colours[i], linewidth=2,
                           label=_short(f"{g[0]} ({g[2]})" if g[2] else g[0], 56)) for i, g in enumerate(groups)]
    ncol = 1 if len(keys) == 1 else 2
    legend_rows = math.ceil(len(handles) / ncol)
    top = (0.45 if title else 0.0) + (0.55 if subtitle else 0.35)
    bottom = 0.55 + 0.19 * legend_rows + 0.1
    fig = figure(4.2 * len(keys), 3.0 + top + bottom, margins=(0.6, bottom, 0.15, top))
    axes = subplots(fig, 1, len(keys), gaps=(0.8, 0.5))[0]
    epochs = max((len(v) for _, hs, _ in groups for h in hs for v in h.values() if isinstance(v, (list, tuple))),
                 default=1)
    for ax, key in zip(axes, keys):
        for i, (_, histories, _) in enumerate(groups):
            for prefix, name, style in SPLITS:
                mean, std = _stack(histories, prefix + key)
                if mean is None:
                    continue
                colour = colours.get(i) or ("tab:orange" if prefix else "tab:blue")
                xs = np.arange(1, len(mean) + 1)
                ax.plot(xs, mean, linestyle="-" if single else style, marker="o" if len(mean) < 3 else None,
                        color=colour, markersize=3, linewidth=1.5 if prefix or single else 1.0)
                if prefix and np.any(std > 0):
                    ax.fill_between(xs, mean - std, mean + std, color=colour, alpha=0.15 if not single else 0.2)
        head = f"{label}: {key}" if single else key
        set_title(ax, head + (f"\n{subtitle}" if subtitle and key == "loss" else ""), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        integer_axis(ax.xaxis, range(1, 1 + epochs), max_ticks=6)  # 1, 2, 3 (never 1.5, nor 0.96)
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    # one legend below the panels: it hides no curve (loc="best" would search every point)
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.02), ncol=ncol, fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, y=1 - 0.08 / fig.get_size_inches()[1], va="top")
    return save(fig, path)


def _short(text, size):
    return text if len(text) <= size else text[: size - 1] + "…"


def plot_confusion_matrix(cm, path, *, class_names=None, title="Confusion matrix"):
    """Counts in each cell, colour by row-normalised rate (recall of each true class)."""
    cm = np.asarray(cm, dtype=float)
    k = cm.shape[0]
    names = list(class_names) if class_names and len(class_names) == k else [str(i) for i in range(k)]
    with np.errstate(all="ignore"):
        rate = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    size = min(12.0, 2.5 + 0.45 * k)
    longest = max(len(n) for n in names) if k <= 30 else 2
    rotate = longest > 2
    # fixed margins: the class names (rotated 45 degrees when long) below and to the left, the colour bar right
    below = 0.6 + (0.07 * min(longest, 24) * 0.72 if rotate else 0.0)
    beside = 0.45 + 0.065 * min(longest, 24)
    side = size - 1.0  # the matrix is square: the figure is sized around it, so nothing moves when it is drawn
    fig = figure(beside + side + 1.3, below + side + 0.45, margins=(beside, below, 1.3, 0.45))
    ax = fig.add_subplot()
    im = ax.imshow(rate, cmap="Blues", vmin=0, vmax=1)
    box = ax.get_position()
    cax = fig.add_axes((box.x1 + 0.25 / fig.get_size_inches()[0], box.y0, 0.18 / fig.get_size_inches()[0],
                        box.height))
    fig.colorbar(im, cax=cax, label="fraction of the true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7 if k > 12 else 9,
                        color="white" if rate[i, j] > 0.5 else "black")
        ax.set_xticks(range(k), names, rotation=45 if rotate else 0, ha="right" if rotate else "center",
                      fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    set_title(ax, title, fontsize=10)
    return save(fig, path)
