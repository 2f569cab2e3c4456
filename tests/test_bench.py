"""zoo bench: measurements, peers, out-of-memory retries, argument checks and output files (CPU)."""

import csv
import json
import math

import keras
import pytest

import zoo
from zoo import bench
from zoo.cli import main


def _no_peak(*args, **kwargs):
    raise AssertionError("expensive work started before the arguments were checked")


@pytest.mark.heavy
def test_cli_bench_writes_json_and_csv_with_peers_skipped(tmp_path, capsys):
    out = tmp_path / "results" / "bench.json"
    code = main(["bench", "resnet20", "--image-size", "16", "--batch-size", "4", "--steps", "2", "--epochs", "2",
                 "--input", "both", "--peers", "keras,torch", "--zoo-kwargs", '{"width": 0.25}',
                 "--num-classes", "5", "--out", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["environment"]["backend"] == keras.backend.backend()
    assert payload["environment"]["versions"]["keras"] == keras.__version__
    assert payload["compute_dtype"] == "float32" and payload["matmul_peak_flops"] > 0
    results = payload["results"]
    assert [r["input"] for r in results] == ["numpy", "device"]
    macs = zoo.profile(zoo.build("resnet20", input_shape=(16, 16, 3), num_classes=5, width=0.25)).macs
    for r in results:
        assert r["label"] == "zoo resnet20" and r["model"] == "resnet20" and r["batch_size"] == 4 and r["image_size"] == 16
        assert r["macs"] == macs and r["params"] > 0
        assert r["train_samples_per_second"] > 0 and r["inference_samples_per_second"] > 0
        assert math.isclose(r["step_ms"], 4 / r["train_samples_per_second"] * 1e3, rel_tol=1e-9)
        assert math.isclose(r["mfu"], 6 * macs * r["train_samples_per_second"] / payload["matmul_peak_flops"])
        assert r["compile_seconds"] >= 0
    # resnet20 has no keras.applications twin, and this machine has no PyTorch GPU: both said, not hidden
    skipped = {s["peer"]: s["reason"] for s in payload["skipped"]}
    assert "keras.applications has no 'resnet20'" in skipped["keras"]
    assert skipped["torch"]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the bar chart
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert [row["input"] for row in rows] == ["numpy", "device"]
    assert rows[0]["backend"] == keras.backend.backend() and json.loads(rows[0]["versions"])["keras"]
    assert float(rows[1]["train_samples_per_second"]) == pytest.approx(results[1]["train_samples_per_second"])
    printed = capsys.readouterr().out
    assert "matmul peak" in printed and "zoo resnet20" in printed and "skipped" in printed


def test_keras_peer_is_measured_the_same_way(monkeypatch, tmp_path):
    built = []

    def tiny_application(weights=None, input_shape=None, classes=1000):
        assert weights is None  # no download: random initial weights, like the zoo model
        built.append(input_shape)
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(4, 3, strides=2)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(classes)(x))

    monkeypatch.setattr(keras.applications, "TinyApp", tiny_application, raising=False)
    monkeypatch.setitem(bench.KERAS_PEERS, "lenet5_modern", "TinyApp")
    payload = bench.run(["lenet5_modern"], image_size=28, batch_size=4, steps=2, epochs=2, peers=("keras",),
                        num_classes=3, out=str(tmp_path / "b.json"))
    labels = [r["label"] for r in payload["results"]]
    assert labels == ["zoo lenet5_modern", "keras.applications TinyApp"]
    assert built == [(28, 28, 3)]
    peer = payload["results"][1]
    assert peer["input"] == "device" and peer["train_samples_per_second"] > 0 and peer["macs"] > 0


def test_mixed_precision_is_applied_and_the_policy_restored(tmp_path):
    payload = bench.run(["mlp"], image_size=8, batch_size=4, steps=2, epochs=2, peers=(), precision="mixed_bfloat16",
                        inputs=("numpy",), num_classes=3, zoo_kwargs={"hidden_units": (8,)})
    assert payload["compute_dtype"] == "bfloat16"
    assert payload["results"][0]["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    payload = bench.run(["mlp"], image_size=8, batch_size=4, steps=2, epochs=2, peers=(), precision="auto",
                        inputs=("numpy",), num_classes=3, zoo_kwargs={"hidden_units": (8,)})
    assert payload["results"][0]["precision"] == "float32"  # auto on a CPU


def test_out_of_memory_halves_the_batch_until_it_fits(capsys):
    class ResourceExhaustedError(Exception):
        pass

    tried = []

    def fake(batch_size, **kwargs):
        tried.append(batch_size)
        if batch_size > 8:
            raise ResourceExhaustedError(f"OOM when allocating tensor with shape [{batch_size},64,56,56]")
        return {"batch_size": batch_size, **kwargs}

    assert bench._with_oom_retry(fake, 64, image_size=3) == {"batch_size": 8, "image_size": 3}
    assert tried == [64, 32, 16, 8]
    assert "retrying with 32" in capsys.readouterr().out

    def broken(batch_size):
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError, match="not a memory problem"):
        bench._with_oom_retry(broken, 64)

    def never_fits(batch_size):
        raise MemoryError("out of memory")

    with pytest.raises(MemoryError):
        bench._with_oom_retry(never_fits, 4)


