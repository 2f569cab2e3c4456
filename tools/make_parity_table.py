"""Write the README's table of torchvision parity: for every torchvision architecture the zoo builds, its
trainable parameters (the catalogue's dry count) next to torchvision's published count, torchvision's GFLOPS
(which count multiply-adds, i.e. MACs) and the default weights' published top-1.

Reads zoo/models/catalogue.json and zoo/weights/table.json only (no framework); tests/test_registry.py checks
that the README holds what this writes. Run after either file changes:

    python3 tools/make_parity_table.py
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START, END = "<!-- parity-table:start -->", "<!-- parity-table:end -->"


def parity_table(root=ROOT) -> str:
    """The table's Markdown, between its markers."""
    with open(os.path.join(root, "zoo", "models", "catalogue.json"), encoding="utf-8") as f:
        catalogue = json.load(f)
    params = {row["name"]: row.get("params") for row in catalogue}
    sizes = {row["name"]: (row.get("default_input_shape") or [None])[0] for row in catalogue}
    with open(os.path.join(root, "zoo", "weights", "table.json"), encoding="utf-8") as f:
        rows = [r for r in json.load(f)["weights"] if r["source"] == "torchvision"]
    models = {}
    for r in rows:  # one line per model: its default weights (the first entry where none is marked default)
        if r["model"] not in models or (r["default"] and not models[r["model"]]["default"]):
            models[r["model"]] = r
    lines = [START, "| model | zoo parameters | torchvision's | GFLOPS | default weights, top-1 (%) |",
             "|---|---:|---:|---:|---|"]
    for name, r in models.items():
        zoo_count = params.get(name)
        shown = "not in the catalogue" if zoo_count is None else f"{zoo_count:,}"
        crop = r.get("preprocessing", {}).get("crop")
        resized = crop not in (None, sizes.get(name))  # ViT's SWAG weights: a position embedding of a larger grid
        published = r.get("num_params_eval", r["num_params"])  # torchvision's count without auxiliary classifiers
        if zoo_count is not None and zoo_count != published and resized:
            shown += f" (at {sizes.get(name)} px; the weights' {crop} px grid differs)"
        mark = "" if zoo_count == published or resized else " ≠"
        top1 = "—" if r["top1"] is None else f"{r['top1']:.1f}"
        theirs = f"{published:,}"
        if "num_params_eval" in r:
            theirs += f" ({r['num_params']:,} with the auxiliary classifier)"
        lines.append(f"| `{name}` | {shown}{mark} | {theirs} | {r['gflops']:.2f} | "
                     f"{r['tag']}: {top1} |")
    return "\n".join(lines + [END])


def main(readme=os.path.join(ROOT, "README.md")):
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    if START not in text or END not in text:
        sys.exit(f"{readme} has no {START} ... {END} markers")
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: parity_table(), text, flags=re.S)
    with open(readme, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{readme}: parity table of {parity_table().count(chr(10)) - 3} models")


if __name__ == "__main__":
    main()
