"""Train one model and measure it: the unit of work of searches and comparisons.

``run_trial`` builds, profiles, trains through :func:`zoo.training.fit`,
evaluates, times inference and returns a complete trial record. Failures
(invalid configuration, non-finite loss, out of memory) become ``failed``
records with a reason instead of exceptions, so a search goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import re
import time

import keras

import zoo
import zoo.data
from tuning.artifacts import EpochCheckpoint, load_checkpoint, save_trained_model
from tuning.fronts import BUILD_TIME_CONSTRAINTS, broken_constraints, check_constraints
from tuning.records import finite, new_record
from zoo import training
from zoo.runtime import is_disk_full, is_out_of_memory, peak_memory_bytes
from zoo.training import EpochTimer, TrainingConfig

__all__ = ["EpochTimer", "check_build", "data_kwargs", "is_out_of_memory", "objective_value", "peak_memory_bytes",
           "run_trial"]


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


def run_trial(
    build,
    data,
    *,
    trial_id,
    config=None,
    model_name=None,
    hyperparameters=None,
    seed=0,
    callbacks=(),
    measure_speed=True,
    speed_iterations=5,
    verbose=0,
    on_trained=None,
    epochs=None,
    batch_size=None,
    fit_kwargs=None,
    precision=None,
    constraints=None,
    files=None,
) -> dict:
    """Build, train and measure one model; never raises for a failed trial.

    Args:
        build: a registry name, or a callable returning a ``keras.Model``.
        data: a :class:`zoo.data.DataBundle`.
        trial_id: identifier stored in the record.
        config: a :class:`zoo.training.TrainingConfig`: epochs, batch size
            (default: the bundle's), optimizer, schedule, precision (``None``
            keeps the global dtype policy), augmentation of the training split.
        model_name: name stored in the record (default: the registry name).
        hyperparameters: stored in the record as given.
        seed: seeds the initialisation and the data order.
        callbacks: extra Keras callbacks. One that sets a ``prune_reason`` attribute (a pruner) makes
            the record ``pruned``, with that reason as its error.
        measure_speed: time batch-1 latency and batch throughput after training.
        on_trained: optional ``callable(model) -> dict`` run after evaluation on the
            trained model; its JSON-friendly fields are added to the record (e.g. a
            confusion matrix), so that reports never need the model again.
        epochs, batch_size, precision: override the config's (or make one,
            with ``fit_kwargs``: optimizer, learning_rate, ... for :func:`zoo.training.fit`).
        constraints: upper bounds (``{"max_params": 1e5}``); a model over a bound known once it
            is built (parameters, MACs, weight bytes) is not trained: its record is ``infeasible``.
        files: a :class:`tuning.artifacts.TrialFiles`: where the trial checkpoints each epoch (and
            resumes from its last finished epoch when it finds a checkpoint: the record then notes
            ``resumed_from_epoch`` and holds the whole history), saves its trained model and card
            (``model_path``, ``model_sha256``) and writes its TensorBoard and CSV logs. The caller
            deletes the checkpoint (``files.clear_checkpoint()``) once the record is written.

    Returns:
        A record (see :mod:`tuning.records`) with status ``completed``, ``failed``, ``infeasible`` or
        ``pruned``; an invalid
        training configuration is a ``failed`` record too.
    """
    constraints = check_constraints(constraints) if constraints else None
    name = model_name or (build if isinstance(build, str) else getattr(build, "__name__", "model"))
    base = dict(id=trial_id, model=name, hyperparameters=hyperparameters or {}, seed=seed,
                epochs=epochs if config is None else config.epochs, data=data.fingerprint, dataset=data.name)
    try:
        config = _config(config, epochs=epochs, batch_size=batch_size, fit_kwargs=fit_kwargs, precision=precision)
        batch_size = config.batch_size or data.batch_size
        policy = (keras.mixed_precision.global_policy().name if config.precision is None
                  else training.resolve_precision(config.precision))
    except (ValueError, TypeError) as e:
        return new_record(status="failed", error=f"invalid configuration: {e}", **base)
    base.update(epochs=config.epochs, batch_size=batch_size, precision=policy)
    timings = {}  # seconds per phase, so that the time spent around model.fit can be measured
    base["timings"] = timings
    training.set_seed(seed)
    if hasattr(data, "restarted"):  # the same data order whatever trained on the bundle before
        data = data.restarted()
    clock = time.perf_counter()
    notes = []
    resumed = load_checkpoint(files.checkpoint_dir, seed=seed, epochs=config.epochs, notes=notes) if (
        files is not None and files.checkpoint) else None
    if notes:
        base["notes"] = notes
    try:
        if resumed is not None:  # a killed run's last finished epoch, optimizer state included
            model, state = resumed
            base["resumed_from_epoch"] = state["epoch"]
        else:
            with training.precision_policy(policy) if config.precision is not None else contextlib.nullcontext():
                model = zoo.build(build, input_shape=data.input_shape, num_classes=data.num_classes) if isinstance(
                    build, str) else build()
    except (ValueError, TypeError) as e:
        return new_record(status="failed", error=f"invalid configuration: {e}", **base)
    except Exception as e:  # noqa: BLE001 - e.g. out of memory while creating the weights
        reason = "out of memory" if is_out_of_memory(e) else f"build failed: {type(e).__name__}"
        return new_record(status="failed", error=f"{reason}: {_first_line(e)}",
                          peak_memory_bytes=peak_memory_bytes(), **base)
    if model_name is None and not isinstance(build, str):
        base["model"] = model.name  # a callable's own name ("<lambda>") says little
    timings["build"] = time.perf_counter() - clock
    try:
        clock = time.perf_counter()
        p = zoo.profile(model)
        base.update(params=p.params, trainable_params=p.trainable_params, macs=p.macs, flops=p.flops,
                    weight_bytes=p.weight_bytes)
        timings["profile"] = time.perf_counter() - clock
        broken = broken_constraints(base, constraints, BUILD_TIME_CONSTRAINTS) if constraints else []
        if broken:  # known before training: no time is spent on it
            return new_record(status="infeasible", error="constraint violated: " + ", ".join(broken),
                              constraints=dict(constraints), **base)
        if config.augmentation is not None and data.train is not None:
            train = zoo.data.augment(data.train, config.augmentation, seed=seed, flip=config.augmentation_flip)
            data = dataclasses.replace(data, train=train)
        train, val, test = _splits(data, batch_size)
        config = config.replace(batch_size=batch_size, steps_per_epoch=training.steps_per_epoch(
            train, batch_size, num_examples=data.num_examples.get("train")))
        overrides = {}
        if data.task == "regression" and config.options.get("compile", True) and "task" not in config.options:
            overrides["task"] = "regression"  # several linear outputs are not logits here
        before = resumed[1]["history"] if resumed is not None else {}
        if resumed is not None:  # compiled already, with its optimizer state
            config, overrides = config.replace(options={**config.options, "compile": False}), {}
        timer = EpochTimer()
        extra = [EpochCheckpoint(files.checkpoint_dir, seed=seed, epochs=config.epochs, history=before)] if (
            files is not None and files.checkpoint) else []
        start = time.perf_counter()
        hist = training.fit(
            model, train, val, config=config, seed=seed, verbose=verbose,
            callbacks=[timer, keras.callbacks.TerminateOnNaN(), *extra, *callbacks],
            log_dir=files.log_dir if files is not None else None,
            initial_epoch=resumed[1]["epoch"] if resumed is not None else 0, **overrides,
        )
        fit_seconds = time.perf_counter() - start
        timings["fit"] = fit_seconds
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        if before:  # the epochs before the resume, then these: one continuous history
            history = {k: [*before.get(k, []), *history.get(k, [])] for k in {*before, *history}}
        base.update(
            best_epoch=hist.best_epoch, stopped_epoch=hist.stopped_epoch,
            history=history, fit_seconds=fit_seconds, epochs_run=len(timer.seconds),
            seconds_per_epoch=fit_seconds / max(1, len(timer.seconds)), epoch_seconds=timer.seconds,
        )
        losses = history.get("loss", [])
        if not losses or not all(finite(v) for v in losses):
            bad = next((i for i, v in enumerate(losses) if not finite(v)), 0)
            return new_record(status="failed", error=f"non-finite loss at epoch {bad + 1}",
                              peak_memory_bytes=peak_memory_bytes(), **base)
        pruned = next((cb.prune_reason for cb in callbacks if getattr(cb, "prune_reason", None)), None)
        if pruned:  # stopped by a pruner (tuning.searches.pruning): kept, never ranked, not evaluated
            return new_record(status="pruned", error=pruned, peak_memory_bytes=peak_memory_bytes(), **base)
        clock = time.perf_counter()
        # fit validated the weights it ends with after its last epoch, unless early stopping restored others
        known = _last_validation(history) if config.patience is None else None
        metrics = {**(known or _evaluate(model, val, batch_size, "val")), **_evaluate(model, test, batch_size, "test")}
        timings["evaluate"] = time.perf_counter() - clock
        if not all(finite(v) for v in metrics.values()):
            return new_record(status="failed", error="non-finite evaluation metrics",
                              peak_memory_bytes=peak_memory_bytes(), **metrics, **base)
        if measure_speed:
            clock = time.perf_counter()
            lat = zoo.measure_speed(model, batch_size=1, iterations=speed_iterations, warmup=1)
            thr = zoo.measure_speed(model, batch_size=batch_size, iterations=max(2, speed_iterations // 3), warmup=1)
            base.update(latency_ms=lat["latency_ms"], throughput=thr["throughput"])
            timings["speed"] = time.perf_counter() - clock
        if on_trained is not None:
            extra = dict(on_trained(model) or {})
            clash = sorted(set(extra) & (set(base) | set(metrics) | {"id", "status", "error"}))
            if clash:
                raise ValueError(f"`on_trained` may not overwrite record fields. Received: {clash}")
            base.update(extra)
        if files is not None and files.save_model:
            clock = time.perf_counter()
            base.update(save_trained_model(model, files, _card(base, metrics)))
            timings["save"] = time.perf_counter() - clock
        return new_record(status="completed", peak_memory_bytes=peak_memory_bytes(), **metrics, **base)
    except Exception as e:  # noqa: BLE001 - every failure becomes a record; the search goes on
        if is_disk_full(e):
            raise  # not the trial's fault: the run stops (resumable) with one message naming the folder
        reason = "out of memory" if is_out_of_memory(e) else type(e).__name__
        return new_record(status="failed", error=f"{reason}: {_first_line(e)}",
                          peak_memory_bytes=peak_memory_bytes(), **base)
    finally:
        del model
        keras.backend.clear_session()  # free_memory=True: it runs gc.collect() itself (a second one cost ~0.3 s)


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
            "precision", "data", "dataset", "params", "macs")
    return {**{k: base.get(k) for k in keep}, "metrics": dict(metrics), "environment": zoo.runtime.environment()}


def check_build(build, *, what):
    """Build once before any trial, so that a bad builder argument fails the whole run at once
    (a ``ValueError``/``TypeError`` prefixed with ``what``) instead of every trial one by one."""
    try:
        build()
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


def _config(config, *, epochs, batch_size, fit_kwargs, precision):
    """The trial's TrainingConfig: ``config`` with the shorthand arguments applied, or one made from them."""
    if config is None:
        return TrainingConfig.from_fit_kwargs(fit_kwargs, epochs=5 if epochs is None else epochs,
                                              batch_size=batch_size, precision=precision)
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"`config` must be a zoo.training.TrainingConfig. Received: config={config!r}")
    if fit_kwargs:
        raise TypeError("Pass the training settings in `config` or in `fit_kwargs`, not both.")
    return config.replace(epochs=epochs, batch_size=batch_size, precision=precision)


def objective_value(record, objective="val_accuracy"):
    """The record's objective if completed and finite, else ``None`` (never ranked)."""
    value = record.get(objective)
    return value if record.get("status") == "completed" and finite(value) and not math.isnan(value) else None
