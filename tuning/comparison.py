"""Equal-budget architecture comparison: same data, same split, same epochs, several seeds.

Every model is trained by :func:`tuning.trial.run_trial` (so by the shared
:func:`zoo.training.fit`), once per seed; each trial's record is appended to
``<out>/records.jsonl`` the moment it ends, and the report
(:func:`tuning.report.write_report`) is written from those records only.
Completed trials found in ``records.jsonl`` are reused, so an interrupted
comparison resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import keras
import numpy as np

import zoo
from tuning.artifacts import TrialFiles, clear_checkpoints, load_saved_model, prune_saved_models
from tuning.isolation import WorkerDied, WorkerPool, check_picklable, data_spec
from tuning.lock import hold_run_folder
from tuning.manifest import (
    RECORDS_FILE,
    check_kind,
    make_manifest,
    migrate_record,
    training_identity,
    write_manifest,
)
from tuning.records import append_record, finite, new_record, read_records, reject_bad_lines, start_over
from tuning.report import confusion_matrix, write_report
from tuning.report.summary import primary_metric, summarize_records
from tuning.settings import RunOptions
from tuning.trial import TrialPlan, check_build, data_kwargs, run_data, run_trial, run_training
from zoo import training as zoo_training
from zoo.profiling import inference_function, measure_latency_and_throughput
from zoo.runtime import frozen_heap, is_disk_full, names_full_disk
from zoo.utils import settings_object

__all__ = ["Comparison", "compare", "check_compatible"]

MAX_CONFUSION_CLASSES = 100  # larger confusion matrices are not kept in records


@dataclass
class Comparison:
    """What :func:`compare` returns.

    Attributes:
        out: the run folder.
        records: this comparison's trial records (one per model and seed).
        rows: one summary row per model (see :func:`tuning.report.summarize_records`).
        paths: report files by kind (``markdown``, ``html``, ``csv``, ``json``, plots).
    """

    out: str
    records: list
    rows: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)

    @property
    def best_row(self) -> dict | None:
        """The best summary row (by mean validation metric), or ``None`` if nothing completed."""
        return next((r for r in self.rows if r.get("best")), None)

    @property
    def best_record(self) -> dict | None:
        """The best seed's record of the best configuration (see :func:`best_seed`), or ``None``."""
        row = self.best_row
        return None if row is None else best_seed([r for r in self.records if r.get("id") in row["record_ids"]])

    def load(self, label=None, *, compile=True):
        """The saved model of a configuration's best seed: ``label`` is a summary row's label
        (e.g. ``"resnet20"``), ``None`` the best configuration. Raises
        :class:`tuning.artifacts.ModelFileError` when its file is missing, altered or was not kept."""
        rows = [r for r in self.rows if label is None and r.get("best") or r.get("label") == label]
        if not rows:
            labels = [r.get("label") for r in self.rows]
            raise ValueError(f"No configuration labelled {label!r} in {self.out}. Labels: {labels}")
        record = best_seed([r for r in self.records if r.get("id") in rows[0]["record_ids"]])  # as best_record
        if record is None:
            raise ValueError(f"Configuration {rows[0].get('label')!r} has no completed trial in {self.out}")
        return load_saved_model(self.out, record, compile=compile)


GRADCAM_FIGURE = os.path.join("plots", "gradcam.png")


