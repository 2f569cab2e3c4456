"""Multi-objective search: the package's NSGA-II oracle against random search, KerasTuner's weighted sum and Optuna.

Four methods, at equal numbers of trials, over several seeds (issue 15):

* ``nsga2``: :class:`tuning.searches.nsga2.NSGA2Oracle` (``tuning.search(algorithm="nsga2")``);
* ``random``: KerasTuner's ``RandomSearchOracle`` (``tuning.search(algorithm="random")``);
* ``weighted_sum``: KerasTuner's own "multi-objective" search, ``BayesianOptimizationOracle`` given a list of
  objectives, which it adds into one number (``MultiObjective.get_value``: the sum of the minimised ones minus
  the sum of the maximised ones, unscaled). Its first ``population_size`` trials are random (KerasTuner's
  default, three per hyperparameter, would leave a 30-trial search with no Gaussian-process step);
* ``optuna_nsga2``: Optuna's ``NSGAIISampler`` with the same population size (Optuna's defaults otherwise:
  uniform crossover, mutation by resampling).

Two workloads:

* ``zdt``: ZDT1 and ZDT2 (Zitzler, Deb & Thiele 2000), two objectives, ``--zdt-variables`` variables in [0, 1]
  (30 in the standard definition: at the budgets KerasTuner's Gaussian process affords, 200-300 trials, every
  method's front stays above the reference point there, so the default is 5), evaluated without training:
  :func:`tuning.searches.engine.drive` for the KerasTuner oracles, ``study.optimize`` for Optuna. Hypervolume
  under the reference point (1.1, 1.1), and as a fraction of the true front's (ZDT1 0.8767, ZDT2 0.5433).
* ``search``: a real search, ``mlp`` on the embedded ``digits`` (8x8), objectives ``val_accuracy`` (max) and
  ``params`` (min). Every method runs through ``tuning.search``, so every trial is built, trained, evaluated and
  recorded by the same code; the weighted sum and the Optuna sampler are injected as oracles (see
  :func:`injected_oracle`). One reference point for every run of the workload: ``tuning.indicators.default_reference``
  over the union of all methods' and seeds' records, i.e. (0, 1.1 x the largest model's params). The table's
  figure is the hypervolume as a fraction of the box between that point and the ideal (accuracy 1, 0 params).

Seed ``s`` (0, 1, ...) seeds every oracle and sampler with ``s + 1`` (KerasTuner reads 0 as "no seed") and a
search's weight initialisation with ``s``. Seconds are each run's wall clock (the oracle's own work included:
the Gaussian process dominates the weighted sum's ZDT time).

Optuna is never a dependency of the package (``pip install keras-zoo[benchmark]``; CI never installs it):
``--optuna-path DIR`` appends a ``pip install --target DIR optuna`` folder to ``sys.path``. Without Optuna the
Optuna rows are skipped, with a note.

Run:
    python benchmarks/multiobjective.py --optuna-path /tmp/optuna_pkgs --jobs 2 \
        --out benchmarks/results/multiobjective.json     # 1 h 51 min on 2 cores, mostly the weighted sum's ZDT
    python benchmarks/multiobjective.py --quick --out /tmp/multiobjective.json      # 1 seed, tiny budgets: a smoke run

Results go to ``--out`` only (nothing tracked is overwritten unless named), stamped with the machine, backend and
library versions.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_tuner as kt  # noqa: E402

from tuning.indicators import default_reference, hypervolume  # noqa: E402
from tuning.searches import engine  # noqa: E402
from tuning.searches.nsga2 import NSGA2Oracle, configuration_key, outcome  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402

METHODS = ("nsga2", "random", "weighted_sum", "optuna_nsga2")
PROBLEMS = ("zdt1", "zdt2")
ZDT_REFERENCE = (1.1, 1.1)
# Area dominated by the true front (f1 in [0, 1], g = 1) under (1.1, 1.1): the integral of 1.1 - f2 over [0, 1]
# plus the strip f1 in [1, 1.1].
ZDT_TRUE_HYPERVOLUME = {"zdt1": 0.1 + 2 / 3 + 0.11, "zdt2": 0.1 + 1 / 3 + 0.11}
SEARCH_OBJECTIVES = [("val_accuracy", "max"), ("params", "min")]
# The ideal point of the search workload, for the normalised hypervolume: perfect accuracy, no weights.
SEARCH_IDEAL = (1.0, 0.0)

FULL = dict(seeds=5, zdt_trials=200, zdt_population=20, search_trials=30, search_population=6, search_epochs=2)
QUICK = dict(seeds=1, zdt_trials=30, zdt_population=10, search_trials=8, search_population=4, search_epochs=1)


# --- Optuna ------------------------------------------------------------------------------------------------------
def import_optuna(path):
    """Optuna, or ``None`` when it cannot be imported. ``path`` goes to the *end* of ``sys.path``: a
    ``pip install --target`` folder carries its own NumPy, which must not shadow the environment's."""
    if path and os.path.abspath(path) not in sys.path:
        sys.path.append(os.path.abspath(path))
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def optuna_distribution(optuna, hp):
    """The Optuna distribution of one KerasTuner hyperparameter (``None`` for ``Fixed``)."""
    hps = kt.engine.hyperparameters
    if isinstance(hp, hps.Fixed):
        return None
    if isinstance(hp, hps.Boolean):
        return optuna.distributions.CategoricalDistribution([False, True])
    if isinstance(hp, hps.Choice):
        return optuna.distributions.CategoricalDistribution(list(hp.values))
    log = hp.sampling in ("log", "reverse_log")  # Optuna has no reverse-log scale: log is the closest
    if isinstance(hp, hps.Int):
        return optuna.distributions.IntDistribution(hp.min_value, hp.max_value, log=log,
                                                    step=1 if log else (hp.step or 1))
    if isinstance(hp, hps.Float):
        return optuna.distributions.FloatDistribution(hp.min_value, hp.max_value, log=log,
                                                      step=None if log else hp.step)
    raise TypeError(f"No Optuna distribution for {type(hp).__name__} {hp.name!r}")


