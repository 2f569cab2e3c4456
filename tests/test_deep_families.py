"""Deep families (VGG, ResNet, pre-activation ResNet, DenseNet, keras.applications
wrappers): reference parameter counts, structure, stems, stage names and wrappers.

Building is cheap, training is not: nothing here trains (the registry-driven
suite runs one training step and a save/load round trip per model).
"""

from __future__ import annotations

import re
import time

import keras
import numpy as np
import pytest
from keras import layers

import zoo
from zoo import blocks
from zoo.layers import AdaptiveAveragePooling2D
from zoo.models import applications, densenet

STAGE_PREFIX = re.compile(r"(stem|stage([1-9]\d*)|head)_")


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session(free_memory=False)


def trainable_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def producer(layer):
    """The layer that produced a single-input layer's input."""
    return layer.input._keras_history.operation


def chain(model, name, n):
    """Names of ``name`` and the ``n - 1`` layers before it, following first inputs."""
    layer, names = model.get_layer(name), [name]
    for _ in range(n - 1):
        inp = layer.input[0] if isinstance(layer.input, list) else layer.input
        layer = inp._keras_history.operation
        names.append(layer.name)
    return names


def layers_of(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


# ----------------------------------------------------------------------------
# Parameter counts against the references

# torchvision's counts (its models' trainable parameters at 224x224x3, 1,000 classes) for three models built in full:
# the count without allocating must equal the built model's, which makes the dry counts below trustworthy.
TORCHVISION_PARAMS_BUILT = {"resnet18": 11_689_512, "densenet121": 7_978_856,
                            "googlenet": 6_624_904}  # googlenet without the auxiliary classifiers


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS_BUILT))
def test_trainable_params_match_torchvision_and_the_count_without_allocating(name):
    from zoo.graph import dry_weight_count

    model = zoo.build(name, input_shape=(224, 224, 3), num_classes=1000)
    assert trainable_params(model) == TORCHVISION_PARAMS_BUILT[name]
    dry = dry_weight_count(lambda: zoo.build(name, input_shape=(224, 224, 3), num_classes=1000), trainable_only=True)
    assert dry == TORCHVISION_PARAMS_BUILT[name]


# torchvision's counts (its models' trainable parameters at 224x224x3, 1,000 classes), counted without allocating.
TORCHVISION_PARAMS_DRY = {
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet161": 28_681_000,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "regnet_x_400mf": 5_495_976,
    "regnet_x_800mf": 7_259_656,
    "regnet_x_1_6gf": 9_190_136,
    "regnet_x_3_2gf": 15_296_552,
    "regnet_x_8gf": 39_572_648,
    "regnet_x_16gf": 54_278_536,
    "regnet_x_32gf": 107_811_560,
    "regnet_y_400mf": 4_344_144,
    "regnet_y_800mf": 6_432_512,
    "regnet_y_1_6gf": 11_202_430,
    "regnet_y_3_2gf": 19_436_338,
    "regnet_y_8gf": 39_381_472,
    "regnet_y_16gf": 83_590_140,
    "regnet_y_32gf": 145_046_770,
    "regnet_y_128gf": 644_812_894,
    "convnext_tiny": 28_589_128,
    "convnext_small": 50_223_688,
    "convnext_base": 88_591_464,
    "convnext_large": 197_767_336,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
    "efficientnet_v2_s": 21_458_488,
    "efficientnet_v2_m": 54_139_356,
    "efficientnet_v2_l": 118_515_272,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS_DRY))
def test_trainable_params_match_torchvision_counted_dry(name):
    from zoo.graph import dry_weight_count

    count = dry_weight_count(lambda: zoo.build(name, input_shape=(224, 224, 3), num_classes=1000),
                             trainable_only=True)
    assert count == TORCHVISION_PARAMS_DRY[name]


# He et al. 2016, table 6 (CIFAR-10, option A shortcuts).
CIFAR_RESNET_PARAMS = {"resnet20": 0.27e6, "resnet32": 0.46e6, "resnet44": 0.66e6, "resnet56": 0.85e6,
                       "resnet110": 1.7e6}


@pytest.mark.parametrize("name", sorted(CIFAR_RESNET_PARAMS))
def test_cifar_resnet_params_match_paper(name):
    model = zoo.build(name, num_classes=10)
    assert trainable_params(model) == pytest.approx(CIFAR_RESNET_PARAMS[name], rel=0.03)
    # Option A shortcuts are parameter-free: no projection convs at all.
    assert not [layer for layer in model.layers if "shortcut_conv" in layer.name]


