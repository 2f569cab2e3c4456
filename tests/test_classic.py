"""Family-specific checks of the foundation builders: MLP, LeNet-5, AlexNet, ConvNet."""

import keras
import numpy as np
import pytest

import zoo


def _trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_lenet5_classic_has_61706_parameters_and_the_1998_layout():
    model = zoo.build("lenet5", num_classes=10)
    assert model.count_params() == 61706
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(6, (5, 5)), (16, (5, 5)), (120, (5, 5))]
    assert {type(layer).__name__ for layer in model.layers} >= {"AveragePooling2D"}
    assert all(layer.name.endswith("tanh") for layer in model.layers if isinstance(layer, keras.layers.Activation))
    assert model.get_layer("head_fc1").units == 84


def test_lenet5_modern_uses_relu_and_max_pooling():
    model = zoo.build("lenet5_modern")
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "MaxPooling2D" in kinds and "AveragePooling2D" not in kinds
    assert model.count_params() == 61706
    assert any(layer.name == "stage1_relu" for layer in model.layers)


def test_lenet5_pads_28x28_inputs_like_the_paper():
    model = zoo.build("lenet5", input_shape=(28, 28, 1))
    assert model.get_layer("stem_pad").output.shape[1:3] == (32, 32)
    assert model.count_params() == 61706
    bigger = zoo.build("lenet5", input_shape=(36, 36, 1))
    assert bigger.count_params() > 61706  # F6 sees a 3x3x120 map


def test_alexnet_matches_torchvision_parameter_count_and_layout():
    model = zoo.build("alexnet", input_shape=(224, 224, 3), num_classes=1000)
    assert _trainable(model) == 61_100_840
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    # torchvision pads 2, 2, 1, 1, 1: explicit and symmetric for the strided conv1, "same" (equal) for stride 1
    assert [(c.filters, c.kernel_size[0], c.strides[0], c.padding) for c in convs] == [
        (64, 11, 4, "valid"), (192, 5, 1, "same"), (384, 3, 1, "same"), (256, 3, 1, "same"), (256, 3, 1, "same")
    ]
    assert model.get_layer("stage1_pad").padding == ((2, 2), (2, 2))
    assert model.get_layer("head_adaptive_avgpool").output.shape[1:] == (6, 6, 256)
    order = [layer.name for layer in model.layers if layer.name.startswith("head_")]
    assert order == ["head_adaptive_avgpool", "head_flatten", "head_dropout1", "head_fc1", "head_fc1_relu",
                     "head_dropout2", "head_fc2", "head_fc2_relu", "head_predictions"]


def test_adaptive_pool_matches_pytorch_bins_including_upsampling():
    from zoo.layers import AdaptiveAveragePooling2D

    x = np.arange(2 * 5 * 3 * 1, dtype="float32").reshape(2, 5, 3, 1)
    y = np.asarray(AdaptiveAveragePooling2D((2, 6))(x))
    # PyTorch bins: rows [0,3) and [2,5); columns i -> [floor(i/2), ceil((i+1)/2)) over 3 columns
    rows = [(0, 3), (2, 5)]
    cols = [((i * 3) // 6, -(-((i + 1) * 3) // 6)) for i in range(6)]
    expected = np.array([[[x[b, r0:r1, c0:c1, 0].mean() for c0, c1 in cols] for r0, r1 in rows] for b in range(2)])
    np.testing.assert_allclose(y[..., 0], expected, rtol=1e-6)


def test_alexnet_cifar_variant_takes_32x32():
    model = zoo.build("alexnet_cifar", input_shape=(32, 32, 3), num_classes=10)
    assert model.get_layer("stage5_maxpool").output.shape[1:3] == (3, 3)
    assert model.output.shape[-1] == 10


def test_convnet_follows_the_pattern():
    model = zoo.build("convnet", filters=(8, 16, 32), convs_per_stage=2, dense_units=(32, 16), pool="avg",
                      batch_norm=True, dropout=0.25, input_shape=(32, 32, 3), num_classes=5)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [8, 8, 16, 16, 32, 32]
    assert all(not c.use_bias for c in convs)  # followed by BN
    assert len([la for la in model.layers if isinstance(la, keras.layers.AveragePooling2D)]) == 3
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [32, 16, 5]
    assert model.get_layer("head_flatten").output.shape[-1] == 4 * 4 * 32
    gap = zoo.build("convnet", flatten=False, pool=None, filters=(8,), input_shape=(9, 9, 1))
    assert gap.get_layer("head_avgpool") is not None
    assert zoo.build("convnet", width=0.5, filters=(8, 16)).get_layer("stage2_conv1_conv").filters == 8
    with pytest.raises(ValueError, match="minimum input size 8x8"):
        zoo.build("convnet", filters=(8, 8, 8), input_shape=(7, 7, 3))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid"])
def test_mlp_activations(activation):
    model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), activation=activation)
    assert model.get_layer(f"stage1_{activation}").activation.__name__ in (activation, "silu")
    assert np.isfinite(np.asarray(model.predict_on_batch(np.ones((2, 4), "float32")))).all()


