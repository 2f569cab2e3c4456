"""Pretrained weights for the zoo's own models: torch checkpoints read without torch, converted exactly.

* :func:`read_checkpoint`: a ``.pth``/``.pt``/``.bin`` (torch zip or legacy format) or
  ``.safetensors`` file as ``{key: numpy array}``; untrusted files are safe to read.
* :func:`load_state_dict`: copy a torchvision or timm state dict into the zoo ResNet,
  VGG, DenseNet or AlexNet of the same architecture, by name, every tensor exactly once.
  Builders do this for you: ``zoo.build("resnet18", weights="resnet18-f37072fd.pth")``.
* :func:`load_pretrained` and the builders' ``weights="torchvision"`` (or ``"timm"``, a tag such
  as ``"IMAGENET1K_V2"``/``"a1_in1k"``): an entry of :func:`weights_table`, fetched into the
  Keras cache once (offline: one clear error within a second), hash-checked and converted.
* :func:`imagenet_classes` and :func:`decode_predictions`: the 1,000 ImageNet-1k class
  names (torchvision's list) and the top classes of a batch of predictions.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from zoo.weights.convert import FAMILIES, ConversionReport, infer_family, load_state_dict
from zoo.weights.hub import WeightsDownloadError, cache_dir, fetch, is_weights_spec, resolve, verify, weights_table
from zoo.weights.readers import CheckpointError, UnsafeCheckpointError, read_checkpoint

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "CheckpointError",
    "ConversionReport",
    "FAMILIES",
    "UnsafeCheckpointError",
    "WeightsDownloadError",
    "cache_dir",
    "fetch",
    "is_weights_spec",
    "load_pretrained",
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


def is_checkpoint(path) -> bool:
    """Whether ``path`` names a torch or safetensors checkpoint (by its suffix)."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(CHECKPOINT_SUFFIXES)


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
    return entry, load_state_dict(model, path, new_head=new_head, source=path)
