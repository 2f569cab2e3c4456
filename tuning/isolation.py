"""Trials in their own processes: a leak, an out-of-memory kill or a native crash costs one trial, not the run.

A :class:`WorkerPool` keeps ``size`` worker processes, each a new interpreter (never a ``fork``: TensorFlow's
threads do not survive it; and not ``multiprocessing``'s spawn either, which runs the caller's ``__main__``
again). A worker imports the package once, loads the data once from the bundle's name and options (checked
against its fingerprint), then serves calls one after another: its start-up is paid once, not per trial. A
worker that has served :data:`MAX_TASKS` calls, or whose memory has grown by more than :data:`MAX_GROWTH_MB`
since its first call ended, is replaced by a fresh one, so whatever trials leave in memory does not pile up.
With ``size`` > 1 the calls run that many at a time, each worker pinned to its own share of the GPUs when
there are some (``CUDA_VISIBLE_DEVICES``); comparisons (``workers=N``) and searches (``isolation="process"``,
and the local workers of ``workers=N``, :mod:`tuning.searches.workers`) use this one pool.

A worker that dies while it runs a trial - killed by a signal (the kernel's
out-of-memory killer sends SIGKILL, a segfault is SIGSEGV, an abort SIGABRT)
or exiting early - raises :class:`WorkerDied`, which names the signal; the
search records the trial as failed and goes on. A worker tells the search
when it starts a trial: one that dies before that (killed while it started
or waited) ran nothing, and the trial goes to a fresh worker instead; only when
:data:`STARTS` workers in a row die so does :class:`WorkersCannotStart` end
the run.

Workers die with their search: the kernel kills a worker when the process
that started it ends (Linux' parent-death signal, armed first thing in the
worker), and a thread in each busy worker exits it the moment its task pipe
closes (the search ended or was killed) - so a ``kill -9`` of the search
leaves no trial writing checkpoints or models into a folder that a resumed
run may already own (:mod:`tuning.lock`).
"""

from __future__ import annotations

import collections
import gc
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait

from zoo.runtime import QUIET_ENV, frozen_heap, quiet_framework_start

__all__ = ["MAX_GROWTH_MB", "MAX_TASKS", "STARTS", "WorkerDied", "WorkerPool", "WorkersCannotStart", "check_picklable",
           "data_spec", "gpu_ids"]

_POLL = 0.2  # seconds between checks that a busy worker is alive
STARTS = 3  # workers tried in a row when each dies before starting its call
MAX_TASKS = 200  # calls a worker serves before it is replaced (a trial grows a process by about 0.1 MB now)
MAX_GROWTH_MB = 1024  # growth of a worker's resident memory after its first call before it is replaced
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
    its workers (a run's, or a search's supervisor thread).
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the task pipe's watchdog (_watch) still ends the worker
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed: nobody would take the answer
        os._exit(1)


def _watch(task_fd, busy):
    """EOF on the task pipe while a call runs: the run ended or was killed; exit before another write.

    The pipe's hang-up (every writer closed) is the signal, not its readability: a next call that arrived
    just before the main thread read it and set ``busy`` is data, never a hang-up. ``busy`` is cleared just
    before the answer goes out.
    """
    poller = select.poll()
    poller.register(task_fd, select.POLLHUP)
    while True:
        events = poller.poll(1000)
        if any(flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, flags in events):
            if busy.is_set():
                os._exit(1)
            time.sleep(_POLL)  # idle: the main thread reads the EOF and ends the worker
        elif events:
            time.sleep(_POLL)  # the next call is the main thread's to read


