"""Writing a report: the document's sections, its files, a rebuild from ``records.jsonl``, a text summary."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shlex

import numpy as np

from tuning.diagnosis import THRESHOLDS, rules
from tuning.indicators import default_reference, hypervolume
from tuning.manifest import RECORDS_FILE, objectives_of, read_json, read_manifest, report_meta
from tuning.manifest import REPORT_META as META_FILE
from tuning.records import finite, latest_records, read_records
from tuning.report import search_plots
from tuning.report.plots import AXES, MAX_CURVE_GROUPS, plot_confusion_matrix, plot_curves, plot_tradeoff
from tuning.report.render import Document
from tuning.report.summary import (
    format_value,
    group_records,
    infer_num_classes,
    pareto_front,
    primary_metric,
    reference_field,
    select_field,
    summarize_records,
)
from zoo.runtime import write_json_atomic


@dataclasses.dataclass
class Report:
    """What :func:`write_report` wrote: its files by kind and its summary rows (one per configuration)."""

    paths: dict
    rows: list


def write_report(records, out_dir, *, title, manifest=None, command=None, selection=None, run_dir=None) -> Report:
    """Write the report of ``records`` to ``out_dir``.

    Args:
        records: trial records (completed, failed, infeasible or pruned), from one or several models and
            hyperparameter settings.
        out_dir: folder for ``report.md``, ``report.html``, ``results.csv``, ``results.json``,
            ``report_meta.json`` and ``plots/``.
        title: first heading.
        manifest: the run manifest (:mod:`tuning.manifest`): the run's kind (a search gets its "Search"
            section), objectives with their directions, data and training settings. Default: the one in
            ``run_dir`` (read, or migrated from an older folder, by :func:`tuning.manifest.read_manifest`).
        command: the command line (``sys.argv``) to show.
        selection: record ids this report is about; kept in ``report_meta.json`` so that :func:`regenerate`
            picks the same records from a ``records.jsonl`` shared with other runs. ``None``: all records.
        run_dir: the run folder: its manifest, and what the records' ``model_path`` is relative to (the
            report links the saved models that are there). Default ``out_dir``.

    Returns:
        a :class:`Report`: ``paths`` (``{kind: path}``) and ``rows``.

    Example:
        >>> report = write_report(read_records("runs/cmp/records.jsonl"), "runs/cmp", title="Comparison")
        >>> report.paths["html"]
        'runs/cmp/report.html'
    """
    records = latest_records(records, sort=False)
    if not records:
        raise ValueError(
            f"No records to report on. Received: {len(records)} records for out_dir={os.fspath(out_dir)!r}")
    out_dir = os.fspath(out_dir)
    run_dir = os.fspath(run_dir or out_dir)
    if manifest is None:
        manifest = read_manifest(run_dir, records=records)
    plot_dir = os.path.join(out_dir, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    rows = summarize_records(records)
    provenance = _provenance(manifest)
    doc, paths = _build_document(records, rows, title=title, provenance=provenance, command=command,
                                 plot_dir=plot_dir, run_dir=run_dir, out_dir=out_dir,
                                 search=search_context(records, manifest))
    # the provenance too, for a folder without a run manifest (written by hand, or before manifests)
    meta = {"title": title, "command": command, "selection": list(selection) if selection is not None else None,
            "provenance": provenance}
    paths.update(_write_files(out_dir, doc, rows, meta))
    return Report(paths=paths, rows=rows)


def _provenance(manifest) -> dict:
    """What produced the records, from the manifest: data, seeds, training settings, models."""
    identity = manifest.get("identity") or {}
    found = {"data": manifest.get("provenance"), "seeds": identity.get("seeds"), "training": identity.get("training"),
             "models": identity.get("models")}
    return {k: v for k, v in found.items() if v is not None}


def _build_document(records, rows, *, title, provenance, command, plot_dir, run_dir, out_dir, search=None):
    """The report's document, and the paths of the plots drawn for it (under ``plot_dir``)."""
    metric, higher = primary_metric(records)
    direction = "max" if higher else "min"
    by_label = {g["label"]: g for g in group_records(records)}
    best = next((r for r in rows if r.get("best")), None)
    doc, paths = Document(), {}
    doc.add("h1", title)
    _overview(doc, records, rows, best, metric)
    _results(doc, rows, metric)
    paths.update(_tradeoffs(doc, rows, metric, direction, plot_dir))
    if search:
        paths.update(_search(doc, records, search, plot_dir))
    paths.update(_curves(doc, rows, by_label, metric, plot_dir))
    _diagnosis(doc, rows, records)
    _saved_models(doc, records, run_dir, out_dir)
    _gradcam(doc, out_dir)
    if best:
        paths.update(_confusion(doc, best, by_label[best["label"]]["records"], provenance, plot_dir))
    failed = [r for r in records if r.get("status") != "completed"]
    if failed:
        doc.add("h2", "Failed, infeasible and pruned trials" if any(r.get("status") == "pruned" for r in failed)
                else "Failed and infeasible trials")
        doc.add("table", ["id", "model", "status", "error"],
                [[r.get("id"), r.get("model"), r.get("status"), str(r.get("error"))[:200]] for r in failed])
    doc.add("h2", "Provenance")
    doc.add("ul", _provenance_items(records, provenance, command))
    return doc, paths