def make_optuna_oracle_class(optuna):
    class OptunaOracle(kt.Oracle):
        """Optuna's ``NSGAIISampler`` as a KerasTuner oracle, through Optuna's ask-and-tell interface.

        Each trial asks the study for every declared hyperparameter (``study.ask`` with fixed distributions;
        values inactive under a conditional scope are asked but not used) and tells it the trial's objectives
        when it ends, or that it failed.
        """

        def __init__(self, objective, *, population_size, seed, **kwargs):
            super().__init__(objective=objective, seed=seed, **kwargs)
            self.objectives = [(o.name, o.direction) for o in objective]
            self.study = optuna.create_study(
                directions=["maximize" if d == "max" else "minimize" for _, d in self.objectives],
                sampler=optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed))
            self._asked = {}  # trial_id -> Optuna trial

        def populate_space(self, trial_id):
            distributions = {}
            for hp in self.hyperparameters.space:
                distribution = optuna_distribution(optuna, hp)
                if distribution is not None:
                    distributions[hp.name] = distribution
            asked = self._asked[trial_id] = self.study.ask(distributions)
            hps = kt.HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if hps.is_active(hp):
                    hps.values[hp.name] = asked.params[hp.name] if hp.name in distributions else hp.value
            return {"status": "RUNNING", "values": hps.values}

        score_trial = NSGA2Oracle.score_trial  # KerasTuner's weighted sum, for its own displays only

        @kt.synchronized
        def end_trial(self, trial):
            asked = self._asked.pop(trial.trial_id, None)
            if asked is not None:
                metrics = self.trials[trial.trial_id].metrics
                if trial.status == "COMPLETED" and all(metrics.exists(n) for n, _ in self.objectives):
                    self.study.tell(asked, [metrics.get_last_value(n) for n, _ in self.objectives])
                else:
                    self.study.tell(asked, state=optuna.trial.TrialState.FAIL)
            super().end_trial(trial)

    return OptunaOracle


