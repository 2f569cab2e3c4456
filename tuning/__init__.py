"""tuning: searches, comparisons and reports over the zoo, all built on one trial record.

Example:
    >>> import tuning, zoo.data
    >>> result = tuning.search("mlp", data=zoo.data.load("moons"), max_trials=3, epochs=2, directory="runs/s1")
    >>> tuning.pareto(result.records, maximize="val_accuracy", minimize=("params", "fit_seconds"))

``tuning.search``, ``tuning.pareto`` and ``tuning.compare`` are modules that can
be called like their main function, so both ``tuning.search(...)`` and
``tuning.search.add_cli_parser`` work. Heavy modules (KerasTuner, Keras) load
on first use: ``import tuning`` alone stays cheap.
"""

from __future__ import annotations

import importlib
import sys
import types

# Submodules that can be called as their function of the same name.
_CALLABLE = ("search", "pareto", "compare")


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


def _callable_module(name):
    """Make the module ``name`` callable as its function of the same (last) name."""
    module = sys.modules[name]
    if type(module) is types.ModuleType:
        module.__class__ = _CallableModule
    return module


class _Package(types.ModuleType):
    # The import system sets `tuning.<sub>` when a submodule loads, whichever way it is imported:
    # the callable ones are made callable at that moment.
    def __setattr__(self, name, value):
        if name in _CALLABLE and type(value) is types.ModuleType and value.__name__ == f"{__name__}.{name}":
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

from tuning import pareto, records  # noqa: E402  (light: no Keras)
from tuning.pareto import CONSTRAINT_FIELDS, apply_constraints, best_under, knee_point  # noqa: E402
from tuning.records import append_record, environment, new_record, read_records  # noqa: E402

_callable_module("tuning.pareto")

# name -> (module, attribute or None for the module itself), imported on first access
_LAZY = {
    "search": ("tuning.search", None),
    "SearchResult": ("tuning.search", "SearchResult"),
    "load_search": ("tuning.search", "load_search"),
    "add_cli_parser": ("tuning.search", "add_cli_parser"),
    "hypermodels": ("tuning.hypermodels", None),
    "FamilyHyperModel": ("tuning.hypermodels", "FamilyHyperModel"),
    "ArchitectureHyperModel": ("tuning.hypermodels", "ArchitectureHyperModel"),
    "TrainingSpace": ("tuning.hypermodels", "TrainingSpace"),
    "make_hypermodel": ("tuning.hypermodels", "make_hypermodel"),
    "family_hypermodels": ("tuning.hypermodels", "family_hypermodels"),
    "trial": ("tuning.trial", None),
    "run_trial": ("tuning.trial", "run_trial"),
    "compare": ("tuning.compare", None),
    "report": ("tuning.report", None),
    "write_report": ("tuning.report", "write_report"),
    "diagnosis": ("tuning.diagnosis", None),
}

__all__ = [
    "CONSTRAINT_FIELDS",
    "append_record",
    "apply_constraints",
    "best_under",
    "environment",
    "knee_point",
    "new_record",
    "pareto",
    "read_records",
    "records",
    *_LAZY,
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