# ----------------------------------------------------------------------------- sections

def _overview(doc, records, rows, best, metric):
    """What was compared, and the best model by the mean validation metric."""
    done = [r for r in records if r.get("status") == "completed"]
    pruned = sum(r.get("status") == "pruned" for r in records)
    datasets = sorted({str(r.get("dataset")) for r in records if r.get("dataset")})
    epochs = sorted({r.get("epochs") for r in records if r.get("epochs")})
    doc.add("p", (
        f"{len(rows)} model configuration(s), {len(records)} trial(s) ({len(done)} completed"
        f"{f', {pruned} pruned' if pruned else ''}) on "
        f"{', '.join(f'`{d}`' for d in datasets) or 'unnamed data'}, {', '.join(map(str, epochs)) or '?'} epoch(s) "
        f"each. Numbers are mean ± sample standard deviation over seeds; a single seed shows no ±."))
    if not best:
        return
    select = select_field(rows, metric).split("_")[0]
    kind = "acc" if metric == "accuracy" else "float"
    details = ", ".join(
        f"{name} {format_value(best.get(f + '_mean'), best.get(f + '_std'), kind=k)}"
        for name, f, k in ((f"validation {metric}", f"val_{metric}", kind), (f"test {metric}", f"test_{metric}", kind),
                           ("parameters", "params", "int"), ("training time (s)", "fit_seconds", "sec"))
        if best.get(f + "_mean") is not None
    )
    doc.add("p", f"Best model by mean {'validation' if select == 'val' else select} {metric}: "
                 f"**{best['label']}**: {details}; loss curves: {best['diagnosis']}.")


def _results(doc, rows, metric):
    """The results table, and each configuration's hyperparameters and record ids."""
    doc.add("h2", "Results")
    header, body = _results_table(rows, metric)
    doc.add("table", header, body)
    doc.add("p", "The same table, unrounded, with the record ids every number comes from: `results.csv`, "
                 "`results.json`. Records: `records.jsonl` (one JSON object per trained model).")
    if any(r["hyperparameters"] for r in rows):
        doc.add("h3", "Configurations")
        doc.add("table", ["model", "hyperparameters / builder arguments", "records"],
                [[r["label"], "`" + json.dumps(r["hyperparameters"], sort_keys=True) + "`",
                  ", ".join(r["record_ids"] + r["failed_ids"])] for r in rows])


def _saved_models(doc, records, run_dir, out_dir):
    """Which trainings stopped early, and links to the saved models that are on disk."""
    stopped = [r for r in records if r.get("stopped_epoch")]
    saved = [r for r in records if r.get("model_path") and os.path.isfile(os.path.join(run_dir, r["model_path"]))]
    if not stopped and not saved:
        return
    doc.add("h2", "Early stopping and saved models")
    if stopped:
        doc.add("p", f"{len(stopped)} training(s) stopped early (no improvement of the monitored validation metric "
                     "for `patience` epochs) and kept the weights of their best epoch: "
                     + ", ".join(f"`{r['id']}` ({r.get('model')}) after epoch {r['stopped_epoch']} of "
                                 f"{r.get('epochs')}, best {r.get('best_epoch')}" for r in stopped) + ".")
    if saved:
        doc.add("p", "Each file loads with `zoo.load_model(path)` (or `keras.saving.load_model` after `import keras, zoo`); "
                     "a JSON card beside it says what it is and how it scored.")
        doc.add("table", ["record", "model", "best epoch", "file"],
                [[r["id"], r.get("model"), r.get("best_epoch") or "",
                  f"[{r['model_path']}]({os.path.relpath(os.path.join(run_dir, r['model_path']), out_dir)})"]
                 for r in saved])


