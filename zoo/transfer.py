"""Transfer learning: freeze, unfreeze, replace the head, load weights, fine-tune, cached features.

The recipe taught in introductory courses: pick a model trained on a similar
task, load its weights, freeze most of it, put a head that matches the new
task on top, train the head (transfer learning), then optionally unfreeze the
top blocks and train them with a lower learning rate (fine-tuning).

Every zoo model (and every keras.applications wrapper) names its layers by
stage (``stem_*``, ``stage1_*``, ..., ``head_*``) and, inside residual/dense
stages, by block (``stage3_block2_*``): freezing works on those units, so it
never cuts through a block. Frozen BatchNormalization layers run in inference
mode and keep their moving statistics.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from zoo import blocks, training
from zoo.utils import check_activation, check_choice, check_float, check_int, check_int_sequence, snake_case

__all__ = [
    "stage_of",
    "unit_of",
    "list_stages",
    "freeze",
    "unfreeze",
    "trainability",
    "replace_head",
    "feature_extractor",
    "load_weights",
    "LoadReport",
    "fine_tune",
    "FineTuneResult",
    "TransferResult",
    "train_head_on_features",
]

_STAGE = re.compile(r"^(stem|stage\d+|head)(?:_|$)")
_UNIT = re.compile(r"^(stage\d+_block\d+|stem|stage\d+|head)(?:_|$)")
HEAD_TASKS = ("multiclass", "binary", "regression", "logits")


def stage_of(name: str) -> str | None:
    """``"stage3"`` for ``"stage3_block2_conv1"``; ``None`` for names outside any stage."""
    m = _STAGE.match(name)
    return m.group(1) if m else None


def unit_of(name: str) -> str | None:
    """The smallest freezable unit of a layer: its block (``stage3_block2``) or its stage."""
    m = _UNIT.match(name)
    return m.group(1) if m else None


def _layers(model):
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def list_stages(model) -> list[str]:
    """Stage names of a model in forward order (``["stem", "stage1", ..., "head"]``)."""
    seen = []
    for layer in _layers(model):
        s = stage_of(layer.name)
        if s and s not in seen:
            seen.append(s)
    return seen


def _units(model, *, include_head=False):
    """Freezable units (blocks or stages) in forward order."""
    seen = []
    for layer in _layers(model):
        u = unit_of(layer.name)
        if u and u not in seen and (include_head or u != "head"):
            seen.append(u)
    return seen


def _require_stages(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    stages = list_stages(model)
    if not stages:
        raise ValueError(
            f"Model {model.name!r} has no named stages (layer names starting with stem_/stageN_/head_): "
            "pass `pattern=` (a regex over layer names) instead."
        )
    return stages


def _check_stage_names(model, names, arg):
    valid = list_stages(model) + _units(model)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(
            f"Unknown stage/block name(s) {unknown} for model {model.name!r}. "
            f"Valid: {sorted(set(valid), key=valid.index)}. Received: {arg}={names!r}"
        )


def _is_bn(layer):
    return isinstance(layer, (keras.layers.BatchNormalization,))


@dataclass
class Trainability:
    """Trainable vs frozen parameters per stage (``print`` shows a table)."""

    rows: list  # (stage, trainable params, frozen params)

    @property
    def trainable(self) -> int:
        return sum(r[1] for r in self.rows)

    @property
    def frozen(self) -> int:
        return sum(r[2] for r in self.rows)

    def __str__(self):
        lines = [f"{'stage':<12} {'trainable':>12} {'frozen':>12}"]
        lines += [f"{s:<12} {t:>12,} {f:>12,}" for s, t, f in self.rows]
        lines.append(f"{'total':<12} {self.trainable:>12,} {self.frozen:>12,}")
        return "\n".join(lines)


def _count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def trainability(model) -> Trainability:
    """Trainable and frozen parameters per stage (layers outside stages count as ``other``).

    Frozen counts include non-trainable statistics (BatchNorm moving mean/variance).
    """
    rows = {}
    for layer in _layers(model):
        key = stage_of(layer.name) or "other"
        t, f = rows.get(key, (0, 0))
        rows[key] = (t + _count(layer.trainable_weights), f + _count(layer.non_trainable_weights))
    return Trainability([(k, t, f) for k, (t, f) in rows.items()])


def _expand(model, names):
    """Units named by ``names``: a stage name stands for all of its units."""
    units, stages = _units(model, include_head=True), list_stages(model)
    out = set()
    for n in names:
        out |= {u for u in units if u.split("_")[0] == n} if n in stages else {n}
    return out


def _select(model, units):
    return [layer for layer in _layers(model) if unit_of(layer.name) in units]


def _learnable(model, unit):
    """True if a unit has weights other than BatchNorm's (so unfreezing it trains something)."""
    return any(layer.weights and not _is_bn(layer) for layer in _select(model, {unit}))


