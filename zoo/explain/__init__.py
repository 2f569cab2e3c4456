"""See what a network learned: Grad-CAM, saliency maps, feature maps, filters, gradient and activation statistics.

Every gradient goes through :func:`_gradients` (or :func:`_weight_gradients`), the backend-specific functions
(TensorFlow's ``GradientTape``, ``jax.grad``, ``torch.autograd``), and every tensor comes back to NumPy through
:func:`_numpy`; everything else is ``keras.ops`` and NumPy, so the maps are the same on every backend. Models
are called with ``training=False`` (BatchNorm in inference mode).

References: Selvaraju et al. 2017 (Grad-CAM), Chattopadhay et al. 2018 (Grad-CAM++), Simonyan et al. 2014
(gradient saliency), Smilkov et al. 2017 (SmoothGrad), Sundararajan et al. 2017 (integrated gradients),
Adebayo et al. 2018 (sanity checks of saliency maps).

Example:
    >>> maps = zoo.explain.grad_cam(model, images)           # (N, H, W) in [0, 1], at the input's size
    >>> zoo.explain.plot_overlays(images, maps, "gradcam.png")
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops

from zoo.explain.plots import _constant, plot_gradient_norms, plot_maps, plot_overlays
from zoo.layers import TokensToMap
from zoo.models.features import _exits, feature_units
from zoo.transfer.heads import _feature_layer
from zoo.transfer.recipes import _head_model
from zoo.transfer.stages import _layers, list_stages, stage_of
from zoo.utils import check_choice, check_float, check_int

__all__ = ["ConstantMapWarning", "activation_stats", "feature_maps", "filters", "grad_cam", "gradient_stats",
           "plot_filters", "plot_gradient_norms", "plot_maps", "plot_overlays", "saliency"]

GRAD_CAM_METHODS = ("gradcam", "gradcam++")


def _check_model(model):
    """Refuse what is not a model that has been given its inputs, naming it, before any work."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model (zoo.build(name), zoo.load_model(path)). "
                        f"Received: model={model!r}"[:300])
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(f"`model` {model.name!r} has no inputs yet (a Sequential never built or called): give it "
                         "a keras.Input first, or call model.build(input_shape)")
SALIENCY_METHODS = ("gradient", "smoothgrad", "integrated_gradients")


class ConstantMapWarning(UserWarning):
    """A Grad-CAM map is the same everywhere (e.g. all zero): it shows no location."""


# ----------------------------------------------------------------------------- the backend-specific pieces

def _numpy(x, dtype=None):
    """A backend tensor or Keras variable as a NumPy array (optionally cast to ``dtype``).

    ``np.asarray`` is not enough on torch: a model's outputs track gradients (its weights do), and torch
    refuses ``numpy()`` on such a tensor (or on one in GPU memory); ``keras.ops.convert_to_numpy`` detaches
    and copies to the host. A variable is read through its value: its ``__array__`` would hit the same refusal.
    """
    if isinstance(x, keras.Variable):
        x = x.value
    x = ops.convert_to_numpy(x)
    return x if dtype is None else x.astype(dtype, copy=False)


def _gradients(function, x):
    """``(function(x), d sum(function(x)) / dx)`` as NumPy arrays; ``x`` is a float array.

    ``function`` maps a batch to one score per example; examples do not interact (inference mode), so
    the gradient of the sum is each example's own gradient.
    """
    backend = keras.backend.backend()
    x = np.asarray(x, dtype="float32")
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
            total = tf.reduce_sum(y)
        return _numpy(y), _numpy(tape.gradient(total, x))
    if backend == "jax":
        import jax

        def total(v):
            y = function(v)
            return jax.numpy.sum(y), y

        (_, y), grad = jax.value_and_grad(total, has_aux=True)(jax.numpy.asarray(x))
        return _numpy(y), _numpy(grad)
    if backend == "torch":
        import torch

        v = ops.convert_to_tensor(x).detach().requires_grad_(True)
        with torch.enable_grad():
            y = function(v)
            # autograd.grad, not backward(): the model's weights keep no .grad from an explanation
            (grad,) = torch.autograd.grad(y.sum(), v)
        return _numpy(y), _numpy(grad)
    raise ValueError(f"Gradients are implemented for the tensorflow, jax and torch backends. Received: {backend!r}")


