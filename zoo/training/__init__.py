"""Training shared by everything that trains (comparisons, tuning, transfer): one ``fit``.

One place decides optimizers, learning-rate schedules, losses and seeds, so that
two models compared by the package are trained the same way: ``compile``
(optimizers, schedules, losses, metrics), ``device`` (data on the
accelerator, uint8 inputs), and here :class:`TrainingConfig` and :func:`fit`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace

import keras
import numpy as np

from zoo.runtime import PRECISIONS, accelerator, precision_policy, resolve_precision
from zoo.training.compile import (
    MAX_RATE,
    ONECYCLE,
    OPTIMIZERS,
    PLATEAU,
    REGRESSION_LOSSES,
    SCHEDULES,
    compile_model,
    infer_task,
    make_loss,
    make_optimizer,
    make_schedule,
    metric_names,
    outputs_logits,
)
from zoo.training.checks import check_finite_data
from zoo.training.device import DeviceArrays, to_device, uint8_inputs
from zoo.training.distribute import check_devices, data_parallel, resolve_devices
from zoo.training.lr_find import LRFinderResult, lr_find
from zoo.utils import TASKS, check_choice, check_float, check_int, metric_direction

__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "REGRESSION_LOSSES",
    "SCHEDULES",
    "TASKS",
    "DeviceArrays",
    "EarlyStopping",
    "EpochLine",
    "EpochTimer",
    "LRFinderResult",
    "TrainingConfig",
    "accelerator",
    "compile_model",
    "fit",
    "infer_task",
    "lr_find",
    "make_loss",
    "make_optimizer",
    "make_schedule",
    "metric_direction",
    "metric_names",
    "outputs_logits",
    "precision_policy",
    "resolve_devices",
    "resolve_precision",
    "set_seed",
    "steps_per_epoch",
    "training_callbacks",
    "to_device",
    "uint8_inputs",
]


def set_seed(seed):
    """Seed Python, NumPy and the backend (``keras.utils.set_random_seed``)."""
    if seed is not None:
        keras.utils.set_random_seed(check_int("seed", seed, minimum=0))


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch (training and validation) in ``self.seconds``."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class EpochLine(EpochTimer):
    """One line per finished epoch, naming its run, written in one call (lines of several processes printing
    to one terminal stay whole): ``lenet5 seed=0: epoch 2/5, 1.1 s, accuracy 0.9333, loss 0.2350, ...``. What
    Keras' ``verbose=2`` says, readable where several trials train at once (a comparison's workers)."""

    def __init__(self, label):
        super().__init__()
        self.label = label

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        values = []
        for name, value in (logs or {}).items():
            try:
                values.append(f"{name} {float(value):.4f}")
            except (TypeError, ValueError):  # not one number: not for a progress line
                pass
        sys.stdout.write(", ".join([f"{self.label}: epoch {epoch + 1}/{self.params.get('epochs', '?')}",
                                    f"{self.seconds[-1]:.1f} s", *values]) + "\n")
        sys.stdout.flush()


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


MAX_EPOCHS = 100_000  # far past any schedule; a larger number is a typo that would train for ever

# The arguments of compile_model that TrainingConfig holds as fields; any other goes to `options`.
_CONFIG_FIT_FIELDS = ("optimizer", "learning_rate", "schedule", "weight_decay", "layer_decay")
_EARLY_STOPPING_FIELDS = ("patience", "min_delta", "monitor")


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained: the one set of training settings that comparisons, searches and
    ``run_trial`` hand to :func:`fit`.

    Attributes:
        epochs: training epochs.
        batch_size: ``None`` takes the data's.
        optimizer, learning_rate, schedule, weight_decay: see :func:`compile_model`.
        layer_decay: layer-wise learning-rate decay in (0, 1] (each unit's rate times
            ``layer_decay ** depth`` from the head, :mod:`zoo.training.layer_decay`); ``None``: one rate.
        warmup_epochs: length of the ``warmup`` schedule's ramp, in epochs (turned into steps from the data).
        steps_per_epoch: batches per epoch for the schedules (``None``: counted from the data).
        precision: dtype policy the model is built under (``None`` keeps the global one).
        devices: train on this many local devices with one global batch (``"all"``: every one;
            ``None``: the default device), :mod:`zoo.training.distribute`.
        augmentation: a ``zoo.data.augmentation`` preset applied to the training split, or ``None``;
            ``augmentation_flip`` is the flip it uses.
        patience, min_delta, monitor: early stopping (see :func:`fit`); ``patience=None`` trains every epoch.
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
    layer_decay: float | None = None
    warmup_epochs: float = 1.0
    steps_per_epoch: int | None = None
    precision: str | None = None
    devices: int | str | None = None
    augmentation: str | None = None
    augmentation_flip: str | None = "horizontal"
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        check_int("epochs", self.epochs, maximum=MAX_EPOCHS)
        check_int("batch_size", self.batch_size, allow_none=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_float("learning_rate", self.learning_rate, minimum=0.0, min_inclusive=False, maximum=MAX_RATE)
        check_float("weight_decay", self.weight_decay, minimum=0.0, maximum=MAX_RATE)
        if self.layer_decay is not None:
            check_float("layer_decay", self.layer_decay, minimum=0.0, maximum=1.0, min_inclusive=False)
        check_float("warmup_epochs", self.warmup_epochs, minimum=0.0)
        check_int("steps_per_epoch", self.steps_per_epoch, allow_none=True)
        check_early_stopping(self.patience, self.min_delta, self.monitor)
        if self.precision is not None:
            check_choice("precision", self.precision, PRECISIONS)
        object.__setattr__(self, "devices", check_devices(self.devices))
        if not isinstance(self.options, dict):
            raise TypeError(f"`options` must be a dict of fit arguments. Received: options={self.options!r}")
        clash = sorted(set(self.options) & set(asdict(self)))
        if clash:
            raise ValueError(f"`options` may not repeat TrainingConfig fields. Received: {clash}")

    @classmethod
    def from_fit_kwargs(cls, fit_kwargs=None, **fields) -> TrainingConfig:
        """A config from ``fit`` keyword arguments (``optimizer=``, ``learning_rate=``, ``loss=``...) and fields."""
        kwargs = dict(fit_kwargs or {})
        known = {k: kwargs.pop(k) for k in (*_CONFIG_FIT_FIELDS, *_EARLY_STOPPING_FIELDS) if k in kwargs}
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


def check_early_stopping(patience, min_delta, monitor):
    """Checked early-stopping settings: ``patience`` an int >= 0 or None, ``min_delta`` >= 0, ``monitor`` a name."""
    patience = check_int("patience", patience, minimum=0, maximum=MAX_EPOCHS, allow_none=True)
    min_delta = check_float("min_delta", min_delta, minimum=0.0)
    if monitor is not None and (not isinstance(monitor, str) or not monitor):
        raise TypeError(f"`monitor` must be a metric name such as 'val_loss'. Received: monitor={monitor!r}")
    return patience, min_delta, monitor


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' early stopping that always restores the best epoch's weights and says, in 1-based epochs,
    which epoch was best (``best_epoch_number``) and after which it stopped (``stopped_epoch_number``,
    ``None`` when every epoch ran)."""

    def __init__(self, *, monitor, patience, min_delta=0.0):
        super().__init__(monitor=monitor, patience=patience, min_delta=min_delta,
                         mode=metric_direction(monitor) or "min", restore_best_weights=True, verbose=0)

    @property
    def best_epoch_number(self):
        return self.best_epoch + 1 if self.best_weights is not None else None

    @property
    def stopped_epoch_number(self):
        return self.stopped_epoch + 1 if self.stopped_epoch > 0 else None


