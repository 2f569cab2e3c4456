"""Registry-driven checks run on every registered model (tiny versions from the cards)."""

import inspect
import math

import keras
import numpy as np
import pytest
from conftest import model_params, random_batch, tiny_kwargs

import zoo
import zoo.layers

NUM_CLASSES = 3


def _modes(card):
    if card.has("pooling"):
        return [(True, None), (False, None), (False, "avg"), (False, "max")]
    return [(True, None), (False, None)]


@pytest.mark.parametrize("name", model_params())
def test_output_shape_for_each_mode(name):
    card = zoo.get_card(name)
    for include_top, pooling in _modes(card):
        model = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES, include_top=include_top, pooling=pooling))
        assert isinstance(model, keras.Model)
        out = model.output.shape
        if include_top:
            assert tuple(out) == (None, NUM_CLASSES), (include_top, pooling, out)
        elif pooling is None and card.has("image"):
            assert len(out) == 4, (include_top, pooling, out)
        else:
            assert len(out) == 2 and out[-1] > 0, (include_top, pooling, out)
        if include_top:  # run it once; the other modes are checked symbolically
            x, _ = random_batch(model, n=2)
            y = np.asarray(model(x, training=False))  # eager: tracing a predict function costs seconds a model
            assert y.shape == (2, NUM_CLASSES) and np.isfinite(y).all()
        keras.backend.clear_session(free_memory=False)


@pytest.mark.parametrize("name", model_params())
def test_layer_names_are_deterministic_and_staged(name):
    a = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES))
    b = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES))
    names = [layer.name for layer in a.layers]
    assert names == [layer.name for layer in b.layers]
    assert len(set(names)) == len(names)
    if zoo.get_card(name).has("stages"):
        prefixes = {n.split("_")[0] for n in names if not isinstance(a.get_layer(n), keras.layers.InputLayer)}
        assert "head" in prefixes and "stage1" in prefixes, prefixes
        assert all(p in ("stem", "head") or (p.startswith("stage") and p[5:].isdigit()) for p in prefixes), prefixes


@pytest.mark.parametrize("name", model_params())
def test_one_training_step_updates_every_trainable_weight(name):
    model = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES))
    # eagerly: the same train step without tracing it (googlenet's trace took 15 s, its eager step 1.4 s);
    # graph-mode training is covered by the training and search tests
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", run_eagerly=True)
    x, y = random_batch(model, n=4)
    before = [np.array(w) for w in model.trainable_weights]
    assert before, "model has no trainable weights"
    loss = float(model.train_on_batch(x, y))
    assert math.isfinite(loss)
    unchanged = [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(np.array(w), b)]
    assert not unchanged, f"weights not updated: {unchanged}"


@pytest.mark.parametrize("name", model_params())
def test_keras_save_load_round_trip(name, tmp_path):
    model = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES))
    x, _ = random_batch(model, n=3, seed=1)
    expected = np.asarray(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), expected, rtol=1e-6, atol=1e-6)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    # Built-in layers only, so that plain Keras loads the file without `import zoo`; the exceptions are
    # torchvision's adaptive pooling on a map smaller than its output (Keras' layer refuses that) and Swin's
    # window attention and MaxViT's partition attention (Keras has no attention with a relative position bias).
    custom = [layer for layer in model.layers if type(layer).__module__.startswith("zoo")
              and not isinstance(layer, (zoo.models.swin.WindowAttention, zoo.models.maxvit.PartitionAttention))]
    # ViT's class token and position embedding (Keras has neither) and its heads' attention between torch's packed
    # projections
    vit = zoo.models.vit
    custom = [layer for layer in custom
              if not isinstance(layer, (vit.ClassToken, vit.PositionEmbedding, vit.DotProductAttention))]
    for layer in custom:
        assert isinstance(layer, zoo.layers.AdaptiveAveragePooling2D), type(layer)
        assert layer.input.shape[1] < layer.output_size[0] or layer.input.shape[2] < layer.output_size[1]


@pytest.mark.parametrize("name", model_params())
def test_weights_argument_loads_a_weights_file(name, tmp_path):
    model = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES))
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    again = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES, weights=str(path)))
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(np.array(a), np.array(b))


@pytest.fixture
def no_building(monkeypatch):
    """Make any attempt to start building a model fail loudly: checks must come first."""

    def boom(*args, **kwargs):
        raise AssertionError("the builder started building before checking its arguments")

    monkeypatch.setattr(keras, "Input", boom)
    monkeypatch.setattr(keras.layers, "Input", boom)


def _raises_naming(name, exc, arg, value, **kwargs):
    with pytest.raises(exc) as info:
        zoo.build(name, **kwargs)
    message = str(info.value)
    assert arg in message and str(value) in message, message


@pytest.mark.parametrize("name", model_params())
def test_invalid_arguments_fail_before_building(name, no_building):
    card = zoo.get_card(name)
    kw = tiny_kwargs(name)
    _raises_naming(name, ValueError, "num_classes", "num_classes=0", **{**kw, "num_classes": 0})
    _raises_naming(name, TypeError, "num_classes", "2.5", **{**kw, "num_classes": 2.5})
    _raises_naming(name, ValueError, "pooling", "median", **{**kw, "pooling": "median"})
    _raises_naming(name, (ValueError, TypeError), "weights", "True", **{**kw, "weights": True})
    _raises_naming(name, ValueError, "weights", "missing.h5", **{**kw, "weights": "missing.h5"})
    if card.has("image"):
        s = card.min_input_size - 1
        if s >= 1:
            small = (s, s, kw["input_shape"][-1])
            _raises_naming(name, ValueError, "input_shape", str(small), **{**kw, "input_shape": small})
        _raises_naming(name, ValueError, "input_shape", "(32, 32)", **{**kw, "input_shape": (32, 32)})
    params = inspect.signature(card.builder).parameters
    if "activation" in params:
        _raises_naming(name, ValueError, "activation", "relux", **{**kw, "activation": "relux"})
    if "kernel_initializer" in params:
        _raises_naming(name, ValueError, "kernel_initializer", "zeros_ish", **{**kw, "kernel_initializer": "zeros_ish"})
    if "width" in params:
        _raises_naming(name, ValueError, "width", "-1", **{**kw, "width": -1})
