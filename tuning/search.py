"""KerasTuner searches that record size, accuracy and time of every trial, and lose nothing.

``tuning.search(...)`` wraps KerasTuner's RandomSearch, Hyperband,
BayesianOptimization and GridSearch oracles. Each trial goes through
:func:`tuning.trial.run_trial` (build, profile, train with :mod:`zoo.training`,
evaluate, time) and its record is appended to ``<directory>/records.jsonl`` the
moment the trial ends.

Design decisions (keras-tuner 1.4.8 read in ``engine/base_tuner.py``,
``engine/oracle.py``, ``tuners/*.py``):

* Failures. A failed trial (non-finite loss, out of memory, invalid
  configuration) or an infeasible one (a constraint broken) is written as a
  record, then reported to the oracle by raising ``FailedTrialError``: the
  trial's status becomes ``FAILED``, so it never gets a score, never enters
  ``get_best_trials`` nor the Gaussian process of BayesianOptimization (which
  skips FAILED/INVALID trials), and Hyperband never promotes it. Reporting a
  "worst" score instead would put fake numbers into the ranking and the
  surrogate. KerasTuner would then abort the search after
  ``max_consecutive_failed_trials`` (3) FAILED trials in a row - and abort again
  at once on resume, since ``_check_consecutive_failures`` rescans the whole
  history - so the oracles are created with that limit set to ``sys.maxsize``:
  failures never stop a search; budgets do.
* Resume. ``records.jsonl`` is the source of truth, KerasTuner's ``oracle.json``
  and ``trial_*/trial.json`` are only a cache that may be stale (killed between
  our append and the oracle's save) or truncated (killed mid-write; KerasTuner
  does not write atomically). So a search never reloads them: it starts a fresh
  oracle with the same seed and *replays* the recorded trials through it
  (``create_trial`` then ``end_trial`` with the recorded outcome). The
  deterministic oracles then propose exactly what they proposed before, so
  Hyperband brackets and the grid order are rebuilt too; where a proposal
  differs (e.g. trials that overlapped in a distributed run) the recorded
  values win. A trial that was running when the process died has no record
  and runs again, under the same id. A manifest (``search.json``: space, data
  fingerprint, objective, algorithm, epochs, seed, constraints) detects a
  changed search, refused unless ``overwrite=True``.
* Distributed. With KerasTuner's environment variables (``KERASTUNER_TUNER_ID``,
  ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``) the chief serves the
  oracle and the workers run trials; all of them append to the one shared
  ``records.jsonl`` (``append_record`` takes an exclusive ``flock`` and writes
  each line in one ``O_APPEND`` write).
* Budgets: ``max_trials`` (total, recorded trials included), ``max_seconds``
  (wall clock of this call: no trial starts after it), ``epochs`` per trial
  (Hyperband: its largest budget; every trial trains from scratch for
  ``tuner/epochs``, so every record describes one fully trained model).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import hashlib
import importlib
import json
import os
import shutil
import sys
import time
import traceback
import warnings

import keras_tuner as kt
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import trial as trial_module

from tuning.pareto import CONSTRAINT_FIELDS, apply_constraints, best_under, knee_point, pareto
from tuning.hypermodels import ZooHyperModel, make_hypermodel
from tuning.records import append_record, environment, finite, new_record, read_records
from tuning.trial import objective_value, run_trial
from zoo.training import PRECISIONS, resolve_precision

__all__ = ["ALGORITHMS", "SearchResult", "search", "load_search", "add_cli_parser", "RECORDS_FILE", "MANIFEST_FILE"]

ALGORITHMS = ("random", "hyperband", "bayesian", "grid")
RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "search.json"
MANIFEST_VERSION = 1
# Record fields that are costs (minimised) or rates (maximised), for objectives KerasTuner cannot infer.
_DIRECTIONS = {
    "params": "min", "trainable_params": "min", "macs": "min", "flops": "min", "weight_bytes": "min",
    "fit_seconds": "min", "seconds_per_epoch": "min", "latency_ms": "min", "peak_memory_bytes": "min",
    "throughput": "max",
}
_STOPPED = trial_module.TrialStatus.STOPPED
_IDLE = trial_module.TrialStatus.IDLE
_RUNNING = trial_module.TrialStatus.RUNNING
_COMPLETED = trial_module.TrialStatus.COMPLETED
_FAILED = trial_module.TrialStatus.FAILED
_REPLAY_TUNER = "replay"


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class SearchResult:
    """The records of a search and the selections made from them.

    Attributes:
        directory: the search directory (``records.jsonl``, ``search.json``, KerasTuner state).
        records: one record per trial (latest per id), ordered by trial id.
        objective, direction: what the oracle optimised (``"max"`` or ``"min"``).
        manifest: the search manifest.
        notes: what happened on start-up (resumed trials, recovered files).
        report: what ``tuning.report.write_report`` returned, if it ran.
    """

    directory: str
    records: list
    objective: str = "val_accuracy"
    direction: str = "max"
    manifest: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    report: object = None
    seconds: float | None = None
    tuner: object = dataclasses.field(default=None, repr=False)

    def _status(self, status):
        return [r for r in self.records if r.get("status") == status]

    @property
    def completed(self) -> list:
        return self._status("completed")

    @property
    def failed(self) -> list:
        return self._status("failed")

    @property
    def infeasible(self) -> list:
        return self._status("infeasible")

    @property
    def best(self):
        """The completed record with the best finite objective (``None`` if there is none)."""
        pool = [r for r in self.records if objective_value(r, self.objective) is not None]
        if not pool:
            return None
        pick = max if self.direction == "max" else min
        return pick(pool, key=lambda r: r[self.objective])

    def _objectives(self, maximize, minimize):
        if maximize is None:
            maximize = (self.objective,) if self.direction == "max" else ()
        if self.direction == "min" and self.objective not in (minimize or ()):
            minimize = (self.objective, *(minimize or ()))
        return maximize, minimize

    def pareto(self, *, maximize=None, minimize=("params", "fit_seconds")) -> list:
        """Non-dominated completed records (see :func:`tuning.pareto`); the objective is included."""
        maximize, minimize = self._objectives(maximize, minimize)
        return pareto(self.records, maximize=maximize, minimize=minimize)

    def knee(self, *, maximize=None, minimize=("params", "fit_seconds")):
        """The knee of the Pareto front (see :func:`tuning.knee_point`)."""
        maximize, minimize = self._objectives(maximize, minimize)
        return knee_point(self.records, maximize=maximize, minimize=minimize)

    def best_under(self, **constraints):
        """The best completed record under upper bounds, e.g. ``best_under(max_params=1e5)``."""
        return best_under(self.records, objective=self.objective, mode=self.direction, **constraints)

    def summary(self, *, minimize=("params", "fit_seconds")) -> str:
        """A few lines: counts, the best trial and the Pareto front."""
        lines = [
            f"{len(self.records)} trials in {self.directory}: {len(self.completed)} completed, "
            f"{len(self.failed)} failed, {len(self.infeasible)} infeasible"
        ]
        best = self.best
        lines.append("best: " + (_describe(best, self.objective) if best else f"none (no finite {self.objective})"))
        front = self.pareto(minimize=minimize)
        if front:
            fields = [self.objective, *[m for m in minimize if m != self.objective]]
            lines.append(f"Pareto front ({', '.join(fields)}):")
            for r in sorted(front, key=lambda r: r.get(fields[1], 0) if len(fields) > 1 else 0):
                lines.append("  " + _describe(r, self.objective, extra=fields[1:]))
        for r in self.failed[:5]:
            lines.append(f"failed trial {r['id']} ({r.get('model')}): {r.get('error')}")
        if len(self.failed) > 5:
            lines.append(f"... and {len(self.failed) - 5} more failed trials")
        return "\n".join(lines)

    def __repr__(self):
        best = self.best
        shown = f"{self.objective}={best[self.objective]:.4g} (trial {best['id']})" if best else "none"
        return (f"SearchResult(directory={self.directory!r}, trials={len(self.records)}, "
                f"completed={len(self.completed)}, failed={len(self.failed)}, "
                f"infeasible={len(self.infeasible)}, best={shown})")


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def _describe(record, objective, extra=("params", "fit_seconds")) -> str:
    parts = [f"trial {record['id']}", str(record.get("model")), f"{objective}={_fmt(record.get(objective))}"]
    parts += [f"{f}={_fmt(record.get(f))}" for f in extra if f != objective and record.get(f) is not None]
    return "  ".join(parts)


def _trial_key(record):
    rid = str(record.get("id"))
    return (0, int(rid), rid) if rid.isdigit() else (1, 0, rid)


def latest_records(records) -> list:
    """One record per id (the last one written wins), ordered by trial id."""
    by_id = {}
    for r in records:
        by_id[str(r.get("id"))] = r
    return sorted(by_id.values(), key=_trial_key)


def load_search(directory, *, objective=None, direction=None) -> SearchResult:
    """Read a search directory back (no training): its records and manifest.

    Example:
        >>> result = load_search("runs/s1"); result.pareto()
    """
    directory = os.fspath(directory)
    manifest = _read_manifest(os.path.join(directory, MANIFEST_FILE)) or {}
    obj = manifest.get("objective", {})
    return SearchResult(
        directory=directory,
        records=latest_records(read_records(os.path.join(directory, RECORDS_FILE))),
        objective=objective or obj.get("name", "val_accuracy"),
        direction=direction or obj.get("direction", "max"),
        manifest=manifest,
    )


# --------------------------------------------------------------------------- files


def _write_json_atomic(path, payload):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_manifest(path):
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


def _repair_tail(path, notes):
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


def _check_keras_tuner_state(project_dir, notes):
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


# --------------------------------------------------------------------------- oracles


class _BudgetMixin:
    """Oracle additions: a wall-clock deadline after which no trial starts."""

    deadline = None  # time.monotonic() value, or None

    @kt.synchronized
    def create_trial(self, tuner_id):
        if (self.deadline is not None and time.monotonic() >= self.deadline
                and tuner_id not in self.ongoing_trials):
            self.tuner_ids.discard(tuner_id)
            return trial_module.Trial(self.get_space(), status=_STOPPED)
        return super().create_trial(tuner_id)


class RandomOracle(_BudgetMixin, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(_BudgetMixin, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(_BudgetMixin, kt.oracles.HyperbandOracle):
    pass


class GridOracle(_BudgetMixin, kt.oracles.GridSearchOracle):
    pass


def _make_oracle(algorithm, *, objective, max_trials, epochs, seed, hyperparameters, hyperband_factor,
                 num_initial_points):
    common = dict(
        objective=objective,
        # keras-tuner treats seed=0 as "no seed"
        seed=seed + 1,
        hyperparameters=hyperparameters,
        max_retries_per_trial=0,
        # Failed trials must never abort a search (see the module docstring).
        max_consecutive_failed_trials=sys.maxsize,
    )
    if algorithm == "random":
        return RandomOracle(max_trials=max_trials, **common)
    if algorithm == "bayesian":
        return BayesianOracle(max_trials=max_trials, num_initial_points=num_initial_points, **common)
    if algorithm == "grid":
        return GridOracle(max_trials=max_trials, **common)
    oracle = HyperbandOracle(max_epochs=epochs, factor=hyperband_factor, **common)
    oracle.max_trials = max_trials  # Hyperband has no such argument; the base oracle honours the attribute
    return oracle


def _replay(oracle, records, objective_name, notes):
    """Rebuild the oracle's state from records (see the module docstring)."""
    by_index = {}
    for r in records:
        rid = str(r.get("id"))
        if rid.isdigit():
            by_index[int(rid)] = r
    if not by_index:
        return 0
    real_populate = oracle.populate_space
    bayesian = isinstance(oracle, kt.oracles.BayesianOptimizationOracle)
    current, differed = {}, []

    def populate(trial_id):
        record = current.get("record")
        if record is not None and bayesian and _bayesian_fitted(oracle):
            # the recorded values win anyway: skip fitting a Gaussian process per replayed trial
            response = {"status": _RUNNING, "values": None}
        else:
            response = real_populate(trial_id)
        if record is not None:
            values = dict(record.get("hyperparameters") or {})
            if response.get("status") != _RUNNING or response.get("values") != values:
                if response.get("values") is not None:
                    differed.append(trial_id)
                response = {"status": _RUNNING, "values": values}
        return response

    saved = {name: getattr(oracle, name) for name in ("save", "_save_trial")}
    verbose = oracle.verbose
    oracle.populate_space = populate
    oracle.save = oracle._save_trial = lambda *a, **k: None  # one save at the end, not two per trial
    oracle.verbose = 0
    rerun, replayed = [], 0
    try:
        for index in range(max(by_index) + 1):
            record = current["record"] = by_index.get(index)
            trial = oracle.create_trial(_REPLAY_TUNER)
            if trial.status != _RUNNING:
                break  # max_trials lowered since, or the space is exhausted
            oracle.ongoing_trials.pop(_REPLAY_TUNER, None)
            if record is None:
                rerun.append(trial.trial_id)  # was running when the search stopped
                continue
            value = objective_value(record, objective_name)
            if value is not None:
                oracle.update_trial(trial.trial_id, {objective_name: value})
                trial.status = _COMPLETED
            else:
                trial.status = _FAILED
                trial.message = record.get("error")
            oracle.ongoing_trials[_REPLAY_TUNER] = trial
            oracle.end_trial(trial)
            replayed += 1
    finally:
        current.clear()
        del oracle.populate_space
        for name in saved:
            delattr(oracle, name)
        oracle.verbose = verbose
        oracle.tuner_ids.discard(_REPLAY_TUNER)
        oracle.ongoing_trials.pop(_REPLAY_TUNER, None)
    # KerasTuner's own reload puts unfinished trials in the retry queue: same here, after the replay.
    oracle._retry_queue.extend(reversed(rerun))
    for trial in oracle.trials.values():
        oracle._save_trial(trial)
    oracle.save()
    if rerun:
        notes.append(f"trial(s) {rerun} were running when the search stopped: they run again")
    if differed:
        notes.append(f"the oracle proposed other values than recorded for trial(s) {differed}: recorded values used")
    return replayed


