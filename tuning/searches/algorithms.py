"""Search algorithms as objects that hold their own settings (as Optuna's samplers do).

``tuning.search(..., algorithm=NSGA2(population_size=8, pruning="median"))``; a name (``"random"``) stands
for the algorithm with its defaults. :func:`tuning.searches.engine.make_oracle` turns one into KerasTuner's
oracle; nothing here imports KerasTuner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tuning.searches.pruning import MedianPruner, check_pruning
from zoo.utils import check_int

__all__ = ["ALGORITHMS", "Bayesian", "Grid", "Hyperband", "NSGA2", "Random", "SearchAlgorithm", "coerce_algorithm"]


@dataclass(frozen=True)
class SearchAlgorithm:
    """Base of the algorithms. ``pruning``: ``"median"`` (or a :class:`MedianPruner`) stops a trial whose
    first objective trails the median of the completed trials at the same epoch; its record is ``pruned``
    and never ranked."""

    name = ""
    multi_objective = False  # searches the Pareto front of several objectives itself
    pruning: str | MedianPruner | None = None

    def checked(self, *, objective, max_trials) -> SearchAlgorithm:
        """This algorithm with its settings checked against the search's first ``objective`` and budget
        (its pruner made): a new object; raises a clear error first."""
        return replace(self, pruning=check_pruning(self.pruning, algorithm=self.name, monitor=objective))

    def describe(self) -> dict:
        """The settings that make two searches the same (the run manifest's ``algorithm``)."""
        return {"name": self.name, "pruning": self.pruning.describe() if self.pruning is not None else None}


@dataclass(frozen=True)
class Random(SearchAlgorithm):
    """Random search (KerasTuner's ``RandomSearch`` oracle)."""

    name = "random"


@dataclass(frozen=True)
class Grid(SearchAlgorithm):
    """Every combination of the (discrete) space, in order (KerasTuner's ``GridSearch`` oracle)."""

    name = "grid"


@dataclass(frozen=True)
class Bayesian(SearchAlgorithm):
    """Gaussian-process Bayesian optimisation (KerasTuner's oracle); ``num_initial_points`` random trials
    first (``None``: KerasTuner's default, 3 per hyperparameter)."""

    name = "bayesian"
    num_initial_points: int | None = None

    def describe(self) -> dict:
        return {**super().describe(), "num_initial_points": self.num_initial_points}

    def checked(self, **kwargs):
        check_int("num_initial_points", self.num_initial_points, allow_none=True)
        return super().checked(**kwargs)


@dataclass(frozen=True)
class Hyperband(SearchAlgorithm):
    """Hyperband (Li et al. 2018; KerasTuner's oracle): ``factor`` is its reduction factor; the search's
    ``epochs`` its largest budget. It stops trials by its own schedule, so it takes no pruning."""

    name = "hyperband"
    factor: int = 3

    def describe(self) -> dict:
        return {**super().describe(), "factor": self.factor}

    def checked(self, **kwargs):
        check_int("factor", self.factor, minimum=2)
        return super().checked(**kwargs)


@dataclass(frozen=True)
class NSGA2(SearchAlgorithm):
    """NSGA-II (Deb et al. 2002; :mod:`tuning.searches.nsga2`) over 2 or 3 objectives:
    ``population_size`` trials per generation (``None``: a fifth of ``max_trials``, 4 to 50)."""

    name = "nsga2"
    multi_objective = True
    population_size: int | None = None

    def describe(self) -> dict:
        return {**super().describe(), "population_size": self.population_size}

    def checked(self, *, objective, max_trials):
        from tuning.searches.nsga2 import default_population

        check_int("population_size", self.population_size, minimum=2, allow_none=True)
        filled = replace(self, population_size=self.population_size or default_population(max_trials))
        return SearchAlgorithm.checked(filled, objective=objective, max_trials=max_trials)


ALGORITHMS = {cls.name: cls for cls in (Random, Hyperband, Bayesian, Grid, NSGA2)}


def coerce_algorithm(algorithm) -> SearchAlgorithm:
    """An algorithm object from a name (its defaults) or an object."""
    if isinstance(algorithm, str):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"`algorithm` must be one of {list(ALGORITHMS)} or a tuning algorithm object. "
                             f"Received: algorithm={algorithm!r}")
        return ALGORITHMS[algorithm]()
    if isinstance(algorithm, SearchAlgorithm) and type(algorithm) is not SearchAlgorithm:
        return algorithm
    raise TypeError(f"`algorithm` must be a name such as 'random' or an object such as tuning.NSGA2(). "
                    f"Received: algorithm={algorithm!r}")
