"""Train one model and measure it: the unit of work of searches and comparisons.

``run_trial`` builds, profiles, trains through :func:`zoo.training.fit`,
evaluates, times inference and returns a complete trial record. Failures
(invalid configuration, non-finite loss, out of memory) become ``failed``
records with a reason instead of exceptions, so a search goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import math
import re
import time
from typing import Callable

import keras

import zoo
import zoo.data
from tuning.artifacts import (CheckpointMismatch, EpochCheckpoint, RestoreVariables, discard, load_checkpoint,
                              save_trained_model)
from tuning.constraints import BUILD_TIME_CONSTRAINTS, broken_constraints, check_constraints
from tuning.objectives import dominates, minimised
from tuning.records import finite, new_record
from zoo import training
from zoo.profiling import measure_latency_and_throughput
from zoo.runtime import is_disk_full, is_out_of_memory, peak_memory_bytes, released_graphs
from zoo.training import EpochTimer, TrainingConfig, resolve_devices, resolve_precision

__all__ = ["TrialPlan", "check_build", "data_kwargs", "objective_value", "run_data", "run_trial", "run_training"]


def _first_line(error: BaseException) -> str:
    """The informative line of an error: Keras' "Exception encountered when calling X.call()."
    header is followed by the real message (in ANSI bold), which is kept too."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Exception encountered when calling") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"[:500]
    return lines[0][:500]


def _splits(data, batch_size):
    """(train, validation, test) in a form ``model.fit`` takes, at ``batch_size``."""
    out = []
    for split in ("train", "validation", "test"):
        if split not in data.splits:
            out.append(None)
            continue
        ds = getattr(data, split, None)
        if ds is None or batch_size != data.batch_size:
            if ds is not None and hasattr(ds, "rebatch"):
                # keep the tf.data pipeline (and its shuffling); only the batch size changes
                ds = ds.rebatch(batch_size)
                if data.num_examples.get(split):  # its length, which rebatch loses: over a dataset of unknown
                    # length, Keras steps once past the end each epoch and counts that step in the optimizer's
                    # iterations (an epoch of 8 batches made 9: Adam's bias correction and a schedule ran ahead)
                    import tensorflow as tf

                    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-data.num_examples[split] // batch_size)))
            else:
                ds = data.arrays(split)
        out.append(ds)
    return out


def _evaluate(model, data, batch_size, prefix):
    if data is None:
        return {}
    if isinstance(data, tuple):
        values = model.evaluate(data[0], data[1], batch_size=batch_size, verbose=0, return_dict=True)
    else:
        values = model.evaluate(data, verbose=0, return_dict=True)
    return {f"{prefix}_{k}": float(v) for k, v in values.items()}


@dataclasses.dataclass(frozen=True)
class TrialPlan:
    """Everything a trial needs besides its model, seed and files: built once by a comparison or a search
    and handed through unchanged (a search's trial only swaps in the training settings it drew).

    Attributes:
        training: the :class:`zoo.training.TrainingConfig`: epochs, batch size (``None``: the data's),
            optimizer, schedule, precision (``None`` keeps the global dtype policy), augmentation, early
            stopping.
        constraints: upper bounds (``{"max_params": 1e5}``); a model over a bound known once it is built
            (parameters, MACs, weight bytes) is not trained: its record is ``infeasible``.
        measure_speed: time batch-1 latency and batch throughput after training.
        speed_iterations: timed batches for the latency (a third of them for the throughput).
        callbacks: extra Keras callbacks. One that sets a ``prune_reason`` attribute (a pruner) makes the
            record ``pruned``, with that reason as its error.
        on_trained: ``callable(model) -> dict`` run after evaluation on the trained model; its JSON-friendly
            fields are added to the record (e.g. a confusion matrix), so that reports never need the model.
        verbose: Keras ``fit`` verbosity.
        speeds: the speed figures timed earlier in the run (:func:`speed_table` of its records): a trial of
            an architecture already timed at the same batch size and precision copies them, with
            ``speed_from_trial``, instead of timing again (a model's speed does not depend on its weights).
        front: ``(objectives, points)``: the ``(name, direction)`` pairs of the front whose models the run
            keeps and the points on it as the trial starts (:func:`tuning.objectives.front_points` of the
            records before it). A trial that one of them dominates is not saved: a record once dominated
            stays so, and its model would be deleted when the run ends. ``None``: saved whenever the files
            say so.
    """

    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    constraints: dict = dataclasses.field(default_factory=dict)
    measure_speed: bool = True
    speed_iterations: int = 5
    callbacks: tuple = ()
    on_trained: Callable | None = None
    verbose: int = 0
    speeds: dict | None = None
    front: tuple | None = None

    def __post_init__(self):
        if not isinstance(self.training, TrainingConfig):
            raise TypeError(f"`training` must be a zoo.training.TrainingConfig. Received: training={self.training!r}")
        object.__setattr__(self, "constraints", check_constraints(self.constraints) if self.constraints else {})
        object.__setattr__(self, "callbacks", tuple(self.callbacks))


