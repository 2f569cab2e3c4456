"""Figures of what a network learned: maps over images, grids of maps or filters, gradient norms per layer.

Plain NumPy and matplotlib (through :mod:`zoo.plots`), no framework: the maps come from :mod:`zoo.explain`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plot_gradient_norms", "plot_maps", "plot_overlays"]


def _constant(maps):
    """One flag per map: True where the map is the same everywhere (all zero included), so it shows no place."""
    flat = np.asarray(maps, dtype="float64").reshape(len(maps), -1)
    if flat.shape[1] == 0:
        return np.ones(len(flat), bool)
    span = flat.max(axis=1) - flat.min(axis=1)
    return span <= 1e-6 * np.maximum(np.abs(flat).max(axis=1), 1e-30)


def _grid(n, columns=None):
    columns = columns or min(n, 8)
    return math.ceil(n / columns), columns


def _tiles(n, width, height, *, top=0.0):
    """``(figure, axes)``: ``n`` axes in rows of up to 8 cells of ``width`` x ``height`` inches each (room for
    a title above each tile) and ``top`` inches more for a figure title, on a fixed layout (the constrained
    layout engine took most of an overlay figure's time)."""
    from zoo.plots import figure, subplots

    rows, columns = _grid(n)
    fig = figure(width * columns, height * rows + top, margins=(0.05, 0.05, 0.05, 0.25 + top))
    axes = subplots(fig, rows, columns, gaps=(0.1, 0.3)).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def _show(ax, image):
    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        low, high = image.min(), image.max()
        image = (image - low) / (high - low) if high > low else image * 0
        ax.imshow(image[..., :3])
    else:
        ax.imshow(image, cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_overlays(images, maps, path, *, titles=None, alpha=0.45):
    """Each image with its map overlaid (jet colour map); a PNG at ``path``.

    A constant map (all zero, or one value everywhere) shows no location: its image is drawn without a
    tint, with the note "constant map: no location" on it, instead of a uniform colour that looks like an
    answer.
    """
    from zoo.plots import save, set_title

    images, maps = np.asarray(images), np.asarray(maps)
    fig, axes = _tiles(len(maps), 1.8, 1.9)
    for i, (ax, image, heat, constant) in enumerate(zip(axes, images, maps, _constant(maps))):
        _show(ax, image)
        if constant:
            ax.text(0.5, 0.06, "constant map:\nno location", transform=ax.transAxes, ha="center", va="bottom",
                    fontsize=6, color="#b00000", bbox=dict(facecolor="white", alpha=0.85, edgecolor="none", pad=1))
        else:
            ax.imshow(heat, cmap="jet", alpha=alpha, vmin=0, vmax=1)
        if titles is not None:
            set_title(ax, str(titles[i]), fontsize=7)
    return save(fig, path)


def plot_maps(maps, path, *, title=None, limit=32):
    """Feature maps ``(h, w, channels)`` of one image, or filters ``(n, kh, kw, c)``, as a grid; a PNG."""
    from zoo.plots import save

    maps = np.asarray(maps)
    tiles = [maps[..., i] for i in range(maps.shape[-1])] if maps.ndim == 3 else list(maps)
    tiles = tiles[:limit]
    fig, axes = _tiles(len(tiles), 1.2, 1.3, top=0.3 if title else 0.0)
    for ax, tile in zip(axes, tiles):
        _show(ax, tile)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.08 / fig.get_size_inches()[1], va="top")
    return save(fig, path)


def plot_gradient_norms(stats_by_label, path, *, title="Gradient norm per layer"):
    """Bars of each layer's kernel-gradient norm (log scale), one series per label: ``{label: gradient_stats}``."""
    from zoo.plots import figure, save

    fig = figure(7.0, 3.8)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(stats_by_label))
    for k, (label, rows) in enumerate(stats_by_label.items()):
        kernels = [r for r in rows if r["weight"].endswith("kernel")]
        positions = np.arange(len(kernels)) + k * width
        ax.bar(positions, [max(r["grad_norm"], 1e-30) for r in kernels], width=width, label=label)
        ax.set_xticks(np.arange(len(kernels)) + width * (len(stats_by_label) - 1) / 2,
                      [r["layer"] for r in kernels], rotation=45, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("|dL/dW| (kernel)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return save(fig, path)
