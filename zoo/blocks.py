"""Shared tensor -> tensor building blocks.

Every block takes a required ``name`` prefix; layer names are API (freezing,
head replacement and saved weights rely on them), so never rename them.
Stages are name prefixes: ``stem_*``, ``stage1_*``, ..., ``head_*``.
"""

from __future__ import annotations

import contextlib
import contextvars
import re

import keras
from keras import layers

from zoo.layers import AdaptiveAveragePooling2D, Maxout
from zoo.utils import activation_units, check_activation

# The names every zoo model gives its layers: stem_*, stageN_* (blocks stageN_blockB_*), head_*.
_STAGE = re.compile(r"^(stem|stage\d+|head)(?:_|$)")
_UNIT = re.compile(r"^(stage\d+_block\d+|stem|stage\d+|head)(?:_|$)")


def stage_of(name: str) -> str | None:
    """``"stage3"`` for ``"stage3_block2_conv1"``; ``None`` for names outside any stage."""
    m = _STAGE.match(name)
    return m.group(1) if m else None


def unit_of(name: str) -> str | None:
    """The smallest freezable unit of a layer: its block (``stage3_block2``) or its stage."""
    m = _UNIT.match(name)
    return m.group(1) if m else None


# torchvision's BatchNorm defaults (eps=1e-5, momentum=0.1 <=> Keras momentum 0.9),
# so that converted checkpoints give the same outputs.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def activation(x, act, *, name):
    """An activation layer named ``{name}_{act}`` (``act`` without its parameter): Keras' ``Activation``, or
    ``LeakyReLU`` with a given slope, ``PReLU`` (one slope per channel) or :class:`zoo.layers.Maxout`."""
    act = check_activation("activation", act)
    base, _, argument = act.partition(":")
    if base == "linear":
        return x
    if base == "leaky_relu" and argument:
        return layers.LeakyReLU(negative_slope=float(argument), name=f"{name}_leaky_relu")(x)
    if base == "prelu":
        shared = list(range(1, len(x.shape) - 1)) or None  # one slope per channel, as torch's per-channel PReLU
        return layers.PReLU(shared_axes=shared, name=f"{name}_prelu")(x)
    if base == "maxout":
        return Maxout(int(argument or 2), name=f"{name}_maxout")(x)
    return layers.Activation(act, name=f"{name}_{act}")(x)


_KERNEL_INITIALIZER = contextvars.ContextVar("zoo_kernel_initializer", default=None)


@contextlib.contextmanager
def kernel_initializer(value):
    """Inside the block, every block's ``Conv2D`` and ``Dense`` starts from ``value`` (a Keras initializer
    name, dict or object) instead of its family's default; ``None`` keeps the defaults. The shared builder
    prologue sets it from a builder's ``kernel_initializer`` argument."""
    token = _KERNEL_INITIALIZER.set(value)
    try:
        yield
    finally:
        _KERNEL_INITIALIZER.reset(token)


def _initializer(default):
    chosen = _KERNEL_INITIALIZER.get()
    return default if chosen is None else chosen


def batch_norm(x, *, name, epsilon=BN_EPSILON, momentum=BN_MOMENTUM):
    return layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)(x)


def symmetric_padding(x, padding, kernel_size, strides=1, *, name):
    """Apply torchvision-style symmetric ``padding`` (an int); returns ``(x, keras_padding)``.

    With stride 1 and an odd kernel, Keras' ``"same"`` pads exactly
    ``(k - 1) / 2`` on each side, so no extra layer is needed. Strided
    convolutions and pools get an explicit ``ZeroPadding2D`` (``{name}_pad``)
    and ``"valid"``: Keras' ``"same"`` would pad asymmetrically there.
    Strings (``"same"``/``"valid"``) pass through.
    """
    if not isinstance(padding, int):
        return x, padding
    if padding == 0:
        return x, "valid"
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    s = strides if isinstance(strides, int) else strides[0]
    if s == 1 and 2 * padding == k - 1:
        return x, "same"
    return layers.ZeroPadding2D(padding, name=f"{name}_pad")(x), "valid"


