"""AlexNet.

Reference: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012; the single-tower layout of
torchvision's ``alexnet`` (61,100,840 parameters for 1000 classes).
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.layers import AdaptiveAveragePooling2D
from zoo.registry import register_model
from zoo.utils import check_common, check_float, check_width, scaled

# Per conv stage: (filters, kernel, stride, padding, max-pool after it).
ALEXNET_CONFIGS = {
    "alexnet": {
        "convs": [(64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                  (256, 3, 1, 1, False), (256, 3, 1, 1, True)],
        "pooled_size": 6,  # torchvision's AdaptiveAvgPool2d((6, 6)) before the classifier
        "hidden_units": (4096, 4096),
        "default_input_shape": (224, 224, 3),
        "min_input_size": 63,  # smallest input that survives the three 3x3/2 max-pools
    },
    # Small-image variant for 32x32 inputs: stride-1 stem, smaller kernels and classifier.
    "alexnet_cifar": {
        "convs": [(64, 5, 1, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                  (256, 3, 1, 1, False), (256, 3, 1, 1, True)],
        "pooled_size": None,  # flatten the 3x3 map of a 32x32 input
        "hidden_units": (1024, 512),
        "default_input_shape": (32, 32, 3),
        "min_input_size": 15,
    },
}


def _alexnet(config, *, input_shape, num_classes, include_top, pooling, classifier_activation,
             dropout, width, weights, name):
    cfg = ALEXNET_CONFIGS[config]
    shape, num_classes = check_common(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        weights=weights,
        default_input_shape=cfg["default_input_shape"],
        min_size=cfg["min_input_size"],
    )
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    width = check_width(width)
    inputs = keras.Input(shape=shape, name="input")
    x = inputs
    for i, (filters, kernel, stride, pad, max_pool) in enumerate(cfg["convs"], start=1):
        x = blocks.conv_bn_act(x, scaled(filters, width), kernel, strides=stride, padding=pad,
                               batch_norm_=False, act="relu", name=f"stage{i}")
        if max_pool:
            x = blocks.pool(x, "max", pool_size=3, strides=2, name=f"stage{i}")
    if include_top and cfg["pooled_size"]:
        x = AdaptiveAveragePooling2D(cfg["pooled_size"], name="head_adaptive_avgpool")(x)
    x = blocks.classifier_head(
        x,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        flatten=True,
        hidden_units=tuple(scaled(u, width) for u in cfg["hidden_units"]),
        dropout=dropout,
        dropout_first=True,
    )
    return blocks.finish(inputs, x, name=name, weights=weights)


def _card(config, tags):
    cfg = ALEXNET_CONFIGS[config]
    return dict(
        family="alexnet",
        default_input_shape=cfg["default_input_shape"],
        min_input_size=cfg["min_input_size"],
        reference="Krizhevsky et al., NeurIPS 2012; torchvision alexnet layout",
        tags=("image", "pooling", "stages", "classic", "width") + tags,
        test_kwargs={"input_shape": (cfg["min_input_size"] + 1,) * 2 + (3,), "width": 0.0625},
    )


@register_model(**_card("alexnet", ("imagenet",)))
def alexnet(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
            classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="alexnet"):
    """AlexNet for 224x224 images, layer for layer as torchvision's ``alexnet``.

    Args:
        dropout: rate before each of the two hidden fully connected layers.
        width: multiplier on every conv and hidden FC width (1.0 is the reference).
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``.

    Example:
        >>> alexnet().count_params()
        61100840
    """
    return _alexnet("alexnet", input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                    pooling=pooling, classifier_activation=classifier_activation, dropout=dropout,
                    width=width, weights=weights, name=name)


@register_model(**_card("alexnet_cifar", ("cifar",)))
def alexnet_cifar(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
                  classifier_activation="softmax", dropout=0.5, width=1.0, weights=None, name="alexnet_cifar"):
    """An AlexNet-style network for 32x32 images (5 convs, 3 FC layers, ReLU, dropout)."""
    return _alexnet("alexnet_cifar", input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                    pooling=pooling, classifier_activation=classifier_activation, dropout=dropout,
                    width=width, weights=weights, name=name)
