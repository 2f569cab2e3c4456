"""The result view of a search: its records and the selections made from them (no training).

Failed, infeasible and pruned trials are kept and counted; only completed ones are ranked, enter a
front or add to a hypervolume.
"""

from __future__ import annotations

import dataclasses
import math
import os

from tuning.artifacts import load_saved_model
from tuning.fronts import best_under, knee_point, pareto
from tuning.indicators import default_reference, hypervolume
from tuning.manifest import RECORDS_FILE, objectives_of, read_manifest
from tuning.objectives import front_fields, objective_fields
from tuning.records import latest_records, read_records
from tuning.trial import objective_value

__all__ = ["SearchResult", "load_search"]


@dataclasses.dataclass
class SearchResult:
    """The records of a search and the selections made from them.

    Attributes:
        directory: the search directory (``records.jsonl``, ``run.json``, KerasTuner state).
        records: one record per trial (latest per id), ordered by trial id.
        objective, direction: what the oracle optimised (``"max"`` or ``"min"``).
        manifest: the search manifest (a multi-objective search lists its ``objectives`` there).
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
    def pruned(self) -> list:
        """Trials stopped early by a pruner: kept and counted, never ranked."""
        return self._status("pruned")

    @property
    def objectives(self) -> list:
        """``[(name, "max" | "min"), ...]``: the manifest's ``objectives`` when it has several, else the
        search objective and ``("params", "min")``."""
        return front_fields(objectives_of(self.manifest) if self.manifest.get("objectives")
                            else [(self.objective, self.direction)])

    def default_reference(self, objectives=None) -> tuple:
        """The reference point :meth:`hypervolume` uses when given none
        (:func:`tuning.indicators.default_reference`)."""
        return default_reference(self.records, objectives or self.objectives)

    def hypervolume(self, objectives=None, reference=None) -> float:
        """The exact hypervolume of the completed trials (:func:`tuning.hypervolume`, 1 to 3 objectives).

        Args:
            objectives: ``[(name, "max" | "min"), ...]``; default :attr:`objectives`.
            reference: the reference point in the objectives' units; default :meth:`default_reference`
                (0 for an accuracy-like maximised field, 1.1 x the largest observed cost): state it
                with the value, since hypervolumes compare only under the same reference.

        Returns:
            the hypervolume; 0.0 when no completed trial has every objective (and no reference is given).

        Example:
            >>> result.hypervolume(), result.default_reference()
            >>> result.hypervolume([("val_accuracy", "max"), ("latency_ms", "min")], reference=(0.0, 10.0))
        """
        objectives = objective_fields(objectives or self.objectives, arg="objectives")
        if reference is None:
            try:
                reference = default_reference(self.records, objectives)
            except ValueError:  # no completed trial with every objective: nothing dominates anything
                return 0.0
        return hypervolume(self.records, fields=objectives, reference=reference)

    def dataframe(self):
        """The records as a ``pandas.DataFrame``, one row per trial (pandas is optional: ``pip install pandas``).

        Columns: the records' scalar fields (``id``, ``model``, ``status``, ``error``, metrics, costs, ...)
        and one ``hp/NAME`` column per hyperparameter (lists become tuples); nested fields such as
        ``history``, ``host`` and ``versions`` stay in :attr:`records`.

        Raises:
            ImportError: pandas is not installed.
        """
        try:
            import pandas
        except ImportError:
            raise ImportError("SearchResult.dataframe() needs pandas, which is not installed: "
                              "pip install pandas") from None
        rows = []
        for record in self.records:
            row = {k: v for k, v in record.items() if v is None or isinstance(v, (str, int, float, bool))}
            for name, value in (record.get("hyperparameters") or {}).items():
                row[f"hp/{name}"] = tuple(value) if isinstance(value, list) else value
            rows.append(row)
        return pandas.DataFrame(rows)

    @property
    def best(self):
        """The best record: the same as :attr:`best_record` (as on :class:`tuning.comparison.Comparison`)."""
        return self.best_record

    @property
    def best_record(self):
        """The completed record with the best finite objective (``None`` if there is none).

        A tie goes to the record better on the search's other :attr:`objectives`, in their order, then to the
        earlier trial: the best record is always on the Pareto front, whose models ``save_models="pareto"`` keeps.
        """
        pool = [r for r in self.records if objective_value(r, self.objective) is not None]
        if not pool:
            return None
        order = [(self.objective, self.direction), *(p for p in self.objectives if p[0] != self.objective)]

        def rank(record):  # smaller is better; a missing or non-finite value is the worst
            values = (objective_value(record, name) for name, _ in order)
            return tuple(math.inf if v is None else -v if d == "max" else v for v, (_, d) in zip(values, order))

        return min(pool, key=rank)

    def _objectives(self, maximize, minimize):
        """(maximize, minimize) names: the search's :attr:`objectives` when neither is given (a single
        objective with ``params``), else the objective plus ``minimize`` (default ``("params",)``)."""
        if maximize is None and minimize is None:
            pairs = self.objectives
            return tuple(n for n, d in pairs if d == "max"), tuple(n for n, d in pairs if d == "min")
        if minimize is None:
            minimize = ("params",)
        if maximize is None:
            maximize = (self.objective,) if self.direction == "max" else ()
        if self.direction == "min" and self.objective not in (minimize or ()):
            minimize = (self.objective, *(minimize or ()))
        return maximize, minimize

    def load(self, record_id, *, compile=True):
        """The trained model a trial saved (see ``save_models``), checked against its record's SHA-256;
        :class:`tuning.artifacts.ModelFileError` names the file when it is missing, altered or not kept."""
        record = next((r for r in self.records if str(r.get("id")) == str(record_id)), None)
        if record is None:
            raise ValueError(f"No trial {record_id!r} in {self.directory}. Trials: {[r.get('id') for r in self.records]}")
        return load_saved_model(self.directory, record, compile=compile)

    def load_best(self, *, compile=True):
        """The best trial's saved model (by the objective)."""
        if self.best_record is None:
            raise ValueError(f"No completed trial in {self.directory}")
        return self.load(self.best_record["id"], compile=compile)

    def pareto(self, *, maximize=None, minimize=None) -> list:
        """Non-dominated completed records (see :func:`tuning.pareto`): by default over the search's
        :attr:`objectives` (a single objective and ``params``), else the objective plus ``minimize``."""
        maximize, minimize = self._objectives(maximize, minimize)
        return pareto(self.records, maximize=maximize, minimize=minimize)

    def knee(self, *, maximize=None, minimize=None):
        """The knee of the Pareto front (see :func:`tuning.knee_point`)."""
        maximize, minimize = self._objectives(maximize, minimize)
        return knee_point(self.records, maximize=maximize, minimize=minimize)

    def best_under(self, **constraints):
        """The best completed record under upper bounds, e.g. ``best_under(max_params=1e5)``."""
        return best_under(self.records, objective=self.objective, direction=self.direction, **constraints)

    def summary(self, *, minimize=None) -> str:
        """A few lines: counts, the best trial and the Pareto front."""
        lines = [
            f"{len(self.records)} trials in {self.directory}: {len(self.completed)} completed, "
            f"{len(self.failed)} failed, {len(self.infeasible)} infeasible"
            + (f", {len(self.pruned)} pruned" if self.pruned else "")
        ]
        best = self.best_record
        lines.append("best: " + (_describe(best, self.objective) if best else f"none (no finite {self.objective})"))
        front = self.pareto(minimize=minimize)
        if front:
            maximize, minimize = self._objectives(None, minimize)
            fields = [self.objective, *[m for m in (*maximize, *minimize) if m != self.objective]]
            lines.append(f"Pareto front ({', '.join(fields)}):")
            for r in sorted(front, key=lambda r: r.get(fields[1], 0) if len(fields) > 1 else 0):
                lines.append("  " + _describe(r, self.objective, extra=fields[1:]))
        try:
            objectives, reference = self.objectives, self.default_reference()
            lines.append(f"hypervolume {self.hypervolume(objectives, reference):.6g} of "
                         f"({', '.join(f'{n} {d}' for n, d in objectives)}), reference point "
                         f"({', '.join(f'{v:.6g}' for v in reference)})")
        except ValueError:  # no completed trial with every objective, or more than 3 objectives
            pass
        for r in self.failed[:5]:
            lines.append(f"failed trial {r['id']} ({r.get('model')}): {r.get('error')}")
        if len(self.failed) > 5:
            lines.append(f"... and {len(self.failed) - 5} more failed trials")
        return "\n".join(lines)

    def __repr__(self):
        best = self.best_record
        shown = f"{self.objective}={best[self.objective]:.4g} (trial {best['id']})" if best else "none"
        return (f"SearchResult(directory={self.directory!r}, trials={len(self.records)}, "
                f"completed={len(self.completed)}, failed={len(self.failed)}, "
                f"infeasible={len(self.infeasible)}, " + (f"pruned={len(self.pruned)}, " if self.pruned else "")
                + f"best={shown})")


def fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def _describe(record, objective, extra=("params", "fit_seconds")) -> str:
    parts = [f"trial {record['id']}", str(record.get("model")), f"{objective}={fmt(record.get(objective))}"]
    parts += [f"{f}={fmt(record.get(f))}" for f in extra if f != objective and record.get(f) is not None]
    return "  ".join(parts)


def load_search(directory, *, objective=None, direction=None) -> SearchResult:
    """Read a search directory back (no training): its records and manifest.

    Example:
        >>> result = load_search("runs/s1"); result.pareto()
    """
    directory = os.fspath(directory)
    records = latest_records(read_records(os.path.join(directory, RECORDS_FILE)))
    manifest = read_manifest(directory, records=records) or {}
    first = objectives_of(manifest)[0] if manifest.get("objectives") else ("val_accuracy", "max")
    return SearchResult(directory=directory, records=records, objective=objective or first[0],
                        direction=direction or first[1], manifest=manifest)
