"""Compile and fit helpers shared by everything that trains (comparisons, tuning, transfer).

One place decides optimizers, learning-rate schedules, losses and seeds, so that
two models compared by the package are trained the same way.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import keras
import numpy as np

from zoo.runtime import PRECISIONS, accelerator, global_policy, precision_policy, resolve_precision
from zoo.utils import check_choice, check_float, check_int

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "exponential", "cosine", "warmup")
TASKS = ("multiclass", "binary", "regression")
REGRESSION_LOSSES = ("mse", "mae", "msle", "huber")

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "PRECISIONS",
    "accelerator",
    "resolve_precision",
    "precision_policy",
    "to_device",
    "DeviceArrays",
    "set_seed",
    "metric_direction",
    "make_schedule",
    "make_optimizer",
    "make_loss",
    "infer_task",
    "outputs_logits",
    "compile_model",
    "fit",
    "TrainingConfig",
    "steps_per_epoch",
    "uint8_inputs",
    "EpochTimer",
]


# Substrings of metric and record-field names that say which way is better (checked in this order).
_MAXIMISED = ("accuracy", "acc", "auc", "precision", "recall", "f1", "iou", "throughput", "r2")
_MINIMISED = ("loss", "error", "mae", "mse", "msle", "mape", "huber", "crossentropy", "hinge", "params", "macs",
              "flops", "bytes", "seconds", "latency")


def metric_direction(name):
    """``"max"`` or ``"min"``: which way a metric (``val_auc``, ``loss``) or record field (``params``) is better.

    ``None`` when the name does not say (callers then ask for an explicit direction).

    Example:
        >>> metric_direction("val_auc"), metric_direction("val_loss"), metric_direction("latency_ms")
        ('max', 'min', 'min')
    """
    if not isinstance(name, str):
        return None
    key = name.lower()
    for prefix in ("val_", "test_"):
        key = key.removeprefix(prefix)
    if any(word in key for word in _MINIMISED):
        return "min"
    if any(word in key for word in _MAXIMISED):
        return "max"
    return None


def set_seed(seed):
    """Seed Python, NumPy and the backend (``keras.utils.set_random_seed``)."""
    if seed is not None:
        keras.utils.set_random_seed(check_int("seed", seed, minimum=0))


def to_device(x):
    """Put an array (or a tuple/list/dict of arrays) on the backend's default device once.

    Used by ``fit(device_data=True)``: on PyTorch, Keras slices device tensors
    in place; on JAX, :class:`DeviceArrays` batches them (Keras' array adapter
    would copy JAX arrays back to NumPy). On TensorFlow the arrays become host
    tensors: Keras feeds them through ``tf.data``, which prefetches. Send
    images as ``uint8`` (see :func:`uint8_inputs`) to store 4x more.
    """
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v) for k, v in x.items()}
    if x is None:
        return None
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.device_put(np.asarray(x) if not hasattr(x, "devices") else x)
    if backend == "torch":
        return keras.ops.convert_to_tensor(x)  # Keras' torch backend places tensors on its default device
    # TensorFlow: Keras feeds arrays through tf.data, which runs on the host (a GPU
    # copy would be copied back), so the data stays there and is prefetched
    return keras.ops.convert_to_tensor(x)


class DeviceArrays(keras.utils.PyDataset):
    """``(x, y)`` arrays kept on the accelerator and batched there: no host copy per batch.

    Keras' array adapter turns JAX arrays back into NumPy and sends every batch
    again; batches that are already device arrays pass through untouched. The
    order is reshuffled on the device every epoch (``shuffle=True``).
    :func:`fit` uses it for ``device_data=True`` on the JAX backend.

    Example:
        >>> model.fit(DeviceArrays(x_uint8, y, batch_size=256), epochs=5)
    """

    def __init__(self, x, y=None, *, batch_size=32, shuffle=True, seed=None):
        super().__init__()
        self.batch_size = check_int("batch_size", batch_size)
        self.num_examples = len(x)
        if y is not None and len(y) != self.num_examples:
            raise ValueError(f"`x` and `y` must have the same length. Received: {len(x)} and {len(y)}")
        self.x, self.y = to_device(x), to_device(y)
        self.shuffle = bool(shuffle)
        self._rng = np.random.default_rng(seed)
        self._order = None
        self.on_epoch_end()

    def __len__(self):
        return -(-self.num_examples // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        lo, hi = index * self.batch_size, min(self.num_examples, (index + 1) * self.batch_size)
        if self._order is None:
            batch = tuple(a[lo:hi] for a in (self.x, self.y) if a is not None)
        else:
            rows = self._order[lo:hi]
            batch = tuple(keras.ops.take(a, rows, axis=0) for a in (self.x, self.y) if a is not None)
        return batch

    def on_epoch_end(self):
        if self.shuffle:
            self._order = to_device(self._rng.permutation(self.num_examples).astype("int32"))


def make_schedule(
    name="constant",
    learning_rate=1e-3,
    *,
    total_steps=None,
    warmup_steps=0,
    decay_rate=0.1,
    decay_steps=None,
    min_learning_rate=0.0,
):
    """A learning rate or ``keras.optimizers.schedules.LearningRateSchedule``.

    Args:
        name: ``constant``; ``step`` (multiply by ``decay_rate`` every ``decay_steps``);
            ``exponential`` (smooth version of ``step``); ``cosine`` (to
            ``min_learning_rate`` over ``total_steps``, after optional warm-up);
            ``warmup`` (linear from 0 over ``warmup_steps``, then constant).
        total_steps: optimizer steps of the whole run (needed by ``cosine``; the
            default ``decay_steps`` is a third of it).
    """
    check_choice("schedule", name, SCHEDULES)
    lr = check_float("learning_rate", learning_rate, minimum=0.0)
    if lr <= 0:
        raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={learning_rate!r}")
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    total_steps = check_int("total_steps", total_steps, allow_none=True)
    if decay_steps is None and total_steps:
        decay_steps = max(1, total_steps // 3)
    schedules = keras.optimizers.schedules
    if name == "constant":
        return lr
    if name in ("step", "exponential"):
        if decay_steps is None:
            raise ValueError(f"schedule={name!r} needs `decay_steps` or `total_steps`. Received: decay_steps=None")
        return schedules.ExponentialDecay(
            lr, decay_steps=check_int("decay_steps", decay_steps), decay_rate=decay_rate,
            staircase=name == "step",
        )
    if name == "cosine":
        if not total_steps:
            raise ValueError("schedule='cosine' needs `total_steps`. Received: total_steps=None")
        decay = max(1, total_steps - warmup_steps)
        if warmup_steps:
            return schedules.CosineDecay(
                0.0, decay, alpha=min_learning_rate / lr, warmup_target=lr, warmup_steps=warmup_steps
            )
        return schedules.CosineDecay(lr, decay, alpha=min_learning_rate / lr)
    # warmup: CosineDecay with alpha=1 stays at the target once warm-up ends.
    if warmup_steps < 1:
        raise ValueError("schedule='warmup' needs `warmup_steps` >= 1. Received: warmup_steps=0")
    return schedules.CosineDecay(0.0, 1, alpha=1.0, warmup_target=lr, warmup_steps=warmup_steps)


def make_optimizer(name="adam", learning_rate=1e-3, *, weight_decay=0.0, momentum=0.9, clipnorm=None):
    """An optimizer by name: sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad.

    ``learning_rate`` may be a float or a schedule from :func:`make_schedule`.
    ``weight_decay`` is decoupled (applied by the optimizer), as in AdamW.
    """
    check_choice("optimizer", name, OPTIMIZERS)
    check_float("weight_decay", weight_decay, minimum=0.0)
    kw = {"learning_rate": learning_rate, "weight_decay": weight_decay or None}
    if clipnorm is not None:
        kw["clipnorm"] = check_float("clipnorm", clipnorm, minimum=0.0)
    opt = keras.optimizers
    if name == "sgd":
        return opt.SGD(**kw)
    if name in ("momentum", "nesterov"):
        return opt.SGD(momentum=momentum, nesterov=name == "nesterov", **kw)
    if name == "adam":
        return opt.Adam(**kw)
    if name == "adamw":
        kw["weight_decay"] = weight_decay or 0.004  # Keras' AdamW default
        return opt.AdamW(**kw)
    if name == "rmsprop":
        return opt.RMSprop(**kw)
    return opt.Adagrad(**kw)


def _last_layer(model):
    layer = model.layers[-1]
    while isinstance(layer, keras.Model):
        layer = layer.layers[-1]
    return layer


def outputs_logits(model) -> bool:
    """True when the model's last layer has no squashing activation."""
    act = getattr(_last_layer(model), "activation", None)
    name = getattr(act, "__name__", str(act))
    return name not in ("softmax", "sigmoid")


