"""The generic ConvNet pattern INPUT -> [[CONV -> ACT] x N -> POOL?] x M -> [FC -> ACT] x K -> FC.

Reference: the CS231n "ConvNet architectures" pattern, as taught in introductory courses.
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.models._variants import variant
from zoo.utils import (
    check_activation,
    check_bool,
    check_choice,
    check_float,
    check_input_shape,
    check_int,
    check_int_sequence,
    MAX_INPUT_SIDE,
    MAX_LAYERS,
    check_width,
    scaled,
)


def _spatial_size(size, *, filters, convs, kernel, strides, padding, dilation, pool):
    """The map side after the conv stack (Keras' output-size rules), to refuse inputs it would shrink to nothing."""
    span = (kernel - 1) * dilation + 1
    for _ in filters:
        for _ in range(convs):
            size = -(-size // strides) if padding == "same" else (size - span) // strides + 1
            if size < 1:
                return size
        size = size // 2 if pool else size
    return size


def _convnet(*, input_shape, num_classes, filters, convs_per_stage, kernel_size, activation, pool, batch_norm,
             dropout, dense_units, flatten, width, include_top, pooling, classifier_activation, name,
             strides=1, padding="same", dilation_rate=1, l1=0.0, l2=0.0):
    filters = check_int_sequence("filters", filters, allow_empty=False)
    n = check_int("convs_per_stage", convs_per_stage, maximum=MAX_LAYERS)
    k = check_int("kernel_size", kernel_size, maximum=MAX_INPUT_SIDE)
    act = check_activation("activation", activation)
    check_choice("pool", pool, ("max", "avg", None))
    check_bool("batch_norm", batch_norm)
    check_bool("flatten", flatten)
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    dense_units = check_int_sequence("dense_units", dense_units)
    width = check_width(width)
    strides = check_int("strides", strides, maximum=MAX_INPUT_SIDE)
    check_choice("padding", padding, ("same", "valid"))
    dilation = check_int("dilation_rate", dilation_rate, maximum=MAX_INPUT_SIDE)
    if strides > 1 and dilation > 1:
        raise ValueError(f"Keras convolutions take `strides` > 1 or `dilation_rate` > 1, not both. "
                         f"Received: strides={strides}, dilation_rate={dilation}")
    l1, l2 = check_float("l1", l1, minimum=0.0), check_float("l2", l2, minimum=0.0)
    check_input_shape(input_shape, default=input_shape, min_size=2 ** len(filters) if pool else 1)
    for axis in (0, 1):
        if input_shape[axis] is not None and _spatial_size(input_shape[axis], filters=filters, convs=n, kernel=k,
                                                           strides=strides, padding=padding, dilation=dilation,
                                                           pool=pool) < 1:
            raise ValueError(f"`input_shape` {tuple(input_shape)} is too small for {len(filters)} stage(s) of {n} "
                             f"conv(s) (kernel {k}, strides {strides}, padding {padding!r}, dilation {dilation}"
                             f"{', pooling' if pool else ''}): the maps would shrink to nothing")
    if len(filters) * n > MAX_LAYERS:
        raise ValueError(f"`filters` and `convs_per_stage` give {len(filters) * n:,} conv layers, more than "
                         f"{MAX_LAYERS:,}. Received: filters={filters}, convs_per_stage={n}")
    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for m, f in enumerate(filters, start=1):
        for i in range(1, n + 1):
            x = blocks.conv_bn_act(x, scaled(f, width), k, strides=strides, padding=padding, dilation_rate=dilation,
                                   batch_norm_=batch_norm, act=act, kernel_regularizer=regularizer,
                                   name=f"stage{m}_conv{i}")
        x = blocks.pool(x, pool, pool_size=2, name=f"stage{m}")
    x = blocks.classifier_head(
        x,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        flatten=flatten,
        hidden_units=tuple(scaled(u, width) for u in dense_units),
        act=act,
        dropout=dropout,
    )
    return keras.Model(inputs, x, name=name)


@variant(
    card=dict(
        family="convnet",
        default_input_shape=(32, 32, 3),
        min_input_size=4,  # two 2x2 pools with the default two stages
        reference="CS231n pattern INPUT->[[CONV->RELU]*N->POOL?]*M->[FC->RELU]*K->FC",
        tags=("image", "pooling", "stages", "width"),
        test_kwargs={"input_shape": (16, 16, 3), "filters": (8, 16), "dense_units": (16,), "batch_norm": True},
    ),
    # The minimum input size follows `filters` and `pool`: _convnet checks it once they are checked.
    checks={"min_size": None},
    params=(("input_shape", None), ("num_classes", 10), ("filters", (32, 64)), ("convs_per_stage", 2),
            ("kernel_size", 3), ("activation", "relu"), ("pool", "max"), ("batch_norm", False), ("dropout", 0.0),
            ("dense_units", (128,)), ("flatten", True), ("width", 1.0), ("strides", 1), ("padding", "same"),
            ("dilation_rate", 1), ("l1", 0.0), ("l2", 0.0), ("include_top", True), ("pooling", None),
            ("classifier_activation", "softmax"), ("weights", None)),
)
def convnet(**kw):
    """A plain ConvNet: M stages of N (conv -> [BN] -> act), each followed by a 2x2 pool.

    Args:
        filters: filters of each stage (its length is M).
        convs_per_stage: N, conv layers per stage.
        kernel_size: square kernel size of every conv.
        activation: activation after each conv and hidden FC layer.
        pool: ``"max"``, ``"avg"`` or ``None`` (no pooling) after each stage.
        batch_norm: BatchNorm between each conv and its activation.
        dropout: rate after each hidden FC layer.
        dense_units: units of the K hidden FC layers.
        flatten: ``True`` flattens the last feature map, ``False`` global-average-pools it.
        width: multiplier on the filters and hidden units.
        strides, padding, dilation_rate: of every conv (``"same"`` or ``"valid"``; strides and dilation
            cannot both exceed 1, as in Keras).
        l1, l2: weight penalties on every conv kernel (elastic net when both are set).
        kernel_initializer: every conv's and dense layer's initializer (``he``, ``glorot``, ``normal``, ...).

    Example:
        >>> model = convnet(filters=(16, 32), convs_per_stage=1, dense_units=(64,))
    """
    return _convnet(**kw)