def _gradcam(doc, out_dir):
    """The Grad-CAM figure a comparison drew of its best saved model (``plots/gradcam.png``), if there."""
    meta_path = os.path.join(out_dir, "plots", "gradcam.json")
    if not (os.path.isfile(meta_path) and os.path.isfile(os.path.join(out_dir, "plots", "gradcam.png"))):
        return
    try:
        meta = read_json(meta_path, what="Grad-CAM figure's description")
    except ValueError as e:  # a damaged description: the report goes on without the figure
        doc.add("p", f"The Grad-CAM figure is left out: {e}")
        return
    if not isinstance(meta, dict):
        return
    doc.add("h2", "Where the best model looks (Grad-CAM)")
    doc.add("p", f"Record `{meta.get('record')}` ({meta.get('model')}), its saved model on {meta.get('right')} "
                 f"correctly and {meta.get('wrong')} wrongly classified test images: the class activation map of "
                 "its predicted class over the last convolutional map larger than 1x1 (`zoo.explain.grad_cam`); red "
                 "is where the evidence for that class lies.")
    doc.add("img", "plots/gradcam.png", f"Grad-CAM of {meta.get('model')} on test images")


def _results_table(rows, metric):
    kind = "acc" if metric == "accuracy" else "float"
    have = lambda f: any(r.get(f"{f}_mean") is not None for r in rows)  # noqa: E731
    cols = [(f"val {metric}", f"val_{metric}", kind), (f"test {metric}", f"test_{metric}", kind)]
    if metric != "loss":
        cols.append(("test loss" if have("test_loss") else "val loss",
                     "test_loss" if have("test_loss") else "val_loss", "float"))
    cols += [("params", "params", "int"), ("MACs", "macs", "int"), ("fit s", "fit_seconds", "sec"),
             ("latency ms", "latency_ms", "sec"), ("samples/s", "throughput", "int")]
    cols = [c for c in cols if have(c[1])]
    header = ["model", *[c[0] for c in cols], "seeds", "diagnosis"]
    body = []
    for r in rows:
        mark = " **(best)**" if r.get("best") else ""
        seeds = (f"{r['completed']}" + (f" (+{r['failed']} failed)" if r["failed"] else "")
                 + (f" (+{r['pruned']} pruned)" if r.get("pruned") else ""))
        body.append([f"{r['label']}{mark}",
                     *[format_value(r.get(f"{f}_mean"), r.get(f"{f}_std"), kind=k) for _, f, k in cols],
                     seeds, r["diagnosis"]])
    return header, body


def _tradeoffs(doc, rows, metric, direction, plot_dir) -> dict:
    """One metric-vs-cost plot per recorded cost, and the models on each Pareto front (decided on validation)."""
    y = select_field(rows, metric)
    if not any(r.get(f"{y}_mean") is not None for r in rows):
        return {}
    test = reference_field(rows, metric)
    doc.add("h2", "Size, compute and speed trade-offs")
    paths, fronts = {}, []
    for x in ("params", "macs", "fit_seconds", "latency_ms"):
        if not any(r.get(f"{x}_mean") is not None for r in rows):
            continue
        name = f"{metric}_vs_{x}"
        paths[name] = plot_tradeoff(rows, os.path.join(plot_dir, f"{name}.png"), x=x, y=y, direction=direction,
                                    test=test or False)
        doc.add("img", f"plots/{name}.png", f"{y.replace('_', ' ')} vs {AXES[x][0]}")
        members = [rows[i]["label"] for i in sorted(pareto_front(rows, x, y, direction))]
        fronts.append(f"{AXES[x][0]}: {', '.join(members)}")
    if y.startswith("val_"):
        basis = f"Pareto front computed on validation {metric}" + (
            "; test values shown for reference (hollow grey markers), they never decide a front." if test else ".")
    else:
        basis = f"Pareto front computed on test {metric}: the records have no validation {metric}."
    doc.add("p", f"{basis} Marked in red on each plot: the models that no other model beats on both "
                 f"{y.replace('_', ' ')} and cost (at least as good on both, better on one):")
    doc.add("ul", fronts)
    return paths


