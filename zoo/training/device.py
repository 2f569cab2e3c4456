"""Data and inputs on the accelerator: arrays moved once, batches made there, uint8 images."""

from __future__ import annotations

import keras
import numpy as np

from zoo.runtime import global_policy
from zoo.utils import check_int

__all__ = ["DeviceArrays", "to_device", "uint8_inputs"]


def to_device(x):
    """Put an array (or a tuple/list/dict of arrays) on the backend's default device once.

    Used by ``fit(device_data=True)``: on PyTorch, Keras slices device tensors
    in place; on JAX, :class:`DeviceArrays` batches them (Keras' array adapter
    would copy JAX arrays back to NumPy). On TensorFlow the arrays become host
    tensors: Keras feeds them through ``tf.data``, which prefetches. Send
    images as ``uint8`` (see :func:`uint8_inputs`) to store 4x more.
    """
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v) for k, v in x.items()}
    if x is None:
        return None
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.device_put(np.asarray(x) if not hasattr(x, "devices") else x)
    if backend == "torch":
        return keras.ops.convert_to_tensor(x)  # Keras' torch backend places tensors on its default device
    # TensorFlow: Keras feeds arrays through tf.data, which runs on the host (a GPU
    # copy would be copied back), so the data stays there and is prefetched
    return keras.ops.convert_to_tensor(x)


class DeviceArrays(keras.utils.PyDataset):
    """``(x, y)`` arrays kept on the accelerator and batched there: no host copy per batch.

    Keras' array adapter turns JAX arrays back into NumPy and sends every batch
    again; batches that are already device arrays pass through untouched. The
    order is reshuffled on the device every epoch (``shuffle=True``).
    :func:`fit` uses it for ``device_data=True`` on the JAX backend.

    Example:
        >>> model.fit(DeviceArrays(x_uint8, y, batch_size=256), epochs=5)
    """

    def __init__(self, x, y=None, *, batch_size=32, shuffle=True, seed=None):
        super().__init__()
        self.batch_size = check_int("batch_size", batch_size)
        self.num_examples = len(x)
        if y is not None and len(y) != self.num_examples:
            raise ValueError(f"`x` and `y` must have the same length. Received: {len(x)} and {len(y)}")
        self.x, self.y = to_device(x), to_device(y)
        self.shuffle = bool(shuffle)
        self._rng = np.random.default_rng(seed)
        self._order = None
        self.on_epoch_end()

    def __len__(self):
        return -(-self.num_examples // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        lo, hi = index * self.batch_size, min(self.num_examples, (index + 1) * self.batch_size)
        if self._order is None:
            batch = tuple(a[lo:hi] for a in (self.x, self.y) if a is not None)
        else:
            rows = self._order[lo:hi]
            batch = tuple(keras.ops.take(a, rows, axis=0) for a in (self.x, self.y) if a is not None)
        return batch

    def on_epoch_end(self):
        if self.shuffle:
            self._order = to_device(self._rng.permutation(self.num_examples).astype("int32"))


def uint8_inputs(model, *, scale=1.0 / 255.0, offset=0.0, name=None):
    """Wrap an image model so it takes ``uint8`` pixels and normalises them on the device.

    Sending uint8 instead of float32 moves 4x fewer bytes from the host (or keeps
    4x more images resident on an accelerator); the ``Rescaling`` runs in the
    model's compute dtype (bfloat16/float16 under mixed precision).

    Example:
        >>> fast = uint8_inputs(zoo.build("resnet18", input_shape=(32, 32, 3), num_classes=10))
    """
    shape = tuple(model.inputs[0].shape[1:])
    # the wrapper takes the model's policy: its Rescaling runs in the compute dtype, and
    # compile() sees mixed_float16 on the outer model and adds loss scaling
    with global_policy(model.dtype_policy):
        inputs = keras.Input(shape=shape, dtype="uint8", name="uint8_input")
        x = keras.layers.Rescaling(scale, offset, name="normalize")(inputs)
        return keras.Model(inputs, model(x), name=name or model.name)
