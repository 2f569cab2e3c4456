"""The house layout (../shared/DESIGN.md), read from the source: floors, no circles, argparse only in the CLI."""

import ast
import importlib
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("zoo", "tuning")
# The only import circle allowed: the registry loads the model modules, which register themselves.
ALLOWED_CYCLES = [{"zoo.registry", "zoo.models"}]
# The floors of ../shared/DESIGN.md, bottom first: a module imports only from its own floor and the ones below.
# A module belongs to the floor of the longest name that prefixes it (a package's own floor holds only its
# __init__); every module must have a floor.
FLOORS = (
    ("zoo._lazy", "zoo._version", "zoo.utils", "zoo.layers"),
    ("zoo.runtime", "zoo.graph"),
    ("zoo.plots",),
    ("zoo.weights",),  # readers, conversion, the weights table: below the builders that load them
    ("zoo.blocks",),
    ("zoo.registry",),
    ("zoo.models",),
    ("zoo.data",),
    ("zoo.profiling",),
    ("zoo.training",),
    ("zoo.transfer",),
    ("zoo.explain",),
    ("zoo.deploy", "zoo.evaluation"),  # export with verification, evaluation: above everything a model needs
    ("zoo",),  # the package: public names imported on first use
    ("zoo.bench",),
    ("tuning.records",),
    ("tuning.objectives", "tuning.constraints"),
    ("tuning.manifest", "tuning.lock", "tuning.fronts", "tuning.indicators", "tuning.diagnosis"),
    ("tuning.report",),  # reads records and the manifest; the runs below write it
    ("tuning.settings", "tuning.artifacts", "tuning.spaces"),
    ("tuning.trial",),
    ("tuning.isolation", "tuning.hypermodels"),
    ("tuning.searches",),
    ("tuning.comparison",),
    ("tuning",),
    ("zoo.cli",),
)
# Upward imports that are part of the design: the registry imports the model modules on first use.
ALLOWED_UPWARD = {("zoo.registry", "zoo.models")}


