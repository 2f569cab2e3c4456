"""Trial records: one JSON object per trained model, appended atomically to ``records.jsonl``.

The schema is shared by searches and comparisons (``environment`` is :func:`zoo.runtime.environment`):
``id, model, hyperparameters, seed, status (completed|failed|infeasible|pruned), error,
epochs, history, val_* and test_* metrics, params, trainable_params, macs,
weight_bytes, fit_seconds, seconds_per_epoch, latency_ms, throughput,
peak_memory_bytes, backend, versions, host``. Reports read records; they never retrain.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import warnings

from zoo.runtime import environment

try:
    import fcntl
except ImportError:  # Windows: appends stay single writes, without the lock
    fcntl = None

# ``pruned``: stopped early by a pruner (e.g. median pruning); like failed and infeasible, never ranked.
STATUSES = ("completed", "failed", "infeasible", "pruned")

RECORD_FIELDS = (
    "id",
    "model",
    "hyperparameters",
    "seed",
    "status",
    "error",
    "epochs",
    "best_epoch",
    "stopped_epoch",
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
    "model_path",
    "model_sha256",
    "backend",
    "versions",
    "host",
)

__all__ = ["STATUSES", "RECORD_FIELDS", "MEASURED_FIELDS", "new_record", "append_record", "read_records",
           "check_record", "reject_bad_lines", "start_over", "environment", "finite"]

# Numeric fields: a finite number or None (``_clean`` writes NaN/Inf as None).
NUMERIC_FIELDS = ("epochs", "params", "trainable_params", "macs", "weight_bytes", "fit_seconds", "seconds_per_epoch",
                  "latency_ms", "throughput", "peak_memory_bytes")
# What every trial measures besides its metrics (``val_*``, ``test_*``): the fields an objective may name.
MEASURED_FIELDS = ("params", "trainable_params", "macs", "flops", "weight_bytes", "fit_seconds", "seconds_per_epoch",
                   "epochs_run", "latency_ms", "throughput", "peak_memory_bytes", "trial_seconds")


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
    fd = _open_locked(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        while view:  # a regular-file write is normally complete; loop in case it is not
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_locked(path, flags):
    """A descriptor of ``path`` under an exclusive ``flock`` (released by ``close``).

    :func:`reject_bad_lines` replaces the file by a rename under the same lock: a writer that
    opened the old file and waited for the lock finds its inode gone from ``path`` and opens again,
    so that no record is appended to a file nobody reads.
    """
    while True:
        fd = os.open(path, flags, 0o644)
        if fcntl is None:
            return fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def check_record(record) -> str | None:
    """What is wrong with a parsed record (``None`` when it follows the schema).

    Checked: an object with a non-empty ``id`` (string or integer), a ``status`` of
    :data:`STATUSES`, ``hyperparameters`` an object, ``model`` and ``error`` strings or
    null, ``history`` an object or null, the numeric fields finite numbers or null,
    and a ``model`` for every completed trial.
    """
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    rid = record.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == "":
        return f"`id` must be a non-empty string. Received: id={rid!r}"
    status = record.get("status")
    if status not in STATUSES:
        return f"`status` must be one of {list(STATUSES)}. Received: status={status!r}"
    if not isinstance(record.get("hyperparameters"), dict):
        return f"`hyperparameters` must be an object. Received: {type(record.get('hyperparameters')).__name__}"
    for key in ("model", "error", "model_path", "model_sha256"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"`{key}` must be a string or null. Received: {key}={record[key]!r}"
    if status == "completed" and not record.get("model"):
        return "a completed trial needs its `model`"
    if record.get("history") is not None and not isinstance(record["history"], dict):
        return f"`history` must be an object or null. Received: {type(record['history']).__name__}"
    for key in NUMERIC_FIELDS:
        if record.get(key) is not None and not finite(record[key]):
            return f"`{key}` must be a finite number or null. Received: {key}={record[key]!r}"
    return None


def _scan(data: bytes):
    """``(records, bad)`` of a records file's bytes; ``bad`` holds ``(line number, raw bytes, reason)``."""
    records, bad = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except RecursionError:
            bad.append((number, raw[:200], "nested too deep to be a record"))
            continue
        except UnicodeDecodeError as e:
            bad.append((number, raw, f"not UTF-8 ({e.reason} at byte {e.start})"))
            continue
        except json.JSONDecodeError as e:
            bad.append((number, raw, f"not JSON ({e.msg})"))
            continue
        problem = check_record(record)
        if problem:
            bad.append((number, raw, problem))
        else:
            records.append(record)
    return records, bad


def _bad_message(path, bad):
    listed = "; ".join(f"line {n}: {why}" for n, _, why in bad[:5])
    listed += f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"{path}: set aside {len(bad)} damaged line(s), whose trials run again ({listed})"


def read_records(path, *, strict: bool = False) -> list[dict]:
    """Read every valid record of a ``records.jsonl`` file (missing file: ``[]``).

    The file is read as bytes, line by line: a line that is not UTF-8, not JSON, or
    not a record (:func:`check_record`) is skipped with one warning naming the file
    and the lines (``strict=True`` raises ``ValueError`` instead); every other record
    is kept. A line cut short by a crash is one such line.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"Cannot read the records file {path!r}: {e}") from None
    records, bad = _scan(data)
    if bad:
        message = _bad_message(path, bad)
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)
    return records


def rejects_path(path) -> str:
    """Where :func:`reject_bad_lines` moves damaged lines: ``records.rejected.jsonl`` beside ``records.jsonl``."""
    base, ext = os.path.splitext(os.fspath(path))
    return f"{base}.rejected{ext or '.jsonl'}"


def reject_bad_lines(path, notes=None) -> int:
    """Move the damaged lines of a records file into :func:`rejects_path`, keeping every valid record.

    Each rejected line is kept as a JSON object ``{"file", "line", "reason", "raw"}``
    (``raw``: the bytes, undecodable ones as ``\\xNN``). The records file is rewritten
    atomically (temporary file, then rename) under the writers' lock. Returns how many
    lines were moved; a note naming the file and lines goes to ``notes``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return 0
    fd = _open_locked(path, os.O_RDWR)
    try:
        with open(path, "rb") as f:
            data = f.read()
        _, bad = _scan(data)
        if not bad:
            return 0
        numbers = {n for n, _, _ in bad}
        kept = [raw for n, raw in enumerate(data.split(b"\n"), start=1) if n not in numbers and raw.strip()]
        with open(rejects_path(path), "ab") as out:
            for number, raw, why in bad:
                entry = {"file": path, "line": number, "reason": why,
                         "raw": raw.decode("utf-8", errors="backslashreplace")}
                out.write((json.dumps(entry) + "\n").encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        temporary = f"{path}.tmp{os.getpid()}"
        with open(temporary, "wb") as f:
            f.write(b"".join(raw + b"\n" for raw in kept))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        os.close(fd)
    if notes is not None:
        notes.append(_bad_message(path, bad).replace("set aside", "moved") + f"; kept in {rejects_path(path)}")
    return len(bad)


def start_over(path, notes) -> str | None:
    """Move a records file that holds records aside, to ``<path>.<time>.bak`` (nothing a user computed is
    lost), for a run that starts over; returns the backup's path (``None`` when there was nothing)."""
    path = os.fspath(path)
    if not os.path.exists(path) or not os.path.getsize(path):
        return None
    backup = f"{path}.{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.bak"
    os.replace(path, backup)
    notes.append(f"resume=False: previous records moved to {backup}")
    return backup


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
