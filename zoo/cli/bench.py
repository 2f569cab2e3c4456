"""``zoo bench`` (and ``python -m zoo.cli bench``): training and inference speed of models and their peers."""

from __future__ import annotations

import json

from zoo import bench
from zoo.cli.args import add_precision_argument


def cmd_bench(args):
    inputs = bench.INPUTS if args.input == "both" else (args.input,)
    peers = tuple(s for s in args.peers.split(",") if s and s != "none")
    payload = bench.run(
        args.models, image_size=args.image_size, batch_size=args.batch_size, steps=args.steps, epochs=args.epochs,
        precision=args.precision, inputs=inputs, steps_per_execution=args.steps_per_execution,
        jit_compile={"auto": "auto", "true": True, "false": False}[args.jit], peers=peers,
        num_classes=args.num_classes, zoo_kwargs=json.loads(args.zoo_kwargs), torch_mode=args.torch_mode,
        out=args.out,
    )
    return 1 if payload["failed"] else 0


def add_arguments(p):
    p.add_argument("models", nargs="+", help="registered model names, e.g. resnet50 densenet121")
    p.add_argument("--image-size", type=int, default=224, help="square input size (default 224)")
    p.add_argument("--batch-size", type=int, default=64, help="(default 64)")
    p.add_argument("--steps", type=int, default=20, help="steps per epoch")
    p.add_argument("--epochs", type=int, default=3, help="the first is warm-up (compilation)")
    add_precision_argument(p)
    p.add_argument("--input", default="device", choices=bench.INPUTS + ("both",))
    p.add_argument("--steps-per-execution", type=int, default=1)
    p.add_argument("--jit", default="auto", choices=["auto", "true", "false"])
    p.add_argument("--peers", default="keras", help="comma-separated: keras, torch, none")
    p.add_argument("--torch-mode", default=None, help="torch.compile mode, e.g. reduce-overhead")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--zoo-kwargs", default="{}", help='JSON builder arguments, e.g. \'{"stem": "imagenet"}\'')
    p.add_argument("--out", default=None, help="results file: writes BASE.json, BASE.csv and a bar chart BASE.png")
    p.set_defaults(fn=cmd_bench)


def register(sub):
    p = sub.add_parser("bench", help="training/inference speed of models and their peers",
                       description=bench.__doc__.splitlines()[0])
    add_arguments(p)