def infer_task(model) -> str:
    """``binary``/``multiclass``/``regression`` from the output layer."""
    act = getattr(getattr(_last_layer(model), "activation", None), "__name__", "linear")
    units = model.output.shape[-1]
    if act == "sigmoid":
        return "binary"
    if act == "softmax":
        return "multiclass"
    return "multiclass" if units and units > 1 else "regression"


def make_loss(task="multiclass", *, loss=None, from_logits=False, one_hot=False, label_smoothing=0.0):
    """The loss for a task (or an explicit ``loss`` name).

    Args:
        task: ``multiclass`` (categorical cross-entropy, sparse labels unless
            ``one_hot``), ``binary`` (binary cross-entropy) or ``regression``.
        loss: overrides the task default: mse, mae, msle, huber,
            binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy.
        from_logits: the model outputs unnormalised scores.
    """
    check_choice("task", task, TASKS)
    losses = keras.losses
    if loss is None:
        loss = {"regression": "mse", "binary": "binary_crossentropy"}.get(
            task, "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
        )
    table = {
        "mse": losses.MeanSquaredError,
        "mae": losses.MeanAbsoluteError,
        "msle": losses.MeanSquaredLogarithmicError,
        "huber": losses.Huber,
    }
    if loss in table:
        return table[loss]()
    if loss == "binary_crossentropy":
        return losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    if loss == "categorical_crossentropy":
        return losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    if loss == "sparse_categorical_crossentropy":
        return losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    raise ValueError(
        f"`loss` must be one of {sorted(table) + ['binary_crossentropy', 'categorical_crossentropy', 'sparse_categorical_crossentropy']}. "
        f"Received: loss={loss!r}"
    )