def freeze(model, *, until=None, stages=None, pattern=None, fraction=None, verbose=False):
    """Freeze part of a model (all but the head when no selector is given).

    At most one selector may be given:

    Args:
        until: freeze every block from the start up to and including this
            stage or block (e.g. ``"stage3"`` or ``"stage3_block2"``).
        stages: names of stages/blocks to freeze, e.g. ``["stem", "stage1"]``.
        pattern: regex; freeze layers whose name matches (any functional model).
        fraction: freeze the first ``fraction`` of the backbone's blocks (0..1),
            rounded to whole blocks.
        verbose: print the per-stage summary.

    Frozen BatchNormalization layers run in inference mode: their moving
    statistics stay as they are.

    Returns:
        A :class:`Trainability` summary. Recompile the model afterwards
        (:func:`fine_tune` does it for you).

    Example:
        >>> freeze(model, until="stage3")
    """
    given = [n for n, v in (("until", until), ("stages", stages), ("pattern", pattern), ("fraction", fraction))
             if v is not None]
    if len(given) > 1:
        raise ValueError(f"Give at most one of until/stages/pattern/fraction. Received: {given}")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise TypeError(f"`pattern` must be a regex string. Received: pattern={pattern!r}")
        regex = re.compile(pattern)
        chosen = [layer for layer in _layers(model) if regex.search(layer.name)]
        if not chosen:
            raise ValueError(
                f"`pattern` matches no layer of {model.name!r}. Received: pattern={pattern!r}; "
                f"layer names look like {[la.name for la in _layers(model)[:5]]}"
            )
    else:
        _require_stages(model)
        units = _units(model)
        if until is not None:
            _check_stage_names(model, [until], "until")
            if until == "head":
                raise ValueError("Freezing the head leaves nothing to train. Received: until='head'")
            last = max(units.index(u) for u in _expand(model, [until]))
            keep = units[: last + 1]
        elif stages is not None:
            names = [stages] if isinstance(stages, str) else list(stages)
            _check_stage_names(model, names, "stages")
            keep = _expand(model, names)
        elif fraction is not None:
            fraction = check_float("fraction", fraction, minimum=0.0, maximum=1.0)
            keep = units[: int(round(fraction * len(units)))]
        else:
            keep = units
        chosen = _select(model, set(keep))
    for layer in chosen:
        layer.trainable = False
    summary = trainability(model)
    if verbose:
        print(summary)
    return summary


def unfreeze(model, *, last_blocks=None, from_layer=None, stages=None, train_bn=False, verbose=False):
    """Make the top of a model trainable again (fine-tuning).

    Args:
        last_blocks: unfreeze the last N blocks of the backbone (blocks with
            weights other than BatchNorm's; what follows them comes along).
        from_layer: unfreeze from the block containing this layer to the top.
        stages: names of stages/blocks to unfreeze; ``"all"`` for everything.
        train_bn: also let BatchNorm layers train (update statistics). Off by
            default: keeping BN in inference mode is the standard fine-tuning recipe.

    The head is always trainable. Returns a :class:`Trainability` summary.
    """
    given = [n for n, v in (("last_blocks", last_blocks), ("from_layer", from_layer), ("stages", stages))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"Give exactly one of last_blocks/from_layer/stages. Received: {given or 'none'}")
    _require_stages(model)
    units = _units(model)
    if stages == "all":
        keep = set(units)
    elif stages is not None:
        names = [stages] if isinstance(stages, str) else list(stages)
        _check_stage_names(model, names, "stages")
        keep = _expand(model, names)
    elif last_blocks is not None:
        n = check_int("last_blocks", last_blocks, minimum=0)
        learnable = [u for u in units if _learnable(model, u)]
        keep = set(units[units.index(learnable[-n]):]) if n and learnable else set()
    else:
        names = [layer.name for layer in _layers(model)]
        if from_layer not in names:
            raise ValueError(
                f"Unknown layer for `from_layer` in {model.name!r}. Received: from_layer={from_layer!r}; "
                f"valid names include {names[:3]} ... {names[-3:]}"
            )
        start = unit_of(from_layer)
        if start is None:
            raise ValueError(f"Layer {from_layer!r} is outside the named stages. Received: from_layer={from_layer!r}")
        keep = set(units[units.index(start):]) if start in units else set()
    for layer in _select(model, keep | {"head"}):
        layer.trainable = train_bn or not _is_bn(layer)
    summary = trainability(model)
    if verbose:
        print(summary)
    return summary