@pytest.mark.parametrize(
    "initializer, expected",
    [("lecun", "LecunNormal"), ("lecun_uniform", "LecunUniform"), ("glorot_normal", "GlorotNormal"),
     ("glorot_uniform", "GlorotUniform"), ("he_uniform", "HeUniform"), ("he", "HeNormal")],
)
def test_mlp_initializers(initializer, expected):
    model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), kernel_initializer=initializer)
    assert type(model.get_layer("stage1_dense").kernel_initializer).__name__ == expected


def test_mlp_task_heads():
    reg = zoo.build("mlp", input_shape=(1,), hidden_units=(8,), task="regression", num_outputs=2)
    assert reg.output.shape[-1] == 2 and reg.get_layer("head_predictions").activation.__name__ == "linear"
    binary = zoo.build("mlp", input_shape=(2,), hidden_units=(8,), task="binary")
    assert binary.output.shape[-1] == 1 and binary.get_layer("head_predictions").activation.__name__ == "sigmoid"
    multi = zoo.build("mlp", input_shape=(2,), hidden_units=(8,), task="multiclass", num_classes=4)
    assert multi.output.shape[-1] == 4 and multi.get_layer("head_predictions").activation.__name__ == "softmax"
    logits = zoo.build("mlp", input_shape=(2,), task="logits", num_classes=4)
    assert logits.get_layer("head_predictions").activation.__name__ == "linear"
    images = zoo.build("mlp", input_shape=(8, 8, 1), hidden_units=(16,))
    assert images.get_layer("stem_flatten").output.shape[-1] == 64
    with pytest.raises(ValueError, match="num_classes=3"):
        zoo.build("mlp", task="binary", num_classes=3)
    with pytest.raises(ValueError, match="task='ranking'"):
        zoo.build("mlp", task="ranking")


def test_mlp_regularisation_dropout_and_batch_norm():
    model = zoo.build("mlp", input_shape=(4,), hidden_units=(8, 8), l1=1e-3, l2=1e-2, dropout=0.5, batch_norm=True)
    assert len(model.losses) == 3  # elastic-net penalty on two hidden layers and the output
    l1l2 = model.get_layer("stage1_dense").kernel_regularizer
    assert (float(l1l2.l1), float(l1l2.l2)) == pytest.approx((1e-3, 1e-2))
    assert model.get_layer("stage2_dropout").rate == 0.5
    assert isinstance(model.get_layer("stage1_bn"), keras.layers.BatchNormalization)
    assert not model.get_layer("stage1_dense").use_bias
    plain = zoo.build("mlp", input_shape=(4,), hidden_units=(8, 8))
    assert plain.losses == [] and plain.get_layer("stage1_dense").use_bias
