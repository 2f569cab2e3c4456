"""The report's plots are readable (issue 28, item 16): legends cover no point, point labels never overlap
and stay inside the axes, log axes label no colliding ticks, integer hyperparameters get integer ticks, and
parallel coordinates of many hyperparameters keep to a page. Checked on the figure objects, drawn once."""

import itertools
import os

import matplotlib
import numpy as np
import pytest

from tuning.records import new_record
from tuning.report import plots as report_plots
from tuning.report import search_plots as sp
from tuning.report import summarize_records, write_report
from zoo.plots import TEXT, compact, decade, figure, log_axis


@pytest.fixture
def figures(monkeypatch):
    """Figures handed to ``save`` by the report's plots, drawn (so every extent is final); written only to an
    absolute path (a report's, which embeds them)."""
    drawn, write = [], report_plots.save

    def keep(fig, path):
        with matplotlib.rc_context(TEXT):  # as save() draws it
            fig.canvas.draw()
        drawn.append(fig)
        return write(fig, path) if os.path.isabs(path) else path

    monkeypatch.setattr(report_plots, "save", keep)
    monkeypatch.setattr(sp, "save", keep)
    return drawn


def _overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _comparison(crowd=False):
    """A comparison of a dozen models: one in the lower right corner (where a fixed legend went), two almost on
    top of each other (resnet20, resnet32), a long name at the right edge."""
    specs = [("mlp", 20_000, 0.80), ("lenet", 42_000, 0.82), ("vgg11", 60_000, 0.83), ("densenet_bc", 33_000, 0.88),
             ("resnet20", 90_000, 0.851), ("resnet32", 92_000, 0.853), ("mobilenet_v2", 57_000, 0.895),
             ("squeezenet", 50_000, 0.955), ("shufflenet", 70_000, 0.972), ("convnet", 80_000, 0.909),
             ("efficientnet_b0_with_a_long_name", 125_000, 0.936), ("corner", 118_000, 0.801)]
    return [new_record(id=f"{name}-{seed}", model=name, seed=seed, params=params, val_accuracy=acc + 0.002 * seed,
                       test_accuracy=acc - 0.005, fit_seconds=10.0 + i, epochs=2,
                       history={"loss": [1.0, 0.5], "val_loss": [1.1, 0.6]})
            for i, (name, params, acc) in enumerate(specs) for seed in range(2)]


def _display_points(ax, rows, x, y):
    pts = [(r[f"{x}_mean"], r[f"{y}_mean"]) for r in rows] + [(r[f"{x}_mean"], r["test_accuracy_mean"]) for r in rows]
    return ax.transData.transform(np.array(pts, dtype=float))


def _legends(fig):
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


def test_the_tradeoff_legend_covers_no_point(figures):
    rows = summarize_records(_comparison())
    for direction in ("max", "min"):
        report_plots.plot_tradeoff(rows, "x.png", x="params", y="val_accuracy", direction=direction)
        fig = figures[-1]
        ax = fig.axes[0]
        legends = _legends(fig)
        assert legends
        renderer = fig.canvas.get_renderer()
        for legend in legends:
            box = legend.get_window_extent(renderer)
            inside = [p for p in _display_points(ax, rows, "params", "val_accuracy") if box.contains(*p)]
            assert not inside, f"the legend covers {len(inside)} point(s)"
            assert not _overlap(box, ax.get_window_extent(renderer))  # outside the axes altogether
        assert fig.get_layout_engine() is None  # a fixed layout: no engine measuring every text per draw