# --- oracles of each method -----------------------------------------------------------------------------------
def make_method_oracle(method, *, objectives, max_trials, seed, hyperparameters, population_size, optuna=None,
                       bayesian_class=kt.oracles.BayesianOptimizationOracle):
    """The KerasTuner oracle of ``method`` for seed index ``seed`` (KerasTuner reads seed 0 as "no seed")."""
    objective = [kt.Objective(name, direction) for name, direction in objectives]
    common = dict(max_trials=max_trials, seed=seed + 1, hyperparameters=hyperparameters, max_retries_per_trial=0,
                  max_consecutive_failed_trials=sys.maxsize)
    if method == "nsga2":
        return NSGA2Oracle(objective, population_size=population_size, **common)
    if method == "random":
        return kt.oracles.RandomSearchOracle(objective=objective, **common)
    if method == "weighted_sum":
        return bayesian_class(objective=objective, num_initial_points=population_size, **common)
    if method == "optuna_nsga2":
        return make_optuna_oracle_class(optuna)(objective, population_size=population_size, **common)
    raise ValueError(f"Unknown method {method!r}")


# --- workload A: ZDT ------------------------------------------------------------------------------------------
def zdt(problem, values, variables):
    """``{"f1": ..., "f2": ...}`` of ZDT1 (convex front f2 = 1 - sqrt(f1)) or ZDT2 (concave, f2 = 1 - f1^2)."""
    x = [values[f"x{i}"] for i in range(variables)]
    g = 1 + 9 * sum(x[1:]) / (variables - 1)
    h = 1 - math.sqrt(x[0] / g) if problem == "zdt1" else 1 - (x[0] / g) ** 2
    return {"f1": x[0], "f2": g * h}


def zdt_space(variables):
    hp = kt.HyperParameters()
    for i in range(variables):
        hp.Float(f"x{i}", 0.0, 1.0)
    return hp


def run_zdt(task):
    """One (problem, method, seed) run: its hypervolume at (1.1, 1.1) and its seconds. Runs in a worker too."""
    problem, method, seed, variables, trials, population, optuna_path = task
    optuna = import_optuna(optuna_path) if method == "optuna_nsga2" else None
    start = time.perf_counter()
    if method == "optuna_nsga2":
        study = optuna.create_study(directions=["minimize", "minimize"],
                                    sampler=optuna.samplers.NSGAIISampler(population_size=population, seed=seed + 1))
        study.optimize(lambda t: tuple(zdt(problem, {f"x{i}": t.suggest_float(f"x{i}", 0.0, 1.0)
                                                     for i in range(variables)}, variables).values()),
                       n_trials=trials)
        points = [tuple(t.values) for t in study.trials if t.values is not None]
    else:
        oracle = make_method_oracle(method, objectives=[("f1", "min"), ("f2", "min")], max_trials=trials, seed=seed,
                                    hyperparameters=zdt_space(variables), population_size=population)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the Gaussian process' convergence warnings, hundreds of them
            ended = engine.drive(oracle, lambda values: zdt(problem, values, variables))
        points = [(t.metrics.get_last_value("f1"), t.metrics.get_last_value("f2")) for t in ended
                  if t.status == "COMPLETED"]
    seconds = time.perf_counter() - start
    volume = hypervolume(points, reference=ZDT_REFERENCE) if points else 0.0
    return {"problem": problem, "method": method, "seed": seed, "hypervolume": volume,
            "fraction_of_true_front": volume / ZDT_TRUE_HYPERVOLUME[problem], "trials": len(points),
            "seconds": round(seconds, 2)}