def run_data(data):
    """The :class:`zoo.data.DataBundle` of a comparison or a search: given, or loaded by its name."""
    if isinstance(data, str):
        data = zoo.data.load(data)
    for attr in ("fingerprint", "input_shape", "splits", "arrays"):
        if not hasattr(data, attr):
            raise TypeError(f"`data` must be a zoo.data.DataBundle or a data set name. Received: {type(data).__name__}")
    return data


def run_training(training, *, monitor, batch_size=None) -> TrainingConfig:
    """The checked TrainingConfig a run's trials share: ``TrainingConfig()`` for ``None``, its precision resolved
    (``float32`` unless set), early stopping on ``monitor`` unless it names its own, ``batch_size`` unless set."""
    if training is None:
        training = TrainingConfig()
    if not isinstance(training, TrainingConfig):
        raise TypeError(f"`training` must be a zoo.training.TrainingConfig. Received: training={training!r}")
    resolve_devices(training.devices)  # more devices than this machine has: refused before the first trial
    return dataclasses.replace(training, precision=resolve_precision(training.precision or "float32"),
                               monitor=training.monitor or (monitor if training.patience is not None else None),
                               batch_size=training.batch_size or batch_size)


class _End(Exception):
    """Ends a trial early with a status other than ``completed`` (one exit builds every record)."""

    def __init__(self, status, error, **fields):
        super().__init__(error)
        self.status, self.error, self.fields = status, error, fields


