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



def kill_once(marker):
    """A Keras callback (picklable, for worker processes) that SIGKILLs its own process at the end of the first
    epoch it sees, once per ``marker`` file: a worker dying mid-trial."""
    return _KillOnce(marker)


try:
    import keras as _keras
except ImportError:  # the script runs without it only to fail later
    _keras = None

if _keras is not None:
    class _KillOnce(_keras.callbacks.Callback):
        def __init__(self, marker):
            super().__init__()
            self.marker = marker

        def on_epoch_end(self, epoch, logs=None):
            import signal

            if not os.path.exists(self.marker):
                open(self.marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
