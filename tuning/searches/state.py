"""The state of a search on disk: the manifest (what the search is), records repair, KerasTuner's cache.

``records.jsonl`` is the source of truth; ``search.json`` (the manifest: space,
data fingerprint, objective, algorithm, epochs, seed, constraints, precision)
says what the search is, so that a changed search is refused instead of mixed
in. KerasTuner's own files are a cache rebuilt from the records.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os

from tuning.records import read_records
from zoo.runtime import environment

__all__ = ["ALGORITHMS", "RECORDS_FILE", "MANIFEST_FILE", "make_manifest", "read_manifest", "prepare_directory", "repair_tail",
           "check_keras_tuner_state"]

ALGORITHMS = ("random", "hyperband", "bayesian", "grid", "nsga2")  # here, so that the CLI lists them fast
RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "search.json"
MANIFEST_VERSION = 1
# What makes two searches the same; a float32 search has no "precision" entry (searches recorded before
# the option had none either), so that it still resumes.
_IDENTITY = ("hypermodel", "space", "data", "objective", "algorithm", "epochs", "seed", "executions", "constraints",
             "precision")
_DEFAULTS = {"precision": "float32"}


def make_manifest(identity, *, project_name, provenance=None):
    """The manifest of a search from its identity; its ``search`` id is a hash of the identity."""
    identity = _normalise({k: v for k, v in identity.items() if not (k == "precision" and v == "float32")})
    search_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "version": MANIFEST_VERSION, "search": search_id, "project_name": project_name, **identity,
        "provenance": provenance,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {k: v for k, v in environment().items() if k != "host"},
    }


def read_manifest(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        return manifest
    except (ValueError, OSError) as e:
        raise ValueError(
            f"The search manifest {path} is unreadable ({e}); it records what the search is, so it cannot "
            "be guessed. Restore it, or pass overwrite=True to start the search over."
        ) from None


def repair_tail(path, notes):
    """Cut a last line left incomplete by a crash; the fragment is kept in ``<path>.partial``."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if not size:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        back = min(size, 1 << 20)
        f.seek(size - back)
        chunk = f.read(back)
        cut = size - back + chunk.rfind(b"\n") + 1 if b"\n" in chunk else 0
        f.seek(cut)
        fragment = f.read()
        with open(path + ".partial", "ab") as keep:
            keep.write(fragment + b"\n")
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    notes.append(f"{path}: removed a line cut short by a crash ({len(fragment)} bytes, kept in {path}.partial)")


def check_keras_tuner_state(project_dir, notes):
    """Name KerasTuner state files that are unreadable: they are rebuilt from the records anyway."""
    if not os.path.isdir(project_dir):
        return
    candidates = [os.path.join(project_dir, "oracle.json")]
    for entry in sorted(os.listdir(project_dir)):
        if entry.startswith("trial_"):
            candidates.append(os.path.join(project_dir, entry, "trial.json"))
    for path in candidates:
        if not os.path.exists(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                json.load(f)
        except (ValueError, OSError) as e:
            notes.append(f"{path} is unreadable ({type(e).__name__}); the oracle is rebuilt from {RECORDS_FILE}")


def _normalise(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _space_changes(old, new):
    old = {h["config"]["name"]: h for h in (old or {}).get("space", [])}
    new = {h["config"]["name"]: h for h in (new or {}).get("space", [])}
    parts = []
    if sorted(set(new) - set(old)):
        parts.append(f"added {sorted(set(new) - set(old))}")
    if sorted(set(old) - set(new)):
        parts.append(f"removed {sorted(set(old) - set(new))}")
    changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
    if changed:
        parts.append(f"changed {changed}")
    return ", ".join(parts) or "changed"


def _differences(old, new):
    diffs = []
    for key in new:
        if _normalise(old.get(key)) == _normalise(new[key]):
            continue
        if key == "space":
            diffs.append(f"hyperparameter space {_space_changes(old.get(key), new[key])}")
        elif key == "data":
            before, after = old.get(key) or {}, new[key]
            diffs.append(f"data {before.get('name')!r} fingerprint {str(before.get('fingerprint'))[:12]} -> "
                         f"{after.get('name')!r} {str(after.get('fingerprint'))[:12]}")
        else:
            diffs.append(f"{key} {old.get(key)!r} -> {new[key]!r}")
    return diffs


def prepare_directory(directory, manifest, *, overwrite, role, records_path, notes):
    """Check the manifest against this search; start over or refuse on a change."""
    path = os.path.join(directory, MANIFEST_FILE)
    if overwrite and role != "worker":
        old = os.path.exists(records_path) and os.path.getsize(records_path) > 0
        if old:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            backup = f"{records_path}.{stamp}.bak"
            os.replace(records_path, backup)
            notes.append(f"overwrite=True: previous records moved to {backup}")
        for leftover in (path, records_path + ".partial"):
            if os.path.exists(leftover):
                os.remove(leftover)
        return
    try:
        existing = read_manifest(path)
    except ValueError:
        if role == "worker" and overwrite:
            return
        raise
    if existing is None:
        if role == "single" or role == "chief":
            foreign = [r for r in read_records(records_path) if r.get("search") not in (None, manifest["search"])]
            if foreign:
                raise ValueError(
                    f"{records_path} holds {len(foreign)} record(s) of a different search and no {MANIFEST_FILE}. "
                    "Use another `directory`, or overwrite=True to start over."
                )
        return
    identity = {k: manifest.get(k, _DEFAULTS.get(k)) for k in _IDENTITY}
    diffs = _differences({k: existing.get(k, _DEFAULTS.get(k)) for k in _IDENTITY}, identity)
    if diffs and not (role == "worker" and overwrite):
        raise ValueError(
            f"{path} describes a different search: {'; '.join(diffs)}. Resume with the same settings, "
            "use another `directory`, or pass overwrite=True to start over (the old records are kept as a .bak file)."
        )
