"""Importing this package registers every model family."""

from zoo.models import (  # noqa: F401
    alexnet, applications, convnet, convnext, densenet, efficientnet, googlenet, lenet, mlp, mobilenet,
    maxvit, preact_resnet, regnet, resnet, swin, vgg, vit,
)