def optuna_oracle_check(optuna, variables, trials, population):
    """The Optuna oracle (used by the search workload) run by ``engine.drive`` on ZDT1, seed 0, against
    ``study.optimize``: the same sampler and seed, so the same hypervolume is expected."""
    oracle = make_method_oracle("optuna_nsga2", objectives=[("f1", "min"), ("f2", "min")], max_trials=trials,
                                seed=0, hyperparameters=zdt_space(variables), population_size=population,
                                optuna=optuna)
    ended = engine.drive(oracle, lambda values: zdt("zdt1", values, variables))
    through_oracle = hypervolume([(t.metrics.get_last_value("f1"), t.metrics.get_last_value("f2")) for t in ended],
                                 reference=ZDT_REFERENCE)
    direct = run_zdt(("zdt1", "optuna_nsga2", 0, variables, trials, population, None))["hypervolume"]
    return {"problem": "zdt1", "seed": 0, "hypervolume_through_oracle": through_oracle,
            "hypervolume_study_optimize": direct, "same": math.isclose(through_oracle, direct, rel_tol=1e-9)}


def zdt_workload(*, methods, seeds, variables, trials, population, optuna_path, jobs):
    tasks = [(p, m, s, variables, trials, population, optuna_path) for p in PROBLEMS for s in range(seeds)
             for m in methods]
    runs = []
    if jobs > 1:
        import concurrent.futures
        import multiprocessing

        # spawn, not fork: the parent has TensorFlow's thread pools
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for run in pool.map(run_zdt, tasks):
                runs.append(run)
                _print_run("zdt", run)
    else:
        for task in tasks:
            runs.append(run_zdt(task))
            _print_run("zdt", runs[-1])
    problems = {}
    for problem in PROBLEMS:
        mine = [r for r in runs if r["problem"] == problem]
        problems[problem] = {"true_front_hypervolume": ZDT_TRUE_HYPERVOLUME[problem],
                             "methods": summarise(mine, methods, "hypervolume", "fraction_of_true_front")}
    return {"reference": list(ZDT_REFERENCE), "variables": variables, "trials": trials,
            "population_size": population, "seeds": seeds, "jobs": jobs, "problems": problems, "runs": runs}


# --- workload B: a real search --------------------------------------------------------------------------------
@contextlib.contextmanager
def injected_oracle(oracle, objectives):
    """Benchmark-only monkeypatch: run ``tuning.search``'s very trial path under another oracle.

    ``tuning.search`` creates its oracle with ``engine.make_oracle`` and tells it each trial's outcome with
    ``engine.trial_metrics`` (which gives every objective to NSGA-II only). For the length of one search both
    are replaced: ``oracle`` is used, and told every one of ``objectives`` (plus KerasTuner's weighted sum,
    which its multi-objective oracles expect). Nothing of the package is changed outside this block.
    """
    make, metrics = engine.make_oracle, engine.trial_metrics

    def trial_metrics(oracle, record, objective_name):
        told = outcome(record, objectives)
        if told and hasattr(oracle.objective, "name_to_direction"):
            told[oracle.objective.name] = oracle.objective.get_value(told)
        return told

    engine.make_oracle = lambda *args, **kwargs: oracle
    engine.trial_metrics = trial_metrics
    try:
        yield oracle
    finally:
        engine.make_oracle, engine.trial_metrics = make, metrics


