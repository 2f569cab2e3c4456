"""zoo.export / zoo export: each format written, run in its own runtime and compared with Keras."""

import json
import os

import keras
import numpy as np
import pytest

import tuning
import zoo
import zoo.data
from zoo import deploy
from zoo.training import TrainingConfig
from zoo.weights import load_state_dict

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "weights")


@pytest.fixture(scope="module")
def resnet18():
    """The converted resnet18 fixture (torchvision's layout, width 1/8, 64x64): exact weights, logits out."""
    info = json.load(open(os.path.join(FIXTURES, "index.json")))["fixtures"]["resnet18_basic"]
    model = zoo.build("resnet18", input_shape=(64, 64, 3), num_classes=info["num_classes"], classifier_activation=None,
                      **info["kwargs"])
    load_state_dict(model, os.path.join(FIXTURES, "resnet18_basic.safetensors"))
    return model, np.load(os.path.join(FIXTURES, "resnet18_basic_io.npz"))["inputs"]


@pytest.mark.parametrize("format, name", [("onnx", "m.onnx"), ("litert", "m.tflite"), ("savedmodel", "saved"),
                                          ("keras", "m.keras"), ("openvino", "m.xml")])
def test_a_converted_resnet18_exports_and_runs_in_its_runtime_within_1e_4_of_keras(resnet18, tmp_path, format, name):
    model, inputs = resnet18
    result = zoo.export(model, tmp_path / name, format=format, inputs=inputs,
                        contract={"class_names": [str(i) for i in range(10)]})
    assert result.ok and result.max_abs_diff <= 1e-4 * result.max_abs_output and result.max_abs_output > 0
    assert result.top1_agreement == 1.0 and result.runtime
    card = deploy.read_card(str(tmp_path / name))
    assert card["input"]["shape"] == [64, 64, 3] and card["input"]["class_names"][3] == "3"
    assert card["format"] == format and card["verified"]["max_abs_diff"] == result.max_abs_diff


def test_litert_quantisation_is_checked_against_its_own_tolerance(resnet18, tmp_path):
    model, inputs = resnet18
    result = zoo.export(model, tmp_path / "m16.tflite", inputs=inputs, quantize="float16")
    assert result.quantize == "float16" and result.tolerance == 1e-2 and result.ok
    full = zoo.export(model, tmp_path / "m32.tflite", inputs=inputs)
    assert full.tolerance == 1e-4 and full.max_abs_diff < result.max_abs_diff  # float16 rounds the weights
    assert os.path.getsize(result.path) < 0.7 * os.path.getsize(full.path)  # half-size weights
    calibrated = zoo.export(model, tmp_path / "m8.tflite", inputs=inputs, quantize="int8", calibration=inputs)
    assert calibrated.tolerance == 0.25 and calibrated.ok and calibrated.top1_agreement == 1.0
    assert os.path.getsize(calibrated.path) < 0.7 * os.path.getsize(result.path)  # int8 weights


def test_an_export_that_disagrees_is_moved_aside_and_refused(resnet18, tmp_path, monkeypatch):
    model, inputs = resnet18
    real = deploy._RUNNERS["onnx"]
    monkeypatch.setitem(deploy._RUNNERS, "onnx", lambda path, x: ((real(path, x)[0] + 1e-2), "perturbed"))
    with pytest.raises(deploy.ExportMismatch, match=r"max \|diff\| 0\.01 > 0\.0001 x the largest output") as error:
        zoo.export(model, tmp_path / "bad.onnx", inputs=inputs)
    assert error.value.result.path.endswith("bad.onnx.rejected")
    assert os.path.exists(tmp_path / "bad.onnx.rejected") and not os.path.exists(tmp_path / "bad.onnx")
    assert not os.path.exists(tmp_path / "bad.onnx.json")


