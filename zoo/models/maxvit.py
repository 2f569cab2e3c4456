"""MaxViT: torchvision's ``maxvit_t``.

References:
    Tu, Talebi, Zhang, Yang, Milanfar, Bovik & Li, "MaxViT: Multi-Axis Vision Transformer", ECCV 2022
    (arXiv:2204.01697); torchvision's ``maxvit.py``.

Layer names: ``stem_*`` (torchvision's ``stem``: a 3x3/2 convolution, BatchNorm and GELU, then a 3x3 convolution
with bias); ``stage{s}_block{b}_*`` for torchvision's ``blocks.{s-1}.layers.{b-1}`` (a ``MaxVitLayer``): its
MBConv ``_mbconv_*``, its window ("block") attention ``_window_*`` and its grid attention ``_grid_*``;
``head_*`` (pooling, LayerNorm, Linear, Tanh, Linear without bias). Every tensor is an NHWC map, so each stage
ends on a map (``stage{s}_block{n}_grid_add2``).

torchvision partitions the map into sequences, normalises, projects and runs its MLP on them; all of these act
on each position alone, so here they act on the map (LayerNorm and ``Dense`` on the channel axis) and only the
attention itself partitions: :class:`PartitionAttention` takes the map of queries, keys and values and returns the
map of attended values. It is the one layer Keras has no counterpart of: a saved model needs ``import zoo``.
Stochastic depth ("row" mode) is ``Dropout`` with one draw per sample; torchvision's BatchNorm here has
``eps=1e-3, momentum=0.01`` (Keras momentum 0.99).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.models.swin import relative_position_index
from zoo.utils import check_float, check_int, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's settings: name -> (stem channels, block channels, layers per block, stochastic_depth_prob).
MAXVIT_SPECS = {
    "maxvit_t": (64, (64, 128, 256, 512), (2, 2, 5, 2), 0.2),
}
HEAD_DIM = 32
PARTITION = 7
BN_EPSILON, BN_MOMENTUM = 1e-3, 0.99
LN_EPSILON = 1e-5
EXPANSION, SQUEEZE, MLP_RATIO = 4, 0.25, 4
MIN_INPUT_SIZE = 32  # five halvings to a 1x1 map (with partition_size=1; 32 * partition_size in general)


@keras.saving.register_keras_serializable(package="zoo")
class PartitionAttention(keras.layers.Layer):
    """torchvision's ``RelativePositionalMultiHeadAttention`` between its ``to_qkv`` and ``merge`` Linear layers,
    with the partitioning around it: a ``(B, H, W, 3C)`` map of queries, keys and values in, the ``(B, H, W, C)``
    map of attended values out. ``kind="window"`` attends within each ``partition x partition`` window;
    ``kind="grid"`` within each of the sparse grids of ``partition x partition`` positions ``H / partition``
    rows (``W / partition`` columns) apart. The keys are scaled by ``C ** -0.5`` (torchvision's ``feat_dim``,
    not the head's), the learned relative position bias added before the softmax.

    Its weights are torchvision's tensors in torch's layout, named by :attr:`torch_leaves`:
    ``relative_position_bias_table`` (trainable) and the buffer ``relative_position_index`` (``(N, N)``).

    Args:
        partition: the side of a window / grid (torchvision's ``partition_size``).
        num_heads: attention heads (they divide ``C``).
        kind: ``"window"`` or ``"grid"``.
    """

    torch_leaves = ("relative_position_bias_table", "relative_position_index")

    def __init__(self, partition, num_heads, kind="window", **kwargs):
        super().__init__(**kwargs)
        if kind not in ("window", "grid"):
            raise ValueError(f"`kind` must be 'window' or 'grid'. Received: kind={kind!r}")
        self.partition = int(partition)
        self.num_heads = int(num_heads)
        self.kind = kind

    def build(self, input_shape):
        height, width, channels = input_shape[1:]
        p = self.partition
        if height is None or width is None or height % p or width % p:
            raise ValueError(f"PartitionAttention needs a map of whole {p}x{p} partitions. "
                             f"Received: input_shape={tuple(input_shape)}")
        if channels % (3 * self.num_heads):
            raise ValueError(f"PartitionAttention needs 3 x {self.num_heads} heads x channels per head. "
                             f"Received: input_shape={tuple(input_shape)}")
        n = p * p
        self.table = self.add_weight(shape=((2 * p - 1) ** 2, self.num_heads), name="relative_position_bias_table",
                                     initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        self.index = self.add_weight(shape=(n, n), dtype="int32", trainable=False,
                                     initializer=keras.initializers.Constant(relative_position_index(p).reshape(n, n)),
                                     name="relative_position_index")

    def call(self, inputs):
        _, height, width, c3 = inputs.shape
        p, heads = self.partition, self.num_heads
        channels = c3 // 3
        d = channels // heads
        rows, cols = height // p, width // p
        n = p * p
        if self.kind == "window":  # B, rows, i, cols, j: a sequence is one window (i, j)
            x = ops.reshape(inputs, (-1, rows, p, cols, p, 3, heads, d))
            x = ops.transpose(x, (5, 0, 1, 3, 6, 2, 4, 7))
        else:  # B, i, a, j, b: a sequence is one grid (i, j) at offset (a, b)
            x = ops.reshape(inputs, (-1, p, rows, p, cols, 3, heads, d))
            x = ops.transpose(x, (5, 0, 2, 4, 6, 1, 3, 7))
        x = ops.reshape(x, (3, -1, rows * cols, heads, n, d))  # 3, B, sequences, heads, N, d
        k = x[1] * (channels ** -0.5)
        bias = ops.take(self.table, ops.reshape(ops.cast(self.index, "int32"), (-1,)), axis=0)
        bias = ops.transpose(ops.reshape(bias, (n, n, heads)), (2, 0, 1))
        attn = ops.matmul(x[0], ops.swapaxes(k, -1, -2)) + ops.cast(bias, x.dtype)
        out = ops.matmul(ops.cast(ops.softmax(attn, axis=-1), x.dtype), x[2])  # B, sequences, heads, N, d
        out = ops.reshape(out, (-1, rows, cols, heads, p, p, d))
        perm = (0, 1, 4, 2, 5, 3, 6) if self.kind == "window" else (0, 4, 1, 5, 2, 3, 6)
        return ops.reshape(ops.transpose(out, perm), (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], input_shape[3] // 3)

    def compute_macs(self, input_shape):
        """Multiply-adds per sample of ``q @ k^T`` and ``attn @ v`` (read by :func:`zoo.profile`)."""
        _, height, width, c3 = input_shape
        return 2 * height * width * self.partition ** 2 * (c3 // 3)

    def get_config(self):
        return {**super().get_config(), "partition": self.partition, "num_heads": self.num_heads, "kind": self.kind}


# torchvision's keys: a MaxVitLayer is `blocks.{s-1}.layers.{b-1}.layers`, holding `MBconv`, `window_attention`
# and `grid_attention`; the MBConv's shortcut is `proj` (AvgPool2d, Conv2d: the first layer of a block strides).
_MBCONV = {"shortcut_conv": "proj.1", "prenorm": "layers.pre_norm", "expand_conv": "layers.conv_a.0",
           "expand_bn": "layers.conv_a.1", "dw_conv": "layers.conv_b.0", "dw_bn": "layers.conv_b.1",
           "se_reduce": "layers.squeeze_excitation.fc1", "se_expand": "layers.squeeze_excitation.fc2",
           "project": "layers.conv_c"}
_PARTITION = {"norm1": "attn_layer.0", "qkv": "attn_layer.1.to_qkv", "attn": "attn_layer.1",
              "merge": "attn_layer.1.merge", "norm2": "mlp_layer.0", "fc1": "mlp_layer.1", "fc2": "mlp_layer.3"}


def _layer_key(g):
    return f"blocks.{int(g[0]) - 1}.layers.{int(g[1]) - 1}.layers"


KEY_RULES = register_key_rules("maxvit", KeyRules(
    modules=(
        (r"stem_conv1", "stem.0.0"), (r"stem_bn", "stem.0.1"), (r"stem_conv2", "stem.1.0"),
        (r"stage(\d+)_block(\d+)_mbconv_(\w+)", lambda g, names: f"{_layer_key(g)}.MBconv.{_MBCONV[g[2]]}"),
        (r"stage(\d+)_block(\d+)_(window|grid)_(\w+)",
         lambda g, names: f"{_layer_key(g)}.{g[2]}_attention.{_PARTITION[g[3]]}"),
        (r"head_norm", "classifier.2"), (r"head_fc", "classifier.3"), (r"head_predictions", "classifier.5"),
    ),
    head_modules=("classifier",),
    signature=r"stage\d+_block\d+_grid_attn",
))


def _init():
    """torchvision's initialisation of every Conv2d and Linear: normal, standard deviation 0.02 (the builder's
    ``kernel_initializer``, when given, instead)."""
    return blocks._initializer(keras.initializers.RandomNormal(stddev=0.02))


def _bn(x, *, name):
    return blocks.batch_norm(x, epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _layer_norm(x, *, name):
    return layers.LayerNormalization(epsilon=LN_EPSILON, name=name)(x)


def _conv(x, filters, kernel_size, *, strides=1, groups=1, use_bias=True, name):
    return blocks.conv2d(x, filters, kernel_size, strides=strides, padding=kernel_size // 2, groups=groups,
                         use_bias=use_bias, kernel_initializer=_init(), name=name)


def _drop(x, rate, *, name):
    return layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=name)(x)


def mbconv(x, out, *, stride, drop_rate, name):
    """torchvision's MaxViT ``MBConv``: BatchNorm, 1x1 expansion to 4x ``out`` + BN + GELU, depthwise 3x3 (at
    ``stride``) + BN + GELU, squeeze-excitation (``out / 4`` channels, SiLU, sigmoid), 1x1 projection with bias,
    stochastic depth; plus the input, through 3x3/2 average pooling (zeros counted) and a 1x1 convolution when
    the shape changes."""
    mid, squeeze = int(out * EXPANSION), int(out * SQUEEZE)
    shortcut = x
    if stride != 1 or x.shape[-1] != out:
        if stride == 2:
            shortcut = layers.ZeroPadding2D(1, name=f"{name}_shortcut_pad")(shortcut)
            shortcut = layers.AveragePooling2D(3, strides=2, name=f"{name}_shortcut_pool")(shortcut)
        shortcut = _conv(shortcut, out, 1, name=f"{name}_shortcut_conv")
    y = _bn(x, name=f"{name}_prenorm")
    y = _conv(y, mid, 1, use_bias=False, name=f"{name}_expand_conv")
    y = layers.Activation("gelu", name=f"{name}_expand_gelu")(_bn(y, name=f"{name}_expand_bn"))
    y = _conv(y, mid, 3, strides=stride, groups=mid, use_bias=False, name=f"{name}_dw_conv")
    y = layers.Activation("gelu", name=f"{name}_dw_gelu")(_bn(y, name=f"{name}_dw_bn"))
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(y)
    s = layers.Activation("silu", name=f"{name}_se_silu")(_conv(s, squeeze, 1, name=f"{name}_se_reduce"))
    s = layers.Activation("sigmoid", name=f"{name}_se_sigmoid")(_conv(s, mid, 1, name=f"{name}_se_expand"))
    y = layers.Multiply(name=f"{name}_se_scale")([y, s])
    y = _conv(y, out, 1, name=f"{name}_project")
    y = _drop(y, drop_rate, name=f"{name}_stochastic_depth")
    return layers.Add(name=f"{name}_add")([shortcut, y])


def partition_attention(x, *, kind, partition, num_heads, drop_rate, name):
    """torchvision's ``PartitionAttentionLayer``: LayerNorm, relative-position multi-head attention in windows or
    grids (``to_qkv``, :class:`PartitionAttention`, ``merge``), stochastic depth, plus the input; LayerNorm, Linear
    to 4x, exact GELU, Linear back, stochastic depth, plus the input."""
    channels = x.shape[-1]
    y = _layer_norm(x, name=f"{name}_norm1")
    y = layers.Dense(3 * channels, kernel_initializer=_init(), name=f"{name}_qkv")(y)
    y = PartitionAttention(partition, num_heads, kind, name=f"{name}_attn")(y)
    y = layers.Dense(channels, kernel_initializer=_init(), name=f"{name}_merge")(y)
    x = layers.Add(name=f"{name}_add1")([x, _drop(y, drop_rate, name=f"{name}_stochastic_depth1")])
    y = _layer_norm(x, name=f"{name}_norm2")
    y = layers.Dense(MLP_RATIO * channels, kernel_initializer=_init(), name=f"{name}_fc1")(y)
    y = layers.Activation("gelu", name=f"{name}_gelu")(y)  # Keras' gelu is exact (erf), as torch's
    y = layers.Dense(channels, kernel_initializer=_init(), name=f"{name}_fc2")(y)
    return layers.Add(name=f"{name}_add2")([x, _drop(y, drop_rate, name=f"{name}_stochastic_depth2")])


def maxvit_layer(x, out, *, stride, partition, head_dim, drop_rate, name):
    """torchvision's ``MaxVitLayer``: MBConv, window attention, grid attention."""
    x = mbconv(x, out, stride=stride, drop_rate=drop_rate, name=f"{name}_mbconv")
    for kind in ("window", "grid"):
        x = partition_attention(x, kind=kind, partition=partition, num_heads=out // head_dim, drop_rate=drop_rate,
                                name=f"{name}_{kind}")
    return x


