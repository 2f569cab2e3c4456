"""Read loss curves the way introductory courses teach it: one label and one reason per run.

The labels follow the usual classroom reading of training/validation curves
(J. Brownlee's "learning curves" diagnostics, as taught in e.g. the ULiège
deep-learning course):

* ``unstable``: the training loss becomes NaN/inf, climbs back up or keeps
  jumping up: usually a learning rate (or momentum) that is too high.
* ``unrepresentative validation``: the validation loss is far *below* the
  training loss, or jumps around while the training loss decreases smoothly:
  the validation set is too small or not drawn like the training set.
* ``overfitting``: the validation loss rises from its minimum (or levels off)
  while the training loss keeps falling, so the gap grows.
* ``unrepresentative training``: both losses improve, but the validation loss
  stays far above the training loss the whole way: the training set does not
  show the model what the validation set holds (too small, or drawn differently).
* ``learning rate too low``: the training loss falls along a straight line,
  slowly, with no sign of flattening: far from converged, and at that pace it
  would take many more epochs.
* ``underfitting``: the training loss stays high (low training accuracy, or a
  nearly flat curve) and has stopped improving; validation tracks training.
* ``still improving``: both losses were still going down at the last epoch:
  training stopped too early.
* ``good fit``: the training loss came down and flattened, and the validation
  loss flattened close to it (a large gap is never a good fit).

Rules are checked in that order; the first that matches gives the label.
Every threshold lives in :data:`THRESHOLDS` and is described by :func:`rules`,
so that a report can state exactly what it applied.
"""

from __future__ import annotations

import math

__all__ = ["LABELS", "THRESHOLDS", "diagnose", "rules", "summarize"]

LABELS = (
    "unstable",
    "unrepresentative validation",
    "overfitting",
    "unrepresentative training",
    "learning rate too low",
    "underfitting",
    "still improving",
    "good fit",
)

THRESHOLDS = {
    # unstable
    "climb_back": 0.5,  # train loss ends above its minimum by > this fraction of its range
    "jump_of_range": 0.10,  # an epoch-to-epoch rise of the train loss larger than this fraction of its range...
    "jump_of_value": 0.05,  # ...and than this fraction of the loss before the jump...
    "max_jumps": 2,  # ...happening at least this many times
    # unrepresentative validation
    "val_below_train": 0.5,  # final val loss < this x final train loss
    "erratic_turns": 0.5,  # val loss changes direction in >= this fraction of the possible epochs...
    "erratic_ratio": 3.0,  # ...with mean |step| >= this x the train loss' mean |step|...
    "erratic_amplitude": 0.05,  # ...and >= this fraction of the mean val loss
    # overfitting
    "val_rise": 0.10,  # val loss ends > (1 + this) x its minimum while train loss kept falling
    "plateau_gain": 0.01,  # or: val loss improved < this fraction over the last third...
    "gap_growth": 2.0,  # ...while the val - train gap grew this many times since the val minimum...
    "gap_of_loss": 0.25,  # ...to more than this fraction of the final val loss
    # unrepresentative training set; and the gap a good fit may have at most
    "gap_of_val": 0.3,  # final val - train gap above this fraction of the final val loss...
    "gap_of_drop": 0.25,  # ...and above this fraction of how much the training loss came down...
    "both_improve": 0.05,  # ...with both losses this fraction below their first value
    # learning rate too low
    "linear_r2": 0.95,  # the training loss fits a straight line this well (R^2)...
    "no_flattening": 0.5,  # ...its last half falls at least this fraction as fast as its first half...
    "slow_total": 0.3,  # ...and it fell by less than this fraction overall (but more than flat_decrease / 2)
    # underfitting (once the train loss falls slower than improving_rate)
    "underfit_accuracy": 0.75,  # final train accuracy below this fraction of the way from chance to 100%
    "underfit_loss": 0.5,  # or final train cross-entropy above this fraction of chance level, ln(classes)
    "flat_decrease": 0.10,  # or, without accuracy and classes: train loss fell by less than this fraction overall
    # still improving / stopped
    "improving_rate": 0.05,  # relative decrease per epoch over the last third counted as "still going down"
}


def _floats(values):
    out = []
    for v in values or ():
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(float("nan"))
    return out


def _rate(curve):
    """Relative decrease per epoch over the last third of ``curve`` (>= 2 points); > 0 means falling."""
    k = max(2, math.ceil(len(curve) / 3))
    tail = curve[-k:]
    scale = max(abs(tail[0]), 1e-12)
    return (tail[0] - tail[-1]) / scale / (len(tail) - 1)


