"""The calls tests/test_isolation.py sends to worker processes, in a module that imports no framework: a worker
unpickles a call by importing its module, and the test module's Keras would add seconds to every worker's start."""

import os
import signal
import time

HELD = []


def double(data, *, value):
    return {"value": 2 * value, "examples": int(data.num_examples["train"]), "pid": os.getpid()}


def fail(data):
    raise ValueError("bad trial argument")


def grow(data, *, mb):
    HELD.append(bytearray(mb * 2**20))  # kept: this worker's memory grows
    return os.getpid()


def span(data, *, seconds):
    begun = time.time()
    time.sleep(seconds)
    return os.getpid(), begun, time.time()


def die(data):
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_for(data, *, seconds):
    time.sleep(seconds)
