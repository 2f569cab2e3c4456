"""ImageNet inference: the class names, the top classes of predictions, and the weights' preprocessing.

Every table entry states how its network saw images in training and evaluation
(``entry["preprocessing"]``: torchvision's eval transform, resize the shorter side
to ``resize``, centre-crop ``crop``, scale to [0, 1], subtract ``mean``, divide by
``std``). :func:`read_images` does the resize and crop of image files;
:func:`normalization` is the last step as a plain Keras layer (``Normalization``,
loadable without the zoo), for images already in [0, 1]; :func:`normalize_dataset` the
same step on a ``tf.data`` pipeline of ``(images, labels)``.
"""

from __future__ import annotations

import functools
import os

import numpy as np

__all__ = ["decode_predictions", "imagenet_classes", "normalization", "normalize_dataset", "read_images"]


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple:
    """The 1,000 ImageNet-1k class names in index order (torchvision's ``_IMAGENET_CATEGORIES``)."""
    path = os.path.join(os.path.dirname(__file__), "imagenet_classes.txt")
    with open(path, encoding="utf-8") as f:
        names = tuple(line.rstrip("\n") for line in f if line.strip())
    if len(names) != 1000:
        raise RuntimeError(f"{path} holds {len(names)} class names, not 1000: the installation is damaged.")
    return names


def decode_predictions(preds, top=5, class_names=None):
    """The ``top`` classes of each row of ``preds`` as ``[(index, name, score), ...]`` lists.

    Args:
        preds: ``(batch, classes)`` probabilities or logits (e.g. ``model.predict(x)``).
        top: how many classes per row, best first.
        class_names: names by index; ImageNet-1k's for 1,000 classes by default.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2:
        raise ValueError(f"`preds` must have shape (batch, classes). Received: preds.shape={preds.shape}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= preds.shape[1]:
        raise ValueError(f"`top` must be an integer from 1 to {preds.shape[1]}. Received: top={top!r}")
    if class_names is None:
        if preds.shape[1] != 1000:
            raise ValueError(f"Without `class_names`, `preds` must have the 1000 ImageNet classes. "
                             f"Received: preds.shape={preds.shape}")
        class_names = imagenet_classes()
    if len(class_names) != preds.shape[1]:
        raise ValueError(f"`class_names` has {len(class_names)} names for {preds.shape[1]} classes.")
    order = np.argsort(-preds, axis=1, kind="stable")[:, :top]
    return [[(int(i), class_names[i], float(row[i])) for i in idx] for row, idx in zip(preds, order)]


def _preprocessing(entry):
    p = entry.get("preprocessing") if hasattr(entry, "get") else None
    if not p or len(p.get("mean", ())) != 3 or len(p.get("std", ())) != 3:
        raise ValueError(f"`entry` must be a weights-table entry with its preprocessing "
                         f"(zoo.weights.resolve(model, spec)). Received: entry={entry!r}")
    return p


def normalization(entry, *, name="normalize"):
    """A ``keras.layers.Normalization`` with ``entry``'s mean and std, for RGB inputs in [0, 1].

    It computes ``(x - mean) / std`` per channel, as torchvision's ``Normalize``.
    """
    p = _preprocessing(entry)
    import keras

    return keras.layers.Normalization(mean=list(p["mean"]), variance=[float(s) ** 2 for s in p["std"]], name=name)


def normalize_dataset(dataset, entry):
    """``dataset`` (``tf.data`` of ``(images in [0, 1], labels)``) with images normalised as ``entry``'s
    network expects, ``(x - mean) / std``, in plain TensorFlow ops (a Keras layer cannot run inside
    ``Dataset.map``). ``None`` stays ``None`` (an empty split)."""
    p = _preprocessing(entry)
    if dataset is None:
        return None
    import tensorflow as tf

    mean, std = tf.constant(p["mean"], tf.float32), tf.constant(p["std"], tf.float32)
    return dataset.map(lambda x, y: ((tf.cast(x, tf.float32) - mean) / std, y), num_parallel_calls=tf.data.AUTOTUNE)


def read_images(paths, *, resize=256, crop=224):
    """Decode image files as RGB in [0, 1]: shorter side resized to ``resize``, centre crop ``crop``.

    That is torchvision's evaluation transform (bilinear, antialiased) without its
    normalisation, which :func:`normalization` adds. ``resize=None`` resizes the whole
    image to ``crop`` x ``crop`` instead (no crop), as the zoo's data loaders do.

    Returns:
        A float32 array ``(len(paths), crop, crop, 3)``.

    Raises:
        FileNotFoundError: a path that does not exist (all are checked first).
        ValueError: a file that is not a decodable image, naming it.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("`paths` must name at least one image file. Received: paths=[]")
    for name, value in (("resize", resize), ("crop", crop)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    if crop is None:
        raise ValueError("`crop` must be a positive int. Received: crop=None")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"No such image file: {', '.join(map(repr, missing))}")
    import tensorflow as tf

    images = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                image = tf.io.decode_image(f.read(), channels=3, dtype=tf.float32, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            raise ValueError(f"Cannot decode the image file {path!r}: {str(e).splitlines()[0][:200]}") from None
        if resize is None:
            image = tf.image.resize(image, (crop, crop), antialias=True)
        else:
            h, w = int(image.shape[0]), int(image.shape[1])
            short = min(h, w)  # torchvision's Resize(int): the shorter side becomes `resize`
            size = (resize, max(1, int(resize * w / h))) if h == short else (max(1, int(resize * h / w)), resize)
            image = tf.image.resize(image, size, antialias=True)
            top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))  # CenterCrop's
            if top < 0 or left < 0:
                raise ValueError(f"`crop` ({crop}) is larger than the resized image {size} of {path!r}.")
            image = image[top:top + crop, left:left + crop]
        images.append(np.clip(image.numpy(), 0.0, 1.0))
    return np.stack(images).astype(np.float32)
