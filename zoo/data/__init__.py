"""Data for the zoo: embedded offline sets, TensorFlow Datasets, image folders, augmentation, input adaptation.

Everything works without network access: the embedded sets (``digits``,
``shapes``, ``sinusoid``, ``moons``, ``circles``, ``xor``, ``blobs``, ``spirals``) are
the default everywhere, TFDS sets are read only when already prepared, and
image folders are checked file by file before training.

Example:
    >>> import zoo.data
    >>> bundle = zoo.data.load("digits", image_size=32)
    >>> x, y = bundle.arrays("train")
    >>> aug = zoo.data.augmentation("light", flip=None)
"""

from zoo._lazy import lazy_attributes
from zoo.data._common import convert_channels, resize_bilinear
from zoo.data.augment import AUGMENTATION_PRESETS, augment, augmentation
from zoo.data.bundle import DataBundle, standardize
from zoo.data.embedded import (
    SHAPE_CLASSES,
    make_blobs,
    make_circles,
    make_digits,
    make_moons,
    make_shapes,
    make_sinusoid,
    make_spirals,
    make_xor,
)
from zoo.data.folder import IMAGE_EXTENSIONS, BadDataError, FolderReport, scan_folder
from zoo.data.loading import DATASETS, list_datasets, load, reload
from zoo.data.tfds_source import DatasetNotAvailableError, default_data_dir

__all__ = [
    "AUGMENTATION_PRESETS",
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "SHAPE_CLASSES",
    "BackbonePreprocess",
    "BadDataError",
    "ConvertChannels",
    "DataBundle",
    "DatasetNotAvailableError",
    "FolderReport",
    "adapt_inputs",
    "augment",
    "augmentation",
    "convert_channels",
    "default_data_dir",
    "list_datasets",
    "load",
    "reload",
    "make_blobs",
    "make_circles",
    "make_xor",
    "make_digits",
    "make_moons",
    "make_shapes",
    "make_sinusoid",
    "make_spirals",
    "resize_bilinear",
    "scan_folder",
    "standardize",
]

# Keras layers, imported on first use: loading data (an isolated trial's worker starts with it) needs no Keras.
# (No lazy name may be a submodule's name too: importing that submodule would bind the module in its place.)
__getattr__, __dir__ = lazy_attributes(
    __name__, dict.fromkeys(("BackbonePreprocess", "ConvertChannels", "adapt_inputs"), "zoo.data.adapt"), __all__)
