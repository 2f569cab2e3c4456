"""The KerasTuner engine of :func:`tuning.search`: the one module that touches KerasTuner's private API.

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
  and runs again, under the same id. The run manifest (``run.json``,
  :mod:`tuning.manifest`: space, data fingerprint, objectives, algorithm, training settings, seed,
  constraints) detects a changed search, refused unless ``RunOptions(resume=False)``.
* Distributed. With KerasTuner's environment variables (``KERASTUNER_TUNER_ID``,
  ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``) the chief serves the
  oracle and the workers run trials; all of them append to the one shared
  ``records.jsonl`` (``append_record`` takes an exclusive ``flock`` and writes
  each line in one ``O_APPEND`` write).
* Several objectives. ``algorithm="nsga2"`` uses :class:`tuning.searches.nsga2.NSGA2Oracle`:
  every completed trial reports all its objectives (plus KerasTuner's weighted
  sum, which KerasTuner requires and nothing ranks by); an infeasible one
  reports only its ``constraint_violation`` before it ends ``FAILED``, so
  constraint domination can rank it. The replay tells the oracle the same.
  :func:`drive` runs any oracle on a Python function (test functions, benchmarks).
* Budgets: ``max_trials`` (total, recorded trials included), ``max_seconds``
  (wall clock of this call: no trial starts after it), ``epochs`` per trial
  (Hyperband: its largest budget; every trial trains from scratch for
  ``tuner/epochs``, so every record describes one fully trained model).
"""

from __future__ import annotations

import os
import sys
import time

import keras_tuner as kt
from keras_tuner.src import config as kt_config
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.engine import trial as trial_module  # the public alias of Trial and TrialStatus

from tuning.hypermodels import ZooHyperModel
from tuning.searches.nsga2 import VIOLATION, NSGA2Oracle, outcome
from tuning.trial import objective_value
from zoo.runtime import frozen_heap, is_disk_full

__all__ = ["FunctionHyperModel", "MultiObjectiveOracle", "SearchTuner", "declared_space", "drive",
           "fail_worker_trial", "make_oracle", "replay", "role", "trial_metrics"]

STOPPED = trial_module.TrialStatus.STOPPED
_RUNNING = trial_module.TrialStatus.RUNNING
_COMPLETED = trial_module.TrialStatus.COMPLETED
_FAILED = trial_module.TrialStatus.FAILED
_REPLAY_TUNER = "replay"


class _BudgetMixin:
    """Oracle additions: a wall-clock deadline after which no trial starts."""

    deadline = None  # time.monotonic() value, or None

    @kt.synchronized
    def create_trial(self, tuner_id):
        if (self.deadline is not None and time.monotonic() >= self.deadline
                and tuner_id not in self.ongoing_trials):
            self.tuner_ids.discard(tuner_id)
            return trial_module.Trial(self.get_space(), status=STOPPED)
        return super().create_trial(tuner_id)


