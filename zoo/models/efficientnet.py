"""EfficientNet B0-B7 and V2-S/M/L: torchvision's ``efficientnet_b0`` ... ``efficientnet_b7`` and
``efficientnet_v2_s``, ``efficientnet_v2_m``, ``efficientnet_v2_l``.

References:
    Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019
    (arXiv:1905.11946); Tan & Le, "EfficientNetV2: Smaller Models and Faster Training", ICML 2021
    (arXiv:2104.00298); torchvision's ``efficientnet.py``.

Layer names: ``stem_*`` (torchvision's ``features.0``); the MBConv and FusedMBConv blocks ``stage{s}_block{b}_*``,
where stage ``s`` is the block's index in torchvision's ``features`` (one row of the setting) and ``b`` counts its
blocks from 1 (so ``stage{s}_block{b}`` is ``features.{s}.{b-1}``); the last 1x1 convolution of ``features`` is
``stage{s}_final{k}_*`` in the last stage (``features.{k}``); ``head_*``.
"""

from __future__ import annotations

import math
import re

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.models.mobilenet import _bn_or_conv, _conv_bn, _features, _squeeze_excitation, make_divisible
from zoo.utils import check_float, check_width
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's settings, one row a stage of `features`: (block, expansion ratio, kernel, first stride, input
# channels, output channels, blocks); "mb" is MBConv (depthwise, squeeze-excitation), "fused" FusedMBConv.
V1_SETTING = (("mb", 1, 3, 1, 32, 16, 1), ("mb", 6, 3, 2, 16, 24, 2), ("mb", 6, 5, 2, 24, 40, 2),
              ("mb", 6, 3, 2, 40, 80, 3), ("mb", 6, 5, 1, 80, 112, 3), ("mb", 6, 5, 2, 112, 192, 4),
              ("mb", 6, 3, 1, 192, 320, 1))
V2_S_SETTING = (("fused", 1, 3, 1, 24, 24, 2), ("fused", 4, 3, 2, 24, 48, 4), ("fused", 4, 3, 2, 48, 64, 4),
                ("mb", 4, 3, 2, 64, 128, 6), ("mb", 6, 3, 1, 128, 160, 9), ("mb", 6, 3, 2, 160, 256, 15))
V2_M_SETTING = (("fused", 1, 3, 1, 24, 24, 3), ("fused", 4, 3, 2, 24, 48, 5), ("fused", 4, 3, 2, 48, 80, 5),
                ("mb", 4, 3, 2, 80, 160, 7), ("mb", 6, 3, 1, 160, 176, 14), ("mb", 6, 3, 2, 176, 304, 18),
                ("mb", 6, 3, 1, 304, 512, 5))
V2_L_SETTING = (("fused", 1, 3, 1, 32, 32, 4), ("fused", 4, 3, 2, 32, 64, 7), ("fused", 4, 3, 2, 64, 96, 7),
                ("mb", 4, 3, 2, 96, 192, 10), ("mb", 6, 3, 1, 192, 224, 19), ("mb", 6, 3, 2, 224, 384, 25),
                ("mb", 6, 3, 1, 384, 640, 7))
