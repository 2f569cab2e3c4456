"""ResNet: torchvision's ImageNet ResNets and He et al.'s CIFAR ResNets.

References:
    He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
    (arXiv:1512.03385); torchvision's ``resnet18`` ... ``resnet152`` (v1.5: the
    bottleneck's stride is on its 3x3 conv) and section 4.2 of the paper for the
    CIFAR-10 networks ``resnet20`` ... ``resnet110``.
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.utils import check_choice, check_stem, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# depth -> (block, blocks per stage), torchvision's ``_resnet(block, layers)``.
RESNET_LAYERS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# torchvision's ResNeXt (Xie et al. 2017) and Wide ResNet (Zagoruyko & Komodakis 2016) as bottleneck ResNets:
# name -> (depth, groups, width per group), its ``_resnet(Bottleneck, layers, groups=, width_per_group=)``.
GROUPED_RESNETS = {
    "resnext50_32x4d": (50, 32, 4),
    "resnext101_32x8d": (101, 32, 8),
    "resnext101_64x4d": (101, 64, 4),
    "wide_resnet50_2": (50, 1, 128),
    "wide_resnet101_2": (101, 1, 128),
}
STAGE_FILTERS = (64, 128, 256, 512)
STEM_FILTERS = 64
# He et al. 2016, sec. 4.2: depth 6n + 2, three stages of n basic blocks at 16/32/64 filters.
CIFAR_STAGE_FILTERS = (16, 32, 64)
CIFAR_STEM_FILTERS = 16
BLOCKS = {"basic": blocks.basic_block, "bottleneck": blocks.bottleneck_block}
SHORTCUTS = ("A", "B")
# Every conv pads enough to keep a 1x1 map alive, so any input size builds.
MIN_INPUT_SIZE = 1
# Depths whose tiny test model takes over ~10 s for one training step on a
# 2-core CPU (graph tracing grows with the layer count): tagged "slow".
SLOW_DEPTHS = frozenset({32, 34, 44, 50, 56, 101, 110, 152})
# torchvision's state-dict keys (timm's ResNets use the same): zoo layer -> torch module.
KEY_RULES = register_key_rules("resnet", KeyRules(
    modules=(
        (r"stem_conv", "conv1"), (r"stem_bn", "bn1"),
        (r"stage(\d+)_block(\d+)_(conv|bn)(\d)", "layer{0}.{1-}.{2}{3}"),
        (r"stage(\d+)_block(\d+)_shortcut_conv", "layer{0}.{1-}.downsample.0"),
        (r"stage(\d+)_block(\d+)_shortcut_bn", "layer{0}.{1-}.downsample.1"),
        (r"head_predictions", "fc"),
    ),
    head_modules=("fc",),
    signature=r"stage\d+_block\d+_out",  # the ReLU after the addition (MobileNet adds without one)
))


def _resnet(*, block, stage_blocks, stage_filters, stem_filters, stem, shortcut,
            input_shape, num_classes, include_top, pooling, classifier_activation, width, name, **block_kwargs):
    width = check_width(width)
    stem = check_stem(stem, input_shape)
    check_choice("shortcut", shortcut, SHORTCUTS)
    block_fn = BLOCKS[block]
    inputs = keras.Input(shape=input_shape, name="input")
    x = blocks.stem(inputs, scaled(stem_filters, width), kind=stem)
    for s, (n, filters) in enumerate(zip(stage_blocks, stage_filters), start=1):
        for b in range(1, n + 1):
            stride = 2 if s > 1 and b == 1 else 1
            x = block_fn(x, scaled(filters, width), stride=stride, shortcut_kind=shortcut,
                         name=f"stage{s}_block{b}", **block_kwargs)
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


def _imagenet_resnet(depth, **kwargs):
    """torchvision's ResNet-``depth`` (``RESNET_LAYERS``): 64-512 filters, projection shortcuts (option B)."""
    block, stage_blocks = RESNET_LAYERS[depth]
    return _resnet(block=block, stage_blocks=stage_blocks, stage_filters=STAGE_FILTERS, stem_filters=STEM_FILTERS,
                   shortcut="B", **kwargs)


