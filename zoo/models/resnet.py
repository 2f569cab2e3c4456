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
from zoo.registry import register_model
from zoo.utils import check_choice, check_common, check_stem, check_width, scaled

# depth -> (block, blocks per stage), torchvision's ``_resnet(block, layers)``.
RESNET_LAYERS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
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


def _resnet(*, block, stage_blocks, stage_filters, stem_filters, stem, shortcut, default_input_shape,
            input_shape, num_classes, include_top, pooling, classifier_activation, width, weights, name):
    shape, num_classes = check_common(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        weights=weights,
        default_input_shape=default_input_shape,
        min_size=MIN_INPUT_SIZE,
    )
    width = check_width(width)
    stem = check_stem(stem, shape)
    check_choice("shortcut", shortcut, SHORTCUTS)
    block_fn = BLOCKS[block]
    inputs = keras.Input(shape=shape, name="input")
    x = blocks.stem(inputs, scaled(stem_filters, width), kind=stem)
    for s, (n, filters) in enumerate(zip(stage_blocks, stage_filters), start=1):
        for b in range(1, n + 1):
            stride = 2 if s > 1 and b == 1 else 1
            x = block_fn(x, scaled(filters, width), stride=stride, shortcut_kind=shortcut,
                         name=f"stage{s}_block{b}")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation)
    return blocks.finish(inputs, x, name=name, weights=weights)


def _imagenet_resnet(depth, *, stem, **kwargs):
    block, stage_blocks = RESNET_LAYERS[depth]
    return _resnet(block=block, stage_blocks=stage_blocks, stage_filters=STAGE_FILTERS,
                   stem_filters=STEM_FILTERS, stem=stem, shortcut="B", default_input_shape=(224, 224, 3),
                   **kwargs)


def _cifar_resnet(depth, *, shortcut, **kwargs):
    n = (depth - 2) // 6
    return _resnet(block="basic", stage_blocks=(n, n, n), stage_filters=CIFAR_STAGE_FILTERS,
                   stem_filters=CIFAR_STEM_FILTERS, stem="cifar", shortcut=shortcut,
                   default_input_shape=(32, 32, 3), **kwargs)


_TAGS = ("image", "pooling", "stages", "residual", "batch_norm", "width")
_TEST_KWARGS = {"input_shape": (32, 32, 3), "width": 0.125}

def _imagenet_card(depth):
    return dict(
        family="resnet",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="He et al., Deep Residual Learning for Image Recognition, CVPR 2016; torchvision resnet "
                  "layout (v1.5: bottleneck stride on the 3x3 conv; projection shortcuts, option B)",
        tags=_TAGS + ("imagenet",) + (("slow",) if depth in SLOW_DEPTHS else ()),
        test_kwargs=_TEST_KWARGS,
    )


