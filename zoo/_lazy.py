"""Package attributes imported on first use (PEP 562), one implementation for ``zoo``, ``tuning`` and
``tuning.searches``: ``import zoo`` or ``import tuning.report`` then starts without loading Keras."""

import importlib
import importlib.util
import sys

__all__ = ["lazy_attributes"]


def lazy_attributes(package, attributes, names):
    """``(__getattr__, __dir__)`` for the module ``package``.

    Args:
        package: the package's ``__name__``.
        attributes: public name -> the module that defines it; the first use of one imports that module
            and binds all of its names listed here.
        names: the package's ``__all__`` (listed by ``dir()`` before their first use).

    Every submodule is an attribute too, as when the package imported them all.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name):
        if name not in attributes:
            if name.startswith("_") or importlib.util.find_spec(f"{package}.{name}") is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            return importlib.import_module(f"{package}.{name}")
        module = importlib.import_module(attributes[name])
        for other, source in attributes.items():
            if source == module.__name__:
                namespace[other] = getattr(module, other)
        return namespace[name]

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
