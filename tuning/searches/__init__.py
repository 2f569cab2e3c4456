"""Searches: :func:`search` and its parts, one module per job.

- ``api``: :func:`search` itself and its argument checks;
- ``result``: :class:`SearchResult` and :func:`load_search` (the records, read back);
- ``algorithms``: the algorithms as objects holding their settings (:class:`NSGA2` ...);
- ``state``: the manifest checked against the search asked for, records repair, KerasTuner's cache;
- ``engine``: KerasTuner (oracles with a deadline, replay, the tuner loop, the chief): the one module
  that touches KerasTuner's private API;
- ``runner``: one trial for the tuner, its record and progress line.
"""

from zoo._lazy import lazy_attributes

# Imported on first use (PEP 562), so that the light modules (``algorithms``) load without KerasTuner.
_ATTRIBUTES = {
    **dict.fromkeys(("search",), "tuning.searches.api"),
    **dict.fromkeys(("SearchResult", "load_search"), "tuning.searches.result"),
}

__all__ = ["SearchResult", "load_search", "search"]


__getattr__, __dir__ = lazy_attributes(__name__, _ATTRIBUTES, __all__)