def run_trial(build, data, plan=None, *, trial_id, seed=0, files=None, model_name=None, hyperparameters=None) -> dict:
    """Build, train and measure one model; never raises for a failed trial.

    The phases, in order: build (or resume from a checkpoint) -> sizes and constraints -> fit -> evaluate
    -> speed -> save. A phase that ends the trial early (an infeasible size, a non-finite loss, a pruner, an
    exception) leaves the record's status and error; every record leaves through the one exit at the end.

    Args:
        build: a registry name, or a callable returning a ``keras.Model``.
        data: a :class:`zoo.data.DataBundle`.
        plan: a :class:`TrialPlan` (default: ``TrialPlan()``).
        trial_id: identifier stored in the record.
        seed: seeds the initialisation and the data order.
        files: a :class:`tuning.artifacts.TrialFiles`: where the trial checkpoints each epoch (and resumes
            from its last finished epoch when it finds a checkpoint: the record then notes
            ``resumed_from_epoch`` and holds the whole history), saves its trained model and card
            (``model_path``, ``model_sha256``) and writes its TensorBoard and CSV logs. The caller deletes the
            checkpoint (``files.clear_checkpoint()``) once the record is written.
        model_name: name stored in the record (default: the registry name, or the built model's).
        hyperparameters: stored in the record as given.

    Returns:
        A record (see :mod:`tuning.records`) with status ``completed``, ``failed``, ``infeasible`` or ``pruned``.
    """
    plan = TrialPlan() if plan is None else plan
    if not isinstance(plan, TrialPlan):
        raise TypeError(f"`plan` must be a tuning.trial.TrialPlan. Received: plan={plan!r}")
    name = model_name or (build if isinstance(build, str) else getattr(build, "__name__", "model"))
    trial = _Trial(plan=plan, data=data, seed=seed, files=files, record=dict(
        id=trial_id, model=name, hyperparameters=hyperparameters or {}, seed=seed, epochs=plan.training.epochs,
        data=data.fingerprint, dataset=data.name, timings={}))
    status, error = "completed", None
    try:
        with released_graphs():  # what TensorFlow would keep of the trial's graphs for good
            _build(trial, build, named=model_name is not None)
            _sizes(trial)
            _fit(trial)
            _evaluate_splits(trial)
            _speed(trial)
            _save(trial)
    except _End as end:
        status, error = end.status, end.error
        trial.record.update(end.fields)
    except Exception as e:  # noqa: BLE001 - every failure becomes a record; the run goes on
        if is_disk_full(e):
            raise  # not the trial's fault: the run stops (resumable) with one message naming the folder
        status, error = "failed", _failure(e, trial)
    finally:
        trial.model = None
        keras.backend.clear_session()  # free_memory=True: it runs gc.collect() itself (a second one cost ~0.3 s)
    built = trial.record["timings"].get("build") is not None
    if status != "infeasible" and (built or error.startswith(("build failed", "out of memory"))):
        trial.record["peak_memory_bytes"] = peak_memory_bytes()  # not for settings refused before building
    return new_record(status=status, error=error, **trial.record)


@dataclasses.dataclass
class _Trial:
    """The state one trial's phases share: its plan, data and files, the model, and the record so far."""

    plan: TrialPlan
    data: object
    seed: int
    files: object
    record: dict
    config: TrainingConfig | None = None
    model: object = None
    splits: tuple = (None, None, None)
    metrics: dict = dataclasses.field(default_factory=dict)
    resumed: tuple | None = None

    def timed(self, phase):
        """A context that adds the seconds of ``phase`` to the record's ``timings``."""
        return _Timed(self.record["timings"], phase)


class _Timed:
    def __init__(self, timings, phase):
        self.timings, self.phase = timings, phase

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, error_type, *exc):
        if error_type is None:  # a phase that raised has no duration worth recording
            self.timings[self.phase] = time.perf_counter() - self.start


def _failure(error, trial) -> str:
    """The record's error for an exception: out of memory and invalid settings are named as such."""
    if is_out_of_memory(error):
        return f"out of memory: {_first_line(error)}"
    if isinstance(error, (ValueError, TypeError)) and trial.model is None:
        return f"invalid configuration: {error}"
    if trial.model is None and trial.config is not None:
        return f"build failed: {type(error).__name__}: {_first_line(error)}"
    return f"{type(error).__name__}: {_first_line(error)}"


def _build(trial, build, *, named):
    """Phase 1: the trial's settings, then the model (or the killed run's checkpoint, optimizer included)."""
    config, data, record = trial.plan.training, trial.data, trial.record
    batch_size = config.batch_size or data.batch_size
    policy = (keras.mixed_precision.global_policy().name if config.precision is None
              else resolve_precision(config.precision))
    record.update(epochs=config.epochs, batch_size=batch_size, precision=policy,
                  devices=resolve_devices(config.devices))
    trial.config = config.replace(batch_size=batch_size)
    training.set_seed(trial.seed)
    if hasattr(data, "restarted"):  # the same data order whatever trained on the bundle before
        trial.data = data.restarted()
    files = trial.files
    if files is not None:  # what writers of this trial killed mid-write left (the trial runs again)
        files.remove_dead_temporaries()
    with trial.timed("build"):
        # built even to resume: the checkpoint must be of its architecture, and a damaged one is replaced by it
        with training.precision_policy(policy) if config.precision is not None else contextlib.nullcontext():
            trial.model = zoo.build(build, input_shape=data.input_shape, num_classes=data.num_classes) if (
                isinstance(build, str)) else build()
        notes = []
        if files is not None and files.checkpoint:
            trial.resumed = load_checkpoint(files.checkpoint_dir, seed=trial.seed, epochs=config.epochs, notes=notes,
                                            like=trial.model)
        if notes:
            record["notes"] = notes
        if trial.resumed is not None:
            if isinstance(trial.resumed[0], keras.Model):  # a .keras checkpoint (earlier versions)
                trial.model = trial.resumed[0]
            record["resumed_from_epoch"] = trial.resumed[1]["epoch"]
    if not named and not isinstance(build, str):
        record["model"] = trial.model.name  # a callable's own name ("<lambda>") says little


