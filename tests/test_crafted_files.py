"""Crafted checkpoints and model files (issue 29, item 2): each is refused with one error naming it, in bounded memory.

The torch files are written here without torch, opcode by opcode: a pickle that calls
``torch._utils._rebuild_tensor_v2`` on a persistent storage reference, in a zip beside its
``data/<key>`` records, as ``torch.save`` lays them out. Memory is measured in one child process
that reads the files one after another: before each it resets the peak resident set size
(``/proc/self/clear_refs``; where that is refused, the peak so far only makes the bound looser)
and reports how far the peak rose above the resident size before the read.
"""

import json
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from zoo.weights.readers import CheckpointError, read_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 1 << 30
MAX_GROWTH_MB = 300
CASES = ["stride-0 16384x16384 tensor (.pth)", "stride-0 10^6x10^6 tensor (.pth)", "overlapping view (.pth)",
         "storage larger than its record (.pth)", "storage record inflating to 1 GiB (.pth)",
         "data.pkl inflating to 1 GiB (.pth)", "dicts nested 5,000 deep (.pth)", "dicts nested 5,000 deep (legacy .pt)",
         "2,000 tensors each the whole of one 1 MB storage (.pth)",
         "one dict of a 1 MB tensor under 10^5 keys (.pth)", "pickle declaring 2^60 bytes (legacy .pt)",
         "Infinity in a shape (.safetensors)", "Infinity in an offset (.safetensors)",
         "1e400 in a shape (.safetensors)", "header nested 100,000 deep (.safetensors)",
         "ten tensors sharing the same bytes (.safetensors)", "config.json inflating to 1 GiB (.keras)",
         "config.json nested 5,000 deep (.keras)"]


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _value(value):
    """The opcodes that push ``value`` (a plain Python value), without the pickle's header and STOP."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _tensor(key, numel, offset, size, stride, storage="FloatStorage"):
    """The opcodes of one ``_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``."""
    pid = b"(" + _value("storage") + _global("torch", storage) + _value(key) + _value("cpu") + _value(numel) + b"tQ"
    return (_global("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + _value(offset) + _value(tuple(size))
            + _value(tuple(stride)) + _value(False) + _global("collections", "OrderedDict") + b")RtR")


def _state_pickle(tensors):
    """A pickled dict ``{name: tensor opcodes}``."""
    return b"\x80\x02}(" + b"".join(_value(k) + v for k, v in tensors.items()) + b"u."


def _write_torch_zip(path, pickle_bytes, records, *, compress=()):
    """A ``torch.save`` zip: ``archive/data.pkl``, ``archive/data/<key>``, ``archive/version``.

    ``pickle_bytes`` and each record are bytes, or a size (that many zero bytes); the members named in
    ``compress`` (``"data.pkl"``, record keys) are deflated.
    """
    with zipfile.ZipFile(path, "w") as z:
        _write_member(z, "archive/data.pkl", pickle_bytes, "data.pkl" in compress)
        for key, data in records.items():
            _write_member(z, f"archive/data/{key}", data, key in compress)
        z.writestr("archive/version", "3\n")
    return str(path)


def _write_member(archive, name, data, compress):
    """One member: ``data`` bytes, or an int: that many zero bytes, deflated in pieces when ``compress``."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    # the fastest level: 1 GiB of zeros in 2 s (the attribute is public from Python 3.13)
    setattr(info, "compress_level" if hasattr(zipfile.ZipInfo, "compress_level") else "_compresslevel", 1)
    if isinstance(data, bytes):
        archive.writestr(info, data, compresslevel=1)
        return
    zeros = bytes(16 << 20)
    with archive.open(info, "w", force_zip64=True) as f:
        for start in range(0, data, len(zeros)):
            f.write(zeros[: min(len(zeros), data - start)])


def _write_safetensors(path, header_bytes, data=b""):
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
    return str(path)


