"""Wrappers of ``keras.applications`` backbones with a zoo head and stage names.

Each wrapper builds the application without its top, clones it onto a
``keras.Input`` named ``input`` with every layer's name prefixed by its stage
(``stem_``, ``stage1_``, ...; e.g. ResNet50's ``conv3_block1_1_conv`` becomes
``stage2_conv3_block1_1_conv``) and adds the zoo's ``head_*`` classifier
(global average pool + dense), so that freezing and head replacement work
by name as on the zoo's own families. ``weights="imagenet"`` loads the
backbone's pretrained weights (downloaded by Keras on first use).

With ``include_top=True`` and ``num_classes=1000`` the wrapper keeps Keras' own
ImageNet classifier instead (its layers named ``head_*``: e.g. VGG's ``head_fc1``,
``head_fc2``, ``head_predictions``), so ``weights="imagenet"`` classifies photos
out of the box and ``weights=None`` has the very layout of the ImageNet model.

Reference: the Keras Applications (https://keras.io/api/applications/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import keras

from zoo import blocks
from zoo.models._variants import keras_params, variant
from zoo.utils import check_input_shape, snake_case
from zoo.weights.hub import WeightsDownloadError, keras_cache_dir  # noqa: F401 (re-exported)


# Stage rules per backbone family: (regex matched at the start of a Keras layer
# name, stage). A stage is a name, or a function of the regex's first group.
# Unmatched layers (Keras' auto-named padding/rescaling layers) join the stage
# of the layer before them. Keras' ImageNet classifier layers form the head.
HEAD_RULE = (r"(flatten|fc1|fc2|avg_pool|top_dropout|predictions|global_average_pooling2d)$", "head")
_MOBILENETV2_BLOCK_STAGE = (1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7)  # (t, c, n, s) table rows
STAGE_RULES = {
    "vgg": ((r"block(\d+)_", lambda i: f"stage{i}"),),
    "resnet": (
        (r"(conv1|pool1)_", "stem"),
        (r"conv(\d)_", lambda i: f"stage{i - 1}"),
        (r"post_", "stage4"),
    ),
    "densenet": (
        (r"(conv1|pool1)", "stem"),
        (r"(?:conv|pool)(\d)", lambda i: f"stage{i - 1}"),
        (r"(bn|relu)$", "stage4"),
    ),
    "mobilenetv2": (
        (r"(Conv1|bn_Conv1)", "stem"),
        (r"expanded_conv", "stage1"),
        (r"block_(\d+)_", lambda i: f"stage{_MOBILENETV2_BLOCK_STAGE[i]}"),
        (r"(Conv_1|out_relu)", "stage7"),
    ),
    "efficientnet": (
        (r"stem_", "stem"),
        (r"block(\d)", lambda i: f"stage{i}"),
        (r"top_", "stage7"),
    ),
}


@dataclass(frozen=True)
class AppSpec:
    constructor: Callable
    module: object  # the application's module, for its preprocess_input
    rules: str  # key of STAGE_RULES
    tags: tuple = ("residual", "batch_norm")
    # One training step at 32x32 takes over ~10 s on a 2-core CPU (all but VGG).
    slow: bool = True


_A = keras.applications
_DENSE = ("dense_connections", "batch_norm")
APPLICATIONS = {
    "keras_vgg16": AppSpec(_A.VGG16, _A.vgg16, "vgg", tags=(), slow=False),
    "keras_vgg19": AppSpec(_A.VGG19, _A.vgg19, "vgg", tags=()),
    "keras_resnet50": AppSpec(_A.ResNet50, _A.resnet, "resnet"),
    "keras_resnet101": AppSpec(_A.ResNet101, _A.resnet, "resnet"),
    "keras_resnet152": AppSpec(_A.ResNet152, _A.resnet, "resnet"),
    "keras_resnet50v2": AppSpec(_A.ResNet50V2, _A.resnet_v2, "resnet"),
    "keras_resnet101v2": AppSpec(_A.ResNet101V2, _A.resnet_v2, "resnet"),
    "keras_resnet152v2": AppSpec(_A.ResNet152V2, _A.resnet_v2, "resnet"),
    "keras_densenet121": AppSpec(_A.DenseNet121, _A.densenet, "densenet", tags=_DENSE),
    "keras_densenet169": AppSpec(_A.DenseNet169, _A.densenet, "densenet", tags=_DENSE),
    "keras_densenet201": AppSpec(_A.DenseNet201, _A.densenet, "densenet", tags=_DENSE),
    "keras_mobilenetv2": AppSpec(_A.MobileNetV2, _A.mobilenet_v2, "mobilenetv2"),
    "keras_efficientnetb0": AppSpec(_A.EfficientNetB0, _A.efficientnet, "efficientnet"),
}
DEFAULT_INPUT_SHAPE = (224, 224, 3)
MIN_INPUT_SIZE = 32  # keras.applications refuse smaller inputs


def _stage_names(layers_, rules):
    """``{keras name: stage-prefixed name}``; auto-generated Keras names (which depend
    on how many layers the session created before) become ``{stage}_{kind}[_k]``."""
    stage, seen, names = "stem", {}, {}
    for layer in layers_:
        for pattern, rule in (HEAD_RULE, *rules):
            match = re.match(pattern, layer.name)
            if match:
                stage = rule if isinstance(rule, str) else rule(int(match.group(1)))
                break
        base = layer.name
        kind = snake_case(type(layer).__name__)
        if re.fullmatch(rf"{kind}(_\d+)?", base):
            count = seen[(stage, kind)] = seen.get((stage, kind), -1) + 1
            base = kind if count == 0 else f"{kind}_{count}"
        # EfficientNet's "stem_conv" already carries its stage.
        names[layer.name] = base if base.startswith(f"{stage}_") else f"{stage}_{base}"
    return names


def _staged(backbone, inputs, rules, *, copy_weights):
    """A clone of ``backbone`` on ``inputs`` whose layers carry stage-prefixed names.

    Cloning (rather than renaming in place) gives the variables paths that match
    the new names, as a model rebuilt from its saved config has them.
    """
    body = [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = _stage_names(body, rules)

    def rename(layer):
        return layer.__class__.from_config({**layer.get_config(), "name": names[layer.name]})

    staged = keras.models.clone_model(backbone, input_tensors=inputs, clone_function=rename)
    if copy_weights:
        new = {layer.name: layer for layer in staged.layers}
        for layer in body:
            new[names[layer.name]].set_weights(layer.get_weights())
    return staged


def _download_error(model_name, error):
    message = str(error)
    match = re.search(r"URL fetch failure on (\S+): ", message)
    origin = match.group(1) if match else "?"
    fname = origin.rsplit("/", 1)[-1]
    return WeightsDownloadError(
        f"Could not download the ImageNet weights of {model_name!r}: Keras needs the file {fname!r} "
        f"from {origin}. Without network access, fetch it elsewhere and place it in the Keras cache "
        f"folder {keras_cache_dir()!r} ($KERAS_HOME/models, ~/.keras/models by default), or pass "
        f"weights=None. Cause: {message}"
    )


def _application(*, model_name, input_shape, num_classes, include_top, pooling, classifier_activation, name,
                 imagenet=False):
    """The wrapper of ``APPLICATIONS[model_name]``; ``imagenet``: Keras' ImageNet model, built and loaded by Keras'
    constructor (weights="imagenet" shapes the model: EfficientNet rescales its input once more), its weights copied."""
    spec = APPLICATIONS[model_name]
    if imagenet:  # the pretrained backbones take RGB
        check_input_shape(input_shape, default=input_shape, channels=3)
    keras_top = include_top and num_classes == 1000  # Keras' own ImageNet classifier
    if keras_top and imagenet and tuple(input_shape) != DEFAULT_INPUT_SHAPE:
        raise ValueError(f"{model_name} with weights='imagenet' and its ImageNet classifier (include_top=True, "
                         f"num_classes=1000) takes input_shape={DEFAULT_INPUT_SHAPE}. Received: "
                         f"input_shape={tuple(input_shape)}. Use include_top=False for other sizes.")
    top = {"classifier_activation": classifier_activation} if keras_top else {}
    try:
        backbone = spec.constructor(include_top=keras_top, weights="imagenet" if imagenet else None,
                                    input_shape=input_shape, **top)
    except Exception as e:
        if "URL fetch failure" in str(e):
            raise _download_error(model_name, e) from None
        raise
    inputs = keras.Input(shape=input_shape, name="input")
    staged = _staged(backbone, inputs, STAGE_RULES[spec.rules], copy_weights=imagenet)
    if keras_top:
        return keras.Model(inputs, staged.output, name=name)
    x = blocks.classifier_head(staged.output, num_classes=num_classes, include_top=include_top,
                               pooling=pooling, classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


def _card(model_name):
    spec = APPLICATIONS[model_name]
    return dict(
        family="keras_applications",
        default_input_shape=DEFAULT_INPUT_SHAPE,
        min_input_size=MIN_INPUT_SIZE,
        reference=f"keras.applications.{spec.constructor.__name__} (include_top=False) + zoo head",
        tags=("image", "pooling", "stages", "imagenet", "keras_applications", "pretrained")
        + spec.tags + (("slow",) if spec.slow else ()),
        test_kwargs={"input_shape": (32, 32, 3)},
        preprocess_input=spec.module.preprocess_input,
        weights=("imagenet",),
    )


_ARGS_DOC = """

    Args:
        weights: ``None`` (random), ``"imagenet"`` (Keras' pretrained weights, downloaded
            on first use) or a local file saved from this model. With ``include_top=True``
            and ``num_classes=1000`` the model keeps Keras' ImageNet classifier (pretrained
            with ``"imagenet"``, which then needs 224x224 inputs); otherwise the head is
            the zoo's, freshly initialised.
        input_shape, num_classes, include_top, pooling, classifier_activation, name:
            as in ``keras.applications``.

    Returns:
        A functional ``keras.Model``; preprocess inputs with
        ``zoo.get_card("{name}").preprocess_input``.

    Raises:
        WeightsDownloadError: ``weights="imagenet"`` while offline and not cached.

    Example:
        >>> model = {name}(input_shape=(32, 32, 3), num_classes=10)
    """
_PARAMS = keras_params(1000)


@variant(card=_card("keras_vgg16"), params=_PARAMS, doc=_ARGS_DOC)
def keras_vgg16(**kw):
    """``keras.applications.VGG16`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_vgg16", **kw)


@variant(card=_card("keras_vgg19"), params=_PARAMS, doc=_ARGS_DOC)
def keras_vgg19(**kw):
    """``keras.applications.VGG19`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_vgg19", **kw)


