"""Make the committed fixtures of tests/test_weights.py (run with PyTorch, never in CI).

Tiny networks with torchvision's (and timm's) exact module structure and key names,
random weights and batch-norm statistics, saved with ``torch.save`` (zip and legacy
formats) and as safetensors, with their logits on fixed inputs. How it was run here
(a side venv of about 8 GB, outside the project; ``pip`` took about 80 s):

    python3 -m venv /tmp/side
    /tmp/side/bin/pip install torch==2.14.1 torchvision==0.29.1 safetensors timm
    /tmp/side/bin/python tools/make_weight_fixtures.py tests/fixtures/weights

With names after the folder (fixture names of FIXTURES, or torchvision architectures of
FULL_SIZE), only those are made again and index.json / full_size_keys.json keep their other
entries: ``... tests/fixtures/weights convnext_tiny convnext_small``.
"""

from functools import partial
import json
import math
import os
import sys

import numpy as np
import safetensors.torch
import timm
import torch
import torchvision
from torch import nn
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.efficientnet import EfficientNet, FusedMBConvConfig, MBConvConfig, _efficientnet_conf
from torchvision.models.regnet import BlockParams, RegNet
from torchvision.models.resnet import BasicBlock, Bottleneck

from torchvision_archs import ARCHS
from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2


class TinyResNet(torchvision.models.ResNet):
    """torchvision's ResNet (its _make_layer and forward) with `width` stem channels."""

    def __init__(self, block, layers, width, num_classes, groups=1, width_per_group=64):
        nn.Module.__init__(self)
        self._norm_layer, self.inplanes, self.dilation = nn.BatchNorm2d, width, 1
        self.groups, self.base_width = groups, width_per_group
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)


