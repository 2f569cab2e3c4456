"""What this process runs on: the device, the precision policy, the environment stamp, memory.

The bottom floor of the package: every other module asks here (one device
query, one environment stamp) instead of querying the backend itself. Device
and memory queries are best effort: anything unexpected reads as a CPU.

Example:
    >>> from zoo import runtime
    >>> runtime.accelerator()["platform"], runtime.resolve_precision("auto")
    ('cpu', 'float32')
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import inspect
import json
import os
import platform
import resource
import socket
import sys
from functools import lru_cache

from zoo.utils import check_choice

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")

__all__ = [
    "PRECISIONS",
    "accelerator",
    "device_name",
    "environment",
    "frozen_heap",
    "global_policy",
    "disk_full_error",
    "is_disk_full",
    "is_out_of_memory",
    "names_full_disk",
    "peak_memory_bytes",
    "precision_policy",
    "quiet_framework_start",
    "released_graphs",
    "resolve_precision",
    "virtual_cpus",
    "write_bytes_atomic",
    "write_json_atomic",
]

# The frameworks whose native libraries print to file descriptor 2 while they load (absl's "All log messages
# before absl::InitializeLog()", oneDNN's and CUDA's banners), before any setting of theirs can stop them.
NOISY_FRAMEWORKS = ("tensorflow",)
QUIET_ENV = "ZOO_QUIET_START"


@contextlib.contextmanager
def _native_stderr_held():
    """File descriptor 2 goes to a temporary file for the block; its text is written back if the block raises."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class _QuietLoader:
    """Runs a module's real loader with file descriptor 2 held, then steps aside (the module keeps its loader)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        with _native_stderr_held():
            self.loader.exec_module(module)


class _QuietImport:
    """A ``sys.meta_path`` finder that gives the first import of each of ``names`` a :class:`_QuietLoader`."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name not in self.names:
            return None
        self.names.discard(name)
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_framework_start():
    """Silence the deep-learning frameworks' start-up lines in this process (and the worker processes it starts).

    The native libraries' INFO/WARNING logs go (``TF_CPP_MIN_LOG_LEVEL=3``; errors are still printed by Python),
    the lines they print while loading, before any log setting applies, are held back and shown only if the import
    fails, and TensorFlow's Python logger keeps its errors only. The ``zoo`` command calls it unless ``--verbose``
    is given; nothing is imported here.
    """
    import logging

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ[QUIET_ENV] = "1"
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    pending = [n for n in NOISY_FRAMEWORKS if n not in sys.modules]
    if pending and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        # after virtual_cpus()'s hook, whose loader then wraps this quiet one
        after = [i + 1 for i, f in enumerate(sys.meta_path) if isinstance(f, _AfterImport)]
        sys.meta_path.insert(max(after, default=0), _QuietImport(pending))


VIRTUAL_CPUS_ENV = "ZOO_VIRTUAL_CPUS"
_XLA_DEVICE_COUNT = "--xla_force_host_platform_device_count"


def virtual_cpus() -> int | None:
    """Split the host CPU into ``ZOO_VIRTUAL_CPUS`` devices before the framework starts, so that multi-device code
    (``devices=2``) runs on a machine without accelerators: JAX's host platform device count (``XLA_FLAGS``), and
    for TensorFlow that many logical CPUs, configured as soon as TensorFlow is imported (an import hook; at once
    when it is imported already and has not started). ``import zoo`` calls it; it imports nothing. Returns the
    count, or ``None`` when the variable is unset.

    Raises:
        ValueError: the variable is not a whole number from 1 to 64.
    """
    value = os.environ.get(VIRTUAL_CPUS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise ValueError(f"{VIRTUAL_CPUS_ENV} must be a whole number of virtual CPU devices from 1 to 64. "
                         f"Received: {VIRTUAL_CPUS_ENV}={value!r}")
    count = int(value)
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(_XLA_DEVICE_COUNT)]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"{_XLA_DEVICE_COUNT}={count}"])
    if "tensorflow" in sys.modules:
        _split_tensorflow_cpu(sys.modules["tensorflow"], count)
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("tensorflow", lambda tf: _split_tensorflow_cpu(tf, count)))
    return count


def _split_tensorflow_cpu(tf, count):
    """``count`` logical CPUs for TensorFlow; a warning when its runtime has started already (too late)."""
    import warnings

    try:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except (RuntimeError, AttributeError) as e:  # initialised already (devices fixed), or half imported
        warnings.warn(f"{VIRTUAL_CPUS_ENV}={count} came too late for TensorFlow ({e}): set it before the first "
                      "TensorFlow operation (import zoo first, or set it in the environment)", stacklevel=3)


