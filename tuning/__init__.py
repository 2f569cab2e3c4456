"""tuning: searches, comparisons and reports over the zoo, all built on one trial record.

The functions ``tuning.search``, ``tuning.compare`` and ``tuning.pareto`` live
in modules of other names, so that every submodule is importable by its name:
``tuning.searches`` (the search package), ``tuning.comparison``,
``tuning.fronts``, ``tuning.trial``, ``tuning.records``, ``tuning.report``,
``tuning.hypermodels``, ``tuning.diagnosis``.

Example:
    >>> import tuning, zoo.data
    >>> result = tuning.search("mlp", data=zoo.data.load("moons"), max_trials=3, epochs=2, directory="runs/s1")
    >>> tuning.pareto(result.records, maximize="val_accuracy", minimize=("params", "fit_seconds"))
"""

from zoo._lazy import lazy_attributes

# Public name -> the module that defines it. Imported on first use (PEP 562): `import tuning.report` or
# `import tuning.records` must not pull in the searches (KerasTuner) or the comparison (Keras).
_ATTRIBUTES = {
    **dict.fromkeys(("Comparison", "compare"), "tuning.comparison"),
    **dict.fromkeys(("CONSTRAINT_FIELDS", "apply_constraints", "best_under", "check_constraints", "knee_point",
                     "pareto", "default_reference", "hypervolume", "hypervolume_history"), "tuning.fronts"),
    **dict.fromkeys(("append_record", "latest_records", "new_record", "read_records"), "tuning.records"),
    "write_report": "tuning.report",
    **dict.fromkeys(("ALGORITHMS", "SearchResult", "load_search", "search"), "tuning.searches"),
    "run_trial": "tuning.trial",
    "environment": "zoo.runtime",
}

__all__ = [
    "ALGORITHMS",
    "CONSTRAINT_FIELDS",
    "Comparison",
    "SearchResult",
    "append_record",
    "apply_constraints",
    "best_under",
    "check_constraints",
    "compare",
    "comparison",
    "default_reference",
    "diagnosis",
    "environment",
    "fronts",
    "hypermodels",
    "hypervolume",
    "hypervolume_history",
    "knee_point",
    "latest_records",
    "load_search",
    "new_record",
    "pareto",
    "read_records",
    "records",
    "report",
    "run_trial",
    "search",
    "searches",
    "spaces",
    "trial",
    "write_report",
]


__getattr__, __dir__ = lazy_attributes(__name__, _ATTRIBUTES, __all__)
