"""Augmentation presets built from Keras preprocessing layers (every backend).

The layers act only when called with ``training=True`` (inside ``model.fit``);
at inference they return their input unchanged.
"""

from __future__ import annotations

from zoo.utils import check_choice, check_int

__all__ = ["AUGMENTATION_PRESETS", "augmentation", "augment"]

# preset -> ordered (layer kind, strength). Strengths are fractions of the
# image size (translation, zoom), of a full turn (rotation), of the contrast
# range, or the noise standard deviation for inputs in [0, 1].
AUGMENTATION_PRESETS = {
    "light": (("flip", None), ("translation", 0.1)),
    "standard": (("flip", None), ("rotation", 0.05), ("translation", 0.1), ("zoom", 0.1)),
    "strong": (("flip", None), ("rotation", 0.1), ("translation", 0.15), ("zoom", 0.2),
               ("contrast", 0.2), ("noise", 0.03)),
}
FLIPS = (None, "horizontal", "vertical", "horizontal_and_vertical")


def _layer(kind, strength, *, flip, seed, name):
    import keras

    layers = keras.layers
    if kind == "flip":
        return layers.RandomFlip(flip, seed=seed, name=name)
    if kind == "rotation":
        return layers.RandomRotation(strength, fill_mode="reflect", seed=seed, name=name)
    if kind == "translation":
        return layers.RandomTranslation(strength, strength, fill_mode="reflect", seed=seed, name=name)
    if kind == "zoom":
        return layers.RandomZoom(strength, fill_mode="reflect", seed=seed, name=name)
    if kind == "contrast":
        return layers.RandomContrast(strength, value_range=(0.0, 1.0), seed=seed, name=name)
    return layers.GaussianNoise(strength, seed=seed, name=name)


def augmentation(preset="standard", *, seed=0, flip="horizontal", name="augmentation"):
    """A ``keras.Sequential`` of random preprocessing layers, active only in training.

    Args:
        preset: ``"light"`` (flip, translation), ``"standard"`` (+ rotation,
            zoom), ``"strong"`` (+ contrast, Gaussian noise), or ``None``.
        seed: base seed; each layer gets ``seed + i``.
        flip: ``"horizontal"``, ``"vertical"``, ``"horizontal_and_vertical"``
            or ``None`` (no flip, e.g. for digits and text).
        name: the Sequential's name.

    Returns:
        a ``keras.Sequential`` for inputs in [0, 1], or ``None`` when ``preset`` is ``None``.

    Example:
        >>> aug = augmentation("light", seed=1, flip=None)
        >>> inputs = keras.Input((32, 32, 1))
        >>> model = keras.Model(inputs, backbone(aug(inputs)))
    """
    check_choice("preset", preset, (None, *AUGMENTATION_PRESETS))
    check_choice("flip", flip, FLIPS)
    seed = check_int("seed", seed, minimum=0)
    if preset is None:
        return None
    import keras  # here: importing zoo.data loads no framework

    steps = [(k, s) for k, s in AUGMENTATION_PRESETS[preset] if not (k == "flip" and flip is None)]
    return keras.Sequential(
        [_layer(k, s, flip=flip, seed=seed + i, name=f"{name}_{k}") for i, (k, s) in enumerate(steps)],
        name=name,
    )


def augment(dataset, preset_or_layer="standard", *, seed=0, flip="horizontal"):
    """Apply augmentation inside a batched ``tf.data`` pipeline of ``(x, y)`` (TensorFlow backend).

    Keeps the model free of augmentation layers; use it on the training split
    only. The map runs in parallel, so random draws are not bit-for-bit
    reproducible; for reproducible runs put :func:`augmentation` in the model.

    Example:
        >>> train = augment(bundle.train, "light", flip=None)
    """
    import tensorflow as tf

    layer = preset_or_layer
    if preset_or_layer is None or isinstance(preset_or_layer, str):
        layer = augmentation(preset_or_layer, seed=seed, flip=flip)
    if layer is None:
        return dataset
    return dataset.map(lambda x, y: (layer(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
