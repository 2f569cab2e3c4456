"""zoo.weights: torch/safetensors readers without torch, exact conversion from torchvision and timm keys.

The fixtures (tests/fixtures/weights) were made by tools/make_weight_fixtures.py in a side
venv with torch, torchvision and timm: tiny networks with torchvision's module structure and
key names, random weights and BatchNorm statistics, and their logits on fixed inputs.
"""

import json
import hashlib
import os
import pickle
import re
import shutil
import zipfile

import numpy as np
import pytest

import zoo
from zoo.weights import CheckpointError, UnsafeCheckpointError, load_state_dict, read_checkpoint
from zoo.weights.convert import key_rules

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "weights")
INDEX = json.load(open(os.path.join(FIXTURES, "index.json")))["fixtures"]
FULL_SIZE_KEYS = json.load(open(os.path.join(FIXTURES, "full_size_keys.json")))


def _fixture_model(name, **kwargs):
    info = INDEX[name]
    args = dict(input_shape=(info["input_size"],) * 2 + (3,), num_classes=info["num_classes"],
                classifier_activation=None, **info["kwargs"])
    return zoo.build(info["model"], **{**args, **kwargs})


def _max_relative_error(model, name):
    io = np.load(os.path.join(FIXTURES, f"{name}_io.npz"))
    out = np.asarray(model(io["inputs"], training=False))
    return float(np.abs(out - io["logits"]).max() / np.abs(io["logits"]).max())


@pytest.mark.parametrize("name, suffix", [(name, suffix) for name in sorted(INDEX) for suffix in (".pth", ".safetensors")
                                           if os.path.exists(os.path.join(FIXTURES, name + suffix))])
def test_converted_fixture_gives_the_torch_logits(name, suffix):
    # Basic-block, bottleneck and grouped (ResNeXt) ResNet, VGG-BN, DenseNet, AlexNet, MobileNet V2/V3, RegNet Y,
    # ConvNeXt (torchvision keys), VGG (timm keys).
    model = _fixture_model(name)
    report = load_state_dict(model, os.path.join(FIXTURES, name + suffix))
    assert report.key_style == INDEX[name]["keys"]
    assert len(report.loaded) == sum(1 for layer in model.layers if layer.weights)
    assert _max_relative_error(model, name) <= 1e-5


def test_builder_weights_argument_converts_a_checkpoint_once(tmp_path):
    # A local checkpoint takes the table's path: converted by its family's key rules, the result kept beside it.
    path = tmp_path / "resnet18_basic.safetensors"
    shutil.copy(os.path.join(FIXTURES, "resnet18_basic.safetensors"), path)
    model = _fixture_model("resnet18_basic", weights=str(path))
    assert _max_relative_error(model, "resnet18_basic") <= 1e-5
    kept = tmp_path / "resnet18_basic.safetensors.zoo.weights.h5"
    assert kept.exists()
    report = zoo.weights.load(_fixture_model("resnet18_basic"), path, card=zoo.get_card("resnet18"))
    assert report.key_style == "converted" and report.source == str(kept) and report.family == "resnet"


def test_one_load_for_every_kind_of_weights(tmp_path):
    # zoo.weights.load (also zoo.load_weights) takes Keras files too, by layer key or name, with a report.
    source = _fixture_model("resnet18_basic")
    load_state_dict(source, os.path.join(FIXTURES, "resnet18_basic.pth"), family="resnet")
    h5, saved = tmp_path / "r18.weights.h5", tmp_path / "r18.keras"
    source.save_weights(h5)
    source.save(saved)
    for path in (h5, saved):
        target = _fixture_model("resnet18_basic")
        report = zoo.load_weights(target, path)
        assert isinstance(report, zoo.weights.LoadReport) and not report.skipped
        assert _max_relative_error(target, "resnet18_basic") <= 1e-5
    with pytest.raises(ValueError, match="does not exist"):
        zoo.weights.load(source, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="keras.applications wrappers"):
        zoo.weights.load(source, "imagenet")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"\.weights\.h5 or a \.keras file"):
        zoo.weights.load(source, tmp_path / "notes.txt")


