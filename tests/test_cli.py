"""The `zoo` command line: --help of every command, one clear line and a non-zero exit on bad input."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from zoo.cli import build_parser, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


def test_every_expected_command_is_there():
    assert {"list", "info", "profile", "compare", "report", "tune", "demo"} <= set(_commands())


@pytest.mark.parametrize("command", [None, *_commands()])
def test_help(command, capsys):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: zoo") and len(out.splitlines()) > 3


def _error_line(capsys, argv, code=2):
    assert main(argv) == code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"zoo {argv[0]}: ")
    return lines[0]


def test_unknown_model_name(capsys):
    line = _error_line(capsys, ["info", "resnet2O"])
    assert "Unknown model name" in line and "resnet20" in line
    assert "Did you mean: resnet20" in _error_line(capsys, ["compare", "resnt20", "--epochs", "1"])


def test_unknown_dataset(capsys):
    line = _error_line(capsys, ["compare", "mlp", "--data", "digitz"])
    assert "Unknown dataset name" in line and "digits" in line


def test_incompatible_or_bad_arguments(capsys):
    assert "takes images" in _error_line(capsys, ["compare", "lenet5", "--data", "moons"])
    assert "NAME:KEY=VALUE" in _error_line(capsys, ["compare", "mlp", "--model-arg", "width=2"])
    assert "`epochs` must be >= 1" in _error_line(capsys, ["compare", "mlp", "--epochs", "0"])
    assert "No registered model matches" in _error_line(capsys, ["list", "nothing*"])


def test_report_without_records(capsys, tmp_path):
    assert "No records.jsonl" in _error_line(capsys, ["report", str(tmp_path)])


def test_argparse_errors_exit_2(capsys):
    for argv in (["compare"], ["frobnicate"], ["compare", "mlp", "--seeds", "x"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert "error:" in capsys.readouterr().err


def test_list_and_info(capsys):
    assert main(["list", "resnet2*"]) == 0
    header, first = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[:4] == ["name", "family", "input", "parameters"]
    assert first.split()[0] == "resnet20" and "269,722" in first.split()  # He et al.'s 0.27M
    assert main(["info", "lenet5"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "lenet" and info["params"] == 61_706


def test_entry_point_help_in_a_fresh_process():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "zoo.cli", "--help"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "compare" in done.stdout and "report" in done.stdout


def _records_folder(folder, n=4):
    from tuning.records import append_record, new_record

    for i in range(n):
        loss = [1.0 - 0.1 * e - 0.01 * i for e in range(3)]
        append_record(folder / "records.jsonl", new_record(
            id=f"{i:04d}", model="mlp", seed=0, epochs=3, hyperparameters={"units": 8 * (i + 1)},
            history={"loss": loss, "val_loss": loss, "accuracy": [0.8] * 3, "val_accuracy": [0.7 + 0.01 * i] * 3},
            val_accuracy=0.7 + 0.01 * i, test_accuracy=0.7, params=100 * (i + 1), fit_seconds=1.0 + i))
    return folder


@pytest.mark.parametrize("argv", [["--help"], ["report", "--help"], ["list"], ["report", "RUN"], ["tune", "--help"],
                                  ["info", "lenet5"], ["weights", "list"]],
                         ids=["help", "report-help", "list", "report", "tune-help", "info", "weights-list"])
def test_start_up_imports_no_framework(argv, tmp_path):
    """Start-up (issue 19): `zoo --help`, `zoo list` and `zoo report RUN` run without importing TensorFlow, Keras,
    JAX or KerasTuner (0.2 s instead of 4-7 s, BENCHMARKS.md); a heavy import at the top of a command module or of
    what the report reads fails here."""
    if argv == ["report", "RUN"]:
        argv = ["report", str(_records_folder(tmp_path))]
    script = textwrap.dedent(f"""
        import json, sys
        from zoo.cli import main
        try:
            code = main({argv!r})
        except SystemExit as e:
            code = e.code
        print(json.dumps([code, sorted(m for m in ("tensorflow", "keras", "jax", "keras_tuner", "torch")
                                       if m in sys.modules)]))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    code, frameworks = json.loads(done.stdout.strip().splitlines()[-1])
    assert frameworks == [] and code == 0, done.stderr[-2000:]
    assert (tmp_path / "report.html").exists() == (argv[0] == "report" and argv[1] != "--help")


def test_tune_algorithm_choices_are_tuning_algorithms():
    """`--algorithm` is checked against tuning.ALGORITHMS (read when parsing, not when building the parser)."""
    import tuning

    parser = build_parser()
    for algorithm in tuning.ALGORITHMS:
        assert parser.parse_args(["tune", "mlp", "--algorithm", algorithm]).algorithm == algorithm
    with pytest.raises(SystemExit):
        parser.parse_args(["tune", "mlp", "--algorithm", "simulated_annealing"])


