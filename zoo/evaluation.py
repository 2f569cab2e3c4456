"""Evaluate a classifier on a labelled set: timm's ``validate.py`` for the zoo.

:func:`evaluate` runs a model over ``(x, y)`` batches once and measures what a validation table reports:
top-1 and top-5 accuracy, the mean cross-entropy loss, per-class accuracy, the confusion matrix and the
throughput of the pass. The data come as a :class:`~zoo.data.DataBundle` (one of its splits), ``(x, y)``
arrays, or any iterable of ``(x, y)`` batches (a ``tf.data`` pipeline), so a set larger than memory streams
through. The result (:class:`Evaluation`) prints a summary, and gives one CSV row with the model, the weights,
the data's fingerprint and the library versions (:meth:`Evaluation.append_csv`).

Accuracy is counted from the model's own outputs (``argmax``), so it equals ``model.evaluate``'s accuracy on
the same arrays; the loss treats outputs as probabilities when every row is non-negative and sums to one,
else as logits.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import time

import numpy as np

__all__ = ["Evaluation", "class_indices", "evaluate"]

_WNID = re.compile(r"n\d{8}")
_MAX_CLASS_MAP_BYTES = 2**20
_EPSILON = 1e-7  # Keras' clip of probabilities in the cross-entropy
_TOP = 5


@dataclasses.dataclass
class Evaluation:
    """What :func:`evaluate` measured.

    Attributes:
        examples: how many examples were evaluated.
        top1, top5: accuracy in percent (``top5`` is ``None`` for 5 classes or fewer).
        loss: mean cross-entropy.
        confusion: ``(classes, classes)`` counts, rows the true class, columns the predicted one.
        class_names: names of the model's outputs.
        images_per_second: examples over the seconds of the pass after its first batch (the first pays
            the tracing); the whole pass when there is a single batch (``notes`` says so).
        batch_size: the largest batch of the pass.
        model, weights, data, fingerprint: what was evaluated, for the results row (set by the caller or
            the ``zoo evaluate`` command; a bundle's name and fingerprint are taken from it).
        published: ``{"top1": ..., "top5": ...}`` of the weights-table entry, when one was used.
        notes: anything a reader should know about the numbers.
    """

    examples: int
    top1: float
    top5: float | None
    loss: float
    confusion: np.ndarray
    class_names: tuple
    images_per_second: float
    batch_size: int
    model: str = ""
    weights: str | None = None
    data: str = ""
    fingerprint: str = ""
    published: dict | None = None
    notes: tuple = ()

    @property
    def per_class(self) -> dict:
        """``{class name: accuracy in percent}`` of the classes that have examples."""
        totals = self.confusion.sum(axis=1)
        return {self.class_names[i]: 100.0 * self.confusion[i, i] / totals[i] for i in np.flatnonzero(totals)}

    def summary(self, *, max_classes=20) -> str:
        """The figures as text: accuracy (beside the published ones), loss, throughput, per-class accuracy,
        and the confusion matrix when there are at most ``max_classes`` classes (else the most frequent
        confusions)."""
        lines = [f"{self.model or 'model'}{f' ({self.weights})' if self.weights else ''} on {self.data or 'data'}: "
                 f"{self.examples:,} examples"]
        for key in ("top1", "top5"):
            value = getattr(self, key)
            if value is None:
                continue
            published = (self.published or {}).get(key)
            beside = f"   published {published:.2f}%  (measured - published {value - published:+.2f})" \
                if published is not None else ""
            lines.append(f"  {key}: {value:6.2f}%{beside}")
        lines.append(f"  loss: {self.loss:.4f}")
        lines.append(f"  throughput: {self.images_per_second:,.1f} images/s (batch {self.batch_size})")
        per_class = self.per_class
        if per_class:
            width = min(max(len(name) for name in per_class), 24)
            lines.append("  per-class accuracy:")
            lines += [f"    {name[:width]:<{width}} {acc:6.2f}%" for name, acc in list(per_class.items())[:max_classes]]
            if len(per_class) > max_classes:
                lines.append(f"    ... {len(per_class) - max_classes} more classes (confusion matrix: --confusion)")
        lines += self._confusion_lines(max_classes)
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _confusion_lines(self, max_classes):
        used = np.flatnonzero(self.confusion.sum(axis=0) + self.confusion.sum(axis=1))
        if 0 < len(used) <= max_classes:
            cells = self.confusion[np.ix_(used, used)]
            width = max(len(str(int(cells.max()))), 3)
            lines = ["  confusion (rows: true, columns: predicted, in the order above):"]
            lines += ["    " + " ".join(f"{int(v):>{width}}" for v in row) for row in cells]
            return lines
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        worst = [divmod(int(i), off.shape[1]) for i in np.argsort(off, axis=None)[::-1][:5]]
        worst = [(t, p) for t, p in worst if off[t, p] > 0]
        if not worst:
            return []
        return ["  most frequent confusions (true -> predicted):"] + [
            f"    {self.class_names[t]} -> {self.class_names[p]}: {int(off[t, p])}" for t, p in worst]

    def row(self) -> dict:
        """One results row: model, weights, data and its fingerprint, the figures, and the versions."""
        from zoo.runtime import environment

        env = environment()
        published = self.published or {}
        return {
            "model": self.model, "weights": self.weights or "", "data": self.data, "fingerprint": self.fingerprint,
            "examples": self.examples, "top1": round(self.top1, 4),
            "top5": "" if self.top5 is None else round(self.top5, 4), "loss": round(self.loss, 6),
            "images_per_second": round(self.images_per_second, 2), "batch_size": self.batch_size,
            "published_top1": published.get("top1", ""), "published_top5": published.get("top5", ""),
            "backend": env["backend"], "versions": json.dumps(env["versions"], sort_keys=True),
            "device": env["host"]["device"],
        }

    def append_csv(self, path) -> str:
        """Append :meth:`row` to the CSV file ``path`` (a header first when the file is new or empty); a file
        whose header has other columns is refused rather than mixed. Returns the path."""
        path = os.fspath(path)
        row = self.row()
        header = None
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), None)
            if header != list(row):
                raise ValueError(f"{path!r} has other columns than an evaluation's results row ({header}); "
                                 f"pass another results file. Received: path={path!r}")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if header is None:
                writer.writeheader()
            writer.writerow(row)
        return path


def _batches(data, split, batch_size):
    """``(batches, name, fingerprint, class names)`` of what :func:`evaluate` takes."""
    from zoo.data import DataBundle

    if isinstance(data, DataBundle):
        return data.dataset(split).as_numpy_iterator(), data.name, data.fingerprint, tuple(data.class_names)
    if isinstance(data, tuple) and len(data) == 2:
        x, y = (np.asarray(a) for a in data)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"`data` must be (x, y) arrays of the same non-zero length. Received: "
                             f"{len(x)} inputs and {len(y)} labels")
        return ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)), "arrays", "", ()
    if hasattr(data, "as_numpy_iterator"):
        return data.as_numpy_iterator(), "dataset", "", ()
    if hasattr(data, "__iter__") and not isinstance(data, (str, bytes, dict)):
        return iter(data), "batches", "", ()
    raise TypeError(f"`data` must be a DataBundle, (x, y) arrays or an iterable of (x, y) batches. "
                    f"Received: data={type(data).__name__}")


def _log_probabilities(outputs):
    """Log-probabilities of a batch of outputs: probabilities when every row is non-negative and sums to one,
    else logits."""
    if (outputs >= 0).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        p = np.clip(outputs, _EPSILON, 1.0 - _EPSILON)
        return np.log(p / p.sum(axis=1, keepdims=True))
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def evaluate(model, data, *, split="test", batch_size=64, class_names=None) -> Evaluation:
    """Top-1/top-5 accuracy, loss, per-class accuracy, confusion matrix and throughput of a classifier.

    Args:
        model: a Keras classifier whose last axis scores the classes (probabilities or logits).
        data: a :class:`~zoo.data.DataBundle` (its ``split``), ``(x, y)`` arrays (in batches of
            ``batch_size``), or an iterable of ``(x, y)`` batches; labels are class indices.
        split: the bundle's split to evaluate.
        batch_size: batch size for arrays.
        class_names: names of the model's outputs (default: the bundle's, else ``class i``).

    Returns:
        an :class:`Evaluation`.

    Raises:
        ValueError: a label outside the model's classes, outputs that are not one row of scores per example,
            or no examples.

    Example:
        >>> bundle = zoo.data.load("digits")
        >>> print(zoo.evaluate(model, bundle).summary())
    """
    from zoo.utils import check_int

    batch_size = check_int("batch_size", batch_size)
    batches, name, fingerprint, bundle_names = _batches(data, split, batch_size)
    classes = model.output_shape[-1]
    if not isinstance(classes, int) or len(model.output_shape) != 2 or classes < 2:
        raise ValueError(f"`model` must output one row of class scores per example (batch, classes >= 2). "
                         f"Received: output_shape={model.output_shape}")
    names = tuple(class_names or (bundle_names if len(bundle_names) == classes else ()))
    names = names or tuple(f"class {i}" for i in range(classes))
    if len(names) != classes:
        raise ValueError(f"`class_names` must name the model's {classes} outputs. Received: {len(names)} names")
    confusion = np.zeros((classes, classes), dtype=np.int64)
    correct5 = 0 if classes > _TOP else None
    loss_sum, seen, timed, seconds, first_seconds, largest = 0.0, 0, 0, 0.0, 0.0, 0
    for x, y in batches:
        y = np.asarray(y).reshape(-1).astype(np.int64)
        start = time.perf_counter()
        outputs = np.asarray(model.predict_on_batch(x), dtype=np.float64)
        elapsed = time.perf_counter() - start
        if outputs.shape != (len(y), classes):
            raise ValueError(f"The model gave outputs of shape {outputs.shape} for a batch of {len(y)} labels; "
                             f"expected ({len(y)}, {classes})")
        bad = (y < 0) | (y >= classes)
        if bad.any():
            raise ValueError(f"Label {int(y[bad][0])} is not one of the model's {classes} classes (0..{classes - 1})")
        if seen:  # the first batch pays the tracing: throughput counts the others
            timed, seconds = timed + len(y), seconds + elapsed
        else:
            first_seconds = elapsed
        np.add.at(confusion, (y, outputs.argmax(axis=1)), 1)
        loss_sum -= float(_log_probabilities(outputs)[np.arange(len(y)), y].sum())
        if correct5 is not None:
            best = np.argpartition(-outputs, _TOP - 1, axis=1)[:, :_TOP]
            correct5 += int((best == y[:, None]).any(axis=1).sum())
        seen, largest = seen + len(y), max(largest, len(y))
    if not seen:
        raise ValueError(f"`data` holds no examples to evaluate (split={split!r})")
    notes = ()
    if not timed:
        timed, seconds = seen, first_seconds
        notes = ("a single batch: its throughput includes the model's tracing",)
    return Evaluation(
        examples=seen, top1=100.0 * np.trace(confusion) / seen,
        top5=None if correct5 is None else 100.0 * correct5 / seen, loss=loss_sum / seen, confusion=confusion,
        class_names=names, images_per_second=timed / max(seconds, 1e-9), batch_size=largest,
        model=getattr(model, "name", ""), data=name, fingerprint=fingerprint, notes=notes,
    )


def _read_class_map(path, model_names):
    """``{folder name: output index}`` from a JSON class map: an object of folder name to an index or to one of
    the model's class names, or an object with ``class_to_index`` (as ``DataBundle.save_class_map`` writes)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such class map file: {path!r}")
    if os.path.getsize(path) > _MAX_CLASS_MAP_BYTES:
        raise ValueError(f"{path!r} is {os.path.getsize(path):,} bytes: too large for a class map")
    try:
        with open(path, encoding="utf-8") as f:
            mapping = json.load(f)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{path!r} is not a JSON class map ({{folder name: class index}}): {e}") from None
    if isinstance(mapping, dict) and isinstance(mapping.get("class_to_index"), dict):
        mapping = mapping["class_to_index"]
    if not isinstance(mapping, dict):
        raise ValueError(f"{path!r} must hold a JSON object {{folder name: class index or name}}. "
                         f"Received: {type(mapping).__name__}")
    by_name = {name: i for i, name in enumerate(model_names)}
    out = {}
    for folder, target in mapping.items():
        index = by_name.get(target) if isinstance(target, str) else target
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(model_names):
            raise ValueError(f"{path!r} maps {folder!r} to {target!r}: not one of the model's "
                             f"{len(model_names)} classes (an index 0..{len(model_names) - 1} or a class name)")
        out[str(folder)] = index
    return out


