"""Adapt data to a backbone: channel conversion, resizing to its minimum size, its preprocessing."""

from __future__ import annotations

import math

import keras

from zoo.data._common import CHANNELS, check_image_size, convert_channels
from zoo.utils import check_float

__all__ = ["ConvertChannels", "BackbonePreprocess", "adapt_inputs"]


@keras.saving.register_keras_serializable(package="zoo")
class ConvertChannels(keras.layers.Layer):
    """Convert the channel axis with zoo.data's explicit policy (see ``convert_channels``).

    gray -> RGB replicates, RGB -> gray is BT.601 luminance, alpha is composited
    on white (or added as opaque). Inputs are in [0, 1].

    Example:
        >>> ConvertChannels(3)(keras.ops.zeros((1, 8, 8, 1))).shape
        (1, 8, 8, 3)
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        if channels not in CHANNELS:
            raise ValueError(f"`channels` must be one of {list(CHANNELS)}. Received: channels={channels!r}")
        self.channels = int(channels)

    def call(self, inputs):
        return convert_channels(inputs, int(inputs.shape[-1]), self.channels,
                                lambda p: keras.ops.concatenate(p, axis=-1))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="zoo")
class BackbonePreprocess(keras.layers.Layer):
    """Apply a registered model's ``card.preprocess_input`` to inputs in [0, 1].

    ``card.preprocess_input`` follows ``keras.applications``: it takes pixel
    values in [0, ``scale``] (255), so inputs are multiplied by ``scale`` first.

    Args:
        model: registry name whose card holds the preprocessing.
        scale: pixel range expected by the preprocessing function.
    """

    def __init__(self, model, *, scale=255.0, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.scale = float(scale)
        self._fn = None

    def _function(self):
        if self._fn is None:
            from zoo.registry import get_card

            self._fn = get_card(self.model).preprocess_input
        return self._fn

    def call(self, inputs):
        fn = self._function()
        return inputs if fn is None else fn(inputs * self.scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "model": self.model, "scale": self.scale}


def _target_size(height, width, card, image_size):
    minimum = card.min_input_size or 1
    if image_size == "default":
        return tuple(card.default_input_shape[:2])
    if image_size is not None:
        size = check_image_size(image_size, allow_none=False)
        if min(size) < minimum:
            raise ValueError(
                f"`image_size` is below {card.name}'s minimum input size {minimum}. "
                f"Received: image_size={image_size!r}"
            )
        return size
    if height is None or width is None:
        raise ValueError("The input size is unknown; pass `image_size`. Received: image_size=None")
    if min(height, width) >= minimum:
        return height, width
    factor = minimum / min(height, width)  # upscale, keeping the aspect ratio
    return max(minimum, math.ceil(height * factor)), max(minimum, math.ceil(width * factor))


def adapt_inputs(source, model, *, image_size=None, scale=255.0, name="adapt_inputs"):
    """A ``keras.Sequential`` turning ``source`` images into what ``model``'s backbone expects.

    Steps, each only when needed: resize (up to the card's ``min_input_size``,
    aspect ratio kept, or to ``image_size``), convert channels to the card's
    ``default_input_shape`` channel count (gray -> RGB replicates), and apply
    the card's ``preprocess_input`` (``None`` keeps inputs in [0, 1]).

    Args:
        source: a :class:`~zoo.data.DataBundle`, a batched ``tf.data.Dataset``
            of ``(x, y)``, or an input shape ``(h, w, c)``.
        model: a registry name or a :class:`~zoo.registry.ModelCard`.
        image_size: ``None`` (smallest accepted size), ``"default"`` (the
            card's default input size), an int or ``(height, width)``.
        scale: pixel range of the card's ``preprocess_input`` (255 as keras.applications).
        name: the Sequential's name.

    Returns:
        a ``keras.Sequential``; ``adapter.output_shape[1:]`` is the backbone's ``input_shape``.

    Example:
        >>> bundle = zoo.data.load("digits", image_size=16)
        >>> adapter = adapt_inputs(bundle, "alexnet_cifar")
        >>> backbone = zoo.build("alexnet_cifar", input_shape=adapter.output_shape[1:], num_classes=10)
        >>> train = bundle.train.map(lambda x, y: (adapter(x), y))
    """
    from zoo.registry import ModelCard, get_card

    card = model if isinstance(model, ModelCard) else get_card(model)
    if hasattr(source, "element_spec"):  # a batched tf.data.Dataset of (x, y)
        spec = source.element_spec
        shape = tuple(spec[0].shape[1:]) if isinstance(spec, tuple) else tuple(spec.shape[1:])
    else:
        shape = tuple(getattr(source, "input_shape", source))
    if len(shape) != 3:
        raise ValueError(f"`source` must be an image bundle or an (h, w, c) shape. Received: source={shape!r}")
    if card.min_input_size is None or len(card.default_input_shape) != 3:
        raise ValueError(f"{card.name} does not take images. Received: model={card.name!r}")
    scale = check_float("scale", scale, minimum=0.0)
    height, width, channels = shape
    target = _target_size(height, width, card, image_size)
    target_channels = card.default_input_shape[-1]
    steps = [keras.Input(shape=shape, name=f"{name}_input")]
    if target != (height, width):
        steps.append(keras.layers.Resizing(*target, interpolation="bilinear", name=f"{name}_resize"))
    if target_channels != channels:
        steps.append(ConvertChannels(target_channels, name=f"{name}_channels"))
    if card.preprocess_input is not None:
        pre = BackbonePreprocess(card.name, scale=scale, name=f"{name}_preprocess")
        pre._fn = card.preprocess_input  # works for unregistered cards too
        steps.append(pre)
    if len(steps) == 1:  # nothing to adapt; keep a well-defined output shape
        steps.append(keras.layers.Identity(name=f"{name}_identity"))
    return keras.Sequential(steps, name=name)
