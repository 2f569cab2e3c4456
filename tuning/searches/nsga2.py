"""NSGA-II over a KerasTuner search space: a multi-objective oracle that looks for the Pareto front itself.

KerasTuner's own "multi-objective" search adds its objectives into one number
(``MultiObjective``); this oracle keeps them apart (Deb et al. 2002, "A fast
and elitist multiobjective genetic algorithm: NSGA-II"):

* Generations of ``population_size`` trials, by trial index: trial ``i``
  belongs to generation ``i // population_size``. Generation 0 samples the
  space at random. The parents of generation ``g`` are the survivors of
  generation ``g - 1``'s parents and children (elitist selection: constrained
  non-dominated sorting, then crowding distance).
* Constraint domination: a feasible trial beats an infeasible one; of two
  infeasible trials the one that breaks its bounds by less wins
  (``constraint_violation``, the summed relative excess over each bound). A
  failed or pruned trial has no objectives and takes no part.
* Variation in KerasTuner's own coordinates: every ``Int``/``Float`` is
  mapped to [0, 1] by ``value_to_prob`` (so log sampling and steps are
  honoured) and crossed with simulated binary crossover, then mutated by
  polynomial mutation; ``Choice``/``Boolean`` values are inherited from either
  parent and resampled by mutation; ``Fixed`` stays. Conditional scopes are
  followed: a value that is inactive in the child is dropped, a newly active
  one comes from the parent that has it or is sampled.
* Deterministic and resumable: trial ``i``'s proposal is drawn from a
  generator seeded by ``(seed, i)`` and depends only on the outcomes of the
  earlier generations, so a search replayed from ``records.jsonl`` proposes
  exactly what the uninterrupted search would have. In chief/worker mode a
  generation starts from the trials of earlier generations that have ended.

The pure parts (:func:`crowding_distance`, :func:`survivors`, with
:func:`tuning.objectives.non_dominated_fronts`) work on plain tuples and are tested on their own.
"""

from __future__ import annotations

import json
import math

import keras_tuner as kt
import numpy as np

from tuning.constraints import CONSTRAINT_FIELDS
from tuning.objectives import minimised, non_dominated_fronts
from tuning.records import finite

__all__ = ["NSGA2Oracle", "VIOLATION", "configuration_key", "constraint_violation", "crowding_distance",
           "default_population", "outcome", "survivors"]

VIOLATION = "constraint_violation"  # the metric an infeasible trial reports to the oracle
ETA_CROSSOVER = 15.0  # SBX distribution index (Deb's suggestion for real-coded GAs)
ETA_MUTATION = 20.0  # polynomial mutation distribution index
_MAX_DRAWS = 32  # proposals tried before a duplicate-free one is given up on


