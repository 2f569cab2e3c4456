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
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, register_variant
from zoo.utils import check_choice, check_stem, check_width, scaled

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
# The registered ImageNet variants: name -> (depth, parameters for 1000 classes).
RESNET_SPECS = {
    "resnet18": (18, 11_689_512),
    "resnet34": (34, 21_797_672),
    "resnet50": (50, 25_557_032),
    "resnet101": (101, 44_549_160),
    "resnet152": (152, 60_192_808),
}
# He et al. 2016, sec. 4.2: depth 6n + 2, three stages of n basic blocks at 16/32/64 filters.
CIFAR_STAGE_FILTERS = (16, 32, 64)
CIFAR_STEM_FILTERS = 16
# The registered CIFAR variants: name -> (depth, parameters in the paper's table 6).
CIFAR_RESNET_SPECS = {
    "resnet20": (20, "0.27M"),
    "resnet32": (32, "0.46M"),
    "resnet44": (44, "0.66M"),
    "resnet56": (56, "0.85M"),
    "resnet110": (110, "1.7M"),
}
BLOCKS = {"basic": blocks.basic_block, "bottleneck": blocks.bottleneck_block}
SHORTCUTS = ("A", "B")
# Every conv pads enough to keep a 1x1 map alive, so any input size builds.
MIN_INPUT_SIZE = 1
# Depths whose tiny test model takes over ~10 s for one training step on a
# 2-core CPU (graph tracing grows with the layer count): tagged "slow".
SLOW_DEPTHS = frozenset({32, 34, 44, 50, 56, 101, 110, 152})


def _resnet(*, block, stage_blocks, stage_filters, stem_filters, stem, shortcut,
            input_shape, num_classes, include_top, pooling, classifier_activation, width, weights, name):
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
                         name=f"stage{s}_block{b}")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation)
    return blocks.finish(inputs, x, name=name, weights=weights)


_TAGS = ("image", "pooling", "stages", "residual", "batch_norm", "width")
# The two kinds of variant; each name is also a card tag.
_KINDS = {
    "imagenet": dict(
        default_input_shape=(224, 224, 3),
        reference="He et al., Deep Residual Learning for Image Recognition, CVPR 2016; torchvision resnet "
                  "layout (v1.5: bottleneck stride on the 3x3 conv; projection shortcuts, option B)",
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
        tags=_TAGS + (kind,) + (("slow",) if depth in SLOW_DEPTHS else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.125},
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

for _name, (_depth, _params) in RESNET_SPECS.items():
    _block, _stage_blocks = RESNET_LAYERS[_depth]
    globals()[_name] = register_variant(
        _name, _resnet, card=_card("imagenet", _depth),
        params=keras_params(1000, ("width", 1.0), ("stem", None)),
        fixed=dict(block=_block, stage_blocks=_stage_blocks, stage_filters=STAGE_FILTERS,
                   stem_filters=STEM_FILTERS, shortcut="B"),
        doc=f"ResNet-{_depth}{' v1.5' if _block == 'bottleneck' else ''}, layer for layer as torchvision's "
            f"``{_name}`` ({_params:,} parameters)." + _ARGS_DOC.format(name=_name),
    )

for _name, (_depth, _params) in CIFAR_RESNET_SPECS.items():
    _n = (_depth - 2) // 6
    globals()[_name] = register_variant(
        _name, _resnet, card=_card("cifar", _depth),
        params=keras_params(10, ("width", 1.0), ("shortcut", "A")),
        fixed=dict(block="basic", stage_blocks=(_n, _n, _n), stage_filters=CIFAR_STAGE_FILTERS,
                   stem_filters=CIFAR_STEM_FILTERS, stem="cifar"),
        doc=f"ResNet-{_depth} for CIFAR-10 (n={_n}; {_params} parameters)." + _CIFAR_ARGS_DOC.format(name=_name),
    )
