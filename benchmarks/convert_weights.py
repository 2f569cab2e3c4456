"""Converting a full-size torchvision checkpoint into the zoo model: seconds, and memory beyond the model.

    python benchmarks/convert_weights.py --out benchmarks/results/convert_weights_resnet50.json
    python benchmarks/convert_weights.py --checkpoint ~/.keras/models/resnet50-11ad3fa6.pth --out ...

Without ``--checkpoint`` it writes a ``.safetensors`` file with torchvision's resnet50 key
names and shapes (recorded in tests/fixtures/weights/full_size_keys.json) and random
values, in NumPy, so it runs offline and without torch. Measured, each in the same process:
reading the file (``read_checkpoint``), converting and assigning it (``load_state_dict``),
and loading the kept ``.weights.h5`` the next time (``zoo.weights.load``, twice). Memory is the
peak resident set size above the level after the model was built, sampled every 5 ms,
as a multiple of the checkpoint's size. Results go to ``--out`` with the machine, the
backend and the versions.
"""

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import zoo  # noqa: E402
from zoo.runtime import environment, write_json_atomic  # noqa: E402

KEYS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures", "weights",
                    "full_size_keys.json")


def write_safetensors(path, tensors):
    """A ``.safetensors`` file: an 8-byte header length, a JSON header, then the raw little-endian data."""
    header, offset = {}, 0
    for key, array in tensors.items():
        dtype = {"float32": "F32", "int64": "I64"}[array.dtype.name]
        header[key] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    blob = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for array in tensors.values():
            f.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())


def random_state_dict(arch):
    rng = np.random.default_rng(0)
    state = {}
    for key, shape in json.load(open(KEYS))[f"torchvision:{arch}"]:
        if key.endswith("num_batches_tracked"):
            state[key] = np.zeros(shape, np.int64)
        elif key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            state[key] = (rng.standard_normal(shape) * 0.01).astype(np.float32)
    return state


class PeakRSS:
    """The peak resident set size while the block runs, sampled from /proc/self/statm."""

    def __init__(self, interval=0.005):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    @staticmethod
    def now():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(self.interval)

    def __enter__(self):
        self.base = self.now()
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50", help="a torchvision architecture the zoo has")
    p.add_argument("--checkpoint", default=None, help="a real checkpoint (default: random weights, safetensors)")
    p.add_argument("--out", required=True, help="where the JSON results go")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="convert_weights_")
    try:
        if args.checkpoint:
            path = os.path.join(work, os.path.basename(args.checkpoint))
            shutil.copy(args.checkpoint, path)
        else:
            path = os.path.join(work, f"{args.model}-random.safetensors")
            write_safetensors(path, random_state_dict(args.model))
        size = os.path.getsize(path)
        start = time.perf_counter()
        model = zoo.build(args.model)
        build_s = time.perf_counter() - start
        with PeakRSS() as read_mem:
            start = time.perf_counter()
            state = zoo.weights.read_checkpoint(path)
            read_s = time.perf_counter() - start
        del state
        with PeakRSS() as convert_mem:
            start = time.perf_counter()
            # reads, converts, assigns, keeps the .weights.h5
            report = zoo.weights.load(model, path, card=zoo.get_card(args.model))
            convert_s = time.perf_counter() - start
        fresh = zoo.build(args.model)
        with PeakRSS() as kept_mem:
            start = time.perf_counter()
            kept = zoo.weights.load(fresh, path, card=zoo.get_card(args.model))
            kept_s = time.perf_counter() - start
        assert kept.key_style == "converted", kept
        same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), fresh.get_weights()))
        result = {
            "model": args.model, "checkpoint": args.checkpoint or "random weights, torchvision keys (safetensors)",
            "checkpoint_mb": size / 1e6, "params": model.count_params(), "layers_loaded": len(report.loaded),
            "build_seconds": build_s, "read_seconds": read_s, "convert_seconds": convert_s,
            "kept_weights_h5_seconds": kept_s, "kept_equals_converted": same,
            "read_peak_over_checkpoint": (read_mem.peak - read_mem.base) / size,
            "convert_peak_over_checkpoint": (convert_mem.peak - convert_mem.base) / size,
            "kept_peak_over_checkpoint": (kept_mem.peak - kept_mem.base) / size,
            "command": " ".join(sys.argv), "environment": environment(),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json_atomic(args.out, result, sort_keys=False)
    print(f"{args.model}: {size / 1e6:.0f} MB checkpoint, {result['params']:,} parameters; read {read_s:.2f} s, "
          f"convert+assign {convert_s:.2f} s (peak {result['convert_peak_over_checkpoint']:.2f}x the checkpoint), "
          f"kept .weights.h5 {kept_s:.2f} s; identical: {same}. Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
