"""Write zoo/weights/table.json, the pretrained-weights table, from torchvision's Weights enums and timm's configs.

Run in the side venv of tools/make_weight_fixtures.py (torch, torchvision, timm), with
timm's published ImageNet results (results/results-imagenet.csv in timm's repository):

    /tmp/side/bin/python tools/make_weights_table.py results-imagenet.csv zoo/weights/table.json
"""

import csv
import json
import math
import re
import sys

import timm
import torchvision
from torchvision.models import get_model_weights

from torchvision_archs import ARCHS

TIMM_TAGS = {"resnet18": ("tv_in1k", "a1_in1k"), "resnet34": ("tv_in1k", "a1_in1k"),
             "resnet50": ("tv_in1k", "tv2_in1k", "a1_in1k"), "resnet101": ("tv_in1k", "tv2_in1k", "a1_in1k"),
             "resnet152": ("tv_in1k", "tv2_in1k", "a1_in1k"),
             **{f"densenet{d}": ("tv_in1k",) for d in (121, 169, 201)},
             **{f"vgg{d}{bn}": ("tv_in1k",) for d in (11, 13, 16, 19) for bn in ("", "_bn")}}



def _published(value):
    """A published accuracy, or None where there is none (strict JSON has no NaN)."""
    return None if value is None or math.isnan(value) else float(value)

AUXILIARY = ("googlenet", "inception_v3")  # torchvision's architectures with auxiliary classifiers


def _eval_params(arch, published):
    """torchvision's trainable parameters without the auxiliary classifiers (aux_logits=False, as at evaluation and
    as the zoo builds them) where its published ``num_params`` counts them (inception_v3's AuxLogits), else None."""
    if arch not in AUXILIARY:
        return None
    model = getattr(torchvision.models, arch)(weights=None, aux_logits=False, init_weights=False)
    count = sum(p.numel() for p in model.parameters())
    return None if count == published else count


def main(results_csv, out):
    with open(results_csv) as f:
        results = {(r["model"], int(r["img_size"])): r for r in csv.DictReader(f)}
    rows = []
    for arch in ARCHS:
        enum = get_model_weights(arch)
        for w in enum:
            t = w.transforms()
            file_name = w.url.rsplit("/", 1)[-1]
            rows.append({
                "model": arch, "source": "torchvision", "tag": w.name, "default": w == enum.DEFAULT,
                "url": w.url, "file_name": file_name,
                "sha256_prefix": re.search(r"-([a-f0-9]+)\.", file_name).group(1), "sha256": None,
                "license": "BSD-3-Clause (torchvision); trained on ImageNet-1k, whose terms of access apply",
                # torchvision writes NaN for weights without an ImageNet classifier (vgg16 FEATURES): null here
                "top1": _published(w.meta["_metrics"]["ImageNet-1K"]["acc@1"]),
                "top5": _published(w.meta["_metrics"]["ImageNet-1K"]["acc@5"]),
                "num_params": w.meta["num_params"], 
                **({"num_params_eval": n} if (n := _eval_params(arch, w.meta["num_params"])) else {}),
                "file_size_mb": w.meta["_file_size"], "gflops": w.meta["_ops"],
                "preprocessing": {"resize": t.resize_size[0], "crop": t.crop_size[0],
                                  "interpolation": t.interpolation.value, "mean": list(t.mean), "std": list(t.std)},
                "categories": "imagenet1k", "recipe": w.meta["recipe"],
            })
    for arch, tags in TIMM_TAGS.items():
        for i, tag in enumerate(tags):
            cfg = timm.models.get_pretrained_cfg(f"{arch}.{tag}").to_dict()
            crop = 224  # timm's results at 224 px, the zoo's default input
            r = results[(f"{arch}.{tag}", crop)]
            rows.append({
                "model": arch, "source": "timm", "tag": tag, "default": i == 0,
                "url": f"https://huggingface.co/{cfg['hf_hub_id']}/resolve/main/model.safetensors",
                "file_name": f"{arch}.{tag}.safetensors", "sha256_prefix": None, "sha256": None,
                "license": cfg["license"], "top1": float(r["top1"]), "top5": float(r["top5"]),
                "num_params": None, "file_size_mb": None, "gflops": None,
                "preprocessing": {"resize": int(crop / float(r["crop_pct"])), "crop": crop,
                                  "interpolation": r["interpolation"], "mean": list(cfg["mean"]),
                                  "std": list(cfg["std"])},
                "categories": "imagenet1k", "recipe": cfg.get("origin_url"),
            })
    with open(out, "w") as f:
        json.dump({"made_with": {"torchvision": torchvision.__version__, "timm": timm.__version__},
                   "weights": rows}, f, indent=1)
    print(f"{len(rows)} entries -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
