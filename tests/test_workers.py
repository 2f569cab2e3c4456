"""workers=N (zoo tune --workers N): a chief and N local worker processes through KerasTuner's distributed mode;
a worker killed mid-trial is started again and gets its trial back (tuning.searches.workers)."""

import os
import re

import pytest

import tuning
import zoo.data
from search_scripts import kill_once
from tuning.records import read_records
from tuning.searches import workers as workers_module
from zoo.training import TrainingConfig


@pytest.mark.heavy
def test_two_workers_record_every_trial_once_though_one_is_killed_mid_trial(tmp_path, capsys):
    directory = tmp_path / "run"
    marker = tmp_path / "killed"
    result = tuning.search("mlp", data=zoo.data.load("moons"), training=TrainingConfig(epochs=2), budget=4,
                           space=tuning.SearchSpace(tiny=True), directory=str(directory),
                           options=tuning.RunOptions(workers=2, callbacks=(kill_once(str(marker)),), report=False,
                                                     measure_speed=False, save_models=None))
    assert marker.exists()  # a worker did die, by SIGKILL, in its first epoch
    out = capsys.readouterr().out
    assert "killed by SIGKILL: started again" in out
    records = read_records(directory / "records.jsonl", strict=True)
    assert sorted(r["id"] for r in records) == ["0000", "0001", "0002", "0003"]  # each trial once
    assert all(r["status"] == "completed" for r in records)
    assert {r["tuner_id"] for r in records} <= {"worker0", "worker1"}
    resumed = [r for r in records if r.get("resumed_from_epoch")]
    assert len(resumed) == 1 and resumed[0]["resumed_from_epoch"] == 1  # the restarted worker's trial, from its
    assert len(result.records) == 4 and result.workers == 2               # checkpoint


def test_workers_need_data_by_name_and_picklable_settings(tmp_path):
    import dataclasses

    data = zoo.data.load("moons")
    in_memory = dataclasses.replace(data, source=None)  # a bundle no worker could load again by name
    with pytest.raises(ValueError, match=r"workers=2 loads the data again"):
        tuning.search("mlp", data=in_memory, budget=2, directory=str(tmp_path / "a"),
                      options=tuning.RunOptions(workers=2))
    with pytest.raises(TypeError, match=r"workers=2 sends `models`"):
        tuning.search(lambda hp: None, data=data, budget=2, directory=str(tmp_path / "b"),
                      options=tuning.RunOptions(workers=2))
    with pytest.raises(ValueError, match="workers"):
        tuning.RunOptions(workers=0)
    with pytest.raises(ValueError, match=r"workers=2 loads the data again"):
        tuning.compare(["mlp"], data=in_memory, out=str(tmp_path / "c"), options=tuning.RunOptions(workers=2))
    with pytest.raises(TypeError, match=r"workers=2 sends `callbacks`"):
        tuning.compare(["mlp"], data=data, out=str(tmp_path / "d"), options=tuning.RunOptions(
            workers=2, callbacks=[__import__("keras").callbacks.LambdaCallback(on_epoch_end=lambda *a: None)]))
    for folder in "abcd":
        assert not os.path.exists(tmp_path / folder)


# What depends only on the seed, the data and the settings: everything but times and the speed's source.
SAME = ("id", "status", "model", "seed", "history", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "params",
        "macs", "best_epoch", "confusion_matrix", "training", "data")


