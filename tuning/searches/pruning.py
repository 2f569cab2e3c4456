"""Median pruning: stop a trial whose validation metric trails the earlier trials at the same epoch.

The rule is Optuna's ``MedianPruner``: after epoch ``e`` (past ``warmup_epochs``),
once ``min_trials`` earlier trials have completed, a trial whose best value so
far is worse than the median of those trials' values at epoch ``e`` stops
there (never after its last epoch: nothing would be saved). Its record gets the status
``pruned``: it keeps its history and size but is never ranked, never on a front and never
a parent in NSGA-II. With
several objectives the pruner watches the first one, which must be a metric
logged every epoch (``val_*``).
"""

from __future__ import annotations

import dataclasses
import functools
import statistics

from tuning.records import finite

__all__ = ["MedianPruner", "PRUNERS", "check_pruning"]

PRUNERS = ("median",)


@dataclasses.dataclass(frozen=True)
class MedianPruner:
    """Median pruning settings.

    Args:
        min_trials: completed trials needed before any trial is pruned (Optuna's ``n_startup_trials``).
        warmup_epochs: epochs every trial runs before it may be pruned.
    """

    min_trials: int = 5
    warmup_epochs: int = 1

    def __post_init__(self):
        for name in ("min_trials", "warmup_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"`{name}` must be an int >= 0. Received: {name}={value!r}")

    def callback(self, records, *, monitor, direction):
        """A Keras callback for one trial, judged against ``records`` (the completed ones count)."""
        return _callback_class()(self, records, monitor=monitor, direction=direction)

    def describe(self) -> dict:
        return {"name": "median", **dataclasses.asdict(self)}


def check_pruning(pruning, *, algorithm, monitor):
    """``None`` or a :class:`MedianPruner` from ``None``, ``"median"`` or a pruner; the monitored metric must
    be logged every epoch and the algorithm must not be Hyperband (which stops trials its own way)."""
    if pruning is None:
        return None
    if isinstance(pruning, str):
        if pruning not in PRUNERS:
            raise ValueError(f"`pruning` must be one of {list(PRUNERS)}, a MedianPruner or None. "
                             f"Received: pruning={pruning!r}")
        pruning = MedianPruner()
    if not isinstance(pruning, MedianPruner):
        raise TypeError(f"`pruning` must be 'median', a tuning.searches.pruning.MedianPruner or None. "
                        f"Received: pruning={pruning!r}")
    if algorithm == "hyperband":
        raise ValueError("Hyperband stops trials by its own schedule: use pruning=None with it. "
                         f"Received: pruning={pruning!r}, algorithm='hyperband'")
    if not monitor.startswith("val_"):
        raise ValueError(f"Pruning watches the (first) objective epoch by epoch, so it must be a validation "
                         f"metric (val_*). Received: objective={monitor!r}")
    return pruning


@functools.cache
def _callback_class():
    """The Keras callback class, made on first use: choosing a pruner (and listing algorithms) imports no Keras."""
    import keras

    class PruneCallback(keras.callbacks.Callback):
        def __init__(self, pruner, records, *, monitor, direction):
            super().__init__()
            self.pruner, self.monitor, self.direction = pruner, monitor, direction
            self.earlier = [r.get("history", {}).get(monitor, []) for r in records if r.get("status") == "completed"]
            self.best = None
            self.prune_reason = None  # run_trial records a trial whose callback sets this as "pruned"

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(self.monitor)
            if not finite(value):
                return
            value = float(value)
            better = max if self.direction == "max" else min
            self.best = value if self.best is None else better(self.best, value)
            last = (self.params or {}).get("epochs")
            if epoch + 1 <= self.pruner.warmup_epochs or (last is not None and epoch + 1 >= last):
                return  # warming up, or trained to the end already: nothing left to save
            at_epoch = [h[epoch] for h in self.earlier if len(h) > epoch and finite(h[epoch])]
            if len(at_epoch) < max(1, self.pruner.min_trials):
                return
            median = statistics.median(at_epoch)
            worse = self.best < median if self.direction == "max" else self.best > median
            if worse:
                self.prune_reason = (f"pruned at epoch {epoch + 1}: best {self.monitor}={self.best:.4g} is worse "
                                     f"than the median {median:.4g} of {len(at_epoch)} completed trials at that epoch")
                self.model.stop_training = True

    return PruneCallback
