"""MobileNet V2 and V3: torchvision's ``mobilenet_v2``, ``mobilenet_v3_large`` and ``mobilenet_v3_small``.

References:
    Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    CVPR 2018 (arXiv:1801.04381); Howard et al., "Searching for MobileNetV3", ICCV 2019
    (arXiv:1905.02244); torchvision's ``mobilenetv2.py`` and ``mobilenetv3.py``.

Layer names: ``stem_*``; the inverted residual blocks ``stage{s}_block{i}_*``, where ``i`` is the
block's index in torchvision's ``features`` (so the torch keys follow from the name) and a stage is
the blocks at one resolution (a stride-2 block starts the next); the last 1x1 convolution of
``features`` is ``stage{s}_final{i}_*`` in the last stage; ``head_*``.
"""

from __future__ import annotations

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.utils import check_float, check_width
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's MobileNetV2 inverted residual setting: (expansion t, channels c, repeats n, first stride s).
V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
              (6, 320, 1, 1))
V2_STEM, V2_LAST = 32, 1280
# torchvision's MobileNetV3 blocks: (kernel, expanded channels, out channels, squeeze-excitation, activation,
# stride); the input of each is the previous block's output, 16 (the stem's) for the first.
V3_LARGE = (
    (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
)
V3_SMALL = (
    (3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1),
)
V3_STEM = 16
V3_LAST = {"large": 1280, "small": 1024}  # the classifier's hidden layer
V3_BLOCKS = {"large": V3_LARGE, "small": V3_SMALL}
ACTIVATIONS = {"RE": "relu", "HS": "hard_swish"}
V2_BN_EPSILON, V3_BN_EPSILON = 1e-5, 1e-3  # torch's BatchNorm2d default; torchvision's V3 norm_layer
V2_BN_MOMENTUM, V3_BN_MOMENTUM = 0.9, 0.99  # Keras' momentum is 1 - torch's (0.1, 0.01)
DROPOUT = 0.2
MIN_INPUT_SIZE = 1  # every convolution pads enough to keep a 1x1 map alive

# torchvision's state-dict keys. A block's Sequential is `conv` (V2) or `block` (V3): the expansion (when the
# block widens), the depthwise convolution, V3's squeeze-excitation, the projection; V2's projection is a bare
# conv and BN. Torch's index of each depends on which of them the block has: `_index` counts them.
def _index(block, part, names):
    """Torch's index of ``part`` in ``block``'s Sequential: after the expansion and the squeeze-excitation when
    the block has them."""
    expand = f"{block}_expand_conv" in names
    se = f"{block}_se_reduce" in names
    return {"expand": 0, "dw": int(expand), "se": int(expand) + 1, "project": int(expand) + 1 + int(se)}[part]


def _bn_or_conv(kind):
    return "1" if kind == "bn" else "0"


def _v2_block(g, names):
    block, part, kind = g
    i = _index(block, part, names)
    if part == "project":  # a bare Conv2d and BatchNorm2d: two indices
        return f"features.{block.split('block')[1]}.conv.{i + (kind == 'bn')}"
    return f"features.{block.split('block')[1]}.conv.{i}.{_bn_or_conv(kind)}"


def _v3_block(g, names):
    block, part, kind = g
    i = _index(block, part, names)
    if part == "se":
        return f"features.{block.split('block')[1]}.block.{i}.fc{'1' if kind == 'reduce' else '2'}"
    return f"features.{block.split('block')[1]}.block.{i}.{_bn_or_conv(kind)}"


def _features(g, names):
    index, kind = g
    return f"features.{index}.{_bn_or_conv(kind)}"


_BLOCK = r"(stage\d+_block\d+)_(expand|dw|project)_(conv|bn)"
KEY_RULES_V2 = register_key_rules("mobilenet_v2", KeyRules(
    modules=(
        (r"stem_(conv|bn)", lambda g, names: f"features.0.{_bn_or_conv(g[0])}"),
        (_BLOCK, _v2_block),
        (r"stage\d+_final(\d+)_(conv|bn)", _features),
        (r"head_predictions", "classifier.1"),
    ),
    head_modules=("classifier",),
    signature=r"stage\d+_block\d+_dw_relu6",
))
KEY_RULES_V3 = register_key_rules("mobilenet_v3", KeyRules(
    modules=(
        (r"stem_(conv|bn)", lambda g, names: f"features.0.{_bn_or_conv(g[0])}"),
        (_BLOCK, _v3_block),
        (r"(stage\d+_block\d+)_(se)_(reduce|expand)", _v3_block),
        (r"stage\d+_final(\d+)_(conv|bn)", _features),
        (r"head_fc1", "classifier.0"),
        (r"head_predictions", "classifier.3"),
    ),
    head_modules=("classifier",),
    signature=r"stage\d+_block\d+_se_hard_sigmoid",
))


def make_divisible(value, divisor=8, min_value=None):
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor``, never 10% below ``value``."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _conv_bn(x, filters, kernel_size, *, strides=1, depthwise=False, act=None, bn, name):
    """torchvision's ``Conv2dNormActivation``: a bias-free (depthwise) convolution padded (k - 1) / 2, BN, act."""
    x, padding = blocks.symmetric_padding(x, (kernel_size - 1) // 2, kernel_size, strides, name=f"{name}_conv")
    if depthwise:
        x = layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding, use_bias=False,
                                   name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                          kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = blocks.batch_norm(x, epsilon=bn[0], momentum=bn[1], name=f"{name}_bn")
    return x if act is None else blocks.activation(x, act, name=name)


def _squeeze_excitation(x, squeeze, *, act="relu", gate="hard_sigmoid", name):
    """torchvision's ``SqueezeExcitation``: mean, 1x1 conv, ``act``, 1x1 conv, ``gate``, scale (V3's ReLU and hard
    sigmoid by default; EfficientNet's SiLU and sigmoid)."""
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = layers.Conv2D(squeeze, 1, name=f"{name}_reduce")(s)
    s = layers.Activation(act, name=f"{name}_{act}")(s)
    s = layers.Conv2D(channels, 1, name=f"{name}_expand")(s)
    s = layers.Activation(gate, name=f"{name}_{gate}")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def _inverted_residual(x, out, *, expanded, kernel_size, stride, se, act, bn, name):
    """The inverted residual block: 1x1 expansion (when it widens), depthwise k x k, V3's squeeze-excitation,
    linear 1x1 projection; the input added when stride 1 keeps the channels."""
    y = x
    if expanded != x.shape[-1]:
        y = _conv_bn(y, expanded, 1, act=act, bn=bn, name=f"{name}_expand")
    y = _conv_bn(y, None, kernel_size, strides=stride, depthwise=True, act=act, bn=bn, name=f"{name}_dw")
    if se:
        y = _squeeze_excitation(y, make_divisible(expanded // 4), name=f"{name}_se")
    y = _conv_bn(y, out, 1, bn=bn, name=f"{name}_project")
    if stride == 1 and x.shape[-1] == out:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _mobilenet_v2(*, input_shape, num_classes, include_top, pooling, classifier_activation, width, dropout, name):
    width = check_width(width)
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    bn = (V2_BN_EPSILON, V2_BN_MOMENTUM)
    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv_bn(inputs, make_divisible(V2_STEM * width), 3, strides=2, act="relu6", bn=bn, name="stem")
    index, stage = 1, 1
    for t, c, n, s in V2_SETTING:
        for i in range(n):
            stride = s if i == 0 else 1
            stage += stride == 2
            x = _inverted_residual(x, make_divisible(c * width), expanded=int(round(x.shape[-1] * t)), kernel_size=3,
                                   stride=stride, se=False, act="relu6", bn=bn, name=f"stage{stage}_block{index}")
            index += 1
    x = _conv_bn(x, make_divisible(V2_LAST * max(1.0, width)), 1, act="relu6", bn=bn,
                 name=f"stage{stage}_final{index}")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation, dropout=dropout)
    return keras.Model(inputs, x, name=name)


def _mobilenet_v3(size, *, input_shape, num_classes, include_top, pooling, classifier_activation, width, dropout,
                  name):
    width = check_width(width)
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    bn = (V3_BN_EPSILON, V3_BN_MOMENTUM)
    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv_bn(inputs, make_divisible(V3_STEM * width), 3, strides=2, act="hard_swish", bn=bn, name="stem")
    stage = 1
    for index, (k, expanded, out, se, act, stride) in enumerate(V3_BLOCKS[size], start=1):
        stage += stride == 2 and index > 1  # V3-small's first block halves the stem's map: still stage 1
        x = _inverted_residual(x, make_divisible(out * width), expanded=make_divisible(expanded * width),
                               kernel_size=k, stride=stride, se=se, act=ACTIVATIONS[act], bn=bn,
                               name=f"stage{stage}_block{index}")
    x = _conv_bn(x, 6 * x.shape[-1], 1, act="hard_swish", bn=bn, name=f"stage{stage}_final{len(V3_BLOCKS[size]) + 1}")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation, dropout=dropout,
                               hidden_units=(make_divisible(V3_LAST[size] * width),), act="hard_swish")
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "stages", "residual", "batch_norm", "width", "imagenet")


def _card(reference, slow=False):
    return dict(
        family="mobilenet_v2" if "V2" in reference else "mobilenet_v3",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference=reference,
        tags=_TAGS + (("slow",) if slow else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.25},
    )


_V2_REFERENCE = ("Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018; "
                 "torchvision mobilenet_v2 layout")
_V3_REFERENCE = "Howard et al., Searching for MobileNetV3, ICCV 2019; torchvision mobilenet_v3 layout"
_ARGS_DOC = """
    Args:
        width: torchvision's ``width_mult`` on every channel count (rounded to multiples of 8).
        dropout: the classifier's dropout rate (torchvision: 0.2).
""" + STAGED_DOC_TAIL
_PARAMS = keras_params(1000, ("width", 1.0), ("dropout", DROPOUT))


@variant(card=_card(_V2_REFERENCE), params=_PARAMS, doc=_ARGS_DOC)
def mobilenet_v2(**kw):
    """MobileNetV2, layer for layer as torchvision's ``mobilenet_v2`` (3,504,872 parameters)."""
    return _mobilenet_v2(**kw)


@variant(card=_card(_V3_REFERENCE, slow=True), params=_PARAMS, doc=_ARGS_DOC)  # small's code, other table
def mobilenet_v3_large(**kw):
    """MobileNetV3-Large, layer for layer as torchvision's ``mobilenet_v3_large`` (5,483,032 parameters)."""
    return _mobilenet_v3("large", **kw)


@variant(card=_card(_V3_REFERENCE), params=_PARAMS, doc=_ARGS_DOC)
def mobilenet_v3_small(**kw):
    """MobileNetV3-Small, layer for layer as torchvision's ``mobilenet_v3_small`` (2,542,856 parameters)."""
    return _mobilenet_v3("small", **kw)