def conv_bn_act(
    x,
    filters,
    kernel_size,
    *,
    strides=1,
    padding="same",
    batch_norm_=True,
    act="relu",
    use_bias=None,
    groups=1,
    kernel_initializer="he_normal",
    kernel_regularizer=None,
    dilation_rate=1,
    name,
):
    """Conv2D -> (BatchNorm) -> (activation).

    ``padding`` may be ``"same"``, ``"valid"`` or an int: an int pads
    symmetrically, as torchvision does (see :func:`symmetric_padding`).
    Convolutions followed by BatchNorm have no bias unless ``use_bias=True``.
    """
    x, padding = symmetric_padding(x, padding, kernel_size, strides, name=name)
    if use_bias is None:
        use_bias = not batch_norm_
    x = layers.Conv2D(
        activation_units(check_activation("activation", act), filters),  # maxout: pieces x filters
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        groups=groups,
        kernel_initializer=_initializer(kernel_initializer),
        kernel_regularizer=kernel_regularizer,
        dilation_rate=dilation_rate,
        name=f"{name}_conv",
    )(x)
    if batch_norm_:
        x = batch_norm(x, name=f"{name}_bn")
    if act is not None:
        x = activation(x, act, name=name)
    return x


def pool(x, kind, *, pool_size=2, strides=None, padding="valid", name):
    """Max or average pooling (``kind`` in {"max", "avg"}); ``None`` is a no-op."""
    if kind is None:
        return x
    x, padding = symmetric_padding(x, padding, pool_size, strides or pool_size, name=name)
    cls = {"max": layers.MaxPooling2D, "avg": layers.AveragePooling2D}[kind]
    return cls(pool_size, strides=strides, padding=padding, name=f"{name}_{kind}pool")(x)


def classifier_head(
    x,
    *,
    num_classes,
    include_top=True,
    pooling=None,
    classifier_activation="softmax",
    flatten=False,
    hidden_units=(),
    act="relu",
    dropout=0.0,
    dropout_first=False,
    name="head",
):
    """Pool/flatten, optional hidden Dense layers, and the prediction layer.

    With ``include_top=False`` it returns the feature map (``pooling=None``) or
    its global ``"avg"``/``"max"`` pooling, as keras.applications do.
    ``dropout_first`` puts dropout before each Dense layer (torchvision's
    AlexNet/VGG classifiers); otherwise it follows each hidden activation.
    """
    if not include_top:
        if pooling == "avg":
            x = layers.GlobalAveragePooling2D(name=f"{name}_avgpool")(x)
        elif pooling == "max":
            x = layers.GlobalMaxPooling2D(name=f"{name}_maxpool")(x)
        return x
    if len(x.shape) == 4:
        if flatten:
            x = layers.Flatten(name=f"{name}_flatten")(x)
        else:
            x = layers.GlobalAveragePooling2D(name=f"{name}_avgpool")(x)
    for i, units in enumerate(hidden_units, start=1):
        if dropout and dropout_first:
            x = layers.Dropout(dropout, name=f"{name}_dropout{i}")(x)
        x = layers.Dense(activation_units(check_activation("activation", act), units),
                         kernel_initializer=_initializer("glorot_uniform"), name=f"{name}_fc{i}")(x)
        x = activation(x, act, name=f"{name}_fc{i}")
        if dropout and not dropout_first:
            x = layers.Dropout(dropout, name=f"{name}_dropout{i}")(x)
    if dropout and not hidden_units and not dropout_first:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return predictions(x, num_classes, classifier_activation, name=name)


def predictions(x, units, classifier_activation, *, name="head"):
    act = None if classifier_activation in (None, "linear") else classifier_activation
    # Keep the output in float32 under mixed precision so losses stay stable.
    return layers.Dense(units, activation=act, dtype="float32", kernel_initializer=_initializer("glorot_uniform"),
                        name=f"{name}_predictions")(x)


# ---------------------------------------------------------------------------
# Residual and dense blocks. Layers are created in the reference's forward
# order (torchvision ``BasicBlock``/``Bottleneck``/``_DenseLayer``/``_Transition``;
# He et al. 2016b for pre-activation) and named ``{name}_conv1``, ``{name}_bn1``, ...


def conv2d(x, filters, kernel_size, *, strides=1, padding=0, groups=1, use_bias=False,
           kernel_initializer="he_normal", name):
    """A Conv2D named ``name`` with torchvision's symmetric int ``padding`` (see :func:`symmetric_padding`);
    ``groups`` splits the channels as torch's ``groups`` (both counts divisible by it)."""
    x, padding = symmetric_padding(x, padding, kernel_size, strides, name=name)
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups, use_bias=use_bias,
                         kernel_initializer=_initializer(kernel_initializer), name=name)(x)


def bn_relu(x, *, name, suffix=""):
    """BatchNorm then ReLU, named ``{name}_bn{suffix}`` and ``{name}_relu{suffix}``."""
    x = batch_norm(x, name=f"{name}_bn{suffix}")
    return layers.Activation("relu", name=f"{name}_relu{suffix}")(x)