def test_bad_export_arguments_fail_before_anything_is_written(resnet18, tmp_path, monkeypatch):
    model, _ = resnet18
    with pytest.raises(ValueError, match="`format` must be one of"):
        zoo.export(model, tmp_path / "m.bin", format="coreml")
    with pytest.raises(ValueError, match="Cannot tell the format"):
        zoo.export(model, tmp_path / "m.bin")
    with pytest.raises(ValueError, match=r"A onnx export is a \.onnx file"):
        zoo.export(model, tmp_path / "m.tflite", format="onnx")
    with pytest.raises(ValueError, match="`quantize` is for format='litert'"):
        zoo.export(model, tmp_path / "m.onnx", quantize="int8")
    with pytest.raises(ValueError, match=r"`inputs` must be a batch of the model's input shape \(64, 64, 3\)"):
        zoo.export(model, tmp_path / "m.onnx", inputs=np.zeros((2, 32, 32, 3)))
    with pytest.raises(TypeError, match="keras.Model"):
        zoo.export("resnet18", tmp_path / "m.onnx")
    monkeypatch.setitem(deploy.FORMATS, "openvino", (".xml", ("no_such_runtime_module",), "openvino"))
    with pytest.raises(ImportError, match=r"needs no_such_runtime_module: pip install 'keras-zoo\[openvino\]'"):
        zoo.export(model, tmp_path / "m.xml")
    assert os.listdir(tmp_path) == []


def test_zoo_export_verifies_a_comparisons_best_model_and_writes_its_contract(tmp_path, capsys):
    from zoo.cli import main

    data = zoo.data.load("digits", image_size=32)
    out = tmp_path / "cmp"
    tuning.compare(["lenet5"], data=data, training=TrainingConfig(epochs=1), seeds=1, out=out,
                   options=tuning.RunOptions(report=False, measure_speed=False, verbose=0))
    capsys.readouterr()
    for name, format in (("best.onnx", []), ("best.tflite", []), ("best_saved", ["--format", "savedmodel"])):
        assert main(["export", str(out), "--out", str(tmp_path / name), *format]) == 0
        text = capsys.readouterr().out
        assert "verified with" in text and "on 32 test inputs of digits: max |diff|" in text
        card = deploy.read_card(str(tmp_path / name))
        assert card["input"]["shape"] == [32, 32, 1] and card["input"]["class_names"] == list(data.class_names)
        assert card["verified"]["max_abs_diff"] <= 1e-4 * card["verified"]["max_abs_output"]
    assert main(["export", str(out), "--quantize", "int8", "--out", str(tmp_path / "int8.tflite")]) == 0
    line = capsys.readouterr().out.splitlines()[-1]  # calibrated on the training split, scored on the test split
    record = next(r for r in tuning.comparison.read_records(out / "records.jsonl") if r.get("model_path"))
    x, y = data.arrays("test")
    keras_accuracy = np.mean(keras.saving.load_model(out / record["model_path"]).predict(x, verbose=0).argmax(-1) == y)
    int8_accuracy = np.mean(deploy.run(tmp_path / "int8.tflite", x).argmax(-1) == y)
    assert line == (f"  test accuracy ({len(y)} examples): Keras {keras_accuracy:.2%}, int8 {int8_accuracy:.2%} "
                    f"({100 * (int8_accuracy - keras_accuracy):+.2f} points)")
    photo = tmp_path / "photo.png"  # 64x64 RGB, the model takes 32x32x1: the card's contract reads it
    __import__("matplotlib.pyplot").pyplot.imsave(photo, np.random.default_rng(0).random((64, 64, 3)))
    assert main(["predict", str(out / record["model_path"]), str(photo), "--top", "1"]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[2] == data.class_names[int(line[1])] and not line[2].startswith("class")
    model_file = tmp_path / "best.keras"
    assert main(["export", str(out), "--out", str(model_file)]) == 0
    assert keras.saving.load_model(model_file).count_params() > 0
    capsys.readouterr()
    assert main(["predict", str(model_file), str(photo), "--top", "1"]) == 0  # its card: best.keras.json
    assert capsys.readouterr().out.splitlines()[1].split()[2] in data.class_names
    assert main(["export", str(model_file), "--out", str(tmp_path / "again.onnx")]) == 0  # a model file too
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "No run folder or model file" in capsys.readouterr().err
