"""`zoo weights`, `zoo predict` and `zoo transfer --weights` on the committed torchvision-layout fixtures."""

import hashlib
import json
import os
import shutil

import keras
import numpy as np
import pytest

import zoo
from test_weights import FIXTURES, _fixture_model, _max_relative_error, _no_network, _write_png
from zoo.cli import main

FIXTURE = os.path.join(FIXTURES, "resnet18_basic.pth")
TINY = ["--arg", "width=0.125", "--image-size", "64"]


def _run(capsys, argv, code=0):
    assert main(argv) == code, capsys.readouterr().err
    captured = capsys.readouterr()
    return captured.out if code == 0 else captured.err


def _photo_folder(root, *, per_class, shape, seed):
    """A photo folder of two classes: reddish cats, bluish dogs."""
    rng = np.random.default_rng(seed)
    for cls, channel in (("cat", 0), ("dog", 2)):
        os.makedirs(root / cls)
        for i in range(per_class):
            image = rng.integers(0, 80, shape)
            image[..., channel] += 150
            _write_png(root / cls / f"{i}.png", image)


def _fixture_entry(monkeypatch, tmp_path):
    """A table entry for the tiny fixture, cached in tmp_path under a hash-carrying name."""
    digest = hashlib.sha256(open(FIXTURE, "rb").read()).hexdigest()
    name = f"resnet18_basic-{digest[:8]}.pth"
    shutil.copy(FIXTURE, tmp_path / name)
    entry = {**zoo.weights.resolve("resnet18", "torchvision"), "file_name": name, "sha256_prefix": digest[:8],
             "url": f"https://example.invalid/{name}"}
    monkeypatch.setattr(zoo.weights.hub, "weights_table", lambda: (entry,))
    monkeypatch.setattr(zoo.weights.hub, "cache_dir", lambda: str(tmp_path))
    _no_network(monkeypatch)
    return entry, tmp_path / name


def test_weights_list_shows_the_table(capsys):
    out = _run(capsys, ["weights", "list", "vgg16*"])
    rows = out.splitlines()[1:]
    assert {r.split()[1] for r in rows} == {"torchvision:IMAGENET1K_V1", "torchvision:IMAGENET1K_FEATURES",
                                            "timm:tv_in1k"} and len(rows) == 5
    assert "71.59" in out and "73.36" in out  # torchvision's published vgg16 and vgg16_bn top-1
    assert "No pretrained weights match" in _run(capsys, ["weights", "list", "lenet*"], code=2)


def test_weights_convert_writes_keras_weights_that_give_the_torch_logits(capsys, tmp_path):
    out_file = tmp_path / "r18.weights.h5"
    out = _run(capsys, ["weights", "convert", FIXTURE, "--model", "resnet18", "--num-classes", "10", *TINY,
                        "--out", str(out_file)])
    assert "41 layers loaded" in out and out_file.exists()
    model = _fixture_model("resnet18_basic", weights=str(out_file))
    assert _max_relative_error(model, "resnet18_basic") <= 1e-5
    err = _run(capsys, ["weights", "convert", FIXTURE, "--num-classes", "10"], code=2)
    assert "Cannot tell the model from the file name" in err


def test_weights_verify_and_fetch(capsys, monkeypatch, tmp_path):
    entry, cached = _fixture_entry(monkeypatch, tmp_path)
    assert "OK, SHA-256" in _run(capsys, ["weights", "verify", str(cached)])
    assert str(cached) in _run(capsys, ["weights", "fetch", "resnet18"])  # cached: no network needed
    wrong = tmp_path / "resnet18-00000000.pth"
    shutil.copy(FIXTURE, wrong)
    assert "expected 00000000" in _run(capsys, ["weights", "verify", str(wrong)], code=2)
    os.remove(cached)
    err = _run(capsys, ["weights", "fetch", "resnet18"], code=2)
    assert entry["file_name"] in err and entry["url"] in err and str(tmp_path) in err


