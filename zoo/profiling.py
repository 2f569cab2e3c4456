"""Model profiling: parameters, MACs/FLOPs per layer, weight and activation memory, speed.

Keras has no FLOPs counter (keras-team/keras#18391), so this one walks the
functional graph and counts each layer for the shapes it actually sees.
Conventions: a MAC is one multiply-accumulate of a Dense/Conv layer;
``flops = 2 * macs + element-wise operations`` (bias adds, activations,
normalisation, pooling, merges). Counts are for a batch of one sample.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
from keras import layers as L

from zoo.graph import graph_calls
from zoo.layers import AdaptiveAveragePooling2D

__all__ = ["LayerProfile", "Profile", "inference_function", "measure_latency_and_throughput", "measure_speed",
           "profile"]


@dataclass
class LayerProfile:
    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    flops: int
    activation_bytes: int  # this layer's outputs
    input_bytes: int  # this layer's inputs
    counted: bool = True  # False: a layer type this counter does not know (counted as 0)


@dataclass
class Profile:
    """Totals and per-layer rows for one model at one input shape (batch 1)."""

    model: str
    input_shape: tuple
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    flops: int
    weight_bytes: int
    activation_bytes: int  # all layer outputs for one sample (kept for backprop in training)
    peak_activation_bytes: int  # the largest single layer's input + output
    layers: list = field(default_factory=list)
    uncounted: list = field(default_factory=list)  # layer types counted as 0 MACs/FLOPs

    def to_dict(self, *, layers: bool = False) -> dict:
        d = asdict(self)
        if not layers:
            d.pop("layers")
        return d

    def __str__(self) -> str:
        rows = [f"{'layer':<34} {'type':<24} {'output':<20} {'params':>12} {'MACs':>14}"]
        for r in self.layers:
            rows.append(
                f"{r.name[:34]:<34} {r.type[:24]:<24} {str(r.output_shape)[:20]:<20} "
                f"{r.params:>12,} {r.macs:>14,}"
            )
        rows.append(
            f"Total: {self.params:,} params ({self.trainable_params:,} trainable, "
            f"{self.non_trainable_params:,} non-trainable), {self.macs:,} MACs, "
            f"{self.flops:,} FLOPs, weights {_human_bytes(self.weight_bytes)}, "
            f"activations {_human_bytes(self.activation_bytes)} per sample"
        )
        if self.uncounted:
            rows.append(f"Not counted (0 MACs): {', '.join(sorted(set(self.uncounted)))}")
        return "\n".join(rows)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def _count(variables) -> int:
    return int(sum(math.prod(v.shape) for v in variables))


def _elements(shape) -> int:
    # batch axis excluded: counts are per sample
    return int(math.prod(d for d in shape[1:]))


def _itemsize(dtype) -> int:
    return np.dtype(keras.backend.standardize_dtype(dtype)).itemsize


_ZERO_COST = (
    L.Flatten, L.Reshape, L.Permute, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
    L.Cropping1D, L.Cropping2D, L.Cropping3D, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
    L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.Concatenate,
    L.RepeatVector, L.Identity, L.UpSampling1D, L.UpSampling2D, L.UpSampling3D,
)
_MERGE = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
_POOL = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D)
_GLOBAL_POOL = (
    L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D,
    L.AdaptiveAveragePooling1D, L.AdaptiveAveragePooling2D, L.AdaptiveAveragePooling3D,
    L.AdaptiveMaxPooling1D, L.AdaptiveMaxPooling2D, L.AdaptiveMaxPooling3D, AdaptiveAveragePooling2D,
)
_ACTIVATIONS = (L.Activation, L.ReLU, L.LeakyReLU, L.PReLU, L.ELU, L.Softmax)


def _has_activation(layer) -> bool:
    act = getattr(layer, "activation", None)
    return act is not None and getattr(act, "__name__", "") != "linear"


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _conv_macs(layer, in_shape, out_shape) -> int:
    """MACs of a convolution for one sample, from its kernel and actual shapes."""
    kernel = math.prod(layer.kernel_size)
    cl = _channels_last(layer)
    in_c = in_shape[-1] if cl else in_shape[1]
    out_spatial = math.prod(out_shape[1:-1] if cl else out_shape[2:])
    in_spatial = math.prod(in_shape[1:-1] if cl else in_shape[2:])
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        return out_spatial * in_c * layer.depth_multiplier * kernel
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        depthwise = out_spatial * in_c * layer.depth_multiplier * kernel
        return depthwise + out_spatial * in_c * layer.depth_multiplier * layer.filters
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        return in_spatial * in_c * kernel * layer.filters
    groups = getattr(layer, "groups", 1) or 1
    return out_spatial * layer.filters * kernel * (in_c // groups)


def _layer_cost(layer, inputs, outputs):
    """(macs, element-wise flops, counted) of one layer call, per sample."""
    in_shape = tuple(inputs[0].shape) if inputs else ()
    out_shape = tuple(outputs[0].shape)
    out_el = _elements(out_shape)
    extra = lambda: out_el * (int(getattr(layer, "use_bias", False)) + int(_has_activation(layer)))  # noqa: E731
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv1D, L.DepthwiseConv2D,
                          L.SeparableConv1D, L.SeparableConv2D, L.Conv1DTranspose,
                          L.Conv2DTranspose, L.Conv3DTranspose)):
        return _conv_macs(layer, in_shape, out_shape), extra(), True
    if isinstance(layer, L.Dense):
        return out_el * in_shape[-1], extra(), True
    if isinstance(layer, L.BatchNormalization):
        return 0, 2 * out_el, True  # inference: one scale and one shift per element
    if isinstance(layer, (L.LayerNormalization, L.GroupNormalization)):
        return 0, 5 * out_el, True
    if isinstance(layer, (L.Rescaling, L.Normalization)):
        return 0, 2 * out_el, True
    if isinstance(layer, _ACTIVATIONS):
        return 0, out_el, True
    if isinstance(layer, _POOL):
        return 0, out_el * math.prod(layer.pool_size), True
    if isinstance(layer, _GLOBAL_POOL):
        return 0, _elements(in_shape), True
    if isinstance(layer, _MERGE):
        return 0, out_el * max(1, len(inputs) - 1), True
    counter = getattr(layer, "compute_macs", None)
    if callable(counter):  # a custom layer that counts itself (Swin's window attention: its matrix products)
        return int(counter(in_shape)), out_el, True
    if isinstance(layer, _ZERO_COST) or not layer.weights:
        # Weightless layers not listed above (resizing, custom reshapes) cost little.
        return 0, 0, isinstance(layer, _ZERO_COST)
    return 0, 0, False


def _walk(model, rows, uncounted):
    for layer, inputs, outputs in graph_calls(model):
        if isinstance(layer, keras.Model):
            _walk(layer, rows, uncounted)
            continue
        macs, elementwise, counted = _layer_cost(layer, inputs, outputs)
        if not counted:
            uncounted.append(type(layer).__name__)
        out_bytes = sum(_elements(t.shape) * _itemsize(t.dtype) for t in outputs)
        in_bytes = sum(_elements(t.shape) * _itemsize(t.dtype) for t in inputs)
        rows.append(
            LayerProfile(
                name=layer.name,
                type=type(layer).__name__,
                output_shape=tuple(outputs[0].shape[1:]),
                params=_count(layer.weights),
                macs=int(macs),
                flops=int(2 * macs + elementwise),
                activation_bytes=int(out_bytes),
                input_bytes=int(in_bytes),
                counted=counted,
            )
        )


def _check_shape(model, input_shape):
    """``input_shape`` for ``model``'s input (same rank, positive sizes), or the model's own."""
    if input_shape is None:
        return tuple(model.inputs[0].shape[1:])
    from zoo.utils import check_input_shape

    rank = len(model.inputs[0].shape) - 1
    return check_input_shape(input_shape, default=None, rank=rank)


def _fixed_shape_model(model, input_shape):
    if input_shape is not None:
        shape = _check_shape(model, input_shape)
        try:
            return keras.models.clone_model(model, input_tensors=keras.Input(shape=shape, name="input"))
        except (ValueError, TypeError) as e:
            raise ValueError(f"The model does not take `input_shape`={shape}: {e}") from None
    for t in model.inputs:
        if any(d is None for d in t.shape[1:]):
            raise ValueError(
                "The model's input has unknown dimensions; pass `input_shape` to profile it. "
                f"Received a model with input shape {tuple(t.shape)}"
            )
    return model


def profile(model, *, input_shape=None) -> Profile:
    """Count a model's parameters, MACs/FLOPs per layer and memory (batch 1).

    Args:
        model: a functional or Sequential ``keras.Model``.
        input_shape: optional shape (without batch) to profile at, for models
            built with ``None`` spatial dimensions.

    Returns:
        A :class:`Profile`; ``print(profile)`` shows the per-layer table.

    Example:
        >>> p = profile(zoo.build("lenet5"))
        >>> p.macs
        416520
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    graph = _fixed_shape_model(model, input_shape)
    rows, uncounted = [], []
    _walk(graph, rows, uncounted)
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    weight_bytes = sum(math.prod(v.shape) * _itemsize(v.dtype) for v in model.weights)
    peak = max((r.input_bytes + r.activation_bytes for r in rows), default=0)
    return Profile(
        model=model.name,
        input_shape=tuple(graph.inputs[0].shape[1:]),
        params=trainable + non_trainable,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        macs=sum(r.macs for r in rows),
        flops=sum(r.flops for r in rows),
        weight_bytes=int(weight_bytes),
        activation_bytes=sum(r.activation_bytes for r in rows),
        peak_activation_bytes=int(peak),
        layers=rows,
        uncounted=sorted(set(uncounted)),
    )


