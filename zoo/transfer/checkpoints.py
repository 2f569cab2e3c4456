"""Loading a saved zoo model; weights load through :func:`zoo.weights.load` (``zoo.load_weights``)."""

from __future__ import annotations

import os

import keras

from zoo.weights import LoadReport, load as load_weights

__all__ = ["LoadReport", "load_model", "load_weights"]


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