def _large_gap(loss, val, i):
    """Whether the validation loss is far above the training loss at epoch ``i`` (see ``gap_of_*``)."""
    gap = val[i] - loss[i]
    return gap > THRESHOLDS["gap_of_val"] * abs(val[i]) and gap > THRESHOLDS["gap_of_drop"] * (loss[0] - min(loss))


def _accuracy_threshold(num_classes):
    """``underfit_accuracy`` of the way from chance to 100%: 0.775 for 10 classes, 0.875 for 2; 0.8 if unknown."""
    if not num_classes:
        return 0.8
    chance = 1.0 / (2 if num_classes == 1 else num_classes)
    return chance + (1.0 - chance) * THRESHOLDS["underfit_accuracy"]


def _chance_loss(num_classes):
    """Cross-entropy of a uniform guess: ln(classes)."""
    return math.log(2 if num_classes in (1, 2) else num_classes) if num_classes else None


def rules(num_classes=None) -> list[tuple[str, str]]:
    """``(label, rule)`` pairs in the order they are checked, with their thresholds."""
    t = THRESHOLDS
    pct = lambda v: f"{100 * v:g}%"  # noqa: E731
    acc = _accuracy_threshold(num_classes)
    way = f"{pct(t['underfit_accuracy'])} of the way from chance to 100%"
    acc_text = f"{acc:.3f} ({way})" if num_classes else f"{way} (0.8 if the class count is unknown)"
    chance = _chance_loss(num_classes)
    loss_text = (f"{t['underfit_loss'] * chance:.3f}, {t['underfit_loss']:g} x the cross-entropy of a uniform "
                 f"guess ln({num_classes})" if chance else
                 f"{t['underfit_loss']:g} x the cross-entropy of a uniform guess, ln(classes)")
    return [
        ("unstable",
         f"a loss is NaN/inf; or the training loss climbs back above its minimum by more than "
         f"{pct(t['climb_back'])} of its range; or it jumps up at least {t['max_jumps']} times from one epoch "
         f"to the next by more than {pct(t['jump_of_range'])} of its range and {pct(t['jump_of_value'])} of its "
         f"value. Typical cause: learning rate or momentum too high."),
        ("unrepresentative validation",
         f"the final validation loss is below {t['val_below_train']:g} x the final training loss; or the "
         f"validation loss changes direction in at least {pct(t['erratic_turns'])} of the epochs with steps "
         f"{t['erratic_ratio']:g} x larger than the training loss' steps and larger than "
         f"{pct(t['erratic_amplitude'])} of its mean. Typical cause: a validation set too small or drawn "
         f"differently from the training set."),
        ("overfitting",
         f"the validation loss ends more than {pct(t['val_rise'])} above its minimum while the training "
         f"loss is lower than at that minimum; or the validation loss improved by less than "
         f"{pct(t['plateau_gain'])} over the last third of the epochs while the training loss kept falling and "
         f"the validation-training gap grew {t['gap_growth']:g} x, to more than {pct(t['gap_of_loss'])} of "
         f"the validation loss. Remedies: fewer parameters, regularisation, augmentation, more data, early stopping."),
        ("unrepresentative training",
         f"both losses fell by more than {pct(t['both_improve'])} from their first value, but the validation "
         f"loss ends above the training loss by more than {pct(t['gap_of_val'])} of the validation loss and "
         f"{pct(t['gap_of_drop'])} of the training loss' decrease, over the whole last third of the epochs. Typical cause: a training set too small or drawn "
         f"differently from the validation set; more (or more varied) training data."),
        ("learning rate too low",
         f"at least 5 epochs in which the training loss follows a straight line (R^2 >= {t['linear_r2']:g}), its "
         f"last half falling at least {pct(t['no_flattening'])} as fast as its first half, and between "
         f"{pct(t['flat_decrease'] / 2)} and {pct(t['slow_total'])} lower overall. Remedy: a larger learning rate (zoo lr-find suggests one)."),
        ("underfitting",
         f"the training loss has stopped falling (less than {pct(t['improving_rate'])} per epoch over the "
         f"last third) while it is still high: final training accuracy below {acc_text}, or final training "
         f"loss above {loss_text}, or (no accuracy, no class count) the training loss fell by less than "
         f"{pct(t['flat_decrease'])} overall. Remedies: a bigger model, longer training, a better learning rate."),
        ("still improving",
         f"the training loss and (when present) the validation loss both still fall by more than "
         f"{pct(t['improving_rate'])} per epoch over the last third of the epochs, or there is only one "
         f"epoch: training stopped too early; train for more epochs."),
        ("good fit",
         f"none of the above, and the final gap between the losses is within those of the unrepresentative "
         f"training rule (otherwise the run counts as overfitting): the losses came down, flattened, and stay "
         f"close to each other."),
    ]


