"""What a trial leaves in its run folder besides its record: the trained model and its card, the
per-epoch checkpoint that lets a killed trial resume, and its TensorBoard and CSV logs.

Layout of a comparison or search folder ``RUN``::

    RUN/records.jsonl
    RUN/models/ID.keras, ID.json        saved models and their cards (save_models=)
    RUN/checkpoints/ID/variables-E.npz  the running trial's variables after its last finished epoch E, its
                                        optimizer's and random generators' included (earlier versions
                                        wrote model-E.keras: still read),
    RUN/checkpoints/ID/state.json       with its epoch, seed, history, architecture and the variables file's
                                        name and hash; deleted with the record
    LOG_DIR/ID/                         TensorBoard scalars and log.csv per trial (log_dir=, e.g. RUN/tb)

Every file is written to a temporary name (``*.tmp-PID*``), then renamed, so a kill leaves either the old
file or the new one; a trial that starts again removes the temporary files of its writers that died. A
checkpoint is one unit: ``state.json``, renamed last, names the variables file of its epoch and its SHA-256,
so a kill between the two writes leaves the previous epoch's pair. A checkpoint holds variables only (7-43
ms an epoch, where a ``.keras`` file took 40-180 ms: ``benchmarks/checkpoint_cost.py``): the resumed trial
builds and compiles its model as the first run did, and :class:`RestoreVariables` puts the values back once
Keras has built the optimizer. A record that saved its model holds ``model_path`` (relative to ``RUN``) and
``model_sha256``; loading checks both and names the file when it is missing or altered.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import io
import math
import os
import re
import shutil
import time
import zipfile

import keras
import numpy as np

from tuning.manifest import read_json
from zoo.runtime import write_bytes_atomic, write_json_atomic

_STARTED = time.time()  # this process's start, near enough: a temporary file older than it is no live write

MODELS_DIR = "models"
CHECKPOINTS_DIR = "checkpoints"

__all__ = ["CheckpointMismatch", "EpochCheckpoint", "ModelFileError", "RestoreVariables", "TrialFiles", "architecture",
           "load_checkpoint", "load_saved_model", "prune_saved_models", "save_trained_model", "save_variables",
           "write_hparams"]


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

    def remove_dead_temporaries(self) -> list:
        """Delete the temporary files (``*.tmp-PID*``) that writers of this trial's saved model, card and
        checkpoint left when they were killed; returns their paths. A file is kept while its writer may
        still be writing it: its process is alive, is not this one and the file changed since this process
        started."""
        stem = os.path.join(self.run_dir, MODELS_DIR, _safe(self.record_id))
        patterns = (f"{glob.escape(stem)}.tmp-*", f"{glob.escape(stem)}.json.tmp-*",
                    os.path.join(glob.escape(self.checkpoint_dir), "*.tmp-*"))
        removed = []
        for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
            found = re.search(r"\.tmp-(\d+)", os.path.basename(path))
            if found and not _may_be_writing(int(found.group(1)), path):
                try:
                    os.remove(path)
                    removed.append(path)
                except OSError:
                    pass  # gone already, or not ours to remove: it harms nothing
        return removed


def clear_checkpoints(run_dir, records=None) -> list:
    """Delete the checkpoints of trials whose record is written (a run killed between writing a record and
    deleting its checkpoint left them), or all of them (``records=None``: a run that starts over); returns the
    folders removed. Called by the run folder's owner, under its lock."""
    done = None if records is None else {_safe(r["id"]) for r in records if r.get("id") is not None}
    root = os.path.join(run_dir, CHECKPOINTS_DIR)
    removed = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else ():
        if done is None or name in done or name.split("-x")[0] in done:  # a search's later executions: ID-xN
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(os.path.join(root, name))
    return removed


