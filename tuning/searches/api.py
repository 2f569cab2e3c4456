"""``tuning.search``: KerasTuner searches that record size, accuracy and time of every trial, and lose nothing.

Each trial goes through :func:`tuning.trial.run_trial` (build, profile, train
with :mod:`zoo.training`, evaluate, time) and its record is appended to
``<directory>/records.jsonl`` the moment the trial ends. How failures,
resuming, distributed runs and budgets work: :mod:`tuning.searches.engine`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import shutil
import time
import warnings

import keras_tuner as kt

from tuning.artifacts import clear_checkpoints, prune_saved_models
from tuning.constraints import check_constraints
from tuning.hypermodels import ZooHyperModel, make_hypermodel
from tuning.isolation import WorkerPool, WorkersCannotStart, check_picklable, data_spec
from tuning.lock import hold_run_folder
from tuning.manifest import RECORDS_FILE, make_manifest, training_identity, write_manifest
from tuning.objectives import objective, objective_fields
from tuning.records import MEASURED_FIELDS, latest_records, read_records, reject_bad_lines
from tuning.searches import engine
from tuning.searches.algorithms import coerce_algorithm
from tuning.searches.result import SearchResult, load_search
from tuning.searches.runner import Runner, SearchRun
from tuning.searches.state import check_keras_tuner_state, prepare_directory, repair_tail
from tuning.searches.workers import run_with_local_workers
from tuning.settings import AUTO_ISOLATION_SECONDS, AUTO_ISOLATION_TRIALS, Budget, RunOptions
from tuning.spaces import SEARCHED_TRAINING, SearchSpace, TrainingSpace
from tuning.trial import TrialPlan, check_build, run_data, run_training
from zoo.runtime import names_full_disk
from zoo.training import TrainingConfig, metric_names
from zoo.utils import check_int, settings_object

__all__ = ["search"]

KERAS_TUNER_DIR = "keras_tuner"  # KerasTuner's own state: a cache rebuilt from records.jsonl



@names_full_disk("directory")
def search(models, *, data, objectives="val_accuracy", training=None, space=None, algorithm="random", budget=10,
           constraints=None, seed=0, directory="runs/search", options=None) -> SearchResult:
    """Search architectures and training settings; record size, accuracy and time of every trial.

    Args:
        models: a pattern (``"resnet*"``), a family (``"resnet"``), a list of names/patterns, a
            ``keras_tuner.HyperModel`` or a function ``hp -> keras.Model``.
        data: a :class:`zoo.data.DataBundle` (or an embedded data set name).
        objectives: a record field (``"val_accuracy"``, ``"val_loss"``, ``"test_*"``, ``"params"``,
            ``"latency_ms"``...), a ``(name, "max" | "min")`` pair or a list of them; a bare name takes its
            direction from :func:`zoo.utils.metric_direction` (else pass the pair). The first one is what
            the oracle, pruning and early stopping follow; an algorithm that searches several objectives
            (:class:`tuning.NSGA2`) searches their Pareto front; the fronts, hypervolume and report cover
            them all either way. Sizes (``params``, ``macs``, ``weight_bytes``) come from the built model.
        training: a :class:`zoo.training.TrainingConfig` with the settings every trial shares: epochs
            (Hyperband: its largest budget), precision, early stopping (``patience``, ``min_delta``; on
            the first objective when it is a validation metric, else on ``val_loss``), loss options. What
            the space searches (optimizer, learning rate, schedule, weight decay, batch size,
            augmentation) is set in ``space`` instead. Default: ``TrainingConfig()`` (5 epochs).
        space: a :class:`tuning.SearchSpace` (the training space, fixed builder arguments, tiny sizes, the
            model hyperparameters to tune, overriding ``HyperParameters``), or a ``TrainingSpace``.
        algorithm: ``"random"``, ``"hyperband"``, ``"bayesian"``, ``"grid"``, ``"nsga2"`` or an object
            holding its own settings: :class:`tuning.Random`, :class:`tuning.Grid`,
            :class:`tuning.Bayesian` (``num_initial_points``), :class:`tuning.Hyperband` (``factor``),
            :class:`tuning.NSGA2` (``population_size``); each but Hyperband takes ``pruning="median"``.
        budget: a :class:`tuning.Budget` (``max_trials``, ``max_seconds``, ``executions``) or a number of
            trials (recorded trials count).
        constraints: upper bounds such as ``{"max_params": 1e5, "max_latency_ms": 5}``; a trial over a
            bound is recorded ``infeasible`` and the search goes on.
        seed: seeds the oracle and every trial's initialisation.
        directory: where ``records.jsonl``, ``run.json`` (the run manifest) and KerasTuner's state
            (``<directory>/keras_tuner``) live. An existing search there is resumed.
        options: a :class:`tuning.RunOptions`: resume or start over, which trained models are kept
            (default: the Pareto front's), per-epoch checkpoints, TensorBoard logs, the report,
            speed timing, process isolation, callbacks, verbosity.

    Returns:
        a :class:`SearchResult`.

    Raises:
        ValueError / TypeError: bad arguments, or a different search already in ``directory``.

    Example:
        >>> result = search("mlp", data=zoo.data.load("moons"), training=TrainingConfig(epochs=2), budget=3,
        ...                 directory="runs/mlp")
        >>> result.best_record["val_accuracy"], len(result.pareto())
    """
    began = time.perf_counter()
    call = dict(models=models, data=data, objectives=objectives, training=training, space=space, algorithm=algorithm,
                budget=budget, constraints=constraints, seed=seed, directory=directory, options=options)
    budget, options = Budget.coerce(budget), settings_object(RunOptions, options, "options")
    if isinstance(space, TrainingSpace):
        space = SearchSpace(training=space)
    algorithm, space, data = coerce_algorithm(algorithm), settings_object(SearchSpace, space, "space"), run_data(data)
    check_int("seed", seed, minimum=0)
    objectives = _objectives(objectives, data, algorithm=algorithm)
    objective_name, direction = objectives[0]
    algorithm = algorithm.checked(objective=objective_name, max_trials=budget.max_trials)
    if budget.max_trials is None and budget.max_seconds is None and algorithm.name in ("random", "bayesian"):
        raise ValueError(f"algorithm={algorithm.name!r} needs `budget.max_trials` or `budget.max_seconds` to end. "
                         "Received: neither")
    constraints = check_constraints(constraints)
    kept = options.kept("search")
    if not options.measure_speed and "max_latency_ms" in constraints:
        raise ValueError("max_latency_ms needs RunOptions(measure_speed=True). Received: measure_speed=False")
    hypermodel = _hypermodel(models, data=data, space=space)
    zoo_space = isinstance(hypermodel, ZooHyperModel)
    training = run_training(training, monitor=objective_name if objective_name.startswith("val_") else "val_loss")
    if zoo_space:
        _check_searched(training)
        if "metrics" not in training.options:  # the training path's own metrics: the fields are known
            _check_recorded(objectives, data, measure_speed=options.measure_speed)
    options, isolation_note = _isolation(options, data=data, hypermodel=hypermodel, budget=budget)
    if options.workers is not None and options.workers > 1:  # this process becomes the chief of N local workers
        _check_workers(options, data=data, hypermodel=hypermodel)
        return run_with_local_workers(search, {**call, "data": data, "options": options}, workers=options.workers,
                                      verbose=options.verbose)
    if space.fixed:  # a bad fixed builder argument fails here, once, not in every trial
        check_build(lambda: hypermodel.build(kt.HyperParameters()), what=f"`fixed` builder arguments {space.fixed}")

    role = engine.role()
    directory = os.fspath(directory)
    with hold_run_folder(directory, role=role) as lock:  # a second run of this folder is refused while it runs
        os.makedirs(directory, exist_ok=True)
        records_path = os.path.join(directory, RECORDS_FILE)
        notes = [isolation_note] if isolation_note else []
        declared = engine.declared_space(hypermodel, space.hyperparameters)
        described = hypermodel.get_config() if isinstance(hypermodel, ZooHyperModel) else {
            "class": f"{type(hypermodel).__module__}.{type(hypermodel).__qualname__}", "name": hypermodel.name}
        identity = {
            "hypermodel": described, "space": declared.get_config(), "algorithm": algorithm.describe(), "seed": seed,
            "executions": budget.executions, "constraints": constraints,
            "training": training_identity(training, searched=SEARCHED_TRAINING if isinstance(
                hypermodel, ZooHyperModel) else ()),
        }
        manifest = make_manifest("search", identity=identity, objectives=objectives, budget=budget.to_dict(),
                                 data={"name": data.name, "fingerprint": data.fingerprint,
                                       "batch_size": data.batch_size},
                                 provenance=data.provenance() if hasattr(data, "provenance") else None)
        manifest = prepare_directory(directory, manifest, resume=options.resume, role=role, records_path=records_path,
                                     notes=notes)
        known = _known_records(records_path, os.path.join(directory, KERAS_TUNER_DIR), role=role, notes=notes)

        oracle = engine.make_oracle(algorithm, objectives=objectives, max_trials=budget.max_trials,
                                    epochs=training.epochs, seed=seed, hyperparameters=space.hyperparameters)
        oracle.verbose = 0  # one line per trial is printed by the runner instead
        plan = TrialPlan(training=training, constraints=constraints, measure_speed=options.measure_speed,
                         speed_iterations=options.iterations("search"), callbacks=options.callbacks,
                         verbose=options.fit_verbose)
        run = SearchRun(plan=plan, data=data, objectives=objectives, algorithm=algorithm, budget=budget,
                        options=options, seed=seed,
                        directory=directory, search_id=manifest["id"])
        runner = Runner(run, known=known, shared=role == "worker",
                        pool=WorkerPool(data, hold=lock.fileno()) if options.isolation == "process" else None)
        tuner = engine.SearchTuner(oracle, hypermodel, runner=runner, directory=directory, project_name=KERAS_TUNER_DIR)
        if role != "worker":
            if known:
                replayed = engine.replay(tuner.oracle, known, objective_name, notes)
                notes.insert(0, f"resumed: {replayed} recorded trial(s) replayed from {records_path}")
            write_manifest(directory, manifest)
            if budget.max_seconds is not None:
                tuner.oracle.deadline = time.monotonic() - (time.perf_counter() - began) + budget.max_seconds
        if options.verbose:
            _announce(hypermodel, run, space=declared, role=role, notes=notes)
        try:
            tuner.search()
        except kt.errors.FatalError as e:
            if isinstance(e.__cause__, WorkersCannotStart):
                raise e.__cause__ from None
            raise
        finally:
            if runner.pool is not None:
                runner.pool.close()

        result = load_search(directory, objective=objective_name, direction=direction)
        result.manifest = manifest
        deadline = getattr(tuner.oracle, "deadline", None)
        if role != "worker" and deadline is not None and time.monotonic() >= deadline and (
                budget.max_trials is None or len(result.records) < budget.max_trials):
            notes.append(f"stopped by the time budget: max_seconds={budget.max_seconds:g} reached after "
                         f"{len(result.records)} trial(s)" + (f" of {budget.max_trials}" if budget.max_trials else ""))
            if options.verbose:
                print(f"[tune] {notes[-1]}", flush=True)
        result.notes, result.seconds, result.tuner = notes, time.perf_counter() - began, tuner
        if role != "worker" and kept in ("pareto", "best"):  # a dominated trial stays dominated
            best = result.pareto() if kept == "pareto" else [result.best_record] if result.best_record else []
            prune_saved_models(directory, result.records, [r["id"] for r in best])
        if options.report and role != "worker" and result.records:
            result.report = _write_report(result, notes)
        if options.verbose and role != "worker":
            print("[tune] " + result.summary().replace("\n", "\n[tune] "), flush=True)
        return result


def _check_searched(training):
    """A zoo search space sets its training settings in every trial: a TrainingConfig may not set them too."""
    searched = [k for k in SEARCHED_TRAINING if getattr(training, k) != getattr(TrainingConfig(), k)]
    if searched:
        raise ValueError(f"The search space sets {searched} in every trial: give them in "
                         f"space=SearchSpace(training=TrainingSpace(...)) (one value fixes one). "
                         f"Received: training={training!r}")


def _objectives(objectives, data, *, algorithm):
    """``[(name, direction), ...]`` (:mod:`tuning.objectives`), each readable from the data's splits."""
    single = isinstance(objectives, str) or isinstance(objectives, tuple) and len(objectives) == 2 and isinstance(
        objectives[1], str) and objectives[1] in ("max", "min") or hasattr(objectives, "direction")
    pairs = [objective(objectives, arg="objectives")] if single else objective_fields(objectives, arg="objectives")
    for name, _ in pairs:
        split = name.split("_", 1)[0]
        if split in ("val", "test") and {"val": "validation", "test": "test"}[split] not in data.splits:
            raise ValueError(f"objective {name!r} needs a {split} split; {data.name!r} has {list(data.splits)}")
    if algorithm.multi_objective and not 2 <= len(pairs) <= 3:
        raise ValueError(f"algorithm={algorithm.name!r} searches 2 or 3 objectives (its hypervolume is exact up "
                         f"to 3). Received: {len(pairs)} in objectives={objectives!r}")
    return pairs


def _check_recorded(objectives, data, *, measure_speed):
    """A zoo search's objectives must be fields its trials record (the metrics the training path logs on the
    data's splits, the sizes and times): a misspelled name fails here, not silently after every trial."""
    splits = [prefix for prefix, split in (("val", "validation"), ("test", "test")) if split in data.splits]
    recorded = {f"{prefix}_{name}" for prefix in splits for name in metric_names(data.task)}
    recorded |= set(MEASURED_FIELDS) - (set() if measure_speed else {"latency_ms", "throughput"})
    for name, _ in objectives:
        if name not in recorded:
            close = difflib.get_close_matches(name, sorted(recorded), n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(f"objective {name!r} is not a field the trials record.{hint} They record: "
                             f"{', '.join(sorted(recorded))}. Received: objectives={[n for n, _ in objectives]}")


def _isolation(options, *, data, hypermodel, budget):
    """``(options with isolation None or "process", note or None)``. ``isolation="process"`` sends the
    hypermodel and callbacks to workers that load the data again (refused when they cannot); ``"auto"`` does so
    for a long search when they can, and otherwise trains in this process, saying why."""
    if options.isolation == "auto":
        long = (budget.max_trials or 0) >= AUTO_ISOLATION_TRIALS or (
            budget.max_trials is None and (budget.max_seconds or 0) >= AUTO_ISOLATION_SECONDS)
        if not long or engine.role() != "single" or (options.workers or 1) > 1:
            return dataclasses.replace(options, isolation=None), None
        try:
            _check_isolation(data, hypermodel, options.callbacks)
        except (ValueError, TypeError) as e:
            return dataclasses.replace(options, isolation=None), (
                f"trials run in this process (a trial that crashes it ends the search): they cannot run in worker processes: "
                f"{str(e).splitlines()[0]}")
        return dataclasses.replace(options, isolation="process"), None
    if options.isolation is not None:
        _check_isolation(data, hypermodel, options.callbacks)
    return options, None


def _check_isolation(data, hypermodel, callbacks):
    """Workers load the data again by name and get the models and callbacks pickled."""
    data_spec(data)
    check_picklable(hypermodel, "models")
    check_picklable(list(callbacks), "callbacks")


def _check_workers(options, *, data, hypermodel):
    """``workers=N`` starts a chief and N workers that run this same search: they load the data again by name
    and get the models, callbacks and settings pickled."""
    if engine.role() != "single":
        raise ValueError(f"workers={options.workers} starts its own chief and workers, but this process is a "
                         f"KerasTuner {engine.role()} already (KERASTUNER_TUNER_ID is set)")
    try:
        _check_isolation(data, hypermodel, options.callbacks)
    except (ValueError, TypeError) as e:
        raise type(e)(str(e).replace("isolation='process'", f"workers={options.workers}")) from None


def _hypermodel(models, *, data, space):
    if callable(models) and not isinstance(models, kt.HyperModel):
        models = engine.FunctionHyperModel(models)
    if isinstance(models, kt.HyperModel):
        if space != SearchSpace(hyperparameters=space.hyperparameters):
            raise ValueError("`space` (its training space, fixed, tiny, tune) applies to zoo models; a given "
                             "HyperModel declares its own space (only `space.hyperparameters` applies).")
        return models
    return make_hypermodel(models, data=data, fixed=space.fixed, tiny=space.tiny, training=space.training,
                           tune=space.tune)


def _known_records(records_path, project_dir, *, role, notes):
    """The records so far; the chief (or a single process) repairs the file and drops KerasTuner's cache."""
    if role == "worker":
        return latest_records(read_records(records_path))
    check_keras_tuner_state(project_dir, notes)
    if os.path.isdir(project_dir):
        shutil.rmtree(project_dir)  # a cache of records.jsonl, rebuilt by the replay
    repair_tail(records_path, notes)
    reject_bad_lines(records_path, notes)  # damaged lines move aside; their trials run again
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        known = latest_records(read_records(records_path))
    notes += [str(w.message) for w in caught]
    clear_checkpoints(os.path.dirname(records_path), known)
    return known


def _announce(hypermodel, run, *, space, role, notes):
    names = (getattr(hypermodel, "models", None) or getattr(hypermodel, "variants", None)
             or [hypermodel.name or type(hypermodel).__name__])
    budget, (objective_name, direction) = run.budget, run.objectives[0]
    print(f"[tune] {run.directory}: {run.algorithm.name} search over {', '.join(map(str, names))} | "
          f"{len(space.space)} hyperparameters | {objective_name} ({direction}) | max_trials={budget.max_trials} "
          f"epochs={run.plan.training.epochs}" + (f" max_seconds={budget.max_seconds:g}" if budget.max_seconds
                                                  is not None else "") + f" | {role}", flush=True)
    for note in notes:
        print(f"[tune] {note}", flush=True)


def _write_report(result, notes):
    from tuning.report import write_report

    try:
        report = write_report(result.records, os.path.join(result.directory, "report"), manifest=result.manifest,
                              title=f"Search on {result.manifest['data']['name']}", run_dir=result.directory)
        return report.paths
    except Exception as e:  # noqa: BLE001 - a report problem must not fail a finished search
        notes.append(f"report not written: {type(e).__name__}: {e}")
        warnings.warn(f"tuning.report.write_report failed: {e}", stacklevel=2)
        return None