MAX_SPEED_BATCH = 65_536
MAX_SPEED_ITERATIONS = 100_000


def measure_speed(model, *, batch_size=1, warmup=3, iterations=20, input_shape=None, seed=0) -> dict:
    """Measure inference latency and throughput on random inputs.

    Runs ``warmup`` untimed batches (tracing/compilation), then times
    ``iterations`` batches through the model's compiled inference function
    (:func:`inference_function`). Use ``batch_size=1`` for latency and a larger
    batch for throughput.

    Returns:
        ``{"batch_size", "latency_ms" (median per batch), "latency_ms_p90",
        "throughput" (samples/s at the median), "iterations"}``.
    """
    return _measure(model, None, batch_size=batch_size, warmup=warmup, iterations=iterations,
                    input_shape=input_shape, seed=seed)


def measure_latency_and_throughput(model, *, batch_size, iterations, warmup=1) -> dict:
    """``{"latency_ms", "throughput"}``: :func:`measure_speed` at batch 1 over ``iterations`` batches and at
    ``batch_size`` over a third of them (at least 2), through one inference function, traced once on
    TensorFlow for both batch sizes."""
    forward = inference_function(model)
    latency = _measure(model, forward, batch_size=1, iterations=iterations, warmup=warmup)
    throughput = _measure(model, forward, batch_size=batch_size, iterations=max(2, iterations // 3), warmup=warmup)
    return {"latency_ms": latency["latency_ms"], "throughput": throughput["throughput"]}


_INFERENCE = weakref.WeakKeyDictionary()  # model -> its inference function, while the model lives


def inference_function(model):
    """``model``'s compiled inference, ``f(x) -> outputs``, made once per model: the latency and throughput
    timing and a comparison's test predictions share it. On TensorFlow a ``tf.function`` of
    ``model(x, training=False)`` traced once for any batch size (``predict_on_batch`` traces once per new batch
    size, and the last, smaller batch of a split costs a trace of the whole graph), its input cast to the
    model's input dtype as Keras would; elsewhere ``model.predict_on_batch``."""
    if keras.backend.backend() != "tensorflow" or model.run_eagerly or len(model.inputs) != 1:
        return model.predict_on_batch
    forward = _INFERENCE.get(model)
    if forward is None:
        forward = _INFERENCE[model] = _traced_inference(model)
    return forward


def _traced_inference(model):
    import tensorflow as tf

    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), dtype)
    owner = weakref.ref(model)  # the function must not keep its model alive (the cache is keyed by it)
    # autograph off, as Keras traces its own predict step: a model's call needs no conversion (10-15% of a trace)
    traced = tf.function(lambda x: owner()(x, training=False), input_signature=[spec], autograph=False,
                         jit_compile=bool(model.jit_compile), reduce_retracing=True)

    def forward(x):
        return traced(tf.cast(x, dtype) if tf.is_tensor(x) else np.asarray(x, dtype=dtype))

    forward.traced = traced
    return forward


