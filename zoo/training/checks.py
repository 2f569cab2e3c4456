"""Checks of the data a training step would see, before any step: no NaN or infinity in what trains."""

from __future__ import annotations

import numpy as np

__all__ = ["check_finite_data"]


def _first_bad(name, array):
    values = np.asarray(array)
    if not np.issubdtype(values.dtype, np.floating):
        return None
    finite = np.isfinite(values)
    if finite.all():
        return None
    bad = values[~finite]
    return (f"`{name}` holds {bad.size} of {values.size} values that are NaN or infinite (e.g. {bad.flat[0]}): "
            f"training on them gives a meaningless loss. Clean or impute the data first.")


def check_finite_data(data, name="train"):
    """Refuse NaN/Inf in ``(x, y)`` arrays, or in the first batch of a ``tf.data.Dataset``, naming the split."""
    if isinstance(data, tuple) and len(data) == 2:
        parts = [(f"{name}[0] (x)", data[0]), (f"{name}[1] (y)", data[1])]
    elif hasattr(data, "take") and hasattr(data, "element_spec"):
        from zoo.data._common import known_finite

        if known_finite(data):  # built from arrays checked then; its first batch would cost a pipeline start
            return
        batch = next(iter(data.take(1)), None)
        if batch is None:
            return
        batch = batch if isinstance(batch, (tuple, list)) else (batch,)
        parts = [(f"the first batch of {name} ({'x' if i == 0 else 'y'})", b) for i, b in enumerate(batch[:2])]
    else:
        return
    for label, array in parts:
        if isinstance(array, dict) or array is None:
            continue
        problem = _first_bad(label, array)
        if problem:
            raise ValueError(problem)