def _module_name(path: pathlib.Path, root=ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: pathlib.Path, name: str) -> set:
    """Modules of the two packages that ``path`` imports (anywhere in the file, lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from zoo import data` imports the module zoo.data; `from zoo import __version__`, the package
            found.update(f"{base}.{alias.name}" for alias in node.names)
            found.add(base)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def import_graph(root=ROOT) -> dict:
    """``{module: {imported modules}}`` over ``zoo/`` and ``tuning/``, with imports resolved to known modules."""
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            files[_module_name(path, root)] = path
    graph = {}
    for name, path in files.items():
        targets = set()
        imported_all = _imports(path, name)
        for imported in imported_all:
            if imported in PACKAGES or imported in files and files[imported].name == "__init__.py":
                # the bare package of a `from package import module` is not an import of its __init__
                if any(other.startswith(imported + ".") and other in files for other in imported_all):
                    continue
            # the longest known module prefix (``from zoo.utils import check_int`` -> zoo.utils)
            parts = imported.split(".")
            while parts and ".".join(parts) not in files:
                parts.pop()
            if parts:
                targets.add(".".join(parts))
        targets.discard(name)
        graph[name] = targets
    return graph, files


def floor(name):
    """``(index, prefix)`` of the floor ``name`` is on, or ``None`` when no floor holds it."""
    found = [(len(prefix), i, prefix) for i, group in enumerate(FLOORS) for prefix in group
             if name == prefix or name.startswith(prefix + ".") and prefix not in PACKAGES]
    return max(found)[1:] if found else None


def violations(graph, files, root=ROOT) -> list:
    """Every broken layout rule, as a sentence naming the file."""
    out = []
    for name, targets in graph.items():
        path = files[name].relative_to(root)
        in_cli = name == "zoo.cli" or name.startswith("zoo.cli.")
        here = floor(name)
        if here is None:
            out.append(f"{path} ({name}) is on no floor: add it to FLOORS in tests/test_layout.py")
        for target in sorted(targets):
            there = floor(target)
            if here and there and there[0] > here[0] and (here[1], there[1]) not in ALLOWED_UPWARD:
                out.append(f"{path} imports {target}: an upward import (floor {here[1]} -> {there[1]})")
            if name.startswith("zoo") and not in_cli and target.split(".")[0] == "tuning":
                out.append(f"{path} imports {target}: nothing in zoo/ outside zoo/cli/ imports tuning")
            if (target == "zoo.cli" or target.startswith("zoo.cli.")) and not in_cli:
                out.append(f"{path} imports {target}: nothing imports the CLI")
        text = files[name].read_text(encoding="utf-8")
        if not in_cli and "argparse" in _stdlib_imports(text):
            out.append(f"{path} imports argparse: argument parsing lives in zoo/cli/")
    out += [f"import circle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return out


def _stdlib_imports(text) -> set:
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _collapse(name):
    """Packages count as one node for circles: zoo.models.resnet is part of zoo.models."""
    for prefix in ("zoo.models",):
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return name


def _cycles(graph) -> list:
    """Strongly connected components of more than one module (Tarjan), minus the allowed ones."""
    nodes = {}
    for name, targets in graph.items():
        nodes.setdefault(_collapse(name), set()).update(_collapse(t) for t in targets)
    for name in nodes:
        nodes[name].discard(name)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(nodes.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [c for c in found if set(c) not in ALLOWED_CYCLES]


def test_the_source_follows_the_layout_rules():
    graph, files = import_graph()
    assert "zoo.cli" in graph and "tuning.searches.engine" in graph  # the graph covers both packages
    assert violations(graph, files) == []


def test_keras_tuner_private_api_stays_in_the_engine():
    users = sorted(str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                   if "keras_tuner.src" in p.read_text(encoding="utf-8") or "_retry_queue" in p.read_text(
                       encoding="utf-8"))
    assert users == ["tuning/searches/engine.py"]


def private_overrides(module) -> list:
    """``module.Class._name`` for each private KerasTuner method or attribute a class of ``module`` overrides."""
    import inspect

    found = []
    for cls in vars(module).values():
        if not inspect.isclass(cls) or cls.__module__ != module.__name__:
            continue
        bases = [b for b in cls.__mro__[1:] if b.__module__.split(".")[0] == "keras_tuner"]
        found += [f"{module.__name__}.{cls.__name__}.{name}" for name in vars(cls)
                  if name.startswith("_") and not name.startswith("__") and any(name in vars(b) for b in bases)]
    return found


def test_keras_tuner_private_methods_are_overridden_in_the_engine_only():
    import types

    import keras_tuner as kt

    planted = types.ModuleType("planted")
    planted.Oracle = type("Oracle", (kt.Oracle,), {"__module__": "planted", "_check_objective_found": None,
                                                   "_own_helper": None, "populate_space": None})
    assert private_overrides(planted) == ["planted.Oracle._check_objective_found"]  # the guard catches one
    offenders = []
    for name in sorted(import_graph()[1]):
        if name.startswith("tuning") and name != "tuning.searches.engine":
            offenders += private_overrides(importlib.import_module(name))
    assert offenders == []
    assert private_overrides(importlib.import_module("tuning.searches.engine"))  # there, and only there


@pytest.mark.parametrize("target, source, expected", [
    ("zoo/training/compile.py", "import tuning.report\n", "nothing in zoo/ outside zoo/cli/ imports tuning"),
    ("zoo/training/compile.py", "from zoo.cli.args import parse_kwargs\n", "nothing imports the CLI"),
    ("zoo/training/compile.py", "import argparse\n", "argument parsing lives in zoo/cli/"),
    ("zoo/training/compile.py", "from zoo.transfer import freeze\n", "import circle"),
    ("zoo/blocks.py", "import zoo.bench\n", "an upward import (floor zoo.blocks -> zoo.bench)"),
    ("zoo/blocks.py", "from zoo import weights\n\ndef f():\n    from zoo.models import resnet\n",
     "an upward import (floor zoo.blocks -> zoo.models)"),
    ("tuning/records.py", "from tuning.report import write_report\n",
     "an upward import (floor tuning.records -> tuning.report)"),
    ("tuning/trial.py", "from tuning.searches.runner import Runner\n",
     "an upward import (floor tuning.trial -> tuning.searches)"),
])
def test_the_rules_catch_a_wrong_import(tmp_path, target, source, expected):
    """A deliberately wrong import in a copy of the tree (lazy ones too) is reported, naming the file."""
    import shutil

    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / target
    path.write_text(source + path.read_text(encoding="utf-8"), encoding="utf-8")
    found = violations(*import_graph(tmp_path), tmp_path)
    assert [v for v in found if expected in v] and all(v.startswith((target, "import circle")) for v in found), found
    assert violations(*import_graph(ROOT)) == []  # the real tree is untouched


def test_a_module_on_no_floor_is_reported(tmp_path):
    import shutil

    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tuning" / "newcomer.py").write_text("from tuning.records import finite\n", encoding="utf-8")
    found = violations(*import_graph(tmp_path), tmp_path)
    assert found == ["tuning/newcomer.py (tuning.newcomer) is on no floor: add it to FLOORS in tests/test_layout.py"]


FRAMEWORKS = ("tensorflow", "keras", "jax", "keras_tuner", "torch")


def _frameworks_after(code) -> list:
    """The deep-learning frameworks in ``sys.modules`` after running ``code`` in a fresh process."""
    script = f"{code}\nimport sys\nprint(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["zoo", "tuning", "tuning.report", "tuning.records", "tuning.fronts",
                                    "tuning.objectives", "tuning.constraints", "tuning.indicators", "tuning.manifest",
                                    "tuning.settings", "tuning.searches.algorithms", "tuning.diagnosis",
                                    "tuning.searches", "zoo.runtime", "zoo.plots", "zoo.registry", "zoo.cli",
                                    "zoo.data"])
def test_reading_records_and_reporting_import_no_framework(module):
    """Start-up (issue 19): the packages, the records, the report and the CLI's parser load no framework, so
    `zoo --help` and `zoo report` start in a fraction of a second; a framework imported at the top of any
    module they reach fails here."""
    assert _frameworks_after(f"import {module}") == []


def test_public_names_resolve_lazily():
    """Every name of ``__all__`` (imported on first use) resolves and is listed by ``dir``."""
    import tuning
    import tuning.searches
    import zoo
    import zoo.data

    for package in (zoo, tuning, tuning.searches, zoo.data):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
        assert set(package.__all__) <= set(dir(package))
        with pytest.raises(AttributeError):
            getattr(package, "no_such_name")
    assert tuning.search is tuning.searches.api.search and tuning.compare is tuning.comparison.compare
    assert zoo.profile is importlib.import_module("zoo.profiling").profile  # the function, not its module
    module = importlib.import_module("zoo.data.augment")  # a submodule imported after its package
    assert zoo.data.augment is module.augment  # the function, not its module


def test_import_zoo_after_keras_registers_its_layers():
    """``import keras, zoo`` then ``keras.saving.load_model`` knows the zoo's layers and losses, as it always did."""
    names = ["zoo>AdaptiveAveragePooling2D", "zoo>ChannelZeroPadding", "zoo>ConvertChannels",
             "zoo>SparseCategoricalCrossentropy"]
    code = f"import keras, zoo\nassert all(keras.saving.get_registered_object(n) for n in {names!r})"
    assert "keras" in _frameworks_after(code)
