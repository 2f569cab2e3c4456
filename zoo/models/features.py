"""Multi-scale features: one output per stage, as timm's ``features_only``.

``zoo.build(name, features_only=True, out_indices=(1, 2, 3, 4))`` builds the backbone (``include_top=False``),
loads its weights, then cuts it with :func:`multi_scale_model`: output ``i`` is the map where stage ``i`` ends
(``0`` is the stem). A model with a single stage of blocks (ViT) numbers its blocks instead, and its token
sequences come back as images (:class:`zoo.layers.TokensToMap`). :func:`feature_info` tells each output's
stage, channels and reduction (input size / map size), from the model alone, so it also answers for a saved
feature model.
"""

from __future__ import annotations

import re

import keras

from zoo.blocks import stage_of, unit_of
from zoo.graph import graph_calls, producer

__all__ = ["check_out_indices", "feature_info", "feature_units", "multi_scale_model"]

_OUTPUT_NAME = re.compile(r"feature(\d+)_(.+)")
_TRANSITION = re.compile(r"stage(\d+)_(?:transition|pool\d+)(?:_|$)")  # the zoo's DenseNet; Keras' (poolN_*)


def _units_of(name):
    """The stage and block a layer belongs to, for cutting: a DenseNet transition (``stageN_transition_*``;
    ``stageN_poolM_*`` in the Keras wrapper; torchvision's ``transitionN`` between dense blocks N and N+1)
    starts stage N+1, so that stage N ends at its last dense block's full resolution, as timm's features do."""
    m = _TRANSITION.match(name)
    if m:
        return {f"stage{int(m.group(1)) + 1}"}
    return {stage_of(name), unit_of(name)} - {None}


def _exits(model):
    """``{unit: layer}``: for each stage and block, the last layer (in graph order) whose output leaves it."""
    outputs = {id(t) for t in model.outputs}
    exits = {}
    for layer, inputs, outs in graph_calls(model):
        inside = _units_of(layer.name)
        for t in inputs:
            source = producer(t)
            for unit in _units_of(source.name) - inside:
                exits[unit] = source
        if any(id(t) in outputs for t in outs):
            for unit in inside:
                exits[unit] = layer
    return exits


def feature_units(model) -> dict[int, str]:
    """``{index: unit}`` that ``out_indices`` choose from: 0 the ``stem``, ``N`` the stage ``stageN``; in a model
    with one stage of blocks (ViT), ``N`` its ``N``-th block. A unit absent from the model is left out."""
    names = []
    for layer in model.layers:
        s = stage_of(layer.name)
        if s and s not in names:
            names.append(s)
    stages = [s for s in names if s.startswith("stage")]
    if len(stages) == 1:
        blocks = [u for u in dict.fromkeys(unit_of(layer.name) for layer in model.layers)
                  if u and u.startswith(f"{stages[0]}_block")]
        units = {int(u.rsplit("_block", 1)[1]): u for u in blocks} or {1: stages[0]}
    else:
        units = {int(s[5:]): s for s in stages}
    return {0: "stem", **units} if "stem" in names else units


def check_out_indices(out_indices):
    """``out_indices`` checked before anything is built: ``None`` or a non-empty sequence of distinct ints >= 0."""
    if out_indices is None:
        return None
    if isinstance(out_indices, (str, bytes)) or not hasattr(out_indices, "__iter__"):
        raise TypeError(f"`out_indices` must be a sequence of ints. Received: out_indices={out_indices!r}")
    values = tuple(out_indices)
    if not values or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in values) \
            or len(set(values)) != len(values):
        raise ValueError(f"`out_indices` must be distinct ints >= 0, at least one. Received: out_indices={out_indices!r}")
    return values