def _grouped_resnet(variant_name, **kwargs):
    """torchvision's ResNeXt or Wide ResNet ``variant_name`` (``GROUPED_RESNETS``): a ResNet-50/101 whose
    bottlenecks have ``groups`` groups of ``width_per_group`` channels at the first stage (ResNet's: 1 of 64)."""
    depth, groups, width_per_group = GROUPED_RESNETS[variant_name]
    return _imagenet_resnet(depth, groups=groups, width_per_group=width_per_group, **kwargs)


def _cifar_resnet(depth, **kwargs):
    """He et al.'s CIFAR ResNet of depth 6n + 2: three stages of n basic blocks at 16/32/64 filters."""
    n = (depth - 2) // 6
    return _resnet(block="basic", stage_blocks=(n, n, n), stage_filters=CIFAR_STAGE_FILTERS,
                   stem_filters=CIFAR_STEM_FILTERS, stem="cifar", **kwargs)


_TAGS = ("image", "pooling", "stages", "residual", "batch_norm", "width")
# The kinds of variant: CIFAR's, and ImageNet's (ResNet, ResNeXt, Wide ResNet), also the card's tag.
_KINDS = {
    "imagenet": dict(
        default_input_shape=(224, 224, 3),
        reference="He et al., Deep Residual Learning for Image Recognition, CVPR 2016; torchvision resnet "
                  "layout (v1.5: bottleneck stride on the 3x3 conv; projection shortcuts, option B)",
    ),
    "resnext": dict(
        default_input_shape=(224, 224, 3),
        reference="Xie et al., Aggregated Residual Transformations for Deep Neural Networks (ResNeXt), CVPR 2017; "
                  "torchvision resnext layout (ResNet v1.5 bottlenecks with a grouped 3x3 conv)",
    ),
    "wide": dict(
        default_input_shape=(224, 224, 3),
        reference="Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016; torchvision wide_resnet layout "
                  "(ResNet v1.5 bottlenecks twice as wide inside)",
    ),
    "cifar": dict(
        default_input_shape=(32, 32, 3),
        reference="He et al., Deep Residual Learning for Image Recognition, CVPR 2016, sec. 4.2 (CIFAR-10); "
                  "shortcut option A by default: strided identity with zero-padded channels, parameter-free",
    ),
}


def _card(kind, depth):
    return dict(
        family="resnet",
        min_input_size=MIN_INPUT_SIZE,
        tags=_TAGS + (("cifar",) if kind == "cifar" else ("imagenet",)) + (("slow",) if depth in SLOW_DEPTHS else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.125 if kind in ("imagenet", "cifar") else 0.0625},
        **_KINDS[kind],
    )


_ARGS_DOC = """
    Args:
        width: multiplier on every channel count (1.0 is the reference).
        stem: ``"imagenet"`` (conv7x7/2 + max-pool), ``"cifar"`` (conv3x3/1, no pool)
            or ``None``: ``"cifar"`` for inputs smaller than 64 pixels.
""" + STAGED_DOC_TAIL

_CIFAR_ARGS_DOC = """
    Args:
        shortcut: ``"A"`` (strided identity + zero channels, parameter-free, the paper's
            CIFAR choice) or ``"B"`` (1x1 conv + BN projection when the shape changes).
        width: multiplier on every channel count (1.0 is the reference).
""" + STAGED_DOC_TAIL

_IMAGENET_PARAMS = keras_params(1000, ("width", 1.0), ("stem", None))
_CIFAR_PARAMS = keras_params(10, ("width", 1.0), ("shortcut", "A"))


