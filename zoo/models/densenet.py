"""DenseNet: torchvision's ImageNet DenseNets and DenseNet-BC for CIFAR.

Reference: Huang, Liu, van der Maaten & Weinberger, "Densely Connected
Convolutional Networks", CVPR 2017 (arXiv:1608.06993). The ImageNet variants
follow torchvision's ``densenet121/169/201`` layer for layer; DenseNet-BC for
CIFAR follows the paper's Torch code (3 dense blocks of (depth - 4) / 6
bottleneck layers, a bare 3x3 conv of 2k filters as stem, compression 0.5).
"""

from __future__ import annotations

import re

import keras

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.utils import (
    MAX_LAYERS,
    MAX_UNITS,
    check_float,
    check_input_shape,
    check_int,
    check_stem,
    check_width,
    scaled,
)
from zoo.weights.convert import KeyRules, register_key_rules

# depth -> torchvision's (growth_rate, block_config, num_init_features).
DENSENET_SPECS = {
    121: (32, (6, 12, 24, 16), 64),
    169: (32, (6, 12, 32, 32), 64),
    201: (32, (6, 12, 48, 32), 64),
    161: (48, (6, 12, 36, 24), 96),
}
BN_SIZE = 4  # bottleneck width = BN_SIZE * growth_rate
COMPRESSION = 0.5
# torchvision's DenseNet checkpoints of 2017 name 'norm1' 'norm.1' (torchvision's own _load_state_dict rule).
_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
# torchvision's state-dict keys (timm's DenseNets use the same): zoo layer -> torch module.
KEY_RULES = register_key_rules("densenet", KeyRules(
    modules=(
        (r"stem_conv", "features.conv0"), (r"stem_bn", "features.norm0"),
        (r"stage(\d+)_block(\d+)_bn(\d)", "features.denseblock{0}.denselayer{1}.norm{2}"),
        (r"stage(\d+)_block(\d+)_conv(\d)", "features.denseblock{0}.denselayer{1}.conv{2}"),
        (r"stage(\d+)_transition_bn", "features.transition{0}.norm"),
        (r"stage(\d+)_transition_conv", "features.transition{0}.conv"),
        (r"stage\d+_post_bn", "features.norm5"),
        (r"head_predictions", "classifier"),
    ),
    head_modules=("classifier",),
    rename=lambda key: _OLD_KEY.sub(r"\1\2", key),
    signature=r"stage\d+_transition_conv",
))


def min_input_size(stem, num_blocks):
    """Smallest input for which every transition's 2x2 average pool still sees >= 1 pixel."""
    after_stem = 2 ** (num_blocks - 1)
    # The ImageNet stem maps H to ceil(ceil(H / 2) / 2).
    return 4 * (after_stem - 1) + 1 if stem == "imagenet" else after_stem


def _densenet(*, growth_rate, block_config, init_features, stem, compression,
              input_shape, num_classes, include_top, pooling, classifier_activation, width, name):
    width = check_width(width)
    compression = check_float("compression", compression, minimum=0.0, maximum=1.0)
    if compression == 0.0:
        raise ValueError(f"`compression` must be > 0. Received: compression={compression!r}")
    stem = check_stem(stem, input_shape)
    check_input_shape(input_shape, default=input_shape, min_size=min_input_size(stem, len(block_config)))
    growth_rate = scaled(growth_rate, width)
    inputs = keras.Input(shape=input_shape, name="input")
    features = scaled(init_features, width)
    # Dense layers start with BN-ReLU, so the small-image stem is a bare conv.
    x = blocks.stem(inputs, features, kind=stem, activate=stem == "imagenet")
    for s, num_layers in enumerate(block_config, start=1):
        x = blocks.dense_block(x, num_layers, growth_rate, bn_size=BN_SIZE, name=f"stage{s}")
        features += num_layers * growth_rate
        if s < len(block_config):
            features = max(1, int(features * compression))
            x = blocks.transition(x, features, name=f"stage{s}_transition")
    x = blocks.bn_relu(x, name=f"stage{len(block_config)}_post")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


def _imagenet_densenet(depth, **kwargs):
    """torchvision's DenseNet-``depth`` (``DENSENET_SPECS``)."""
    growth_rate, block_config, init_features = DENSENET_SPECS[depth]
    return _densenet(growth_rate=growth_rate, block_config=block_config, init_features=init_features, **kwargs)


def _densenet_bc(*, depth, growth_rate, **kwargs):
    """DenseNet-BC's parameterisation of ``_densenet``: L = 6n + 4 and k give the blocks and stem."""
    depth = check_int("depth", depth, minimum=10, maximum=MAX_LAYERS)
    growth_rate = check_int("growth_rate", growth_rate, maximum=MAX_UNITS)
    if (depth - 4) % 6:
        raise ValueError(
            f"`depth` of a DenseNet-BC must be 6n + 4 (e.g. 40, 100, 190, 250). Received: depth={depth!r}"
        )
    n = (depth - 4) // 6
    return _densenet(growth_rate=growth_rate, block_config=(n, n, n), init_features=2 * growth_rate,
                     stem="cifar", **kwargs)


_TAGS = ("image", "pooling", "stages", "dense_connections", "batch_norm", "width")