@pytest.mark.parametrize("kwargs, match", [
    ({"models": ["resnet5O"]}, "resnet50"),
    ({"models": []}, "models"),
    ({"precision": "fp8"}, "precision.*'fp8'"),
    ({"inputs": ("disk",)}, "input.*'disk'"),
    ({"peers": ("jax",)}, "peers.*'jax'"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"steps_per_execution": 0}, "steps_per_execution=0"),
    ({"num_classes": 1}, "num_classes=1"),
    ({"jit_compile": "yes"}, "jit_compile='yes'"),
    ({"zoo_kwargs": [1]}, "zoo_kwargs"),
    ({"zoo_kwargs": {"width": -1}}, "width=-1"),  # the builder's own check, before any timing
    ({"models": ["lenet5"], "image_size": 16}, "minimum input size"),
    ({"inputs": ()}, "inputs"),
])
def test_bad_arguments_raise_before_any_measurement(monkeypatch, kwargs, match):
    monkeypatch.setattr(bench, "matmul_peak_flops", _no_peak)
    monkeypatch.setattr(bench, "bench_keras", _no_peak)
    args = {"models": ["resnet20"], **kwargs}
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        bench.run(args.pop("models"), **args)


def test_speed_ratios_are_against_the_torch_peer_of_the_same_model():
    results = [{"model": "resnet50", "framework": "keras-jax", "train_samples_per_second": 5300.0},
               {"model": "resnet50", "framework": "keras-jax", "train_samples_per_second": 5400.0},
               {"model": "resnet50", "framework": "torch-2.11", "train_samples_per_second": 5000.0},
               {"model": "resnet18", "framework": "keras-jax", "train_samples_per_second": 100.0},
               {"model": "resnet18", "framework": "keras-jax", "train_samples_per_second": 50.0}]
    assert bench.speed_ratios(results) == pytest.approx([1.06, 1.08, 1.0, 1.0, 0.5])


def test_matmul_peak_is_a_plausible_rate():
    flops = bench.matmul_peak_flops("float32", n=128, repeats=3)
    assert 1e6 < flops < 1e15


def test_torch_peer_says_why_it_cannot_run():
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present: the peer would run")
    except ImportError:
        pass
    with pytest.raises(bench.PeerUnavailable):
        bench.bench_torch("resnet18", image_size=32, batch_size=2, steps=1, epochs=1)


def test_a_failed_measurement_is_recorded_and_the_others_kept(monkeypatch, tmp_path, capsys):
    real = bench.bench_keras

    def flaky(model_fn, *, input_path, **kwargs):
        if input_path == "numpy":
            raise RuntimeError("XLA compilation failed\nlong details")
        return real(model_fn, input_path=input_path, **kwargs)

    monkeypatch.setattr(bench, "bench_keras", flaky)
    out = tmp_path / "b.json"
    code = main(["bench", "mlp", "--image-size", "8", "--batch-size", "4", "--steps", "2", "--epochs", "2", "--input", "both",
                 "--peers", "none", "--num-classes", "3", "--zoo-kwargs", '{"hidden_units": [8]}',
                 "--out", str(out)])
    assert code == 1  # something failed: the exit status says so
    payload = json.loads(out.read_text())
    assert payload["failed"] == [{"label": "zoo mlp", "error": "RuntimeError: XLA compilation failed"}]
    assert [r["input"] for r in payload["results"]] == ["device"]  # the other measurement is kept
    assert "zoo mlp failed: RuntimeError" in capsys.readouterr().out
