"""Importing this package registers every model family."""

from zoo.models import (  # noqa: F401
    alexnet, applications, convnet, densenet, googlenet, lenet, mlp, preact_resnet, resnet, vgg,
)