def test_predict_with_a_checkpoint_prints_the_top_classes(capsys, tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (80, 100, 3))
    _write_png(tmp_path / "photo.png", image)
    checkpoint = str(tmp_path / os.path.basename(FIXTURE))  # its conversion is kept beside it
    shutil.copy(FIXTURE, checkpoint)
    out = _run(capsys, ["predict", "resnet18", str(tmp_path / "photo.png"), "--weights", checkpoint,
                        "--num-classes", "10", "--top", "3", *TINY])
    lines = out.splitlines()
    assert lines[0] == str(tmp_path / "photo.png") and len(lines) == 4
    # The same prediction by hand: the weights' preprocessing (resize 73, crop 64, ImageNet mean/std).
    entry = zoo.weights.resolve("resnet18", "torchvision")
    x = zoo.weights.normalization(entry)(zoo.weights.read_images(tmp_path / "photo.png", resize=73, crop=64))
    probs = np.asarray(_fixture_model("resnet18_basic", weights=checkpoint, classifier_activation="softmax")(x))[0]
    best = np.argsort(-probs)[:3]
    assert [int(line.split()[1]) for line in lines[1:]] == best.tolist()
    assert lines[1].split()[0] == f"{probs[best[0]]:.2%}"
    assert "No such image file" in _run(capsys, ["predict", "resnet18", str(tmp_path / "nope.png")], code=2)


def test_transfer_with_torchvision_weights_then_predict_with_class_names(capsys, monkeypatch, tmp_path):
    entry, cached = _fixture_entry(monkeypatch, tmp_path)
    _photo_folder(tmp_path / "photos", per_class=8, shape=(40, 48, 3), seed=1)
    out_dir = tmp_path / "run"
    out = _run(capsys, ["transfer", "--backbone", "resnet18", "--weights", "torchvision", "--arg", "width=0.125",
                        "--data", f"folder:{tmp_path / 'photos'}", "--image-size", "64", "--head-epochs", "1",
                        "--ft-epochs", "1", "--batch-size", "4", "--min-steps", "0", "--out", str(out_dir)])
    assert "weights: torchvision:IMAGENET1K_V1" in out and "normalised with mean [0.485, 0.456, 0.406]" in out
    # The backbone started from the checkpoint: its frozen stem is the fixture's, converted.
    reference = _fixture_model("resnet18_basic", weights=str(cached))
    saved = keras.saving.load_model(str(out_dir / "model.keras"))
    backbone = next(la for la in saved.layers if isinstance(la, keras.Model))
    np.testing.assert_array_equal(backbone.get_layer("stem_conv").kernel, reference.get_layer("stem_conv").kernel)
    assert json.load(open(out_dir / "class_map.json"))["class_names"] == ["cat", "dog"]
    out = _run(capsys, ["predict", str(out_dir / "model.keras"), str(tmp_path / "photos" / "dog" / "0.png"),
                        "--top", "2"])
    assert {line.split()[-1] for line in out.splitlines()[1:]} == {"cat", "dog"}
    card = json.load(open(out_dir / "model.json"))["input"]  # the input contract travels with the model
    assert card["class_names"] == ["cat", "dog"] and card["input_shape"] == [64, 64, 3] and card["value_range"] == [0, 1]
    out = _run(capsys, ["evaluate", str(out_dir / "model.keras"), "--data", f"folder:{tmp_path / 'photos'}",
                        "--results", str(tmp_path / "evaluations.csv")])
    assert "16 examples" in out and "folders matched to the model's class names" in out


def test_weights_verify_compares_the_content_with_the_table_never_the_name(capsys, monkeypatch, tmp_path):
    entry, cached = _fixture_entry(monkeypatch, tmp_path)
    other = open(os.path.join(FIXTURES, "vgg11_bn.pth"), "rb").read()
    # another file renamed to its own hash prefix: its name agrees with it, but nothing published does
    renamed = tmp_path / f"resnet18-{hashlib.sha256(other).hexdigest()[:8]}.pth"
    renamed.write_bytes(other)
    out = _run(capsys, ["weights", "verify", str(renamed)])
    assert "matches" not in out and "OK" not in out and "not a file of the weights table" in out
    # the table's file name on other content is refused
    os.makedirs(tmp_path / "elsewhere")
    impostor = tmp_path / "elsewhere" / entry["file_name"]
    impostor.write_bytes(other)
    assert "published in the weights table" in _run(capsys, ["weights", "verify", str(impostor)], code=2)
    # the table's file under another name is known by its content
    plain = tmp_path / "r18.pth"
    shutil.copy(FIXTURE, plain)
    out = _run(capsys, ["weights", "verify", str(plain)])
    assert "OK" in out and entry["file_name"] in out and "the table has no full hash" in out
    # a full hash in the table is the one compared: a right prefix with a wrong full hash is refused
    digest = hashlib.sha256(open(FIXTURE, "rb").read()).hexdigest()
    wrong = {**entry, "sha256": digest[:8] + "0" * 56}
    monkeypatch.setattr(zoo.weights.hub, "weights_table", lambda: (wrong,))
    assert "expected" in _run(capsys, ["weights", "verify", str(cached)], code=2)
    monkeypatch.setattr(zoo.weights.hub, "weights_table", lambda: ({**entry, "sha256": digest},))
    assert "matches the table's full SHA-256 of torchvision:IMAGENET1K_V1" in _run(capsys, ["weights", "verify",
                                                                                            str(cached)])


