"""N trials at a time: a search's chief and its workers, on this machine (``workers=N``) or on several.

KerasTuner's own distributed mode runs the search: a chief serves the oracle over gRPC and each worker asks it
for a trial, trains it and reports back, all appending to the one ``records.jsonl`` (:mod:`tuning.searches.engine`
serves the chief with a short poll). ``RunOptions(workers=N)`` (``zoo tune --workers N``) makes that mode local:
the calling process becomes the chief on a free port of 127.0.0.1, and the N workers of a
:class:`tuning.isolation.WorkerPool` (the one pool of worker processes, which load the data again by name) run the
same search, each pinned to its own GPU(s) when there are some (``CUDA_VISIBLE_DEVICES``). On other machines, ``--chief HOST:PORT`` and
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
import tempfile
import threading

from tuning.isolation import WorkerDied, WorkerPool

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


def _why(code):
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _end_abandoned_trial(tuner_id, starts, why, *, directory, seed):
    """The trial of a worker that died :data:`RESTARTS` + 1 times: ended ``FAILED`` through the chief (as that
    worker, which is how the oracle finds it; this process holds the chief's address) and recorded failed, so
    that the search goes on without it."""
    from tuning.manifest import RECORDS_FILE
    from tuning.records import append_record, new_record
    from tuning.searches.engine import fail_worker_trial

    trial = fail_worker_trial(tuner_id)
    if trial is None:
        return
    error = f"worker {tuner_id} {why} {starts} time(s) in this trial; given up"
    append_record(os.path.join(directory, RECORDS_FILE),
                  new_record(id=trial.trial_id, model=None, hyperparameters=dict(trial.hyperparameters.values),
                             seed=seed, status="failed", error=error, tuner_id=tuner_id))


def _supervise(pool, tasks, done, *, directory, seed, verbose, abandoned):
    """Run each worker's task in the pool; restart a dead one under its tuner id until the chief is done, and
    give its trial up after :data:`RESTARTS` restarts. When every worker is given up nobody would run the
    remaining trials: the chief (this process' main thread) is interrupted, and ``abandoned`` says why."""
    starts = {tuner_id: 1 for tuner_id in tasks}
    given_up = set()
    for tuner_id, kwargs in tasks.items():
        pool.submit(_search_worker, key=tuner_id, **kwargs)
    for tuner_id, ok, value in pool.completed():
        if ok or done.is_set():
            continue
        why = _why(value.exitcode) if isinstance(value, WorkerDied) else f"failed ({type(value).__name__}: {value})"
        if starts[tuner_id] <= RESTARTS:
            starts[tuner_id] += 1
            if verbose:
                print(f"[tune] worker {tuner_id} {why}: started again; the oracle gives it its trial back", flush=True)
            pool.submit(_search_worker, key=tuner_id, **tasks[tuner_id])
            continue
        given_up.add(tuner_id)
        try:
            _end_abandoned_trial(tuner_id, starts[tuner_id], why, directory=directory, seed=seed)
        except Exception as e:  # noqa: BLE001 - the chief may have ended already
            print(f"[tune] worker {tuner_id}: its trial could not be ended ({e})", flush=True)
        if len(given_up) == len(tasks) and not done.is_set():
            abandoned.append(f"all {len(tasks)} workers died {RESTARTS + 1} times each (the last {why}); "
                             "see their output above")
            _thread.interrupt_main()
            return


def run_with_local_workers(search, call, *, workers, verbose=1):
    """Run ``search(**call)`` as the chief of ``workers`` local worker processes that run the same call.

    The workers are :class:`tuning.isolation.WorkerPool`'s (each pinned to its own GPUs when there are some),
    each running one KerasTuner worker until the oracle has no trial left. ``call`` holds :func:`tuning.search`'s
    arguments; its data must come from :func:`zoo.data.load` (each worker loads it again by name) and its models,
    callbacks and settings must pickle.
    """
    options = dataclasses.replace(call["options"], workers=None)
    port = str(_free_port())
    folder = tempfile.mkdtemp(prefix="zoo-workers-")
    payload = os.path.join(folder, "search.pkl")
    with open(payload, "wb") as f:
        pickle.dump({**call, "data": None, "options": options}, f)
    tasks = {f"worker{i}": {"payload": payload, "environment": {_TUNER_ID: f"worker{i}", _ORACLE_IP: "127.0.0.1",
                                                                _ORACLE_PORT: port}} for i in range(workers)}
    pool = WorkerPool(call["data"], size=workers, max_tasks=1)
    done, abandoned = threading.Event(), []
    supervisor = threading.Thread(target=_supervise, args=(pool, tasks, done),
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
        supervisor.join(timeout=60)  # the workers end once the oracle has no trial for them
        if supervisor.is_alive():
            pool.kill()
            supervisor.join(timeout=10)
        pool.close()
        try:
            os.remove(payload)
            os.rmdir(folder)
        except OSError:
            pass
    result.workers = workers
    return result


def _search_worker(data, *, payload, environment):
    """A local worker's task: the chief's call, on this worker's data, run as a KerasTuner worker."""
    import tuning

    os.environ.update(environment)
    with open(payload, "rb") as f:
        call = pickle.load(f)
    tuning.search(**{**call, "data": data})
