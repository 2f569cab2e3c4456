"""zoo: a Keras 3 model zoo with profiling, data and transfer learning."""

from zoo import data, explain, runtime, training, transfer, weights
from zoo._version import __version__
from zoo.profile import Profile, measure_speed, profile
from zoo.registry import ModelCard, build, get_card, list_models, register_model
from zoo.transfer import (
    feature_extractor,
    fine_tune,
    freeze,
    load_model,
    load_weights,
    replace_head,
    train_head_on_features,
    trainability,
    unfreeze,
)
from zoo.weights import decode_predictions

__all__ = [
    "__version__",
    "ModelCard",
    "Profile",
    "build",
    "data",
    "explain",
    "feature_extractor",
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
