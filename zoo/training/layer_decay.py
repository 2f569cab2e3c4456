"""Layer-wise learning-rate decay: layers far from the head learn slower.

As in BEiT (Bao et al., 2021) and timm's ``param_groups_layer_decay``: the model's freezable units in forward
order (``stem``, each block ``stageS_blockB`` or a stage's own layers ``stageS``, then ``head``) get depths
``N, N-1, ..., 1, 0`` from the head, and each unit's learning rate is the optimizer's times
``layer_decay ** depth``. A layer outside every unit (a name without ``stem_``/``stageN_``/``head_``) counts
as the head.

The *update* of each variable is scaled, by scaling the learning rate the optimizer's update step and its
decoupled weight decay use for it: under Adam or AdamW a scaled gradient would change nothing (the update
divides by the gradient's own scale), a scaled rate scales the step. With plain SGD both are the same.

The optimizers are Keras' own with a ``lr_scales`` mapping (variable path -> scale) added, registered so
that a model saved with its optimizer loads again (``zoo.load_model``).
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.blocks import unit_of  # the stage and block names that freezing uses too
from zoo.utils import check_float

__all__ = ["LayerDecayAdagrad", "LayerDecayAdam", "LayerDecayAdamW", "LayerDecayRMSprop", "LayerDecaySGD",
           "layer_scales", "with_layer_decay"]


def layer_scales(model, decay) -> dict[str, float]:
    """``{variable path: learning-rate scale}`` of ``model``'s trainable variables for ``decay`` in (0, 1].

    Example:
        >>> layer_scales(zoo.build("resnet18", num_classes=10), 0.75)["stem_conv/kernel"]  # 9 units above it
        0.0563...
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    decay = check_float("layer_decay", decay, minimum=0.0, maximum=1.0, min_inclusive=False)
    units, owner = [], {}
    for layer in model.layers:
        unit = unit_of(layer.name)
        if unit is None or unit == "head":
            continue
        if unit not in units:
            units.append(unit)
        owner[layer.name] = unit
    if not units:
        raise ValueError(f"layer_decay needs a model whose layers are named by stage (stem_, stageN_, head_); "
                         f"{model.name!r} has none. Received: layer_decay={decay}")
    depth = {unit: len(units) - i for i, unit in enumerate(units)}
    scales = {}
    for layer in model.layers:
        scale = decay ** depth[owner[layer.name]] if layer.name in owner else 1.0
        for variable in layer.trainable_weights:
            scales[variable.path] = float(scale)
    return scales


class _LayerDecay:
    """The per-variable rate scale over a Keras optimizer's update step and decoupled weight decay."""

    def __init__(self, *args, lr_scales=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_scales = {str(k): float(v) for k, v in (lr_scales or {}).items()}
        self._scale_by_key = {}

    def build(self, var_list):
        super().build(var_list)
        self._scale_by_key = {self._var_key(v): self.lr_scales.get(v.path, 1.0) for v in var_list}

    def _scale(self, variable):
        return self._scale_by_key.get(self._var_key(variable), 1.0)

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scale(variable)
        if scale != 1.0:
            learning_rate = ops.multiply(ops.cast(learning_rate, variable.dtype), scale)
        return super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                rate = ops.cast(self.learning_rate, variable.dtype) * self._scale(variable)
                variable.assign(variable - variable * ops.cast(self.weight_decay, variable.dtype) * rate)

    def get_config(self):
        return {**super().get_config(), "lr_scales": dict(self.lr_scales)}


@keras.saving.register_keras_serializable(package="zoo")
class LayerDecaySGD(_LayerDecay, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with a learning-rate scale per variable (``lr_scales``)."""


@keras.saving.register_keras_serializable(package="zoo")
class LayerDecayAdam(_LayerDecay, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with a learning-rate scale per variable (``lr_scales``)."""


@keras.saving.register_keras_serializable(package="zoo")
class LayerDecayAdamW(_LayerDecay, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with a learning-rate scale per variable (``lr_scales``), weight decay too."""


@keras.saving.register_keras_serializable(package="zoo")
class LayerDecayRMSprop(_LayerDecay, keras.optimizers.RMSprop):
    """``keras.optimizers.RMSprop`` with a learning-rate scale per variable (``lr_scales``)."""


@keras.saving.register_keras_serializable(package="zoo")
class LayerDecayAdagrad(_LayerDecay, keras.optimizers.Adagrad):
    """``keras.optimizers.Adagrad`` with a learning-rate scale per variable (``lr_scales``)."""


# AdamW before Adam: AdamW subclasses Adam
_WRAPPED = ((keras.optimizers.AdamW, LayerDecayAdamW), (keras.optimizers.Adam, LayerDecayAdam),
            (keras.optimizers.SGD, LayerDecaySGD), (keras.optimizers.RMSprop, LayerDecayRMSprop),
            (keras.optimizers.Adagrad, LayerDecayAdagrad))


def with_layer_decay(optimizer, scales):
    """A copy of a Keras ``optimizer`` (SGD, Adam, AdamW, RMSprop, Adagrad) that scales each variable's updates
    by ``scales`` (``{variable path: scale}``, from :func:`layer_scales`); other variables keep the rate."""
    for base, cls in _WRAPPED:
        if type(optimizer) in (base, cls):
            config = optimizer.get_config()
            config["lr_scales"] = scales
            return cls.from_config(config)
    names = ", ".join(base.__name__ for base, _ in _WRAPPED)
    raise TypeError(f"layer_decay works with Keras' {names}. Received: optimizer={type(optimizer).__name__}")