def test_predict_and_explain_take_any_image_for_a_grayscale_model_or_say_what_it_expects(capsys, tmp_path):
    """Issue 28: a model of a 32x32x1 comparison failed in Functional.call() on an RGB photo."""
    model = zoo.build("lenet5", input_shape=(32, 32, 1), num_classes=3)
    model.save(tmp_path / "gray.keras")
    _write_png(tmp_path / "photo.png", np.random.default_rng(0).integers(0, 255, (40, 56, 3)))
    out = _run(capsys, ["predict", str(tmp_path / "gray.keras"), str(tmp_path / "photo.png"), "--top", "2"])
    assert out.splitlines()[0].endswith("photo.png") and len(out.splitlines()) == 3
    flat = zoo.build("mlp", input_shape=(8,), num_classes=2)
    flat.save(tmp_path / "flat.keras")
    err = _run(capsys, ["predict", str(tmp_path / "flat.keras"), str(tmp_path / "photo.png")], code=2)
    assert "takes inputs of shape (8,)" in err and "square RGB or grayscale images" in err


@pytest.mark.slow  # 30 s; the resnet18 transfer above, tests/test_layer_decay.py and the t5 example test cover it
def test_transfer_takes_a_modern_backbone_its_checkpoint_and_layer_decay(capsys, tmp_path):
    """`zoo transfer --backbone convnext_tiny` from a torchvision-layout checkpoint, fine-tuned with layer decay."""
    checkpoint = tmp_path / "convnext_tiny.pth"
    shutil.copy(os.path.join(FIXTURES, "convnext_tiny.pth"), checkpoint)
    _photo_folder(tmp_path / "photos", per_class=4, shape=(40, 40, 3), seed=2)
    out_dir = tmp_path / "run"
    out = _run(capsys, ["transfer", "--backbone", "convnext_tiny", "--weights", str(checkpoint), "--arg",
                        "width=0.0625", "--data", f"folder:{tmp_path / 'photos'}", "--image-size", "32",
                        "--head-epochs", "1", "--ft-epochs", "1", "--unfreeze", "all", "--layer-decay", "0.7",
                        "--batch-size", "4", "--min-steps", "0", "--out", str(out_dir)])
    assert "weights: " in out and "phase 2" in out
    reference = zoo.build("convnext_tiny", width=0.0625, input_shape=(32, 32, 3), include_top=False,
                          weights=str(checkpoint))
    saved = keras.saving.load_model(str(out_dir / "model.keras"))
    backbone = next(la for la in saved.layers if isinstance(la, keras.Model))
    # phase 2 trained the stem at 0.7 ** 23 of the rate: it moved, but far less than the last block
    stem = np.abs(np.array(backbone.get_layer("stem_conv").kernel) - np.array(reference.get_layer("stem_conv").kernel))
    last = np.abs(np.array(backbone.get_layer("stage4_block3_fc2").kernel)
                  - np.array(reference.get_layer("stage4_block3_fc2").kernel))
    assert 0 < stem.max() < last.max() / 100
    history = json.load(open(out_dir / "history.json"))
    assert [p[0] for p in history["phases"]] == ["head", "fine_tune"]


def test_transfer_refuses_a_bad_layer_decay_before_loading_data(capsys):
    err = _run(capsys, ["transfer", "--backbone", "resnet18", "--layer-decay", "1.5", "--data", "folder:/nowhere"],
               code=2)
    assert "layer_decay" in err and "1.5" in err