# BatchNorm (epsilon, Keras momentum = 1 - torch's): torch's defaults for B0-B4, (1e-3, 0.01) for B5-B7,
# eps 1e-3 for V2.
BN_V1, BN_V1_LARGE, BN_V2 = (1e-5, 0.9), (1e-3, 0.99), (1e-3, 0.9)
# Per variant: setting, width_mult, depth_mult, classifier dropout, BatchNorm, last channels (None: 4 x the
# last stage's), the eval crop of torchvision's weights.
VARIANTS = {
    "efficientnet_b0": (V1_SETTING, 1.0, 1.0, 0.2, BN_V1, None, 224),
    "efficientnet_b1": (V1_SETTING, 1.0, 1.1, 0.2, BN_V1, None, 240),
    "efficientnet_b2": (V1_SETTING, 1.1, 1.2, 0.3, BN_V1, None, 288),
    "efficientnet_b3": (V1_SETTING, 1.2, 1.4, 0.3, BN_V1, None, 300),
    "efficientnet_b4": (V1_SETTING, 1.4, 1.8, 0.4, BN_V1, None, 380),
    "efficientnet_b5": (V1_SETTING, 1.6, 2.2, 0.4, BN_V1_LARGE, None, 456),
    "efficientnet_b6": (V1_SETTING, 1.8, 2.6, 0.5, BN_V1_LARGE, None, 528),
    "efficientnet_b7": (V1_SETTING, 2.0, 3.1, 0.5, BN_V1_LARGE, None, 600),
    "efficientnet_v2_s": (V2_S_SETTING, 1.0, 1.0, 0.2, BN_V2, 1280, 384),
    "efficientnet_v2_m": (V2_M_SETTING, 1.0, 1.0, 0.3, BN_V2, 1280, 480),
    "efficientnet_v2_l": (V2_L_SETTING, 1.0, 1.0, 0.4, BN_V2, 1280, 480),
}
MAX_DEPTH = 16.0  # on the variant's repeats: B7's 55 blocks become at most 880
STOCHASTIC_DEPTH = 0.2  # torchvision's stochastic_depth_prob: the last block's rate approaches it
MIN_INPUT_SIZE = 1  # every convolution pads enough to keep a 1x1 map alive

# torchvision's state-dict keys: block b of stage s is `features.{s}.{b-1}.block`, a Sequential of the parts the
# block has, in this order (MBConv: expansion when it widens, depthwise, squeeze-excitation, projection; FusedMBConv:
# a k x k expansion and a projection, or one k x k convolution when it does not widen).
_PARTS = ("expand", "fused", "dw", "se", "project")


def _block(g, names):
    block, part, kind = g
    stage, index = re.fullmatch(r"stage(\d+)_block(\d+)", block).groups()
    present = [p for p in _PARTS if f"{block}_{p}_{'reduce' if p == 'se' else 'conv'}" in names]
    prefix = f"features.{stage}.{int(index) - 1}.block.{present.index(part)}"
    if part == "se":
        return f"{prefix}.fc{'1' if kind == 'reduce' else '2'}"
    return f"{prefix}.{_bn_or_conv(kind)}"


KEY_RULES = register_key_rules("efficientnet", KeyRules(
    modules=(
        (r"stem_(conv|bn)", lambda g, names: f"features.0.{_bn_or_conv(g[0])}"),
        (r"(stage\d+_block\d+)_(expand|fused|dw|project)_(conv|bn)", _block),
        (r"(stage\d+_block\d+)_(se)_(reduce|expand)", _block),
        (r"stage\d+_final(\d+)_(conv|bn)", _features),
        (r"head_predictions", "classifier.1"),
    ),
    head_modules=("classifier",),
    signature=r"stage\d+_block\d+_se_silu",
))


