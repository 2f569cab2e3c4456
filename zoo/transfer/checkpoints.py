"""Loading a saved zoo model; weights load through :func:`zoo.weights.load` (``zoo.load_weights``)."""

from __future__ import annotations

import os
import zipfile

import keras

from zoo.weights import LoadReport, load as load_weights
from zoo.weights.readers import CheckpointError, parse_json, read_zip_member

__all__ = ["LoadReport", "load_model", "load_weights"]

MAX_CONFIG_BYTES = 64 << 20  # a .keras file's config.json and metadata.json: a ResNet-152's config is 0.3 MB
MAX_CONFIG_DEPTH = 256  # a functional model's config nests about 12 levels, each nested model a few more
# Keras writes its members uncompressed; one inflating past this multiple of its stored size and the floor is a bomb
MAX_EXPANSION, EXPANSION_FLOOR = 100, 64 << 20


def _check_archive(path):
    """Refuse a ``.keras`` zip whose JSON members are too large or deep, or whose members inflate like a bomb.

    Keras reads ``config.json`` whole and parses it recursively (its own bomb guard starts at 4 GiB), so a
    1 MB file inflating to 1 GiB, or a config nested thousands deep, would reach it; here they fail first.
    """
    if not zipfile.is_zipfile(path):
        return  # Keras says what it is not
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > max(EXPANSION_FLOOR, MAX_EXPANSION * info.compress_size):
                raise ValueError(f"{path}: not a loadable Keras model file ({info.filename} declares "
                                 f"{info.file_size:,} bytes stored in {info.compress_size:,}: a decompression bomb)")
        for name in ("config.json", "metadata.json"):
            info = archive.NameToInfo.get(name)
            if info is None:
                continue
            if info.file_size > MAX_CONFIG_BYTES:
                raise ValueError(f"{path}: not a loadable Keras model file ({name} declares {info.file_size:,} "
                                 f"bytes, over the {MAX_CONFIG_BYTES:,} a model's {name} may have)")
            try:
                parse_json(read_zip_member(archive, info, info.file_size, path=path).tobytes(),
                           max_depth=MAX_CONFIG_DEPTH)
            except CheckpointError as e:
                raise ValueError(f"{path}: not a loadable Keras model file ({e})") from None
            except ValueError as e:
                raise ValueError(f"{path}: not a loadable Keras model file ({name} {e})") from None


def load_model(path, *, compile=True):
    """Load a ``.keras`` file saved from a zoo model, with the zoo's custom layers known to Keras.

    Most zoo models use built-in layers only and load with plain ``keras.saving.load_model``. Two
    kinds need this function (or ``import keras, zoo`` first: ``import zoo`` registers the zoo's layers
    when Keras is already imported, and loads no framework itself): torchvision's VGG/AlexNet on inputs smaller
    than their pooled head (``zoo.layers.AdaptiveAveragePooling2D``, which repeats cells) and
    models with the zoo's input adaptation layers (``zoo transfer`` models that convert channels or
    preprocess for a keras.applications backbone). Keras' ``safe_mode`` stays on: a file that
    would need to run stored code (a ``Lambda``) is refused. Before Keras reads it, ``config.json`` and
    ``metadata.json`` are checked: at most ``MAX_CONFIG_BYTES`` inflated and ``MAX_CONFIG_DEPTH`` levels
    deep, and no member may inflate past ``MAX_EXPANSION`` times its stored size (beyond a 64 MB floor).

    Args:
        path: a ``.keras`` file.
        compile: restore the optimizer and loss too, as ``keras.saving.load_model``.

    Returns:
        The ``keras.Model``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a loadable Keras model file (damaged, too large or deep a config, a zip bomb),
            naming ``path``.

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
    import zoo.data.adapt  # noqa: F401 - registers the input adaptation layers
    import zoo.layers  # noqa: F401 - and the adaptive pooling layer

    try:
        _check_archive(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a loadable Keras model file ({type(e).__name__}: {e})") from None
    try:
        return keras.saving.load_model(path, compile=compile)
    except (ValueError, TypeError, OSError, KeyError) as e:
        raise ValueError(f"{path}: not a loadable Keras model file ({type(e).__name__}: {e})") from None

