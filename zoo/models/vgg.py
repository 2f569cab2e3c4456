"""VGG and VGG-BN.

Reference: Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015 (arXiv:1409.1556); torchvision's
``vgg11`` ... ``vgg19_bn`` layer for layer (its convs keep their bias even
before BatchNorm, and its classifier follows a 7x7 adaptive average pool).
"""

from __future__ import annotations

import keras

from zoo import blocks
from zoo.models._variants import keras_params, register_variant
from zoo.utils import check_float, check_width, scaled

# torchvision's ``cfgs``: conv widths, "M" = 2x2/2 max-pool ending a stage.
VGG_CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
VGG_DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}
# The registered variants: name -> (depth, BatchNorm after each conv, parameters for 1000 classes).
VGG_SPECS = {
    "vgg11": (11, False, 132_863_336),
    "vgg13": (13, False, 133_047_848),
    "vgg16": (16, False, 138_357_544),
    "vgg19": (19, False, 143_667_240),
    "vgg11_bn": (11, True, 132_868_840),
    "vgg13_bn": (13, True, 133_053_736),
    "vgg16_bn": (16, True, 138_365_992),
    "vgg19_bn": (19, True, 143_678_248),
}
POOLED_SIZE = 7  # torchvision's AdaptiveAvgPool2d((7, 7)) before the classifier
HIDDEN_UNITS = (4096, 4096)
MIN_INPUT_SIZE = 32  # five 2x2 max-pools


def _vgg(*, config, batch_norm, input_shape, num_classes, include_top, pooling, classifier_activation,
         dropout, width, weights, name):
    dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    width = check_width(width)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    stage, conv = 1, 1
    for v in config:
        if v == "M":
            x = blocks.pool(x, "max", pool_size=2, strides=2, name=f"stage{stage}")
            stage, conv = stage + 1, 1
            continue
        x = blocks.conv_bn_act(x, scaled(v, width), 3, padding=1, batch_norm_=batch_norm, use_bias=True,
                               name=f"stage{stage}_block{conv}")
        conv += 1
    if include_top:
        x = blocks.adaptive_avg_pool(x, POOLED_SIZE, name="head_adaptive_avgpool")
    # torchvision: Linear-ReLU-Dropout, Linear-ReLU-Dropout, Linear.
    x = blocks.classifier_head(
        x,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        flatten=True,
        hidden_units=tuple(scaled(u, width) for u in HIDDEN_UNITS),
        dropout=dropout,
    )
    return blocks.finish(inputs, x, name=name, weights=weights)


def _card(batch_norm, *, slow=False):
    # The deeper variants share vgg11's builder and blocks; their generic tests run with -m slow.
    return dict(
        family="vgg",
        default_input_shape=(224, 224, 3),
        min_input_size=MIN_INPUT_SIZE,
        reference="Simonyan & Zisserman, Very Deep Convolutional Networks, ICLR 2015; torchvision vgg layout",
        tags=("image", "pooling", "stages", "imagenet", "width") + (("batch_norm",) if batch_norm else ())
        + (("slow",) if slow else ()),
        test_kwargs={"input_shape": (32, 32, 3), "width": 0.0625},
    )


_ARGS_DOC = """
    Args:
        dropout: rate after each of the two hidden fully connected layers.
        width: multiplier on every conv and hidden FC width (1.0 is the reference).
        input_shape, num_classes, include_top, pooling, classifier_activation, weights, name:
            as in ``keras.applications``; ``weights`` is ``None`` or a local weights file.

    Returns:
        A functional ``keras.Model`` with ``stage1_*`` ... ``stage5_*`` and ``head_*`` layers.

    Example:
        >>> model = {name}(input_shape=(32, 32, 3), num_classes=10, width=0.25)
"""

for _name, (_depth, _batch_norm, _params) in VGG_SPECS.items():
    _config = VGG_DEPTHS[_depth]
    _layout = "with BatchNorm" if _batch_norm else f"(configuration {_config})"
    globals()[_name] = register_variant(
        _name, _vgg, card=_card(_batch_norm, slow=_depth > 11),
        params=keras_params(1000, ("dropout", 0.5), ("width", 1.0)),
        fixed=dict(config=VGG_CONFIGS[_config], batch_norm=_batch_norm),
        doc=f"VGG-{_depth} {_layout}, as torchvision's ``{_name}`` ({_params:,} parameters)."
            + _ARGS_DOC.format(name=_name),
    )