def _weight_gradients(model, loss_fn, x, y):
    """``(loss, [d loss / d w for w in model.trainable_weights])`` for one batch, in inference mode."""
    backend = keras.backend.backend()
    weights = model.trainable_weights
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=False))
        return float(_numpy(loss)), [_numpy(g) if g is not None else np.zeros(w.shape) for w, g in
                                     zip(weights, tape.gradient(loss, [w.value for w in weights]))]
    if backend == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def compute(trainable):
            out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return loss_fn(y, out)

        loss, grads = jax.value_and_grad(compute)([v.value for v in model.trainable_variables])
        by_id = {id(v): g for v, g in zip(model.trainable_variables, grads)}
        return float(_numpy(loss)), [_numpy(by_id[id(w)]) for w in weights]
    if backend == "torch":
        import torch

        with torch.enable_grad():
            loss = loss_fn(ops.convert_to_tensor(y), model(ops.convert_to_tensor(x), training=False))
            grads = torch.autograd.grad(loss, [w.value for w in weights], allow_unused=True)
        return float(_numpy(loss)), [_numpy(g) if g is not None else np.zeros(w.shape) for w, g in zip(weights, grads)]
    raise ValueError(f"Gradients are implemented for the tensorflow, jax and torch backends. Received: {backend!r}")


# ----------------------------------------------------------------------------- helpers

def _images(images, model):
    x = np.asarray(images, dtype="float32")
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim == len(expected):
        x = x[None]
    if x.ndim != len(expected) + 1 or any(e is not None and e != d for e, d in zip(expected, x.shape[1:])):
        raise ValueError(f"`images` must be a batch of shape (N, *{expected}). Received shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("`images` hold NaN or infinite values")
    return x


def _logits(head, features):
    """The head's class scores before its final softmax/sigmoid (Grad-CAM differentiates those)."""
    layers_ = head.layers[1:]
    x = features
    for layer in layers_[:-1]:
        x = layer(x, training=False)
    last = layers_[-1]
    if isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "linear") != "linear":
        x = ops.matmul(x, ops.cast(last.kernel, x.dtype))
        return x + ops.cast(last.bias, x.dtype) if last.use_bias else x
    if isinstance(last, keras.layers.Activation):  # a separate softmax: its input is the logits
        return x
    return last(x, training=False)


def _classes(model, x, class_index):
    """One class per image: given (int or per-image), else the predicted one."""
    if class_index is None:
        return np.argmax(_numpy(model.predict_on_batch(x)), axis=-1)
    classes = np.broadcast_to(np.asarray(class_index), (len(x),))
    units = model.output.shape[-1]
    if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() >= units:
        raise ValueError(f"`class_index` must be an int in [0, {units}) or one per image. Received: {class_index!r}")
    return classes.astype("int64")


_POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D,
            keras.layers.GlobalMaxPooling2D, keras.layers.ZeroPadding2D)  # padding: a map's zero border


def _spatial(layer):
    """True for a 4-D map that is not known to be 1x1: Grad-CAM over a 1x1 map is one number per image, so the
    map it gives is constant (LeNet-5's C5 is 1x1 on a 32x32 input)."""
    shape = layer.output.shape
    return len(shape) == 4 and not (shape[1] == 1 and shape[2] == 1)


def _head(model, feature):
    """A function from ``feature``'s maps to the model's class scores before its final softmax/sigmoid.

    A chain of layers after ``feature`` (every zoo head) is re-applied layer by layer; otherwise the
    model's own graph from ``feature`` is used (residual and dense connections after it included), which
    needs every path from the input to the output to pass through ``feature`` (ValueError otherwise)."""
    try:
        chain = _head_model(model, feature)
        return lambda a: _logits(chain, a)
    except ValueError:
        pass
    last = _layers(model)[-1]
    dense = isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "linear") != "linear"
    strip = dense or isinstance(last, keras.layers.Activation)
    try:
        body = keras.Model(feature.output, last.input if strip else model.outputs[0])
    except ValueError:
        raise ValueError(f"Grad-CAM over {feature.name!r}: the output of {model.name!r} does not depend on the input "
                         "through that layer alone (a connection bypasses it); choose a layer every path passes "
                         "through, e.g. a block's output") from None

    def head(a):
        x = body(a, training=False)
        if dense:
            x = ops.matmul(x, ops.cast(last.kernel, x.dtype))
            x = x + ops.cast(last.bias, x.dtype) if last.use_bias else x
        return x

    return head