def test_every_table_entry_is_on_its_models_card_and_its_family_has_key_rules():
    for name in {r["model"] for r in zoo.weights.weights_table()}:
        card = zoo.get_card(name)
        assert card.weights and all(zoo.weights.resolve(name, spec)["model"] == name for spec in card.weights)
        zoo.weights.key_rules(card.family)
    assert zoo.get_card("keras_resnet50").weights == ("imagenet",) and zoo.get_card("lenet5").weights == ()


def test_each_family_brings_its_own_key_rules():
    # Registered by the family modules (the weights floor imports no model); the card names the family.
    assert {"resnet", "densenet", "vgg", "alexnet"} <= set(zoo.weights.convert._KEY_RULES)
    assert zoo.weights.key_rules(zoo.get_card("vgg16_bn").family).sequential
    with pytest.raises(ValueError, match="no torchvision counterpart"):
        zoo.weights.key_rules("lenet")
    with pytest.raises(ValueError, match="already"):
        zoo.weights.register_key_rules("resnet", zoo.weights.KeyRules())
    # A model without its card is recognised by its layer names.
    for name in ("resnet18_basic", "densenet121", "vgg11_bn", "alexnet"):
        assert zoo.weights.infer_family(_fixture_model(name)) == zoo.get_card(INDEX[name]["model"]).family


def test_legacy_torch_format_reads_the_same_tensors():
    zipped = read_checkpoint(os.path.join(FIXTURES, "resnet18_basic.pth"))
    legacy = read_checkpoint(os.path.join(FIXTURES, "resnet18_basic_legacy.pth"))
    assert list(zipped) == list(legacy) and len(zipped) == INDEX["resnet18_basic"]["tensors"]
    for key in zipped:
        np.testing.assert_array_equal(zipped[key], legacy[key])


def test_views_strides_offsets_and_dtypes_are_rebuilt():
    tensors = read_checkpoint(os.path.join(FIXTURES, "views.pth"))
    expected = np.load(os.path.join(FIXTURES, "views.npz"))
    assert set(tensors) == set(expected.files)
    for key in expected.files:
        np.testing.assert_array_equal(tensors[key].astype(expected[key].dtype), expected[key])
    assert tensors["half"].dtype == np.float16 and tensors["bf16"].dtype == np.float32
    assert tensors["transposed"].shape == (4, 3) and tensors["transposed"].flags["C_CONTIGUOUS"]


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"conv1.weight": _RunsCode(marker)}, protocol=2)
    zipped = tmp_path / "evil.pth"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("evil/data.pkl", payload)
        z.writestr("evil/version", "3\n")
    legacy = tmp_path / "evil_legacy.pt"
    legacy.write_bytes(payload)
    for path in (zipped, legacy):
        with pytest.raises(UnsafeCheckpointError, match=re.escape(str(path)) + ".*(posix|os).system"):
            read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", "_legacy.pth"])
def test_a_truncated_checkpoint_gives_one_error_naming_the_file(tmp_path, suffix):
    source = os.path.join(FIXTURES, "resnet18_basic" + suffix)
    data = open(source, "rb").read()
    path = tmp_path / ("cut" + suffix)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        read_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pth"):
        read_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_checkpoint(tmp_path / "missing.pth")


def test_unmatched_tensors_on_either_side_are_listed_and_nothing_is_assigned():
    state = read_checkpoint(os.path.join(FIXTURES, "resnet18_basic.pth"))
    model = _fixture_model("resnet18_basic")
    before = [w.copy() for w in model.get_layer("stem_conv").get_weights()]
    broken = dict(state)
    del broken["layer2.1.bn2.running_var"]
    broken["layer5.0.conv1.weight"] = np.zeros((3, 3, 3, 3), np.float32)
    with pytest.raises(ValueError) as info:
        load_state_dict(model, broken)
    message = str(info.value)
    assert "stage2_block2_bn2 (needs layer2.1.bn2.running_var)" in message
    assert "layer5.0.conv1.weight" in message
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0], before[0])