def training_callbacks(*, patience=None, min_delta=0.0, monitor=None, validation=True, log_dir=None, resumed=False,
                       plateau=False):
    """The callbacks ``fit`` adds: :class:`EarlyStopping` when ``patience`` is set (on ``monitor``, by
    default ``val_loss``, or ``loss`` without validation data), Keras' ``ReduceLROnPlateau`` for the
    ``plateau`` schedule (on the same metric), and with ``log_dir`` Keras' TensorBoard callback
    (scalars per epoch) and a ``log.csv`` (appended to when ``resumed``)."""
    monitor = monitor or ("val_loss" if validation else "loss")
    callbacks = []
    if plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=metric_direction(monitor) or "min",
                                                           verbose=0, **PLATEAU))
    if patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta))
    if log_dir is not None:
        os.makedirs(log_dir, exist_ok=True)
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(log_dir, "log.csv"), append=resumed))
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, update_freq="epoch",
                                                     profile_batch=0))
    return callbacks


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
    patience=None,
    min_delta=0.0,
    monitor=None,
    log_dir=None,
    initial_epoch=0,
    devices=None,
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
        patience: stop when ``monitor`` has not improved by ``min_delta`` for this many epochs, and
            restore the weights of its best epoch (``None``: train every epoch).
        monitor: the metric watched for early stopping: ``val_loss`` by default (``loss`` without
            validation data); its direction comes from its name (``val_accuracy`` is maximised).
        log_dir: write TensorBoard scalars per epoch and ``log.csv`` there.
        initial_epoch: the epoch to start from, for a resumed run (``epochs`` stays the total).
        devices: synchronous data parallelism over this many local devices (``"all"``: every one), one
            global batch of ``batch_size`` split between them (:mod:`zoo.training.distribute`); the model
            keeps the trained weights and optimizer state, and the history says ``history.devices``.

    Returns:
        Keras' ``History``, with ``best_epoch`` and ``stopped_epoch`` (1-based epoch numbers; ``None``
        without early stopping, and ``stopped_epoch`` ``None`` when every epoch ran).

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
        patience = config.patience if patience is None else patience
        min_delta = config.min_delta if not min_delta else min_delta
        monitor = config.monitor if monitor is None else monitor
        devices = config.devices if devices is None else devices
    if compile == "if_needed":  # a model its maker compiled keeps its optimizer and loss
        compile = not getattr(model, "compiled", False)
        compile_kwargs = compile_kwargs if compile else {}
    epochs = check_int("epochs", epochs, maximum=MAX_EPOCHS)
    batch_size = check_int("batch_size", batch_size)
    initial_epoch = check_int("initial_epoch", initial_epoch, minimum=0, maximum=epochs)
    patience, min_delta, monitor = check_early_stopping(patience, min_delta, monitor)
    if isinstance(train, list):
        train = tuple(train)
    if isinstance(train, tuple) and len(train) != 2:
        raise ValueError(f"`train` must be (x, y) or a dataset. Received a tuple of length {len(train)}")
    check_finite_data(train, "train")
    if validation is not None:
        check_finite_data(tuple(validation) if isinstance(validation, list) else validation, "validation")
    devices = resolve_devices(devices)
    if devices > 1:
        _check_even_batches(devices, batch_size, train=train, validation=validation)
        device_data = False  # the distribution places each batch on its devices
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
    added = training_callbacks(patience=patience, min_delta=min_delta, monitor=monitor,
                               validation=validation is not None, log_dir=log_dir, resumed=initial_epoch > 0,
                               plateau=compile and compile_kwargs.get("schedule") == "plateau")
    kw = dict(epochs=epochs, initial_epoch=initial_epoch, validation_data=validation,
              callbacks=[*added, *callbacks], verbose=verbose)
    if devices > 1:
        with data_parallel(model, devices) as replica:
            history = _keras_fit(replica, train, batch_size=batch_size, shuffle=shuffle, **kw)
        history.set_model(model)
    else:
        history = _keras_fit(model, train, batch_size=batch_size, shuffle=shuffle, **kw)
    history.devices = devices
    stopper = next((c for c in added if isinstance(c, EarlyStopping)), None)
    history.best_epoch = stopper.best_epoch_number if stopper else None
    history.stopped_epoch = stopper.stopped_epoch_number if stopper else None
    return history


