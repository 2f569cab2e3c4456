"""torchvision's Vision Transformers: parameter counts, multiply-adds, the position embedding's resampling.

The tiny fixture's logits (``vit_tiny`` in tests/fixtures/weights/index.json, .pth and .safetensors) and the
full-size key mapping are checked by tests/test_weights.py, as every family's.
"""

import os

import keras
import numpy as np
import pytest

import zoo
from zoo.models.vit import ClassToken, DotProductAttention, PositionEmbedding, resample_position_embedding
from zoo.weights.convert import load_state_dict

HERE = os.path.dirname(__file__)

# torchvision's trainable parameters at 224 px, 1000 classes
TORCHVISION_PARAMS = {
    "vit_b_16": 86_567_656,
    "vit_b_32": 88_224_232,
    "vit_l_16": 304_326_632,
    "vit_l_32": 306_535_400,
    "vit_h_14": 632_045_800,
}
# torchvision's published GFLOPS (multiply-adds)
TORCHVISION_GFLOPS = {"vit_b_16": 17.56, "vit_b_32": 4.41, "vit_l_16": 61.55, "vit_l_32": 15.38, "vit_h_14": 167.29}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_trainable_params_match_torchvision_counted_dry(name):
    from zoo.graph import dry_weight_count

    count = dry_weight_count(lambda: zoo.build(name, input_shape=(224, 224, 3), num_classes=1000),
                             trainable_only=True)
    assert count == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", [n if n in ("vit_b_16", "vit_b_32") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(TORCHVISION_GFLOPS)])
def test_macs_are_torchvisions_published_gflops(name):
    """Dense on the (B, N, D) tokens counts N * in * out; the attention its two products, 2 N^2 D."""
    assert zoo.profile(zoo.build(name)).macs / 1e9 == pytest.approx(TORCHVISION_GFLOPS[name], rel=0.03)


@pytest.mark.parametrize("grid", [(3, 5), (7, 7), (2, 2)])
def test_position_embedding_resampling_is_timms(grid):
    ref = np.load(os.path.join(HERE, "fixtures", "vit_pos_resample.npz"))
    out = resample_position_embedding(ref["embedding"], grid)
    np.testing.assert_allclose(out, ref[f"grid_{grid[0]}x{grid[1]}"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(out[:, 0], ref["embedding"][:, 0])  # the class token's kept


def test_weights_of_another_grid_load_resampled():
    kw = dict(width=0.0625, depth=1, num_classes=3)
    small = zoo.build("vit_b_16", input_shape=(32, 32, 3), **kw)
    state = {}
    for layer in small.layers:  # a torch-style state dict of the 2x2 grid, from the zoo's own weights
        if layer.name == "stem_pos_embedding":
            state["encoder.pos_embedding"] = np.asarray(layer.weights[0])
    big = zoo.build("vit_b_16", input_shape=(48, 64, 3), **kw)
    layer = big.get_layer("stem_pos_embedding")
    (out,) = layer.convert_torch_leaves([state["encoder.pos_embedding"]])
    assert out.shape == (1, 1 + 3 * 4, 48)
    np.testing.assert_allclose(out, resample_position_embedding(state["encoder.pos_embedding"], (3, 4)))


def test_class_token_is_first_and_heads_attend():
    model = zoo.build("vit_b_16", input_shape=(32, 32, 3), width=0.0625, depth=1, include_top=False)
    assert tuple(model.output.shape) == (None, 2, 2, 48)  # the patch tokens' map
    assert model.get_layer("stem_class_token").output.shape[1] == 5
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    assert np.isfinite(np.asarray(model(x))).all()
    for pooling, shape in (("avg", (None, 48)), ("max", (None, 48))):
        m = zoo.build("vit_b_16", input_shape=(32, 32, 3), width=0.0625, depth=1, include_top=False,
                      pooling=pooling)
        assert tuple(m.output.shape) == shape


def test_custom_layers_round_trip_their_config():
    for layer in (ClassToken(name="t"), PositionEmbedding((3, 4), name="p"), DotProductAttention(4, 0.1, name="a")):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        assert keras.saving.get_registered_object(f"zoo>{type(layer).__name__}") is type(layer)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="pooling"):
        zoo.build("vit_b_16", input_shape=(32, 32, 3), width=0.0625, depth=1, include_top=False, pooling="cls")
    with pytest.raises(TypeError, match="depth"):
        zoo.build("vit_b_16", input_shape=(32, 32, 3), width=0.0625, depth=1.5)
    with pytest.raises(ValueError, match="input_shape"):
        zoo.build("vit_b_16", input_shape=(8, 8, 3), width=0.0625, depth=1)


def test_state_dict_names_of_one_layer():
    """torchvision's keys of an encoder layer, the class token and the position embedding (no module prefix)."""
    model = zoo.build("vit_b_16", input_shape=(32, 32, 3), width=0.0625, depth=1, num_classes=3)
    rng = np.random.default_rng(0)
    state = {}
    shapes = {"conv_proj.weight": (48, 3, 16, 16), "conv_proj.bias": (48,), "class_token": (1, 1, 48),
              "encoder.pos_embedding": (1, 5, 48), "encoder.ln.weight": (48,), "encoder.ln.bias": (48,),
              "heads.head.weight": (3, 48), "heads.head.bias": (3,)}
    layer = "encoder.layers.encoder_layer_0"
    shapes.update({f"{layer}.ln_1.weight": (48,), f"{layer}.ln_1.bias": (48,), f"{layer}.ln_2.weight": (48,),
                   f"{layer}.ln_2.bias": (48,), f"{layer}.self_attention.in_proj_weight": (144, 48),
                   f"{layer}.self_attention.in_proj_bias": (144,), f"{layer}.self_attention.out_proj.weight": (48, 48),
                   f"{layer}.self_attention.out_proj.bias": (48,), f"{layer}.mlp.0.weight": (192, 48),
                   f"{layer}.mlp.0.bias": (192,), f"{layer}.mlp.3.weight": (48, 192), f"{layer}.mlp.3.bias": (48,)})
    state = {k: rng.standard_normal(s).astype("float32") for k, s in shapes.items()}
    report = load_state_dict(model, state)
    assert report.family == "vit" and not report.dropped
    np.testing.assert_array_equal(model.get_layer("stage1_block1_qkv").get_weights()[0],
                                  state[f"{layer}.self_attention.in_proj_weight"].T)
    np.testing.assert_array_equal(model.get_layer("stem_class_token").get_weights()[0], state["class_token"])
