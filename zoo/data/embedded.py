"""Embedded data sets that need no network: real digits, procedural shapes, 2-D tutorial sets.

Every generator returns ``(x, y)`` NumPy arrays; :func:`zoo.data.load` splits,
fingerprints and batches them.
"""

from __future__ import annotations

import numpy as np

from zoo.data._common import check_image_size, convert_channels, np_concat, resize_bilinear
from zoo.utils import check_choice, check_float, check_int

__all__ = [
    "SHAPE_CLASSES",
    "make_digits",
    "make_shapes",
    "make_sinusoid",
    "make_moons",
    "make_circles",
    "make_xor",
    "make_blobs",
    "make_spirals",
]

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring", "star", "ellipse", "crescent")


# ---------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------


def make_digits(*, image_size=32, channels=1):
    """scikit-learn's 1,797 real 8x8 handwritten digits, scaled to [0, 1] and resized.

    The images ship with scikit-learn (UCI optdigits test set), so no download
    happens. Resizing is a deterministic NumPy bilinear interpolation.

    Args:
        image_size: int or ``(height, width)``, >= 8.
        channels: 1 (gray) or 3 (gray replicated).

    Returns:
        ``(x, y)``: float32 ``(1797, h, w, channels)`` and int32 labels 0-9.

    Example:
        >>> x, y = make_digits(image_size=16)
        >>> x.shape
        (1797, 16, 16, 1)
    """
    size = check_image_size(image_size, allow_none=False)
    channels = check_choice("channels", channels, (1, 3))
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = resize_bilinear(digits.images / 16.0, size)[..., None]
    x = np.clip(convert_channels(x, 1, channels, np_concat), 0.0, 1.0).astype(np.float32)
    return x, digits.target.astype(np.int32)


# ---------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------


def _regular_polygon(u, v, sides, apothem):
    r, phi = np.hypot(u, v), np.arctan2(v, u)
    sector = 2 * np.pi / sides
    return r * np.cos(np.mod(phi, sector) - sector / 2) <= apothem


def _star(u, v, points=5, inner=0.42):
    r, phi = np.hypot(u, v), np.arctan2(v, u)
    t = np.mod(phi, 2 * np.pi / points) / (2 * np.pi / points)
    return r <= inner + (1 - inner) * np.abs(2 * t - 1)


# Each mask takes local coordinates (u, v): the shape's frame, radius about 1.
SHAPE_MASKS = {
    "circle": lambda u, v: u * u + v * v <= 1.0,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.78,
    "triangle": lambda u, v: _regular_polygon(u, v, 3, 0.5),
    "cross": lambda u, v: ((np.abs(u) <= 0.28) & (np.abs(v) <= 0.95))
    | ((np.abs(v) <= 0.28) & (np.abs(u) <= 0.95)),
    "ring": lambda u, v: (u * u + v * v <= 1.0) & (u * u + v * v >= 0.36),
    "star": _star,
    "ellipse": lambda u, v: u * u + (v / 0.5) ** 2 <= 1.0,
    "crescent": lambda u, v: (u * u + v * v <= 1.0) & ((u - 0.5) ** 2 + v * v > 0.64),
}


def _shape_images(mask_fn, n, size, noise, rng):
    """``n`` RGB images of one shape with random colour, position, scale and rotation, and their ``(n, h, w)``
    boolean object masks."""
    h, w = size
    f32 = np.float32
    ys = ((np.arange(h, dtype=f32) + 0.5) / h * 2 - 1)[None, :, None]
    xs = ((np.arange(w, dtype=f32) + 0.5) / w * 2 - 1)[None, None, :]
    scale = rng.uniform(0.35, 0.7, n).astype(f32)
    cx = rng.uniform(-1, 1, n).astype(f32) * (1 - scale) * 0.8
    cy = rng.uniform(-1, 1, n).astype(f32) * (1 - scale) * 0.8
    theta = rng.uniform(0, 2 * np.pi, n).astype(f32)
    cos, sin = (np.cos(theta) / scale)[:, None, None], (np.sin(theta) / scale)[:, None, None]
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
    u, v = dx * cos + dy * sin, dy * cos - dx * sin
    mask = mask_fn(u, v)[..., None]
    # A dark background with a light shape or the reverse, with random hues, so
    # colour alone never gives the class away but the shape always stands out.
    light = rng.random(n) < 0.5
    low, high = rng.uniform(0.0, 0.35, (n, 3)), rng.uniform(0.65, 1.0, (n, 3))
    background = np.where(light[:, None], high, low).astype(f32)[:, None, None, :]
    foreground = np.where(light[:, None], low, high).astype(f32)[:, None, None, :]
    images = background + mask * (foreground - background)
    if noise:
        images += rng.standard_normal(images.shape, dtype=f32) * f32(noise)
    return np.clip(images, 0.0, 1.0, out=images), mask[..., 0]


