"""Runs one trial of a search for the tuner: data, training budget, constraints, its record and a progress line."""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
import warnings

import keras_tuner as kt

from tuning.artifacts import TrialFiles, write_hparams
from tuning.constraints import apply_constraints
from tuning.fronts import pareto
from tuning.hypermodels import ZooHyperModel
from tuning.indicators import default_reference, hypervolume
from tuning.isolation import WorkerDied, WorkersCannotStart
from tuning.manifest import RECORDS_FILE
from tuning.objectives import front_fields, front_points
from tuning.records import append_record, finite, latest_records, new_record, read_records
from tuning.searches.result import fmt
from tuning.trial import TrialPlan, objective_value, run_trial, speed_table
from zoo.runtime import is_disk_full

__all__ = ["Runner", "SearchRun", "merge_executions", "train_one"]


@dataclasses.dataclass(frozen=True)
class SearchRun:
    """One search as the runner sees it, made once by :func:`tuning.search` and never changed.

    Attributes:
        plan: the :class:`tuning.trial.TrialPlan` of every trial (a zoo trial swaps in its drawn training
            settings; epochs are Hyperband's per trial).
        data: the :class:`zoo.data.DataBundle`.
        objectives: ``[(name, direction), ...]``, the first one the oracle's.
        algorithm: the checked :class:`tuning.searches.algorithms.SearchAlgorithm`.
        budget: the :class:`tuning.settings.Budget`.
        options: the :class:`tuning.settings.RunOptions` (files kept, verbosity).
        seed: the first execution's seed (execution ``k`` trains with ``seed + k``).
        directory: the search folder (``records.jsonl`` and the trials' files).
        search_id: the manifest's id, stamped on every record.
    """

    plan: TrialPlan
    data: object
    objectives: list
    algorithm: object
    budget: object
    options: object
    seed: int
    directory: str
    search_id: str

    @property
    def records_path(self):
        return os.path.join(self.directory, RECORDS_FILE)


