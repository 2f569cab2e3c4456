"""Synchronous data parallelism over local devices, on Keras' own engines: ``devices=N``.

:func:`zoo.training.fit` (and through it comparisons, searches and ``fine_tune``) trains on ``N`` local devices
with one global batch when ``devices`` is over 1: ``keras.distribution.DataParallel`` on JAX (each batch sharded
on its first axis, the variables replicated; XLA's collectives sum the gradients), and
``tf.distribute.MirroredStrategy`` on TensorFlow (Keras divides each replica's loss by the replica count, so the
summed gradients are the global batch's). PyTorch's backend has no data-parallel engine in Keras: a clear error.

The model the caller built stays the one trained: its replica is cloned under the distribution (variables must
be created there), compiled with the model's own compile configuration, trained, and its weights and optimizer
state are copied back into the model, with no distribution left set. BatchNorm statistics are the global batch's
on both: JAX computes them over the sharded batch as one array; on TensorFlow the replica's BatchNormalization
layers are ``synchronized`` (an all-reduce of the moments). Dropout draws other masks on several devices.
"""

from __future__ import annotations

import contextlib
import functools

import keras

from zoo.runtime import VIRTUAL_CPUS_ENV

__all__ = ["check_devices", "data_parallel", "local_devices", "resolve_devices"]

MAX_DEVICES = 4096


def check_devices(devices):
    """``devices`` checked without a framework: ``None`` (the default device), a whole number >= 1 or ``"all"``."""
    if devices is None or devices == "all":
        return devices
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    if isinstance(devices, bool) or not isinstance(devices, int):
        raise TypeError(f"`devices` must be a number of local devices or 'all'. Received: devices={devices!r}")
    if not 1 <= devices <= MAX_DEVICES:
        raise ValueError(f"`devices` must be from 1 to {MAX_DEVICES} (or 'all'). Received: devices={devices}")
    return devices


def local_devices() -> list:
    """The backend's local devices of its default platform (accelerators when it has them, else CPUs): JAX's
    devices, TensorFlow's logical GPUs or CPUs; PyTorch: its CUDA devices or the CPU."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return list(jax.local_devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    return ["cpu"]


def resolve_devices(devices) -> int:
    """How many devices ``devices`` asks for on this machine: 1 for ``None``, every local one for ``"all"``.

    Raises:
        ValueError: more than there are, naming how many there are (and how to split a CPU for trials).
    """
    devices = check_devices(devices)
    if devices is None:
        return 1
    available = len(local_devices())
    if devices == "all":
        return available
    if devices > available:
        raise ValueError(f"`devices={devices}` asks for more devices than the {available} local one(s) of the "
                         f"{keras.backend.backend()} backend; on a CPU, set {VIRTUAL_CPUS_ENV}={devices} before "
                         f"the framework starts to split it. Received: devices={devices}")
    return devices


def _strategy(count):
    """The context in which the replica is created and trained on the first ``count`` local devices."""
    backend = keras.backend.backend()
    devices = local_devices()[:count]
    if backend == "jax":
        return keras.distribution.DataParallel(devices=devices).scope()
    if backend == "tensorflow":
        return _mirrored_strategy(tuple(d.name for d in devices)).scope()
    raise ValueError(f"devices={count}: Keras' {backend} backend has no data-parallel training; use the JAX or "
                     "TensorFlow backend (KERAS_BACKEND=jax|tensorflow), or devices=1")


@functools.lru_cache(maxsize=None)
def _mirrored_strategy(devices):
    """One MirroredStrategy per device set for the process: a second one would number its collective operations
    from the same start, and TensorFlow would pair synchronised BatchNorm's all-reduce with another's."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(list(devices))


def _replica(model):
    """``model`` cloned in the current distribution scope with its weights (BatchNormalization synchronised across
    replicas on TensorFlow)."""
    sync = keras.backend.backend() == "tensorflow"

    def clone(layer):
        config = layer.get_config()
        if sync and isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = True
        return layer.__class__.from_config(config)

    replica = keras.models.clone_model(model, clone_function=clone)
    replica.set_weights(model.get_weights())
    return replica


def _copy_optimizer_state(source, target_model):
    """The replica optimizer's variables (iterations, moments...) into the model's optimizer, built for its
    trainable variables, so that training can go on from the model as from the replica."""
    optimizer = getattr(target_model, "optimizer", None)
    if optimizer is None or source is None:
        return
    if not optimizer.built:
        optimizer.build(target_model.trainable_variables)
    if len(optimizer.variables) == len(source.variables):
        for mine, theirs in zip(optimizer.variables, source.variables):
            mine.assign(keras.ops.convert_to_numpy(theirs.value))


@contextlib.contextmanager
def data_parallel(model, devices):
    """Yield a replica of the compiled ``model`` to train on ``devices`` (> 1) local devices; after the block,
    its weights and optimizer state are ``model``'s and no distribution is left set.

    Example:
        >>> with data_parallel(model, 2) as replica:
        ...     replica.fit(x, y, batch_size=64)
    """
    if not getattr(model, "compiled", False):
        raise ValueError("data_parallel needs a compiled model (its compile configuration is the replica's)")
    config = model.get_compile_config()
    with _strategy(devices):
        replica = _replica(model)
        replica.compile_from_config(config)
        yield replica
    model.set_weights(replica.get_weights())
    _copy_optimizer_state(replica.optimizer, model)
