"""Multi-scale features (features_only / out_indices / feature_info) on every staged CNN family."""

import shutil

import keras
import numpy as np
import pytest

import zoo
from zoo.layers import TokensToMap
from zoo.transfer import feature_units, multi_scale_model

FIXTURES = "tests/fixtures/weights"

# name, builder arguments at 64 px, (channels, reduction) per stage
FAMILIES = [
    ("resnet18", {"width": 0.125}, [(8, 4), (16, 8), (32, 16), (64, 32)]),
    ("resnext50_32x4d", {"width": 0.125}, [(32, 4), (64, 8), (128, 16), (256, 32)]),
    ("preact_resnet18", {"width": 0.125}, [(8, 4), (16, 8), (32, 16), (64, 32)]),
    ("vgg11", {"width": 0.125}, [(8, 2), (16, 4), (32, 8), (64, 16), (64, 32)]),
    ("densenet121", {"width": 0.125}, [(32, 4), (64, 8), (128, 16), (128, 32)]),
    ("googlenet", {"width": 0.125}, [(60, 8), (104, 16), (128, 32)]),
    # MobileNet's stages are split where the stride is 2 (its last one ends with the 1280-channel 1x1 conv)
    ("mobilenet_v2", {"width": 0.25}, [(8, 2), (8, 4), (8, 8), (24, 16), (1280, 32)]),
    # EfficientNet's are torchvision's 7 stages (two of them keep the resolution)
    ("efficientnet_b0", {"width": 0.125}, [(8, 2), (8, 4), (8, 8), (16, 16), (16, 16), (24, 32), (160, 32)]),
    ("regnet_y_400mf", {"width": 0.125}, [(6, 4), (13, 8), (26, 16), (55, 32)]),
    ("convnext_tiny", {"width": 0.0625}, [(6, 4), (12, 8), (24, 16), (48, 32)]),
    # MNASNet's stem holds the stride-2 conv and the depthwise separable one (torchvision's layers 0-7): stages
    # start at the first stride-2 block; the last ends with the 1280-channel 1x1 conv
    ("mnasnet1_0", {"width": 0.25}, [(8, 4), (16, 8), (24, 16), (1280, 32)]),
    # SqueezeNet's unpadded stem and ceil-mode pools give maps 15, 7, 3 at 64 px: the reductions are the strides'
    ("squeezenet1_1", {"width": 0.125}, [(16, 4), (32, 8), (64, 16)]),
    # torchvision's stage2-4 are stages 1-3; conv5 ends the last
    ("shufflenet_v2_x1_0", {"width": 0.125}, [(14, 8), (28, 16), (128, 32)]),
]