def _metrics(task, from_logits, one_hot):
    if task == "regression":
        return [keras.metrics.MeanAbsoluteError(name="mae")]
    if task == "binary":
        return [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if from_logits else 0.5)]
    if one_hot:
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


def compile_model(
    model,
    *,
    optimizer="adam",
    learning_rate=1e-3,
    schedule="constant",
    total_steps=None,
    warmup_steps=0,
    decay_rate=0.1,
    decay_steps=None,
    weight_decay=0.0,
    momentum=0.9,
    clipnorm=None,
    task=None,
    loss=None,
    from_logits=None,
    one_hot=False,
    label_smoothing=0.0,
    metrics=None,
    jit_compile="auto",
    steps_per_execution=1,
):
    """Compile ``model`` with an optimizer, schedule and loss chosen by name.

    ``task`` and ``from_logits`` are read from the output layer when not given.
    Returns the model.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    task = task or infer_task(model)
    if from_logits is None:
        from_logits = task != "regression" and outputs_logits(model)
    lr = make_schedule(
        schedule, learning_rate, total_steps=total_steps, warmup_steps=warmup_steps,
        decay_rate=decay_rate, decay_steps=decay_steps,
    )
    model.compile(
        optimizer=make_optimizer(optimizer, lr, weight_decay=weight_decay, momentum=momentum, clipnorm=clipnorm),
        loss=make_loss(task, loss=loss, from_logits=from_logits, one_hot=one_hot, label_smoothing=label_smoothing),
        metrics=_metrics(task, from_logits, one_hot) if metrics is None else metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch (training and validation) in ``self.seconds``."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def uint8_inputs(model, *, scale=1.0 / 255.0, offset=0.0, name=None):
    """Wrap an image model so it takes ``uint8`` pixels and normalises them on the device.

    Sending uint8 instead of float32 moves 4x fewer bytes from the host (or keeps
    4x more images resident on an accelerator); the ``Rescaling`` runs in the
    model's compute dtype (bfloat16/float16 under mixed precision).

    Example:
        >>> fast = uint8_inputs(zoo.build("resnet18", input_shape=(32, 32, 3), num_classes=10))
    """
    shape = tuple(model.inputs[0].shape[1:])
    # the wrapper takes the model's policy: its Rescaling runs in the compute dtype, and
    # compile() sees mixed_float16 on the outer model and adds loss scaling
    with global_policy(model.dtype_policy):
        inputs = keras.Input(shape=shape, dtype="uint8", name="uint8_input")
        x = keras.layers.Rescaling(scale, offset, name="normalize")(inputs)
        return keras.Model(inputs, model(x), name=name or model.name)


def steps_per_epoch(data, batch_size, *, num_examples=None):
    """Batches per epoch: from ``num_examples`` when given (a rebatched or augmented pipeline may not
    know its length), else from ``(x, y)`` arrays, a dataset's cardinality or a ``PyDataset``'s length;
    ``None`` when unknown."""
    if num_examples:
        return max(1, -(-int(num_examples) // batch_size))
    if isinstance(data, (tuple, list)):
        return max(1, -(-len(data[0]) // batch_size))
    try:
        n = int(data.cardinality())
        return n if n > 0 else None
    except (AttributeError, TypeError):
        try:
            return len(data)
        except TypeError:
            return None


# The arguments of compile_model that TrainingConfig holds as fields; any other goes to `options`.
_CONFIG_FIT_FIELDS = ("optimizer", "learning_rate", "schedule", "weight_decay")


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained: the one set of training settings that comparisons, searches and
    ``run_trial`` hand to :func:`fit`.

    Attributes:
        epochs: training epochs.
        batch_size: ``None`` takes the data's.
        optimizer, learning_rate, schedule, weight_decay: see :func:`compile_model`.
        warmup_epochs: length of the ``warmup`` schedule's ramp, in epochs (turned into steps from the data).
        steps_per_epoch: batches per epoch for the schedules (``None``: counted from the data).
        precision: dtype policy the model is built under (``None`` keeps the global one).
        augmentation: a ``zoo.data.augmentation`` preset applied to the training split, or ``None``;
            ``augmentation_flip`` is the flip it uses.
        options: more :func:`fit`/:func:`compile_model` arguments (``loss``, ``momentum``,
            ``label_smoothing``, ``compile=False``...).

    Example:
        >>> config = TrainingConfig(epochs=5, optimizer="momentum", learning_rate=0.05, schedule="cosine")
        >>> history = fit(model, (x, y), config=config)
    """

    epochs: int = 5
    batch_size: int | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    weight_decay: float = 0.0
    warmup_epochs: float = 1.0
    steps_per_epoch: int | None = None
    precision: str | None = None
    augmentation: str | None = None
    augmentation_flip: str | None = "horizontal"
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size, allow_none=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        lr = check_float("learning_rate", self.learning_rate, minimum=0.0)
        if not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"`learning_rate` must be a finite number > 0. Received: learning_rate={lr!r}")
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_float("warmup_epochs", self.warmup_epochs, minimum=0.0)
        check_int("steps_per_epoch", self.steps_per_epoch, allow_none=True)
        if self.precision is not None:
            check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.options, dict):
            raise TypeError(f"`options` must be a dict of fit arguments. Received: options={self.options!r}")
        clash = sorted(set(self.options) & set(asdict(self)))
        if clash:
            raise ValueError(f"`options` may not repeat TrainingConfig fields. Received: {clash}")

    @classmethod
    def from_fit_kwargs(cls, fit_kwargs=None, **fields) -> TrainingConfig:
        """A config from ``fit`` keyword arguments (``optimizer=``, ``learning_rate=``, ``loss=``...) and fields."""
        kwargs = dict(fit_kwargs or {})
        known = {k: kwargs.pop(k) for k in _CONFIG_FIT_FIELDS if k in kwargs}
        return cls(**known, **fields, options=kwargs)

    def replace(self, **changes) -> TrainingConfig:
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def fit_kwargs(self, steps_per_epoch=None) -> dict:
        """The :func:`fit` keyword arguments besides epochs and batch size; with the data's steps per
        epoch, the schedule's ``total_steps`` and the warm-up's ``warmup_steps`` too."""
        kwargs = {k: getattr(self, k) for k in _CONFIG_FIT_FIELDS}
        if not self.options.get("compile", True):
            kwargs = {}  # a model compiled by its maker keeps its optimizer and loss
        elif steps_per_epoch:
            kwargs["total_steps"] = steps_per_epoch * self.epochs
            if self.schedule == "warmup":
                kwargs["warmup_steps"] = max(1, round(self.warmup_epochs * steps_per_epoch))
        return {**kwargs, **self.options}


