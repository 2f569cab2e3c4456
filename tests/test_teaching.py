"""The knobs the courses turn: activations (leaky slope, PReLU, Maxout), initializers on every builder,
the convnet's strides, padding, dilation and weight penalties, and the XOR data set."""

import inspect

import keras
import numpy as np
import pytest

import zoo
from zoo import training
from zoo.layers import Maxout


@pytest.mark.heavy
def test_xor_needs_a_hidden_layer():
    bundle = zoo.data.load("xor", num_samples=400)
    assert bundle.task == "binary" and bundle.input_shape == (2,)
    scores = {}
    for hidden in ((), (8,)):
        keras.utils.set_random_seed(0)
        model = zoo.build("mlp", input_shape=(2,), num_classes=2, hidden_units=hidden, activation="tanh")
        history = training.fit(model, bundle.train, bundle.validation, epochs=60, learning_rate=3e-2, verbose=0)
        scores[hidden] = history.history["val_accuracy"][-1]
    assert scores[()] < 0.7 and scores[(8,)] > 0.85, scores  # measured 0.60 and 0.90


def test_leaky_slope_prelu_and_maxout():
    model = zoo.build("mlp", input_shape=(4,), num_classes=2, hidden_units=(8,), activation="leaky_relu:0.1")
    layer = model.get_layer("stage1_leaky_relu")
    assert layer.negative_slope == pytest.approx(0.1)
    np.testing.assert_allclose(np.asarray(layer(np.array([[-2.0, 3.0]], "float32"))), [[-0.2, 3.0]], rtol=1e-6)
    plain = zoo.build("mlp", input_shape=(4,), num_classes=2, hidden_units=(8,), activation="leaky_relu")
    assert isinstance(plain.get_layer("stage1_leaky_relu"), keras.layers.Activation)  # Keras' default, 0.2
    prelu = zoo.build("convnet", input_shape=(16, 16, 3), filters=(4,), dense_units=(), activation="prelu")
    assert prelu.get_layer("stage1_conv1_prelu").alpha.shape == (1, 1, 4)  # one slope per channel
    maxout = zoo.build("mlp", input_shape=(4,), num_classes=2, hidden_units=(8,), activation="maxout:3")
    assert maxout.get_layer("stage1_dense").units == 24 and maxout.get_layer("stage1_maxout").output.shape[-1] == 8
    x = np.arange(12, dtype="float32").reshape(2, 6) * np.array([1, -1, 1, -1, 1, -1], "float32")
    np.testing.assert_allclose(np.asarray(Maxout(3)(x)), np.max(x.reshape(2, 2, 3), axis=-1))
    assert Maxout.from_config(Maxout(4).get_config()).pieces == 4
    for bad in ("leaky_relu:2", "maxout:1", "relu:3", "maxout:x"):
        with pytest.raises(ValueError, match=r"`activation` takes a parameter only as"):
            zoo.build("mlp", input_shape=(4,), activation=bad)


@pytest.mark.parametrize("name", ["resnet20", "vgg11_bn", "densenet_bc_40", "convnet", "lenet5", "googlenet"])
def test_every_builder_takes_a_kernel_initializer(name):
    assert "kernel_initializer" in inspect.signature(zoo.get_card(name).builder).parameters
    kwargs = dict(zoo.get_card(name).test_kwargs)
    keras.utils.set_random_seed(0)
    normal = zoo.build(name, kernel_initializer="normal", **kwargs)  # N(0, 1): the courses' naive start
    default = zoo.build(name, **kwargs)
    kernel = [w for w in normal.trainable_weights if w.path.endswith("kernel")][0]
    assert np.std(np.asarray(kernel)) == pytest.approx(1.0, abs=0.25)
    other = [w for w in default.trainable_weights if w.path.endswith("kernel")][0]
    assert np.std(np.asarray(other)) < 0.8
    with pytest.raises(ValueError, match=r"`kernel_initializer` must be one of"):
        zoo.build(name, kernel_initializer="nope", **kwargs)


def test_convnet_strides_padding_dilation_and_penalties():
    model = zoo.build("convnet", input_shape=(32, 32, 3), filters=(8, 16), strides=1, padding="valid",
                      dilation_rate=2, l1=1e-4, l2=1e-3, dense_units=())
    conv = model.get_layer("stage1_conv1_conv")
    assert conv.dilation_rate == (2, 2) and conv.padding == "valid"
    assert conv.kernel_regularizer.l1 == pytest.approx(1e-4) and conv.kernel_regularizer.l2 == pytest.approx(1e-3)
    assert model.get_layer("stage1_conv1_conv").output.shape[1] == 28  # 32 - (3 - 1) * 2
    strided = zoo.build("convnet", input_shape=(32, 32, 3), filters=(8,), strides=2, dense_units=())
    assert strided.get_layer("stage1_conv2_conv").output.shape[1] == 8  # two stride-2 convs
    with pytest.raises(ValueError, match=r"`input_shape` \(8, 8, 3\) is too small"):
        zoo.build("convnet", input_shape=(8, 8, 3), padding="valid", kernel_size=5, filters=(8, 16))
    with pytest.raises(ValueError, match=r"`strides` > 1 or `dilation_rate` > 1, not both"):
        zoo.build("convnet", strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match=r"`padding` must be one of"):
        zoo.build("convnet", padding="full")


def test_standardize_uses_the_training_statistics_only():
    raw = zoo.data.load("blobs")
    bundle = zoo.data.load("blobs", standardize=True)
    x, _ = bundle.arrays("train")
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-4)
    raw_x, _ = raw.arrays("train")
    raw_val, _ = raw.arrays("validation")
    expected = (raw_val - raw_x.mean(axis=0)) / raw_x.std(axis=0)
    np.testing.assert_allclose(bundle.arrays("validation")[0], expected, atol=1e-5)  # train statistics
    np.testing.assert_allclose(np.asarray(bundle.normalization(raw_val)), expected, atol=1e-5)
    batch = next(iter(bundle.validation))[0]
    np.testing.assert_allclose(np.asarray(batch), expected[: len(batch)], atol=1e-5)  # the pipelines too
    assert bundle.fingerprint != raw.fingerprint and bundle.options["standardize"] is True
    with pytest.raises(TypeError, match=r"`standardize` must be True or False. Received: standardize='yes'"):
        zoo.data.load("blobs", standardize="yes")
