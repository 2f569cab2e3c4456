"""Searches run from a JSON configuration, in this process or in a fresh one (kill -9, resume, workers).

Used by ``tests/test_search_resume.py`` and ``tests/test_nsga2.py``: a configuration such as
``{"models": "mlp", "data": {...}, "training": {"epochs": 1}, "budget": {"max_trials": 4}, "options": {...},
"space": {...}, "algorithm": "nsga2", "algorithm_settings": {"population_size": 2}, "objectives": [...]}``
becomes :func:`tuning.search`'s settings objects here; ``python tests/search_scripts.py DIRECTORY CONFIG`` runs it.
"""

import json
import os
import sys

SCRIPT = os.path.abspath(__file__)


def run_search(directory, config):
    """``tuning.search`` of a JSON-like configuration (not changed)."""
    import tuning
    import zoo.data
    from zoo.training import TrainingConfig

    c = json.loads(json.dumps(config))
    algorithm = tuning.ALGORITHMS[c.pop("algorithm", "random")](**c.pop("algorithm_settings", {}))
    return tuning.search(c.pop("models"), data=zoo.data.load(**c.pop("data")), directory=directory,
                         training=TrainingConfig(**c.pop("training")), budget=tuning.Budget(**c.pop("budget")),
                         algorithm=algorithm, options=tuning.RunOptions(**c.pop("options")), **c)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(SCRIPT)))
    result = run_search(sys.argv[1], json.loads(sys.argv[2]))
    print("DONE", len(result.records), flush=True)
