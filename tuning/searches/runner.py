"""Runs one trial of a search for the tuner: data, training budget, constraints, its record and a progress line."""

from __future__ import annotations

import dataclasses
import datetime
import time
import warnings

from tuning.fronts import apply_constraints
from tuning.hypermodels import ZooHyperModel
from tuning.records import append_record, finite, latest_records, new_record, read_records
from tuning.searches.result import fmt
from tuning.trial import objective_value, run_trial

__all__ = ["Runner", "merge_executions"]


class Runner:
    """Runs one trial for the tuner: data, training budget, constraints, records and progress."""

    def __init__(self, *, data, objective, direction, epochs, seed, executions, constraints, records_path,
                 measure_speed, callbacks, algorithm, search_id, verbose, known, max_trials, shared=False,
                 precision=None):
        self.data = data
        self.precision = precision
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

    def _config(self, hypermodel, hp):
        if isinstance(hypermodel, ZooHyperModel):
            return hypermodel.configure(hp)
        return None

    def _data_for(self, config, seed):
        if config is None or config.augmentation is None or self.data.train is None:
            return self.data
        import zoo.data

        train = zoo.data.augment(self.data.train, config.augmentation, seed=seed, flip=config.augmentation_flip)
        return dataclasses.replace(self.data, train=train)

    def _once(self, trial, hypermodel, seed):
        hp = trial.hyperparameters
        config = self._config(hypermodel, hp)
        epochs = int(hp.values.get("tuner/epochs", self.epochs))
        fit_kwargs = dict(config.fit_kwargs) if config else {}
        batch_size = config.batch_size if config else None
        if config:
            # from the data's size: a rebatched or augmented pipeline may not know its length
            steps = -(-max(1, self.data.num_examples.get("train", 1)) // batch_size)
            fit_kwargs["total_steps"] = steps * epochs
            if fit_kwargs.get("schedule") == "warmup":
                fit_kwargs["warmup_steps"] = max(1, round(config.warmup_epochs * steps))

        def build():
            model = hypermodel.build(hp)
            if config is None and getattr(model, "compiled", False):
                # a HyperModel that compiles its own model keeps its optimizer and loss
                fit_kwargs["compile"] = False
            return model

        return run_trial(
            build, self._data_for(config, seed), trial_id=trial.trial_id,
            model_name=config.model if config else None, hyperparameters=dict(hp.values),
            epochs=epochs, batch_size=batch_size, seed=seed, fit_kwargs=fit_kwargs,
            callbacks=self.callbacks, measure_speed=self.measure_speed, precision=self.precision,
        )

    def run(self, trial, hypermodel, *, tuner_id):
        start = time.perf_counter()
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        try:
            runs = []
            for execution in range(self.executions):
                runs.append(self._once(trial, hypermodel, self.seed + execution))
                if runs[-1]["status"] != "completed":
                    break
            record = merge_executions(runs)
        except Exception as e:  # noqa: BLE001 - a trial that fails outside run_trial still gets its record
            reason = "invalid configuration" if isinstance(e, (ValueError, TypeError)) else type(e).__name__
            record = new_record(id=trial.trial_id, model=None, hyperparameters=dict(trial.hyperparameters.values),
                                seed=self.seed, status="failed", error=f"{reason}: {e}")
        record.update(
            tuner_id=tuner_id, algorithm=self.algorithm, objective=self.objective, search=self.search_id,
            started=started, trial_seconds=time.perf_counter() - start,
        )
        apply_constraints(record, self.constraints)
        append_record(self.records_path, record)
        self.records.append(record)
        if self.verbose:
            self._progress(record)
        return record

    def _progress(self, record):
        if self.shared:  # other workers append to the same file
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.records = read_records(self.records_path)
        done = len(latest_records(self.records))
        total = f"/{self.max_trials}" if self.max_trials else ""
        status = record["status"]
        head = f"[tune] trial {record['id']} {status:<10} {str(record.get('model')):<16}"
        if status == "completed":
            body = (f"{self.objective}={fmt(record.get(self.objective))}  params={fmt(record.get('params'))}  "
                    f"fit={record.get('fit_seconds') or 0:.1f}s")
        else:
            body = str(record.get("error"))
        pool = [r for r in self.records if objective_value(r, self.objective) is not None]
        best = ""
        if pool:
            top = (max if self.direction == "max" else min)(pool, key=lambda r: r[self.objective])
            best = f"  | best {fmt(top[self.objective])} (trial {top['id']})"
        print(f"{head} {body}  [{done}{total}]{best}", flush=True)


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