def _mbconv(x, out, *, kind, expand_ratio, kernel_size, stride, drop_rate, bn, name):
    """torchvision's ``MBConv`` (``kind="mb"``: 1x1 expansion when it widens, depthwise k x k, squeeze-excitation
    to a quarter of the block's input, linear 1x1 projection) or ``FusedMBConv`` (``"fused"``: a k x k expansion and
    a linear 1x1 projection, or one k x k convolution with SiLU when it does not widen); SiLU throughout; when
    stride 1 keeps the channels, the branch goes through stochastic depth and the input is added."""
    channels = x.shape[-1]
    expanded = make_divisible(channels * expand_ratio)
    y = x
    if kind == "fused" and expanded == channels:
        y = _conv_bn(y, out, kernel_size, strides=stride, act="silu", bn=bn, name=f"{name}_fused")
    elif kind == "fused":
        y = _conv_bn(y, expanded, kernel_size, strides=stride, act="silu", bn=bn, name=f"{name}_expand")
        y = _conv_bn(y, out, 1, bn=bn, name=f"{name}_project")
    else:
        if expanded != channels:
            y = _conv_bn(y, expanded, 1, act="silu", bn=bn, name=f"{name}_expand")
        y = _conv_bn(y, None, kernel_size, strides=stride, depthwise=True, act="silu", bn=bn, name=f"{name}_dw")
        y = _squeeze_excitation(y, max(1, channels // 4), act="silu", gate="sigmoid", name=f"{name}_se")
        y = _conv_bn(y, out, 1, bn=bn, name=f"{name}_project")
    if stride == 1 and channels == out:
        # torchvision's StochasticDepth(p, "row"): each sample's branch dropped with probability p, the kept ones
        # scaled by 1 / (1 - p); the identity at inference (a built-in layer: saved models load without the zoo)
        y = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_stochastic_depth")(y)
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _efficientnet(variant_name, *, input_shape, num_classes, include_top, pooling, classifier_activation, width,
                  depth, dropout, stochastic_depth, name):
    setting, width_mult, depth_mult, _, bn, last, _ = VARIANTS[variant_name]
    width = check_width(width) * width_mult
    depth = check_float("depth", depth, minimum=0.0, maximum=MAX_DEPTH, min_inclusive=False) * depth_mult
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    stochastic_depth = check_float("stochastic_depth", stochastic_depth, minimum=0.0, maximum=1.0,
                                   max_inclusive=False)
    # torchvision scales V1's channels and repeats (V2's settings are its final figures: a multiplier of 1 keeps them)
    rows = [(kind, t, k, s, make_divisible(c_in * width), make_divisible(c_out * width), math.ceil(n * depth))
            for kind, t, k, s, c_in, c_out, n in setting]
    total = sum(row[-1] for row in rows)
    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv_bn(inputs, rows[0][4], 3, strides=2, act="silu", bn=bn, name="stem")
    block_id = 0
    for stage, (kind, t, k, s, _, c_out, n) in enumerate(rows, start=1):
        for b in range(n):
            x = _mbconv(x, c_out, kind=kind, expand_ratio=t, kernel_size=k, stride=s if b == 0 else 1,
                        drop_rate=stochastic_depth * block_id / total, bn=bn, name=f"stage{stage}_block{b + 1}")
            block_id += 1
    x = _conv_bn(x, last or 4 * x.shape[-1], 1, act="silu", bn=bn, name=f"stage{len(rows)}_final{len(rows) + 1}")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation, dropout=dropout)
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "stages", "residual", "batch_norm", "width", "imagenet")
_V1_REFERENCE = "Tan & Le, EfficientNet: Rethinking Model Scaling for CNNs, ICML 2019; torchvision efficientnet layout"
_V2_REFERENCE = ("Tan & Le, EfficientNetV2: Smaller Models and Faster Training, ICML 2021; "
                 "torchvision efficientnet layout")


def _card(variant_name, slow=False):
    """``slow``: a deeper (or wider) copy of B0's or V2-S's code, whose registry tests take twice as long."""
    size = VARIANTS[variant_name][-1]
    return dict(
        family="efficientnet",
        default_input_shape=(size, size, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference=_V2_REFERENCE if "_v2_" in variant_name else _V1_REFERENCE,
        tags=_TAGS + (("slow",) if slow else ()),
        # V2's 40 blocks at a quarter of their depth (every block kind stays): its registry tests took 20 s
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.25, **({"depth": 0.25} if "_v2_" in variant_name else {})},
    )


_ARGS_DOC = """
    Args:
        width: a multiplier on the variant's channel counts (torchvision's ``width_mult`` times it, rounded to
            multiples of 8); 1.0 is torchvision's model.
        depth: a multiplier on the variant's block repeats (torchvision's ``depth_mult`` times it, rounded up);
            1.0 is torchvision's model.
        dropout: the classifier's dropout rate (torchvision's per variant).
        stochastic_depth: torchvision's ``stochastic_depth_prob``: block ``i`` of ``n`` drops its residual branch
            with probability ``stochastic_depth * i / n`` in training (the identity at inference).
""" + STAGED_DOC_TAIL


