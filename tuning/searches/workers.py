"""N trials at a time: a search's chief and its workers, on this machine (``workers=N``) or on several.

KerasTuner's own distributed mode runs the search: a chief serves the oracle over gRPC and each worker asks it
for a trial, trains it and reports back, all appending to the one ``records.jsonl`` (:mod:`tuning.searches.engine`
serves the chief with a short poll). ``RunOptions(workers=N)`` (``zoo tune --workers N``) makes that mode local:
the calling process becomes the chief on a free port of 127.0.0.1 and starts N worker processes (fresh
interpreters, as :mod:`tuning.isolation`'s, which load the data again by name) running the same search, each pinned
to its own GPU(s) when there are some (``CUDA_VISIBLE_DEVICES``). On other machines, ``--chief HOST:PORT`` and
``--worker HOST:PORT`` set KerasTuner's variables for the same search (see the README's SLURM recipe).

A worker that dies (a signal, the out-of-memory killer, a crash) is started again under the same tuner id, and
the oracle hands it the trial it was running (from its last epoch's checkpoint when the run keeps checkpoints).
After :data:`RESTARTS` deaths of one slot its trial is ended ``FAILED`` through the chief and recorded failed,
so that the chief never waits for a trial nobody runs (KerasTuner #915); the chief ends when the budget is spent
and no trial runs (#254).
"""

from __future__ import annotations

import _thread
import dataclasses
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from tuning.isolation import _load, data_spec

__all__ = ["RESTARTS", "chief_environment", "run_with_local_workers", "worker_environment"]

RESTARTS = 3  # starts of one worker slot after the first, before its trial is ended FAILED
_POLL = 0.5
_TUNER_ID, _ORACLE_IP, _ORACLE_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"


def _address(text, option):
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{option} takes HOST:PORT (e.g. node01:8000). Received: {text!r}")
    return host, port


def chief_environment(address) -> dict:
    """KerasTuner's variables for the chief of a search served at ``HOST:PORT``."""
    host, port = _address(address, "--chief")
    return {_TUNER_ID: "chief", _ORACLE_IP: host, _ORACLE_PORT: port}