def _maxvit(variant_name, *, input_shape, num_classes, include_top, pooling, classifier_activation, width,
            partition_size, stochastic_depth, name):
    width = check_width(width)
    partition_size = check_int("partition_size", partition_size, minimum=1, maximum=64)
    stochastic_depth = check_float("stochastic_depth", stochastic_depth, minimum=0.0, maximum=1.0,
                                   max_inclusive=False)
    stem, widths, depths, _ = MAXVIT_SPECS[variant_name]
    for s in range(1, len(widths) + 1):  # torchvision's check: every block's map holds whole partitions
        size = tuple(None if v is None else _halve(v, s + 1) for v in input_shape[:2])
        if None in size or size[0] % partition_size or size[1] % partition_size:
            raise ValueError(f"MaxViT needs every stage's map divisible by partition_size={partition_size} (stage "
                             f"{s}'s is {size}): an input side a multiple of {32 * partition_size}. "
                             f"Received: input_shape={input_shape}")
    head_dim = scaled(HEAD_DIM, width)
    stem, widths = scaled(stem, width), [scaled(w, width) for w in widths]
    rates = np.linspace(0, stochastic_depth, sum(depths)).tolist()
    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv(inputs, stem, 3, strides=2, use_bias=False, name="stem_conv1")
    x = layers.Activation("gelu", name="stem_gelu")(_bn(x, name="stem_bn"))
    x = _conv(x, stem, 3, name="stem_conv2")
    for s, (w, n) in enumerate(zip(widths, depths), start=1):
        for b in range(1, n + 1):
            x = maxvit_layer(x, w, stride=2 if b == 1 else 1, partition=partition_size, head_dim=head_dim,
                             drop_rate=rates.pop(0), name=f"stage{s}_block{b}")
    if not include_top:
        x = blocks.classifier_head(x, num_classes=num_classes, include_top=False, pooling=pooling)
    else:
        x = layers.GlobalAveragePooling2D(name="head_avgpool")(x)
        x = _layer_norm(x, name="head_norm")
        x = layers.Dense(widths[-1], activation="tanh", kernel_initializer=_init(), name="head_fc")(x)
        act = None if classifier_activation in (None, "linear") else classifier_activation
        x = layers.Dense(num_classes, activation=act, use_bias=False, dtype="float32", kernel_initializer=_init(),
                         name="head_predictions")(x)
    return keras.Model(inputs, x, name=name)


