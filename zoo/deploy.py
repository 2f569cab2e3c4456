"""Export a Keras model to a deployable format, then prove it: run the written file in its own runtime.

:func:`export` writes ``keras`` (a ``.keras`` file), ``savedmodel`` (TensorFlow's SavedModel folder), ``onnx``,
``litert`` (a ``.tflite`` flat buffer, optionally quantised) or ``openvino`` (an IR ``.xml`` with its ``.bin``) through Keras' own
``model.export``, loads what it wrote in that format's runtime (``keras.saving``, TensorFlow's SavedModel loader,
onnxruntime, the LiteRT interpreter, OpenVINO), runs it on a batch of inputs (given, else random ones of the
model's input shape) and compares with Keras' outputs. Above the tolerance (``1e-4`` of the largest output for
float32; :data:`TOLERANCES`) the file is moved to ``PATH.rejected`` and :class:`ExportMismatch` is raised: a file
that gives other answers than the model is never left under the name asked for. A ``PATH.json`` card (a
``model.json`` inside a folder format) records the input contract (shape, dtype, and what the caller adds:
class names, value range) with the measured difference.

The runtimes are an optional extra (``pip install keras-zoo[export]``); a missing one is named before anything
is written.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil

import numpy as np

from zoo.runtime import write_json_atomic

__all__ = ["FORMATS", "TOLERANCES", "ExportMismatch", "ExportResult", "export", "read_card", "run"]

# format -> (file suffix, "" for a folder; runtime modules it needs; the name Keras' model.export takes)
FORMATS = {
    "keras": (".keras", (), None),
    "savedmodel": ("", ("tensorflow",), "tf_saved_model"),
    "onnx": (".onnx", ("onnxruntime", "tf2onnx"), "onnx"),
    "litert": (".tflite", ("ai_edge_litert", "tensorflow"), "litert"),
    "openvino": (".xml", ("openvino",), "openvino"),
}
# largest |exported - Keras| allowed, as a fraction of the largest |Keras output|, by quantisation
TOLERANCES = {None: 1e-4, "float16": 1e-2, "int8": 0.25}
QUANTIZE = ("float16", "int8")
_BATCH = 4


class ExportMismatch(ValueError):
    """The exported file's outputs differ from Keras' by more than the tolerance; it was moved aside."""

    def __init__(self, result):
        self.result = result
        super().__init__(f"The {result.format} export gives other outputs than the Keras model: max |diff| "
                         f"{result.max_abs_diff:.3g} > {result.tolerance:g} x the largest output "
                         f"{result.max_abs_output:.3g}; the file was moved to {result.path}")


@dataclasses.dataclass
class ExportResult:
    """What :func:`export` wrote and how well the written file agrees with Keras.

    Attributes:
        path: the exported file or folder.
        format: one of :data:`FORMATS`.
        runtime: what ran it to check it (e.g. ``"onnxruntime 1.32.0"``).
        max_abs_diff: the largest |exported - Keras| over the check batch.
        max_abs_output: the largest |Keras output| (the scale of the tolerance).
        tolerance: the allowed fraction of ``max_abs_output``.
        top1_agreement: the fraction of inputs whose arg-max class agrees (classifiers), else ``None``.
        card: the path of the JSON card written beside it.
    """

    path: str
    format: str
    runtime: str
    max_abs_diff: float
    max_abs_output: float
    tolerance: float
    top1_agreement: float | None = None
    quantize: str | None = None
    card: str | None = None

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance * max(self.max_abs_output, 1e-12)


def _check(model, path, format, quantize, inputs):
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"export takes a model with one input and one output. Received: {len(model.inputs)} "
                         f"input(s), {len(model.outputs)} output(s)")
    if format is None:
        format = next((f for f, (suffix, _, _) in FORMATS.items() if suffix and str(path).endswith(suffix)), None)
        if format is None:
            raise ValueError(f"Cannot tell the format from {str(path)!r}: pass format= one of {list(FORMATS)}")
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {list(FORMATS)}. Received: format={format!r}")
    suffix = FORMATS[format][0]
    if suffix and not str(path).endswith(suffix):
        raise ValueError(f"A {format} export is a {suffix} file. Received: path={str(path)!r}")
    if quantize is not None and (format != "litert" or quantize not in QUANTIZE):
        raise ValueError(f"`quantize` is for format='litert', one of {list(QUANTIZE)}. "
                         f"Received: quantize={quantize!r} with format={format!r}")
    if format == "litert" and keras.backend.backend() not in ("tensorflow", "torch"):
        raise ValueError(f"Keras exports LiteRT from the TensorFlow and torch backends only; this is "
                         f"{keras.backend.backend()!r} (set KERAS_BACKEND=tensorflow)")
    needs = FORMATS[format][1]
    if format == "onnx" and keras.backend.backend() != "tensorflow":  # Keras converts JAX through jax2onnx
        needs = ("onnxruntime", "jax2onnx") if keras.backend.backend() == "jax" else ("onnxruntime",)
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        extra = ("'keras-zoo[openvino]'" if format == "openvino" else "jax2onnx" if "jax2onnx" in missing
                 else "'keras-zoo[export]'")
        raise ImportError(f"The {format} export needs {', '.join(missing)}: pip install {extra}")
    shape = tuple(model.inputs[0].shape[1:])
    if inputs is not None:
        inputs = np.asarray(inputs, dtype="float32")
        if inputs.shape[1:] != shape and None not in shape:
            raise ValueError(f"`inputs` must be a batch of the model's input shape {shape}. "
                             f"Received: shape {inputs.shape}")
    elif None in shape:
        raise ValueError(f"The model's input shape {shape} has free sizes: pass `inputs`, a batch to check with")
    return format, shape, inputs


def export(model, path, *, format=None, inputs=None, quantize=None, calibration=None, contract=None,
           tolerance=None) -> ExportResult:
    """Write ``model`` as ``format`` at ``path``, run the file in its runtime and compare with Keras.

    Args:
        model: a ``keras.Model`` with one input and one output.
        path: the file (``.keras``, ``.onnx``, ``.tflite``, OpenVINO's ``.xml``) or folder (``savedmodel``) to write.
        format: one of :data:`FORMATS`; ``None``: told by the file's suffix.
        inputs: the batch to check with (e.g. a few test images, in the model's input scale); ``None``: 4
            random ones in [0, 1) of the model's input shape.
        quantize: ``"float16"`` or ``"int8"`` post-training quantisation (``litert`` only); int8 is calibrated
            on ``calibration`` (default: ``inputs``), so give it training inputs.
        calibration: inputs for int8's calibration.
        contract: what a user of the file must know, written to its card: e.g. ``{"class_names": [...],
            "value_range": [0, 1]}``.
        tolerance: the allowed largest |difference| as a fraction of the largest output (default
            :data:`TOLERANCES` by quantisation: 1e-4 float32, 1e-2 float16, 0.25 int8).

    Returns:
        an :class:`ExportResult`.

    Raises:
        ExportMismatch: the file's outputs differ by more than the tolerance (it is moved to ``PATH.rejected``).
        ImportError: the format's runtime is not installed (``pip install 'keras-zoo[export]'``).
        ValueError / TypeError: a bad argument, before anything is written.

    Example:
        >>> result = zoo.export(model, "model.onnx")
        >>> result.max_abs_diff <= 1e-4 * result.max_abs_output
        True
    """
    format, shape, inputs = _check(model, path, format, quantize, inputs)
    if tolerance is None:
        tolerance = TOLERANCES[quantize]
    if contract is not None and not isinstance(contract, dict):
        raise TypeError(f"`contract` must be a dict of JSON values. Received: {type(contract).__name__}")
    path = os.fspath(path)
    if inputs is None:
        inputs = np.random.default_rng(0).random((_BATCH, *shape), dtype="float32")
    expected = np.asarray(model.predict(inputs, verbose=0), dtype="float64")
    for file in _files(path, format):
        _remove(file)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _write(model, path, format, quantize, inputs if calibration is None else np.asarray(calibration, "float32"))
    outputs, runtime = _RUNNERS[format](path, inputs)
    outputs = np.asarray(outputs, dtype="float64").reshape(expected.shape)
    agree = None
    if expected.ndim == 2 and expected.shape[-1] > 1:
        agree = float(np.mean(outputs.argmax(-1) == expected.argmax(-1)))
    result = ExportResult(path=path, format=format, runtime=runtime,
                          max_abs_diff=float(np.max(np.abs(outputs - expected))),
                          max_abs_output=float(np.max(np.abs(expected))), tolerance=float(tolerance),
                          top1_agreement=agree, quantize=quantize)
    if not result.ok:
        for file in _files(path, format):
            _remove(file + ".rejected")
            os.replace(file, file + ".rejected")
        result.path = path + ".rejected"
        raise ExportMismatch(result)
    result.card = os.path.join(path, "model.json") if os.path.isdir(path) else path + ".json"
    write_json_atomic(result.card, _card(model, result, shape, contract))
    return result


def _files(path, format):
    """What an export at ``path`` consists of: OpenVINO's IR keeps its weights in a ``.bin`` beside."""
    return [path, path[:-len(".xml")] + ".bin"] if format == "openvino" else [path]


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _card(model, result, shape, contract):
    from zoo.runtime import environment

    return {"format": result.format, "file": os.path.basename(result.path), "model": model.name,
            "input": {"shape": list(shape), "dtype": "float32", **(contract or {})},
            "output_shape": list(model.outputs[0].shape[1:]), "quantize": result.quantize,
            "verified": {"runtime": result.runtime, "max_abs_diff": result.max_abs_diff,
                         "max_abs_output": result.max_abs_output, "tolerance": result.tolerance,
                         "top1_agreement": result.top1_agreement},
            "environment": environment()}


def _write(model, path, format, quantize, calibration):
    if format == "keras":
        model.save(path)
        return
    options = {}
    if quantize is not None:
        import tensorflow as tf

        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            options["target_spec"] = {"supported_types": [tf.float16]}
        else:
            options["representative_dataset"] = lambda: ([x[None]] for x in calibration)
    model.export(path, format=FORMATS[format][2], verbose=False, **options)


def _version(module):
    return f"{module.__name__} {getattr(module, '__version__', '?')}"


def _run_keras(path, x):
    import keras

    return keras.saving.load_model(path, compile=False).predict(x, verbose=0), _version(keras)


def _run_savedmodel(path, x):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)  # kept while it runs: its variables live as long as it does
    return loaded.serve(tf.constant(x)).numpy(), f"tensorflow.saved_model {tf.__version__}"


def _run_onnx(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0], _version(onnxruntime)


def _run_litert(path, x):
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), \
        f"ai_edge_litert {getattr(ai_edge_litert, '__version__', '?')}"


