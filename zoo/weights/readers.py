"""Read PyTorch checkpoints (``.pth``/``.pt``/``.bin``) and ``.safetensors`` files into NumPy, without torch.

A checkpoint is untrusted input. The pickle inside a torch file is read by an
unpickler that knows only the globals that rebuild tensors and ordered dicts
(:data:`ALLOWED_GLOBALS`) and answers them with its own NumPy code; any other
global (``os.system``, ``builtins.eval``, a class to instantiate...) is refused
before anything runs. Sizes, offsets and strides are checked against the bytes
really present, so a truncated or damaged file gives one :class:`CheckpointError`
naming it. Every allocation is bounded by what the file holds before it is made: a
tensor must address each element of its storage at most once (no zero strides, no
overlapping views), a storage must fit its record, a zip member may not inflate past
its declared size nor the archive past ``MAX_EXPANSION`` times its size on disk, the
pickle of a zip is at most ``MAX_PICKLE_BYTES``, and nesting (dicts in the pickle, JSON
in a safetensors header) is at most ``MAX_DEPTH`` levels.

Formats: torch's zip format (``torch.save`` since 1.6), torch's legacy format
(before 1.6; still used by some published files) and safetensors.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import reprlib
import struct
import zipfile

import numpy as np

__all__ = ["CHECKPOINT_SUFFIXES", "CheckpointError", "UnsafeCheckpointError", "read_checkpoint", "ALLOWED_GLOBALS",
           "parse_json", "read_zip_member"]

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
MAX_PICKLE_BYTES = 64 * 2**20  # a state dict's pickle holds names and layouts only: ResNet-50's is 33 kB
MAX_DEPTH = 64  # a state dict nests a few dicts deep, a safetensors header 3 levels: deeper is damage
# torch stores its records uncompressed; a re-zipped checkpoint inflates its weights little (zero-initialised
# buffers compress best): an archive inflating to more than this multiple of its size, plus the floor, is a bomb
MAX_EXPANSION, EXPANSION_FLOOR = 100, 16 * 2**20
_CHUNK = 16 * 2**20  # zip members are read in pieces this large into one preallocated buffer
_short = reprlib.Repr()  # bounded repr of untrusted values (nesting, length) for messages
_short.maxlevel, _short.maxstring, _short.maxother = 3, 60, 60


def parse_json(raw, *, max_depth=MAX_DEPTH):
    """The value of the JSON text ``raw``, refusing ``NaN``/``Infinity`` and nesting deeper than ``max_depth``.

    Raises:
        ValueError: not JSON, a non-finite constant, or too deep; the message says why (callers add the file).
    """
    def refuse(token):
        raise ValueError(f"holds {token}, which is not a finite number")

    try:
        value = json.loads(raw, parse_constant=refuse)
    except RecursionError:
        raise ValueError(f"is nested deeper than {max_depth} levels") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits, refuse()
        raise ValueError(str(e) if str(e).startswith("holds ") else f"is not JSON ({e})") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise ValueError(f"is nested deeper than {max_depth} levels")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return value


def read_zip_member(archive, info, count, *, path):
    """The first ``count`` bytes of ``archive``'s member ``info`` (a ``ZipInfo``), read in bounded pieces.

    ``count`` must not exceed ``info.file_size`` (the caller checks the declared size against its own
    bounds first); zipfile stops inflating at the declared size, so a lying header cannot inflate further.

    Raises:
        CheckpointError: the member holds fewer bytes than declared (naming ``path``).
    """
    if count > info.file_size:
        raise CheckpointError(f"Damaged file {path!r}: {info.filename!r} holds {info.file_size} bytes, "
                              f"{count} are needed.")
    buf = np.empty(count, dtype=np.uint8)
    view = memoryview(buf)
    done = 0
    with archive.open(info) as member:
        while done < count:
            piece = member.read(min(_CHUNK, count - done))
            if not piece:
                raise CheckpointError(f"Truncated file {path!r}: {info.filename!r} ends after {done} of its "
                                      f"{count} bytes.")
            view[done:done + len(piece)] = piece
            done += len(piece)
    return buf


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _Budget:
    """Bytes a reader may still allocate for one file; refuses the allocation that would pass it."""

    def __init__(self, path, limit, what, unit="bytes"):
        self.path, self.limit, self.what, self.unit, self.used = path, limit, what, unit, 0

    def take(self, amount, item):
        if self.limit is not None and self.used + amount > self.limit:
            raise CheckpointError(f"Refusing {self.path!r}: {item} would bring {self.what} to "
                                  f"{self.used + amount:,} {self.unit}, over the {self.limit:,} allowed.")
        self.used += amount


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
    def nbytes(self):
        return self.numel * _itemsize(self.dtype)

    @property
    def data(self):
        if self._data is None:
            raw = self._read(self.nbytes)  # the reader checks the bytes are there before allocating
            if len(raw) < self.nbytes:
                raise CheckpointError(f"Truncated checkpoint {self.path!r}: a storage has {len(raw)} bytes, "
                                      f"its header says {self.nbytes}.")
            self._data = _decode(raw[:self.nbytes], self.dtype, self.numel)
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
    if not isinstance(storage, _Storage) or not _is_count(offset):
        raise CheckpointError("A tensor in the checkpoint does not point to a storage.")
    if (not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)) or len(size) != len(stride)
            or len(size) > 32 or not all(_is_count(v) for v in (*size, *stride))):
        raise CheckpointError(f"Bad tensor layout in {storage.path!r}: size={_short.repr(size)}, "
                              f"stride={_short.repr(stride)}.")
    size, stride = tuple(size), tuple(stride)
    # A saved tensor is its storage or a view of it (a slice, a transpose): it addresses each element at most
    # once, so it is never larger than its storage. Sorted by stride, each dimension must step past everything
    # the smaller ones reach; a zero stride (an expanded tensor) or an overlap would repeat elements.
    span = 1
    for s, n in sorted((s, n) for n, s in zip(size, stride) if n > 1):
        if s < span:
            why = "repeats one element (a zero stride)" if s == 0 else "addresses elements more than once"
            raise CheckpointError(f"Refusing {storage.path!r}: a tensor of size {size} and stride {stride} {why}; "
                                  f"a saved tensor holds each element of its storage at most once.")
        span = s * (n - 1) + span
    if math.prod(size) and offset + span > storage.numel:
        raise CheckpointError(f"Damaged checkpoint {storage.path!r}: a tensor of size {size} reaches element "
                              f"{offset + span - 1} of a storage of {storage.numel}.")
    data = storage.data
    if 0 in size:
        return np.zeros(size, dtype=data.dtype)
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
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], (str, int)) and _is_count(pid[4])):
            raise CheckpointError(f"Unexpected record reference in {self.path!r}: {_short.repr(pid)}")
        return self.load_storage(str(pid[2]), pid[1].dtype, pid[4])

    def load(self):
        try:
            return super().load()
        except MemoryError:  # an opcode declaring more bytes than exist: refused by malloc, nothing touched
            raise CheckpointError(f"Damaged checkpoint {self.path!r}: its pickle declares an object larger "
                                  f"than memory.") from None


def _read_zip(path, max_bytes):
    inflated = _Budget(path, MAX_EXPANSION * os.path.getsize(path) + EXPANSION_FLOOR,
                       f"the archive inflated (at most {MAX_EXPANSION} times its size on disk)")
    wanted = _Budget(path, max_bytes, "the tensor data (max_bytes)")
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        pickles = [n for n in infos if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path!r} is a zip file but not a torch checkpoint (no <name>/data.pkl).")
        root = pickles[0][: -len("data.pkl")]

        def member(name, count, what):
            inflated.take(count, what)
            return read_zip_member(archive, infos[name], count, path=path)

        order = infos.get(f"{root}byteorder")
        if order is not None and member(order.filename, min(order.file_size, 16), "the byteorder record"
                                        ).tobytes().strip() not in (b"little", b""):
            raise CheckpointError(f"{path!r} was saved big-endian, which is not supported.")
        storages = {}

        def load_storage(key, dtype, numel):
            if key not in storages:
                record = f"{root}data/{key}"
                if record not in infos:
                    raise CheckpointError(f"Damaged checkpoint {path!r}: storage record {record!r} is missing.")
                storage = _Storage(lambda count: member(record, count, f"storage record {record!r}"), dtype,
                                   numel, path)
                if storage.nbytes > infos[record].file_size:
                    raise CheckpointError(f"Damaged checkpoint {path!r}: storage record {record!r} holds "
                                          f"{infos[record].file_size} bytes, its tensors need {storage.nbytes}.")
                wanted.take(storage.nbytes, f"storage record {record!r}")
                storages[key] = storage
            return storages[key]

        size = infos[pickles[0]].file_size
        if size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"Refusing {path!r}: its {pickles[0]!r} declares {size:,} bytes, over the "
                                  f"{MAX_PICKLE_BYTES:,} a state dict's pickle may have.")
        raw = member(pickles[0], size, repr(pickles[0]))
        result = _Unpickler(io.BytesIO(raw), path=path, load_storage=load_storage).load()
        # inside the `with`: storages are read from the open archive
        return _materialise(result, path, sum(s.numel for s in storages.values()))


def _read_legacy(path, max_bytes):
    size = os.path.getsize(path)
    wanted = _Budget(path, max_bytes, "the tensor data (max_bytes)")
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
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or set(keys) != set(storages):
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
            if storage.nbytes > size - f.tell():
                raise CheckpointError(f"Truncated checkpoint {path!r}: storage {key!r} needs {storage.nbytes} "
                                      f"bytes, {size - f.tell()} are left in the file.")
            wanted.take(storage.nbytes, f"storage {key!r}")
            data = f.read(storage.nbytes)
            storage._read = lambda count, data=data: data
    return _materialise(result, path, sum(s.numel for s in storages.values()))


def _materialise(obj, path, storage_elements):
    """Turn the unpickled tensors into NumPy arrays, at most ``MAX_DEPTH`` dicts deep.

    A dict or tensor the pickle refers to twice is made once (a pickle may share one object under many
    keys), and the tensors together may hold at most 4 times the storages' elements: tied weights are two
    tensors of one storage, and a pickle cannot make many more bytes than its records hold.
    """
    copies = _Budget(path, 4 * storage_elements, "the tensors", "elements (4 times their storages')")
    done = {}

    def walk(item, depth):
        if id(item) in done:
            return done[id(item)]
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                raise CheckpointError(f"Refusing {path!r}: its dicts are nested deeper than {MAX_DEPTH} levels.")
            out = done[id(item)] = collections.OrderedDict()
            for key, value in item.items():
                out[key] = walk(value, depth + 1)
            return out
        if isinstance(item, _Tensor):
            out = done[id(item)] = item.array()  # checked against its storage: at most the storage's size
            copies.take(out.size, "a tensor")
            return out
        return item

    return walk(obj, 0)


def _safetensors_entry(path, key, info):
    """``(begin, end, dtype, shape)`` of one header entry, every number a non-negative integer."""
    def counts(value, length=None):
        return (isinstance(value, list) and (length is None or len(value) == length) and len(value) <= 32
                and all(_is_count(v) for v in value))

    if (not isinstance(info, dict) or not isinstance(info.get("dtype"), str)
            or info["dtype"] not in _SAFETENSORS_DTYPES or not counts(info.get("shape"))
            or not counts(info.get("data_offsets"), 2)):
        raise CheckpointError(f"Damaged safetensors file {path!r}: bad entry for {_short.repr(key)}: "
                              f"{_short.repr(info)}")
    begin, end = info["data_offsets"]
    return begin, end, _SAFETENSORS_DTYPES[info["dtype"]], tuple(info["shape"])


def _read_safetensors(path, max_bytes):
    size = os.path.getsize(path)
    wanted = _Budget(path, max_bytes, "the tensor data (max_bytes)")
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"Truncated safetensors file {path!r}.")
        (n,) = struct.unpack("<Q", raw)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"Damaged safetensors file {path!r}: header of {n} bytes in a file of {size}.")
        try:
            header = parse_json(f.read(n))
        except ValueError as e:
            raise CheckpointError(f"Damaged safetensors file {path!r}: its header {e}.") from None
        if not isinstance(header, dict):
            raise CheckpointError(f"Damaged safetensors file {path!r}: its header is not a mapping.")
        header.pop("__metadata__", None)
        entries = sorted(((*_safetensors_entry(path, key, info), key) for key, info in header.items()),
                         key=lambda entry: entry[:2])
        out = collections.OrderedDict()
        start, reached = 8 + n, 0
        for begin, end, dtype, shape, key in entries:
            count = math.prod(shape)
            # the spec's layout: tensors one after another, never sharing bytes, all inside the file
            if begin < reached or end - begin != count * _itemsize(dtype) or start + end > size:
                raise CheckpointError(f"Damaged or truncated safetensors file {path!r}: tensor {key!r} "
                                      f"(bytes {begin}..{end}) does not fit the file.")
            reached = end
            wanted.take(end - begin, f"tensor {key!r}")
            f.seek(start + begin)
            out[key] = _decode(f.read(end - begin), dtype, count).reshape(shape).copy()
    return out


def read_checkpoint(path, *, max_bytes=None):
    """The tensors of a checkpoint file as ``{name: numpy array}`` (bfloat16 widened to float32).

    Args:
        path: a ``.safetensors`` file or a torch file (zip or legacy format). A checkpoint
            holding ``{"state_dict": ...}`` or ``{"model": ...}`` gives that inner dict.
        max_bytes: the most bytes of tensor data to read (say, twice the weights of the model they are for);
            ``None``: bounded by what the file holds.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the pickle asks for anything but tensors and ordered dicts.
        CheckpointError: the file is damaged, truncated, not a checkpoint, or would need more memory
            than it holds data (a zero-stride tensor, an archive inflating far past its size, deep nesting).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file path. Received: path={path!r}")
    if max_bytes is not None and not _is_count(max_bytes):
        raise ValueError(f"`max_bytes` must be None or an integer >= 0. Received: max_bytes={max_bytes!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path!r}.")
    with open(path, "rb") as f:
        head = f.read(9)
    try:
        # by its suffix in any case, or by its bytes: a little-endian header length, then the JSON header
        if path.lower().endswith(".safetensors") or (len(head) == 9 and head[8:9] == b"{"
                                                     and not head.startswith(b"PK")):
            state = _read_safetensors(path, max_bytes)
        elif head.startswith(b"PK"):
            state = _read_zip(path, max_bytes)
        else:
            state = _read_legacy(path, max_bytes)
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, struct.error, ValueError, KeyError,
            IndexError, TypeError, AttributeError, OSError, OverflowError, RecursionError) as e:
        raise CheckpointError(f"Could not read checkpoint {path!r}: damaged or truncated ({type(e).__name__}: "
                              f"{e}).") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise CheckpointError(f"{path!r} does not hold a state dict of tensors.")
    return state