def _keras_fit(model, train, *, batch_size, shuffle, **kw):
    if isinstance(train, DeviceArrays):
        return model.fit(train, shuffle=False, **kw)  # it shuffles itself, on the device
    if isinstance(train, tuple):
        x, y = train
        return model.fit(x, y, batch_size=batch_size, shuffle=shuffle, **kw)
    return model.fit(train, shuffle=False, **kw)  # datasets shuffle themselves (zoo.data reshuffles every epoch)


def _check_even_batches(devices, batch_size, **splits):
    """On JAX every batch is split evenly between the devices (a sharded array): the batch size and the last
    batch of array data must divide by their count. TensorFlow's MirroredStrategy takes uneven batches."""
    if keras.backend.backend() != "jax":
        return
    if batch_size % devices:
        raise ValueError(f"devices={devices} splits each batch evenly on JAX: `batch_size` must be a multiple of "
                         f"{devices}. Received: batch_size={batch_size}")
    for name, data in splits.items():
        if isinstance(data, (tuple, list)) and len(data[0]) % batch_size % devices:
            raise ValueError(f"devices={devices} splits each batch evenly on JAX: the last batch of `{name}` "
                             f"({len(data[0])} examples, batches of {batch_size}) has "
                             f"{len(data[0]) % batch_size}, not a multiple of {devices}; use a batch size that "
                             f"leaves one, or drop {len(data[0]) % batch_size % devices} example(s)")
