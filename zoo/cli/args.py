"""Argument helpers shared by the ``zoo`` sub-commands: ``KEY=VALUE`` parsing and common option groups."""

from __future__ import annotations

import argparse
import json

from zoo.runtime import PRECISIONS


def value(text):
    """A command-line value: JSON when it parses (lists become tuples), else the text itself."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(parsed) if isinstance(parsed, list) else parsed


def parse_kwargs(pairs) -> dict:
    """``["key=value", ...]`` -> ``{key: value}``; values are read as JSON when possible."""
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise ValueError(f"Arguments must look like key=value. Received: {pair!r}")
        key, text = pair.split("=", 1)
        out[key.strip()] = value(text)
    return out


def parse_model_kwargs(pairs) -> dict:
    """``NAME:KEY=VALUE`` -> ``{NAME: {KEY: VALUE}}``."""
    out = {}
    for pair in pairs or ():
        name, sep, rest = pair.partition(":")
        if not sep or "=" not in rest:
            raise ValueError(f"--model-arg must look like NAME:KEY=VALUE, e.g. resnet20:width=0.5. Received: {pair!r}")
        out.setdefault(name, {}).update(parse_kwargs([rest]))
    return out


def parse_constraints(pairs) -> dict:
    """``["max_params=1e5", ...]`` -> ``{"max_params": 100000.0}``."""
    out = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep:
            raise ValueError(f"--constraint must look like max_params=1e5. Received: {pair!r}")
        try:
            out[key.strip()] = float(text)
        except ValueError:
            raise ValueError(f"--constraint {key} needs a number. Received: {pair!r}") from None
    return out


def seeds(text):
    """``3`` (seeds 0, 1, 2) or ``0,5,7``."""
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count (3) or a list (0,1,2). Received: {text!r}") from None


class LazyChoices:
    """Choices read from ``load()`` when first needed (a value to check, ``COMMAND --help``), not when the
    parser is built: ``zoo --help`` then imports no module the choices live in. Give the option a
    ``metavar``, else argparse lists the choices at once."""

    def __init__(self, load):
        self._load = load

    def __iter__(self):
        return iter(self._load())

    def __contains__(self, value):
        return value in self._load()

    def __len__(self):
        return len(self._load())


def add_data_arguments(p, *, data="digits", batch_size=64, image_size=None, channels=None, data_seed=0):
    """``--data``, ``--image-size``, ``--channels``, ``--data-option``, ``--data-seed``, ``--batch-size``.

    ``data_seed=None``: the data follow the command's ``--seed``.
    """
    def default(v):
        return "the dataset's" if v is None else v

    p.add_argument("--data", default=data,
                   help=f"dataset: an embedded name (digits, shapes, moons, ...), tfds:NAME or folder:PATH "
                        f"(default: {data})")
    p.add_argument("--image-size", type=int, default=image_size,
                   help=f"resize images to this size (default: {default(image_size)})")
    p.add_argument("--channels", type=int, default=channels,
                   help=f"1 (gray), 3 (RGB) or 4 (RGBA) (default: {default(channels)})")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                   help="dataset option, e.g. samples_per_class=100 (JSON value)")
    p.add_argument("--data-seed", type=int, default=data_seed,
                   help="seed of generated data, splits and shuffling (default: "
                        + ("--seed)" if data_seed is None else f"{data_seed})"))
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"batch size (default {batch_size})")


def load_data(args):
    """The data set the options of :func:`add_data_arguments` describe."""
    import zoo.data

    kw = parse_kwargs(args.data_option)
    if args.image_size is not None:
        kw["image_size"] = args.image_size
    if args.channels is not None:
        kw["channels"] = args.channels
    seed = args.seed if args.data_seed is None else args.data_seed
    return zoo.data.load(args.data, batch_size=args.batch_size, seed=seed, **kw)


def add_precision_argument(p):
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="dtype policy the models are built under; auto: bf16 on recent GPUs, float32 on CPUs "
                        "(default float32)")


def devices_value(text):
    """``--devices`` value: a whole number >= 1 or ``all`` (checked again, with the machine's count, before training)."""
    if text == "all":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--devices takes a number of local devices (1, 2, ...) or 'all', not {text!r}")
    return int(text)


def add_devices_argument(p):
    p.add_argument("--devices", type=devices_value, default=None, metavar="N|all",
                   help="train each model on N local devices (or all) with one global batch: synchronous data "
                        "parallelism (JAX: keras.distribution.DataParallel; TensorFlow: MirroredStrategy); on a CPU, "
                        "ZOO_VIRTUAL_CPUS=N splits it (default: the default device)")


def add_early_stopping_arguments(p):
    """``--patience`` and ``--min-delta`` (compare, tune, transfer)."""
    p.add_argument("--patience", type=int, default=None,
                   help="stop a training when the validation metric has not improved for this many epochs, "
                        "keeping its best epoch's weights (default: train every epoch)")
    p.add_argument("--min-delta", type=float, default=0.0, help="smallest change counted as an improvement")


def add_training_arguments(p, *, epochs, seeds_default):
    """Budget and optimizer options of the training commands (compare)."""
    p.add_argument("--epochs", type=int, default=epochs, help=f"training epochs per trial (default {epochs})")
    p.add_argument("--seeds", type=seeds, default=seeds_default,
                   help=f"number of seeds (3: seeds 0,1,2) or a list (0,5,7) (default {seeds_default})")
    p.add_argument("--optimizer", default="adam", help="sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad")
    p.add_argument("--learning-rate", "--lr", type=float, default=1e-3, help="(default 1e-3)")
    p.add_argument("--schedule", default="constant", metavar="SCHEDULE",
                   help="learning-rate schedule: constant, step, exponential, cosine, warmup, onecycle, plateau")
    p.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay (default 0)")
    add_early_stopping_arguments(p)
    add_precision_argument(p)
    add_devices_argument(p)


def training_config(args, **fields):
    """A ``zoo.training.TrainingConfig`` from the options of :func:`add_training_arguments` (those the
    parser has), :func:`add_precision_argument` and :func:`add_early_stopping_arguments`, plus ``fields``."""
    from zoo.training import TrainingConfig

    given = {k: getattr(args, k) for k in ("epochs", "batch_size", "optimizer", "learning_rate", "schedule",
                                           "weight_decay", "precision", "patience", "min_delta", "devices")
             if hasattr(args, k)}
    return TrainingConfig(**{**{k: v for k, v in given.items() if v is not None}, **fields})