@variant(card=_card("keras_resnet50"), params=_PARAMS, doc=_ARGS_DOC)
def keras_resnet50(**kw):
    """``keras.applications.ResNet50`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_resnet50", **kw)


@variant(card=_card("keras_resnet101"), params=_PARAMS, doc=_ARGS_DOC)
def keras_resnet101(**kw):
    """``keras.applications.ResNet101`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_resnet101", **kw)


@variant(card=_card("keras_resnet152"), params=_PARAMS, doc=_ARGS_DOC)
def keras_resnet152(**kw):
    """``keras.applications.ResNet152`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_resnet152", **kw)


@variant(card=_card("keras_resnet50v2"), params=_PARAMS, doc=_ARGS_DOC)
def keras_resnet50v2(**kw):
    """``keras.applications.ResNet50V2`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_resnet50v2", **kw)


@variant(card=_card("keras_resnet101v2"), params=_PARAMS, doc=_ARGS_DOC)
def keras_resnet101v2(**kw):
    """``keras.applications.ResNet101V2`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_resnet101v2", **kw)


@variant(card=_card("keras_resnet152v2"), params=_PARAMS, doc=_ARGS_DOC)
def keras_resnet152v2(**kw):
    """``keras.applications.ResNet152V2`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_resnet152v2", **kw)


@variant(card=_card("keras_densenet121"), params=_PARAMS, doc=_ARGS_DOC)
def keras_densenet121(**kw):
    """``keras.applications.DenseNet121`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_densenet121", **kw)


@variant(card=_card("keras_densenet169"), params=_PARAMS, doc=_ARGS_DOC)
def keras_densenet169(**kw):
    """``keras.applications.DenseNet169`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_densenet169", **kw)


@variant(card=_card("keras_densenet201"), params=_PARAMS, doc=_ARGS_DOC)
def keras_densenet201(**kw):
    """``keras.applications.DenseNet201`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_densenet201", **kw)


@variant(card=_card("keras_mobilenetv2"), params=_PARAMS, doc=_ARGS_DOC)
def keras_mobilenetv2(**kw):
    """``keras.applications.MobileNetV2`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_mobilenetv2", **kw)


@variant(card=_card("keras_efficientnetb0"), params=_PARAMS, doc=_ARGS_DOC)
def keras_efficientnetb0(**kw):
    """``keras.applications.EfficientNetB0`` backbone with a zoo head and stage-prefixed layer names."""
    return _application(model_name="keras_efficientnetb0", **kw)