_unfreeze = unfreeze  # fine_tune's `unfreeze` argument shadows the function


# ----------------------------------------------------------------------------- heads


def _feature_layer(model, layer=None):
    """The layer whose output feeds the head: named, else before the first ``head_*`` layer,
    else the last layer with a spatial (4-D) output, else the one before the last Dense."""
    layers_ = _layers(model)
    names = [la.name for la in layers_]
    if layer is not None:
        if layer not in names:
            raise ValueError(f"Unknown layer {layer!r} in {model.name!r}. Received: layer={layer!r}; "
                             f"last layers are {names[-6:]}")
        return model.get_layer(layer)
    heads = [i for i, la in enumerate(layers_) if stage_of(la.name) == "head"]
    if heads:
        node = layers_[heads[0]]._inbound_nodes[0]
        return node.input_tensors[0]._keras_history.operation if node.input_tensors else layers_[heads[0] - 1]
    for la in reversed(layers_):
        if len(la.output.shape) == 4:
            return la
    dense = [i for i, la in enumerate(layers_) if isinstance(la, keras.layers.Dense)]
    if len(dense) >= 1 and dense[-1] > 0:
        return layers_[dense[-1] - 1]
    raise ValueError(f"Could not find a feature layer in {model.name!r}; pass `layer=`.")


def feature_extractor(model, *, layer=None, pooling=None, name=None):
    """A model from ``model``'s input to its features (shared layers, shared weights).

    Args:
        layer: the feature layer's name (default: what feeds the head).
        pooling: ``None``, ``"avg"`` or ``"max"`` global pooling of 4-D features.
    """
    check_choice("pooling", pooling, (None, "avg", "max"))
    out = _feature_layer(model, layer).output
    if len(out.shape) == 4 and pooling:
        pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
        out = pool(name=f"features_{pooling}pool")(out)
    return keras.Model(model.inputs, out, name=name or f"{model.name}_features")


