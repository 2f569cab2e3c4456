"""Importing this package registers every model family."""

from zoo.models import (  # noqa: F401
    alexnet, applications, convnet, convnext, densenet, efficientnet, googlenet, inception, lenet, mlp, mnasnet,
    mobilenet, maxvit, preact_resnet, regnet, resnet, shufflenet, squeezenet, swin, vgg, vit,
)