def _may_be_writing(pid, path) -> bool:
    """Whether process ``pid`` may still be writing ``path``."""
    if pid == os.getpid():  # a killed run's file whose pid came back: this process writes none of this
        return False  # trial's files while the trial starts (keep it so if such writes ever go to a thread)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # alive, another user's
    try:
        return os.path.getmtime(path) >= _STARTED  # older than this run: its writer died, the pid was reused
    except OSError:
        return False


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
    """After each epoch but the last of ``epochs`` (the record follows it at once), the model's variables and
    its optimizer's as ``variables-E.npz`` (:func:`save_variables`), then ``state.json``: the epochs done, the
    trial's seed, the history so far, each epoch's seconds, the optimizer's iterations, the model's
    :func:`architecture` and the variables file's name and SHA-256 (``history`` and ``seconds`` given hold the
    epochs before a resume, ``timer`` is the trial's :class:`zoo.training.EpochTimer`, called before this
    callback). ``state.json`` is renamed last: until then the previous epoch's state names the previous
    variables file, which stays until then."""

    def __init__(self, folder, *, seed, epochs, history=None, seconds=(), timer=None):
        super().__init__()
        self.folder, self.seed, self.epochs, self.timer = folder, seed, epochs, timer
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.seconds = list(seconds)
        self.architecture = None  # the model's, the same every epoch

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if epoch + 1 >= self.epochs:
            return
        name = f"variables-{epoch + 1}.npz"
        sha = save_variables(self.model, os.path.join(self.folder, name))
        seconds = self.seconds + (list(self.timer.seconds) if self.timer is not None else [])
        optimizer = getattr(self.model, "optimizer", None)
        if self.architecture is None:
            self.architecture = _as_json(architecture(self.model))
        write_json_atomic(os.path.join(self.folder, "state.json"), {
            "epoch": epoch + 1, "seed": self.seed, "history": self.history, "epoch_seconds": seconds,
            "model": name, "model_sha256": sha,
            # np.asarray: a replica's (devices=N on TensorFlow) is a MirroredVariable, which int() refuses
            "iterations": int(np.asarray(optimizer.iterations)) if optimizer is not None else None,
            "architecture": self.architecture})
        _remove_other_models(self.folder, name)


def _as_json(value):
    """``value`` as JSON gives it back (tuples become lists)."""
    return [_as_json(v) for v in value] if isinstance(value, (list, tuple)) else value


def _variables(model):
    """``(model's, optimizer's)`` variables in the order Keras keeps them: the layers' (random generators'
    states included, which a ``.keras`` file leaves out), then the optimizer's."""
    optimizer = getattr(model, "optimizer", None)
    return list(model.variables), (list(optimizer.variables) if optimizer is not None else [])


def save_variables(model, path):
    """``model``'s variables and its optimizer's (:func:`_variables`) as one uncompressed ``.npz`` whose
    arrays ``m00000``, ... and ``o00000``, ... keep their order (:func:`zoo.runtime.write_bytes_atomic`).
    A type NumPy lacks (bfloat16) is stored as float32, which holds it exactly; restoring casts it back.
    Returns the file's SHA-256 (of the bytes written: the file is not read back)."""
    own, opt = _variables(model)
    arrays = {}
    for prefix, variables in (("m", own), ("o", opt)):
        for i, variable in enumerate(variables):
            array = np.array(variable)
            arrays[f"{prefix}{i:05d}"] = array if array.dtype.isbuiltin == 1 else array.astype("float32")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getbuffer())
    return hashlib.sha256(buffer.getbuffer()).hexdigest()


class CheckpointMismatch(ValueError):
    """A variables checkpoint does not fit the model or optimizer it is restored into (nothing was assigned)."""