def multi_scale_model(model, out_indices=None, *, name=None):
    """A model from ``model``'s input to the maps where the chosen units end (shared layers and weights).

    Args:
        model: a zoo model (layers named ``stem_*``, ``stageN_*``), usually built with ``include_top=False``.
        out_indices: keys of :func:`feature_units` (0 is the stem); ``None``: every stage (1 to N).
        name: the new model's name (default ``{model.name}_features``).

    Output ``i`` is named ``feature{index}_{unit}`` (an identity layer), which :func:`feature_info` reads.
    """
    from zoo.layers import TokensToMap

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    out_indices = check_out_indices(out_indices)
    units = feature_units(model)
    if not any(i > 0 for i in units):
        raise ValueError(f"Model {model.name!r} has no stages (layer names stem_/stageN_): it has no multi-scale "
                         "features. Use zoo.feature_extractor(model, layer=...) for one layer's output.")
    if out_indices is None:
        out_indices = tuple(i for i in units if i > 0)
    bad = [i for i in out_indices if i not in units]
    if bad:
        raise ValueError(f"`out_indices` {bad} not among {model.name!r}'s units "
                         f"({', '.join(f'{i}: {u}' for i, u in units.items())}). Received: out_indices={out_indices}")
    exits = _exits(model)
    image = tuple(model.inputs[0].shape[1:3])
    outputs = []
    for i in out_indices:
        layer = exits.get(units[i])
        if layer is None:
            raise ValueError(f"cannot tell where {units[i]!r} of {model.name!r} ends: no layer of it feeds another")
        out = layer.output
        if len(out.shape) == 3:  # a token sequence (ViT): back to an image of its patch grid
            out = TokensToMap.for_tokens(out, image, name=f"{units[i]}_map")(out)
        outputs.append(keras.layers.Identity(name=f"feature{i}_{units[i]}")(out))
    return keras.Model(model.inputs, outputs, name=name or f"{model.name}_features")


def feature_info(model) -> list[dict]:
    """One dict per output of ``model``: ``index`` and ``unit`` (what ``out_indices`` chose; ``None`` for a
    model :func:`multi_scale_model` did not make), ``layer``, ``channels``, ``reduction`` (the product of the
    strides before the map, as timm's; after a custom layer that reduces, input height / map height; ``None``
    when neither can be told) and ``shape`` (height, width, channels).

    Example:
        >>> features = zoo.build("resnet18", features_only=True, input_shape=(64, 64, 3))
        >>> [(f["channels"], f["reduction"]) for f in zoo.feature_info(features)]
        [(64, 4), (128, 8), (256, 16), (512, 32)]
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    height = model.inputs[0].shape[1]
    strides = None
    info = []
    for out in model.outputs:
        if len(out.shape) != 4:
            raise ValueError(f"feature_info needs image-shaped outputs (batch, height, width, channels); "
                             f"{model.name!r} has an output of shape {tuple(out.shape)}")
        layer = producer(out).name
        match = _OUTPUT_NAME.fullmatch(layer)
        size = out.shape[1]
        # the strides' product, as timm's (Inception v3's unpadded convolutions at 299 px: maps 71, 35, 17, 8;
        # 15, 7, 3, 1 at 75 px, where 75 / 15 = 5 would say 5, not 4); input / map where a custom layer reduces
        strides = _network_strides(model) if strides is None else strides
        reduction = strides.get(id(out))
        if reduction is None and height and size and height % size == 0:
            reduction = height // size
        info.append({"index": int(match.group(1)) if match else None, "unit": match.group(2) if match else None,
                     "layer": layer, "channels": int(out.shape[-1]), "reduction": reduction,
                     "shape": tuple(out.shape[1:])})
    return info


def _network_strides(model):
    """``{id(tensor): product of the strides of the layers before it}`` over the graph (the longest product where
    branches meet), for maps whose size does not divide the input's: None for a tensor after a layer that reduces
    without a ``strides`` attribute (a custom layer), where the product cannot be told."""
    strides = {}
    for layer, inputs, outputs in graph_calls(model):
        before = [strides.get(id(t), 1) for t in inputs]
        own = getattr(layer, "strides", 1)
        own = own[0] if isinstance(own, (tuple, list)) else own
        custom = not hasattr(layer, "strides") and type(layer).__module__.split(".")[0] != "keras"
        for t in outputs:
            strides[id(t)] = None if custom or None in before else max(before, default=1) * int(own)
    return strides