def _sizes(trial):
    """Phase 2: parameters, MACs and weight bytes; a model over a size bound ends here, untrained."""
    with trial.timed("profile"):
        p = zoo.profile(trial.model)
    trial.record.update(params=p.params, trainable_params=p.trainable_params, macs=p.macs, flops=p.flops,
                        weight_bytes=p.weight_bytes, architecture=architecture_id(trial.model))
    constraints = trial.plan.constraints
    broken = broken_constraints(trial.record, constraints, BUILD_TIME_CONSTRAINTS) if constraints else []
    if broken:  # known before training: no time is spent on it
        raise _End("infeasible", "constraint violated: " + ", ".join(broken), constraints=dict(constraints))


def _fit(trial):
    """Phase 3: train through :func:`zoo.training.fit` (from the checkpoint's epoch when resumed; a variables
    checkpoint that does not fit the compiled optimizer is discarded with a note, and the trial, untouched by
    it, trains from its first epoch on its data restarted)."""
    record, plan = trial.record, trial.plan
    try:
        hist, timer = _train(trial)
    except CheckpointMismatch as e:  # raised before any value was assigned
        discard(trial.files.checkpoint_dir, record.setdefault("notes", []), e)
        trial.resumed = None
        record.pop("resumed_from_epoch", None)
        if hasattr(trial.data, "restarted"):  # JAX's symbolic build drew a batch: the data order moved on
            trial.data = trial.data.restarted()
        hist, timer = _train(trial)
    before, seconds_before = _before(trial.resumed)
    fit_seconds = record["timings"]["fit"] + sum(seconds_before)
    epoch_seconds = seconds_before + timer.seconds
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    if before:  # the epochs before the resume, then these: one continuous history
        history = {k: [*before.get(k, []), *history.get(k, [])] for k in {*before, *history}}
    record.update(best_epoch=hist.best_epoch, stopped_epoch=hist.stopped_epoch, history=history,
                  fit_seconds=fit_seconds, epochs_run=len(timer.seconds),
                  seconds_per_epoch=fit_seconds / max(1, len(epoch_seconds)), epoch_seconds=epoch_seconds)
    losses = history.get("loss", [])
    if not losses or not all(finite(v) for v in losses):
        bad = next((i for i, v in enumerate(losses) if not finite(v)), 0)
        raise _End("failed", f"non-finite loss at epoch {bad + 1}")
    pruned = next((cb.prune_reason for cb in plan.callbacks if getattr(cb, "prune_reason", None)), None)
    if pruned:  # stopped by a pruner (tuning.searches.pruning): kept, never ranked, not evaluated
        raise _End("pruned", pruned)


