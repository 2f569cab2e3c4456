"""zoo.evaluate / zoo evaluate: accuracy, loss, per-class accuracy, confusion, throughput and the results row."""

import csv
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
import zoo.data
from zoo.cli import main
from zoo.evaluation import Evaluation, class_indices

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "weights")
COLOURS = {"blue": (0.1, 0.2, 0.9), "green": (0.1, 0.8, 0.2), "red": (0.9, 0.1, 0.1)}


def _small_cnn(classes=3, activation="softmax"):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes, activation=activation)])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three classes of noisy colour patches, five images each, 20x24 pixels (resized to 16x16 when read)."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        os.makedirs(root / name)
        for i in range(5):
            image = np.clip(np.array(colour) + rng.normal(0, 0.35, (20, 24, 3)), 0, 1)
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png((image * 255).astype("uint8")))
    return root


def test_evaluate_equals_model_evaluate_and_brute_force_on_the_same_arrays():
    rng = np.random.default_rng(1)
    x, y = rng.random((50, 16, 16, 3)).astype("float32"), rng.integers(0, 7, 50)
    model = _small_cnn(7, activation=None)  # logits: the loss reads them as such
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    keras_loss, keras_accuracy = model.evaluate(x, y, batch_size=16, verbose=0)
    result = zoo.evaluate(model, (x, y), batch_size=16)
    assert result.examples == 50 and result.batch_size == 16
    assert result.top1 == pytest.approx(100 * keras_accuracy, abs=1e-4)
    assert result.loss == pytest.approx(keras_loss, rel=1e-4)
    scores = model.predict(x, verbose=0)
    top5 = np.argsort(-scores, axis=1)[:, :5]
    assert result.top5 == pytest.approx(100 * np.mean([y[i] in top5[i] for i in range(50)]))
    assert result.confusion.sum() == 50 and np.array_equal(result.confusion.sum(axis=1), np.bincount(y, minlength=7))
    predicted = scores.argmax(1)
    for c, accuracy in result.per_class.items():
        index = int(c.split()[-1])
        assert accuracy == pytest.approx(100 * np.mean(predicted[y == index] == index))
    assert result.images_per_second > 0 and result.row()["top1"] == round(result.top1, 4)


def test_probabilities_and_a_bundle_and_bad_inputs():
    bundle = zoo.data.load("shapes", image_size=16, samples_per_class=10)
    model = _small_cnn(bundle.num_classes)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras_loss, keras_accuracy = model.evaluate(*bundle.arrays("test"), verbose=0)
    result = zoo.evaluate(model, bundle)
    assert result.top1 == pytest.approx(100 * keras_accuracy, abs=1e-4) and result.loss == pytest.approx(keras_loss, rel=1e-4)
    assert result.data == "shapes" and result.fingerprint == bundle.fingerprint
    assert result.class_names == bundle.class_names and bundle.num_classes > 5 and result.top5 is not None
    x, y = bundle.arrays("test")
    with pytest.raises(ValueError, match=f"Label 99 is not one of the model's {bundle.num_classes} classes"):
        zoo.evaluate(model, (x, np.full_like(y, 99)))
    with pytest.raises(ValueError, match="one row of class scores"):
        zoo.evaluate(keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3)]), (x, y))
    with pytest.raises(ValueError, match="no examples"):
        zoo.evaluate(model, [])
    with pytest.raises(TypeError, match="`data` must be a DataBundle"):
        zoo.evaluate(model, 3)
    with pytest.raises(ValueError, match=f"`class_names` must name the model's {bundle.num_classes} outputs"):
        zoo.evaluate(model, (x, y), class_names=["a"])


def test_class_folders_are_matched_to_outputs_by_name_index_wordnet_id_or_a_class_map(tmp_path):
    names = ("cat", "dog", "fish")
    assert class_indices(["dog", "fish"], names)[0].tolist() == [1, 2]
    assert class_indices(["2", "0"], names)[0].tolist() == [2, 0]
    wnids = [f"n{i:08d}" for i in range(1000)]
    assert class_indices(wnids, [f"x{i}" for i in range(1000)])[0].tolist() == list(range(1000))
    placeholders = ("class 0", "class 1", "class 2")
    indices, how = class_indices(["z", "a", "m"], placeholders)
    assert indices.tolist() == [0, 1, 2] and "label order" in how
    with pytest.raises(ValueError, match=r"Cannot tell which of the model's 3 outputs .*'bird'.*--class-map"):
        class_indices(["bird", "cat"], names)
    with pytest.raises(ValueError, match="Cannot tell"):
        class_indices(["a", "b"], placeholders)  # two folders, three outputs: no guessing
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"bird": 2, "cat": "cat"}))
    assert class_indices(["bird", "cat"], names, class_map=mapping)[0].tolist() == [2, 0]
    mapping.write_text(json.dumps({"class_to_index": {"bird": 1}}))  # as DataBundle.save_class_map writes it
    with pytest.raises(ValueError, match="does not name the folder"):
        class_indices(["bird", "cat"], names, class_map=mapping)
    mapping.write_text(json.dumps({"bird": 7}))
    with pytest.raises(ValueError, match="maps 'bird' to 7: not one of the model's 3 classes"):
        class_indices(["bird"], names, class_map=mapping)
    mapping.write_text("[" * 100 + "]" * 100)
    with pytest.raises(ValueError, match="must hold a JSON object"):
        class_indices(["bird"], names, class_map=mapping)
    mapping.write_bytes(b" " * (2**20 + 1))
    with pytest.raises(ValueError, match="too large for a class map"):
        class_indices(["bird"], names, class_map=mapping)


