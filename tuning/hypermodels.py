"""KerasTuner HyperModels generated from the zoo registry: one per family, plus an architecture choice.

Every search space is declared inside ``build(hp)`` (through :meth:`configure`)
with stable snake_case names and explicit defaults; fixed constraints (input
shape, classes, fixed builder arguments, the training space) go to ``__init__``,
as in keras-tuner's own HyperModels. Models come from :func:`zoo.build`: the
tuning package never copies a builder.

Reference: O'Malley et al., "KerasTuner", https://github.com/keras-team/keras-tuner (2019).

Example:
    >>> data = zoo.data.load("moons")
    >>> hm = make_hypermodel("mlp", input_shape=data.input_shape, num_classes=data.num_classes)
    >>> model = hm.build(keras_tuner.HyperParameters())   # the default configuration
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field

import keras_tuner as kt

import zoo
from tuning.spaces import COMMON_SPACE, FAMILY_ARGUMENTS, FAMILY_SPACES, TrainingSpace, declare
from tuning.trial import data_kwargs
from zoo import training
from zoo.training import TrainingConfig
from zoo.utils import settings_object

__all__ = [
    "TrainingSpace",
    "TrialConfig",
    "ZooHyperModel",
    "FamilyHyperModel",
    "ArchitectureHyperModel",
    "FAMILY_SPACES",
    "families",
    "family_hypermodels",
    "make_hypermodel",
    "resolve_models",
]

def _natural_key(name):
    # resnet18 < resnet20 < resnet101: the shallow variant is the default
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def families() -> dict:
    """``{family: [registered names, smallest first]}`` read from the registry: by the catalogue's parameter
    count (``resnet18`` before ``resnet50``, ``regnet_x_400mf`` before ``regnet_x_1_6gf``), then by name."""
    from zoo.registry import catalogue

    params = {row["name"]: row.get("params", 0) for row in catalogue()}
    out = {}
    for name in zoo.list_models():
        out.setdefault(zoo.get_card(name).family, []).append(name)
    return {f: sorted(names, key=lambda n: (params.get(n, 0), _natural_key(n))) for f, names in sorted(out.items())}


def _accepts(name, argument) -> bool:
    return argument in inspect.signature(zoo.get_card(name).builder).parameters


def _builder_default(name, argument):
    param = inspect.signature(zoo.get_card(name).builder).parameters.get(argument)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def _fits(name, input_shape) -> bool:
    """Whether a registered model can take inputs of ``input_shape``."""
    card = zoo.get_card(name)
    if len(input_shape) == 1:
        return card.has("tabular")
    if not card.has("image") and not card.has("tabular"):
        return False
    if card.has("image") and card.min_input_size is not None:
        return min(input_shape[:2]) >= card.min_input_size
    return True


def resolve_models(models, *, input_shape=None) -> list:
    """Registered names from a pattern, a family name or a list of them (deduplicated, in order).

    With ``input_shape``, names given by a pattern or a family are kept only if
    they fit the input; a name given exactly that does not fit is an error.

    Raises:
        ValueError: nothing matches, or an explicit name does not fit the input.
    """
    items = [models] if isinstance(models, str) else list(models or ())
    if not items or not all(isinstance(m, str) for m in items):
        raise TypeError(f"`models` must be a pattern, a name or a list of them. Received: models={models!r}")
    fams = families()
    names, misfits = [], []
    for item in items:
        exact = item in zoo.list_models()
        found = [item] if exact else (fams.get(item) or sorted(zoo.list_models(item), key=_natural_key))
        if not found:
            raise ValueError(
                f"No registered model or family matches {item!r}. Families: {sorted(fams)}. "
                f"Received: models={models!r}"
            )
        for name in found:
            if input_shape is not None and not _fits(name, tuple(input_shape)):
                if exact:
                    misfits.append(name)
                continue
            if name not in names:
                names.append(name)
    if misfits:
        raise ValueError(
            f"Model(s) {misfits} cannot take inputs of shape {tuple(input_shape)} (see their cards' "
            f"tags and min_input_size). Received: models={models!r}"
        )
    if not names:
        raise ValueError(
            f"No model matching {models!r} takes inputs of shape {tuple(input_shape)}. Received: models={models!r}"
        )
    return names


@dataclass
class TrialConfig:
    """What one set of hyperparameter values means: the model to build and how to train it."""

    model: str
    builder_kwargs: dict
    training: TrainingConfig  # epochs are the search's: set by the runner (``replace(epochs=...)``)
    values: dict = field(default_factory=dict)


class ZooHyperModel(kt.HyperModel):
    """Base of the zoo HyperModels: ``build(hp)`` = declare the space, then :func:`zoo.build`.

    Subclasses implement :meth:`_declare_model` (the model part of the space).
    ``fit(hp, model, ...)`` trains through :func:`zoo.training.fit` with the
    hp-chosen optimizer, schedule and batch size, so these HyperModels also work
    with a stock ``keras_tuner`` tuner; :func:`tuning.search` goes through
    :func:`tuning.trial.run_trial` instead, which records size and speed too.
    """

    def __init__(self, *, input_shape, num_classes=None, task="multiclass", batch_size=32, fixed=None,
                 tiny=False, training=None, name=None, tunable=True):
        super().__init__(name=name, tunable=tunable)
        if not input_shape or not all(isinstance(d, int) and d > 0 for d in input_shape):
            raise ValueError(f"`input_shape` must be a tuple of positive ints. Received: input_shape={input_shape!r}")
        if task not in ("multiclass", "binary", "regression"):
            raise ValueError(f"`task` must be multiclass, binary or regression. Received: task={task!r}")
        if task != "regression" and (not isinstance(num_classes, int) or num_classes < 2):
            raise ValueError(
                f"`num_classes` must be an int >= 2 for task={task!r}. Received: num_classes={num_classes!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
        if fixed is not None and not isinstance(fixed, dict):
            raise TypeError(f"`fixed` must be a dict of builder arguments. Received: fixed={fixed!r}")
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.task = task
        self.batch_size = batch_size
        self.fixed = dict(fixed or {})
        self.tiny = bool(tiny)
        self.training = settings_object(TrainingSpace, training, "training")

    @classmethod
    def from_data(cls, *args, data, **kwargs):
        """Build with the input shape, classes, task and batch size of a :class:`zoo.data.DataBundle`."""
        kwargs.setdefault("input_shape", tuple(data.input_shape))
        kwargs.setdefault("num_classes", data.num_classes)
        kwargs.setdefault("task", data.task)
        kwargs.setdefault("batch_size", data.batch_size)
        return cls(*args, **kwargs)

    @property
    def image(self) -> bool:
        return len(self.input_shape) == 3

    def _base_kwargs(self, name) -> dict:
        """Builder arguments fixed by the data and ``__init__`` (``tiny`` takes the card's test sizes)."""
        kwargs = {}
        if self.tiny:
            kwargs.update({k: v for k, v in zoo.get_card(name).test_kwargs.items() if k != "input_shape"})
        kwargs.update(self.fixed)
        kwargs.update(data_kwargs(name, input_shape=self.input_shape, task=self.task, num_classes=self.num_classes,
                                  num_outputs=kwargs.get("num_outputs", 1)))
        return kwargs

    def _declare_model(self, hp):
        """Declare the model part of the space; returns ``(registered name, builder kwargs)``."""
        raise NotImplementedError

    def configure(self, hp, base=None) -> TrialConfig:
        """Declare the whole space in ``hp`` and return what its current values mean; the training settings
        the space does not vary (epochs, precision, early stopping...) come from ``base``, a TrainingConfig."""
        name, kwargs = self._declare_model(hp)
        train = self.training.declare(hp, batch_size=self.batch_size, image=self.image)
        config = dataclasses.replace(
            base or TrainingConfig(),
            optimizer=train["optimizer"], learning_rate=train["learning_rate"], schedule=train["schedule"],
            weight_decay=train["weight_decay"], batch_size=train["batch_size"],
            augmentation=train.get("augmentation"), augmentation_flip=self.training.augmentation_flip,
            warmup_epochs=self.training.warmup_epochs,
        )
        return TrialConfig(model=name, builder_kwargs=kwargs, training=config, values=dict(hp.values))

    def build(self, hp):
        """Declare the search space and build the chosen zoo model (uncompiled)."""
        config = self.configure(hp)
        return zoo.build(config.model, **config.builder_kwargs)

    def fit(self, hp, model, x=None, y=None, *, validation_data=None, epochs=1, callbacks=(), verbose=0,
            **kwargs):
        """Train ``model`` with the hp-chosen training settings through :func:`zoo.training.fit`."""
        config = self.configure(hp).training.replace(epochs=epochs)
        train = (x, y) if y is not None else x
        if config.augmentation is not None and hasattr(train, "map"):
            import zoo.data

            train = zoo.data.augment(train, config.augmentation, flip=config.augmentation_flip)
        return training.fit(model, train, validation_data, config=config, callbacks=list(callbacks),
                            verbose=verbose, **kwargs)

    def get_config(self) -> dict:
        """The fixed constraints, for the search manifest (what makes two searches the same)."""
        return {
            "class": type(self).__name__,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "task": self.task,
            "batch_size": self.batch_size,
            "fixed": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(self.fixed.items())},
            "tiny": self.tiny,
            "training": self.training.to_config(),
        }


