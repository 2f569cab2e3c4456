"""zoo: a Keras 3 model zoo with profiling, data and transfer learning.

The public names below are imported on first use (PEP 562), so that ``import zoo`` and the modules
that need no framework (``zoo.runtime``, ``zoo.plots``, and with them ``tuning.report`` and the ``zoo``
command's parser) start without loading Keras. ``zoo.load_model(path)`` (or any zoo call that builds,
trains or loads) registers the zoo's Keras layers and losses; so does ``import zoo`` when Keras is
already imported, as in ``import keras, zoo`` before ``keras.saving.load_model``.
"""

import importlib
import sys

from zoo import runtime as _runtime
from zoo._lazy import lazy_attributes
from zoo._version import __version__

# Public name -> the module that defines it.
_ATTRIBUTES = {
    **dict.fromkeys(("Profile", "measure_speed", "profile"), "zoo.profiling"),
    **dict.fromkeys(("ModelCard", "build", "get_card", "list_models", "register_model"), "zoo.registry"),
    **dict.fromkeys(("feature_extractor", "feature_info", "fine_tune", "freeze", "load_model", "load_weights", "replace_head",
                     "train_head_on_features", "trainability", "unfreeze"), "zoo.transfer"),
    "decode_predictions": "zoo.weights",
    "export": "zoo.deploy",
    "evaluate": "zoo.evaluation",
}
# The modules whose import registers the zoo's Keras objects (``zoo>Name``) for ``keras.saving.load_model``.
_KERAS_OBJECTS = ("zoo.layers", "zoo.blocks", "zoo.data.adapt", "zoo.training")

__all__ = [
    "__version__",
    "ModelCard",
    "Profile",
    "build",
    "data",
    "evaluate",
    "explain",
    "export",
    "feature_extractor",
    "feature_info",
    "fine_tune",
    "freeze",
    "get_card",
    "list_models",
    "load_model",
    "load_weights",
    "measure_speed",
    "profile",
    "register_model",
    "runtime",
    "replace_head",
    "train_head_on_features",
    "trainability",
    "training",
    "transfer",
    "unfreeze",
    "weights",
    "decode_predictions",
]


__getattr__, __dir__ = lazy_attributes(__name__, _ATTRIBUTES, __all__)


_runtime.virtual_cpus()  # ZOO_VIRTUAL_CPUS: the host CPU split into devices before the framework starts

if "keras" in sys.modules:  # Keras is loaded already: registering the zoo's objects costs little
    for _module in _KERAS_OBJECTS:
        importlib.import_module(_module)