def replace_head(model, num_classes, *, task="multiclass", hidden_units=(), dropout=0.0, activation="relu",
                 pooling="avg", layer=None, name=None):
    """Cut ``model`` at its feature layer and put a new head for ``num_classes`` on it.

    Works on every zoo model, every keras.applications wrapper and any
    functional model (cut at ``layer`` or at the detected feature layer).
    The backbone's layers (and weights) are shared with ``model``.

    Args:
        num_classes: output classes (``multiclass``/``logits``), 1-2 for
            ``binary`` (one sigmoid unit), or outputs for ``regression``.
        task: ``multiclass`` (softmax), ``binary`` (sigmoid), ``regression``
            (linear) or ``logits`` (linear, for from_logits losses).
        hidden_units: hidden Dense layers of the new head.
        dropout: dropout rate before the prediction layer (and after each hidden layer).
        activation: activation of hidden layers.
        pooling: ``"avg"``, ``"max"`` or ``"flatten"`` for 4-D features.

    Example:
        >>> new = replace_head(zoo.build("resnet18", input_shape=(32, 32, 3)), 5, dropout=0.2)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    num_classes = check_int("num_classes", num_classes)
    task = check_choice("task", task, HEAD_TASKS)
    if task == "binary" and num_classes > 2:
        raise ValueError(f"task='binary' has one sigmoid unit; `num_classes` must be 1 or 2. "
                         f"Received: num_classes={num_classes}")
    hidden_units = check_int_sequence("hidden_units", hidden_units)
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    check_activation("activation", activation)
    check_choice("pooling", pooling, ("avg", "max", "flatten"))
    x = _feature_layer(model, layer).output
    if len(x.shape) == 4:
        x = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
             "flatten": keras.layers.Flatten}[pooling](name=f"head_{pooling}")(x)
    units = 1 if task == "binary" else num_classes
    out_act = {"multiclass": "softmax", "binary": "sigmoid"}.get(task)
    x = blocks.classifier_head(x, num_classes=units, classifier_activation=out_act, hidden_units=hidden_units,
                               act=activation, dropout=dropout)
    return keras.Model(model.inputs, x, name=name or model.name)


# ----------------------------------------------------------------------------- weights


@dataclass
class LoadReport:
    """What :func:`load_weights` loaded and skipped (with reasons)."""

    path: str
    loaded: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (layer name, reason)

    def __str__(self):
        lines = [f"{self.path}: loaded {len(self.loaded)} layer(s), skipped {len(self.skipped)}"]
        lines += [f"  skipped {n}: {why}" for n, why in self.skipped]
        return "\n".join(lines)


def _h5_keys(model):
    """``(layer, key)`` pairs as Keras names layers inside a ``.weights.h5`` file
    (snake-case class name plus a per-model counter, in ``model.layers`` order)."""
    counts, out = {}, []
    for layer in model.layers:
        base = snake_case(type(layer).__name__)
        k = counts.get(base, 0)
        counts[base] = k + 1
        out.append((layer, f"layers/{base}" + (f"_{k}" if k else "")))
    return out


def _assign(layer, arrays, report):
    weights = layer.weights
    if len(arrays) != len(weights):
        report.skipped.append((layer.name, f"{len(arrays)} arrays in file, layer has {len(weights)} weights"))
        return
    bad = [(tuple(w.shape), tuple(a.shape)) for w, a in zip(weights, arrays) if tuple(w.shape) != tuple(a.shape)]
    if bad:
        report.skipped.append((layer.name, f"shape mismatch (layer, file): {bad[0]}"))
        return
    for w, a in zip(weights, arrays):
        w.assign(a)
    report.loaded.append(layer.name)


def load_weights(model, path, *, skip_mismatch=False, verbose=True) -> LoadReport:
    """Load a zoo ``.keras`` checkpoint or a ``.weights.h5`` file into ``model``, layer by layer.

    ``.keras`` files are matched by layer name (zoo names are stable);
    ``.weights.h5`` files by Keras' positional layer keys. Layers whose
    weights differ in count or shape are skipped and reported; unless
    ``skip_mismatch=True`` any skip raises ``ValueError`` listing them (and
    nothing is changed). ``"imagenet"`` weights come through the wrappers
    (``zoo.build("keras_resnet50", weights="imagenet")``).

    Returns:
        A :class:`LoadReport`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file path. Received: path={path!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Weights file does not exist. Received: path={path!r}")
    report = LoadReport(path)
    plan = []  # (layer, arrays)
    if path.endswith(".keras"):
        source = keras.saving.load_model(path, compile=False)
        src = {la.name: la for la in source.layers}
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name not in src:
                report.skipped.append((layer.name, "no layer of that name in the file"))
                continue
            plan.append((layer, [np.array(w) for w in src[layer.name].weights]))
    elif path.endswith(".h5"):
        import h5py

        with h5py.File(path, "r") as f:
            for layer, key in _h5_keys(model):
                if not layer.weights:
                    continue
                if f"{key}/vars" not in f:
                    report.skipped.append((layer.name, f"no {key} in the file"))
                    continue
                group = f[f"{key}/vars"]
                plan.append((layer, [np.array(group[str(i)]) for i in range(len(group))]))
    else:
        raise ValueError(f"`path` must end with .keras or .weights.h5. Received: path={path!r}")
    # check everything first so that a refused load changes nothing
    dry = LoadReport(path)
    for layer, arrays in plan:
        shapes_ok = len(arrays) == len(layer.weights) and all(
            tuple(w.shape) == tuple(a.shape) for w, a in zip(layer.weights, arrays))
        if not shapes_ok:
            _assign(layer, arrays, dry)  # records the reason without assigning
    report.skipped += dry.skipped
    if report.skipped and not skip_mismatch:
        raise ValueError(
            f"Weights in {path!r} do not fit model {model.name!r}: {len(report.skipped)} layer(s) would be "
            f"skipped ({'; '.join(f'{n}: {w}' for n, w in report.skipped[:5])}"
            f"{' ...' if len(report.skipped) > 5 else ''}). Pass skip_mismatch=True to load the rest."
        )
    skipped = {n for n, _ in report.skipped}
    for layer, arrays in plan:
        if layer.name not in skipped:
            _assign(layer, arrays, report)
    if verbose:
        print(report)
    return report


# ----------------------------------------------------------------------------- fine-tuning


class _BestWeights(keras.callbacks.Callback):
    """Keeps the best weights across several ``fit`` calls (both phases)."""

    def __init__(self, monitor):
        super().__init__()
        self.monitor = monitor
        self.direction = training.metric_direction(monitor)
        if self.direction is None:
            raise ValueError(f"Cannot tell whether to maximise or minimise the metric. Received: monitor={monitor!r}")
        self.best, self.weights, self.epoch = None, None, None
        self.offset = 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value):
            return
        better = self.best is None or (value > self.best if self.direction == "max" else value < self.best)
        if better:
            self.best, self.epoch = float(value), self.offset + epoch
            self.weights = self.model.get_weights()


