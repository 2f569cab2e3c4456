"""Layer-wise learning-rate decay: per-variable rates checked by hand, through compile, fit, fine_tune and saving."""

import keras
import numpy as np
import pytest

import zoo
from layer_decay_checks import step_ratios, tiny_staged_model
from zoo.training import TrainingConfig, fit
from zoo.training.layer_decay import LayerDecayAdamW, LayerDecaySGD, layer_scales, with_layer_decay


def test_scales_are_decay_to_the_depth_from_the_head():
    scales = layer_scales(tiny_staged_model(), 0.5)
    assert scales == {"stem_fc/kernel": 0.125, "stem_fc/bias": 0.125,
                      "stage1_block1_fc/kernel": 0.25, "stage1_block1_fc/bias": 0.25,
                      "stage1_block2_fc/kernel": 0.5, "stage1_block2_fc/bias": 0.5,
                      "head_predictions/kernel": 1.0, "head_predictions/bias": 1.0}


def test_resnet_units_are_its_blocks_and_stage_layers():
    model = zoo.build("resnet18", input_shape=(32, 32, 3), num_classes=3, width=0.125)
    scales = layer_scales(model, 0.75)
    # units from the head: 8 basic blocks, then the stem: depth 9
    assert scales["stem_conv/kernel"] == pytest.approx(0.75 ** 9)
    assert scales["stage4_block2_conv2/kernel"] == pytest.approx(0.75)
    assert scales["stage1_block1_conv1/kernel"] == pytest.approx(0.75 ** 8)
    assert scales["head_predictions/kernel"] == 1.0


@pytest.mark.parametrize("optimizer, weight_decay", [("sgd", 0.0), ("momentum", 0.0), ("adamw", 0.05)])
def test_each_variables_update_is_scaled_by_its_rate(optimizer, weight_decay):
    for path, (low, high, expected) in step_ratios(optimizer, decay=0.5, weight_decay=weight_decay).items():
        assert low == pytest.approx(expected, rel=2e-3) and high == pytest.approx(expected, rel=2e-3), path


def test_adamw_by_hand_one_step_with_weight_decay():
    """AdamW's first step: v - lr*s*wd*v - lr*s * g / (|g| + eps / sqrt(1 - beta_2)) (Keras corrects the rate
    for the moments' bias, so its epsilon meets the uncorrected sqrt(v))."""
    model = tiny_staged_model()
    opt = with_layer_decay(keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.2, epsilon=1e-7),
                           layer_scales(model, 0.5))
    assert isinstance(opt, LayerDecayAdamW)
    variables = model.trainable_variables
    before = [np.array(v) for v in variables]
    grads = [np.full(v.shape, 0.3, "float32") for v in variables]
    opt.apply(grads, variables)
    scales = layer_scales(model, 0.5)
    for v, b, g in zip(variables, before, grads):
        s = scales[v.path]
        expected = b - 0.1 * s * 0.2 * b - 0.1 * s * g / (np.abs(g) + 1e-7 / np.sqrt(1 - 0.999))
        np.testing.assert_allclose(np.array(v), expected, rtol=1e-5, atol=2e-6, err_msg=v.path)  # float32; steps are >= 0.0125


def test_sgd_by_hand_and_unknown_variables_keep_the_rate():
    model = tiny_staged_model()
    opt = with_layer_decay(keras.optimizers.SGD(learning_rate=1.0), {"stem_fc/kernel": 0.25})
    assert isinstance(opt, LayerDecaySGD)
    before = {v.path: np.array(v) for v in model.trainable_variables}
    opt.apply([np.ones(v.shape, "float32") for v in model.trainable_variables], model.trainable_variables)
    for v in model.trainable_variables:
        step = before[v.path] - np.array(v)
        np.testing.assert_allclose(step, 0.25 if v.path == "stem_fc/kernel" else 1.0, rtol=1e-6)


def test_fit_with_the_config_setting_and_the_optimizer_saves_and_loads(tmp_path):
    model = zoo.build("resnet20", input_shape=(16, 16, 3), num_classes=3, width=0.25)
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 16, 16, 3), dtype="float32"), rng.integers(0, 3, 8)
    fit(model, (x, y), config=TrainingConfig(epochs=1, batch_size=4, optimizer="sgd", layer_decay=0.8), verbose=0)
    assert type(model.optimizer).__name__ == "LayerDecaySGD"
    assert model.optimizer.lr_scales["head_predictions/kernel"] == 1.0
    assert model.optimizer.lr_scales["stem_conv/kernel"] == pytest.approx(0.8 ** 10)  # 9 blocks above it
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = zoo.load_model(path)
    assert type(loaded.optimizer).__name__ == "LayerDecaySGD"
    assert loaded.optimizer.lr_scales == model.optimizer.lr_scales


def test_fine_tune_takes_layer_decay_for_its_second_phase():
    model = zoo.transfer.replace_head(zoo.build("resnet20", input_shape=(16, 16, 3), width=0.25), 3)
    rng = np.random.default_rng(1)
    x, y = rng.random((8, 16, 16, 3), dtype="float32"), rng.integers(0, 3, 8)
    zoo.fine_tune(model, (x, y), head_epochs=1, ft_epochs=1, unfreeze="all", min_steps=None, batch_size=4,
                  verbose=0, layer_decay=0.5)
    scales = model.optimizer.lr_scales
    assert type(model.optimizer).__name__ == "LayerDecayAdam"
    assert scales["stem_conv/kernel"] == pytest.approx(0.5 ** 10) and max(scales.values()) == 1.0


@pytest.mark.parametrize("decay", [0.0, 1.5, -1, float("nan"), "0.5"])
def test_bad_decay_is_refused_naming_it(decay):
    with pytest.raises((ValueError, TypeError), match="layer_decay"):
        TrainingConfig(layer_decay=decay)
    with pytest.raises((ValueError, TypeError), match="layer_decay"):
        layer_scales(tiny_staged_model(), decay)


def test_a_model_without_stage_names_and_other_optimizers_are_refused():
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    with pytest.raises(ValueError, match="named by stage"):
        layer_scales(plain, 0.5)
    with pytest.raises(TypeError, match="Nadam"):
        with_layer_decay(keras.optimizers.Nadam(), {})