def _params(variant_name):
    return keras_params(1000, ("width", 1.0), ("depth", 1.0), ("dropout", VARIANTS[variant_name][3]),
                        ("stochastic_depth", STOCHASTIC_DEPTH))


@variant(card=_card("efficientnet_b0"), params=_params("efficientnet_b0"), doc=_ARGS_DOC)
def efficientnet_b0(**kw):
    """EfficientNet-B0, layer for layer as torchvision's ``efficientnet_b0`` (5,288,548 parameters)."""
    return _efficientnet("efficientnet_b0", **kw)


@variant(card=_card("efficientnet_b1", slow=True), params=_params("efficientnet_b1"), doc=_ARGS_DOC)
def efficientnet_b1(**kw):
    """EfficientNet-B1, layer for layer as torchvision's ``efficientnet_b1`` (7,794,184 parameters)."""
    return _efficientnet("efficientnet_b1", **kw)


@variant(card=_card("efficientnet_b2", slow=True), params=_params("efficientnet_b2"), doc=_ARGS_DOC)
def efficientnet_b2(**kw):
    """EfficientNet-B2, layer for layer as torchvision's ``efficientnet_b2`` (9,109,994 parameters)."""
    return _efficientnet("efficientnet_b2", **kw)


@variant(card=_card("efficientnet_b3", slow=True), params=_params("efficientnet_b3"), doc=_ARGS_DOC)
def efficientnet_b3(**kw):
    """EfficientNet-B3, layer for layer as torchvision's ``efficientnet_b3`` (12,233,232 parameters)."""
    return _efficientnet("efficientnet_b3", **kw)


@variant(card=_card("efficientnet_b4", slow=True), params=_params("efficientnet_b4"), doc=_ARGS_DOC)
def efficientnet_b4(**kw):
    """EfficientNet-B4, layer for layer as torchvision's ``efficientnet_b4`` (19,341,616 parameters)."""
    return _efficientnet("efficientnet_b4", **kw)


@variant(card=_card("efficientnet_b5", slow=True), params=_params("efficientnet_b5"), doc=_ARGS_DOC)
def efficientnet_b5(**kw):
    """EfficientNet-B5, layer for layer as torchvision's ``efficientnet_b5`` (30,389,784 parameters)."""
    return _efficientnet("efficientnet_b5", **kw)


@variant(card=_card("efficientnet_b6", slow=True), params=_params("efficientnet_b6"), doc=_ARGS_DOC)
def efficientnet_b6(**kw):
    """EfficientNet-B6, layer for layer as torchvision's ``efficientnet_b6`` (43,040,704 parameters)."""
    return _efficientnet("efficientnet_b6", **kw)


@variant(card=_card("efficientnet_b7", slow=True), params=_params("efficientnet_b7"), doc=_ARGS_DOC)
def efficientnet_b7(**kw):
    """EfficientNet-B7, layer for layer as torchvision's ``efficientnet_b7`` (66,347,960 parameters)."""
    return _efficientnet("efficientnet_b7", **kw)


@variant(card=_card("efficientnet_v2_s"), params=_params("efficientnet_v2_s"), doc=_ARGS_DOC)
def efficientnet_v2_s(**kw):
    """EfficientNetV2-S, layer for layer as torchvision's ``efficientnet_v2_s`` (21,458,488 parameters)."""
    return _efficientnet("efficientnet_v2_s", **kw)


@variant(card=_card("efficientnet_v2_m", slow=True), params=_params("efficientnet_v2_m"), doc=_ARGS_DOC)
def efficientnet_v2_m(**kw):
    """EfficientNetV2-M, layer for layer as torchvision's ``efficientnet_v2_m`` (54,139,356 parameters)."""
    return _efficientnet("efficientnet_v2_m", **kw)


@variant(card=_card("efficientnet_v2_l", slow=True), params=_params("efficientnet_v2_l"), doc=_ARGS_DOC)
def efficientnet_v2_l(**kw):
    """EfficientNetV2-L, layer for layer as torchvision's ``efficientnet_v2_l`` (118,515,272 parameters)."""
    return _efficientnet("efficientnet_v2_l", **kw)