def _bayesian_fitted(oracle):
    completed = sum(t.status == _COMPLETED for t in oracle.trials.values())
    dims = len(oracle.hyperparameters.space)
    return completed >= (oracle.num_initial_points or max(3 * dims, 3))


# --------------------------------------------------------------------------- tuner


class _FunctionHyperModel(kt.HyperModel):
    """A ``build(hp)`` function used as a HyperModel (KerasTuner accepts those too), named after it."""

    def __init__(self, build):
        super().__init__(name=getattr(build, "__qualname__", None))
        self._function = build

    def build(self, hp):
        return self._function(hp)


class _SearchTuner(kt.Tuner):
    """A KerasTuner ``Tuner`` whose trials run through :func:`tuning.trial.run_trial` and are recorded."""

    def __init__(self, oracle, hypermodel, *, runner, **kwargs):
        self.runner = runner
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)

    # records.jsonl, not KerasTuner's files, is the state: see the module docstring.
    def reload(self):
        pass

    def _activate_all_conditions(self):
        _explore_space(self.hypermodel, self.oracle)

    def search(self, *args, **kwargs):
        """KerasTuner's search loop, plus a pause when the oracle is busy and a faster chief."""
        if dist_utils.is_chief_oracle():
            self.save()
            _serve_chief(self.oracle)
            return
        self.on_search_begin()
        # Each trial ends with keras.backend.clear_session(), whose gc.collect() walks every object of
        # the process (~0.3 s with TensorFlow loaded). Freezing what exists now (modules, data) keeps
        # those collections to the trial's own objects; reference counting still frees the rest.
        gc.collect()
        gc.freeze()
        try:
            while True:
                self.pre_create_trial()
                trial = self.oracle.create_trial(self.tuner_id)
                if trial.status == _STOPPED:
                    break
                if trial.status == _IDLE:  # e.g. Hyperband waiting for other workers' trials
                    time.sleep(0.2)
                    continue
                self.on_trial_begin(trial)
                self._try_run_and_update_trial(trial, *args, **kwargs)
                self.on_trial_end(trial)
        finally:
            gc.unfreeze()
        self.on_search_end()

    def _try_run_and_update_trial(self, trial, *args, **kwargs):
        # KerasTuner prints a traceback for every failed trial (its config.DEBUG is True): a recorded
        # failure is expected and its record says why, so only unexpected errors are printed.
        try:
            self._run_and_update_trial(trial, *args, **kwargs)
            trial.status = _COMPLETED
        except kt.errors.FailedTrialError as e:
            trial.status = _FAILED
            trial.message = str(e)
        except Exception as e:  # noqa: BLE001 - same handling as KerasTuner's
            if isinstance(e, kt.errors.FatalError):
                raise
            traceback.print_exc()
            trial.status = trial_module.TrialStatus.INVALID
            trial.message = traceback.format_exc()

    def run_trial(self, trial, *args, **kwargs):
        record = self.runner.run(trial, self.hypermodel, tuner_id=self.tuner_id)
        value = objective_value(record, self.runner.objective)
        if value is None:
            raise kt.errors.FailedTrialError(record.get("error") or f"no finite {self.runner.objective}")
        return {self.runner.objective: value}


