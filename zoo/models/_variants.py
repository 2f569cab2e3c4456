"""Registered variants: :func:`variant` turns a few-line ``def resnet50(**kw)`` into a registered builder.

Every zoo builder takes keyword arguments only, as ``keras.applications`` do. A family
module keeps its variants in tables and writes each registered variant as an explicit,
greppable function whose body says what it builds (``return _imagenet_resnet(50, **kw)``);
:func:`variant` makes it a builder with

* an explicit keyword-only signature (``inspect.signature``, ``help`` and the tuning
  code read its arguments and defaults; ``name`` defaults to the function's name) and
  the function's own ``__name__``, ``__qualname__``, ``__module__`` and docstring;
* the prologue every builder shares: the keras.applications arguments
  (:data:`COMMON_ARGS`) are checked once, by :func:`zoo.utils.check_common` against the
  card's default input shape and minimum input size, before anything is built; a model
  whose weights may not fit in memory is counted dry first; ``weights`` is checked, and a
  table entry fetched, before building too;
* the epilogue: the one place where weights are loaded, :func:`zoo.weights.load`.

The function itself gets the checked arguments but ``weights``. A limit that depends on
another argument (DenseNet's minimum size follows its stem) is left to the family builder,
which checks it after that argument.
"""

from __future__ import annotations

import inspect
import math
import numbers

from zoo import blocks
from zoo import weights as pretrained
from zoo.graph import dry_weight_count
from zoo.registry import get_card, register_model
from zoo.utils import check_bool, check_common, check_initializer, check_weights, check_weights_fit

COMMON_ARGS = ("input_shape", "num_classes", "include_top", "pooling", "classifier_activation", "weights")
# How the docstrings of the staged CNN families with a `width` end (``{name}``: the builder's).
STAGED_DOC_TAIL = """\
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``; ``weights`` is ``None``, a local weights file
            (``.weights.h5``, or a torch/safetensors checkpoint, converted) or, for the
            torchvision architectures, ``"torchvision"``, ``"timm"`` or a tag (``zoo weights list``).
        features_only, out_indices: ``features_only=True`` returns the backbone with one output per stage
            (timm's), the weights loaded; ``out_indices`` chooses them (0 the stem, default every stage);
            :func:`zoo.feature_info` tells their channels and reductions.

    Returns:
        A functional ``keras.Model`` with ``stem_*``, ``stage1_*`` ... and ``head_*`` layers.

    Example:
        >>> model = {name}(input_shape=(32, 32, 3), num_classes=10, width=0.25)
"""


def keras_params(num_classes, *extra, before=()):
    """``(argument, default)`` pairs in the keras.applications order: ``before``, ``input_shape``,
    ``num_classes``, ``include_top``, ``pooling``, ``classifier_activation``, ``extra``, ``weights``
    (:func:`variant` appends ``name``)."""
    return (*before, ("input_shape", None), ("num_classes", num_classes), ("include_top", True),
            ("pooling", None), ("classifier_activation", "softmax"), *extra, ("weights", None))


def _weights_source(card, weights, include_top, num_classes):
    """``weights`` checked before anything is built: what the build's last step loads, or ``None``.

    A name of the weights table (:func:`zoo.weights.is_weights_spec` alone decides what is a name and what a
    file) is resolved for the model, its head checked against the model's (a features-only entry needs
    ``include_top=False``) and its file fetched (from the Keras cache, else downloaded: offline this fails
    within a second), so that the build loads that file; a file must exist.
    """
    if pretrained.is_weights_spec(weights):  # a table name: resolve says which exist when it names none
        entry = pretrained.resolve(card.name, weights)
        pretrained.check_entry_head(entry, weights, model_name=card.name, include_top=include_top,
                                    num_classes=num_classes)
        return pretrained.fetch(entry)
    return check_weights(weights, allow_imagenet="imagenet" in card.weights)


def _looks_large(args, defaults, default_input_shape, factor=4):
    """Whether the weights are worth a dry count (:func:`zoo.graph.dry_weight_count`) before building:
    the input, the classes or a size argument (``width``, ``growth_rate``...) is over ``factor``
    times the reference's. Everything else builds at once."""
    shape = [v or d for v, d in zip(args["input_shape"], default_input_shape)]
    if math.prod(shape) > factor * math.prod(default_input_shape) or args["num_classes"] > 10_000:
        return True
    for key, value in args.items():
        default = defaults.get(key)
        if isinstance(value, tuple) and isinstance(default, tuple):
            numeric = all(isinstance(v, numbers.Real) for v in (*value, *default))
            value, default = (max(value, default=0), max(default, default=0)) if numeric else (None, None)
        if (isinstance(value, numbers.Real) and isinstance(default, numbers.Real) and not isinstance(value, bool)
                and default > 0 and value > factor * default):
            return True
    return False


