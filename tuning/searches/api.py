"""``tuning.search``: KerasTuner searches that record size, accuracy and time of every trial, and lose nothing.

Each trial goes through :func:`tuning.trial.run_trial` (build, profile, train
with :mod:`zoo.training`, evaluate, time) and its record is appended to
``<directory>/records.jsonl`` the moment the trial ends. How failures,
resuming, distributed runs and budgets work: :mod:`tuning.searches.engine`.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings

import keras_tuner as kt

from tuning.artifacts import check_save_models, prune_saved_models
from tuning.fronts import check_constraints
from tuning.hypermodels import ZooHyperModel, make_hypermodel
from tuning.isolation import WorkerPool, check_picklable, data_spec
from tuning.records import finite, latest_records, read_records, reject_bad_lines
from tuning.searches import engine
from tuning.searches.result import SearchResult, load_search
from tuning.searches.nsga2 import default_population
from tuning.searches.pruning import check_pruning
from tuning.searches.runner import Runner
from tuning.trial import check_build
from tuning.searches.state import (
    ALGORITHMS,
    MANIFEST_FILE,
    RECORDS_FILE,
    check_keras_tuner_state,
    make_manifest,
    prepare_directory,
    read_manifest,
    repair_tail,
)
from zoo.runtime import names_full_disk, resolve_precision, write_json_atomic
from zoo.training import check_early_stopping, metric_direction

__all__ = ["ALGORITHMS", "search"]



@names_full_disk("directory")
def search(
    models,
    *,
    data,
    objective="val_accuracy",
    direction=None,
    objectives=None,
    algorithm="random",
    population_size=None,
    pruning=None,
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
    patience=None,
    min_delta=0.0,
    save_models="pareto",
    log_dir=None,
    checkpoint=True,
    isolation=None,
) -> SearchResult:
    """Search architectures and training settings; record size, accuracy and time of every trial.

    Args:
        models: a pattern (``"resnet*"``), a family (``"resnet"``), a list of
            names/patterns, or a ``keras_tuner.HyperModel``.
        data: a :class:`zoo.data.DataBundle` (or an embedded data set name).
        objective: a record field: ``val_accuracy``, ``val_loss``, ``test_*``,
            ``params``, ``latency_ms``... ``direction`` is inferred when possible.
        objectives: several objectives searched together, ``[("val_accuracy", "max"), ("params", "min"),
            ("fit_seconds", "min")]`` (a bare name infers its direction); they replace ``objective``, whose
            place the first one takes (best trial, pruning, early stopping). ``algorithm="nsga2"`` searches
            their Pareto front (:mod:`tuning.searches.nsga2`); the other algorithms optimise the first one
            only, and the fronts, hypervolume and report cover them all either way. Sizes (``params``,
            ``macs``, ``weight_bytes``) come from the built model, the others from training.
        algorithm: ``"random"``, ``"hyperband"``, ``"bayesian"``, ``"grid"`` or ``"nsga2"``.
        population_size: NSGA-II trials per generation (default: a fifth of ``max_trials``, 4 to 50).
        pruning: ``"median"`` (or a :class:`tuning.searches.pruning.MedianPruner`) stops a trial whose
            first objective trails the median of the completed trials at the same epoch; its record is
            ``pruned`` and never ranked. Not with Hyperband.
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
        report: write the search report (``tuning.report.write_report``) to ``<directory>/report``.
        verbose: 1 prints one line per trial; 0 is silent.
        precision: ``float32``, ``mixed_float16``, ``mixed_bfloat16`` or ``auto``
            (by device, see :func:`zoo.runtime.resolve_precision`): the dtype
            policy every trial's model is built under; part of the search's identity.
        patience, min_delta: early stopping of each trial on the objective when it is a validation
            metric (else on ``val_loss``), restoring the best epoch's weights; ``epochs`` is then
            each trial's maximum. Records hold ``best_epoch`` and ``stopped_epoch``.
        save_models: ``"pareto"`` keeps the trained models of the Pareto front
            (:meth:`SearchResult.pareto`), ``"best"`` the best trial's, ``"all"`` every one,
            ``None`` none: ``<directory>/models/ID.keras`` with a JSON card beside it, referenced
            from the record; :meth:`SearchResult.load_best` and :meth:`SearchResult.load` load them.
        log_dir: TensorBoard scalars and a ``log.csv`` per trial in ``log_dir/ID``, and the
            trials' hyperparameters and results as TensorBoard HParams.
        checkpoint: leave a checkpoint after each epoch, so that a killed search resumes its
            running trial from its last finished epoch.
        isolation: ``"process"`` runs each trial in a fresh worker process (:mod:`tuning.isolation`):
            memory stays flat however many trials run, and a trial that crashes the process (a
            segfault, an abort, the out-of-memory killer) becomes a ``failed`` record naming the
            signal while the search goes on. The data must come from ``zoo.data.load`` (each worker
            loads it again) and ``models``/``callbacks`` must pickle. ``None`` trains in this process.

    Returns:
        a :class:`SearchResult`.

    Raises:
        ValueError: bad arguments, or a different search already in ``directory``.

    Example:
        >>> result = search("mlp", data=zoo.data.load("moons"), max_trials=3, epochs=2, directory="runs/mlp")
        >>> result.best_record["val_accuracy"], len(result.pareto())
    """
    began = time.perf_counter()
    precision = resolve_precision(precision)
    _check_budget(algorithm=algorithm, epochs=epochs, executions=executions, seed=seed,
                  hyperband_factor=hyperband_factor, max_trials=max_trials, max_seconds=max_seconds,
                  project_name=project_name)
    constraints = check_constraints(constraints)
    check_save_models(save_models)
    if not measure_speed and "max_latency_ms" in constraints:
        raise ValueError("max_latency_ms needs measure_speed=True. Received: measure_speed=False")
    data = _data(data)
    objectives = _objectives(objectives, data, algorithm=algorithm, population_size=population_size)
    objective_name, direction = objectives[0] if objectives else _objective(objective, direction, data)
    pruning = check_pruning(pruning, algorithm=algorithm, monitor=objective_name)
    if algorithm == "nsga2":
        population_size = population_size or default_population(max_trials)
    early_stopping = None
    if patience is not None:
        monitor = objective_name if objective_name.startswith("val_") else "val_loss"
        early_stopping = dict(zip(("patience", "min_delta", "monitor"),
                                  check_early_stopping(patience, min_delta, monitor)))
    hypermodel = _hypermodel(models, data=data, fixed=fixed, tiny=tiny, training=training, tune=tune)
    _check_isolation(isolation, data=data, hypermodel=hypermodel, callbacks=callbacks)
    if fixed:  # a bad fixed builder argument fails here, once, not in every trial
        check_build(lambda: hypermodel.build(kt.HyperParameters()), what=f"`fixed` builder arguments {fixed}")

    role = engine.role()
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    records_path = os.path.join(directory, RECORDS_FILE)
    notes = []
    space = engine.declared_space(hypermodel, hyperparameters)
    described = hypermodel.get_config() if isinstance(hypermodel, ZooHyperModel) else {
        "class": f"{type(hypermodel).__module__}.{type(hypermodel).__qualname__}", "name": hypermodel.name}
    identity = {
        "hypermodel": described, "space": space.get_config(),
        "data": {"name": data.name, "fingerprint": data.fingerprint, "batch_size": data.batch_size},
        "objective": {"name": objective_name, "direction": direction},
        "algorithm": {"name": algorithm, "hyperband_factor": hyperband_factor if algorithm == "hyperband" else None,
                      "num_initial_points": num_initial_points if algorithm == "bayesian" else None,
                      **({"population_size": population_size} if algorithm == "nsga2" else {})},
        "epochs": epochs, "seed": seed, "executions": executions, "constraints": constraints, "precision": precision,
    }
    if early_stopping:  # absent otherwise, so that earlier searches keep their identity
        identity["early_stopping"] = early_stopping
    if objectives:
        identity["objectives"] = [{"name": name, "direction": d} for name, d in objectives]
    if pruning:
        identity["pruning"] = pruning.describe()
    manifest = make_manifest(identity, project_name=project_name,
                             provenance=data.provenance() if hasattr(data, "provenance") else None)
    prepare_directory(directory, manifest, overwrite=overwrite, role=role, records_path=records_path, notes=notes)
    known = _known_records(records_path, os.path.join(directory, project_name), role=role, notes=notes)

    oracle = engine.make_oracle(algorithm, objective=kt.Objective(objective_name, direction), max_trials=max_trials,
                                epochs=epochs, seed=seed, hyperparameters=hyperparameters,
                                hyperband_factor=hyperband_factor, num_initial_points=num_initial_points,
                                objectives=objectives, population_size=population_size)
    oracle.verbose = 0  # one line per trial is printed by the runner instead
    runner = Runner(
        data=data, objective=objective_name, direction=direction, epochs=epochs, seed=seed, executions=executions,
        constraints=constraints, records_path=records_path, measure_speed=measure_speed, callbacks=callbacks,
        algorithm=algorithm, search_id=manifest["search"], verbose=verbose, known=known, max_trials=max_trials,
        shared=role == "worker", precision=precision, early_stopping=early_stopping, objectives=objectives,
        pruning=pruning, pool=WorkerPool(data) if isolation == "process" else None,
        files=dict(run_dir=directory, save_model=save_models is not None, checkpoint=checkpoint, log_root=log_dir),
    )
    tuner = engine.SearchTuner(oracle, hypermodel, runner=runner, directory=directory, project_name=project_name)
    if role != "worker":
        if known:
            replayed = engine.replay(tuner.oracle, known, objective_name, notes)
            notes.insert(0, f"resumed: {replayed} recorded trial(s) replayed from {records_path}")
        if not os.path.exists(os.path.join(directory, MANIFEST_FILE)):
            write_json_atomic(os.path.join(directory, MANIFEST_FILE), manifest)
        if max_seconds is not None:
            tuner.oracle.deadline = time.monotonic() - (time.perf_counter() - began) + max_seconds
    if verbose:
        _announce(hypermodel, directory=directory, algorithm=algorithm, space=space, objective=objective_name,
                  direction=direction, max_trials=max_trials, epochs=epochs, max_seconds=max_seconds, role=role,
                  notes=notes)
    try:
        tuner.search()
    finally:
        if runner.pool is not None:
            runner.pool.close()

    result = load_search(directory, objective=objective_name, direction=direction)
    result.manifest = read_manifest(os.path.join(directory, MANIFEST_FILE)) or manifest
    result.notes, result.seconds, result.tuner = notes, time.perf_counter() - began, tuner
    if role != "worker" and save_models in ("pareto", "best"):  # a dominated trial stays dominated
        kept = result.pareto() if save_models == "pareto" else [result.best_record] if result.best_record else []
        prune_saved_models(directory, result.records, [r["id"] for r in kept])
    if report and role != "worker" and result.records:
        result.report = _write_report(result, data, project_name, notes)
    if verbose and role != "worker":
        print("[tune] " + result.summary().replace("\n", "\n[tune] "), flush=True)
    return result


def _check_budget(*, algorithm, epochs, executions, seed, hyperband_factor, max_trials, max_seconds, project_name):
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


def _data(data):
    if isinstance(data, str):
        import zoo.data

        data = zoo.data.load(data)
    for attr in ("fingerprint", "input_shape", "splits", "arrays"):
        if not hasattr(data, attr):
            raise TypeError(f"`data` must be a zoo.data.DataBundle or a data set name. Received: {type(data).__name__}")
    return data


def _objective(objective, direction, data):
    """(name, direction) of the objective; the split it reads must exist."""
    if isinstance(objective, kt.Objective):
        objective, direction = objective.name, objective.direction
    if not isinstance(objective, str) or not objective:
        raise TypeError(f"`objective` must be a record field name. Received: objective={objective!r}")
    direction = direction or metric_direction(objective) or engine.infer_direction(objective)
    if direction not in ("max", "min"):
        raise ValueError(
            f"Cannot tell whether to maximise or minimise {objective!r}; pass direction='max' or 'min'. "
            f"Received: objective={objective!r}, direction={direction!r}"
        )
    split = objective.split("_", 1)[0]
    if split in ("val", "test") and {"val": "validation", "test": "test"}[split] not in data.splits:
        raise ValueError(f"objective={objective!r} needs a {split} split; {data.name!r} has {list(data.splits)}")
    return objective, direction


def _objectives(objectives, data, *, algorithm, population_size):
    """``[(name, direction), ...]`` from ``objectives`` (``None`` stays ``None``), each checked like ``objective``."""
    if population_size is not None and (algorithm != "nsga2" or not isinstance(population_size, int)
                                        or isinstance(population_size, bool) or population_size < 2):
        raise ValueError(f"`population_size` is an int >= 2 for algorithm='nsga2'. "
                         f"Received: population_size={population_size!r}, algorithm={algorithm!r}")
    if objectives is None:
        if algorithm == "nsga2":
            raise ValueError("algorithm='nsga2' searches several objectives: pass `objectives`, e.g. "
                             "[('val_accuracy', 'max'), ('params', 'min')]. Received: objectives=None")
        return None
    if isinstance(objectives, (str, kt.Objective)) or not hasattr(objectives, "__iter__"):
        raise TypeError(f"`objectives` must be a list of names or (name, direction) pairs. "
                        f"Received: objectives={objectives!r}")
    checked = []
    for item in objectives:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            checked.append(_objective(item[0], item[1], data))
        elif isinstance(item, (str, kt.Objective)):
            checked.append(_objective(item, None, data))
        else:
            raise TypeError(f"Each objective must be a name or a (name, direction) pair. Received: {item!r} "
                            f"in objectives={objectives!r}")
    names = [name for name, _ in checked]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"`objectives` must name distinct fields. Received: objectives={objectives!r}")
    if algorithm == "nsga2" and not 2 <= len(names) <= 3:
        raise ValueError(f"algorithm='nsga2' takes 2 or 3 objectives (its hypervolume is exact up to 3). "
                         f"Received: {len(names)} in objectives={objectives!r}")
    return checked


ISOLATION = (None, "process")


def _check_isolation(isolation, *, data, hypermodel, callbacks):
    """``isolation="process"`` sends the hypermodel and callbacks to workers that load the data again."""
    if isolation not in ISOLATION:
        raise ValueError(f"`isolation` must be None or 'process'. Received: isolation={isolation!r}")
    if isolation is not None:
        data_spec(data)
        check_picklable(hypermodel, "models")
        check_picklable(list(callbacks), "callbacks")


def _hypermodel(models, *, data, fixed, tiny, training, tune):
    if callable(models) and not isinstance(models, kt.HyperModel):
        models = engine.FunctionHyperModel(models)
    if isinstance(models, kt.HyperModel):
        if fixed or tiny or training or tune:
            raise ValueError("`fixed`, `tiny`, `training` and `tune` apply to zoo models, not to a given HyperModel.")
        return models
    return make_hypermodel(models, data=data, fixed=fixed, tiny=tiny, training=training, tune=tune)


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
    return known


def _announce(hypermodel, *, directory, algorithm, space, objective, direction, max_trials, epochs, max_seconds, role,
              notes):
    names = (getattr(hypermodel, "models", None) or getattr(hypermodel, "variants", None)
             or [hypermodel.name or type(hypermodel).__name__])
    print(f"[tune] {directory}: {algorithm} search over {', '.join(map(str, names))} | {len(space.space)} "
          f"hyperparameters | {objective} ({direction}) | max_trials={max_trials} epochs={epochs}"
          + (f" max_seconds={max_seconds:g}" if max_seconds is not None else "") + f" | {role}", flush=True)
    for note in notes:
        print(f"[tune] {note}", flush=True)


def _write_report(result, data, project_name, notes):
    from tuning.report import write_report

    try:
        return write_report(result.records, os.path.join(result.directory, "report"), title=f"Search: {project_name}",
                            provenance=data.provenance() if hasattr(data, "provenance") else None,
                            run_dir=result.directory)
    except Exception as e:  # noqa: BLE001 - a report problem must not fail a finished search
        notes.append(f"report not written: {type(e).__name__}: {e}")
        warnings.warn(f"tuning.report.write_report failed: {e}", stacklevel=2)
        return None
