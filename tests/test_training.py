import math

import keras
import numpy as np
import pytest

import zoo
from zoo import runtime, training


def _data(n=64, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


@pytest.mark.parametrize("optimizer", training.OPTIMIZERS)
def test_every_optimizer_trains_with_finite_loss(optimizer):
    x, y = _data()
    model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), num_classes=2)
    history = training.fit(model, (x, y), (x, y), epochs=2, batch_size=16, optimizer=optimizer,
                           learning_rate=0.05, verbose=0)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(math.isfinite(v) for v in history.history["loss"])
    expected = {"sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "adam": "Adam", "adamw": "AdamW",
                "rmsprop": "RMSprop", "adagrad": "Adagrad"}[optimizer]
    assert type(model.optimizer).__name__ == expected
    if optimizer in ("momentum", "nesterov"):
        assert model.optimizer.momentum == 0.9 and model.optimizer.nesterov == (optimizer == "nesterov")


def _lr(schedule, step):
    return float(schedule(step)) if callable(schedule) else float(schedule)


def test_epoch_line_names_its_run_in_one_line_an_epoch_and_pickles(capsys):
    import pickle
    import re

    x, y = _data()
    model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), num_classes=2)
    line = pickle.loads(pickle.dumps(training.EpochLine("mlp seed=3")))  # sent to worker processes
    history = training.fit(model, (x, y), (x, y), epochs=2, batch_size=16, verbose=0, callbacks=[line])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2, printed
    for epoch, text in enumerate(printed):
        assert re.fullmatch(rf"mlp seed=3: epoch {epoch + 1}/2, \d+\.\d s, .+", text), text
        assert f"val_loss {history.history['val_loss'][epoch]:.4f}" in text
        assert f"accuracy {history.history['accuracy'][epoch]:.4f}" in text


def test_schedules():
    assert training.make_schedule("constant", 0.1) == 0.1
    step = training.make_schedule("step", 0.1, decay_steps=10, decay_rate=0.5)
    assert [_lr(step, s) for s in (0, 9, 10, 25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    exp = training.make_schedule("exponential", 0.1, decay_steps=10, decay_rate=0.5)
    assert _lr(exp, 5) == pytest.approx(0.1 * 0.5 ** 0.5)
    cos = training.make_schedule("cosine", 0.1, total_steps=100)
    assert _lr(cos, 0) == pytest.approx(0.1) and _lr(cos, 50) == pytest.approx(0.05) and _lr(cos, 100) == pytest.approx(0.0)
    warm_cos = training.make_schedule("cosine", 0.1, total_steps=110, warmup_steps=10)
    assert _lr(warm_cos, 5) == pytest.approx(0.05) and _lr(warm_cos, 10) == pytest.approx(0.1)
    warm = training.make_schedule("warmup", 0.1, warmup_steps=4)
    assert [_lr(warm, s) for s in (0, 2, 4, 1000)] == pytest.approx([0.0, 0.05, 0.1, 0.1])


def test_fit_derives_total_steps_for_cosine():
    x, y = _data(n=64)
    model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), num_classes=2)
    training.fit(model, (x, y), epochs=3, batch_size=16, schedule="cosine", learning_rate=0.1, verbose=0)
    # 4 steps per epoch x 3 epochs: the schedule reaches 0 at the end
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("loss, cls", [("mse", "MeanSquaredError"), ("mae", "MeanAbsoluteError"),
                                       ("msle", "MeanSquaredLogarithmicError"), ("huber", "Huber")])
def test_regression_losses(loss, cls):
    assert type(training.make_loss("regression", loss=loss)).__name__ == cls


def test_task_and_logits_are_read_from_the_model():
    softmax = zoo.build("mlp", input_shape=(4,), num_classes=3)
    logits = zoo.build("mlp", input_shape=(4,), num_classes=3, task="logits")
    binary = zoo.build("mlp", input_shape=(4,), task="binary")
    reg = zoo.build("mlp", input_shape=(4,), task="regression")
    assert [training.infer_task(m) for m in (softmax, logits, binary, reg)] == [
        "multiclass", "multiclass", "binary", "regression"]
    training.compile_model(logits)
    assert logits.loss.get_config()["from_logits"] is True
    training.compile_model(softmax)
    assert softmax.loss.get_config()["from_logits"] is False
    training.compile_model(binary)
    assert type(binary.loss).__name__ == "BinaryCrossentropy"
    training.compile_model(reg)
    assert type(reg.loss).__name__ == "MeanSquaredError"
    one_hot = training.make_loss("multiclass", one_hot=True, from_logits=True)
    assert type(one_hot).__name__ == "CategoricalCrossentropy" and one_hot.get_config()["from_logits"]


