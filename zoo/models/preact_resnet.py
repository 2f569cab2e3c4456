"""Pre-activation ResNet (ResNet v2).

Reference: He, Zhang, Ren & Sun, "Identity Mappings in Deep Residual Networks",
ECCV 2016 (arXiv:1603.05027): every block is BN-ReLU-conv, the shortcut is a
clean identity (a 1x1 conv projection, without BN, of the pre-activated input
where the shape changes) and a final BN-ReLU precedes the pooling. The depths
and stage widths are torchvision's ResNet ones; as in our ``resnet``, the
bottleneck's stride is on its 3x3 conv.
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.models.resnet import MIN_INPUT_SIZE, RESNET_LAYERS, SLOW_DEPTHS, STAGE_FILTERS, STEM_FILTERS
from zoo.utils import check_stem, check_width, scaled

BLOCKS = {"basic": blocks.preact_basic_block, "bottleneck": blocks.preact_bottleneck_block}


def _preact_resnet(depth, *, input_shape, num_classes, include_top, pooling, classifier_activation,
                   width, stem, name):
    width = check_width(width)
    stem = check_stem(stem, input_shape)
    block, stage_blocks = RESNET_LAYERS[depth]
    block_fn = BLOCKS[block]
    inputs = keras.Input(shape=input_shape, name="input")
    # The paper puts the first activation right after conv1, before the split
    # into two paths: the ImageNet stem ends with BN-ReLU (+ max-pool), so its
    # first block skips its own pre-activation; after the CIFAR stem's bare
    # conv, the first block pre-activates.
    activated_stem = stem == "imagenet"
    x = blocks.stem(inputs, scaled(STEM_FILTERS, width), kind=stem, activate=activated_stem)
    for s, (n, filters) in enumerate(zip(stage_blocks, STAGE_FILTERS), start=1):
        for b in range(1, n + 1):
            stride = 2 if s > 1 and b == 1 else 1
            preact = not (activated_stem and s == 1 and b == 1)
            x = block_fn(x, scaled(filters, width), stride=stride, preact=preact, name=f"stage{s}_block{b}")
    x = blocks.bn_relu(x, name=f"stage{len(stage_blocks)}_post")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


def _card(depth):
    return dict(
        family="preact_resnet",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="He et al., Identity Mappings in Deep Residual Networks, ECCV 2016; "
                  "full pre-activation units, projection shortcuts (1x1 conv, no BN) where the shape changes",
        tags=("image", "pooling", "stages", "residual", "batch_norm", "width", "imagenet")
        + (("slow",) if depth in SLOW_DEPTHS else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.125},
    )


_ARGS_DOC = """
    Args:
        width: multiplier on every channel count (1.0 is the reference).
        stem: ``"imagenet"`` (conv7x7/2-BN-ReLU + max-pool), ``"cifar"`` (a bare
            conv3x3/1, no pool) or ``None``: ``"cifar"`` for inputs smaller than 64 pixels.
""" + STAGED_DOC_TAIL

_PARAMS = keras_params(1000, ("width", 1.0), ("stem", None))


@variant(card=_card(18), params=_PARAMS, doc=_ARGS_DOC)
def preact_resnet18(**kw):
    """Pre-activation ResNet-18 (basic blocks 2-2-2-2)."""
    return _preact_resnet(18, **kw)


@variant(card=_card(34), params=_PARAMS, doc=_ARGS_DOC)
def preact_resnet34(**kw):
    """Pre-activation ResNet-34 (basic blocks 3-4-6-3)."""
    return _preact_resnet(34, **kw)


@variant(card=_card(50), params=_PARAMS, doc=_ARGS_DOC)
def preact_resnet50(**kw):
    """Pre-activation ResNet-50 (bottleneck blocks 3-4-6-3)."""
    return _preact_resnet(50, **kw)


@variant(card=_card(101), params=_PARAMS, doc=_ARGS_DOC)
def preact_resnet101(**kw):
    """Pre-activation ResNet-101 (bottleneck blocks 3-4-23-3)."""
    return _preact_resnet(101, **kw)


@variant(card=_card(152), params=_PARAMS, doc=_ARGS_DOC)
def preact_resnet152(**kw):
    """Pre-activation ResNet-152 (bottleneck blocks 3-8-36-3)."""
    return _preact_resnet(152, **kw)