# ----------------------------------------------------------------------------- the search section

SLICES = 4  # slice plots of the most important hyperparameters


def search_context(records, manifest):
    """What the report's "Search" section needs, from the run manifest; ``None`` for a comparison.

    The objectives are the manifest's; a single one is followed by ``("params", "min")`` when the records
    have ``params`` (a size-accuracy front).

    Returns:
        ``{"objectives": [(name, direction), ...], "source": str, "algorithm": str}`` or ``None``.
    """
    if manifest.get("kind") != "search":
        return None
    found = objectives_of(manifest)
    if len(found) == 1 and found[0][0] != "params" and any(finite(r.get("params")) for r in records):
        found.append(("params", "min"))
    algorithm = ", ".join(sorted({str(r["algorithm"]) for r in records if r.get("algorithm")})) or (
        str(((manifest.get("identity") or {}).get("algorithm") or {}).get("name") or "unnamed"))
    source = (f"from {manifest['migrated_from']}, an older run folder" if manifest.get("migrated_from")
              else "from the run manifest")
    return {"objectives": found, "source": source, "algorithm": algorithm}


def _search(doc, records, context, plot_dir) -> dict:
    """The "Search" section: optimisation and hypervolume history, parallel coordinates, importance, slices."""
    objectives, records = context["objectives"], search_plots.trial_order(records)
    objective, direction = objectives[0]
    counts = {s: sum(r.get("status") == s for r in records) for s in ("completed", "failed", "infeasible", "pruned")}
    doc.add("h2", "Search")
    doc.add("p", f"{context['algorithm']} search, {len(records)} trial(s): "
                 + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + ". Only completed trials are ranked, enter a front or add to the hypervolume; failed, "
                 "infeasible and pruned ones keep their own markers. Objectives ("
                 + context["source"] + "): " + ", ".join(f"`{n}` ({d})" for n, d in objectives) + ".")
    paths = {}

    def draw(name, plot, caption, *args, **kwargs):
        paths[name] = plot(*args, os.path.join(plot_dir, f"{name}.png"), **kwargs)
        doc.add("img", f"plots/{name}.png", caption)

    draw("search_history", search_plots.plot_history, f"{objective} per trial, best so far in red", records,
         objective=objective, direction=direction)
    paths.update(_hypervolume(doc, records, objectives, plot_dir))
    table = search_plots.hyperparameter_table(records, objective=objective)
    if not table["names"]:
        doc.add("p", "No hyperparameter takes more than one value in the completed trials: no parallel "
                     "coordinates, importance or slices.")
        return paths
    try:
        importances = search_plots.hyperparameter_importance(records, objective=objective)
    except ValueError as e:
        importances, why = None, str(e)
    # the parallel coordinates keep to the most important hyperparameters: a dozen axes are unreadable
    ranked = [name for name, _, _ in importances] if importances else table["names"]
    axes = ranked[:search_plots.MAX_AXES]
    which = ("" if len(axes) == len(ranked) else
             f" ({'the most important' if importances else 'the first'} {len(axes)} of {len(ranked)} "
             "hyperparameters)")
    draw("search_parallel", search_plots.plot_parallel_coordinates,
         f"hyperparameters of each completed trial{which}, coloured by {objective}", records, objective=objective,
         direction=direction, names=axes)
    if which:
        doc.add("p", f"Parallel coordinates of {', '.join(f'`{n}`' for n in axes)}: {which.strip(' ()')} (by "
                     + ("the importance below" if importances else "the order the trials name them")
                     + f"); left out: {', '.join(f'`{n}`' for n in ranked[len(axes):])}.")
    if importances is None:
        top = table["names"][:SLICES]
        doc.add("p", f"No hyperparameter importance: {why}. Slices of the first {len(top)} hyperparameter(s):")
    else:
        top = [name for name, _, _ in importances[:SLICES]]
        doc.add("p", f"Hyperparameter importance: how much a random forest's R² in predicting `{objective}` from "
                     f"the hyperparameters of the {len(table['records'])} completed trials drops when one of them "
                     "is shuffled (scikit-learn permutation importance, mean ± std over 8 shuffles, fixed seed). "
                     "Slices of the most important ones follow.")
        draw("search_importance", search_plots.plot_importance, "hyperparameter importance", importances,
             objective=objective)
    draw("search_slices", search_plots.plot_slices, f"{objective} against {', '.join(top)}", records, names=top,
         objective=objective, direction=direction)
    return paths


