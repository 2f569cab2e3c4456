"""One registry of model builders, with a frozen card of metadata per model.

Modelled on torchvision's ``_api.py`` and timm's ``_registry.py``: builders are
registered with a decorator, listed with fnmatch patterns and built by name.

``zoo/models/catalogue.json`` holds the cards' metadata as the registry gives it, written by
``tools/make_catalogue.py``; ``zoo list`` reads it (:func:`catalogue`) instead of importing the model
modules, which import Keras (5.2 s against 0.2 s, BENCHMARKS.md). A test checks that it
equals the registry.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import json
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

__all__ = ["ModelCard", "register_model", "list_models", "build", "get_card", "card_summary", "catalogue"]

CATALOGUE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "catalogue.json")

# Capability flags a card may carry. Tests and reports read these instead of
# keeping their own lists of model names.
KNOWN_TAGS = frozenset(
    {
        "image",  # takes (H, W, C) images
        "tabular",  # takes flat feature vectors
        "pooling",  # honours include_top=False with pooling=None/"avg"/"max"
        "stages",  # layers are grouped into stem/stageN/head by name prefix
        "classic",  # a historical architecture (LeNet, AlexNet)
        "residual",
        "dense_connections",
        "batch_norm",
        "cifar",  # designed for 32x32 inputs
        "imagenet",  # designed for 224x224 inputs
        "width",  # accepts a `width` multiplier
        "keras_applications",  # wraps keras.applications
        "pretrained",  # weights="imagenet" is available (needs network on first use)
        "slow",  # too big to train in the fast test suite even at test_kwargs
    }
)


@dataclass(frozen=True)
class ModelCard:
    """Metadata of one registered model.

    Attributes:
        name: registry name, e.g. ``"resnet18"``.
        family: module-level family, e.g. ``"resnet"``.
        default_input_shape: the shape the reference model was designed for.
        min_input_size: smallest accepted spatial size (``None`` for tabular models).
        reference: the paper or source the layout follows.
        tags: capability flags (see ``KNOWN_TAGS``).
        description: one line for ``zoo list``/``zoo info``.
        test_kwargs: arguments that build a tiny version, used by the test suite
            and by quick demos (small width, small input).
        preprocess_input: input preprocessing expected by pretrained weights,
            or ``None`` when the model takes inputs scaled to [0, 1].
        weights: the named weights its ``weights=`` takes, as torchvision's ``Weights`` enums list
            them: the weights table's entries for the model as ``"source:tag"`` (``zoo weights list``),
            or ``"imagenet"``, Keras' own, for the keras.applications wrappers.
    """

    name: str
    family: str
    default_input_shape: tuple
    min_input_size: int | None
    reference: str
    tags: frozenset = frozenset()
    description: str = ""
    test_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    preprocess_input: Callable | None = field(default=None, compare=False, repr=False)
    weights: tuple = ()
    builder: Callable = field(default=None, compare=False, repr=False)

    def has(self, tag: str) -> bool:
        return tag in self.tags


_REGISTRY: dict[str, ModelCard] = {}


def register_model(
    *,
    family: str,
    default_input_shape: tuple,
    min_input_size: int | None,
    reference: str,
    tags=(),
    description: str = "",
    test_kwargs: Mapping[str, Any] | None = None,
    preprocess_input: Callable | None = None,
    weights: tuple | None = None,
    name: str | None = None,
):
    """Decorator registering a builder under its function name (or ``name``).

    ``weights=None`` lists the weights table's entries for the model (:attr:`ModelCard.weights`).

    Raises:
        ValueError: if the name is already registered or a tag is unknown.
    """
    unknown = set(tags) - KNOWN_TAGS
    if unknown:
        raise ValueError(f"Unknown tags {sorted(unknown)}. Known tags: {sorted(KNOWN_TAGS)}")

    def decorator(fn):
        model_name = name or fn.__name__
        if model_name in _REGISTRY:
            raise ValueError(f"A model named {model_name!r} is already registered.")
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[model_name] = ModelCard(
            name=model_name,
            family=family,
            default_input_shape=tuple(default_input_shape),
            min_input_size=min_input_size,
            reference=reference,
            tags=frozenset(tags),
            description=description or (doc[0] if doc else ""),
            test_kwargs=MappingProxyType(dict(test_kwargs or {})),
            preprocess_input=preprocess_input,
            weights=_table_weights(model_name) if weights is None else tuple(weights),
            builder=fn,
        )
        return fn

    return decorator


def _table_weights(name):
    """``"source:tag"`` of the weights table's entries for model ``name``."""
    from zoo.weights import weights_table  # imported when a model registers: `zoo list` stays light

    return tuple(f"{r['source']}:{r['tag']}" for r in weights_table() if r["model"] == name)


