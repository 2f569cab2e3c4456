"""Read PyTorch checkpoints (``.pth``/``.pt``/``.bin``) and ``.safetensors`` files into NumPy, without torch.

A checkpoint is untrusted input. The pickle inside a torch file is read by an
unpickler that knows only the globals that rebuild tensors and ordered dicts
(:data:`ALLOWED_GLOBALS`) and answers them with its own NumPy code; any other
global (``os.system``, ``builtins.eval``, a class to instantiate...) is refused
before anything runs. Sizes, offsets and strides are checked against the bytes
really present, so a truncated or damaged file gives one :class:`CheckpointError`
naming it.

Formats: torch's zip format (``torch.save`` since 1.6), torch's legacy format
(before 1.6; still used by some published files) and safetensors.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np

__all__ = ["CHECKPOINT_SUFFIXES", "CheckpointError", "UnsafeCheckpointError", "read_checkpoint", "ALLOWED_GLOBALS"]

# The names of the files read here, in any case (``.SAFETENSORS`` too): torch files and safetensors.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (damaged, truncated, not a checkpoint)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle asks for a global outside :data:`ALLOWED_GLOBALS`."""


# torch storage class -> NumPy dtype ("bfloat16" is widened to float32 after reading).
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16", "I64": np.int64,
    "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
ALLOWED_GLOBALS = frozenset(
    {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
     ("torch._utils", "_rebuild_parameter")} | {("torch", name) for name in _STORAGE_DTYPES}
)
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_HEADER_BYTES = 100 * 2**20  # a safetensors header larger than this is refused


def _itemsize(dtype):
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _decode(raw, dtype, count):
    if dtype == "bfloat16":  # the upper half of a float32
        bits = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=count)


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A flat array of a storage's elements, read lazily from its record."""

    def __init__(self, read, dtype, numel, path):
        self._read, self.dtype, self.numel, self.path = read, dtype, numel, path
        self._data = None

    @property
    def data(self):
        if self._data is None:
            raw = self._read()
            need = self.numel * _itemsize(self.dtype)
            if len(raw) < need:
                raise CheckpointError(f"Truncated checkpoint {self.path!r}: a storage has {len(raw)} bytes, "
                                      f"its header says {need}.")
            self._data = _decode(raw[:need], self.dtype, self.numel)
        return self._data


