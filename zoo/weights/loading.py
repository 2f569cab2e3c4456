"""One way weights get into a model, :func:`load`, for every kind of weights.

Every build's ``weights=`` ends here (``zoo.build("resnet18", weights=...)`` checks the
argument and fetches a table entry before building, then calls :func:`load`), and so do
``zoo.load_weights``, ``zoo transfer --weights`` and ``zoo predict --weights``:

* a name of the weights table (``"torchvision"``, ``"timm"``, a tag, ``"source:tag"``):
  the entry's checkpoint, fetched into the Keras cache, then as a checkpoint file;
* a torch or safetensors checkpoint (``.pth``, ``.pt``, ``.bin``, ``.safetensors``):
  converted by its family's key rules (:func:`zoo.weights.load_state_dict`), once: the
  whole model's conversion is kept beside the checkpoint as ``NAME.zoo.weights.h5``
  (:func:`converted_path`), which later loads read instead;
* a Keras file of the model (``.weights.h5``, ``.keras``): layer by layer, with a report
  (:func:`load_keras_file`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from zoo.utils import snake_case
from zoo.weights.convert import ConversionReport, infer_family, load_state_dict
from zoo.weights.hub import fetch, is_weights_spec, resolve

__all__ = ["CHECKPOINT_SUFFIXES", "LoadReport", "converted_path", "is_checkpoint", "load", "load_keras_file"]

# Files converted from torch's layout (anything else is a Keras file).
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
CONVERTED_SUFFIX = ".zoo.weights.h5"  # the kept conversion beside a checkpoint


def is_checkpoint(path) -> bool:
    """Whether ``path`` names a torch or safetensors checkpoint (by its suffix)."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(CHECKPOINT_SUFFIXES)


def converted_path(path) -> str:
    """Where the converted Keras weights of checkpoint ``path`` are kept: beside it, as
    ``NAME.zoo.weights.h5`` (``resnet18-f37072fd.pth`` -> ``resnet18-f37072fd.zoo.weights.h5``)."""
    base = os.fspath(path)
    for suffix in CHECKPOINT_SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + CONVERTED_SUFFIX


@dataclass
class LoadReport:
    """What :func:`load_keras_file` loaded and skipped (with reasons)."""

    path: str
    loaded: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (layer name, reason)

    def __str__(self):
        lines = [f"{self.path}: loaded {len(self.loaded)} layer(s), skipped {len(self.skipped)}"]
        lines += [f"  skipped {n}: {why}" for n, why in self.skipped]
        return "\n".join(lines)


def load(model, weights, *, card=None, new_head=False, skip_mismatch=False, directory=None, verbose=False):
    """Load ``weights`` into ``model``: the one path for every kind of weights.

    Args:
        model: a zoo model (or any functional model whose layers carry the zoo's names).
        weights: a name of the weights table (``"torchvision"``, ``"timm"``, ``"IMAGENET1K_V2"``,
            ``"timm:a1_in1k"``; ``zoo weights list``), a torch/safetensors checkpoint, or a
            ``.weights.h5``/``.keras`` file saved from this model (see the module's docstring).
            keras.applications' ``"imagenet"`` weights come with the wrappers' builds only
            (``zoo.build("keras_resnet50", weights="imagenet")``: Keras' constructor loads them).
        card: the model's :class:`zoo.ModelCard` (``zoo.get_card(name)``): its ``name`` looks up
            the table and its ``family`` gives the torch key rules. Without a card the table is
            looked up under ``model.name`` and the family recognised from the layer names
            (:func:`zoo.weights.infer_family`), for models that come without one.
        new_head: torch weights: keep the model's own prediction layer (another number of
            classes) and load the rest.
        skip_mismatch: Keras files: load the layers that fit and report the others instead of
            refusing the file.
        directory: where table entries are cached (the Keras cache by default).
        verbose: print the report.

    Returns:
        A :class:`ConversionReport` (torch weights) or a :class:`LoadReport` (Keras files).

    Raises:
        ValueError: weights that do not fit the model (nothing is assigned then), a file that
            does not exist, an unknown name (listing the model's).
        WeightsDownloadError: a table entry neither cached nor downloadable.

    Example:
        >>> backbone = zoo.build("resnet18", num_classes=5)
        >>> zoo.weights.load(backbone, "torchvision", card=zoo.get_card("resnet18"), new_head=True)
    """
    name = model.name if card is None else card.name
    if weights == "imagenet":
        raise ValueError(f"weights='imagenet' are Keras' own, loaded by the keras.applications wrappers' builds: "
                         f"zoo.build({name!r}, weights='imagenet'). Received: weights='imagenet'")
    if is_weights_spec(weights):
        weights = fetch(resolve(name, weights), directory=directory)
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be a weights name or a file path. Received: weights={weights!r}")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(f"Weights file does not exist. Received: weights={path!r}")
    if is_checkpoint(path):
        family = infer_family(model) if card is None else card.family
        report = _load_checkpoint(model, path, family=family, new_head=new_head)
    else:
        report = load_keras_file(model, path, skip_mismatch=skip_mismatch)
    if verbose:
        print(report)
    return report


