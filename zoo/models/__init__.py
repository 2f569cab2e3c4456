"""Importing this package registers every model family."""

from zoo.models import alexnet, applications, convnet, densenet, lenet, mlp, preact_resnet, resnet, vgg  # noqa: F401
