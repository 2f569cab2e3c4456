"""``zoo compare``, ``zoo report``, ``zoo tune``: experiments over many models (the ``tuning`` package)."""

from __future__ import annotations

import os
import sys

import tuning
from zoo.cli.args import (
    LazyChoices,
    add_data_arguments,
    add_early_stopping_arguments,
    add_devices_argument,
    add_precision_argument,
    add_training_arguments,
    load_data,
    parse_constraints,
    parse_model_kwargs,
    training_config,
)


def _none(value):
    return None if value == "none" else value


def _add_output_arguments(p, *, save_models, choices):
    p.add_argument("--save-models", choices=(*choices, "none"), default=save_models,
                   help=f"which trained models to keep in RUN/models (default {save_models})")
    p.add_argument("--log-dir", default=None, help="TensorBoard scalars and a log.csv per trial in LOG_DIR/ID")


def _print_summary(rows, paths):
    print("\n" + tuning.report.format_summary(rows, paths))


def cmd_compare(args):
    import zoo

    names = args.models
    model_kwargs = parse_model_kwargs(args.model_arg)
    exact = [name for name in names if not any(c in name for c in "*?[")]
    for name in exact:  # unknown names fail here, before any data is loaded
        zoo.get_card(name)
    data = load_data(args)
    for name in exact:
        tuning.comparison.check_compatible(name, data)
    options = tuning.RunOptions(measure_speed=not args.no_speed, verbose=1 if args.quiet else 2,
                                resume=not args.fresh, save_models=_none(args.save_models), log_dir=args.log_dir,
                                workers=args.workers)
    result = tuning.compare(names, data=data, training=training_config(args), seeds=args.seeds, out=args.out,
                            model_kwargs=model_kwargs, title=args.title, command=["zoo", *sys.argv[1:]],
                            options=options)
    _print_summary(result.rows, result.paths)
    return 0 if any(r["completed"] for r in result.rows) else 1


def cmd_report(args):
    report = tuning.report.regenerate(args.run_dir, args.out, title=args.title, all_records=args.all_records)
    _print_summary(report.rows, report.paths)
    return 0


def parse_objectives(text):
    """``"val_accuracy:max,params:min"`` -> ``[("val_accuracy", "max"), ("params", "min")]`` (a bare name
    takes its direction from its name)."""
    out = []
    for item in text.split(","):
        name, _, direction = item.strip().partition(":")
        if not name or direction not in ("", "max", "min"):
            raise ValueError(f"--objectives takes NAME[:max|min] items separated by commas. Received: {text!r}")
        out.append((name, direction) if direction else name)
    return out


def _algorithm(args):
    """The algorithm object of ``--algorithm`` with the options that belong to it."""
    settings = {"pruning": args.pruning}
    if args.population_size is not None:
        if args.algorithm != "nsga2":
            raise ValueError(f"--population-size is an nsga2 setting. Received: --algorithm {args.algorithm}")
        settings["population_size"] = args.population_size
    return tuning.ALGORITHMS[args.algorithm](**settings)


def cmd_tune(args) -> int:
    """Run or resume a search and print the best trial and the Pareto front."""
    if args.objectives is not None:
        objectives = parse_objectives(args.objectives)
    else:
        objectives = (args.objective, args.direction) if args.direction else args.objective
    options = tuning.RunOptions(resume=not args.overwrite, save_models=_none(args.save_models), log_dir=args.log_dir,
                                report=not args.no_report, isolation=_none(args.isolation), workers=args.workers,
                                verbose=0 if args.quiet else 1)
    if args.tuner_id is not None and args.worker is None:
        raise ValueError(f"--tuner-id names a --worker. Received: --tuner-id {args.tuner_id} without --worker")
    if args.chief is not None or args.worker is not None:  # KerasTuner's own variables, for this process
        from tuning.searches.workers import chief_environment, worker_environment

        os.environ.update(chief_environment(args.chief) if args.chief is not None else
                          worker_environment(args.worker, args.tuner_id))
    try:
        result = tuning.search(
            args.models if len(args.models) > 1 else args.models[0], data=load_data(args), objectives=objectives,
            training=training_config(args, batch_size=None), space=tuning.SearchSpace(tiny=args.tiny),
            algorithm=_algorithm(args), budget=tuning.Budget(max_trials=args.max_trials,
                                                             max_seconds=args.max_seconds, executions=args.executions),
            constraints=parse_constraints(args.constraint), seed=args.seed, directory=args.directory,
            options=options,
        )
    except RuntimeError as e:  # e.g. a chief that cannot listen; the other errors are handled by main()
        raise ValueError(str(e)) from e
    if args.quiet:
        print(result.summary())
    if not result.completed:
        print(f"zoo tune: no trial completed ({len(result.failed)} failed, {len(result.infeasible)} infeasible)",
              file=sys.stderr)
        return 1
    return 0


def cmd_export(args):
    """Export a run's saved model (checked against its record) or a model file, verified in its runtime: on the
    run's own test inputs (int8: calibrated on its training inputs, the test accuracy change printed) when its
    data load again unchanged, else on random inputs."""
    import os

    import numpy as np

    import zoo

    contract, data, note = {}, None, "random inputs of the model's input shape"
    if os.path.isdir(args.source):
        model, record = _run_model(args)
        contract = {k: record[k] for k in ("dataset", "class_names") if record.get(k) is not None}
        where = f"model of record {record['id']} ({record.get('model')}) from {args.source}"
        data, note = _run_data(args.source, model)
    elif os.path.isfile(args.source):
        model, where = zoo.load_model(args.source, compile=False), args.source
    else:
        raise FileNotFoundError(f"No run folder or model file at {args.source!r}")
    inputs = calibration = test = None
    if data is not None:
        test = data.arrays("test" if "test" in data.splits else data.splits[-1])
        inputs = test[0][:_CHECK_BATCH]
        calibration = data.arrays("train")[0][:_CALIBRATION] if args.quantize == "int8" else None
    try:
        result = zoo.export(model, args.out, format=args.format, quantize=args.quantize, contract=contract or None,
                            tolerance=args.tolerance, inputs=inputs, calibration=calibration)
    except ImportError as e:
        raise ValueError(str(e)) from None
    agree = "" if result.top1_agreement is None else f", top-1 agreement {result.top1_agreement:.0%}"
    print(f"{result.path}: {result.format} export of the {where}\n"
          f"  verified with {result.runtime} on {note}: max |diff| {result.max_abs_diff:.3g} (largest output "
          f"{result.max_abs_output:.3g}, tolerance {result.tolerance:g} of it){agree}; card {result.card}")
    if test is not None and result.quantize and data.task != "regression":
        x, y = test
        keras_accuracy = float(np.mean(model.predict(x, verbose=0).argmax(-1) == y))
        exported = float(np.mean(zoo.deploy.run(result.path, x).argmax(-1) == y))
        print(f"  test accuracy ({len(y)} examples): Keras {keras_accuracy:.2%}, {result.quantize} "
              f"{exported:.2%} ({100 * (exported - keras_accuracy):+.2f} points)")
    return 0


_CHECK_BATCH = 32  # test inputs an export is checked on
_CALIBRATION = 256  # training inputs int8 quantisation is calibrated on


def _run_data(run_dir, model):
    """``(bundle, what)``: the run's data loaded again when its manifest records them and they are unchanged
    and of the model's input shape, else ``(None, why not)``."""
    import zoo.data

    provenance = (tuning.read_manifest(run_dir) or {}).get("provenance") or {}
    try:
        bundle = zoo.data.reload(provenance)
    except (ValueError, TypeError, OSError) as e:
        return None, f"random inputs (the run's data cannot be loaded again: {str(e).splitlines()[0]})"
    if tuple(bundle.input_shape) != tuple(model.input_shape[1:]):
        return None, f"random inputs (the run's data are {bundle.input_shape}, the model takes {model.input_shape[1:]})"
    return bundle, f"{_CHECK_BATCH} test inputs of {bundle.name}"


def _run_model(args):
    """The saved model of the best trial (or of ``--record``) of a run folder, checked against its record."""
    import os

    from tuning.artifacts import load_saved_model
    from tuning.comparison import best_seed
    from tuning.records import latest_records, read_records

    path = os.path.join(args.source, "records.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No records.jsonl in {args.source}: not a comparison or search folder")
    records = latest_records(read_records(path))
    if args.record is not None:
        record = next((r for r in records if str(r.get("id")) == args.record), None)
        if record is None:
            raise ValueError(f"No record {args.record!r} in {path}. Records: {[r.get('id') for r in records]}")
    elif (tuning.read_manifest(args.source, records=records) or {}).get("kind") == "search":
        record = tuning.load_search(args.source).best_record
    else:
        record = best_seed(records)
    if record is None:
        raise ValueError(f"No completed trial in {path}")
    return load_saved_model(args.source, record, compile=False), record  # missing or altered files fail, named


def register(sub):
    p = sub.add_parser(
        "compare", help="train several models on the same data and budget; write a report",
        description="Equal-budget architecture comparison: every model is trained on the same data, split, "
                    "epochs and seeds; records go to OUT/records.jsonl, the report to OUT/report.html "
                    "(self-contained), OUT/report.md, OUT/results.csv and OUT/plots/.",
        epilog="Example: zoo compare mlp lenet5 resnet20 --data digits --epochs 5 --seeds 3 "
               "--model-arg resnet20:width=0.5 --out runs/cmp",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="registry names or patterns ('resnet2*')")
    add_data_arguments(p)
    add_training_arguments(p, epochs=5, seeds_default=3)
    p.add_argument("--model-arg", action="append", metavar="NAME:KEY=VALUE",
                   help="builder argument of one model, e.g. resnet20:width=0.5 (JSON value)")
    p.add_argument("--out", default="runs/compare", help="run folder (default runs/compare)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--no-speed", action="store_true", help="skip latency/throughput measurement")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="train N trials at a time in worker processes, each on its own GPU(s) when there are some "
                        "(speed is then timed once per model before training, alone)")
    _add_output_arguments(p, save_models="best", choices=("best", "all"))
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines (one line per trial only)")
    p.add_argument("--fresh", action="store_true",
                   help="retrain every trial (default: completed trials found in OUT/records.jsonl are reused)")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser(
        "report", help="regenerate a report from RUN_DIR/records.jsonl (no training)",
        description="Regenerate report.md, report.html, results.csv/json and plots from the trial records "
                    "of a comparison or search folder. Nothing is retrained.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder holding records.jsonl")
    p.add_argument("--out", default=None, help="write the report here instead of RUN_DIR")
    p.add_argument("--title", default=None, help="override the stored title")
    p.add_argument("--all-records", action="store_true",
                   help="use every record in records.jsonl, not only the stored selection")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser(
        "tune", help="search architectures and training settings (KerasTuner), recording size, accuracy and time",
        description="Run (or resume) a search; one record per trial goes to DIRECTORY/records.jsonl.",
    )
    p.add_argument("models", nargs="+", help="registered names, families or fnmatch patterns, e.g. 'resnet*'")
    add_data_arguments(p, batch_size=32, data_seed=None)
    p.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    p.add_argument("--max-trials", type=int, default=10, help="trials in the whole search (default 10)")
    p.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget; no trial starts after it")
    p.add_argument("--algorithm", choices=LazyChoices(lambda: tuning.ALGORITHMS), metavar="ALGORITHM",
                   default="random", help="search algorithm: %(choices)s (default random)")
    p.add_argument("--objective", default="val_accuracy")
    p.add_argument("--direction", choices=("max", "min"), default=None)
    p.add_argument("--objectives", default=None, metavar="NAME:DIR,...",
                   help="several objectives searched together, e.g. val_accuracy:max,params:min (with "
                        "--algorithm nsga2 the search looks for their Pareto front)")
    p.add_argument("--population-size", type=int, default=None,
                   help="nsga2: trials per generation (default: max-trials/5, 4 to 50)")
    p.add_argument("--pruning", choices=("median",), default=None,
                   help="stop trials whose (first) objective trails the median of completed trials at that epoch")
    p.add_argument("--isolation", choices=("auto", "process", "none"), default="auto",
                   help="process: trials in reused worker processes (a crash is one failed trial); "
                        "none: in this process; auto (default): isolated from 20 trials on when the data and "
                        "models can be sent to a worker")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="run N trials at a time on this machine: this process serves the search to N worker "
                            "processes, each on its own GPU(s) when there are some")
    where.add_argument("--chief", default=None, metavar="HOST:PORT",
                       help="serve this search to workers on other machines (started with --worker HOST:PORT)")
    where.add_argument("--worker", default=None, metavar="HOST:PORT",
                       help="run trials of the search that a --chief serves at HOST:PORT (same command otherwise)")
    p.add_argument("--tuner-id", default=None,
                   help="this worker's id, kept across restarts so that it gets its trial back "
                        "(default: worker-HOST-$SLURM_PROCID or the process id)")
    p.add_argument("--directory", default="runs/tune")
    p.add_argument("--constraint", action="append", metavar="NAME=VALUE",
                   help=f"upper bound, repeatable: {', '.join(sorted(tuning.CONSTRAINT_FIELDS))}")
    p.add_argument("--executions", type=int, default=1, help="trainings per trial, averaged")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and of every trial (default 0)")
    add_precision_argument(p)
    add_devices_argument(p)
    add_early_stopping_arguments(p)
    p.add_argument("--tiny", action="store_true", help="use each card's tiny test sizes (quick checks)")
    _add_output_arguments(p, save_models="pareto", choices=("pareto", "best", "all"))
    p.add_argument("--overwrite", action="store_true", help="start over (old records kept as .bak)")
    p.add_argument("--no-report", action="store_true", help="do not write the report")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines; print the summary only")
    p.set_defaults(fn=cmd_tune)

    p = sub.add_parser("export", help="export a run's best model or a model file (keras, savedmodel, onnx, litert, "
                                      "openvino), verified in its own runtime",
                       description="Export the saved model of the best trial (or of --record ID) of RUN_DIR, checked "
                                   "against its record's SHA-256, or a .keras MODEL_FILE; the written file is run in "
                                   "its runtime and compared with Keras (a mismatch moves it to OUT.rejected, exit 2).",
                       epilog="Example: zoo export runs/compare --format onnx --out best.onnx")
    p.add_argument("source", metavar="RUN_DIR|MODEL_FILE", help="a comparison or search folder, or a .keras file")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--best", action="store_true", help="the best trial (the default)")
    which.add_argument("--record", default=None, metavar="ID", help="the trial with this record id")
    p.add_argument("--format", default=None, choices=("keras", "savedmodel", "onnx", "litert", "openvino"),
                   help="default: told by OUT's suffix (.keras, .onnx, .tflite, .xml)")
    p.add_argument("--out", required=True, help="the file (or SavedModel folder) to write")
    p.add_argument("--quantize", choices=("float16", "int8"), default=None,
                   help="LiteRT post-training quantisation")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest |difference| allowed, as a fraction of the largest output (default 1e-4; "
                        "float16 1e-2, int8 0.25)")
    p.set_defaults(fn=cmd_export)
