"""GoogLeNet (Inception v1).

Reference: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842); torchvision's
``googlenet`` layer for layer without its auxiliary classifiers: every convolution is a bias-free conv,
BatchNorm (eps 1e-3) and ReLU (torchvision's ``BasicConv2d``), the "5x5" branch uses a 3x3 convolution as
torchvision's does, max pools round their output size up (``ceil_mode=True``) and the head is a global
average pool, dropout 0.2 and one fully connected layer: 6,624,904 parameters for 1000 classes.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import keras_params, variant
from zoo.utils import check_float, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

BN_EPSILON = 1e-3  # torchvision's BasicConv2d
# The inception modules of each stage: (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection);
# a stage starts with a 3x3/2 max pool (the last one with a 2x2/2 one).
INCEPTION_STAGES = (
    ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),
    ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)),
    ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
)
STAGE_POOLS = ((3, 2), (3, 2), (2, 2))  # the max pool before each stage: (size, stride)
# torchvision's transform_input (on for its IMAGENET1K_V1 weights): inputs normalised with ImageNet's mean and
# std are turned into (x - 0.5) / 0.5 per channel, what the original Caffe-trained weights expect.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TRANSFORM_SCALE = tuple(s / 0.5 for s in IMAGENET_STD)
TRANSFORM_OFFSET = tuple((m - 0.5) / 0.5 for m in IMAGENET_MEAN)
MIN_INPUT_SIZE = 15  # the stem's stride 2 conv and three more halvings leave at least one cell


def _module(g, names):
    """torchvision's module of a zoo layer: stage s, block b -> inception{s+2}{a, b, ...}; branches 2a/2b -> .0/.1."""
    stage, block, branch, part, kind = g
    sub = {"1": "branch1", "2a": "branch2.0", "2b": "branch2.1", "3a": "branch3.0", "3b": "branch3.1",
           "4": "branch4.1"}[branch + part]
    return f"inception{int(stage) + 2}{'abcde'[int(block) - 1]}.{sub}.{kind}"


KEY_RULES = register_key_rules("googlenet", KeyRules(
    modules=(
        (r"stem_(conv\d)_(conv|bn)", "{0}.{1}"),
        (r"stage(\d)_block(\d)_branch(\d)([ab]?)_(conv|bn)", _module),
        (r"head_predictions", "fc"),
    ),
    head_modules=("fc",),
    ignored=(("aux1", "auxiliary classifier, unused at evaluation (torchvision: aux_logits=False)"),
             ("aux2", "auxiliary classifier, unused at evaluation (torchvision: aux_logits=False)")),
    signature=r"stage\d_block\d_branch4_maxpool",
))


def transformed_input(input_shape, transform_input):
    """``(inputs, x)``: the model's input and, with torchvision's ``transform_input`` (GoogLeNet, Inception v3),
    a ``stem_transform_input`` Rescaling that turns ImageNet-normalised inputs into ``(x - 0.5) / 0.5``."""
    if not isinstance(transform_input, bool):
        raise ValueError(f"`transform_input` must be True or False. Received: transform_input={transform_input!r}")
    inputs = keras.Input(shape=input_shape, name="input")
    if not transform_input:
        return inputs, inputs
    return inputs, layers.Rescaling(TRANSFORM_SCALE, offset=TRANSFORM_OFFSET, name="stem_transform_input")(inputs)


def basic_conv(x, filters, kernel_size, *, strides=1, padding=0, name):
    """torchvision's ``BasicConv2d``: a bias-free convolution, BatchNorm (eps 1e-3), ReLU."""
    x = blocks.conv2d(x, filters, kernel_size, strides=strides, padding=padding, name=f"{name}_conv")
    x = blocks.batch_norm(x, epsilon=BN_EPSILON, name=f"{name}_bn")
    return layers.Activation("relu", name=f"{name}_relu")(x)


