"""The ``zoo`` command line: the one place that imports both ``zoo`` and ``tuning``.

One module per command group (``models``: list/info/profile; ``weights``:
weights list/convert/fetch/verify and predict; ``evaluation``: evaluate; ``experiments``:
compare/report/tune; ``transfer``; ``bench``; ``demo``), one module of argument
helpers (``args``), and the command table below. Every sub-command prints one
clear line on stderr and exits with status 2 on bad input: an unknown model or
dataset name, an impossible budget, a run folder without records, a full disk (set
``ZOO_DEBUG=1`` for the traceback instead).

Examples:
    zoo list 'resnet*'
    zoo info resnet20 --profile
    zoo compare mlp lenet5 resnet20 --data digits --epochs 5 --seeds 3 --out runs/cmp
    zoo report runs/cmp
    zoo weights list 'resnet*'
    zoo predict resnet50 photo.jpg --weights IMAGENET1K_V2
    zoo demo
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from zoo.cli import bench, demo, evaluation, experiments, models, transfer, weights
from zoo.runtime import is_disk_full, quiet_framework_start

# The command groups, in the order `zoo --help` lists their commands; each adds its sub-parsers.
COMMAND_GROUPS = (models, weights, evaluation, experiments, transfer, bench, demo)

__all__ = ["COMMAND_GROUPS", "build_parser", "main"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="zoo", description="A Keras 3 model zoo: list, inspect, profile, compare architectures, report.",
        epilog="Run 'zoo COMMAND --help' for a command's options. 'zoo demo' runs the architecture comparison demo.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    _add_verbose(parser)
    return parser


def _add_verbose(parser, top=True):
    """``--verbose`` before or after any command: the frameworks' start-up lines and native logs are shown."""
    parser.add_argument("--verbose", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="show TensorFlow's start-up lines and native log messages (hidden by default)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_verbose(child, top=False)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.verbose:
        quiet_framework_start()
    # Keras warns on every fit that `shuffle` is ignored for tf.data (the pipelines shuffle themselves).
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    try:
        return args.fn(args)
    except (ValueError, TypeError, OSError) as e:  # WeightsDownloadError is an OSError
        from zoo.weights.hub import WeightsDownloadError  # here: the weights package is not every command's

        named = not isinstance(e, OSError) or isinstance(e, (FileNotFoundError, WeightsDownloadError))
        if os.environ.get("ZOO_DEBUG") or not (named or is_disk_full(e)):  # other OS errors keep their traceback
            raise
        first, *body = [line for line in str(e).split("\n") if line.strip()] or [type(e).__name__]
        print(f"zoo {args.command}: error: {' '.join(first.split())}", file=sys.stderr)
        for line in body:  # the details of a multi-line error (e.g. each problem of an image folder)
            print(f"  {line.strip()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zoo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
