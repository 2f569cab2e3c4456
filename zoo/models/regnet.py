"""RegNet X and Y: torchvision's ``regnet_x_400mf`` ... ``regnet_x_32gf`` and ``regnet_y_400mf`` ... ``regnet_y_128gf``.

References:
    Radosavovic, Kosaraju, Girshick, He & Dollar, "Designing Network Design Spaces", CVPR 2020
    (arXiv:2003.13678); torchvision's ``regnet.py``.

Layer names: ``stem_*`` (torchvision's ``stem``); the residual bottleneck blocks ``stage{s}_block{b}_*``, block
``b`` (from 1) of torchvision's ``trunk_output.block{s}``, with the parts of its bottleneck transform ``f``
(``_a_*``: 1x1, ``_b_*``: grouped 3x3, ``_se_*``: RegNet Y's squeeze-excitation, ``_c_*``: 1x1) and the
projection shortcut ``_proj_*``; ``head_*``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.models.mobilenet import make_divisible
from zoo.utils import check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's BlockParams.from_init_params arguments: name -> (depth, w_0, w_a, w_m, group width, SE ratio).
REGNET_PARAMS = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16, None),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16, None),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24, None),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48, None),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120, None),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128, None),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168, None),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8, 0.25),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16, 0.25),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24, 0.25),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24, 0.25),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56, 0.25),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112, 0.25),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232, 0.25),
    "regnet_y_128gf": (27, 456, 160.83, 2.52, 264, 0.25),
}
STEM_WIDTH = 32
QUANT = 8  # block widths are multiples of 8
BN = (1e-5, 0.9)  # torchvision's BatchNorm2d(eps=1e-5, momentum=0.1); Keras' momentum is 1 - torch's
MIN_INPUT_SIZE = 1  # every convolution pads enough to keep a 1x1 map alive
# the registry tests run the 400MF models (X and Y: every block kind); the others share their code
SLOW = frozenset({"regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf",
                  "regnet_x_32gf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf"})

_BLOCK = "trunk_output.block{0}.block{0}-{1-}"
KEY_RULES = register_key_rules("regnet", KeyRules(
    modules=(
        (r"stem_conv", "stem.0"), (r"stem_bn", "stem.1"),
        (r"stage(\d+)_block(\d+)_(a|b|c)_conv", _BLOCK + ".f.{2}.0"),
        (r"stage(\d+)_block(\d+)_(a|b|c)_bn", _BLOCK + ".f.{2}.1"),
        (r"stage(\d+)_block(\d+)_se_(fc1|fc2)", _BLOCK + ".f.se.{2}"),
        (r"stage(\d+)_block(\d+)_proj_conv", _BLOCK + ".proj.0"),
        (r"stage(\d+)_block(\d+)_proj_bn", _BLOCK + ".proj.1"),
        (r"head_predictions", "fc"),
    ),
    head_modules=("fc",),
    signature=r"stage\d+_block\d+_a_conv",
))


def block_params(depth, w_0, w_a, w_m, group_width):
    """torchvision's ``BlockParams.from_init_params`` (bottleneck multiplier 1): per stage ``(depth, width,
    group width)``. The widths ``w_0 + w_a * i`` of the ``depth`` blocks are quantised in log space to
    ``w_0 * w_m ** k`` and to multiples of 8 (in float32, as torch computes them); blocks of one width form a
    stage; each stage width is then made a multiple of its group width (at most the stage width)."""
    widths_cont = np.arange(depth, dtype=np.float32) * np.float32(w_a) + np.float32(w_0)
    capacity = np.round(np.log(widths_cont / np.float32(w_0)) / np.float32(math.log(w_m)))
    widths = (np.round(np.float32(w_0) * np.power(np.float32(w_m), capacity) / np.float32(QUANT)) * QUANT)
    widths = [int(w) for w in widths.astype(np.int32)]
    stages = []
    for w in widths:
        if stages and stages[-1][1] == w:
            stages[-1][0] += 1
        else:
            stages.append([1, w])
    return tuple(_compatible(n, w, group_width) for n, w in stages)


def _compatible(depth, width, group_width):
    """torchvision's ``_adjust_widths_groups_compatibilty`` for one stage (bottleneck multiplier 1)."""
    group_width = min(group_width, width)
    return depth, make_divisible(width, group_width), group_width


