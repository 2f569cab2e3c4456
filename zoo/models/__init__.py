"""Importing this package registers every model family."""

from zoo.models import alexnet, convnet, lenet, mlp  # noqa: F401
