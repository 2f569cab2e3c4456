"""``zoo.data.load``: one entry point for embedded sets, TensorFlow Datasets and image folders."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from zoo.data import embedded
from zoo.data._common import (
    SPLITS,
    Fingerprint,
    batch_dataset,
    check_channels,
    check_fractions,
    check_image_size,
    check_seed,
    checked_finite,
    shuffled_batches,
    split_indices,
)
from zoo.data.bundle import DataBundle
from zoo.data.bundle import standardize as standardize_bundle
from zoo.data.folder import ON_BAD_FILE, load_folder
from zoo.data.tfds_source import load_tfds
from zoo.utils import check_choice, check_float, check_int

__all__ = ["DatasetSpec", "DATASETS", "list_datasets", "load"]


@dataclass(frozen=True)
class DatasetSpec:
    """One embedded data set: how to make it and which options it takes.

    Attributes:
        kind: ``"image"`` or ``"tabular"``.
        task: ``"multiclass"``, ``"binary"`` or ``"regression"``.
        make: generator taking its options (plus image_size/channels/seed for
            images) and returning ``(x, y)`` or ``(x, y, class_names)``.
        options: option name -> default, accepted as ``load(name, **options)``.
        channels: channel counts an image set accepts (first is the default).
        description: one line for listings.
        seeded: ``make`` takes a generation ``seed`` (False for fixed real data).
    """

    kind: str
    task: str
    make: Callable
    options: Mapping
    channels: tuple = ()
    description: str = ""
    seeded: bool = True


DATASETS = {
    "digits": DatasetSpec(
        "image", "multiclass", embedded.make_digits, {}, (1, 3),
        "1,797 real 8x8 handwritten digits from scikit-learn, 10 classes", seeded=False,
    ),
    "shapes": DatasetSpec(
        "image", "multiclass", embedded.make_shapes,
        {"classes": None, "samples_per_class": 250, "noise": 0.05}, (3, 1, 4),
        f"procedural geometric shapes, {len(embedded.SHAPE_CLASSES)} classes",
    ),
    "sinusoid": DatasetSpec(
        "tabular", "regression", embedded.make_sinusoid, {"num_samples": 500, "noise": 0.1},
        description="noisy sine, 1 feature -> 1 target (tutorial T1)",
    ),
    "moons": DatasetSpec(
        "tabular", "binary", embedded.make_moons, {"num_samples": 1000, "noise": 0.15},
        description="two interleaving half circles, 2-D binary (tutorial T2)",
    ),
    "circles": DatasetSpec(
        "tabular", "binary", embedded.make_circles, {"num_samples": 1000, "noise": 0.08},
        description="concentric circles, 2-D binary (tutorial T2)",
    ),
    "xor": DatasetSpec(
        "tabular", "binary", embedded.make_xor, {"num_samples": 1000, "noise": 0.1},
        description="the XOR problem: opposite quadrants share a class, no line separates them, 2-D binary",
    ),
    "blobs": DatasetSpec(
        "tabular", "multiclass", embedded.make_blobs, {"num_samples": 1000, "num_classes": 3, "noise": 1.0},
        description="Gaussian blobs, 2-D multi-class (tutorial T3)",
    ),
    "spirals": DatasetSpec(
        "tabular", "multiclass", embedded.make_spirals, {"num_samples": 900, "num_classes": 3, "noise": 0.2},
        description="interleaved spirals, 2-D multi-class (tutorial T3)",
    ),
}
TFDS_OPTIONS = {"data_dir": None, "cache": None}
FOLDER_OPTIONS = {"validation_dir": None, "on_bad_file": "error", "cache": None}
DEFAULT_IMAGE_SIZE = 32


def list_datasets() -> list:
    """Sorted names of the embedded data sets (``tfds:<name>`` and ``folder:<path>`` work too)."""
    return sorted(DATASETS)


def _unknown_name(name):
    close = difflib.get_close_matches(str(name), list(DATASETS), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(
        f"Unknown dataset name. Received: name={name!r}.{hint} Valid names: {', '.join(list_datasets())}, "
        "'tfds:<tfds name>' (e.g. 'tfds:mnist') or 'folder:<path>'."
    )


def _check_options(name, options, allowed):
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"Unexpected option(s) for dataset {name!r}: {unknown}. "
            f"Valid options: {sorted(allowed) or 'none'}. "
            f"Received: {', '.join(f'{k}={options[k]!r}' for k in unknown)}"
        )
    return {**allowed, **options}


def _check_embedded_options(spec, opts):
    """Validate the option values of an embedded set."""
    if "num_samples" in opts:
        check_int("num_samples", opts["num_samples"], minimum=10)
    if "num_classes" in opts:
        check_int("num_classes", opts["num_classes"], minimum=2)
    if "samples_per_class" in opts:
        check_int("samples_per_class", opts["samples_per_class"], minimum=1)
    if "noise" in opts:
        check_float("noise", opts["noise"], minimum=0.0)
    if "classes" in opts:
        opts["classes"] = embedded.check_shape_classes(opts["classes"])


def _check_split(split):
    """``None`` or explicit tfds split specs for train/validation/test."""
    if split is None:
        return None
    if isinstance(split, (tuple, list)) and len(split) == 3:
        split = dict(zip(SPLITS, split))
    if not isinstance(split, Mapping) or set(split) - set(SPLITS) or not split.get("train"):
        raise ValueError(
            "`split` must map 'train' (required), 'validation' and 'test' to tfds split specs, or be a "
            "(train, validation, test) tuple, e.g. ('train[:90%]', 'train[90%:]', 'test'). "
            f"Received: split={split!r}"
        )
    for v in split.values():
        if v is not None and not isinstance(v, str):
            raise TypeError(f"`split` values must be strings or None. Received: split={split!r}")
    return {s: split.get(s) for s in SPLITS}


def _datasets_from_arrays(arrays, *, batch_size, seed):
    import tensorflow as tf

    out = {}
    for split, (x, y) in arrays.items():
        if not len(x):
            continue
        if split == "train":
            out[split] = shuffled_batches(x, y, batch_size=batch_size, seed=seed)
        else:
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            out[split] = checked_finite(batch_dataset(ds, batch_size=batch_size, shuffle=False, seed=seed,
                                                      num_examples=len(x)), x, y)
    return out


def _load_embedded(name, spec, *, image_size, channels, seed, validation_split, test_split, split_seed, opts):
    kwargs = dict(opts)
    if spec.kind == "image":
        size = image_size or (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
        channels = channels or spec.channels[0]
        if channels not in spec.channels:
            raise ValueError(
                f"`channels` must be one of {sorted(spec.channels)} for dataset {name!r}. "
                f"Received: channels={channels!r}"
            )
        kwargs.update(image_size=size, channels=channels)
    if spec.seeded:
        kwargs["seed"] = seed
    made = spec.make(**kwargs)
    x, y = made[0], made[1]
    if spec.task == "regression":
        class_names = ()
    elif len(made) == 3:
        class_names = tuple(made[2])
    else:
        class_names = tuple(str(i) for i in range(int(y.max()) + 1))
    strata = np.zeros(len(y)) if spec.task == "regression" else y
    idx = split_indices(
        strata, validation_split=validation_split, test_split=test_split, seed=split_seed,
        stratify=spec.task != "regression",
    )
    arrays = {s: (x[i], y[i]) for s, i in idx.items()}
    fp = Fingerprint("embedded", name, spec.task, list(class_names))
    for s in SPLITS:
        fp.update(s).update(arrays[s][0]).update(arrays[s][1])
    meta = {"task": spec.task, "class_names": class_names, "input_shape": tuple(x.shape[1:])}
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
    return arrays, meta, fp.hexdigest(), options


def load(name, *, split=None, image_size=None, channels=None, batch_size=32, seed=0,
         validation_split=0.2, test_split=0.2, split_seed=0, standardize=False, **options):
    """Load a data set as a :class:`DataBundle` of train/validation/test data.

    Sources (all offline; nothing is ever downloaded):

    * embedded (:func:`list_datasets`): ``digits`` (real 8x8 handwritten
      digits, resized), ``shapes`` (procedural), ``sinusoid``, ``moons``,
      ``circles``, ``xor``, ``blobs``, ``spirals`` (2-D tutorial sets);
    * ``"tfds:<name>"``: a TensorFlow Datasets image-classification set
      already prepared in ``data_dir`` (else :class:`DatasetNotAvailableError`
      within seconds, naming the folder and how to prepare it);
    * ``"folder:<path>"``: one sub-folder per class (or ``train/``, ``val/``,
      ``test/`` of those); every file is checked first, see :func:`scan_folder`.

    Images are float32 in [0, 1], ``(h, w, channels)``; labels int32.

    Args:
        name: see above.
        split: tfds only: explicit split specs, a ``(train, validation, test)``
            tuple or a dict, e.g. ``("train[:90%]", "train[90%:]", "test")``.
        image_size: int or ``(height, width)`` >= 8. Embedded images default
            to 32; tfds and folders keep their size when all images share one.
        channels: 1, 3 or 4, converted explicitly (gray -> RGB replicates,
            RGB -> gray luminance, alpha composited on white). Default: the
            source's own count (digits 1, shapes 3).
        batch_size: batch size of the tf.data pipelines.
        seed: shuffles the training pipeline, and generates ``shapes`` and the
            2-D sets (same seed, same arrays).
        validation_split, test_split: fractions of the examples held out when
            the source has no such split (tfds: fractions of its train split).
        split_seed: chooses the (stratified) split; fixed at 0 by default so
            the split does not change with ``seed``.
        standardize: subtract the training split's mean and divide by its standard deviation, per
            feature or channel, in every split (:func:`zoo.data.standardize`; the layer that does it is
            ``bundle.normalization``).
        **options: per source: ``shapes``: ``classes``, ``samples_per_class``,
            ``noise``; ``sinusoid``/``moons``/``circles``/``xor``: ``num_samples``,
            ``noise``; ``blobs``/``spirals``: also ``num_classes``; tfds:
            ``data_dir`` (default ``$TFDS_DATA_DIR`` or ~/tensorflow_datasets),
            ``cache``; folders: ``validation_dir``, ``on_bad_file``
            (``"error"`` or ``"warn"``: skip bad files with a warning), ``cache``.

    Returns:
        a :class:`DataBundle`.

    Raises:
        ValueError / TypeError: bad arguments, named with the received value,
            raised before any data is read.
        DatasetNotAvailableError: tfds data not prepared, or folder missing.
        BadDataError: problems in an image folder (all listed in one report).

    Example:
        >>> bundle = load("digits", image_size=32, channels=1)
        >>> model = zoo.build("lenet5", input_shape=bundle.input_shape, num_classes=bundle.num_classes)
        >>> zoo.training.fit(model, bundle.train, bundle.validation, epochs=10)
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string. Received: name={name!r}")
    source, _, rest = name.partition(":") if name.startswith(("tfds:", "folder:")) else ("embedded", "", name)
    if source == "embedded" and name not in DATASETS:
        raise _unknown_name(name)
    if source != "embedded" and not rest:
        raise ValueError(f"`name` needs a {source} name or path after '{source}:'. Received: name={name!r}")
    if source == "embedded" and DATASETS[name].kind == "tabular":
        for arg, value in (("image_size", image_size), ("channels", channels)):
            if value is not None:
                raise ValueError(
                    f"`{arg}` does not apply to the tabular dataset {name!r}; leave it None. "
                    f"Received: {arg}={value!r}"
                )
    image_size = check_image_size(image_size)
    channels = check_channels(channels)
    batch_size = check_int("batch_size", batch_size)
    seed = check_seed("seed", seed)
    validation_split, test_split = check_fractions(validation_split, test_split)
    split_seed = check_seed("split_seed", split_seed)
    if not isinstance(standardize, bool):
        raise TypeError(f"`standardize` must be True or False. Received: standardize={standardize!r}")
    if source != "tfds" and split is not None:
        raise ValueError(f"`split` only applies to 'tfds:' data sets. Received: split={split!r}")
    split = _check_split(split)
    common = {"image_size": image_size, "channels": channels, "batch_size": batch_size, "seed": seed,
              "validation_split": validation_split, "test_split": test_split, "split_seed": split_seed}
    report = None

    if source == "embedded":
        spec = DATASETS[name]
        opts = _check_options(name, options, spec.options)
        _check_embedded_options(spec, opts)
        arrays, meta, fingerprint, used = _load_embedded(
            name, spec, image_size=image_size, channels=channels, seed=seed,
            validation_split=validation_split, test_split=test_split, split_seed=split_seed, opts=opts,
        )
        datasets = _datasets_from_arrays(arrays, batch_size=batch_size, seed=seed)
        sizes = {s: len(a[0]) for s, a in arrays.items()}
        unbatched = {}
        common.update(used)
    else:
        if source == "tfds":
            opts = _check_options(name, options, TFDS_OPTIONS)
            if opts["cache"] is not None:
                opts["cache"] = bool(opts["cache"])
            pipelines, sizes, meta, fingerprint, used = load_tfds(
                rest, data_dir=opts["data_dir"], split=split, image_size=image_size, channels=channels,
                validation_split=validation_split, test_split=test_split, cache=opts["cache"],
            )
        else:
            opts = _check_options(name, options, FOLDER_OPTIONS)
            check_choice("on_bad_file", opts["on_bad_file"], ON_BAD_FILE)
            pipelines, sizes, meta, fingerprint, used, report = load_folder(
                rest, validation_dir=opts["validation_dir"], on_bad_file=opts["on_bad_file"],
                image_size=image_size, channels=channels, validation_split=validation_split,
                test_split=test_split, split_seed=split_seed, cache=opts["cache"],
            )
        common.update(used)
        arrays, unbatched = {}, pipelines
        datasets = {
            s: batch_dataset(ds, batch_size=batch_size, shuffle=s == "train", seed=seed,
                             num_examples=sizes.get(s) or 10_000)
            for s, ds in pipelines.items()
        }
    task = meta["task"]
    class_names = tuple(meta["class_names"])
    bundle = DataBundle(
        name=name,
        task=task,
        input_shape=tuple(int(v) for v in meta["input_shape"]),
        num_classes=None if task == "regression" else len(class_names),
        class_names=class_names,
        fingerprint=fingerprint,
        train=datasets.get("train"),
        validation=datasets.get("validation"),
        test=datasets.get("test"),
        num_examples=MappingProxyType({s: int(sizes.get(s) or 0) for s in SPLITS}),
        batch_size=batch_size,
        seed=seed,
        source=source,
        options=MappingProxyType(common),
        report=report,
        _arrays=arrays,
        _unbatched=MappingProxyType(unbatched),
    )
    return standardize_bundle(bundle) if standardize else bundle


