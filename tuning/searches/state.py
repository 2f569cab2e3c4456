"""The state of a search on disk: its manifest checked against the search asked for, records repair,
KerasTuner's cache.

``records.jsonl`` is the source of truth; the run manifest (:mod:`tuning.manifest`) says what the search
is, so that a changed search is refused instead of mixed in. KerasTuner's own files are a cache rebuilt
from the records.
"""

from __future__ import annotations

import json
import os

from tuning.artifacts import clear_checkpoints
from tuning.manifest import MANIFEST_FILE, OLDER_MANIFESTS, RECORDS_FILE, check_kind, normalise, read_manifest
from tuning.records import read_records, start_over

__all__ = ["check_keras_tuner_state", "prepare_directory", "repair_tail"]


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
        except (ValueError, OSError, RecursionError) as e:
            notes.append(f"{path} is unreadable ({type(e).__name__}); the oracle is rebuilt from {RECORDS_FILE}")


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


def _differences(old, new, prefix=""):
    """What changed between two manifests' identities, one phrase per changed setting (nested ones by path)."""
    diffs = []
    for key in new:
        before, after = normalise(old.get(key)), normalise(new[key])
        if before == after:
            continue
        if key == "space":
            diffs.append(f"hyperparameter space {_space_changes(old.get(key), new[key])}")
        elif key == "data" and not prefix:
            before, after = before or {}, after or {}
            diffs.append(f"data {before.get('name')!r} fingerprint {str(before.get('fingerprint'))[:12]} -> "
                         f"{after.get('name')!r} {str(after.get('fingerprint'))[:12]}")
        elif isinstance(before, dict) and isinstance(after, dict) and key != "hypermodel":
            diffs += _differences(before, after, prefix=f"{prefix}{key}.")
        else:
            diffs.append(f"{prefix}{key} {before!r} -> {after!r}")
    return diffs


_COMPARED = ("kind", "objectives", "data", "identity")  # what makes two runs the same (not the budget)


def prepare_directory(directory, manifest, *, resume, role, records_path, notes) -> dict:
    """Check ``manifest`` against the run already in ``directory``: start over (``resume=False``), refuse
    a changed search, or go on. Returns the manifest to keep (an earlier run's id when resuming).
    A folder that holds another kind of run (a comparison) is refused, whatever ``resume`` says."""
    check_kind(directory, "search", "directory")
    if not resume and role != "worker":
        start_over(records_path, notes)
        clear_checkpoints(directory)  # a fresh search resumes no trial of the old one
        for leftover in (MANIFEST_FILE, *OLDER_MANIFESTS, os.path.basename(records_path) + ".partial"):
            if os.path.exists(os.path.join(directory, leftover)):
                os.remove(os.path.join(directory, leftover))
        return manifest
    try:
        existing = read_manifest(directory, records=[])
    except ValueError:
        if role == "worker" and not resume:
            return manifest
        raise
    if existing is None:
        if role in ("single", "chief"):
            foreign = [r for r in read_records(records_path) if r.get("search") not in (None, manifest["id"])]
            if foreign:
                raise ValueError(
                    f"{records_path} holds {len(foreign)} record(s) of a different search and no {MANIFEST_FILE}. "
                    "Use another `directory`, or options=RunOptions(resume=False) to start over."
                )
        return manifest
    diffs = _differences({k: existing.get(k) for k in _COMPARED}, {k: manifest.get(k) for k in _COMPARED})
    if diffs and not (role == "worker" and not resume):
        raise ValueError(
            f"{directory} holds a different search: {'; '.join(diffs)}. Resume with the same settings, use "
            "another `directory`, or pass options=RunOptions(resume=False) to start over (the old records are "
            "kept as a .bak file)."
        )
    return {**manifest, "id": existing["id"], "created": existing.get("created") or manifest["created"]}
