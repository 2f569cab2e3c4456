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
def test_output_shape_for_each_mode_without_the_top(name):
    """The model with its top is checked (and run) in the round-trip test below; the other modes symbolically."""
    card = zoo.get_card(name)
    for include_top, pooling in _modes(card)[1:]:
        model = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES, include_top=include_top, pooling=pooling))
        assert isinstance(model, keras.Model)
        out = model.output.shape
        if pooling is None and card.has("image"):
            assert len(out) == 4, (include_top, pooling, out)
        else:
            assert len(out) == 2 and out[-1] > 0, (include_top, pooling, out)
        keras.backend.clear_session(free_memory=False)


@pytest.mark.parametrize("name", model_params())
def test_a_tiny_build_predicts_round_trips_and_trains(name, tmp_path):
    """Two builds a model, since building is most of these checks' time: the output of the model with its top;
    the `.keras` round trip; the `weights=` argument; names deterministic, unique and staged; then one training
    step of the rebuilt model updates every trainable weight."""
    model = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES))
    assert isinstance(model, keras.Model) and tuple(model.output.shape) == (None, NUM_CLASSES)
    x, _ = random_batch(model, n=3, seed=1)
    expected = np.asarray(model(x, training=False))  # eager: tracing a predict function costs seconds a model
    assert expected.shape == (3, NUM_CLASSES) and np.isfinite(expected).all()

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), expected, rtol=1e-6, atol=1e-6)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    del loaded
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

    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    again = zoo.build(name, **tiny_kwargs(name, num_classes=NUM_CLASSES, weights=str(weights)))
    for a, b in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(np.array(a), np.array(b))

    names = [layer.name for layer in model.layers]
    assert names == [layer.name for layer in again.layers]
    assert len(set(names)) == len(names)
    if zoo.get_card(name).has("stages"):
        prefixes = {n.split("_")[0] for n in names if not isinstance(model.get_layer(n), keras.layers.InputLayer)}
        assert "head" in prefixes and "stage1" in prefixes, prefixes
        assert all(p in ("stem", "head") or (p.startswith("stage") and p[5:].isdigit()) for p in prefixes), prefixes

    # eagerly: the same train step without tracing it (googlenet's trace took 15 s, its eager step 1.4 s);
    # graph-mode training is covered by the training and search tests
    again.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", run_eagerly=True)
    x, y = random_batch(again, n=4)
    before = [np.array(w) for w in again.trainable_weights]
    assert before, "model has no trainable weights"
    assert math.isfinite(float(again.train_on_batch(x, y)))
    unchanged = [w.path for w, b in zip(again.trainable_weights, before) if np.array_equal(np.array(w), b)]
    assert not unchanged, f"weights not updated: {unchanged}"


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