_IMAGENET_CARD = dict(
    family="densenet",
    default_input_shape=(224, 224, 3),
    # With stem=None inputs below 64 pixels get the small-image stem; with
    # stem="imagenet" the minimum is min_input_size("imagenet", 4) = 29 (torchvision's).
    min_input_size=min_input_size("cifar", 4),
    reference="Huang et al., Densely Connected Convolutional Networks, CVPR 2017; torchvision densenet layout",
    # One training step of even the tiny test model takes about a minute on a 2-core CPU.
    tags=_TAGS + ("imagenet", "slow"),
    test_kwargs={"input_shape": (32, 32, 3), "width": 0.125},
)

# Variants with fixed depth are "slow" (a training step of even the tiny model
# takes over ~10 s on a 2-core CPU); the generic builder's test model is shallow.
_BC_CARD = dict(
    family="densenet",
    default_input_shape=(32, 32, 3),
    min_input_size=min_input_size("cifar", 3),
    reference="Huang et al., Densely Connected Convolutional Networks, CVPR 2017: DenseNet-BC "
              "(bottleneck layers, compression 0.5) for CIFAR",
    tags=_TAGS + ("cifar",),
    test_kwargs={"input_shape": (16, 16, 3), "width": 0.5},
)
_BC_SLOW_CARD = {**_BC_CARD, "tags": _BC_CARD["tags"] + ("slow",)}

_ARGS_DOC = """
    Args:
        width: multiplier on the growth rate and the stem's filters (1.0 is the reference).
        stem: ``"imagenet"`` (conv7x7/2-BN-ReLU + max-pool), ``"cifar"`` (a bare
            conv3x3/1, no pool) or ``None``: ``"cifar"`` for inputs smaller than 64 pixels.
        compression: fraction of channels each transition keeps (0.5, "C" in DenseNet-BC).
""" + STAGED_DOC_TAIL

_BC_ARGS_DOC = """
    Args:
        width: multiplier on the growth rate (and so on every channel count).
        compression: fraction of channels each transition keeps (0.5 in DenseNet-BC).
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``; ``weights`` is ``None`` or a local weights file.

    Returns:
        A functional ``keras.Model`` with ``stem_*``, ``stage1_*`` ... ``stage3_*`` and ``head_*`` layers.

    Example:
        >>> model = {name}(num_classes=10)
"""


# Every builder checks its minimum input size after its stem is known.
_CHECKS = {"min_size": None}
_IMAGENET_PARAMS = keras_params(1000, ("width", 1.0), ("stem", None), ("compression", COMPRESSION))
_BC_PARAMS = keras_params(10, ("width", 1.0), ("compression", COMPRESSION))


@variant(card=_IMAGENET_CARD, params=_IMAGENET_PARAMS, doc=_ARGS_DOC, checks=_CHECKS)
def densenet121(**kw):
    """DenseNet-121, layer for layer as torchvision's ``densenet121`` (7,978,856 parameters)."""
    return _imagenet_densenet(121, **kw)


@variant(card=_IMAGENET_CARD, params=_IMAGENET_PARAMS, doc=_ARGS_DOC, checks=_CHECKS)
def densenet169(**kw):
    """DenseNet-169, layer for layer as torchvision's ``densenet169`` (14,149,480 parameters)."""
    return _imagenet_densenet(169, **kw)


@variant(card=_IMAGENET_CARD, params=_IMAGENET_PARAMS, doc=_ARGS_DOC, checks=_CHECKS)
def densenet161(**kw):
    """DenseNet-161 (growth 48, 96 stem filters), layer for layer as torchvision's ``densenet161``
    (28,681,000 parameters)."""
    return _imagenet_densenet(161, **kw)


@variant(card=_IMAGENET_CARD, params=_IMAGENET_PARAMS, doc=_ARGS_DOC, checks=_CHECKS)
def densenet201(**kw):
    """DenseNet-201, layer for layer as torchvision's ``densenet201`` (20,013,928 parameters)."""
    return _imagenet_densenet(201, **kw)


@variant(card={**_BC_CARD, "test_kwargs": {"input_shape": (16, 16, 3), "depth": 10, "growth_rate": 4}},
         params=(("depth", 100), ("growth_rate", 12)) + _BC_PARAMS, doc=_BC_ARGS_DOC, checks=_CHECKS)
def densenet_bc(**kw):
    """DenseNet-BC for CIFAR of any depth 6n + 4 and growth rate k (default: L=100, k=12, 0.8M parameters).

    Args:
        depth: total depth L = 6n + 4, n bottleneck layers per each of the 3 dense blocks.
        growth_rate: k, channels each layer adds (the stem has 2k).
    """
    return _densenet_bc(**kw)


@variant(card=_BC_SLOW_CARD, params=_BC_PARAMS, doc=_BC_ARGS_DOC, checks=_CHECKS)
def densenet_bc_40(**kw):
    """DenseNet-BC (L=40, k=12) for CIFAR: a small DenseNet for quick experiments."""
    return _densenet_bc(depth=40, growth_rate=12, **kw)


@variant(card=_BC_SLOW_CARD, params=_BC_PARAMS, doc=_BC_ARGS_DOC, checks=_CHECKS)
def densenet_bc_100(**kw):
    """DenseNet-BC (L=100, k=12) for CIFAR, 0.8M parameters in the paper's table 2."""
    return _densenet_bc(depth=100, growth_rate=12, **kw)
