"""Vision Transformer: torchvision's ``vit_b_16``, ``vit_b_32``, ``vit_l_16``, ``vit_l_32`` and ``vit_h_14``.

References:
    Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale", ICLR 2021
    (arXiv:2010.11929); torchvision's ``vision_transformer.py``.

Layer names: ``stem_*`` (torchvision's ``conv_proj``, the patch convolution; ``stem_tokens``, its map flattened
row by row; ``stem_class_token``, the learned class token put at token 0; ``stem_pos_embedding``, the learned
position embedding added; ``stem_dropout``), ``stage1_block{i}_*`` for the encoder layers (one stage, so
``features_only`` numbers the blocks; ``encoder.layers.encoder_layer_{i-1}``: ``ln_1``, ``qkv`` (torch's
``in_proj_weight``/``in_proj_bias``), ``attn`` (the heads' scaled dot-product attention), ``proj`` (``out_proj``), ``dropout``, ``add1``, ``ln_2``, ``fc1``, ``gelu``,
``fc2``, ``add2``), ``head_*`` (``encoder.ln``, the class token taken, ``heads.head``). Tokens are ``(B, 1 + N, D)``
with the class token first, the patches after it in row-major order (a map is ``tokens[:, 1:]`` reshaped).

Other input sizes build a position embedding for their own patch grid; loading weights of another grid resamples
the patches' embeddings bicubically as timm's ``resample_abs_pos_embed`` does (antialiased, PIL's kernel), the
class token's kept.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from zoo import blocks
from zoo.models._variants import keras_params, variant
from zoo.utils import check_float, check_int, check_width, scaled
from zoo.weights.convert import KeyRules, register_key_rules

# torchvision's settings: name -> (patch size, layers, heads, hidden dim, MLP dim)
VIT_SPECS = {
    "vit_b_16": (16, 12, 12, 768, 3072),
    "vit_b_32": (32, 12, 12, 768, 3072),
    "vit_l_16": (16, 24, 16, 1024, 4096),
    "vit_l_32": (32, 24, 16, 1024, 4096),
    "vit_h_14": (14, 32, 16, 1280, 5120),
}
LN_EPSILON = 1e-6


def _cubic_aa(x, a=-0.5):
    """PIL's bicubic kernel (torch's antialiased ``bicubic`` uses it, ``a = -0.5``)."""
    x = abs(x)
    if x < 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _resample_matrix(in_size, out_size):
    """``(out, in)`` weights of torch's ``interpolate(mode="bicubic", antialias=True, align_corners=False)``."""
    scale = in_size / out_size
    support_scale = max(scale, 1.0)
    support = 2.0 * support_scale
    m = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        w = np.array([_cubic_aa((j - center + 0.5) / support_scale) for j in range(lo, hi)])
        m[i, lo:hi] = w / w.sum() if w.sum() else w
    return m


def resample_position_embedding(embedding, grid):
    """timm's ``resample_abs_pos_embed``: the ``(1, 1 + h * w, D)`` embedding of a square patch grid resampled to
    ``grid = (rows, cols)`` bicubically (antialiased), the class token's row kept.

    Raises:
        ValueError: ``embedding`` is not of a square grid after one class token.
    """
    embedding = np.asarray(embedding)
    if embedding.ndim != 3 or embedding.shape[0] != 1:
        raise ValueError(f"`embedding` must be (1, 1 + h * w, D). Received: embedding.shape={embedding.shape}")
    side = math.isqrt(embedding.shape[1] - 1)
    if side * side != embedding.shape[1] - 1:
        raise ValueError(f"`embedding` must hold a square grid after its class token. "
                         f"Received: embedding.shape={embedding.shape}")
    rows, cols = grid
    patches = embedding[0, 1:].reshape(side, side, -1).astype(np.float64)
    out = np.einsum("ri,ijd,cj->rcd", _resample_matrix(side, rows), patches, _resample_matrix(side, cols))
    out = out.reshape(1, rows * cols, -1).astype(embedding.dtype)
    return np.concatenate([embedding[:, :1], out], axis=1)


