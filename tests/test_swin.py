"""Swin Transformer V1/V2: torchvision's parameter counts and GFLOPS, its window arithmetic (relative position
index, shifted-window mask, padding, shift disabled on small maps), patch merging order, serialisation.

The converted fixtures (tests/fixtures/weights/swin_tiny*, swin_v2_tiny*: torchvision's Swin-T layout at width
1/16 with 4x4 windows at 72 px, padded, shifted and odd-merged) are checked against torch's logits, through both
.pth and .safetensors, by tests/test_weights.py from index.json, and the full-size key lists there too.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo
from zoo.graph import producer
from zoo.models import swin

# torchvision's counts (trainable parameters, 1,000 classes; its buffers relative_position_index and V2's
# relative_coords_table are not parameters) and its published GFLOPS (multiply-adds), at 224 (V2: 256) pixels.
TORCHVISION = {
    "swin_t": (28_288_354, 4.49), "swin_s": (49_606_258, 8.74), "swin_b": (87_768_224, 15.43),
    "swin_v2_t": (28_351_570, 5.94), "swin_v2_s": (49_737_442, 11.55), "swin_v2_b": (87_930_848, 20.32),
}
TINY = {"input_shape": (32, 32, 3), "num_classes": 10, "width": 0.0625, "window_size": 2, "stochastic_depth": 0.0}


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session(free_memory=False)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_trainable_params_match_torchvision_counted_dry(name):
    from zoo.graph import dry_weight_count

    shape = zoo.get_card(name).default_input_shape
    count = dry_weight_count(lambda: zoo.build(name, input_shape=shape, num_classes=1000), trainable_only=True)
    assert count == TORCHVISION[name][0]


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_macs_are_torchvisions_published_gflops(name):
    """torchvision's ``_ops``: the Dense layers on the maps, the patch convolution and the attention products
    (and V2's position bias MLP), which the window attention layers count themselves."""
    p = zoo.profile(zoo.build(name))
    assert p.macs / 1e9 == pytest.approx(TORCHVISION[name][1], rel=0.03)
    assert not p.uncounted


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_s", "swin_b", "swin_v2_s", "swin_v2_b"])
def test_larger_macs_are_torchvisions_published_gflops(name):
    assert zoo.profile(zoo.build(name)).macs / 1e9 == pytest.approx(TORCHVISION[name][1], rel=0.03)


def test_relative_position_index_is_torchvisions():
    # torchvision: coords (2, w*w) of (row, col); relative (i - j) shifted by w - 1, row times 2w - 1, plus col
    index = swin.relative_position_index(2).reshape(4, 4)
    np.testing.assert_array_equal(index, [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert swin.relative_position_index(7).max() == 13 * 13 - 1
    table = swin.relative_coords_table(8)
    assert table.shape == (1, 15, 15, 2)
    np.testing.assert_allclose(table[0, 0, 0], [-np.log2(9) / 3] * 2, rtol=1e-6)  # sign * log2(8 + 1) / 3
    np.testing.assert_allclose(table[0, 7, 7], [0.0, 0.0])


def test_shifted_window_mask_separates_the_rolled_regions():
    mask = swin.shifted_window_mask(4, 4, 2, (1, 1))  # 4 windows of 2x2, rolled by one
    assert mask.shape == (4, 4, 4)
    assert not mask[0].any()  # the top-left window holds one region
    # the bottom-right window holds four regions: only a position with itself attends
    np.testing.assert_array_equal(mask[3], np.where(np.eye(4), 0.0, -100.0))
    np.testing.assert_array_equal(mask[1], [[0, -100, 0, -100], [-100, 0, -100, 0]] * 2)


def test_layers_pad_shift_and_merge_as_torchvision():
    model = zoo.build("swin_t", **TINY)  # 8x8, 4x4, 2x2, 1x1 maps with 2x2 windows
    names = {layer.name for layer in model.layers}
    shifts = {f"stage{s}_block{b}": model.get_layer(f"stage{s}_block{b}_attn").shift for s in (1, 2, 3) for b in (1, 2)}
    # odd blocks (torchvision's 1, 3, ...) shift by half a window, but not on a map of one window
    assert shifts == {"stage1_block1": (0, 0), "stage1_block2": (1, 1), "stage2_block1": (0, 0),
                      "stage2_block2": (1, 1), "stage3_block1": (0, 0), "stage3_block2": (0, 0)}
    assert {"stage4_block1_pad", "stage4_block1_crop"} <= names and "stage3_block1_pad" not in names
    assert [model.get_layer(f"stage{s}_block1_add2").output.shape[1:] for s in range(1, 5)] == [
        (8, 8, 6), (4, 4, 12), (2, 2, 24), (1, 1, 48)]
    assert model.get_layer("stage2_downsample_reduction").get_weights()[0].shape == (24, 12)
    odd = zoo.build("swin_t", **{**TINY, "input_shape": (36, 44, 3)})  # 9x11: padded before merging
    assert odd.get_layer("stage2_downsample_pad").output.shape[1:3] == (10, 12)


def test_patch_merging_concatenates_in_torchvisions_order():
    # torchvision: cat(x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]) on the channels
    x = keras.Input((4, 4, 1))
    probe = keras.Model(x, keras.Model(x, swin.patch_merging(x, version=1, name="m")).get_layer("m_concat").output)
    image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    out = np.asarray(probe(image))
    np.testing.assert_array_equal(out[0, 0, 0], [0, 4, 1, 5])
    np.testing.assert_array_equal(out[0, 1, 1], [10, 14, 11, 15])


def test_v2_is_post_norm_with_cosine_attention_and_zeroed_key_bias():
    model = zoo.build("swin_v2_t", **TINY)
    assert model.get_layer("stage1_block1_qkv").use_bias is False  # the attention layer holds torch's qkv.bias
    attn = model.get_layer("stage1_block1_attn")
    assert [w.path.split("/")[-1] for w in attn.weights] == [
        "qkv_bias", "logit_scale", "cpb_mlp_0_weight", "cpb_mlp_0_bias", "cpb_mlp_2_weight",
        "relative_position_index", "relative_coords_table"]
    # post-norm: the LayerNorm follows the attention's projection (V1's precedes the qkv)
    assert producer(model.get_layer("stage1_block1_norm1").input).name == "stage1_block1_proj"
    assert producer(model.get_layer("stage1_block1_norm2").input).name == "stage1_block1_fc2"
    assert producer(model.get_layer("stage2_downsample_norm").input).name == "stage2_downsample_reduction"
    v1 = zoo.build("swin_t", **TINY)
    assert producer(v1.get_layer("stage1_block1_qkv").input).name == "stage1_block1_norm1"
    # the keys' bias has no effect: changing it changes nothing
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype="float32")
    before = np.asarray(model(x))
    bias = attn.qkv_bias.numpy()
    c = bias.size // 3
    attn.qkv_bias.assign(np.concatenate([bias[:c], bias[c:2 * c] + 5.0, bias[2 * c:]]))
    np.testing.assert_allclose(np.asarray(model(x)), before, atol=1e-6)


def test_non_square_and_unaligned_inputs_build_and_run():
    model = zoo.build("swin_v2_t", **{**TINY, "input_shape": (40, 56, 3), "window_size": 3})
    assert model(np.zeros((2, 40, 56, 3), "float32")).shape == (2, 10)


def test_a_fixed_input_size_is_needed():
    with pytest.raises(ValueError, match="fixed input size"):
        zoo.build("swin_t", **{**TINY, "input_shape": (None, None, 3)})


def test_window_attention_round_trips(tmp_path):
    model = zoo.build("swin_v2_t", **TINY)
    path = tmp_path / "swin.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype="float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert type(loaded.get_layer("stage1_block2_attn")) is swin.WindowAttentionV2
    assert loaded.get_layer("stage1_block2_attn").get_config()["shift"] == (1, 1)


def test_mixed_precision_gives_finite_outputs():
    # V2's normalisation divides by max(|q|, 1e-12): in float32, since 1e-12 is 0 in float16 (padded positions
    # have zero queries at initialisation)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = zoo.build("swin_v2_t", **{**TINY, "input_shape": (36, 36, 3)})
        assert np.isfinite(np.asarray(model(np.ones((1, 36, 36, 3), "float32")))).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")
