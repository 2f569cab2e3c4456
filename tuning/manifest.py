"""The run manifest: what a comparison or a search is, written once beside its ``records.jsonl``.

``run.json`` holds the run's ``kind`` (``"comparison"`` or ``"search"``), its objectives with their
directions, its data (name, fingerprint, batch size), its budget and its ``identity`` (what makes two runs
the same: a search refuses to resume under a changed identity). Reports read it and never guess.

Folders written before the manifest had this form (a search's ``search.json`` of format 1, or a bare
``records.jsonl``) go through :func:`migrate`, the one place that knows the older layouts.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os

from tuning.objectives import objective, objective_fields
from tuning.records import read_records
from zoo.runtime import environment, write_json_atomic

__all__ = ["FORMAT", "KINDS", "MANIFEST_FILE", "OLDER_MANIFESTS", "RECORDS_FILE", "REPORT_META", "check_kind",
           "make_manifest", "migrate", "migrate_record", "normalise", "objectives_of", "read_json", "read_manifest",
           "report_meta", "training_identity", "write_manifest"]

MANIFEST_FILE = "run.json"
RECORDS_FILE = "records.jsonl"
REPORT_META = "report_meta.json"  # what a report keeps to be written again (tuning.report)
FORMAT = 2
KINDS = ("comparison", "search")
OLDER_MANIFESTS = ("search.json",)  # format 1: searches only, identity keys at the top level
MAX_JSON_BYTES = 64 << 20  # a run's small JSON files (manifests, report meta, checkpoint states) are far smaller
MAX_JSON_DEPTH = 64  # and far shallower: deeper is damage, and the parser's or a reader's recursion would fail


def read_json(path, *, what="JSON file"):
    """The value of a small JSON file, refusing one over ``MAX_JSON_BYTES`` or nested over ``MAX_JSON_DEPTH``.

    Raises:
        ValueError: not UTF-8 JSON, too large or too deep; the message names ``what`` and ``path`` (its
            ``reason`` attribute says why alone).
        OSError: unreadable (``FileNotFoundError``: no such file).
    """
    size = os.path.getsize(path)
    reason = f"is {size} bytes, over the {MAX_JSON_BYTES} a run's JSON file may be" if size > MAX_JSON_BYTES else None
    value, deep = None, False
    if reason is None:
        try:
            with open(path, encoding="utf-8") as f:
                value = json.load(f)
        except RecursionError:
            deep = True
        except ValueError as e:  # UnicodeDecodeError too
            reason = f"is not JSON ({e})"
    stack = [(value, 1)]
    while stack and not deep:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deep = depth > MAX_JSON_DEPTH
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    if deep:
        reason = f"is nested deeper than {MAX_JSON_DEPTH} levels"
    if reason is not None:
        error = ValueError(f"The {what} {path} {reason}")
        error.reason = reason
        raise error
    return value


def normalise(value):
    """``value`` as it reads back from a JSON file (keys sorted, tuples as lists, other objects as text)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def make_manifest(kind, *, identity, objectives, data, budget=None, provenance=None) -> dict:
    """The manifest of a run about to start; its ``id`` is a hash of what makes the run what it is.

    Args:
        kind: ``"comparison"`` or ``"search"``.
        identity: settings that make two runs the same (JSON values).
        objectives: ``[(name, "max" | "min"), ...]``, the first one the run's main metric.
        data: ``{"name", "fingerprint", "batch_size"}``.
        budget: what the run may spend (trials, seconds, seeds, epochs).
        provenance: the data's ``DataBundle.provenance()``.
    """
    return {**_manifest(kind, identity=identity, objectives=objectives, data=data, budget=budget,
                        provenance=provenance),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "environment": {k: v for k, v in environment().items() if k != "host"}}