def _conv_bn(x, filters, kernel_size, *, strides=1, groups=1, act=None, name):
    """torchvision's ``Conv2dNormActivation``: a bias-free convolution padded (k - 1) / 2, BatchNorm, ``act``."""
    x = blocks.conv2d(x, filters, kernel_size, strides=strides, padding=(kernel_size - 1) // 2, groups=groups,
                      name=f"{name}_conv")
    x = blocks.batch_norm(x, epsilon=BN[0], momentum=BN[1], name=f"{name}_bn")
    return x if act is None else layers.Activation(act, name=f"{name}_{act}")(x)


def _squeeze_excitation(x, squeeze, *, name):
    """torchvision's ``SqueezeExcitation``: mean, 1x1 conv, ReLU, 1x1 conv, sigmoid, scale."""
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = blocks.conv2d(s, squeeze, 1, use_bias=True, kernel_initializer="glorot_uniform", name=f"{name}_fc1")
    s = layers.Activation("relu", name=f"{name}_relu")(s)
    s = blocks.conv2d(s, x.shape[-1], 1, use_bias=True, kernel_initializer="glorot_uniform", name=f"{name}_fc2")
    s = layers.Activation("sigmoid", name=f"{name}_sigmoid")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def res_bottleneck_block(x, width, *, stride, group_width, squeeze, name):
    """torchvision's ``ResBottleneckBlock``: 1x1, grouped 3x3 (strided; ``width // group_width`` groups),
    RegNet Y's squeeze-excitation to ``squeeze`` channels (none: RegNet X), linear 1x1; plus the input, through
    a 1x1 strided projection and BatchNorm when the shape changes; ReLU."""
    y = _conv_bn(x, width, 1, act="relu", name=f"{name}_a")
    y = _conv_bn(y, width, 3, strides=stride, groups=width // group_width, act="relu", name=f"{name}_b")
    if squeeze:
        y = _squeeze_excitation(y, squeeze, name=f"{name}_se")
    y = _conv_bn(y, width, 1, name=f"{name}_c")
    shortcut = x
    if x.shape[-1] != width or stride != 1:
        shortcut = _conv_bn(x, width, 1, strides=stride, name=f"{name}_proj")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_relu")(y)


def _regnet(variant_name, *, input_shape, num_classes, include_top, pooling, classifier_activation, width, name):
    width = check_width(width)
    depth, w_0, w_a, w_m, group_width, se_ratio = REGNET_PARAMS[variant_name]
    # `width` scales the stem, the stage widths and the group widths; the stages are made compatible again as
    # torchvision does (width 1 keeps its figures)
    full = block_params(depth, w_0, w_a, w_m, group_width)
    stages = [_compatible(n, scaled(w, width), scaled(g, width)) for n, w, g in full]
    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv_bn(inputs, scaled(STEM_WIDTH, width), 3, strides=2, act="relu", name="stem")
    full_in = STEM_WIDTH
    for s, ((n, w, g), (_, full_width, _)) in enumerate(zip(stages, full), start=1):
        for b in range(1, n + 1):
            # RegNet Y squeezes to `se_ratio` of the block's input; a narrow model keeps at least torchvision's
            # count (its one or two units would often start dead after the ReLU, their weights without gradient)
            squeeze = se_ratio and max(int(round(se_ratio * x.shape[-1])), int(round(se_ratio * full_in)))
            x = res_bottleneck_block(x, w, stride=2 if b == 1 else 1, group_width=g, squeeze=squeeze,
                                     name=f"stage{s}_block{b}")
            full_in = full_width
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "stages", "residual", "batch_norm", "width", "imagenet")


def _card(variant_name):
    return dict(
        family="regnet",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="Radosavovic et al., Designing Network Design Spaces, CVPR 2020; torchvision regnet layout",
        tags=_TAGS + (("slow",) if variant_name in SLOW else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.125},
    )


_ARGS_DOC = """
    Args:
        width: multiplier on the stem, stage and group widths (1.0 is torchvision's; the stage widths stay
            multiples of their group widths; RegNet Y's squeeze-excitation never narrower than torchvision's).
""" + STAGED_DOC_TAIL
_PARAMS = keras_params(1000, ("width", 1.0))