def _cifar_card(depth):
    return dict(
        family="resnet",
        default_input_shape=(32, 32, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="He et al., Deep Residual Learning for Image Recognition, CVPR 2016, sec. 4.2 (CIFAR-10); "
                  "shortcut option A by default: strided identity with zero-padded channels, parameter-free",
        tags=_TAGS + ("cifar",) + (("slow",) if depth in SLOW_DEPTHS else ()),
        test_kwargs=_TEST_KWARGS,
    )


_ARGS_DOC = """
    Args:
        width: multiplier on every channel count (1.0 is the reference).
        stem: ``"imagenet"`` (conv7x7/2 + max-pool), ``"cifar"`` (conv3x3/1, no pool)
            or ``None``: ``"cifar"`` for inputs smaller than 64 pixels.
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``; ``weights`` is ``None`` or a local weights file.

    Returns:
        A functional ``keras.Model`` with ``stem_*``, ``stage1_*`` ... and ``head_*`` layers.

    Example:
        >>> model = {name}(input_shape=(32, 32, 3), num_classes=10, width=0.25)
"""


@register_model(**_imagenet_card(18))
def resnet18(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax", width=1.0, stem=None, weights=None, name="resnet18"):
    """ResNet-18, layer for layer as torchvision's ``resnet18`` (11,689,512 parameters)."""
    return _imagenet_resnet(18, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                            pooling=pooling, classifier_activation=classifier_activation, width=width,
                            stem=stem, weights=weights, name=name)


@register_model(**_imagenet_card(34))
def resnet34(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax", width=1.0, stem=None, weights=None, name="resnet34"):
    """ResNet-34, layer for layer as torchvision's ``resnet34`` (21,797,672 parameters)."""
    return _imagenet_resnet(34, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                            pooling=pooling, classifier_activation=classifier_activation, width=width,
                            stem=stem, weights=weights, name=name)


@register_model(**_imagenet_card(50))
def resnet50(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax", width=1.0, stem=None, weights=None, name="resnet50"):
    """ResNet-50 v1.5, layer for layer as torchvision's ``resnet50`` (25,557,032 parameters)."""
    return _imagenet_resnet(50, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                            pooling=pooling, classifier_activation=classifier_activation, width=width,
                            stem=stem, weights=weights, name=name)


@register_model(**_imagenet_card(101))
def resnet101(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
              classifier_activation="softmax", width=1.0, stem=None, weights=None, name="resnet101"):
    """ResNet-101 v1.5, layer for layer as torchvision's ``resnet101`` (44,549,160 parameters)."""
    return _imagenet_resnet(101, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                            pooling=pooling, classifier_activation=classifier_activation, width=width,
                            stem=stem, weights=weights, name=name)


@register_model(**_imagenet_card(152))
def resnet152(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
              classifier_activation="softmax", width=1.0, stem=None, weights=None, name="resnet152"):
    """ResNet-152 v1.5, layer for layer as torchvision's ``resnet152`` (60,192,808 parameters)."""
    return _imagenet_resnet(152, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                            pooling=pooling, classifier_activation=classifier_activation, width=width,
                            stem=stem, weights=weights, name=name)


for _fn in (resnet18, resnet34, resnet50, resnet101, resnet152):
    _fn.__doc__ += _ARGS_DOC.format(name=_fn.__name__)

_CIFAR_ARGS_DOC = """
    Args:
        shortcut: ``"A"`` (strided identity + zero channels, parameter-free, the paper's
            CIFAR choice) or ``"B"`` (1x1 conv + BN projection when the shape changes).
        width: multiplier on every channel count (1.0 is the reference).
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``; ``weights`` is ``None`` or a local weights file.

    Returns:
        A functional ``keras.Model`` with ``stem_*``, ``stage1_*`` ... and ``head_*`` layers.

    Example:
        >>> model = {name}(input_shape=(32, 32, 3), num_classes=10, width=0.25)
"""


@register_model(**_cifar_card(20))
def resnet20(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
             classifier_activation="softmax", width=1.0, shortcut="A", weights=None, name="resnet20"):
    """ResNet-20 for CIFAR-10 (n=3; 0.27M parameters)."""
    return _cifar_resnet(20, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                         pooling=pooling, classifier_activation=classifier_activation, width=width,
                         shortcut=shortcut, weights=weights, name=name)


@register_model(**_cifar_card(32))
def resnet32(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
             classifier_activation="softmax", width=1.0, shortcut="A", weights=None, name="resnet32"):
    """ResNet-32 for CIFAR-10 (n=5; 0.46M parameters)."""
    return _cifar_resnet(32, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                         pooling=pooling, classifier_activation=classifier_activation, width=width,
                         shortcut=shortcut, weights=weights, name=name)


@register_model(**_cifar_card(44))
def resnet44(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
             classifier_activation="softmax", width=1.0, shortcut="A", weights=None, name="resnet44"):
    """ResNet-44 for CIFAR-10 (n=7; 0.66M parameters)."""
    return _cifar_resnet(44, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                         pooling=pooling, classifier_activation=classifier_activation, width=width,
                         shortcut=shortcut, weights=weights, name=name)


@register_model(**_cifar_card(56))
def resnet56(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
             classifier_activation="softmax", width=1.0, shortcut="A", weights=None, name="resnet56"):
    """ResNet-56 for CIFAR-10 (n=9; 0.85M parameters)."""
    return _cifar_resnet(56, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                         pooling=pooling, classifier_activation=classifier_activation, width=width,
                         shortcut=shortcut, weights=weights, name=name)


@register_model(**_cifar_card(110))
def resnet110(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
              classifier_activation="softmax", width=1.0, shortcut="A", weights=None, name="resnet110"):
    """ResNet-110 for CIFAR-10 (n=18; 1.7M parameters)."""
    return _cifar_resnet(110, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                         pooling=pooling, classifier_activation=classifier_activation, width=width,
                         shortcut=shortcut, weights=weights, name=name)


for _fn in (resnet20, resnet32, resnet44, resnet56, resnet110):
    _fn.__doc__ += _CIFAR_ARGS_DOC.format(name=_fn.__name__)
