"""Runs one trial of a search for the tuner: data, training budget, constraints, its record and a progress line."""

from __future__ import annotations

import datetime
import time
import warnings

from tuning.artifacts import TrialFiles, write_hparams
from tuning.fronts import apply_constraints, default_reference, hypervolume, pareto
from tuning.hypermodels import ZooHyperModel
from tuning.isolation import WorkerDied
from tuning.records import append_record, finite, latest_records, new_record, read_records
from tuning.searches.result import fmt
from tuning.trial import objective_value, run_trial
from zoo.runtime import is_disk_full
from zoo.training import TrainingConfig

__all__ = ["Runner", "merge_executions", "train_one"]


class Runner:
    """Runs one trial for the tuner: data, training budget, constraints, records and progress."""

    def __init__(self, *, data, objective, direction, epochs, seed, executions, constraints, records_path,
                 measure_speed, callbacks, algorithm, search_id, verbose, known, max_trials, shared=False,
                 precision=None, early_stopping=None, files=None, objectives=None, pruning=None, pool=None):
        self.data = data
        self.pool = pool  # a tuning.isolation.WorkerPool: each trial in its own process
        self.objectives = list(objectives or [])  # [(name, direction)] of a multi-objective search
        self.pruning = pruning  # a tuning.searches.pruning.MedianPruner, or None
        self.files = dict(files) if files is not None else None  # TrialFiles arguments but the record id
        self.precision = precision
        self.early_stopping = dict(early_stopping or {})  # patience, min_delta, monitor for every trial
        self.objective = objective
        self.direction = direction
        self.epochs = epochs
        self.seed = seed
        self.executions = executions
        self.constraints = constraints
        self.records_path = records_path
        self.measure_speed = measure_speed
        self.callbacks = list(callbacks)
        self.algorithm = algorithm
        self.search_id = search_id
        self.verbose = verbose
        self.records = list(known)
        self.max_trials = max_trials
        self.shared = shared

    def trial_files(self, trial_id, execution=0):
        """Where a trial's execution keeps its checkpoint, logs and (the first execution only) its model."""
        if self.files is None:
            return None
        kwargs = dict(self.files)
        kwargs["save_model"] = kwargs.get("save_model", False) and execution == 0
        return TrialFiles(record_id=trial_id if execution == 0 else f"{trial_id}-x{execution}", **kwargs)

    def _once(self, trial, hypermodel, seed, execution=0):
        task = dict(
            hypermodel=hypermodel, hp=trial.hyperparameters, trial_id=trial.trial_id, seed=seed,
            default_epochs=self.epochs, precision=self.precision, early_stopping=self.early_stopping,
            callbacks=self.callbacks, constraints=self.constraints,
            measure_speed=self.measure_speed and execution == 0,  # one configuration, one speed
            files=self.trial_files(trial.trial_id, execution), pruning=self._pruning(),
        )
        if self.pool is None:
            return train_one(self.data, **task)
        try:
            return self.pool.run(train_one, **task)
        except WorkerDied as e:  # a native crash or an out-of-memory kill: one failed trial, the search goes on
            return new_record(id=trial.trial_id, model=None, hyperparameters=dict(trial.hyperparameters.values),
                              seed=seed, status="failed", error=str(e), exit_signal=e.signal_name,
                              exit_code=e.exitcode)

    def _pruning(self):
        """``(pruner, earlier records, monitor, direction)`` for this trial's pruning callback, or ``None``."""
        if self.pruning is None:
            return None
        earlier = [{"status": "completed", "history": {self.objective: r.get("history", {}).get(self.objective, [])}}
                   for r in self._current_records() if r.get("status") == "completed"]
        return self.pruning, earlier, self.objective, self.direction

    def run(self, trial, hypermodel, *, tuner_id):
        start = time.perf_counter()
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        try:
            runs = []
            for execution in range(self.executions):
                runs.append(self._once(trial, hypermodel, self.seed + execution, execution))
                if runs[-1]["status"] != "completed":
                    break
            record = merge_executions(runs)
        except Exception as e:  # noqa: BLE001 - a trial that fails outside run_trial still gets its record
            if is_disk_full(e):
                raise
            reason = "invalid configuration" if isinstance(e, (ValueError, TypeError)) else type(e).__name__
            record = new_record(id=trial.trial_id, model=None, hyperparameters=dict(trial.hyperparameters.values),
                                seed=self.seed, status="failed", error=f"{reason}: {e}")
        record.update(
            tuner_id=tuner_id, algorithm=self.algorithm, objective=self.objective, search=self.search_id,
            started=started, trial_seconds=time.perf_counter() - start,
        )
        apply_constraints(record, self.constraints)
        append_record(self.records_path, record)
        for execution in range(self.executions):  # the record is written: the checkpoints go
            files = self.trial_files(trial.trial_id, execution)
            if files is not None:
                files.clear_checkpoint()
        files = self.trial_files(trial.trial_id)
        if files is not None and files.log_dir is not None and record["status"] == "completed":
            write_hparams(files.log_dir, record, [self.objective, "val_loss", "params", "fit_seconds"])
        self.records.append(record)
        if self.verbose:
            self._progress(record)
        return record

    def _current_records(self):
        if self.shared:  # other workers append to the same file
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.records = read_records(self.records_path)
        return self.records

    def _progress(self, record):
        self._current_records()
        done = len(latest_records(self.records))
        total = f"/{self.max_trials}" if self.max_trials else ""
        status = record["status"]
        head = f"[tune] trial {record['id']} {status:<10} {str(record.get('model')):<16}"
        if status == "completed":
            body = (f"{self.objective}={fmt(record.get(self.objective))}  params={fmt(record.get('params'))}  "
                    f"fit={record.get('fit_seconds') or 0:.1f}s")
            if record.get("stopped_epoch"):
                body += f"  stopped@{record['stopped_epoch']}"
            if record.get("resumed_from_epoch"):
                body += f"  resumed@{record['resumed_from_epoch']}"
        else:
            body = str(record.get("error"))
        ranked = [r for r in self.records if objective_value(r, self.objective) is not None]
        best = ""
        if ranked:
            top = (max if self.direction == "max" else min)(ranked, key=lambda r: r[self.objective])
            best = f"  | best {fmt(top[self.objective])} (trial {top['id']})"
        print(f"{head} {body}  [{done}{total}]{best}{self._front()}", flush=True)

    def _front(self):
        """`` | front 4, HV 0.512`` for a multi-objective search: the front so far and its hypervolume
        (reference point: :func:`tuning.fronts.default_reference` of the records so far)."""
        if len(self.objectives) < 2:
            return ""
        front = pareto(self.records, maximize=[n for n, d in self.objectives if d == "max"],
                       minimize=[n for n, d in self.objectives if d == "min"])
        if not front:
            return ""
        reference = default_reference(self.records, self.objectives)
        return f" | front {len(front)}, HV {hypervolume(self.records, reference=reference, fields=self.objectives):.4g}"


