"""Shared matplotlib helpers: a bare Agg figure, a reproducible PNG file, readable axes and labels.

Only matplotlib is imported (when a figure is made), never a deep-learning
framework and never ``pyplot``: no global backend switch, no GUI, and the same
bytes for the same figure (no ``Software`` stamp in the PNG).

A figure with ``margins`` has a fixed layout: its axes sit where the margins put them, and legends and
labels go where they cover nothing (outside the axes, or placed by :func:`place_labels`). A layout engine
(``constrained``, the default without margins) measures every text several times per draw: a report's
figures do without it.

Example:
    >>> fig = figure(5, 3, margins=(0.7, 0.5, 0.2, 0.4))
    >>> _ = fig.add_subplot().plot([1, 2, 3])
    >>> save(fig, "plots/line.png")
    'plots/line.png'
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["TEXT", "decade", "figure", "integer_axis", "legend_below", "log_axis", "place_labels", "save", "set_title",
           "subplots"]


# Text rendered without FreeType's auto-hinter (matplotlib's default forces it): the same glyphs at 100 dpi to the
# eye, and a report's five figures draw in a quarter less time (text is most of their cost)
TEXT = {"text.hinting": "no_hinting"}


def figure(width=6.4, height=4.4, *, margins=None):
    """A ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches at 100 dpi on an Agg canvas.

    Args:
        margins: ``(left, bottom, right, top)`` in inches between the figure's edges and its axes: a fixed
            layout, no layout engine. ``None``: constrained layout (it sizes itself, at a few extra draws).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout=None if margins else "constrained")
    FigureCanvasAgg(fig)
    if margins:
        left, bottom, right, top = margins
        fig.subplots_adjust(left=left / width, bottom=bottom / height, right=1 - right / width,
                            top=1 - top / height)
    return fig


def subplots(fig, rows, cols, *, gaps=(0.5, 0.5), **kwargs):
    """``fig.subplots(rows, cols, squeeze=False)`` with ``gaps`` (width, height) in inches between the axes."""
    width, height = fig.get_size_inches()
    p = fig.subplotpars
    inner_w, inner_h = (p.right - p.left) * width, (p.top - p.bottom) * height
    axis_w = max(1e-3, (inner_w - (cols - 1) * gaps[0]) / cols)
    axis_h = max(1e-3, (inner_h - (rows - 1) * gaps[1]) / rows)
    return fig.subplots(rows, cols, squeeze=False, gridspec_kw={"wspace": gaps[0] / axis_w,
                                                                "hspace": gaps[1] / axis_h}, **kwargs)


def set_title(ax, text, **kwargs):
    """``ax.set_title(text, **kwargs)`` at the top edge of the axes: where matplotlib puts the title of axes
    with no tick labels above them (the house plots have none there), without measuring every artist of the
    axes at each draw to find that out (a tenth of a report's drawing)."""
    return ax.set_title(text, y=1.0, **kwargs)


def legend_below(fig, ax, *, ncol=2, fontsize=8, under=0.6):
    """The legend of ``ax``'s labelled artists below it, across the figure; the bottom margin is set to
    ``under`` inches (tick labels and axis label) plus its rows. It covers nothing, and no free corner is
    searched for (``loc="best"`` measures every point). Returns the legend, or ``None`` with nothing to show."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    rows = math.ceil(len(handles) / ncol)
    fig.subplots_adjust(bottom=(under + 0.2 * rows + 0.08) / fig.get_size_inches()[1])
    return fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=fontsize,
                      frameon=False)


def save(fig, path):
    """Write ``fig`` to ``path`` as a PNG (parent folders created); returns ``path``.

    At zlib level 1: a plot's flat colours compress as well as at the default 6, in less time; text without
    FreeType's hinting (:data:`TEXT`)."""
    import matplotlib

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with matplotlib.rc_context(TEXT):
        fig.savefig(path, format="png", metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return path


# ----------------------------------------------------------------------------- axes

def compact(value) -> str:
    """A short tick label: ``20k``, ``1.5M``, ``0.002``, ``3e-05``."""
    if value == 0:
        return "0"
    size = abs(value)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}" if size >= 1e-3 else f"{value:.0e}".replace("e-0", "e-")


# ticks per decade, densest first, and the smallest gap between two of them in decades
_LOG_SUBS = ((tuple(np.arange(1.0, 10.0, 0.5)), math.log10(10 / 9.5)), (tuple(range(1, 10)), math.log10(10 / 9)),
             ((1, 2, 3, 4, 5, 7), math.log10(5 / 4)), ((1, 2, 5), math.log10(2)), ((1, 3), math.log10(3)))


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def decade(value):
    """``10³`` for 1000, ``10⁻²`` for 0.01, ``""`` for a value that is not a power of ten: in plain unicode,
    because matplotlib's mathtext (``$10^{3}$``) costs a parser per figure."""
    if not value > 0:
        return ""
    exponent = round(math.log10(value))
    return "10" + str(exponent).translate(_SUPERSCRIPT) if math.isclose(value, 10.0 ** exponent) else ""


def log_axis(axis, low, high, *, fontsize=10):
    """Put ``axis`` (``ax.xaxis`` or ``ax.yaxis``) on a log scale whose tick labels never collide.

    Over two decades or more only the decades are labelled (``10³``, ``10⁴``), as many as fit; over less, short
    labels (``20k``, ``50k``, ``0.002``) at the densest of 1-9, 1-2-3-4-5-7, 1-2-5, 1-3 times the decades whose
    labels (``fontsize`` points) keep apart at the axes' size. Minor ticks are never labelled: matplotlib's
    default labels them over a short span, and they run into each other (``3×10⁴4×10⁴``). ``low`` and ``high``
    are the data's positive extremes; the figure's layout must be fixed (:func:`figure` with ``margins``).
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax = axis.axes
    horizontal = axis is ax.xaxis
    (ax.set_xscale if horizontal else ax.set_yscale)("log")
    span = math.log10(high / low) if low and high and low > 0 and high > 0 else 3.0
    box = ax.get_position()
    pixels = (box.width * ax.figure.bbox.width) if horizontal else (box.height * ax.figure.bbox.height)
    per_decade = pixels / max(span * 1.15, 0.05)  # the axes' margins add a little to the data's span
    need = (3.6 if horizontal else 1.8) * fontsize * ax.figure.dpi / 72  # five characters side by side, or a line
    subs = next((subs for subs, gap in _LOG_SUBS if gap * per_decade >= need), None) if span < 2 else None
    if subs is None:
        axis.set_major_locator(LogLocator(base=10, numticks=max(2, int(pixels / need))))
        axis.set_major_formatter(FuncFormatter(lambda v, _: decade(v)))
    else:
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        axis.set_major_formatter(FuncFormatter(lambda v, _: compact(v)))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10), numticks=12))
    axis.set_minor_formatter(NullFormatter())


def integer_axis(axis, values=None, *, max_ticks=10):
    """Integer ticks only on ``axis``: at the ``values`` themselves when there are at most ``max_ticks``
    distinct ones (kernel sizes 3, 5, 7), else at most ``max_ticks`` whole numbers (never 3.25)."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    distinct = sorted({int(v) for v in values}) if values is not None else []
    if 0 < len(distinct) <= max_ticks:
        axis.set_major_locator(FixedLocator(distinct))
    else:
        axis.set_major_locator(MaxNLocator(nbins=max_ticks, integer=True))


# ----------------------------------------------------------------------------- labels

# (dx, dy) in points from the point, and the alignment that puts the text on that side of it
_SPOTS = ((5, 3, "left", "bottom"), (5, -3, "left", "top"), (-5, 3, "right", "bottom"), (-5, -3, "right", "top"),
          (0, 6, "center", "bottom"), (0, -6, "center", "top"), (8, 10, "left", "bottom"),
          (8, -10, "left", "top"), (-8, 10, "right", "bottom"), (-8, -10, "right", "top"))


def place_labels(ax, points, labels, *, obstacles=(), fontsize=8, marker_px=5.0, **text_kw):
    """Label ``points`` (data coordinates) without overlap, each label inside the axes.

    Greedy, in the given order (put the important points first): each label takes the first of a few spots
    around its point (right, left, above, below, then further out) where it overlaps no label placed before,
    no point of ``points`` or ``obstacles`` (a square of ``marker_px`` pixels around each) and stays inside
    the axes; a label with no free spot is left out. The axes' limits must be final (they are frozen here):
    display positions are computed, nothing is drawn to find them.

    Returns:
        the annotations placed, and the number of labels left out.
    """
    import matplotlib

    ax.set_xlim(ax.get_xlim())  # autoscaling is lazy: fix the limits the positions are computed with
    ax.set_ylim(ax.get_ylim())
    with matplotlib.rc_context(TEXT):  # text measured as save() draws it
        return _place_labels(ax, points, labels, obstacles=obstacles, fontsize=fontsize, marker_px=marker_px,
                             **text_kw)


def _place_labels(ax, points, labels, *, obstacles, fontsize, marker_px, **text_kw):
    from matplotlib.font_manager import FontProperties

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72.0
    box = ax.get_window_extent(renderer)
    every = list(points) + list(obstacles)
    marks = ax.transData.transform(np.asarray(every, dtype=float).reshape(-1, 2)) if every else np.zeros((0, 2))
    marks = marks[np.isfinite(marks).all(axis=1)]
    prop = FontProperties(size=fontsize)
    line = renderer.get_text_width_height_descent("lp", prop, ismath=False)[1]  # matplotlib's line height
    placed, notes, left_out = [], [], 0
    for (x, y), label in zip(points, labels):
        px, py = ax.transData.transform((x, y))
        if not (np.isfinite(px) and np.isfinite(py)):
            left_out += 1
            continue
        w, h, _ = renderer.get_text_width_height_descent(label, prop, ismath=False)
        h = max(h, line)
        for dx, dy, ha, va in _SPOTS:
            ax_ = px + dx * scale
            ay = py + dy * scale
            x0 = ax_ - {"left": 0, "center": w / 2, "right": w}[ha]
            y0 = ay - {"bottom": 0, "top": h}[va]
            rect = (x0 - 1, y0 - 1, x0 + w + 1, y0 + h + 1)
            if rect[0] < box.x0 or rect[2] > box.x1 or rect[1] < box.y0 or rect[3] > box.y1:
                continue
            if any(rect[0] < r[2] and r[0] < rect[2] and rect[1] < r[3] and r[1] < rect[3] for r in placed):
                continue
            if len(marks) and np.any((marks[:, 0] + marker_px > rect[0]) & (marks[:, 0] - marker_px < rect[2])
                                     & (marks[:, 1] + marker_px > rect[1]) & (marks[:, 1] - marker_px < rect[3])):
                continue
            placed.append(rect)
            notes.append(ax.annotate(label, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va,
                                     fontsize=fontsize, annotation_clip=True, **text_kw))
            break
        else:
            left_out += 1
    return notes, left_out