def _resident_mb():
    """This process' resident memory in MB (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _main(parent, task_fd, answer_fd):
    """A worker's life: load the data, then serve calls (say it started, run, answer) until the pipe closes."""
    _die_with_parent(parent)
    if os.environ.get(QUIET_ENV):  # started by a quiet `zoo` command: no start-up lines per worker either
        quiet_framework_start()
    tasks, answers = Connection(task_fd, writable=False), Connection(answer_fd, readable=False)
    try:
        spec = tasks.recv()
        data, error = _load(spec), None
    except (EOFError, OSError):
        return
    except Exception as e:  # noqa: BLE001 - sent back with each call's answer
        data, error = None, e
    busy = threading.Event()
    threading.Thread(target=_watch, args=(task_fd, busy), daemon=True).start()
    with frozen_heap():  # each call's clear_session collects that call's objects only
        _serve(tasks, answers, busy, data, error)
    # the run ended: nothing is left to write but the output buffers, so skip the interpreter's tear-down
    # (a second a worker with TensorFlow loaded, paid while the run waits)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def _serve(tasks, answers, busy, data, error):
    """Serve calls until the pipe closes; after each, what it left alive (the framework its first call
    imported, caches) joins the frozen heap, so the next call's collections walk that call's objects only."""
    while True:
        try:
            function, kwargs = tasks.recv()
        except (EOFError, OSError):  # the run ended (or died): nothing more to do
            return
        busy.set()
        answers.send(("started", None))  # from here on, a death is this call's
        try:
            if error is not None:
                raise error
            answer = ("ok", function(data, **kwargs))
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the run
            answer = ("error", e)
        busy.clear()
        gc.freeze()
        try:
            answers.send((*answer, _resident_mb()))
        except Exception as e:  # noqa: BLE001 - an exception that does not pickle goes back as text
            answers.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} ({e})"), _resident_mb()))


class _Worker:
    """A fresh interpreter (``python -c``, so the caller's ``__main__`` is never run again) that talks over
    two pipes of its own: the trial's prints and progress bars keep the caller's stdout and stderr."""

    def __init__(self, spec, hold=(), env=None):
        task_read, task_write = os.pipe()
        answer_read, answer_write = os.pipe()
        env = {**os.environ, **(env or {})}
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
        self.served, self.first_mb, self.resident_mb, self.started = 0, None, None, False

    @property
    def exitcode(self):
        return self.process.poll()

    def send(self, function, kwargs):
        self.started = False
        self.tasks.send((function, kwargs))

    def receive(self):
        """The next message: ``None`` for "started", else ``(ok, value)``; :class:`WorkerDied` if the worker
        died in the call, ``_NotStarted`` before it. Called when :attr:`conn` is readable."""
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            raise (WorkerDied if self.started else _NotStarted)(self.process.wait()) from None
        if message[0] == "started":
            self.started = True
            return None
        status, value, self.resident_mb = message
        self.served += 1
        if self.first_mb is None:
            self.first_mb = self.resident_mb
        return status == "ok", value

    def worn(self, max_tasks, max_growth_mb):
        """Whether this worker has served its share of calls or grown too much since its first one."""
        return self.served >= max_tasks or (self.resident_mb or 0) - (self.first_mb or 0) > max_growth_mb

    def kill(self):
        self.process.kill()
        self.process.wait()

    def stop(self, wait=True):
        """Close the pipes: a waiting worker sees EOF and exits; a busy one's watchdog exits it. ``wait``: until
        it has (2 s at most: one still starting, in its imports, has nothing to finish and is killed)."""
        self.tasks.close()
        self.conn.close()
        if wait:
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.kill()


def gpu_ids():
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


def _pinned(size):
    """Each slot's environment: its own share of the GPUs (round robin when there are fewer GPUs than slots, each
    then allocating GPU memory as it goes).

    Without GPUs the workers share the CPU with the framework's default thread pools: TensorFlow splits its sums
    by the pool's size, so a smaller pool per worker would change the trained weights in the last bits (a
    resnet20 on digits: its loss after one epoch 1.18538 against 1.18518), and records would no longer equal
    one-at-a-time training's.
    """
    gpus = gpu_ids() if size > 1 else []
    if not gpus:
        return [{} for _ in range(size)]
    share = max(1, len(gpus) // size)
    # Workers sharing a GPU take its memory as they need it: by default TensorFlow's first worker would take
    # nearly all of it at start, and JAX's 75%, leaving the others none.
    shared = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"} if size > len(gpus) else {}
    return [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[(i * share + j) % len(gpus)] for j in range(share)), **shared}
            for i in range(size)]