def diagnose(history, *, num_classes=None) -> tuple[str, str]:
    """Label a run's loss curves: underfitting, overfitting, still improving, unstable, ...

    Args:
        history: per-epoch values, as ``keras.callbacks.History.history`` or
            a trial record's ``history``: ``loss`` and optionally ``val_loss``,
            ``accuracy``, ``val_accuracy``.
        num_classes: classes of the task (sets the "training accuracy is low"
            threshold half-way between chance and 100%).

    Returns:
        ``(label, reason)``: a label of :data:`LABELS` (or ``"n/a"`` without a
        training loss) and one sentence with the numbers that decided it.

    Example:
        >>> diagnose({"loss": [1.0, 0.5, 0.3, 0.25, 0.24], "val_loss": [1.1, 0.6, 0.4, 0.5, 0.7]})[0]
        'overfitting'
    """
    history = dict(history or {})
    loss = _floats(history.get("loss"))
    val = _floats(history.get("val_loss"))
    acc = _floats(history.get("accuracy"))
    val_acc = _floats(history.get("val_accuracy"))
    t = THRESHOLDS
    if not loss:
        return "n/a", "no training loss recorded"
    n = len(loss)

    # 1. unstable
    for name, curve in (("training", loss), ("validation", val)):
        bad = next((i for i, v in enumerate(curve) if not math.isfinite(v)), None)
        if bad is not None:
            return "unstable", f"the {name} loss is not finite at epoch {bad + 1} (learning rate too high?)"
    lo, hi = min(loss), max(loss)
    span = hi - lo
    i_min = loss.index(lo)
    if n >= 3 and i_min < n - 1 and span > 0 and loss[-1] - lo > t["climb_back"] * span:
        return "unstable", (
            f"the training loss went down to {lo:.4g} at epoch {i_min + 1} and climbed back to {loss[-1]:.4g} "
            f"(learning rate too high?)")
    rises = [(i + 1, b - a, a) for i, (a, b) in enumerate(zip(loss, loss[1:]))]
    jumps = [e for e, rise, before in rises
             if rise > t["jump_of_range"] * span and rise > t["jump_of_value"] * abs(before)]
    if len(jumps) >= t["max_jumps"]:
        return "unstable", (
            f"the training loss jumped up {len(jumps)} times (after epochs {', '.join(map(str, jumps[:5]))}): it "
            f"oscillates instead of decreasing (learning rate too high?)")

    if n < 2:
        return "still improving", "a single epoch: the curves cannot have settled yet; train longer to judge"

    # 2. unrepresentative validation
    if val and len(val) == n:
        if val[-1] < t["val_below_train"] * loss[-1]:
            return "unrepresentative validation", (
                f"the validation loss ({val[-1]:.4g}) is far below the training loss ({loss[-1]:.4g}): the "
                f"validation set looks easier than the training set")
        if n >= 4:
            steps = [b - a for a, b in zip(val, val[1:])]
            turns = sum(1 for a, b in zip(steps, steps[1:]) if a * b < 0)
            val_step = sum(abs(s) for s in steps) / len(steps)
            train_step = sum(abs(b - a) for a, b in zip(loss, loss[1:])) / (n - 1)
            mean_val = sum(val) / n
            if (turns >= t["erratic_turns"] * (n - 2) and turns >= 2
                    and val_step >= t["erratic_ratio"] * train_step
                    and val_step >= t["erratic_amplitude"] * abs(mean_val)):
                return "unrepresentative validation", (
                    f"the validation loss changes direction {turns} times in {n} epochs with steps "
                    f"{val_step / max(train_step, 1e-12):.1f} x larger than the training loss': too noisy to "
                    f"judge the model (validation set too small?)")

        # 3. overfitting
        v_lo = min(val)
        j = val.index(v_lo)
        if j < n - 1 and val[-1] > (1 + t["val_rise"]) * v_lo and loss[-1] < loss[j]:
            return "overfitting", (
                f"the validation loss was lowest at epoch {j + 1} ({v_lo:.4g}) and rose to {val[-1]:.4g} while "
                f"the training loss kept falling ({loss[j]:.4g} -> {loss[-1]:.4g})")
        k = max(2, math.ceil(n / 3))
        gap_then, gap_now = val[j] - loss[j], val[-1] - loss[-1]
        val_gain = (val[-k] - val[-1]) / max(abs(val[-k]), 1e-12)
        if (n >= 4 and val_gain < t["plateau_gain"] and _rate(loss) > t["improving_rate"]
                and gap_now > t["gap_growth"] * max(gap_then, 0.0) and gap_now > t["gap_of_loss"] * abs(val[-1])):
            return "overfitting", (
                f"the validation loss levelled off ({val[-k]:.4g} -> {val[-1]:.4g} over the last {k} epochs) while "
                f"the training loss kept falling; the gap grew from {gap_then:.4g} to {gap_now:.4g}")

        # 4. unrepresentative training set: both improve, a large gap all the way
        if (loss[-1] < (1 - t["both_improve"]) * loss[0] and val[-1] < (1 - t["both_improve"]) * val[0]
                and all(_large_gap(loss, val, i) for i in range(n - k, n))):
            return "unrepresentative training", (
                f"both losses improved ({loss[0]:.4g} -> {loss[-1]:.4g} and {val[0]:.4g} -> {val[-1]:.4g}) but the "
                f"validation loss stayed far above the training loss (gap {val[-1] - loss[-1]:.4g} at the end): "
                f"the training set does not represent the validation data")

    # 5. learning rate too low: a slow straight line
    if n >= 5:
        epochs = list(range(n))
        mean_x, mean_y = (n - 1) / 2, sum(loss) / n
        sxx = sum((e - mean_x) ** 2 for e in epochs)
        slope = sum((e - mean_x) * (v - mean_y) for e, v in zip(epochs, loss)) / sxx
        total = sum((v - mean_y) ** 2 for v in loss)
        residual = sum((v - (mean_y + slope * (e - mean_x))) ** 2 for e, v in zip(epochs, loss))
        r2 = 1 - residual / total if total > 0 else 0.0
        half = n // 2
        first, last = (loss[0] - loss[half]) / half, (loss[half] - loss[-1]) / (n - 1 - half)
        drop = (loss[0] - loss[-1]) / max(abs(loss[0]), 1e-12)
        if (slope < 0 and r2 >= t["linear_r2"] and last >= t["no_flattening"] * first > 0
                and t["flat_decrease"] / 2 <= drop < t["slow_total"]):
            return "learning rate too low", (
                f"the training loss falls along a straight line (R^2 {r2:.3f}), slowly ({loss[0]:.4g} -> "
                f"{loss[-1]:.4g}, {100 * drop:.1f}% lower in {n} epochs) without flattening: raise the learning rate")

    # 6. underfitting
    train_rate = _rate(loss)
    if train_rate <= t["improving_rate"]:
        chance = _chance_loss(num_classes)
        if acc and math.isfinite(acc[-1]) and acc[-1] < _accuracy_threshold(num_classes):
            tracked = f", validation accuracy {val_acc[-1]:.3f}" if val_acc else ""
            return "underfitting", (
                f"the training loss stopped falling at a low training accuracy ({acc[-1]:.3f} < "
                f"{_accuracy_threshold(num_classes):.3f}{tracked}): the model cannot fit the training data")
        if chance and acc and loss[-1] > t["underfit_loss"] * chance:
            return "underfitting", (
                f"the training loss stopped falling at a high value ({loss[-1]:.4g} > {t['underfit_loss']:g} x "
                f"ln({num_classes}) = {t['underfit_loss'] * chance:.3f}): the model cannot fit the training data")
        if not acc and not chance:
            drop = (loss[0] - loss[-1]) / max(abs(loss[0]), 1e-12)
            if drop < t["flat_decrease"]:
                return "underfitting", (
                    f"the training loss is nearly flat ({loss[0]:.4g} -> {loss[-1]:.4g}, {100 * drop:.1f}% lower): "
                    f"the model cannot fit the training data")

    # 7. still improving
    val_rate = _rate(val) if val and len(val) == n else None
    if train_rate > t["improving_rate"] and (val_rate is None or val_rate > t["improving_rate"]):
        where = "both losses" if val_rate is not None else "the training loss"
        rates = f"{100 * train_rate:.1f}%" + (f" and {100 * val_rate:.1f}%" if val_rate is not None else "")
        return "still improving", (
            f"{where} still fall at the end ({rates} per epoch over the last epochs): training stopped too early")

    # 8. good fit, when the curves end close; a large gap left is the validation data's problem
    if val_rate is not None and _large_gap(loss, val, n - 1):
        return "overfitting", (
            f"the losses flattened far apart (final training {loss[-1]:.4g}, validation {val[-1]:.4g}): the model "
            f"does not generalise from the training data")
    if val_rate is not None:
        return "good fit", (
            f"the losses flattened close to each other (final training {loss[-1]:.4g}, validation {val[-1]:.4g})")
    return "good fit", f"the training loss came down and flattened ({loss[0]:.4g} -> {loss[-1]:.4g})"


def summarize(labels) -> str:
    """The most frequent label of several runs (ties: the first in :data:`LABELS` order), with counts."""
    labels = list(labels)
    if not labels:
        return "n/a"
    counts = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    order = {label: i for i, label in enumerate(LABELS)}
    return min(counts, key=lambda lab: (-counts[lab], order.get(lab, len(order))))