def test_the_history_legend_covers_no_trial(figures):
    records = [new_record(id=str(i), model="mlp", status="failed" if i % 4 == 3 else "completed",
                          hyperparameters={"a": i}, val_accuracy=0.5 + 0.01 * i if i % 4 != 3 else None)
               for i in range(20)]
    sp.plot_history(records, "h.png", objective="val_accuracy")
    fig = figures[-1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    (legend,) = _legends(fig)
    box = legend.get_window_extent(renderer)
    points = np.concatenate([c.get_offset_transform().transform(c.get_offsets()) for c in ax.collections])
    assert len(points) == 20 and not any(box.contains(*p) for p in points)


def test_point_labels_never_overlap_and_stay_inside_the_axes(figures):
    rows = summarize_records(_comparison())
    report_plots.plot_tradeoff(rows, "x.png", x="params", y="val_accuracy")
    fig = figures[-1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text()]
    assert len(boxes) >= len(rows) - 2  # nearly every point keeps its label (the rest are in the table)
    frame = ax.get_window_extent(renderer)
    for box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, box
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlap(a, b), (a, b)
    # and no label sits on a point (its own or another's)
    points = _display_points(ax, rows, "params", "val_accuracy")
    for box in boxes:
        assert not any(box.x0 < px < box.x1 and box.y0 < py < box.y1 for px, py in points)


def _tick_labels(fig, axis):
    """The tick labels drawn on ``axis``: visible, non-empty, within the axes' span."""
    renderer = fig.canvas.get_renderer()
    frame = axis.axes.get_window_extent(renderer)
    out = []
    for t in axis.get_ticklabels(which="both"):
        if not (t.get_visible() and t.get_text()):
            continue
        box = t.get_window_extent(renderer)
        centre = (box.x0 + box.x1) / 2 if axis is axis.axes.xaxis else (box.y0 + box.y1) / 2
        low, high = (frame.x0, frame.x1) if axis is axis.axes.xaxis else (frame.y0, frame.y1)
        if low - 1 <= centre <= high + 1:
            out.append((t.get_text(), box))
    return out


def _search(n=40, seed=0, extra=0):
    """Search records: ``kernel_size`` in {3, 5, 7} drives the accuracy; ``units`` spans 20-500 (a log axis
    of less than two decades)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        hp = {"kernel_size": int(rng.choice([3, 5, 7])), "units": int(2 ** rng.uniform(4.3, 8.97)),
              "dropout": float(rng.uniform(0, 0.5)), "optimizer": str(rng.choice(["adam", "sgd"]))}
        hp.update({f"extra_hyperparameter_{k}": float(rng.uniform(1, 2)) for k in range(extra)})
        out.append(new_record(id=f"{i:03d}", model="mlp", seed=0, hyperparameters=hp, algorithm="random",
                              objective="val_accuracy", params=int(1000 + 10 * hp["units"]), epochs=1,
                              val_accuracy=0.5 + 0.3 * (hp["kernel_size"] == 5) + 0.05 * float(rng.random()),
                              history={"loss": [1.0], "val_loss": [1.1]}))
    return out


def test_log_axis_tick_labels_never_collide(figures):
    sp.plot_slices(_search(), "s.png", names=["units", "kernel_size", "dropout", "optimizer"],
                   objective="val_accuracy")
    fig = figures[-1]
    units = fig.axes[0]
    assert units.get_xscale() == "log"
    labels = _tick_labels(fig, units.xaxis)
    assert len(labels) >= 2
    for (a, box_a), (b, box_b) in itertools.combinations(labels, 2):
        assert not _overlap(box_a, box_b), f"tick labels {a!r} and {b!r} collide"
    # under a decade (20k to 125k parameters): short labels, as many as keep apart
    report_plots.plot_tradeoff(summarize_records(_comparison()), "t.png", x="params", y="val_accuracy")
    fig = figures[-1]
    labels = _tick_labels(fig, fig.axes[0].xaxis)
    assert [t for t, _ in labels] == ["20k", "30k", "40k", "50k", "70k", "100k"]
    for (a, box_a), (b, box_b) in itertools.combinations(labels, 2):
        assert not _overlap(box_a, box_b), f"tick labels {a!r} and {b!r} collide"


def test_a_log_axis_over_decades_labels_only_the_decades():
    fig = figure(6.4, 4.0, margins=(0.8, 0.6, 0.2, 0.3))
    ax = fig.add_subplot()
    ax.scatter([1e3, 3e4, 8e5], [1, 2, 3])
    log_axis(ax.xaxis, 1e3, 8e5)
    fig.canvas.draw()
    shown = [t for t in ax.xaxis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]
    values = [v for v in ax.xaxis.get_majorticklocs() if ax.get_xlim()[0] <= v <= ax.get_xlim()[1]]
    assert len(values) >= 3 and all(np.isclose(np.log10(v), round(np.log10(v))) for v in values)
    assert not any(t.get_text() for t in ax.xaxis.get_minorticklabels())
    assert len(shown) >= 3 and {"10³", "10⁴", "10⁵"} <= {t.get_text() for t in shown} <= {"10²", "10³", "10⁴", "10⁵", "10⁶", "10⁷"}
    assert [decade(v) for v in (1e3, 0.01, 1.0, 2e4, 0.0)] == ["10³", "10⁻²", "10⁰", "", ""]
    assert [compact(v) for v in (2e4, 1.5e6, 0.002, 3e-5, 40)] == ["20k", "1.5M", "0.002", "3e-5", "40"]


def test_integer_hyperparameters_get_integer_ticks(figures):
    sp.plot_slices(_search(), "s.png", names=["kernel_size", "dropout"], objective="val_accuracy")
    fig = figures[-1]
    kernel = fig.axes[0]
    low, high = kernel.get_xlim()
    ticks = [v for v in kernel.xaxis.get_majorticklocs() if low <= v <= high]
    assert ticks == [3, 5, 7]
    assert [t for t, _ in _tick_labels(fig, kernel.xaxis)] == ["3", "5", "7"]
    # epochs: one epoch has the one tick 1 (not 0.96, 0.98, ...)
    report_plots.plot_curves([("mlp", [{"loss": [1.0], "val_loss": [1.1], "accuracy": [0.5]}], "")], "c.png")
    for ax in figures[-1].axes:
        assert [t for t, _ in _tick_labels(figures[-1], ax.xaxis)] == ["1"]
    # trial numbers too: 3 trials, ticks 1, 2, 3 (never 1.5)
    sp.plot_history(_search(3), "h.png", objective="val_accuracy")
    ax = figures[-1].axes[0]
    ticks = [v for v in ax.xaxis.get_majorticklocs() if ax.get_xlim()[0] <= v <= ax.get_xlim()[1]]
    assert ticks and all(float(v).is_integer() for v in ticks)


def test_parallel_coordinates_of_many_hyperparameters_keep_to_a_page(figures, tmp_path):
    records = _search(40, extra=8)  # 12 varying hyperparameters
    sp.plot_parallel_coordinates(records, "p.png", objective="val_accuracy")
    fig = figures[-1]
    ax = fig.axes[0]
    assert fig.get_size_inches()[0] <= 11.0  # a page is 1,100 pixels wide: shown at full size
    assert len(ax.get_xticks()) == sp.MAX_AXES + 1  # 8 hyperparameters and the objective
    assert "8 of 12 varying hyperparameters shown" in ax.get_title()
    renderer = fig.canvas.get_renderer()
    names = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    for a, b in itertools.combinations(names, 2):
        assert not _overlap(a, b)
    assert all(0 <= box.x0 and box.x1 <= fig.bbox.x1 for box in names)
    # the report shows the most important ones and says which were left out
    figures.clear()
    paths = write_report(records, tmp_path, title="12 hyperparameters").paths
    md = open(paths["markdown"], encoding="utf-8").read()
    assert "the most important 8 of 12 hyperparameters" in md and "left out: `" in md
    parallel = next(f for f in figures if "Parallel coordinates" in f.axes[0].get_title())
    assert parallel.axes[0].get_xticklabels()[0].get_text() == "kernel_size"  # the one that drives the accuracy


def test_curves_of_several_models_share_two_panels_a_colour_each(figures):
    """Issue 33: one pair of panels (loss, accuracy) for every model, not a pair per model: a colour per model,
    validation solid and training dashed; the legend below the panels covers no curve; too many models refused."""
    groups = [(f"model{i}", [{"loss": [1.0 - 0.1 * i, 0.5], "val_loss": [1.1, 0.6 + 0.01 * i],
                              "accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6 + 0.01 * i]}], "still improving")
              for i in range(report_plots.MAX_CURVE_GROUPS)]
    report_plots.plot_curves(groups, "c.png")
    fig = figures[-1]
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    renderer = fig.canvas.get_renderer()
    (legend,) = _legends(fig)
    names = [t.get_text() for t in legend.get_texts()]
    assert names[:2] == ["validation", "training"] and names[2] == "model0 (still improving)"
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 2 * len(groups)
        assert len({line.get_color() for line in lines}) == len(groups)  # a colour per model
        assert {line.get_linestyle() for line in lines} == {"-", "--"}
        assert not _overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
    with pytest.raises(ValueError, match="at most 10 groups"):
        report_plots.plot_curves(groups + [("one more", [{"loss": [1.0]}], "")], "c.png")
    # one model keeps its own colours per split and its diagnosis under the title
    report_plots.plot_curves(groups[:1], "c.png")
    ax = figures[-1].axes[0]
    assert ax.get_title() == "model0: loss\nstill improving"
    assert {line.get_color() for line in ax.get_lines()} == {"tab:blue", "tab:orange"}


def test_overlay_tiles_keep_their_titles_apart_and_inside_the_figure(monkeypatch):
    # The Grad-CAM figure's tiles on a fixed layout (the constrained layout engine took most of its time): each
    # title above its own image, none over another tile's title or image, all inside the figure.
    from zoo.explain import plots as explain_plots

    drawn = []

    def keep(fig, path):
        with matplotlib.rc_context(TEXT):
            fig.canvas.draw()
        drawn.append(fig)
        return path

    monkeypatch.setattr("zoo.plots.save", keep)
    rng = np.random.default_rng(0)
    titles = ["airplane (true ship)", "automobile (true truck)", "bird", "cat (true dog)", "deer", "dog (true cat)",
              "frog", "horse (true deer)", "ship", "truck (true automobile)"]
    explain_plots.plot_overlays(rng.random((10, 32, 32, 3)), rng.random((10, 32, 32)), "unused.png", titles=titles)
    (fig,) = drawn
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    boxes = [(ax.title.get_window_extent(renderer), ax.get_window_extent(renderer)) for ax in fig.axes]
    assert len(boxes) == 10
    for i, (title, image) in enumerate(boxes):
        assert frame.x0 <= title.x0 and title.x1 <= frame.x1 and title.y1 <= frame.y1, titles[i]
        assert title.y0 >= image.y1 - 1, titles[i]  # above its image
        for j, (other_title, other_image) in enumerate(boxes):
            if i != j:
                assert not _overlap(title, other_title) and not _overlap(title, other_image), (titles[i], titles[j])