def make_shapes(*, classes=None, samples_per_class=250, image_size=32, channels=3, noise=0.05, seed=0,
                return_masks=False):
    """Procedural images of geometric shapes, deterministic per ``seed``.

    Shapes vary in colour, position, scale and rotation, plus Gaussian pixel
    noise. Each class draws from its own random stream (``seed`` and the
    class's index in :data:`SHAPE_CLASSES`), so a shape's images do not depend
    on which other classes are chosen: pre-train on some shapes and transfer
    to others.

    Args:
        classes: shape names from :data:`SHAPE_CLASSES` (label order follows
            this argument); ``None`` for all 8.
        samples_per_class: images per class.
        image_size: int or ``(height, width)``, >= 8.
        channels: 3 (RGB), 1 (luminance) or 4 (opaque alpha added).
        noise: standard deviation of the pixel noise (0 for none).
        seed: generation seed.
        return_masks: also return each image's object mask (where the shape is), e.g. to check
            that a Grad-CAM map points at the object.

    Returns:
        ``(x, y, class_names)``: float32 images in [0, 1], int32 labels, names; with ``return_masks``,
        ``(x, y, class_names, masks)``, ``masks`` boolean ``(N, height, width)``.

    Example:
        >>> x, y, names = make_shapes(classes=("circle", "square"), samples_per_class=10)
        >>> x.shape, names
        ((20, 32, 32, 3), ('circle', 'square'))
    """
    class_names = check_shape_classes(classes)
    n = check_int("samples_per_class", samples_per_class, maximum=100_000)
    size = check_image_size(image_size, allow_none=False)
    channels = check_choice("channels", channels, (1, 3, 4))
    noise = check_float("noise", noise, minimum=0.0)
    seed = check_int("seed", seed, minimum=0)
    xs, ys, masks = [], [], []
    for label, shape in enumerate(class_names):
        rng = np.random.default_rng([seed, SHAPE_CLASSES.index(shape)])
        images, mask = _shape_images(SHAPE_MASKS[shape], n, size, noise, rng)
        xs.append(images)
        masks.append(mask)
        ys.append(np.full(n, label, dtype=np.int32))
    x = convert_channels(np.concatenate(xs), 3, channels, np_concat).astype(np.float32, copy=False)
    if return_masks:
        return x, np.concatenate(ys), class_names, np.concatenate(masks)
    return x, np.concatenate(ys), class_names