@variant(card=_card("imagenet", 18), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def resnet18(**kw):
    """ResNet-18, layer for layer as torchvision's ``resnet18`` (11,689,512 parameters)."""
    return _imagenet_resnet(18, **kw)


@variant(card=_card("imagenet", 34), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def resnet34(**kw):
    """ResNet-34, layer for layer as torchvision's ``resnet34`` (21,797,672 parameters)."""
    return _imagenet_resnet(34, **kw)


@variant(card=_card("imagenet", 50), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def resnet50(**kw):
    """ResNet-50 v1.5, layer for layer as torchvision's ``resnet50`` (25,557,032 parameters)."""
    return _imagenet_resnet(50, **kw)


@variant(card=_card("imagenet", 101), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def resnet101(**kw):
    """ResNet-101 v1.5, layer for layer as torchvision's ``resnet101`` (44,549,160 parameters)."""
    return _imagenet_resnet(101, **kw)


@variant(card=_card("imagenet", 152), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def resnet152(**kw):
    """ResNet-152 v1.5, layer for layer as torchvision's ``resnet152`` (60,192,808 parameters)."""
    return _imagenet_resnet(152, **kw)


@variant(card=_card("resnext", 50), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def resnext50_32x4d(**kw):
    """ResNeXt-50 32x4d, layer for layer as torchvision's ``resnext50_32x4d`` (25,028,904 parameters)."""
    return _grouped_resnet("resnext50_32x4d", **kw)


@variant(card=_card("resnext", 101), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def resnext101_32x8d(**kw):
    """ResNeXt-101 32x8d, layer for layer as torchvision's ``resnext101_32x8d`` (88,791,336 parameters)."""
    return _grouped_resnet("resnext101_32x8d", **kw)


@variant(card=_card("resnext", 101), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def resnext101_64x4d(**kw):
    """ResNeXt-101 64x4d, layer for layer as torchvision's ``resnext101_64x4d`` (83,455,272 parameters)."""
    return _grouped_resnet("resnext101_64x4d", **kw)


@variant(card=_card("wide", 50), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def wide_resnet50_2(**kw):
    """Wide ResNet-50-2, layer for layer as torchvision's ``wide_resnet50_2`` (68,883,240 parameters)."""
    return _grouped_resnet("wide_resnet50_2", **kw)


@variant(card=_card("wide", 101), params=_IMAGENET_PARAMS, doc=_ARGS_DOC)
def wide_resnet101_2(**kw):
    """Wide ResNet-101-2, layer for layer as torchvision's ``wide_resnet101_2`` (126,886,696 parameters)."""
    return _grouped_resnet("wide_resnet101_2", **kw)


@variant(card=_card("cifar", 20), params=_CIFAR_PARAMS, doc=_CIFAR_ARGS_DOC)
def resnet20(**kw):
    """ResNet-20 for CIFAR-10 (n=3; 0.27M parameters)."""
    return _cifar_resnet(20, **kw)


@variant(card=_card("cifar", 32), params=_CIFAR_PARAMS, doc=_CIFAR_ARGS_DOC)
def resnet32(**kw):
    """ResNet-32 for CIFAR-10 (n=5; 0.46M parameters)."""
    return _cifar_resnet(32, **kw)


@variant(card=_card("cifar", 44), params=_CIFAR_PARAMS, doc=_CIFAR_ARGS_DOC)
def resnet44(**kw):
    """ResNet-44 for CIFAR-10 (n=7; 0.66M parameters)."""
    return _cifar_resnet(44, **kw)


@variant(card=_card("cifar", 56), params=_CIFAR_PARAMS, doc=_CIFAR_ARGS_DOC)
def resnet56(**kw):
    """ResNet-56 for CIFAR-10 (n=9; 0.85M parameters)."""
    return _cifar_resnet(56, **kw)


@variant(card=_card("cifar", 110), params=_CIFAR_PARAMS, doc=_CIFAR_ARGS_DOC)
def resnet110(**kw):
    """ResNet-110 for CIFAR-10 (n=18; 1.7M parameters)."""
    return _cifar_resnet(110, **kw)