def test_logits_training_learns():
    x, y = _data(n=256)
    model = zoo.build("mlp", input_shape=(4,), hidden_units=(16,), num_classes=2, task="logits")
    h = training.fit(model, (x, y), (x, y), epochs=15, batch_size=32, learning_rate=1e-2, verbose=0)
    assert h.history["val_accuracy"][-1] > 0.9  # a linear rule: chance is 0.5


def test_seed_makes_training_reproducible():
    x, y = _data()
    weights = []
    for _ in range(2):
        model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), num_classes=2, dropout=0.3)
        training.set_seed(7)
        model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), num_classes=2, dropout=0.3)
        training.fit(model, (x, y), epochs=1, batch_size=16, seed=7, verbose=0)
        weights.append([np.array(w) for w in model.weights])
        keras.backend.clear_session(free_memory=False)
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments_are_named():
    model = zoo.build("mlp", input_shape=(4,), num_classes=2)
    with pytest.raises(ValueError, match="optimizer.*'adamax'"):
        training.compile_model(model, optimizer="adamax")
    with pytest.raises(ValueError, match="schedule.*'linear'"):
        training.compile_model(model, schedule="linear")
    with pytest.raises(ValueError, match="learning_rate=0"):
        training.compile_model(model, learning_rate=0)
    with pytest.raises(ValueError, match="total_steps"):
        training.compile_model(model, schedule="cosine")
    with pytest.raises(ValueError, match="loss='hinge2'"):
        training.compile_model(model, loss="hinge2")
    with pytest.raises(TypeError, match="keras.Model"):
        training.compile_model("mlp")
    with pytest.raises(ValueError, match="epochs=0"):
        training.fit(model, _data(), epochs=0)


def test_precision_policy_builds_mixed_models_and_restores_the_policy():
    before = keras.mixed_precision.global_policy().name
    with training.precision_policy("mixed_bfloat16") as policy:
        model = zoo.build("lenet5_modern", input_shape=(28, 28, 1), num_classes=3)
    assert policy == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before == "float32"
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.compute_dtype == "bfloat16" for layer in convs)
    assert all(w.dtype == "float32" for w in model.weights)  # variables stay float32
    out = model(np.zeros((2, 28, 28, 1), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"  # the head outputs float32 for the loss
    # zoo.build(precision=...) is the same policy around the builder, and trains
    model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), num_classes=2, precision="mixed_bfloat16")
    assert model.layers[1].compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    h = training.fit(model, _data(), epochs=1, batch_size=16, verbose=0)
    assert math.isfinite(h.history["loss"][0])


def test_precision_is_restored_after_a_failing_build_and_checked():
    with pytest.raises(ValueError, match="hidden_units"):
        zoo.build("mlp", input_shape=(4,), hidden_units=(-1,), precision="mixed_float16")
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="precision.*'fp8'"):
        zoo.build("mlp", input_shape=(4,), precision="fp8")
    with pytest.raises(ValueError, match="precision.*'half'"):
        training.resolve_precision("half")


def test_auto_precision_follows_the_device(monkeypatch):
    assert training.accelerator()["platform"] == "cpu"  # the test machine
    assert training.resolve_precision("auto") == "float32"
    cases = [({"platform": "gpu", "name": "H100", "compute_capability": (9, 0)}, "mixed_bfloat16"),
             ({"platform": "gpu", "name": "V100", "compute_capability": (7, 0)}, "mixed_float16"),
             ({"platform": "gpu", "name": "?", "compute_capability": None}, "mixed_float16"),
             ({"platform": "tpu", "name": "v5e", "compute_capability": None}, "mixed_bfloat16")]
    for device, expected in cases:
        monkeypatch.setattr(runtime, "accelerator", lambda device=device: device)
        assert training.resolve_precision("auto") == expected
    assert training.resolve_precision("float32") == "float32"  # explicit choices are kept


def test_device_data_trains_exactly_like_host_arrays(monkeypatch):
    x, y = _data(n=96)
    moved_args = []
    real_to_device = training.to_device

    def spy(value):
        moved_args.append(value)
        return real_to_device(value)

    monkeypatch.setattr(training, "to_device", spy)
    histories, weights = [], []
    for device_data in (False, True):
        training.set_seed(3)
        model = zoo.build("mlp", input_shape=(4,), hidden_units=(8,), num_classes=2)
        h = training.fit(model, (x, y), (x, y), epochs=2, batch_size=16, seed=3, verbose=0,
                         device_data=device_data)
        histories.append(h.history)
        weights.append([np.array(w) for w in model.weights])
        keras.backend.clear_session(free_memory=False)
    assert sum(isinstance(v, tuple) for v in moved_args) == 2  # train and validation, once, only with device_data
    assert histories[0].keys() == histories[1].keys()
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    moved = real_to_device({"x": x, "pair": (x, None)})
    assert keras.ops.is_tensor(moved["x"]) and moved["pair"][1] is None
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(moved["pair"][0]), x)


