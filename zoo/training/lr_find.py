"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks"; fastai's
``lr_find``): train for a few hundred batches while the learning rate grows exponentially, record the loss,
and suggest the rate where the loss falls fastest."""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from zoo.training.compile import compile_model
from zoo.utils import check_float, check_int

__all__ = ["LRFinderResult", "lr_find"]


@dataclass
class LRFinderResult:
    """What :func:`lr_find` measured.

    Attributes:
        rates: the learning rate of each batch.
        losses: each batch's training loss.
        smoothed: ``losses`` smoothed by an exponential moving average (bias-corrected).
        suggestion: the rate at the steepest descent of the smoothed loss (against log rate) before its
            minimum, or a tenth of the rate at the minimum when lower; ``None`` when the loss never fell.
        stopped_early: the sweep ended because the loss exceeded 4x its minimum (it diverged).
    """

    rates: list
    losses: list
    smoothed: list
    suggestion: float | None
    stopped_early: bool

    def plot(self, path):
        """Loss against learning rate (log scale), the suggestion marked; saves a PNG at ``path``."""
        from zoo.plots import figure, save

        fig = figure(6.0, 4.0)
        ax = fig.add_subplot()
        ax.plot(self.rates, self.losses, color="#bbbbbb", linewidth=0.8, label="batch loss")
        ax.plot(self.rates, self.smoothed, color="#1f77b4", linewidth=1.6, label="smoothed")
        if self.suggestion is not None:
            ax.axvline(self.suggestion, color="#d62728", linestyle="--", linewidth=1.0,
                       label=f"suggestion {self.suggestion:.2g}")
        ax.set_xscale("log")
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if finite:  # from the lowest loss to a little above the starting one: the divergence is cut off
            low, high = min(finite), max(finite[0], min(finite))
            ax.set_ylim(low - 0.1 * abs(low), high + 0.5 * abs(high))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title("Learning-rate range test")
        ax.legend(loc="upper left", fontsize=8)
        return save(fig, path)


class _Sweep(keras.callbacks.Callback):
    def __init__(self, rates):
        super().__init__()
        self.rates, self.losses, self.diverged = rates, [], False
        self._mean, self._count = 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._mean, self._count = 0.0, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(self.rates[len(self.losses)])

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the epoch's running mean: the batch's own loss is recovered from two means
        mean = float(logs["loss"])
        loss = mean * (self._count + 1) - self._mean * self._count
        self._mean, self._count = mean, self._count + 1
        self.losses.append(loss)
        best = min(self.losses)
        if not math.isfinite(loss) or (len(self.losses) > 10 and loss > 4 * best and best > 0):
            self.diverged = True
        if self.diverged or len(self.losses) >= len(self.rates):
            self.model.stop_training = True


def _smooth(values, beta=0.9):
    out, average = [], 0.0
    for i, v in enumerate(values, start=1):
        average = beta * average + (1 - beta) * v
        out.append(average / (1 - beta ** i))
    return out


def _suggest(rates, smoothed):
    """The rate of the steepest descent of ``smoothed`` against log rate before its minimum, or a tenth of the
    rate at the minimum when that is lower (the smoothed curve lags the raw one, so the steepest point can sit
    close to where the loss blows up; fastai's two rules, the safer one)."""
    values = np.asarray(smoothed, dtype="float64")
    if len(values) < 5 or not np.isfinite(values).any():
        return None
    end = int(np.nanargmin(values))
    if end < 2:
        return None
    slope = np.gradient(values[: end + 1], np.log(np.asarray(rates[: end + 1])))
    return float(min(rates[int(np.argmin(slope))], rates[end] / 10))


def lr_find(model, train, *, start_lr=1e-7, end_lr=10.0, steps=100, batch_size=32, optimizer="adam", seed=0,
            **compile_kwargs) -> LRFinderResult:
    """Sweep the learning rate exponentially from ``start_lr`` to ``end_lr`` over ``steps`` batches.

    The model is compiled with ``optimizer`` (and ``compile_kwargs``, e.g. ``loss``) and trained one
    batch per rate; its weights are restored afterwards, so the sweep leaves it as it was (recompile
    it, e.g. through :func:`zoo.training.fit`, before training). The sweep ends early when the loss
    exceeds four times its minimum.

    Args:
        model: a ``keras.Model``.
        train: ``(x, y)`` arrays or a batched dataset (repeated as needed).
        start_lr, end_lr, steps: the sweep.
        batch_size: for arrays.

    Returns:
        An :class:`LRFinderResult`; ``result.suggestion`` is the rate to start from, ``result.plot(path)``
        draws the curve.

    Example:
        >>> result = lr_find(zoo.build("lenet5", input_shape=(32, 32, 1)), bundle.train)
        >>> fit(model, bundle.train, learning_rate=result.suggestion)
    """
    start_lr = check_float("start_lr", start_lr, minimum=1e-12)
    end_lr = check_float("end_lr", end_lr, minimum=1e-12)
    if end_lr <= start_lr:
        raise ValueError(f"`end_lr` must be larger than `start_lr`. Received: start_lr={start_lr}, end_lr={end_lr}")
    steps = check_int("steps", steps, minimum=5, maximum=100_000)
    batch_size = check_int("batch_size", batch_size)
    rates = list(np.geomspace(start_lr, end_lr, steps))
    weights = model.get_weights()
    keras.utils.set_random_seed(check_int("seed", seed, minimum=0))
    compile_model(model, optimizer=optimizer, learning_rate=start_lr, **compile_kwargs)
    sweep = _Sweep(rates)
    try:
        if isinstance(train, (tuple, list)):
            x, y = train
            epochs = -(-steps // max(1, -(-len(x) // batch_size)))  # enough passes over the arrays
            model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[sweep])
        else:  # a dataset, repeated: one "epoch" of `steps` batches
            model.fit(train.repeat(), epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=[sweep])
    finally:
        model.set_weights(weights)
    losses = sweep.losses
    smoothed = _smooth(losses)
    return LRFinderResult(rates=[float(r) for r in rates[: len(losses)]], losses=losses, smoothed=smoothed,
                          suggestion=_suggest(rates[: len(losses)], smoothed), stopped_early=sweep.diverged)