class FamilyHyperModel(ZooHyperModel):
    """The search space of one zoo family: variant (depth), width, dropout and family options.

    Hyperparameters (declared only when the family's builders take them and
    ``fixed`` does not set them): ``variant`` (choice among the family's
    registered names, shallow first), ``width`` (multiplier 0.25-1.0),
    ``dropout`` (0-0.5), plus :data:`FAMILY_SPACES` entries (e.g. the MLP's
    ``hidden_layers``/``hidden_units``), plus the :class:`TrainingSpace`.

    Args:
        family: a registry family, e.g. ``"resnet"`` (see :func:`families`).
        input_shape, num_classes, task, batch_size: fixed by the data (see ``from_data``).
        variants: restrict the ``variant`` choice (registered names of the family).
        fixed: builder arguments fixed for every trial (these are not tuned).
        tiny: start from each card's ``test_kwargs`` (small widths) - for tests and demos.
        training: a :class:`TrainingSpace` (or dict of its fields).
        tune: names of the model hyperparameters to tune (default: all available).
        prefix: prepended to model hyperparameter names (used inside an architecture choice).

    Example:
        >>> hm = FamilyHyperModel("resnet", input_shape=(32, 32, 3), num_classes=10, variants=["resnet20", "resnet32"])
    """

    def __init__(self, family, *, variants=None, tune=None, prefix="", **kwargs):
        super().__init__(**kwargs)
        fams = families()
        if family not in fams:
            raise ValueError(f"Unknown family. Received: family={family!r}. Families: {sorted(fams)}")
        if variants is None:
            variants = [n for n in fams[family] if _fits(n, self.input_shape)]
        else:
            variants = list(variants)
            stray = [v for v in variants if v not in fams[family]]
            if stray:
                raise ValueError(
                    f"{stray} are not registered {family!r} models ({fams[family]}). Received: variants={variants!r}")
        if not variants:
            raise ValueError(f"No {family!r} model takes inputs of shape {self.input_shape}.")
        self.family = family
        self.variants = variants
        self.prefix = prefix
        available = self._available()
        if tune is not None:
            unknown = set(tune) - set(available) - {"variant"}
            if unknown:
                raise ValueError(f"Cannot tune {sorted(unknown)} for {family!r}; available: {['variant', *available]}")
        self.tune = tuple(available) if tune is None else tuple(t for t in available if t in tune)
        self.tune_variant = tune is None or "variant" in tune

    def _available(self) -> dict:
        """Tunable model hyperparameters of this family: name -> (kind, values, default)."""
        fixed = set(self.fixed)
        if self.tiny:
            # a size a card fixes for tests (e.g. width=0.125) is a constraint, not a choice
            for v in self.variants:
                fixed |= set(zoo.get_card(v).test_kwargs)
        out = {}
        for name, (kind, values, default) in COMMON_SPACE.items():
            if name == "width":
                ok = all(zoo.get_card(v).has("width") for v in self.variants)
            else:
                ok = all(_accepts(v, name) for v in self.variants)
            if ok and name not in fixed:
                if default is None:
                    default = _builder_default(self.variants[0], name) or values[0]
                    default = min(max(default, values[0]), values[1])
                out[name] = (kind, values, default)
        for name, (kind, values, default, argument) in FAMILY_SPACES.get(self.family, {}).items():
            if argument not in fixed:
                out[name] = (kind, values, default)
        return out

    def _declare_model(self, hp, *, variant=None):
        if variant is None:
            if self.tune_variant and len(self.variants) > 1:
                variant = hp.Choice(f"{self.prefix}variant", self.variants, default=self.variants[0])
            else:
                variant = self.variants[0]
        kwargs = self._base_kwargs(variant)
        space = self._available()
        values = {name: declare(hp, f"{self.prefix}{name}", *space[name]) for name in self.tune}
        values = FAMILY_ARGUMENTS.get(self.family, lambda v: v)(values)
        kwargs.update(values)
        return variant, kwargs

    def get_config(self) -> dict:
        return {**super().get_config(), "family": self.family, "variants": list(self.variants),
                "tune": list(self.tune), "tune_variant": self.tune_variant, "prefix": self.prefix}