def _ensure_loaded():
    # Importing the families registers them; done lazily so that
    # `zoo.registry` itself has no import cycle with the model modules.
    import zoo.models  # noqa: F401


def list_models(pattern: str = "*", *, tags=()) -> list[str]:
    """Sorted names of registered models matching an fnmatch ``pattern``.

    Args:
        pattern: e.g. ``"resnet*"``; ``"*"`` lists everything.
        tags: only models whose card has every one of these tags.
    """
    _ensure_loaded()
    return _select({n: c.tags for n, c in _REGISTRY.items()}, pattern, tags)


def _select(tags_by_name, pattern, tags) -> list[str]:
    """Sorted names matching ``pattern`` whose tags include every one of ``tags``."""
    if not isinstance(pattern, str):
        raise TypeError(f"`pattern` must be a string. Received: pattern={pattern!r}")
    tags = {tags} if isinstance(tags, str) else set(tags)
    return sorted(n for n, t in tags_by_name.items() if fnmatch.fnmatchcase(n, pattern) and tags <= set(t))


def card_summary(card: ModelCard) -> dict:
    """The card's metadata as JSON values: what ``zoo list`` and ``zoo info`` show, and the catalogue holds."""
    return {"name": card.name, "family": card.family, "default_input_shape": list(card.default_input_shape),
            "min_input_size": card.min_input_size, "reference": card.reference, "tags": sorted(card.tags),
            "description": card.description}


def catalogue(pattern: str = "*", *, tags=()) -> list[dict]:
    """:func:`card_summary` of the registered models matching, as :func:`list_models`, without importing them.

    Read from ``zoo/models/catalogue.json`` (``tools/make_catalogue.py`` writes it from the registry);
    from the registry itself where the file is missing.
    """
    try:
        with open(CATALOGUE_FILE, encoding="utf-8") as f:
            rows = {row["name"]: row for row in json.load(f)}
    except FileNotFoundError:
        return [card_summary(get_card(name)) for name in list_models(pattern, tags=tags)]
    return [rows[name] for name in _select({n: r["tags"] for n, r in rows.items()}, pattern, tags)]


def get_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of a registered model.

    Raises:
        ValueError: unknown name, listing close matches.
    """
    _ensure_loaded()
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string. Received: name={name!r}")
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model name. Received: name={name!r}.{hint} "
            f"All {len(_REGISTRY)} models: zoo.list_models() (`zoo list` on the command line)."
        )
    return _REGISTRY[name]


def build(name: str, *, precision=None, **kwargs):
    """Build a registered model by name; keyword arguments go to its builder.

    Args:
        precision: ``float32``, ``mixed_float16``, ``mixed_bfloat16`` or ``auto``
            (see :func:`zoo.runtime.precision_policy`); ``None`` keeps the
            global Keras dtype policy.

    Example:
        >>> model = build("lenet5", num_classes=10)
        >>> fast = build("resnet50", precision="mixed_bfloat16")
    """
    card = get_card(name)
    from zoo.runtime import is_out_of_memory, precision_policy

    try:
        with precision_policy(precision) if precision is not None else contextlib.nullcontext():
            return card.builder(**kwargs)
    except Exception as e:  # noqa: BLE001 - only running out of memory is rewritten
        if not is_out_of_memory(e) or isinstance(e, (ValueError, TypeError)):
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "its defaults"
        raise ValueError(f"{name} with {given}: its weights do not fit in memory ({type(e).__name__}); "
                         "choose a smaller input_shape, num_classes or width") from None