def _save_atomically(model, path):
    temporary = f"{path[: -len('.weights.h5')]}.tmp{os.getpid()}.weights.h5"
    try:
        model.save_weights(temporary)
        os.replace(temporary, path)
    except OSError as e:  # a read-only folder only costs the next load a conversion
        warnings.warn(f"Could not keep the converted weights in {path!r}: {e}", stacklevel=4)
        if os.path.exists(temporary):
            os.remove(temporary)


def _load_checkpoint(model, path, *, family, new_head):
    """Load checkpoint ``path`` into ``model``, converting it only the first time.

    The first load converts with :func:`load_state_dict` and, for a whole model (its
    head included), keeps the result as :func:`converted_path` ``(path)``; later loads read
    that file with Keras' ``load_weights``. A kept file older than the checkpoint or that
    does not fit the model is ignored (with a warning) and the checkpoint converted again.

    Returns:
        A :class:`ConversionReport`; ``key_style`` is ``"converted"`` when it came from the kept file.
    """
    keep = converted_path(path)
    whole = not new_head and any(layer.name == "head_predictions" for layer in model.layers)
    if not new_head and os.path.exists(keep) and os.path.getmtime(keep) >= os.path.getmtime(path):
        try:
            model.load_weights(keep)
        except Exception as e:  # Keras raises several types; the checkpoint is the reference
            warnings.warn(f"Ignoring the converted weights {keep!r} ({str(e).splitlines()[0][:200]}); "
                          f"converting {path!r} again.", stacklevel=3)
        else:
            return ConversionReport(source=keep, family=family, key_style="converted",
                                    loaded=[layer.name for layer in model.layers if layer.weights])
    report = load_state_dict(model, path, family=family, new_head=new_head, source=path)
    if whole:
        _save_atomically(model, keep)
    return report


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


def _fits(layer, arrays):
    """Why ``arrays`` cannot be ``layer``'s weights, or ``None`` when they can."""
    if len(arrays) != len(layer.weights):
        return f"{len(arrays)} arrays in file, layer has {len(layer.weights)} weights"
    bad = [(tuple(w.shape), tuple(a.shape)) for w, a in zip(layer.weights, arrays) if tuple(w.shape) != tuple(a.shape)]
    return f"shape mismatch (layer, file): {bad[0]}" if bad else None


def load_keras_file(model, path, *, skip_mismatch=False) -> LoadReport:
    """Load a ``.keras`` file or a ``.weights.h5`` file saved from a zoo model into ``model``, layer by layer.

    ``.keras`` files are matched by layer name (zoo names are stable); ``.weights.h5`` files by
    the keys Keras gives layers there (class name and counter, in layer order). Layers whose
    weights differ in count or shape are skipped and reported; unless ``skip_mismatch=True``
    any skip raises ``ValueError`` listing them, and nothing is changed.

    Returns:
        A :class:`LoadReport`.
    """
    path = os.fspath(path)
    report = LoadReport(path)
    plan = []  # (layer, arrays)
    if path.endswith(".keras"):
        import keras

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
        raise ValueError(f"A weights file must be a torch/safetensors checkpoint "
                         f"({', '.join(CHECKPOINT_SUFFIXES)}), a .weights.h5 or a .keras file. Received: {path!r}")
    # everything is checked first, so that a refused load changes nothing
    report.skipped += [(layer.name, why) for layer, arrays in plan if (why := _fits(layer, arrays))]
    if report.skipped and not skip_mismatch:
        raise ValueError(
            f"Weights in {path!r} do not fit model {model.name!r}: {len(report.skipped)} layer(s) would be "
            f"skipped ({'; '.join(f'{n}: {w}' for n, w in report.skipped[:5])}"
            f"{' ...' if len(report.skipped) > 5 else ''}). Pass skip_mismatch=True to load the rest."
        )
    skipped = {n for n, _ in report.skipped}
    for layer, arrays in plan:
        if layer.name not in skipped:
            for w, a in zip(layer.weights, arrays):
                w.assign(a)
            report.loaded.append(layer.name)
    return report