def test_uint8_wrapper_keeps_the_model_precision_and_loss_scaling():
    model = zoo.build("lenet5_modern", input_shape=(28, 28, 1), num_classes=3, precision="mixed_float16")
    wrapped = training.uint8_inputs(model)  # built after the policy block: it must follow the model, not the global
    assert keras.mixed_precision.global_policy().name == "float32"
    assert wrapped.dtype_policy.name == "mixed_float16"
    assert wrapped.get_layer("normalize").compute_dtype == "float16"
    training.compile_model(wrapped, optimizer="sgd")
    assert isinstance(wrapped.optimizer, keras.optimizers.LossScaleOptimizer)  # float16 gradients need it
    x = np.random.default_rng(0).integers(0, 256, size=(8, 28, 28, 1), dtype=np.uint8)
    h = wrapped.fit(x, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    assert math.isfinite(h.history["loss"][0])


# ----------------------------------------------------------------------------- the learning-rate range test
def _moons_mlp():
    moons = zoo.data.load("moons")
    keras.utils.set_random_seed(0)
    model = zoo.build("mlp", input_shape=moons.input_shape, num_classes=moons.num_classes, hidden_units=(16,))
    return moons, model


def _captured_figures(monkeypatch):
    """Figures handed to zoo.plots.save, kept open for inspection (nothing written)."""
    import zoo.plots

    figures = []
    monkeypatch.setattr(zoo.plots, "save", lambda fig, path: figures.append(fig) or path)
    return figures


def test_lr_find_stops_on_the_smoothed_loss_not_on_one_batch(monkeypatch):
    """Issue 28: one batch above 4x the lowest loss stopped the sweep while the smoothed curve still fell."""
    moons, model = _moons_mlp()
    result = training.lr_find(model, moons.arrays("train"), steps=100)
    losses, smoothed = result.losses, result.smoothed
    # where the old rule (a raw batch > 4x the lowest so far) stopped, after 83 batches at 0.42: now past it
    raw_rule = next(i for i in range(10, len(losses)) if losses[i] > 4 * min(losses[: i + 1]))
    assert len(losses) > raw_rule + 1
    from zoo.training.lr_find import _SETTLE, _floor

    noise = float(np.std(losses[:_SETTLE]))
    for i in range(_SETTLE, len(smoothed) - 1):  # no stop before the smoothed loss rose 4x above its floor
        assert smoothed[i] <= 4 * _floor(smoothed[:i], noise)
    assert result.stopped_early == (len(losses) < 100)
    if result.stopped_early:
        assert smoothed[-1] > 4 * _floor(smoothed[:-1], noise)
    assert 1e-3 < result.suggestion < 1.0 and "smoothed loss" in result.note
    figures = _captured_figures(monkeypatch)
    result.plot("lr.png")
    low, high = figures[0].axes[0].get_ylim()
    assert low <= min(smoothed) and max(smoothed) <= high  # the whole smoothed curve on the axes
    with pytest.raises(ValueError, match="stop_factor"):
        training.lr_find(model, moons.arrays("train"), stop_factor=0.5)


def test_lr_find_on_a_trained_model_suggests_a_rate_that_keeps_it_and_draws_the_whole_curve(monkeypatch):
    """Issue 28: after training (the README's order) the sweep returned suggestion=None, the curves off the axes."""
    moons, model = _moons_mlp()
    training.fit(model, moons.train, epochs=10, learning_rate=0.05, verbose=0)
    before = model.evaluate(*moons.arrays("validation"), verbose=0, return_dict=True)
    result = training.lr_find(model, moons.arrays("train"), steps=100)
    assert result.suggestion is not None and "trained already" in result.note, result.note
    assert result.suggestion < result.rates[-1] / 5  # well below where the loss took off
    figures = _captured_figures(monkeypatch)
    result.plot("lr.png")
    ax = figures[0].axes[0]
    low, high = ax.get_ylim()
    assert low <= min(result.smoothed) and max(result.smoothed) <= high
    assert "trained already" in ax.get_title(loc="left")
    history = training.fit(model, moons.train, moons.validation, epochs=2, learning_rate=result.suggestion, verbose=0)
    assert history.history["val_accuracy"][-1] >= before["accuracy"] - 0.02  # going on does not undo it


def test_lr_find_says_why_it_has_no_suggestion(monkeypatch):
    moons, model = _moons_mlp()
    result = training.lr_find(model, moons.arrays("train"), start_lr=1e-9, end_lr=1e-8, steps=30)
    assert result.suggestion is None and not result.stopped_early and len(result.losses) == 30
    assert "never fell" in result.note and "raise end_lr" in result.note
    figures = _captured_figures(monkeypatch)
    result.plot("lr.png")
    assert figures[0].axes[0].get_title(loc="left").startswith("No suggestion: ")