def test_densenet_bc_params_match_paper():
    # Huang et al. 2017, table 2: DenseNet-BC (L=100, k=12) has 0.8M parameters.
    assert trainable_params(zoo.build("densenet_bc_100")) == pytest.approx(0.8e6, rel=0.05)
    assert trainable_params(zoo.build("densenet_bc", depth=100, growth_rate=12)) == trainable_params(
        zoo.build("densenet_bc_100"))


def test_preact_resnet18_has_resnet18_convs_but_not_its_batch_norms():
    """The conv and FC weights are resnet18's; the counts are NOT equal.

    Pre-activation drops the BN after each projection shortcut (128 + 256 + 512
    channels) and the first block's BN after the stem, and adds a BN before
    each stage's first block (64 + 128 + 256) and the final BN (512):
    896 BN channels fewer, i.e. 1,792 fewer trainable parameters (11,687,720).
    """
    res = zoo.build("resnet18", input_shape=(224, 224, 3))
    pre = zoo.build("preact_resnet18", input_shape=(224, 224, 3))

    def shapes(model, cls):
        return sorted(tuple(w.shape) for layer in layers_of(model, cls) for w in layer.trainable_weights)

    for cls in (layers.Conv2D, layers.Dense):
        assert shapes(pre, cls) == shapes(res, cls)
    bn = [sum(layer.gamma.shape[0] for layer in layers_of(m, layers.BatchNormalization)) for m in (res, pre)]
    assert bn[0] - bn[1] == 896
    assert trainable_params(res) - trainable_params(pre) == 2 * 896
    assert trainable_params(pre) == 11_687_720


# ----------------------------------------------------------------------------
# Width and stem


def conv_kernel_params(model):
    return sum(int(np.prod(layer.kernel.shape)) for layer in layers_of(model, layers.Conv2D))


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "densenet121"])
def test_width_half_roughly_quarters_conv_params(name):
    full = zoo.build(name, input_shape=(32, 32, 3), num_classes=3)
    half = zoo.build(name, input_shape=(32, 32, 3), num_classes=3, width=0.5)
    assert 0.24 < conv_kernel_params(half) / conv_kernel_params(full) < 0.26
    assert half.get_layer("head_predictions").kernel.shape[1] == 3


def test_cifar_stem_keeps_resolution_and_has_no_max_pool():
    model = zoo.build("resnet18", input_shape=(32, 32, 3), stem="cifar", width=0.125)
    assert not layers_of(model, layers.MaxPooling2D)
    stem_conv = model.get_layer("stem_conv")
    assert stem_conv.kernel_size == (3, 3) and stem_conv.strides == (1, 1)
    assert model.get_layer("stage1_block2_out").output.shape[1:3] == (32, 32)
    assert model.get_layer("stage4_block2_out").output.shape[1:3] == (4, 4)


def test_imagenet_stem_downsamples_by_four():
    model = zoo.build("resnet18", input_shape=(64, 64, 3), stem="imagenet", width=0.125)
    stem_conv = model.get_layer("stem_conv")
    assert stem_conv.kernel_size == (7, 7) and stem_conv.strides == (2, 2)
    assert model.get_layer("stem_pool_maxpool").pool_size == (3, 3)
    assert model.get_layer("stage1_block2_out").output.shape[1:3] == (16, 16)


@pytest.mark.parametrize("shape, stem", [((32, 32, 3), "cifar"), ((63, 200, 3), "cifar"),
                                         ((64, 64, 3), "imagenet"), ((None, None, 3), "imagenet")])
def test_stem_is_chosen_from_the_input_size(shape, stem):
    for name in ("resnet18", "preact_resnet18", "densenet121"):
        model = zoo.build(name, input_shape=shape, width=0.0625)
        kernel = model.get_layer("stem_conv").kernel_size
        assert kernel == ((3, 3) if stem == "cifar" else (7, 7)), name
        assert ("stem_pool_maxpool" in [layer.name for layer in model.layers]) == (stem == "imagenet")


def test_pre_activation_stems():
    # The first activation comes right after conv1 (He et al. 2016b): inside
    # the ImageNet stem, or as the first block's pre-activation after the bare CIFAR conv.
    names = {layer.name for layer in zoo.build("preact_resnet18", input_shape=(64, 64, 3), width=0.125).layers}
    assert {"stem_bn", "stem_relu"} <= names and "stage1_block1_preact_bn" not in names
    assert "stage1_block2_preact_bn" in names
    names = {layer.name for layer in zoo.build("preact_resnet18", input_shape=(32, 32, 3), width=0.125).layers}
    assert "stem_bn" not in names and "stage1_block1_preact_bn" in names


# ----------------------------------------------------------------------------
# Layout against the references

