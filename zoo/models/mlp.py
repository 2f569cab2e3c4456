"""Multi-layer perceptrons (fully connected networks) with a task head.

Reference: Rumelhart, Hinton & Williams, "Learning representations by
back-propagating errors", Nature 1986.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import variant
from zoo.utils import (
    MAX_CLASSES,
    activation_units,
    check_activation,
    check_bool,
    check_choice,
    check_float,
    check_initializer,
    check_input_shape,
    check_int,
    check_int_sequence,
    check_weights_fit,
)

# the output activation of each task (zoo.utils.TASKS, plus "logits": a linear head)
TASK_ACTIVATIONS = {
    "multiclass": "softmax",
    "binary": "sigmoid",
    "regression": None,
    "logits": None,
}


def dense_block(x, units, *, act, initializer, regularizer, batch_norm, dropout, name):
    """Dense -> (BatchNorm) -> activation -> (Dropout)."""
    x = layers.Dense(
        activation_units(act, units),  # maxout: pieces x units
        use_bias=not batch_norm,
        kernel_initializer=initializer,
        kernel_regularizer=regularizer,
        name=f"{name}_dense",
    )(x)
    if batch_norm:
        x = blocks.batch_norm(x, name=f"{name}_bn")
    x = blocks.activation(x, act, name=name)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


_PARAMS = (("input_shape", None), ("num_classes", None), ("hidden_units", (128, 64)), ("activation", "relu"),
           ("kernel_initializer", "glorot_uniform"), ("dropout", 0.0), ("batch_norm", False), ("l1", 0.0), ("l2", 0.0),
           ("task", "multiclass"), ("num_outputs", None), ("include_top", True), ("pooling", None),
           ("classifier_activation", None), ("weights", None))


def _mlp(*, input_shape, num_classes, hidden_units, activation, kernel_initializer, dropout, batch_norm, l1, l2, task,
         num_outputs, include_top, pooling, classifier_activation, name):
    if input_shape is not None and not isinstance(input_shape, (str, bytes)) and hasattr(input_shape, "__len__"):
        rank = len(input_shape) if len(input_shape) in (1, 2, 3) else 1
    else:
        rank = 1
    shape = check_input_shape(input_shape, default=(784,), rank=rank)
    task = check_choice("task", task, tuple(TASK_ACTIVATIONS))
    num_classes = check_int("num_classes", num_classes, maximum=MAX_CLASSES, allow_none=True)
    num_outputs = check_int("num_outputs", num_outputs, maximum=MAX_CLASSES, allow_none=True)
    hidden_units = check_int_sequence("hidden_units", hidden_units)
    act = check_activation("activation", activation)
    init = check_initializer("kernel_initializer", kernel_initializer)
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    check_bool("batch_norm", batch_norm)
    check_bool("include_top", include_top)
    l1 = check_float("l1", l1, minimum=0.0)
    l2 = check_float("l2", l2, minimum=0.0)
    check_choice("pooling", pooling, (None, "avg", "max"))
    if task == "binary" and num_classes not in (None, 1, 2):
        raise ValueError(
            "task='binary' has one sigmoid output; `num_classes` must be 2 (or None). "
            f"Received: num_classes={num_classes}"
        )
    out_act = TASK_ACTIVATIONS[task] if classifier_activation is None else classifier_activation
    if classifier_activation is not None:
        check_choice("classifier_activation", classifier_activation, ("softmax", "sigmoid", "linear"))
    units = {"binary": 1, "regression": num_outputs or 1}.get(task, num_classes or 10)
    widths = [math.prod(shape) if None not in shape else 1, *hidden_units, units if include_top else 0]
    check_weights_fit(sum(a * b for a, b in zip(widths, widths[1:])),
                      what=f"input_shape={shape}, hidden_units={hidden_units} and {units} output(s)")

    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    inputs = keras.Input(shape=shape, name="input")
    x = inputs
    if len(shape) > 1:
        x = layers.Flatten(name="stem_flatten")(x)
    for i, u in enumerate(hidden_units, start=1):
        x = dense_block(
            x, u, act=act, initializer=init, regularizer=regularizer,
            batch_norm=batch_norm, dropout=dropout, name=f"stage{i}",
        )
    if include_top:
        x = layers.Dense(
            units,
            activation=None if out_act == "linear" else out_act,
            kernel_initializer=init,
            kernel_regularizer=regularizer,
            dtype="float32",
            name="head_predictions",
        )(x)
    return keras.Model(inputs, x, name=name)


@variant(
    card=dict(
        family="mlp",
        default_input_shape=(784,),
        min_input_size=None,
        reference="Rumelhart, Hinton & Williams, Nature 1986",
        tags=("tabular", "stages"),
        test_kwargs={"input_shape": (8,), "hidden_units": (16, 8)},
    ),
    params=_PARAMS,
    checks=False,  # the input's rank and the task decide the input shape and the classes: _mlp checks them
)
def mlp(**kw):
    """A fully connected network: [Dense -> (BN) -> act -> (Dropout)] x K -> output.

    Args:
        input_shape: ``(features,)``; image shapes are flattened first.
        num_classes: classes for ``multiclass``/``logits`` tasks (default 10);
            ``None``, 1 or 2 for ``binary``.
        hidden_units: units of each hidden layer, e.g. ``(64, 64)``.
        activation: relu, leaky_relu, elu, selu, gelu, swish, tanh, sigmoid, ...
        kernel_initializer: lecun/glorot/he, with ``_uniform`` or ``_normal``.
        dropout: rate after each hidden layer.
        batch_norm: BatchNorm before each hidden activation.
        l1, l2: weight penalties (both > 0 gives elastic net).
        task: ``multiclass`` (softmax), ``binary`` (one sigmoid unit),
            ``regression`` (``num_outputs`` linear units) or ``logits``.
        num_outputs: output units for regression (default 1).
        include_top: ``False`` returns the last hidden layer.
        pooling: unused (no spatial axes); accepted for a uniform API.
        classifier_activation: overrides the task's output activation.
        weights: ``None`` or a local weights file.

    Returns:
        A functional ``keras.Model``.

    Example:
        >>> model = mlp(input_shape=(2,), hidden_units=(16, 16), task="binary")
    """
    return _mlp(**kw)
