import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import zoo  # noqa: E402
from zoo.runtime import released_graphs  # noqa: E402


def model_params(names=None):
    """pytest params over registered models; cards tagged `slow` run only with -m slow."""
    names = zoo.list_models() if names is None else names
    return [
        pytest.param(n, marks=pytest.mark.slow) if zoo.get_card(n).has("slow") else n for n in names
    ]


def tiny_kwargs(name, **overrides):
    """Builder arguments for a tiny version of a registered model, from its card."""
    card = zoo.get_card(name)
    kw = dict(card.test_kwargs)
    kw.setdefault("input_shape", card.default_input_shape)
    kw.update(overrides)
    return kw


def random_batch(model, n=4, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(model.inputs[0].shape[1:])
    x = rng.random((n,) + shape).astype("float32")
    y = rng.integers(0, num_classes, size=(n,))
    return x, y


def pytest_collection_modifyitems(items):
    """The ``heavy`` tests first, each file's order kept: pytest-xdist hands tests out in collection order, and a
    long test collected last would run alone at the end while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(autouse=True)
def _clear_session():
    with released_graphs():  # each test's train graphs go with it (TensorFlow kept them all)
        yield
    keras.backend.clear_session(free_memory=False)  # a full gc.collect() per test cost about 1 s each