@keras.saving.register_keras_serializable(package="zoo")
class ChannelZeroPadding(layers.Layer):
    """Appends zero channels: ``padding=(before, after)`` on the last axis.

    The parameter-free half of He et al.'s option-A shortcut (the other half is
    a strided subsample); torch implementations write it ``F.pad(x, (0, 0, 0, 0, p, p))``.
    """

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        before, after = padding
        self.padding = (int(before), int(after))

    def call(self, inputs):
        pads = [[0, 0]] * (len(inputs.shape) - 1) + [list(self.padding)]
        return keras.ops.pad(inputs, pads)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels + sum(self.padding))

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def zero_channels(x, padding, *, name):
    """Append ``padding=(before, after)`` zero channels with built-in layers only.

    ``Reshape`` to ``(h, w, c, 1)``, ``ZeroPadding3D`` on the channel axis (named ``name``), ``Reshape`` back:
    a saved model then loads in plain Keras, without ``import zoo`` (:class:`ChannelZeroPadding`, the
    same as one custom layer, is kept so that models saved before still load).
    """
    h, w, c = x.shape[1:]
    x = layers.Reshape((h, w, c, 1), name=f"{name}_expand")(x)
    x = layers.ZeroPadding3D(((0, 0), (0, 0), tuple(padding)), name=name)(x)
    return layers.Reshape((h, w, c + sum(padding)), name=f"{name}_squeeze")(x)


def adaptive_avg_pool(x, output_size, *, name):
    """Average-pool to ``output_size`` with torch's adaptive bins (``nn.AdaptiveAvgPool2d``).

    Keras' built-in ``AdaptiveAveragePooling2D`` (same bins; a saved model loads without ``import zoo``)
    when the map is at least the output's size, :class:`zoo.layers.AdaptiveAveragePooling2D` when it is
    smaller (torchvision's VGG/AlexNet heads on small inputs repeat cells; the built-in refuses that).
    """
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if x.shape[1] >= size[0] and x.shape[2] >= size[1]:
        return layers.AdaptiveAveragePooling2D(size, name=name)(x)
    return AdaptiveAveragePooling2D(size, name=name)(x)