@dataclass
class TransferResult:
    """What :func:`fine_tune` and :func:`train_head_on_features` return."""

    history: dict  # metric -> per-epoch values over all phases
    phases: list  # (phase name, first epoch, last epoch + 1)
    best_epoch: int | None
    best_value: float | None
    monitor: str
    seconds: dict  # phase -> wall-clock seconds ("features": the one-off feature extraction)

    @property
    def feature_seconds(self) -> float | None:
        """Seconds spent extracting cached features (``None`` when none were cached)."""
        return self.seconds.get("features")


FineTuneResult = TransferResult  # the name before 0.2


def _merge(into, history):
    for k, v in history.items():
        into.setdefault(k, []).extend(float(x) for x in v)


def fine_tune(model, train, validation=None, *, head_epochs=3, head_lr=1e-3, unfreeze="last_block",
              ft_epochs=3, ft_lr=1e-4, schedule="constant", optimizer="adam", train_bn=False,
              monitor=None, restore_best=True, batch_size=32, seed=0, callbacks=(), verbose="auto",
              **fit_kwargs) -> TransferResult:
    """The two-phase recipe: train the head with the backbone frozen, then fine-tune the top.

    Args:
        model: a model whose head is new (e.g. from :func:`replace_head`).
        train, validation: as for :func:`zoo.training.fit`.
        head_epochs, head_lr: phase 1 (everything but the head frozen).
        unfreeze: what phase 2 trains besides the head: ``"last_block"``, an int
            (last N blocks), a stage/block name (from it to the top), ``"all"``,
            or ``None`` to skip phase 2.
        ft_epochs, ft_lr: phase 2, with a lower learning rate.
        train_bn: let BatchNorm statistics update in phase 2 (off by default).
        monitor: metric deciding the best epoch (default ``val_loss`` when there
            is validation data, else ``loss``); with ``restore_best`` the best
            weights of either phase are restored at the end.
        fit_kwargs: more :func:`zoo.training.fit` arguments (weight_decay, loss, ...).

    The model is recompiled whenever trainability changes.
    """
    head_epochs = check_int("head_epochs", head_epochs, minimum=0)
    ft_epochs = check_int("ft_epochs", ft_epochs, minimum=0)
    monitor = monitor or ("val_loss" if validation is not None else "loss")
    best = _BestWeights(monitor)
    history, phases, seconds = {}, [], {}
    freeze(model)  # validates the stages before any training
    common = dict(batch_size=batch_size, seed=seed, verbose=verbose, schedule=schedule, optimizer=optimizer,
                  **fit_kwargs)
    if head_epochs:
        start = time.perf_counter()
        h = training.fit(model, train, validation, epochs=head_epochs, learning_rate=head_lr,
                         callbacks=[best, *callbacks], **common)
        seconds["head"] = time.perf_counter() - start
        _merge(history, h.history)
        phases.append(("head", 0, head_epochs))
    if unfreeze is not None and ft_epochs:
        if unfreeze == "last_block":
            unfreeze_kw = {"last_blocks": 1}
        elif isinstance(unfreeze, int) and not isinstance(unfreeze, bool):
            unfreeze_kw = {"last_blocks": unfreeze}
        elif unfreeze == "all":
            unfreeze_kw = {"stages": "all"}
        elif isinstance(unfreeze, str):
            _check_stage_names(model, [unfreeze], "unfreeze")
            first = next(la.name for la in _layers(model)
                         if unit_of(la.name) == unfreeze or stage_of(la.name) == unfreeze)
            unfreeze_kw = {"from_layer": first}
        else:
            raise TypeError(f"`unfreeze` must be 'last_block', an int, a stage name, 'all' or None. "
                            f"Received: unfreeze={unfreeze!r}")
        _unfreeze(model, train_bn=train_bn, **unfreeze_kw)
        best.offset = head_epochs
        start = time.perf_counter()
        h = training.fit(model, train, validation, epochs=ft_epochs, learning_rate=ft_lr,
                         callbacks=[best, *callbacks], **common)
        seconds["fine_tune"] = time.perf_counter() - start
        _merge(history, h.history)
        phases.append(("fine_tune", head_epochs, head_epochs + ft_epochs))
    if restore_best and best.weights is not None:
        model.set_weights(best.weights)
    return TransferResult(history, phases, best.epoch, best.best, monitor, seconds)


