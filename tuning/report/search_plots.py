"""The plots of a search report: optimisation history, hypervolume history, parallel coordinates of the
hyperparameters, hyperparameter importance and slices (PNG files).

Only matplotlib and scikit-learn are imported (when a plot is made), never a deep-learning framework.
Each plot stays cheap for thousands of trials: one collection per kind of point, no per-point labels, a fixed
layout (no layout engine) with the legends outside the axes. Integer hyperparameters get integer ticks, log
axes labels that never collide, and the parallel coordinates at most :data:`MAX_AXES` hyperparameters.

Trials are taken in trial order (by id, as :func:`tuning.records.latest_records` sorts them). Only
completed trials with a finite objective are ranked, coloured or learned from; failed, infeasible and
pruned trials are drawn with their own markers where a plot shows every trial.

Example:
    >>> plot_history(records, "plots/history.png", objective="val_accuracy", direction="max")
    'plots/history.png'
"""

from __future__ import annotations

import json
import math

import numpy as np

from tuning.indicators import hypervolume_history
from tuning.objectives import check_direction, objective_fields
from tuning.records import finite, latest_records
from zoo.plots import figure, integer_axis, legend_below, log_axis, save, set_title, subplots

__all__ = ["MIN_IMPORTANCE_RECORDS", "hyperparameter_table", "hyperparameter_importance", "plot_history",
           "plot_hypervolume_history", "plot_importance", "plot_parallel_coordinates", "plot_slices",
           "trial_order"]

MIN_IMPORTANCE_RECORDS = 6  # fewer completed trials than this say nothing about importance
LOG_RATIO = 20  # positive values spanning this factor or more go on a log axis (learning rates, widths)
MAX_CATEGORIES = 12  # ticks shown per categorical axis (the rest unlabelled)
MAX_AXES = 8  # hyperparameter axes of the parallel coordinates: more are unreadable at a page's width
TICK_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}
# status -> (marker, colour, label) of the trials that are not ranked
STATUS_STYLE = {
    "failed": ("x", "tab:red", "failed"),
    "infeasible": ("s", "tab:orange", "infeasible (constraint)"),
    "pruned": ("v", "0.45", "pruned"),
}


def trial_order(records) -> list:
    """The latest record per id, in trial order (numeric ids numerically)."""
    return latest_records(records, sort=True)


def _value(record, objective):
    v = record.get(objective)
    return float(v) if finite(v) else None


def _ranked(records, objective):
    """Completed records with a finite ``objective``: the only ones that are ranked."""
    return [r for r in records if r.get("status") == "completed" and _value(r, objective) is not None]


# ----------------------------------------------------------------------------- histories

def plot_history(records, path, *, objective, direction="max", title=None):
    """The objective of every trial in trial order, with the best so far (completed trials only).

    Failed, infeasible and pruned trials get their own markers: at their objective value when they
    have one, along the bottom of the plot when they have none. Returns ``path``.
    """
    check_direction(direction)
    records = trial_order(records)
    fig = figure(8.4, 4.4, margins=(0.8, 0.6, 0.25, 0.35))
    ax = fig.add_subplot()
    done = [(i + 1, _value(r, objective)) for i, r in enumerate(records)
            if r.get("status") == "completed" and _value(r, objective) is not None]
    if done:
        xs, ys = np.array(done).T
        ax.scatter(xs, ys, s=14, color="tab:blue", alpha=0.7, linewidths=0, label="completed trial")
        best = np.maximum.accumulate(ys) if direction == "max" else np.minimum.accumulate(ys)
        ax.step(np.append(xs, len(records)), np.append(best, best[-1]), where="post", color="tab:red",
                label="best so far")
    edge = ax.get_xaxis_transform()  # x in data, y in axes fraction: a row along the bottom
    size = 22 if len(records) <= 500 else 8
    for status, (marker, colour, label) in STATUS_STYLE.items():
        group = [(i + 1, _value(r, objective)) for i, r in enumerate(records) if r.get("status") == status]
        valued = [(x, y) for x, y in group if y is not None]
        bare = [x for x, y in group if y is None]
        if valued:
            ax.scatter(*zip(*valued), s=size, marker=marker, color=colour, label=f"{label} ({len(group)})")
        if bare:
            ax.scatter(bare, [0.03] * len(bare), transform=edge, s=size, marker=marker, color=colour, clip_on=False,
                       label=None if valued else f"{label}, no {objective} ({len(group)})")
    ax.set_xlabel("trial (in trial order)")
    ax.set_ylabel(f"{objective} ({'higher' if direction == 'max' else 'lower'} is better)")
    set_title(ax, title or f"Optimisation history: {objective}")
    ax.set_xlim(0.5, max(1, len(records)) + 0.5)
    integer_axis(ax.xaxis)
    ax.grid(True, alpha=0.3)
    legend_below(fig, ax, ncol=3)  # below the axes: it hides no trial, and no free corner is searched for
    return save(fig, path)


