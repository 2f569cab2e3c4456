"""Reports from trial records: Markdown, self-contained HTML, CSV/JSON and matplotlib plots.

Shared by :func:`tuning.compare` and the searches. A report is a pure function
of the records (plus an optional title, provenance and command line, kept in
``report_meta.json``), so ``zoo report RUN_DIR`` regenerates the same files
without retraining anything.

Records are grouped by ``model`` and ``hyperparameters``: each group is one
row, summarised as mean ± sample standard deviation over its completed
records (seeds). Its loss curves get a diagnosis (:mod:`tuning.diagnosis`).

Files written to ``out_dir``: ``report.md``, ``report.html`` (plots embedded
as base64 data URIs: it opens in a browser with no server and no other file),
``results.csv``, ``results.json``, ``report_meta.json`` and ``plots/*.png``.

Modules: :mod:`~tuning.report.summary` (groups, summary rows, primary metric,
confusion matrix), :mod:`~tuning.report.plots` (curves, trade-offs, confusion matrix),
:mod:`~tuning.report.search_plots` (a search's history, hypervolume, parallel coordinates, importance,
slices), :mod:`~tuning.report.render`
(the Markdown/HTML document) and :mod:`~tuning.report.write` (the report's
sections and files, :func:`regenerate`, :func:`format_summary`).
"""

from __future__ import annotations

from tuning.report.plots import MAX_CURVE_GROUPS, plot_confusion_matrix, plot_curves, plot_tradeoff
from tuning.report.summary import (
    SUMMARY_FIELDS,
    confusion_matrix,
    group_records,
    primary_metric,
    summarize_records,
)
from tuning.report.write import META_FILE, format_summary, regenerate, write_report

__all__ = [
    "SUMMARY_FIELDS",
    "META_FILE",
    "MAX_CURVE_GROUPS",
    "group_records",
    "primary_metric",
    "summarize_records",
    "write_report",
    "regenerate",
    "format_summary",
    "plot_curves",
    "plot_confusion_matrix",
    "plot_tradeoff",
    "confusion_matrix",
]