class ArchitectureHyperModel(ZooHyperModel):
    """Architecture choice over several families: ``model`` picks a registered name.

    Each family's own hyperparameters live in a conditional scope on ``model``
    and carry the family as prefix (``resnet_width``, ``mlp_hidden_units``), so
    that they are active only when one of that family's models is chosen.

    Example:
        >>> hm = ArchitectureHyperModel(["convnet", "resnet20"], input_shape=(16, 16, 3), num_classes=10, tiny=True)
    """

    def __init__(self, models, *, tune=None, **kwargs):
        super().__init__(**kwargs)
        self.models = resolve_models(models, input_shape=self.input_shape)
        by_family = {}
        for name in self.models:
            by_family.setdefault(zoo.get_card(name).family, []).append(name)
        shared = dict(input_shape=self.input_shape, num_classes=self.num_classes, task=self.task,
                      batch_size=self.batch_size, fixed=self.fixed, tiny=self.tiny, training=self.training)
        self.members = {
            family: FamilyHyperModel(family, variants=names, tune=tune, prefix=f"{family}_", **shared)
            for family, names in by_family.items()
        }

    def _declare_model(self, hp):
        name = hp.Choice("model", self.models, default=self.models[0]) if len(self.models) > 1 else self.models[0]
        family = zoo.get_card(name).family
        member = self.members[family]
        if len(self.models) == 1:
            return member._declare_model(hp, variant=name)
        with hp.conditional_scope("model", member.variants):
            return member._declare_model(hp, variant=name)

    def get_config(self) -> dict:
        return {**super().get_config(), "models": list(self.models),
                "members": {f: m.get_config() for f, m in self.members.items()}}


