"""Trials in their own processes: a crash by signal is one failed record, and the search goes on."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import keras
import pytest

import tuning
import zoo.data
from tuning import isolation
from tuning.isolation import WorkerDied, WorkerPool, check_picklable, data_spec
from tuning.lock import LOCK_FILE, OwnerLock, RunFolderInUse
from zoo.training import TrainingConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from isolation_tasks import die, double, fail, grow, sleep_for, span  # noqa: E402

DATA = {"name": "moons", "num_samples": 200}


def crashing_build(hp):
    """A model, unless the trial asks its worker process to die by a signal (never in the caller's process:
    KerasTuner declares the space with the default, "none")."""
    how = hp.Choice("crash", ["none", "SIGSEGV"])
    if how != "none":
        os.kill(os.getpid(), getattr(signal, how))
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(inputs)))


def test_a_trial_killed_by_a_signal_is_a_failed_record_naming_it_and_the_search_completes(tmp_path, capsys):
    data = zoo.data.load(**DATA)
    options = tuning.RunOptions(report=False, measure_speed=False, isolation="process", save_models=None)
    result = tuning.search(crashing_build, data=data, directory=tmp_path, algorithm="grid", budget=None,
                           training=TrainingConfig(epochs=1), options=options)
    by_crash = {r["hyperparameters"]["crash"]: r for r in result.records}
    assert set(by_crash) == {"none", "SIGSEGV"}
    assert by_crash["none"]["status"] == "completed" and by_crash["none"]["val_accuracy"] > 0
    record = by_crash["SIGSEGV"]
    assert record["status"] == "failed" and record["exit_signal"] == "SIGSEGV" and record["exit_code"] == -11
    assert "killed by SIGSEGV (signal 11)" in record["error"]
    assert result.best_record["hyperparameters"]["crash"] == "none"
    assert "killed by SIGSEGV" in capsys.readouterr().out  # the trial's progress line says so


def test_worker_pool_runs_calls_in_another_process_reuses_it_and_passes_errors_back():
    with WorkerPool(zoo.data.load(**DATA)) as pool:
        first = pool.run(double, value=3)
        with pytest.raises(ValueError, match="bad trial argument"):
            pool.run(fail)
        second = pool.run(double, value=4)
    assert first["value"] == 6 and first["examples"] > 0 and first["pid"] != os.getpid()
    assert second["value"] == 8 and second["pid"] == first["pid"]  # one start-up for every call


@pytest.mark.heavy
def test_a_worker_is_replaced_after_max_tasks_calls_or_when_its_memory_grew_past_the_bound():
    # one pool, three workers (each start is seconds of imports): the first grows past the bound, the second
    # serves its max_tasks calls
    with WorkerPool(zoo.data.load(**DATA), max_tasks=3, max_growth_mb=20) as pool:
        pids = [pool.run(grow, mb=5), pool.run(grow, mb=40)]  # grown by 40 MB after its first call: replaced
        pids += [pool.run(double, value=1)["pid"] for _ in range(4)]  # max_tasks=3 calls, then replaced
    assert pids[0] == pids[1] != pids[2] == pids[3] == pids[4] != pids[5] != pids[0]


@pytest.mark.heavy
def test_a_pool_of_two_runs_two_calls_at_a_time_and_a_death_costs_only_its_call():
    with WorkerPool(zoo.data.load(**DATA), size=2) as pool:
        pool.submit(span, key="a", seconds=2)
        pool.submit(span, key="b", seconds=2)
        pool.submit(die, key="dies")
        pool.submit(double, key="after", value=7)
        answers = {key: (ok, value) for key, ok, value in pool.completed()}
    (pid_a, begun_a, end_a), (pid_b, begun_b, end_b) = answers["a"][1], answers["b"][1]
    assert pid_a != pid_b and begun_a < end_b and begun_b < end_a  # their calls overlapped
    ok, error = answers["dies"]
    assert not ok and isinstance(error, WorkerDied) and error.signal_name == "SIGKILL"
    assert answers["after"] == (True, answers["after"][1]) and answers["after"][1]["value"] == 14


def test_each_worker_gets_its_own_gpus_and_workers_sharing_one_allocate_as_they_go(monkeypatch):
    monkeypatch.setattr(isolation, "gpu_ids", lambda: [])
    assert isolation._pinned(2) == [{}, {}]  # a CPU: the default thread pools, the records of one at a time
    monkeypatch.setattr(isolation, "gpu_ids", lambda: ["0", "1", "2", "3"])
    assert isolation._pinned(2) == [{"CUDA_VISIBLE_DEVICES": "0,1"}, {"CUDA_VISIBLE_DEVICES": "2,3"}]
    assert isolation._pinned(1) == [{}]  # one worker: every device, as in process
    monkeypatch.setattr(isolation, "gpu_ids", lambda: ["0"])
    shared = {"CUDA_VISIBLE_DEVICES": "0", "TF_FORCE_GPU_ALLOW_GROWTH": "true",
              "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    assert isolation._pinned(2) == [shared, shared]
    monkeypatch.setattr(isolation, "gpu_ids", lambda: ["0", "1"])
    assert [e["CUDA_VISIBLE_DEVICES"] for e in isolation._pinned(3)] == ["0", "1", "0"]
    assert all(e["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" for e in isolation._pinned(3))


def test_worker_died_names_the_signal():
    assert WorkerDied(-9).signal_name == "SIGKILL" and "out-of-memory killer" in str(WorkerDied(-9))
    assert WorkerDied(-6).signal_name == "SIGABRT" and "killed by SIGABRT (signal 6)" in str(WorkerDied(-6))
    assert WorkerDied(3).signal_name is None and "exited with status 3" in str(WorkerDied(3))


def test_bad_isolation_arguments_fail_before_any_trial(tmp_path):
    data = zoo.data.load(**DATA)
    with pytest.raises(ValueError, match="isolation"):
        tuning.search("mlp", data=data, directory=tmp_path, options=tuning.RunOptions(isolation="thread"))
    with pytest.raises(TypeError, match="callbacks"):
        tuning.search("mlp", data=data, directory=tmp_path, options=tuning.RunOptions(
            isolation="process", callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda *a: None)]))
    with pytest.raises(TypeError, match="models"):
        check_picklable(lambda hp: None, "models")
    with pytest.raises(ValueError, match="zoo.data.load"):
        data_spec(object())
    assert not (tmp_path / "records.jsonl").exists()


# Workers die with their search; a spare's death is nobody's trial; one owner per run folder (issue 29).

def _processes():
    """``{pid: (ppid, session, state, command line)}`` of every process, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended while we looked
            continue
        found[int(entry)] = (int(fields[1]), int(fields[3]), fields[0], command)
    return found


