"""zoo: a Keras 3 model zoo with profiling, data and transfer learning."""

from zoo import training
from zoo.profile import Profile, measure_speed, profile
from zoo.registry import ModelCard, build, get_card, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "ModelCard",
    "Profile",
    "build",
    "get_card",
    "list_models",
    "measure_speed",
    "profile",
    "register_model",
    "training",
]
