"""Trial records: one JSON object per trained model, appended atomically to ``records.jsonl``.

The schema is shared by searches and comparisons (``environment`` is :func:`zoo.runtime.environment`):
``id, model, hyperparameters, seed, status (completed|failed|infeasible), error,
epochs, history, val_* and test_* metrics, params, trainable_params, macs,
weight_bytes, fit_seconds, seconds_per_epoch, latency_ms, throughput,
peak_memory_bytes, backend, versions, host``. Reports read records; they never retrain.
"""

from __future__ import annotations

import json
import math
import os
import warnings

from zoo.runtime import environment

try:
    import fcntl
except ImportError:  # Windows: appends stay single writes, without the lock
    fcntl = None

STATUSES = ("completed", "failed", "infeasible")

RECORD_FIELDS = (
    "id",
    "model",
    "hyperparameters",
    "seed",
    "status",
    "error",
    "epochs",
    "history",
    "params",
    "trainable_params",
    "macs",
    "weight_bytes",
    "fit_seconds",
    "seconds_per_epoch",
    "latency_ms",
    "throughput",
    "peak_memory_bytes",
    "backend",
    "versions",
    "host",
)

__all__ = ["STATUSES", "RECORD_FIELDS", "new_record", "append_record", "read_records", "environment", "finite"]


def finite(value) -> bool:
    """True for a real, finite number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _clean(value):
    """JSON-safe copy: NaN/Inf become ``None`` (JSON has no NaN), NumPy scalars become Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def new_record(*, id, model, hyperparameters=None, seed=None, status="completed", error=None, **fields) -> dict:
    """A record with every schema field present (``None`` where unknown) plus extra fields.

    Extra fields are typically ``val_accuracy``, ``test_loss``, ``data`` (the
    data fingerprint) or ``constraints``.
    """
    if status not in STATUSES:
        raise ValueError(f"`status` must be one of {list(STATUSES)}. Received: status={status!r}")
    record = {key: None for key in RECORD_FIELDS}
    record.update(environment())
    record.update(
        id=str(id), model=model, hyperparameters=dict(hyperparameters or {}), seed=seed, status=status, error=error
    )
    record.update(fields)
    return _clean(record)


def append_record(path, record: dict) -> None:
    """Append one record as a JSON line, atomically enough to survive ``kill -9`` and concurrent writers.

    The line goes out through an ``O_APPEND`` descriptor under an exclusive
    ``flock`` (so the processes of a distributed search can share one file) and
    is fsync'ed before returning. If a previous writer died mid-line, the
    partial line is terminated first so that it cannot corrupt this record.
    """
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    data = (json.dumps(_clean(record), sort_keys=False, allow_nan=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close()
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        while view:  # a regular-file write is normally complete; loop in case it is not
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path, *, strict: bool = False) -> list[dict]:
    """Read every complete record of a ``records.jsonl`` file (missing file: ``[]``).

    A line cut short by a crash is skipped with a warning naming the file and
    line (``strict=True`` raises ``ValueError`` instead).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return []
    records, bad = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad.append(number)
                continue
            if isinstance(record, dict) and "id" in record:
                records.append(record)
            else:
                bad.append(number)
    if bad:
        message = f"{path}: skipped unreadable line(s) {bad} (a crash mid-write leaves one)"
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)
    return records


def latest_records(records, *, sort: bool = True) -> list[dict]:
    """One record per id, the last one written winning (a resumed run may have retried a failed trial).

    Args:
        records: trial records, in the order they were written.
        sort: order by trial id, numeric ids numerically (``"2"`` before
            ``"10"``) and before the others; ``False`` keeps the order in which
            each id was first seen.
    """
    by_id = {}
    for r in records:
        by_id[str(r.get("id"))] = r  # a dict keeps first-insertion order; the value is the last record
    if not sort:
        return list(by_id.values())

    def trial_key(record):
        rid = str(record.get("id"))
        return (0, int(rid), rid) if rid.isdigit() else (1, 0, rid)

    return sorted(by_id.values(), key=trial_key)