class Runner:
    """Runs one trial for the tuner: its executions, its record, the checkpoints' clean-up and a progress line."""

    def __init__(self, run, *, known, shared=False, pool=None):
        self.run_settings = run
        self.objective, self.direction = run.objectives[0]
        self.records = list(known)
        self.shared = shared  # other workers append to the same file
        self.pool = pool  # a tuning.isolation.WorkerPool: each trial in its own process

    def trial_files(self, trial_id, execution=0):
        """Where a trial's execution keeps its checkpoint, logs and (the first execution only) its model."""
        options = self.run_settings.options
        return TrialFiles(run_dir=self.run_settings.directory,
                          record_id=trial_id if execution == 0 else f"{trial_id}-x{execution}",
                          save_model=options.kept("search") is not None and execution == 0,
                          checkpoint=options.checkpoint, log_root=options.log_dir)

    def _once(self, trial, hypermodel, execution):
        run = self.run_settings
        plan = run.plan
        if execution:  # one speed per trial
            plan = dataclasses.replace(plan, measure_speed=False)
        elif plan.measure_speed:  # and per architecture: a trial of one already timed copies its figures
            plan = dataclasses.replace(plan, speeds=speed_table(self._current_records()))
        kept = run.options.kept("search")
        # Not with several executions (the record is their mean, unknown when the first one's model is saved),
        # nor among distributed workers: a worker restarted in a trial may write a second record of its id
        if kept in ("pareto", "best") and run.budget.executions == 1 and not self.shared:
            pairs = front_fields(run.objectives) if kept == "pareto" else run.objectives[:1]
            others = [r for r in latest_records(self._current_records(), sort=False) if r.get("id") != trial.trial_id]
            plan = dataclasses.replace(plan, front=(tuple(pairs), front_points(others, pairs)))
        task = dict(hypermodel=hypermodel, hp=trial.hyperparameters, trial_id=trial.trial_id,
                    seed=run.seed + execution, plan=plan, files=self.trial_files(trial.trial_id, execution),
                    pruning=self._pruning())
        if self.pool is None:
            return train_one(run.data, **task)
        try:
            return self.pool.run(train_one, **task)
        except WorkerDied as e:  # a native crash or an out-of-memory kill: one failed trial, the search goes on
            return new_record(id=trial.trial_id, model=None, hyperparameters=dict(trial.hyperparameters.values),
                              seed=task["seed"], status="failed", error=str(e), exit_signal=e.signal_name,
                              exit_code=e.exitcode)

    def _pruning(self):
        """``(pruner, earlier records, monitor, direction)`` for this trial's pruning callback, or ``None``."""
        pruner = self.run_settings.algorithm.pruning
        if pruner is None:
            return None
        earlier = [{"status": "completed", "history": {self.objective: r.get("history", {}).get(self.objective, [])}}
                   for r in self._current_records() if r.get("status") == "completed"]
        return pruner, earlier, self.objective, self.direction

    def run(self, trial, hypermodel, *, tuner_id):
        run = self.run_settings
        start = time.perf_counter()
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        try:
            runs = []
            for execution in range(run.budget.executions):
                runs.append(self._once(trial, hypermodel, execution))
                if runs[-1]["status"] != "completed":
                    break
            record = merge_executions(runs)
        except Exception as e:  # noqa: BLE001 - a trial that fails outside run_trial still gets its record
            if is_disk_full(e):
                raise
            if isinstance(e, WorkersCannotStart):  # every later trial would fail the same way: the search stops
                raise kt.errors.FatalError(str(e)) from e
            reason = "invalid configuration" if isinstance(e, (ValueError, TypeError)) else type(e).__name__
            record = new_record(id=trial.trial_id, model=None, hyperparameters=dict(trial.hyperparameters.values),
                                seed=run.seed, status="failed", error=f"{reason}: {e}")
        record.update(
            tuner_id=tuner_id, algorithm=run.algorithm.name, objective=self.objective, search=run.search_id,
            started=started, trial_seconds=time.perf_counter() - start,
        )
        apply_constraints(record, run.plan.constraints)
        append_record(run.records_path, record)
        for execution in range(run.budget.executions):  # the record is written: the checkpoints go
            self.trial_files(trial.trial_id, execution).clear_checkpoint()
        log_dir = self.trial_files(trial.trial_id).log_dir
        if log_dir is not None and record["status"] == "completed":
            write_hparams(log_dir, record, [self.objective, "val_loss", "params", "fit_seconds"])
        self.records.append(record)
        if run.options.verbose:
            self._progress(record)
        return record

    def _current_records(self):
        if self.shared:  # other workers append to the same file
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.records = read_records(self.run_settings.records_path)
        return self.records

    def _progress(self, record):
        self._current_records()
        done = len(latest_records(self.records))
        max_trials = self.run_settings.budget.max_trials
        total = f"/{max_trials}" if max_trials else ""
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
        (reference point: :func:`tuning.indicators.default_reference` of the records so far)."""
        objectives = self.run_settings.objectives
        if len(objectives) < 2:
            return ""
        front = pareto(self.records, maximize=[n for n, d in objectives if d == "max"],
                       minimize=[n for n, d in objectives if d == "min"])
        if not front:
            return ""
        reference = default_reference(self.records, objectives)
        return f" | front {len(front)}, HV {hypervolume(self.records, reference=reference, fields=objectives):.4g}"


def train_one(data, *, hypermodel, hp, trial_id, seed, plan, files, pruning):
    """One training of a search trial (:func:`tuning.trial.run_trial`), in this process or a worker's."""
    base = plan.training.replace(epochs=int(hp.values.get("tuner/epochs", plan.training.epochs)))
    if isinstance(hypermodel, ZooHyperModel):
        trial_config = hypermodel.configure(hp, base=base)
        config, model_name = trial_config.training, trial_config.model
    else:  # a HyperModel that compiles its own model keeps its optimizer and loss
        config, model_name = base.replace(options={"compile": "if_needed", **base.options}), None
    callbacks = plan.callbacks
    if pruning is not None:
        pruner, earlier, monitor, direction = pruning
        callbacks += (pruner.callback(earlier, monitor=monitor, direction=direction),)
    plan = dataclasses.replace(plan, training=config, callbacks=callbacks)
    return run_trial(lambda: hypermodel.build(hp), data, plan, trial_id=trial_id, seed=seed, files=files,
                     model_name=model_name, hyperparameters=dict(hp.values))


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