def _hypervolume(doc, records, objectives, plot_dir) -> dict:
    """The hypervolume of the completed trials, its stated reference point and its history (2-3 objectives)."""
    names = ", ".join(f"`{n}` ({d})" for n, d in objectives)
    if len(objectives) > 3:
        doc.add("p", f"No hypervolume: it is computed exactly for up to 3 objectives, not {len(objectives)}.")
        return {}
    try:
        reference = default_reference(records, objectives)
    except ValueError:
        doc.add("p", f"No hypervolume: no completed trial has finite values of {names}.")
        return {}
    value = hypervolume(records, fields=objectives, reference=reference)
    shown = ", ".join(f"{v:.6g}" for v in reference)
    doc.add("p", f"Hypervolume of the completed trials over {names}: **{value:.6g}**, reference point ({shown}) "
                 "(`tuning.default_reference`: 0 for a maximised score within [0, 1], else the worst observed "
                 "value moved 10% further, e.g. 1.1 × the largest `params`). Hypervolumes compare only under "
                 "the same reference point.")
    path = search_plots.plot_hypervolume_history(records, os.path.join(plot_dir, "search_hypervolume.png"),
                                                 objectives=objectives, reference=reference)
    doc.add("img", "plots/search_hypervolume.png", "hypervolume of the completed trials so far")
    return {"search_hypervolume": path}


def _curves(doc, rows, by_label, metric, plot_dir) -> dict:
    """Training curves of the best :data:`MAX_CURVE_GROUPS` configurations that completed."""
    curve_rows = [r for r in rows if r["completed"]][:MAX_CURVE_GROUPS]
    if not curve_rows:
        return {}
    doc.add("h2", "Training curves")
    groups = [(r["label"], [rec.get("history") or {} for rec in by_label[r["label"]]["records"]
                            if rec.get("status") == "completed"], r["diagnosis"]) for r in curve_rows]
    path = plot_curves(groups, os.path.join(plot_dir, "curves.png"), metric=metric)
    more = f" (the {MAX_CURVE_GROUPS} best of {len(rows)} shown)" if len(rows) > len(curve_rows) else ""
    doc.add("p", f"Validation (solid) and training (dashed) loss and {metric} per epoch, a colour per model, "
                 f"mean over seeds with a ±std band around validation{more}."
            if len(groups) > 1 else f"Training (blue) and validation (orange) loss and {metric} per epoch, mean "
                                    f"over seeds with a ±std band{more}.")
    doc.add("img", "plots/curves.png", "training and validation curves per model")
    return {"curves": path}


def _diagnosis(doc, rows, records):
    """Each configuration's loss-curve diagnosis, and the rules and thresholds behind it."""
    doc.add("h2", "Loss-curve diagnosis")
    doc.add("table", ["model", "diagnosis", "per seed", "why"],
            [[r["label"], r["diagnosis"], ", ".join(r["diagnosis_per_seed"]) or "–", r["diagnosis_reason"]]
             for r in rows])
    doc.add("p", "Rules, checked in this order on each seed's curves (the first that matches gives the label; "
                 "a model's label is the most frequent over its seeds):")
    doc.add("ul", [f"**{label}**: {rule}" for label, rule in rules(infer_num_classes(records))])
    doc.add("p", "Thresholds: `" + json.dumps(THRESHOLDS, sort_keys=True) + "` (`tuning.diagnosis.THRESHOLDS`).")


