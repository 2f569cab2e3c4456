"""The ``zoo`` command line: list, info, profile, demo.

Every sub-command prints one clear line and exits non-zero on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_list(args):
    import zoo

    for name in zoo.list_models(args.pattern, tags=args.tag or ()):
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


def _kwargs(pairs):
    """Parse ``key=value`` builder arguments; values are read as JSON when possible."""
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise ValueError(f"Builder arguments must look like key=value. Received: {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def _cmd_profile(args):
    import zoo

    model = zoo.build(args.name, **_kwargs(args.arg))
    print(zoo.profile(model))
    if args.speed:
        for batch in (1, args.batch_size):
            s = zoo.measure_speed(model, batch_size=batch)
            print(f"batch {batch}: {s['latency_ms']:.2f} ms/batch, {s['throughput']:.1f} samples/s")
    return 0


def _cmd_demo(args):
    from zoo.demo import main as demo_main

    return demo_main(quick=args.quick)


def build_parser():
    parser = argparse.ArgumentParser(prog="zoo", description="A Keras 3 model zoo: list, inspect, profile, train.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--tag", action="append", help="only models with this capability tag")
    p.set_defaults(fn=_cmd_list)
    p = sub.add_parser("info", help="show a model's card")
    p.add_argument("name")
    p.add_argument("--profile", action="store_true", help="also build it and count parameters and MACs")
    p.set_defaults(fn=_cmd_info)
    p = sub.add_parser("profile", help="per-layer parameters, MACs and memory of a model")
    p.add_argument("name")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="builder argument (JSON value)")
    p.add_argument("--speed", action="store_true", help="also measure latency and throughput")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(fn=_cmd_profile)
    p = sub.add_parser("demo", help="train a small model on embedded data and print a summary")
    p.add_argument("--quick", action="store_true", help="a few steps only (CI)")
    p.set_defaults(fn=_cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"zoo {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