# ----------------------------------------------------------------------------- cached features


def _head_model(model, feature_layer):
    """The layers after ``feature_layer`` re-applied to a features input (shared weights).

    Heads are chains (pool -> dense -> ... -> predictions), so applying the
    layers in order reproduces them.
    """
    layers_ = _layers(model)
    idx = layers_.index(feature_layer)
    tail = layers_[idx + 1:]
    inputs = keras.Input(shape=tuple(feature_layer.output.shape[1:]), name="features")
    x = inputs
    for layer in tail:
        if len(layer._inbound_nodes) and len(layer._inbound_nodes[0].input_tensors) > 1:
            raise ValueError(f"The head of {model.name!r} is not a chain of layers ({layer.name} merges "
                             "several inputs); cached features need a simple head.")
        x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_head")


def _features(extractor, data, batch_size):
    """(features, labels) of ``data`` ((x, y) arrays or a batched dataset)."""
    if isinstance(data, (tuple, list)):
        x, y = data
        return extractor.predict(x, batch_size=batch_size, verbose=0), np.asarray(y)
    feats, labels = [], []
    iterator = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data
    for x, y in iterator:
        feats.append(np.asarray(extractor.predict_on_batch(x)))
        labels.append(np.asarray(y))
    return np.concatenate(feats), np.concatenate(labels)


def train_head_on_features(model, train, validation=None, *, epochs=10, learning_rate=1e-3, batch_size=32,
                           seed=0, verbose="auto", **fit_kwargs):
    """Cached-feature transfer: run the frozen backbone once, train only the head on its features.

    Much faster than running the frozen backbone every epoch; no data
    augmentation is possible in this mode (the features are fixed). The head's
    layers are shared with ``model``, so the trained head is already grafted
    back: ``model`` predicts with it straight away.

    Returns:
        A :class:`TransferResult` with one phase, ``"head (cached features)"``; its
        ``seconds["features"]`` (``feature_seconds``) is the one-off extraction cost.
    """
    feature_layer = _feature_layer(model)
    backbone_layers = _layers(model)[: _layers(model).index(feature_layer) + 1]
    random_aug = [la.name for la in backbone_layers if type(la).__name__.startswith("Random")]
    if random_aug:
        raise ValueError(f"Cached features cannot include data augmentation; the backbone has {random_aug}. "
                         "Train with fine_tune() instead, or build the model without augmentation.")
    for la in backbone_layers:
        la.trainable = False
    extractor = keras.Model(model.inputs, feature_layer.output)
    start = time.perf_counter()
    f_train = _features(extractor, train, batch_size)
    f_val = _features(extractor, validation, batch_size) if validation is not None else None
    seconds = {"features": time.perf_counter() - start}
    head = _head_model(model, feature_layer)
    start = time.perf_counter()
    history = training.fit(head, f_train, f_val, epochs=epochs, learning_rate=learning_rate,
                           batch_size=batch_size, seed=seed, verbose=verbose, **fit_kwargs).history
    seconds["head"] = time.perf_counter() - start
    history = {k: [float(v) for v in values] for k, values in history.items()}
    monitor = "val_loss" if f_val is not None else "loss"
    losses = np.asarray(history.get(monitor, []), dtype=float)
    best_epoch = int(np.nanargmin(losses)) if np.isfinite(losses).any() else None
    return TransferResult(history, [("head (cached features)", 0, epochs)], best_epoch,
                          None if best_epoch is None else float(losses[best_epoch]), monitor, seconds)