@variant(card=_card("regnet_x_400mf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_x_400mf(**kw):
    """RegNetX-400MF, layer for layer as torchvision's ``regnet_x_400mf`` (5,495,976 parameters)."""
    return _regnet("regnet_x_400mf", **kw)


@variant(card=_card("regnet_x_800mf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_x_800mf(**kw):
    """RegNetX-800MF, layer for layer as torchvision's ``regnet_x_800mf`` (7,259,656 parameters)."""
    return _regnet("regnet_x_800mf", **kw)


@variant(card=_card("regnet_x_1_6gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_x_1_6gf(**kw):
    """RegNetX-1.6GF, layer for layer as torchvision's ``regnet_x_1_6gf`` (9,190,136 parameters)."""
    return _regnet("regnet_x_1_6gf", **kw)


@variant(card=_card("regnet_x_3_2gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_x_3_2gf(**kw):
    """RegNetX-3.2GF, layer for layer as torchvision's ``regnet_x_3_2gf`` (15,296,552 parameters)."""
    return _regnet("regnet_x_3_2gf", **kw)


@variant(card=_card("regnet_x_8gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_x_8gf(**kw):
    """RegNetX-8GF, layer for layer as torchvision's ``regnet_x_8gf`` (39,572,648 parameters)."""
    return _regnet("regnet_x_8gf", **kw)


@variant(card=_card("regnet_x_16gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_x_16gf(**kw):
    """RegNetX-16GF, layer for layer as torchvision's ``regnet_x_16gf`` (54,278,536 parameters)."""
    return _regnet("regnet_x_16gf", **kw)


@variant(card=_card("regnet_x_32gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_x_32gf(**kw):
    """RegNetX-32GF, layer for layer as torchvision's ``regnet_x_32gf`` (107,811,560 parameters)."""
    return _regnet("regnet_x_32gf", **kw)


@variant(card=_card("regnet_y_400mf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_y_400mf(**kw):
    """RegNetY-400MF, layer for layer as torchvision's ``regnet_y_400mf`` (4,344,144 parameters)."""
    return _regnet("regnet_y_400mf", **kw)


@variant(card=_card("regnet_y_800mf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_y_800mf(**kw):
    """RegNetY-800MF, layer for layer as torchvision's ``regnet_y_800mf`` (6,432,512 parameters)."""
    return _regnet("regnet_y_800mf", **kw)


@variant(card=_card("regnet_y_1_6gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_y_1_6gf(**kw):
    """RegNetY-1.6GF, layer for layer as torchvision's ``regnet_y_1_6gf`` (11,202,430 parameters)."""
    return _regnet("regnet_y_1_6gf", **kw)


@variant(card=_card("regnet_y_3_2gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_y_3_2gf(**kw):
    """RegNetY-3.2GF, layer for layer as torchvision's ``regnet_y_3_2gf`` (19,436,338 parameters)."""
    return _regnet("regnet_y_3_2gf", **kw)


@variant(card=_card("regnet_y_8gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_y_8gf(**kw):
    """RegNetY-8GF, layer for layer as torchvision's ``regnet_y_8gf`` (39,381,472 parameters)."""
    return _regnet("regnet_y_8gf", **kw)


@variant(card=_card("regnet_y_16gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_y_16gf(**kw):
    """RegNetY-16GF, layer for layer as torchvision's ``regnet_y_16gf`` (83,590,140 parameters)."""
    return _regnet("regnet_y_16gf", **kw)


@variant(card=_card("regnet_y_32gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_y_32gf(**kw):
    """RegNetY-32GF, layer for layer as torchvision's ``regnet_y_32gf`` (145,046,770 parameters)."""
    return _regnet("regnet_y_32gf", **kw)


@variant(card=_card("regnet_y_128gf"), params=_PARAMS, doc=_ARGS_DOC)
def regnet_y_128gf(**kw):
    """RegNetY-128GF, layer for layer as torchvision's ``regnet_y_128gf`` (644,812,894 parameters)."""
    return _regnet("regnet_y_128gf", **kw)