class WorkerPool:
    """Runs ``function(data, **kwargs)`` calls in ``size`` reused worker processes (see the module docstring).

    Args:
        data: the bundle each worker loads once (:func:`data_spec`).
        size: calls run at a time, each in its own worker.
        max_tasks: calls a worker serves before a fresh one replaces it.
        max_growth_mb: growth of a worker's memory after its first call before a fresh one replaces it.
        hold: an open file descriptor each worker keeps open for its life, unused: the run folder's owner lock
            (:meth:`tuning.lock.OwnerLock.fileno`), so that the folder stays locked while any worker lives.

    Example:
        >>> with WorkerPool(data, size=2) as pool:
        ...     for x in (1, 2, 3):
        ...         pool.submit(train, key=x, width=x)
        ...     for key, ok, value in pool.completed():
        ...         print(key, value if ok else f"failed: {value}")
    """

    def __init__(self, data, *, size=1, max_tasks=MAX_TASKS, max_growth_mb=MAX_GROWTH_MB, hold=None):
        self.spec = data_spec(data)
        self.size, self.max_tasks, self.max_growth_mb = size, max_tasks, max_growth_mb
        self.hold = () if hold is None else (hold,)
        self.environments = _pinned(size)
        self.workers = [None] * size
        self._queue = collections.deque()

    def _start(self, slot):
        self.workers[slot] = _Worker(self.spec, self.hold, self.environments[slot])
        return self.workers[slot]

    def _drop(self, slot):
        worker, self.workers[slot] = self.workers[slot], None
        if worker is not None:
            worker.stop()

    def submit(self, function, key=None, **kwargs):
        """Queue ``function(data, **kwargs)``; :meth:`completed` runs it and yields its ``key`` with the answer."""
        self._queue.append((key, function, kwargs))

    def completed(self):
        """Run the queued calls, ``size`` at a time, yielding ``(key, ok, value)`` as each ends: ``ok`` with its
        result, else its exception (:class:`WorkerDied` when its worker died in it). Calls submitted while
        iterating are run too. A worker that dies before starting a call is replaced and the call given to the
        next one; :class:`WorkersCannotStart` after :data:`STARTS` such deaths in a row."""
        running, deaths = {}, []
        try:
            while self._queue or running:
                for slot in range(self.size):
                    if slot in running or not self._queue:
                        continue
                    key, function, kwargs = task = self._queue.popleft()
                    worker = self.workers[slot] or self._start(slot)
                    try:
                        worker.send(function, kwargs)
                    except (BrokenPipeError, EOFError, OSError):  # it died while it started or waited
                        self._drop(slot)
                        deaths.append(_NotStarted(worker.process.returncode))
                        self._queue.appendleft(task)
                        if len(deaths) >= STARTS:
                            raise WorkersCannotStart(deaths[-1]) from None
                        continue
                    running[slot] = task
                ready = wait([self.workers[slot].conn for slot in running], timeout=_POLL)
                for slot in [s for s in running if self.workers[s].conn in ready]:
                    worker = self.workers[slot]
                    try:
                        answer = worker.receive()
                    except _NotStarted as e:  # ran nothing: the call goes to a fresh worker
                        self._drop(slot)
                        self._queue.appendleft(running.pop(slot))
                        deaths.append(e)
                        if len(deaths) >= STARTS:
                            raise WorkersCannotStart(e) from None
                        continue
                    except WorkerDied as e:
                        self._drop(slot)
                        yield running.pop(slot)[0], False, e
                        continue
                    deaths.clear()  # a worker started its call: the environment is fine
                    if answer is None:
                        continue
                    key = running.pop(slot)[0]
                    if worker.worn(self.max_tasks, self.max_growth_mb):  # replaced when the slot's next call comes
                        self._drop(slot)
                    yield (key, *answer)
        finally:
            for slot in running:  # interrupted (Ctrl-C, an error, the caller stopped): those calls end now
                if self.workers[slot] is not None:
                    self.workers[slot].kill()
                    self._drop(slot)

    def run(self, function, **kwargs):
        """One call's result (blocking); its exception re-raised; :class:`WorkerDied` if its worker died in it."""
        if self._queue:
            raise RuntimeError("WorkerPool.run() with calls still queued: iterate completed() first")
        self.submit(function, **kwargs)
        for _, ok, value in self.completed():
            if not ok:
                raise value
            return value

    def kill(self):
        """End every worker now (another thread may still iterate :meth:`completed`: its calls die)."""
        for worker in list(self.workers):
            if worker is not None and worker.process.poll() is None:
                worker.process.kill()

    def close(self):
        """End every worker: all are told first, then waited for, so that they exit side by side."""
        self._queue.clear()
        workers = [w for w in self.workers if w is not None]
        for worker in workers:
            worker.stop(wait=False)
        for slot in range(self.size):
            self._drop(slot)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
