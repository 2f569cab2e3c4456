"""The tutorial examples run end to end in fast mode, in fresh processes, and save their plots."""

import json
import os
import re
import subprocess
import sys

import pytest

import zoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EXAMPLES = {
    "t1_sinusoid.py": (["t1_fit.png", "t1_loss.png"], "test MSE"),
    "t2_binary.py": (["t2_decision_boundary.png", "t2_curves.png"], "MLP (32, 32) relu: test accuracy"),
    "t3_multiclass.py": (["t3_decision_regions.png", "t3_confusion_matrix.png", "t3_curves.png"], "test accuracy"),
    # names the data it used: prepared CIFAR-10, or the embedded stand-in
    "t4_cifar10_cnn.py": (["t4_curves.png", "t4_confusion_matrix.png", "t4_predictions.png", "t4_gradcam.png",
                           "t4_feature_maps.png", "t4_filters.png"], "Data: CIFAR-10 "),
    "deploy.py": (["deploy_confusion_matrix.png", "best.onnx", "best_int8.tflite"],
                  "int8 LiteRT test accuracy"),
    "compare_report.py": (["report.html", "report.md", "results.csv", "plots/curves.png"], "Regenerated from"),
    # names the recipe it ran: ImageNet ResNet-18 on cats vs dogs, or the embedded stand-in
    "t5_transfer.py": (["t5_phases.png"], "recipe: "),
    "tuning_search.py": (["report/report.html"], "Pareto front"),
    "multiobjective_search.py": (["report/report.html", "report/plots/search_hypervolume.png"], "hypervolume "),
    "vanishing_gradients.py": (["vanishing_gradients.png"], "times larger with relu + He"),
}
NO_DIAGNOSIS = {"compare_report.py", "deploy.py", "multiobjective_search.py", "tuning_search.py", "vanishing_gradients.py"}


# two fresh processes, each running half the examples one after another (tests/examples_runner.py): one
# TensorFlow start-up per process instead of one per example; about the same time each
BATCHES = (("t5_transfer.py", "t1_sinusoid.py", "compare_report.py", "vanishing_gradients.py", "t4_cifar10_cnn.py"),
           ("tuning_search.py", "t2_binary.py", "t3_multiclass.py", "deploy.py", "multiobjective_search.py"))


def test_the_batches_hold_every_example_once():
    assert sorted(s for batch in BATCHES for s in batch) == sorted(EXAMPLES)
    assert sorted(EXAMPLES) == sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".py"))


@pytest.mark.heavy
@pytest.mark.parametrize("batch", BATCHES, ids=("batch1", "batch2"))
def test_examples_run_fast_and_save_their_plots(batch, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "examples_runner.py"), str(tmp_path), *batch],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=480)
    results = {r["script"]: r for r in (json.loads(line[8:]) for line in done.stdout.splitlines()
                                         if line.startswith("EXAMPLE "))}
    assert done.returncode == 0 and list(results) == list(batch), done.stderr[-3000:]
    for script in batch:
        outputs, expected = EXAMPLES[script]
        result, out = results[script], tmp_path / script[:-3]
        assert result["error"] is None and result["code"] in (0, None), f"{script}: {result['error']}"
        assert expected in result["stdout"], f"{script}: {result['stdout'][-2000:]}"
        assert "loss curves: " in result["stdout"] or script in NO_DIAGNOSIS, script
        for name in outputs:
            assert (out / name).stat().st_size > 1000, f"{script}: {name}"
        if script == "vanishing_gradients.py":  # the lesson: orders of magnitude, not a few percent
            ratio = float(re.search(r"gradient is ([0-9.e+-]+) times larger", result["stdout"]).group(1))
            assert ratio > 100, result["stdout"]


def test_the_transfer_example_takes_any_torchvision_backbone_and_names_a_model_without_weights(monkeypatch, tmp_path):
    """`t5_transfer.py --backbone NAME`: offline, a torchvision architecture's entry is resolved and its download
    refused within a second (so the stand-in runs, saying why); a model without torchvision weights is named."""
    import importlib.util

    from test_weights import _no_network

    spec = importlib.util.spec_from_file_location("t5", os.path.join(ROOT, "examples", "t5_transfer.py"))
    t5 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t5)
    monkeypatch.setattr(zoo.weights.hub, "cache_dir", lambda: str(tmp_path))
    _no_network(monkeypatch)
    for name in ("convnext_tiny", "efficientnet_b0", "regnet_y_400mf"):
        why = t5.pretrained_recipe(True, str(tmp_path), name, layer_decay=0.75)
        assert why.startswith("Cannot download") and name in why
    with pytest.raises(ValueError, match="No pretrained weights 'torchvision' for 'resnet20'"):
        t5.pretrained_recipe(True, str(tmp_path), "resnet20")
