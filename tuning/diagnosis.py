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
* ``good fit``: the training loss came down and flattened, well above chance (its
  accuracy, or its loss against a uniform guess), and the validation loss flattened
  close to it (a large gap is never a good fit). It is earned, never the fallback:
* ``unclear``: no rule decides (e.g. the training loss still falls while the
  validation loss has stopped, or the loss flattened near chance level): more
  epochs, or the numbers in the reason, tell.

Rules are checked in the order of :data:`RULES`, one table of ``(label, rule, explanation)`` rows: the
first rule that matches gives the label and its reason. Every threshold lives in :data:`THRESHOLDS`;
:func:`rules` states the table in words, so that a report says exactly what it applied.
"""

from __future__ import annotations

import math

__all__ = ["ADVICE", "LABELS", "RULES", "THRESHOLDS", "diagnose", "rules", "summarize"]

LABELS = (
    "unstable",
    "unrepresentative validation",
    "overfitting",
    "unrepresentative training",
    "learning rate too low",
    "underfitting",
    "still improving",
    "good fit",
    "unclear",
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


class _Curves:
    """A run's per-epoch values, as the rules read them."""

    def __init__(self, history, num_classes):
        history = dict(history or {})
        self.loss = _floats(history.get("loss"))
        self.val = _floats(history.get("val_loss"))
        self.acc = _floats(history.get("accuracy"))
        self.val_acc = _floats(history.get("val_accuracy"))
        self.num_classes = num_classes
        self.n = len(self.loss)
        self.paired = bool(self.val) and len(self.val) == self.n  # a validation loss for every epoch
        self.last = max(2, math.ceil(self.n / 3))  # epochs in the last third


# ----------------------------------------------------------------------------- the rules, in the order of RULES
# Each takes the curves and returns the reason (one sentence with the numbers that decided it) or None.

def _not_finite(c):
    for name, curve in (("training", c.loss), ("validation", c.val)):
        bad = next((i for i, v in enumerate(curve) if not math.isfinite(v)), None)
        if bad is not None:
            return f"the {name} loss is not finite at epoch {bad + 1} (learning rate too high?)"
    return None


def _climbs_back(c):
    loss, lo = c.loss, min(c.loss)
    i_min = loss.index(lo)
    if c.n >= 3 and i_min < c.n - 1 and max(loss) > lo and loss[-1] - lo > THRESHOLDS["climb_back"] * (max(loss) - lo):
        return (f"the training loss went down to {lo:.4g} at epoch {i_min + 1} and climbed back to {loss[-1]:.4g} "
                f"(learning rate too high?)")
    return None


def _jumps(c):
    loss, t = c.loss, THRESHOLDS
    span = max(loss) - min(loss)
    jumps = [i + 1 for i, (a, b) in enumerate(zip(loss, loss[1:]))
             if b - a > t["jump_of_range"] * span and b - a > t["jump_of_value"] * abs(a)]
    if len(jumps) >= t["max_jumps"]:
        return (f"the training loss jumped up {len(jumps)} times (after epochs {', '.join(map(str, jumps[:5]))}): it "
                f"oscillates instead of decreasing (learning rate too high?)")
    return None


def _single_epoch(c):
    if c.n < 2:
        return "a single epoch: the curves cannot have settled yet; train longer to judge"
    return None


def _val_below_train(c):
    if c.paired and c.val[-1] < THRESHOLDS["val_below_train"] * c.loss[-1]:
        return (f"the validation loss ({c.val[-1]:.4g}) is far below the training loss ({c.loss[-1]:.4g}): the "
                f"validation set looks easier than the training set")
    return None


def _val_erratic(c):
    if not c.paired or c.n < 4:
        return None
    t, loss, val, n = THRESHOLDS, c.loss, c.val, c.n
    steps = [b - a for a, b in zip(val, val[1:])]
    turns = sum(1 for a, b in zip(steps, steps[1:]) if a * b < 0)
    val_step = sum(abs(s) for s in steps) / len(steps)
    train_step = sum(abs(b - a) for a, b in zip(loss, loss[1:])) / (n - 1)
    if (turns >= t["erratic_turns"] * (n - 2) and turns >= 2 and val_step >= t["erratic_ratio"] * train_step
            and val_step >= t["erratic_amplitude"] * abs(sum(val) / n)):
        return (f"the validation loss changes direction {turns} times in {n} epochs with steps "
                f"{val_step / max(train_step, 1e-12):.1f} x larger than the training loss': too noisy to "
                f"judge the model (validation set too small?)")
    return None


