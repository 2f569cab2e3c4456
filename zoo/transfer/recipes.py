"""The transfer-learning recipes: the two-phase fine-tune, and a head trained on cached features."""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np

from zoo import training
from zoo.graph import inbound_layers
from zoo.transfer.heads import _feature_layer
from zoo.transfer.stages import _check_stage_names, _layers, _unfreeze, freeze, stage_of, unit_of
from zoo.utils import check_int

__all__ = ["FineTuneResult", "TransferResult", "fine_tune", "train_head_on_features"]


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


def fine_tune(model, train, validation=None, *, head_epochs=3, head_lr=3e-3, unfreeze="last_block",
              ft_epochs=3, ft_lr=1e-4, schedule="constant", optimizer="adam", train_bn=False,
              monitor=None, restore_best=True, patience=None, min_delta=0.0, min_steps=100, batch_size=32, seed=0,
              callbacks=(), verbose="auto", **fit_kwargs) -> TransferResult:
    """The two-phase recipe: train the head with the backbone frozen, then fine-tune the top.

    Args:
        model: a model whose head is new (e.g. from :func:`replace_head`).
        train, validation: as for :func:`zoo.training.fit`.
        head_epochs, head_lr: phase 1 (everything but the head frozen). 3e-3 (Adam): a new head is a
            linear model on fixed features and learns fast; 1e-3 left a 4-class head near chance on
            10 labels per class (see ``tests/test_transfer.py``).
        unfreeze: what phase 2 trains besides the head: ``"last_block"``, an int
            (last N blocks), a stage/block name (from it to the top), ``"all"``,
            or ``None`` to skip phase 2.
        ft_epochs, ft_lr: phase 2, with a lower learning rate.
        train_bn: let BatchNorm statistics update in phase 2 (off by default).
        monitor: metric deciding the best epoch (default ``val_loss`` when there
            is validation data, else ``loss``); with ``restore_best`` the best
            weights of either phase are restored at the end.
        patience, min_delta: early stopping within each phase on ``monitor`` (see
            :func:`zoo.training.fit`); ``None`` runs every epoch.
        min_steps: each phase trains for at least this many optimizer steps, with more epochs when
            the data are small (``None``: exactly the epochs given). Ten labels per class make two
            batches an epoch: three epochs of a head at 1e-3 barely move it, a hundred steps do.
        fit_kwargs: more :func:`zoo.training.fit` arguments (weight_decay, loss, ...).

    The model is recompiled whenever trainability changes. Unless ``verbose=0``, each phase starts with a
    line saying what it trains, for how many epochs and why (``min_steps`` raising them).
    """
    head_epochs = check_int("head_epochs", head_epochs, minimum=0)
    ft_epochs = check_int("ft_epochs", ft_epochs, minimum=0)
    min_steps = check_int("min_steps", min_steps, minimum=0, allow_none=True)
    per_epoch = training.steps_per_epoch(train, batch_size) if min_steps else None
    asked = {"head": head_epochs, "fine_tune": ft_epochs}
    if per_epoch:  # small data: enough epochs for min_steps updates in each phase that runs
        head_epochs, ft_epochs = (max(e, -(-min_steps // per_epoch)) if e else 0 for e in (head_epochs, ft_epochs))

    def banner(phase, number, what, epochs, lr):
        if verbose == 0:
            return
        why = (f" ({asked[phase]} asked; min_steps={min_steps} at {per_epoch} batch(es) an epoch)"
               if epochs != asked[phase] else "")
        print(f"[fine_tune] phase {number}: {what}, {epochs} epoch(s){why} at learning rate {lr:g}", flush=True)

    monitor = monitor or ("val_loss" if validation is not None else "loss")
    best = _BestWeights(monitor)
    history, phases, seconds = {}, [], {}
    freeze(model)  # validates the stages before any training
    common = dict(batch_size=batch_size, seed=seed, verbose=verbose, schedule=schedule, optimizer=optimizer,
                  patience=patience, min_delta=min_delta, monitor=monitor, **fit_kwargs)
    if head_epochs:
        banner("head", 1, "the head only, the backbone frozen", head_epochs, head_lr)
        start = time.perf_counter()
        h = training.fit(model, train, validation, epochs=head_epochs, learning_rate=head_lr,
                         callbacks=[best, *callbacks], **common)
        seconds["head"] = time.perf_counter() - start
        _merge(history, h.history)
        head_run = len(h.epoch)  # fewer than head_epochs when stopped early
        phases.append(("head", 0, head_run))
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
        banner("fine_tune", 2, f"the head and {unfreeze!r} unfrozen", ft_epochs, ft_lr)
        best.offset = head_run if head_epochs else 0
        start = time.perf_counter()
        h = training.fit(model, train, validation, epochs=ft_epochs, learning_rate=ft_lr,
                         callbacks=[best, *callbacks], **common)
        seconds["fine_tune"] = time.perf_counter() - start
        _merge(history, h.history)
        phases.append(("fine_tune", best.offset, best.offset + len(h.epoch)))
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
        if len(inbound_layers(layer)) > 1:
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
