"""Every export format on this backend: the converted resnet18 fixture written, run in its runtime, compared.

    python benchmarks/export_formats.py --out benchmarks/results/export_formats_tensorflow.json
    KERAS_BACKEND=jax python benchmarks/export_formats.py --out benchmarks/results/export_formats_jax.json

The model is tests/fixtures/weights/resnet18_basic (torchvision's resnet18 layout at width 1/8, 64x64 inputs,
weights converted from a torch checkpoint), checked on the fixture's own inputs. Per format: the largest
|exported - Keras| as a fraction of the largest output, the runtime, the seconds to write and check, or the
error that stopped it. Results go to ``--out`` with the machine, backend and versions.
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CASES = [("keras", "m.keras", None), ("savedmodel", "saved", None), ("onnx", "m.onnx", None),
         ("litert", "m.tflite", None), ("litert", "m16.tflite", "float16"), ("litert", "m8.tflite", "int8"),
         ("openvino", "m.xml", None)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import keras
    import numpy as np

    import zoo
    from zoo.runtime import environment, write_json_atomic
    from zoo.weights import load_state_dict

    fixtures = os.path.join(ROOT, "tests", "fixtures", "weights")
    model = zoo.build("resnet18", input_shape=(64, 64, 3), num_classes=10, classifier_activation=None, width=0.125)
    load_state_dict(model, os.path.join(fixtures, "resnet18_basic.safetensors"))
    inputs = np.load(os.path.join(fixtures, "resnet18_basic_io.npz"))["inputs"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for format, name, quantize in CASES:
            start = time.perf_counter()
            row = {"format": format, "quantize": quantize}
            try:
                r = zoo.export(model, os.path.join(folder, name), format=format, inputs=inputs, quantize=quantize)
                row.update(relative_diff=r.max_abs_diff / r.max_abs_output, tolerance=r.tolerance, runtime=r.runtime,
                           top1_agreement=r.top1_agreement)
            except Exception as e:  # noqa: BLE001 - what fails is the figure
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
            row["seconds"] = round(time.perf_counter() - start, 2)
            rows.append(row)
            print(row, flush=True)
    write_json_atomic(args.out, {"benchmark": "export_formats", "backend": keras.backend.backend(), "rows": rows,
                                 "environment": environment()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
