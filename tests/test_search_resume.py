"""Searches lose nothing: kill -9 and resume, damaged state files, changed searches, distributed workers."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest

import zoo.data
from search_scripts import SCRIPT, run_search
from tuning.records import read_records

DATA = {"name": "moons", "num_samples": 400}
SEARCH = {"models": "mlp", "seed": 3, "training": {"epochs": 1}, "options": {"report": False, "measure_speed": False},
          "space": {"training": {"optimizer": ["adam"], "schedule": ["constant"], "weight_decay": [0.0]}}}


def _config(max_trials, *, verbose=1, precision=None, optimizers=None, overwrite=False, max_seconds=None, data=DATA,
            **rest):
    config = json.loads(json.dumps(SEARCH))
    config["budget"] = {"max_trials": max_trials, "max_seconds": max_seconds}
    config["options"].update(verbose=verbose, resume=not overwrite)
    if precision:
        config["training"]["precision"] = precision
    if optimizers:
        config["space"]["training"]["optimizer"] = optimizers
    return {**config, "data": data, **rest}


def _search(directory, max_trials, **overrides):
    return run_search(directory, _config(max_trials, **overrides))


def _records(directory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a line cut by the kill is reported, and expected here
        return {r["id"]: r for r in read_records(os.path.join(directory, "records.jsonl"))}


def _lines(path):
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def test_kill_9_at_a_random_trial_then_resume_keeps_every_trial(tmp_path):
    directory = tmp_path / "run"
    rng = random.Random()
    wait_for, delay = rng.choice([1, 2]), rng.uniform(0.0, 1.0)
    print(f"killing after {wait_for} record(s) + {delay:.2f} s")  # shown when the test fails
    log = open(tmp_path / "search.log", "wb")  # a file, not a pipe: a full pipe would block the search
    proc = subprocess.Popen([sys.executable, SCRIPT, str(directory), json.dumps(_config(4))],
                            stdout=log, stderr=subprocess.STDOUT)
    records_path = directory / "records.jsonl"
    deadline = time.monotonic() + 240
    while not (records_path.exists() and _lines(records_path) >= wait_for):
        assert proc.poll() is None, (tmp_path / "search.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the search wrote no record in time"
        time.sleep(0.05)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    before = _records(directory)
    assert len(before) >= 1

    result = _search(directory, 4, verbose=0)
    after = {r["id"]: r for r in result.records}
    assert sorted(after) == ["0000", "0001", "0002", "0003"]  # the final count is reached
    for rid, record in before.items():  # completed trials are kept, not re-run
        assert after[rid] == record
    assert len(read_records(records_path)) == 4  # and nothing was recorded twice
    assert any("resumed" in note for note in result.notes)
    # the resumed oracle knows every trial: its ids and values are the records'
    oracle_trials = result.tuner.oracle.trials
    for rid, record in after.items():
        trial = oracle_trials[rid]
        assert trial.status == "COMPLETED" and trial.score == record["val_accuracy"]
        assert {k: trial.hyperparameters.values[k] for k in record["hyperparameters"]} == record["hyperparameters"]


def test_damaged_state_is_rebuilt_and_changed_searches_are_refused(tmp_path, capsys):
    directory = tmp_path / "run"
    first = _search(directory, 2)
    project = directory / "keras_tuner"
    oracle_json = (project / "oracle.json").read_text()
    (project / "oracle.json").write_text(oracle_json[: len(oracle_json) // 2])  # truncated mid-write
    (project / "trial_0000" / "trial.json").write_text("{garbage")
    with open(directory / "records.jsonl", "a") as f:
        f.write('{"id": "7", "model": "ml')  # a record cut short by a crash
    capsys.readouterr()

    second = _search(directory, 3)
    out = capsys.readouterr().out
    assert "oracle.json is unreadable" in out and "trial_0000/trial.json is unreadable" in out
    assert "records.jsonl.partial" in out
    assert [r["id"] for r in second.records] == ["0000", "0001", "0002"]
    assert second.records[:2] == first.records
    assert {r["precision"] for r in second.records} == {"float32"}
    assert len(read_records(directory / "records.jsonl", strict=True)) == 3  # the cut line is gone

    manifest = directory / "run.json"
    good = manifest.read_text()
    manifest.write_text(good[:40])
    with pytest.raises(ValueError, match=r"run\.json is unreadable"):
        _search(directory, 3)
    manifest.write_text(good)

    other_data = {**DATA, "noise": 0.3}
    with pytest.raises(ValueError, match=r"different search: data 'moons' fingerprint"):
        _search(directory, 3, data=other_data)
    with pytest.raises(ValueError, match=r"hyperparameter space changed \['optimizer'\]"):
        _search(directory, 3, optimizers=["adam", "sgd"])
    with pytest.raises(ValueError, match="objective"):
        _search(directory, 3, objectives="val_loss")
    with pytest.raises(ValueError, match="precision"):
        _search(directory, 3, precision="mixed_bfloat16")
    assert len(_records(directory)) == 3  # refusing touched nothing

    fresh = _search(directory, 3, data=other_data, overwrite=True, max_seconds=0)
    assert fresh.records == [] and any("resume=False" in n for n in fresh.notes)
    assert any(n.startswith("stopped by the time budget: max_seconds=0 reached after 0 trial(s) of 3")
               for n in fresh.notes)  # issue 28: a time-budget stop says so
    assert json.loads(manifest.read_text())["data"]["fingerprint"] == zoo.data.load(**other_data).fingerprint
    backups = [p for p in os.listdir(directory) if p.startswith("records.jsonl.") and p.endswith(".bak")]
    assert len(backups) == 1 and len(read_records(directory / backups[0])) == 3


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MULTI = {"algorithm": "nsga2", "objectives": [["val_accuracy", "max"], ["params", "min"]],
         "algorithm_settings": {"population_size": 2}}


# nsga2's worker path is covered fast by test_nsga2.py::test_a_worker_reports_every_objective_through_its_client,
# the random one by test_workers.py (a chief and two workers through workers=2, the variables set the same way)
@pytest.mark.parametrize("algorithm", [pytest.param("random", marks=pytest.mark.slow),
                                       pytest.param("nsga2", marks=pytest.mark.slow)])
def test_distributed_chief_and_two_workers_record_every_trial(tmp_path, monkeypatch, algorithm):
    """A chief (in this process) and two worker processes on 127.0.0.1 share one records.jsonl; the NSGA-II
    oracle serves its generations to the workers the same way."""
    directory = tmp_path / "run"
    port = str(_free_port())
    extra = MULTI if algorithm == "nsga2" else {}
    config = _config(4, verbose=0, **extra)
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen([sys.executable, SCRIPT, str(directory), json.dumps(config)],
                         env={**env, "KERASTUNER_TUNER_ID": f"tuner{i}"}, stdout=open(logs[i], "wb"),
                         stderr=subprocess.STDOUT)
        for i in range(2)
    ]
    try:
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", port)
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
        box = {}
        chief = threading.Thread(target=lambda: box.setdefault("result", _search(directory, 4, **extra)),
                                 daemon=True)  # a hung chief must not keep pytest alive
        chief.start()
        chief.join(timeout=300)
        assert not chief.is_alive(), "the chief did not finish"
        for w in workers:
            w.wait(timeout=120)
        outputs = [log.read_text() for log in logs]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert all(w.returncode == 0 for w in workers), outputs
    assert all("DONE" in out for out in outputs)
    records = read_records(directory / "records.jsonl", strict=True)
    assert sorted(r["id"] for r in records) == ["0000", "0001", "0002", "0003"]
    assert all(r["status"] == "completed" for r in records)
    assert {r["tuner_id"] for r in records} <= {"tuner0", "tuner1"}
    result = box["result"]
    assert [r["id"] for r in result.records] == ["0000", "0001", "0002", "0003"] and result.best is not None


def test_damaged_records_are_moved_aside_and_their_trials_run_again(tmp_path):
    # Non-UTF-8 bytes, a record without a status, and a record whose hyperparameters are a list.
    directory = str(tmp_path / "s")
    _search(directory, 3)
    path = os.path.join(directory, "records.jsonl")
    lines = open(path, "rb").read().splitlines()
    damaged = json.loads(lines[1])
    damaged["hyperparameters"] = list(damaged["hyperparameters"].items())
    lines[1] = json.dumps(damaged).encode()
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n" + b'{"id": "7"}\n' + b"\xff\xfe garbage\n")
    with pytest.warns(UserWarning, match=r"records.jsonl: set aside 3 damaged line\(s\)"):
        assert len(read_records(path)) == 2  # reading alone never fails, and keeps the others
    result = _search(directory, 3)
    ids = [r["id"] for r in result.records]
    assert len(ids) == 3 and len(set(ids)) == 3 and all(r["status"] == "completed" for r in result.records)
    assert damaged["id"] in ids  # its trial ran again
    rejects = [json.loads(line) for line in open(os.path.join(directory, "records.rejected.jsonl"))]
    assert [r["line"] for r in rejects] == [2, 4, 5]
    assert "hyperparameters" in rejects[0]["reason"] and "status" in rejects[1]["reason"]
    assert "not UTF-8" in rejects[2]["reason"] and rejects[2]["raw"].startswith("\\xff\\xfe")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file is clean again
        assert len(read_records(path)) == 3
