"""The torchvision-exact small CNN families (GoogLeNet's conversion; SqueezeNet, ShuffleNet V2, MNASNet and
Inception v3 as they are added): trainable parameters counted dry against torchvision's, multiply-adds against
its published GFLOPS, and what each family's torch conversion does beyond the shared fixtures of test_weights.py."""

import json
import os

import keras
import numpy as np
import pytest

import zoo
from zoo.weights import load_state_dict

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "weights")
FULL_SIZE_KEYS = json.load(open(os.path.join(FIXTURES, "full_size_keys.json")))

# torchvision's trainable parameters at the default size and 1000 classes (sum of p.numel() for p in
# model.parameters(), auxiliary heads off as at evaluation)
TORCHVISION_PARAMS = {
    "googlenet": 6_624_904,
    "inception_v3": 23_834_568,  # torchvision's 27,161,264 count AuxLogits
    "mnasnet0_5": 2_218_512, "mnasnet0_75": 3_170_208, "mnasnet1_0": 4_383_312, "mnasnet1_3": 6_282_256,
    "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496, "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604, "shufflenet_v2_x1_5": 3_503_624, "shufflenet_v2_x2_0": 7_393_996,
}
# torchvision's weights.meta["_ops"] (multiply-adds, published as GFLOPS)
TORCHVISION_GFLOPS = {
    "googlenet": 1.498,
    "inception_v3": 5.713,
    "mnasnet0_5": 0.104, "mnasnet0_75": 0.215, "mnasnet1_0": 0.314, "mnasnet1_3": 0.526,
    "squeezenet1_0": 0.819, "squeezenet1_1": 0.349, "shufflenet_v2_x0_5": 0.04,
    "shufflenet_v2_x1_0": 0.145, "shufflenet_v2_x1_5": 0.296, "shufflenet_v2_x2_0": 0.583,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_trainable_params_match_torchvision_counted_dry(name):
    from zoo.graph import dry_weight_count

    count = dry_weight_count(lambda: zoo.build(name, num_classes=1000), trainable_only=True)
    assert count == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_GFLOPS))
def test_macs_are_torchvisions_published_gflops(name):
    assert zoo.profile(zoo.build(name)).macs / 1e9 == pytest.approx(TORCHVISION_GFLOPS[name], rel=0.03)


def _zero_state(arch):
    return {k: np.zeros(s, np.float32) for k, s in FULL_SIZE_KEYS[f"torchvision:{arch}"]}


@pytest.mark.parametrize("name, aux", [("googlenet", ("aux1.", "aux2.")), ("inception_v3", ("AuxLogits.",))])
def test_auxiliary_heads_are_dropped_by_name(name, aux):
    """torchvision's pretrained GoogLeNet and Inception v3 files carry their auxiliary classifiers (aux_logits=False
    only at evaluation): the zoo models have none, so they are dropped and reported as such, and nothing else is."""
    state = _zero_state(name)
    assert all(any(k.startswith(prefix) for k in state) for prefix in aux)
    report = load_state_dict(zoo.build(name), state, assign=False)
    assert {k for k, why in report.dropped if "auxiliary" in why} == {k for k in state if k.startswith(aux)}
    # any other unknown module is still refused
    with pytest.raises(ValueError, match="aux3"):
        load_state_dict(zoo.build(name), {**state, "aux3.fc.weight": np.zeros((2, 2), np.float32)}, assign=False)


def test_googlenet_transform_input_is_torchvisions():
    """torchvision's _transform_input: x * std / 0.5 + (mean - 0.5) / 0.5 per channel."""
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    model = zoo.build("googlenet", input_shape=(32, 32, 3), width=0.125, transform_input=True)
    layer = model.get_layer("stem_transform_input")
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), x * std / 0.5 + (mean - 0.5) / 0.5, rtol=1e-6, atol=1e-6)
    plain = zoo.build("googlenet", input_shape=(32, 32, 3), width=0.125)
    assert "stem_transform_input" not in [layer.name for layer in plain.layers]
    assert plain.count_params() == model.count_params()
    with pytest.raises(ValueError, match="transform_input"):
        zoo.build("googlenet", input_shape=(32, 32, 3), width=0.125, transform_input=1)


@pytest.mark.parametrize("name, size, width", [("googlenet", 64, 0.125), ("inception_v3", 83, 0.0625)])
def test_transform_input_is_on_for_torchvision_weights_only(tmp_path, name, size, width):
    import shutil

    from test_weights import FIXTURES

    checkpoint = tmp_path / f"{name}.pth"
    shutil.copy(f"{FIXTURES}/{name}.pth", checkpoint)
    names = lambda m: {la.name for la in m.layers}  # noqa: E731
    kwargs = dict(input_shape=(size, size, 3), num_classes=10, width=width)
    assert "stem_transform_input" in names(zoo.build(name, weights=str(checkpoint), **kwargs))
    assert "stem_transform_input" not in names(zoo.build(name, **kwargs))
    assert "stem_transform_input" not in names(zoo.build(name, weights=str(checkpoint), transform_input=False,
                                                         **kwargs))


def test_inception_v3_average_pools_count_their_padding_as_torch():
    """torch's avg_pool2d(3, stride=1, padding=1) divides by 9 at the border too (count_include_pad=True): a corner
    of a map of ones is 4/9, an edge 6/9; Keras' "same" would give 1 everywhere."""
    from zoo.models.inception import _avg_pool

    inputs = keras.Input((3, 3, 1))
    pooled = keras.Model(inputs, _avg_pool(inputs, name="pool"))(np.ones((1, 3, 3, 1), np.float32))
    np.testing.assert_allclose(np.asarray(pooled)[0, :, :, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9],
                                                               [4 / 9, 6 / 9, 4 / 9]], rtol=1e-6)


def test_inception_v3_sizes_follow_torchvisions_comments():
    """torchvision's forward comments: 299 px -> 147 after the stem, 71 after Conv2d_4a, 35, 17, 8 in the stages;
    75 px (torchvision's min_size) is the smallest input, 1x1 after Mixed_7c."""
    model = zoo.build("inception_v3", width=0.0625, include_top=False)
    sizes = {name: model.get_layer(name).output.shape[1:3] for name in
             ("stem_conv2b_relu", "stage1_conv4a_relu", "stage2_block3_concat", "stage3_block5_concat",
              "stage4_block3_concat")}
    assert sizes == {"stem_conv2b_relu": (147, 147), "stage1_conv4a_relu": (71, 71), "stage2_block3_concat": (35, 35),
                     "stage3_block5_concat": (17, 17), "stage4_block3_concat": (8, 8)}
    small = zoo.build("inception_v3", width=0.0625, include_top=False, input_shape=(75, 75, 3))
    assert small.output.shape[1:3] == (1, 1)
    with pytest.raises(ValueError, match="75x75"):
        zoo.build("inception_v3", width=0.0625, input_shape=(74, 74, 3))


@pytest.mark.parametrize("name", ["googlenet", "squeezenet1_1", "shufflenet_v2_x0_5"])
def test_families_that_need_a_fixed_input_size_say_so(name):
    """Ceil-mode pools pad by the map's size and ShuffleNet's channel shuffle reshapes it: (None, None, 3) is
    refused with a ValueError naming the reason, not a TypeError from inside the build."""
    with pytest.raises(ValueError, match="fixed input size"):
        zoo.build(name, input_shape=(None, None, 3), width=0.125)
