"""VGG and VGG-BN.

Reference: Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015 (arXiv:1409.1556); torchvision's
``vgg11`` ... ``vgg19_bn`` layer for layer (its convs keep their bias even
before BatchNorm, and its classifier follows a 7x7 adaptive average pool).
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.layers import AdaptiveAveragePooling2D
from zoo.registry import register_model
from zoo.utils import check_common, check_float, check_width, scaled

# torchvision's ``cfgs``: conv widths, "M" = 2x2/2 max-pool ending a stage.
VGG_CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
VGG_DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}
POOLED_SIZE = 7  # torchvision's AdaptiveAvgPool2d((7, 7)) before the classifier
HIDDEN_UNITS = (4096, 4096)
MIN_INPUT_SIZE = 32  # five 2x2 max-pools


def _vgg(depth, *, batch_norm, input_shape, num_classes, include_top, pooling, classifier_activation,
         dropout, width, weights, name):
    shape, num_classes = check_common(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        weights=weights,
        default_input_shape=(224, 224, 3),
        min_size=MIN_INPUT_SIZE,
    )
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    width = check_width(width)
    inputs = keras.Input(shape=shape, name="input")
    x = inputs
    stage, conv = 1, 1
    for v in VGG_CONFIGS[VGG_DEPTHS[depth]]:
        if v == "M":
            x = blocks.pool(x, "max", pool_size=2, strides=2, name=f"stage{stage}")
            stage, conv = stage + 1, 1
            continue
        x = blocks.conv_bn_act(x, scaled(v, width), 3, padding=1, batch_norm_=batch_norm, use_bias=True,
                               name=f"stage{stage}_block{conv}")
        conv += 1
    if include_top:
        x = AdaptiveAveragePooling2D(POOLED_SIZE, name="head_adaptive_avgpool")(x)
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
    return blocks.finish(inputs, x, name=name, weights=weights)


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


@register_model(**_card(False))
def vgg11(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
          classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="vgg11"):
    """VGG-11 (configuration A), as torchvision's ``vgg11`` (132,863,336 parameters)."""
    return _vgg(11, batch_norm=False, input_shape=input_shape, num_classes=num_classes,
                include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                dropout=dropout, width=width, weights=weights, name=name)


@register_model(**_card(False, slow=True))
def vgg13(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
          classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="vgg13"):
    """VGG-13 (configuration B), as torchvision's ``vgg13`` (133,047,848 parameters)."""
    return _vgg(13, batch_norm=False, input_shape=input_shape, num_classes=num_classes,
                include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                dropout=dropout, width=width, weights=weights, name=name)


@register_model(**_card(False, slow=True))
def vgg16(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
          classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="vgg16"):
    """VGG-16 (configuration D), as torchvision's ``vgg16`` (138,357,544 parameters)."""
    return _vgg(16, batch_norm=False, input_shape=input_shape, num_classes=num_classes,
                include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                dropout=dropout, width=width, weights=weights, name=name)


@register_model(**_card(False, slow=True))
def vgg19(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
          classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="vgg19"):
    """VGG-19 (configuration E), as torchvision's ``vgg19`` (143,667,240 parameters)."""
    return _vgg(19, batch_norm=False, input_shape=input_shape, num_classes=num_classes,
                include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                dropout=dropout, width=width, weights=weights, name=name)


@register_model(**_card(True))
def vgg11_bn(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="vgg11_bn"):
    """VGG-11 with BatchNorm, as torchvision's ``vgg11_bn`` (132,868,840 parameters)."""
    return _vgg(11, batch_norm=True, input_shape=input_shape, num_classes=num_classes,
                include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                dropout=dropout, width=width, weights=weights, name=name)


@register_model(**_card(True, slow=True))
def vgg13_bn(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="vgg13_bn"):
    """VGG-13 with BatchNorm, as torchvision's ``vgg13_bn`` (133,053,736 parameters)."""
    return _vgg(13, batch_norm=True, input_shape=input_shape, num_classes=num_classes,
                include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                dropout=dropout, width=width, weights=weights, name=name)


@register_model(**_card(True, slow=True))
def vgg16_bn(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="vgg16_bn"):
    """VGG-16 with BatchNorm, as torchvision's ``vgg16_bn`` (138,365,992 parameters)."""
    return _vgg(16, batch_norm=True, input_shape=input_shape, num_classes=num_classes,
                include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                dropout=dropout, width=width, weights=weights, name=name)


@register_model(**_card(True, slow=True))
def vgg19_bn(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="vgg19_bn"):
    """VGG-19 with BatchNorm, as torchvision's ``vgg19_bn`` (143,678,248 parameters)."""
    return _vgg(19, batch_norm=True, input_shape=input_shape, num_classes=num_classes,
                include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                dropout=dropout, width=width, weights=weights, name=name)


for _fn in (vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn):
    _fn.__doc__ += _ARGS_DOC.format(name=_fn.__name__)
