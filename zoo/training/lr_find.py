"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks"; fastai's
``lr_find``): train for a few hundred batches while the learning rate grows exponentially, record the loss,
and suggest the rate where the loss falls fastest."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import keras
import numpy as np

from zoo.training.checks import check_finite_data
from zoo.training.compile import compile_model
from zoo.utils import check_float, check_int

__all__ = ["LRFinderResult", "lr_find"]


@dataclass
class LRFinderResult:
    """What :func:`lr_find` measured.

    Attributes:
        rates: the learning rate of each batch.
        losses: each batch's training loss.
        smoothed: ``losses`` smoothed by an exponential moving average (bias-corrected); the sweep stops
            on it, never on one batch.
        suggestion: the rate to start from, or ``None`` when the curve gives none (``note`` says why).
            When the smoothed loss fell: the rate of its steepest descent (against log rate) before its
            minimum, or a tenth of the rate at the minimum when lower. When it never fell (a model trained
            already): a tenth of the rate at which it doubled.
        stopped_early: the sweep ended because the smoothed loss exceeded ``stop_factor`` times its minimum,
            or a batch loss was not finite (it diverged).
        note: how the suggestion was chosen, or why there is none, in words.
    """

    rates: list
    losses: list
    smoothed: list
    suggestion: float | None
    stopped_early: bool
    note: str = ""

    def plot(self, path):
        """Loss against learning rate (log scale), the suggestion marked; saves a PNG at ``path``.

        The y-axis holds the whole smoothed curve and all but the highest raw batch losses (the last
        batches of a diverging sweep would squash the rest); the note, under the title, says how the
        suggestion was chosen or why there is none; the legend sits below the axes, covering nothing.
        """
        from zoo.plots import figure, save

        fig = figure(6.0, 4.0)
        ax = fig.add_subplot()
        ax.plot(self.rates, self.losses, color="#bbbbbb", linewidth=0.8, label="batch loss")
        ax.plot(self.rates, self.smoothed, color="#1f77b4", linewidth=1.6, label="smoothed")
        if self.suggestion is not None:
            ax.axvline(self.suggestion, color="#d62728", linestyle="--", linewidth=1.0,
                       label=f"suggestion {self.suggestion:.2g}")
        ax.set_xscale("log")
        limits = _y_limits(self.losses, self.smoothed)
        if limits:
            ax.set_ylim(*limits)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        fig.suptitle("Learning-rate range test", fontsize=11)
        if self.note:  # how the suggestion was chosen, or why there is none
            found = self.suggestion is not None
            ax.set_title(textwrap.fill(("Suggestion: " if found else "No suggestion: ") + self.note, 110),
                         fontsize=7, loc="left", color="#555555" if found else "#b00000")
        fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
        return save(fig, path)


def _y_limits(losses, smoothed):
    """``(low, high)`` holding every finite smoothed value and the raw losses up to their 95th percentile."""
    smooth = np.asarray([v for v in smoothed if math.isfinite(v)], dtype="float64")
    raw = np.asarray([v for v in losses if math.isfinite(v)], dtype="float64")
    if not len(smooth):
        return None
    low = min(smooth.min(), np.percentile(raw, 1) if len(raw) else smooth.min())
    high = max(smooth.max(), np.percentile(raw, 95) if len(raw) else smooth.max())
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
    return float(low - pad), float(high + pad)


_SETTLE = 10  # batches before the stop rule applies; their spread measures the loss's noise (see _Sweep.noise)


class _Sweep(keras.callbacks.Callback):
    def __init__(self, rates, stop_factor, beta):
        super().__init__()
        self.rates, self.stop_factor, self.beta = rates, stop_factor, beta
        self.losses, self.smoothed, self.diverged, self.noise = [], [], False, 0.0
        self._average = 0.0
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
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smooth = self._average / (1 - self.beta ** len(self.losses))
        self.smoothed.append(smooth)
        if len(self.losses) == _SETTLE:
            self.noise = _noise(self.losses)
        if not math.isfinite(loss) or (self.stop_factor is not None and len(self.losses) > _SETTLE
                                       and smooth > self.stop_factor * _floor(self.smoothed[:-1], self.noise)):
            self.diverged = True
        if self.diverged or len(self.losses) >= len(self.rates):
            self.model.stop_training = True