@pytest.mark.heavy
def test_a_comparison_with_two_workers_records_what_one_at_a_time_records(tmp_path, capfd, monkeypatch):
    import tuning.comparison
    from zoo.cli import main

    command = ["compare", "mlp", "--data", "moons", "--epochs", "2", "--seeds", "2", "--save-models", "none",
               "--model-arg", "mlp:hidden_units=[16]"]
    assert main([*command, "--quiet", "--out", str(tmp_path / "one")]) == 0
    capfd.readouterr()
    builds, builder = [], tuning.comparison._builder  # the models this process builds
    monkeypatch.setattr(tuning.comparison, "_builder", lambda name, data, kwargs: lambda: (
        builds.append(name), builder(name, data, kwargs)())[1])
    assert main([*command, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    assert builds == ["mlp"]  # the builder-argument check's model is the one whose speed is timed
    printed = capfd.readouterr().out  # the workers' lines too: they write to this process' terminal
    assert "2 at a time, in worker processes" in printed
    # each epoch's line names its trial, instead of Keras' lines of two trials interleaved
    for seed, epoch in ((0, 1), (0, 2), (1, 1), (1, 2)):
        assert re.search(rf"^mlp seed={seed}: epoch {epoch}/2, [0-9.]+ s, .*val_accuracy 0\.\d{{4}}", printed, re.M)
    assert "Epoch 1/2" not in printed
    # trials end in any order: their lines count the trials done instead of numbering them by their place
    assert re.findall(r"^\[(\d)/2 done\] mlp seed=[01]: val_accuracy", printed, re.M) == ["1", "2"]
    one, two = (read_records(tmp_path / run / "records.jsonl", strict=True) for run in ("one", "two"))
    assert sorted(r["id"] for r in two) == sorted(r["id"] for r in one)
    by_id = {r["id"]: r for r in two}
    for record in one:
        assert {k: record.get(k) for k in SAME} == {k: by_id[record["id"]].get(k) for k in SAME}
    latencies = {r["latency_ms"] for r in two}
    assert len(latencies) == 1 and latencies.pop() > 0 and all(r["speed_timed_alone"] for r in two)


def test_a_pool_gets_the_slowest_models_first_and_keeps_the_order_of_untimed_ones():
    from types import SimpleNamespace

    from tuning.comparison import _longest_first

    jobs = [SimpleNamespace(name=n, seed=s) for n, s in (("mlp", 0), ("densenet", 0), ("lenet5", 0), ("densenet", 1),
                                                         ("vgg", 0), ("odd", 0))]
    speeds = {"mlp": {"throughput": 38596.0}, "densenet": {"throughput": 1675.0}, "lenet5": {"throughput": 16930.0},
              "vgg": {"throughput": 6117.0}, "odd": None}  # odd: its speed could not be timed
    assert [(j.name, j.seed) for j in _longest_first(jobs, speeds)] == [
        ("densenet", 0), ("densenet", 1), ("vgg", 0), ("lenet5", 0), ("mlp", 0), ("odd", 0)]
    assert _longest_first(jobs, {}) == jobs


def test_the_cli_passes_workers_and_sets_kerastuner_variables(monkeypatch):
    from zoo.cli import main

    seen = {}

    def fake_search(models, **kw):
        seen.update(kw, env={k: os.environ.get(k) for k in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP",
                                                             "KERASTUNER_ORACLE_PORT")})
        raise SystemExit(0)

    monkeypatch.setattr(tuning, "search", fake_search)
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "SLURM_PROCID"):
        # set, then deleted: monkeypatch records the value before the test (a delenv of an absent variable
        # records nothing, and a later delenv would record the value the CLI set: a chief's id left behind
        # made the next search in this process wait as a chief for workers)
        monkeypatch.setenv(key, "unset")
        monkeypatch.delenv(key)
    with pytest.raises(SystemExit):
        main(["tune", "mlp", "--data", "moons", "--max-trials", "4", "--epochs", "1", "--workers", "2"])
    assert seen["options"].workers == 2 and seen["env"]["KERASTUNER_TUNER_ID"] is None
    monkeypatch.setenv("SLURM_PROCID", "3")
    with pytest.raises(SystemExit):
        main(["tune", "mlp", "--data", "moons", "--worker", "node01:8000"])
    assert seen["env"] == {"KERASTUNER_TUNER_ID": f"worker-{__import__('socket').gethostname()}-3",
                           "KERASTUNER_ORACLE_IP": "node01", "KERASTUNER_ORACLE_PORT": "8000"}
    with pytest.raises(SystemExit):
        main(["tune", "mlp", "--data", "moons", "--chief", "0.0.0.0:8000"])
    assert seen["env"]["KERASTUNER_TUNER_ID"] == "chief"
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert main(["tune", "mlp", "--data", "moons", "--chief", "nohost"]) == 2  # HOST:PORT refused, exit 2
    with pytest.raises(SystemExit):  # argparse: one of --workers, --chief, --worker
        main(["tune", "mlp", "--workers", "2", "--chief", "h:1"])


def test_worker_addresses_and_exit_reasons_are_named():
    assert workers_module._why(-9) == "killed by SIGKILL" and workers_module._why(1) == "exited with status 1"
    with pytest.raises(ValueError, match="--worker takes HOST:PORT"):
        workers_module.worker_environment("node01")
    with pytest.raises(ValueError, match="chief"):
        workers_module.worker_environment("h:1", "chief")
    assert workers_module.chief_environment("node01:8000")["KERASTUNER_ORACLE_PORT"] == "8000"