@keras.saving.register_keras_serializable(package="zoo")
class ClassToken(layers.Layer):
    """Puts a learned class token (torchvision's ``class_token``, zeros at first) before the ``(B, N, D)``
    tokens, at position 0."""

    torch_leaves = ("class_token",)

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros", name="class_token")

    def call(self, inputs):
        token = ops.broadcast_to(ops.cast(self.token, inputs.dtype), (ops.shape(inputs)[0], 1, inputs.shape[-1]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], n, input_shape[2])


@keras.saving.register_keras_serializable(package="zoo")
class PositionEmbedding(layers.Layer):
    """Adds a learned ``(1, N, D)`` position embedding (torchvision's ``encoder.pos_embedding``, normal with
    standard deviation 0.02 at first); a checkpoint's embedding of another grid is resampled on loading
    (:meth:`convert_torch_leaves`)."""

    torch_leaves = ("pos_embedding",)

    def build(self, input_shape):
        self.embedding = self.add_weight(shape=(1, input_shape[1], input_shape[2]), name="pos_embedding",
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, inputs):
        return inputs + ops.cast(self.embedding, inputs.dtype)

    def convert_torch_leaves(self, arrays):
        """The torch tensors as this layer's weights: an embedding of another square grid resampled to this
        layer's (square or not) grid (read by :func:`zoo.weights.load_state_dict`)."""
        (embedding,) = arrays
        want = tuple(self.embedding.shape)
        if tuple(embedding.shape) == want or embedding.ndim != 3 or embedding.shape[-1] != want[-1]:
            return [embedding]
        grid = self._grid or (math.isqrt(want[1] - 1),) * 2
        return [resample_position_embedding(embedding, grid)]

    def __init__(self, grid=None, **kwargs):
        super().__init__(**kwargs)
        self._grid = None if grid is None else tuple(int(g) for g in grid)

    def get_config(self):
        return {**super().get_config(), "grid": self._grid}