def _noise(losses):
    """The spread (standard deviation) of the first batches' losses: at ``start_lr`` the weights barely move,
    so it is the batch-to-batch noise of the loss itself."""
    first = [v for v in losses[:_SETTLE] if math.isfinite(v)]
    return float(np.std(first)) if len(first) > 1 else 0.0


def _floor(smoothed, noise):
    """The level a rise is measured from: the smoothed loss's minimum so far, but never below the noise.

    Smith's and fastai's rule (stop when the smoothed loss exceeds 4x its minimum) is a ratio: on a trained
    model whose loss is near 0, its minimum is a lucky stretch of batches and 4x of it is noise, not
    divergence. A rise must also be large against the batch-to-batch spread."""
    finite = [v for v in smoothed if math.isfinite(v)]
    return max(min(finite), noise) if finite else noise


def _suggest(rates, smoothed, noise=0.0):
    """``(suggestion or None, note)`` from the smoothed curve.

    When the loss fell (below its level after the first batches by a tenth of it and by twice the noise):
    the rate of the steepest descent of ``smoothed`` against log rate before its minimum, or a tenth of
    the rate at the minimum when that is lower (the smoothed curve lags the raw one, so the steepest point
    can sit close to where the loss blows up; fastai's two rules, the safer one). When it never fell, the
    model is trained already (or ``start_lr`` too high): a tenth of the rate from which the smoothed loss
    stays above twice its floor (:func:`_floor`), a rate that still leaves the loss where it is.
    """
    values = np.asarray(smoothed, dtype="float64")
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) < 5:
        return None, f"only {len(finite)} batch(es) with a finite loss: too few to read a curve"
    values, rates = values[: finite[-1] + 1], np.asarray(rates[: finite[-1] + 1], dtype="float64")
    end = int(np.nanargmin(values))
    # the first few averages are little more than single batches: the curve is read after them
    settled = min(_SETTLE, len(values) // 2)
    start = values[settled - 1]  # the mean of the first batches (bias-corrected average)
    if end > settled and values[end] <= start - max(0.1 * abs(start), 2 * noise):
        slope = np.gradient(values[: end + 1], np.log(rates[: end + 1]))
        steepest = rates[settled + int(np.nanargmin(slope[settled:]))]
        if steepest <= rates[end] / 10:
            return float(steepest), f"the steepest descent of the smoothed loss ({start:.3g} -> {values[end]:.3g})"
        return float(rates[end] / 10), (f"a tenth of the rate at the smoothed loss's minimum ({values[end]:.3g} at "
                                        f"{rates[end]:.2g}), below its steepest descent at {steepest:.2g}")
    never = (f"the smoothed loss never fell (about {start:.3g} from {rates[0]:.2g}, batch-to-batch spread "
             f"{noise:.2g}), as for a model trained already")
    # where it doubled for good: one bad batch lifts the smoothed loss for a few batches, then it settles
    above = values > 2 * _floor(values, noise)
    rise = len(values) - int(np.argmin(above[::-1])) if not above.all() else 0
    if rise >= len(values) or rise < _SETTLE:
        return None, (f"{never}, and it never rose up to {rates[-1]:.2g} either: nothing marks a rate "
                      "(raise end_lr, or check that the data and labels match the model)")
    return float(rates[rise] / 10), (f"{never}: a tenth of the rate at which it doubled ({rates[rise]:.2g}), "
                                     "to go on training without undoing it")


def _check_train(train):
    """``train`` as ``(x, y)`` arrays or a batched dataset, neither empty nor holding NaN or infinities (a sweep
    on them would suggest a rate from a meaningless loss); else a ``ValueError``/``TypeError`` naming it."""
    if isinstance(train, (tuple, list)):
        if len(train) != 2:
            raise ValueError(f"`train` must be (x, y) arrays or a batched dataset. Received: a "
                             f"{type(train).__name__} of {len(train)} items")
        train = tuple(train)
        sizes = [len(part) if hasattr(part, "__len__") else None for part in train]
        if None in sizes:
            raise TypeError(f"`train` must be (x, y) arrays or a batched dataset. Received: ({type(train[0]).__name__}, "
                            f"{type(train[1]).__name__})")
        if sizes[0] == 0 or sizes[0] != sizes[1]:
            raise ValueError(f"`train` must hold at least one example, as many x as y. Received: {sizes[0]} x, "
                             f"{sizes[1]} y")
    elif not (hasattr(train, "repeat") and hasattr(train, "take")):
        raise TypeError(f"`train` must be (x, y) arrays or a batched dataset. Received: train={train!r}"[:300])
    elif next(iter(train.take(1)), None) is None:
        raise ValueError("`train` is an empty dataset: the sweep needs batches")
    check_finite_data(train, "train")
    return train


def lr_find(model, train, *, start_lr=1e-7, end_lr=10.0, steps=100, batch_size=32, optimizer="adam", seed=0,
            stop_factor=4.0, **compile_kwargs) -> LRFinderResult:
    """Sweep the learning rate exponentially from ``start_lr`` to ``end_lr`` over ``steps`` batches.

    The model is compiled with ``optimizer`` (and ``compile_kwargs``, e.g. ``loss``) and trained one
    batch per rate; its weights are restored afterwards, so the sweep leaves it as it was (recompile
    it, e.g. through :func:`zoo.training.fit`, before training). The sweep ends early when the smoothed
    loss exceeds ``stop_factor`` times its minimum, or a batch loss is not finite.

    Args:
        model: a ``keras.Model``; a trained one gets a rate to go on training from (see
            :class:`LRFinderResult`).
        train: ``(x, y)`` arrays or a batched dataset (repeated as needed).
        start_lr, end_lr, steps: the sweep.
        batch_size: for arrays.
        stop_factor: stop once the smoothed loss exceeds this many times its minimum (Smith 2017 and
            fastai: 4); ``None`` sweeps to ``end_lr`` unless a loss is not finite.

    Returns:
        An :class:`LRFinderResult`; ``result.suggestion`` is the rate to start from (``result.note`` says
        how it was chosen, or why there is none), ``result.plot(path)`` draws the curve.

    Example:
        >>> result = lr_find(zoo.build("lenet5", input_shape=(32, 32, 1)), bundle.train)
        >>> fit(model, bundle.train, learning_rate=result.suggestion)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    train = _check_train(train)
    start_lr = check_float("start_lr", start_lr, minimum=1e-12)
    end_lr = check_float("end_lr", end_lr, minimum=1e-12)
    if end_lr <= start_lr:
        raise ValueError(f"`end_lr` must be larger than `start_lr`. Received: start_lr={start_lr}, end_lr={end_lr}")
    steps = check_int("steps", steps, minimum=5, maximum=100_000)
    batch_size = check_int("batch_size", batch_size)
    stop_factor = None if stop_factor is None else check_float("stop_factor", stop_factor, minimum=1.0)
    rates = list(np.geomspace(start_lr, end_lr, steps))
    weights = model.get_weights()
    keras.utils.set_random_seed(check_int("seed", seed, minimum=0))
    compile_model(model, optimizer=optimizer, learning_rate=start_lr, **compile_kwargs)
    sweep = _Sweep(rates, stop_factor, beta=0.9)
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
    suggestion, note = _suggest(rates[: len(losses)], sweep.smoothed, sweep.noise)
    return LRFinderResult(rates=[float(r) for r in rates[: len(losses)]], losses=losses, smoothed=sweep.smoothed,
                          suggestion=suggestion, stopped_early=sweep.diverged, note=note)
