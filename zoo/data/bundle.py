"""The :class:`DataBundle` every loader returns."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from zoo.data._common import SPLITS, jsonable, restart_order, shuffled_batches


@dataclass(frozen=True, eq=False)
class DataBundle:
    """Train/validation/test data plus what a model and a report need to know about it.

    Attributes:
        name: the name passed to :func:`zoo.data.load`, e.g. ``"digits"``,
            ``"tfds:mnist"`` or ``"folder:/data/pets"``.
        task: ``"multiclass"`` (integer labels 0..K-1, also used for 2-class
            image sets), ``"binary"`` (0/1 labels of the 2-D tutorial sets) or
            ``"regression"`` (float targets of shape ``(n, 1)``).
        input_shape: shape of one example, e.g. ``(32, 32, 1)`` or ``(2,)``.
        num_classes: number of classes (``None`` for regression).
        class_names: class names in label order (empty for regression).
        fingerprint: sha256 of the data and the options that produced it;
            reports record it as provenance.
        train, validation, test: batched ``tf.data.Dataset`` of ``(x, y)``
            (``None`` when a split is empty or TensorFlow is missing). Only
            ``train`` is shuffled, anew each epoch: embedded sets draw the
            order from ``np.random.default_rng(seed)`` (reproducible whatever
            ran before); TFDS and folder sets use ``tf.data``'s
            ``shuffle(seed=seed)``, which also depends on TensorFlow's global seed.
        num_examples: examples per split.
        batch_size, seed: as passed to ``load``.
        source: ``"embedded"``, ``"tfds"`` or ``"folder"``.
        options: every option that produced the data (JSON-friendly).
        report: the :class:`~zoo.data.folder.FolderReport` of a folder source.

    Example:
        >>> bundle = zoo.data.load("digits")
        >>> x, y = bundle.arrays("train")
        >>> bundle.input_shape, bundle.num_classes
        ((32, 32, 1), 10)
    """

    name: str
    task: str
    input_shape: tuple
    num_classes: int | None
    class_names: tuple
    fingerprint: str
    train: Any = None
    validation: Any = None
    test: Any = None
    num_examples: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    batch_size: int = 32
    seed: int = 0
    source: str = "embedded"
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    report: Any = None
    normalization: Any = None  # the keras Normalization layer of a standardised bundle (see standardize)
    # NumPy arrays of small in-memory sets, and unbatched, unshuffled pipelines
    # of the others (materialised on demand by `arrays`).
    _arrays: dict = field(default_factory=dict, repr=False)
    _unbatched: Mapping = field(default_factory=dict, repr=False)

    @property
    def splits(self) -> tuple:
        """Names of the non-empty splits, in train/validation/test order."""
        return tuple(s for s in SPLITS if self.num_examples.get(s, 0) > 0)

    @property
    def class_map(self) -> dict:
        """``{class_name: label_index}``."""
        return {name: i for i, name in enumerate(self.class_names)}

    def _check_split(self, split):
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {list(SPLITS)}. Received: split={split!r}")
        if split not in self.splits:
            raise ValueError(
                f"Dataset {self.name!r} has no {split!r} examples (splits: {list(self.splits)}). "
                f"Received: split={split!r}"
            )

    def dataset(self, split: str):
        """The batched ``tf.data.Dataset`` of ``split`` ("train", "validation" or "test")."""
        self._check_split(split)
        return getattr(self, split)

    def arrays(self, split: str):
        """``(x, y)`` NumPy arrays of ``split`` in a fixed order (not shuffled).

        In-memory for the embedded sets; TFDS and folder sets are read once
        from their pipeline and kept, so only call it on sets that fit in memory.

        Example:
            >>> x, y = zoo.data.load("moons").arrays("test")
        """
        self._check_split(split)
        if split not in self._arrays:
            xs, ys = [], []
            for x, y in self._unbatched[split].batch(1024).as_numpy_iterator():
                xs.append(x)
                ys.append(y)
            self._arrays[split] = (np.concatenate(xs), np.concatenate(ys))
        return self._arrays[split]

    def restarted(self):
        """This bundle with its training order started over (same data, the next epoch is the first order again).

        An embedded set draws epoch k's order from the k-th permutation of ``default_rng(seed)``,
        counted per pipeline: runs that share one bundle (the trials of a search or comparison)
        would otherwise each continue where the previous one stopped, and a trial's result would
        depend on what ran before it in the process. :func:`tuning.run_trial` restarts the order of
        every trial. TFDS and folder sets (``tf.data`` shuffling) are returned as they are.
        """
        if self.source != "embedded" or self.train is None or "train" not in self._arrays:
            return self
        if restart_order(self.train):  # the same pipeline, its orders started over (no new trace)
            return self
        from dataclasses import replace

        x, y = self._arrays["train"]
        return replace(self, train=shuffled_batches(x, y, batch_size=self.batch_size, seed=self.seed))

    def provenance(self) -> dict:
        """A JSON-friendly summary for reports: name, source, fingerprint, options, sizes, classes."""
        return {
            "name": self.name,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "num_examples": dict(self.num_examples),
            "options": jsonable(dict(self.options)),
        }

    def contract(self) -> dict:
        """What a model trained on this bundle takes and gives, for the card saved beside it: the input shape
        (height, width, channels for images), the value range of images (``[0, 1]``, as every loader gives
        them), the task and the class names; ``zoo predict`` and ``zoo explain`` read image files by it.

        Example:
            >>> zoo.data.load("digits", image_size=32).contract()["input_shape"]
            [32, 32, 1]
        """
        image = len(self.input_shape) == 3 and self.normalization is None
        return {"input_shape": list(self.input_shape), "value_range": [0.0, 1.0] if image else None,
                "task": self.task, "class_names": list(self.class_names), "dataset": self.name}

    def save_class_map(self, path) -> str:
        """Write the class map (and the data fingerprint) as JSON to ``path``; returns the path.

        Example:
            >>> bundle.save_class_map("runs/s1/class_map.json")
        """
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        payload = {
            "dataset": self.name,
            "fingerprint": self.fingerprint,
            "class_names": list(self.class_names),
            "class_to_index": self.class_map,
        }
        with open(path, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        return path

    def __repr__(self):
        sizes = ", ".join(f"{s}={self.num_examples.get(s, 0)}" for s in SPLITS)
        return (
            f"DataBundle(name={self.name!r}, task={self.task!r}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, {sizes}, fingerprint={self.fingerprint[:12]!r})"
        )


def standardize(bundle: DataBundle) -> DataBundle:
    """A copy of ``bundle`` whose inputs are standardised with its training split's statistics.

    Each feature (each channel, for images) has the training split's mean subtracted and is divided by
    its standard deviation, in every split; the validation and test splits never inform the statistics.
    ``bundle.normalization`` is the same transformation as a plain ``keras.layers.Normalization``, to put
    in front of a model that will see raw inputs later. The fingerprint changes with it.

    Example:
        >>> bundle = standardize(zoo.data.load("moons"))     # or zoo.data.load("moons", standardize=True)
        >>> deployed = keras.Sequential([bundle.normalization, model])
    """
    import hashlib
    import keras

    x, _ = bundle.arrays("train")
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes, dtype="float64")
    variance = x.var(axis=axes, dtype="float64")
    scale = (1.0 / np.sqrt(np.maximum(variance, 1e-12))).astype("float32")
    shift = mean.astype("float32")

    def apply(features):
        return (features - shift) * scale

    arrays = {s: (apply(bundle.arrays(s)[0]), bundle.arrays(s)[1]) for s in bundle.splits}
    datasets = {s: getattr(bundle, s).map(lambda a, b: (apply(a), b)) for s in bundle.splits
                if getattr(bundle, s) is not None}
    layer = keras.layers.Normalization(mean=mean.astype("float32"), variance=variance.astype("float32"),
                                       name="input_standardization")
    fingerprint = hashlib.sha256(f"{bundle.fingerprint}|standardized".encode()).hexdigest()
    from dataclasses import replace

    return replace(bundle, fingerprint=fingerprint, options=MappingProxyType({**bundle.options, "standardize": True}),
                   normalization=layer, _arrays=arrays, _unbatched=MappingProxyType({}), **datasets)

