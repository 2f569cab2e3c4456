"""What a trial's per-epoch checkpoint costs: the variables file the package writes against a ``.keras`` file.

Per model, one epoch of training on digits at 32x32 (so that the optimizer holds its slots), then ``--repeats``
alternated writes of each kind into a temporary folder: ``tuning.artifacts.save_variables`` (the model's,
its optimizer's and random generators' variables as one ``.npz``, what ``EpochCheckpoint`` writes every epoch)
and ``model.save(F.keras)`` (what it wrote before), with the file's SHA-256 in both (the state names it:
``save_variables`` hashes the bytes it writes, a ``.keras`` file is read back). The
minimum and median milliseconds of each, and the files' sizes.

Run:
    python benchmarks/checkpoint_cost.py --out /tmp/checkpoint_cost.json     # convnet, lenet5, resnet20; 5 repeats
    python benchmarks/checkpoint_cost.py --models mlp --repeats 2 --out /tmp/c.json

Results (machine, backend and versions included) go to ``--out`` only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import zoo  # noqa: E402
import zoo.data  # noqa: E402
from tuning.artifacts import _sha256, save_variables  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402


def _keras_file(model, path):
    model.save(path)
    return _sha256(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["convnet", "lenet5", "resnet20"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    data = zoo.data.load("digits", image_size=32)
    results = {}
    for name in args.models:
        keras.utils.set_random_seed(0)
        model = zoo.build(name, input_shape=data.input_shape, num_classes=data.num_classes)
        zoo.training.fit(model, data.restarted().train, data.validation, epochs=1, verbose=0)
        times = {"variables": [], "keras": []}
        sizes = {}
        with tempfile.TemporaryDirectory() as folder:
            for i in range(args.repeats):
                for kind, write, suffix in (("variables", save_variables, ".npz"), ("keras", _keras_file, ".keras")):
                    path = os.path.join(folder, f"{kind}-{i}{suffix}")
                    start = time.perf_counter()
                    write(model, path)  # and the file's SHA-256
                    times[kind].append((time.perf_counter() - start) * 1e3)
                    sizes[kind] = os.path.getsize(path)
        results[name] = {"params": model.count_params(), "bytes": sizes,
                         **{f"{kind}_ms": {"min": min(t), "median": statistics.median(t), "all": t}
                            for kind, t in times.items()}}
        print(f"{name}: variables file {min(times['variables']):.1f} ms ({sizes['variables'] / 1e6:.2f} MB), "
              f".keras {min(times['keras']):.1f} ms ({sizes['keras'] / 1e6:.2f} MB) (minimum of {args.repeats})",
              flush=True)
        del model
        keras.backend.clear_session()
    write_json_atomic(args.out, {"benchmark": "checkpoint_cost", "repeats": args.repeats, "models": results,
                                 "load_average": os.getloadavg(), "environment": environment(),
                                 "date": time.strftime("%Y-%m-%d")})


if __name__ == "__main__":
    main()
