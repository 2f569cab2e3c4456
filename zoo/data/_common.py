"""Helpers shared by the data sources: argument checks, splits, resizing, channels, fingerprints."""

from __future__ import annotations

import hashlib
import json
import numbers
import weakref

import numpy as np

from zoo.utils import check_choice, check_float, check_int

SPLITS = ("train", "validation", "test")
CHANNELS = (1, 3, 4)
MIN_IMAGE_SIZE = 8
# ITU-R BT.601 luma weights, as tf.image.rgb_to_grayscale and PIL's "L" mode use.
LUMA = (0.299, 0.587, 0.114)
FINGERPRINT_VERSION = "zoo.data/1"


# ---------------------------------------------------------------------------
# Argument checks (run before any expensive work)
# ---------------------------------------------------------------------------


def check_image_size(value, *, allow_none=True):
    """``None``, an int or ``(height, width)``, each >= 8; returns ``(h, w)`` or ``None``."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
        single = True
    else:
        single = False
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"`image_size` must be an int or a (height, width) tuple. Received: image_size={value!r}"
        )
    size = tuple(value)
    shown = size[0] if single else size
    if len(size) != 2:
        raise ValueError(
            f"`image_size` must be an int or a (height, width) tuple. Received: image_size={shown!r}"
        )
    for v in size:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(
                f"`image_size` must contain integers. Received: image_size={shown!r}"
            )
        if v < MIN_IMAGE_SIZE:
            raise ValueError(
                f"`image_size` must be >= {MIN_IMAGE_SIZE}. Received: image_size={shown!r}"
            )
    return int(size[0]), int(size[1])


def check_channels(value):
    """``None`` or one of 1, 3, 4."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`channels` must be 1, 3, 4 or None. Received: channels={value!r}")
    return int(check_choice("channels", int(value), CHANNELS))


def check_fractions(validation_split, test_split):
    """Both in [0, 1) and summing to less than 1."""
    validation_split = check_float("validation_split", validation_split, minimum=0.0, maximum=1.0,
                                   max_inclusive=False)
    test_split = check_float("test_split", test_split, minimum=0.0, maximum=1.0, max_inclusive=False)
    if validation_split + test_split >= 1.0:
        raise ValueError(
            "`validation_split` + `test_split` must be < 1 to leave training data. "
            f"Received: validation_split={validation_split!r}, test_split={test_split!r}"
        )
    return validation_split, test_split


def check_seed(name, value):
    return check_int(name, value, minimum=0)


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------