def test_demo_quick(tmp_path):
    """`zoo demo --quick` (what CI runs): trains, writes the report, prints the table and the report's path."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "zoo.cli", "demo", "--quick", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[2/2] lenet5 seed=0: val_accuracy=" in done.stdout
    assert f"Report:  {out}/report.html" in done.stdout
    assert (out / "report.html").exists() and (out / "records.jsonl").exists()


def test_the_full_demo_trains_two_models_at_a_time_on_two_cores_and_quick_one(monkeypatch, tmp_path):
    import tuning
    from zoo.cli import demo

    seen = []

    def fake_compare(models, **kw):
        seen.append((len(models), kw["options"].workers))
        raise SystemExit(0)

    monkeypatch.setattr(tuning, "compare", fake_compare)
    for cores, quick, workers in ((2, False, None), (16, False, None), (1, False, None), (2, True, None),
                                  (2, False, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda: cores)
        with pytest.raises(SystemExit):
            demo.run(quick=quick, out=str(tmp_path / "demo"), workers=workers)
    assert seen == [(7, 2), (7, 2), (7, 1), (2, 1), (7, 1)]


def test_the_demo_trains_one_model_at_a_time_where_its_default_workers_cannot_start(monkeypatch, tmp_path, capsys):
    import json

    from tuning import isolation
    from zoo.cli import demo

    started = isolation._Worker.__init__

    def dying(self, *args):  # every worker process dies before its first call
        started(self, *args)
        self.process.kill()
        self.process.wait()

    monkeypatch.setattr(isolation._Worker, "__init__", dying)
    monkeypatch.setattr(demo, "DEMO_MODELS", demo.QUICK_MODELS)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert demo.run(out=str(tmp_path / "demo"), fresh=True, epochs=1) == 0
    printed = capsys.readouterr().out
    assert "2 at a time, in worker processes" in printed and "3 worker processes in a row" in printed
    assert "Training one model at a time in this process instead" in printed
    with open(tmp_path / "demo" / "records.jsonl", encoding="utf-8") as f:
        assert sorted(json.loads(line)["status"] for line in f) == ["completed", "completed"]
    with pytest.raises(isolation.WorkersCannotStart):  # asked for by the user: the error is theirs to see
        demo.run(out=str(tmp_path / "demo"), workers=2, epochs=1, fresh=True)


NOISE = ("absl::InitializeLog", "oneDNN", "cudart_stub", "cuInit", "I0000", "W0000", "E0000")


def test_framework_start_up_lines_are_hidden_unless_verbose():
    """Issue 28 (item 15): every TensorFlow command printed absl's, oneDNN's and CUDA's start-up lines (and
    `failed call to cuInit`); they are held back by default and shown with --verbose, before or after the command."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ZOO_QUIET_START")}
    runs = {}
    for name, argv in (("quiet", ["info", "lenet5", "--profile"]), ("verbose", ["info", "lenet5", "--profile",
                                                                               "--verbose"])):
        done = subprocess.run([sys.executable, "-m", "zoo.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout)["params"] == 61_706
        runs[name] = done.stderr
    assert not [line for line in runs["quiet"].splitlines() if any(n in line for n in NOISE)], runs["quiet"]
    assert "absl::InitializeLog" in runs["verbose"]  # TensorFlow 2.21 prints it while its libraries load


def test_held_start_up_lines_come_back_when_the_import_fails(capfd):
    from zoo.runtime import _native_stderr_held

    with pytest.raises(ImportError):
        with _native_stderr_held():
            os.write(2, b"native library: missing symbol\n")
            raise ImportError("cannot load")
    assert "native library: missing symbol" in capfd.readouterr().err
    with _native_stderr_held():
        os.write(2, b"banner\n")
    assert "banner" not in capfd.readouterr().err


def test_weights_that_cannot_be_downloaded_are_one_error_line_and_exit_2(monkeypatch, capsys):
    # the CLI names WeightsDownloadError (an OSError) without importing the weights package for every command
    from zoo.cli import models
    from zoo.weights.hub import WeightsDownloadError

    def offline(args):
        raise WeightsDownloadError("resnet18-f37072fd.pth is not in /cache/models and could not be downloaded")

    monkeypatch.setattr(models, "cmd_info", offline)
    assert main(["info", "lenet5"]) == 2
    assert capsys.readouterr().err.strip() == ("zoo info: error: resnet18-f37072fd.pth is not in /cache/models and "
                                               "could not be downloaded")
    monkeypatch.setattr(models, "cmd_info", lambda args: (_ for _ in ()).throw(PermissionError("denied")))
    with pytest.raises(PermissionError):  # another OS error keeps its traceback
        main(["info", "lenet5"])