def _gradcam_figure(records, data, out, progress, per_kind=4, trained=None):
    """Grad-CAM of the best saved model on up to ``per_kind`` right and wrong test images, as
    ``OUT/plots/gradcam.png`` with ``gradcam.json`` beside it (the report shows it); image classification
    with a saved best model only. ``trained``: ``{"id", "model", "test_predictions"}``, a trial's model still in
    memory and its test predictions (:func:`_predictions_hook`), used instead of loading its file and predicting
    again when it is the best one. A problem here is a note, never a failed comparison."""
    import zoo.explain

    record = best_seed(records)
    if record is None or not _gradcam_data(data) or not record.get("model_path"):
        return None
    try:
        in_memory = trained is not None and trained.get("id") == record["id"]
        model = trained["model"] if in_memory else load_saved_model(out, record, compile=False)
        if model.output.shape[-1] < 2 or not any(len(la.output.shape) == 4 for la in model.layers[1:]):
            return None  # a binary head or no convolutional maps (an MLP): nothing to draw
        x, y = data.arrays("test")
        truth, predicted = (trained.get("test_predictions") if in_memory else None) or (None, None)
        if predicted is None or not np.array_equal(truth, y):  # not predicted in this process, or in another order
            forward = inference_function(model)  # one trace; model.predict traced its full and its last batch
            predicted = np.concatenate([np.asarray(forward(x[i:i + 256])) for i in range(0, len(x), 256)])
            predicted = predicted.argmax(axis=-1)
        right, wrong = np.flatnonzero(predicted == y)[:per_kind], np.flatnonzero(predicted != y)[:per_kind]
        chosen = np.concatenate([right, wrong])
        names = list(data.class_names or range(model.output.shape[-1]))
        titles = [f"{names[predicted[i]]}" + ("" if predicted[i] == y[i] else f" (true {names[y[i]]})")
                  for i in chosen]
        maps = zoo.explain.grad_cam(model, x[chosen], predicted[chosen])
        path = zoo.explain.plot_overlays(x[chosen], maps, os.path.join(out, GRADCAM_FIGURE), titles=titles)
        with open(os.path.join(out, "plots", "gradcam.json"), "w", encoding="utf-8") as f:
            json.dump({"record": record["id"], "model": record.get("model"), "right": len(right),
                       "wrong": len(wrong)}, f)
        return path
    except Exception as e:  # noqa: BLE001 - the figure is a bonus: the report goes on without it
        _say(progress, f"Grad-CAM figure not drawn: {type(e).__name__}: {e}")
        return None


def _gradcam_data(data) -> bool:
    """Whether ``data`` can have a Grad-CAM figure: images, with a test split."""
    return len(data.input_shape) == 3 and "test" in data.splits


def best_seed(records):
    """The completed record with the best validation metric (accuracy, else MAE, else loss), or ``None``.

    Test metrics never decide; without validation data the last training loss does."""
    done = [r for r in records if r.get("status") == "completed"]
    if not done:
        return None
    metric, higher = primary_metric(done)
    pool = [r for r in done if finite(r.get(f"val_{metric}"))]
    if pool:
        return (max if higher else min)(pool, key=lambda r: r[f"val_{metric}"])
    return min(done, key=lambda r: ((r.get("history") or {}).get("loss") or [float("inf")])[-1])


def _seeds(seeds):
    if isinstance(seeds, bool):
        raise TypeError(f"`seeds` must be a count or a list of ints. Received: seeds={seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"`seeds` must be >= 1. Received: seeds={seeds!r}")
        return list(range(seeds))
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise TypeError(f"`seeds` must be a count or a list of ints. Received: seeds={seeds!r}") from None
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"`seeds` must be distinct ints >= 0. Received: seeds={seeds!r}")
    return out


def _model_names(models):
    if isinstance(models, str):
        models = [models]
    names = []
    for m in models or ():
        if not isinstance(m, str):
            raise TypeError(f"`models` must be registry names or patterns. Received: {m!r}")
        if any(c in m for c in "*?["):
            matched = zoo.list_models(m)
            if not matched:
                raise ValueError(f"No registered model matches the pattern. Received: {m!r}")
            names += matched
        else:
            zoo.get_card(m)  # unknown names raise here, with close matches
            names.append(m)
    names = list(dict.fromkeys(names))
    if not names:
        raise ValueError(f"`models` must name at least one model. Received: models={models!r}")
    return names