def default_population(max_trials) -> int:
    """Trials per generation: a fifth of the budget, between 4 and 50 (Optuna's default is 50)."""
    if max_trials is None:
        return 20
    return int(min(50, max(4, max_trials // 5)))


def constraint_violation(record) -> float:
    """How far an infeasible record is over its bounds: the sum of ``value / bound - 1`` over the broken ones
    (``value - bound`` for a bound <= 0); 1.0 when the record says it is infeasible but not by how much."""
    total = 0.0
    for name, bound in (record.get("constraints") or {}).items():
        value = record.get(CONSTRAINT_FIELDS.get(name, ""))
        if finite(value) and finite(bound) and value > bound:
            total += value / bound - 1.0 if bound > 0 else value - bound
    return total if total > 0 else 1.0


def outcome(record, objectives):
    """What a record tells the oracle: ``{name: value}`` of every objective for a completed record with
    all of them finite, ``{VIOLATION: amount}`` for an infeasible one, ``None`` otherwise (failed, pruned)."""
    status = record.get("status")
    if status == "completed":
        values = {name: record.get(name) for name, _ in objectives}
        if all(finite(v) and not math.isnan(v) for v in values.values()):
            return {name: float(v) for name, v in values.items()}
        return None
    if status == "infeasible":
        return {VIOLATION: constraint_violation(record)}
    return None


def crowding_distance(points, front) -> dict:
    """``{index: distance}`` for the members of one front: boundary points get infinity."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for m in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: (points[i][m], i))
        low, high = points[ordered[0]][m], points[ordered[-1]][m]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for k in range(1, len(ordered) - 1):
            distance[ordered[k]] += (points[ordered[k + 1]][m] - points[ordered[k - 1]][m]) / (high - low)
    return distance


def survivors(individuals, size) -> list:
    """NSGA-II survival under constraint domination.

    Args:
        individuals: ``(key, point, violation)`` triples; ``point`` is a tuple of minimised objectives
            (``None`` for an infeasible individual), ``violation`` is 0 for a feasible one.
        size: how many survive.

    Returns:
        ``(key, rank, crowding)`` for the survivors, best first: feasible fronts by rank (the last
        one admitted cut by crowding distance), then infeasible individuals by violation.
    """
    feasible = [ind for ind in individuals if ind[2] == 0 and ind[1] is not None]
    infeasible = sorted((ind for ind in individuals if not (ind[2] == 0 and ind[1] is not None)),
                        key=lambda ind: ind[2])
    points = [ind[1] for ind in feasible]
    chosen = []
    for rank, front in enumerate(non_dominated_fronts(points)):
        distance = crowding_distance(points, front)
        ordered = sorted(front, key=lambda i: -distance[i])  # stable: ties keep trial order
        for i in ordered[:size - len(chosen)]:
            chosen.append((feasible[i][0], rank, distance[i]))
        if len(chosen) >= size:
            return chosen
    rank = len(chosen) and chosen[-1][1] + 1
    for ind in infeasible[:size - len(chosen)]:
        chosen.append((ind[0], rank, -ind[2]))  # one rank after the feasible ones, less violation first
    return chosen


def _sbx(x1, x2, rng):
    """One child of simulated binary crossover in [0, 1]."""
    if abs(x1 - x2) < 1e-14:
        return x1
    u = rng.random()
    beta = (2 * u) ** (1 / (ETA_CROSSOVER + 1)) if u <= 0.5 else (1 / (2 * (1 - u))) ** (1 / (ETA_CROSSOVER + 1))
    sign = 1 if rng.random() < 0.5 else -1
    return 0.5 * ((1 + sign * beta) * x1 + (1 - sign * beta) * x2)


def _polynomial_mutation(x, rng):
    u = rng.random()
    delta = (2 * u) ** (1 / (ETA_MUTATION + 1)) - 1 if u < 0.5 else 1 - (2 * (1 - u)) ** (1 / (ETA_MUTATION + 1))
    return x + delta


def _clip(u):
    return min(max(u, 0.0), 1.0 - 1e-12)  # prob_to_value takes [0, 1)


def _seed(rng):
    return int(rng.integers(2**31 - 1))


def configuration_key(values) -> str:
    """Values as JSON for duplicate checks, floats to 12 significant digits: a value that went through
    ``value_to_prob``/``prob_to_value`` (a log scale, a step) can come back one unit in the last place off."""
    rounded = {k: float(f"{v:.12g}") if isinstance(v, float) else v for k, v in values.items()}
    return json.dumps(rounded, sort_keys=True, default=str)


class NSGA2Oracle(kt.Oracle):
    """NSGA-II as a KerasTuner oracle (see the module docstring).

    Args:
        objective: ``[kt.Objective(name, direction), ...]`` (two or more), as KerasTuner's oracles take them.
        population_size: trials per generation (see :func:`default_population`).
        max_trials, seed, hyperparameters, ...: as for every KerasTuner oracle.

    Every completed trial reports all objectives (``oracle.update_trial(id, {name: value, ...})``);
    an infeasible one reports only ``{"constraint_violation": amount}`` and ends ``FAILED`` (KerasTuner's
    check that every objective was reported is relaxed for it by :class:`tuning.searches.engine.MultiObjectiveOracle`,
    the oracle searches use).
    """

    def __init__(self, objective, *, population_size=None, **kwargs):
        objectives = [kt.Objective(o.name, o.direction) for o in objective]
        if len(objectives) < 2:
            raise ValueError(f"NSGA-II needs two or more objectives. Received: objective={objective!r}")
        super().__init__(objective=objectives, **kwargs)
        self.objectives = [(o.name, o.direction) for o in objectives]
        self.population_size = int(population_size or default_population(kwargs.get("max_trials")))
        self._keys = {}  # trial_id -> its values as JSON, for duplicate checks
        self._parents = {}  # generation -> survivors, once every trial before that generation has ended

    def score_trial(self, trial):
        # KerasTuner's weighted sum (``MultiObjective.get_value``), for its own displays only: the
        # search never ranks by it
        values = {name: trial.metrics.get_last_value(name) for name, _ in self.objectives}
        trial.score = self.objective.get_value(values)
        trial.best_step = 0

    def populate_space(self, trial_id):
        index = int(trial_id)
        rng = np.random.default_rng([self.seed, index])
        parents = self.parents(index // self.population_size)
        tried = self._tried(trial_id)
        for _ in range(_MAX_DRAWS):
            values = self._child(parents, rng) if len(parents) >= 2 else self._sample(rng)
            if configuration_key(values) not in tried:
                return {"status": "RUNNING", "values": values}
        for _ in range(_MAX_DRAWS):  # the generation is stuck on known points: explore
            values = self._sample(rng)
            if configuration_key(values) not in tried:
                return {"status": "RUNNING", "values": values}
        return {"status": "STOPPED", "values": None}  # the space looks exhausted

    def _tried(self, trial_id):
        """The value sets of the other trials (cached: a trial's values do not change once proposed)."""
        for key, trial in self.trials.items():
            if key not in self._keys and key != trial_id:
                self._keys[key] = configuration_key(trial.hyperparameters.values)
        return {value for key, value in self._keys.items() if key != trial_id}

    # --- selection -------------------------------------------------------------------------------
    def _individual(self, trial):
        """``(trial_id, point, violation)`` of an ended trial, or ``None`` when it takes no part."""
        metrics = trial.metrics
        if trial.status == "COMPLETED" and all(metrics.exists(name) for name, _ in self.objectives):
            point = minimised([metrics.get_last_value(n) for n, _ in self.objectives], [d for _, d in self.objectives])
            if all(math.isfinite(p) for p in point):
                return trial.trial_id, point, 0.0
        if trial.status == "FAILED" and metrics.exists(VIOLATION):
            return trial.trial_id, None, float(metrics.get_last_value(VIOLATION))
        return None

    def _generation(self, g):
        """The trials of generation ``g`` (by index), and whether all of them have ended."""
        start, stop = g * self.population_size, (g + 1) * self.population_size
        members = [t for t in self.trials.values() if t.trial_id.isdigit() and start <= int(t.trial_id) < stop]
        ended = len(members) == self.population_size and all(
            t.status in ("COMPLETED", "FAILED", "INVALID") for t in members)
        return members, ended

    def parents(self, generation) -> list:
        """The survivors ``(trial_id, rank, crowding)`` that breed generation ``generation``."""
        if generation <= 0:
            return []
        if generation in self._parents:
            return self._parents[generation]
        previous = self.parents(generation - 1)
        members, ended = self._generation(generation - 1)
        pool = [self._individual(self.trials[key]) for key, _, _ in previous]
        pool += [self._individual(t) for t in sorted(members, key=lambda t: int(t.trial_id))]
        chosen = survivors([ind for ind in pool if ind is not None], self.population_size)
        if ended and (generation == 1 or generation - 1 in self._parents):
            self._parents[generation] = chosen  # final: later trials cannot change it
        return chosen

    # --- variation -------------------------------------------------------------------------------
    def _sample(self, rng):
        hps = kt.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = hp.random_sample(_seed(rng))
        return hps.values

    def _tournament(self, parents, rng):
        a, b = rng.choice(len(parents), size=2, replace=False)
        pa, pb = parents[a], parents[b]
        return pa if (pa[1], -pa[2]) <= (pb[1], -pb[2]) else pb

    def _child(self, parents, rng):
        first = self._tournament(parents, rng)
        second = self._tournament(parents, rng)
        v1 = self.trials[first[0]].hyperparameters.values
        v2 = self.trials[second[0]].hyperparameters.values
        tunable = [hp for hp in self.hyperparameters.space if not isinstance(hp, kt.engine.hyperparameters.Fixed)]
        mutation = 1.0 / max(1, len(tunable))
        hps = kt.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if not hps.is_active(hp):
                continue
            a, b = v1.get(hp.name), v2.get(hp.name)
            if isinstance(hp, kt.engine.hyperparameters.Fixed):
                value = hp.value
            elif a is None and b is None:
                value = hp.random_sample(_seed(rng))
            elif a is None or b is None:
                value = a if b is None else b
            elif isinstance(hp, (kt.engine.hyperparameters.Int, kt.engine.hyperparameters.Float)):
                start = u = hp.value_to_prob(a)
                if rng.random() < 0.5:  # each variable crosses with probability 1/2 (Deb & Agrawal's SBX)
                    u = _sbx(u, hp.value_to_prob(b), rng)
                if rng.random() < mutation:
                    u = _polynomial_mutation(u, rng)
                # unchanged by variation: the parent's exact value (the round trip can move it one ulp)
                value = a if u == start else hp.prob_to_value(_clip(u))
            else:  # Choice, Boolean: one parent's value, or a fresh one
                value = a if rng.random() < 0.5 else b
                if rng.random() < mutation:
                    value = hp.random_sample(_seed(rng))
            hps.values[hp.name] = value
        return hps.values