def run_search(method, *, seed, data, trials, population, epochs, optuna):
    import tuning
    from zoo.training import TrainingConfig

    settings = dict(data=data, objectives=SEARCH_OBJECTIVES, budget=trials, training=TrainingConfig(epochs=epochs),
                    seed=seed, options=tuning.RunOptions(verbose=0, report=False, measure_speed=False,
                                                         save_models=None, checkpoint=False))
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        if method in ("nsga2", "random"):
            algorithm = tuning.NSGA2(population_size=population) if method == "nsga2" else tuning.Random()
            result = tuning.search("mlp", directory=directory, algorithm=algorithm, **settings)
        else:
            # hyperparameters=None, as tuning.search gives its own oracles: the tuner declares the space
            oracle = make_method_oracle(method, objectives=SEARCH_OBJECTIVES, max_trials=trials, seed=seed,
                                        hyperparameters=None, population_size=population, optuna=optuna,
                                        bayesian_class=engine.BayesianOracle)
            with injected_oracle(oracle, SEARCH_OBJECTIVES):
                # the (temporary) manifest names the weighted sum "bayesian" and the Optuna oracle "random"
                if method == "weighted_sum":
                    result = tuning.search("mlp", directory=directory, **settings,
                                           algorithm=tuning.Bayesian(num_initial_points=population))
                else:
                    result = tuning.search("mlp", directory=directory, algorithm="random", **settings)
        seconds = time.perf_counter() - start
    records = [dict(r, method=method, seed=seed) for r in result.records]
    return {"method": method, "seed": seed, "seconds": round(seconds, 2), "records": records}


def search_workload(*, methods, seeds, trials, population, epochs, optuna):
    import zoo.data

    data = zoo.data.load("digits", image_size=8)
    runs = []
    for seed in range(seeds):
        for method in methods:
            run = run_search(method, seed=seed, data=data, trials=trials, population=population, epochs=epochs,
                             optuna=optuna)
            runs.append(run)
            print(f"[search] {method:<13} seed {seed}: {len(run['records'])} trials in {run['seconds']:.0f} s",
                  flush=True)
    everything = [r for run in runs for r in run["records"]]
    reference = default_reference(everything, SEARCH_OBJECTIVES)
    box = math.prod(abs(i - r) for i, r in zip(SEARCH_IDEAL, reference))
    rows = []
    for run in runs:
        records = run["records"]
        completed = [r for r in records if r.get("status") == "completed"]
        volume = hypervolume(records, reference=reference, fields=SEARCH_OBJECTIVES)
        rows.append({"method": run["method"], "seed": run["seed"], "hypervolume": volume,
                     "fraction_of_box": volume / box, "trials": len(records), "completed": len(completed),
                     "repeats": repeats(records),
                     "best_val_accuracy": max((r["val_accuracy"] for r in completed), default=None),
                     "seconds": run["seconds"]})
        _print_run("search", rows[-1])
    compact = [{k: r.get(k) for k in ("method", "seed", "id", "status", "val_accuracy", "params", "fit_seconds",
                                      "hyperparameters")} for r in everything]
    return {"reference": list(reference),
            "reference_rule": "tuning.indicators.default_reference over every method's and seed's records",
            "ideal": list(SEARCH_IDEAL), "box_volume": box, "model": "mlp", "data": "digits (8x8)",
            "objectives": SEARCH_OBJECTIVES, "trials": trials, "population_size": population, "epochs": epochs,
            "seeds": seeds, "methods": summarise(rows, methods, "hypervolume", "fraction_of_box", "repeats"),
            "runs": rows, "records": compact}


def repeats(records):
    """Trials whose hyperparameters repeat an earlier trial's of the same search, compared as the oracle compares
    them (:func:`tuning.searches.nsga2.configuration_key`: floats to 12 significant digits)."""
    seen, count = set(), 0
    for record in records:
        key = configuration_key(record.get("hyperparameters") or {})
        count += key in seen
        seen.add(key)
    return count


# --- summary --------------------------------------------------------------------------------------------------
def summarise(runs, methods, *fields):
    """Per method: median, min and max of each field over the seeds, and the median seconds."""
    out = {}
    for method in methods:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        entry = {"seeds": len(mine), "median_seconds": round(statistics.median(r["seconds"] for r in mine), 2)}
        for field in fields:
            values = [r[field] for r in mine]
            entry[field] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        out[method] = entry
    return out


