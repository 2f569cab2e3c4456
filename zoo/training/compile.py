"""Optimizers, learning-rate schedules, losses, metrics and ``compile_model``, chosen by name."""

from __future__ import annotations

import keras

from zoo.training.layer_decay import layer_scales, with_layer_decay
from zoo.utils import TASKS, check_choice, check_float, check_int

__all__ = ["OPTIMIZERS", "REGRESSION_LOSSES", "SCHEDULES", "compile_model", "infer_task", "make_loss",
           "make_optimizer", "make_schedule", "metric_names", "outputs_logits"]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "exponential", "cosine", "warmup", "onecycle", "plateau")
# One-cycle (Smith & Topin 2019; torch's OneCycleLR defaults): from learning_rate / 25 up to learning_rate
# over the first 30% of the steps, then down to learning_rate / (25 * 1e4).
ONECYCLE = {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4}
# Reduce on plateau (torch's ReduceLROnPlateau factor): x0.1 after 2 epochs without a better monitored value.
PLATEAU = {"factor": 0.1, "patience": 2}
REGRESSION_LOSSES = ("mse", "mae", "msle", "huber")
# Learning rates and weight decays above this are typos (and, near float32's limit, overflow in the optimizer).
MAX_RATE = 1e3


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
            ``warmup`` (linear from 0 over ``warmup_steps``, then constant); ``onecycle``
            (:data:`ONECYCLE`: linear warm-up from ``learning_rate / 25`` to ``learning_rate`` over
            30% of ``total_steps``, then cosine annealing to ``learning_rate / 2.5e5``);
            ``plateau`` (constant here: :func:`zoo.training.fit` adds Keras' ``ReduceLROnPlateau``,
            :data:`PLATEAU`).
        total_steps: optimizer steps of the whole run (needed by ``cosine``; the
            default ``decay_steps`` is a third of it).
    """
    check_choice("schedule", name, SCHEDULES)
    lr = check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False, maximum=MAX_RATE)
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    total_steps = check_int("total_steps", total_steps, allow_none=True)
    if decay_steps is None and total_steps:
        decay_steps = max(1, total_steps // 3)
    schedules = keras.optimizers.schedules
    if name in ("constant", "plateau"):
        return lr
    if name == "onecycle":
        if not total_steps:
            raise ValueError("schedule='onecycle' needs `total_steps`. Received: total_steps=None")
        up = max(1, round(ONECYCLE["pct_start"] * total_steps))
        start = lr / ONECYCLE["div_factor"]
        return schedules.CosineDecay(start, max(1, total_steps - up), warmup_target=lr, warmup_steps=up,
                                     alpha=1.0 / (ONECYCLE["div_factor"] * ONECYCLE["final_div_factor"]))
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
    check_float("weight_decay", weight_decay, minimum=0.0, maximum=MAX_RATE)
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


@keras.saving.register_keras_serializable(package="zoo")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy on integer labels, with ``label_smoothing``.

    Keras' ``SparseCategoricalCrossentropy`` takes no ``label_smoothing`` (and
    ``CategoricalCrossentropy`` needs one-hot labels): the labels are one-hot encoded
    inside, so ``label_smoothing=0.1`` means what it means for one-hot labels,
    ``(1 - 0.1) * onehot + 0.1 / num_classes``.
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        one_hot = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=self.from_logits,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


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
    label_smoothing = check_float("label_smoothing", label_smoothing, minimum=0.0, maximum=1.0)
    if loss in table:
        if label_smoothing:
            raise ValueError(f"`label_smoothing` applies to cross-entropy losses, not loss={loss!r}. "
                             f"Received: label_smoothing={label_smoothing!r}")
        return table[loss]()
    if loss == "binary_crossentropy":
        return losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    if loss == "categorical_crossentropy":
        return losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    if loss == "sparse_categorical_crossentropy":
        if label_smoothing:  # Keras' sparse loss has no such argument: one-hot inside
            return SparseCategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
        return losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    raise ValueError(
        f"`loss` must be one of {sorted(table) + ['binary_crossentropy', 'categorical_crossentropy', 'sparse_categorical_crossentropy']}. "
        f"Received: loss={loss!r}"
    )


def metric_names(task) -> tuple:
    """The names :func:`compile_model` logs for ``task`` with its default metrics, ``loss`` first (``fit`` and
    ``evaluate`` report them, with ``val_``/``test_`` prefixes for the other splits)."""
    check_choice("task", task, TASKS)
    return ("loss", *(metric.name for metric in _metrics(task, False, False)))


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
    layer_decay=None,
):
    """Compile ``model`` with an optimizer, schedule and loss chosen by name.

    ``task`` and ``from_logits`` are read from the output layer when not given. ``layer_decay`` in (0, 1]
    multiplies each unit's learning rate by ``layer_decay ** depth`` from the head (see
    :mod:`zoo.training.layer_decay`; ``None``: one rate for all). Returns the model.
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
    scales = None if layer_decay is None else layer_scales(model, layer_decay)  # checked before any work
    opt = make_optimizer(optimizer, lr, weight_decay=weight_decay, momentum=momentum, clipnorm=clipnorm)
    model.compile(
        optimizer=opt if scales is None else with_layer_decay(opt, scales),
        loss=make_loss(task, loss=loss, from_logits=from_logits, one_hot=one_hot, label_smoothing=label_smoothing),
        metrics=_metrics(task, from_logits, one_hot) if metrics is None else metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
