"""MaxViT: torchvision's parameter count and GFLOPS, its window and grid partitions, the MBConv shortcut's
average pooling (padding counted), the input-size check, serialisation.

The converted fixtures (tests/fixtures/weights/maxvit_tiny*: torchvision's MaxVit at 64 px with 2x2 partitions
and 8/16 channels) are checked against torch's logits by tests/test_weights.py from index.json, and the
full-size key list there too.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo
from zoo.models import maxvit

# torchvision's maxvit_t: trainable parameters (its relative_position_index buffers are not parameters) at 224
# pixels and 1,000 classes, and its published GFLOPS (multiply-adds).
TORCHVISION_PARAMS, TORCHVISION_GFLOPS = 30_919_624, 5.558
TINY = {"input_shape": (64, 64, 3), "num_classes": 10, "width": 0.125, "partition_size": 2, "stochastic_depth": 0.0}


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session(free_memory=False)


def test_trainable_params_match_torchvision_counted_dry():
    from zoo.graph import dry_weight_count

    count = dry_weight_count(lambda: zoo.build("maxvit_t", input_shape=(224, 224, 3), num_classes=1000),
                             trainable_only=True)
    assert count == TORCHVISION_PARAMS


def test_macs_are_torchvisions_published_gflops():
    """torchvision's ``_ops``: convolutions, the Dense layers on the maps and the attention products, which the
    partition attention layers count themselves."""
    p = zoo.profile(zoo.build("maxvit_t"))
    assert p.macs / 1e9 == pytest.approx(TORCHVISION_GFLOPS, rel=0.03)
    assert not p.uncounted


def _torch_partition(x, p, kind):
    """torchvision's WindowPartition (+ SwapAxes for grids) on an NHWC array: (B, sequences, N, C)."""
    b, h, w, c = x.shape
    part = p if kind == "window" else h // p
    y = x.reshape(b, h // part, part, w // part, part, c).transpose(0, 1, 3, 2, 4, 5)
    y = y.reshape(b, (h // part) * (w // part), part * part, c)
    return y if kind == "window" else y.swapaxes(1, 2)


@pytest.mark.parametrize("kind", ["window", "grid"])
def test_partition_attention_is_torchvisions(kind):
    rng = np.random.default_rng(0)
    p, heads, d, h = 2, 2, 3, 8
    c = heads * d
    layer = maxvit.PartitionAttention(p, heads, kind)
    qkv = rng.standard_normal((2, h, h, 3 * c)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(qkv))
    table = keras.ops.convert_to_numpy(layer.table)
    index = keras.ops.convert_to_numpy(layer.index)
    assert index.shape == (p * p, p * p)
    seq = _torch_partition(qkv, p, kind)  # B, G, N, 3C
    q, k, v = (seq[..., i * c:(i + 1) * c].reshape(*seq.shape[:3], heads, d).transpose(0, 1, 3, 2, 4)
               for i in range(3))
    logits = q @ (k * c ** -0.5).swapaxes(-1, -2) + table[index].transpose(2, 0, 1)
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    ref = (attn / attn.sum(-1, keepdims=True)) @ v  # B, G, heads, N, d
    ref = ref.transpose(0, 1, 3, 2, 4).reshape(*seq.shape[:3], c)
    np.testing.assert_allclose(_torch_partition(out, p, kind), ref, rtol=1e-5, atol=1e-5)


def test_shortcut_pools_with_padding_counted():
    model = zoo.build("maxvit_t", **TINY)
    pool = model.get_layer("stage1_block1_mbconv_shortcut_pool")
    x = np.ones((1, 8, 8, 1), "float32")
    y = keras.ops.convert_to_numpy(pool(keras.layers.ZeroPadding2D(1)(x)))
    assert y[0, 0, 0, 0] == pytest.approx(4 / 9)  # torch's AvgPool2d(3, 2, 1) counts the zeros
    assert "stage2_block1_mbconv_shortcut_conv" in [layer.name for layer in model.layers]


def test_stages_end_on_maps():
    model = zoo.build("maxvit_t", **TINY)
    shapes = [model.get_layer(f"stage{s}_block1_grid_add2").output.shape for s in (1, 2, 3, 4)]
    assert [tuple(s[1:]) for s in shapes] == [(16, 16, 8), (8, 8, 16), (4, 4, 32), (2, 2, 64)]


def test_input_must_hold_whole_partitions():
    with pytest.raises(ValueError, match="partition_size=7"):
        zoo.build("maxvit_t", input_shape=(96, 96, 3))
    with pytest.raises(ValueError, match="partition_size"):
        zoo.build("maxvit_t", **{**TINY, "input_shape": (48, 48, 3)})


@pytest.mark.slow  # test_models' round trip of maxvit_t saves and loads the same layers in the fast suite
def test_partition_attention_round_trips(tmp_path):
    model = zoo.build("maxvit_t", **TINY)
    x = np.random.default_rng(1).standard_normal((2, 64, 64, 3)).astype("float32")
    path = tmp_path / "maxvit.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    layer = model.get_layer("stage1_block1_grid_attn")
    assert maxvit.PartitionAttention.from_config(layer.get_config()).get_config() == layer.get_config()