def _run_openvino(path, x):
    import openvino

    # float32 as the model: on CPUs with bfloat16 units OpenVINO otherwise infers in bfloat16 (3.8e-3 of the
    # largest output on the resnet18 fixture instead of 2e-7)
    compiled = openvino.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(x)[compiled.output(0)], _version(openvino)


_RUNNERS = {"keras": _run_keras, "savedmodel": _run_savedmodel, "onnx": _run_onnx, "litert": _run_litert,
            "openvino": _run_openvino}


def run(path, inputs, *, batch_size=256):
    """The outputs of an exported file (or SavedModel folder) on ``inputs``, computed in its own runtime
    (the one :func:`export` verified it with), in batches of ``batch_size``.

    Example:
        >>> probabilities = zoo.deploy.run("best.tflite", x_test)
    """
    path = os.fspath(path)
    format = "savedmodel" if os.path.isdir(path) else next(
        (f for f, (suffix, _, _) in FORMATS.items() if suffix and path.endswith(suffix)), None)
    if format is None or not os.path.exists(path):
        raise ValueError(f"`path` must be an exported {'/'.join(s for s, _, _ in FORMATS.values() if s)} file or a "
                         f"SavedModel folder. Received: path={path!r}")
    x = np.asarray(inputs, dtype="float32")
    return np.concatenate([np.asarray(_RUNNERS[format](path, x[i:i + batch_size])[0])
                           for i in range(0, len(x), batch_size)])


def read_card(path) -> dict:
    """The JSON card of an exported file or folder (its input contract and verification)."""
    card = os.path.join(path, "model.json") if os.path.isdir(path) else f"{path}.json"
    with open(card, encoding="utf-8") as f:
        return json.load(f)
