"""Search spaces as data: the family hyperparameters, the shared ones, and the training space.

Every name is a stable snake_case hyperparameter name with an explicit default
(declared by :mod:`tuning.hypermodels` inside ``build(hp)``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from zoo import training
from zoo.data import AUGMENTATION_PRESETS
from zoo.training import TrainingConfig
from zoo.utils import settings_object

__all__ = ["COMMON_SPACE", "FAMILY_ARGUMENTS", "FAMILY_SPACES", "NONE", "SEARCHED_TRAINING", "SearchSpace",
           "TrainingSpace", "declare"]

# KerasTuner choices cannot hold None: "none" stands for "no augmentation".
NONE = "none"

# Family-specific hyperparameters, as data:
# name -> (kind, values or (min, max), default, the builder argument it sets).
# A hyperparameter whose builder argument is fixed (``fixed=`` or a tiny card size) is not declared;
# names that are not builder arguments are translated by FAMILY_ARGUMENTS.
FAMILY_SPACES = {
    "mlp": {
        "hidden_layers": ("int", (1, 3), 2, "hidden_units"),
        "hidden_units": ("choice", (16, 32, 64, 128), 64, "hidden_units"),
        "activation": ("choice", ("relu", "gelu", "tanh"), "relu", "activation"),
    },
    "convnet": {
        "convs_per_stage": ("int", (1, 2), 2, "convs_per_stage"),
        "kernel_size": ("choice", (3, 5), 3, "kernel_size"),
        "batch_norm": ("boolean", None, False, "batch_norm"),
    },
}


def _mlp_arguments(values):
    layers = values.pop("hidden_layers", None)
    units = values.pop("hidden_units", None)
    if layers is not None and units is not None:
        values["hidden_units"] = (units,) * layers
    return values


FAMILY_ARGUMENTS = {"mlp": _mlp_arguments}

# Hyperparameters every family gets when its builders take them: name -> (kind, values, default).
# ``None`` as default means "the builder's own default".
COMMON_SPACE = {
    "width": ("float", (0.25, 1.0, 0.25), 1.0),  # needs the card's "width" tag
    "dropout": ("float", (0.0, 0.5, 0.1), None),  # needs a `dropout` builder argument
    "stochastic_depth": ("float", (0.0, 0.5, 0.1), None),  # ConvNeXt, EfficientNet, Swin: a `stochastic_depth` argument
}


def declare(hp, name, kind, values, default):
    """Declare one hyperparameter; a single value is declared ``Fixed``."""
    if kind == "choice":
        values = tuple(values)
        if len(values) == 1:
            return hp.Fixed(name, values[0])
        return hp.Choice(name, list(values), default=values[0] if default is None else default)
    if kind == "int":
        lo, hi = values
        return hp.Fixed(name, lo) if lo == hi else hp.Int(name, lo, hi, default=default)
    if kind == "boolean":
        return hp.Boolean(name, default=bool(default))
    if kind == "float":
        lo, hi, step = values
        default = lo if default is None else default
        if lo == hi:
            return hp.Fixed(name, lo)
        return hp.Float(name, lo, hi, step=step, default=default)
    raise ValueError(f"Unknown hyperparameter kind {kind!r} for {name!r}")


@dataclass(frozen=True)
class TrainingSpace:
    """Training hyperparameters searched for every model, applied through :mod:`zoo.training`.

    Each tuple lists the choices (the first is the default); a one-element tuple
    is declared ``Fixed``.

    Attributes:
        optimizer: names from ``zoo.training.OPTIMIZERS``.
        learning_rate: ``(min, max)`` sampled log-uniformly; equal bounds fix it.
        default_learning_rate: the default, inside the range.
        schedule: names from ``zoo.training.SCHEDULES``.
        weight_decay: decoupled weight decay values.
        batch_size: batch sizes; ``None`` fixes the data's batch size.
        augmentation: presets of ``zoo.data.augmentation`` (``None`` for none);
            only declared for image data.
        augmentation_flip: the flip the presets use (``None`` for digits/text).
        warmup_epochs: warm-up length of the ``warmup`` schedule.
    """

    optimizer: tuple = ("adam", "momentum")
    learning_rate: tuple = (1e-4, 1e-2)
    default_learning_rate: float = 1e-3
    schedule: tuple = ("constant", "cosine")
    weight_decay: tuple = (0.0, 1e-4)
    batch_size: tuple | None = None
    augmentation: tuple = (None,)
    augmentation_flip: str | None = "horizontal"
    warmup_epochs: float = 1.0

    def __post_init__(self):
        for name in ("optimizer", "learning_rate", "schedule", "weight_decay", "batch_size", "augmentation"):
            if isinstance(getattr(self, name), list):  # from JSON
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for opt in self.optimizer:
            if opt not in training.OPTIMIZERS:
                raise ValueError(f"`optimizer` must be in {list(training.OPTIMIZERS)}. Received: optimizer={opt!r}")
        for sched in self.schedule:
            if sched not in training.SCHEDULES:
                raise ValueError(f"`schedule` must be in {list(training.SCHEDULES)}. Received: schedule={sched!r}")
        lo, hi = self.learning_rate
        if not (0 < lo <= hi):
            raise ValueError(
                f"`learning_rate` must be (min, max) with 0 < min <= max. Received: learning_rate={self.learning_rate!r}")
        if not lo <= self.default_learning_rate <= hi:
            raise ValueError(
                f"`default_learning_rate` must lie in {self.learning_rate}. "
                f"Received: default_learning_rate={self.default_learning_rate!r}"
            )
        if not self.optimizer or not self.schedule or not self.weight_decay or not self.augmentation:
            raise ValueError("Every TrainingSpace field needs at least one choice.")
        if self.batch_size is not None and not all(isinstance(b, int) and b > 0 for b in self.batch_size):
            raise ValueError(f"`batch_size` must hold positive ints. Received: batch_size={self.batch_size!r}")
        for preset in self.augmentation:
            if preset is not None and preset not in AUGMENTATION_PRESETS:
                raise ValueError(
                    f"`augmentation` must be None or one of {sorted(AUGMENTATION_PRESETS)}. Received: {preset!r}")

    def declare(self, hp, *, batch_size, image) -> dict:
        """Declare the training hyperparameters in ``hp``; returns the chosen values."""
        lo, hi = self.learning_rate
        values = {
            "optimizer": declare(hp, "optimizer", "choice", self.optimizer, None),
            "learning_rate": hp.Fixed("learning_rate", lo) if lo == hi else hp.Float(
                "learning_rate", lo, hi, sampling="log", default=self.default_learning_rate),
            "schedule": declare(hp, "schedule", "choice", self.schedule, None),
            "weight_decay": declare(hp, "weight_decay", "choice", self.weight_decay, None),
            "batch_size": declare(hp, "batch_size", "choice", self.batch_size or (batch_size,), None),
        }
        if image:
            choices = tuple(NONE if a is None else a for a in self.augmentation)
            chosen = declare(hp, "augmentation", "choice", choices, None)
            values["augmentation"] = None if chosen == NONE else chosen
        return values

    def to_config(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# The TrainingConfig fields a TrainingSpace sets in every trial (those of its fields that TrainingConfig has);
# a search's TrainingConfig gives the others.
SEARCHED_TRAINING = tuple(f.name for f in fields(TrainingSpace) if f.name in {g.name for g in fields(TrainingConfig)})


@dataclass(frozen=True)
class SearchSpace:
    """What a search over zoo models varies and what it holds fixed.

    Attributes:
        training: the :class:`TrainingSpace` (or a dict of its fields) of the training hyperparameters.
        fixed: builder arguments fixed for every trial (``{"width": 0.5}``).
        tiny: build every model at its card's tiny test sizes (quick demos and tests).
        tune: the model hyperparameters to tune (default: every one the family declares).
        hyperparameters: a ``keras_tuner.HyperParameters`` overriding parts of the space.

    Example:
        >>> SearchSpace(training=TrainingSpace(optimizer=("adam",)), fixed={"width": 0.5})
    """

    training: TrainingSpace | dict | None = None
    fixed: dict | None = None
    tiny: bool = False
    tune: tuple | list | None = None
    hyperparameters: object = None

    def __post_init__(self):
        object.__setattr__(self, "training", settings_object(TrainingSpace, self.training, "training"))
        if self.fixed is not None and not isinstance(self.fixed, dict):
            raise TypeError(f"`fixed` must be a dict of builder arguments. Received: fixed={self.fixed!r}")
        if not isinstance(self.tiny, bool):
            raise TypeError(f"`tiny` must be True or False. Received: tiny={self.tiny!r}")

