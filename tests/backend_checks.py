"""Checks run in a fresh process under another Keras backend (``KERAS_BACKEND``); prints one JSON object.

Used by ``tests/test_backends.py``: Keras fixes its backend at import, so each
backend needs its own process.
"""

import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))


# a small network with batch norm (the variants of gpu_step_variants.py differ in it): compiling a ResNet-20's
# steps on JAX took most of this process's time
CONVNET = {"filters": (8, 16), "batch_norm": True, "dense_units": (), "flatten": False}


def main():
    import keras

    import zoo
    from zoo import bench, training

    out = {"backend": keras.backend.backend()}

    # the shared training path: mixed precision, uint8 images on the device, normalised in the model
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(32, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 3, size=(32,))
    model = zoo.build("convnet", input_shape=(16, 16, 3), num_classes=3, precision="mixed_bfloat16", **CONVNET)
    model = training.uint8_inputs(model)
    out["conv_dtype"] = next(la for la in model.layers[-1].layers if isinstance(la, keras.layers.Conv2D)).compute_dtype
    history = training.fit(model, (x, y), (x, y), epochs=2, batch_size=8, verbose=0, device_data=True,
                           optimizer="momentum", learning_rate=0.05, steps_per_execution=2)
    out["losses"] = history.history["loss"]
    out["finite"] = all(math.isfinite(v) for v in history.history["loss"] + history.history["val_loss"])
    out["device_array"] = type(training.to_device(x)).__module__.split(".")[0]

    # what Keras' JAX trainer feeds the train step: NumPy batches from arrays, device arrays from DeviceArrays
    from keras.src.backend.jax.trainer import JAXEpochIterator

    fed = {}
    for kind, kwargs in (("arrays", dict(x=x, y=y, batch_size=8, shuffle=False)),
                         ("device", dict(x=training.DeviceArrays(x, y, batch_size=8, seed=0)))):
        for _, _, batches in JAXEpochIterator(**kwargs):
            fed[kind] = type(next(batches)[0]).__module__.split(".")[0]
            break
    out["fed"] = fed
    ds = training.DeviceArrays(np.arange(10), np.arange(10), batch_size=4, seed=1)
    epochs = []
    for _ in range(2):
        epochs.append([int(v) for i in range(len(ds)) for v in np.asarray(ds[i][1])])
        ds.on_epoch_end()
    out["device_epochs"] = epochs

    # the GPU diagnosis script runs end to end (tiny, CPU)
    import gpu_step_variants

    rows = gpu_step_variants.main(["--model", "convnet", "--size", "16", "--batch", "4", "--steps", "2",
                                   "--epochs", "2", "--precision", "float32", "--variants", "fit:keras,loop:vjp",
                                   "--zoo-kwargs", json.dumps(CONVNET), "--torch"])
    out["variants"] = [r["variant"] for r in rows if r["img_per_s"] > 0]
    out["policy_after_variants"] = keras.mixed_precision.global_policy().name

    # zoo bench on this backend
    payload = bench.run(["convnet"], image_size=16, batch_size=4, steps=2, epochs=2, inputs=("numpy", "device"), peers=(),
                        num_classes=3, zoo_kwargs=CONVNET)
    out["bench"] = [{k: r[k] for k in ("framework", "input", "train_samples_per_second", "mfu")}
                    for r in payload["results"]]

    # layer-wise learning-rate decay through this backend's optimizer path (JAX: stateless_apply)
    from layer_decay_checks import step_ratios

    out["layer_decay_max_rel_error"] = max(max(abs(low / e - 1), abs(high / e - 1))
                                           for low, high, e in step_ratios("adamw", 0.5, 0.05).values())

    if keras.backend.backend() == "jax":
        # the batch-norm variants of benchmarks/gpu_step_variants.py must give Keras' gradients
        import jax
        from gpu_step_variants import bn_variant

        xf = rng.normal(size=(8, 16, 16, 3)).astype("float32") * 2 + 1
        grads = {}
        for mode in ("keras", "onepass", "vjp"):
            bn_variant(mode)
            keras.utils.set_random_seed(0)
            m = zoo.build("convnet", input_shape=(16, 16, 3), num_classes=3, **CONVNET)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

            def f(tv, ntv, m=m, loss=loss):
                logits, ntv = m.stateless_call(tv, ntv, xf, training=True)
                return loss(y[:8], logits), ntv

            tv = [v.value for v in m.trainable_variables]
            ntv = [v.value for v in m.non_trainable_variables]
            (_, new_ntv), g = jax.value_and_grad(f, has_aux=True)(tv, ntv)
            grads[mode] = ([np.asarray(a) for a in g], [np.asarray(a) for a in new_ntv])
        bn_variant("keras")
        out["bn_variant_max_rel_error"] = {
            mode: max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))
                      for a, b in zip(grads[mode][0] + grads[mode][1], grads["keras"][0] + grads["keras"][1]))
            for mode in ("onepass", "vjp")
        }
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