def plot_hypervolume_history(records, path, *, objectives, reference, title=None):
    """The hypervolume of the trials so far (:func:`tuning.indicators.hypervolume_history`), in trial order.

    Returns ``path``.
    """
    objectives = objective_fields(objectives, arg="objectives")
    records = trial_order(records)
    history = hypervolume_history(records, objectives, reference)
    fig = figure(7.0, 3.8, margins=(0.8, 0.55, 0.25, 0.55))
    ax = fig.add_subplot()
    xs = np.arange(1, len(history) + 1)
    ax.step(xs, history, where="post", color="tab:purple")
    ax.fill_between(xs, history, step="post", color="tab:purple", alpha=0.15)
    ax.set_xlabel("trial (in trial order)")
    ax.set_ylabel("hypervolume")
    ax.set_xlim(0.5, max(1, len(history)) + 0.5)
    integer_axis(ax.xaxis)
    ax.set_ylim(bottom=0)
    names = ", ".join(f"{n} {d}" for n, d in objectives)
    ref = ", ".join(f"{v:.4g}" for v in reference)
    set_title(ax, title or f"Hypervolume of ({names})\nreference point ({ref})", fontsize=10)
    ax.grid(True, alpha=0.3)
    return save(fig, path)


# ----------------------------------------------------------------------------- hyperparameter table

def _label(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "x".join(_label(v) for v in value)
    return str(value)


def _numeric(values) -> bool:
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                for v in values)


def hyperparameter_table(records, *, objective) -> dict:
    """The varying hyperparameters of the ranked records, encoded for plots and models.

    Returns:
        ``{"records", "names", "kinds", "categories", "raw", "encoded", "y"}``: the completed records with a
        finite objective (in trial order), the names of the hyperparameters that take more than one value
        (plus ``model`` when several models were searched and it is not a hyperparameter already),
        ``"numeric"``, ``"log"`` (positive numbers spanning a factor of :data:`LOG_RATIO` or more) or
        ``"categorical"`` per name, the categories (strings, in first-seen order) of each categorical one,
        the raw values, an ``(n, k)`` float matrix (numbers as they are, ``log10`` for ``"log"``, categories
        by their index; an absent conditional value below the smallest present one), and the objective values.
    """
    ranked = _ranked(trial_order(records), objective)
    hps = [dict(r.get("hyperparameters") or {}) for r in ranked]
    if len({str(r.get("model")) for r in ranked}) > 1:
        for hp, r in zip(hps, ranked):
            hp.setdefault("model", r.get("model"))
    names = []
    for hp in hps:
        names += [k for k in hp if k not in names]
    names = [n for n in names if len({json.dumps(hp.get(n), sort_keys=True, default=str) for hp in hps}) > 1]
    kinds, categories, columns, raw = {}, {}, [], {}
    for name in names:
        values = [hp.get(name) for hp in hps]
        raw[name] = values
        present = [v for v in values if v is not None]
        if _numeric(present):
            positive = all(v > 0 for v in present)
            kinds[name] = "log" if positive and max(present) / min(present) >= LOG_RATIO else "numeric"
            numbers = [math.log10(v) if kinds[name] == "log" else float(v) for v in present]
            low, span = min(numbers), (max(numbers) - min(numbers)) or 1.0
            columns.append([low - 0.1 * span if v is None else (math.log10(v) if kinds[name] == "log" else float(v))
                            for v in values])
        else:
            kinds[name] = "categorical"
            labels = ["(absent)" if v is None else _label(v) for v in values]
            categories[name] = list(dict.fromkeys(labels))
            columns.append([float(categories[name].index(label)) for label in labels])
    encoded = np.array(columns, dtype=float).T.reshape(len(ranked), len(names))
    y = np.array([_value(r, objective) for r in ranked], dtype=float)
    return {"records": ranked, "names": names, "kinds": kinds, "categories": categories, "raw": raw,
            "encoded": encoded, "y": y}