def test_zoo_evaluate_of_a_saved_model_on_a_folder_equals_model_evaluate(folder, tmp_path, capsys):
    bundle = zoo.data.load(f"folder:{folder}", image_size=16, validation_split=0.0, test_split=0.0)
    x, y = bundle.arrays("train")  # every file: what zoo evaluate reads from a folder without split folders
    model = _small_cnn()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, verbose=0)
    _, accuracy = model.evaluate(x, y, verbose=0)
    assert 0.3 < accuracy < 1.0 or accuracy == 1.0
    path = tmp_path / "colours.keras"
    model.save(path)
    (tmp_path / "colours.json").write_text(json.dumps({"input": {"class_names": list(COLOURS)}}))  # its card
    results, confusion = tmp_path / "results.csv", tmp_path / "confusion.csv"
    args = ["evaluate", str(path), "--data", f"folder:{folder}", "--results", str(results), "--batch-size", "4"]
    assert main(args + ["--confusion", str(confusion)]) == 0
    out = capsys.readouterr().out
    assert f"top1: {100 * accuracy:6.2f}%" in out and "15 examples" in out and "matched to the model's class names" in out
    assert "top5" not in out and "green" in out
    rows = list(csv.DictReader(open(results)))
    assert len(rows) == 1 and float(rows[0]["top1"]) == pytest.approx(100 * accuracy, abs=1e-3)
    assert rows[0]["model"] == "colours.keras" and rows[0]["fingerprint"] == bundle.fingerprint
    assert json.loads(rows[0]["versions"])["keras"] == keras.__version__
    table = list(csv.reader(open(confusion)))
    assert table[0][1:] == list(COLOURS) and sum(int(v) for row in table[1:] for v in row[1:]) == 15
    assert main(args) == 0 and len(list(csv.DictReader(open(results)))) == 2  # rows are appended
    capsys.readouterr()
    (tmp_path / "colours.json").write_text(json.dumps({"input": {"class_names": ["a", "b", "c"]}}))
    assert main(args) == 2  # the card's classes are not the folders: cannot tell, no guess
    assert "Cannot tell which of the model's 3 outputs" in capsys.readouterr().err
    results.write_text("x,y\n1,2\n")
    (tmp_path / "colours.json").unlink()
    assert main(args) == 2 and "other columns" in capsys.readouterr().err


def test_zoo_evaluate_of_a_registry_model_reads_the_folder_with_its_weights_preprocessing(tmp_path, capsys):
    from zoo import weights as pretrained

    root = tmp_path / "val"
    rng = np.random.default_rng(2)
    for c in ("3", "7"):  # folder names as class indices
        os.makedirs(root / c)
        for i in range(3):
            tf.io.write_file(str(root / c / f"{i}.png"), tf.io.encode_png(rng.integers(0, 255, (70, 90, 3), "uint8")))
    weights = str(tmp_path / "resnet18_basic.safetensors")  # a copy: the kept conversion is written beside it
    shutil.copy(os.path.join(FIXTURES, "resnet18_basic.safetensors"), weights)
    argv = ["evaluate", "resnet18", "--weights", weights, "--num-classes", "10", "--arg", "width=0.125",
            "--image-size", "64", "--data", f"folder:{root}", "--results", str(tmp_path / "r.csv")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    model = zoo.build("resnet18", weights=weights, num_classes=10, width=0.125, input_shape=(64, 64, 3))
    entry = pretrained.resolve("resnet18", "torchvision")
    files = sorted(str(p) for p in root.glob("*/*.png"))
    x = np.asarray(pretrained.normalization(entry)(pretrained.read_images(files, resize=73, crop=64)))
    predicted = model.predict(x, verbose=0).argmax(1)
    expected = 100 * np.mean(predicted == np.array([3] * 3 + [7] * 3))
    assert f"top1: {expected:6.2f}%" in out and "6 examples" in out and "folder names read as class indices" in out
    assert "published" not in out.split("note")[0]  # a file outside the table at other widths: nothing to compare
    row = next(csv.DictReader(open(tmp_path / "r.csv")))
    assert row["published_top1"] == "" and row["weights"] == weights


def test_the_summary_sets_published_figures_beside_the_measured_ones():
    confusion = np.diag([3, 4]) + np.array([[0, 1], [0, 0]])
    result = Evaluation(examples=8, top1=87.5, top5=None, loss=0.3, confusion=confusion, class_names=("a", "b"),
                        images_per_second=10.0, batch_size=8, model="resnet18", weights="torchvision:IMAGENET1K_V1",
                        published={"top1": 69.758, "top5": 89.078})
    text = result.summary()
    assert "top1:  87.50%   published 69.76%  (measured - published +17.74)" in text
    assert result.per_class == {"a": 75.0, "b": 100.0}
    assert "      3   1\n      0   4" in text
