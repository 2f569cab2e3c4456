"""ConvNeXt: torchvision's ``convnext_tiny``, ``convnext_small``, ``convnext_base`` and ``convnext_large``.

References:
    Liu, Mao, Wu, Feichtenhofer, Darrell & Xie, "A ConvNet for the 2020s", CVPR 2022 (arXiv:2201.03545);
    torchvision's ``convnext.py``.

Layer names: ``stem_*`` (torchvision's ``features.0``); ``stage{s}_downsample_*``, the LayerNorm and 2x2/2
convolution that torchvision puts between its stages (``features.{2s-2}``), start stages 2 to 4; the blocks
``stage{s}_block{b}_*`` (``features.{2s-1}.{b-1}``); ``head_*``.

torchvision's per-channel operations map to built-in Keras layers (a saved model loads without ``import zoo``):
its LayerNorm2d and LayerNorm over channels are ``LayerNormalization`` on the channel axis, its Linear layers on
the permuted map ``Dense`` on the channel axis, its layer scale (a learned ``(C, 1, 1)`` tensor) a bias-free 1x1
``DepthwiseConv2D``, and its stochastic depth ("row" mode: a whole residual branch dropped per sample in
training, the others scaled by ``1 / (1 - rate)``, identity at inference) ``Dropout`` with one draw per sample.
"""

from __future__ import annotations

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.utils import check_float, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's CNBlockConfig settings: name -> (stage widths, blocks per stage, stochastic_depth_prob).
CONVNEXT_SPECS = {
    "convnext_tiny": ((96, 192, 384, 768), (3, 3, 9, 3), 0.1),
    "convnext_small": ((96, 192, 384, 768), (3, 3, 27, 3), 0.4),
    "convnext_base": ((128, 256, 512, 1024), (3, 3, 27, 3), 0.5),
    "convnext_large": ((192, 384, 768, 1536), (3, 3, 27, 3), 0.5),
}
LN_EPSILON = 1e-6  # torchvision's LayerNorm2d and the blocks' LayerNorm
LAYER_SCALE = 1e-6  # the layer scale's initial value
MLP_RATIO = 4
MIN_INPUT_SIZE = 32  # the 4x4/4 stem and three 2x2/2 downsamplings keep a 1x1 map at 32 pixels


# torchvision's keys: stage s's blocks are `features.{2s-1}`, the downsampling before it `features.{2s-2}`; a
# block's Sequential holds the depthwise conv, a Permute, the LayerNorm, the Linear layers and the GELU.
_BLOCK_INDEX = {"dwconv": 0, "norm": 2, "fc1": 3, "fc2": 5}


KEY_RULES = register_key_rules("convnext", KeyRules(
    modules=(
        (r"stem_conv", "features.0.0"), (r"stem_norm", "features.0.1"),
        (r"stage(\d+)_downsample_norm", lambda g, names: f"features.{2 * int(g[0]) - 2}.0"),
        (r"stage(\d+)_downsample_conv", lambda g, names: f"features.{2 * int(g[0]) - 2}.1"),
        (r"stage(\d+)_block(\d+)_(dwconv|norm|fc1|fc2)",
         lambda g, names: f"features.{2 * int(g[0]) - 1}.{int(g[1]) - 1}.block.{_BLOCK_INDEX[g[2]]}"),
        (r"stage(\d+)_block(\d+)_layer_scale", lambda g, names: f"features.{2 * int(g[0]) - 1}.{int(g[1]) - 1}"),
        (r"head_norm", "classifier.0"),
        (r"head_predictions", "classifier.2"),
    ),
    leaves=((r"stage\d+_block\d+_layer_scale", ("layer_scale",)),),  # a parameter of the block itself
    head_modules=("classifier",),
    signature=r"stage\d+_block\d+_layer_scale",
))


def _init():
    """torchvision's initialisation of every Conv2d and Linear: a truncated normal with standard deviation 0.02
    (the builder's ``kernel_initializer``, when given, instead)."""
    return blocks._initializer(keras.initializers.TruncatedNormal(stddev=0.02))


def _layer_norm(x, *, name):
    return layers.LayerNormalization(epsilon=LN_EPSILON, name=name)(x)