# ----------------------------------------------------------------------------- importance

def hyperparameter_importance(records, *, objective, min_records=MIN_IMPORTANCE_RECORDS, seed=0) -> list:
    """How much each hyperparameter drives the objective: ``[(name, mean, std), ...]``, most important first.

    A random forest (scikit-learn ``RandomForestRegressor``, ``random_state=seed``) learns the objective
    from the hyperparameters of the completed trials (categories as their index, positive values spanning a
    factor of :data:`LOG_RATIO` as ``log10``); the importance of a hyperparameter is the loss of the forest's
    R² when that column is shuffled (``sklearn.inspection.permutation_importance``, mean and std over
    repeats). Deterministic for a given ``seed``.

    Raises:
        ValueError: fewer than ``min_records`` completed trials, or no hyperparameter that varies
            (the message is the reason a report gives).
    """
    table = hyperparameter_table(records, objective=objective)
    n = len(table["records"])
    if n < min_records:
        raise ValueError(f"{n} completed trial(s) with a finite {objective}; the importance needs at least "
                         f"{min_records}")
    if not table["names"]:
        raise ValueError("no hyperparameter takes more than one value in the completed trials")
    if np.ptp(table["y"]) == 0:
        raise ValueError(f"every completed trial has the same {objective}")
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    X, y = table["encoded"], table["y"]
    # a fixed sample of at most 2,000 trials keeps a report of thousands of trials at a few seconds
    rows = np.random.default_rng(seed).permutation(n)[:2000] if n > 2000 else np.arange(n)
    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
    forest.fit(X[rows], y[rows])
    result = permutation_importance(forest, X[rows], y[rows], n_repeats=8, random_state=seed, n_jobs=1)
    out = [(name, float(m), float(s)) for name, m, s in
           zip(table["names"], result.importances_mean, result.importances_std)]
    return sorted(out, key=lambda t: -t[1])


