"""Issue 29 (item 7): the newer public functions raise only ValueError/TypeError naming the argument, before work."""

import numpy as np
import pytest

import tuning
import zoo
from zoo import training
from zoo.weights import load_state_dict


@pytest.fixture(scope="module")
def mlp():
    return zoo.build("mlp", input_shape=(2,), hidden_units=(8,), num_classes=3)


def test_load_state_dict_names_a_model_name_and_non_string_keys():
    with pytest.raises(TypeError, match=r"`model` must be a keras.Model .*'resnet18'"):
        load_state_dict("resnet18", {})
    model = zoo.build("resnet18", input_shape=(32, 32, 3), num_classes=10, width=0.125)
    with pytest.raises(TypeError, match=r"`state` must map tensor names \(str\).*\[3\]"):
        load_state_dict(model, {3: np.zeros(3)})


@pytest.mark.parametrize("train, error, match", [
    (None, TypeError, r"`train` must be \(x, y\) arrays or a batched dataset. Received: train=None"),
    ((np.zeros((0, 2), "float32"), np.zeros(0)), ValueError, r"at least one example.*0 x, 0 y"),
    ((np.zeros((4, 2), "float32"), np.zeros(3)), ValueError, r"as many x as y.*4 x, 3 y"),
    ((np.zeros((4, 2), "float32"),), ValueError, r"a tuple of 1 items"),
    ((np.full((4, 2), np.nan, "float32"), np.zeros(4)), ValueError, r"`train\[0\] \(x\)` holds 8 of 8 values"),
])
def test_lr_find_refuses_bad_data_before_sweeping(mlp, train, error, match):
    """It crashed on None (AttributeError), and on NaN data or no data returned as if it had swept."""
    weights = [w.copy() for w in mlp.get_weights()]
    with pytest.raises(error, match=match):
        training.lr_find(mlp, train)
    assert all(np.array_equal(a, b) for a, b in zip(weights, mlp.get_weights()))


def test_lr_find_refuses_an_empty_dataset_and_a_model_name(mlp):
    import tensorflow as tf

    empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 2), "float32"), np.zeros(0))).batch(4)
    with pytest.raises(ValueError, match="`train` is an empty dataset"):
        training.lr_find(mlp, empty)
    with pytest.raises(TypeError, match=r"`model` must be a keras.Model. Received: model=str"):
        training.lr_find("mlp", (np.zeros((4, 2), "float32"), np.zeros(4)))


def test_replace_head_has_build_bounds_on_classes_and_memory(mlp):
    """`replace_head(m, 10**12)` raised TensorFlow's ResourceExhaustedError; zoo.build caps classes at 1,000,000."""
    with pytest.raises(ValueError, match=r"`num_classes` must be <= 1,000,000. Received: num_classes=1000000000000"):
        zoo.replace_head(mlp, 10**12)
    wide = zoo.build("mlp", input_shape=(2,), hidden_units=(40_000,), num_classes=3)
    with pytest.raises(ValueError, match=r"with a head of num_classes=1000000.*more than this machine's"):
        zoo.replace_head(wide, 1_000_000)  # 4e10 weights: refused by counting, nothing allocated
    assert zoo.replace_head(mlp, 5).output.shape == (None, 5)


def test_hypervolume_that_overflows_is_refused_not_inf():
    records = [{"status": "completed", "a": 1e308, "b": 1e308}]
    fields = [("a", "max"), ("b", "max")]
    with pytest.raises(ValueError, match="overflows a 64-bit float"):
        tuning.hypervolume(records, fields=fields, reference=(-1e308, -1e308))
    with pytest.raises(ValueError, match="overflows a 64-bit float"):
        tuning.hypervolume_history(records, fields, (-1e308, -1e308))
    large = [{"status": "completed", "a": 1e150, "b": 2e150}]
    assert tuning.hypervolume(large, fields=fields, reference=(0.0, 0.0)) == pytest.approx(2e300)


@pytest.mark.parametrize("function", ["grad_cam", "saliency", "feature_maps", "activation_stats", "filters",
                                      "gradient_stats"])
def test_explain_names_a_model_name_and_a_model_without_inputs(function):
    """`explain.grad_cam("resnet20", x)` and a never-called Sequential raised AttributeError."""
    import keras

    from zoo import explain

    x = np.zeros((1, 16, 16, 3), "float32")
    call = {"filters": lambda m: explain.filters(m), "gradient_stats": lambda m: explain.gradient_stats(
        m, (x, np.zeros(1)))}.get(function, lambda m: getattr(explain, function)(m, x))
    with pytest.raises(TypeError, match=r"`model` must be a keras.Model .*'resnet20'"):
        call("resnet20")
    sequential = keras.Sequential([keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"`model` 'sequential.*' has no inputs yet"):
        call(sequential)