def _val_rises(c):
    if not c.paired:
        return None
    loss, val = c.loss, c.val
    v_lo = min(val)
    j = val.index(v_lo)
    if j < c.n - 1 and val[-1] > (1 + THRESHOLDS["val_rise"]) * v_lo and loss[-1] < loss[j]:
        return (f"the validation loss was lowest at epoch {j + 1} ({v_lo:.4g}) and rose to {val[-1]:.4g} while "
                f"the training loss kept falling ({loss[j]:.4g} -> {loss[-1]:.4g})")
    return None


def _val_levels_off(c):
    if not c.paired or c.n < 4:
        return None
    t, loss, val, k = THRESHOLDS, c.loss, c.val, c.last
    j = val.index(min(val))
    gap_then, gap_now = val[j] - loss[j], val[-1] - loss[-1]
    val_gain = (val[-k] - val[-1]) / max(abs(val[-k]), 1e-12)
    if (val_gain < t["plateau_gain"] and _rate(loss) > t["improving_rate"]
            and gap_now > t["gap_growth"] * max(gap_then, 0.0) and gap_now > t["gap_of_loss"] * abs(val[-1])):
        return (f"the validation loss levelled off ({val[-k]:.4g} -> {val[-1]:.4g} over the last {k} epochs) while "
                f"the training loss kept falling; the gap grew from {gap_then:.4g} to {gap_now:.4g}")
    return None


def _gap_all_along(c):
    if not c.paired:
        return None
    loss, val, keep = c.loss, c.val, 1 - THRESHOLDS["both_improve"]
    if (loss[-1] < keep * loss[0] and val[-1] < keep * val[0]
            and all(_large_gap(loss, val, i) for i in range(c.n - c.last, c.n))):
        return (f"both losses improved ({loss[0]:.4g} -> {loss[-1]:.4g} and {val[0]:.4g} -> {val[-1]:.4g}) but the "
                f"validation loss stayed far above the training loss (gap {val[-1] - loss[-1]:.4g} at the end): "
                f"the training set does not represent the validation data")
    return None


def _slow_straight_line(c):
    if c.n < 5:
        return None
    t, loss, n = THRESHOLDS, c.loss, c.n
    mean_x, mean_y = (n - 1) / 2, sum(loss) / n
    slope = sum((e - mean_x) * (v - mean_y) for e, v in enumerate(loss)) / sum((e - mean_x) ** 2 for e in range(n))
    total = sum((v - mean_y) ** 2 for v in loss)
    residual = sum((v - (mean_y + slope * (e - mean_x))) ** 2 for e, v in enumerate(loss))
    r2 = 1 - residual / total if total > 0 else 0.0
    half = n // 2
    first, last = (loss[0] - loss[half]) / half, (loss[half] - loss[-1]) / (n - 1 - half)
    drop = (loss[0] - loss[-1]) / max(abs(loss[0]), 1e-12)
    if (slope < 0 and r2 >= t["linear_r2"] and last >= t["no_flattening"] * first > 0
            and t["flat_decrease"] / 2 <= drop < t["slow_total"]):
        return (f"the training loss falls along a straight line (R^2 {r2:.3f}), slowly ({loss[0]:.4g} -> "
                f"{loss[-1]:.4g}, {100 * drop:.1f}% lower in {n} epochs) without flattening: raise the learning rate")
    return None


def _stopped(c):
    """The training loss no longer falls (the condition of every underfitting rule)."""
    return _rate(c.loss) <= THRESHOLDS["improving_rate"]


def _low_accuracy(c):
    acc, threshold = c.acc, _accuracy_threshold(c.num_classes)
    if _stopped(c) and acc and math.isfinite(acc[-1]) and acc[-1] < threshold:
        tracked = f", validation accuracy {c.val_acc[-1]:.3f}" if c.val_acc else ""
        return (f"the training loss stopped falling at a low training accuracy ({acc[-1]:.3f} < "
                f"{threshold:.3f}{tracked}): the model cannot fit the training data")
    return None


def _high_loss(c):
    t, chance = THRESHOLDS, _chance_loss(c.num_classes)
    if _stopped(c) and chance and c.acc and c.loss[-1] > t["underfit_loss"] * chance:
        return (f"the training loss stopped falling at a high value ({c.loss[-1]:.4g} > {t['underfit_loss']:g} x "
                f"ln({c.num_classes}) = {t['underfit_loss'] * chance:.3f}): the model cannot fit the training data")
    return None