def goal(workloads):
    """The issue's goal per workload/problem: NSGA-II's median hypervolume >= Optuna's and > random's."""
    verdicts = {}
    groups = {f"zdt/{p}": v["methods"] for p, v in workloads.get("zdt", {}).get("problems", {}).items()}
    if "search" in workloads:
        groups["search"] = workloads["search"]["methods"]
    for name, methods in groups.items():
        median = {m: v["hypervolume"]["median"] for m, v in methods.items()}
        if "nsga2" not in median:
            continue
        verdicts[name] = {
            "nsga2_at_least_optuna": median["nsga2"] >= median["optuna_nsga2"] if "optuna_nsga2" in median else None,
            "nsga2_above_random": median["nsga2"] > median["random"] if "random" in median else None,
        }
    return verdicts


def _print_run(workload, run):
    where = run.get("problem", workload)
    share = run.get("fraction_of_true_front", run.get("fraction_of_box"))
    print(f"[{workload}] {where:<6} {run['method']:<13} seed {run['seed']}: hypervolume {run['hypervolume']:.4g} "
          f"({share:.3f})  {run['seconds']:.1f} s", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--workload", choices=("zdt", "search", "all"), default="all")
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds per method (default {FULL['seeds']})")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 seed and tiny budgets")
    parser.add_argument("--optuna-path", default=None,
                        help="a `pip install --target` folder holding Optuna, appended to sys.path")
    parser.add_argument("--zdt-variables", type=int, default=5, help="ZDT variables (standard: 30; default 5)")
    parser.add_argument("--zdt-trials", type=int, default=None)
    parser.add_argument("--zdt-population", type=int, default=None)
    parser.add_argument("--search-trials", type=int, default=None)
    parser.add_argument("--search-population", type=int, default=None)
    parser.add_argument("--search-epochs", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the ZDT runs (default 1)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"a subset of {','.join(METHODS)}")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)

    notes = []
    optuna = import_optuna(args.optuna_path)
    methods = [m for m in METHODS if m in args.methods.split(",")]
    if not methods or set(args.methods.split(",")) - set(METHODS):
        parser.error(f"--methods takes names from {','.join(METHODS)}. Received: {args.methods}")
    if optuna is None and "optuna_nsga2" in methods:
        methods.remove("optuna_nsga2")
        notes.append("Optuna is not importable (pip install keras-zoo[benchmark], or --optuna-path DIR): "
                     "the optuna_nsga2 rows are skipped")
        print(f"note: {notes[-1]}", flush=True)
    workloads = {}
    began = time.perf_counter()
    if args.workload in ("zdt", "all"):
        workloads["zdt"] = zdt_workload(methods=methods, seeds=sizes["seeds"], variables=args.zdt_variables,
                                        trials=sizes["zdt_trials"], population=sizes["zdt_population"],
                                        optuna_path=args.optuna_path, jobs=args.jobs)
        if "optuna_nsga2" in methods:
            workloads["zdt"]["optuna_oracle_check"] = optuna_oracle_check(
                optuna, args.zdt_variables, sizes["zdt_trials"], sizes["zdt_population"])
    if args.workload in ("search", "all"):
        workloads["search"] = search_workload(methods=methods, seeds=sizes["seeds"], trials=sizes["search_trials"],
                                              population=sizes["search_population"], epochs=sizes["search_epochs"],
                                              optuna=optuna)
    payload = {"benchmark": "multiobjective", "argv": sys.argv[1:] if argv is None else list(argv),
               "quick": args.quick, "methods": methods, "workloads": workloads, "goal": goal(workloads),
               "notes": notes, "seconds": round(time.perf_counter() - began, 1), "environment": environment()}
    if optuna is not None:
        payload["environment"]["versions"]["optuna"] = optuna.__version__
    for name, verdict in payload["goal"].items():
        print(f"goal {name}: {verdict}", flush=True)
    print(f"results: {write_json_atomic(args.out, payload, sort_keys=False)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
