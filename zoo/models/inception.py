"""Inception v3: torchvision's ``inception_v3``.

Reference: Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception Architecture for Computer
Vision", CVPR 2016 (arXiv:1512.00567); torchvision's ``inception.py`` layer for layer without its auxiliary
classifier (``AuxLogits``, trained with it, unused at evaluation): every convolution is torchvision's
``BasicConv2d`` (bias-free conv, BatchNorm eps 1e-3, ReLU), the 3x3 average pools of the branches count their
zero padding (torch's ``count_include_pad=True``), the head a global average pool, dropout 0.5 and one fully
connected layer: 23,834,568 parameters for 1000 classes (torchvision's 27,161,264 count ``AuxLogits`` too).

Layer names: ``stem_conv1a/2a/2b`` (torchvision's ``Conv2d_1a_3x3`` ...), ``stage1_*`` (its first max pool,
``Conv2d_3b_1x1``, ``Conv2d_4a_3x3``), then the inception modules ``stage{s}_block{i}_{branch}_*`` with
torchvision's branch names: stage 2 is ``Mixed_5b``-``5d`` (35x35 at 299 px), stage 3 ``Mixed_6a``-``6e``
(17x17), stage 4 ``Mixed_7a``-``7c`` (8x8); a stage ends where timm's ``features_only`` does (reductions 2, 4,
8, 16, 32).
"""

from __future__ import annotations

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import keras_params, variant
from zoo.models.googlenet import basic_conv, transformed_input
from zoo.utils import check_float, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# The stem (name, torchvision's module, filters, kernel, stride, padding); stage 1 starts with a 3x3/2 max pool.
STEM = (("conv1a", "Conv2d_1a_3x3", 32, 3, 2, 0), ("conv2a", "Conv2d_2a_3x3", 32, 3, 1, 0),
        ("conv2b", "Conv2d_2b_3x3", 64, 3, 1, 1))
STAGE1 = (("conv3b", "Conv2d_3b_1x1", 80, 1, 1, 0), ("conv4a", "Conv2d_4a_3x3", 192, 3, 1, 0))
# The inception modules of stages 2-4: (kind, its argument): A's pool projection, C's 7x7 reduction.
MODULES = (
    (("A", 32), ("A", 64), ("A", 64)),
    (("B", None), ("C", 128), ("C", 160), ("C", 160), ("C", 192)),
    (("D", None), ("E", None), ("E", None)),
)
FIRST_LETTER = {2: "b", 3: "a", 4: "a"}  # Mixed_5b, Mixed_6a, Mixed_7a
DROPOUT = 0.5
MIN_INPUT_SIZE = 75  # torchvision's min_size: the last stride-2 module needs a 3x3 map


def _mixed(g, names):
    """torchvision's module of a zoo layer: stage s, block b, branch -> ``Mixed_{s+3}{letter}.{branch}.{conv|bn}``."""
    stage, block, branch, kind = g
    letter = "abcde"["abcde".index(FIRST_LETTER[int(stage)]) + int(block) - 1]
    return f"Mixed_{int(stage) + 3}{letter}.{branch}.{kind}"


_TORCH_NAMES = {name: module for name, module, *_ in STEM + STAGE1}
KEY_RULES = register_key_rules("inception_v3", KeyRules(
    modules=(
        (r"(?:stem|stage1)_(conv\d[ab])_(conv|bn)", lambda g, names: f"{_TORCH_NAMES[g[0]]}.{g[1]}"),
        (r"stage(\d)_block(\d)_(branch\w+?)_(conv|bn)", _mixed),
        (r"head_predictions", "fc"),
    ),
    head_modules=("fc",),
    ignored=(("AuxLogits", "auxiliary classifier, unused at evaluation (torchvision: aux_logits=False)"),),
    signature=r"stage\d_block\d_branch7x7dbl_\d_conv",
))


def _conv(x, filters, kernel_size, *, width, strides=1, padding=0, name):
    """torchvision's ``BasicConv2d`` with ``filters`` scaled by ``width``; ``"same"`` for the stride-1 (1, 7),
    (7, 1), (1, 3) and (3, 1) convolutions, which torch pads (k - 1) / 2 on the long side only."""
    return basic_conv(x, scaled(filters, width), kernel_size, strides=strides, padding=padding, name=name)


