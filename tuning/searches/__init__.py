"""Searches: :func:`search` and its parts, one module per job.

- ``api``: :func:`search` itself and its argument checks;
- ``result``: :class:`SearchResult` and :func:`load_search` (the records, read back);
- ``state``: the manifest, records repair, KerasTuner's cache;
- ``engine``: KerasTuner (oracles with a deadline, replay, the tuner loop, the chief): the one module
  that touches KerasTuner's private API;
- ``runner``: one trial for the tuner, its record and progress line.
"""

from tuning.searches.api import ALGORITHMS, search
from tuning.searches.result import SearchResult, load_search
from tuning.searches.state import MANIFEST_FILE, RECORDS_FILE

__all__ = ["ALGORITHMS", "MANIFEST_FILE", "RECORDS_FILE", "SearchResult", "load_search", "search"]
