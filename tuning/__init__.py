"""tuning: searches, comparisons and reports over the zoo, all built on one trial record.

``tuning.search``, ``tuning.pareto`` and ``tuning.compare`` are the functions of
the modules of the same names (``from tuning.search import add_cli_parser``
reaches the rest of a module).

Example:
    >>> import tuning, zoo.data
    >>> result = tuning.search("mlp", data=zoo.data.load("moons"), max_trials=3, epochs=2, directory="runs/s1")
    >>> tuning.pareto(result.records, maximize="val_accuracy", minimize=("params", "fit_seconds"))
"""

from tuning import diagnosis, hypermodels, records, report, trial
from tuning.compare import compare
from tuning.pareto import CONSTRAINT_FIELDS, apply_constraints, best_under, knee_point, pareto
from tuning.records import append_record, environment, new_record, read_records
from tuning.report import write_report
from tuning.search import SearchResult, load_search, search
from tuning.trial import run_trial

__all__ = [
    "CONSTRAINT_FIELDS",
    "SearchResult",
    "append_record",
    "apply_constraints",
    "best_under",
    "compare",
    "diagnosis",
    "environment",
    "hypermodels",
    "knee_point",
    "load_search",
    "new_record",
    "pareto",
    "read_records",
    "records",
    "report",
    "run_trial",
    "search",
    "trial",
    "write_report",
]
