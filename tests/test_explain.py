"""zoo.explain: Grad-CAM against a hand computation and across backends, sanity checks, localisation, saliency,
feature maps, filters, gradient and activation statistics, plots and the `zoo explain` command."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo import explain, training
from zoo.cli import main
from zoo.data.embedded import make_shapes

TINY = dict(input_shape=(16, 16, 3), filters=(8, 16), dense_units=(), flatten=False, num_classes=3)
SHAPES = ("circle", "square", "triangle", "cross")


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    logits = zoo.build("convnet", classifier_activation=None, **TINY)
    probabilities = zoo.build("convnet", **TINY)
    probabilities.set_weights(logits.get_weights())
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    return logits, probabilities, x


@pytest.fixture(scope="module")
def shapes_model():
    """A convnet trained on four shapes (97% test accuracy), its untrained twin, and test images with masks."""
    keras.utils.set_random_seed(0)
    x, y, _, _ = make_shapes(classes=SHAPES, samples_per_class=250, image_size=32, seed=1, return_masks=True)
    xt, yt, _, masks = make_shapes(classes=SHAPES, samples_per_class=50, image_size=32, seed=7, return_masks=True)
    kw = dict(input_shape=(32, 32, 3), filters=(16, 32, 64), dense_units=(), batch_norm=True, flatten=False,
              num_classes=4)
    untrained = zoo.build("convnet", **kw)
    model = zoo.build("convnet", **kw)
    model.set_weights(untrained.get_weights())
    training.fit(model, (x, y), epochs=6, batch_size=32, learning_rate=3e-3, verbose=0)
    return model, untrained, xt, yt, masks


def _hand_grad_cam(model, layer, x):
    """Grad-CAM by hand: d(logit of the predicted class)/d(maps), averaged over space, weighted sum, ReLU."""
    both = keras.Model(model.inputs[0], [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        maps, logits = both(x, training=False)
        score = tf.reduce_sum(tf.gather(logits, tf.argmax(logits, axis=-1), batch_dims=1))
    grads = tape.gradient(score, maps).numpy()
    return np.maximum(np.einsum("nhwc,nc->nhw", maps.numpy(), grads.mean(axis=(1, 2))), 0)


def test_grad_cam_equals_the_hand_computation(tiny):
    logits, probabilities, x = tiny
    hand = _hand_grad_cam(logits, "stage2_conv2_relu", x)  # the default: the last stage's last conv map
    assert hand.max() > 0
    for model in (logits, probabilities):  # a softmax head is differentiated before its softmax
        ours = explain.grad_cam(model, x, upsample=False, normalize=False)
        np.testing.assert_allclose(ours, hand, atol=1e-5)
    maps = explain.grad_cam(probabilities, x)
    assert maps.shape == (4, 16, 16) and maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1)
    plus = explain.grad_cam(probabilities, x, method="gradcam++")
    assert plus.shape == maps.shape and np.isfinite(plus).all() and not np.allclose(plus, maps)


def test_grad_cam_is_the_same_on_jax(tiny, tmp_path):
    logits, _, x = tiny
    logits.save_weights(tmp_path / "w.weights.h5")
    np.save(tmp_path / "x.npy", x)
    expected = explain.grad_cam(logits, x, upsample=False, normalize=False)
    gradient = explain.saliency(logits, x)
    script = textwrap.dedent(f"""
        import numpy as np, keras, zoo
        model = zoo.build("convnet", classifier_activation=None, **{TINY!r})
        model.load_weights({str(tmp_path / "w.weights.h5")!r})
        x = np.load({str(tmp_path / "x.npy")!r})
        np.save({str(tmp_path / "cam.npy")!r}, zoo.explain.grad_cam(model, x, upsample=False, normalize=False))
        np.save({str(tmp_path / "sal.npy")!r}, zoo.explain.saliency(model, x))
        print(keras.backend.backend())
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KERAS_BACKEND": "jax"})
    assert run.returncode == 0 and run.stdout.strip().endswith("jax"), run.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "cam.npy"), expected, atol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "sal.npy"), gradient, atol=1e-4)