def _serve_chief(oracle, poll=0.2, linger=1.0):
    """Serve the oracle to the workers until they have all been told to stop.

    KerasTuner's ``oracle_chief.start_server`` checks every 20 s once a worker
    has stopped; this is the same server with a shorter poll.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if not server.add_insecure_port(address):
        raise RuntimeError(f"The chief cannot listen on {address} (KERASTUNER_ORACLE_IP/PORT): is the port free?")
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll)
        time.sleep(linger)  # answer "stopped" to a worker that asks late
    finally:
        server.stop(grace=1.0)


class _Runner:
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
            record = _merge_executions(runs)
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
            body = (f"{self.objective}={_fmt(record.get(self.objective))}  params={_fmt(record.get('params'))}  "
                    f"fit={record.get('fit_seconds') or 0:.1f}s")
        else:
            body = str(record.get("error"))
        pool = [r for r in self.records if objective_value(r, self.objective) is not None]
        best = ""
        if pool:
            top = (max if self.direction == "max" else min)(pool, key=lambda r: r[self.objective])
            best = f"  | best {_fmt(top[self.objective])} (trial {top['id']})"
        print(f"{head} {body}  [{done}{total}]{best}", flush=True)


_AVERAGED = ("fit_seconds", "seconds_per_epoch", "latency_ms", "throughput")


def _merge_executions(runs):
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


# --------------------------------------------------------------------------- search


def _objective(objective, direction):
    if isinstance(objective, kt.Objective):
        return objective.name, objective.direction
    if not isinstance(objective, str) or not objective:
        raise TypeError(f"`objective` must be a record field name. Received: objective={objective!r}")
    if direction is None:
        direction = _DIRECTIONS.get(objective)
    if direction is None:
        from keras_tuner.src.engine.metrics_tracking import infer_metric_direction

        try:  # KerasTuner knows "val_*" names only; a test metric goes the way of its validation twin
            direction = infer_metric_direction("val_" + objective[5:] if objective.startswith("test_") else objective)
        except Exception:  # noqa: BLE001 - unknown metric names raise various errors
            direction = None
    if direction not in ("max", "min"):
        raise ValueError(
            f"Cannot tell whether to maximise or minimise {objective!r}; pass direction='max' or 'min'. "
            f"Received: objective={objective!r}, direction={direction!r}"
        )
    return objective, direction


def _role():
    if not dist_utils.has_chief_oracle():
        return "single"
    return "chief" if dist_utils.is_chief_oracle() else "worker"


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


def _explore_space(hypermodel, oracle):
    """Declare every conditional branch of ``hypermodel``'s space in ``oracle`` (KerasTuner's loop).

    Same exploration as ``BaseTuner._activate_all_conditions``, except that zoo
    HyperModels declare their space without building a model per branch (an
    architecture choice would otherwise build every family once).
    """
    declare = hypermodel.configure if isinstance(hypermodel, ZooHyperModel) else hypermodel.build
    seen, never = [], []
    hp = oracle.get_space()
    while True:
        declare(hp)
        oracle.update_space(hp)
        for conditions in hp.active_scopes:
            if conditions not in seen:
                seen.append(list(conditions))
            if conditions in never:
                never.remove(conditions)
        for conditions in hp.inactive_scopes:
            if conditions not in seen and conditions not in never:
                never.append(list(conditions))
        if not never:
            return
        hp = oracle.get_space()
        for condition in never[0]:
            hp.values[condition.name] = condition.values[0]
        hp.ensure_active_values()


def _declared_space(hypermodel, hyperparameters):
    """The search space as the oracle will hold it (declared without training anything)."""
    oracle = kt.oracles.RandomSearchOracle(hyperparameters=hyperparameters.copy() if hyperparameters else None)
    hp = oracle.get_space()
    hypermodel.declare_hyperparameters(hp)
    oracle.update_space(hp)
    _explore_space(hypermodel, oracle)
    return oracle.get_space()


def _prepare_directory(directory, manifest, *, overwrite, role, records_path, notes):
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
        existing = _read_manifest(path)
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
    # a float32 search has no "precision" entry (searches recorded before the option had none either)
    identity = {k: manifest.get(k, _DEFAULTS.get(k)) for k in _IDENTITY}
    diffs = _differences({k: existing.get(k, _DEFAULTS.get(k)) for k in _IDENTITY}, identity)
    if diffs and not (role == "worker" and overwrite):
        raise ValueError(
            f"{path} describes a different search: {'; '.join(diffs)}. Resume with the same settings, "
            "use another `directory`, or pass overwrite=True to start over (the old records are kept as a .bak file)."
        )


_IDENTITY = ("hypermodel", "space", "data", "objective", "algorithm", "epochs", "seed", "executions", "constraints",
             "precision")
_DEFAULTS = {"precision": "float32"}


def _write_report(result, data, project_name, notes):
    try:
        report = importlib.import_module("tuning.report")
        write = getattr(report, "write_report")
    except (ImportError, AttributeError):
        return None
    try:
        return write(result.records, os.path.join(result.directory, "report"), title=f"Search: {project_name}",
                     provenance=data.provenance() if hasattr(data, "provenance") else None)
    except Exception as e:  # noqa: BLE001 - a report problem must not fail a finished search
        notes.append(f"report not written: {type(e).__name__}: {e}")
        warnings.warn(f"tuning.report.write_report failed: {e}", stacklevel=2)
        return None


def search(
    models,
    *,
    data,
    objective="val_accuracy",
    direction=None,
    algorithm="random",
    max_trials=10,
    epochs=3,
    max_seconds=None,
    directory="runs/search",
    project_name="keras_tuner",
    constraints=None,
    overwrite=False,
    seed=0,
    executions=1,
    training=None,
    fixed=None,
    tiny=False,
    tune=None,
    hyperparameters=None,
    measure_speed=True,
    hyperband_factor=3,
    num_initial_points=None,
    callbacks=(),
    report=True,
    verbose=1,
    precision="float32",
) -> SearchResult:
    """Search architectures and training settings; record size, accuracy and time of every trial.

    Args:
        models: a pattern (``"resnet*"``), a family (``"resnet"``), a list of
            names/patterns, or a ``keras_tuner.HyperModel``.
        data: a :class:`zoo.data.DataBundle` (or an embedded data set name).
        objective: a record field: ``val_accuracy``, ``val_loss``, ``test_*``,
            ``params``, ``latency_ms``... ``direction`` is inferred when possible.
        algorithm: ``"random"``, ``"hyperband"``, ``"bayesian"`` or ``"grid"``.
        max_trials: trials in the whole search, recorded ones included
            (``None``: until the grid/Hyperband schedule or ``max_seconds`` ends it).
        epochs: training epochs per trial (Hyperband: the largest budget).
        max_seconds: wall-clock budget of this call; no trial starts after it.
        directory: where ``records.jsonl``, ``search.json`` and KerasTuner's
            state (``<directory>/<project_name>``) live. An existing search there is resumed.
        constraints: upper bounds such as ``{"max_params": 1e5, "max_latency_ms": 5}``;
            a trial over a bound is recorded ``infeasible`` and the search goes on.
        overwrite: start over (previous records are kept as a ``.bak`` file).
        seed: seeds the oracle and every trial's initialisation.
        executions: trainings per trial (seeds ``seed``, ``seed + 1``...), metrics averaged.
        training: a :class:`tuning.hypermodels.TrainingSpace` (or dict) for the training hyperparameters.
        fixed, tiny, tune: builder arguments fixed for every trial, the cards'
            tiny test sizes, and the model hyperparameters to tune (zoo HyperModels).
        hyperparameters: a ``keras_tuner.HyperParameters`` overriding parts of the space.
        measure_speed: time latency/throughput after training (needed by latency constraints).
        report: call ``tuning.report.write_report`` at the end when that module is available.
        verbose: 1 prints one line per trial; 0 is silent.
        precision: ``float32``, ``mixed_float16``, ``mixed_bfloat16`` or ``auto``
            (by device, see :func:`zoo.training.resolve_precision`): the dtype
            policy every trial's model is built under; part of the search's identity.

    Returns:
        a :class:`SearchResult`.

    Raises:
        ValueError: bad arguments, or a different search already in ``directory``.

    Example:
        >>> result = search("mlp", data=zoo.data.load("moons"), max_trials=3, epochs=2, directory="runs/mlp")
        >>> result.best["val_accuracy"], len(result.pareto())
    """
    began = time.perf_counter()
    precision = resolve_precision(precision)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"`algorithm` must be one of {list(ALGORITHMS)}. Received: algorithm={algorithm!r}")
    for name, value, minimum in (("epochs", epochs, 1), ("executions", executions, 1), ("seed", seed, 0),
                                 ("hyperband_factor", hyperband_factor, 2)):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    if max_trials is not None and (not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1):
        raise ValueError(f"`max_trials` must be an int >= 1 or None. Received: max_trials={max_trials!r}")
    if max_seconds is not None and (not finite(max_seconds) or max_seconds < 0):
        raise ValueError(f"`max_seconds` must be a number >= 0 or None. Received: max_seconds={max_seconds!r}")
    if max_trials is None and max_seconds is None and algorithm in ("random", "bayesian"):
        raise ValueError(f"algorithm={algorithm!r} needs `max_trials` or `max_seconds` to end. Received: neither")
    if not isinstance(project_name, str) or not project_name or os.sep in project_name:
        raise ValueError(f"`project_name` must be a non-empty folder name. Received: project_name={project_name!r}")
    constraints = dict(constraints or {})
    if not all(finite(v) for v in constraints.values()):
        raise ValueError(f"Constraint bounds must be finite numbers. Received: constraints={constraints!r}")
    constraints = {k: float(v) for k, v in constraints.items()}
    unknown = set(constraints) - set(CONSTRAINT_FIELDS)
    if unknown:
        raise ValueError(f"Unknown constraint(s) {sorted(unknown)}; valid: {sorted(CONSTRAINT_FIELDS)}. "
                         f"Received: constraints={constraints!r}")
    if not measure_speed and "max_latency_ms" in constraints:
        raise ValueError("max_latency_ms needs measure_speed=True. Received: measure_speed=False")
    if isinstance(data, str):
        import zoo.data

        data = zoo.data.load(data)
    for attr in ("fingerprint", "input_shape", "splits", "arrays"):
        if not hasattr(data, attr):
            raise TypeError(f"`data` must be a zoo.data.DataBundle or a data set name. Received: {type(data).__name__}")
    objective_name, direction = _objective(objective, direction)
    split = objective_name.split("_", 1)[0]
    if split in ("val", "test") and {"val": "validation", "test": "test"}[split] not in data.splits:
        raise ValueError(f"objective={objective_name!r} needs a {split} split; {data.name!r} has {list(data.splits)}")

    if callable(models) and not isinstance(models, kt.HyperModel):
        models = _FunctionHyperModel(models)
    if isinstance(models, kt.HyperModel):
        if fixed or tiny or training or tune:
            raise ValueError("`fixed`, `tiny`, `training` and `tune` apply to zoo models, not to a given HyperModel.")
        hypermodel = models
    else:
        hypermodel = make_hypermodel(models, data=data, fixed=fixed, tiny=tiny, training=training, tune=tune)

    role = _role()
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    records_path = os.path.join(directory, RECORDS_FILE)
    project_dir = os.path.join(directory, project_name)
    notes = []

    space = _declared_space(hypermodel, hyperparameters)
    described = hypermodel.get_config() if isinstance(hypermodel, ZooHyperModel) else {
        "class": f"{type(hypermodel).__module__}.{type(hypermodel).__qualname__}", "name": hypermodel.name}
    identity = {
        "hypermodel": described,
        "space": space.get_config(),
        "data": {"name": data.name, "fingerprint": data.fingerprint, "batch_size": data.batch_size},
        "objective": {"name": objective_name, "direction": direction},
        "algorithm": {"name": algorithm, "hyperband_factor": hyperband_factor if algorithm == "hyperband" else None,
                      "num_initial_points": num_initial_points if algorithm == "bayesian" else None},
        "epochs": epochs,
        "seed": seed,
        "executions": executions,
        "constraints": constraints,
    }
    if precision != "float32":  # absent for float32, so that searches recorded before the option still resume
        identity["precision"] = precision
    identity = _normalise(identity)
    search_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    manifest = {
        "version": MANIFEST_VERSION, "search": search_id, "project_name": project_name, **identity,
        "provenance": data.provenance() if hasattr(data, "provenance") else None,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {k: v for k, v in environment().items() if k != "host"},
    }
    _prepare_directory(directory, manifest, overwrite=overwrite, role=role, records_path=records_path, notes=notes)

    known = []
    if role != "worker":
        _check_keras_tuner_state(project_dir, notes)
        if os.path.isdir(project_dir):
            shutil.rmtree(project_dir)  # a cache of records.jsonl, rebuilt below
        _repair_tail(records_path, notes)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            known = latest_records(read_records(records_path))
        notes += [str(w.message) for w in caught]
    else:
        known = latest_records(read_records(records_path))

    oracle = _make_oracle(algorithm, objective=kt.Objective(objective_name, direction), max_trials=max_trials,
                          epochs=epochs, seed=seed, hyperparameters=hyperparameters,
                          hyperband_factor=hyperband_factor, num_initial_points=num_initial_points)
    oracle.verbose = 0  # one line per trial is printed by the runner instead
    runner = _Runner(
        data=data, objective=objective_name, direction=direction, epochs=epochs, seed=seed, executions=executions,
        constraints=constraints, records_path=records_path, measure_speed=measure_speed, callbacks=callbacks,
        algorithm=algorithm, search_id=search_id, verbose=verbose, known=known, max_trials=max_trials,
        shared=role == "worker", precision=precision,
    )
    tuner = _SearchTuner(oracle, hypermodel, runner=runner, directory=directory, project_name=project_name)
    if role != "worker":
        if known:
            replayed = _replay(tuner.oracle, known, objective_name, notes)
            notes.insert(0, f"resumed: {replayed} recorded trial(s) replayed from {records_path}")
        if not os.path.exists(os.path.join(directory, MANIFEST_FILE)):
            _write_json_atomic(os.path.join(directory, MANIFEST_FILE), manifest)
        if max_seconds is not None:
            tuner.oracle.deadline = time.monotonic() - (time.perf_counter() - began) + max_seconds
    if verbose:
        names = (getattr(hypermodel, "models", None) or getattr(hypermodel, "variants", None)
                 or [hypermodel.name or type(hypermodel).__name__])
        print(f"[tune] {directory}: {algorithm} search over {', '.join(map(str, names))} | {len(space.space)} "
              f"hyperparameters | {objective_name} ({direction}) | max_trials={max_trials} epochs={epochs}"
              + (f" max_seconds={max_seconds:g}" if max_seconds is not None else "") + f" | {role}", flush=True)
        for note in notes:
            print(f"[tune] {note}", flush=True)
    tuner.search()

    result = load_search(directory, objective=objective_name, direction=direction)
    result.manifest = _read_manifest(os.path.join(directory, MANIFEST_FILE)) or manifest
    result.notes = notes
    result.seconds = time.perf_counter() - began
    result.tuner = tuner
    if report and role != "worker" and result.records:
        result.report = _write_report(result, data, project_name, notes)
    if verbose and role != "worker":
        print("[tune] " + result.summary().replace("\n", "\n[tune] "), flush=True)
    return result


# --------------------------------------------------------------------------- command line


def _parse_constraints(pairs):
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--constraint must look like max_params=1e5. Received: {pair!r}")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--constraint {key} needs a number. Received: {pair!r}") from None
    return out


def _cli_tune(args) -> int:
    """``zoo tune``: run or resume a search and print the best trial and the Pareto front."""
    try:
        import zoo.data

        constraints = _parse_constraints(args.constraint)
        options = {"batch_size": args.batch_size, "seed": args.seed}
        if args.image_size is not None:
            options["image_size"] = args.image_size
        if args.channels is not None:
            options["channels"] = args.channels
        data = zoo.data.load(args.data, **options)
        result = search(
            args.models if len(args.models) > 1 else args.models[0], data=data, objective=args.objective,
            direction=args.direction, algorithm=args.algorithm, max_trials=args.max_trials, epochs=args.epochs,
            max_seconds=args.max_seconds, directory=args.directory, project_name=args.project_name,
            constraints=constraints, overwrite=args.overwrite, seed=args.seed, executions=args.executions,
            tiny=args.tiny, report=not args.no_report, verbose=0 if args.quiet else 1, precision=args.precision,
        )
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        print(f"zoo tune: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    if args.quiet:
        print(result.summary())
    if not result.completed:
        print(f"zoo tune: no trial completed ({len(result.failed)} failed, {len(result.infeasible)} infeasible)",
              file=sys.stderr)
        return 1
    return 0


def add_cli_parser(subparsers):
    """Add the ``tune`` sub-command to an ``argparse`` sub-parsers object; it sets ``fn``.

    Example:
        >>> sub = parser.add_subparsers(dest="command"); add_cli_parser(sub)
        >>> args = parser.parse_args(["tune", "mlp", "--data", "moons"]); args.fn(args)
    """
    p = subparsers.add_parser(
        "tune", help="search architectures and training settings (KerasTuner), recording size, accuracy and time",
        description="Run (or resume) a search; one record per trial goes to DIRECTORY/records.jsonl.",
    )
    p.add_argument("models", nargs="+", help="registered names, families or fnmatch patterns, e.g. 'resnet*'")
    p.add_argument("--data", default="digits", help="embedded data set, 'tfds:NAME' or 'folder:PATH' (default digits)")
    p.add_argument("--image-size", type=int, default=None, help="image size for image data")
    p.add_argument("--channels", type=int, default=None, help="image channels (1, 3 or 4)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    p.add_argument("--max-trials", type=int, default=10, help="trials in the whole search (default 10)")
    p.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget; no trial starts after it")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="random")
    p.add_argument("--objective", default="val_accuracy")
    p.add_argument("--direction", choices=("max", "min"), default=None)
    p.add_argument("--directory", default="runs/tune")
    p.add_argument("--project-name", default="keras_tuner")
    p.add_argument("--constraint", action="append", metavar="NAME=VALUE",
                   help=f"upper bound, repeatable: {', '.join(sorted(CONSTRAINT_FIELDS))}")
    p.add_argument("--executions", type=int, default=1, help="trainings per trial, averaged")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="dtype policy the trials' models are built under (default float32)")
    p.add_argument("--tiny", action="store_true", help="use each card's tiny test sizes (quick checks)")
    p.add_argument("--overwrite", action="store_true", help="start over (old records kept as .bak)")
    p.add_argument("--no-report", action="store_true", help="do not write the report")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines; print the summary only")
    p.set_defaults(fn=_cli_tune)
    return p


def main(argv=None) -> int:
    """``python -m tuning.search ...``: the ``tune`` command on its own."""
    parser = argparse.ArgumentParser(prog="tune")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli_parser(sub)
    args = parser.parse_args(["tune", *(sys.argv[1:] if argv is None else argv)])
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
