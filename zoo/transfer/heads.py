"""Heads: the features a backbone gives, and a new head for a new task on top of them."""

from __future__ import annotations

import keras
import numpy as np

from zoo import blocks
from zoo.graph import inbound_layers
from zoo.transfer.stages import _layers, stage_of
from zoo.utils import (MAX_CLASSES, TASKS, check_activation, check_choice, check_float, check_int, check_int_sequence,
                       check_weights_fit)

__all__ = ["HEAD_TASKS", "feature_extractor", "replace_head"]

HEAD_TASKS = (*TASKS, "logits")  # "logits": a linear head for a loss with from_logits=True


def _feature_layer(model, layer=None):
    """The layer whose output feeds the head: named, else before the first ``head_*`` layer,
    else the last layer with a spatial (4-D) output, else the one before the last Dense."""
    layers_ = _layers(model)
    names = [la.name for la in layers_]
    if layer is not None:
        if layer not in names:
            raise ValueError(f"Unknown layer {layer!r} in {model.name!r}. Received: layer={layer!r}; "
                             f"last layers are {names[-6:]}")
        return model.get_layer(layer)
    heads = [i for i, la in enumerate(layers_) if stage_of(la.name) == "head"]
    if heads:
        feeding = inbound_layers(layers_[heads[0]])
        return feeding[0] if feeding else layers_[heads[0] - 1]
    for la in reversed(layers_):
        if len(la.output.shape) == 4:
            return la
    dense = [i for i, la in enumerate(layers_) if isinstance(la, keras.layers.Dense)]
    if len(dense) >= 1 and dense[-1] > 0:
        return layers_[dense[-1] - 1]
    raise ValueError(f"Could not find a feature layer in {model.name!r}; pass `layer=`.")


def feature_extractor(model, *, layer=None, pooling=None, name=None):
    """A model from ``model``'s input to its features (shared layers, shared weights).

    Args:
        layer: the feature layer's name (default: what feeds the head).
        pooling: ``None``, ``"avg"`` or ``"max"`` global pooling of 4-D features.
    """
    check_choice("pooling", pooling, (None, "avg", "max"))
    out = _feature_layer(model, layer).output
    if len(out.shape) == 4 and pooling:
        pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
        out = pool(name=f"features_{pooling}pool")(out)
    return keras.Model(model.inputs, out, name=name or f"{model.name}_features")


def replace_head(model, num_classes, *, task="multiclass", hidden_units=(), dropout=0.0, activation="relu",
                 pooling="avg", layer=None, name=None):
    """Cut ``model`` at its feature layer and put a new head for ``num_classes`` on it.

    Works on every zoo model, every keras.applications wrapper and any
    functional model (cut at ``layer`` or at the detected feature layer).
    The backbone's layers (and weights) are shared with ``model``.

    Args:
        num_classes: output classes (``multiclass``/``logits``), 1-2 for
            ``binary`` (one sigmoid unit), or outputs for ``regression``.
        task: ``multiclass`` (softmax), ``binary`` (sigmoid), ``regression``
            (linear) or ``logits`` (linear, for from_logits losses).
        hidden_units: hidden Dense layers of the new head.
        dropout: dropout rate before the prediction layer (and after each hidden layer).
        activation: activation of hidden layers.
        pooling: ``"avg"``, ``"max"`` or ``"flatten"`` for 4-D features.

    Example:
        >>> new = replace_head(zoo.build("resnet18", input_shape=(32, 32, 3)), 5, dropout=0.2)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    num_classes = check_int("num_classes", num_classes, maximum=MAX_CLASSES)  # the bound zoo.build has
    task = check_choice("task", task, HEAD_TASKS)
    if task == "binary" and num_classes > 2:
        raise ValueError(f"task='binary' has one sigmoid unit; `num_classes` must be 1 or 2. "
                         f"Received: num_classes={num_classes}")
    hidden_units = check_int_sequence("hidden_units", hidden_units)
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    check_activation("activation", activation)
    check_choice("pooling", pooling, ("avg", "max", "flatten"))
    x = _feature_layer(model, layer).output
    if len(x.shape) == 4:
        x = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
             "flatten": keras.layers.Flatten}[pooling](name=f"head_{pooling}")(x)
    units = 1 if task == "binary" else num_classes
    widths = [int(np.prod(x.shape[1:])), *hidden_units, units]  # the head's weights, counted before any is made
    check_weights_fit(model.count_params() + sum(a * b + b for a, b in zip(widths, widths[1:])),
                      what=f"{model.name!r} with a head of num_classes={num_classes}, hidden_units={hidden_units}")
    out_act = {"multiclass": "softmax", "binary": "sigmoid"}.get(task)
    x = blocks.classifier_head(x, num_classes=units, classifier_activation=out_act, hidden_units=hidden_units,
                               act=activation, dropout=dropout)
    return keras.Model(model.inputs, x, name=name or model.name)
