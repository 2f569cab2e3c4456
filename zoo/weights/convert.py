"""Copy a torchvision or timm state dict into the zoo model of the same architecture, exactly.

Weights are paired **by name**, never by position (Keras' ``model.layers`` puts a
residual block's shortcut conv between conv2 and bn2, unlike torch's module order):
each zoo layer name maps to the torch module that holds its tensors, per family
(:data:`RULES` for the named families; the ``features.N`` index of VGG and AlexNet
replays torch's ``nn.Sequential`` over the zoo's layers). Layouts are converted as
torch stores them: conv ``(O, I, kh, kw)`` -> ``(kh, kw, I, O)``, Linear transposed,
the first classifier layer after a flatten permuted from torch's CHW order to Keras'
HWC, a conv used as a classifier layer (timm's VGG ``pre_logits``) reshaped the same
way, and BatchNorm ``weight, bias, running_mean, running_var`` -> ``gamma, beta,
moving_mean, moving_variance`` (``num_batches_tracked`` is not needed and dropped).

Every source tensor is used exactly once and every zoo weight is filled exactly once;
otherwise nothing is assigned and one ``ValueError`` lists what is unmatched on each side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from zoo.weights.readers import read_checkpoint

__all__ = ["ConversionReport", "load_state_dict", "infer_family", "FAMILIES"]

FAMILIES = ("resnet", "densenet", "vgg", "alexnet")
# (regex on the zoo layer name, torch module prefix template) per family.
RULES = {
    "resnet": (
        (r"stem_conv", "conv1"), (r"stem_bn", "bn1"),
        (r"stage(\d+)_block(\d+)_(conv|bn)(\d)", "layer{0}.{1-}.{2}{3}"),
        (r"stage(\d+)_block(\d+)_shortcut_conv", "layer{0}.{1-}.downsample.0"),
        (r"stage(\d+)_block(\d+)_shortcut_bn", "layer{0}.{1-}.downsample.1"),
        (r"head_predictions", "fc"),
    ),
    "densenet": (
        (r"stem_conv", "features.conv0"), (r"stem_bn", "features.norm0"),
        (r"stage(\d+)_block(\d+)_bn(\d)", "features.denseblock{0}.denselayer{1}.norm{2}"),
        (r"stage(\d+)_block(\d+)_conv(\d)", "features.denseblock{0}.denselayer{1}.conv{2}"),
        (r"stage(\d+)_transition_bn", "features.transition{0}.norm"),
        (r"stage(\d+)_transition_conv", "features.transition{0}.conv"),
        (r"stage\d+_post_bn", "features.norm5"),
        (r"head_predictions", "classifier"),
    ),
}
# Classifier layers of the Sequential families, by key style.
HEADS = {
    ("vgg", "torchvision"): {"head_fc1": "classifier.0", "head_fc2": "classifier.3", "head_predictions": "classifier.6"},
    ("vgg", "timm"): {"head_fc1": "pre_logits.fc1", "head_fc2": "pre_logits.fc2", "head_predictions": "head.fc"},
    ("alexnet", "torchvision"): {"head_fc1": "classifier.1", "head_fc2": "classifier.4", "head_predictions": "classifier.6"},
}
# torch modules that belong to the classifier (dropped with include_top=False).
HEAD_MODULES = ("fc", "classifier", "pre_logits", "head")
# torchvision's DenseNet checkpoints of 2017 name 'norm1' 'norm.1' (torchvision's own _load_state_dict rule).
_OLD_DENSENET_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
_BN_KEYS = ("weight", "bias", "running_mean", "running_var")


@dataclass
class ConversionReport:
    """What :func:`load_state_dict` copied: ``loaded`` zoo layers, ``dropped`` source tensors (with why)."""

    source: str
    family: str
    key_style: str
    loaded: list = field(default_factory=list)
    dropped: list = field(default_factory=list)  # (key, reason)

    def __str__(self):
        lines = [f"{self.source}: {self.key_style} keys -> zoo {self.family}: {len(self.loaded)} layers loaded, "
                 f"{len(self.dropped)} tensors dropped"]
        reasons = {}
        for key, why in self.dropped:
            reasons.setdefault(why, []).append(key)
        lines += [f"  dropped ({why}): {len(keys)}, e.g. {keys[0]}" for why, keys in reasons.items()]
        return "\n".join(lines)


def infer_family(model):
    """The torch family a zoo model's layer names follow (``resnet``, ``densenet``, ``vgg`` or ``alexnet``)."""
    names = {layer.name for layer in model.layers}
    if any(n.endswith("_transition_conv") for n in names):
        return "densenet"
    if "stem_conv" in names and any(re.fullmatch(r"stage\d+_block\d+_conv1", n) for n in names):
        return "resnet"
    if any(re.fullmatch(r"stage\d+_block\d+_conv", n) for n in names):
        return "vgg"
    if {f"stage{i}_conv" for i in range(1, 6)} <= names:  # AlexNet's five conv stages (LeNet has two)
        return "alexnet"
    raise ValueError(f"Model {model.name!r} has no torchvision counterpart: torch checkpoints load into the "
                     f"zoo's {', '.join(FAMILIES)} families only.")


def key_style(state):
    return "timm" if any(k.startswith(("pre_logits.", "head.fc.")) for k in state) else "torchvision"


def _prefix(template, groups):
    def fill(m):
        i, minus = int(m.group(1)), m.group(2)
        return str(int(groups[i]) - 1) if minus else groups[i]
    return re.sub(r"\{(\d+)(-?)\}", fill, template)