def worker_environment(address, tuner_id=None) -> dict:
    """KerasTuner's variables for a worker of the search served at ``HOST:PORT``; its id, by default
    ``worker-<host>-<SLURM_PROCID or pid>``, must stay the same if it is restarted (it gets its trial back)."""
    host, port = _address(address, "--worker")
    if tuner_id is None:
        rank = os.environ.get("SLURM_PROCID") or str(os.getpid())
        tuner_id = f"worker-{socket.gethostname()}-{rank}"
    if tuner_id == "chief" or not str(tuner_id).strip():
        raise ValueError(f"a worker's tuner id may not be empty or 'chief'. Received: {tuner_id!r}")
    return {_TUNER_ID: str(tuner_id), _ORACLE_IP: host, _ORACLE_PORT: port}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gpu_ids():
    """The GPUs this process may use (``CUDA_VISIBLE_DEVICES``, else the backend's list); ``[]`` on a CPU."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    try:
        import keras

        if keras.backend.backend() == "jax":
            import jax

            return [str(d.id) for d in jax.devices() if d.platform == "gpu"]
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return [str(i) for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]
    except Exception:  # noqa: BLE001 - no GPU list: the workers share the default device
        pass
    return []


class _Slot:
    """One worker process of the search and its restarts, under one tuner id."""

    def __init__(self, index, payload, env):
        self.index, self.payload, self.env = index, payload, env
        self.tuner_id = env[_TUNER_ID]
        self.starts, self.process = 0, None
        self.start()

    def start(self):
        self.starts += 1
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tuning.searches.workers import _main; _main(sys.argv[1])",
             self.payload], env=self.env)

    def died(self):
        code = self.process.poll()
        return code is not None and code != 0, code


def _why(code):
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _end_abandoned_trial(slot, *, directory, seed, code):
    """The trial of a slot that died :data:`RESTARTS` + 1 times: ended ``FAILED`` through the chief (as that
    worker, which is how the oracle finds it; this process holds the chief's address) and recorded failed, so
    that the search goes on without it."""
    from tuning.manifest import RECORDS_FILE
    from tuning.records import append_record, new_record
    from tuning.searches.engine import fail_worker_trial

    trial = fail_worker_trial(slot.tuner_id)
    if trial is None:
        return
    error = f"worker {slot.tuner_id} {_why(code)} {slot.starts} time(s) in this trial; given up"
    append_record(os.path.join(directory, RECORDS_FILE),
                  new_record(id=trial.trial_id, model=None, hyperparameters=dict(trial.hyperparameters.values),
                             seed=seed, status="failed", error=error, tuner_id=slot.tuner_id))


def _supervise(slots, done, *, directory, seed, verbose, abandoned):
    """Restart dead workers under their tuner id until the chief is done; give a slot's trial up after
    :data:`RESTARTS` restarts. When every slot is given up nobody would run the remaining trials: the chief
    (this process' main thread) is interrupted, and ``abandoned`` says why."""
    while not done.wait(_POLL):
        for slot in slots:
            dead, code = slot.died()
            if not dead:
                continue
            if slot.starts <= RESTARTS:
                if verbose:
                    print(f"[tune] worker {slot.tuner_id} {_why(code)}: started again; the oracle gives it its "
                          "trial back", flush=True)
                slot.start()
            elif slot.process is not None:
                slot.process = None
                try:
                    _end_abandoned_trial(slot, directory=directory, seed=seed, code=code)
                except Exception as e:  # noqa: BLE001 - the chief may have ended already
                    print(f"[tune] worker {slot.tuner_id}: its trial could not be ended ({e})", flush=True)
                if all(s.process is None for s in slots) and not done.is_set():
                    abandoned.append(f"all {len(slots)} workers died {RESTARTS + 1} times each (the last "
                                     f"{_why(code)}); see their output above")
                    _thread.interrupt_main()
                    return
        if all(s.process is None or s.process.poll() == 0 for s in slots):
            return


def run_with_local_workers(search, call, *, workers, verbose=1):
    """Run ``search(**call)`` as the chief of ``workers`` local worker processes that run the same call.

    ``call`` holds :func:`tuning.search`'s arguments; its data must come from :func:`zoo.data.load` (each worker
    loads it again by name) and its models, callbacks and settings must pickle.
    """
    spec = data_spec(call["data"])
    options = dataclasses.replace(call["options"], workers=None)
    port = str(_free_port())
    base = {**os.environ, _ORACLE_IP: "127.0.0.1", _ORACLE_PORT: port,
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    gpus = _gpu_ids()
    folder = tempfile.mkdtemp(prefix="zoo-workers-")
    payload = os.path.join(folder, "search.pkl")
    with open(payload, "wb") as f:
        pickle.dump({**call, "data": spec, "options": options}, f)
    slots = []
    for i in range(workers):
        env = {**base, _TUNER_ID: f"worker{i}"}
        if gpus:  # each worker its own share of the GPUs (round robin when there are fewer GPUs than workers)
            share = max(1, len(gpus) // workers)
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[(i * share + j) % len(gpus)] for j in range(share))
        slots.append(_Slot(i, payload, env))
    done, abandoned = threading.Event(), []
    supervisor = threading.Thread(target=_supervise, args=(slots, done),
                                  kwargs=dict(directory=os.fspath(call["directory"]), seed=call["seed"],
                                              verbose=verbose, abandoned=abandoned), daemon=True)
    supervisor.start()
    saved = {k: os.environ.get(k) for k in (_TUNER_ID, _ORACLE_IP, _ORACLE_PORT)}
    os.environ.update({_TUNER_ID: "chief", _ORACLE_IP: "127.0.0.1", _ORACLE_PORT: port})
    try:
        result = search(**{**call, "options": options})
    except KeyboardInterrupt:
        if abandoned:  # the supervisor interrupted the chief: no worker is left to run a trial
            raise RuntimeError(f"The search's workers cannot run: {abandoned[0]}") from None
        raise
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        done.set()
        supervisor.join(timeout=10)
        deadline = time.monotonic() + 60  # the workers end once the oracle has no trial for them
        for slot in slots:
            if slot.process is None:
                continue
            try:
                slot.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()
        try:
            os.remove(payload)
            os.rmdir(folder)
        except OSError:
            pass
    result.workers = workers
    return result


def _main(payload):
    """A local worker: the chief's call, its data loaded again by name, run as a KerasTuner worker."""
    from zoo.runtime import QUIET_ENV, quiet_framework_start

    if os.environ.get(QUIET_ENV):
        quiet_framework_start()
    import tuning

    with open(payload, "rb") as f:
        call = pickle.load(f)
    call["data"] = _load(call["data"])
    tuning.search(**call)