def _check_features(args, given):
    """``features_only`` and ``out_indices`` checked (and taken out of ``args``) before anything is built;
    ``features_only`` builds the backbone without its head."""
    from zoo.models.features import check_out_indices

    features_only = check_bool("features_only", args.pop("features_only"))
    out_indices = check_out_indices(args.pop("out_indices"))
    if not features_only:
        if out_indices is not None:
            raise ValueError(f"`out_indices` needs features_only=True. Received: out_indices={out_indices}")
        return False, None
    if given.get("include_top") or given.get("pooling") is not None:
        raise ValueError("features_only=True builds the backbone without its head: leave include_top and pooling "
                         f"unset. Received: include_top={given.get('include_top')!r}, pooling={given.get('pooling')!r}")
    args["include_top"], args["pooling"] = False, None
    return True, out_indices


def variant(*, card, params, doc="", checks=None):
    """Register the decorated function as a model: its name, its docstring, the shared prologue and epilogue.

    The function takes the checked arguments as keywords, all but ``weights``, and builds the
    model, e.g. ``def resnet50(**kw): return _imagenet_resnet(50, **kw)``.

    Args:
        card: keyword arguments of :func:`zoo.registry.register_model`.
        params: the builder's ``(argument, default)`` pairs in signature order, without
            ``name``; they include every argument of :data:`COMMON_ARGS`.
        doc: a docstring tail shared by a family's variants (their Args, Returns and Example),
            appended to the function's own docstring; ``{name}`` in it becomes the builder's name.
        checks: overrides of :func:`zoo.utils.check_common`'s settings (``default_input_shape``
            and ``min_size`` are the card's); ``False`` when the function checks every argument
            itself (the MLP, whose input rank and task decide its input shape and classes).

    Returns:
        The decorator; it returns the registered builder.
    """

    def decorator(fn):
        name = fn.__name__
        defaults = dict(params, name=name)
        # Every variant takes `kernel_initializer`: the prologue applies it to all the blocks' layers (see
        # zoo.blocks.kernel_initializer) unless the family builder takes the argument itself.
        contextual = "kernel_initializer" not in defaults
        if contextual:
            defaults = {**{k: v for k, v in defaults.items() if k != "name"}, "kernel_initializer": None,
                        "name": name}
        if set(COMMON_ARGS) - defaults.keys():
            raise ValueError(f"{name}: `params` must hold {COMMON_ARGS}.")
        # ... and `features_only` / `out_indices` (timm's): the epilogue cuts the built backbone at its stages
        defaults = {**{k: v for k, v in defaults.items() if k != "name"}, "features_only": False,
                    "out_indices": None, "name": name}
        settings = {"default_input_shape": card["default_input_shape"], "min_size": card["min_input_size"],
                    **(checks or {})}

        def builder(**kwargs):
            for key in kwargs:
                if key not in defaults:
                    raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            model_card = get_card(name)
            args = {**defaults, **kwargs}
            initializer = args.pop("kernel_initializer") if contextual else None
            if initializer is not None:
                initializer = check_initializer("kernel_initializer", initializer)
            weights = args.pop("weights")
            features_only, out_indices = _check_features(args, kwargs)
            if checks is not False:
                args["input_shape"], args["num_classes"] = check_common(
                    **{k: args[k] for k in COMMON_ARGS if k != "weights"}, **settings)
                if _looks_large(args, defaults, card["default_input_shape"]):
                    given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "weights")
                    check_weights_fit(dry_weight_count(lambda: fn(**args)), what=f"{name} with {given}")
            source = _weights_source(model_card, weights, args["include_top"], args["num_classes"])
            if source == "imagenet":  # keras.applications' own: Keras' constructor loads them, and they shape the
                args["imagenet"], source = True, None  # model it builds (EfficientNet), so the wrapper builds them in
            if "transform_input" in args and args["transform_input"] is None:
                # torchvision's transform_input (GoogLeNet): on for its pretrained weights, which expect it, so on
                # for the table's entries and torch checkpoints, off otherwise (Keras files carry their own layer)
                args["transform_input"] = source is not None and pretrained.is_checkpoint(source)
            with blocks.kernel_initializer(initializer):
                model = fn(**args)
            if source is not None:
                pretrained.load(model, source, card=model_card)
            if features_only:
                from zoo.models.features import multi_scale_model

                model = multi_scale_model(model, out_indices, name=f"{model.name}_features")
            return model

        builder.__name__ = builder.__qualname__ = name
        builder.__module__ = fn.__module__
        builder.__doc__ = (fn.__doc__ or "") + doc.format(name=name)
        builder.__signature__ = inspect.Signature(
            [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in defaults.items()]
        )
        return register_model(**card)(builder)

    return decorator
