"""``zoo list``, ``zoo info``, ``zoo profile``: the registry and what a model costs."""

from __future__ import annotations

import json

from zoo.cli.args import add_data_arguments, load_data, parse_kwargs


def cmd_list(args):
    from zoo.registry import catalogue  # the registry's cards, without importing the models (and Keras)

    rows = catalogue(args.pattern, tags=args.tag or ())
    if not rows:
        raise ValueError(f"No registered model matches. Received: pattern={args.pattern!r}, tags={args.tag or []}")
    print(f"{'name':<24} {'family':<16} {'input':<16} {'parameters':>12}  description")
    for row in rows:
        shape = str(tuple(row["default_input_shape"]))
        params = f"{row['params']:,}" if row.get("params") is not None else "?"
        print(f"{row['name']:<24} {row['family']:<16} {shape:<16} {params:>12}  {row['description']}")
    return 0


def cmd_info(args):
    import zoo  # light: its public names load on first use
    from zoo.registry import card_summary, catalogue

    # the catalogue answers without importing the model modules (and Keras); an unknown name goes to the
    # registry, whose error lists close matches
    rows = [] if any(c in args.name for c in "*?[") else catalogue(args.name)
    if not rows:
        rows = [card_summary(zoo.get_card(args.name))]
    info = dict(rows[0])
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


def cmd_lr_find(args):
    import zoo

    data = load_data(args)
    kwargs = {"input_shape": tuple(data.input_shape), **parse_kwargs(args.arg)}
    if data.task != "regression":
        kwargs.setdefault("num_classes", data.num_classes)
    model = zoo.build(args.name, **kwargs)
    result = zoo.training.lr_find(model, data.train, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps,
                                  optimizer=args.optimizer, seed=args.seed)
    path = result.plot(args.out)
    rates = f"{result.rates[0]:.1e} .. {result.rates[-1]:.1e}"
    print(f"lr-find {args.name} on {data.name}: {len(result.losses)} batches, learning rates {rates}"
          + (" (stopped: the loss diverged)" if result.stopped_early else ""))
    print((f"suggested learning rate: {result.suggestion:.3g} ({result.note})" if result.suggestion is not None
           else f"no suggestion: {result.note} (widen --start-lr/--end-lr or check the data)"))
    print(f"plot: {path}")
    return 0 if result.suggestion is not None else 1


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

    p = sub.add_parser("lr-find", help="learning-rate range test: the loss against an exponentially growing rate",
                       description="Train a model for a few batches while the learning rate grows from --start-lr "
                                   "to --end-lr; print the rate where the loss falls fastest and plot the curve.")
    p.add_argument("name", help="registered model name")
    add_data_arguments(p, batch_size=32)
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="builder argument (JSON value)")
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=100, help="batches in the sweep (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="lr_find.png", help="the plot (default lr_find.png)")
    p.set_defaults(fn=cmd_lr_find)
