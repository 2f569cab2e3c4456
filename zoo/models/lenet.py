"""LeNet-5.

Reference: LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to
document recognition", Proc. IEEE 1998.
"""

from __future__ import annotations

import keras
from keras import layers

from zoo import blocks
from zoo.models._variants import keras_params, variant
from zoo.utils import check_choice

# The 1998 network: C1 6@5x5 -> S2 -> C3 16@5x5 -> S4 -> C5 120@5x5 -> F6 84 -> output.
LENET_LAYERS = {"c1": 6, "c3": 16, "c5": 120, "f6": 84}
LENET_VARIANTS = {
    "classic": {"activation": "tanh", "pool": "avg"},  # as published (61,706 params for 10 classes)
    "modern": {"activation": "relu", "pool": "max"},  # same layout, today's defaults
}
DESIGN_SIZE = 32
# The paper centred 28x28 MNIST digits in a 32x32 field; smaller inputs are padded likewise.
MIN_SIZE = 28


def _lenet(*, variant, input_shape, num_classes, include_top, pooling, classifier_activation, name):
    variant = check_choice("variant", variant, tuple(LENET_VARIANTS))
    act, kind = LENET_VARIANTS[variant]["activation"], LENET_VARIANTS[variant]["pool"]
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    h, w = input_shape[0] or DESIGN_SIZE, input_shape[1] or DESIGN_SIZE
    if h < DESIGN_SIZE or w < DESIGN_SIZE:
        ph, pw = max(0, DESIGN_SIZE - h), max(0, DESIGN_SIZE - w)
        x = layers.ZeroPadding2D(((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), name="stem_pad")(x)
    x = blocks.conv_bn_act(x, LENET_LAYERS["c1"], 5, padding="valid", batch_norm_=False, act=act,
                           kernel_initializer="glorot_uniform", name="stage1")
    x = blocks.pool(x, kind, pool_size=2, name="stage1")
    x = blocks.conv_bn_act(x, LENET_LAYERS["c3"], 5, padding="valid", batch_norm_=False, act=act,
                           kernel_initializer="glorot_uniform", name="stage2")
    x = blocks.pool(x, kind, pool_size=2, name="stage2")
    x = blocks.conv_bn_act(x, LENET_LAYERS["c5"], 5, padding="valid", batch_norm_=False, act=act,
                           kernel_initializer="glorot_uniform", name="stage3")
    x = blocks.classifier_head(
        x,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        flatten=True,
        hidden_units=(LENET_LAYERS["f6"],),
        act=act,
    )
    return keras.Model(inputs, x, name=name)


_CARD = dict(
    family="lenet",
    default_input_shape=(DESIGN_SIZE, DESIGN_SIZE, 1),
    min_input_size=MIN_SIZE,
    reference="LeCun et al., Gradient-based learning applied to document recognition, Proc. IEEE 1998",
    tags=("image", "pooling", "stages", "classic"),
    test_kwargs={"input_shape": (32, 32, 1)},
)


@variant(card=_CARD, params=keras_params(10, before=(("variant", "classic"),)))
def lenet5(**kw):
    """LeNet-5 as published: tanh and average pooling (61,706 parameters for 10 classes).

    Args:
        variant: ``"classic"`` (tanh, average pooling) or ``"modern"`` (ReLU, max pooling).
        input_shape: ``(32, 32, 1)`` by default; 28x28 inputs are zero-padded to 32x32
            as in the paper; larger inputs widen F6's input.
        num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``.

    Example:
        >>> model = lenet5(num_classes=10)
        >>> model.count_params()
        61706
    """
    return _lenet(**kw)


@variant(card=_CARD, params=keras_params(10))
def lenet5_modern(**kw):
    """LeNet-5 with ReLU and max pooling (same layout and parameter count as the classic one)."""
    return _lenet(variant="modern", **kw)