def _hits(model, images, classes, masks):
    """The fraction of Grad-CAM peaks on the object (its mask grown by 2 pixels: the outline counts)."""
    grown = masks.copy()
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            grown |= np.roll(np.roll(masks, dy, axis=1), dx, axis=2)
    maps = explain.grad_cam(model, images, classes)
    peaks = maps.reshape(len(maps), -1).argmax(axis=1)
    return grown.reshape(len(maps), -1)[np.arange(len(maps)), peaks].mean()


def test_grad_cam_points_at_the_object_and_fails_the_randomisation_check(shapes_model):
    model, untrained, xt, yt, masks = shapes_model
    right = model.predict(xt, verbose=0).argmax(axis=-1) == yt
    assert right.mean() > 0.9
    trained_hits = _hits(model, xt[right], yt[right], masks[right])
    untrained_hits = _hits(untrained, xt[right], yt[right], masks[right])
    print(f"Grad-CAM peak on the object: trained {trained_hits:.3f}, untrained {untrained_hits:.3f}")
    assert trained_hits >= 0.9 and untrained_hits < 0.6  # measured: 0.97 and 0.40
    # Adebayo et al.: a map that survives re-randomised weights explains the input, not the model.
    maps = explain.grad_cam(model, xt[right], yt[right])
    random_maps = explain.grad_cam(untrained, xt[right], yt[right])
    rank_a = np.argsort(np.argsort(maps.reshape(len(maps), -1), axis=1), axis=1)
    rank_b = np.argsort(np.argsort(random_maps.reshape(len(maps), -1), axis=1), axis=1)
    spearman = np.nanmean([np.corrcoef(a, b)[0, 1] for a, b in zip(rank_a, rank_b)])
    assert spearman < 0.4  # measured 0.08


def test_saliency_of_a_linear_model_is_its_weights():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    x = np.random.default_rng(0).random((2, 4, 4, 2)).astype("float32")
    maps = explain.saliency(model, x, class_index=1)
    weights = np.abs(np.asarray(model.layers[-1].kernel)[:, 1]).reshape(4, 4, 2).max(axis=-1)
    np.testing.assert_allclose(maps, np.stack([weights / weights.max()] * 2), rtol=1e-5)
    for method in ("smoothgrad", "integrated_gradients"):  # a linear model has the same attribution pattern
        result = explain.saliency(model, x, class_index=1, method=method, samples=3, steps=3)
        assert result.shape == (2, 4, 4) and np.isfinite(result).all()
    with pytest.raises(ValueError, match=r"`method` must be one of.*Received: method='nope'"):
        explain.saliency(model, x, method="nope")
    with pytest.raises(ValueError, match=r"`class_index` must be an int in \[0, 3\)"):
        explain.saliency(model, x, class_index=3)
    with pytest.raises(ValueError, match=r"`images` must be a batch of shape"):
        explain.saliency(model, np.zeros((2, 5, 5, 2)))


def test_feature_maps_filters_and_statistics(tiny):
    _, model, x = tiny
    assert explain.feature_maps(model, x, stage="stage1").shape == (4, 8, 8, 8)  # after stage 1's pooling
    assert explain.feature_maps(model, x, layer="stage2_conv1_relu").shape == (4, 8, 8, 16)
    kernels = explain.filters(model)
    raw = np.asarray(model.get_layer("stage1_conv1_conv").kernel)
    assert kernels.shape == (8, 3, 3, 3) and kernels.min() == 0 and np.allclose(kernels.max(axis=(1, 2, 3)), 1)
    np.testing.assert_allclose(kernels[0], (raw[..., 0] - raw[..., 0].min()) / np.ptp(raw[..., 0]), rtol=1e-6)
    y = np.array([0, 1, 2, 0])
    rows = explain.gradient_stats(model, (x, y))
    with tf.GradientTape() as tape:  # by hand, for the first kernel
        loss = keras.losses.SparseCategoricalCrossentropy()(y, model(x, training=False))
    first = tape.gradient(loss, model.trainable_weights[0].value)
    assert rows[0]["weight"] == model.trainable_weights[0].path
    np.testing.assert_allclose(rows[0]["grad_norm"], np.linalg.norm(first), rtol=1e-5)
    stats = explain.activation_stats(model, x)
    relu = model.get_layer(stats[0]["layer"]).output
    values = np.asarray(keras.Model(model.inputs[0], relu)(x))
    assert stats[0]["activation"] == "relu" and stats[0]["dead"] == pytest.approx(np.mean(values == 0))
    with pytest.raises(ValueError, match=r"Unknown stage 'stage9'"):
        explain.feature_maps(model, x, stage="stage9")


