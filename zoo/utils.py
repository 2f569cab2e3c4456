"""Argument checks shared by every builder: fail early, say what was received."""

from __future__ import annotations

import math
import numbers
import os
import re

ACTIVATIONS = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "silu",
    "mish",
    "tanh",
    "sigmoid",
    "softplus",
    "hard_swish",
    "hard_sigmoid",
    "linear",
    "prelu",
    "maxout",
)

# Short initializer names map to the variant their paper recommends
# (LeCun normal for SELU, Glorot uniform as Keras' default, He normal for ReLU).
INITIALIZERS = {
    "lecun": "lecun_normal",
    "lecun_uniform": "lecun_uniform",
    "lecun_normal": "lecun_normal",
    "glorot": "glorot_uniform",
    "glorot_uniform": "glorot_uniform",
    "glorot_normal": "glorot_normal",
    "xavier": "glorot_uniform",
    "he": "he_normal",
    "he_uniform": "he_uniform",
    "he_normal": "he_normal",
    "kaiming": "he_normal",
    # the courses' naive baselines: N(0, 1) (saturates sigmoids, explodes ReLU stacks) and Keras' N(0, 0.05)
    "normal": {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 1.0}},
    "random_normal": "random_normal",
}

POOLINGS = (None, "avg", "max")
# What a model predicts; heads and losses are chosen from it.
TASKS = ("multiclass", "binary", "regression")


def check_int(name: str, value, *, minimum: int | None = 1, maximum: int | None = None, allow_none: bool = False):
    """Return ``value`` if it is an int in ``[minimum, maximum]``; raise otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum:,}. Received: {name}={value!r}")
    return int(value)


# Past these, weights or a single sample no longer fit in any memory: refused before anything is built.
MAX_CLASSES = 1_000_000  # the largest public label sets (e.g. ImageNet-21k, 21,841) are far below
MAX_INPUT_SIDE = 65_536
MAX_INPUT_VALUES = 2**28  # values in one sample (1 GiB in float32)


def memory_bytes() -> int:
    """This machine's physical memory in bytes (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


# Bytes a float32 weight needs while it is trained: itself, its gradient and Adam's two moments
# (initialising it takes temporaries of the same order).
TRAINING_BYTES_PER_WEIGHT = 16


def check_weights_fit(params, *, what):
    """Refuse a model whose ``params`` weights could not be trained in this machine's memory
    (:data:`TRAINING_BYTES_PER_WEIGHT` each), before a weight is created. ``what`` names the
    arguments that made it so, with their values."""
    total = memory_bytes()
    if total and params * TRAINING_BYTES_PER_WEIGHT > total:
        raise ValueError(
            f"{what} would have about {params:,.0f} weights ({params * 4 / 2**30:,.1f} GiB in float32; about "
            f"{params * TRAINING_BYTES_PER_WEIGHT / 2**30:,.1f} GiB to train with their gradients and Adam's "
            f"moments), more than this machine's {total / 2**30:,.1f} GiB of memory: choose smaller values")