# What a bundle's options record beyond `load`'s arguments (where the data came from, what was found there).
_RECORDED_ONLY = ("path", "skipped_files", "version")


def reload(provenance, *, batch_size=None):
    """The data a run was trained on, loaded again from its ``DataBundle.provenance()`` (as a run manifest keeps
    it) and checked: the same name and options must give the same fingerprint.

    Args:
        provenance: a dict with ``name``, ``fingerprint`` and ``options``.
        batch_size: the pipelines' batch size (default: the recorded one).

    Raises:
        ValueError: the provenance cannot be loaded again, or the data have changed since (the fingerprints
            differ): an answer on other data would be silently wrong.

    Example:
        >>> bundle = zoo.data.reload(tuning.read_manifest("runs/cmp")["provenance"])
    """
    if not isinstance(provenance, dict) or not isinstance(provenance.get("name"), str) \
            or not isinstance(provenance.get("options"), dict) or not provenance.get("fingerprint"):
        raise ValueError("`provenance` must be a DataBundle.provenance() dict (name, fingerprint, options). "
                         f"Received: {type(provenance).__name__}")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in provenance["options"].items()
               if k not in _RECORDED_ONLY}
    if batch_size is not None:
        options["batch_size"] = batch_size
    bundle = load(provenance["name"], **options)
    if bundle.fingerprint != provenance["fingerprint"]:
        raise ValueError(f"The data {provenance['name']!r} have changed since they were recorded: fingerprint "
                         f"{bundle.fingerprint[:12]} now, {str(provenance['fingerprint'])[:12]} then")
    return bundle
