"""tuning: searches, comparisons and reports over the zoo, all built on one trial record.

The functions ``tuning.search``, ``tuning.compare``, ``tuning.pareto`` and ``tuning.hypervolume`` live
in modules of other names, so that every submodule is importable by its name:
``tuning.searches`` (the search package), ``tuning.comparison``, ``tuning.objectives``,
``tuning.constraints``, ``tuning.fronts``, ``tuning.indicators``, ``tuning.trial``, ``tuning.records``,
``tuning.report``, ``tuning.hypermodels``, ``tuning.diagnosis``, ``tuning.manifest``, ``tuning.settings``.

Example:
    >>> import tuning, zoo.data
    >>> result = tuning.search("mlp", data=zoo.data.load("moons"), training=zoo.training.TrainingConfig(epochs=2),
    ...                        budget=3, directory="runs/s1")
    >>> tuning.pareto(result.records, maximize="val_accuracy", minimize=("params", "fit_seconds"))
"""

from zoo._lazy import lazy_attributes

# Public name -> the module that defines it. Imported on first use (PEP 562): `import tuning.report` or
# `import tuning.records` must not pull in the searches (KerasTuner) or the comparison (Keras).
_ATTRIBUTES = {
    **dict.fromkeys(("Comparison", "compare"), "tuning.comparison"),
    **dict.fromkeys(("CONSTRAINT_FIELDS", "apply_constraints", "check_constraints"), "tuning.constraints"),
    **dict.fromkeys(("best_under", "knee_point", "pareto"), "tuning.fronts"),
    **dict.fromkeys(("default_reference", "hypervolume", "hypervolume_history"), "tuning.indicators"),
    **dict.fromkeys(("append_record", "latest_records", "new_record", "read_records"), "tuning.records"),
    "write_report": "tuning.report",
    **dict.fromkeys(("SearchResult", "load_search", "search"), "tuning.searches"),
    **dict.fromkeys(("ALGORITHMS", "Bayesian", "Grid", "Hyperband", "NSGA2", "Random"), "tuning.searches.algorithms"),
    **dict.fromkeys(("Budget", "RunOptions"), "tuning.settings"),
    **dict.fromkeys(("SearchSpace", "TrainingSpace"), "tuning.spaces"),
    **dict.fromkeys(("TrialPlan", "run_trial"), "tuning.trial"),
    **dict.fromkeys(("read_manifest",), "tuning.manifest"),
    "environment": "zoo.runtime",
}

__all__ = [
    "ALGORITHMS",
    "Bayesian",
    "Budget",
    "CONSTRAINT_FIELDS",
    "Comparison",
    "Grid",
    "Hyperband",
    "NSGA2",
    "Random",
    "RunOptions",
    "SearchResult",
    "SearchSpace",
    "TrainingSpace",
    "TrialPlan",
    "append_record",
    "apply_constraints",
    "best_under",
    "check_constraints",
    "compare",
    "comparison",
    "constraints",
    "default_reference",
    "diagnosis",
    "environment",
    "fronts",
    "hypermodels",
    "hypervolume",
    "hypervolume_history",
    "indicators",
    "knee_point",
    "latest_records",
    "load_search",
    "manifest",
    "new_record",
    "objectives",
    "pareto",
    "read_manifest",
    "read_records",
    "records",
    "report",
    "run_trial",
    "search",
    "searches",
    "settings",
    "spaces",
    "trial",
    "write_report",
]


__getattr__, __dir__ = lazy_attributes(__name__, _ATTRIBUTES, __all__)