def _cut_point(model, candidates):
    """``(layer, head)`` for the last of ``candidates`` (up to three) that every path to the output passes."""
    for feature in reversed(candidates[-3:]):
        try:
            return feature, _head(model, feature)
        except ValueError:  # a residual/dense connection crosses it: not a cut point
            continue
    return None


def _cam_layer(model, layer):
    """``(feature layer, head)``: ``layer``, else the last convolutional map with spatial extent (more than
    1x1) of the last stage that has one (its last 4-D output that is not a pooling, so the map keeps the
    stage's resolution) that every path to the output passes through, else the layer feeding the head
    (or, when that is 1x1, the last earlier map with extent that every path passes)."""
    if layer is not None:
        feature = _feature_layer(model, layer)
        return feature, _head(model, feature)
    layers_ = _layers(model)
    tokens = _token_layer(model)
    if tokens is not None:
        return tokens, _head(model, tokens)
    for stage in reversed([s for s in list_stages(model) if s.startswith("stage")]):
        candidates = [la for la in layers_ if stage_of(la.name) == stage and _spatial(la)
                      and not isinstance(la, _POOLING)]
        found = _cut_point(model, candidates) if candidates else None
        if found:
            return found
        # no cut point at the stage's end (Inception v3 at 75 px: only its last stage's first module has maps
        # larger than 1x1, inside its branches): the stage before
    feature = _feature_layer(model)
    if len(feature.output.shape) == 4 and not _spatial(feature):
        earlier = [la for la in layers_[: layers_.index(feature)] if _spatial(la) and not isinstance(la, _POOLING)]
        found = _cut_point(model, earlier)
        if found:
            return found
    return feature, _head(model, feature)


def _token_layer(model):
    """A transformer with one stage of blocks (ViT): the input of its last block (the previous block's
    output, or the stem's), which every path passes. Its class token reaches the head only through the last
    block's attention, so the gradients at the patch tokens of the last block's *output* are zero; the last
    block's input is where they are not (as in pytorch-grad-cam's ViT recipe). ``None`` for other models."""
    units = feature_units(model)
    blocks = [i for i in units if i > 0]
    if not blocks or "_block" not in units[blocks[-1]]:
        return None
    exits = _exits(model)
    before = units[blocks[-2]] if len(blocks) > 1 else units.get(0)
    layer = exits.get(before)
    return layer if layer is not None and len(layer.output.shape) == 3 else None


def _as_maps(values, layer, image):
    """A token sequence ``(N, prefix + h * w, C)`` as maps ``(N, h, w, C)`` (the prefix tokens dropped); 4-D
    values as they are."""
    if values.ndim != 3:
        return values
    grid = TokensToMap.for_tokens(layer.output, image, name=layer.name)
    return values[:, grid.prefix:].reshape(len(values), *grid.grid, values.shape[-1])


def _select(scores, classes):
    return ops.sum(scores * ops.one_hot(ops.convert_to_tensor(classes), scores.shape[-1], dtype=scores.dtype), axis=-1)


def _resize(maps, size):
    """(N, h, w) maps bilinearly resized to ``size`` = (H, W)."""
    if maps.shape[1:] == tuple(size):
        return maps
    return _numpy(ops.image.resize(maps[..., None], size, interpolation="bilinear"))[..., 0]


def _normalise(maps):
    """Each map scaled to [0, 1] (a map that is all zero stays zero)."""
    top = maps.reshape(len(maps), -1).max(axis=1)
    return maps / np.where(top > 0, top, 1.0)[:, None, None]


# ----------------------------------------------------------------------------- Grad-CAM and saliency

