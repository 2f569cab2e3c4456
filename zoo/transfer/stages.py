"""Stages, blocks and trainability: freeze and unfreeze a model by the names of its layers.

Every zoo model (and every keras.applications wrapper) names its layers by
stage (``stem_*``, ``stage1_*``, ..., ``head_*``) and, inside residual/dense
stages, by block (``stage3_block2_*``): freezing works on those units, so it
never cuts through a block. Frozen BatchNormalization layers run in inference
mode and keep their moving statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import keras
import numpy as np

from zoo.blocks import stage_of, unit_of
from zoo.utils import check_bool, check_float, check_int, check_names

__all__ = ["Trainability", "freeze", "list_stages", "stage_of", "trainability", "unfreeze", "unit_of"]

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
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise ValueError(f"`pattern` is not a valid regex ({e}). Received: pattern={pattern!r}") from None
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
            names = check_names("stages", stages)
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
        train_bn: also let the frozen BatchNorm layers it unfreezes train (update statistics). Off by
            default: keeping BN in inference mode is the standard fine-tuning recipe.

    ``unfreeze`` only makes layers trainable: a layer that is trainable already stays so (a BatchNorm
    layer too, whatever ``train_bn``), so ``freeze(model, until="stage2")`` then
    ``unfreeze(model, last_blocks=1)`` leaves stage 3 as trainable as it was. The head is always trainable.
    Returns a :class:`Trainability` summary.

    Example:
        >>> freeze(model, until="stage2")
        >>> unfreeze(model, last_blocks=1)
    """
    check_bool("train_bn", train_bn)
    given = [n for n, v in (("last_blocks", last_blocks), ("from_layer", from_layer), ("stages", stages))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"Give exactly one of last_blocks/from_layer/stages. Received: {given or 'none'}")
    _require_stages(model)
    units = _units(model)
    if stages == "all":
        keep = set(units)
    elif stages is not None:
        names = check_names("stages", stages)
        _check_stage_names(model, names, "stages")
        keep = _expand(model, names)
    elif last_blocks is not None:
        n = check_int("last_blocks", last_blocks, minimum=0)
        learnable = [u for u in units if _learnable(model, u)]
        if n > len(learnable):
            raise ValueError(f"`last_blocks` must be at most {len(learnable)} (the blocks with weights of "
                             f"{model.name!r}; stages='all' unfreezes everything). Received: last_blocks={n}")
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
        if not layer.trainable:  # never the other way: re-freezing a trainable BatchNorm is freeze's job
            layer.trainable = train_bn or not _is_bn(layer)
    summary = trainability(model)
    if verbose:
        print(summary)
    return summary


_unfreeze = unfreeze  # fine_tune's `unfreeze` argument shadows the function