def _flat_loss(c):
    loss = c.loss
    drop = (loss[0] - loss[-1]) / max(abs(loss[0]), 1e-12)
    if _stopped(c) and not c.acc and not _chance_loss(c.num_classes) and drop < THRESHOLDS["flat_decrease"]:
        return (f"the training loss is nearly flat ({loss[0]:.4g} -> {loss[-1]:.4g}, {100 * drop:.1f}% lower): "
                f"the model cannot fit the training data")
    return None


def _still_falling(c):
    rate, train_rate = THRESHOLDS["improving_rate"], _rate(c.loss)
    val_rate = _rate(c.val) if c.paired else None
    if train_rate > rate and (val_rate is None or val_rate > rate):
        where = "both losses" if c.paired else "the training loss"
        rates = f"{100 * train_rate:.1f}%" + (f" and {100 * val_rate:.1f}%" if c.paired else "")
        return f"{where} still fall at the end ({rates} per epoch over the last epochs): training stopped too early"
    return None


def _flattened_apart(c):
    if c.paired and _large_gap(c.loss, c.val, c.n - 1):
        return (f"the losses flattened far apart (final training {c.loss[-1]:.4g}, validation {c.val[-1]:.4g}): the "
                f"model does not generalise from the training data")
    return None


def _fits_well(c):
    """Good fit, earned: the training loss came down and stopped falling, at an accuracy well above chance (or a
    loss well below a uniform guess's), and the validation loss (the rules before checked it) ends close to it."""
    loss, t, chance = c.loss, THRESHOLDS, _chance_loss(c.num_classes)
    if not _stopped(c) or (loss[0] - min(loss)) < t["flat_decrease"] * max(abs(loss[0]), 1e-12):
        return None
    if c.acc and math.isfinite(c.acc[-1]) and c.acc[-1] < _accuracy_threshold(c.num_classes):
        return None
    if chance and loss[-1] > t["underfit_loss"] * chance:
        return None
    if c.paired:
        return f"the losses flattened close to each other (final training {c.loss[-1]:.4g}, validation {c.val[-1]:.4g})"
    return f"the training loss came down and flattened ({c.loss[0]:.4g} -> {c.loss[-1]:.4g})"


def _undecided(c):
    """The reason when no rule decides: where the curves stand."""
    train = (f"the training loss went {c.loss[0]:.4g} -> {c.loss[-1]:.4g} ({100 * _rate(c.loss):.1f}% per epoch at "
             f"the end)")
    val = f", the validation loss {c.val[0]:.4g} -> {c.val[-1]:.4g} ({100 * _rate(c.val):.1f}%)" if c.paired else ""
    acc = f", training accuracy {c.acc[-1]:.3f}" if c.acc and math.isfinite(c.acc[-1]) else ""
    return f"no rule decides: {train}{val}{acc}; more epochs would tell"


# (label, rule, explanation): checked in this order, the first rule that matches gives the label. In an
# explanation, {p[name]} is THRESHOLDS[name] as a percentage, {t[name]} the threshold itself.
RULES = (
    ("unstable", _not_finite, "a loss is NaN/inf"),
    ("unstable", _climbs_back, "the training loss climbs back above its minimum by more than {p[climb_back]} of "
                               "its range"),
    ("unstable", _jumps, "the training loss jumps up at least {t[max_jumps]} times from one epoch to the next by "
                         "more than {p[jump_of_range]} of its range and {p[jump_of_value]} of its value"),
    ("still improving", _single_epoch, "there is only one epoch"),
    ("unrepresentative validation", _val_below_train, "the final validation loss is below {t[val_below_train]:g} x "
                                                      "the final training loss"),
    ("unrepresentative validation", _val_erratic,
     "the validation loss changes direction in at least {p[erratic_turns]} of the epochs with steps "
     "{t[erratic_ratio]:g} x larger than the training loss' steps and larger than {p[erratic_amplitude]} of its mean"),
    ("overfitting", _val_rises, "the validation loss ends more than {p[val_rise]} above its minimum while the "
                                "training loss is lower than at that minimum"),
    ("overfitting", _val_levels_off,
     "the validation loss improved by less than {p[plateau_gain]} over the last third of the epochs while the "
     "training loss kept falling and the validation-training gap grew {t[gap_growth]:g} x, to more than "
     "{p[gap_of_loss]} of the validation loss"),
    ("unrepresentative training", _gap_all_along,
     "both losses fell by more than {p[both_improve]} from their first value, but the validation loss ends above "
     "the training loss by more than {p[gap_of_val]} of the validation loss and {p[gap_of_drop]} of the training "
     "loss' decrease, over the whole last third of the epochs"),
    ("learning rate too low", _slow_straight_line,
     "at least 5 epochs in which the training loss follows a straight line (R^2 >= {t[linear_r2]:g}), its last "
     "half falling at least {p[no_flattening]} as fast as its first half, and between {half_flat} and "
     "{p[slow_total]} lower overall"),
    ("underfitting", _low_accuracy, "the training loss has stopped falling (less than {p[improving_rate]} per epoch "
                                    "over the last third) at a final training accuracy below {accuracy}"),
    ("underfitting", _high_loss, "at a final training loss above {chance_loss} (with an accuracy recorded)"),
    ("underfitting", _flat_loss, "(no accuracy, no class count) after falling by less than {p[flat_decrease]} "
                                 "overall"),
    ("still improving", _still_falling, "the training loss and (when present) the validation loss both still "
                                        "fall by more than {p[improving_rate]} per epoch over the last third"),
    ("overfitting", _flattened_apart, "the losses end far apart: the final gap is above {p[gap_of_val]} of the "
                                      "validation loss and {p[gap_of_drop]} of the training loss' decrease"),
    ("good fit", _fits_well, "the training loss fell by more than {p[flat_decrease]} and stopped falling, at a "
                             "training accuracy of at least {accuracy} and a loss below {chance_loss} (when known), "
                             "and the validation loss ends close to it"),
    ("unclear", _undecided, "none of the above decides (e.g. the training loss still falls while the validation "
                            "loss has stopped): the reason gives the numbers"),
)

