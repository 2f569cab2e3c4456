"""Loading saved weights into a zoo model by layer name, with a report of what loaded and why not."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import keras
import numpy as np

from zoo.utils import snake_case

__all__ = ["LoadReport", "load_model", "load_weights"]


@dataclass
class LoadReport:
    """What :func:`load_weights` loaded and skipped (with reasons)."""

    path: str
    loaded: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (layer name, reason)

    def __str__(self):
        lines = [f"{self.path}: loaded {len(self.loaded)} layer(s), skipped {len(self.skipped)}"]
        lines += [f"  skipped {n}: {why}" for n, why in self.skipped]
        return "\n".join(lines)


def _h5_keys(model):
    """``(layer, key)`` pairs as Keras names layers inside a ``.weights.h5`` file
    (snake-case class name plus a per-model counter, in ``model.layers`` order)."""
    counts, out = {}, []
    for layer in model.layers:
        base = snake_case(type(layer).__name__)
        k = counts.get(base, 0)
        counts[base] = k + 1
        out.append((layer, f"layers/{base}" + (f"_{k}" if k else "")))
    return out


def _assign(layer, arrays, report):
    weights = layer.weights
    if len(arrays) != len(weights):
        report.skipped.append((layer.name, f"{len(arrays)} arrays in file, layer has {len(weights)} weights"))
        return
    bad = [(tuple(w.shape), tuple(a.shape)) for w, a in zip(weights, arrays) if tuple(w.shape) != tuple(a.shape)]
    if bad:
        report.skipped.append((layer.name, f"shape mismatch (layer, file): {bad[0]}"))
        return
    for w, a in zip(weights, arrays):
        w.assign(a)
    report.loaded.append(layer.name)


def load_weights(model, path, *, skip_mismatch=False, verbose=True) -> LoadReport:
    """Load a zoo ``.keras`` checkpoint or a ``.weights.h5`` file into ``model``, layer by layer.

    ``.keras`` files are matched by layer name (zoo names are stable);
    ``.weights.h5`` files by Keras' positional layer keys. Layers whose
    weights differ in count or shape are skipped and reported; unless
    ``skip_mismatch=True`` any skip raises ``ValueError`` listing them (and
    nothing is changed). ``"imagenet"`` weights come through the wrappers
    (``zoo.build("keras_resnet50", weights="imagenet")``).

    Returns:
        A :class:`LoadReport`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file path. Received: path={path!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Weights file does not exist. Received: path={path!r}")
    report = LoadReport(path)
    plan = []  # (layer, arrays)
    if path.endswith(".keras"):
        source = keras.saving.load_model(path, compile=False)
        src = {la.name: la for la in source.layers}
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name not in src:
                report.skipped.append((layer.name, "no layer of that name in the file"))
                continue
            plan.append((layer, [np.array(w) for w in src[layer.name].weights]))
    elif path.endswith(".h5"):
        import h5py

        with h5py.File(path, "r") as f:
            for layer, key in _h5_keys(model):
                if not layer.weights:
                    continue
                if f"{key}/vars" not in f:
                    report.skipped.append((layer.name, f"no {key} in the file"))
                    continue
                group = f[f"{key}/vars"]
                plan.append((layer, [np.array(group[str(i)]) for i in range(len(group))]))
    else:
        raise ValueError(f"`path` must end with .keras or .weights.h5. Received: path={path!r}")
    # check everything first so that a refused load changes nothing
    dry = LoadReport(path)
    for layer, arrays in plan:
        shapes_ok = len(arrays) == len(layer.weights) and all(
            tuple(w.shape) == tuple(a.shape) for w, a in zip(layer.weights, arrays))
        if not shapes_ok:
            _assign(layer, arrays, dry)  # records the reason without assigning
    report.skipped += dry.skipped
    if report.skipped and not skip_mismatch:
        raise ValueError(
            f"Weights in {path!r} do not fit model {model.name!r}: {len(report.skipped)} layer(s) would be "
            f"skipped ({'; '.join(f'{n}: {w}' for n, w in report.skipped[:5])}"
            f"{' ...' if len(report.skipped) > 5 else ''}). Pass skip_mismatch=True to load the rest."
        )
    skipped = {n for n, _ in report.skipped}
    for layer, arrays in plan:
        if layer.name not in skipped:
            _assign(layer, arrays, report)
    if verbose:
        print(report)
    return report


def load_model(path, *, compile=True):
    """Load a ``.keras`` file saved from a zoo model, with the zoo's custom layers known to Keras.

    Most zoo models use built-in layers only and load with plain ``keras.saving.load_model``. Two
    kinds need this function (or ``import keras, zoo`` first: ``import zoo`` registers the zoo's layers
    when Keras is already imported, and loads no framework itself): torchvision's VGG/AlexNet on inputs smaller
    than their pooled head (``zoo.layers.AdaptiveAveragePooling2D``, which repeats cells) and
    models with the zoo's input adaptation layers (``zoo transfer`` models that convert channels or
    preprocess for a keras.applications backbone). Keras' ``safe_mode`` stays on: a file that
    would need to run stored code (a ``Lambda``) is refused.

    Args:
        path: a ``.keras`` file.
        compile: restore the optimizer and loss too, as ``keras.saving.load_model``.

    Returns:
        The ``keras.Model``.

    Example:
        >>> model = zoo.load_model("runs/pets/model.keras")
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a path to a .keras file. Received: path={path!r}")
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"`path` must name a .keras file (weights files go to zoo.load_weights). "
                         f"Received: path={path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path!r}")
    import zoo.data  # noqa: F401 - registers the input adaptation layers
    import zoo.layers  # noqa: F401 - and the adaptive pooling layer

    try:
        return keras.saving.load_model(path, compile=compile)
    except (ValueError, TypeError, OSError, KeyError) as e:
        raise ValueError(f"{path}: not a loadable Keras model file ({type(e).__name__}: {e})") from None

