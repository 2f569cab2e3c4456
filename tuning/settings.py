"""The settings objects of a run: its budget and how it runs (files kept, resume, isolation, output).

Training settings live in :class:`zoo.training.TrainingConfig` and the search algorithm's in its own object
(:mod:`tuning.searches.algorithms`); :func:`tuning.search` and :func:`tuning.compare` take these objects
instead of long parameter lists, check them once, and hand them on unchanged.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

from zoo.utils import check_int

__all__ = ["AUTO_ISOLATION_SECONDS", "AUTO_ISOLATION_TRIALS", "Budget", "RunOptions", "SAVE_MODELS"]

# "auto": a search keeps its Pareto front's models, a comparison the best seed of each configuration.
SAVE_MODELS = ("auto", "pareto", "best", "all", None)
ISOLATION = (None, "process", "auto")
# "auto" isolates a search of at least this many trials (or of at least AUTO_ISOLATION_SECONDS with no trial
# count): a reused worker costs no measurable time a trial (benchmarks/trial_memory.py: 40 trials in 37 s
# isolated, 38 s in one process) and turns a trial that kills its process (a native crash, the out-of-memory
# killer) into one failed record instead of the end of the search.
AUTO_ISOLATION_TRIALS = 20
AUTO_ISOLATION_SECONDS = 600


@dataclass(frozen=True)
class Budget:
    """How much a search may spend.

    Attributes:
        max_trials: trials in the whole search, recorded ones included (``None``: until the grid or
            Hyperband schedule, or ``max_seconds``, ends it).
        max_seconds: wall-clock budget of one call; no trial starts after it.
        executions: trainings per trial (seeds ``seed``, ``seed + 1``...), metrics averaged.

    Example:
        >>> Budget(max_trials=20, max_seconds=3600)
    """

    max_trials: int | None = 10
    max_seconds: float | None = None
    executions: int = 1

    def __post_init__(self):
        check_int("max_trials", self.max_trials, allow_none=True)
        check_int("executions", self.executions)
        seconds = self.max_seconds
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, numbers.Real)
                                    or not 0 <= seconds < float("inf")):
            raise ValueError(f"`max_seconds` must be a number >= 0 or None. Received: max_seconds={seconds!r}")

    @classmethod
    def coerce(cls, budget) -> Budget:
        """A Budget from a Budget, an int (``max_trials``) or ``None`` (no trial limit)."""
        if isinstance(budget, cls):
            return budget
        if budget is None or isinstance(budget, int) and not isinstance(budget, bool):
            return cls(max_trials=budget)
        raise TypeError(f"`budget` must be a tuning.Budget or a number of trials. Received: budget={budget!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunOptions:
    """How a comparison or search runs and what it keeps: one object, the same for both.

    Attributes:
        resume: reuse what a run folder already holds (completed trials; a search's oracle state).
            ``False`` starts over; earlier records are kept as ``records.jsonl.<time>.bak``.
        save_models: ``"auto"`` (a search keeps the models of its Pareto front, a comparison the best
            seed of each configuration), ``"pareto"`` (searches), ``"best"``, ``"all"`` or ``None``:
            ``<run>/models/ID.keras`` with a JSON card beside it, referenced from the record.
        checkpoint: leave a checkpoint after each epoch, so that a killed run resumes its running trial
            from its last finished epoch (the record notes ``resumed_from_epoch``).
        log_dir: TensorBoard scalars and a ``log.csv`` per trial in ``log_dir/ID``.
        report: write the report at the end.
        measure_speed: time batch-1 latency and throughput after training (needed by latency constraints), once
            per architecture, batch size and precision: later trials of one copy its figures (``speed_from_seed``
            in a comparison, ``speed_from_trial`` in a search).
        speed_iterations: timed batches for the latency (a third of them for the throughput); ``None``: 5 in a
            search (many trials), 10 in a comparison (one timing per model).
        isolation: ``"process"`` runs each trial in a worker process of :class:`tuning.isolation.WorkerPool`
            (reused for many trials, replaced when it has grown); ``None`` trains in this process; ``"auto"``
            (default): a search of at least 20 trials (or 10 minutes with no trial count) runs isolated when
            its inputs can be sent to a worker (data from ``zoo.data.load``, models and callbacks that pickle;
            else in this process, with a note); shorter searches and comparisons train in this process.
        callbacks: extra Keras callbacks for every trial (picklable with ``isolation`` or ``workers``).
        workers: this many trials at a time on this machine, in worker processes of the one
            :class:`tuning.isolation.WorkerPool`, each on its own GPU(s) when there are some (on a CPU they share
            its cores, with the same records as one at a time). A search becomes the chief of as many KerasTuner workers
            (:mod:`tuning.searches.workers`); a comparison times each model's speed alone first, then trains its
            trials side by side. ``None``: one trial at a time.
        verbose: 0 silent, 1 one line per trial, 2 also Keras' line per epoch.

    Example:
        >>> RunOptions(save_models="all", log_dir="runs/logs", verbose=2)
    """

    resume: bool = True
    save_models: str | None = "auto"
    checkpoint: bool = True
    log_dir: str | None = None
    report: bool = True
    measure_speed: bool = True
    speed_iterations: int | None = None
    isolation: str | None = "auto"
    callbacks: tuple = ()
    workers: int | None = None
    verbose: int = 1

    def __post_init__(self):
        for name in ("resume", "checkpoint", "report", "measure_speed"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be True or False. Received: {name}={getattr(self, name)!r}")
        if self.save_models not in SAVE_MODELS:
            raise ValueError(f"`save_models` must be one of {list(SAVE_MODELS)}. "
                             f"Received: save_models={self.save_models!r}")
        if self.isolation not in ISOLATION:
            raise ValueError(f"`isolation` must be None, 'process' or 'auto'. Received: isolation={self.isolation!r}")
        check_int("speed_iterations", self.speed_iterations, allow_none=True)
        check_int("workers", self.workers, minimum=1, maximum=256, allow_none=True)
        check_int("verbose", self.verbose, minimum=0, maximum=2)
        if self.log_dir is not None and not isinstance(self.log_dir, str):
            object.__setattr__(self, "log_dir", str(self.log_dir))  # a pathlib.Path
        if not isinstance(self.callbacks, (list, tuple)):
            raise TypeError(f"`callbacks` must be a list of Keras callbacks. Received: callbacks={self.callbacks!r}")
        object.__setattr__(self, "callbacks", tuple(self.callbacks))

    def kept(self, kind) -> str | None:
        """Which trained models a run of ``kind`` (``"search"`` or ``"comparison"``) keeps."""
        if self.save_models == "auto":
            return "pareto" if kind == "search" else "best"
        if kind == "comparison" and self.save_models == "pareto":
            raise ValueError("A comparison keeps 'best', 'all' or None of its models. Received: save_models='pareto'")
        return self.save_models

    def iterations(self, kind) -> int:
        """Timed batches for the latency in a run of ``kind``."""
        return self.speed_iterations or (5 if kind == "search" else 10)

    @property
    def fit_verbose(self) -> int:
        """Keras' ``fit`` verbosity: a line per epoch at ``verbose=2``."""
        return 2 if self.verbose >= 2 else 0