def grad_cam(model, images, class_index=None, *, layer=None, method="gradcam", upsample=True, normalize=True):
    """Class activation maps (Grad-CAM; Grad-CAM++ with ``method="gradcam++"``).

    Grad-CAM: the gradients of the class score (before softmax) with respect to a layer's feature maps,
    averaged over space, weight the maps; their weighted sum, through a ReLU, is the map.

    Args:
        model: a functional Keras model whose head is a chain of layers after ``layer`` (every zoo CNN
            and wrapper).
        images: one image or a batch, as the model takes them.
        class_index: the class to explain, one per image, or ``None`` for the predicted class.
        layer: the feature layer; default: the last convolutional map with spatial extent (larger than
            1x1) of the last stage that has one (found from the zoo's stage names; the layer feeding the
            head when the model has none). On LeNet-5 at 32x32 that is C3 (``stage2``, 10x10): C5 is 1x1.
            On a transformer with one stage of blocks (ViT), the input of its last block: its patch tokens,
            laid out as the patch grid (the class token dropped), are the maps.
        upsample: resize the maps to the input's height and width (bilinear); else the layer's size.
        normalize: scale each map to [0, 1].

    Returns:
        ``(N, H, W)`` float32 maps.

    Raises:
        ValueError: the layer's maps are 1x1 (its Grad-CAM map would be the same everywhere), or not 4-D.

    A map that still comes out constant (every weighted map negative, so the ReLU leaves zeros) is not a
    location: a :class:`ConstantMapWarning` names those images, and :func:`plot_overlays` draws them
    untinted, with a note.

    Example:
        >>> maps = grad_cam(model, images)            # (N, H, W) in [0, 1]
    """
    _check_model(model)
    check_choice("method", method, GRAD_CAM_METHODS)
    x = _images(images, model)
    feature, head = _cam_layer(model, layer)
    if len(feature.output.shape) not in (3, 4):
        raise ValueError(f"Grad-CAM needs a layer with (height, width, channels) maps or a transformer's tokens; "
                         f"{feature.name!r} outputs {tuple(feature.output.shape)}. Received: layer={layer!r}")
    features = _numpy(keras.Model(model.inputs[0], feature.output)(x, training=False))
    image = tuple(x.shape[1:3])
    if features.ndim == 3:  # tokens: the maps of the patch grid (raises when the tokens tile no grid)
        _as_maps(features, feature, image)
    if features.ndim == 4 and features.shape[1] * features.shape[2] == 1:
        hint = ("leave `layer=None` for the last map with extent" if layer is not None
                else f"{model.name!r} has no convolutional map larger than 1x1 at this input size")
        raise ValueError(f"Grad-CAM over {feature.name!r} would be constant: its maps are 1x1, so they hold no "
                         f"location; {hint}. Received: layer={layer!r}")
    classes = _classes(model, x, class_index)
    scores, grads = _gradients(lambda a: _select(head(a), classes), features)
    features, grads = _as_maps(features, feature, image), _as_maps(grads, feature, image)
    if method == "gradcam":
        weights = grads.mean(axis=(1, 2))
    else:  # Grad-CAM++ closed form for an exponential score (Chattopadhay et al. 2018, eq. 19)
        g2, g3 = grads ** 2, grads ** 3
        denominator = 2 * g2 + features.sum(axis=(1, 2), keepdims=True) * g3
        alpha = np.where(denominator != 0, g2 / np.where(denominator != 0, denominator, 1), 0)
        weights = (alpha * np.maximum(grads, 0)).sum(axis=(1, 2))
    maps = np.maximum(np.einsum("nhwc,nc->nhw", features, weights), 0).astype("float32")
    constant = np.flatnonzero(_constant(maps))
    if len(constant):
        zero = all(not maps[i].any() for i in constant)
        warnings.warn(f"Grad-CAM over {feature.name!r} gives a constant map ({'all zero' if zero else 'one value'}"
                      f") for {len(constant)} of {len(maps)} image(s) (indices {constant[:10].tolist()}"
                      f"{' ...' if len(constant) > 10 else ''}): it shows no location; plot_overlays draws "
                      "them untinted, with a note", ConstantMapWarning, stacklevel=2)
    if upsample:
        maps = _resize(maps, x.shape[1:3])
    return _normalise(maps) if normalize else maps


def saliency(model, images, class_index=None, *, method="gradient", samples=25, noise=0.15, steps=32,
             baseline=None, seed=0):
    """Pixel attribution maps: ``|d score / d pixel|``, maximum over channels.

    Args:
        method: ``"gradient"`` (Simonyan et al.), ``"smoothgrad"`` (the gradient averaged over ``samples``
            copies with Gaussian noise of ``noise`` times the image's value range), or
            ``"integrated_gradients"`` (the gradient averaged over ``steps`` points on the straight path from
            ``baseline``, zeros by default, times the image minus the baseline).
        class_index: as for :func:`grad_cam`.

    Returns:
        ``(N, H, W)`` maps scaled to [0, 1].
    """
    _check_model(model)
    check_choice("method", method, SALIENCY_METHODS)
    samples = check_int("samples", samples, maximum=1000)
    steps = check_int("steps", steps, maximum=1000)
    noise = check_float("noise", noise, minimum=0.0)
    x = _images(images, model)
    classes = _classes(model, x, class_index)

    def score(v):
        return _select(model(v, training=False), classes)

    if method == "gradient":
        grads = _gradients(score, x)[1]
    elif method == "smoothgrad":
        rng = np.random.default_rng(seed)
        spread = noise * (x.max(axis=tuple(range(1, x.ndim)), keepdims=True)
                          - x.min(axis=tuple(range(1, x.ndim)), keepdims=True))
        grads = np.mean([_gradients(score, x + rng.normal(size=x.shape).astype("float32") * spread)[1]
                         for _ in range(samples)], axis=0)
    else:
        base = np.zeros_like(x) if baseline is None else np.broadcast_to(np.asarray(baseline, "float32"), x.shape)
        path = [base + (i + 0.5) / steps * (x - base) for i in range(steps)]
        grads = np.mean([_gradients(score, p)[1] for p in path], axis=0) * (x - base)
    maps = np.abs(grads).max(axis=-1) if grads.ndim == 4 else np.abs(grads)
    return _normalise(maps.astype("float32"))


