"""ShuffleNet V2: torchvision's ``shufflenet_v2_x0_5``, ``_x1_0``, ``_x1_5`` and ``_x2_0``.

Reference: Ma, Zhang, Zheng & Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
ECCV 2018 (arXiv:1807.11164); torchvision's ``shufflenetv2.py``.

Layer names: ``stem_*`` (torchvision's ``conv1`` and ``maxpool``); torchvision's ``stage2``, ``stage3`` and
``stage4`` are the zoo's ``stage1`` to ``stage3``, their blocks ``stage{s}_block{i}_*`` (``i`` counts from 1:
``stage1_block1_branch2_conv1`` is ``stage2.0.branch2.0``); ``conv5`` is ``stage3_conv5_*``, the end of the last
stage; ``head_*``. A block's channel split and shuffle give torch's channel order exactly (NHWC here, NCHW there),
with built-in layers only: torch's ``chunk(2)`` is a reshape to (2, C/2) and two croppings; its ``cat`` and
``channel_shuffle(2)`` interleave the two halves, a reshape of each to (C/2, 1), a concatenation on that last axis
and a reshape to C. Reshapes need the map's size: the input size must be fixed.
"""

from __future__ import annotations

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.utils import check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's stages_out_channels: the stem, the three stages, conv5; and its stages_repeats.
SHUFFLENET_CHANNELS = {
    "x0_5": (24, 48, 96, 192, 1024),
    "x1_0": (24, 116, 232, 464, 1024),
    "x1_5": (24, 176, 352, 704, 1024),
    "x2_0": (24, 244, 488, 976, 2048),
}
STAGE_REPEATS = (4, 8, 4)
MIN_INPUT_SIZE = 1  # every convolution and the max pool pad 1: a 1x1 map stays 1x1

# torch's index of each zoo layer in a block's `branch1` / `branch2` Sequential (ReLUs fill the gaps).
_BRANCH_INDEX = {
    "branch1_dw_conv": 0, "branch1_dw_bn": 1, "branch1_conv": 2, "branch1_bn": 3,
    "branch2_conv1": 0, "branch2_bn1": 1, "branch2_dw_conv": 3, "branch2_dw_bn": 4, "branch2_conv2": 5,
    "branch2_bn2": 6,
}


def _block_module(g, names):
    stage, block, part = g
    return f"stage{int(stage) + 1}.{int(block) - 1}.{part.split('_')[0]}.{_BRANCH_INDEX[part]}"


KEY_RULES = register_key_rules("shufflenet_v2", KeyRules(
    modules=(
        (r"stem_conv", "conv1.0"),
        (r"stem_bn", "conv1.1"),
        (r"stage(\d+)_block(\d+)_(branch[12]_(?:dw_)?(?:conv|bn)\d?)", _block_module),
        (r"stage\d+_conv5_conv", "conv5.0"),
        (r"stage\d+_conv5_bn", "conv5.1"),
        (r"head_predictions", "fc"),
    ),
    head_modules=("fc",),
    signature=r"stage\d+_block\d+_shuffle",
))


def _pointwise(x, filters, *, name, suffix=""):
    """A bias-free 1x1 convolution, BatchNorm (torch's eps 1e-5), ReLU: ``{name}_conv{suffix}``, ``_bn``, ``_relu``."""
    x = blocks.conv2d(x, filters, 1, name=f"{name}_conv{suffix}")
    x = blocks.batch_norm(x, name=f"{name}_bn{suffix}")
    return layers.Activation("relu", name=f"{name}_relu{suffix}")(x)