class TinyGoogLeNet(torchvision.models.GoogLeNet):
    """torchvision's GoogLeNet (module names, ceil-mode pools, forward, transform_input) with every width scaled as
    the zoo's ``width`` does (rounded), without the auxiliary heads (their 2048x1024 Linear alone is 8 MB)."""

    def __init__(self, width, num_classes, transform_input):
        nn.Module.__init__(self)
        from torchvision.models.googlenet import BasicConv2d, Inception
        c = lambda n: max(1, int(round(n * width)))  # noqa: E731
        self.aux_logits, self.transform_input, self.aux1, self.aux2 = False, transform_input, None, None
        self.conv1 = BasicConv2d(3, c(64), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(c(64), c(64), kernel_size=1)
        self.conv3 = BasicConv2d(c(64), c(192), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        specs = {"3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
                 "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
                 "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
                 "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128)}
        channels = c(192)
        for name, spec in specs.items():
            out = [c(n) for n in spec]
            setattr(self, f"inception{name}", Inception(channels, *out))
            channels = out[0] + out[2] + out[4] + out[5]
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(channels, num_classes)


def tiny_inception_v3(divisor=16):
    """torchvision's Inception3 (module names, branch order, count_include_pad pools, transform_input) with every
    convolution's channels divided by ``divisor`` (all of Inception v3's are multiples of 16, so the concatenations
    stay consistent: the zoo's ``width=1/16``), without the auxiliary classifier."""
    from torchvision.models.inception import BasicConv2d
    model = torchvision.models.Inception3(num_classes=10, aux_logits=False, transform_input=True, init_weights=False)
    for module in list(model.modules()):
        if isinstance(module, BasicConv2d):
            conv = module.conv
            inputs = conv.in_channels if conv.in_channels == 3 else conv.in_channels // divisor  # RGB stays
            module.conv = nn.Conv2d(inputs, conv.out_channels // divisor, conv.kernel_size,
                                    stride=conv.stride, padding=conv.padding, bias=False)
            module.bn = nn.BatchNorm2d(conv.out_channels // divisor, eps=0.001)
    model.fc = nn.Linear(2048 // divisor, 10)
    return model


class TinyVGG(torchvision.models.VGG):
    """torchvision's VGG (make_layers, forward) with scaled widths."""

    def __init__(self, cfg, batch_norm, hidden, num_classes):
        nn.Module.__init__(self)
        self.features = torchvision.models.vgg.make_layers(cfg, batch_norm=batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        last = [v for v in cfg if v != "M"][-1]
        self.classifier = nn.Sequential(
            nn.Linear(last * 49, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(), nn.Linear(hidden, num_classes))


class TinyAlexNet(torchvision.models.AlexNet):
    """torchvision's AlexNet (forward, module indices) with scaled widths."""

    def __init__(self, c, hidden, num_classes):
        nn.Module.__init__(self)
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, stride=4, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(c[4] * 36, hidden), nn.ReLU(True),
            nn.Dropout(), nn.Linear(hidden, hidden), nn.ReLU(True), nn.Linear(hidden, num_classes))


def tiny_regnet(depths, widths, group_widths, stem_width, se_widths, num_classes):
    """torchvision's RegNet Y from its BlockParams, with the zoo's squeeze-excitation widths at a narrow width
    (never fewer units than torchvision's full-size model has; ``se_widths``, one per block)."""
    model = RegNet(BlockParams(depths, widths, group_widths, [1.0] * len(depths), [2] * len(depths), se_ratio=0.25),
                   num_classes=num_classes, stem_width=stem_width)
    blocks = [m for m in model.modules() if isinstance(m, torchvision.models.regnet.ResBottleneckBlock)]
    for block, squeeze in zip(blocks, se_widths, strict=True):
        block.f.se = torchvision.ops.SqueezeExcitation(block.f.se.fc1.in_channels, squeeze)
    return model


class TinySqueezeNet(torchvision.models.SqueezeNet):
    """torchvision's SqueezeNet (module indices, ceil-mode pools, forward) with every width scaled as the zoo's
    ``width`` does (rounded, at least 1); random conv biases (torchvision's are zero) and a head bias raised by 0.5,
    so that the head's ReLU keeps most classes alive."""

    def __init__(self, version, width, num_classes):
        nn.Module.__init__(self)
        from torchvision.models.squeezenet import Fire
        c = lambda n: max(1, int(round(n * width)))  # noqa: E731
        stem, kernel, stages = {"1_0": (96, 7, [[(16, 64, 64), (16, 64, 64), (32, 128, 128)],
                                                [(32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256)],
                                                [(64, 256, 256)]]),
                                "1_1": (64, 3, [[(16, 64, 64), (16, 64, 64)], [(32, 128, 128), (32, 128, 128)],
                                                [(48, 192, 192), (48, 192, 192), (64, 256, 256),
                                                 (64, 256, 256)]])}[version]
        channels = c(stem)
        modules = [nn.Conv2d(3, channels, kernel_size=kernel, stride=2), nn.ReLU(inplace=True)]
        for fires in stages:
            modules.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            for s, e1, e3 in fires:
                modules.append(Fire(channels, c(s), c(e1), c(e3)))
                channels = c(e1) + c(e3)
        self.num_classes = num_classes
        self.features = nn.Sequential(*modules)
        self.classifier = nn.Sequential(nn.Dropout(p=0.5), nn.Conv2d(channels, num_classes, kernel_size=1),
                                        nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)))
        g = torch.Generator().manual_seed(3)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=g)
        self.classifier[1].bias.data += 0.5


def tiny_shufflenet(channels, width, num_classes):
    """torchvision's ShuffleNetV2 (stages_repeats 4, 8, 4) with a variant's ``stages_out_channels`` scaled as the
    zoo's ``width`` does: the stem and conv5 rounded, each stage's halves rounded (an even count); a random fc bias."""
    c = lambda n: max(1, int(round(n * width)))  # noqa: E731
    out = [c(channels[0])] + [2 * c(n // 2) for n in channels[1:4]] + [c(channels[4])]
    model = torchvision.models.ShuffleNetV2([4, 8, 4], out, num_classes=num_classes)
    model.fc.bias.data = 0.5 * torch.randn(num_classes, generator=torch.Generator().manual_seed(3))
    return model


def randomise_batch_norm(model):
    """Random BatchNorm statistics and affine weights; LayerNorm weights and ConvNeXt's layer scale too (their
    initial ones and 1e-6 would hide a wrong conversion)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=g)
            m.bias.data = 0.2 * torch.randn(n, generator=g)
            m.running_mean.data = 0.2 * torch.randn(n, generator=g)
            m.running_var.data = 0.5 + torch.rand(n, generator=g)
            m.num_batches_tracked.fill_(7)
        elif isinstance(m, nn.LayerNorm):
            m.weight.data = 0.5 + torch.rand(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
        if isinstance(getattr(m, "layer_scale", None), nn.Parameter):
            m.layer_scale.data = 0.5 + torch.rand(m.layer_scale.shape, generator=g)
    return model.eval()


def tiny_swin(v2=False):
    """torchvision's Swin-T layout (depths 2, 2, 6, 2; heads 3, 6, 12, 24) at the zoo's width 1/16 (2 channels a
    head) with 4x4 windows; random biases, relative position tables and logit scales (their zero or constant
    initial values would hide a wrong conversion). At 72 px the maps are 18, 9, 5 and 3 wide: padded to whole
    windows and shifted in stages 1 to 3, odd sizes merged, no shift in stage 4."""
    extra = dict(block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2) if v2 else {}
    model = SwinTransformer([4, 4], 6, [2, 2, 6, 2], [3, 6, 12, 24], [4, 4], num_classes=10, **extra)
    g = torch.Generator().manual_seed(3)
    for name, p in model.named_parameters():
        if name.endswith(("bias", "relative_position_bias_table", "logit_scale")):
            p.data = (math.log(10) if name.endswith("logit_scale") else 0) + 0.5 * torch.randn(p.shape, generator=g)
    return model

def tiny_vit():
    """torchvision's ViT-B/16 layout (12 heads, patch 16) at the zoo's width 1/16 (4 channels a head, MLP 192)
    and depth 2; a random class token, head and biases (their zero initial values would hide a wrong
    conversion). At 32 px the grid is 2x2."""
    model = torchvision.models.VisionTransformer(32, 16, 2, 12, 48, 192, num_classes=10)
    g = torch.Generator().manual_seed(3)
    for name, p in model.named_parameters():
        if name.endswith("bias") or name in ("class_token", "heads.head.weight"):
            p.data = 0.5 * torch.randn(p.shape, generator=g)
    return model


def tiny_maxvit():
    """torchvision's MaxViT-T layout (layers 2, 2, 5, 2) at the zoo's width 1/16 (stem and blocks 4, 4, 8, 16, 32
    channels, 2 a head) with 2x2 partitions at 64 px (maps 16, 8, 4, 2); random biases and relative position
    tables (their zero or small initial values would hide a wrong conversion)."""
    model = torchvision.models.MaxVit(input_size=(64, 64), stem_channels=4, partition_size=2,
                                      block_channels=[4, 8, 16, 32], block_layers=[2, 2, 5, 2], head_dim=2,
                                      stochastic_depth_prob=0.0, num_classes=10)
    g = torch.Generator().manual_seed(3)
    for name, p in model.named_parameters():
        if name.endswith(("bias", "relative_position_bias_table")) or name.startswith("classifier"):
            p.data = 0.5 * torch.randn(p.shape, generator=g)
    return model


# (timm's ResNet and DenseNet keys are torchvision's: full_size_keys.json shows it; timm's ResNet
# also fixes its plain stem at 64 channels, so no tiny timm ResNet matches a zoo width.)
# name -> (zoo model and its builder arguments, key style, torch module, input size)
VGG_A = [2, "M", 4, "M", 8, 8, "M", 16, 16, "M", 16, 16, "M"]  # cfg "A" at width 1/32
# ResNeXt's fixture is 6 MB a file (32 groups cannot be narrower): saved once; the readers are tested on the rest.
SAFETENSORS_ONLY = ("resnext50_32x4d",)
FIXTURES = {
    "resnet18_basic": ("resnet18", {"width": 0.125}, "torchvision",
                       lambda: TinyResNet(BasicBlock, [2, 2, 2, 2], 8, 10), 64),
    "resnet50_bottleneck": ("resnet50", {"width": 0.0625}, "torchvision",
                            lambda: TinyResNet(Bottleneck, [3, 4, 6, 3], 4, 10), 64),
    "vgg11_bn": ("vgg11_bn", {"width": 0.03125}, "torchvision", lambda: TinyVGG(VGG_A, True, 128, 10), 64),
    "densenet121": ("densenet121", {"width": 0.125}, "torchvision",
                    lambda: torchvision.models.DenseNet(4, (6, 12, 24, 16), 8, num_classes=10), 64),
    "alexnet": ("alexnet", {"width": 0.03125}, "torchvision", lambda: TinyAlexNet([2, 6, 12, 8, 8], 128, 10), 127),
    # ResNeXt's grouped bottleneck: planes 16 at stage 1, int(16 * 4 / 64) * 32 = 32 channels inside
    "resnext50_32x4d": ("resnext50_32x4d", {"width": 0.25}, "torchvision",
                        lambda: TinyResNet(Bottleneck, [3, 4, 6, 3], 16, 10, groups=32, width_per_group=4), 64),
    # torchvision's width_mult is the zoo's width
    "mobilenet_v2": ("mobilenet_v2", {"width": 0.25}, "torchvision",
                     lambda: torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10), 64),
    "mobilenet_v3_large": ("mobilenet_v3_large", {"width": 0.25}, "torchvision",
                           lambda: torchvision.models.mobilenet_v3_large(width_mult=0.25, num_classes=10), 64),
    "mobilenet_v3_small": ("mobilenet_v3_small", {"width": 0.25}, "torchvision",
                           lambda: torchvision.models.mobilenet_v3_small(width_mult=0.25, num_classes=10), 64),
    # the zoo's width scales the stem, stage and group widths (torchvision's figures at width 1): at 1/8,
    # (depth, width, group width) (1, 8, 2), (3, 18, 2), (8, 40, 2), (2, 98, 2), a stem of 4; the SE keeps the
    # full-size model's widths, a quarter of each block's input there (stem 32, stages 64, 144, 320, 784)
    "regnet_y_800mf": ("regnet_y_800mf", {"width": 0.125}, "torchvision",
                       lambda: tiny_regnet([1, 3, 8, 2], [8, 18, 40, 98], [2] * 4, 4,
                                           [8, 16, 36, 36, 36] + [80] * 7 + [80, 196], 10), 64),
    "convnext_tiny": ("convnext_tiny", {"width": 0.0625}, "torchvision",
                      lambda: ConvNeXt([CNBlockConfig(6, 12, 3), CNBlockConfig(12, 24, 3), CNBlockConfig(24, 48, 9),
                                        CNBlockConfig(48, None, 3)], num_classes=10), 64),
    # the zoo's width and depth multiply torchvision's width_mult and depth_mult (V2's figures at 1, scaled here)
    "efficientnet_b0": ("efficientnet_b0", {"width": 0.125, "depth": 0.5}, "torchvision",
                        lambda: EfficientNet(_efficientnet_conf("efficientnet_b0", width_mult=0.125, depth_mult=0.5)[0],
                                             0.2, num_classes=10), 64),
    "efficientnet_v2_s": ("efficientnet_v2_s", {"width": 0.125, "depth": 0.25}, "torchvision",
                          lambda: EfficientNet(
                              [FusedMBConvConfig(1, 3, 1, 8, 8, 1), FusedMBConvConfig(4, 3, 2, 8, 8, 1),
                               FusedMBConvConfig(4, 3, 2, 8, 8, 1), MBConvConfig(4, 3, 2, 8, 16, 2),
                               MBConvConfig(6, 3, 1, 16, 24, 3), MBConvConfig(6, 3, 2, 24, 32, 4)],
                              0.2, num_classes=10, norm_layer=partial(nn.BatchNorm2d, eps=1e-3), last_channel=1280), 64),
    # transform_input as torchvision turns it on for its IMAGENET1K_V1 weights; 64 px keeps every ceil-mode pool's
    # last window partial somewhere
    "googlenet": ("googlenet", {"width": 0.125, "transform_input": True}, "torchvision",
                  lambda: TinyGoogLeNet(0.125, 10, True), 64),
    # 66 px: the maps are 32, 16, 8, 4: every ceil-mode pool's last window is partial
    "squeezenet1_1": ("squeezenet1_1", {"width": 0.125}, "torchvision", lambda: TinySqueezeNet("1_1", 0.125, 10), 66),
    # x1_0's stages_out_channels at width 1/8: 3, 14, 28, 58, 128; 70 px: maps 35, 18, 9, 5, 3
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", {"width": 0.125}, "torchvision",
                           lambda: tiny_shufflenet((24, 116, 232, 464, 1024), 0.125, 10), 70),
    # the zoo's width multiplies torchvision's alpha (0.5 * 0.125 = 0.0625: depths 8, 8, 8, 8, 8, 8, 16, 24); the
    # final 1x1 conv keeps its 1280 channels whatever alpha
    "mnasnet": ("mnasnet0_5", {"width": 0.125}, "torchvision",
                lambda: torchvision.models.MNASNet(0.0625, num_classes=10), 64),
    # 83 px: every valid convolution and pool sees an odd map somewhere
    "inception_v3": ("inception_v3", {"width": 0.0625, "transform_input": True}, "torchvision",
                     tiny_inception_v3, 83),
    "swin_tiny": ("swin_t", {"width": 0.0625, "window_size": 4}, "torchvision", tiny_swin, 72),
    "swin_v2_tiny": ("swin_v2_t", {"width": 0.0625, "window_size": 4}, "torchvision", lambda: tiny_swin(v2=True), 72),
    "maxvit_tiny": ("maxvit_t", {"width": 0.0625, "partition_size": 2}, "torchvision", tiny_maxvit, 64),
    "vit_tiny": ("vit_b_16", {"width": 0.0625, "depth": 2}, "torchvision", tiny_vit, 32),
}


# Full-size key names and shapes (no weights) of every torchvision architecture the zoo has, and timm's.
FULL_SIZE = ARCHS


def _full_size_keys(out, archs, timm_archs=()):
    """Update full_size_keys.json with these architectures' key names and shapes (built without weights)."""
    path = os.path.join(out, "full_size_keys.json")
    shapes = _read_json(path, {})
    for arch in archs:
        sd = getattr(torchvision.models, arch)(weights=None).state_dict()
        shapes[f"torchvision:{arch}"] = [[k, list(v.shape)] for k, v in sd.items()]
    for arch in timm_archs:
        sd = timm.create_model(arch, pretrained=False).state_dict()
        shapes[f"timm:{arch}"] = [[k, list(v.shape)] for k, v in sd.items()]
    with open(path, "w") as f:
        json.dump(shapes, f, separators=(",", ":"))


def _write_index(out, index):
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"made_with": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                                 "timm": timm.__version__}, "fixtures": index}, f, indent=1)


def _read_json(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def main(out, only=()):
    os.makedirs(out, exist_ok=True)
    unknown = set(only) - set(FIXTURES) - set(FULL_SIZE)
    if unknown:
        sys.exit(f"unknown names {sorted(unknown)}: give fixture names of FIXTURES or architectures of FULL_SIZE")
    index = _read_json(os.path.join(out, "index.json"), {"fixtures": {}})["fixtures"] if only else {}
    for name, (model_name, kwargs, keys, make, size) in FIXTURES.items():
        if only and name not in only:
            continue
        torch.manual_seed(0)
        model = randomise_batch_norm(make())
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            logits = model(x).numpy()
        sd = model.state_dict()
        if name not in SAFETENSORS_ONLY:
            torch.save(sd, os.path.join(out, f"{name}.pth"))
        safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(out, f"{name}.safetensors"))
        np.savez_compressed(os.path.join(out, f"{name}_io.npz"), inputs=x.permute(0, 2, 3, 1).numpy(), logits=logits)
        index[name] = {"model": model_name, "kwargs": kwargs, "keys": keys, "input_size": size,
                       "num_classes": 10, "tensors": len(sd)}
    if only:
        _full_size_keys(out, [a for a in FULL_SIZE if a in only])
        _write_index(out, index)
        return
    # timm's VGG: the torchvision fixture's weights through timm's own key filter, at 224 px
    # (7x7 features, where timm's conv 'pre_logits' equals torchvision's Linear classifier).
    torch.manual_seed(0)
    vgg = randomise_batch_norm(TinyVGG(VGG_A, False, 128, 10))
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = vgg(x).numpy()
    # timm.models.vgg._filter_fn's renames and reshapes (it hard-codes the full-size 512 channels).
    names = {"classifier.0": "pre_logits.fc1", "classifier.3": "pre_logits.fc2", "classifier.6": "head.fc"}
    sd = {}
    for k, v in vgg.state_dict().items():
        module, _, leaf = k.rpartition(".")
        if k == "classifier.0.weight":
            v = v.reshape(-1, 16, 7, 7)
        elif k == "classifier.3.weight":
            v = v.reshape(v.shape[0], -1, 1, 1)
        sd[f"{names.get(module, module)}.{leaf}"] = v
    sd = {k: v.contiguous() for k, v in sd.items()}
    torch.save(sd, os.path.join(out, "timm_vgg11.pth"))
    safetensors.torch.save_file(sd, os.path.join(out, "timm_vgg11.safetensors"))
    np.savez_compressed(os.path.join(out, "timm_vgg11_io.npz"), inputs=x.permute(0, 2, 3, 1).numpy(), logits=logits)
    index["timm_vgg11"] = {"model": "vgg11", "kwargs": {"width": 0.03125}, "keys": "timm", "input_size": 224,
                           "num_classes": 10, "tensors": len(sd)}
    # torch's legacy (pre-1.6, non-zip) format, and tensors that are views with strides and offsets.
    sd = torch.load(os.path.join(out, "resnet18_basic.pth"))
    torch.save(sd, os.path.join(out, "resnet18_basic_legacy.pth"), _use_new_zipfile_serialization=False)
    base = torch.arange(24, dtype=torch.float32)
    views = {"transposed": base[:12].reshape(3, 4).t(), "offset": base[5:9], "half": base[:6].half(),
             "bf16": base[:6].bfloat16(), "int64": torch.arange(3), "strided": base[::3]}
    torch.save(views, os.path.join(out, "views.pth"))
    np.savez(os.path.join(out, "views.npz"), **{k: v.float().numpy() if v.is_floating_point() else v.numpy()
                                                 for k, v in views.items()})
    _full_size_keys(out, FULL_SIZE, timm_archs=("resnet18", "resnet50", "densenet121", "vgg16_bn"))
    _write_index(out, index)
    with open(os.path.join(out, "imagenet_classes.txt"), "w") as f:
        f.write("\n".join(torchvision.models._meta._IMAGENET_CATEGORIES) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/weights", tuple(sys.argv[2:]))
