"""SqueezeNet 1.0 and 1.1: torchvision's ``squeezenet1_0`` and ``squeezenet1_1``.

References:
    Iandola, Han, Moskewicz, Ashraf, Dally & Keutzer, "SqueezeNet: AlexNet-level accuracy with 50x fewer
    parameters and <0.5MB model size", arXiv:1602.07360 (2016); 1.1 is the SqueezeNet repository's v1.1
    (2.4x less computation); torchvision's ``squeezenet.py``.

Layer names: ``stem_*`` (the first convolution and its ReLU); a stage is a max pool (``stage{s}_pool_*``,
``ceil_mode=True`` as torch's) and the Fire modules after it, ``stage{s}_block{i}_*``, where ``i`` is the
module's index in torchvision's ``features`` (so the torch keys follow from the name: ``stage1_block3_squeeze``
is ``features.3.squeeze``); ``head_*``, torchvision's classifier: dropout, a 1x1 convolution to the classes
(``head_predictions``, ``classifier.1``), ReLU, global average pool, then ``classifier_activation``.
"""

from __future__ import annotations

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.models.googlenet import ceil_max_pool
from zoo.utils import check_float, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's SqueezeNet `features`: the first convolution (channels, kernel; stride 2, no padding), then the
# stages, each a 3x3/2 ceil-mode max pool and its Fire modules (squeeze, expand 1x1, expand 3x3 channels).
SQUEEZENET_SPECS = {
    "1_0": ((96, 7), (
        ((16, 64, 64), (16, 64, 64), (32, 128, 128)),
        ((32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256)),
        ((64, 256, 256),),
    )),
    "1_1": ((64, 3), (
        ((16, 64, 64), (16, 64, 64)),
        ((32, 128, 128), (32, 128, 128)),
        ((48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)),
    )),
}
DROPOUT = 0.5
# The last of the three ceil-mode pools needs a map of at least 2 (torch's own limit too, its weights' min_size):
# 21 for 1.0's 7x7 stem, 17 for 1.1's 3x3 one.
MIN_INPUT_SIZE = {"1_0": 21, "1_1": 17}

KEY_RULES = register_key_rules("squeezenet", KeyRules(
    modules=(
        (r"stem_conv", "features.0"),
        (r"stage\d+_block(\d+)_(squeeze|expand1x1|expand3x3)", "features.{0}.{1}"),
        (r"head_predictions", "classifier.1"),
    ),
    head_modules=("classifier",),
    signature=r"stage\d+_block\d+_expand1x1_relu",
))


def fire(x, squeeze, expand1x1, expand3x3, *, name):
    """torchvision's ``Fire``: a 1x1 squeeze convolution and ReLU, then 1x1 and 3x3 (padded 1) expansions, each
    with its ReLU, concatenated (1x1 first). Every convolution has a bias."""
    s = blocks.conv2d(x, squeeze, 1, use_bias=True, name=f"{name}_squeeze")
    s = layers.Activation("relu", name=f"{name}_squeeze_relu")(s)
    a = blocks.conv2d(s, expand1x1, 1, use_bias=True, name=f"{name}_expand1x1")
    a = layers.Activation("relu", name=f"{name}_expand1x1_relu")(a)
    b = blocks.conv2d(s, expand3x3, 3, padding=1, use_bias=True, name=f"{name}_expand3x3")
    b = layers.Activation("relu", name=f"{name}_expand3x3_relu")(b)
    return layers.Concatenate(name=f"{name}_concat")([a, b])


def _head(x, *, num_classes, include_top, pooling, classifier_activation, dropout):
    """torchvision's classifier: Dropout, 1x1 convolution (normal, std 0.01, as torch initialises it), ReLU,
    global average pool; ``classifier_activation`` after the pool. Without the top, keras.applications'
    ``pooling``."""
    if not include_top:
        return blocks.classifier_head(x, num_classes=num_classes, include_top=False, pooling=pooling)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = blocks.conv2d(x, num_classes, 1, use_bias=True, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                      name="head_predictions")
    x = layers.Activation("relu", name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(dtype="float32", name="head_avgpool")(x)  # float32 under mixed precision
    if classifier_activation not in (None, "linear"):
        x = layers.Activation(classifier_activation, dtype="float32", name=f"head_{classifier_activation}")(x)
    return x


def _squeezenet(version, *, input_shape, num_classes, include_top, pooling, classifier_activation, width, dropout,
                name):
    width = check_width(width)
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    if input_shape[0] is None or input_shape[1] is None:
        raise ValueError("SqueezeNet's ceil-mode max pools pad by the map's size, so it needs a fixed input size. "
                         f"Received: input_shape={input_shape}")
    (stem, kernel), stages = SQUEEZENET_SPECS[version]
    inputs = keras.Input(shape=input_shape, name="input")
    x = blocks.conv2d(inputs, scaled(stem, width), kernel, strides=2, use_bias=True, name="stem_conv")
    x = layers.Activation("relu", name="stem_relu")(x)
    index = 2  # torch's features: conv 0, ReLU 1, then each stage's pool and Fire modules
    for s, modules in enumerate(stages, start=1):
        x = ceil_max_pool(x, 3, 2, name=f"stage{s}_pool")
        index += 1
        for spec in modules:
            x = fire(x, *(scaled(c, width) for c in spec), name=f"stage{s}_block{index}")
            index += 1
    x = _head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
              classifier_activation=classifier_activation, dropout=dropout)
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "stages", "width", "imagenet")
_REFERENCE = ("Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size, "
              "arXiv:1602.07360 (2016); torchvision squeezenet layout")


def _card(version, slow=False):
    return dict(
        family="squeezenet",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE[version],
        reference=_REFERENCE,
        tags=_TAGS + (("slow",) if slow else ()),
        # the ReLU before the classifier's pool kills every class at once in about 1 of 50 narrower builds at 32 px
        # (no gradient at all); at 48 px and half width, none of 400
        test_kwargs={"input_shape": (48, 48, 3), "width": 0.5},
    )


_ARGS_DOC = """
    Args:
        width: multiplier on every convolution's channels (rounded, at least 1; 1.0 is torchvision's).
        dropout: the classifier's dropout rate (torchvision: 0.5).
        classifier_activation: applied after the classifier's ReLU and global average pool, as a
            ``head_softmax`` (or ``head_sigmoid``) layer (``None`` leaves the pooled scores, torchvision's output).
""" + STAGED_DOC_TAIL
_PARAMS = keras_params(1000, ("width", 1.0), ("dropout", DROPOUT))


@variant(card=_card("1_0", slow=True), params=_PARAMS, doc=_ARGS_DOC)
def squeezenet1_0(**kw):
    """SqueezeNet 1.0, layer for layer as torchvision's ``squeezenet1_0`` (1,248,424 parameters)."""
    return _squeezenet("1_0", **kw)


@variant(card=_card("1_1"), params=_PARAMS, doc=_ARGS_DOC)
def squeezenet1_1(**kw):
    """SqueezeNet 1.1, layer for layer as torchvision's ``squeezenet1_1`` (1,235,496 parameters, 2.4x less
    computation than 1.0)."""
    return _squeezenet("1_1", **kw)