def check_float(name: str, value, *, minimum=None, maximum=None, min_inclusive=True, max_inclusive=True,
                allow_inf=False):
    """A real number within the bounds; NaN is always refused, infinities unless ``allow_inf``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number. Received: {name}={value!r}")
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    if minimum is not None and (value < minimum or (not min_inclusive and value <= minimum)):
        op = ">=" if min_inclusive else ">"
        raise ValueError(f"`{name}` must be {op} {minimum}. Received: {name}={value!r}")
    if maximum is not None and (value > maximum or (not max_inclusive and value >= maximum)):
        op = "<=" if max_inclusive else "<"
        raise ValueError(f"`{name}` must be {op} {maximum}. Received: {name}={value!r}")
    return float(value)


def check_choice(name: str, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}"
        )
    return value


def check_bool(name: str, value):
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


# Words of metric and record-field names that say which way is better (Keras' metric and loss names, the
# trial record's measurements). Whole words only: "macs" is no "acc", "val_mape" no "map".
METRIC_WORDS = {
    "max": ("accuracy", "acc", "auc", "prc", "precision", "recall", "sensitivity", "specificity", "true", "f1",
            "fbeta", "iou", "r2", "similarity", "correlation", "throughput"),
    "min": ("loss", "error", "crossentropy", "entropy", "mae", "mse", "rmse", "msle", "mape", "huber", "hinge",
            "logcosh", "cosh", "poisson", "divergence", "dice", "tversky", "ctc", "false",
            "params", "parameters", "macs", "flops", "gflops", "bytes", "memory", "seconds", "latency", "time"),
}
_WORD_DIRECTION = {word: direction for direction, words in METRIC_WORDS.items() for word in words}


def metric_direction(name):
    """``"max"`` or ``"min"``: which way a metric (``val_auc``, ``loss``) or record field (``params``) is better.

    The name is split into words at every character other than a letter or digit; its words found in
    :data:`METRIC_WORDS` decide. ``None`` when none is known or they disagree: callers then ask for an
    explicit direction.

    Example:
        >>> metric_direction("val_sparse_categorical_accuracy"), metric_direction("peak_memory_bytes")
        ('max', 'min')
        >>> metric_direction("val_widgets") is None
        True
    """
    if not isinstance(name, str):
        return None
    words = re.split(r"[^a-z0-9]+", name.lower().replace("io_u", "iou"))  # Keras names IoU metrics "mean_io_u"
    found = {_WORD_DIRECTION[w] for w in words if w in _WORD_DIRECTION}
    return found.pop() if len(found) == 1 else None


MAX_UNITS = 2**20  # units or filters of one layer
MAX_LAYERS = 1_000  # layers (or stages) a sequence argument may describe


def check_int_sequence(name: str, value, *, minimum: int = 1, maximum: int = MAX_UNITS, allow_empty: bool = True):
    """A tuple of at most :data:`MAX_LAYERS` ints in ``[minimum, maximum]`` (one int is a 1-tuple)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"`{name}` must be a sequence of integers. Received: {name}={value!r}")
    value = tuple(value)
    if not value and not allow_empty:
        raise ValueError(f"`{name}` must not be empty. Received: {name}={value!r}")
    if len(value) > MAX_LAYERS:
        raise ValueError(f"`{name}` must have at most {MAX_LAYERS:,} entries. Received {len(value):,}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not minimum <= v <= maximum:
            raise ValueError(
                f"`{name}` must contain integers from {minimum} to {maximum:,}. Received: {name}={value!r}"
            )
    return tuple(int(v) for v in value)


def check_names(name: str, value) -> list:
    """One name or a sequence of names (strings), as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"`{name}` must be a name or a list of names. Received: {name}={value!r}")
    names = list(value)
    if not names or not all(isinstance(v, str) for v in names):
        raise TypeError(f"`{name}` must be a name or a non-empty list of names. Received: {name}={value!r}")
    return names


MAX_MAXOUT_PIECES = 16


def check_activation(name: str, value):
    """Validate an activation name (``None`` means linear).

    Two take a parameter after a colon: ``"leaky_relu:0.1"`` (the negative slope, in [0, 1); plain
    ``"leaky_relu"`` is Keras' 0.2) and ``"maxout:3"`` (pieces per unit, 2 to 16; plain ``"maxout"`` is 2).
    ``"prelu"`` learns one slope per channel.
    """
    if value is None:
        return "linear"
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be an activation name. Received: {name}={value!r}")
    base, colon, argument = value.partition(":")
    if base not in ACTIVATIONS:
        raise ValueError(f"`{name}` must be one of {list(ACTIVATIONS)} (leaky_relu:SLOPE, maxout:PIECES). "
                         f"Received: {name}={value!r}")
    if not colon:
        return value
    try:
        if base == "leaky_relu":
            slope = float(argument)
            if not 0.0 <= slope < 1.0:
                raise ValueError
            return f"leaky_relu:{slope:g}"
        if base == "maxout":
            pieces = int(argument)
            if not 2 <= pieces <= MAX_MAXOUT_PIECES:
                raise ValueError
            return f"maxout:{pieces}"
    except ValueError:
        pass
    raise ValueError(f"`{name}` takes a parameter only as leaky_relu:SLOPE (0 <= SLOPE < 1) or maxout:PIECES "
                     f"(2 to {MAX_MAXOUT_PIECES}). Received: {name}={value!r}")


def activation_units(act: str, units: int) -> int:
    """The units a layer needs before activation ``act``: ``pieces`` times more for maxout."""
    base, _, argument = act.partition(":")
    return units * (int(argument or 2) if base == "maxout" else 1)


def check_initializer(name: str, value):
    """An initializer name of :data:`INITIALIZERS`, or a Keras initializer object (used as given)."""
    if callable(value) and hasattr(value, "get_config"):
        return value
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be an initializer name or a keras initializer. Received: {name}={value!r}")
    if value not in INITIALIZERS:
        raise ValueError(
            f"`{name}` must be one of {sorted(INITIALIZERS)}. Received: {name}={value!r}"
        )
    return INITIALIZERS[value]


def check_classifier_activation(value):
    """``None``/"linear" gives logits; otherwise softmax or sigmoid."""
    if value is None:
        return None
    return check_choice("classifier_activation", value, ("softmax", "sigmoid", "linear"))


def check_weights(weights, *, allow_imagenet: bool = False):
    """``weights`` is ``None``, a path to a local file, or ``"imagenet"`` for wrappers."""
    if weights is None:
        return None
    if isinstance(weights, bool):
        raise TypeError(
            "`weights` must be None, a file path or 'imagenet', not a bool. "
            f"Received: weights={weights!r}"
        )
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be None, a file path or 'imagenet'. Received: weights={weights!r}")
    weights = os.fspath(weights)
    if weights == "imagenet":
        if not allow_imagenet:
            raise ValueError(
                "weights='imagenet' is only available for the keras.applications wrappers "
                "(zoo.list_models('keras_*')). Received: weights='imagenet'"
            )
        return weights
    if not os.path.exists(weights):
        raise ValueError(f"`weights` file does not exist. Received: weights={weights!r}")
    return weights


def check_input_shape(input_shape, *, default, min_size=None, rank=3, channels=None):
    """Normalise and validate an input shape (without the batch axis).

    Args:
        input_shape: user value, or ``None`` for ``default``.
        default: the model's default input shape.
        min_size: smallest accepted spatial size, for images.
        rank: expected number of axes (3 for images, 1 for tabular).
        channels: required channel count, if any.
    """
    if input_shape is None:
        input_shape = default
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise TypeError(f"`input_shape` must be a tuple. Received: input_shape={input_shape!r}")
    shape = tuple(input_shape)
    if len(shape) != rank:
        expect = "(height, width, channels)" if rank == 3 else f"{rank} axes"
        raise ValueError(
            f"`input_shape` must have {rank} axes {expect} without the batch axis. "
            f"Received: input_shape={shape!r}"
        )
    for v in shape:
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1):
            raise ValueError(
                f"`input_shape` must contain positive integers. Received: input_shape={shape!r}"
            )
        if v is not None and v > MAX_INPUT_SIDE and rank == 3:
            raise ValueError(f"`input_shape` axes must be <= {MAX_INPUT_SIDE:,}. Received: input_shape={shape!r}")
    if None not in shape and math.prod(shape) > MAX_INPUT_VALUES:
        raise ValueError(f"`input_shape` must hold at most {MAX_INPUT_VALUES:,} values per sample. "
                         f"Received: input_shape={shape!r}")
    if rank == 3:
        h, w, c = shape
        if c is None:
            raise ValueError(f"The channel axis of `input_shape` must be known. Received: input_shape={shape!r}")
        if channels is not None and c != channels:
            raise ValueError(
                f"`input_shape` must have {channels} channels. Received: input_shape={shape!r}"
            )
        if min_size is not None:
            for v in (h, w):
                if v is not None and v < min_size:
                    raise ValueError(
                        f"`input_shape` is smaller than this model's minimum input size "
                        f"{min_size}x{min_size}. Received: input_shape={shape!r}"
                    )
    return tuple(None if v is None else int(v) for v in shape)


def check_common(
    *,
    input_shape,
    num_classes,
    include_top,
    pooling,
    classifier_activation,
    default_input_shape,
    min_size,
    rank=3,
    channels=None,
):
    """The checks every keras.applications-style builder starts with (``weights``: :func:`check_weights`)."""
    shape = check_input_shape(
        input_shape, default=default_input_shape, min_size=min_size, rank=rank, channels=channels
    )
    check_bool("include_top", include_top)
    num_classes = check_int("num_classes", num_classes, maximum=MAX_CLASSES)
    check_choice("pooling", pooling, POOLINGS)
    check_classifier_activation(classifier_activation)
    return shape, num_classes


def scaled(channels: int, width: float, *, minimum: int = 1) -> int:
    """Scale a channel count by a width multiplier (rounded, at least ``minimum``)."""
    return max(minimum, int(round(channels * width)))


MAX_WIDTH = 64.0  # 64x the reference channels: past any model that fits in memory


def check_width(width):
    return check_float("width", width, minimum=1e-6, maximum=MAX_WIDTH)


STEMS = ("imagenet", "cifar")
# Inputs smaller than this (on either spatial axis) get the small-image stem by default.
CIFAR_STEM_BELOW = 64


def check_stem(stem, input_shape, *, threshold=CIFAR_STEM_BELOW):
    """Resolve ``stem`` (``"imagenet"``, ``"cifar"`` or ``None`` = chosen from the input size).

    ``None`` picks ``"cifar"`` (a stride-1 3x3 conv, no max-pool) when the known
    height or width of ``input_shape`` is below ``threshold``, else ``"imagenet"``.
    """
    if stem is None:
        known = [v for v in input_shape[:2] if v is not None]
        return "cifar" if known and min(known) < threshold else "imagenet"
    if not isinstance(stem, str):
        raise TypeError(f"`stem` must be one of {list(STEMS)} or None. Received: stem={stem!r}")
    return check_choice("stem", stem, STEMS)


def snake_case(class_name: str) -> str:
    """Keras' automatic layer-name rule (``keras.src.utils.naming.to_snake_case``): ``Conv2D`` -> ``conv2d``."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def settings_object(cls, value, arg):
    """``value`` as a ``cls`` settings object (a frozen dataclass): ``None`` gives its defaults, a dict its
    fields, an instance itself; anything else is a ``TypeError`` naming ``arg``."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls(**value)
    raise TypeError(f"`{arg}` must be a {cls.__name__}, a dict of its fields or None. Received: {arg}={value!r}")
