"""VGG and VGG-BN.

Reference: Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015 (arXiv:1409.1556); torchvision's
``vgg11`` ... ``vgg19_bn`` layer for layer (its convs keep their bias even
before BatchNorm, and its classifier follows a 7x7 adaptive average pool).
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.models._variants import keras_params, variant
from zoo.utils import check_float, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's ``cfgs`` (A: VGG-11, B: VGG-13, D: VGG-16, E: VGG-19): conv widths, "M" = 2x2/2 max-pool ending a stage.
VGG_CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
POOLED_SIZE = 7  # torchvision's AdaptiveAvgPool2d((7, 7)) before the classifier
HIDDEN_UNITS = (4096, 4096)
MIN_INPUT_SIZE = 32  # five 2x2 max-pools
# torchvision's and timm's state-dict keys: the stages replay torch's `features` Sequential; the classifiers differ.
KEY_RULES = register_key_rules("vgg", KeyRules(
    sequential=True,
    heads={
        "torchvision": {"head_fc1": "classifier.0", "head_fc2": "classifier.3", "head_predictions": "classifier.6"},
        "timm": {"head_fc1": "pre_logits.fc1", "head_fc2": "pre_logits.fc2", "head_predictions": "head.fc"},
    },
    head_modules=("classifier", "pre_logits", "head"),
    signature=r"stage\d+_block\d+_conv",
))


def _vgg(*, config, batch_norm, input_shape, num_classes, include_top, pooling, classifier_activation,
         dropout, width, name):
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    width = check_width(width)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    stage, conv = 1, 1
    for v in config:
        if v == "M":
            x = blocks.pool(x, "max", pool_size=2, strides=2, name=f"stage{stage}")
            stage, conv = stage + 1, 1
            continue
        x = blocks.conv_bn_act(x, scaled(v, width), 3, padding=1, batch_norm_=batch_norm, use_bias=True,
                               name=f"stage{stage}_block{conv}")
        conv += 1
    if include_top:
        x = blocks.adaptive_avg_pool(x, POOLED_SIZE, name="head_adaptive_avgpool")
    # torchvision: Linear-ReLU-Dropout, Linear-ReLU-Dropout, Linear.
    x = blocks.classifier_head(
        x,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        flatten=True,
        hidden_units=tuple(scaled(u, width) for u in HIDDEN_UNITS),
        dropout=dropout,
    )
    return keras.Model(inputs, x, name=name)


def _card(batch_norm, *, slow=False):
    # The deeper variants share vgg11's builder and blocks; their generic tests run with -m slow.
    return dict(
        family="vgg",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="Simonyan & Zisserman, Very Deep Convolutional Networks, ICLR 2015; torchvision vgg layout",
        tags=("image", "pooling", "stages", "imagenet", "width") + (("batch_norm",) if batch_norm else ())
        + (("slow",) if slow else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.0625},
    )


_ARGS_DOC = """
    Args:
        dropout: rate after each of the two hidden fully connected layers.
        width: multiplier on every conv and hidden FC width (1.0 is the reference).
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``; ``weights`` is ``None`` or a local weights file.

    Returns:
        A functional ``keras.Model`` with ``stage1_*`` ... ``stage5_*`` and ``head_*`` layers.

    Example:
        >>> model = {name}(input_shape=(32, 32, 3), num_classes=10, width=0.25)
"""

_PARAMS = keras_params(1000, ("dropout", 0.5), ("width", 1.0))


@variant(card=_card(False), params=_PARAMS, doc=_ARGS_DOC)
def vgg11(**kw):
    """VGG-11 (configuration A), as torchvision's ``vgg11`` (132,863,336 parameters)."""
    return _vgg(config=VGG_CONFIGS["A"], batch_norm=False, **kw)


@variant(card=_card(False, slow=True), params=_PARAMS, doc=_ARGS_DOC)
def vgg13(**kw):
    """VGG-13 (configuration B), as torchvision's ``vgg13`` (133,047,848 parameters)."""
    return _vgg(config=VGG_CONFIGS["B"], batch_norm=False, **kw)


@variant(card=_card(False, slow=True), params=_PARAMS, doc=_ARGS_DOC)
def vgg16(**kw):
    """VGG-16 (configuration D), as torchvision's ``vgg16`` (138,357,544 parameters)."""
    return _vgg(config=VGG_CONFIGS["D"], batch_norm=False, **kw)


@variant(card=_card(False, slow=True), params=_PARAMS, doc=_ARGS_DOC)
def vgg19(**kw):
    """VGG-19 (configuration E), as torchvision's ``vgg19`` (143,667,240 parameters)."""
    return _vgg(config=VGG_CONFIGS["E"], batch_norm=False, **kw)


@variant(card=_card(True), params=_PARAMS, doc=_ARGS_DOC)
def vgg11_bn(**kw):
    """VGG-11 with BatchNorm, as torchvision's ``vgg11_bn`` (132,868,840 parameters)."""
    return _vgg(config=VGG_CONFIGS["A"], batch_norm=True, **kw)


@variant(card=_card(True, slow=True), params=_PARAMS, doc=_ARGS_DOC)
def vgg13_bn(**kw):
    """VGG-13 with BatchNorm, as torchvision's ``vgg13_bn`` (133,053,736 parameters)."""
    return _vgg(config=VGG_CONFIGS["B"], batch_norm=True, **kw)


@variant(card=_card(True, slow=True), params=_PARAMS, doc=_ARGS_DOC)
def vgg16_bn(**kw):
    """VGG-16 with BatchNorm, as torchvision's ``vgg16_bn`` (138,365,992 parameters)."""
    return _vgg(config=VGG_CONFIGS["D"], batch_norm=True, **kw)


@variant(card=_card(True, slow=True), params=_PARAMS, doc=_ARGS_DOC)
def vgg19_bn(**kw):
    """VGG-19 with BatchNorm, as torchvision's ``vgg19_bn`` (143,678,248 parameters)."""
    return _vgg(config=VGG_CONFIGS["E"], batch_norm=True, **kw)
