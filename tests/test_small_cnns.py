"""The torchvision-exact small CNN families (GoogLeNet's conversion; SqueezeNet, ShuffleNet V2, MNASNet and
Inception v3 as they are added): trainable parameters counted dry against torchvision's, multiply-adds against
its published GFLOPS, and what each family's torch conversion does beyond the shared fixtures of test_weights.py."""

import json
import os

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
}
# torchvision's weights.meta["_ops"] (multiply-adds, published as GFLOPS)
TORCHVISION_GFLOPS = {
    "googlenet": 1.498,
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


def test_googlenet_aux_heads_are_dropped_by_name():
    """torchvision's pretrained GoogLeNet file carries aux1/aux2 (aux_logits=False only at evaluation): the zoo
    model has none, so they are dropped and reported as such, and nothing else is."""
    state = _zero_state("googlenet")
    assert any(k.startswith("aux1.") for k in state) and any(k.startswith("aux2.") for k in state)
    report = load_state_dict(zoo.build("googlenet"), state, assign=False)
    aux = {k for k, why in report.dropped if "auxiliary" in why}
    assert aux == {k for k in state if k.startswith(("aux1.", "aux2."))}
    # any other unknown module is still refused
    with pytest.raises(ValueError, match="aux3"):
        load_state_dict(zoo.build("googlenet"), {**state, "aux3.fc.weight": np.zeros((2, 2), np.float32)},
                        assign=False)


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


def test_googlenet_turns_transform_input_on_for_torchvision_weights_only(tmp_path):
    import shutil

    from test_weights import FIXTURES

    checkpoint = tmp_path / "googlenet.pth"
    shutil.copy(f"{FIXTURES}/googlenet.pth", checkpoint)
    names = lambda m: {la.name for la in m.layers}  # noqa: E731
    kwargs = dict(input_shape=(64, 64, 3), num_classes=10, width=0.125)
    assert "stem_transform_input" in names(zoo.build("googlenet", weights=str(checkpoint), **kwargs))
    assert "stem_transform_input" not in names(zoo.build("googlenet", **kwargs))
    assert "stem_transform_input" not in names(zoo.build("googlenet", weights=str(checkpoint),
                                                         transform_input=False, **kwargs))
