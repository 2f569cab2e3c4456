"""AlexNet.

Reference: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012; the single-tower layout of
torchvision's ``alexnet`` (61,100,840 parameters for 1000 classes).
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.models._variants import keras_params, variant
from zoo.utils import check_float, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# The two layouts: per conv stage (filters, kernel, stride, padding, max-pool after it), the side of the
# adaptive average pool before the classifier (None: flatten the last map) and the hidden FC units.
ALEXNET_LAYOUTS = {
    "alexnet": dict(
        convs=[(64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
               (256, 3, 1, 1, False), (256, 3, 1, 1, True)],
        pooled_size=6,  # torchvision's AdaptiveAvgPool2d((6, 6))
        hidden_units=(4096, 4096),
    ),
    # Small-image variant for 32x32 inputs: stride-1 stem, smaller kernels and classifier.
    "alexnet_cifar": dict(
        convs=[(64, 5, 1, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
               (256, 3, 1, 1, False), (256, 3, 1, 1, True)],
        pooled_size=None,  # flatten the 3x3 map of a 32x32 input
        hidden_units=(1024, 512),
    ),
}
MIN_INPUT_SIZE = 63  # smallest input that survives alexnet's three 3x3/2 max-pools
CIFAR_MIN_INPUT_SIZE = 15
# torchvision's state-dict keys: the stages replay torch's `features` Sequential.
KEY_RULES = register_key_rules("alexnet", KeyRules(
    sequential=True,
    heads={"torchvision": {"head_fc1": "classifier.1", "head_fc2": "classifier.4", "head_predictions": "classifier.6"}},
    head_modules=("classifier",),
    signature=r"stage5_conv",  # five conv stages named stageN_conv (LeNet has three)
))


def _alexnet(*, convs, pooled_size, hidden_units, input_shape, num_classes, include_top, pooling,
             classifier_activation, dropout, width, name):
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    width = check_width(width)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, (filters, kernel, stride, pad, max_pool) in enumerate(convs, start=1):
        x = blocks.conv_bn_act(x, scaled(filters, width), kernel, strides=stride, padding=pad,
                               batch_norm_=False, act="relu", name=f"stage{i}")
        if max_pool:
            x = blocks.pool(x, "max", pool_size=3, strides=2, name=f"stage{i}")
    if include_top and pooled_size:
        x = blocks.adaptive_avg_pool(x, pooled_size, name="head_adaptive_avgpool")
    x = blocks.classifier_head(
        x,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        flatten=True,
        hidden_units=tuple(scaled(u, width) for u in hidden_units),
        dropout=dropout,
        dropout_first=True,
    )
    return keras.Model(inputs, x, name=name)


def _card(kind, default_input_shape, min_input_size):
    return dict(
        family="alexnet",
        default_input_shape=default_input_shape,
        min_input_size=min_input_size,
        reference="Krizhevsky et al., NeurIPS 2012; torchvision alexnet layout",
        tags=("image", "pooling", "stages", "classic", "width", kind),
        test_kwargs={"input_shape": (min_input_size + 1,) * 2 + (3,), "width": 0.0625},
    )


@variant(card=_card("imagenet", (224, 224, 3), MIN_INPUT_SIZE),
         params=keras_params(1000, ("dropout", 0.5), ("width", 1.0)))
def alexnet(**kw):
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
    return _alexnet(**ALEXNET_LAYOUTS["alexnet"], **kw)


@variant(card=_card("cifar", (32, 32, 3), CIFAR_MIN_INPUT_SIZE),
         params=keras_params(10, ("dropout", 0.5), ("width", 1.0)))
def alexnet_cifar(**kw):
    """An AlexNet-style network for 32x32 images (5 convs, 3 FC layers, ReLU, dropout)."""
    return _alexnet(**ALEXNET_LAYOUTS["alexnet_cifar"], **kw)