class RandomOracle(_BudgetMixin, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(_BudgetMixin, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(_BudgetMixin, kt.oracles.HyperbandOracle):
    pass


class GridOracle(_BudgetMixin, kt.oracles.GridSearchOracle):
    pass


class MultiObjectiveOracle(_BudgetMixin, NSGA2Oracle):
    """The NSGA-II oracle of searches: an infeasible trial may report its ``constraint_violation`` alone."""

    def _check_objective_found(self, metrics):
        if VIOLATION not in metrics:  # an infeasible trial reports its violation only
            super()._check_objective_found(metrics)


ID_WIDTH = 4  # trial ids "0000", "0001", ...: their text order is their numeric order up to 9,999 trials


class _TrialBudget(int):
    """``max_trials`` whose ``str`` is at least :data:`ID_WIDTH` digits wide.

    KerasTuner pads each trial id to ``len(str(max_trials))`` digits, so a resumed search
    that raises ``max_trials`` from 9 to 20 would follow trial "8" with "09", and text order
    would no longer be trial order. Every other use of the budget sees a plain int.
    """

    def __str__(self):
        return format(int(self), f"0{ID_WIDTH}d")


def make_oracle(algorithm, *, objectives, max_trials, epochs, seed, hyperparameters):
    """KerasTuner's oracle for a checked algorithm object (:mod:`tuning.searches.algorithms`): a
    multi-objective one optimises every ``objectives`` pair together, the others the first one."""
    if max_trials is not None:  # None pads to len("None") == ID_WIDTH already
        max_trials = _TrialBudget(max_trials)
    common = dict(
        objective=kt.Objective(*objectives[0]),
        # keras-tuner treats seed=0 as "no seed"
        seed=seed + 1,
        hyperparameters=hyperparameters,
        max_retries_per_trial=0,
        # Failed trials must never abort a search (see the module docstring).
        max_consecutive_failed_trials=sys.maxsize,
    )
    name = algorithm.name
    if name == "random":
        return RandomOracle(max_trials=max_trials, **common)
    if name == "bayesian":
        return BayesianOracle(max_trials=max_trials, num_initial_points=algorithm.num_initial_points, **common)
    if name == "grid":
        return GridOracle(max_trials=max_trials, **common)
    if name == "nsga2":
        common["objective"] = [kt.Objective(n, d) for n, d in objectives]
        return MultiObjectiveOracle(max_trials=max_trials, population_size=algorithm.population_size, **common)
    oracle = HyperbandOracle(max_epochs=epochs, factor=algorithm.factor, **common)
    oracle.max_trials = max_trials  # Hyperband has no such argument; the base oracle honours the attribute
    return oracle


def trial_metrics(oracle, record, objective_name):
    """What the oracle is told of a recorded trial: ``{name: value}`` for a completed one (every objective of
    a multi-objective oracle), ``{"constraint_violation": v}`` for an infeasible one under NSGA-II, else ``None``."""
    oracle = getattr(oracle, "_oracle", oracle)  # a worker's OracleClient wraps an oracle made like the chief's
    if isinstance(oracle, NSGA2Oracle):
        return _with_weighted_sum(oracle, outcome(record, oracle.objectives))
    value = objective_value(record, objective_name)
    return None if value is None else {objective_name: value}


def _with_weighted_sum(oracle, metrics):
    """KerasTuner expects a multi-objective oracle's weighted sum among the metrics (its ``multi_objective``);
    the search never ranks by it."""
    if metrics and VIOLATION not in metrics and hasattr(oracle.objective, "name_to_direction"):
        metrics[oracle.objective.name] = oracle.objective.get_value(metrics)
    return metrics


def replay(oracle, records, objective_name, notes):
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
            metrics = trial_metrics(oracle, record, objective_name)
            if metrics:
                oracle.update_trial(trial.trial_id, metrics)
            if metrics and VIOLATION not in metrics:
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


class FunctionHyperModel(kt.HyperModel):
    """A ``build(hp)`` function used as a HyperModel (KerasTuner accepts those too), named after it."""

    def __init__(self, build):
        super().__init__(name=getattr(build, "__qualname__", None))
        self._function = build

    def build(self, hp):
        return self._function(hp)


class SearchTuner(kt.Tuner):
    """A KerasTuner ``Tuner`` whose trials run through :func:`tuning.trial.run_trial` and are recorded."""

    def __init__(self, oracle, hypermodel, *, runner, **kwargs):
        self.runner = runner
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)

    # records.jsonl, not KerasTuner's files, is the state: see the module docstring.
    def reload(self):
        pass

    def _activate_all_conditions(self):
        explore_space(self.hypermodel, self.oracle)

    def search(self, *args, **kwargs):
        """KerasTuner's search; a chief serves its oracle through :func:`_serve_chief` (a faster poll)."""
        if dist_utils.is_chief_oracle():
            self.save()
            _serve_chief(self.oracle)
            return
        with frozen_heap():  # each trial's clear_session collects the trial's objects only
            super().search(*args, **kwargs)

    def pre_create_trial(self):
        # An oracle that answered IDLE (e.g. Hyperband waiting for other workers' trials) gets no trial
        # started before it is asked again; KerasTuner asks again at once. Pause here, in the worker.
        if self._asked:
            time.sleep(0.2)
        self._asked = True
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._asked = False
        super().on_trial_begin(trial)

    def on_search_begin(self):
        self._asked = False
        super().on_search_begin()

    def _try_run_and_update_trial(self, trial, *args, **kwargs):
        # KerasTuner prints a traceback for every failed trial (its config.DEBUG): a recorded failure says
        # why in its record, so the traceback is left out while the trial runs.
        debug, kt_config.DEBUG = kt_config.DEBUG, False
        try:
            super()._try_run_and_update_trial(trial, *args, **kwargs)
        finally:
            kt_config.DEBUG = debug
        if trial.status == trial_module.TrialStatus.INVALID:  # an error outside the record
            if is_disk_full(RuntimeError(trial.message)):  # e.g. KerasTuner saving the trial: the run stops
                raise kt.errors.FatalError(trial.message.strip().splitlines()[-1])
            print(trial.message, file=sys.stderr, flush=True)

    def run_trial(self, trial, *args, **kwargs):
        try:
            record = self.runner.run(trial, self.hypermodel, tuner_id=self.tuner_id)
        except Exception as e:
            if is_disk_full(e):  # not the trial's fault: KerasTuner stops on a FatalError; search names the folder
                raise kt.errors.FatalError(str(e)) from e
            raise
        metrics = trial_metrics(self.oracle, record, self.runner.objective)
        if metrics and VIOLATION in metrics:  # NSGA-II ranks infeasible trials by how far over they are
            self.oracle.update_trial(trial.trial_id, metrics)
            metrics = None
        if metrics is None:
            raise kt.errors.FailedTrialError(record.get("error") or f"no finite {self.runner.objective}")
        return metrics


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


def explore_space(hypermodel, oracle):
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


def declared_space(hypermodel, hyperparameters):
    """The search space as the oracle will hold it (declared without training anything)."""
    oracle = kt.oracles.RandomSearchOracle(hyperparameters=hyperparameters.copy() if hyperparameters else None)
    hp = oracle.get_space()
    hypermodel.declare_hyperparameters(hp)
    oracle.update_space(hp)
    explore_space(hypermodel, oracle)
    return oracle.get_space()


def fail_worker_trial(tuner_id):
    """End the trial the chief (at KerasTuner's address in this process' environment) holds for ``tuner_id``
    ``FAILED``, as that worker would: its process is gone for good. Returns the trial, or ``None`` when the
    oracle gave that worker no running trial."""
    from keras_tuner.src.distribute import oracle_client

    client = oracle_client.OracleClient(None)
    trial = client.create_trial(tuner_id)
    if trial.status != _RUNNING:
        return None
    trial.status = _FAILED
    client.end_trial(trial)
    return trial


def role():
    if not dist_utils.has_chief_oracle():
        return "single"
    return "chief" if dist_utils.is_chief_oracle() else "worker"


def drive(oracle, evaluate, *, tuner_id="drive"):
    """Run ``oracle`` on a Python function instead of training (test functions, benchmarks).

    ``evaluate(values) -> {metric: value}`` gets each proposal's hyperparameter values; a returned
    ``None`` ends the trial ``FAILED``, a dict with only ``"constraint_violation"`` ends it ``FAILED``
    with that violation (see :mod:`tuning.searches.nsga2`; the oracle must take such a report, as
    :class:`MultiObjectiveOracle` does). KerasTuner's state files are not written.
    Returns the ended trials in order.
    """
    oracle.save = oracle._save_trial = lambda *a, **k: None
    oracle.verbose = 0
    ended = []
    try:
        while True:
            trial = oracle.create_trial(tuner_id)
            if trial.status != _RUNNING:
                return ended
            metrics = _with_weighted_sum(oracle, evaluate(dict(trial.hyperparameters.values)))
            if metrics:
                oracle.update_trial(trial.trial_id, metrics)
            trial.status = _COMPLETED if metrics and VIOLATION not in metrics else _FAILED
            oracle.end_trial(trial)
            ended.append(oracle.trials[trial.trial_id])
    finally:
        del oracle.save, oracle._save_trial
