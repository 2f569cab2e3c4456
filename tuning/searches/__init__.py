"""Searches: :func:`search` and its parts, one module per job.

- ``api``: :func:`search` itself and its argument checks;
- ``result``: :class:`SearchResult` and :func:`load_search` (the records, read back);
- ``state``: the manifest, records repair, KerasTuner's cache;
- ``engine``: KerasTuner (oracles with a deadline, replay, the tuner loop, the chief): the one module
  that touches KerasTuner's private API;
- ``runner``: one trial for the tuner, its record and progress line.
"""

import importlib
import importlib.util

from tuning.searches.state import ALGORITHMS, MANIFEST_FILE, RECORDS_FILE

# Imported on first use (PEP 562), so that the light modules (``state``) load without KerasTuner.
_ATTRIBUTES = {
    **dict.fromkeys(("search",), "tuning.searches.api"),
    **dict.fromkeys(("SearchResult", "load_search"), "tuning.searches.result"),
}

__all__ = ["ALGORITHMS", "MANIFEST_FILE", "RECORDS_FILE", "SearchResult", "load_search", "search"]


def __getattr__(name):
    if name not in _ATTRIBUTES:
        return _submodule(name)
    value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    globals()[name] = value
    return value


def _submodule(name):
    # Every submodule is an attribute, as when this package imported them all.
    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