def _confusion(doc, best, best_records, provenance, plot_dir) -> dict:
    """The best model's confusion matrix summed over its seeds, when its records have one."""
    cms = [r.get("confusion_matrix") for r in best_records
           if r.get("status") == "completed" and r.get("confusion_matrix")]
    if not cms:
        return {}
    cm = np.sum(np.asarray(cms, dtype=np.int64), axis=0)
    source = next(r for r in best_records if r.get("confusion_matrix"))
    names = source.get("class_names") or ((provenance or {}).get("data") or {}).get("class_names")
    split = source.get("confusion_split", "test")
    doc.add("h2", f"Confusion matrix of the best model ({best['label']})")
    path = plot_confusion_matrix(cm, os.path.join(plot_dir, "confusion_matrix.png"), class_names=names,
                                 title=f"{best['label']} on the {split} split, summed over {len(cms)} seed(s)")
    doc.add("img", "plots/confusion_matrix.png", f"confusion matrix of {best['label']} ({split} split)")
    diag = np.trace(cm) / max(1, cm.sum())
    doc.add("p", f"Rows are true classes, columns predictions; {int(cm.sum())} {split} predictions "
                 f"over {len(cms)} seed(s), {diag:.4f} correct.")
    return {"confusion_matrix": path}


def _environment(records):
    keys = ("backend", "versions", "host")
    envs = []
    for r in records:
        env = {k: r.get(k) for k in keys}
        if env not in envs:
            envs.append(env)
    return envs


def _provenance_items(records, provenance, command):
    items = []
    if command:
        cmd = command if isinstance(command, str) else shlex.join(str(c) for c in command)
        items.append(f"command: `{cmd}`")
    prov = dict(provenance or {})
    if "fingerprint" in prov and "source" in prov:  # a bare DataBundle.provenance()
        prov = {"data": prov}
    items += _data_items(prov.pop("data", None), records)
    seeds = prov.pop("seeds", None)
    if seeds is None:
        seeds = sorted({r.get("seed") for r in records if r.get("seed") is not None})
    items.append(f"seeds: {', '.join(str(s) for s in seeds) or '–'}")
    epochs = prov.pop("epochs", None) or ", ".join(
        map(str, sorted({r.get("epochs") for r in records if r.get("epochs")}))) or "?"
    batch = prov.pop("batch_size", None) or ", ".join(
        map(str, sorted({r.get("batch_size") for r in records if r.get("batch_size")}))) or "?"
    items.append(f"budget: {epochs} epoch(s), batch size {batch}")
    settings = prov.pop("training", None)
    if settings is not None:
        items.append(f"training: `{json.dumps(settings, sort_keys=True, default=str)}` (shared `zoo.training.fit`)")
    for env in _environment(records):
        host = env.get("host") or {}
        versions = ", ".join(f"{k} {v}" for k, v in sorted((env.get("versions") or {}).items()))
        items.append(f"backend: {env.get('backend')}; versions: {versions}")
        items.append(f"device: {host.get('device')}; host: {host.get('platform')}, {host.get('cpu_count')} CPUs")
    for key, value in sorted(prov.items()):
        items.append(f"{key}: `{json.dumps(value, sort_keys=True, default=str)}`")
    return items


def _data_items(data, records):
    """The data lines of the provenance: from a ``DataBundle.provenance()``, else from the records."""
    if data:
        sizes = ", ".join(f"{k} {v}" for k, v in (data.get("num_examples") or {}).items())
        items = [
            f"data: `{data.get('name')}` ({data.get('source')}, task {data.get('task')}, input shape "
            f"{tuple(data.get('input_shape') or ())}, {data.get('num_classes')} classes; {sizes})",
            f"data fingerprint: `{data.get('fingerprint')}`",
        ]
        if data.get("options"):
            items.append(f"data options: `{json.dumps(data['options'], sort_keys=True)}`")
        return items
    items = []
    prints = sorted({str(r.get("data")) for r in records if r.get("data")})
    names = sorted({str(r.get("dataset")) for r in records if r.get("dataset")})
    if names:
        items.append(f"data: {', '.join(f'`{n}`' for n in names)}")
    if prints:
        items.append("data fingerprint: " + ", ".join(f"`{p}`" for p in prints))
    return items