def _files(folder):
    """``{path: (size, mtime_ns)}`` of every file under ``folder``."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            out[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
    return out


WORKER_COMMAND = "from tuning.isolation import _main"


@pytest.mark.heavy
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the parent-death signal is Linux's")
def test_kill_9_of_an_isolated_search_leaves_no_worker_and_no_write_after_it(tmp_path):
    """A search killed by SIGKILL while a trial trains: its workers die with it (none alive 2 s later), and
    nothing in its folder changes after the kill (a resumed run may own the folder by then)."""
    from search_scripts import SCRIPT

    directory = tmp_path / "run"
    config = {"models": "mlp", "data": DATA, "training": {"epochs": 400}, "budget": {"max_trials": 2},
              "options": {"isolation": "process", "checkpoint": True, "report": False, "measure_speed": False,
                          "save_models": "all", "verbose": 0}}
    search = subprocess.Popen([sys.executable, SCRIPT, str(directory), json.dumps(config)],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not any(p.startswith("checkpoints") for p in _files(directory)):  # a trial is training
            assert search.poll() is None and time.monotonic() < deadline, "no trial started training"
            time.sleep(0.05)
        workers = [pid for pid, (ppid, _, _, command) in _processes().items()
                   if ppid == search.pid and WORKER_COMMAND in command]
        os.kill(search.pid, signal.SIGKILL)
        search.wait()
    finally:
        if search.poll() is None:
            os.killpg(search.pid, signal.SIGKILL)
    after_kill = _files(directory)
    time.sleep(2)
    alive = {pid: info for pid, info in _processes().items()
             if info[2] != "Z" and (pid in workers or info[1] == search.pid)}  # a zombie does nothing
    time.sleep(1)
    later = _files(directory)
    for pid in alive:  # leave nothing behind, even when failing
        os.kill(pid, signal.SIGKILL)
    written = sorted(p for p in set(after_kill) | set(later) if after_kill.get(p) != later.get(p))
    assert workers, "the busy worker was not found"
    assert not alive and not written, (f"2 s after the kill, still running: {alive}; "
                                       f"written in the 3 s after it: {written}")
    OwnerLock(directory).acquire().release()  # nothing of it holds the folder: a resume may start


def test_a_worker_killed_between_calls_is_replaced_and_its_death_is_no_calls():
    """A worker that died while it waited for its next call ran nothing: a fresh worker runs the call, and
    no error (hence no failed record) comes of it."""
    with WorkerPool(zoo.data.load(**DATA)) as pool:
        first = pool.run(double, value=1)["pid"]
        pool.workers[0].kill()
        answer = pool.run(double, value=2)
    assert answer["value"] == 4 and answer["pid"] != first


def test_a_worker_killed_after_its_task_was_sent_but_before_it_started_is_replaced():
    """The task sits in the pipe while the worker still imports: killed then, it ran nothing: retried."""
    pool = WorkerPool(zoo.data.load(**DATA))
    worker = pool._start(0)
    killer = threading.Timer(0.3, worker.process.kill)  # still importing (seconds on a busy CPU)
    killer.start()
    try:
        assert pool.run(double, value=5)["value"] == 10
    finally:
        killer.cancel()
        pool.close()


def test_workers_that_all_die_before_starting_stop_the_search_instead_of_failing_its_trials(monkeypatch, tmp_path):
    started = isolation._Worker.__init__

    def dying(self, *args):
        started(self, *args)
        self.process.kill()
        self.process.wait()

    monkeypatch.setattr(isolation._Worker, "__init__", dying)
    with WorkerPool(zoo.data.load(**DATA)) as pool:
        with pytest.raises(isolation.WorkersCannotStart, match="3 worker processes in a row.*SIGKILL"):
            pool.run(double, value=1)
    options = tuning.RunOptions(report=False, measure_speed=False, isolation="process", save_models=None, verbose=0)
    with pytest.raises(isolation.WorkersCannotStart):
        tuning.search("mlp", data=zoo.data.load(**DATA), directory=tmp_path, budget=2,
                      training=TrainingConfig(epochs=1), options=options)
    assert not (tmp_path / "records.jsonl").exists() or not (tmp_path / "records.jsonl").read_text().strip()


def test_a_busy_worker_exits_when_its_task_pipe_closes():
    """The watchdog: EOF on the task pipe (the search is gone) ends a running trial at once."""
    worker = isolation._Worker(data_spec(zoo.data.load(**DATA)))
    worker.send(sleep_for, {"seconds": 60})
    assert worker.conn.recv() == ("started", None)
    begun = time.monotonic()
    worker.tasks.close()
    try:
        assert worker.process.wait(timeout=10) == 1 and time.monotonic() - begun < 10
    finally:
        worker.process.kill()
        worker.conn.close()


def _hold(directory):
    """A process that owns ``directory`` until killed; its pid."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tuning.lock import OwnerLock; "
                               "OwnerLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)",
                               str(directory)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_of_a_folder_whose_owner_lives_is_refused_and_one_whose_owner_died_proceeds(tmp_path, capsys):
    from zoo.cli import main

    directory = tmp_path / "run"
    holder = _hold(directory)
    data = zoo.data.load(**DATA)
    options = tuning.RunOptions(report=False, measure_speed=False, save_models=None, verbose=0)
    try:
        with pytest.raises(RunFolderInUse, match=f"{re.escape(str(directory))} is in use by another run "
                                                 rf"\(pid {holder.pid} on host {re.escape(socket.gethostname())}"):
            tuning.search("mlp", data=data, directory=directory, budget=1, training=TrainingConfig(epochs=1),
                          options=options)
        with pytest.raises(RunFolderInUse, match="in use by another run"):
            tuning.compare(["mlp"], data=data, out=directory, seeds=1, training=TrainingConfig(epochs=1),
                           options=options)
        capsys.readouterr()
        assert main(["tune", "mlp", "--data", "moons", "--directory", str(directory), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("zoo tune: error: ") and f"pid {holder.pid}" in err[0]
        assert not (directory / "records.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    result = tuning.search("mlp", data=data, directory=directory, budget=1, training=TrainingConfig(epochs=1),
                           options=options)  # the owner died: its lock is free, taken over silently
    assert [r["status"] for r in result.records] == ["completed"]
    assert json.loads((directory / LOCK_FILE).read_text())["pid"] == os.getpid()  # the last owner, now free
    OwnerLock(directory).acquire().release()


def test_a_worker_keeps_the_run_folder_locked_until_it_ends(tmp_path):
    """Workers inherit the owner lock: a worker that outlived its search would still keep a new run out."""
    lock = OwnerLock(tmp_path).acquire()
    worker = isolation._Worker(data_spec(zoo.data.load(**DATA)), (lock.fileno(),))
    lock.release()
    try:
        with pytest.raises(RunFolderInUse, match=f"pid {os.getpid()} on host"):
            OwnerLock(tmp_path).acquire()
    finally:
        worker.process.kill()
        worker.process.wait()
        worker.stop()
    OwnerLock(tmp_path).acquire().release()


def test_auto_isolation_takes_long_searches_whose_inputs_can_be_sent_and_says_why_not_otherwise():
    from tuning.searches import api

    data = zoo.data.load(**DATA)
    sendable = api._hypermodel("mlp", data=data, space=tuning.SearchSpace())
    unsendable = api._hypermodel(lambda hp: keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), data=data,
                                 space=tuning.SearchSpace())
    auto = tuning.RunOptions()
    assert auto.isolation == "auto"

    def decide(hypermodel, budget, options=auto):
        chosen, note = api._isolation(options, data=data, hypermodel=hypermodel, budget=tuning.Budget.coerce(budget))
        return chosen.isolation, note

    assert decide(sendable, 20) == ("process", None)
    assert decide(sendable, tuning.Budget(max_trials=None, max_seconds=3600)) == ("process", None)
    assert decide(sendable, tuning.Budget(max_seconds=3600)) == (None, None)  # 10 trials (the default count)
    assert decide(sendable, 19) == (None, None)  # short: a worker's start would not pay
    assert decide(sendable, 40, tuning.RunOptions(isolation=None)) == (None, None)
    mode, note = decide(unsendable, 40)
    assert mode is None and note.startswith("trials run in this process") and "pickle" in note
    with pytest.raises(TypeError, match="models"):
        decide(unsendable, 5, tuning.RunOptions(isolation="process"))  # asked for: refused, not ignored


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow registry")
def test_a_trial_leaves_no_train_graph_behind_in_the_process():
    """Issue 33: TensorFlow registered a graph-mode custom gradient (ReplicaContext.all_reduce) for every traced
    train step and never removed it; its closure held the whole graph, so each trained model stayed in memory
    (4-6 MB a model, without end). A trial releases them; the same fit outside the block shows the leak."""
    import gc

    from tensorflow.python.framework import ops

    from zoo.runtime import released_graphs

    moons = zoo.data.load("moons", num_samples=200, seed=0)

    def graphs():
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, ops.Graph) and getattr(o, "name", "") ==
                   "one_step_on_data")

    def train():
        model = zoo.build("mlp", input_shape=(2,), num_classes=2, hidden_units=(4,))
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(*moons.arrays("train"), epochs=1, batch_size=64, verbose=0)
        keras.backend.clear_session()

    registry = ops._gradient_registry._registry
    names, before = set(registry), graphs()
    with released_graphs():
        train()
        assert any(k.startswith("CustomGradient-") for k in set(registry) - names)  # what the block undoes
    assert set(registry) <= names and graphs() == before
    train()  # outside the block: the graphs stay, held by the registry
    leaked = graphs()
    assert leaked > before and set(registry) - names
    record = tuning.run_trial("mlp", moons, tuning.TrialPlan(training=TrainingConfig(epochs=1), measure_speed=False),
                              trial_id="t")
    assert record["status"] == "completed" and graphs() == leaked  # a trial, inside the block, leaves none
