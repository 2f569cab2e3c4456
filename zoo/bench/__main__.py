"""``python -m zoo.bench ...``: the same as ``zoo bench ...`` (an entry point, like ``zoo``)."""

import sys

from zoo.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