def ceil_max_pool(x, pool_size, strides, *, name):
    """``MaxPool2d(pool_size, strides, ceil_mode=True)``: the output size rounds up, the missing cells on the
    bottom and right are padded. Zeros pad exactly like torch's -inf here: the inputs follow a ReLU (>= 0)."""
    if None in x.shape[1:3]:
        raise ValueError(f"{name}: a ceil-mode max pool pads by the map's size, so the model needs a fixed input "
                         f"size (height and width, not None). Received a map of shape {tuple(x.shape[1:])}")
    pads = []
    for n in x.shape[1:3]:
        out = math.ceil((n - pool_size) / strides) + 1
        if (out - 1) * strides >= n:  # torch: the last window must start inside the input
            out -= 1
        pads.append(max(0, (out - 1) * strides + pool_size - n))
    if any(pads):
        x = layers.ZeroPadding2D(((0, pads[0]), (0, pads[1])), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(pool_size, strides=strides, name=f"{name}_maxpool")(x)


def inception(x, spec, *, width, name):
    """Four parallel branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 (the paper's 5x5); 3x3 max pool -> 1x1."""
    c1, r3, c3, r5, c5, proj = (scaled(c, width) for c in spec)
    b1 = basic_conv(x, c1, 1, name=f"{name}_branch1")
    b2 = basic_conv(basic_conv(x, r3, 1, name=f"{name}_branch2a"), c3, 3, padding=1, name=f"{name}_branch2b")
    b3 = basic_conv(basic_conv(x, r5, 1, name=f"{name}_branch3a"), c5, 3, padding=1, name=f"{name}_branch3b")
    b4 = layers.ZeroPadding2D(1, name=f"{name}_branch4_pad")(x)  # stride 1, ceil mode: the same size
    b4 = layers.MaxPooling2D(3, strides=1, name=f"{name}_branch4_maxpool")(b4)
    b4 = basic_conv(b4, proj, 1, name=f"{name}_branch4")
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4])


def _googlenet(*, input_shape, num_classes, include_top, pooling, classifier_activation, dropout, width,
               transform_input=None, name):
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    width = check_width(width)
    inputs, x = transformed_input(input_shape, transform_input)
    x = basic_conv(x, scaled(64, width), 7, strides=2, padding=3, name="stem_conv1")
    x = ceil_max_pool(x, 3, 2, name="stem_pool1")
    x = basic_conv(x, scaled(64, width), 1, name="stem_conv2")
    x = basic_conv(x, scaled(192, width), 3, padding=1, name="stem_conv3")
    for s, (modules, (size, stride)) in enumerate(zip(INCEPTION_STAGES, STAGE_POOLS), start=1):
        x = ceil_max_pool(x, size, stride, name=f"stage{s}_pool")
        for b, spec in enumerate(modules, start=1):
            x = inception(x, spec, width=width, name=f"stage{s}_block{b}")
    x = blocks.classifier_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                               classifier_activation=classifier_activation, dropout=dropout)
    return keras.Model(inputs, x, name=name)


@variant(
    card=dict(
        family="googlenet",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="Szegedy et al., Going Deeper with Convolutions, CVPR 2015; torchvision googlenet layout "
                  "(no auxiliary classifiers)",
        tags=("image", "pooling", "stages", "imagenet", "batch_norm", "width"),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.125},
    ),
    params=keras_params(1000, ("dropout", 0.2), ("width", 1.0), ("transform_input", None)),
)
def googlenet(**kw):
    """GoogLeNet (Inception v1) as torchvision's ``googlenet`` without auxiliary heads (6,624,904
    parameters for 1000 classes).

    Args:
        dropout: rate before the classifier (torchvision: 0.2).
        width: multiplier on every convolution's filters (1.0 is the reference).
        transform_input: torchvision's ``transform_input``: inputs normalised with ImageNet's mean and std
            become ``(x - 0.5) / 0.5`` per channel first (a ``stem_transform_input`` Rescaling layer).
            ``None`` (default): on with torchvision's weights (a weights-table name or a torch checkpoint,
            which expect it, as torchvision's IMAGENET1K_V1), off otherwise.
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``.

    Returns:
        A functional ``keras.Model`` with ``stem_*``, ``stage1_*`` (inception 3a-3b), ``stage2_*`` (4a-4e),
        ``stage3_*`` (5a-5b) and ``head_*`` layers.

    Example:
        >>> model = googlenet(input_shape=(64, 64, 3), num_classes=10, width=0.25)
    """
    return _googlenet(**kw)