def _depthwise(x, stride, *, name):
    """torchvision's ``depthwise_conv``: a bias-free 3x3 depthwise convolution padded 1, then BatchNorm."""
    x, padding = blocks.symmetric_padding(x, 1, 3, stride, name=f"{name}_conv")
    x = layers.DepthwiseConv2D(3, strides=stride, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    return blocks.batch_norm(x, name=f"{name}_bn")


def _as_last_axis(x, *, name):
    """``(h, w, c)`` -> ``(h, w, c, 1)``: one side of the shuffle."""
    return layers.Reshape((*x.shape[1:], 1), name=name)(x)


def inverted_residual(x, out, *, stride, name):
    """torchvision's ShuffleNet V2 ``InvertedResidual``: stride 1 splits the channels in halves, keeps the first
    and runs the second through ``branch2`` (1x1, depthwise 3x3, 1x1); stride 2 runs the whole input through
    ``branch1`` (depthwise 3x3/2, 1x1) and ``branch2`` (its depthwise 3x3 strided). The two halves are then
    concatenated and shuffled in 2 groups: output channel ``2j + g`` is half ``g``'s channel ``j``."""
    half = out // 2
    h, w, c = x.shape[1:]
    if stride == 1:
        if c != 2 * half:
            raise ValueError(f"{name}: a stride-1 block keeps its {c} channels; it cannot make {out}")
        split = layers.Reshape((h, w, 2, half), name=f"{name}_split")(x)
        left = layers.Cropping3D(((0, 0), (0, 0), (0, 1)), name=f"{name}_split_left")(split)  # (h, w, 1, half)
        right = layers.Cropping3D(((0, 0), (0, 0), (1, 0)), name=f"{name}_split_right")(split)
        left = layers.Reshape((h, w, half, 1), name=f"{name}_left")(left)  # the same order: one axis is 1
        y = layers.Reshape((h, w, half), name=f"{name}_right")(right)
    else:
        left = _depthwise(x, stride, name=f"{name}_branch1_dw")
        left = _pointwise(left, half, name=f"{name}_branch1")
        left = _as_last_axis(left, name=f"{name}_left")
        y = x
    y = _pointwise(y, half, name=f"{name}_branch2", suffix="1")
    y = _depthwise(y, stride, name=f"{name}_branch2_dw")
    y = _pointwise(y, half, name=f"{name}_branch2", suffix="2")
    y = _as_last_axis(y, name=f"{name}_branch2_out")
    y = layers.Concatenate(name=f"{name}_interleave")([left, y])  # (h', w', half, 2): channel 2j + g
    return layers.Reshape((*y.shape[1:3], 2 * half), name=f"{name}_shuffle")(y)


def _shufflenet_v2(size, *, input_shape, num_classes, include_top, pooling, classifier_activation, width, name):
    width = check_width(width)
    if input_shape[0] is None or input_shape[1] is None:
        raise ValueError("ShuffleNet V2 splits and shuffles channels with reshapes of the map, so it needs a fixed "
                         f"input size. Received: input_shape={input_shape}")
    stem, *stages, last = SHUFFLENET_CHANNELS[size]
    inputs = keras.Input(shape=input_shape, name="input")
    x = blocks.conv2d(inputs, scaled(stem, width), 3, strides=2, padding=1, name="stem_conv")
    x = blocks.batch_norm(x, name="stem_bn")
    x = layers.Activation("relu", name="stem_relu")(x)
    x = blocks.pool(x, "max", pool_size=3, strides=2, padding=1, name="stem_pool")  # zeros pad as -inf: after ReLU
    for s, (channels, repeats) in enumerate(zip(stages, STAGE_REPEATS), start=1):
        out = 2 * scaled(channels // 2, width)  # each half of the split scaled: an even count
        for i in range(1, repeats + 1):
            x = inverted_residual(x, out, stride=2 if i == 1 else 1, name=f"stage{s}_block{i}")
    x = _pointwise(x, scaled(last, width), name=f"stage{len(stages)}_conv5")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "stages", "batch_norm", "width", "imagenet")
_REFERENCE = ("Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design, ECCV 2018; "
              "torchvision shufflenet_v2 layout")


def _card(slow=True):
    return dict(
        family="shufflenet_v2",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference=_REFERENCE,
        tags=_TAGS + (("slow",) if slow else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.125},
    )


_ARGS_DOC = """
    Args:
        width: multiplier on every channel count, 1.0 being the variant's torchvision widths (the stem's and
            conv5's rounded; each stage's halves rounded, so that the split stays even).
""" + STAGED_DOC_TAIL
_PARAMS = keras_params(1000, ("width", 1.0))


@variant(card=_card(slow=False), params=_PARAMS, doc=_ARGS_DOC)
def shufflenet_v2_x0_5(**kw):
    """ShuffleNet V2 0.5x, layer for layer as torchvision's ``shufflenet_v2_x0_5`` (1,366,792 parameters)."""
    return _shufflenet_v2("x0_5", **kw)


@variant(card=_card(), params=_PARAMS, doc=_ARGS_DOC)
def shufflenet_v2_x1_0(**kw):
    """ShuffleNet V2 1.0x, layer for layer as torchvision's ``shufflenet_v2_x1_0`` (2,278,604 parameters)."""
    return _shufflenet_v2("x1_0", **kw)


@variant(card=_card(), params=_PARAMS, doc=_ARGS_DOC)
def shufflenet_v2_x1_5(**kw):
    """ShuffleNet V2 1.5x, layer for layer as torchvision's ``shufflenet_v2_x1_5`` (3,503,624 parameters)."""
    return _shufflenet_v2("x1_5", **kw)


@variant(card=_card(), params=_PARAMS, doc=_ARGS_DOC)
def shufflenet_v2_x2_0(**kw):
    """ShuffleNet V2 2.0x, layer for layer as torchvision's ``shufflenet_v2_x2_0`` (7,393,996 parameters)."""
    return _shufflenet_v2("x2_0", **kw)