def test_every_cnn_family_gets_a_map():
    for name, kw in (("resnet20", dict(width=0.25)), ("vgg11_bn", dict(input_shape=(32, 32, 3), width=0.0625)),
                     ("densenet_bc_40", dict(width=0.25)), ("keras_mobilenetv2", dict(input_shape=(32, 32, 3)))):
        model = zoo.build(name, num_classes=3, **kw)
        x = np.random.default_rng(0).random((2, *model.inputs[0].shape[1:])).astype("float32")
        maps = explain.grad_cam(model, x)
        assert maps.shape == (2, *x.shape[1:3]) and np.isfinite(maps).all(), name
    with pytest.raises(ValueError, match="Grad-CAM needs a layer with"):
        explain.grad_cam(zoo.build("mlp", input_shape=(4,), num_classes=2), np.zeros((1, 4)))


def test_plots_and_the_explain_command(tiny, tmp_path, capsys):
    _, model, x = tiny
    maps = explain.grad_cam(model, x)
    assert os.path.getsize(explain.plot_overlays(x, maps, str(tmp_path / "o.png"), titles=list("abcd"))) > 2000
    assert os.path.getsize(explain.plot_filters(model, str(tmp_path / "f.png"))) > 2000
    rows = {"a": explain.gradient_stats(model, (x, np.zeros(4, "int32")))}
    assert os.path.getsize(explain.plot_gradient_norms(rows, str(tmp_path / "g.png"))) > 2000
    model.save(tmp_path / "m.keras")
    paths = []
    for i, image in enumerate(x[:2]):
        paths.append(str(tmp_path / f"img{i}.png"))
        tf.io.write_file(paths[-1], tf.io.encode_png((image * 255).astype("uint8")))
    for method, produced in (("gradcam", "gradcam.png"), ("smoothgrad", "smoothgrad.png"),
                             ("feature-maps", "feature_maps_0.png"), ("filters", "filters.png")):
        assert main(["explain", str(tmp_path / "m.keras"), *paths, "--method", method,
                     "--out", str(tmp_path / "out")]) == 0
        assert (tmp_path / "out" / produced).exists(), method
    assert "img0.png: class" in capsys.readouterr().out
    from zoo.cli.weights import _images_for

    names = [f"kind{i}" for i in range(model.output_shape[-1])]
    card = tmp_path / "m.json"  # the card's input contract: class names, and the scale images are read at
    card.write_text(json.dumps({"input": {"class_names": names, "value_range": [0, 255]}}))
    assert main(["explain", str(tmp_path / "m.keras"), paths[0], "--out", str(tmp_path / "out")]) == 0
    assert "img0.png: kind" in capsys.readouterr().out
    assert np.allclose(_images_for(model, str(tmp_path / "m.keras"), paths[:1])[0], x[0] * 255, atol=1.5)
    card.write_text(json.dumps({"input": {"class_names": names, "value_range": None}}))  # standardised inputs
    assert main(["explain", str(tmp_path / "m.keras"), paths[0], "--out", str(tmp_path / "out")]) == 2
    assert "does not say the scale of the model's inputs" in capsys.readouterr().err