def check_shape_classes(classes):
    """``None`` (all) or a non-empty sequence of distinct names from :data:`SHAPE_CLASSES`."""
    if classes is None:
        return SHAPE_CLASSES
    if isinstance(classes, str):
        classes = (classes,)
    if not hasattr(classes, "__iter__"):
        raise TypeError(f"`classes` must be a sequence of shape names. Received: classes={classes!r}")
    classes = tuple(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(
            f"`classes` must be distinct names from {list(SHAPE_CLASSES)}. Received: classes={classes!r}"
        )
    return classes


# ---------------------------------------------------------------------------
# 2-D tutorial sets
# ---------------------------------------------------------------------------


MAX_SAMPLES = 10_000_000  # generated points (2 features: 80 MB in float32)


def _check_generator(num_samples, noise, seed, *, num_classes=None):
    """The shared arguments of the 2-D generators, checked (``num_classes``: 2 to ``num_samples``)."""
    num_samples = check_int("num_samples", num_samples, maximum=MAX_SAMPLES)
    noise = check_float("noise", noise, minimum=0.0) + 0.0  # -0.0 passes the check; NumPy's normal() refuses it
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    if num_classes is not None:
        check_int("num_classes", num_classes, minimum=2, maximum=num_samples)
    return num_samples, noise, seed


def make_sinusoid(*, num_samples=500, noise=0.1, seed=0):
    """Noisy sine regression: ``y = sin(x) + noise``, ``x`` uniform in [-pi, pi] (tutorial T1).

    Returns:
        ``(x, y)``: float32 arrays of shape ``(num_samples, 1)``.

    Example:
        >>> x, y = make_sinusoid(num_samples=10)
    """
    num_samples, noise, seed = _check_generator(num_samples, noise, seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, (num_samples, 1))
    y = np.sin(x) + rng.normal(0.0, noise, x.shape)
    return x.astype(np.float32), y.astype(np.float32)


def make_moons(*, num_samples=1000, noise=0.15, seed=0):
    """Two interleaving half circles (binary, tutorial T2), via scikit-learn."""
    from sklearn.datasets import make_moons as sk_moons

    num_samples, noise, seed = _check_generator(num_samples, noise, seed)
    x, y = sk_moons(n_samples=num_samples, noise=noise, random_state=seed)
    return x.astype(np.float32), y.astype(np.int32)


def make_xor(*, num_samples=1000, noise=0.1, seed=0):
    """The XOR problem (2-D binary): points uniform in [-1, 1]^2, class 1 in the quadrants where both
    coordinates share a sign; Gaussian ``noise`` moves the points after labelling. No straight line
    separates the classes: a perceptron fails, one hidden layer succeeds (Minsky & Papert's example)."""
    num_samples, noise, seed = _check_generator(num_samples, noise, seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (num_samples, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    return (x + rng.normal(0.0, noise, x.shape)).astype(np.float32), y


def make_circles(*, num_samples=1000, noise=0.08, seed=0):
    """A small circle inside a large one (binary, tutorial T2), via scikit-learn."""
    from sklearn.datasets import make_circles as sk_circles

    num_samples, noise, seed = _check_generator(num_samples, noise, seed)
    x, y = sk_circles(n_samples=num_samples, noise=noise, factor=0.5, random_state=seed)
    return x.astype(np.float32), y.astype(np.int32)


def make_blobs(*, num_samples=1000, num_classes=3, noise=1.0, seed=0):
    """Gaussian blobs, one per class (multi-class, tutorial T3); ``noise`` is the cluster std."""
    from sklearn.datasets import make_blobs as sk_blobs

    num_samples, noise, seed = _check_generator(num_samples, noise, seed, num_classes=num_classes)
    x, y = sk_blobs(n_samples=num_samples, centers=num_classes, n_features=2, cluster_std=noise,
                    center_box=(-6.0, 6.0), random_state=seed)
    # Scale to roughly unit range so the defaults of every optimizer work.
    return (x / 6.0).astype(np.float32), y.astype(np.int32)


def make_spirals(*, num_samples=900, num_classes=3, noise=0.2, seed=0):
    """Interleaved spiral arms, one per class (multi-class, tutorial T3).

    Each arm turns 1.5 times from the centre to radius 1; ``noise`` jitters the angle.
    """
    num_samples, noise, seed = _check_generator(num_samples, noise, seed, num_classes=num_classes)
    rng = np.random.default_rng(seed)
    per_class = num_samples // num_classes
    xs, ys = [], []
    for k in range(num_classes):
        t = rng.uniform(0.05, 1.0, per_class)
        angle = 2 * np.pi * k / num_classes + 3 * np.pi * t + rng.normal(0.0, noise, per_class)
        xs.append(np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1))
        ys.append(np.full(per_class, k))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int32)