# ----------------------------------------------------------------------------- feature maps and filters

def feature_maps(model, images, *, stage=None, layer=None):
    """The activations of ``layer`` (a name), or of the last layer of ``stage`` (``"stage2"``); default:
    the last stage's output. Returns a NumPy array ``(N, h, w, channels)``; a transformer's tokens come back
    as the maps of its patch grid, without the class token."""
    _check_model(model)
    x = _images(images, model)
    if stage is not None and layer is not None:
        raise ValueError(f"Give `stage` or `layer`, not both. Received: stage={stage!r}, layer={layer!r}")
    if stage is not None:
        stages = list_stages(model)
        if stage not in stages:
            raise ValueError(f"Unknown stage {stage!r} in {model.name!r}; stages: {stages}. Received: stage={stage!r}")
        target = [la for la in _layers(model) if stage_of(la.name) == stage][-1]
    else:
        target = _feature_layer(model, layer)
    values = _numpy(keras.Model(model.inputs[0], target.output)(x, training=False))
    return _as_maps(values, target, tuple(x.shape[1:3]))


def filters(model, layer=None, *, method="kernels", count=16, steps=40, step_size=0.05, seed=0):
    """What a convolution's filters respond to, as images scaled to [0, 1].

    ``method="kernels"``: the kernels themselves, ``(filters, kh, kw, in_channels)`` (meaningful for the
    first convolution, whose kernels look at pixels; the default layer). ``method="maximize"``: activation
    maximisation for deeper layers (default: the last ``Conv2D``): for each of the first ``count`` filters, an
    input image (the model's input size, from grey noise) is pushed ``steps`` times up the normalised gradient
    of that filter's mean activation, and kept within [0, 1]; returns ``(count, H, W, C)``.
    """
    _check_model(model)
    check_choice("method", method, ("kernels", "maximize"))
    convs = [la for la in _layers(model) if isinstance(la, keras.layers.Conv2D)]
    if layer is not None:
        convs = [la for la in convs if la.name == layer]
        if not convs:
            raise ValueError(f"No Conv2D layer named {layer!r} in {model.name!r}. Received: layer={layer!r}")
    if not convs:
        raise ValueError(f"{model.name!r} has no Conv2D layer")
    if method == "maximize":
        return _maximize(model, convs[0] if layer is not None else convs[-1], count, steps, step_size, seed)
    kernel = np.transpose(_numpy(convs[0].kernel), (3, 0, 1, 2))
    low = kernel.min(axis=(1, 2, 3), keepdims=True)
    span = kernel.max(axis=(1, 2, 3), keepdims=True) - low
    return ((kernel - low) / np.where(span > 0, span, 1)).astype("float32")


def _maximize(model, conv, count, steps, step_size, seed):
    """Activation maximisation of ``conv``'s first ``count`` filters (one image each, batched)."""
    count = min(check_int("count", count, maximum=1024), conv.filters)
    steps = check_int("steps", steps, maximum=10_000)
    step_size = check_float("step_size", step_size, minimum=0.0)
    probe = keras.Model(model.inputs[0], conv.output)
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape:
        raise ValueError(f"Activation maximisation needs a known input size; {model.name!r} takes {shape}")
    images = 0.5 + 0.05 * np.random.default_rng(seed).standard_normal((count, *shape)).astype("float32")
    channels = ops.one_hot(ops.arange(count), conv.filters)

    def score(x):
        return ops.mean(probe(x, training=False) * ops.reshape(channels, (count, 1, 1, conv.filters)), axis=(1, 2, 3))

    for _ in range(steps):
        grads = _gradients(score, images)[1]
        norms = np.sqrt((grads ** 2).mean(axis=tuple(range(1, grads.ndim)), keepdims=True)) + 1e-8
        images = np.clip(images + step_size * grads / norms, 0.0, 1.0)
    low = images.min(axis=tuple(range(1, images.ndim)), keepdims=True)
    span = images.max(axis=tuple(range(1, images.ndim)), keepdims=True) - low
    return ((images - low) / np.where(span > 0, span, 1)).astype("float32")


