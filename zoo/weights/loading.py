"""One way weights get into a model, :func:`load`, for every kind of weights.

Every build's ``weights=`` ends here (``zoo.build("resnet18", weights=...)`` checks the
argument and fetches a table entry before building, then calls :func:`load`), and so do
``zoo.load_weights``, ``zoo transfer --weights`` and ``zoo predict --weights``:

* a name of the weights table (``"torchvision"``, ``"timm"``, a tag, ``"source:tag"``):
  the entry's checkpoint, fetched into the Keras cache, then as a checkpoint file;
* a torch or safetensors checkpoint (``.pth``, ``.pt``, ``.bin``, ``.safetensors``, in any case):
  converted by its family's key rules (:func:`zoo.weights.load_state_dict`), once: the
  whole model's conversion is kept beside the checkpoint as ``NAME.SUFFIX.zoo.weights.h5``
  (:func:`converted_path`), stamped with the checkpoint's SHA-256 and size, which later loads
  of that very content read instead;
* a Keras file of the model (``.weights.h5``, ``.keras``): layer by layer, with a report
  (:func:`load_keras_file`).

Which of these ``weights`` is, a name or a file, is decided by :func:`zoo.weights.is_weights_spec` alone.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from zoo.utils import snake_case
from zoo.weights.convert import ConversionReport, infer_family, load_state_dict, window_notes
from zoo.weights.hub import entry_for_digest, fetch, has_classifier, is_weights_spec, resolve, sha256_file
from zoo.weights.readers import CHECKPOINT_SUFFIXES

__all__ = ["CHECKPOINT_SUFFIXES", "LoadReport", "check_entry_head", "converted_path", "is_checkpoint", "load",
           "load_keras_file", "save_converted"]

CONVERTED_SUFFIX = ".zoo.weights.h5"  # the kept conversion beside a checkpoint
# What a kept conversion records of the checkpoint it came from (attributes of the file's root group).
_SOURCE_SHA256, _SOURCE_SIZE = "zoo_source_sha256", "zoo_source_size"
_WINDOWS = "zoo_classifier_windows"  # the classifier windows of the conversion (see window_notes)


def is_checkpoint(path) -> bool:
    """Whether ``path`` names a torch or safetensors checkpoint (by its suffix, in any case)."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(CHECKPOINT_SUFFIXES)


def converted_path(path) -> str:
    """Where the converted Keras weights of checkpoint ``path`` are kept: beside it, under its whole name
    (``resnet18-f37072fd.pth`` -> ``resnet18-f37072fd.pth.zoo.weights.h5``), so that ``X.pth`` and
    ``X.safetensors`` never share one. What is kept there is used only for the content it was converted
    from (its SHA-256 and size are recorded in it), never by modification time."""
    return os.fspath(path) + CONVERTED_SUFFIX


def check_entry_head(entry, spec, *, model_name, include_top, num_classes=None, new_head=False):
    """Refuse, before anything is fetched or built, a table entry whose classifier the model would take but cannot.

    Args:
        entry: the table entry (:func:`zoo.weights.resolve`); ``spec``: the name that chose it, for messages.
        include_top: whether the model has the classifier (``head_*`` layers).
        num_classes: the model's classes, when it keeps the entry's head (1000 for ImageNet).
        new_head: the model keeps its own prediction layer (its hidden classifier layers still load).

    Raises:
        ValueError: a features-only entry (:func:`zoo.weights.has_classifier`) with ``include_top=True``,
            whatever the head (its hidden classifier layers hold no values either), or another number of
            classes than the entry's head without ``new_head``.
    """
    if not include_top:
        return
    if not has_classifier(entry):
        raise ValueError(
            f"weights={spec!r} ({entry['source']}:{entry['tag']} of {model_name!r}) are features only: "
            f"{entry['source']} publishes them without a classifier (its values are missing, no ImageNet accuracy). "
            f"Build with include_top=False (a backbone, e.g. for zoo.replace_head). Received: weights={spec!r}, "
            "include_top=True")
    if not new_head and num_classes is not None and num_classes != 1000:
        raise ValueError(
            f"weights={spec!r} with include_top=True needs num_classes=1000 (the checkpoint's head). Received: "
            f"num_classes={num_classes!r}. For another task build with include_top=False, or load them with "
            f"zoo.weights.load(model, {spec!r}, card=zoo.get_card({model_name!r}), new_head=True) to keep the "
            "backbone and a new head."
        )


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
    head = any(layer.name == "head_predictions" for layer in model.layers)
    if is_weights_spec(weights):
        entry = resolve(name, weights)
        # the head's classes are the checkpoint's to say (the conversion lists a mismatch); features-only refused
        check_entry_head(entry, weights, model_name=name, include_top=head, new_head=new_head)
        weights = fetch(entry, directory=directory)
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be a weights name or a file path. Received: weights={weights!r}")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(f"Weights file does not exist. Received: weights={path!r}")
    if is_checkpoint(path):
        family = infer_family(model) if card is None else card.family
        report = _load_checkpoint(model, path, family=family, new_head=new_head, name=name)
    else:
        report = load_keras_file(model, path, skip_mismatch=skip_mismatch)
    if verbose:
        print(report)
    return report


