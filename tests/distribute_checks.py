"""Data parallelism on 2 virtual CPU devices, in a fresh process (``ZOO_VIRTUAL_CPUS=2`` and ``KERAS_BACKEND`` set
by tests/test_distribute.py before the framework starts); prints one ``RESULT {json}`` line.

The same models, data, seeds and global batch are trained with ``devices=1`` and ``devices=2``: an MLP, a small
convnet with BatchNorm (statistics of the global batch on both: synchronised BN on TensorFlow, one sharded array
on JAX), and a two-phase ``fine_tune``; a comparison records its device count.
"""

import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _max_diff(a, b):
    """The largest difference between two models' weights, relative where a weight is larger than 1 (a BatchNorm
    moving variance of 20 differs by float32 rounding in its sixth decimal)."""
    return max(float((np.abs(u - v) / np.maximum(1.0, np.abs(u))).max())
               for u, v in zip(a.get_weights(), b.get_weights(), strict=True))


def _train(name, devices, x, y, **build):
    import zoo
    from zoo import training

    training.set_seed(0)
    model = zoo.build(name, **build)
    history = training.fit(model, (x, y), epochs=2, batch_size=16, shuffle=False, verbose=0, optimizer="adamw",
                           learning_rate=0.01, weight_decay=0.01, schedule="cosine", devices=devices)
    return model, history


def main():
    import keras

    import zoo
    from zoo import training
    from zoo.training.distribute import local_devices

    out = {"backend": keras.backend.backend(), "devices": len(local_devices())}
    rng = np.random.default_rng(0)
    x_flat, x_img = rng.standard_normal((64, 6)).astype("float32"), rng.standard_normal((64, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 64)
    cases = {"mlp": ("mlp", x_flat, dict(input_shape=(6,), num_classes=3, hidden_units=(16, 16))),
             "convnet_bn": ("convnet", x_img, dict(input_shape=(8, 8, 3), num_classes=3, filters=(4, 8),
                                                   batch_norm=True, dense_units=()))}
    out["max_weight_diff"], out["history_devices"] = {}, {}
    for case, (name, x, build) in cases.items():
        one, _ = _train(name, 1, x, y, **build)
        two, history = _train(name, 2, x, y, **build)
        out["max_weight_diff"][case] = _max_diff(one, two)
        out["history_devices"][case] = history.devices
        out["history_model_is_the_model"] = history.model is two
        # the optimizer state came back: one more step from each gives the same weights
        for model in (one, two):
            model.train_on_batch(x[:16], y[:16])
        out.setdefault("after_one_more_step", {})[case] = _max_diff(one, two)
        out.setdefault("iterations", {})[case] = [int(keras.ops.convert_to_numpy(m.optimizer.iterations))
                                                  for m in (one, two)]
    out["distribution_left"] = repr(keras.distribution.distribution())
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        out["strategy_left"] = tf.distribute.has_strategy()
        # without synchronised BatchNorm each replica normalises by its own half batch: the difference shows
        from zoo.training import distribute

        clone = distribute._replica
        distribute._replica = lambda model: _unsynchronised(model)
        try:
            bn = cases["convnet_bn"]
            out["unsynchronised_bn_diff"] = _max_diff(_train(bn[0], 1, bn[1], y, **bn[2])[0],
                                                      _train(bn[0], 2, bn[1], y, **bn[2])[0])
        finally:
            distribute._replica = clone

    if keras.backend.backend() == "tensorflow":  # one backend suffices for these (the same code path)
        out["fine_tune_diff"] = _fine_tune_diff(x_img, y)
        out.update(_comparison_record())
    try:
        training.fit(zoo.build("mlp", input_shape=(6,), num_classes=3), (x_flat[:49], y[:49]), batch_size=16,
                     epochs=1, verbose=0, devices=2)
        out["uneven"] = "trained"
    except ValueError as e:
        out["uneven"] = str(e)
    print("RESULT " + json.dumps(out))


def _fine_tune_diff(x, y):
    """fine_tune's two phases (trainability changes, recompiles) on 1 and 2 devices."""
    import zoo
    from zoo import training

    results = []
    for devices in (1, 2):
        training.set_seed(0)
        model = zoo.build("convnet", input_shape=(8, 8, 3), num_classes=3, filters=(4, 8), dense_units=())
        zoo.fine_tune(model, (x, y), head_epochs=1, ft_epochs=1, unfreeze="all", min_steps=None, batch_size=16,
                      verbose=0, devices=devices)
        results.append(model)
    return _max_diff(*results)


def _comparison_record():
    """A comparison's record on 2 devices, then a trial on 2 devices that checkpoints its first epoch (its
    optimizer a replica's) and leaves it (a run of 2 epochs does: its caller deletes it), resumed on 2 devices."""
    import tuning
    import zoo
    from tuning.artifacts import TrialFiles
    from tuning.trial import TrialPlan, run_trial
    from zoo import training

    with tempfile.TemporaryDirectory() as tmp:
        result = tuning.compare(["mlp"], data="moons", training=training.TrainingConfig(epochs=1, devices=2),
                                seeds=1, out=tmp, options=tuning.RunOptions(report=False, verbose=0))
        plan = TrialPlan(training=training.TrainingConfig(epochs=2, batch_size=16, devices=2), measure_speed=False)
        files, moons = TrialFiles(tmp, "t1"), zoo.data.load("moons", num_samples=200, seed=0)
        resumed = [run_trial("mlp", moons, plan, trial_id="t1", files=files) for _ in range(2)][1]
        return {"record_devices": [r.get("devices") for r in result.records],
                "record_status": [r.get("status") for r in result.records],
                "resumed": [resumed["status"], resumed.get("resumed_from_epoch"), resumed.get("notes")]}


def _unsynchronised(model):
    import keras

    replica = keras.models.clone_model(model)
    replica.set_weights(model.get_weights())
    return replica


if __name__ == "__main__":
    main()