def test_the_torch_writer_here_makes_files_the_reader_takes(tmp_path):
    """Legitimate views still load: a transpose, a slice at an offset, tied weights, an empty tensor."""
    base = np.arange(24, dtype=np.float32)
    tensors = {"transposed": _tensor("0", 24, 0, (4, 3), (1, 4)), "sliced": _tensor("0", 24, 5, (2, 3), (6, 2)),
               "tied_a": _tensor("1", 6, 0, (6,), (1,)), "tied_b": _tensor("1", 6, 0, (2, 3), (3, 1)),
               "empty": _tensor("1", 6, 0, (0, 3), (3, 1))}
    path = _write_torch_zip(tmp_path / "views.pth", _state_pickle(tensors),
                            {"0": base.tobytes(), "1": base[:6].tobytes()})
    state = read_checkpoint(path)
    np.testing.assert_array_equal(state["transposed"], base[:12].reshape(3, 4).T)
    np.testing.assert_array_equal(state["sliced"], [[5, 7, 9], [11, 13, 15]])
    np.testing.assert_array_equal(state["tied_b"], state["tied_a"].reshape(2, 3))
    assert state["empty"].shape == (0, 3)


def _crafted(folder):
    """``{case: (path, how it is read)}``: each crafted file of the issue, and a few close relatives."""
    f = folder
    one = np.ones(1, np.float32).tobytes()
    nested = b"\x80\x02}" + (_value("a") + b"}") * 5000 + b"s" * 5000 + b"."
    # a dict kept in the pickle's memo (LONG_BINPUT 999999) and fetched again (LONG_BINGET) for every key
    shared = _state_pickle({"t": _tensor("0", 2**18, 0, (2**18,), (1,))})[2:-1] + b"r\x3f\x42\x0f\x00"
    bomb = _tensor("0", GIB // 4, 0, (GIB // 4,), (1,))
    cases = {
        "stride-0 16384x16384 tensor (.pth)": _write_torch_zip(
            f / "stride0.pth", _state_pickle({"w": _tensor("0", 1, 0, (16384, 16384), (0, 0))}), {"0": one}),
        "stride-0 10^6x10^6 tensor (.pth)": _write_torch_zip(
            f / "stride0_huge.pth", _state_pickle({"w": _tensor("0", 1, 0, (10**6, 10**6), (0, 0))}), {"0": one}),
        "overlapping view (.pth)": _write_torch_zip(
            f / "overlap.pth", _state_pickle({"w": _tensor("0", 4, 0, (2, 2), (1, 1))}), {"0": one * 4}),
        "storage larger than its record (.pth)": _write_torch_zip(
            f / "short_record.pth", _state_pickle({"w": _tensor("0", 10**9, 0, (10**9,), (1,))}), {"0": one}),
        "storage record inflating to 1 GiB (.pth)": _write_torch_zip(
            f / "bomb_record.pth", _state_pickle({"w": bomb}), {"0": GIB}, compress={"0"}),
        "data.pkl inflating to 1 GiB (.pth)": _write_torch_zip(
            f / "bomb_pickle.pth", GIB, {}, compress={"data.pkl"}),
        "dicts nested 5,000 deep (.pth)": _write_torch_zip(f / "nested.pth", nested, {}),
        "dicts nested 5,000 deep (legacy .pt)": str(f / "nested_legacy.pt"),
        "2,000 tensors each the whole of one 1 MB storage (.pth)": _write_torch_zip(
            f / "copies.pth", _state_pickle({f"k{i}": _tensor("0", 2**18, 0, (2**18,), (1,)) for i in range(2000)}),
            {"0": bytes(2**20)}),
        "one dict of a 1 MB tensor under 10^5 keys (.pth)": _write_torch_zip(
            f / "shared.pth", b"\x80\x02}(" + b"".join(_value(f"k{i}") + (shared if i == 0 else b"j\x3f\x42\x0f\x00")
                                                        for i in range(10**5)) + b"u.", {"0": bytes(2**20)}),
        "pickle declaring 2^60 bytes (legacy .pt)": str(f / "huge_bytes.pt"),
        "Infinity in a shape (.safetensors)": _write_safetensors(
            f / "inf_shape.safetensors", b'{"w": {"dtype": "F32", "shape": [Infinity], "data_offsets": [0, 4]}}', one),
        "Infinity in an offset (.safetensors)": _write_safetensors(
            f / "inf_offset.safetensors", b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, Infinity]}}', one),
        "1e400 in a shape (.safetensors)": _write_safetensors(
            f / "big_shape.safetensors", b'{"w": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 4]}}', one),
        "header nested 100,000 deep (.safetensors)": _write_safetensors(
            f / "nested.safetensors", b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "ten tensors sharing the same bytes (.safetensors)": _write_safetensors(
            f / "shared.safetensors", json.dumps({f"w{i}": {"dtype": "F32", "shape": [256], "data_offsets": [0, 1024]}
                                                  for i in range(10)}).encode(), bytes(1024)),
        "config.json inflating to 1 GiB (.keras)": str(f / "bomb_config.keras"),
        "config.json nested 5,000 deep (.keras)": str(f / "nested_config.keras"),
    }
    with open(f / "nested_legacy.pt", "wb") as out:  # the legacy magic, protocol, system info, dicts, storage keys
        out.write(pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2) + pickle.dumps({}, 2) + nested
                  + pickle.dumps([], 2))
    with open(f / "huge_bytes.pt", "wb") as out:
        out.write(pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2) + pickle.dumps({}, 2)
                  + b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b"abc")
    with zipfile.ZipFile(f / "bomb_config.keras", "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        _write_member(z, "config.json", GIB, True)
        z.writestr("model.weights.h5", b"")
    with zipfile.ZipFile(f / "nested_config.keras", "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        z.writestr("config.json", "[" * 5000 + "]" * 5000)
    return cases


_CHILD = r"""
import json, resource, sys, traceback

def status(key):
    return int([line for line in open("/proc/self/status") if line.startswith(key)][0].split()[1]) // 1024

import zoo
from zoo.weights.readers import read_checkpoint
load_model = zoo.load_model  # imports Keras now, not inside a measured read
results = {}
for case, path in json.loads(sys.argv[1]).items():
    try:
        open("/proc/self/clear_refs", "w").write("5")  # the peak restarts from here
    except OSError:
        pass
    before = status("VmRSS")
    try:
        (load_model if path.endswith(".keras") else read_checkpoint)(path)
        outcome = ["accepted", ""]
    except BaseException as e:
        outcome = [type(e).__module__ + "." + type(e).__qualname__, str(e)[:600]]
    results[case] = outcome + [status("VmHWM") - before]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def crafted_results(tmp_path_factory):
    cases = _crafted(tmp_path_factory.mktemp("crafted"))
    assert list(cases) == CASES
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases)], capture_output=True, text=True,
                           env=env, timeout=300, cwd=ROOT)
    assert child.returncode == 0, child.stderr[-3000:]
    return cases, json.loads(child.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
def test_a_crafted_file_is_refused_with_one_error_naming_it_in_bounded_memory(crafted_results, case):
    cases, results = crafted_results
    kind, message, growth_mb = results[case]
    path = cases[case]
    expected = "builtins.ValueError" if path.endswith(".keras") else "zoo.weights.readers.CheckpointError"
    print(f"{case}: {kind}: {message[:200]} (peak RSS +{growth_mb} MB)")
    assert kind == expected, message
    assert path in message
    assert growth_mb < MAX_GROWTH_MB


@pytest.mark.parametrize("suffix", [".pth", "_legacy.pth", ".safetensors"])
def test_max_bytes_bounds_the_tensor_data_read(suffix):
    path = os.path.join(ROOT, "tests", "fixtures", "weights", "resnet18_basic" + suffix)
    assert len(read_checkpoint(path, max_bytes=os.path.getsize(path)))
    with pytest.raises(CheckpointError, match=re.escape(path) + r".*max_bytes"):
        read_checkpoint(path, max_bytes=1000)