# ----------------------------------------------------------------------------- statistics

def gradient_stats(model, batch, *, loss=None):
    """Per trainable weight: the norm of the loss's gradient and of the weight, for one batch ``(x, y)``.

    The loss is ``loss`` (a Keras loss), else the model's compiled loss, else the task's default (from
    the output layer, as :func:`zoo.training.compile_model` picks it). Inference mode. Vanishing
    gradients show as first-layer norms orders of magnitude below the last layer's.

    Returns:
        A list of ``{"layer", "weight", "shape", "grad_norm", "weight_norm", "grad_rms"}`` in forward order.
    """
    _check_model(model)
    from zoo.training.compile import infer_task, make_loss, outputs_logits

    x, y = batch
    x, y = np.asarray(x, "float32"), np.asarray(y)
    if loss is None:
        loss = getattr(model, "loss", None)
    if loss is None or isinstance(loss, str):
        task = infer_task(model)
        loss = make_loss(task, loss=loss, from_logits=task != "regression" and outputs_logits(model))
    _, grads = _weight_gradients(model, loss, x, y)
    owner = {id(w): la.name for la in _layers(model) for w in la.trainable_weights}
    rows = []
    for w, g in zip(model.trainable_weights, grads):
        rows.append({"layer": owner.get(id(w), w.path.split("/")[0]), "weight": w.path, "shape": tuple(w.shape),
                     "grad_norm": float(np.linalg.norm(g)), "weight_norm": float(np.linalg.norm(_numpy(w))),
                     "grad_rms": float(np.sqrt(np.mean(np.square(g)))) if g.size else 0.0})
    return rows


def activation_stats(model, batch, *, saturation=0.99):
    """Per layer with an activation: mean, standard deviation, the fraction of dead units (exactly 0 after a
    ReLU), of saturated ones (sigmoid below ``1 - saturation`` or above ``saturation``; |tanh| above it) and
    the mean slope of the activation at its outputs (sigmoid ``a (1 - a)``, tanh ``1 - a^2``, ReLU the
    fraction of active units): the factor a gradient is multiplied by on its way back through the layer.

    Returns:
        A list of ``{"layer", "activation", "mean", "std", "dead", "saturated", "slope"}`` in forward order.
    """
    _check_model(model)
    saturation = check_float("saturation", saturation, minimum=0.5, maximum=1.0)
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    x = _images(x, model)
    chosen = []
    for la in _layers(model):
        act = getattr(la, "activation", None)
        name = getattr(act, "__name__", None)
        if isinstance(la, keras.layers.ReLU):
            name = "relu"
        if name and name != "linear":
            chosen.append((la, name))
    if not chosen:
        return []
    outputs = keras.Model(model.inputs[0], [la.output for la, _ in chosen])(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    rows = []
    for (la, name), out in zip(chosen, outputs):
        a = _numpy(out, "float64")
        slope = None
        if name == "sigmoid":
            saturated, slope = np.mean((a < 1 - saturation) | (a > saturation)), np.mean(a * (1 - a))
        elif name == "tanh":
            saturated, slope = np.mean(np.abs(a) > saturation), np.mean(1 - a * a)
        else:
            saturated = 0.0
            if name in ("relu", "relu6"):
                slope = np.mean(a > 0)
        rows.append({"layer": la.name, "activation": name, "mean": float(a.mean()), "std": float(a.std()),
                     "dead": float(np.mean(a == 0)) if name in ("relu", "relu6") else 0.0,
                     "saturated": float(saturated), "slope": None if slope is None else float(slope)})
    return rows


def plot_filters(model, path, *, layer=None, limit=32):
    """The first convolution's kernels (or ``layer``'s) as a grid of images; a PNG."""
    return plot_maps(filters(model, layer), path, title=f"{model.name}: first-layer filters", limit=limit)
