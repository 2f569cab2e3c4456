"""Runs examples' ``main(["--fast", "--out", OUT/NAME])`` one after another in this fresh process; prints one
JSON line an example (its return code, its stdout, the traceback of an error).

Used by ``tests/test_examples.py``: one process for several examples instead of one each saves TensorFlow's
start-up (seconds) per example. Between two examples the state an example may leave is reset: Keras' session
and global dtype policy, matplotlib's figures; each starts in the repository's root.

    python tests/examples_runner.py OUT t1_sinusoid.py t2_binary.py ...
"""

import contextlib
import importlib.util
import io
import json
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, out):
    """``(return code, stdout, error)`` of one example's ``main`` in fast mode."""
    spec = importlib.util.spec_from_file_location(f"example_{script[:-3]}", os.path.join(ROOT, "examples", script))
    module = importlib.util.module_from_spec(spec)
    stdout, code, error = io.StringIO(), None, None
    try:
        with contextlib.redirect_stdout(stdout):
            spec.loader.exec_module(module)
            code = module.main(["--fast", "--out", out])
    except SystemExit as e:
        code = e.code
    except Exception:  # noqa: BLE001 - reported with the example's name; the next example still runs
        error = traceback.format_exc()[-3000:]
    return code, stdout.getvalue(), error


def reset():
    import keras
    import matplotlib.pyplot as plt

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    plt.close("all")


def main(argv):
    out_root, scripts = argv[0], argv[1:]
    for script in scripts:
        os.chdir(ROOT)
        start = time.perf_counter()
        code, stdout, error = run(script, os.path.join(out_root, script[:-3]))
        print("EXAMPLE " + json.dumps({"script": script, "code": code, "stdout": stdout, "error": error,
                                       "seconds": round(time.perf_counter() - start, 2)}), flush=True)
        reset()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