def _train(trial):
    """``(history, timer)`` of :func:`zoo.training.fit` on the trial's model, from its checkpoint's epoch when
    resumed: a variables checkpoint is put back by :class:`RestoreVariables` once the model is compiled as the
    first run compiled it; a ``.keras`` checkpoint's model came compiled, with its optimizer state."""
    config, data, files, plan, resumed = trial.config, trial.data, trial.files, trial.plan, trial.resumed
    if config.augmentation is not None and data.train is not None:
        train = zoo.data.augment(data.train, config.augmentation, seed=trial.seed, flip=config.augmentation_flip)
        data = dataclasses.replace(data, train=train)
    train, val, _ = trial.splits = _splits(data, config.batch_size)
    config = config.replace(steps_per_epoch=training.steps_per_epoch(
        train, config.batch_size, num_examples=data.num_examples.get("train")))
    overrides = {}
    if data.task == "regression" and config.options.get("compile", True) and "task" not in config.options:
        overrides["task"] = "regression"  # several linear outputs are not logits here
    before, seconds_before = _before(resumed)
    restore = []
    if resumed is not None and isinstance(resumed[0], keras.Model):  # compiled already, with its optimizer state
        config, overrides = config.replace(options={**config.options, "compile": False}), {}
    elif resumed is not None:
        restore.append(RestoreVariables(resumed[0], iterations=resumed[1]["iterations"]))
    trial.config = config
    timer = EpochTimer()
    checkpoint = []
    if files is not None and files.checkpoint:
        checkpoint.append(EpochCheckpoint(files.checkpoint_dir, seed=trial.seed, epochs=config.epochs, history=before,
                                          seconds=seconds_before, timer=timer))
    with trial.timed("fit"):
        hist = training.fit(
            trial.model, train, val, config=config, seed=trial.seed, verbose=plan.verbose,
            callbacks=[*restore, timer, keras.callbacks.TerminateOnNaN(), *checkpoint, *plan.callbacks],
            log_dir=files.log_dir if files is not None else None,
            initial_epoch=resumed[1]["epoch"] if resumed is not None else 0, **overrides,
        )
    return hist, timer


def _before(resumed):
    """``(history, epoch seconds)`` of the epochs before a resume (the seconds count in the trial's training
    time; a checkpoint of an older run may not say them)."""
    if resumed is None:
        return {}, []
    return resumed[1]["history"], list(resumed[1].get("epoch_seconds") or [])


def _evaluate_splits(trial):
    """Phase 4: validation and test metrics of the weights training ended with."""
    _, val, test = trial.splits
    batch_size, history = trial.config.batch_size, trial.record["history"]
    with trial.timed("evaluate"):
        # fit validated the weights it ends with after its last epoch, unless early stopping restored others
        known = _last_validation(history) if trial.config.patience is None else None
        metrics = {**(known or _evaluate(trial.model, val, batch_size, "val")),
                   **_evaluate(trial.model, test, batch_size, "test")}
    trial.record.update(metrics)
    trial.metrics = metrics
    if not all(finite(v) for v in metrics.values()):
        raise _End("failed", "non-finite evaluation metrics")


def _speed(trial):
    """Phase 5: batch-1 latency and batch throughput; then the plan's ``on_trained`` fields."""
    plan, model, record = trial.plan, trial.model, trial.record
    if plan.measure_speed:
        timed = (plan.speeds or {}).get(speed_key(record))
        if timed is not None:
            record.update(timed)
        else:
            with trial.timed("speed"):
                record.update(measure_latency_and_throughput(model, batch_size=trial.config.batch_size,
                                                             iterations=plan.speed_iterations))
    if plan.on_trained is not None:
        extra = dict(plan.on_trained(model) or {})
        clash = sorted(set(extra) & (set(trial.record) | {"id", "status", "error"}))
        if clash:
            raise ValueError(f"`on_trained` may not overwrite record fields. Received: {clash}")
        trial.record.update(extra)


def architecture_id(model):
    """A short fingerprint of ``model``'s architecture (its Keras config, not its weights), or ``None`` when the
    model cannot describe itself. Models built alike in a fresh session share it."""
    try:
        text = model.to_json()
    except Exception:  # noqa: BLE001 - a layer without a config: no fingerprint, nothing is shared
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def speed_key(record):
    """What a record's speed figures depend on: architecture, batch size and precision (``None`` when unknown)."""
    key = (record.get("architecture"), record.get("batch_size"), record.get("precision"))
    return None if key[0] is None else key


def speed_table(records) -> dict:
    """``{speed_key: {"latency_ms", "throughput", "speed_from_trial"}}``: the figures the first completed trial
    of each architecture timed (:attr:`TrialPlan.speeds`)."""
    table = {}
    for r in records:
        key = speed_key(r)
        if key is not None and key not in table and r.get("status") == "completed" and finite(r.get("latency_ms")):
            table[key] = {"latency_ms": r["latency_ms"], "throughput": r.get("throughput"),
                          "speed_from_trial": r.get("speed_from_trial") or r["id"]}
    return table


def _save(trial):
    """Phase 6: the trained model and its card, when the files say so."""
    files = trial.files
    if files is not None and files.save_model and not _dominated(trial.record, trial.plan.front):
        with trial.timed("save"):
            card = {**_card(trial.record, trial.metrics), "input": trial.data.contract()}
            trial.record.update(save_trained_model(trial.model, files, card))


def _dominated(record, front):
    """Whether a point of ``front`` (:attr:`TrialPlan.front`) dominates ``record`` (no: without a front, or
    with a value that is missing or not finite)."""
    if front is None:
        return False
    objectives, points = front
    values = [record.get(name) for name, _ in objectives]
    if not all(finite(v) for v in values):
        return False
    point = minimised(values, [d for _, d in objectives])
    return any(dominates(other, point) for other in points)


def _last_validation(history):
    """``{"val_loss": ..., ...}`` of the last epoch when ``fit`` validated after every epoch, else ``None``:
    the same numbers as evaluating the final weights again (the same test function on the same batches),
    without the second pass over the validation split."""
    keys = [k for k in history if k.startswith("val_")]
    epochs = len(history.get("loss", []))
    if not keys or any(len(history[k]) != epochs or not finite(history[k][-1]) for k in keys):
        return None
    return {k: float(history[k][-1]) for k in keys}


def _card(base, metrics) -> dict:
    """The JSON card saved beside a model: what it is, how it was trained, how well it did, on what."""
    keep = ("id", "model", "hyperparameters", "seed", "epochs", "best_epoch", "stopped_epoch", "batch_size",
            "precision", "devices", "data", "dataset", "params", "macs")
    return {**{k: base.get(k) for k in keep}, "metrics": dict(metrics), "environment": zoo.runtime.environment()}


def check_build(build, *, what):
    """Build once before any trial, so that a bad builder argument fails the whole run at once
    (a ``ValueError``/``TypeError`` prefixed with ``what``) instead of every trial one by one. Returns the
    model (built in a session that is then cleared: its names are not the next build's)."""
    try:
        return build()
    except (ValueError, TypeError) as e:
        raise type(e)(f"{what}: {e}") from None
    finally:
        keras.backend.clear_session()


def data_kwargs(name, *, input_shape, task="multiclass", num_classes=None, num_outputs=1) -> dict:
    """The builder arguments a registered model takes from its data (one rule for comparisons and searches).

    Input shape always; the classes for classification; ``task`` when the data
    are not multi-class and the builder has such a head (binary: one sigmoid
    unit); ``num_outputs`` for regression, which needs a builder with ``task``.

    Raises:
        ValueError: regression data for a model without a regression head.
    """
    kwargs = {"input_shape": tuple(input_shape)}
    accepts_task = "task" in inspect.signature(zoo.get_card(name).builder).parameters
    if task == "regression":
        if not accepts_task:
            raise ValueError(f"{name!r} has no regression head (its builder takes no `task`).")
        return {**kwargs, "task": "regression", "num_outputs": num_outputs}
    kwargs["num_classes"] = num_classes
    if task != "multiclass" and accepts_task:
        kwargs["task"] = task
    return kwargs


def objective_value(record, objective="val_accuracy"):
    """The record's objective if completed and finite, else ``None`` (never ranked)."""
    value = record.get(objective)
    return value if record.get("status") == "completed" and finite(value) and not math.isnan(value) else None