def _read_variables(path, like):
    """``{"m": [arrays], "o": [arrays]}`` of the variables file ``path``, checked against ``like`` (the freshly
    built model) before any array is read: every member stored uncompressed and no larger than the largest
    of ``like``'s variables as float64 (an optimizer's slots are the size of the variables they follow),
    the model's arrays as many as ``like``'s variables and of their shapes."""
    own = list(like.variables)
    largest = max([int(np.prod(v.shape)) for v in own] + [1]) * 8 + 4096  # float64, with the .npy header
    with zipfile.ZipFile(path) as z:
        members = z.infolist()
    if len(members) > 4 * len(own) + 64:
        raise CheckpointMismatch(f"it holds {len(members)} arrays, more than a model of {len(own)} variables and "
                                 "its optimizer have")
    for member in members:
        if not re.fullmatch(r"[mo]\d{5}\.npy", member.filename) or member.compress_type != zipfile.ZIP_STORED:
            raise CheckpointMismatch(f"its member {member.filename!r} is not an array it writes")
        if member.file_size > largest:
            raise CheckpointMismatch(f"its array {member.filename!r} is {member.file_size} bytes, larger than any "
                                     "variable of the trial's model")
    arrays = {"m": [], "o": []}
    with np.load(path, allow_pickle=False) as npz:
        for key in sorted(npz.files):
            arrays[key[0]].append(npz[key])
    if [a.shape for a in arrays["m"]] != [tuple(v.shape) for v in own]:
        raise CheckpointMismatch(f"{os.path.basename(path)} is not of the trial's architecture (its variables' "
                                 "number or shapes differ from the built model's)")
    return arrays


class RestoreVariables(keras.callbacks.Callback):
    """At the start of ``fit`` (the optimizer built first if Keras has not yet), the values of a variables checkpoint
    (:func:`load_checkpoint`) go into the model's variables and its optimizer's, after checking that the
    optimizer has as many of the same shapes and would stand at ``iterations``; a checkpoint that does not
    fit raises :class:`CheckpointMismatch` before anything is assigned (the model stays as built)."""

    def __init__(self, arrays, *, iterations):
        super().__init__()
        self.arrays, self.iterations = arrays, iterations

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not optimizer.built:  # TensorFlow without a distribution builds it at the first step: built here as
            optimizer.build(self.model.trainable_variables)  # Keras' own symbolic build would
        own, opt = _variables(self.model)
        if [a.shape for a in self.arrays["o"]] != [tuple(v.shape) for v in opt]:
            raise CheckpointMismatch(f"its {len(self.arrays['o'])} optimizer arrays are not the trial's optimizer's "
                                     f"{len(opt)} variables (their number or shapes differ)")
        at = next((i for i, v in enumerate(opt) if v is optimizer.iterations), None)
        found = int(self.arrays["o"][at]) if at is not None else None
        if found != self.iterations:
            raise CheckpointMismatch(f"its optimizer is at iteration {found!r}, its state says {self.iterations}")
        for variable, array in zip(own + opt, self.arrays["m"] + self.arrays["o"]):
            variable.assign(array)


def _remove_other_models(folder, keep):
    """Delete the checkpoint's variables (or model) files but ``keep`` (earlier epochs' ones, no longer named
    by the state)."""
    paths = [p for pattern in ("model*.keras", "variables-*.npz")
             for p in glob.glob(os.path.join(glob.escape(folder), pattern))]
    for path in paths:
        if os.path.basename(path) != keep and ".tmp-" not in os.path.basename(path):
            os.remove(path)


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_state(state, *, seed, epochs):
    """The reason ``state`` (a checkpoint's ``state.json``) is unusable, or ``None``."""
    if not isinstance(state, dict):
        return "its state is not a JSON object"
    found = state.get("seed")
    if isinstance(found, bool) or found != seed:  # true == 1 in Python: a boolean is no seed
        return f"its seed {found!r} is not the trial's {seed!r}"
    done = state.get("epoch")
    if type(done) is not int or not 0 < done <= epochs:
        return f"its epoch {done!r} is not a whole number within the budget of {epochs}"
    history = state.get("history")
    if not isinstance(history, dict) or "loss" not in history:
        return "its history is not a mapping with a loss"
    for key, values in history.items():
        if not isinstance(values, list) or len(values) != done or not all(_finite_number(v) for v in values):
            return f"its history of {key!r} is not {done} finite number(s), one per epoch done"
    seconds = state.get("epoch_seconds")
    if not isinstance(seconds, list) or len(seconds) != done or not all(_finite_number(v) and v >= 0 for v in seconds):
        return f"its epoch_seconds are not {done} durations"
    name = state.get("model")
    if not isinstance(name, str) or not re.fullmatch(r"model-\d+\.keras|variables-\d+\.npz", name) or (
            not isinstance(state.get("model_sha256"), str)):
        return "it names no variables or model file with its SHA-256 (written by an older version)"
    if name.endswith(".npz") and not isinstance(state.get("architecture"), list):
        return "it names no architecture"
    if type(state.get("iterations")) is not int or state["iterations"] < done:
        return f"its optimizer iterations {state.get('iterations')!r} are not a count of steps"
    return None