def fit(
    model,
    train,
    validation=None,
    *,
    epochs=10,
    batch_size=32,
    seed=0,
    callbacks=(),
    verbose="auto",
    compile=True,
    shuffle=True,
    device_data=False,
    config=None,
    **compile_kwargs,
):
    """Seed, compile (unless ``compile=False``) and fit; returns the ``History``.

    Args:
        model: a ``keras.Model``.
        train: ``(x, y)`` arrays or a batched ``tf.data.Dataset``/PyDataset.
        validation: same kinds, or ``None``.
        epochs: training epochs.
        batch_size: used for array inputs (datasets come batched).
        compile: ``True``, ``False`` (the model is compiled already), or
            ``"if_needed"`` (compile only a model that is not compiled yet).
        seed: seeds Python, NumPy and the backend before compiling.
        device_data: put array data (``(x, y)`` tuples) on the accelerator once
            so that no batch is copied from the host during training (JAX:
            :class:`DeviceArrays`; PyTorch: :func:`to_device`; TensorFlow feeds
            arrays through ``tf.data`` on the host, which prefetches); for data
            that fits in accelerator memory.
        compile_kwargs: forwarded to :func:`compile_model` (optimizer,
            learning_rate, schedule, weight_decay, loss, ``jit_compile``,
            ``steps_per_execution``, ...). ``total_steps``
            for schedules is derived from the data when possible.
        config: a :class:`TrainingConfig`: its epochs, batch size (when set) and
            training settings replace the arguments above (explicit
            ``compile_kwargs`` still win).

    Mixed precision is chosen when the model is built
    (:func:`precision_policy`, or ``zoo.build(..., precision=...)``).

    Example:
        >>> history = fit(model, (x, y), epochs=2, optimizer="sgd", learning_rate=0.1)
    """
    if config is not None:
        if not isinstance(config, TrainingConfig):
            raise TypeError(f"`config` must be a TrainingConfig. Received: config={type(config).__name__}")
        epochs, batch_size = config.epochs, config.batch_size or batch_size
        settings = config.fit_kwargs(config.steps_per_epoch or steps_per_epoch(train, batch_size))
        compile = settings.pop("compile", compile)
        shuffle = settings.pop("shuffle", shuffle)
        device_data = settings.pop("device_data", device_data)
        compile_kwargs = {**settings, **compile_kwargs}
    if compile == "if_needed":  # a model its maker compiled keeps its optimizer and loss
        compile = not getattr(model, "compiled", False)
        compile_kwargs = compile_kwargs if compile else {}
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    if isinstance(train, list):
        train = tuple(train)
    if isinstance(train, tuple) and len(train) != 2:
        raise ValueError(f"`train` must be (x, y) or a dataset. Received a tuple of length {len(train)}")
    set_seed(seed)
    if compile:
        steps = steps_per_epoch(train, batch_size)
        if steps and "total_steps" not in compile_kwargs:
            compile_kwargs["total_steps"] = steps * epochs
        compile_model(model, **compile_kwargs)
    elif compile_kwargs:
        raise TypeError(f"compile=False takes no compile arguments. Received: {sorted(compile_kwargs)}")
    if isinstance(validation, list):
        validation = tuple(validation)
    if device_data and keras.backend.backend() == "jax":
        if isinstance(train, tuple):
            train = DeviceArrays(*train, batch_size=batch_size, shuffle=shuffle, seed=seed)
        if isinstance(validation, tuple):
            validation = DeviceArrays(*validation, batch_size=batch_size, shuffle=False)
    elif device_data:  # PyTorch slices device tensors in place; TensorFlow feeds tf.data from the host
        train = to_device(train) if isinstance(train, tuple) else train
        validation = to_device(validation) if isinstance(validation, tuple) else validation
    kw = dict(epochs=epochs, validation_data=validation, callbacks=list(callbacks), verbose=verbose)
    if isinstance(train, DeviceArrays):
        return model.fit(train, shuffle=False, **kw)  # it shuffles itself, on the device
    if isinstance(train, tuple):
        x, y = train
        return model.fit(x, y, batch_size=batch_size, shuffle=shuffle, **kw)
    # datasets shuffle themselves (zoo.data reshuffles its training split every epoch)
    return model.fit(train, shuffle=False, **kw)
