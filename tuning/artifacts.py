"""What a trial leaves in its run folder besides its record: the trained model and its card, the
per-epoch checkpoint that lets a killed trial resume, and its TensorBoard and CSV logs.

Layout of a comparison or search folder ``RUN``::

    RUN/records.jsonl
    RUN/models/ID.keras, ID.json        saved models and their cards (save_models=)
    RUN/checkpoints/ID/model.keras      the running trial's last finished epoch, optimizer included,
    RUN/checkpoints/ID/state.json       with its epoch, seed and history; deleted with the record
    LOG_DIR/ID/                         TensorBoard scalars and log.csv per trial (log_dir=, e.g. RUN/tb)

Every file is written to a temporary name, then renamed, so a kill leaves either the old file or the
new one. A record that saved its model holds ``model_path`` (relative to ``RUN``) and
``model_sha256``; loading checks both and names the file when it is missing or altered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil

import keras

from zoo.runtime import write_json_atomic

MODELS_DIR = "models"
CHECKPOINTS_DIR = "checkpoints"

__all__ = ["EpochCheckpoint", "ModelFileError", "TrialFiles", "load_checkpoint", "load_saved_model",
           "prune_saved_models", "save_trained_model", "write_hparams"]


class ModelFileError(ValueError):
    """A saved model is missing, altered (its SHA-256 differs from its record's) or was not kept."""


def _safe(record_id) -> str:
    """A file name for a record id (ids are digits, or ``name-seedN-hash``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(record_id))


@dataclasses.dataclass(frozen=True)
class TrialFiles:
    """Where one trial's files go: its saved model and checkpoint inside ``run_dir``, its logs in
    ``log_root/ID`` (no logs when ``log_root`` is ``None``)."""

    run_dir: str
    record_id: str
    save_model: bool = False
    checkpoint: bool = True
    log_root: str | None = None

    @property
    def model_path(self):
        return os.path.join(self.run_dir, MODELS_DIR, f"{_safe(self.record_id)}.keras")

    @property
    def checkpoint_dir(self):
        return os.path.join(self.run_dir, CHECKPOINTS_DIR, _safe(self.record_id))

    @property
    def log_dir(self):
        return os.path.join(os.fspath(self.log_root), _safe(self.record_id)) if self.log_root is not None else None

    def clear_checkpoint(self):
        """Delete the trial's checkpoint (its record is written)."""
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _save_keras(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path[:-len('.keras')]}.tmp-{os.getpid()}.keras"  # Keras wants the .keras ending
    model.save(tmp)
    os.replace(tmp, path)


def save_trained_model(model, files: TrialFiles, card: dict) -> dict:
    """Save ``model`` (optimizer included) and its JSON card beside it; returns the record fields
    ``model_path`` (relative to the run folder) and ``model_sha256``."""
    _save_keras(model, files.model_path)
    sha = _sha256(files.model_path)
    relative = os.path.relpath(files.model_path, files.run_dir)
    write_json_atomic(files.model_path[:-len(".keras")] + ".json",
                      {**card, "model_path": relative, "model_sha256": sha})
    return {"model_path": relative, "model_sha256": sha}


def load_saved_model(run_dir, record, *, compile=True):
    """The model a record saved, after checking that its file exists and is the one recorded."""
    from zoo import load_model

    rid = record.get("id")
    if not record.get("model_path"):
        raise ModelFileError(f"Record {rid!r} of {run_dir} has no saved model (run with save_models='all' to keep "
                             "every model, or train it again)")
    path = os.path.join(run_dir, record["model_path"])
    if not os.path.isfile(path):
        raise ModelFileError(f"The model file of record {rid!r} is missing: {path} (deleted, or not kept by "
                             "save_models)")
    if record.get("model_sha256") and _sha256(path) != record["model_sha256"]:
        raise ModelFileError(f"The model file of record {rid!r} was altered since it was saved: {path} (its SHA-256 "
                             "differs from the record's)")
    return load_model(path, compile=compile)


def prune_saved_models(run_dir, records, keep_ids):
    """Delete the saved models (and cards) of ``records`` whose id is not in ``keep_ids``; returns how many."""
    keep = {str(k) for k in keep_ids}
    removed = 0
    for r in records:
        if str(r.get("id")) in keep or not r.get("model_path"):
            continue
        path = os.path.join(run_dir, r["model_path"])
        for p in (path, path[:-len(".keras")] + ".json"):
            if os.path.exists(p):
                os.remove(p)
                removed += p == path
    return removed


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch but the last of ``epochs`` (the record follows it at once), the model (with its
    optimizer state) and ``state.json`` (the epochs done, the trial's seed, the history so far and each
    epoch's seconds; ``history`` and ``seconds`` given hold the epochs before a resume, ``timer`` is the
    trial's :class:`zoo.training.EpochTimer`, called before this callback)."""

    def __init__(self, folder, *, seed, epochs, history=None, seconds=(), timer=None):
        super().__init__()
        self.folder, self.seed, self.epochs, self.timer = folder, seed, epochs, timer
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.seconds = list(seconds)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if epoch + 1 >= self.epochs:
            return
        _save_keras(self.model, os.path.join(self.folder, "model.keras"))
        seconds = self.seconds + (list(self.timer.seconds) if self.timer is not None else [])
        write_json_atomic(os.path.join(self.folder, "state.json"),
                          {"epoch": epoch + 1, "seed": self.seed, "history": self.history, "epoch_seconds": seconds})


def load_checkpoint(folder, *, seed, epochs, notes):
    """``(model, state)`` from a trial's checkpoint, or ``None`` when there is none usable.

    A damaged checkpoint (unreadable state or model, another seed, more epochs than the budget) is
    deleted with a note in ``notes``, and the trial starts again from its first epoch.
    """
    state_path, model_path = os.path.join(folder, "state.json"), os.path.join(folder, "model.keras")
    if not os.path.exists(state_path):
        return None
    try:
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        if not isinstance(state, dict) or state.get("seed") != seed:
            found = state.get("seed") if isinstance(state, dict) else None
            raise ValueError(f"its seed {found!r} is not the trial's {seed}")
        done = state.get("epoch")
        if not isinstance(done, int) or not 0 < done <= epochs or not isinstance(state.get("history"), dict):
            raise ValueError(f"epoch {done!r} is not within the budget of {epochs}")
        from zoo import load_model

        model = load_model(model_path)
    except Exception as e:  # noqa: BLE001 - any damage: the trial restarts, with a note
        notes.append(f"{folder}: discarded a damaged checkpoint ({type(e).__name__}: {e}); the trial restarts")
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return model, state


def write_hparams(log_dir, record, metrics):
    """TensorBoard HParams for one finished trial in ``log_dir`` (its run folder): the trial's
    hyperparameters (numbers, strings and booleans) and its final ``metrics`` as scalars, so that
    ``tensorboard --logdir LOG_ROOT`` lists the trials in its HParams table."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    values = {k: v for k, v in (record.get("hyperparameters") or {}).items() if isinstance(v, (bool, int, float, str))}
    values.setdefault("model", str(record.get("model")))
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hparams_api.hparams(values, trial_id=str(record.get("id")))
        for name in metrics:
            value = record.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                tf.summary.scalar(name, float(value), step=0)
    writer.close()