def _module_names(model, family, style):
    """``{zoo layer name: torch module prefix}`` for every zoo layer with weights."""
    out = {}
    if family in RULES:
        for layer in model.layers:
            if not layer.weights:
                continue
            for pattern, template in RULES[family]:
                m = re.fullmatch(pattern, layer.name)
                if m:
                    out[layer.name] = _prefix(template, m.groups())
                    break
        return out
    # VGG/AlexNet: torch's `features` Sequential counts conv, BN, ReLU and max-pool modules
    # (the zoo's ZeroPadding2D layers have no torch module).
    index = 0
    for layer in model.layers:
        if not layer.name.startswith("stage") or type(layer).__name__ == "ZeroPadding2D":
            continue
        if layer.weights:
            out[layer.name] = f"features.{index}"
        index += 1
    heads = HEADS.get((family, style))
    if heads is None:
        raise ValueError(f"No {style} checkpoints exist for the zoo's {family} family.")
    out.update({n: p for n, p in heads.items() if any(layer.name == n for layer in model.layers)})
    return out


def _convert(layer, tensors, flatten_shape):
    """The Keras weights of ``layer`` from its torch module's tensors ``{'weight': ..., ...}``."""
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return [tensors[k] for k in _BN_KEYS]
    w = tensors["weight"]
    if kind in ("Conv2D", "DepthwiseConv2D"):
        kernel = w.transpose(2, 3, 1, 0)
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


def load_state_dict(model, state, *, family=None, new_head=False, assign=True, source="<state dict>"):
    """Copy a torchvision/timm state dict (``{key: array}``, or a checkpoint path) into ``model``.

    Args:
        model: a zoo ResNet, DenseNet, VGG or AlexNet of the checkpoint's architecture
            (any ``width`` the checkpoint was made with; ``include_top=False`` drops its head).
        state: ``{key: numpy array}`` or a path read by :func:`zoo.weights.read_checkpoint`.
        family: the torch family, inferred from the layer names by default.
        new_head: keep the model's own (new) prediction layer instead of the checkpoint's:
            how to start a different number of classes from a pretrained backbone.
        assign: ``False`` only checks that everything matches (names, shapes) and assigns nothing.
        source: a name for messages (the path, when ``state`` is one).

    Returns:
        A :class:`ConversionReport`.

    Raises:
        ValueError: unmatched tensors or weights on either side, or shapes that differ;
            nothing is assigned then.
    """
    if not isinstance(new_head, bool):
        raise TypeError(f"`new_head` must be True or False. Received: new_head={new_head!r}")
    if not isinstance(state, dict):
        source = str(state)
        state = read_checkpoint(state)
    family = infer_family(model) if family is None else family
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {FAMILIES}. Received: family={family!r}")
    style = key_style(state)
    state = {(_OLD_DENSENET_KEY.sub(r"\1\2", k) if family == "densenet" else k): v for k, v in state.items()}
    modules = _module_names(model, family, style)
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
        absent = [f"{prefix}.{n}" for n in names if f"{prefix}.{n}" not in state]
        if absent:
            missing.append(f"{layer.name} (needs {', '.join(absent)})")
            continue
        tensors = {n: state[f"{prefix}.{n}"] for n in names}
        used.update(f"{prefix}.{n}" for n in names)
        if kind == "BatchNormalization" and f"{prefix}.num_batches_tracked" in state:
            used.add(f"{prefix}.num_batches_tracked")
            report.dropped.append((f"{prefix}.num_batches_tracked", "BatchNorm step counter, not a weight"))
        arrays = _convert(layer, tensors, flatten_shape if kind == "Dense" else None)
        if kind == "Dense":
            flatten_shape = None
        shapes = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != shapes:
            bad.append(f"{layer.name}: zoo {shapes} vs {prefix} {[a.shape for a in arrays]}")
            continue
        plan.append((layer, arrays))
    head_prefix = modules.get("head_predictions", {"resnet": "fc", "densenet": "classifier"}.get(family))
    for key in state:
        if key in used:
            continue
        module = key.split(".")[0]
        if new_head and head_prefix and key.startswith(head_prefix + "."):
            report.dropped.append((key, "new_head=True"))
        elif not has_head and module in HEAD_MODULES:
            report.dropped.append((key, "include_top=False"))
        elif key.endswith("num_batches_tracked"):
            report.dropped.append((key, "BatchNorm step counter, not a weight"))
        else:
            missing.append(f"source tensor {key} {tuple(state[key].shape)} (no zoo layer)")
    if missing or bad:
        zoo_side = [m for m in missing if not m.startswith("source")]
        src_side = [m for m in missing if m.startswith("source")]
        parts = []
        if bad:
            parts.append(f"{len(bad)} shape mismatch(es): " + "; ".join(bad[:5]))
        if zoo_side:
            parts.append(f"{len(zoo_side)} zoo layer(s) unmatched: " + "; ".join(zoo_side[:8]))
        if src_side:
            parts.append(f"{len(src_side)} " + "; ".join(src_side[:8]))
        hint = ""
        if any(m.startswith("head_predictions") for m in bad):
            hint = (" The checkpoint's head has a different number of classes: pass new_head=True to keep the "
                    "backbone and start a new head.")
        raise ValueError(f"Cannot load {source!r} ({style} keys) into {model.name!r} ({family}): "
                         + " | ".join(parts) + "." + hint)
    for layer, arrays in plan:
        if assign:
            layer.set_weights(arrays)
        report.loaded.append(layer.name)
    return report