@pytest.mark.parametrize("name, kwargs, expected", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_one_output_per_stage_with_its_channels_and_reduction(name, kwargs, expected):
    model = zoo.build(name, input_shape=(64, 64, 3), features_only=True, **kwargs)
    info = zoo.feature_info(model)
    assert [(f["channels"], f["reduction"]) for f in info] == expected
    assert [f["index"] for f in info] == list(range(1, len(expected) + 1))
    assert [tuple(o.shape[1:]) for o in model.outputs] == [f["shape"] for f in info]
    assert not any(layer.name.startswith("head_") for layer in model.layers)


def test_reduction_is_the_strides_product_where_maps_do_not_divide_the_input():
    """Inception v3's unpadded convolutions: at 75 px (its minimum) the stage maps are 15, 7, 3 and 1 wide; the
    reductions are its strides' products 4, 8, 16, 32 (timm's), not 75 / 15 = 5 or None."""
    model = zoo.build("inception_v3", input_shape=(75, 75, 3), features_only=True, width=0.0625)
    info = zoo.feature_info(model)
    assert [(f["shape"][0], f["reduction"]) for f in info] == [(15, 4), (7, 8), (3, 16), (1, 32)]
    assert [f["channels"] for f in info] == [12, 18, 48, 128]  # Conv2d_4a, Mixed_5d, 6e, 7c at width 1/16


def test_converted_weights_load_into_the_feature_model(tmp_path):
    weights = str(tmp_path / "resnet18_basic.pth")  # a copy: the kept conversion is written beside it
    shutil.copy(f"{FIXTURES}/resnet18_basic.pth", weights)
    features = zoo.build("resnet18", width=0.125, input_shape=(64, 64, 3), features_only=True,
                         out_indices=(0, 2, 4), weights=weights)
    full = zoo.build("resnet18", width=0.125, input_shape=(64, 64, 3), num_classes=10, weights=weights,
                     classifier_activation=None)
    x = np.load(f"{FIXTURES}/resnet18_basic_io.npz")["inputs"]
    outs = features.predict(x, verbose=0)
    assert [f["unit"] for f in zoo.feature_info(features)] == ["stem", "stage2", "stage4"]
    cut = keras.Model(full.inputs, [full.get_layer(n).output
                                    for n in ("stem_pool_maxpool", "stage2_block2_out", "stage4_block2_out")])
    for got, want in zip(outs, cut.predict(x, verbose=0)):
        np.testing.assert_array_equal(got, want)
    # and the full model still gives torch's logits: the cut shares the backbone that the checkpoint filled
    logits = np.load(f"{FIXTURES}/resnet18_basic_io.npz")["logits"]
    assert np.max(np.abs(full.predict(x, verbose=0) - logits)) < 1e-5 * np.max(np.abs(logits))


def test_keras_application_wrappers_give_stage_features():
    model = zoo.build("keras_resnet50", input_shape=(64, 64, 3), features_only=True)
    assert [(f["channels"], f["reduction"]) for f in zoo.feature_info(model)] == \
        [(256, 4), (512, 8), (1024, 16), (2048, 32)]


def test_a_token_model_gives_one_map_per_block_without_its_class_token(tmp_path):
    inputs = keras.Input((32, 32, 3), name="input")
    x = keras.layers.Conv2D(8, 8, strides=8, name="stem_patches")(inputs)
    x = keras.layers.Reshape((16, 8), name="stem_tokens")(x)
    x = keras.layers.ZeroPadding1D((1, 0), name="stem_class_token")(x)  # a (zero) class token in front
    for b in (1, 2, 3):
        x = keras.layers.Dense(8, name=f"stage1_block{b}_fc")(x)
    model = keras.Model(inputs, x, name="tokens")
    assert feature_units(model) == {0: "stem", 1: "stage1_block1", 2: "stage1_block2", 3: "stage1_block3"}
    features = multi_scale_model(model, (1, 3))
    info = zoo.feature_info(features)
    assert [(f["unit"], f["shape"], f["reduction"]) for f in info] == \
        [("stage1_block1", (4, 4, 8), 8), ("stage1_block3", (4, 4, 8), 8)]
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    tokens = keras.Model(inputs, model.get_layer("stage1_block3_fc").output).predict(x, verbose=0)
    last = features.predict(x, verbose=0)[1]
    np.testing.assert_array_equal(last, tokens[:, 1:].reshape(2, 4, 4, 8))  # patches row by row
    path = str(tmp_path / "f.keras")
    features.save(path)
    np.testing.assert_array_equal(zoo.load_model(path).predict(x, verbose=0)[1], last)


def test_tokens_that_tile_no_grid_are_refused():
    tokens = keras.Input((13, 8))
    with pytest.raises(ValueError, match="patch grid"):
        TokensToMap.for_tokens(tokens, (32, 32), name="x")


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"features_only": True, "out_indices": (7,)}, ValueError, "not among"),
    ({"features_only": True, "out_indices": "12"}, TypeError, "out_indices"),
    ({"features_only": True, "out_indices": (1, 1)}, ValueError, "distinct"),
    ({"features_only": True, "out_indices": ()}, ValueError, "at least one"),
    ({"out_indices": (1, 2)}, ValueError, "needs features_only=True"),
    ({"features_only": True, "include_top": True}, ValueError, "leave include_top"),
    ({"features_only": True, "pooling": "avg"}, ValueError, "leave include_top and pooling"),
    ({"features_only": "yes"}, TypeError, "features_only"),
])
def test_bad_feature_arguments_are_named(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        zoo.build("resnet18", width=0.125, input_shape=(32, 32, 3), **kwargs)


def test_lenet5_has_stages_and_a_plain_model_has_none():
    features = zoo.build("lenet5", features_only=True)  # C1+S2, C3+S4, C5: LeCun's feature maps
    assert [f["shape"] for f in zoo.feature_info(features)] == [(14, 14, 6), (5, 5, 16), (1, 1, 120)]
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs))
    with pytest.raises(ValueError, match="no stages"):
        multi_scale_model(plain)
    with pytest.raises(ValueError, match="image-shaped"):
        zoo.feature_info(zoo.build("lenet5"))