def cn_block(x, *, drop_rate, name):
    """torchvision's ``CNBlock``: depthwise 7x7 convolution (with bias), LayerNorm over the channels, Linear to 4x
    the channels, exact GELU, Linear back, layer scale, stochastic depth at ``drop_rate``; plus the input."""
    channels = x.shape[-1]
    y = layers.DepthwiseConv2D(7, padding="same", depthwise_initializer=_init(), name=f"{name}_dwconv")(x)
    y = _layer_norm(y, name=f"{name}_norm")
    y = layers.Dense(MLP_RATIO * channels, kernel_initializer=_init(), name=f"{name}_fc1")(y)
    y = layers.Activation("gelu", name=f"{name}_gelu")(y)  # Keras' gelu is exact (erf) unless approximate=True
    y = layers.Dense(channels, kernel_initializer=_init(), name=f"{name}_fc2")(y)
    y = layers.DepthwiseConv2D(1, use_bias=False, depthwise_initializer=keras.initializers.Constant(LAYER_SCALE),
                               name=f"{name}_layer_scale")(y)
    y = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_stochastic_depth")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def _convnext(variant_name, *, input_shape, num_classes, include_top, pooling, classifier_activation, width,
              stochastic_depth, name):
    width = check_width(width)
    stochastic_depth = check_float("stochastic_depth", stochastic_depth, minimum=0.0, maximum=1.0,
                                   max_inclusive=False)
    widths, depths, _ = CONVNEXT_SPECS[variant_name]
    widths = [scaled(w, width) for w in widths]
    total = sum(depths)
    inputs = keras.Input(shape=input_shape, name="input")
    x = blocks.conv2d(inputs, widths[0], 4, strides=4, use_bias=True, kernel_initializer=_init(), name="stem_conv")
    x = _layer_norm(x, name="stem_norm")
    block_id = 0
    for s, (w, n) in enumerate(zip(widths, depths), start=1):
        if s > 1:
            x = _layer_norm(x, name=f"stage{s}_downsample_norm")
            x = blocks.conv2d(x, w, 2, strides=2, use_bias=True, kernel_initializer=_init(),
                              name=f"stage{s}_downsample_conv")
        for b in range(1, n + 1):
            # torchvision's rate grows linearly from 0 at the first block to `stochastic_depth` at the last
            x = cn_block(x, drop_rate=stochastic_depth * block_id / (total - 1), name=f"stage{s}_block{b}")
            block_id += 1
    if not include_top:
        x = blocks.classifier_head(x, num_classes=num_classes, include_top=False, pooling=pooling)
    else:
        x = layers.GlobalAveragePooling2D(name="head_avgpool")(x)
        x = _layer_norm(x, name="head_norm")  # torchvision's LayerNorm2d on the pooled 1x1 map, then its flatten
        x = blocks.predictions(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "stages", "residual", "width", "imagenet")


def _card(variant_name):
    return dict(
        family="convnext",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="Liu et al., A ConvNet for the 2020s, CVPR 2022; torchvision convnext layout",
        tags=_TAGS + (() if variant_name == "convnext_tiny" else ("slow",)),
        # no stochastic depth: the one training step of the tests must update every block's weights
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.0625, "stochastic_depth": 0.0},
    )


_ARGS_DOC = """
    Args:
        width: multiplier on every stage's channels (1.0 is torchvision's).
        stochastic_depth: torchvision's ``stochastic_depth_prob``: the last block's rate of dropping its residual
            branch in training, the rates growing linearly from 0 at the first block (identity at inference).
""" + STAGED_DOC_TAIL


def _params(variant_name):
    return keras_params(1000, ("width", 1.0), ("stochastic_depth", CONVNEXT_SPECS[variant_name][2]))


@variant(card=_card("convnext_tiny"), params=_params("convnext_tiny"), doc=_ARGS_DOC)
def convnext_tiny(**kw):
    """ConvNeXt-T, layer for layer as torchvision's ``convnext_tiny`` (28,589,128 parameters)."""
    return _convnext("convnext_tiny", **kw)


@variant(card=_card("convnext_small"), params=_params("convnext_small"), doc=_ARGS_DOC)
def convnext_small(**kw):
    """ConvNeXt-S, layer for layer as torchvision's ``convnext_small`` (50,223,688 parameters)."""
    return _convnext("convnext_small", **kw)


@variant(card=_card("convnext_base"), params=_params("convnext_base"), doc=_ARGS_DOC)
def convnext_base(**kw):
    """ConvNeXt-B, layer for layer as torchvision's ``convnext_base`` (88,591,464 parameters)."""
    return _convnext("convnext_base", **kw)


@variant(card=_card("convnext_large"), params=_params("convnext_large"), doc=_ARGS_DOC)
def convnext_large(**kw):
    """ConvNeXt-L, layer for layer as torchvision's ``convnext_large`` (197,767,336 parameters)."""
    return _convnext("convnext_large", **kw)