STRUCTURE_CASES = {
    "resnet18": {"input_shape": (64, 64, 3), "width": 0.125},
    "resnet50": {"input_shape": (64, 64, 3), "width": 0.125},
    "resnet20": {"width": 0.5, "shortcut": "B"},
    "preact_resnet50": {"input_shape": (64, 64, 3), "width": 0.125},
    "densenet121": {"input_shape": (64, 64, 3), "width": 0.125},
    "densenet_bc_40": {},
    "vgg11": {"width": 0.0625, "input_shape": (32, 32, 3)},
    "vgg11_bn": {"width": 0.0625, "input_shape": (32, 32, 3)},
}


@pytest.mark.parametrize("name", sorted(STRUCTURE_CASES))
def test_torchvision_conventions(name):
    model = zoo.build(name, **STRUCTURE_CASES[name])
    convs = layers_of(model, layers.Conv2D)
    assert convs
    for conv in convs:
        k = conv.kernel_size[0]
        if k == 1:
            assert conv.padding == "valid", conv.name
        elif conv.strides[0] > 1:  # symmetric padding as torchvision's Conv2d(padding=k // 2)
            assert conv.padding == "valid", conv.name
            pad = producer(conv)
            assert isinstance(pad, layers.ZeroPadding2D), conv.name
            assert tuple(map(tuple, pad.padding)) == ((k // 2, k // 2),) * 2, conv.name
        else:  # stride 1, odd kernel: Keras' "same" pads k // 2 on each side, exactly as torchvision
            assert conv.padding == "same" and k % 2 == 1, conv.name
    for pool in layers_of(model, layers.MaxPooling2D):
        assert pool.padding == "valid", pool.name
    bns = layers_of(model, layers.BatchNormalization)
    assert all(bn.epsilon == 1e-5 for bn in bns)
    # No bias before BN, except torchvision's VGG-BN, whose convs keep it.
    for bn in bns:
        prev = producer(bn)
        if isinstance(prev, layers.Conv2D):
            assert prev.use_bias == name.startswith("vgg"), prev.name


def test_resnet50_bottleneck_is_v1_5_in_torchvision_order():
    model = zoo.build("resnet50", input_shape=(64, 64, 3), width=0.125)
    assert chain(model, "stage2_block1_add", 11) == [
        "stage2_block1_add", "stage2_block1_bn3", "stage2_block1_conv3", "stage2_block1_relu2",
        "stage2_block1_bn2", "stage2_block1_conv2", "stage2_block1_conv2_pad", "stage2_block1_relu1",
        "stage2_block1_bn1", "stage2_block1_conv1", "stage1_block3_out"]
    strides = {n: model.get_layer(f"stage2_block1_{n}").strides for n in ("conv1", "conv2", "conv3")}
    assert strides == {"conv1": (1, 1), "conv2": (2, 2), "conv3": (1, 1)}
    shortcut = model.get_layer("stage2_block1_shortcut_conv")
    assert shortcut.kernel_size == (1, 1) and shortcut.strides == (2, 2)
    add_inputs = [t._keras_history.operation.name for t in model.get_layer("stage2_block1_add").input]
    assert add_inputs == ["stage2_block1_bn3", "stage2_block1_shortcut_bn"]
    assert producer(model.get_layer("stage2_block1_out")).name == "stage2_block1_add"
    # Identity shortcut inside a stage.
    add_inputs = [t._keras_history.operation.name for t in model.get_layer("stage2_block2_add").input]
    assert add_inputs == ["stage2_block2_bn3", "stage2_block1_out"]


def test_preact_block_order():
    model = zoo.build("preact_resnet18", input_shape=(32, 32, 3), width=0.125)
    assert chain(model, "stage2_block1_add", 9) == [
        "stage2_block1_add", "stage2_block1_conv2", "stage2_block1_relu1",
        "stage2_block1_bn1", "stage2_block1_conv1", "stage2_block1_conv1_pad", "stage2_block1_preact_relu",
        "stage2_block1_preact_bn", "stage1_block2_add"]
    # The projection (no BN) takes the pre-activated input.
    add_inputs = [t._keras_history.operation.name for t in model.get_layer("stage2_block1_add").input]
    assert add_inputs == ["stage2_block1_conv2", "stage2_block1_shortcut_conv"]
    assert producer(model.get_layer("stage2_block1_shortcut_conv")).name == "stage2_block1_preact_relu"
    assert chain(model, "head_avgpool", 4) == ["head_avgpool", "stage4_post_relu", "stage4_post_bn",
                                                "stage4_block2_add"]


def test_densenet_layer_and_transition_order():
    model = zoo.build("densenet121", input_shape=(64, 64, 3), width=0.125)
    assert chain(model, "stage1_block1_concat", 2) == ["stage1_block1_concat", "stem_pool_maxpool"]
    new = model.get_layer("stage1_block1_concat").input[1]._keras_history.operation
    assert chain(model, new.name, 7) == [
        "stage1_block1_conv2", "stage1_block1_relu2", "stage1_block1_bn2",
        "stage1_block1_conv1", "stage1_block1_relu1", "stage1_block1_bn1", "stem_pool_maxpool"]
    assert chain(model, "stage1_transition_avgpool", 5) == [
        "stage1_transition_avgpool", "stage1_transition_conv", "stage1_transition_relu",
        "stage1_transition_bn", "stage1_block6_concat"]
    assert model.get_layer("stage1_transition_avgpool").pool_size == (2, 2)
    assert chain(model, "head_avgpool", 3) == ["head_avgpool", "stage4_post_relu", "stage4_post_bn"]


def test_vgg_classifier_in_torchvision_order():
    model = zoo.build("vgg16_bn", input_shape=(32, 32, 3), width=0.0625)
    assert chain(model, "head_predictions", 10) == [
        "head_predictions", "head_dropout2", "head_fc2_relu", "head_fc2", "head_dropout1", "head_fc1_relu",
        "head_fc1", "head_flatten", "head_adaptive_avgpool", "stage5_maxpool"]
    assert model.get_layer("head_adaptive_avgpool").output.shape[1:3] == (7, 7)
    assert chain(model, "stage1_block2_relu", 4) == ["stage1_block2_relu", "stage1_block2_bn",
                                                     "stage1_block2_conv", "stage1_block1_relu"]
    assert len(layers_of(model, layers.Conv2D)) == 13 and len(layers_of(model, layers.MaxPooling2D)) == 5


def test_option_a_shortcut_is_subsample_plus_zero_channels():
    model = zoo.build("resnet20", width=0.5)
    pad = model.get_layer("stage2_block1_shortcut_pad")  # built-in layers only: plain Keras loads the model
    assert isinstance(pad, layers.ZeroPadding3D) and pad.padding == ((0, 0), (0, 0), (4, 4))
    sub = producer(producer(pad))
    assert sub.name == "stage2_block1_shortcut_subsample" and sub.strides == (2, 2) and sub.pool_size == (1, 1)
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    inputs = keras.Input((4, 4, 3))
    for padded in (keras.Model(inputs, blocks.zero_channels(inputs, (1, 2), name="pad")),
                   blocks.ChannelZeroPadding((1, 2))):  # the custom layer that models saved before use
        y = keras.ops.convert_to_numpy(padded(x))
        assert y.shape == (2, 4, 4, 6) and np.array_equal(y[..., 1:4], x) and not y[..., [0, 4, 5]].any()
    b = zoo.build("resnet20", width=0.5, shortcut="B")
    assert trainable_params(b) > trainable_params(model)


def test_adaptive_average_pooling_matches_torch_also_when_upsampling():
    def torch_reference(x, out):
        n, h, w, c = x.shape
        y = np.zeros((n, out, out, c), "float32")
        for i in range(out):
            for j in range(out):
                rows = slice(i * h // out, -(-(i + 1) * h // out))
                cols = slice(j * w // out, -(-(j + 1) * w // out))
                y[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
        return y

    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (2, 3), (5, 9), (7, 7), (8, 13), (14, 14), (15, 7), (17, 23)]:
        x = rng.random((2, h, w, 3), dtype="float32")
        inputs = keras.Input((h, w, 3))
        model = keras.Model(inputs, AdaptiveAveragePooling2D(7)(inputs))
        np.testing.assert_allclose(model.predict(x, verbose=0), torch_reference(x, 7), atol=1e-6)
        # what the builders use: Keras' built-in layer (same bins) wherever the map is at least 7x7
        model = keras.Model(inputs, blocks.adaptive_avg_pool(inputs, 7, name="pool"))
        builtin = h >= 7 and w >= 7
        assert isinstance(model.get_layer("pool"), layers.AdaptiveAveragePooling2D) == builtin
        np.testing.assert_allclose(model.predict(x, verbose=0), torch_reference(x, 7), atol=1e-6)
    layer = AdaptiveAveragePooling2D.from_config(AdaptiveAveragePooling2D((6, 7)).get_config())
    assert layer.output_size == (6, 7)


def test_custom_layer_round_trips(tmp_path):
    layer = blocks.ChannelZeroPadding((2, 3), name="pad")
    clone = blocks.ChannelZeroPadding.from_config(layer.get_config())
    assert clone.padding == (2, 3) and clone.name == "pad"
    model = zoo.build("resnet20", width=0.25, num_classes=3)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype="float32")
    path = tmp_path / "resnet20.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


# ----------------------------------------------------------------------------
# Stage names partition every model; freezing by prefix


FREEZE_CASES = {
    "vgg": ("vgg11_bn", {"input_shape": (32, 32, 3), "width": 0.0625}),
    "resnet": ("resnet18", {"input_shape": (64, 64, 3), "width": 0.125}),
    "resnet_cifar": ("resnet20", {"width": 0.5}),
    "preact_resnet": ("preact_resnet18", {"input_shape": (32, 32, 3), "width": 0.125}),
    "densenet": ("densenet121", {"input_shape": (64, 64, 3), "width": 0.125}),
    "densenet_bc": ("densenet_bc_40", {"width": 0.5}),
    "keras_applications": ("keras_mobilenetv2", {"input_shape": (32, 32, 3)}),
}


@pytest.mark.parametrize("family", sorted(FREEZE_CASES))
def test_freezing_by_stage_prefix(family):
    name, kwargs = FREEZE_CASES[family]
    model = zoo.build(name, num_classes=3, **kwargs)
    names = [layer.name for layer in model.layers]
    assert len(set(names)) == len(names)
    stages = set()
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        match = STAGE_PREFIX.match(layer.name)
        assert match, f"{layer.name} is in no stage"
        stages.add(match.group(1))
    numbered = sorted(int(s[5:]) for s in stages if s.startswith("stage"))
    assert numbered == list(range(1, len(numbered) + 1)) and len(numbered) >= 3
    assert "head" in stages and "head_predictions" in names

    frozen = [layer for layer in model.layers if layer.name.startswith(("stem_", "stage1_"))]
    frozen_weights = sum(len(layer.trainable_weights) for layer in frozen)
    frozen_params = sum(int(np.prod(w.shape)) for layer in frozen for w in layer.trainable_weights)
    assert frozen_weights > 0
    count, params = len(model.trainable_weights), trainable_params(model)
    for layer in frozen:
        layer.trainable = False
    model.compile("adam", "sparse_categorical_crossentropy")
    assert len(model.trainable_weights) == count - frozen_weights
    assert trainable_params(model) == params - frozen_params


# ----------------------------------------------------------------------------
# Argument checks and minimum input sizes


@pytest.mark.parametrize(
    "name, kwargs, error, fragment",
    [
        ("resnet18", {"width": 0}, ValueError, "width=0"),
        ("resnet18", {"stem": "big"}, ValueError, "stem='big'"),
        ("preact_resnet18", {"stem": 3}, TypeError, "stem=3"),
        ("resnet50", {"num_classes": 0}, ValueError, "num_classes=0"),
        ("resnet20", {"shortcut": "C"}, ValueError, "shortcut='C'"),
        ("densenet_bc", {"depth": 41}, ValueError, "depth=41"),
        ("densenet_bc", {"growth_rate": 0}, ValueError, "growth_rate=0"),
        ("densenet121", {"compression": 1.5}, ValueError, "compression=1.5"),
        ("vgg16", {"dropout": 1.0}, ValueError, "dropout=1.0"),
        ("vgg16", {"input_shape": (31, 31, 3)}, ValueError, "input_shape=(31, 31, 3)"),
        ("densenet121", {"input_shape": (28, 28, 3), "stem": "imagenet"}, ValueError, "input_shape=(28, 28, 3)"),
        ("preact_resnet18", {"weights": True}, TypeError, "weights=True"),
        ("densenet121", {"weights": "imagenet"}, ValueError, "weights='imagenet'"),
        ("keras_resnet50", {"input_shape": (31, 31, 3)}, ValueError, "input_shape=(31, 31, 3)"),
        ("keras_resnet50", {"pooling": "sum"}, ValueError, "pooling='sum'"),
    ],
)
def test_arguments_are_checked_before_building(name, kwargs, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        zoo.build(name, **kwargs)


@pytest.mark.parametrize("name, kwargs, min_size", [
    ("resnet18", {"width": 0.0625}, 1),
    ("resnet20", {"width": 0.5}, 1),
    ("preact_resnet50", {"width": 0.0625, "stem": "imagenet"}, 1),
    ("vgg11", {"width": 0.0625}, 32),
    ("densenet121", {"width": 0.125}, 8),
    ("densenet121", {"width": 0.125, "stem": "imagenet"}, 29),
    ("densenet_bc_40", {"width": 0.5}, 4),
    ("keras_mobilenetv2", {}, 32),
])
def test_minimum_input_sizes_are_honest(name, kwargs, min_size):
    if "stem" not in kwargs:
        assert zoo.get_card(name).min_input_size == min_size
    model = zoo.build(name, input_shape=(min_size, min_size, 3), num_classes=3, **kwargs)
    assert model.output_shape == (None, 3)
    if min_size > 1:
        with pytest.raises(ValueError, match="input_shape"):
            zoo.build(name, input_shape=(min_size - 1, min_size - 1, 3), **kwargs)


def test_densenet_minimum_input_size_formula():
    # torchvision's DenseNet metadata says min_size (29, 29).
    assert densenet.min_input_size("imagenet", 4) == 29
    assert densenet.min_input_size("cifar", 4) == 8


# ----------------------------------------------------------------------------
# keras.applications wrappers


def test_keras_wrapper_builds_with_stage_names_and_zoo_head():
    model = zoo.build("keras_resnet50", input_shape=(32, 32, 3), num_classes=3)
    assert model.output_shape == (None, 3)
    assert model.get_layer("stage1_conv2_block1_1_conv").strides == (1, 1)  # the application's layers
    assert model.get_layer("head_predictions").units == 3
    features = zoo.build("keras_resnet50", input_shape=(32, 32, 3), include_top=False, pooling="avg")
    assert features.output_shape == (None, 2048)
    assert zoo.build("keras_resnet50", input_shape=(64, 64, 3), include_top=False).output_shape == (
        None, 2, 2, 2048)


@pytest.mark.parametrize("name,application", [("keras_mobilenetv2", "MobileNetV2"), ("keras_vgg16", "VGG16")])
def test_keras_wrapper_with_1000_classes_keeps_the_imagenet_classifier(name, application):
    # weights=None, include_top=True, num_classes=1000: the very layout of Keras' ImageNet model,
    # so its weights load one to one and give the same outputs; the classifier is the `head` stage.
    model = zoo.build(name, input_shape=(32, 32, 3))
    reference = getattr(keras.applications, application)(weights=None, input_shape=(32, 32, 3))
    assert [w.shape for w in model.weights] == [w.shape for w in reference.weights]
    model.set_weights(reference.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(reference(x)), atol=1e-6)
    assert model.layers[-1].name == "head_predictions" and model.output_shape == (None, 1000)
    new = zoo.replace_head(model, 5)  # the Keras classifier is replaced as a zoo head is
    assert new.output_shape == (None, 5) and not any(la.name.startswith("head_fc") for la in new.layers)
    with pytest.raises(ValueError, match=r"input_shape=\(224, 224, 3\)"):
        zoo.build(name, input_shape=(32, 32, 3), weights="imagenet")  # refused before any download


def test_keras_wrapper_names_are_deterministic():
    # EfficientNet has auto-named layers (rescaling, normalization) whose Keras
    # names depend on what the session built before.
    first = [layer.name for layer in zoo.build("keras_efficientnetb0", input_shape=(32, 32, 3)).layers]
    second = [layer.name for layer in zoo.build("keras_efficientnetb0", input_shape=(32, 32, 3)).layers]
    assert first == second
    assert first[:4] == ["input", "stem_rescaling", "stem_normalization", "stem_conv_pad"]


def test_keras_wrapper_cards():
    expected = {
        "keras_vgg16": keras.applications.vgg16, "keras_vgg19": keras.applications.vgg19,
        "keras_resnet50": keras.applications.resnet, "keras_resnet152": keras.applications.resnet,
        "keras_resnet50v2": keras.applications.resnet_v2, "keras_densenet121": keras.applications.densenet,
        "keras_mobilenetv2": keras.applications.mobilenet_v2,
        "keras_efficientnetb0": keras.applications.efficientnet,
    }
    for name, module in expected.items():
        card = zoo.get_card(name)
        assert card.preprocess_input is module.preprocess_input, name
        assert {"keras_applications", "pretrained", "stages"} <= card.tags
        assert card.min_input_size == 32
    assert set(expected) <= set(zoo.list_models("keras_*", tags="keras_applications"))


def test_imagenet_weights_offline_give_a_clear_error_quickly(monkeypatch):
    from keras.src.utils import file_utils

    def offline(fname, origin=None, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    start = time.perf_counter()
    with pytest.raises(applications.WeightsDownloadError) as info:
        zoo.build("keras_resnet50", weights="imagenet", input_shape=(32, 32, 3), include_top=False)
    assert time.perf_counter() - start < 20
    message = str(info.value)
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert applications.keras_cache_dir() in message and "~/.keras/models" in message
    assert applications.keras_cache_dir().endswith("models")
    assert info.value.__suppress_context__ and isinstance(info.value, OSError)


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")
def test_imagenet_weights_reach_the_staged_backbone(monkeypatch, tmp_path):
    # Stand in for the download: serve a weights file of a reference backbone.
    from keras.src.utils import file_utils

    reference = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    for w in reference.weights:  # not the initial values, so that copying shows
        w.assign(np.random.default_rng(0).random(w.shape).astype("float32"))
    path = str(tmp_path / "mobilenet_v2_notop.weights.h5")
    reference.save_weights(path)
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: path)
    model = zoo.build("keras_mobilenetv2", weights="imagenet", input_shape=(32, 32, 3), num_classes=3)
    body = [layer for layer in reference.layers if not isinstance(layer, layers.InputLayer)]
    names = applications._stage_names(body, applications.STAGE_RULES["mobilenetv2"])
    assert sum(len(layer.weights) for layer in body) == len(reference.weights)
    for layer in body:
        for a, b in zip(layer.weights, model.get_layer(names[layer.name]).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_imagenet_weights_with_the_keras_classifier_predict_as_keras_does(monkeypatch, tmp_path):
    # weights="imagenet", include_top=True, num_classes=1000: Keras' whole ImageNet model, classifier included.
    from keras.src.utils import file_utils

    reference = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    for i, w in enumerate(reference.weights):
        w.assign(np.random.default_rng(i).normal(0, 0.1, w.shape).astype("float32"))
    path = str(tmp_path / "mobilenet_v2.weights.h5")
    reference.save_weights(path)
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: path)
    model = zoo.build("keras_mobilenetv2", weights="imagenet")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(reference(x)), atol=1e-6)
    assert model.get_layer("head_predictions").units == 1000


def test_keras_wrapper_loads_local_weights(tmp_path):
    model = zoo.build("keras_mobilenetv2", input_shape=(32, 32, 3), num_classes=3)
    path = str(tmp_path / "mobilenet.weights.h5")
    model.save_weights(path)
    loaded = zoo.build("keras_mobilenetv2", input_shape=(32, 32, 3), num_classes=3, weights=path)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_resnext_and_wide_resnet_bottlenecks_are_torchvisions():
    """torchvision's Bottleneck: width = int(planes * width_per_group / 64) * groups, the 3x3 conv grouped."""
    for name, groups, inner in (("resnext101_32x8d", 32, 128), ("wide_resnet50_2", 1, 64),
                                ("resnext50_32x4d", 32, 64)):
        model = zoo.build(name, input_shape=(32, 32, 3), num_classes=10, width=0.5)  # planes 32 at stage 1
        conv2 = model.get_layer("stage1_block1_conv2")
        assert conv2.groups == groups and conv2.filters == inner and conv2.kernel.shape == (3, 3, inner // groups,
                                                                                              inner)
        assert model.get_layer("stage1_block1_conv3").filters == 128  # planes x 4, as ResNet's
    narrow = zoo.build("resnext50_32x4d", input_shape=(32, 32, 3), num_classes=10, width=0.0625)
    assert narrow.get_layer("stage1_block1_conv2").filters == 32  # at least one channel a group


@pytest.mark.parametrize("name, gmacs", [("mobilenet_v2", 0.30), ("mobilenet_v3_large", 0.22),
                                         ("mobilenet_v3_small", 0.06)])
def test_mobilenet_macs_are_torchvisions_published_gflops(name, gmacs):
    """torchvision publishes multiply-adds as GFLOPS, to two decimals."""
    assert round(zoo.profile(zoo.build(name)).macs / 1e9, 2) == gmacs


def test_make_divisible_is_torchvisions():
    from zoo.models.mobilenet import make_divisible

    # torchvision's _make_divisible: nearest multiple of 8, at least 8, never more than 10% below
    assert [make_divisible(v) for v in (3.2, 16 * 0.25, 24 * 0.35, 1280 * 0.75, 67, 92)] == [8, 8, 8, 960, 64, 96]


@pytest.mark.parametrize("name, gflops", [("regnet_x_400mf", 0.414), ("regnet_y_400mf", 0.402),
                                          ("convnext_tiny", 4.456)])
def test_regnet_and_convnext_macs_are_torchvisions_published_gflops(name, gflops):
    """torchvision's ``_ops`` (multiply-adds, as GFLOPS); Dense on a 4-D map counts H * W * in * out."""
    assert zoo.profile(zoo.build(name)).macs / 1e9 == pytest.approx(gflops, rel=0.03)


def test_regnet_block_params_are_torchvisions_quantisation():
    from zoo.models.regnet import REGNET_PARAMS, block_params

    # torchvision's BlockParams.from_init_params: (depth, width, group width) per stage
    assert block_params(*REGNET_PARAMS["regnet_y_400mf"][:5]) == ((1, 48, 8), (3, 104, 8), (6, 208, 8), (6, 440, 8))
    assert block_params(*REGNET_PARAMS["regnet_x_32gf"][:5]) == ((2, 336, 168), (7, 672, 168), (13, 1344, 168),
                                                                 (1, 2520, 168))
    assert block_params(*REGNET_PARAMS["regnet_y_128gf"][:5]) == ((2, 528, 264), (7, 1056, 264), (17, 2904, 264),
                                                                  (1, 7392, 264))
    model = zoo.build("regnet_y_400mf", input_shape=(32, 32, 3), num_classes=10, width=0.25)
    conv = model.get_layer("stage4_block1_b_conv")  # width 440 / 4 = 110 in groups of 8 / 4 = 2 channels
    assert conv.filters == 110 and conv.groups == 55 and conv.strides == (2, 2)
    # a quarter of the block's input (208 at width 1): a narrow model keeps torchvision's count
    assert model.get_layer("stage4_block1_se_fc1").filters == 52
    assert zoo.build("regnet_y_400mf", input_shape=(32, 32, 3), width=2.0).get_layer(
        "stage4_block1_se_fc1").filters == 104


def test_convnext_stochastic_depth_grows_linearly_and_drops_whole_branches():
    model = zoo.build("convnext_tiny", input_shape=(32, 32, 3), num_classes=10, width=0.0625)
    rates = [layer.rate for layer in model.layers if layer.name.endswith("_stochastic_depth")]
    assert len(rates) == 18 and rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)
    assert rates == pytest.approx([0.1 * i / 17 for i in range(18)])  # torchvision's sd_prob
    drop = model.get_layer("stage4_block3_stochastic_depth")
    x = np.ones((64, 2, 2, 3), "float32")
    assert np.array_equal(np.asarray(drop(x, training=False)), x)
    y = np.asarray(drop(x, training=True))
    kept = y.reshape(64, -1)
    assert set(np.unique(kept)) <= {0.0, np.float32(1 / 0.9)}
    assert (kept == kept[:, :1]).all()  # one draw per sample: a whole residual branch dropped or kept
    scale = model.get_layer("stage1_block1_layer_scale")
    assert np.allclose(scale.get_weights()[0], 1e-6) and scale.get_weights()[0].shape == (1, 1, 6, 1)


@pytest.mark.parametrize("name, gflops", [("efficientnet_b0", 0.386), ("efficientnet_v2_s", 8.366)])
def test_efficientnet_macs_are_torchvisions_published_gflops(name, gflops):
    """torchvision's ``_ops`` at its eval crop (224 for B0, 384 for V2-S), the cards' default input."""
    assert zoo.profile(zoo.build(name)).macs / 1e9 == pytest.approx(gflops, rel=0.03)


def test_efficientnet_blocks_are_torchvisions():
    model = zoo.build("efficientnet_b0", input_shape=(32, 32, 3), num_classes=10)
    names = {layer.name for layer in model.layers}
    # features.1 does not widen: no expansion; squeeze-excitation to a quarter of the block's input (32 / 4)
    assert "stage1_block1_expand_conv" not in names and model.get_layer("stage1_block1_se_reduce").filters == 8
    assert model.get_layer("stage6_block2_se_reduce").filters == 192 // 4 and "stage6_block2_se_silu" in names
    assert model.get_layer("stage3_block1_dw_conv").kernel_size == (5, 5)
    assert model.get_layer("stage7_final8_conv").filters == 4 * 320
    rates = {layer.name: layer.rate for layer in model.layers if layer.name.endswith("_stochastic_depth")}
    assert rates["stage2_block2_stochastic_depth"] == pytest.approx(0.2 * 2 / 16)  # block 2 of 16 (from 0)
    assert rates["stage6_block4_stochastic_depth"] == pytest.approx(0.2 * 14 / 16)
    assert "stage2_block1_stochastic_depth" not in rates  # stride 2: no residual
    assert model.get_layer("stage2_block2_stochastic_depth").noise_shape == (None, 1, 1, 1)  # whole samples
    v2 = zoo.build("efficientnet_v2_s", input_shape=(32, 32, 3), num_classes=10)
    names = {layer.name for layer in v2.layers}
    assert "stage1_block1_fused_conv" in names and "stage1_block1_stochastic_depth" in names  # rate 0: 24 -> 24
    assert v2.get_layer("stage2_block1_expand_conv").kernel_size == (3, 3) and "stage2_block1_dw_conv" not in names
    assert v2.get_layer("stage1_block1_fused_bn").epsilon == 1e-3 and model.get_layer("stem_bn").epsilon == 1e-5
    assert zoo.build("efficientnet_b5", input_shape=(32, 32, 3), width=0.25).get_layer("stem_bn").momentum == 0.99