class _AfterLoader(_QuietLoader):
    """Runs a module's real loader, then ``then(module)`` (the module keeps its loader)."""

    def __init__(self, loader, then):
        super().__init__(loader)
        self.then = then

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.then(module)


class _AfterImport:
    """A ``sys.meta_path`` finder that runs ``then(module)`` after the first import of ``name``: it takes the spec
    the other finders give (the quiet loader of :class:`_QuietImport` included) and wraps its loader."""

    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _AfterLoader(spec.loader, self.then)
        return spec


def _backend() -> str:
    # Keras is imported by the functions that need it: reading records and writing reports load no framework.
    import keras

    return keras.backend.backend()


def accelerator() -> dict:
    """The backend's default device: ``{"platform": "cpu"|"gpu"|"tpu", "name", "compute_capability"}``.

    ``compute_capability`` is ``(major, minor)`` for CUDA GPUs, else ``None``.
    """
    info = {"platform": "cpu", "name": platform.processor() or platform.machine(), "compute_capability": None}
    backend = _backend()
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform != "cpu":
                info.update(platform=dev.platform, name=getattr(dev, "device_kind", dev.platform))
            cc = getattr(dev, "compute_capability", None)
            if cc:
                info["compute_capability"] = tuple(int(v) for v in str(cc).split(".")[:2])
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                info.update(platform="gpu", name=details.get("device_name", gpus[0].name),
                            compute_capability=details.get("compute_capability"))
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                info.update(platform="gpu", name=torch.cuda.get_device_name(0),
                            compute_capability=tuple(torch.cuda.get_device_capability(0)))
    except Exception:  # noqa: BLE001 - a failed query must not stop training
        pass
    if info["platform"] not in ("gpu", "tpu"):
        info.update(platform="cpu", compute_capability=None)
    return info


def device_name() -> str:
    """``platform:name`` of the default device, e.g. ``gpu:NVIDIA H100`` or ``cpu:x86_64``."""
    dev = accelerator()
    return f"{dev['platform']}:{dev['name']}"


def resolve_precision(precision="float32") -> str:
    """A Keras dtype-policy name for ``precision``; ``auto`` picks by device.

    ``auto``: ``mixed_bfloat16`` on TPUs and on GPUs with bfloat16 tensor cores
    (compute capability 8.0+: A100, H100, RTX 30xx and later), ``mixed_float16``
    (with loss scaling, added by ``compile``) on older GPUs, ``float32`` on CPUs,
    where mixed precision gains little (ResNet-18 training +4% on a 2-core
    AVX-512-BF16 CPU with TensorFlow, BENCHMARKS.md) and costs accuracy of
    the arithmetic.
    """
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    dev = accelerator()
    if dev["platform"] == "tpu":
        return "mixed_bfloat16"
    if dev["platform"] == "gpu":
        cc = dev["compute_capability"] or (0, 0)
        return "mixed_bfloat16" if tuple(cc) >= (8, 0) else "mixed_float16"
    return "float32"


@contextlib.contextmanager
def precision_policy(precision="float32"):
    """Build models under a precision (``float32``, ``mixed_float16``, ``mixed_bfloat16``, ``auto``).

    Keras fixes a layer's compute dtype when the layer is created, so the
    policy must surround the *building*; the previous global policy comes back
    afterwards. Variables stay float32 under the mixed policies, and the zoo's
    classifier heads output float32 so that losses stay stable.

    Example:
        >>> with precision_policy("mixed_bfloat16"):
        ...     model = zoo.build("resnet50")
    """
    with global_policy(resolve_precision(precision)) as policy:
        yield policy