# ----------------------------------------------------------------------------- files

def _write_files(out_dir, doc, rows, meta) -> dict:
    """``report.md``, ``report.html``, ``results.json``, ``results.csv`` and :data:`META_FILE`."""
    paths = {"markdown": os.path.join(out_dir, "report.md"), "html": os.path.join(out_dir, "report.html"),
             "json": os.path.join(out_dir, "results.json"), "csv": os.path.join(out_dir, "results.csv"),
             "meta": os.path.join(out_dir, META_FILE)}
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(doc.markdown())
    with open(paths["html"], "w", encoding="utf-8") as f:
        f.write(doc.html(out_dir, meta["title"]))
    write_json_atomic(paths["json"], rows, sort_keys=False)
    flat = [_flat(r) for r in rows]
    fields = list(dict.fromkeys(k for r in flat for k in r))
    with open(paths["csv"], "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in flat:
            writer.writerow({k: ("" if v is None else (repr(v) if isinstance(v, float) else v)) for k, v in r.items()})
    write_json_atomic(paths["meta"], meta, sort_keys=False)
    return paths


def _flat(row) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out[k] = json.dumps(v, sort_keys=True)
        elif isinstance(v, list):
            out[k] = ";".join(str(x) for x in v)
        else:
            out[k] = v
    return out


# ----------------------------------------------------------------------------- text summary and rebuild

def format_summary(rows, paths=None) -> str:
    """The headline table of a report as plain text (what the command line prints), and where its files are."""
    metric = next((m for m in ("accuracy", "mae") if any(
        r.get(f"val_{m}_mean") is not None or r.get(f"test_{m}_mean") is not None for r in rows)), "loss")

    def ms(r, f):
        m, s = r.get(f + "_mean"), r.get(f + "_std")
        return "-" if m is None else f"{m:.4f}" + (f"±{s:.3f}" if s else "")

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = [f"{'model':<22} {'val ' + metric:>15} {'test ' + metric:>15} {'params':>10} {'MACs':>12} "
             f"{'fit s':>7} {'latency ms':>10}  diagnosis"]
    for r in rows:
        label = r["label"] + (" *" if r.get("best") else "")
        lines.append(
            f"{label[:22]:<22} {ms(r, 'val_' + metric):>15} {ms(r, 'test_' + metric):>15} "
            f"{num(r.get('params_mean'), ',.0f'):>10} {num(r.get('macs_mean'), ',.0f'):>12} "
            f"{num(r.get('fit_seconds_mean'), '.1f'):>7} {num(r.get('latency_ms_mean'), '.2f'):>10}  {r['diagnosis']}"
        )
    if any(r.get("best") for r in rows):
        lines.append("* best by mean validation " + metric)
    if paths:
        lines.append(f"\nReport:  {paths.get('html')}\n         {paths.get('markdown')}\nResults: {paths.get('csv')}")
    return "\n".join(lines)


def regenerate(run_dir, out_dir=None, *, title=None, all_records=False) -> Report:
    """Rebuild a report from ``<run_dir>/records.jsonl`` and its manifest (and ``report_meta.json`` if
    there), no training.

    Args:
        run_dir: a folder with ``records.jsonl``.
        out_dir: where to write (default: where the stored report is, ``run_dir`` or
            ``run_dir/report``; ``run_dir`` when there is none).
        title: overrides the stored title.
        all_records: ignore the stored selection of record ids.

    Raises:
        FileNotFoundError: no ``records.jsonl`` in ``run_dir``.
    """
    run_dir = os.fspath(run_dir)
    path = os.path.join(run_dir, RECORDS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No records.jsonl in {run_dir!r}. Received: run_dir={run_dir!r}")
    records = read_records(path)
    folder, meta = report_meta(run_dir)
    out_dir = out_dir or folder
    selection = None if all_records else meta.get("selection")
    if selection is not None:
        wanted = set(selection)
        records = [r for r in records if r.get("id") in wanted]
    title = title or meta.get("title") or f"Report of {os.path.basename(os.path.abspath(run_dir))}"
    return write_report(records, out_dir or run_dir, title=title, manifest=read_manifest(run_dir, records=records),
                        command=meta.get("command"), selection=selection, run_dir=run_dir)
