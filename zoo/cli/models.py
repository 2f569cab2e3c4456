"""``zoo list``, ``zoo info``, ``zoo profile``: the registry and what a model costs."""

from __future__ import annotations

import json

from zoo.cli.args import parse_kwargs


def cmd_list(args):
    import zoo

    names = zoo.list_models(args.pattern, tags=args.tag or ())
    if not names:
        raise ValueError(f"No registered model matches. Received: pattern={args.pattern!r}, tags={args.tag or []}")
    for name in names:
        card = zoo.get_card(name)
        print(f"{name:<24} {card.family:<16} {str(card.default_input_shape):<16} {card.description}")
    return 0


def cmd_info(args):
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


def cmd_profile(args):
    import zoo

    model = zoo.build(args.name, **parse_kwargs(args.arg))
    print(zoo.profile(model))
    if args.speed:
        for batch in (1, args.batch_size):
            s = zoo.measure_speed(model, batch_size=batch)
            print(f"batch {batch}: {s['latency_ms']:.2f} ms/batch, {s['throughput']:.1f} samples/s")
    return 0


def register(sub):
    p = sub.add_parser("list", help="list registered models", description="List registered models.")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--tag", action="append", help="only models with this capability tag")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("info", help="show a model's card", description="Show a model's card as JSON.")
    p.add_argument("name")
    p.add_argument("--profile", action="store_true", help="also build it and count parameters and MACs")
    p.set_defaults(fn=cmd_info)

    p = sub.add_parser("profile", help="per-layer parameters, MACs and memory of a model",
                       description="Per-layer parameters, MACs and memory of a model.")
    p.add_argument("name")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="builder argument (JSON value)")
    p.add_argument("--speed", action="store_true", help="also measure latency and throughput")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(fn=cmd_profile)