def save_converted(model, path, *, source, report=None):
    """Save ``model``'s weights as ``path`` (a ``.weights.h5`` file), atomically, stamped with the SHA-256 and
    size of checkpoint ``source`` (and the conversion ``report``'s classifier windows), so that loading ``source``
    again reads them instead of converting it (when ``path`` is :func:`converted_path` ``(source)``).

    Raises:
        OSError: the folder is not writable.
    """
    windows = report.windows if report is not None else {}
    _save_stamped(model, os.fspath(path), {**_source_stamp(source), _WINDOWS: json.dumps(windows)})


def _save_stamped(model, path, stamp):
    temporary = f"{path[: -len('.weights.h5')]}.tmp{os.getpid()}.weights.h5"
    try:
        model.save_weights(temporary)
        import h5py

        with h5py.File(temporary, "a") as f:
            f.attrs.update(stamp)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _source_stamp(path):
    """What a kept conversion records of its checkpoint: the content's SHA-256 and the size."""
    return {_SOURCE_SHA256: sha256_file(path), _SOURCE_SIZE: os.path.getsize(path)}


def _kept_stamp(keep):
    """The checkpoint stamp a kept conversion carries (``{}`` without one).

    Raises:
        OSError: the file is damaged (not HDF5).
    """
    import h5py

    with h5py.File(keep, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                for k, v in f.attrs.items() if k in (_SOURCE_SHA256, _SOURCE_SIZE)}


def _load_checkpoint(model, path, *, family, new_head, name):
    """Load checkpoint ``path`` into ``model``, converting it only the first time.

    The first load converts with :func:`load_state_dict` and, for a whole model (its head
    included), keeps the result as :func:`converted_path` ``(path)``, stamped with the
    checkpoint's SHA-256 and size; later loads read that file with Keras' ``load_weights``
    when the checkpoint's content is the stamped one. A kept file of other content (the
    checkpoint changed) is converted again and replaced; one that is damaged or does not fit
    the model is ignored with a warning.

    Returns:
        A :class:`ConversionReport`; ``key_style`` is ``"converted"`` when it came from the kept file.
    """
    keep = converted_path(path)
    whole = not new_head and any(layer.name == "head_predictions" for layer in model.layers)
    stamp = None
    if not new_head:
        stamp = _source_stamp(path)
        entry = entry_for_digest(stamp[_SOURCE_SHA256])  # a file of the table, known by its content
        if entry is not None:
            check_entry_head(entry, os.path.basename(path), model_name=name, include_top=whole)
    if stamp is not None and os.path.exists(keep):
        try:
            fresh = _kept_stamp(keep) == stamp
            if fresh:
                model.load_weights(keep)
        except Exception as e:  # Keras and h5py raise several types; the checkpoint is the reference
            warnings.warn(f"Ignoring the converted weights {keep!r} ({str(e).splitlines()[0][:200]}); "
                          f"converting {path!r} again.", stacklevel=3)
        else:
            if fresh:
                windows = _kept_windows(keep)
                return _noted(ConversionReport(source=keep, family=family, key_style="converted", windows=windows,
                                               loaded=[layer.name for layer in model.layers if layer.weights],
                                               notes=window_notes(model, windows)))
    report = _noted(load_state_dict(model, path, family=family, new_head=new_head, source=path))
    if whole:
        try:
            _save_stamped(model, keep, {**stamp, _WINDOWS: json.dumps(report.windows)})
        except OSError as e:  # a read-only folder only costs the next load a conversion
            warnings.warn(f"Could not keep the converted weights in {keep!r}: {e}", stacklevel=3)
    return report


def _kept_windows(keep):
    """The classifier windows a kept conversion recorded (see :func:`zoo.weights.convert.window_notes`)."""
    import h5py

    with h5py.File(keep, "r") as f:
        text = f.attrs.get(_WINDOWS, "{}")
    windows = json.loads(text.decode() if isinstance(text, bytes) else str(text))
    return {k: tuple(v) for k, v in windows.items()} if isinstance(windows, dict) else {}


def _noted(report):
    for note in report.notes:
        warnings.warn(note, stacklevel=4)
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
    if path.lower().endswith(".keras"):
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
    elif path.lower().endswith(".h5"):
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
