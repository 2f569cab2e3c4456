"""Trials in their own processes: a leak, an out-of-memory kill or a native crash costs one trial, not the search.

Each trial runs in a fresh worker process: a new interpreter (never a
``fork``: TensorFlow's threads do not survive it; and not ``multiprocessing``'s
spawn either, which runs the caller's ``__main__`` again). The worker imports the
package, loads the data again from the bundle's name and options (checked
against its fingerprint), runs one function and sends back its result; it
then exits, so whatever the trial left in memory goes with it. While a trial
runs, the next worker is already starting, so its start-up (imports, data)
overlaps the trial instead of adding to it.

A worker that dies while it runs a trial - killed by a signal (the kernel's
out-of-memory killer sends SIGKILL, a segfault is SIGSEGV, an abort SIGABRT)
or exiting early - raises :class:`WorkerDied`, which names the signal; the
search records the trial as failed and goes on. A worker tells the search
when it starts a trial: one that dies before that (a spare killed while it
waited) ran nothing, and the trial goes to a fresh worker instead; only when
:data:`STARTS` workers in a row die so does :class:`WorkersCannotStart` end
the search.

Workers die with their search: the kernel kills a worker when the process
that started it ends (Linux' parent-death signal, armed first thing in the
worker), and a thread in each busy worker exits it the moment its task pipe
closes (the search ended or was killed) - so a ``kill -9`` of the search
leaves no trial writing checkpoints or models into a folder that a resumed
run may already own (:mod:`tuning.lock`).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from zoo.runtime import QUIET_ENV, quiet_framework_start

__all__ = ["STARTS", "WorkerDied", "WorkerPool", "WorkersCannotStart", "check_picklable", "data_spec"]

_POLL = 0.2  # seconds between checks that a busy worker is alive
STARTS = 3  # workers tried for one trial when each dies before starting it
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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


class _NotStarted(WorkerDied):
    """A worker died before it started the trial (e.g. a spare killed while it waited): nothing ran."""


class WorkersCannotStart(RuntimeError):
    """:data:`STARTS` worker processes in a row died before running their trial: the environment (imports,
    memory, the data), not a trial, is at fault, so the search stops instead of failing every trial."""

    def __init__(self, last):
        self.last = last
        super().__init__(f"{STARTS} worker processes in a row ended before they could start a trial (the last: "
                         f"{last}); see their output above")


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


def _die_with_parent(parent):
    """Have the kernel kill this worker when its parent ends (Linux); exit now if it already has.

    The kernel's parent is the thread that started the worker: a pool is used from one thread that outlives
    it (a search's). A spare killed early by a thread's end would only be replaced (:class:`WorkerPool`).
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the task pipe's watchdog (_watch) still ends the worker
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed: nobody would take the answer
        os._exit(1)


def _watch(task_fd, answered):
    """EOF on the task pipe of a busy worker: the search ended or was killed; exit before another write.

    Nothing more is sent on the pipe after the task, so a read returns only at EOF. ``answered`` is set
    just before the answer goes out: the search then closes the pipe itself, and the worker ends normally.
    """
    try:
        while os.read(task_fd, 4096):
            pass
    except OSError:
        pass
    if not answered.is_set():
        os._exit(1)


def _main(parent, task_fd, answer_fd):
    """A worker's life: load the data, wait for one task, say it started, run it, answer, exit."""
    _die_with_parent(parent)
    if os.environ.get(QUIET_ENV):  # started by a quiet `zoo` command: no start-up lines per worker either
        quiet_framework_start()
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
    answered = threading.Event()
    threading.Thread(target=_watch, args=(task_fd, answered), daemon=True).start()
    answers.send(("started", None))  # from here on, a death is the trial's
    try:
        if error is not None:
            raise error
        answer = ("ok", function(data, **kwargs))
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the search
        answer = ("error", e)
    answered.set()
    try:
        answers.send(answer)
    except Exception as e:  # noqa: BLE001 - an exception that does not pickle goes back as text
        answers.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} ({e})")))
    answers.close()


class _Worker:
    """A fresh interpreter (``python -c``, so the caller's ``__main__`` is never run again) that talks over
    two pipes of its own: the trial's prints and progress bars keep the caller's stdout and stderr."""

    def __init__(self, spec, hold=()):
        task_read, task_write = os.pipe()
        answer_read, answer_write = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the caller's modules, tests included
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # one start-up banner per worker would drown the trial lines
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tuning.isolation import _main; _main(*map(int, sys.argv[1:]))",
             str(os.getpid()), str(task_read), str(answer_write)], pass_fds=(task_read, answer_write, *hold), env=env)
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
        """The trial's answer; :class:`WorkerDied` if the worker died in the trial, ``_NotStarted`` before it."""
        started = False
        try:
            while True:
                while not self.conn.poll(_POLL) and self.process.poll() is None:
                    pass
                status, value = self.conn.recv()  # EOFError: it died without answering
                if status != "started":
                    break
                started = True
        except (EOFError, OSError):
            raise (WorkerDied if started else _NotStarted)(self.process.wait()) from None
        except BaseException:  # e.g. Ctrl-C: the trial ends with the search, not after it
            self.process.kill()
            self.process.wait()
            raise
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
        hold: open file descriptors each worker keeps open for its life, unused: the run folder's owner lock
            (:meth:`tuning.lock.OwnerLock.fileno`), so that the folder stays locked while any worker lives.
    """

    def __init__(self, data, *, prestart=True, hold=None):
        self.spec = data_spec(data)
        self.prestart = prestart
        self.hold = () if hold is None else (hold,)
        self._spare = None

    def run(self, function, **kwargs):
        """The function's result; its exception re-raised; :class:`WorkerDied` if the process died running
        it. A worker that dies before starting it (a spare killed while it waited) is replaced by a fresh
        one; :class:`WorkersCannotStart` after :data:`STARTS` such deaths in a row."""
        for _ in range(STARTS):
            worker, self._spare = self._spare or _Worker(self.spec, self.hold), None
            try:
                worker.send(function, kwargs)
            except (BrokenPipeError, EOFError, OSError):  # it died while waiting for its task
                worker.stop()
                last = _NotStarted(worker.process.returncode)
                continue
            if self.prestart:
                self._spare = _Worker(self.spec, self.hold)  # starts while this trial runs
            try:
                return worker.result()
            except _NotStarted as e:
                last = e
        raise WorkersCannotStart(last)

    def close(self):
        if self._spare is not None:
            self._spare.stop()
            self._spare = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