# What to do about each label, stated after its rules.
ADVICE = {
    "unstable": "Typical cause: learning rate or momentum too high.",
    "still improving": "Training stopped too early: train for more epochs.",
    "unrepresentative validation": "Typical cause: a validation set too small or drawn differently from the "
                                   "training set.",
    "overfitting": "Remedies: fewer parameters, regularisation, augmentation, more data, early stopping.",
    "unrepresentative training": "Typical cause: a training set too small or drawn differently from the "
                                 "validation set; more (or more varied) training data.",
    "learning rate too low": "Remedy: a larger learning rate (zoo lr-find suggests one).",
    "underfitting": "Remedies: a bigger model, longer training, a better learning rate.",
    "good fit": "",
    "unclear": "Train longer, or look at the curves.",
}


def rules(num_classes=None) -> list[tuple[str, str]]:
    """``(label, rule)`` in the order :data:`RULES` are checked, consecutive rules of one label joined
    ("...; or ..."), with the thresholds and the label's :data:`ADVICE`."""
    t = THRESHOLDS
    way = f"{100 * t['underfit_accuracy']:g}% of the way from chance to 100%"
    chance = _chance_loss(num_classes)
    values = {
        "t": t,
        "p": {name: f"{100 * value:g}%" for name, value in t.items()},
        "half_flat": f"{100 * t['flat_decrease'] / 2:g}%",
        "accuracy": (f"{_accuracy_threshold(num_classes):.3f} ({way})" if num_classes
                     else f"{way} (0.8 if the class count is unknown)"),
        "chance_loss": (f"{t['underfit_loss'] * chance:.3f}, {t['underfit_loss']:g} x the cross-entropy of a "
                        f"uniform guess ln({num_classes})" if chance else
                        f"{t['underfit_loss']:g} x the cross-entropy of a uniform guess, ln(classes)"),
    }
    stated = []
    for label, _, explanation in RULES:
        text = explanation.format(**values)
        if stated and stated[-1][0] == label:
            stated[-1][1].append(text)
        else:
            stated.append((label, [text]))
    return [(label, ("; or ".join(texts) + ". " + ADVICE[label]).strip()) for label, texts in stated]


def diagnose(history, *, num_classes=None) -> tuple[str, str]:
    """Label a run's loss curves: underfitting, overfitting, still improving, unstable, ...

    Args:
        history: per-epoch values, as ``keras.callbacks.History.history`` or
            a trial record's ``history``: ``loss`` and optionally ``val_loss``,
            ``accuracy``, ``val_accuracy``.
        num_classes: classes of the task (sets the "training accuracy is low"
            threshold, see :func:`rules`).

    Returns:
        ``(label, reason)``: the label of the first of :data:`RULES` that matches (one of :data:`LABELS`;
        ``"n/a"`` without a training loss) and its reason, one sentence with the numbers that decided it.

    Example:
        >>> diagnose({"loss": [1.0, 0.5, 0.3, 0.25, 0.24], "val_loss": [1.1, 0.6, 0.4, 0.5, 0.7]})[0]
        'overfitting'
    """
    curves = _Curves(history, num_classes)
    if not curves.loss:
        return "n/a", "no training loss recorded"
    return next((label, reason) for label, rule, _ in RULES if (reason := rule(curves)) is not None)


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