def plot_importance(importances, path, *, objective, title=None):
    """Horizontal bars of :func:`hyperparameter_importance` (± std over permutation repeats). Returns ``path``."""
    names = [n for n, _, _ in importances][::-1]
    means = [m for _, m, _ in importances][::-1]
    stds = [s for _, _, s in importances][::-1]
    longest = max((len(n) for n in names), default=4)
    fig = figure(6.4, 1.2 + 0.35 * max(1, len(names)), margins=(0.3 + 0.068 * min(longest, 40), 0.55, 0.25, 0.35))
    ax = fig.add_subplot()
    ax.barh(range(len(names)), means, xerr=stds, color="tab:green", ecolor="0.4", capsize=3)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel(f"drop in R² of a random forest predicting {objective} when shuffled", fontsize=9)
    set_title(ax, title or "Hyperparameter importance (permutation)", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return save(fig, path)


# ----------------------------------------------------------------------------- parallel coordinates and slices

def plot_parallel_coordinates(records, path, *, objective, direction="max", names=None, max_axes=MAX_AXES,
                              title=None):
    """One line per completed trial across the varying hyperparameters and the objective, coloured by it.

    Numeric axes are min-max normalised (``log10`` first when the values span a factor of :data:`LOG_RATIO`),
    categorical ones spread their categories evenly with each category as a tick. The best trials are
    drawn last (on top). At most ``max_axes`` hyperparameters are drawn (the first of ``names``, e.g. the
    most important first; default: in the order the trials name them), about an inch apart: the title says
    how many were left out. Returns ``path``.

    Raises:
        ValueError: no completed trial, or no hyperparameter that varies.
    """
    from matplotlib.collections import LineCollection

    check_direction(direction)
    table = hyperparameter_table(records, objective=objective)
    if not table["records"] or not table["names"]:
        raise ValueError("no completed trial or no hyperparameter that varies")
    varying = table["names"]
    shown = [n for n in (names if names is not None else varying) if n in varying][:max(1, max_axes)]
    if not shown:
        raise ValueError(f"none of {list(names)} varies in the completed trials; those that do: {varying}")
    kinds = table["kinds"]
    columns = []
    for name in shown:
        col = table["encoded"][:, varying.index(name)]
        if kinds[name] == "categorical":
            k = len(table["categories"][name])
            columns.append(col / (k - 1) if k > 1 else col * 0 + 0.5)
        else:
            columns.append(_unit(col))
    columns.append(_unit(table["y"]))
    data = np.stack(columns, axis=1)
    order = np.argsort(table["y"] if direction == "max" else -table["y"], kind="stable")  # best last
    xs = np.arange(data.shape[1])
    # 1.05 inches between axes: each axis' tick texts (14 characters at 7 points) and its name (lines of 14
    # characters at 8 points) fit in the gap; at most 8 hyperparameters keep the figure within a page (1,100
    # pixels), shown at full size
    width = max(6.4, 1.05 * (len(xs) - 1 + 0.6) + 1.8)
    fig = figure(width, 4.6, margins=(0.6, 0.7, 1.2, 0.55))
    ax = fig.add_subplot()
    cmap = "viridis" if direction == "max" else "viridis_r"
    lines = LineCollection([np.column_stack([xs, row]) for row in data[order]], cmap=cmap,
                           linewidths=0.9 if len(order) <= 200 else 0.5, alpha=0.8 if len(order) <= 200 else 0.35)
    lines.set_array(table["y"][order])
    ax.add_collection(lines)
    box = ax.get_position()
    cax = fig.add_axes((box.x1 + 0.2 / width, box.y0, 0.15 / width, box.height))
    fig.colorbar(lines, cax=cax, label=objective).solids.set_alpha(1.0)
    for x in xs:
        ax.axvline(x, color="0.2", linewidth=0.8)
    for j, name in enumerate(shown):
        if kinds[name] == "categorical":
            cats = table["categories"][name]
            picked = cats if len(cats) <= MAX_CATEGORIES else cats[:: math.ceil(len(cats) / MAX_CATEGORIES)]
            for label in picked:
                i = cats.index(label)
                ax.text(j + 0.04, i / (len(cats) - 1) if len(cats) > 1 else 0.5, label[:14], fontsize=7,
                        va="center", ha="left", color="0.1", bbox=TICK_BOX)
        else:
            present = [v for v in table["raw"][name] if v is not None]
            for y, v in ((0.0, min(present)), (1.0, max(present))):
                ax.text(j + 0.04, y, _label(v)[:14], fontsize=7, va="center", ha="left", color="0.1", bbox=TICK_BOX)
    low, high = float(table["y"].min()), float(table["y"].max())
    for y, v in ((0.0, low), (1.0, high)):
        ax.text(xs[-1] + 0.04, y, f"{v:.4g}", fontsize=7, va="center", ha="left", color="0.1", bbox=TICK_BOX)
    labels = [_wrap(n) + ("\n(log)" if kinds[n] == "log" else "") for n in shown] + [_wrap(objective)]
    ax.set_xticks(xs, labels, fontsize=8)  # level, centred, at most 14 characters a line: they never meet
    ax.set_yticks([])
    ax.set_xlim(-0.1, xs[-1] + 0.5)
    ax.set_ylim(-0.05, 1.05)
    left_out = len(varying) - len(shown)
    set_title(ax, title or f"Parallel coordinates of {len(order)} completed trial(s), coloured by {objective}"
                 + (f"\n{len(shown)} of {len(varying)} varying hyperparameters shown" if left_out else ""),
                 fontsize=10)
    return save(fig, path)


def _wrap(name, width=14):
    """``name`` on lines of at most ``width`` characters, broken after underscores where it can be."""
    lines, line = [], ""
    for part in name.replace("_", "_\0").split("\0"):
        while len(part) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(part[:width])
            part = part[width:]
        if len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join(lines + [line] if line else lines)


def _unit(values):
    values = np.asarray(values, dtype=float)
    span = np.ptp(values)
    return (values - values.min()) / span if span > 0 else np.full_like(values, 0.5)


def plot_slices(records, path, *, names, objective, direction="max", title=None):
    """The objective against each of ``names`` (e.g. the most important hyperparameters), one panel each.

    Numeric hyperparameters on their own (log) axis, categorical ones as evenly spaced categories with a
    small fixed jitter; the best trial is marked. Returns ``path``.
    """
    check_direction(direction)
    table = hyperparameter_table(records, objective=objective)
    names = [n for n in names if n in table["names"]]
    if not table["records"] or not names:
        raise ValueError(f"no completed trial varies {list(names)}")
    y = table["y"]
    best = int(np.argmax(y) if direction == "max" else np.argmin(y))
    # 2.6 inches a panel: four panels keep to a page's width (1,100 pixels) at full size
    tilted = any(table["kinds"][n] == "categorical" and len(table["categories"][n]) > 3 for n in names)
    fig = figure(2.6 * len(names) + 0.75, 3.5 + 0.4 * tilted, margins=(0.75, 0.6 + 0.4 * tilted, 0.15, 0.35))
    axes = subplots(fig, 1, len(names), gaps=(0.2, 0.0), sharey=True)[0]
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(y))
    for ax, name in zip(axes, names):
        j = table["names"].index(name)
        kind = table["kinds"][name]
        present = np.array([v is not None for v in table["raw"][name]])
        if kind == "categorical":
            x = table["encoded"][:, j] + jitter
            cats = table["categories"][name]
            step = max(1, math.ceil(len(cats) / MAX_CATEGORIES))
            ax.set_xticks(range(0, len(cats), step), [c[:12] for c in cats[::step]],
                          rotation=30 if len(cats) > 3 else 0, ha="right" if len(cats) > 3 else "center",
                          fontsize=7)
        else:
            values = [v for v in table["raw"][name] if v is not None]
            x = np.array([float(v) if v is not None else np.nan for v in table["raw"][name]])
            if kind == "log":
                log_axis(ax.xaxis, min(values), max(values), fontsize=7)  # no 3×10¹4×10¹ run-ons
            elif all(isinstance(v, int) for v in values):
                integer_axis(ax.xaxis, values)  # kernel sizes 3, 5, 7: never 3.25
        keep = present | (kind == "categorical")
        ax.scatter(x[keep], y[keep], s=14, color="tab:blue", alpha=0.6, linewidths=0)
        ax.scatter([x[best]], [y[best]], s=80, marker="*", color="tab:red", zorder=3)
        ax.set_xlabel(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(objective)
    fig.suptitle(title or f"{objective} against the top hyperparameters (red star: best trial)", fontsize=10,
                 y=1 - 0.08 / fig.get_size_inches()[1], va="top")
    return save(fig, path)
