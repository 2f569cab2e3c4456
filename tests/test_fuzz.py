"""Fuzz the public API: a bad argument gets a ValueError or TypeError that names it, and nothing else escapes.

Each case keeps a small valid call (the card's tiny test sizes) and replaces one argument with a
drawn value: non-finite and huge numbers, negatives, zero, wrong types, odd strings and sequences.
The fast run draws FAST_EXAMPLES cases per builder and per API function; the ``slow`` run draws
SLOW_EXAMPLES per builder (``make test-all``). ``ZOO_FUZZ_STATS=FILE`` appends one JSON line per
case (target, argument, outcome) for the figures in the issue's closing note.
"""

import inspect
import json
import os

import keras
import numpy as np
import pytest
from conftest import tiny_kwargs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo
from zoo import training, transfer

FAST_EXAMPLES = 6
SLOW_EXAMPLES = int(os.environ.get("ZOO_FUZZ_EXAMPLES", 1000))

ODD_VALUES = [
    float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 1e308, 10**12, -(10**12), 2**63, -1, 0, 0.0, -0.5,
    True, False, None, "", "x", "[", "relu", b"x", (), [], {}, (0,), (-1, 2), (1, 2, 3), (10**9,), ("a",),
    object(),
]
VALUES = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(max_size=4),
    st.lists(st.integers(-2, 4), max_size=3).map(tuple),
)


def _record(target, argument, value, outcome):
    path = os.environ.get("ZOO_FUZZ_STATS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"target": target, "argument": argument, "value": repr(value)[:60],
                                "outcome": outcome}) + "\n")


def _check(target, argument, value, call):
    """Run ``call()``: it may succeed, or raise ValueError/TypeError naming ``argument``; nothing else."""
    try:
        call()
    except (ValueError, TypeError) as e:
        _record(target, argument, value, type(e).__name__)
        assert argument in str(e), f"{target}({argument}={value!r}) raised a message not naming it: {e}"
    except Exception as e:  # noqa: BLE001 - the point of the test
        _record(target, argument, value, type(e).__name__)
        raise AssertionError(f"{target}({argument}={value!r}) raised {type(e).__name__}: {e}") from e
    else:
        _record(target, argument, value, "accepted")
    finally:
        keras.backend.clear_session(free_memory=False)


def _arguments(name):
    return [p for p in inspect.signature(zoo.get_card(name).builder).parameters if p != "name"]


def _fuzz_builder(name, examples):
    base = tiny_kwargs(name, num_classes=3)

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(argument=st.sampled_from(_arguments(name)), value=VALUES)
    def run(argument, value):
        _check(name, argument, value, lambda: zoo.build(name, **{**base, argument: value}))

    run()


@pytest.mark.parametrize("name", zoo.list_models())  # every builder: a refused case builds nothing
def test_builders_refuse_bad_arguments_by_name(name):
    _fuzz_builder(name, FAST_EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list_models())
def test_builders_refuse_bad_arguments_by_name_many_cases(name):
    _fuzz_builder(name, SLOW_EXAMPLES)


@pytest.fixture(scope="module")
def small_model():
    return zoo.build("resnet20", input_shape=(16, 16, 3), num_classes=3, width=0.25)


def _xy():
    rng = np.random.default_rng(0)
    return rng.random((8, 2), dtype="float32"), (np.arange(8) % 2).astype("int32")


# Each public function with a valid call and the arguments drawn for it.
API = {
    "freeze": (lambda m, kw: transfer.freeze(m, **kw), ("until", "stages", "pattern", "fraction")),
    "unfreeze": (lambda m, kw: transfer.unfreeze(m, **(kw if {"last_blocks", "from_layer", "stages"} & set(kw)
                                                       else {"last_blocks": 1, **kw})),
                 ("last_blocks", "from_layer", "stages", "train_bn")),
    "replace_head": (lambda m, kw: zoo.replace_head(m, **{"num_classes": 2, **kw}),
                     ("num_classes", "task", "hidden_units", "dropout", "activation", "pooling", "layer")),
    "feature_extractor": (lambda m, kw: zoo.feature_extractor(m, **kw), ("layer", "pooling")),
    "profile": (lambda m, kw: zoo.profile(m, **kw), ("input_shape",)),
    "measure_speed": (lambda m, kw: zoo.measure_speed(m, **{"iterations": 1, "warmup": 0, **kw}),
                      ("batch_size", "warmup", "iterations", "seed")),
    "data.load": (lambda m, kw: zoo.data.load("moons", **{"num_samples": 40, **kw}),
                  ("num_samples", "noise", "batch_size", "seed", "validation_split", "test_split", "split_seed")),
    "fit": (lambda m, kw: training.fit(zoo.build("mlp", input_shape=(2,), num_classes=2, hidden_units=(4,)), _xy(),
                                       **{"epochs": 1, "verbose": 0, **kw}),
            ("epochs", "batch_size", "learning_rate", "optimizer", "schedule", "weight_decay", "momentum",
             "label_smoothing", "seed")),
}


@pytest.mark.parametrize("function", sorted(API))
def test_public_functions_refuse_bad_arguments_by_name(function, small_model):
    call, arguments = API[function]

    @settings(max_examples=2 * FAST_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(argument=st.sampled_from(arguments), value=VALUES)
    def run(argument, value):
        for layer in small_model.layers:  # freeze/unfreeze change trainability: each case starts from scratch
            layer.trainable = True
        _check(function, argument, value, lambda: call(small_model, {argument: value}))

    run()