class _Tensor:
    """A tensor's place in its storage; made an array once every storage is readable."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self):
        return _tensor_array(self.storage, self.offset, self.size, self.stride)


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    return _Tensor(storage, offset, size, stride)


def _tensor_array(storage, offset, size, stride):
    if not isinstance(storage, _Storage) or not isinstance(offset, int):
        raise CheckpointError("A tensor in the checkpoint does not point to a storage.")
    size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    if len(size) != len(stride) or any(v < 0 for v in size + stride) or offset < 0:
        raise CheckpointError(f"Bad tensor layout in {storage.path!r}: size={size}, stride={stride}.")
    data = storage.data
    if 0 in size:
        return np.zeros(size, dtype=data.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= data.size:
        raise CheckpointError(f"Damaged checkpoint {storage.path!r}: a tensor of size {size} reaches element "
                              f"{last} of a storage of {data.size}.")
    view = np.lib.stride_tricks.as_strided(data[offset:], shape=size,
                                           strides=tuple(s * data.itemsize for s in stride), writeable=False)
    return view.copy(order="C")  # contiguous, writable, and not holding the storage


def _rebuild_parameter(data, *_ignored):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, *, path, load_storage):
        super().__init__(file)
        self.path, self.load_storage = path, load_storage

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeCheckpointError(
                f"Refusing to load {self.path!r}: its pickle asks for the global {module}.{name}, which a "
                f"state dict never needs (only tensors and ordered dicts are accepted; nothing was executed)."
            )
        if module == "collections":
            return collections.OrderedDict
        if name == "_rebuild_parameter":
            return _rebuild_parameter
        if name.startswith("_rebuild"):
            return _rebuild_tensor
        return _StorageType(name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"Unexpected record reference in {self.path!r}: {pid!r:.80}")
        return self.load_storage(str(pid[2]), pid[1].dtype, int(pid[4]))


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path!r} is a zip file but not a torch checkpoint (no <name>/data.pkl).")
        root = pickles[0][: -len("data.pkl")]
        if f"{root}byteorder" in names and archive.read(f"{root}byteorder").strip() not in (b"little", b""):
            raise CheckpointError(f"{path!r} was saved big-endian, which is not supported.")
        storages = {}

        def load_storage(key, dtype, numel):
            if key not in storages:
                record = f"{root}data/{key}"
                if record not in names:
                    raise CheckpointError(f"Damaged checkpoint {path!r}: storage record {record!r} is missing.")
                storages[key] = _Storage(lambda: archive.read(record), dtype, numel, path)
            return storages[key]

        result = _Unpickler(io.BytesIO(archive.read(pickles[0])), path=path, load_storage=load_storage).load()
        return _materialise(result)  # inside the `with`: storages read from the open archive


def _read_legacy(path):
    with open(path, "rb") as f:
        def header():
            return _Unpickler(f, path=path, load_storage=None).load()

        if header() != _LEGACY_MAGIC:
            raise CheckpointError(f"{path!r} is not a torch checkpoint (no zip archive, no legacy magic number).")
        header()  # protocol version
        header()  # system info (a dict of ints and bools)
        storages = {}

        def load_storage(key, dtype, numel):
            storages.setdefault(key, _Storage(None, dtype, numel, path))
            return storages[key]

        result = _Unpickler(f, path=path, load_storage=load_storage).load()
        keys = _Unpickler(f, path=path, load_storage=None).load()
        if not isinstance(keys, list) or set(keys) != set(storages):
            raise CheckpointError(f"Damaged checkpoint {path!r}: the storage list does not match the tensors.")
        for key in keys:
            storage = storages[key]
            raw = f.read(8)
            if len(raw) < 8:
                raise CheckpointError(f"Truncated checkpoint {path!r}: storage {key!r} is missing.")
            numel = struct.unpack("<q", raw)[0]
            if numel != storage.numel:
                raise CheckpointError(f"Damaged checkpoint {path!r}: storage {key!r} has {numel} elements, "
                                      f"its tensors expect {storage.numel}.")
            data = f.read(numel * _itemsize(storage.dtype))
            storage._read = lambda data=data: data
    return _materialise(result)


def _materialise(obj):
    """Turn the unpickled tensors into NumPy arrays."""
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v)) for k, v in obj.items())
    return obj.array() if isinstance(obj, _Tensor) else obj


def _read_safetensors(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"Truncated safetensors file {path!r}.")
        (n,) = struct.unpack("<Q", raw)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"Damaged safetensors file {path!r}: header of {n} bytes in a file of {size}.")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"Damaged safetensors file {path!r}: its header is not JSON ({e}).") from None
        if not isinstance(header, dict):
            raise CheckpointError(f"Damaged safetensors file {path!r}: its header is not a mapping.")
        header.pop("__metadata__", None)
        out = collections.OrderedDict()
        start = 8 + n
        for key, info in sorted(header.items(), key=lambda kv: kv[1].get("data_offsets", [0])[0]
                                if isinstance(kv[1], dict) else 0):
            try:
                dtype = _SAFETENSORS_DTYPES[info["dtype"]]
                shape = tuple(int(v) for v in info["shape"])
                begin, end = (int(v) for v in info["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise CheckpointError(f"Damaged safetensors file {path!r}: bad entry for {key!r}: {info!r:.100}") from None
            count = int(np.prod(shape, dtype=np.int64))
            if begin < 0 or end < begin or end - begin != count * _itemsize(dtype) or start + end > size:
                raise CheckpointError(f"Damaged or truncated safetensors file {path!r}: tensor {key!r} "
                                      f"(bytes {begin}..{end}) does not fit the file.")
            f.seek(start + begin)
            out[key] = _decode(f.read(end - begin), dtype, count).reshape(shape).copy()
    return out


def read_checkpoint(path):
    """The tensors of a checkpoint file as ``{name: numpy array}`` (bfloat16 widened to float32).

    Args:
        path: a ``.safetensors`` file or a torch file (zip or legacy format). A checkpoint
            holding ``{"state_dict": ...}`` or ``{"model": ...}`` gives that inner dict.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the pickle asks for anything but tensors and ordered dicts.
        CheckpointError: the file is damaged, truncated or not a checkpoint.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file path. Received: path={path!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path!r}.")
    with open(path, "rb") as f:
        head = f.read(9)
    try:
        # by its suffix in any case, or by its bytes: a little-endian header length, then the JSON header
        if path.lower().endswith(".safetensors") or (len(head) == 9 and head[8:9] == b"{"
                                                     and not head.startswith(b"PK")):
            state = _read_safetensors(path)
        elif head.startswith(b"PK"):
            state = _read_zip(path)
        else:
            state = _read_legacy(path)
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, struct.error, ValueError, KeyError,
            IndexError, TypeError, AttributeError, OSError) as e:
        raise CheckpointError(f"Could not read checkpoint {path!r}: damaged or truncated ({type(e).__name__}: "
                              f"{e}).") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise CheckpointError(f"{path!r} does not hold a state dict of tensors.")
    return state