def test_a_different_head_needs_new_head_and_keeps_the_backbone():
    path = os.path.join(FIXTURES, "resnet18_basic.pth")
    model = _fixture_model("resnet18_basic", num_classes=3)
    with pytest.raises(ValueError, match="new_head=True"):
        load_state_dict(model, path)
    head = [w.copy() for w in model.get_layer("head_predictions").get_weights()]
    report = load_state_dict(model, path, new_head=True)
    state = read_checkpoint(path)
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0],
                                  state["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model.get_layer("head_predictions").get_weights()[0], head[0])
    assert {k for k, why in report.dropped if why == "new_head=True"} == {"fc.weight", "fc.bias"}
    # include_top=False drops the classifier; the backbone's features are torch's.
    backbone = _fixture_model("resnet18_basic", include_top=False, pooling="avg")
    report = load_state_dict(backbone, path)
    assert {k for k, why in report.dropped if why == "include_top=False"} == {"fc.weight", "fc.bias"}


def test_old_densenet_keys_load_too():
    # torchvision's 2017 DenseNet files name 'norm1' 'norm.1' (its own _load_state_dict rule); they predate
    # BatchNorm's num_batches_tracked (PyTorch 0.4.1), which torchvision's rule does not rename either.
    state = read_checkpoint(os.path.join(FIXTURES, "densenet121.pth"))
    old = {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()
           if not k.endswith("num_batches_tracked")}
    assert any(".norm.1." in k for k in old)
    model = _fixture_model("densenet121")
    load_state_dict(model, old)
    assert _max_relative_error(model, "densenet121") <= 1e-5


# Assigning full-size weights is checked end to end on these; the rest only match names and shapes.
ASSIGNED = ("torchvision:alexnet", "torchvision:resnet18", "torchvision:densenet121")


# Built at full size these take minutes and gigabytes: slow; their families' smaller models run the same code.
HUGE = ("torchvision:regnet_x_32gf", "torchvision:regnet_y_16gf", "torchvision:regnet_y_32gf",
        "torchvision:regnet_y_128gf", "torchvision:convnext_large", "torchvision:vit_l_16", "torchvision:vit_l_32",
        "torchvision:vit_h_14")


def _smallest_of_each_family():
    """The smallest architecture (by its checkpoint's size) of each key style and family: the other variants of a
    family differ only in their table's depths and widths, which the parameter-count tests check against
    torchvision; their full-size key mappings run with the slow tests."""
    groups = {}
    for arch, shapes in FULL_SIZE_KEYS.items():
        style, name = arch.split(":")
        size = sum(int(np.prod(shape)) for _, shape in shapes)
        groups.setdefault((style, zoo.get_card(name).family), []).append((size, arch))
    return {min(group)[1] for group in groups.values()}


FAST_FULL_SIZE = _smallest_of_each_family() | set(ASSIGNED)


@pytest.mark.parametrize("arch", [a if a in FAST_FULL_SIZE and a not in HUGE else pytest.param(a, marks=pytest.mark.slow)
                                  for a in sorted(FULL_SIZE_KEYS)])
def test_full_size_key_mapping_is_complete(arch):
    # State dicts generated in NumPy with torchvision's (and timm's) full-size key names and
    # shapes, recorded from the libraries: every tensor used once, every zoo weight filled once.
    style, name = arch.split(":")
    assign = arch in ASSIGNED
    rng = np.random.default_rng(0)
    state = {k: (rng.standard_normal(s, dtype=np.float32) if assign else np.zeros(s, np.float32))
             for k, s in FULL_SIZE_KEYS[arch]}
    model = zoo.build(name)
    report = load_state_dict(model, state, assign=assign)
    # timm's ResNet and DenseNet keys are torchvision's; its VGG classifier differs.
    assert report.key_style == ("timm" if style == "timm" and name.startswith("vgg") else "torchvision")
    assert len(report.loaded) == sum(1 for layer in model.layers if layer.weights)
    # besides step counters, only the tensors of modules the family's rules ignore by design (GoogLeNet's aux heads)
    ignored = {k for k in state if k.split(".")[0] in dict(key_rules(zoo.get_card(name).family).ignored)}
    assert {k for k, _ in report.dropped} == {k for k in state if k.endswith("num_batches_tracked")} | ignored
    assert model.count_params() == sum(v.size for k, v in state.items()
                                       if not k.endswith("num_batches_tracked") and k not in ignored)
    if assign:  # the first conv and the classifier, end to end
        first = model.get_layer("stage1_conv" if name == "alexnet" else "stem_conv")
        key = FULL_SIZE_KEYS[arch][0][0]
        np.testing.assert_array_equal(first.get_weights()[0], state[key].transpose(2, 3, 1, 0))
        head = "classifier.6" if name == "alexnet" else "classifier" if "densenet" in name else "fc"
        np.testing.assert_array_equal(model.get_layer("head_predictions").get_weights()[0],
                                      state[f"{head}.weight"].T)


def test_decode_predictions():
    preds = np.zeros((2, 1000), np.float32)
    preds[0, [1, 207, 5]] = [0.5, 0.3, 0.2]
    preds[1, 999] = 1.0
    top = zoo.decode_predictions(preds, top=3)
    assert [(i, n) for i, n, _ in top[0]] == [(1, "goldfish"), (207, "golden retriever"), (5, "electric ray")]
    assert top[1][0][:2] == (999, "toilet tissue")
    assert len(zoo.weights.imagenet_classes()) == 1000
    with pytest.raises(ValueError, match="top"):
        zoo.decode_predictions(preds, top=0)
    with pytest.raises(ValueError, match="class_names"):
        zoo.decode_predictions(np.zeros((1, 10)))
    assert zoo.decode_predictions(np.array([[0.1, 0.9]]), top=1, class_names=("cat", "dog")) == [[(1, "dog", 0.9)]]


def test_checkpoint_file_for_a_model_without_torch_counterpart(tmp_path):
    path = tmp_path / "lenet.safetensors"
    shutil.copy(os.path.join(FIXTURES, "resnet18_basic.safetensors"), path)
    with pytest.raises(ValueError, match="no torchvision counterpart"):
        zoo.build("lenet5", weights=str(path))


# --- the weights table, the cache and the builders' weights="torchvision" --------------------------

def _no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_the_table_names_every_torchvision_architecture_and_its_defaults():
    table = zoo.weights.weights_table()
    archs = {name.split(":")[1] for name in FULL_SIZE_KEYS if name.startswith("torchvision:")}
    assert {r["model"] for r in table if r["source"] == "torchvision"} == archs
    for arch in archs:  # one default per source and model, and the file name carries the hash prefix
        assert sum(r["default"] for r in table if r["model"] == arch and r["source"] == "torchvision") == 1
    for r in table:
        if r["source"] == "torchvision":  # torchvision's published count is the recorded state dict's
            shapes = FULL_SIZE_KEYS[f"torchvision:{r['model']}"]
            buffers = ("num_batches_tracked", "running_mean", "running_var",
                       "relative_position_index", "relative_coords_table")  # Swin's buffers too
            ignored = tuple(f"{m}." for m, _ in key_rules(zoo.get_card(r["model"]).family).ignored)  # aux heads
            # ViT's position embedding is of the weights' patch grid (SWAG's at 384 to 518 px), not the recorded 224's
            patch = dict(shapes).get("conv_proj.weight", [1])[-1]
            grid = (r["preprocessing"]["crop"] // patch) ** 2
            params = {k: int(np.prod([1, 1 + grid, s[2]] if k == "encoder.pos_embedding" else s))
                      for k, s in shapes if not k.endswith(buffers)}
            # without the auxiliary heads, the zoo's count (inception_v3's published count includes AuxLogits)
            assert r.get("num_params_eval", r["num_params"]) == sum(
                n for k, n in params.items() if not k.startswith(ignored))
            if "num_params_eval" in r:
                assert r["num_params"] == sum(params.values()) != r["num_params_eval"]
            assert r["sha256_prefix"] in r["file_name"] and r["url"].endswith(r["file_name"])
    assert zoo.weights.resolve("resnet18", "torchvision")["tag"] == "IMAGENET1K_V1"
    assert zoo.weights.resolve("resnet50", "torchvision")["tag"] == "IMAGENET1K_V2"  # torchvision's DEFAULT
    assert zoo.weights.resolve("resnet50", "timm:a1_in1k")["top1"] == 80.382
    # strict JSON (no NaN): weights without a classifier have no published accuracy, null
    path = os.path.join(os.path.dirname(zoo.weights.__file__), "table.json")
    with open(path, encoding="utf-8") as f:
        json.load(f, parse_constant=lambda constant: pytest.fail(f"table.json holds {constant}"))
    assert zoo.weights.resolve("vgg16", "IMAGENET1K_FEATURES")["top1"] is None
    assert zoo.weights.resolve("resnet50", "resnet50.a1_in1k") == zoo.weights.resolve("resnet50", "a1_in1k")
    with pytest.raises(ValueError, match="Available.*torchvision:IMAGENET1K_V1"):
        zoo.weights.resolve("resnet18", "IMAGENET1K_V9")


def test_offline_weights_fail_naming_file_url_and_folder(monkeypatch):
    _no_network(monkeypatch)
    with pytest.raises(zoo.weights.WeightsDownloadError) as info:
        zoo.build("resnet18", weights="torchvision")
    message = str(info.value)
    assert "resnet18-f37072fd.pth" in message and "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert zoo.weights.cache_dir() in message


def test_pretrained_weights_need_their_head_or_a_new_one():
    with pytest.raises(ValueError, match="num_classes=1000.*new_head=True"):
        zoo.build("resnet18", weights="torchvision", num_classes=10)
    with pytest.raises(ValueError, match="No pretrained weights"):
        zoo.build("resnet18", weights="nope")


def test_a_cached_file_is_used_without_network_and_its_hash_checked(monkeypatch, tmp_path):
    # A table entry for the tiny fixture: its file sits in the cache folder under its published name.
    import hashlib

    source = os.path.join(FIXTURES, "resnet18_basic.safetensors")
    digest = hashlib.sha256(open(source, "rb").read()).hexdigest()
    name = f"resnet18_basic-{digest[:8]}.safetensors"
    shutil.copy(source, tmp_path / name)
    entry = {**zoo.weights.resolve("resnet18", "torchvision"), "file_name": name, "sha256_prefix": digest[:8],
             "url": f"https://example.invalid/{name}"}
    monkeypatch.setattr(zoo.weights.hub, "weights_table", lambda: (entry,))
    _no_network(monkeypatch)
    model = _fixture_model("resnet18_basic")
    card = zoo.get_card("resnet18")
    assert "torchvision:IMAGENET1K_V1" in card.weights  # the card lists the table's entries
    report = zoo.weights.load(model, "torchvision", card=card, directory=str(tmp_path))
    assert report.source == str(tmp_path / name) and len(report.loaded) == 41
    assert _max_relative_error(model, "resnet18_basic") <= 1e-5
    data = bytearray((tmp_path / name).read_bytes())
    data[-1] ^= 1
    (tmp_path / name).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(name) + ".*SHA-256"):
        zoo.weights.load(model, "torchvision", card=card, directory=str(tmp_path))
    # The conversion is kept beside the checkpoint and used by the next load, whole or without the head.
    (tmp_path / name).write_bytes(open(source, "rb").read())
    kept = tmp_path / (name + ".zoo.weights.h5")
    assert str(kept) == zoo.weights.converted_path(str(tmp_path / name)) and kept.exists()
    report = zoo.weights.load(model, "torchvision", card=card, directory=str(tmp_path))
    assert report.key_style == "converted"  # rewritten, but the very content the kept file was converted from
    fresh = _fixture_model("resnet18_basic")
    report = zoo.weights.load(fresh, "torchvision", card=card, directory=str(tmp_path))
    assert report.key_style == "converted" and report.source == str(kept)
    assert _max_relative_error(fresh, "resnet18_basic") <= 1e-5
    body = _fixture_model("resnet18_basic", include_top=False, pooling="avg")
    report = zoo.weights.load(body, "torchvision", card=card, directory=str(tmp_path))
    assert report.key_style == "converted"
    np.testing.assert_array_equal(body.get_layer("stem_conv").kernel, fresh.get_layer("stem_conv").kernel)
    kept.write_bytes(kept.read_bytes()[:1000])  # a damaged kept file: ignored, converted again, rewritten
    with pytest.warns(UserWarning, match="Ignoring the converted weights"):
        report = zoo.weights.load(_fixture_model("resnet18_basic"), "torchvision", card=card,
                                  directory=str(tmp_path))
    assert report.key_style == "torchvision" and kept.stat().st_size > 1000


def test_the_table_urls_name_their_files():
    for r in zoo.weights.weights_table():
        if r["source"] == "timm":
            assert r["url"] == f"https://huggingface.co/timm/{r['model']}.{r['tag']}/resolve/main/model.safetensors"
        else:
            assert r["url"] == f"https://download.pytorch.org/models/{r['file_name']}"
        p = r["preprocessing"]
        assert p["crop"] <= p["resize"] and len(p["mean"]) == len(p["std"]) == 3


def _write_png(path, image):
    import tensorflow as tf

    tf.io.write_file(str(path), tf.io.encode_png(np.asarray(image, dtype=np.uint8)))


def test_read_images_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    wide = np.zeros((32, 64, 3), np.uint8)
    wide[:, :32, 0] = 255  # left half red, right half blue
    wide[:, 32:, 2] = 255
    tall = np.transpose(wide, (1, 0, 2))  # top half red, bottom half blue
    _write_png(tmp_path / "wide.png", wide)
    _write_png(tmp_path / "tall.png", tall)
    out = zoo.weights.read_images([tmp_path / "wide.png", tmp_path / "tall.png"], resize=32, crop=16)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.float32
    # 64x32 stays 64x32 (shorter side already 32); the centre 16 columns are 24..40: 8 red, then 8 blue.
    np.testing.assert_allclose(out[0, :, :8], np.broadcast_to([1.0, 0.0, 0.0], (16, 8, 3)), atol=1e-6)
    np.testing.assert_allclose(out[0, :, 8:], np.broadcast_to([0.0, 0.0, 1.0], (16, 8, 3)), atol=1e-6)
    np.testing.assert_allclose(out[1], np.transpose(out[0], (1, 0, 2)), atol=1e-6)
    half = zoo.weights.read_images(tmp_path / "wide.png", resize=16, crop=16)  # 32x64 -> 16x32, crop 8..24
    np.testing.assert_allclose(half[0, :, :4], np.broadcast_to([1.0, 0.0, 0.0], (16, 4, 3)), atol=1e-6)
    assert zoo.weights.read_images(tmp_path / "wide.png", resize=None, crop=8).shape == (1, 8, 8, 3)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.jpg"):
        zoo.weights.read_images([tmp_path / "bad.jpg"])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        zoo.weights.read_images([tmp_path / "wide.png", tmp_path / "missing.png"])
    with pytest.raises(ValueError, match="crop"):
        zoo.weights.read_images(tmp_path / "wide.png", resize=16, crop=0)


def test_normalization_is_the_entrys_mean_and_std():
    entry = zoo.weights.resolve("resnet18", "torchvision")
    layer = zoo.weights.normalization(entry)
    x = np.full((1, 2, 2, 3), 0.5, np.float32)
    expected = (0.5 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(np.asarray(layer(x))[0, 0, 0], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="entry"):
        zoo.weights.normalization({"model": "resnet18"})


# --- issue 28: the kept conversion, names and files, pairing, features-only weights ------------------

_SAFETENSORS_DTYPE_NAMES = {"float32": "F32", "float16": "F16", "int64": "I64"}


def _write_safetensors(path, state):
    """A safetensors file of ``{key: array}``, written byte by byte (8-byte header length, JSON header, data)."""
    header, data, offset = {}, [], 0
    for key, value in state.items():
        raw = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": _SAFETENSORS_DTYPE_NAMES[value.dtype.name], "shape": list(value.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        data.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(data))


def _negated_head(state):
    """The same checkpoint with the classifier negated: the fixture's logits, negated."""
    return {**state, "fc.weight": -state["fc.weight"], "fc.bias": -state["fc.bias"]}


def _logits(model, name):
    return np.asarray(model(np.load(os.path.join(FIXTURES, f"{name}_io.npz"))["inputs"], training=False))


def test_the_kept_conversion_belongs_to_the_checkpoints_name_and_content(tmp_path):
    # X.pth and X.safetensors each keep their own conversion, and a changed checkpoint is converted again even
    # when its size and modification time are the old ones.
    state = read_checkpoint(os.path.join(FIXTURES, "resnet18_basic.pth"))
    expected = np.load(os.path.join(FIXTURES, "resnet18_basic_io.npz"))["logits"]
    pth, st = tmp_path / "X.pth", tmp_path / "X.safetensors"
    shutil.copy(os.path.join(FIXTURES, "resnet18_basic.pth"), pth)
    _write_safetensors(st, _negated_head(state))
    old = os.stat(st).st_mtime - 1000
    os.utime(st, (old, old))  # older than any kept file
    np.testing.assert_allclose(_logits(_fixture_model("resnet18_basic", weights=str(pth)), "resnet18_basic"),
                               expected, rtol=1e-4, atol=1e-4)
    card = zoo.get_card("resnet18")
    model = _fixture_model("resnet18_basic")
    report = zoo.weights.load(model, st, card=card)
    assert report.key_style == "torchvision"  # converted, not the .pth's kept file
    np.testing.assert_allclose(_logits(model, "resnet18_basic"), -expected, rtol=1e-4, atol=1e-4)
    assert (tmp_path / "X.pth.zoo.weights.h5").exists() and (tmp_path / "X.safetensors.zoo.weights.h5").exists()
    assert zoo.weights.load(_fixture_model("resnet18_basic"), st, card=card).key_style == "converted"
    size = os.path.getsize(st)
    _write_safetensors(st, state)  # new content, same size, the old modification time
    os.utime(st, (old, old))
    assert os.path.getsize(st) == size
    model = _fixture_model("resnet18_basic")
    assert zoo.weights.load(model, st, card=card).key_style == "torchvision"
    np.testing.assert_allclose(_logits(model, "resnet18_basic"), expected, rtol=1e-4, atol=1e-4)


def test_a_file_name_is_a_file_and_an_unknown_name_names_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(os.path.join(FIXTURES, "resnet18_basic.safetensors"), tmp_path / "timm_resnet18.safetensors")
    assert not zoo.weights.is_weights_spec("timm_resnet18.safetensors")
    model = _fixture_model("resnet18_basic", weights="timm_resnet18.safetensors")  # relative, starts with "timm"
    assert _max_relative_error(model, "resnet18_basic") <= 1e-5
    with pytest.raises(ValueError, match="does not exist"):  # a file's name, even when it is missing
        _fixture_model("resnet18_basic", weights="torchvision_resnet18.PTH")
    (tmp_path / "torchvision").write_bytes(b"")  # any existing file is a file, even under a table name
    assert not zoo.weights.is_weights_spec("torchvision")
    with pytest.raises(ValueError, match="must be a torch/safetensors checkpoint"):
        _fixture_model("resnet18_basic", weights="torchvision")
    with pytest.raises(ValueError) as info:  # neither: both possibilities, before anything is built
        zoo.build("resnet18", weights="resnet18_imagenet")
    message = str(info.value)
    assert "No pretrained weights 'resnet18_imagenet'" in message and "torchvision:IMAGENET1K_V1" in message
    assert str(tmp_path / "resnet18_imagenet") + " does not exist" in message and ".safetensors" in message
    assert zoo.weights.is_weights_spec("resnet50.a1_in1k") and zoo.weights.is_weights_spec("timm:a1_in1k")
    assert not zoo.weights.is_weights_spec("") and not zoo.weights.is_weights_spec("imagenet")


def test_a_checkpoint_of_another_architecture_lists_the_unmatched_keys():
    # vgg11 (no BatchNorm) with a vgg11_bn checkpoint: paired by name first, never a reshape error.
    info = INDEX["vgg11_bn"]
    path = os.path.join(FIXTURES, "vgg11_bn.pth")
    with pytest.raises(ValueError) as raised:
        zoo.build("vgg11", input_shape=(info["input_size"],) * 2 + (3,), num_classes=info["num_classes"],
                  weights=path, **info["kwargs"])
    message = str(raised.value)
    assert "axes" not in message and "zoo layer(s) unmatched" in message and "unmatched source tensor" in message
    assert "running_mean" in message and "checkpoint has BatchNorm layers and the model none" in message


def test_only_a_batchnorm_step_counter_is_accepted_without_a_weight():
    state = read_checkpoint(os.path.join(FIXTURES, "resnet18_basic.pth"))
    assert "layer1.0.bn1.num_batches_tracked" in state
    report = load_state_dict(_fixture_model("resnet18_basic"), state)
    assert ("layer1.0.bn1.num_batches_tracked", "BatchNorm step counter, not a weight") in report.dropped
    for extra in ({"fc.num_batches_tracked": np.array(0)},  # not a BatchNorm's
                  {"layer1.0.bn1.num_batches_tracked": np.zeros(4, np.float32)},  # not one number
                  {"layer1.0.bn1.num_batches_tracked_old": np.array(0)}):
        key = next(iter(extra))
        with pytest.raises(ValueError, match=re.escape(f"source tensor {key} ")):
            load_state_dict(_fixture_model("resnet18_basic"), {**state, **extra})


def test_the_safetensors_suffix_in_any_case(tmp_path):
    path = tmp_path / "R18.SAFETENSORS"
    shutil.copy(os.path.join(FIXTURES, "resnet18_basic.safetensors"), path)
    tensors = read_checkpoint(path)
    reference = read_checkpoint(os.path.join(FIXTURES, "resnet18_basic.safetensors"))
    assert list(tensors) == list(reference)
    model = _fixture_model("resnet18_basic", weights=str(path))
    assert _max_relative_error(model, "resnet18_basic") <= 1e-5


def test_features_only_weights_need_include_top_false(monkeypatch):
    _no_network(monkeypatch)
    with pytest.raises(ValueError, match="features only.*include_top=False"):
        zoo.build("vgg16", weights="IMAGENET1K_FEATURES")  # refused before fetching or building
    with pytest.raises(ValueError, match="features only"):
        zoo.weights.load(_fixture_model("vgg11_bn"), "torchvision:IMAGENET1K_FEATURES", card=zoo.get_card("vgg16"))
    with pytest.raises(zoo.weights.WeightsDownloadError):  # the features alone are what they are for
        zoo.build("vgg16", weights="IMAGENET1K_FEATURES", include_top=False)
    # a classifier whose values are missing (NaN) is refused whatever its name
    state = read_checkpoint(os.path.join(FIXTURES, "vgg11_bn.pth"))
    state["classifier.0.weight"] = np.full_like(state["classifier.0.weight"], np.nan)
    with pytest.raises(ValueError, match="head_fc1: classifier.0 holds NaN"):
        load_state_dict(_fixture_model("vgg11_bn"), state)


def test_a_file_is_hashed_once_per_version(tmp_path):
    """A build with table weights checks the fetched file, then stamps its conversion: one hash, not two; a
    rewritten file (same size, modification time set back) is hashed again."""
    from zoo.weights import hub

    path = tmp_path / "w.pth"
    path.write_bytes(b"a" * 1000)
    first = hub.sha256_file(path)
    misses = hub._sha256.cache_info().misses
    assert hub.sha256_file(path) == first and hub._sha256.cache_info().misses == misses
    stat = os.stat(path)
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hub.sha256_file(path) == hashlib.sha256(b"b" * 1000).hexdigest() != first


def test_timm_vgg_classifier_convolution_is_noted_away_from_its_window(tmp_path):
    """Issue 28 (item 3): timm's VGG applies fc1 as a 7x7 convolution over the feature map and averages, the zoo
    pools to 7x7 first: exact at 224 px (the fixture's size), different elsewhere, and that was never said."""
    path = tmp_path / "timm_vgg11.safetensors"
    shutil.copy(os.path.join(FIXTURES, "timm_vgg11.safetensors"), path)
    at_224 = load_state_dict(_fixture_model("timm_vgg11"), path)
    assert at_224.windows == {"pre_logits.fc1": (7, 7)} and at_224.notes == []
    assert _max_relative_error(_fixture_model("timm_vgg11", weights=str(path)), "timm_vgg11") <= 1e-5
    os.remove(f"{path}.zoo.weights.h5")
    for _ in range(2):  # converted, then read from the kept conversion: the same note both times
        with pytest.warns(UserWarning, match=r"pre_logits.fc1 is a 7x7 convolution .* at input 160x160"):
            model = _fixture_model("timm_vgg11", input_shape=(160, 160, 3), weights=str(path))
    assert "note: pre_logits.fc1" in str(load_state_dict(model, path))
    torchvision = load_state_dict(_fixture_model("vgg11_bn", input_shape=(96, 96, 3)),
                                  os.path.join(FIXTURES, "vgg11_bn.safetensors"))
    assert torchvision.windows == {} and torchvision.notes == []  # torchvision's classifier is a Linear