def shortcut(x, filters, *, stride=1, kind="B", name):
    """A residual shortcut: identity when the shape is kept, otherwise

    * ``kind="A"``: strided subsample and zero channels split evenly on both sides
      (parameter-free; He et al. 2016's CIFAR choice, as in akamaster/pytorch_resnet_cifar10);
    * ``kind="B"``: projection, 1x1 conv (stride ``stride``) + BN (torchvision ``downsample``).
    """
    if stride == 1 and x.shape[-1] == filters:
        return x
    if kind == "A":
        if stride > 1:
            x = layers.AveragePooling2D(1, strides=stride, name=f"{name}_shortcut_subsample")(x)
        pad = filters - x.shape[-1]
        if pad:
            x = zero_channels(x, (pad // 2, pad - pad // 2), name=f"{name}_shortcut_pad")
        return x
    x = conv2d(x, filters, 1, strides=stride, name=f"{name}_shortcut_conv")
    return batch_norm(x, name=f"{name}_shortcut_bn")


def basic_block(x, filters, *, stride=1, shortcut_kind="B", name):
    """ResNet basic block (torchvision ``BasicBlock``): conv3x3-BN-ReLU-conv3x3-BN, + shortcut, ReLU."""
    y = conv2d(x, filters, 3, strides=stride, padding=1, name=f"{name}_conv1")
    y = bn_relu(y, name=name, suffix="1")
    y = conv2d(y, filters, 3, padding=1, name=f"{name}_conv2")
    y = batch_norm(y, name=f"{name}_bn2")
    s = shortcut(x, filters, stride=stride, kind=shortcut_kind, name=name)
    y = layers.Add(name=f"{name}_add")([y, s])
    return layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_block(x, filters, *, stride=1, expansion=4, groups=1, width_per_group=64, shortcut_kind="B", name):
    """ResNet v1.5 bottleneck (torchvision ``Bottleneck``): 1x1, 3x3 (strided), 1x1 x ``expansion``.

    The stride sits on the 3x3 conv, not on the first 1x1 as in the original paper. ResNeXt's and
    Wide ResNet's bottleneck is the same with an inner width of ``int(filters * width_per_group / 64) * groups``
    and a grouped 3x3 conv (torchvision's ``width``; at least one channel a group for narrow models).
    """
    inner = max(1, int(filters * width_per_group / 64)) * groups
    y = conv2d(x, inner, 1, name=f"{name}_conv1")
    y = bn_relu(y, name=name, suffix="1")
    y = conv2d(y, inner, 3, strides=stride, padding=1, groups=groups, name=f"{name}_conv2")
    y = bn_relu(y, name=name, suffix="2")
    y = conv2d(y, filters * expansion, 1, name=f"{name}_conv3")
    y = batch_norm(y, name=f"{name}_bn3")
    s = shortcut(x, filters * expansion, stride=stride, kind=shortcut_kind, name=name)
    y = layers.Add(name=f"{name}_add")([y, s])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _preact_split(x, filters, *, stride, preact, name):
    # He et al. 2016b: one BN-ReLU before splitting into the two paths; a
    # projection shortcut (1x1 conv, no BN) takes the pre-activated tensor,
    # an identity shortcut the raw one.
    y = bn_relu(x, name=f"{name}_preact") if preact else x
    if stride == 1 and x.shape[-1] == filters:
        return y, x
    return y, conv2d(y, filters, 1, strides=stride, name=f"{name}_shortcut_conv")


def preact_basic_block(x, filters, *, stride=1, preact=True, name):
    """Full pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 + shortcut (no ReLU after).

    ``preact=False`` skips the leading BN-ReLU when the input is already
    activated (the first block after a conv-BN-ReLU stem).
    """
    y, s = _preact_split(x, filters, stride=stride, preact=preact, name=name)
    y = conv2d(y, filters, 3, strides=stride, padding=1, name=f"{name}_conv1")
    y = bn_relu(y, name=name, suffix="1")
    y = conv2d(y, filters, 3, padding=1, name=f"{name}_conv2")
    return layers.Add(name=f"{name}_add")([y, s])


def preact_bottleneck_block(x, filters, *, stride=1, expansion=4, preact=True, name):
    """Full pre-activation bottleneck: BN-ReLU-1x1, BN-ReLU-3x3 (strided), BN-ReLU-1x1 + shortcut."""
    y, s = _preact_split(x, filters * expansion, stride=stride, preact=preact, name=name)
    y = conv2d(y, filters, 1, name=f"{name}_conv1")
    y = bn_relu(y, name=name, suffix="1")
    y = conv2d(y, filters, 3, strides=stride, padding=1, name=f"{name}_conv2")
    y = bn_relu(y, name=name, suffix="2")
    y = conv2d(y, filters * expansion, 1, name=f"{name}_conv3")
    return layers.Add(name=f"{name}_add")([y, s])


def dense_layer(x, growth_rate, *, bn_size=4, name):
    """DenseNet-B layer (torchvision ``_DenseLayer``): BN-ReLU-conv1x1(bn_size*k)-BN-ReLU-conv3x3(k),
    concatenated to its input."""
    y = bn_relu(x, name=name, suffix="1")
    y = conv2d(y, bn_size * growth_rate, 1, name=f"{name}_conv1")
    y = bn_relu(y, name=name, suffix="2")
    y = conv2d(y, growth_rate, 3, padding=1, name=f"{name}_conv2")
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def dense_block(x, num_layers, growth_rate, *, bn_size=4, name):
    """``num_layers`` dense layers named ``{name}_block1`` ... ``{name}_block{num_layers}``."""
    for i in range(1, num_layers + 1):
        x = dense_layer(x, growth_rate, bn_size=bn_size, name=f"{name}_block{i}")
    return x


def transition(x, filters, *, name):
    """DenseNet transition (torchvision ``_Transition``): BN-ReLU-conv1x1-avgpool 2x2/2."""
    x = bn_relu(x, name=name)
    x = conv2d(x, filters, 1, name=f"{name}_conv")
    return pool(x, "avg", pool_size=2, strides=2, name=name)


def stem(x, filters, *, kind, activate=True, name="stem"):
    """The input stem of ResNet-like networks.

    ``kind="imagenet"``: conv7x7/2-BN-ReLU then max-pool 3x3/2 (torchvision ResNet
    and DenseNet; zero padding before the pool is exact because it follows a ReLU).
    ``kind="cifar"``: one conv3x3/1 and no pooling, keeping 32x32 maps for stage 1;
    followed by BN-ReLU when ``activate`` (pre-activation networks leave that to
    their first block).
    """
    if kind == "imagenet":
        x = conv_bn_act(x, filters, 7, strides=2, padding=3, name=name)
        return pool(x, "max", pool_size=3, strides=2, padding=1, name=f"{name}_pool")
    return conv_bn_act(x, filters, 3, padding=1, batch_norm_=activate, use_bias=False,
                       act="relu" if activate else None, name=name)