def split_indices(labels, *, validation_split, test_split, seed, stratify=True):
    """Deterministic, non-overlapping train/validation/test indices.

    Each class (or the whole set when ``stratify`` is False) is permuted with
    ``seed`` and cut into test, validation and train parts of the requested
    fractions, so every class keeps its proportion in every split.

    Returns:
        ``{"train": idx, "validation": idx, "test": idx}`` sorted index arrays.
    """
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify else [np.arange(n)]
    parts = {s: [] for s in SPLITS}
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(len(idx) * test_split))
        n_val = int(round(len(idx) * validation_split))
        # Keep at least one training example per group.
        while n_test + n_val >= len(idx) and (n_test or n_val):
            if n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
        parts["test"].append(idx[:n_test])
        parts["validation"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    return {s: np.sort(np.concatenate(p)).astype(np.int64) for s, p in parts.items()}


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------


def _linear_weights(n_in, n_out):
    """(n_out, n_in) bilinear interpolation matrix with half-pixel centres (as tf.image.resize)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    weights = np.zeros((n_out, n_in))
    np.add.at(weights, (np.arange(n_out), i0), 1 - w1)
    np.add.at(weights, (np.arange(n_out), i1), w1)
    return weights


def resize_bilinear(images, size):
    """Deterministic NumPy bilinear resize of ``(n, h, w)`` or ``(n, h, w, c)`` arrays.

    Example:
        >>> resize_bilinear(np.ones((2, 8, 8)), (32, 32)).shape
        (2, 32, 32)
    """
    images = np.asarray(images, dtype=np.float64)
    h, w = images.shape[1:3]
    if (h, w) == tuple(size):
        return images.astype(np.float32)
    wh, ww = _linear_weights(h, size[0]), _linear_weights(w, size[1])
    if images.ndim == 3:
        out = np.einsum("oh,nhw,pw->nop", wh, images, ww)
    else:
        out = np.einsum("oh,nhwc,pw->nopc", wh, images, ww)
    return out.astype(np.float32)


def convert_channels(x, source, target, concat=None):
    """Convert the last axis of ``x`` (values in [0, 1]) from ``source`` to ``target`` channels.

    The explicit channel policy: gray -> RGB replicates; RGB -> gray is BT.601
    luminance; an alpha channel is composited on white (a transparent pixel
    shows as white, as in a browser) unless the target keeps alpha (4); a
    missing alpha is opaque. ``concat(list_of_tensors)`` joins along the last
    axis (NumPy by default), so the same code serves NumPy, tf.data and ``keras.ops``.

    Example:
        >>> convert_channels(np.full((2, 2, 1), 0.5), 1, 3).shape
        (2, 2, 3)
    """
    concat = concat or np_concat
    if source == target:
        return x
    if source not in (1, 2, 3, 4) or target not in CHANNELS:
        raise ValueError(f"Cannot convert {source} channels to {target}. Received: channels={target!r}")
    has_alpha = source in (2, 4)
    color = x[..., :-1] if has_alpha else x
    alpha = x[..., -1:] if has_alpha else None
    color_channels = source - 1 if has_alpha else source
    if target == 4:
        if color_channels == 1:
            color = concat([color, color, color])
        if alpha is None:
            alpha = x[..., :1] * 0 + 1
        return concat([color, alpha])
    if has_alpha:
        color = color * alpha + (1 - alpha)
    if color_channels == target:
        return color
    if target == 3:
        return concat([color, color, color])
    return color[..., 0:1] * LUMA[0] + color[..., 1:2] * LUMA[1] + color[..., 2:3] * LUMA[2]


def np_concat(parts):
    return np.concatenate(parts, axis=-1)


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def jsonable(value):
    """A JSON-friendly copy of options (tuples -> lists, paths -> str)."""
    return _jsonable(value)


class Fingerprint:
    """Incremental sha256 over options and arrays (dtype, shape and bytes)."""

    def __init__(self, *parts):
        self._h = hashlib.sha256(FINGERPRINT_VERSION.encode())
        for p in parts:
            self.update(p)

    def update(self, part):
        if isinstance(part, np.ndarray):
            arr = np.ascontiguousarray(part)
            self._h.update(f"{arr.dtype.str}{arr.shape}".encode())
            self._h.update(arr.tobytes())
        elif isinstance(part, bytes):
            self._h.update(part)
        else:
            self._h.update(json.dumps(_jsonable(part), sort_keys=True).encode())
        return self

    def hexdigest(self):
        return self._h.hexdigest()


# ---------------------------------------------------------------------------
# tf.data
# ---------------------------------------------------------------------------


def batch_dataset(ds, *, batch_size, shuffle, seed, num_examples, cache=False):
    """Cache (optionally), shuffle (training), batch and prefetch a tf.data pipeline."""
    import tensorflow as tf

    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(max(1, min(num_examples, 10_000)), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class _EpochOrders:
    """The generator of :func:`shuffled_batches`: each call (each epoch's iterator) yields the index batches of the
    next permutation of ``range(n)`` drawn from ``np.random.default_rng(seed)``; :meth:`reset` starts over."""

    def __init__(self, n, batch_size, seed):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.reset()

    def reset(self):
        self.rng = np.random.default_rng(self.seed)

    def __call__(self):
        order = self.rng.permutation(self.n)
        for start in range(0, self.n, self.batch_size):
            yield order[start:start + self.batch_size]


_ORDERS = weakref.WeakKeyDictionary()  # pipeline of shuffled_batches -> its _EpochOrders
_FINITE = weakref.WeakSet()  # pipelines built here from arrays without NaN or infinity


def shuffled_batches(x, y, *, batch_size, seed):
    """Batches of ``(x, y)`` in a new order each epoch, drawn from ``np.random.default_rng(seed)``.

    Unlike ``tf.data.Dataset.shuffle``, whose order also depends on TensorFlow's
    global seed at the time the pipeline is built, the k-th epoch's order here
    depends only on ``seed`` and how many epochs this pipeline has given since it was built or
    :func:`restart_order` started it over, so a trial that restarts it
    (:meth:`zoo.data.DataBundle.restarted`) is reproducible whatever ran before.
    """
    import tensorflow as tf

    orders = _EpochOrders(len(x), batch_size, seed)
    order = tf.data.Dataset.from_generator(orders, output_signature=tf.TensorSpec((None,), tf.int64))
    xt, yt = tf.constant(x), tf.constant(y)
    batches = order.map(lambda i: (tf.gather(xt, i), tf.gather(yt, i)))
    out = batches.apply(tf.data.experimental.assert_cardinality(-(-len(x) // batch_size))).prefetch(
        tf.data.AUTOTUNE)
    _ORDERS[out] = orders
    return checked_finite(out, x, y)


def checked_finite(dataset, *arrays):
    """``dataset``, noted as :func:`known_finite` when ``arrays`` (what it was built from) hold no NaN or infinity."""
    if all(not np.issubdtype(np.asarray(a).dtype, np.floating) or np.isfinite(a).all() for a in arrays):
        _FINITE.add(dataset)
    return dataset


def restart_order(dataset) -> bool:
    """Start the epoch orders of ``dataset`` (a :func:`shuffled_batches` pipeline) over, as if it were new:
    the next epoch is the first permutation again, without building (and tracing) a new pipeline. ``False``
    for any other dataset."""
    orders = _ORDERS.get(dataset)
    if orders is not None:
        orders.reset()
    return orders is not None


def known_finite(dataset) -> bool:
    """Whether every element of ``dataset`` is known to hold no NaN or infinity (the arrays it was built from were
    checked: :func:`checked_finite`), so that a check of its first batch can be skipped."""
    try:
        return dataset in _FINITE
    except TypeError:  # not hashable: not one of ours
        return False
