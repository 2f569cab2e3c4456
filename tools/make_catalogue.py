"""Write zoo/models/catalogue.json, the registered models' card metadata, from the registry.

``zoo list`` reads the file instead of importing the model modules (and with them Keras); tests/test_registry.py
checks that it equals the registry. Each row also carries ``params``: the trainable parameters of the builder's
defaults (its default input and classes: 1,000 for the ImageNet models), counted without allocating a weight
(``zoo.graph.dry_weight_count``). Counts already in the file are kept for models whose card did not change;
``--recount`` counts every model again. Run after adding a model or changing a card:

    .venv/bin/python tools/make_catalogue.py [--recount]
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zoo.graph import dry_weight_count  # noqa: E402
from zoo.registry import CATALOGUE_FILE, card_summary, get_card, list_models  # noqa: E402


def main(recount=False):
    try:
        with open(CATALOGUE_FILE, encoding="utf-8") as f:
            old = {row["name"]: row for row in json.load(f)}
    except FileNotFoundError:
        old = {}
    rows = []
    for name in list_models():
        card = get_card(name)
        row = card_summary(card)
        kept = old.get(name, {})
        same = not recount and {k: v for k, v in kept.items() if k != "params"} == row and "params" in kept
        row["params"] = kept["params"] if same else dry_weight_count(card.builder, trainable_only=True)
        rows.append(row)
    with open(CATALOGUE_FILE, "w", encoding="utf-8") as f:  # one model a line, for readable diffs
        f.write("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
    print(f"{CATALOGUE_FILE}: {len(rows)} models")


if __name__ == "__main__":
    main(recount="--recount" in sys.argv[1:])