def _measure(model, forward, *, batch_size, warmup, iterations, input_shape=None, seed=0) -> dict:
    """:func:`measure_speed` through ``forward`` (``None``: the model's :func:`inference_function`)."""
    from zoo.utils import MAX_INPUT_VALUES, check_int

    batch_size = check_int("batch_size", batch_size, maximum=MAX_SPEED_BATCH)
    iterations = check_int("iterations", iterations, maximum=MAX_SPEED_ITERATIONS)
    warmup = check_int("warmup", warmup, minimum=0, maximum=MAX_SPEED_ITERATIONS)
    seed = check_int("seed", seed, minimum=0)
    shape = _check_shape(model, input_shape)
    if any(d is None for d in shape):
        raise ValueError(f"Pass `input_shape`: the model's input shape is unknown. Received: {shape}")
    if batch_size * math.prod(shape) > MAX_INPUT_VALUES:
        raise ValueError(f"`batch_size` x `input_shape` must hold at most {MAX_INPUT_VALUES:,} values. "
                         f"Received: batch_size={batch_size}, input_shape={shape}")
    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    x = np.random.default_rng(seed).random((batch_size,) + shape).astype(dtype)
    forward = forward or inference_function(model)
    for _ in range(warmup):
        forward(x)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        out = forward(x)
        for array in keras.tree.flatten(out):
            np.asarray(array)  # make sure the result is ready (async backends)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return {
        "batch_size": batch_size,
        "latency_ms": median * 1e3,
        "latency_ms_p90": float(np.percentile(times, 90)) * 1e3,
        "throughput": batch_size / median,
        "iterations": iterations,
    }
