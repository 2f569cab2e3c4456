"""Shared matplotlib helpers: a bare Agg figure and a reproducible PNG file.

Only matplotlib is imported (when a figure is made), never a deep-learning
framework and never ``pyplot``: no global backend switch, no GUI, and the same
bytes for the same figure (no ``Software`` stamp in the PNG).

Example:
    >>> fig = figure(5, 3)
    >>> _ = fig.add_subplot().plot([1, 2, 3])
    >>> save(fig, "plots/line.png")
    'plots/line.png'
"""

from __future__ import annotations

import os

__all__ = ["figure", "save"]


def figure(width=6.4, height=4.4):
    """A ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches at 100 dpi, constrained layout, Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path):
    """Write ``fig`` to ``path`` as a PNG (parent folders created); returns ``path``."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path