@contextlib.contextmanager
def global_policy(policy):
    """Set Keras' global dtype policy (any name or ``DTypePolicy``) for a block, then restore it."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy(previous)


@lru_cache(maxsize=1)
def environment() -> dict:
    """Backend, library versions and host facts, stamped on every record and benchmark result."""
    import keras

    from zoo._version import __version__

    versions = {"python": platform.python_version(), "keras": keras.__version__, "zoo": __version__}
    for mod in ("tensorflow", "jax", "torch", "keras_tuner", "numpy"):
        if mod in sys.modules or mod in ("numpy", "keras_tuner"):
            try:
                versions[mod] = __import__(mod).__version__
            except Exception:  # noqa: BLE001 - an optional library that is absent or broken
                pass
    return {
        "backend": keras.backend.backend(),
        "versions": versions,
        "host": {
            "name": socket.gethostname(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "device": device_name(),
        },
    }


def write_json_atomic(path, payload, *, sort_keys=True):
    """Write ``payload`` as indented JSON to ``path`` through :func:`write_bytes_atomic`. Values JSON cannot take
    are written as ``str``. Returns ``path``."""
    text = json.dumps(payload, indent=2, sort_keys=sort_keys, default=str) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path, data):
    """Write ``data`` (bytes or a buffer) to ``path`` (its folder made if missing) through a temporary file
    (``PATH.tmp-PID``), flushed to disk, and ``os.replace``: a process killed while writing leaves the previous
    file whole, and a failed write leaves no temporary file. Returns ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # the write failed: the previous file stays, the partial one goes
            os.remove(tmp)
    return path


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says a disk (or quota) is full: ``OSError`` ENOSPC/EDQUOT, or TensorFlow's
    ``ResourceExhaustedError`` from a file write ("No space left on device")."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error).lower()
    return "no space left on device" in text or "disk quota exceeded" in text


@contextlib.contextmanager
def frozen_heap():
    """Trials run inside: what exists when the block starts (modules, the framework, the data) is moved out of
    the garbage collector's sight, so that each trial's ``keras.backend.clear_session()``, whose full
    ``gc.collect()`` walks every object of the process (0.2 s a trial with TensorFlow loaded), walks the
    trial's own objects only. Reference counting still frees everything; the heap is unfrozen at the end.

    Only the young generations are collected first (milliseconds): a full collection (0.23-0.31 s with
    TensorFlow loaded, finding nothing in a fresh ``zoo compare``) would free older reference cycles too, which
    instead wait, frozen, until the block ends: a fixed amount, not a growth per trial."""
    gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _gradient_registry():
    """TensorFlow's registry of graph-mode gradient functions (a dict), or ``None`` when TensorFlow is not loaded
    (nothing is imported here) or keeps it elsewhere."""
    ops = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


@contextlib.contextmanager
def released_graphs():
    """The graph-mode custom gradients registered in the block are forgotten at its end: for blocks that train
    models (a trial, a test, one model of a loop) in a process that goes on training others.

    TensorFlow registers every ``tf.custom_gradient`` traced in a graph under a new global name and never removes
    it, and each entry holds tensors of the graph that traced it: Keras' TensorFlow trainer goes through one in
    ``ReplicaContext.all_reduce`` each time it traces a train step, so every trained model's whole train-step
    graph stayed alive for the life of the process (4-6 MB a model; a bare Keras loop grew without end). An
    entry is read only while the gradient of its graph is traced, inside that ``fit``; a later ``fit`` that
    traces again registers its own. Nothing else may trace in another thread meanwhile (trials run one at a
    time in a process; workers are processes).
    """
    registry = _gradient_registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        registry = _gradient_registry()  # TensorFlow may have been loaded inside the block
        for name in [k for k in registry or () if k.startswith("CustomGradient-") and k not in before]:
            registry.pop(name, None)


@contextlib.contextmanager
def disk_full_error(folder):
    """Turn a full disk met inside the block into one ``OSError(ENOSPC)`` that names ``folder``.

    What was written before stays (records are appended atomically), so the same call resumes
    once space is freed; the message says so. Other errors pass unchanged.
    """
    try:
        yield
    except Exception as e:  # noqa: BLE001 - only a full disk is rewritten, everything else re-raised as is
        if not is_disk_full(e):
            raise
        folder = os.path.abspath(os.fspath(folder))
        raise OSError(errno.ENOSPC, f"No space left on the device of {folder} ({type(e).__name__}: "
                      f"{' '.join(str(e).split())[:200]}). Free some space there, then run the same command "
                      "again: finished trials are kept and the run resumes") from None


def names_full_disk(argument):
    """Decorator: a full disk met by the call becomes :func:`disk_full_error`'s one ``OSError``,
    naming the folder the call's ``argument`` (e.g. ``out``, ``directory``) gives."""

    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            with disk_full_error(bound.arguments.get(argument) or os.curdir):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the host or the accelerator ran out of memory (any backend); a full disk is not."""
    if is_disk_full(error):
        return False
    name = type(error).__name__
    text = str(error).lower()
    return isinstance(error, MemoryError) or "ResourceExhausted" in name or "out of memory" in text or "oom" in text.split()


def peak_memory_bytes() -> int:
    """Peak memory of this process so far: accelerator peak when there is one, else host RSS."""
    backend = _backend()
    try:
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                return int(stats["peak_bytes_in_use"])
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return int(torch.cuda.max_memory_allocated())
    except Exception:  # noqa: BLE001 - memory queries are best effort
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB
