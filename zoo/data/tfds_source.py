"""TensorFlow Datasets by name, strictly from prepared local data (never downloads).

``tfds.load`` with no prepared data and no network retries for minutes before
failing, so the prepared ``<data_dir>/<name>/<version>/dataset_info.json`` is
looked for first and a :class:`DatasetNotAvailableError` names the folder and
how to prepare it.
"""

from __future__ import annotations

import os

from zoo.data._common import Fingerprint, convert_channels

__all__ = ["DatasetNotAvailableError", "default_data_dir", "resolve_builder", "load_tfds"]


class DatasetNotAvailableError(FileNotFoundError):
    """The requested data is not on this machine (no download is attempted)."""


def default_data_dir():
    """``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets`` (tfds' own default)."""
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def _prepare_hint(name, data_dir):
    return (
        "Prepare it on a machine with network access, then copy the folder here:\n"
        f"    tfds build {name} --data_dir {data_dir}\n"
        f"or in Python: tfds.load({name!r}, data_dir={data_dir!r}, download=True)"
    )


def resolve_builder(name, data_dir=None):
    """The tfds builder of ``name`` if its prepared data is in ``data_dir``; raise otherwise.

    Args:
        name: a tfds name, optionally with config and version (``"mnist"``,
            ``"mnist:3.0.1"``, ``"cifar10/plain_text"``).
        data_dir: folder holding prepared data (default :func:`default_data_dir`).

    Returns:
        ``(builder, data_dir)``.

    Raises:
        ValueError: unknown tfds name.
        DatasetNotAvailableError: no prepared data in ``data_dir`` (within a
            second or two: nothing is downloaded and GCS is not probed).
    """
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(os.fspath(data_dir)) if data_dir is not None else default_data_dir()
    try:
        builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise ValueError(
            f"Unknown TensorFlow Datasets name. Received: name='tfds:{name}'. "
            "See https://www.tensorflow.org/datasets/catalog (e.g. tfds:mnist, tfds:cifar10, "
            "tfds:tf_flowers, tfds:cats_vs_dogs)."
        ) from e
    expected = os.fspath(builder.data_dir)
    if not os.path.isfile(os.path.join(expected, "dataset_info.json")):
        base = os.path.join(data_dir, builder.name)
        found = sorted(
            os.path.relpath(root, data_dir)
            for root, _, files in os.walk(base)
            if "dataset_info.json" in files
        ) if os.path.isdir(base) else []
        other = f" Found other prepared versions: {found}." if found else ""
        raise DatasetNotAvailableError(
            f"TensorFlow Datasets {builder.name!r} is not prepared in {data_dir!r}: "
            f"expected {expected!r} with dataset_info.json.{other} Nothing is downloaded by "
            f"zoo.data.\n{_prepare_hint(name, data_dir)}"
        )
    return builder, data_dir


def _plan_splits(available, split, validation_split, test_split, num_train):
    """tfds split specs for train/validation/test.

    An explicit ``split`` is used verbatim. Otherwise the source's own
    ``validation``/``test`` splits are used when they exist and the missing
    ones are carved, by example count, from the end of ``train``.
    """
    if split is not None:
        return dict(split)
    if "train" not in available:
        raise ValueError(
            f"The dataset has no 'train' split (splits: {sorted(available)}); pass `split`, e.g. "
            "split={'train': 'train', 'validation': None, 'test': 'test'}. Received: split=None"
        )
    plan = {"validation": "validation" if "validation" in available else None,
            "test": "test" if "test" in available else None}
    n_test = int(round(num_train * test_split)) if plan["test"] is None else 0
    n_val = int(round(num_train * validation_split)) if plan["validation"] is None else 0
    n_train = num_train - n_test - n_val
    plan["train"] = f"train[:{n_train}]" if n_test or n_val else "train"
    if n_val:
        plan["validation"] = f"train[{n_train}:{n_train + n_val}]"
    if n_test:
        plan["test"] = f"train[{n_train + n_val}:]"
    return plan


def load_tfds(name, *, data_dir, split, image_size, channels, validation_split, test_split, cache):
    """Build unbatched ``(image, label)`` pipelines of a prepared tfds image-classification set.

    Returns:
        ``(pipelines, sizes, meta, fingerprint, options)``: ``pipelines`` maps a
        split name to an unbatched ``tf.data.Dataset`` of float32 images in
        [0, 1] and int32 labels; ``sizes`` their example counts (``None`` if
        unknown); ``meta`` task, class names and input shape; ``options`` the
        resolved data_dir, version, split plan and caching.
    """
    import tensorflow as tf

    builder, data_dir = resolve_builder(name, data_dir)
    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(
            f"tfds:{name} has no (image, label) supervised keys; zoo.data loads image classification "
            f"sets only. Received: name='tfds:{name}'"
        )
    image_key, label_key = keys
    image_feature, label_feature = info.features[image_key], info.features[label_key]
    shape = tuple(image_feature.shape)
    if len(shape) != 3:
        raise ValueError(f"tfds:{name} is not an image data set (feature shape {shape}). "
                         f"Received: name='tfds:{name}'")
    source_channels = shape[-1]
    if source_channels is None:
        raise ValueError(f"tfds:{name} images have an unknown channel count; pass `channels`. "
                         f"Received: name='tfds:{name}'")
    if image_size is None:
        if shape[0] is None or shape[1] is None:
            raise ValueError(
                f"tfds:{name} images have different sizes; pass `image_size`, e.g. image_size=160. "
                "Received: image_size=None"
            )
        image_size = (shape[0], shape[1])
    channels = channels or source_channels
    available = dict(info.splits)
    num_train = available["train"].num_examples if "train" in available else 0
    plan = _plan_splits(available, split, validation_split, test_split, num_train)
    if cache is None:
        cache = (info.dataset_size or 0) < 512 * 2**20

    def prepare(image, label):
        image = tf.image.convert_image_dtype(image, tf.float32)
        image = convert_channels(image, source_channels, channels, lambda p: tf.concat(p, axis=-1))
        if tuple(image_size) != tuple(shape[:2]):
            image = tf.image.resize(image, image_size, method="bilinear")
        image = tf.ensure_shape(tf.clip_by_value(image, 0.0, 1.0), (*image_size, channels))
        return image, tf.cast(label, tf.int32)

    pipelines, sizes = {}, {}
    for role in ("train", "validation", "test"):
        spec = plan.get(role)
        if spec is None:
            continue
        ds = builder.as_dataset(split=spec, as_supervised=True, shuffle_files=False)
        if cache:
            ds = ds.cache()  # decoded uint8 images: cheap to keep, costly to decode
        pipelines[role] = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        n = int(ds.cardinality())
        sizes[role] = n if n >= 0 else None
    names = tuple(label_feature.names) if hasattr(label_feature, "names") else tuple(
        str(i) for i in range(label_feature.num_classes))
    meta = {"task": "multiclass", "class_names": names, "input_shape": (*image_size, channels)}
    with open(os.path.join(os.fspath(builder.data_dir), "dataset_info.json"), "rb") as f:
        info_bytes = f.read()
    fp = Fingerprint("tfds", builder.name, str(builder.version), info_bytes, plan,
                     list(image_size), channels)
    options = {"data_dir": data_dir, "image_size": list(image_size), "channels": channels,
               "version": str(builder.version), "split": plan, "cache": bool(cache)}
    return pipelines, sizes, meta, fp.hexdigest(), options