def check_compatible(name, data):
    """Raise ``ValueError`` if model ``name`` cannot take ``data``'s inputs (checked before any training)."""
    card = zoo.get_card(name)
    shape = tuple(data.input_shape)
    if card.has("image") and len(shape) != 3:
        raise ValueError(
            f"Model {name!r} takes images (height, width, channels) but dataset {data.name!r} has "
            f"input_shape={shape}. Use an image dataset or a tabular model such as 'mlp'."
        )
    if card.min_input_size and len(shape) == 3 and min(shape[:2]) < card.min_input_size:
        raise ValueError(
            f"Model {name!r} needs images of at least {card.min_input_size}x{card.min_input_size}; "
            f"dataset {data.name!r} has input_shape={shape}. Load it with a larger image_size."
        )
    if data.task in ("binary", "regression") and "task" not in inspect.signature(card.builder).parameters:
        raise ValueError(
            f"Model {name!r} is a classifier; dataset {data.name!r} is a {data.task} task. Use 'mlp'."
        )


def _builder(name, data, kwargs):
    num_outputs = 1
    if data.task == "regression":
        num_outputs = int(np.prod(data.arrays("train")[1].shape[1:])) or 1
    base = data_kwargs(name, input_shape=data.input_shape, task=data.task, num_classes=data.num_classes,
                       num_outputs=num_outputs)
    kw = {**base, **kwargs}

    def build():
        return zoo.build(name, **kw)

    build.__name__ = name
    return build


def _predictions_hook(data, keep=None):
    """``on_trained`` hook: the confusion matrix of the test split (validation if no test split); the trained
    model goes into ``keep["model"]`` when ``keep`` is a dict, with its test labels and predicted classes in
    ``keep["test_predictions"]`` (multiclass)."""
    split = "test" if "test" in data.splits else ("validation" if "validation" in data.splits else None)
    extra = {"task": data.task, "num_classes": data.num_classes}

    def on_trained(model):
        if keep is not None:
            keep["model"] = model
        if split is None or data.task == "regression" or not data.num_classes:
            return extra
        k = 2 if data.task == "binary" else int(data.num_classes)
        if k > MAX_CONFUSION_CLASSES:
            return extra
        logits = zoo_training.outputs_logits(model)
        ds = data.dataset(split)
        batches = ds.as_numpy_iterator() if ds is not None else [data.arrays(split)]
        forward = inference_function(model)  # traced once for every batch size, shared with the speed timing
        truth, pred = [], []
        for x, y in batches:
            p = np.asarray(forward(x))
            if data.task == "binary":
                pred.append((p.reshape(-1) > (0.0 if logits else 0.5)).astype(int))
            else:
                pred.append(p.reshape(len(p), -1).argmax(axis=-1))
            truth.append(np.asarray(y).reshape(-1))
        truth, pred = np.concatenate(truth), np.concatenate(pred)
        if keep is not None and split == "test" and data.task != "binary":  # for the Grad-CAM figure's choice
            keep["test_predictions"] = (truth, pred)
        cm = confusion_matrix(truth, pred, k)
        return {**extra, "confusion_matrix": cm, "confusion_split": split, "class_names": list(data.class_names)}

    return on_trained


def _trial_id(name, kwargs, seed, training, data) -> str:
    """A comparison trial's id: the model, its builder arguments, the seed, the training settings and the data."""
    blob = json.dumps({"model": name, "kwargs": kwargs, "training": training, "data": data}, sort_keys=True,
                      default=str)
    return f"{name}-seed{seed}-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


def _record_key(record) -> str:
    """The id a record would have under today's rule (:func:`tuning.manifest.migrate_record` first)."""
    return _trial_id(record.get("model"), record.get("hyperparameters") or {}, record.get("seed"),
                     record.get("training"), record.get("data"))


def _say(verbose, text):
    if verbose:
        print(text, flush=True)


SPEED_FIELDS = ("latency_ms", "throughput")


@dataclass(frozen=True)
class _Job:
    """One trial of a comparison: its place in the run (1-based), model, seed, builder arguments, id, files."""

    index: int
    name: str
    seed: int
    kwargs: dict
    trial_id: str
    files: TrialFiles


class _Book:
    """A comparison's records as its trials end (in any order): each appended to ``records.jsonl`` at once, its
    checkpoint cleared, a progress line, and a model's saved files pruned once all its seeds are done. The
    progress line numbers a trial by its place in the run, or, with ``counting`` (trials side by side, ending
    in any order), by how many trials are done."""

    def __init__(self, *, out, path, kept, training, total, verbose):
        self.out, self.path, self.kept, self.training, self.total, self.verbose = out, path, kept, training, total, verbose
        self.records, self.groups, self.waiting, self.order = [], {}, {}, {}
        self.counting = False

    def _add(self, job, record):
        self.records.append(record)
        self.order[record["id"]] = job.index
        self.groups.setdefault(job.name, []).append(record)

    def reuse(self, job, record):
        self._add(job, record)
        missing = record.get("model_path") and not os.path.exists(os.path.join(self.out, record["model_path"]))
        _say(self.verbose, f"[{job.index}/{self.total}] {job.name} seed={job.seed}: reused from {self.path} "
                           f"({_summary(record)})" + (f"; its model file {record['model_path']} is missing "
                                                      "(not retrained)" if missing else ""))

    def expect(self, jobs):
        """The trials still to train; a model whose trials were all reused is pruned now."""
        for job in jobs:
            self.waiting[job.name] = self.waiting.get(job.name, 0) + 1
        for name in self.groups:
            if not self.waiting.get(name):
                self._prune(name)

    def copied_speed(self, name):
        """The speed fields a trial of model ``name`` copies from an earlier seed's record, or ``None``."""
        timed = next((r for r in self.groups.get(name, ()) if r.get("latency_ms") is not None), None)
        return None if timed is None else {**{k: timed[k] for k in SPEED_FIELDS}, "speed_from_seed": timed["seed"]}

    def done(self, job, record, speed=None):
        """Keep ``record`` of ``job``, with the ``speed`` fields measured elsewhere when it completed."""
        record["training"] = self.training
        if speed is not None and record.get("status") == "completed":
            record.update(speed)
        append_record(self.path, record)
        job.files.clear_checkpoint()
        self._add(job, record)
        place = f"{len(self.records)}/{self.total} done" if self.counting else f"{job.index}/{self.total}"
        _say(self.verbose, f"[{place}] {job.name} seed={job.seed}: {_summary(record)}"
                           + (f" (resumed from epoch {record['resumed_from_epoch']})"
                              if record.get("resumed_from_epoch") else ""))
        self.waiting[job.name] -= 1
        if not self.waiting[job.name]:
            self._prune(job.name)

    def _prune(self, name):
        if self.kept == "best":  # the best seed's model of this configuration stays
            best = best_seed(self.groups[name])
            prune_saved_models(self.out, self.groups[name], [best["id"]] if best else [])

    def in_order(self):
        """The records in (model, seed) order, whatever order the trials ended in."""
        return sorted(self.records, key=lambda r: self.order[r["id"]])


def _train(data, *, job, plan, keep=None):
    """One comparison trial (in this process or a worker's): the model's builder and the predictions hook are
    made here, from the data at hand, so that only names and settings travel to a worker. ``keep``: a dict
    that receives the trained model (in this process)."""
    plan = dataclasses.replace(plan, on_trained=_predictions_hook(data, keep))
    with warnings.catch_warnings():
        # Keras notes on every fit that `shuffle` is ignored for tf.data: the pipeline shuffles itself.
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
        return run_trial(_builder(job.name, data, job.kwargs), data, plan, trial_id=job.trial_id, seed=job.seed,
                         files=job.files, model_name=job.name, hyperparameters=job.kwargs)


def _time_alone(job, data, plan, model=None):
    """The speed figures of ``job``'s architecture, timed in this process on ``model`` (default: one built
    now) while nothing else runs (a model's speed does not depend on its weights); ``None`` if it cannot
    be built."""
    try:
        with zoo_training.precision_policy(plan.training.precision):
            model = _builder(job.name, data, job.kwargs)() if model is None else model
        figures = measure_latency_and_throughput(model, batch_size=plan.training.batch_size,
                                                 iterations=plan.speed_iterations)
        return {**figures, "speed_timed_alone": True}
    except Exception:  # noqa: BLE001 - the trial itself will fail and say why
        return None
    finally:
        keras.backend.clear_session()


def _in_workers(jobs, book, *, data, plan, workers, hold, built):
    """Train ``jobs`` in a :class:`tuning.isolation.WorkerPool`, ``workers`` at a time. Speed is timed first, once
    per model, in this process with no trial running (trials running side by side would slow each other's
    timing), on the model ``built`` holds for it if any; a worker that dies costs its trial only (a failed
    record naming the signal)."""
    speeds = {}
    if plan.measure_speed:
        for job in jobs:
            if job.name not in speeds:
                speeds[job.name] = book.copied_speed(job.name) or _time_alone(job, data, plan,
                                                                              built.pop(job.name, None))
    built.clear()  # those of models whose trials were all reused: no model stays while the workers train
    trial_plan = dataclasses.replace(plan, measure_speed=False)
    _say(book.verbose, f"Training {len(jobs)} trial(s), {workers} at a time, in worker processes")
    book.counting = True  # trials end in any order: [k/n done] counts them
    with WorkerPool(data, size=workers, hold=hold) as pool:
        for job in _longest_first(jobs, speeds):
            job_plan = trial_plan
            if plan.verbose:  # Keras' lines of trials side by side would interleave without saying whose they are
                job_plan = dataclasses.replace(trial_plan, verbose=0, callbacks=(
                    *plan.callbacks, zoo_training.EpochLine(f"{job.name} seed={job.seed}")))
            pool.submit(_train, key=job, job=job, plan=job_plan)
        for job, ok, value in pool.completed():
            if not ok:
                if is_disk_full(value):
                    raise value
                died = isinstance(value, WorkerDied)
                value = new_record(id=job.trial_id, model=job.name, hyperparameters=job.kwargs, seed=job.seed,
                                   status="failed", error=str(value) if died else f"{type(value).__name__}: {value}",
                                   **({"exit_signal": value.signal_name, "exit_code": value.exitcode} if died else {}))
            book.done(job, value, speeds.get(job.name))


def _longest_first(jobs, speeds):
    """``jobs`` with the slowest models first, by their seconds a sample at the training batch size (the
    throughput timed alone; ``jobs``' order where none was timed): the trials that end a pool's run are then
    short ones, instead of one long trial left running alone while the other workers wait. All trials of a
    comparison share data and epochs, so this orders their training time (the demo's 7 models: exactly, on
    2 CPU cores; batch-1 latency, dominated by per-layer overheads, put VGG-11 before ResNet-20). The records
    do not depend on the order."""
    def seconds_a_sample(job):
        throughput = (speeds.get(job.name) or {}).get("throughput")
        return 1.0 / throughput if throughput else 0.0

    return sorted(jobs, key=seconds_a_sample, reverse=True)


@names_full_disk("out")
def compare(models, *, data, training=None, seeds=3, out, model_kwargs=None, title=None, command=None,
            options=None) -> Comparison:
    """Train each model on the same data, split and budget over several seeds, then write a report.

    Args:
        models: registry names or fnmatch patterns, e.g. ``["lenet5", "resnet20", "densenet_bc_40"]``.
        data: a :class:`zoo.data.DataBundle` (or a name for :func:`zoo.data.load`).
        training: a :class:`zoo.training.TrainingConfig`, the same for every model (that is the point of
            the comparison): epochs (the budget), batch size (default: the data's), optimizer, schedule,
            precision (default ``float32``; ``auto`` by device), early stopping (``patience``: on
            ``val_accuracy``, or ``val_loss`` for regression, restoring the best epoch's weights).
            Default: ``TrainingConfig()``.
        seeds: a count (seeds ``0..n-1``) or a list of seeds; each model is trained once per seed.
        out: run folder: ``records.jsonl``, ``run.json`` (the run manifest), the report files and ``plots/``.
        model_kwargs: per-model builder arguments, ``{"resnet20": {"width": 0.5}}``.
        title: report title (default: "Architecture comparison on <data>").
        command: command line shown in the report (default ``sys.argv``).
        options: a :class:`tuning.RunOptions`: ``resume`` (reuse completed trials found in
            ``records.jsonl``), which trained models are kept (default: the best seed of each
            configuration), per-epoch checkpoints, TensorBoard logs, the report, speed timing (once per
            model: later seeds copy the first one's figures, ``speed_from_seed``), callbacks, verbosity.

    Returns:
        a :class:`Comparison` (records, summary rows, report paths).

    Raises:
        ValueError / TypeError: unknown model, incompatible data or bad budget,
            before anything is trained.

    Example:
        >>> ds = zoo.data.load("digits", image_size=32)
        >>> result = compare(["mlp", "lenet5"], data=ds, training=TrainingConfig(epochs=3), seeds=2, out="runs/cmp")
        >>> result.paths["html"]
        'runs/cmp/report.html'
    """
    options = settings_object(RunOptions, options, "options")
    if options.isolation == "auto":  # a comparison's trials are few: they train in this process
        options = dataclasses.replace(options, isolation=None)
    kept = options.kept("comparison")
    data = run_data(data)
    objective = ("val_loss", "min") if data.task == "regression" else ("val_accuracy", "max")
    training = run_training(training, monitor=objective[0], batch_size=data.batch_size)
    seeds = _seeds(seeds)
    names = _model_names(models)
    model_kwargs = dict(model_kwargs or {})
    unknown = sorted(set(model_kwargs) - set(names))
    if unknown:
        raise ValueError(f"`model_kwargs` names models that are not compared: {unknown}. Compared: {names}")
    for name in names:
        check_compatible(name, data)
        if not isinstance(model_kwargs.get(name, {}), dict):
            raise TypeError(f"`model_kwargs[{name!r}]` must be a dict. Received: {model_kwargs[name]!r}")
    if out is None:
        raise ValueError("`out` must be a folder for records and the report. Received: out=None")
    workers = options.workers or 1
    in_workers = options.isolation is not None or workers > 1  # the trials train in worker processes
    if in_workers:
        _check_workers(options, data=data, training=training)
    built = {}  # in worker mode, the models the check builds: their speed is timed on them in this process
    for name in names:  # a bad builder argument fails here, once, not in every trial
        if model_kwargs.get(name):  # defaults on compatible data (checked above) build: no second build to pay
            with zoo_training.precision_policy(training.precision):
                model = check_build(_builder(name, data, dict(model_kwargs[name])),
                                    what=f"{name} with model_kwargs {model_kwargs[name]}")
            if in_workers and options.measure_speed:
                built[name] = model
            del model
    out = os.fspath(out)
    check_kind(out, "comparison", "out")
    with hold_run_folder(out) as lock:  # a second run of this folder is refused while this one runs
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, RECORDS_FILE)
        notes = []
        if options.resume:
            reject_bad_lines(path, notes)  # damaged lines move aside; their trials run again
        else:
            start_over(path, notes)
        existing = {_record_key(migrate_record(r)): r for r in read_records(path)} if options.resume else {}
        clear_checkpoints(out, existing.values() if options.resume else None)  # a fresh run resumes nothing
        identity = {"training": training_identity(training), "seeds": seeds,
                    "models": {n: model_kwargs.get(n, {}) for n in names}}
        manifest = make_manifest("comparison", identity=identity, objectives=[objective],
                                 data={"name": data.name, "fingerprint": data.fingerprint,
                                       "batch_size": training.batch_size},
                                 budget={"epochs": training.epochs, "seeds": len(seeds)}, provenance=data.provenance())
        write_manifest(out, manifest)
        plan = TrialPlan(training=training, measure_speed=options.measure_speed,
                         speed_iterations=options.iterations("comparison"), callbacks=options.callbacks,
                         verbose=options.fit_verbose)  # the predictions hook is added where the trial runs

        total = len(names) * len(seeds)
        verbose = options.verbose
        _say(verbose, f"Comparing {len(names)} model(s) x {len(seeds)} seed(s) on {data.name!r} "
                      f"{tuple(data.input_shape)}, {training.epochs} epoch(s), batch {training.batch_size}; "
                      f"records -> {path}")
        for note in notes:
            _say(verbose, note)
        start_all = time.perf_counter()
        book = _Book(out=out, path=path, kept=kept, training=identity["training"], total=total, verbose=verbose)
        jobs = []  # the trials to train, in (model, seed) order
        for name in names:
            kwargs = dict(model_kwargs.get(name, {}))
            for seed in seeds:
                trial_id = _trial_id(name, kwargs, seed, identity["training"], data.fingerprint)
                old = existing.get(trial_id)
                job = _Job(len(book.records) + len(jobs) + 1, name, seed, kwargs, trial_id,
                           TrialFiles(out, trial_id, save_model=kept is not None, checkpoint=options.checkpoint,
                                      log_root=options.log_dir))
                if old is not None and old.get("status") == "completed":
                    book.reuse(job, old)
                else:
                    jobs.append(job)
        book.expect(jobs)
        # the best trial's model so far stays in memory (one model) when the report's Grad-CAM figure will need it
        trained, figure = None, options.report and _gradcam_data(data)
        if not in_workers:
            with frozen_heap():  # each trial's clear_session collects the trial's own objects only
                for job in jobs:
                    copied = book.copied_speed(job.name)  # an architecture's speed does not depend on its seed
                    _say(verbose, f"[{job.index}/{total}] {job.name} seed={job.seed}: training {training.epochs} "
                                  "epoch(s)")
                    keep = {} if figure else None
                    record = _train(data, job=job, plan=plan if copied is None else dataclasses.replace(
                        plan, measure_speed=False), keep=keep)
                    book.done(job, record, copied)
                    leader = best_seed(book.in_order()) if keep else None
                    if leader is not None and leader["id"] == record["id"]:
                        trained = {"id": record["id"], **keep}  # the best so far, for Grad-CAM
        else:
            _in_workers(jobs, book, data=data, plan=plan, workers=workers, hold=lock.fileno(), built=built)
        _say(verbose, f"All {total} trial(s) done in {time.perf_counter() - start_all:.1f} s.")
        records = book.in_order()
        result = Comparison(out=out, records=records)
        if not options.report:  # the rows load() and best_record read; the report computes them otherwise
            result.rows = summarize_records(records)
        else:
            _gradcam_figure(records, data, out, verbose, trained=trained)
            report = write_report(
                records, out, manifest=manifest, title=title or f"Architecture comparison on {data.name}",
                command=list(sys.argv) if command is None else command, selection=[r["id"] for r in records],
            )
            result.paths, result.rows = report.paths, report.rows
        return result


def _check_workers(options, *, data, training):
    """Trials in worker processes need data loadable by name and settings that pickle."""
    how = f"workers={options.workers}" if (options.workers or 1) > 1 else "isolation='process'"
    try:
        data_spec(data)
        check_picklable(training, "training")
        check_picklable(list(options.callbacks), "callbacks")
    except (ValueError, TypeError) as e:
        raise type(e)(str(e).replace("isolation='process'", how)) from None


def _summary(record) -> str:
    if record.get("status") != "completed":
        return f"{record.get('status')}: {record.get('error')}"
    parts = [f"{k}={record[k]:.4f}" for k in ("val_accuracy", "test_accuracy", "val_mae", "val_loss")
             if finite(record.get(k))][:2]
    seconds = record.get("fit_seconds")
    return ", ".join(parts) + (f" in {seconds:.1f} s" if finite(seconds) else "")