def test_the_comparison_report_shows_grad_cam_of_the_best_model(tmp_path, monkeypatch):
    import tuning
    from tuning import comparison
    from zoo.profiling import inference_function

    def compare():
        return tuning.compare(["convnet"], data=data, training=zoo.training.TrainingConfig(epochs=1), seeds=1,
                              out=tmp_path, model_kwargs={"convnet": {"filters": (8, 16), "dense_units": ()}},
                              options=tuning.RunOptions(verbose=0, measure_speed=False))

    data = zoo.data.load("digits", image_size=16, channels=1, batch_size=128)
    figure = tmp_path / "plots" / "gradcam.png"
    traced = []  # the models whose test split is predicted: the confusion matrix's (and the figure's)
    with monkeypatch.context() as m:  # the best trial's model is still in memory: its file is not read again
        m.setattr(comparison, "load_saved_model", lambda *a, **k: pytest.fail("the trained model was reloaded"))
        m.setattr(comparison, "inference_function", lambda model: traced.append(model) or inference_function(model))
        result = compare()
    assert result.paths and figure.stat().st_size > 2000
    assert len(traced) == 1  # the figure chose its images from the confusion matrix's predictions
    text = (tmp_path / "report.md").read_text()
    assert "## Where the best model looks (Grad-CAM)" in text and "plots/gradcam.png" in text
    figure.unlink()
    compare()  # the record is reused, nothing trains: the figure comes from the saved model
    assert figure.stat().st_size > 2000


