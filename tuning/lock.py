"""One owner per run folder: a second run of the same folder is refused while the first one lives.

A search or comparison holds ``<folder>/.owner.lock`` for its whole life: an
``fcntl.flock`` on an open file, so the kernel lets go of it the moment the
owner's process ends, however it ends (``kill -9`` included), and a stale lock
needs no clean-up: the next run takes it over silently. The file also holds
who owns it (host, pid, the process's start time, its command line), which the
refusal names. The owner's own worker processes (``isolation="process"``)
write under its lock and die with it (:mod:`tuning.isolation`); KerasTuner's
remote workers of a chief/worker search do not take it: the chief holds it.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
import time
import warnings

try:
    import fcntl
except ImportError:  # not on Windows: runs are not locked there
    fcntl = None

__all__ = ["LOCK_FILE", "OwnerLock", "RunFolderInUse", "hold_run_folder"]

LOCK_FILE = ".owner.lock"


class RunFolderInUse(ValueError):
    """Another live process runs in this folder (``owner``: what its lock file says: host, pid, started)."""

    def __init__(self, directory, owner):
        self.directory, self.owner = directory, owner
        who = f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}"
        if owner.get("started"):
            who += f", started {owner['started']}"
        if owner.get("command"):
            who += f": {owner['command']}"
        if owner.get("host") == socket.gethostname() and not _alive(owner.get("pid")):
            who += "; it has ended, and its worker processes are ending: try again in a moment"
        super().__init__(f"{directory} is in use by another run ({who}). Wait for it to end or stop it, or use "
                         f"another folder: two runs in one folder would mix their records and files.")


def process_started(pid=None) -> str:
    """When process ``pid`` (default: this one) started, ISO 8601 in UTC (Linux: from ``/proc``; else now)."""
    pid = os.getpid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: start time after boot, in ticks
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        seconds = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        seconds = time.time()
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")


class OwnerLock:
    """The lock on one run folder; :meth:`acquire` takes it or raises :class:`RunFolderInUse`."""

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, LOCK_FILE)
        self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def fileno(self):
        """The locked descriptor (``None`` when not held): a worker process that inherits it keeps the folder
        locked until it ends too (:class:`tuning.isolation.WorkerPool`'s ``hold``)."""
        return self._fd

    def acquire(self):
        if fcntl is None or self._fd is not None:
            return self
        os.makedirs(self.directory, exist_ok=True)
        # Never unlinked: a run that opened the old file while another removed it could lock a file nobody sees.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by worker processes (PEP 446)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise RunFolderInUse(self.directory, owner) from None
        except OSError as e:  # a file system without locks (some network mounts): run, unguarded
            os.close(fd)
            warnings.warn(f"{self.path}: the run folder cannot be locked ({e}); nothing stops a second run of it",
                          stacklevel=3)
            return self
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": process_started(),
                 "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # frees the flock, unless a worker process still holds the descriptor (fileno)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, TypeError, ValueError):  # another user's process, or no pid
        return True
    return True


def _read_owner(fd) -> dict:
    for _ in range(20):  # the owner writes its name right after locking: a moment's wait
        try:
            text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            if text:
                return json.loads(text)
        except (OSError, ValueError, RecursionError):  # a damaged lock file names no owner
            pass
        time.sleep(0.05)
    return {}


def hold_run_folder(directory, *, role="single"):
    """The owner lock of ``directory`` for a run's life (a ``with`` block); none for a KerasTuner worker
    (``role="worker"``), which runs under its chief's lock, possibly on another host."""
    return OwnerLock(directory) if role != "worker" else _NoLock()


class _NoLock:
    held = False

    def fileno(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass
