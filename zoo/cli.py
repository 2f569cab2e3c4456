"""The ``zoo`` command line: list, info, profile, compare, report, tune, demo (and transfer/bench when installed).

Every sub-command prints one clear line on stderr and exits non-zero (2) on
bad input: an unknown model or dataset name, an impossible budget, a run
folder without records (set ``ZOO_DEBUG=1`` for the traceback instead).

Examples:
    zoo list 'resnet*'
    zoo info resnet20 --profile
    zoo compare mlp lenet5 resnet20 --data digits --epochs 5 --seeds 3 --out runs/cmp
    zoo report runs/cmp
    zoo demo
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings

from zoo.training import PRECISIONS

# Optional sub-commands that other parts of the package add when present:
# (command, module candidates). Each module must expose `add_cli_parser(subparsers)`.
_PLUGINS = {
    "tune": ("tuning.search",),
    "transfer": ("zoo.transfer",),
    "bench": ("zoo.bench", "benchmarks"),
}


def _cmd_list(args):
    import zoo

    names = zoo.list_models(args.pattern, tags=args.tag or ())
    if not names:
        raise ValueError(f"No registered model matches. Received: pattern={args.pattern!r}, tags={args.tag or []}")
    for name in names:
        card = zoo.get_card(name)
        print(f"{name:<24} {card.family:<16} {str(card.default_input_shape):<16} {card.description}")
    return 0


def _cmd_info(args):
    import zoo

    card = zoo.get_card(args.name)
    info = {
        "name": card.name,
        "family": card.family,
        "default_input_shape": card.default_input_shape,
        "min_input_size": card.min_input_size,
        "reference": card.reference,
        "tags": sorted(card.tags),
        "description": card.description,
    }
    if args.profile:
        p = zoo.profile(zoo.build(args.name))
        info.update(params=p.params, trainable_params=p.trainable_params, macs=p.macs, flops=p.flops,
                    weight_bytes=p.weight_bytes, activation_bytes=p.activation_bytes)
    print(json.dumps(info, indent=2))
    return 0


def _value(text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(value) if isinstance(value, list) else value


def _kwargs(pairs):
    """Parse ``key=value`` builder arguments; values are read as JSON when possible."""
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise ValueError(f"Arguments must look like key=value. Received: {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = _value(value)
    return out


def _model_kwargs(pairs):
    """``NAME:KEY=VALUE`` -> ``{NAME: {KEY: VALUE}}``."""
    out = {}
    for pair in pairs or ():
        name, sep, rest = pair.partition(":")
        if not sep or "=" not in rest:
            raise ValueError(f"--model-arg must look like NAME:KEY=VALUE, e.g. resnet20:width=0.5. Received: {pair!r}")
        out.setdefault(name, {}).update(_kwargs([rest]))
    return out


def _seeds(text):
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count (3) or a list (0,1,2). Received: {text!r}") from None


def _cmd_profile(args):
    import zoo

    model = zoo.build(args.name, **_kwargs(args.arg))
    print(zoo.profile(model))
    if args.speed:
        for batch in (1, args.batch_size):
            s = zoo.measure_speed(model, batch_size=batch)
            print(f"batch {batch}: {s['latency_ms']:.2f} ms/batch, {s['throughput']:.1f} samples/s")
    return 0


def _load_data(args):
    import zoo.data

    kw = _kwargs(getattr(args, "data_option", None))
    if args.image_size is not None:
        kw["image_size"] = args.image_size
    if args.channels is not None:
        kw["channels"] = args.channels
    return zoo.data.load(args.data, batch_size=args.batch_size, seed=args.data_seed, **kw)


def _fit_kwargs(args):
    kw = {"optimizer": args.optimizer, "learning_rate": args.learning_rate}
    if args.schedule != "constant":
        kw["schedule"] = args.schedule
    if args.weight_decay:
        kw["weight_decay"] = args.weight_decay
    return kw


def _cmd_compare(args):
    import zoo
    from tuning.compare import check_compatible, compare

    names = args.models
    model_kwargs = _model_kwargs(args.model_arg)
    for name in names:  # unknown names fail here, before any data is loaded
        if not any(c in name for c in "*?["):
            zoo.get_card(name)
    data = _load_data(args)
    for name in names:
        if not any(c in name for c in "*?["):
            check_compatible(name, data)
    result = compare(
        names, data=data, epochs=args.epochs, seeds=args.seeds, batch_size=args.batch_size,
        fit_kwargs=_fit_kwargs(args), out=args.out, model_kwargs=model_kwargs, title=args.title,
        measure_speed=not args.no_speed, verbose=0 if args.quiet else 2, command=["zoo", *sys.argv[1:]],
        resume=not args.fresh, precision=args.precision,
    )
    _print_summary(result.rows, result.paths)
    return 0 if any(r["completed"] for r in result.rows) else 1


def _print_summary(rows, paths):
    from tuning.report import format_summary

    print("\n" + format_summary(rows, paths))


def _cmd_report(args):
    from tuning.report import regenerate

    paths = regenerate(args.run_dir, args.out, title=args.title, all_records=args.all_records)
    with open(paths["json"], encoding="utf-8") as f:
        rows = json.load(f)
    _print_summary(rows, paths)
    return 0


def _cmd_demo(args):
    from zoo.demo import main as demo_main

    return demo_main(quick=args.quick, out=args.out, epochs=args.epochs, seeds=args.seeds, fresh=args.fresh)


def _unavailable(command, reason):
    def run(args):
        print(f"zoo {command}: not available in this installation ({reason}).", file=sys.stderr)
        return 2

    return run


def _add_plugin(sub, command, modules):
    """Let a module add its own sub-command; returns the reason it could not, or ``None``."""
    reason = f"no module among {', '.join(modules)} provides add_cli_parser"
    for module in modules:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (module == e.name or module.startswith(e.name + ".")):
                continue  # the module itself is absent
            reason = f"{module} failed to import: {e}"
            continue
        except Exception as e:  # noqa: BLE001 - a broken optional module must not break the CLI
            reason = f"{module} failed to import: {type(e).__name__}: {e}"
            continue
        add = getattr(mod, "add_cli_parser", None)
        if callable(add):
            add(sub)
            return None
    return reason


def _common_training(p, *, epochs, seeds):
    p.add_argument("--data", default="digits",
                   help="dataset: an embedded name (digits, shapes, moons, ...), tfds:NAME or folder:PATH "
                        "(default: digits)")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this size (default: the dataset's)")
    p.add_argument("--channels", type=int, default=None, help="1 (gray) or 3 (RGB) (default: the dataset's)")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                   help="dataset option, e.g. samples_per_class=100 (JSON value)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of generated data and shuffling (default 0)")
    p.add_argument("--epochs", type=int, default=epochs, help=f"training epochs per trial (default {epochs})")
    p.add_argument("--seeds", type=_seeds, default=seeds,
                   help=f"number of seeds (3: seeds 0,1,2) or a list (0,5,7) (default {seeds})")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--optimizer", default="adam", help="sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad")
    p.add_argument("--learning-rate", "--lr", type=float, default=1e-3, help="(default 1e-3)")
    p.add_argument("--schedule", default="constant", help="constant, step, exponential, cosine, warmup")
    p.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay (default 0)")
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="dtype policy the models are built under; auto: bf16 on recent GPUs, float32 on CPUs "
                        "(default float32)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="zoo", description="A Keras 3 model zoo: list, inspect, profile, compare architectures, report.",
        epilog="Run 'zoo COMMAND --help' for a command's options. 'zoo demo' runs the architecture comparison demo.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list registered models", description="List registered models.")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--tag", action="append", help="only models with this capability tag")
    p.set_defaults(fn=_cmd_list)

    p = sub.add_parser("info", help="show a model's card", description="Show a model's card as JSON.")
    p.add_argument("name")
    p.add_argument("--profile", action="store_true", help="also build it and count parameters and MACs")
    p.set_defaults(fn=_cmd_info)

    p = sub.add_parser("profile", help="per-layer parameters, MACs and memory of a model",
                       description="Per-layer parameters, MACs and memory of a model.")
    p.add_argument("name")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="builder argument (JSON value)")
    p.add_argument("--speed", action="store_true", help="also measure latency and throughput")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(fn=_cmd_profile)

    p = sub.add_parser(
        "compare", help="train several models on the same data and budget; write a report",
        description="Equal-budget architecture comparison: every model is trained on the same data, split, "
                    "epochs and seeds; records go to OUT/records.jsonl, the report to OUT/report.html "
                    "(self-contained), OUT/report.md, OUT/results.csv and OUT/plots/.",
        epilog="Example: zoo compare mlp lenet5 resnet20 --data digits --epochs 5 --seeds 3 "
               "--model-arg resnet20:width=0.5 --out runs/cmp",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="registry names or patterns ('resnet2*')")
    _common_training(p, epochs=5, seeds=3)
    p.add_argument("--model-arg", action="append", metavar="NAME:KEY=VALUE",
                   help="builder argument of one model, e.g. resnet20:width=0.5 (JSON value)")
    p.add_argument("--out", default="runs/compare", help="run folder (default runs/compare)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--no-speed", action="store_true", help="skip latency/throughput measurement")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines (one line per trial only)")
    p.add_argument("--fresh", action="store_true",
                   help="retrain every trial (default: completed trials found in OUT/records.jsonl are reused)")
    p.set_defaults(fn=_cmd_compare)

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
    p.set_defaults(fn=_cmd_report)

    for command, modules in _PLUGINS.items():
        reason = _add_plugin(sub, command, modules)
        if reason is not None and command == "tune":
            p = sub.add_parser("tune", help="hyperparameter search (not available in this installation)",
                               description=f"Hyperparameter search: not available ({reason}).")
            p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(fn=_unavailable("tune", reason))

    p = sub.add_parser(
        "demo", help="architecture comparison on embedded digits (about 5 minutes on 2 CPU cores)",
        description="Compare MLP, LeNet-5, AlexNet, ResNet-20, PreAct-ResNet-18, DenseNet-BC and VGG-11 "
                    "(small widths) on the embedded digits at 32x32 and write a report.",
    )
    p.add_argument("--quick", action="store_true", help="two tiny models, one epoch (seconds; for CI)")
    p.add_argument("--out", default=None, help="run folder (default runs/demo, runs/demo-quick with --quick)")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")
    p.add_argument("--seeds", type=_seeds, default=None, help="override the demo's seeds (default 1)")
    p.add_argument("--fresh", action="store_true", help="retrain everything (default: reuse finished trials)")
    p.set_defaults(fn=_cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # Keras warns on every fit that `shuffle` is ignored for tf.data (the pipelines shuffle themselves).
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    try:
        return args.fn(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        if os.environ.get("ZOO_DEBUG"):
            raise
        message = " ".join(str(e).split("\n")[0].split()) or type(e).__name__
        print(f"zoo {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zoo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
