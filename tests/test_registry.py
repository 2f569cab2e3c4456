import dataclasses

import pytest

import zoo
from zoo.registry import register_model


def test_list_models_is_sorted_and_filters_with_fnmatch():
    names = zoo.list_models()
    assert names == sorted(names)
    assert {"mlp", "lenet5", "lenet5_modern", "alexnet", "alexnet_cifar", "convnet"} <= set(names)
    assert zoo.list_models("lenet*") == ["lenet5", "lenet5_modern"]
    assert zoo.list_models("no_such_*") == []
    assert all("tabular" in zoo.get_card(n).tags for n in zoo.list_models(tags="tabular"))


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"lenet6.*lenet5"):
        zoo.build("lenet6")
    with pytest.raises(ValueError, match="Unknown model name"):
        zoo.get_card("zzzz")


def test_duplicate_registration_raises():
    before = zoo.list_models()
    with pytest.raises(ValueError, match="already registered"):

        @register_model(family="lenet", default_input_shape=(32, 32, 1), min_input_size=28, reference="")
        def lenet5(**kw):  # noqa: F811
            return None

    assert zoo.list_models() == before
    assert zoo.get_card("lenet5").builder is not None and zoo.build("lenet5").count_params() == 61706


def test_unknown_tag_rejected():
    with pytest.raises(ValueError, match="Unknown tags"):
        register_model(family="x", default_input_shape=(1,), min_input_size=None, reference="", tags=("nope",))


def test_card_is_frozen_and_complete():
    card = zoo.get_card("lenet5")
    assert card.family == "lenet"
    assert card.default_input_shape == (32, 32, 1)
    assert card.min_input_size == 28
    assert "LeCun" in card.reference
    assert card.has("image") and card.has("stages")
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.family = "other"


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_card_has_metadata(name):
    card = zoo.get_card(name)
    assert card.reference and card.description and card.family
    assert ("image" in card.tags) != ("tabular" in card.tags)
    if card.has("image"):
        assert len(card.default_input_shape) == 3 and card.min_input_size >= 1


def test_the_catalogue_equals_the_registry():
    """`zoo list` reads zoo/models/catalogue.json instead of importing the models: it must say what the registry says."""
    import json

    from zoo.registry import CATALOGUE_FILE, card_summary, catalogue

    with open(CATALOGUE_FILE, encoding="utf-8") as f:
        stored = json.load(f)
    assert [{k: v for k, v in row.items() if k != "params"} for row in stored] == \
        [card_summary(zoo.get_card(n)) for n in zoo.list_models()], \
        "zoo/models/catalogue.json is out of date: run `python tools/make_catalogue.py`"
    assert [r["name"] for r in catalogue("lenet*")] == zoo.list_models("lenet*")
    assert [r["name"] for r in catalogue(tags=("cifar", "residual"))] == zoo.list_models(tags=("cifar", "residual"))
    assert [r["name"] for r in catalogue(tags="tabular")] == zoo.list_models(tags="tabular")
    assert catalogue("no_such_*") == []


def test_the_catalogues_parameter_counts_are_the_builders():
    """Each row's ``params`` (trainable, at the builder's defaults) is torchvision's published count for every
    torchvision architecture (the weights table's ``num_params``, from its Weights enums), and a dry count of the
    builder for the others (a sample here: the CIFAR ResNet, LeNet-5, the MLP)."""
    from zoo.graph import dry_weight_count
    from zoo.registry import catalogue

    rows = {row["name"]: row for row in catalogue()}
    published = {r["model"]: r.get("num_params_eval", r["num_params"])  # inception_v3: without AuxLogits
                 for r in zoo.weights.weights_table() if r["source"] == "torchvision"}
    assert len(published) >= 60
    wrong = {n: (rows[n]["params"], p) for n, p in published.items() if rows[n]["params"] != p}
    assert not wrong, f"catalogue vs torchvision: {wrong}; run `python tools/make_catalogue.py --recount`"
    for name, paper in (("resnet20", 269_722), ("lenet5", 61_706), ("mlp", None)):
        count = dry_weight_count(zoo.get_card(name).builder, trainable_only=True)
        assert rows[name]["params"] == count and (paper is None or count == paper), name


def test_the_readme_parity_table_is_current():
    """The README's torchvision-parity table is what tools/make_parity_table.py writes from the catalogue and the
    weights table (so a model added or recounted shows there), and every zoo count equals torchvision's."""
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(root, "tools"))
    from make_parity_table import parity_table

    table = parity_table(root)
    assert table in open(os.path.join(root, "README.md"), encoding="utf-8").read(), \
        "README.md's parity table is out of date: run `python3 tools/make_parity_table.py`"
    assert " ≠ " not in table and table.count("\n| `") >= 60