@keras.saving.register_keras_serializable(package="zoo")
class DotProductAttention(layers.Layer):
    """The heads' scaled dot-product attention of ``nn.MultiheadAttention`` between its input and output
    projections: ``(B, N, 3D)`` queries, keys and values (torch's ``in_proj`` order) in, ``(B, N, D)`` out.

    Args:
        num_heads: attention heads (they divide ``D``).
        dropout: dropout on the attention weights in training (torchvision's ``attention_dropout``).
    """

    def __init__(self, num_heads, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self._drop = layers.Dropout(self.dropout)

    def call(self, inputs, training=None):
        n, channels = ops.shape(inputs)[1], inputs.shape[-1] // 3
        d = channels // self.num_heads
        x = ops.reshape(inputs, (-1, n, 3, self.num_heads, d))
        x = ops.transpose(x, (2, 0, 3, 1, 4))  # 3, B, heads, N, d
        attn = ops.matmul(x[0] * ops.cast(1.0 / math.sqrt(d), x.dtype), ops.swapaxes(x[1], -1, -2))
        attn = ops.cast(ops.softmax(ops.cast(attn, "float32"), axis=-1), x.dtype)
        out = ops.matmul(self._drop(attn, training=training), x[2])  # B, heads, N, d
        return ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, n, channels))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], input_shape[2] // 3)

    def compute_macs(self, input_shape):
        """Multiply-adds per sample of ``q @ k^T`` and ``attn @ v`` (read by :func:`zoo.profile`): ``2 N^2 D``."""
        _, n, c3 = input_shape
        return 2 * n * n * (c3 // 3)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout}


def _layer(g):
    return f"encoder.layers.encoder_layer_{int(g[0]) - 1}"


_BLOCK_MODULE = {"ln_1": "ln_1", "ln_2": "ln_2", "qkv": "self_attention", "proj": "self_attention.out_proj",
                 "fc1": "mlp.0", "fc2": "mlp.3"}

KEY_RULES = register_key_rules("vit", KeyRules(
    modules=(
        (r"stem_conv", "conv_proj"), (r"stem_class_token", ""), (r"stem_pos_embedding", "encoder"),
        (r"stage1_block(\d+)_(ln_1|ln_2|qkv|proj|fc1|fc2)", lambda g, names: f"{_layer(g)}.{_BLOCK_MODULE[g[1]]}"),
        (r"head_norm", "encoder.ln"),
        (r"head_predictions", "heads.head"),
    ),
    leaves=((r"stage1_block\d+_qkv", ("in_proj_weight", "in_proj_bias")),),  # torch's packed q, k, v projection
    head_modules=("heads",),
    signature=r"stem_class_token",
))


def _layer_norm(x, *, name):
    return layers.LayerNormalization(epsilon=LN_EPSILON, name=name)(x)


def encoder_block(x, *, num_heads, mlp_dim, dropout, attention_dropout, name):
    """torchvision's ``EncoderBlock``: pre-LN multi-head self-attention and an MLP (Linear, exact GELU,
    Dropout, Linear, Dropout), each a residual branch."""
    channels = x.shape[-1]
    y = _layer_norm(x, name=f"{name}_ln_1")
    y = layers.Dense(3 * channels, name=f"{name}_qkv")(y)
    y = DotProductAttention(num_heads, attention_dropout, name=f"{name}_attn")(y)
    y = layers.Dense(channels, name=f"{name}_proj")(y)
    y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    x = layers.Add(name=f"{name}_add1")([x, y])
    y = _layer_norm(x, name=f"{name}_ln_2")
    y = layers.Dense(mlp_dim, kernel_initializer="glorot_uniform", name=f"{name}_fc1")(y)
    y = layers.Activation("gelu", name=f"{name}_gelu")(y)  # Keras' gelu is exact (erf), as torch's
    y = layers.Dropout(dropout, name=f"{name}_mlp_dropout1")(y)
    y = layers.Dense(channels, kernel_initializer="glorot_uniform", name=f"{name}_fc2")(y)
    y = layers.Dropout(dropout, name=f"{name}_mlp_dropout2")(y)
    return layers.Add(name=f"{name}_add2")([x, y])


def _vit(variant_name, *, input_shape, num_classes, include_top, pooling, classifier_activation, width, depth,
         dropout, attention_dropout, name):
    width = check_width(width)
    patch, num_layers, heads, hidden, mlp_dim = VIT_SPECS[variant_name]
    num_layers = check_int("depth", depth, minimum=1, maximum=256) if depth is not None else num_layers
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    attention_dropout = check_float("attention_dropout", attention_dropout, minimum=0.0, maximum=1.0,
                                    max_inclusive=False)
    if input_shape[0] is None or input_shape[1] is None:
        raise ValueError(f"ViT's position embedding needs a fixed input size. Received: input_shape={input_shape}")
    if input_shape[0] < patch or input_shape[1] < patch:
        raise ValueError(f"{variant_name} needs inputs of at least one {patch}x{patch} patch. "
                         f"Received: input_shape={input_shape}")
    head_dim = scaled(hidden // heads, width)
    hidden, mlp_dim = heads * head_dim, scaled(mlp_dim, width)
    grid = (input_shape[0] // patch, input_shape[1] // patch)
    inputs = keras.Input(shape=input_shape, name="input")
    x = blocks.conv2d(inputs, hidden, patch, strides=patch, use_bias=True, kernel_initializer="lecun_normal",
                      name="stem_conv")
    x = layers.Reshape((grid[0] * grid[1], hidden), name="stem_tokens")(x)
    x = ClassToken(name="stem_class_token")(x)
    x = PositionEmbedding(grid, name="stem_pos_embedding")(x)
    x = layers.Dropout(dropout, name="stem_dropout")(x)
    for i in range(1, num_layers + 1):
        x = encoder_block(x, num_heads=heads, mlp_dim=mlp_dim, dropout=dropout,
                          attention_dropout=attention_dropout, name=f"stage1_block{i}")
    x = _layer_norm(x, name="head_norm")
    if not include_top:  # the patch tokens as the (h, w, D) map, the class token dropped, pooled as any map
        x = layers.Cropping1D((1, 0), name="head_patch_tokens")(x)
        x = layers.Reshape((*grid, hidden), name="head_map")(x)
        return keras.Model(inputs, blocks.classifier_head(x, num_classes=num_classes, include_top=False,
                                                          pooling=pooling), name=name)
    x = layers.Cropping1D((0, grid[0] * grid[1]), name="head_crop")(x)  # the class token, position 0
    x = layers.Reshape((hidden,), name="head_class_token")(x)
    x = blocks.predictions(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name=name)


_TAGS = ("image", "pooling", "residual", "stages", "width", "imagenet")


def _card(variant_name):
    patch = VIT_SPECS[variant_name][0]
    return dict(
        family="vit",
        default_input_shape=(224, 224, 3),
        min_input_size=patch,
        reference="Dosovitskiy et al., An Image is Worth 16x16 Words: Transformers for Image Recognition at "
                  "Scale, ICLR 2021; torchvision vision_transformer layout",
        tags=_TAGS + (() if variant_name == "vit_b_16" else ("slow",)),
        # the patch kept: 32 pixels give a grid of 2x2 (or 1x1) patches; 2 layers of 4 channels a head
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.0625, "depth": 2},
    )


_ARGS_DOC = """
    Args:
        width: multiplier on the channels of each head and on the MLP's (the heads and patch kept; 1.0 is
            torchvision's).
        depth: encoder layers (``None``: torchvision's).
        dropout: torchvision's ``dropout`` after the embedding, the attention and in the MLPs.
        attention_dropout: torchvision's ``attention_dropout``, on the attention weights.
        input_shape, num_classes, include_top, classifier_activation, weights, name: as every zoo model's;
            with ``include_top=False`` the patch tokens after the final LayerNorm are the ``(h, w, D)`` map
            (the class token dropped), ``pooling`` ``None``, ``"avg"`` or ``"max"`` as for any map.
"""


def _params():
    return keras_params(1000, ("width", 1.0), ("depth", None), ("dropout", 0.0), ("attention_dropout", 0.0))


@variant(card=_card("vit_b_16"), params=_params(), doc=_ARGS_DOC)
def vit_b_16(**kw):
    """ViT-B/16, layer for layer as torchvision's ``vit_b_16`` (86,567,656 parameters)."""
    return _vit("vit_b_16", **kw)


@variant(card=_card("vit_b_32"), params=_params(), doc=_ARGS_DOC)
def vit_b_32(**kw):
    """ViT-B/32, layer for layer as torchvision's ``vit_b_32`` (88,224,232 parameters)."""
    return _vit("vit_b_32", **kw)


@variant(card=_card("vit_l_16"), params=_params(), doc=_ARGS_DOC)
def vit_l_16(**kw):
    """ViT-L/16, layer for layer as torchvision's ``vit_l_16`` (304,326,632 parameters)."""
    return _vit("vit_l_16", **kw)


@variant(card=_card("vit_l_32"), params=_params(), doc=_ARGS_DOC)
def vit_l_32(**kw):
    """ViT-L/32, layer for layer as torchvision's ``vit_l_32`` (306,535,400 parameters)."""
    return _vit("vit_l_32", **kw)


@variant(card=_card("vit_h_14"), params=_params(), doc=_ARGS_DOC)
def vit_h_14(**kw):
    """ViT-H/14, layer for layer as torchvision's ``vit_h_14`` (632,045,800 parameters)."""
    return _vit("vit_h_14", **kw)
