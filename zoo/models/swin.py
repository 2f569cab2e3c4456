"""Swin Transformer: torchvision's ``swin_t``, ``swin_s``, ``swin_b`` and ``swin_v2_t``, ``swin_v2_s``, ``swin_v2_b``.

References:
    Liu, Lin, Cao, Hu, Wei, Zhang, Lin & Guo, "Swin Transformer: Hierarchical Vision Transformer using Shifted
    Windows", ICCV 2021 (arXiv:2103.14030); Liu et al., "Swin Transformer V2: Scaling Up Capacity and Resolution",
    CVPR 2022 (arXiv:2111.09883); torchvision's ``swin_transformer.py``.

Layer names: ``stem_*`` (torchvision's ``features.0``: the 4x4/4 patch convolution and its LayerNorm); the blocks
``stage{s}_block{b}_*`` (``features.{2s-1}.{b-1}``); ``stage{s}_downsample_*``, the patch merging that torchvision
puts before stages 2 to 4 (``features.{2s-2}``); ``head_*`` (its final ``norm``, the pooling and ``head``). Every
tensor is an NHWC map, as in torchvision's Swin, so each stage ends on a map (``stage{s}_block{n}_add2``).

A block's attention is built from Keras layers as torchvision computes it: the normalised map is padded at the
bottom and right to whole windows (``_pad``), projected to queries, keys and values by a ``Dense`` on the map
(``_qkv``), attended within each window with the relative position bias (``_attn``, a :class:`WindowAttention`;
on odd blocks it rolls the map by half a window first, attends with the mask that keeps the rolled regions apart
and rolls back, as torchvision does around its ``qkv`` and ``proj``: they act on each position alone; no shift on
an axis whose padded size is one window at most), projected (``_proj``) and cropped. The window attention is the
one layer Keras has no counterpart of: a saved model needs ``import zoo`` to load.
Stochastic depth ("row" mode, as ConvNeXt's) is ``Dropout`` with one draw per sample.

V2 differs as torchvision's V2 does: cosine attention scaled by a learned ``logit_scale`` (clamped at log 100), a
continuous position bias from a small MLP over log-spaced relative coordinates, the queries' and values' bias only
(the keys' is zeroed), LayerNorm after the attention and the MLP (post-norm), and patch merging that normalises
after its Linear. The attention layers keep torchvision's buffers (``relative_position_index``, V2's
``relative_coords_table``) as non-trainable weights, so that a checkpoint loads as into torch.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from zoo import blocks
from zoo.models._variants import STAGED_DOC_TAIL, keras_params, variant
from zoo.utils import check_float, check_int, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's settings: name -> (blocks per stage, heads per stage, stochastic_depth_prob); every head has
# 32 channels at width 1 (embed_dim 96 with 3 heads, 128 with 4), doubled heads and channels at each stage.
SWIN_SPECS = {
    "swin_t": ((2, 2, 6, 2), (3, 6, 12, 24), 0.2),
    "swin_s": ((2, 2, 18, 2), (3, 6, 12, 24), 0.3),
    "swin_b": ((2, 2, 18, 2), (4, 8, 16, 32), 0.5),
    "swin_v2_t": ((2, 2, 6, 2), (3, 6, 12, 24), 0.2),
    "swin_v2_s": ((2, 2, 18, 2), (3, 6, 12, 24), 0.3),
    "swin_v2_b": ((2, 2, 18, 2), (4, 8, 16, 32), 0.5),
}
HEAD_CHANNELS = 32
WINDOW = {1: 7, 2: 8}  # torchvision's window sizes of V1 and V2
PATCH = 4
LN_EPSILON = 1e-5
MLP_RATIO = 4
CPB_HIDDEN = 512  # V2's continuous position bias MLP
MASKED = -100.0  # torchvision's attention mask value between rolled regions
MIN_INPUT_SIZE = 32  # the 4x4/4 patches and three 2x2 merges keep a 1x1 map at 32 pixels


def relative_position_index(window):
    """torchvision's ``relative_position_index``: for each pair of a window's ``window**2`` positions, the row of
    the ``(2 * window - 1) ** 2`` relative offsets (flattened, ``window ** 4`` int64)."""
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    return (rel[..., 0] * (2 * window - 1) + rel[..., 1]).reshape(-1).astype(np.int64)


def relative_coords_table(window):
    """torchvision's V2 ``relative_coords_table``: relative offsets scaled to [-8, 8], then
    ``sign(x) * log2(|x| + 1) / 3``, shaped ``(1, 2 * window - 1, 2 * window - 1, 2)`` (float32)."""
    r = np.arange(-(window - 1), window, dtype=np.float32)
    table = np.stack(np.meshgrid(r, r, indexing="ij")).transpose(1, 2, 0)[None] / max(window - 1, 1) * 8
    return (np.sign(table) * np.log2(np.abs(table) + 1.0) / 3.0).astype(np.float32)


def shifted_window_mask(height, width, window, shift):
    """torchvision's mask for a map rolled by ``shift``: ``(windows, N, N)``, -100 between positions from
    different regions of the unrolled map, 0 elsewhere (numpy, from the static sizes)."""
    regions, count = np.zeros((height, width), np.float32), 0
    for h in (slice(0, -window), slice(-window, -shift[0]), slice(-shift[0], None)):
        for w in (slice(0, -window), slice(-window, -shift[1]), slice(-shift[1], None)):
            regions[h, w] = count
            count += 1
    regions = regions.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    regions = regions.reshape(-1, window * window)
    diff = regions[:, None, :] - regions[:, :, None]
    return np.where(diff != 0, MASKED, 0.0).astype(np.float32)


@keras.saving.register_keras_serializable(package="zoo")
class WindowAttention(keras.layers.Layer):
    """torchvision's Swin V1 window attention between its ``qkv`` and ``proj`` Linear layers: a padded
    ``(B, H, W, 3C)`` map of queries, keys and values in, the ``(B, H, W, C)`` map of each window's multi-head
    attention out, with the learned relative position bias. With a ``shift``, the map is rolled by ``-shift``
    first (``torch.roll``; torchvision rolls before its ``qkv``, the same per position), attended with
    torchvision's mask between the rolled regions, and rolled back.

    Its weights are torchvision's tensors in torch's layout, named by :attr:`torch_leaves` (how
    :func:`zoo.weights.load_state_dict` copies them): ``relative_position_bias_table`` (trainable) and the buffer
    ``relative_position_index``.

    Args:
        window: the window's side.
        num_heads: attention heads (they divide ``C``).
        shift: the cyclic shift, ``(rows, columns)`` (0 on an axis of one window).
    """

    torch_leaves = ("relative_position_bias_table", "relative_position_index")

    def __init__(self, window, num_heads, shift=(0, 0), **kwargs):
        super().__init__(**kwargs)
        self.window = int(window)
        self.num_heads = int(num_heads)
        self.shift = tuple(int(s) for s in shift)

    def build(self, input_shape):
        height, width, channels = input_shape[1:]
        if height is None or width is None or height % self.window or width % self.window:
            raise ValueError(f"WindowAttention needs a map of whole {self.window}x{self.window} windows. "
                             f"Received: input_shape={tuple(input_shape)}")
        if channels % (3 * self.num_heads):
            raise ValueError(f"WindowAttention needs 3 x {self.num_heads} heads x channels per head. "
                             f"Received: input_shape={tuple(input_shape)}")
        self._add_bias_weights(channels // 3)
        self.index = self.add_weight(shape=(self.window ** 4,), dtype="int32", trainable=False,
                                     initializer=keras.initializers.Constant(relative_position_index(self.window)),
                                     name="relative_position_index")
        self._mask = (shifted_window_mask(height, width, self.window, self.shift) if any(self.shift) else None)

    def _add_bias_weights(self, channels):
        self.table = self.add_weight(shape=((2 * self.window - 1) ** 2, self.num_heads),
                                     name="relative_position_bias_table",
                                     initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    def _position_bias(self, table):
        """``(heads, N, N)`` from a ``((2w - 1) ** 2, heads)`` table (torchvision's ``_get_relative_position_bias``)."""
        n = self.window ** 2
        bias = ops.take(table, ops.cast(self.index, "int32"), axis=0)
        return ops.transpose(ops.reshape(bias, (n, n, self.num_heads)), (2, 0, 1))

    def _logits(self, q, k):
        q = q * (q.shape[-1] ** -0.5)
        return ops.matmul(q, ops.swapaxes(k, -1, -2)) + ops.cast(self._position_bias(self.table), q.dtype)

    def _qkv(self, inputs):
        return inputs

    def call(self, inputs):
        _, height, width, c3 = inputs.shape
        w, heads = self.window, self.num_heads
        rows, cols, d = height // w, width // w, c3 // (3 * heads)
        x = self._qkv(inputs)
        if any(self.shift):
            x = ops.roll(x, shift=(-self.shift[0], -self.shift[1]), axis=(1, 2))
        x = ops.reshape(x, (-1, rows, w, cols, w, 3, heads, d))
        x = ops.transpose(x, (5, 0, 1, 3, 6, 2, 4, 7))  # 3, B, rows, cols, heads, w, w, d
        x = ops.reshape(x, (3, -1, rows * cols, heads, w * w, d))
        attn = self._logits(x[0], x[1])  # B, windows, heads, N, N
        if self._mask is not None:
            attn = attn + ops.cast(self._mask, attn.dtype)[None, :, None]
        out = ops.matmul(ops.cast(ops.softmax(attn, axis=-1), x.dtype), x[2])  # B, windows, heads, N, d
        out = ops.reshape(out, (-1, rows, cols, heads, w, w, d))
        out = ops.transpose(out, (0, 1, 4, 2, 5, 3, 6))  # B, rows, w, cols, w, heads, d
        out = ops.reshape(out, (-1, height, width, heads * d))
        return ops.roll(out, shift=self.shift, axis=(1, 2)) if any(self.shift) else out

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], input_shape[3] // 3)

    def compute_macs(self, input_shape):
        """Multiply-adds per sample of the two attention products, ``q @ k^T`` and ``attn @ v`` (read by
        :func:`zoo.profile`): ``2 * H * W * N * C``."""
        _, height, width, c3 = input_shape
        return 2 * height * width * self.window ** 2 * (c3 // 3)

    def get_config(self):
        return {**super().get_config(), "window": self.window, "num_heads": self.num_heads, "shift": self.shift}


@keras.saving.register_keras_serializable(package="zoo")
class WindowAttentionV2(WindowAttention):
    """torchvision's Swin V2 window attention (see :class:`WindowAttention`): the qkv bias with the keys' third
    zeroed (the ``qkv`` Dense before has none), cosine attention scaled by ``exp(min(logit_scale, log 100))``, and
    the bias ``16 * sigmoid`` of the continuous position bias MLP (``cpb_mlp``: Linear 2 -> 512, ReLU, Linear
    512 -> heads without bias) over ``relative_coords_table``. Torch's Linear weights are kept as torch lays them
    out, ``(out, in)``."""

    torch_leaves = ("qkv.bias", "logit_scale", "cpb_mlp.0.weight", "cpb_mlp.0.bias", "cpb_mlp.2.weight",
                    "relative_position_index", "relative_coords_table")

    def _add_bias_weights(self, channels):
        self.qkv_bias = self.add_weight(shape=(3 * channels,), initializer="zeros", name="qkv_bias")
        self.logit_scale = self.add_weight(shape=(self.num_heads, 1, 1), name="logit_scale",
                                           initializer=keras.initializers.Constant(math.log(10.0)))
        init = blocks._initializer(keras.initializers.TruncatedNormal(stddev=0.02))
        self.cpb_w0 = self.add_weight(shape=(CPB_HIDDEN, 2), initializer=init, name="cpb_mlp_0_weight")
        self.cpb_b0 = self.add_weight(shape=(CPB_HIDDEN,), initializer="zeros", name="cpb_mlp_0_bias")
        self.cpb_w2 = self.add_weight(shape=(self.num_heads, CPB_HIDDEN), initializer=init, name="cpb_mlp_2_weight")
        self._key_mask = np.concatenate([np.ones(channels), np.zeros(channels), np.ones(channels)]).astype(np.float32)

    def build(self, input_shape):
        super().build(input_shape)
        self.coords = self.add_weight(shape=(1, 2 * self.window - 1, 2 * self.window - 1, 2), trainable=False,
                                      initializer=keras.initializers.Constant(relative_coords_table(self.window)),
                                      name="relative_coords_table")

    def _qkv(self, inputs):
        return inputs + ops.cast(self.qkv_bias * self._key_mask, inputs.dtype)

    def _logits(self, q, k):
        def unit(t):  # torch's F.normalize: t / max(|t|, 1e-12), in float32 (1e-12 is 0 in float16)
            t = ops.cast(t, "float32")
            return t / ops.maximum(ops.sqrt(ops.sum(ops.square(t), axis=-1, keepdims=True)), 1e-12)

        attn = ops.matmul(unit(q), ops.swapaxes(unit(k), -1, -2))
        attn = attn * ops.exp(ops.minimum(ops.cast(self.logit_scale, "float32"), math.log(100.0)))
        hidden = ops.relu(ops.matmul(ops.reshape(self.coords, (-1, 2)), ops.transpose(self.cpb_w0)) + self.cpb_b0)
        table = ops.matmul(hidden, ops.transpose(self.cpb_w2))
        return attn + ops.cast(16.0 * ops.sigmoid(self._position_bias(table)), "float32")

    def compute_macs(self, input_shape):
        """The attention products and the position bias MLP over the ``(2w - 1) ** 2`` offsets."""
        return super().compute_macs(input_shape) + (2 * self.window - 1) ** 2 * CPB_HIDDEN * (2 + self.num_heads)


# torchvision's keys: stage s's blocks are `features.{2s-1}`, the patch merging before it `features.{2s-2}`; a
# block's MLP is a Sequential of Linear, GELU, Dropout, Linear, Dropout.
_BLOCK_MODULE = {"norm1": "norm1", "norm2": "norm2", "qkv": "attn.qkv", "attn": "attn", "proj": "attn.proj",
                 "fc1": "mlp.0", "fc2": "mlp.3"}

KEY_RULES = register_key_rules("swin", KeyRules(
    modules=(
        (r"stem_conv", "features.0.0"), (r"stem_norm", "features.0.2"),
        (r"stage(\d+)_downsample_(reduction|norm)", lambda g, names: f"features.{2 * int(g[0]) - 2}.{g[1]}"),
        (r"stage(\d+)_block(\d+)_(norm1|norm2|qkv|attn|proj|fc1|fc2)",
         lambda g, names: f"features.{2 * int(g[0]) - 1}.{int(g[1]) - 1}.{_BLOCK_MODULE[g[2]]}"),
        (r"head_norm", "norm"),
        (r"head_predictions", "head"),
    ),
    head_modules=("norm", "head"),
    signature=r"stage\d+_downsample_reduction",
))


def _init():
    """torchvision's initialisation of every Linear: a truncated normal with standard deviation 0.02 (the
    builder's ``kernel_initializer``, when given, instead)."""
    return blocks._initializer(keras.initializers.TruncatedNormal(stddev=0.02))


def _layer_norm(x, *, name):
    return layers.LayerNormalization(epsilon=LN_EPSILON, name=name)(x)


def window_attention(x, *, num_heads, window, shift, version, name):
    """torchvision's ``shifted_window_attention`` with its ``qkv`` and ``proj``: pad to whole windows, attend in
    shifted windows (the shift dropped on an axis whose padded size is at most one window), crop."""
    _, height, width, channels = x.shape
    pad = (-height % window, -width % window)
    if any(pad):
        x = layers.ZeroPadding2D(((0, pad[0]), (0, pad[1])), name=f"{name}_pad")(x)
    shift = tuple(s if window < size + p else 0 for s, size, p in zip(shift, (height, width), pad))
    x = layers.Dense(3 * channels, use_bias=version == 1, kernel_initializer=_init(), name=f"{name}_qkv")(x)
    attention = WindowAttention if version == 1 else WindowAttentionV2
    x = attention(window, num_heads, shift, name=f"{name}_attn")(x)
    x = layers.Dense(channels, kernel_initializer=_init(), name=f"{name}_proj")(x)
    if any(pad):
        x = layers.Cropping2D(((0, pad[0]), (0, pad[1])), name=f"{name}_crop")(x)
    return x


def swin_block(x, *, num_heads, window, shift, drop_rate, version, name):
    """torchvision's ``SwinTransformerBlock`` (V1: pre-norm) or ``SwinTransformerBlockV2`` (post-norm): window
    attention and an MLP (Linear to 4x, exact GELU, Linear back), each a residual branch with stochastic depth."""
    channels = x.shape[-1]

    def branch(x, index, body, norm):
        y = body(_layer_norm(x, name=f"{name}_{norm}") if version == 1 else x)
        y = y if version == 1 else _layer_norm(y, name=f"{name}_{norm}")
        y = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_stochastic_depth{index}")(y)
        return layers.Add(name=f"{name}_add{index}")([x, y])

    def attention(y):
        return window_attention(y, num_heads=num_heads, window=window, shift=shift, version=version, name=name)

    def mlp(y):
        y = layers.Dense(MLP_RATIO * channels, kernel_initializer=_init(), name=f"{name}_fc1")(y)
        y = layers.Activation("gelu", name=f"{name}_gelu")(y)  # Keras' gelu is exact (erf), as torch's
        return layers.Dense(channels, kernel_initializer=_init(), name=f"{name}_fc2")(y)

    x = branch(x, 1, attention, "norm1")
    return branch(x, 2, mlp, "norm2")


def patch_merging(x, *, version, name):
    """torchvision's ``PatchMerging`` (V1: LayerNorm(4C), then Linear 4C -> 2C without bias) or ``PatchMergingV2``
    (the Linear, then LayerNorm(2C)) after its ``_patch_merging_pad``: an odd side padded by one, then each 2x2
    patch's four positions concatenated in torchvision's order (0, 0), (1, 0), (0, 1), (1, 1)."""
    _, height, width, channels = x.shape
    if height % 2 or width % 2:
        x = layers.ZeroPadding2D(((0, height % 2), (0, width % 2)), name=f"{name}_pad")(x)
        height, width = height + height % 2, width + width % 2
    x = layers.Reshape((height // 2, 2, width // 2, 2, channels), name=f"{name}_split")(x)
    x = layers.Permute((1, 3, 4, 2, 5), name=f"{name}_permute")(x)  # rows, cols, dx, dy, C: index dy + 2 dx
    x = layers.Reshape((height // 2, width // 2, 4 * channels), name=f"{name}_concat")(x)
    if version == 1:
        x = _layer_norm(x, name=f"{name}_norm")
    x = layers.Dense(2 * channels, use_bias=False, kernel_initializer=_init(), name=f"{name}_reduction")(x)
    if version == 2:
        x = _layer_norm(x, name=f"{name}_norm")
    return x


def _swin(variant_name, *, input_shape, num_classes, include_top, pooling, classifier_activation, width,
          window_size, stochastic_depth, name):
    width = check_width(width)
    window_size = check_int("window_size", window_size, minimum=2, maximum=64)
    stochastic_depth = check_float("stochastic_depth", stochastic_depth, minimum=0.0, maximum=1.0,
                                   max_inclusive=False)
    if input_shape[0] is None or input_shape[1] is None:
        raise ValueError("Swin pads its maps to whole windows, so it needs a fixed input size. "
                         f"Received: input_shape={input_shape}")
    depths, heads, _ = SWIN_SPECS[variant_name]
    version = 2 if "_v2_" in variant_name else 1
    head_channels = scaled(HEAD_CHANNELS, width)
    total = sum(depths)
    inputs = keras.Input(shape=input_shape, name="input")
    x = blocks.conv2d(inputs, heads[0] * head_channels, PATCH, strides=PATCH, use_bias=True,
                      kernel_initializer=_init(), name="stem_conv")
    x = _layer_norm(x, name="stem_norm")
    block_id = 0
    for s, (n, h) in enumerate(zip(depths, heads), start=1):
        if s > 1:
            x = patch_merging(x, version=version, name=f"stage{s}_downsample")
        for b in range(1, n + 1):
            shift = (0, 0) if b % 2 else (window_size // 2,) * 2  # torchvision's odd blocks (0-based) shift
            # torchvision's rate grows linearly from 0 at the first block to `stochastic_depth` at the last
            x = swin_block(x, num_heads=h, window=window_size, shift=shift, version=version,
                           drop_rate=stochastic_depth * block_id / (total - 1), name=f"stage{s}_block{b}")
            block_id += 1
    if not include_top:
        x = blocks.classifier_head(x, num_classes=num_classes, include_top=False, pooling=pooling)
    else:
        x = _layer_norm(x, name="head_norm")
        x = layers.GlobalAveragePooling2D(name="head_avgpool")(x)
        x = blocks.predictions(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "stages", "residual", "width", "imagenet")


def _card(variant_name):
    v2 = "_v2_" in variant_name
    size = 256 if v2 else 224
    return dict(
        family="swin",
        default_input_shape=(size, size, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference=("Liu et al., Swin Transformer V2: Scaling Up Capacity and Resolution, CVPR 2022" if v2 else
                   "Liu et al., Swin Transformer: Hierarchical Vision Transformer using Shifted Windows, ICCV 2021")
        + "; torchvision swin_transformer layout",
        tags=_TAGS + (() if variant_name == "swin_t" else ("slow",)),  # V2's own code: tests/test_swin.py
        # 2x2 windows at 32 pixels: padding (the 1x1 last stage), shifted windows and their mask (stages 1-2)
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.0625, "window_size": 2, "stochastic_depth": 0.0},
    )


_ARGS_DOC = """
    Args:
        width: multiplier on every stage's channels, the heads kept (each head's 32 channels scaled; 1.0 is
            torchvision's).
        window_size: the attention windows' side (torchvision's 7 for V1, 8 for V2); the relative position
            tables depend on it only, so weights load at any input size but only for the same window.
        stochastic_depth: torchvision's ``stochastic_depth_prob``: the last block's rate of dropping its residual
            branches in training, the rates growing linearly from 0 at the first block (identity at inference).
""" + STAGED_DOC_TAIL


def _params(variant_name):
    window = WINDOW[2 if "_v2_" in variant_name else 1]
    return keras_params(1000, ("width", 1.0), ("window_size", window),
                        ("stochastic_depth", SWIN_SPECS[variant_name][2]))


@variant(card=_card("swin_t"), params=_params("swin_t"), doc=_ARGS_DOC)
def swin_t(**kw):
    """Swin-T, layer for layer as torchvision's ``swin_t`` (28,288,354 parameters)."""
    return _swin("swin_t", **kw)


@variant(card=_card("swin_s"), params=_params("swin_s"), doc=_ARGS_DOC)
def swin_s(**kw):
    """Swin-S, layer for layer as torchvision's ``swin_s`` (49,606,258 parameters)."""
    return _swin("swin_s", **kw)


@variant(card=_card("swin_b"), params=_params("swin_b"), doc=_ARGS_DOC)
def swin_b(**kw):
    """Swin-B, layer for layer as torchvision's ``swin_b`` (87,768,224 parameters)."""
    return _swin("swin_b", **kw)


@variant(card=_card("swin_v2_t"), params=_params("swin_v2_t"), doc=_ARGS_DOC)
def swin_v2_t(**kw):
    """Swin V2-T, layer for layer as torchvision's ``swin_v2_t`` (28,351,570 parameters)."""
    return _swin("swin_v2_t", **kw)


@variant(card=_card("swin_v2_s"), params=_params("swin_v2_s"), doc=_ARGS_DOC)
def swin_v2_s(**kw):
    """Swin V2-S, layer for layer as torchvision's ``swin_v2_s`` (49,737,442 parameters)."""
    return _swin("swin_v2_s", **kw)


@variant(card=_card("swin_v2_b"), params=_params("swin_v2_b"), doc=_ARGS_DOC)
def swin_v2_b(**kw):
    """Swin V2-B, layer for layer as torchvision's ``swin_v2_b`` (87,930,848 parameters)."""
    return _swin("swin_v2_b", **kw)
