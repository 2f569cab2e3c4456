import keras
import numpy as np
import pytest

import zoo


def test_lenet5_macs_match_hand_count():
    p = zoo.profile(zoo.build("lenet5", num_classes=10))
    hand = {
        "stage1_conv": 28 * 28 * 6 * (5 * 5 * 1),
        "stage2_conv": 10 * 10 * 16 * (5 * 5 * 6),
        "stage3_conv": 1 * 1 * 120 * (5 * 5 * 16),
        "head_fc1": 120 * 84,
        "head_predictions": 84 * 10,
    }
    by_name = {r.name: r for r in p.layers}
    for name, macs in hand.items():
        assert by_name[name].macs == macs, name
    assert p.macs == sum(hand.values()) == 416_520
    assert p.params == p.trainable_params == 61_706 and p.non_trainable_params == 0
    assert p.weight_bytes == 61_706 * 4
    # FLOPs: 2 per MAC, plus bias adds, tanh and pooling windows
    elementwise = (28 * 28 * 6) * 2 + 14 * 14 * 6 * 4 + (10 * 10 * 16) * 2 + 5 * 5 * 16 * 4 + 120 * 2 + 84 * 2 + 10 * 2
    assert p.flops == 2 * p.macs + elementwise
    assert p.activation_bytes == 4 * sum(int(np.prod(r.output_shape)) for r in p.layers)
    assert p.uncounted == []


def test_alexnet_macs_match_hand_count():
    p = zoo.profile(zoo.build("alexnet", num_classes=1000))
    convs = [  # (output size, out channels, kernel, in channels)
        (55, 64, 11, 3), (27, 192, 5, 64), (13, 384, 3, 192), (13, 256, 3, 384), (13, 256, 3, 256)
    ]
    conv_macs = sum(o * o * c * k * k * i for o, c, k, i in convs)
    fc_macs = 6 * 6 * 256 * 4096 + 4096 * 4096 + 4096 * 1000
    assert p.macs == conv_macs + fc_macs == 714_188_480  # torchvision reports 0.71 GFLOPs (MACs)


def test_counts_grouped_depthwise_separable_and_transposed_convs():
    inp = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", groups=2, use_bias=False, name="g")(inp)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False, name="dw")(x)
    x = keras.layers.SeparableConv2D(6, 3, use_bias=False, name="sep")(x)
    x = keras.layers.Conv2DTranspose(2, 2, strides=2, use_bias=False, name="tr")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    p = zoo.profile(keras.Model(inp, x))
    rows = {r.name: r for r in p.layers}
    assert rows["g"].macs == 4 * 4 * 8 * 9 * (4 // 2)
    assert rows["dw"].macs == 4 * 4 * 8 * 2 * 9
    assert rows["sep"].macs == 2 * 2 * 16 * 9 + 2 * 2 * 16 * 6
    assert rows["tr"].macs == 2 * 2 * 6 * 4 * 2
    assert rows["bn"].macs == 0 and rows["bn"].flops == 2 * 4 * 4 * 2
    assert rows["gap"].flops == 4 * 4 * 2
    assert p.non_trainable_params == 4  # BN moving mean and variance


def test_nested_models_and_sequential_are_walked():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d1")], name="inner")
    inp = keras.Input((4,))
    out = keras.layers.Dense(2, name="d2")(inner(inp))
    p = zoo.profile(keras.Model(inp, out))
    assert [r.name for r in p.layers] == ["d1", "d2"]
    assert p.macs == 4 * 3 + 3 * 2


def test_unknown_input_shape_needs_input_shape_argument():
    model = zoo.build("convnet", input_shape=(None, None, 3), flatten=False, filters=(4,), dense_units=())
    with pytest.raises(ValueError, match="input_shape"):
        zoo.profile(model)
    p = zoo.profile(model, input_shape=(16, 16, 3))
    # two 3x3 convs (3->4, 4->4 channels) at 16x16, then the 4->10 classifier
    assert p.input_shape == (16, 16, 3) and p.macs == 16 * 16 * 4 * (27 + 36) + 4 * 10


def test_profile_rejects_non_models():
    with pytest.raises(TypeError, match="keras.Model"):
        zoo.profile("lenet5")


def test_measure_speed_reports_latency_and_throughput():
    model = zoo.build("lenet5")
    one = zoo.measure_speed(model, batch_size=1, iterations=3, warmup=1)
    many = zoo.measure_speed(model, batch_size=8, iterations=3, warmup=1)
    assert one["batch_size"] == 1 and many["batch_size"] == 8
    assert one["latency_ms"] > 0 and one["latency_ms_p90"] >= one["latency_ms"]
    assert many["throughput"] == pytest.approx(8 / (many["latency_ms"] / 1e3))
    with pytest.raises(ValueError, match="batch_size"):
        zoo.measure_speed(model, batch_size=0)


def test_the_inference_function_is_the_models_forward_pass_for_any_batch_size():
    from zoo.profiling import inference_function, measure_latency_and_throughput

    model = zoo.build("lenet5", num_classes=10)
    forward = inference_function(model)
    for batch in (1, 5, 2):
        x = np.random.default_rng(batch).random((batch, 32, 32, 1)).astype("float32")
        np.testing.assert_allclose(np.asarray(forward(x)), model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    if keras.backend.backend() == "tensorflow":  # one trace serves every batch size
        assert forward.traced.experimental_get_tracing_count() == 1 and inference_function(model) is forward
        np.testing.assert_allclose(np.asarray(forward(np.zeros((3, 32, 32, 1), "float64"))),
                                   model.predict_on_batch(np.zeros((3, 32, 32, 1), "float32")), rtol=1e-5, atol=1e-6)
    figures = measure_latency_and_throughput(model, batch_size=4, iterations=3)
    assert set(figures) == {"latency_ms", "throughput"} and figures["latency_ms"] > 0 and figures["throughput"] > 0


def test_profile_prints_a_table():
    text = str(zoo.profile(zoo.build("lenet5")))
    assert "stage1_conv" in text and "416,520 MACs" in text and "61,706 params" in text


def test_grouped_convolutions_count_torchvisions_macs():
    """torchvision publishes resnext50_32x4d at 4.23 GFLOPS (multiply-adds); its 3x3 convs are grouped by 32."""
    p = zoo.profile(zoo.build("resnext50_32x4d"))
    assert p.macs == pytest.approx(4.23e9, rel=0.01)
