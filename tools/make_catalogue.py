"""Write zoo/models/catalogue.json, the registered models' card metadata, from the registry.

``zoo list`` reads the file instead of importing the model modules (and with them Keras); tests/test_registry.py
checks that it equals the registry. Run after adding a model or changing a card:

    .venv/bin/python tools/make_catalogue.py
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zoo.registry import CATALOGUE_FILE, card_summary, get_card, list_models  # noqa: E402


def main():
    rows = [card_summary(get_card(name)) for name in list_models()]
    with open(CATALOGUE_FILE, "w", encoding="utf-8") as f:  # one model a line, for readable diffs
        f.write("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
    print(f"{CATALOGUE_FILE}: {len(rows)} models")


if __name__ == "__main__":
    main()
