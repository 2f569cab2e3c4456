"""Copy a torchvision or timm state dict into the zoo model of the same architecture, exactly.

Weights are paired **by name**, never by position (Keras' ``model.layers`` puts a
residual block's shortcut conv between conv2 and bn2, unlike torch's module order):
each zoo layer name maps to the torch module that holds its tensors by its family's
:class:`KeyRules`, which the family's module registers (:func:`register_key_rules`, as
timm's per-family ``checkpoint_filter_fn``; this floor imports no model). Layouts are
converted as torch stores them: conv ``(O, I, kh, kw)`` -> ``(kh, kw, I, O)``, Linear
transposed, the first classifier layer after a flatten permuted from torch's CHW order to
Keras' HWC, a conv used as a classifier layer (timm's VGG ``pre_logits``) reshaped the same
way, and BatchNorm ``weight, bias, running_mean, running_var`` -> ``gamma, beta,
moving_mean, moving_variance``.

Names are paired first, shapes checked after (a tensor is never reshaped before its rank is
known to fit). Every source tensor is used exactly once and every zoo weight is filled exactly
once; otherwise nothing is assigned and one ``ValueError`` lists what is unmatched on each
side. The one tensor accepted without a zoo weight is a BatchNorm's ``num_batches_tracked``
(:func:`_is_step_counter`), and only in its exact form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from zoo.weights.readers import read_checkpoint

__all__ = ["ConversionReport", "KeyRules", "infer_family", "key_rules", "load_state_dict", "register_key_rules"]

_BN_KEYS = ("weight", "bias", "running_mean", "running_var")


@dataclass(frozen=True)
class KeyRules:
    """How one family's zoo layer names give the torch modules of its torchvision/timm state dicts.

    Attributes:
        modules: ``(regex on a zoo layer name, torch module template)`` pairs, the first match
            wins; ``{i}`` in a template is the regex's group ``i``, ``{i-}`` that group minus one
            (torch counts blocks from 0, the zoo from 1). A template may also be a function of the
            groups and the model's layer names (where torch's index depends on which layers a block has).
        sequential: the layers that ``modules`` do not name replay torch's ``features``
            ``nn.Sequential`` (VGG, AlexNet): every ``stage*`` layer but the zoo's padding counts one
            module, with weights or not.
        heads: per key style (``"torchvision"``, ``"timm"``), ``{zoo head layer: torch module}``;
            a family with heads has checkpoints of these styles only.
        head_modules: the classifier's top-level torch modules, dropped with ``include_top=False``.
        rename: turns an old spelling of a key into today's (torchvision's 2017 DenseNet files).
        leaves: ``(regex on a zoo layer name, torch tensor names)`` pairs for a layer whose tensors are not
            its module's ``weight`` and ``bias`` (ConvNeXt's ``layer_scale``, a parameter of the block itself),
            in the order of the Keras weights. A custom layer with a ``torch_leaves`` attribute names its tensors
            itself (Swin's window attention, buffers included) and holds them in torch's layout: they are copied
            as they are, their shapes checked.
        ignored: ``(top-level torch module, why)`` pairs whose tensors the zoo model has no layer for by design
            (GoogLeNet's auxiliary classifiers, unused at evaluation): dropped and reported with ``why``.
        signature: a regex that some layer name of this family's models matches, and no other
            family's: how :func:`infer_family` recognises a model that comes without its card.
    """

    modules: tuple = ()
    sequential: bool = False
    heads: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    head_modules: tuple = ()
    rename: Callable[[str], str] | None = None
    signature: str = ""
    leaves: tuple = ()
    ignored: tuple = ()  # (top-level torch module, why): tensors accepted and dropped (GoogLeNet's aux heads)


_KEY_RULES: dict[str, KeyRules] = {}


def register_key_rules(family: str, rules: KeyRules) -> KeyRules:
    """Make ``rules`` the torch key rules of ``family`` (called by the family's module at import).

    Raises:
        ValueError: the family has rules already.
    """
    if family in _KEY_RULES:
        raise ValueError(f"The {family!r} family has torch key rules already.")
    _KEY_RULES[family] = rules
    return rules


def key_rules(family: str) -> KeyRules:
    """The registered :class:`KeyRules` of ``family``.

    Raises:
        ValueError: the family has no torchvision counterpart.
    """
    if family not in _KEY_RULES:
        raise ValueError(f"The zoo's {family!r} family has no torchvision counterpart: torch checkpoints load into "
                         f"its {', '.join(sorted(_KEY_RULES))} families only.")
    return _KEY_RULES[family]


@dataclass
class ConversionReport:
    """What :func:`load_state_dict` copied: ``loaded`` zoo layers, ``dropped`` source tensors (with why)."""

    source: str
    family: str
    key_style: str
    loaded: list = field(default_factory=list)
    dropped: list = field(default_factory=list)  # (key, reason)
    windows: dict = field(default_factory=dict)  # torch module -> (kh, kw) of a convolution used as a classifier
    notes: list = field(default_factory=list)  # what the loaded model does differently from the source's network

    def __str__(self):
        lines = [f"{self.source}: {self.key_style} keys -> zoo {self.family}: {len(self.loaded)} layers loaded, "
                 f"{len(self.dropped)} tensors dropped"]
        reasons = {}
        for key, why in self.dropped:
            reasons.setdefault(why, []).append(key)
        lines += [f"  dropped ({why}): {len(keys)}, e.g. {keys[0]}" for why, keys in reasons.items()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def infer_family(model):
    """The family of a zoo model that comes without its card (a model loaded from a file, a user's own model
    named as the zoo names layers), from its layer names: the registered family whose ``signature`` one matches.
    Builds and callers that hold the card use ``card.family`` instead."""
    names = [layer.name for layer in model.layers]
    found = [family for family, rules in _KEY_RULES.items()
             if rules.signature and any(re.fullmatch(rules.signature, n) for n in names)]
    if len(found) != 1:
        raise ValueError(f"Model {model.name!r} has no torchvision counterpart: torch checkpoints load into the "
                         f"zoo's {', '.join(sorted(_KEY_RULES))} families only.")
    return found[0]


def key_style(state):
    return "timm" if any(k.startswith(("pre_logits.", "head.fc.")) for k in state) else "torchvision"


def _prefix(template, groups):
    def fill(m):
        i, minus = int(m.group(1)), m.group(2)
        return str(int(groups[i]) - 1) if minus else groups[i]
    return re.sub(r"\{(\d+)(-?)\}", fill, template)


def _module_names(model, family, rules, style):
    """``{zoo layer name: torch module prefix}`` for every zoo layer with weights."""
    if rules.heads and style not in rules.heads:
        raise ValueError(f"No {style} checkpoints exist for the zoo's {family} family.")
    heads = rules.heads.get(style, {})
    out, index, names = {}, 0, {layer.name for layer in model.layers}
    for layer in model.layers:
        if layer.name in heads:
            out[layer.name] = heads[layer.name]
            continue
        for pattern, template in rules.modules:
            m = re.fullmatch(pattern, layer.name)
            if m:
                if layer.weights:
                    out[layer.name] = (template(m.groups(), names) if callable(template)
                                       else _prefix(template, m.groups()))
                break
        else:
            # torch's `features` Sequential counts conv, BN, ReLU and max-pool modules
            # (the zoo's ZeroPadding2D layers have no torch module).
            if rules.sequential and layer.name.startswith("stage") and type(layer).__name__ != "ZeroPadding2D":
                if layer.weights:
                    out[layer.name] = f"features.{index}"
                index += 1
    return out


def _is_step_counter(key, state):
    """Whether ``key`` is a torch BatchNorm's ``num_batches_tracked``: ``MODULE.num_batches_tracked``, one number,
    in a module with running statistics. It counts training steps (torch's cumulative-average momentum uses it)
    and carries no weight: inference and the zoo's BatchNormalization never read it, so it is the one kind of
    tensor accepted without a zoo weight. Anything else without a zoo weight is reported."""
    module, _, leaf = key.rpartition(".")
    return (leaf == "num_batches_tracked" and bool(module) and np.size(state[key]) == 1
            and f"{module}.running_mean" in state and f"{module}.running_var" in state)


def _unconvertible(kind, tensors):
    """Why torch tensors ``{'weight': ..., ...}`` cannot be a ``kind`` layer's at all (their ranks), or ``None``:
    checked before :func:`_convert` reshapes them; the converted shapes are compared after."""
    ranks = {n: np.ndim(t) for n, t in tensors.items()}
    if kind == "as_is":  # copied as they are; the shapes are compared after
        return None
    if kind == "BatchNormalization":
        wanted = {n: (1,) for n in tensors}
    elif kind == "Conv2D":
        wanted = {"weight": (4,), "bias": (1,)}
    elif kind == "DepthwiseConv2D":  # or a per-channel scale (C, 1, 1) as a 1x1 depthwise kernel (ConvNeXt's)
        wanted = {"weight": (3, 4), "bias": (1,)}
    elif kind == "LayerNormalization":
        wanted = {"weight": (1,), "bias": (1,)}
    elif kind == "Dense":  # a Linear, or a conv used as a classifier layer (timm's VGG pre_logits)
        wanted = {"weight": (2, 4), "bias": (1,)}
    else:
        return f"{kind} has no torch conversion"
    bad = [f"{n} is {r}-D" for n, r in ranks.items() if r not in wanted.get(n, ())]
    return f"not a {kind}'s tensors ({', '.join(bad)})" if bad else None


def _convert(layer, tensors, flatten_shape):
    """The Keras weights of ``layer`` from its torch module's tensors ``{'weight': ..., ...}``."""
    kind = "as_is" if getattr(layer, "torch_leaves", None) is not None else type(layer).__name__
    if kind == "as_is":  # a custom layer naming its torch tensors (`torch_leaves`), in torch's layout
        arrays = [np.asarray(t) for t in tensors.values()]
        hook = getattr(layer, "convert_torch_leaves", None)  # e.g. ViT's position embedding of another grid
        return hook(arrays) if callable(hook) else arrays
    if kind == "BatchNormalization":
        return [tensors[k] for k in _BN_KEYS]
    if kind == "LayerNormalization":
        return [tensors["weight"], tensors["bias"]]  # gamma, beta
    w = tensors["weight"]
    if kind == "Conv2D":
        kernel = w.transpose(2, 3, 1, 0)  # (out, in / groups, kh, kw) -> (kh, kw, in / groups, out)
    elif kind == "DepthwiseConv2D":
        w = w[:, None] if w.ndim == 3 else w  # a per-channel scale (channels, 1, 1) is a 1x1 kernel
        kernel = w.transpose(2, 3, 0, 1)  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
    elif kind == "Dense":
        out = w.shape[0]
        if flatten_shape is not None and w.size == out * int(np.prod(flatten_shape)):
            h, wd, c = flatten_shape  # torch flattened (C, H, W); Keras flattens (H, W, C)
            kernel = w.reshape(out, c, h, wd).transpose(2, 3, 1, 0).reshape(h * wd * c, out)
        else:
            kernel = w.reshape(out, -1).T
    else:
        raise ValueError(f"Layer {layer.name!r} ({kind}) has no torch conversion.")
    return [kernel] + ([tensors["bias"]] if "bias" in tensors else [])


def window_notes(model, windows) -> list:
    """What differs from the source network when a convolution became a classifier layer (timm's VGG
    ``pre_logits.fc1``, a 7x7 convolution): the source slides it over the feature map and averages, the zoo pools
    the map to the window's size first (torchvision's layout). The two agree only where the map before the
    pooling has the window's size (224x224 inputs for ImageNet VGG); elsewhere one note per such layer."""
    pooled_from = None
    for layer in model.layers:
        if type(layer).__name__ == "Flatten":
            break
        if "Pool" in type(layer).__name__:
            pooled_from = tuple(layer.input.shape[1:3])
    size = "x".join(str(d) for d in model.inputs[0].shape[1:3])
    return [f"{prefix} is a {kh}x{kw} convolution that the source network slides over its feature map and then "
            f"averages; the zoo pools the {pooled_from[0]}x{pooled_from[1]} map to {kh}x{kw} first (torchvision's "
            f"layout), so at input {size} the logits differ from the source network's (they agree where that map is "
            f"{kh}x{kw}: 224x224 for ImageNet VGG)"
            for prefix, (kh, kw) in windows.items() if pooled_from and pooled_from != (kh, kw)]




def load_state_dict(model, state, *, family=None, new_head=False, assign=True, source="<state dict>"):
    """Copy a torchvision/timm state dict (``{key: array}``, or a checkpoint path) into ``model``.

    Args:
        model: a zoo ResNet, DenseNet, VGG or AlexNet of the checkpoint's architecture
            (any ``width`` the checkpoint was made with; ``include_top=False`` drops its head).
        state: ``{key: numpy array}`` or a path read by :func:`zoo.weights.read_checkpoint`.
        family: the model's family (``zoo.get_card(name).family``), whose :class:`KeyRules` pair
            the names; without it, :func:`infer_family` recognises it from the layer names.
        new_head: keep the model's own (new) prediction layer instead of the checkpoint's:
            how to start a different number of classes from a pretrained backbone.
        assign: ``False`` only checks that everything matches (names, shapes) and assigns nothing.
        source: a name for messages (the path, when ``state`` is one).

    Returns:
        A :class:`ConversionReport`.

    Raises:
        ValueError: unmatched tensors or weights on either side (a BatchNorm's ``num_batches_tracked``
            is the one tensor accepted without a weight), shapes that differ, or NaN or infinite values;
            nothing is assigned then.
    """
    if not isinstance(new_head, bool):
        raise TypeError(f"`new_head` must be True or False. Received: new_head={new_head!r}")
    if not hasattr(model, "layers") or not hasattr(model, "inputs"):
        raise TypeError(f"`model` must be a keras.Model (build it first: zoo.build(name)). "
                        f"Received: model={model!r}"[:300])
    if not isinstance(state, dict):
        source = str(state)
        state = read_checkpoint(state)
    odd = [k for k in state if not isinstance(k, str)][:3]
    if odd:
        raise TypeError(f"`state` must map tensor names (str) to arrays, as a torch state dict. Received keys "
                        f"{odd} in {source}")
    family = infer_family(model) if family is None else family
    rules = key_rules(family)
    style = key_style(state)
    if rules.rename is not None:
        state = {rules.rename(k): v for k, v in state.items()}
    modules = _module_names(model, family, rules, style)
    report = ConversionReport(source=source, family=family, key_style=style)
    used, plan, missing, bad = set(), [], [], []
    flatten_shape = None
    has_head = "head_predictions" in modules
    for layer in model.layers:
        if type(layer).__name__ == "Flatten":
            flatten_shape = tuple(layer.input.shape[1:])
        if not layer.weights:
            continue
        prefix = modules.get(layer.name)
        if prefix is None:
            missing.append(f"{layer.name} (no torch module)")
            continue
        if new_head and layer.name == "head_predictions":
            continue
        kind = type(layer).__name__
        names = _BN_KEYS if kind == "BatchNormalization" else ("weight", "bias")[: len(layer.weights)]
        leaves = next((leaves for pattern, leaves in rules.leaves if re.fullmatch(pattern, layer.name)), names)
        as_is = getattr(layer, "torch_leaves", None)  # a custom layer that holds its torch tensors as torch does
        if as_is is not None:
            kind, names = "as_is", tuple(as_is)
            leaves = names
        keys = {n: f"{prefix}.{leaf}" if prefix else leaf for n, leaf in zip(names, leaves)}  # "": a top-level tensor
        absent = [k for k in keys.values() if k not in state]
        if absent:
            missing.append(f"{layer.name} (needs {', '.join(absent)})")
            continue
        tensors = {n: state[k] for n, k in keys.items()}
        used.update(keys.values())
        shapes = [tuple(w.shape) for w in layer.weights]
        layer_flatten = flatten_shape if kind == "Dense" else None
        if kind == "Dense":
            flatten_shape = None
        why = _unconvertible(kind, tensors)  # paired by name; now the shapes, before any reshape
        if why:
            bad.append(f"{layer.name}: zoo {shapes} vs {prefix} {[tuple(np.shape(t)) for t in tensors.values()]} "
                       f"(torch layout: {why})")
            continue
        arrays = _convert(layer, tensors, layer_flatten)
        if [a.shape for a in arrays] != shapes:
            bad.append(f"{layer.name}: zoo {shapes} vs {prefix} {[a.shape for a in arrays]}")
            continue
        if not all(np.isfinite(a).all() for a in arrays if np.issubdtype(a.dtype, np.floating)):
            bad.append(f"{layer.name}: {prefix} holds NaN or infinite values (weights published without them, "
                       "e.g. a features-only checkpoint's classifier)")
            continue
        plan.append((layer, arrays))
        if layer_flatten and np.ndim(tensors["weight"]) == 4:
            report.windows[prefix] = tuple(int(d) for d in np.shape(tensors["weight"])[2:])
    head_prefix = modules.get("head_predictions")
    for key in state:
        if key in used:
            continue
        if new_head and head_prefix and key.startswith(head_prefix + "."):
            report.dropped.append((key, "new_head=True"))
        elif not has_head and key.split(".")[0] in rules.head_modules:
            report.dropped.append((key, "include_top=False"))
        elif any(key.startswith(module + ".") for module, _ in rules.ignored):
            report.dropped.append((key, next(why for module, why in rules.ignored if key.startswith(module + "."))))
        elif _is_step_counter(key, state):  # known to carry no weight (see _is_step_counter)
            report.dropped.append((key, "BatchNorm step counter, not a weight"))
        else:
            missing.append(f"source tensor {key} {tuple(state[key].shape)} (no zoo layer)")
    if missing or bad:
        zoo_side = [m for m in missing if not m.startswith("source")]
        src_side = [m for m in missing if m.startswith("source")]
        def listed(items, n):
            return "; ".join(items[:n]) + (f"; ... and {len(items) - n} more" if len(items) > n else "")

        parts = []
        if zoo_side:
            parts.append(f"{len(zoo_side)} zoo layer(s) unmatched: " + listed(zoo_side, 8))
        if src_side:
            parts.append(f"{len(src_side)} unmatched " + listed(src_side, 8))
        if bad:
            parts.append(f"{len(bad)} shape mismatch(es): " + listed(bad, 5))
        hint = ""
        if any(m.startswith("head_predictions") for m in bad):
            hint = (" The checkpoint's head has a different number of classes: pass new_head=True to keep the "
                    "backbone and start a new head.")
        model_bn = any(type(layer).__name__ == "BatchNormalization" for layer in model.layers)
        state_bn = any(k.endswith(".running_mean") for k in state)
        if model_bn != state_bn:
            hint += (f" The {'model' if model_bn else 'checkpoint'} has BatchNorm layers and the "
                     f"{'checkpoint' if model_bn else 'model'} none: another architecture "
                     f"(e.g. vgg16 and vgg16_bn).")
        raise ValueError(f"Cannot load {source!r} ({style} keys) into {model.name!r} ({family}): "
                         + " | ".join(parts) + "." + hint)
    for layer, arrays in plan:
        if assign:
            layer.set_weights(arrays)
        report.loaded.append(layer.name)
    report.notes = window_notes(model, report.windows)
    return report