def _avg_pool(x, *, name):
    """``F.avg_pool2d(x, 3, stride=1, padding=1)``: torch divides by 9 at the border too (``count_include_pad``),
    so the zeros are padded explicitly rather than by Keras' ``"same"`` (which averages the cells inside only)."""
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return layers.AveragePooling2D(3, strides=1, name=f"{name}_avgpool")(x)


def _max_pool(x, *, name):
    return layers.MaxPooling2D(3, strides=2, name=f"{name}_maxpool")(x)


def _concat(branches, name):
    return layers.Concatenate(name=f"{name}_concat")(branches)


def inception_a(x, pool_features, *, width, name):
    """``InceptionA``: 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3; 3x3 average pool -> 1x1."""
    c = lambda y, f, k, branch, **kw: _conv(y, f, k, width=width, name=f"{name}_{branch}", **kw)  # noqa: E731
    b1 = c(x, 64, 1, "branch1x1")
    b5 = c(c(x, 48, 1, "branch5x5_1"), 64, 5, "branch5x5_2", padding=2)
    b3 = c(c(c(x, 64, 1, "branch3x3dbl_1"), 96, 3, "branch3x3dbl_2", padding=1), 96, 3, "branch3x3dbl_3", padding=1)
    bp = c(_avg_pool(x, name=f"{name}_branch_pool"), pool_features, 1, "branch_pool")
    return _concat([b1, b5, b3, bp], name)


def inception_b(x, _, *, width, name):
    """``InceptionB`` (grid reduction 35 -> 17): 3x3/2; 1x1 -> 3x3 -> 3x3/2; 3x3/2 max pool."""
    c = lambda y, f, k, branch, **kw: _conv(y, f, k, width=width, name=f"{name}_{branch}", **kw)  # noqa: E731
    b3 = c(x, 384, 3, "branch3x3", strides=2)
    bd = c(c(c(x, 64, 1, "branch3x3dbl_1"), 96, 3, "branch3x3dbl_2", padding=1), 96, 3, "branch3x3dbl_3", strides=2)
    return _concat([b3, bd, _max_pool(x, name=f"{name}_branch_pool")], name)


def inception_c(x, c7, *, width, name):
    """``InceptionC``: 1x1; 1x1 -> 1x7 -> 7x1; 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7; 3x3 average pool -> 1x1."""
    c = lambda y, f, k, branch: _conv(y, f, k, width=width, padding="same", name=f"{name}_{branch}")  # noqa: E731
    b1 = c(x, 192, 1, "branch1x1")
    b7 = c(c(c(x, c7, 1, "branch7x7_1"), c7, (1, 7), "branch7x7_2"), 192, (7, 1), "branch7x7_3")
    bd = c(x, c7, 1, "branch7x7dbl_1")
    for i, (f, k) in enumerate(((c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)), (192, (1, 7))), start=2):
        bd = c(bd, f, k, f"branch7x7dbl_{i}")
    bp = c(_avg_pool(x, name=f"{name}_branch_pool"), 192, 1, "branch_pool")
    return _concat([b1, b7, bd, bp], name)


def inception_d(x, _, *, width, name):
    """``InceptionD`` (grid reduction 17 -> 8): 1x1 -> 3x3/2; 1x1 -> 1x7 -> 7x1 -> 3x3/2; 3x3/2 max pool."""
    c = lambda y, f, k, branch, **kw: _conv(y, f, k, width=width, name=f"{name}_{branch}", **kw)  # noqa: E731
    b3 = c(c(x, 192, 1, "branch3x3_1"), 320, 3, "branch3x3_2", strides=2)
    b7 = c(x, 192, 1, "branch7x7x3_1")
    b7 = c(c(b7, 192, (1, 7), "branch7x7x3_2", padding="same"), 192, (7, 1), "branch7x7x3_3", padding="same")
    b7 = c(b7, 192, 3, "branch7x7x3_4", strides=2)
    return _concat([b3, b7, _max_pool(x, name=f"{name}_branch_pool")], name)