def class_indices(data_names, model_names, *, class_map=None):
    """The model output each class folder stands for, and how that was decided.

    In order: the ``class_map`` file (JSON ``{folder: index or class name}``); the folders' names being the
    model's class names; their names being output indices (``0``, ``17``, ...); 1,000 WordNet ids
    (``n01440764``, ...) for a 1,000-class model, whose sorted order is ImageNet-1k's class order; as many
    classes as outputs when the model names no classes (in the data's label order: sorted, for folders).
    Anything else cannot be told: a ValueError says which folders are unmatched and asks for a class map.

    Returns:
        ``(indices, how)``: an int array, one model output per folder (in ``data_names``' order), and a
        sentence saying which rule matched.
    """
    data_names, model_names = [str(n) for n in data_names], [str(n) for n in model_names]
    classes = len(model_names)
    if class_map is not None:
        mapping = _read_class_map(class_map, model_names)
        missing = [n for n in data_names if n not in mapping]
        if missing:
            raise ValueError(f"The class map {os.fspath(class_map)!r} does not name the folder(s) "
                             f"{', '.join(map(repr, missing[:5]))}{' ...' if len(missing) > 5 else ''}")
        return np.array([mapping[n] for n in data_names]), f"classes from the class map {os.fspath(class_map)}"
    by_name = {name: i for i, name in enumerate(model_names)}
    if all(n in by_name for n in data_names):
        return np.array([by_name[n] for n in data_names]), "folders matched to the model's class names"
    if all(n.isdigit() and int(n) < classes for n in data_names):
        return np.array([int(n) for n in data_names]), "folder names read as class indices"
    if classes == 1000 and len(data_names) == 1000 and all(_WNID.fullmatch(n) for n in data_names):
        order = sorted(data_names)
        return np.array([order.index(n) for n in data_names]), "WordNet ids in ImageNet-1k's (sorted) order"
    if model_names == [f"class {i}" for i in range(classes)] and len(data_names) == classes:
        return np.arange(classes), "the model names no classes: the data's classes taken in their label order"
    unmatched = [n for n in data_names if n not in by_name]
    raise ValueError(
        f"Cannot tell which of the model's {classes} outputs the class folder(s) "
        f"{', '.join(map(repr, unmatched[:5]))}{' ...' if len(unmatched) > 5 else ''} stand for: their names are "
        f"not the model's class names{' (e.g. ' + repr(model_names[0]) + ')' if model_names else ''}, nor class "
        f"indices. Pass a class map: a JSON file {{folder name: class index or class name}} (zoo evaluate "
        f"--class-map FILE)")