def test_activation_maximisation_raises_each_filters_response(tiny):
    _, model, _ = tiny
    conv = model.get_layer("stage2_conv2_conv")  # the default: the last convolution
    images = explain.filters(model, method="maximize", count=4, steps=40)
    assert images.shape == (4, 16, 16, 3) and images.min() == 0 and np.allclose(images.max(axis=(1, 2, 3)), 1)
    probe = keras.Model(model.inputs[0], conv.output)
    start = 0.5 + 0.05 * np.random.default_rng(0).standard_normal((4, 16, 16, 3)).astype("float32")
    before, after = np.asarray(probe(start)), np.asarray(probe(images))
    for i in range(4):  # filter i's mean activation on its own image went up
        assert after[i, ..., i].mean() > before[i, ..., i].mean()
    with pytest.raises(ValueError, match=r"`method` must be one of"):
        explain.filters(model, method="dream")


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_the_default_grad_cam_layer_has_spatial_extent(name):
    """Issue 28: on LeNet-5 the default was C5, 1x1 at 32x32, so every map was constant (a uniform tint)."""
    bundle = zoo.data.load("digits", image_size=32, channels=1)
    x, _ = bundle.arrays("test")
    keras.utils.set_random_seed(0)
    model = zoo.build(name, input_shape=bundle.input_shape, num_classes=10)
    maps = explain.grad_cam(model, x[:8], upsample=False)
    assert maps.shape == (8, 10, 10)  # C3's maps (stage 2), not C5's 1x1
    assert (maps.reshape(8, -1).std(axis=1) > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", explain.ConstantMapWarning)
        explain.grad_cam(model, x[:8])
    c5 = [la.name for la in model.layers if la.name.startswith("stage3_")][-1]
    with pytest.raises(ValueError, match=rf"{c5}.*1x1.*Received: layer='{c5}'"):
        explain.grad_cam(model, x[:2], layer=c5)


def test_grad_cam_takes_the_stage_before_when_the_last_has_extent_inside_branches_only():
    """Inception v3 at 75 px: stage 4 is 1x1 but for its first module's branches (3x3, not a cut point): the default
    is stage 3's output (3x3), not the 1x1 map (which was refused as 'no map larger than 1x1')."""
    model = zoo.build("inception_v3", input_shape=(75, 75, 3), num_classes=3, width=0.0625)
    x = np.random.default_rng(0).random((2, 75, 75, 3)).astype("float32")
    maps = explain.grad_cam(model, x, upsample=False)
    assert maps.shape == (2, 3, 3) and np.isfinite(maps).all()


def test_grad_cam_reaches_through_residual_connections_to_a_map_with_extent(tmp_path):
    """MobileNetV2 at 32x32: its last stages are 1x1 and no chain of layers leads from a 2x2 map to the
    output (residual additions follow), so the map is taken through the model's own graph."""
    keras.utils.set_random_seed(0)
    model = zoo.build("keras_mobilenetv2", input_shape=(32, 32, 3), num_classes=3, classifier_activation=None)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    ours = explain.grad_cam(model, x, upsample=False, normalize=False)
    assert ours.shape == (2, 2, 2)
    np.testing.assert_allclose(ours, _hand_grad_cam(model, "stage6_block_13_expand_relu", x), rtol=1e-4, atol=1e-6)
    softmax = zoo.build("keras_mobilenetv2", input_shape=(32, 32, 3), num_classes=3)
    softmax.set_weights(model.get_weights())  # differentiated before its softmax: the same maps
    np.testing.assert_allclose(explain.grad_cam(softmax, x, upsample=False, normalize=False), ours, rtol=1e-4,
                               atol=1e-6)
    with pytest.raises(ValueError, match="does not depend on the input through that layer alone"):
        explain.grad_cam(model, x, layer="stage5_block_12_project_BN")  # the addition bypasses it


def test_a_constant_map_is_said_and_not_drawn_as_a_tint(tiny, monkeypatch):
    """Every class weight negative: each weighted map is negative and the ReLU leaves zeros everywhere."""
    import zoo.plots

    logits, probabilities, x = tiny
    model = zoo.build("convnet", **TINY)
    model.set_weights(probabilities.get_weights())
    kernel = model.get_layer("head_predictions").kernel
    kernel.assign(-np.abs(np.asarray(kernel)) - 0.01)
    with pytest.warns(explain.ConstantMapWarning, match=r"constant map \(all zero\) for 4 of 4 image"):
        zero = explain.grad_cam(model, x, class_index=0)
    assert not zero.any()
    figures = []
    monkeypatch.setattr(zoo.plots, "save", lambda fig, path: figures.append(fig) or path)
    real = explain.grad_cam(probabilities, x)
    explain.plot_overlays(x[:4], np.concatenate([zero[:2], real[:2]]), "o.png")
    axes = figures[0].axes
    assert [len(ax.images) for ax in axes] == [1, 1, 2, 2]  # the image alone, no tint, where the map is constant
    assert [any("constant map" in t.get_text() for t in ax.texts) for ax in axes] == [True, True, False, False]


def _token_model(blocks=3):
    """A ViT in miniature: 8x8 patches of a 32x32 image, a class token in front, self-attention blocks with
    residual connections, a head on the class token."""
    inputs = keras.Input((32, 32, 3), name="input")
    x = keras.layers.Conv2D(8, 8, strides=8, name="stem_patches")(inputs)
    x = keras.layers.Reshape((16, 8), name="stem_tokens")(x)
    x = keras.layers.ZeroPadding1D((1, 0), name="stem_class_token")(x)
    for b in range(1, blocks + 1):
        y = keras.layers.LayerNormalization(name=f"stage1_block{b}_ln")(x)
        y = keras.layers.MultiHeadAttention(2, 4, name=f"stage1_block{b}_attention")(y, y)
        x = keras.layers.Add(name=f"stage1_block{b}_add")([x, y])
    x = keras.layers.Lambda(lambda t: t[:, 0], name="head_class_token")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head_predictions")(x), name="tiny_vit")


def test_grad_cam_on_a_token_model_uses_the_last_blocks_input_as_patch_maps():
    keras.utils.set_random_seed(0)
    model = _token_model()
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    assert explain._token_layer(model).name == "stage1_block2_add"  # the last block's input
    maps = explain.grad_cam(model, x, class_index=[0, 1], normalize=False, upsample=False)
    assert maps.shape == (2, 4, 4) and all(np.ptp(m) > 0 for m in maps)
    # by hand: the patch tokens of block 2's output as a 4x4 grid, weighted by their mean gradients
    features = keras.Model(model.inputs[0], model.get_layer("stage1_block2_add").output)(x).numpy()
    import tensorflow as tf

    t = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = t
        y = model.get_layer("stage1_block3_add")([y, model.get_layer("stage1_block3_attention")(
            model.get_layer("stage1_block3_ln")(y), model.get_layer("stage1_block3_ln")(y))])
        score = tf.reduce_sum(model.get_layer("head_predictions")(y[:, 0]) * tf.one_hot([0, 1], 3))
    grads = tape.gradient(score, t).numpy()[:, 1:].reshape(2, 4, 4, 8)
    expected = np.maximum(np.einsum("nhwc,nc->nhw", features[:, 1:].reshape(2, 4, 4, 8), grads.mean(axis=(1, 2))), 0)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
    assert explain.feature_maps(model, x, layer="stage1_block1_add").shape == (2, 4, 4, 8)
