"""The torchvision architectures the zoo builds, in the weights table's order: the one list that
tools/make_weights_table.py (the table) and tools/make_weight_fixtures.py (full-size key lists) read."""

ARCHS = ["alexnet"] + [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")] + \
    [f"resnet{d}" for d in (18, 34, 50, 101, 152)] + [f"densenet{d}" for d in (121, 169, 201)] + \
    ["densenet161", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
     "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"] + \
    [f"regnet_x_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")] + \
    [f"regnet_y_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")] + \
    [f"convnext_{s}" for s in ("tiny", "small", "base", "large")] + \
    [f"efficientnet_b{i}" for i in range(8)] + ["efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"] + \
    ["swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b"] + ["googlenet", "inception_v3"] + \
    ["maxvit_t"] + \
    [f"mnasnet{s}" for s in ("0_5", "0_75", "1_0", "1_3")] + ["squeezenet1_0", "squeezenet1_1"] + \
    [f"shufflenet_v2_x{s}" for s in ("0_5", "1_0", "1_5", "2_0")] + \
    ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]
