"""Pretrained weights for the zoo's own models: torch checkpoints read without torch, converted exactly.

* :func:`read_checkpoint`: a ``.pth``/``.pt``/``.bin`` (torch zip or legacy format) or
  ``.safetensors`` file as ``{key: numpy array}``; untrusted files are safe to read.
* :func:`load_state_dict`: copy a torchvision or timm state dict into the zoo ResNet,
  VGG, DenseNet or AlexNet of the same architecture, by name, every tensor exactly once.
  Builders do this for you: ``zoo.build("resnet18", weights="resnet18-f37072fd.pth")``.
* :func:`load_pretrained` and the builders' ``weights="torchvision"`` (or ``"timm"``, a tag such
  as ``"IMAGENET1K_V2"``/``"a1_in1k"``): an entry of :func:`weights_table`, fetched into the
  Keras cache once (offline: one clear error within a second), hash-checked and converted.
  The conversion runs once: its result is kept beside the checkpoint as
  ``NAME.zoo.weights.h5`` (:func:`converted_path`), which later builds load instead.
* :func:`imagenet_classes` and :func:`decode_predictions`: the 1,000 ImageNet-1k class
  names (torchvision's list) and the top classes of a batch of predictions;
  :func:`read_images` and :func:`normalization`: the weights' preprocessing.
"""

from __future__ import annotations

import os
import warnings

from zoo.weights.convert import FAMILIES, ConversionReport, infer_family, load_state_dict
from zoo.weights.hub import WeightsDownloadError, cache_dir, fetch, is_weights_spec, resolve, verify, weights_table
from zoo.weights.imagenet import decode_predictions, imagenet_classes, normalization, normalize_dataset, read_images
from zoo.weights.readers import CheckpointError, UnsafeCheckpointError, read_checkpoint

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "CheckpointError",
    "ConversionReport",
    "FAMILIES",
    "UnsafeCheckpointError",
    "WeightsDownloadError",
    "cache_dir",
    "converted_path",
    "fetch",
    "is_weights_spec",
    "load_converted",
    "load_pretrained",
    "normalization",
    "normalize_dataset",
    "read_images",
    "resolve",
    "verify",
    "weights_table",
    "decode_predictions",
    "imagenet_classes",
    "infer_family",
    "is_checkpoint",
    "load_state_dict",
    "read_checkpoint",
]

# Files that builders' ``weights=`` converts (anything else goes to Keras' ``load_weights``).
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


def _save_atomically(model, path):
    temporary = f"{path[: -len('.weights.h5')]}.tmp{os.getpid()}.weights.h5"
    try:
        model.save_weights(temporary)
        os.replace(temporary, path)
    except OSError as e:  # a read-only cache only costs the next build a conversion
        warnings.warn(f"Could not keep the converted weights in {path!r}: {e}", stacklevel=3)
        if os.path.exists(temporary):
            os.remove(temporary)


def load_converted(model, path, *, new_head=False):
    """Load checkpoint ``path`` into ``model``, converting it only the first time.

    The first call converts with :func:`load_state_dict` and, for a whole model (its
    ImageNet head included), keeps the result as :func:`converted_path` ``(path)``; later
    calls load that file with Keras' ``load_weights``. A converted file that is older
    than the checkpoint or does not fit the model is ignored (with a warning) and the
    checkpoint converted again.

    Returns:
        A :class:`ConversionReport`; ``key_style`` is ``"converted"`` when it came from the kept file.
    """
    path = os.fspath(path)
    keep = os.path.join(os.path.dirname(path) or ".", os.path.basename(converted_path(path)))
    whole = not new_head and any(layer.name == "head_predictions" for layer in model.layers)
    if not new_head and os.path.exists(keep) and os.path.getmtime(keep) >= os.path.getmtime(path):
        try:
            model.load_weights(keep)
        except Exception as e:  # Keras raises several types; the checkpoint is the reference
            warnings.warn(f"Ignoring the converted weights {keep!r} ({str(e).splitlines()[0][:200]}); "
                          f"converting {path!r} again.", stacklevel=2)
        else:
            return ConversionReport(source=keep, family=infer_family(model), key_style="converted",
                                    loaded=[layer.name for layer in model.layers if layer.weights])
    report = load_state_dict(model, path, new_head=new_head, source=path)
    if whole:
        _save_atomically(model, keep)
    return report


def load_pretrained(model, spec, *, model_name=None, new_head=False, directory=None):
    """Load the table's pretrained weights ``spec`` into ``model`` (a zoo model of that architecture).

    Args:
        model: e.g. ``zoo.build("resnet18", num_classes=5)``.
        spec: ``"torchvision"``, ``"timm"``, a tag or ``"source:tag"`` (see :func:`resolve`).
        model_name: the registry name; ``model.name`` by default.
        new_head: keep the model's new prediction layer (a different number of classes).
        directory: the cache folder; the Keras cache by default.

    Returns:
        ``(entry, report)``: the table entry and the :class:`ConversionReport`.
    """
    entry = resolve(model_name or model.name, spec)
    path = fetch(entry, directory=directory)
    return entry, load_converted(model, path, new_head=new_head)