def _halve(v, times):
    """torchvision's ``_get_conv_output_shape`` of a 3x3/2 convolution with padding 1, ``times`` over."""
    for _ in range(times):
        v = (v - 1) // 2 + 1
    return v


_TAGS = ("image", "pooling", "stages", "residual", "width", "imagenet")


def _card(variant_name):
    return dict(
        family="maxvit",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="Tu et al., MaxViT: Multi-Axis Vision Transformer, ECCV 2022; torchvision maxvit layout",
        tags=_TAGS,
        # 2x2 partitions at 64 pixels (stage maps 16, 8, 4, 2); no stochastic depth: the one training step of
        # the tests must update every layer's weights
        test_kwargs={"input_shape": (64, 64, 3), "width": 0.125, "partition_size": 2, "stochastic_depth": 0.0},
    )


_ARGS_DOC = """
    Args:
        width: multiplier on every stage's channels, the heads kept (each head's 32 channels scaled; 1.0 is
            torchvision's).
        partition_size: the side of the attention windows and grids (torchvision's 7); every stage's map must
            hold whole partitions, so the input's sides are multiples of ``32 * partition_size``.
        stochastic_depth: torchvision's ``stochastic_depth_prob``: the last layer's rate of dropping its residual
            branches in training, the rates growing linearly from 0 at the first layer (identity at inference).
""" + STAGED_DOC_TAIL


def _params(variant_name):
    return keras_params(1000, ("width", 1.0), ("partition_size", PARTITION),
                        ("stochastic_depth", MAXVIT_SPECS[variant_name][3]))


@variant(card=_card("maxvit_t"), params=_params("maxvit_t"), doc=_ARGS_DOC)
def maxvit_t(**kw):
    """MaxViT-T, layer for layer as torchvision's ``maxvit_t`` (30,919,624 parameters)."""
    return _maxvit("maxvit_t", **kw)