def _manifest(kind, *, identity, objectives, data, budget=None, provenance=None) -> dict:
    """The manifest's fields that describe the run (:func:`make_manifest` adds when and where)."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    body = normalise({"kind": kind, "objectives": [{"name": n, "direction": d} for n, d in objectives],
                       "data": data, "identity": identity})
    run_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    # provenance as it reads back from the file: reports agree key for key
    return {"format": FORMAT, "id": run_id, **body, "budget": normalise(budget or {}),
            "provenance": normalise(provenance)}


def objectives_of(manifest) -> list:
    """``[(name, direction), ...]`` of a manifest."""
    return [(o["name"], o["direction"]) for o in manifest["objectives"]]


def write_manifest(run_dir, manifest):
    write_json_atomic(os.path.join(os.fspath(run_dir), MANIFEST_FILE), manifest)


def read_manifest(run_dir, *, records=None):
    """The manifest of ``run_dir`` in the current format, or ``None`` when the folder holds no run.

    ``run.json`` is read as it is; an older folder goes through :func:`migrate` (in memory: nothing is
    written). ``records`` (default: read from the folder) serve a folder with no manifest at all.

    Raises:
        ValueError: a manifest that exists but is unreadable (it cannot be guessed).
    """
    run_dir = os.fspath(run_dir)
    for name in (MANIFEST_FILE, *OLDER_MANIFESTS):
        path = os.path.join(run_dir, name)
        if not os.path.exists(path):
            continue
        try:
            manifest = read_json(path, what="run manifest")
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as e:
            raise ValueError(
                f"The run manifest {path} is unreadable ({getattr(e, 'reason', e)}); it records what the run is, so "
                "it cannot be guessed. Restore it, or start the run over (a search: options=RunOptions(resume=False))."
            ) from None
        return manifest if manifest.get("format") == FORMAT else migrate(manifest, [])
    if records is None:
        records = read_records(os.path.join(run_dir, RECORDS_FILE))
    return migrate(None, records, provenance=_report_provenance(run_dir)) if records else None


def report_meta(run_dir):
    """``(folder, meta)`` of the report a run folder keeps (a comparison's beside its records, a search's in
    ``report/``): what :func:`tuning.report.write_report` stored to be written again; ``(None, {})`` when none."""
    for folder in (run_dir, os.path.join(run_dir, "report")):
        try:
            meta = read_json(os.path.join(folder, REPORT_META), what="report meta")
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            meta = None
        return folder, meta if isinstance(meta, dict) else {}
    return None, {}


def check_kind(run_dir, kind, arg):
    """Refuse a run folder that holds another kind of run (by its manifest, or its records when it has none),
    before anything is written there."""
    try:
        found = (read_manifest(run_dir) or {}).get("kind", kind)
    except ValueError:  # an unreadable manifest: the run's own reader names it
        found = kind
    if found != kind:
        raise ValueError(f"{run_dir} holds a {found}, not a {kind}: choose another `{arg}` (nothing was written "
                         f"there). Received: {arg}={os.fspath(run_dir)!r}")


def _report_provenance(run_dir):
    """The provenance an earlier report kept in its ``report_meta.json``."""
    provenance = report_meta(run_dir)[1].get("provenance")
    return provenance if isinstance(provenance, dict) else None


def migrate(old, records, *, provenance=None) -> dict:
    """A current-format manifest from a format-1 search manifest (``old``) or, with ``old=None``, from
    the records of a folder that has none (the run's kind and objectives as its records state them) and the
    ``provenance`` its report kept (data, seeds, training settings, models)."""
    if old is not None:
        es = old.get("early_stopping") or {}
        algorithm = dict(old.get("algorithm") or {})
        name = algorithm.get("name")
        described = {"name": name, "pruning": old.get("pruning")}
        described.update({"bayesian": {"num_initial_points": algorithm.get("num_initial_points")},
                          "hyperband": {"factor": algorithm.get("hyperband_factor")},
                          "nsga2": {"population_size": algorithm.get("population_size")}}.get(name, {}))
        pairs = old.get("objectives") or [old.get("objective") or {}]
        manifest = _manifest("search", identity={
            "hypermodel": old.get("hypermodel"), "space": old.get("space"), "algorithm": described,
            "seed": old.get("seed"), "executions": old.get("executions", 1), "constraints": old.get("constraints", {}),
            "training": _format_1_training(old, es),
        }, objectives=[(o.get("name"), o.get("direction")) for o in pairs], data=old.get("data"),
            provenance=old.get("provenance"))
        manifest.update(id=old.get("search", manifest["id"]), created=old.get("created"),
                        environment=old.get("environment"), migrated_from="search.json (format 1)")
        return manifest
    searched = any(r.get("search") or r.get("algorithm") for r in records)
    stated = next((r["objectives"] for r in records if r.get("objectives")), None)
    single = next((r["objective"] for r in records if isinstance(r.get("objective"), str)), None)
    if stated:
        pairs = objective_fields(stated, arg="the records' objectives")
    elif single:
        pairs = [objective(single, arg="the records' objective")]
    else:  # a comparison's records: its main metric is the validation accuracy, or the loss of a regression
        regression = any(r.get("task") == "regression" or "val_mae" in r for r in records)
        pairs = [("val_loss", "min") if regression else ("val_accuracy", "max")]
    first, kept = records[0], dict(provenance or {})
    if "fingerprint" in kept and "source" in kept:  # a bare DataBundle.provenance()
        kept = {"data": kept}
    training = kept.get("training") or {k: kept[k] for k in ("epochs", "batch_size", "precision", "fit_kwargs")
                                        if k in kept}
    identity = {k: v for k, v in (("seeds", kept.get("seeds")), ("training", training), ("models", kept.get("models")))
                if v}
    manifest = _manifest("search" if searched else "comparison", identity=identity, objectives=pairs,
                         data={"name": first.get("dataset"), "fingerprint": first.get("data"),
                               "batch_size": first.get("batch_size")}, provenance=kept.get("data"))
    manifest.update(id=first.get("search") or manifest["id"], created=None, environment=None,
                    migrated_from="records.jsonl (no manifest)")
    return manifest


def migrate_record(record) -> dict:
    """A record in today's form: a comparison record written before records held their ``training``
    settings gets them from its ``fit_kwargs``, epochs, batch size and precision (so that a resumed
    comparison recognises its completed trials). Other records are returned as they are."""
    if "training" in record or "fit_kwargs" not in record:
        return record
    from zoo.training import TrainingConfig  # only for such records: a comparison has Keras loaded anyway

    try:
        config = TrainingConfig.from_fit_kwargs(record["fit_kwargs"], epochs=record.get("epochs"),
                                                batch_size=record.get("batch_size"),
                                                precision=record.get("precision") or "float32")
    except (TypeError, ValueError):
        return record  # settings today's TrainingConfig refuses: the trial is not reused
    return {**record, "training": training_identity(config)}


def training_identity(config, *, searched=()) -> dict:
    """The training settings that make two runs the same: every field of a ``TrainingConfig`` but the
    ``searched`` ones, which a search space sets in each trial. A field added since a run folder was made
    (``layer_decay``) is left out while it has its default, so that the folder's runs stay the same. ``devices``
    is never part of it: synchronous data parallelism trains the same weights on any count (each record says
    how many devices it used), so a run resumes on another machine."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in searched and k != "devices"}
    if fields.get("layer_decay") is None:
        fields.pop("layer_decay", None)
    return normalise(fields)


def _format_1_training(old, early_stopping) -> dict:
    """The training identity of a format-1 search: it stored epochs, precision and early stopping; the
    other settings were the defaults (a zoo search space set the ones it searched in every trial)."""
    from zoo.training import TrainingConfig  # only for such a folder: the defaults are TrainingConfig's

    stored = dict(epochs=old.get("epochs"), precision=old.get("precision", "float32"),
                  patience=early_stopping.get("patience"), min_delta=early_stopping.get("min_delta", 0.0),
                  monitor=early_stopping.get("monitor"))
    config = TrainingConfig(**{k: v for k, v in stored.items() if v is not None})
    return training_identity(config, searched=tuple((old.get("hypermodel") or {}).get("training") or ()))