def inception_e(x, _, *, width, name):
    """``InceptionE``: 1x1; 1x1 -> (1x3, 3x1); 1x1 -> 3x3 -> (1x3, 3x1); 3x3 average pool -> 1x1; the pairs
    concatenated in torch's order."""
    c = lambda y, f, k, branch: _conv(y, f, k, width=width, padding="same", name=f"{name}_{branch}")  # noqa: E731
    b1 = c(x, 320, 1, "branch1x1")
    b3 = c(x, 384, 1, "branch3x3_1")
    b3 = layers.Concatenate(name=f"{name}_branch3x3_concat")(
        [c(b3, 384, (1, 3), "branch3x3_2a"), c(b3, 384, (3, 1), "branch3x3_2b")])
    bd = c(c(x, 448, 1, "branch3x3dbl_1"), 384, 3, "branch3x3dbl_2")
    bd = layers.Concatenate(name=f"{name}_branch3x3dbl_concat")(
        [c(bd, 384, (1, 3), "branch3x3dbl_3a"), c(bd, 384, (3, 1), "branch3x3dbl_3b")])
    bp = c(_avg_pool(x, name=f"{name}_branch_pool"), 192, 1, "branch_pool")
    return _concat([b1, b3, bd, bp], name)


MODULE_BUILDERS = {"A": inception_a, "B": inception_b, "C": inception_c, "D": inception_d, "E": inception_e}


def _inception_v3(*, input_shape, num_classes, include_top, pooling, classifier_activation, dropout, width,
                  transform_input=None, name):
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    width = check_width(width)
    inputs, x = transformed_input(input_shape, transform_input)
    for layer, _, filters, k, s, p in STEM:
        x = _conv(x, filters, k, width=width, strides=s, padding=p, name=f"stem_{layer}")
    x = _max_pool(x, name="stage1_pool")
    for layer, _, filters, k, s, p in STAGE1:
        x = _conv(x, filters, k, width=width, strides=s, padding=p, name=f"stage1_{layer}")
    for stage, modules in enumerate(MODULES, start=2):
        if stage == 2:
            x = _max_pool(x, name="stage2_pool")
        for block, (kind, arg) in enumerate(modules, start=1):
            x = MODULE_BUILDERS[kind](x, arg, width=width, name=f"stage{stage}_block{block}")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation, dropout=dropout)
    return keras.Model(inputs, x, name=name)


@variant(
    card=dict(
        family="inception_v3",
        default_input_shape=(299, 299, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016; "
                  "torchvision inception_v3 layout (no auxiliary classifier)",
        tags=("image", "pooling", "stages", "imagenet", "batch_norm", "width"),
        test_kwargs={"input_shape": (75, 75, 3), "width": 0.0625},
    ),
    params=keras_params(1000, ("dropout", DROPOUT), ("width", 1.0), ("transform_input", None)),
)
def inception_v3(**kw):
    """Inception v3 as torchvision's ``inception_v3`` without its auxiliary classifier (23,834,568 parameters
    for 1000 classes; 299x299 inputs, at least 75x75).

    Args:
        dropout: rate before the classifier (torchvision: 0.5).
        width: multiplier on every convolution's filters (1.0 is the reference; 1/16 keeps every count whole).
        transform_input: torchvision's ``transform_input``: inputs normalised with ImageNet's mean and std
            become ``(x - 0.5) / 0.5`` per channel first (a ``stem_transform_input`` Rescaling layer).
            ``None`` (default): on with torchvision's weights (a weights-table name or a torch checkpoint,
            which expect it, as torchvision's IMAGENET1K_V1), off otherwise.
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``.
        features_only, out_indices: ``features_only=True`` returns the backbone with one output per stage
            (timm's), the weights loaded; :func:`zoo.feature_info` tells their channels and reductions.

    Returns:
        A functional ``keras.Model`` with ``stem_*``, ``stage1_*`` ... ``stage4_*`` and ``head_*`` layers.

    Example:
        >>> model = inception_v3(input_shape=(75, 75, 3), num_classes=10, width=0.0625)
    """
    return _inception_v3(**kw)
