"""Layer-wise learning-rate decay checked by hand on a tiny staged model, on whatever backend Keras runs.

Used by tests/test_layer_decay.py (TensorFlow, in process) and tests/backend_checks.py (JAX, where the
optimizer runs through ``stateless_apply``).
"""

import numpy as np


def tiny_staged_model():
    """stem -> two blocks of stage 1 -> head: four Dense layers, 4 units each (their depths 3, 2, 1, 0)."""
    import keras

    inputs = keras.Input((4,), name="input")
    x = inputs
    for name in ("stem_fc", "stage1_block1_fc", "stage1_block2_fc"):
        x = keras.layers.Dense(4, activation="tanh", name=name)(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head_predictions")(x), name="tiny")


def step_ratios(optimizer="sgd", decay=0.5, weight_decay=0.0):
    """One training step with and without ``layer_decay`` from the same weights and batch: each variable's
    update ratio (decayed / plain) and ``decay ** depth``. Returns ``{path: (ratios' min, max, expected)}``."""
    import keras

    from zoo.training import compile_model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, 3, size=8)
    deltas = []
    for layer_decay in (None, decay):
        keras.utils.set_random_seed(0)
        model = tiny_staged_model()
        before = {v.path: np.array(v) for v in model.trainable_variables}
        compile_model(model, optimizer=optimizer, learning_rate=0.1, weight_decay=weight_decay,
                      layer_decay=layer_decay, loss="sparse_categorical_crossentropy", metrics=[])
        model.train_on_batch(x, y)
        deltas.append({v.path: np.array(v) - before[v.path] for v in model.trainable_variables})
    depth = {"stem": 3, "stage1_block1": 2, "stage1_block2": 1, "head": 0}
    out = {}
    for path, plain in deltas[0].items():
        unit = path.split("/")[0].rsplit("_", 1)[0]
        big = np.abs(plain) > 1e-4  # float32 differences of smaller steps lose digits
        ratio = deltas[1][path][big] / plain[big]
        out[path] = (float(ratio.min()), float(ratio.max()), decay ** depth[unit])
    return out
