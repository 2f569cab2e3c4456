"""Runs every Python code block of README.md, top to bottom, in one namespace; prints one JSON line a block.

Used by ``tests/test_readme.py`` in a fresh process whose working folder is a temporary one holding the
files a reader brings along (``cat.jpg``, ``dog.jpg``, a ``photos/`` folder, ``pretrained.keras``) and whose
network is closed (a proxy that refuses), so the blocks that download weights fail the way they fail offline.

The blocks run as written, with two kinds of help, both listed here and both checked to be used:
- ``SCALE``: smaller numbers for a CI run (epochs, seeds, trials), never a different call;
- a comment line ``<!-- readme-test: ... -->`` just before a block says what the block does on this machine:
  ``raises NAME`` (the block shows an error), ``offline`` (it downloads: it must fail with the package's offline
  error, naming what is missing), ``excerpt PATH`` (source shown from PATH: its text must be in that file).
"""

import json
import os
import re
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
MARK = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")

# (text in a block, what a CI run uses instead): the same calls with less work
SCALE = (
    ("epochs=10,", "epochs=2,"),
    ("epochs=5", "epochs=1"),
    ("epochs=3", "epochs=1"),
    ("seeds=3", "seeds=1"),
    ("max_trials=20", "max_trials=2"),
    ("budget=40", "budget=3"),
    ("population_size=8", "population_size=2"),
    ("min_steps=100", "min_steps=4"),
    ("jit_compile=True", "jit_compile=False"),  # XLA's compile of a ResNet takes a minute on 2 CPU cores
    ("size=(256, 64, 64, 3)", "size=(32, 64, 64, 3)"),  # 32 images of the "Training fast" block, not 256
    ("size=256)", "size=32)"),
)


def blocks(path=README):
    """``[(line, language, code, mark)]`` of every fenced block; ``mark`` from a readme-test comment before it."""
    out, lines, i = [], open(path, encoding="utf-8").read().splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(2):
            i += 1
            continue
        indent, start = len(m.group(1)), i
        i += 1
        body = []
        while not FENCE.match(lines[i]):
            body.append(lines[i][indent:])
            i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        mark = MARK.search(before)
        out.append((start + 1, m.group(2), "\n".join(body) + "\n", mark.group(1) if mark else None))
        i += 1
    return out


def make_inputs():
    """The files a reader of the README has: photos of two classes, two photos, a checkpoint to transfer from."""
    import numpy as np
    from PIL import Image

    import zoo
    from zoo.data import make_shapes

    x, y, _ = make_shapes(classes=("ring", "star"), samples_per_class=24, image_size=64, seed=0)
    for k, (image, label) in enumerate(zip(x, y)):
        folder = os.path.join("photos", ("cat", "dog")[int(label)])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(np.asarray(image * 255, "uint8")).save(os.path.join(folder, f"{k}.jpg"))
    Image.fromarray(np.asarray(x[0] * 255, "uint8")).save("cat.jpg")
    Image.fromarray(np.asarray(x[1] * 255, "uint8")).save("dog.jpg")
    zoo.build("resnet20", input_shape=(32, 32, 3), num_classes=4).save("pretrained.keras")


def expect(mark, error):
    """``None`` when a block's outcome is the one its mark announces, else what went wrong."""
    kind, _, arg = (mark or "").partition(" ")
    if kind == "raises":
        if error is None:
            return f"expected {arg}, nothing was raised"
        return None if type(error).__name__ == arg else f"expected {arg}, got {type(error).__name__}: {error}"
    if kind == "offline":
        from zoo.weights.hub import WeightsDownloadError

        if error is None:
            return "expected the offline error, the block ran (was it given a file or the network?)"
        missing = isinstance(error, ValueError) and "does not exist" in str(error)  # a file the reader brings
        if not (missing or isinstance(error, (WeightsDownloadError, FileNotFoundError))):
            return f"expected the offline error, got {type(error).__name__}: {error}"
        return None
    if error is not None:
        return "".join(traceback.format_exception(error))[-3000:]
    return None


def main():
    make_inputs()
    namespace, used = {"__name__": "__readme__"}, set()
    for line, language, code, mark in blocks():
        if language != "python":
            continue
        kind, _, arg = (mark or "").partition(" ")
        if kind == "excerpt":
            source = open(os.path.join(ROOT, arg), encoding="utf-8").read()
            problem = None if code.strip() in source else f"the block is not in {arg} as written"
            print("BLOCK " + json.dumps({"line": line, "problem": problem, "seconds": 0.0}), flush=True)
            continue
        for old, new in SCALE:
            if old in code:
                code, _ = code.replace(old, new), used.add(old)
        start, error = time.perf_counter(), None
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - every outcome is reported, and compared with the block's mark
            error = e
        problem = expect(mark, error)
        print("BLOCK " + json.dumps({"line": line, "problem": problem,
                                     "seconds": round(time.perf_counter() - start, 2)}), flush=True)
    print("UNUSED " + json.dumps([old for old, _ in SCALE if old not in used]), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