def train_one(data, *, hypermodel, hp, trial_id, seed, default_epochs, precision, early_stopping, callbacks,
              measure_speed, constraints, files, pruning):
    """One training of a search trial (:func:`tuning.trial.run_trial`), in this process or a worker's."""
    epochs = int(hp.values.get("tuner/epochs", default_epochs))
    if isinstance(hypermodel, ZooHyperModel):
        trial_config = hypermodel.configure(hp)
        config, model_name = trial_config.training.replace(epochs=epochs), trial_config.model
    else:  # a HyperModel that compiles its own model keeps its optimizer and loss
        config, model_name = TrainingConfig(epochs=epochs, options={"compile": "if_needed"}), None
    callbacks = list(callbacks)
    if pruning is not None:
        pruner, earlier, monitor, direction = pruning
        callbacks.append(pruner.callback(earlier, monitor=monitor, direction=direction))
    return run_trial(
        lambda: hypermodel.build(hp), data, trial_id=trial_id, model_name=model_name,
        hyperparameters=dict(hp.values), config=config.replace(precision=precision, **early_stopping),
        seed=seed, callbacks=callbacks, measure_speed=measure_speed, constraints=constraints, files=files,
    )


_AVERAGED = ("fit_seconds", "seconds_per_epoch", "latency_ms", "throughput")


def merge_executions(runs):
    """One record for a trial trained ``executions`` times: metrics averaged, each run kept."""
    if len(runs) == 1:
        return runs[0]
    last = runs[-1]
    record = dict(runs[0]) if last["status"] == "completed" else dict(last)
    if last["status"] == "completed":
        keys = [k for k in runs[0] if k.startswith(("val_", "test_")) or k in _AVERAGED]
        for key in keys:
            values = [r.get(key) for r in runs]
            if all(finite(v) for v in values):
                record[key] = sum(values) / len(values)
    record["executions"] = [
        {k: r.get(k) for k in r if k in ("seed", "status", "error", *_AVERAGED) or k.startswith(("val_", "test_"))}
        for r in runs
    ]
    return record