def make_hypermodel(models, *, input_shape=None, num_classes=None, task="multiclass", data=None, **kwargs):
    """The HyperModel for a pattern, a family, a name or a list of them.

    Names from one family give a :class:`FamilyHyperModel` (its ``variant``
    choice); several families give an :class:`ArchitectureHyperModel`
    (``model`` choice). A ``keras_tuner.HyperModel`` is returned unchanged.

    Args:
        models: ``"resnet*"``, ``"resnet"``, ``["mlp"]``, ``["convnet", "resnet20"]`` or a HyperModel.
        data: a :class:`zoo.data.DataBundle` giving input shape, classes, task and batch size.
        kwargs: ``fixed``, ``tiny``, ``training``, ``tune`` (see the classes).

    Example:
        >>> hm = make_hypermodel("resnet2*", data=zoo.data.load("shapes", image_size=32), tiny=True)
    """
    if isinstance(models, kt.HyperModel):
        return models
    if data is not None:
        input_shape = input_shape or tuple(data.input_shape)
        num_classes = num_classes or data.num_classes
        task = data.task
        kwargs.setdefault("batch_size", data.batch_size)
    if input_shape is None:
        raise ValueError("Pass `data` or `input_shape` (and `num_classes`). Received: input_shape=None")
    names = resolve_models(models, input_shape=input_shape)
    fams = {zoo.get_card(n).family for n in names}
    common = dict(input_shape=tuple(input_shape), num_classes=num_classes, task=task, **kwargs)
    if len(fams) == 1:
        return FamilyHyperModel(fams.pop(), variants=names, **common)
    return ArchitectureHyperModel(names, **common)


def family_hypermodels(*, input_shape, num_classes=None, **kwargs) -> dict:
    """One :class:`FamilyHyperModel` per registry family that takes ``input_shape``."""
    out = {}
    for family, names in families().items():
        if any(_fits(n, tuple(input_shape)) for n in names):
            out[family] = FamilyHyperModel(family, input_shape=input_shape, num_classes=num_classes, **kwargs)
    return out
