"""MnasNet-B1: torchvision's ``mnasnet0_5``, ``mnasnet0_75``, ``mnasnet1_0`` and ``mnasnet1_3``.

References:
    Tan, Chen, Pang, Vasudevan, Sandler, Howard & Le, "MnasNet: Platform-Aware Neural Architecture Search for
    Mobile", CVPR 2019 (arXiv:1807.11626); torchvision's ``mnasnet.py`` (its version 2, whose stem scales with
    ``alpha``).

Layer names: ``stem_*`` (torchvision's ``layers.0`` to ``layers.7``: a 3x3 convolution, then a depthwise
separable one, ``stem_dw_*`` and ``stem_project_*``); the inverted residual blocks ``stage{s}_block{i}_*``, where
``i`` counts the blocks of the six stacks ``layers.8`` ... ``layers.13`` from 1 (so block ``i`` is a known
``layers.{8 + t}.{j}``) and a stage is the blocks at one resolution (a stride-2 block starts the next); the
1280-channel 1x1 convolution (``layers.14``, its BN ``layers.15``) is ``stage{s}_final14_*`` in the last stage;
``head_*``.
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.models.mobilenet import _bn_or_conv, _conv_bn, _inverted_residual, make_divisible
from zoo.utils import check_float, check_width
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's depth multiplier `alpha` per variant.
ALPHAS = {"mnasnet0_5": 0.5, "mnasnet0_75": 0.75, "mnasnet1_0": 1.0, "mnasnet1_3": 1.3}
# torchvision's `_get_depths` at alpha 1: the stem's convolution and its depthwise separable one's output.
STEM, STEM_OUT = 32, 16
# The stacks `layers.8` ... `layers.13` (torchvision's `_stack`): (output channels at alpha 1, kernel, first stride,
# expansion, repeats).
STACKS = ((24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2), (192, 5, 2, 6, 4),
          (320, 3, 1, 6, 1))
FIRST_STACK = 8  # the index of the first stack in torchvision's `layers`
LAST = 1280  # the final 1x1 convolution's channels, whatever alpha
BN = (1e-5, 0.9997)  # (epsilon, Keras momentum): torchvision's _BN_MOMENTUM is 1 - 0.9997
DROPOUT = 0.2
MIN_INPUT_SIZE = 1  # every convolution pads (k - 1) / 2: a 1x1 map stays 1x1

# torchvision's state-dict keys. Block i (from 1) is `layers.{8 + t}.{j}` for its stack t and its place j there; a
# block's own Sequential holds the expansion (conv 0, BN 1), the depthwise convolution (3, 4) and the projection
# (6, 7), ReLUs between; the stem is the same pattern in `layers` itself.
_BLOCK_MODULES = tuple((FIRST_STACK + t, j) for t, row in enumerate(STACKS) for j in range(row[-1]))
_PART_INDEX = {"": 0, "expand": 0, "dw": 3, "project": 6}
FINAL = FIRST_STACK + len(STACKS)  # `layers.14` (the final conv), `layers.15` (its BN)


def _stem(g, names):
    part, kind = g
    return f"layers.{_PART_INDEX[part or ''] + int(_bn_or_conv(kind))}"


def _block(g, names):
    index, part, kind = g
    stack, j = _BLOCK_MODULES[int(index) - 1]
    return f"layers.{stack}.{j}.layers.{_PART_INDEX[part] + int(_bn_or_conv(kind))}"


KEY_RULES = register_key_rules("mnasnet", KeyRules(
    modules=(
        (r"stem_(?:(dw|project)_)?(conv|bn)", _stem),
        (r"stage\d+_block(\d+)_(expand|dw|project)_(conv|bn)", _block),
        (r"stage\d+_final(\d+)_(conv|bn)", lambda g, names: f"layers.{int(g[0]) + int(_bn_or_conv(g[1]))}"),
        (r"head_predictions", "classifier.1"),
    ),
    head_modules=("classifier",),
    signature=r"stem_dw_relu",  # the depthwise separable convolution in the stem (MobileNet's stem is one conv)
))


def _mnasnet(alpha, *, input_shape, num_classes, include_top, pooling, classifier_activation, width, dropout, name):
    width = check_width(width)
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    alpha *= width

    def depth(channels):  # torchvision's _round_to_multiple_of(channels * alpha, 8) is MobileNet's rounding
        return make_divisible(channels * alpha)

    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv_bn(inputs, depth(STEM), 3, strides=2, act="relu", bn=BN, name="stem")
    x = _conv_bn(x, None, 3, depthwise=True, act="relu", bn=BN, name="stem_dw")
    x = _conv_bn(x, depth(STEM_OUT), 1, bn=BN, name="stem_project")
    index, stage = 1, 0
    for channels, kernel_size, first_stride, expansion, repeats in STACKS:
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            stage += stride == 2
            x = _inverted_residual(x, depth(channels), expanded=x.shape[-1] * expansion, kernel_size=kernel_size,
                                   stride=stride, se=False, act="relu", bn=BN, name=f"stage{stage}_block{index}")
            index += 1
    x = _conv_bn(x, LAST, 1, act="relu", bn=BN, name=f"stage{stage}_final{FINAL}")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation, dropout=dropout)
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "stages", "residual", "batch_norm", "width", "imagenet")


def _card(slow=True):
    return dict(
        family="mnasnet",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="Tan et al., MnasNet: Platform-Aware Neural Architecture Search for Mobile, CVPR 2019; "
                  "torchvision mnasnet layout",
        tags=_TAGS + (("slow",) if slow else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.25},
    )


_ARGS_DOC = """
    Args:
        width: multiplies torchvision's depth multiplier ``alpha`` (``mnasnet1_0(width=0.5)`` has the channels of
            torchvision's ``MNASNet(alpha=0.5)``); every depth of ``_get_depths`` scales, the stem's included
            (rounded to multiples of 8, rounding up unless that adds over 10%), the final 1x1 convolution keeps
            its 1280 channels.
        dropout: the classifier's dropout rate (torchvision: 0.2).
""" + STAGED_DOC_TAIL
_PARAMS = keras_params(1000, ("width", 1.0), ("dropout", DROPOUT))


@variant(card=_card(slow=False), params=_PARAMS, doc=_ARGS_DOC)
def mnasnet0_5(**kw):
    """MnasNet-B1 at depth multiplier 0.5, layer for layer as torchvision's ``mnasnet0_5`` (2,218,512 parameters)."""
    return _mnasnet(ALPHAS["mnasnet0_5"], **kw)


@variant(card=_card(), params=_PARAMS, doc=_ARGS_DOC)
def mnasnet0_75(**kw):
    """MnasNet-B1 at depth multiplier 0.75, layer for layer as torchvision's ``mnasnet0_75`` (3,170,208
    parameters)."""
    return _mnasnet(ALPHAS["mnasnet0_75"], **kw)


@variant(card=_card(), params=_PARAMS, doc=_ARGS_DOC)
def mnasnet1_0(**kw):
    """MnasNet-B1 at depth multiplier 1.0, layer for layer as torchvision's ``mnasnet1_0`` (4,383,312 parameters)."""
    return _mnasnet(ALPHAS["mnasnet1_0"], **kw)


@variant(card=_card(), params=_PARAMS, doc=_ARGS_DOC)
def mnasnet1_3(**kw):
    """MnasNet-B1 at depth multiplier 1.3, layer for layer as torchvision's ``mnasnet1_3`` (6,282,256 parameters)."""
    return _mnasnet(ALPHAS["mnasnet1_3"], **kw)