def architecture(model) -> list:
    """What two models of one architecture share whatever their layers' generated names: each layer's class
    and its weights' shapes, in order."""
    return [(type(layer).__name__, [tuple(int(d) for d in w.shape) for w in layer.weights])
            for layer in model._flatten_layers(include_self=False)]


def load_checkpoint(folder, *, seed, epochs, notes, like):
    """``(values, state)`` from a trial's checkpoint, or ``None`` when there is none usable.

    ``values`` is the arrays of a variables checkpoint, for :class:`RestoreVariables` to put into ``like``
    (the freshly built model) once it is compiled, or the compiled model of a ``model-E.keras`` checkpoint
    (written by earlier versions). The state must be whole and agree with itself and the trial: its seed, a
    whole epoch within the budget, a finite history of that many epochs, the file it names with that
    SHA-256, ``like``'s architecture, and a ``.keras`` model's optimizer at the iterations it states (a
    variables file's optimizer is checked when it is restored). A checkpoint that does not is deleted with a
    note in ``notes`` naming its folder, and the trial starts again from its first epoch.
    """
    state_path = os.path.join(folder, "state.json")
    if not os.path.exists(state_path):  # none, or a first variables file whose state never came: the next
        return None  # state written, or the record, removes that file
    try:
        state = read_json(state_path, what="checkpoint state")
        problem = _check_state(state, seed=seed, epochs=epochs)
        if problem:
            raise ValueError(problem)
        path = os.path.join(folder, state["model"])
        if _sha256(path) != state["model_sha256"]:
            raise ValueError(f"{state['model']} is not the file its state names (its SHA-256 differs)")
        mismatch = ValueError(f"{state['model']} is not of the trial's architecture (its layers or weight shapes "
                              "differ from the built model's)")
        if path.endswith(".npz"):
            if state["architecture"] != _as_json(architecture(like)):
                raise mismatch
            values = _read_variables(path, like)
        else:
            from zoo import load_model

            values = load_model(path)
            optimizer = getattr(values, "optimizer", None)
            if optimizer is None or int(optimizer.iterations) != state["iterations"]:
                found = int(optimizer.iterations) if optimizer is not None else None
                raise ValueError(f"its optimizer is at iteration {found!r}, its state says {state['iterations']}")
            if architecture(values) != architecture(like):
                raise mismatch
    except Exception as e:  # noqa: BLE001 - any damage: the trial restarts, with a note
        discard(folder, notes, e)
        return None
    _remove_other_models(folder, state["model"])
    return values, state


def discard(folder, notes, error):
    """Delete the damaged checkpoint ``folder``, with a note in ``notes`` naming it and ``error``."""
    notes.append(f"{folder}: discarded a damaged checkpoint ({type(error).__name__}: {error}); the trial restarts")
    shutil.rmtree(folder, ignore_errors=True)


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
