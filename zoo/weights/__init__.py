"""Pretrained weights for the zoo's own models: torch checkpoints read without torch, converted exactly.

* :func:`load`: the one way weights get into a model, every kind of them (a name of the
  table, a torch/safetensors checkpoint, a ``.weights.h5``/``.keras`` file); builds call it
  for their ``weights=``: ``zoo.build("resnet18", weights="resnet18-f37072fd.pth")``,
  ``zoo.build("resnet50", weights="torchvision")``. A checkpoint is converted once: the result
  is kept beside it as ``NAME.SUFFIX.zoo.weights.h5`` (:func:`converted_path`), which later loads of the same
  content (its SHA-256) read.
* :func:`read_checkpoint`: a ``.pth``/``.pt``/``.bin`` (torch zip or legacy format) or
  ``.safetensors`` file as ``{key: numpy array}``; untrusted files are safe to read.
* :func:`load_state_dict`: copy a torchvision or timm state dict into the zoo ResNet,
  VGG, DenseNet or AlexNet of the same architecture, by name, every tensor exactly once,
  by the family's :class:`KeyRules` (each family's module registers its own).
* :func:`weights_table`, :func:`resolve`, :func:`fetch`: the table's entries (``"torchvision"``,
  ``"timm"``, a tag such as ``"IMAGENET1K_V2"``/``"a1_in1k"``) and their files, fetched into the
  Keras cache once (offline: one clear error within a second) and hash-checked.
* :func:`imagenet_classes` and :func:`decode_predictions`: the 1,000 ImageNet-1k class
  names (torchvision's list) and the top classes of a batch of predictions;
  :func:`read_images` and :func:`normalization`: the weights' preprocessing.
"""

from __future__ import annotations

from zoo.weights.convert import (
    ConversionReport,
    KeyRules,
    infer_family,
    key_rules,
    load_state_dict,
    register_key_rules,
)
from zoo.weights.hub import (
    WeightsDownloadError,
    cache_dir,
    fetch,
    has_classifier,
    is_weights_spec,
    resolve,
    verify,
    weights_table,
)
from zoo.weights.imagenet import decode_predictions, imagenet_classes, normalization, normalize_dataset, read_images
from zoo.weights.loading import (
    CHECKPOINT_SUFFIXES,
    LoadReport,
    check_entry_head,
    converted_path,
    is_checkpoint,
    load,
    load_keras_file,
)
from zoo.weights.readers import CheckpointError, UnsafeCheckpointError, read_checkpoint

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "CheckpointError",
    "ConversionReport",
    "KeyRules",
    "LoadReport",
    "UnsafeCheckpointError",
    "WeightsDownloadError",
    "cache_dir",
    "check_entry_head",
    "converted_path",
    "decode_predictions",
    "fetch",
    "has_classifier",
    "imagenet_classes",
    "infer_family",
    "is_checkpoint",
    "is_weights_spec",
    "key_rules",
    "load",
    "load_keras_file",
    "load_state_dict",
    "normalization",
    "normalize_dataset",
    "read_checkpoint",
    "read_images",
    "register_key_rules",
    "resolve",
    "verify",
    "weights_table",
]
