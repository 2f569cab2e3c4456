"""Trials in their own processes: a leak, an out-of-memory kill or a native crash costs one trial, not the search.

Each trial runs in a fresh worker process: a new interpreter (never a
``fork``: TensorFlow's threads do not survive it; and not ``multiprocessing``'s
spawn either, which runs the caller's ``__main__`` again). The worker imports the
package, loads the data again from the bundle's name and options (checked
against its fingerprint), runs one function and sends back its result; it
then exits, so whatever the trial left in memory goes with it. While a trial
runs, the next worker is already starting, so its start-up (imports, data)
overlaps the trial instead of adding to it.

A worker that dies without answering - killed by a signal (the kernel's
out-of-memory killer sends SIGKILL, a segfault is SIGSEGV, an abort SIGABRT)
or exiting early - raises :class:`WorkerDied`, which names the signal; the
search records the trial as failed and goes on.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from multiprocessing.connection import Connection

__all__ = ["WorkerDied", "WorkerPool", "check_picklable", "data_spec"]

_POLL = 0.2  # seconds between checks that a busy worker is alive


class WorkerDied(RuntimeError):
    """A trial's worker process ended without a result (``signal_name`` is e.g. ``"SIGSEGV"``, or ``None``)."""

    def __init__(self, exitcode):
        self.exitcode = exitcode
        self.signal_name = None
        if exitcode is not None and exitcode < 0:
            try:
                self.signal_name = signal.Signals(-exitcode).name
            except ValueError:
                self.signal_name = f"signal {-exitcode}"
        if self.signal_name:
            why = (f"worker process killed by {self.signal_name} (signal {-exitcode}): a native crash, or the "
                   "out-of-memory killer for SIGKILL")
        else:
            why = f"worker process exited with status {exitcode} before sending a result"
        super().__init__(why)


def data_spec(data) -> dict:
    """What a worker needs to load ``data`` again: name, load options and fingerprint.

    Raises:
        ValueError: a bundle that cannot be loaded again by name (e.g. made from arrays in memory).
    """
    options = dict(getattr(data, "options", None) or {})
    source = getattr(data, "source", None)
    if source not in ("embedded", "tfds", "folder") or not getattr(data, "name", None):
        raise ValueError("isolation='process' loads the data again in each worker, by name and options: "
                         f"use a bundle from zoo.data.load. Received: a {type(data).__name__} with source={source!r}")
    return {"name": data.name, "options": options, "fingerprint": data.fingerprint}


def check_picklable(value, name):
    """Raise a ``TypeError`` naming ``name`` when ``value`` cannot be sent to a worker process."""
    try:
        pickle.dumps(value)
    except Exception as e:  # noqa: BLE001 - pickling raises many kinds of errors
        raise TypeError(f"isolation='process' sends `{name}` to each worker process, so it must be picklable "
                        f"(module-level functions and classes). Received: {name}={value!r} ({e})") from None


def _load(spec):
    import zoo.data

    data = zoo.data.load(spec["name"], **spec["options"])
    if data.fingerprint != spec["fingerprint"]:
        raise ValueError(f"The worker loaded {spec['name']!r} with other contents (fingerprint "
                         f"{data.fingerprint[:12]} != {spec['fingerprint'][:12]}): the data changed on disk?")
    return data


def _main(task_fd, answer_fd):
    """A worker's life: load the data, wait for one task, run it, answer, exit."""
    tasks, answers = Connection(task_fd, writable=False), Connection(answer_fd, readable=False)
    try:
        spec = tasks.recv()
        data, error = _load(spec), None
    except (EOFError, OSError):
        return
    except Exception as e:  # noqa: BLE001 - sent back with the task's answer
        data, error = None, e
    try:
        function, kwargs = tasks.recv()
    except (EOFError, OSError):  # the search ended (or died) before this spare was needed
        return
    try:
        if error is not None:
            raise error
        answer = ("ok", function(data, **kwargs))
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the search
        answer = ("error", e)
    try:
        answers.send(answer)
    except Exception as e:  # noqa: BLE001 - an exception that does not pickle goes back as text
        answers.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} ({e})")))
    answers.close()


class _Worker:
    """A fresh interpreter (``python -c``, so the caller's ``__main__`` is never run again) that talks over
    two pipes of its own: the trial's prints and progress bars keep the caller's stdout and stderr."""

    def __init__(self, spec):
        task_read, task_write = os.pipe()
        answer_read, answer_write = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the caller's modules, tests included
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # one start-up banner per worker would drown the trial lines
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tuning.isolation import _main; _main(*map(int, sys.argv[1:]))",
             str(task_read), str(answer_write)], pass_fds=(task_read, answer_write), env=env)
        os.close(task_read)
        os.close(answer_write)
        self.tasks = Connection(task_write, readable=False)
        self.conn = Connection(answer_read, writable=False)
        self.tasks.send(spec)

    @property
    def exitcode(self):
        return self.process.poll()

    def send(self, function, kwargs):
        self.tasks.send((function, kwargs))

    def result(self):
        try:
            while not self.conn.poll(_POLL):
                if self.process.poll() is not None:
                    break
            try:
                status, value = self.conn.recv()
            except (EOFError, OSError):  # died without answering
                raise WorkerDied(self.process.wait()) from None
        finally:
            self.conn.close()
            self.tasks.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if status == "error":
            raise value
        return value

    def stop(self):
        self.tasks.close()  # a waiting worker sees EOF and exits
        self.conn.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class WorkerPool:
    """Runs ``function(data, **kwargs)`` in a fresh spawned process per call (see the module docstring).

    Args:
        data: the bundle each worker loads again (:func:`data_spec`).
        prestart: start the next worker while a trial runs.
    """

    def __init__(self, data, *, prestart=True):
        self.spec = data_spec(data)
        self.prestart = prestart
        self._spare = None

    def run(self, function, **kwargs):
        """The function's result; its exception re-raised; :class:`WorkerDied` if the process died."""
        worker, self._spare = self._spare or _Worker(self.spec), None
        try:
            worker.send(function, kwargs)
        except (BrokenPipeError, EOFError, OSError):  # it died while waiting for its task
            raise WorkerDied(worker.process.wait()) from None
        if self.prestart:
            self._spare = _Worker(self.spec)  # starts while this trial runs
        return worker.result()

    def close(self):
        if self._spare is not None:
            self._spare.stop()
            self._spare = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
