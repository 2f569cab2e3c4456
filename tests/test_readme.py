"""Every README code block runs as written: the Python blocks in order (tests/readme_runner.py), the commands parsed."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import readme_runner  # noqa: E402

ROOT = readme_runner.ROOT
# shell lines that are not `zoo` commands and that the tests run elsewhere or cannot run here
OTHER_COMMANDS = ("make ", "pip ", "tensorboard ")


def _commands():
    """``[(line, argv)]`` of every command in the README's bash blocks (continuations joined, comments dropped)."""
    out = []
    for line, language, code, _ in readme_runner.blocks():
        if language != "bash":
            continue
        for text in code.replace("\\\n", " ").splitlines():
            text = text.split(" #")[0].strip()
            if text and not text.startswith("#"):
                argv = shlex.split(text)
                while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", argv[0]):  # VAR=value before a command
                    argv = argv[1:]
                out.append((line, argv))
    return out


def test_blocks_are_found_and_marks_are_known():
    found = readme_runner.blocks()
    python = [b for b in found if b[1] == "python"]
    assert len(python) >= 15 and len(_commands()) >= 25
    for line, _, _, mark in found:
        assert mark is None or mark.split()[0] in ("raises", "offline", "excerpt"), (line, mark)


def test_every_command_parses_and_every_script_exists():
    from zoo.cli import build_parser

    parser = build_parser()
    for line, argv in _commands():
        if argv[0] == "zoo" or argv[:3] == ["python", "-m", "zoo.cli"]:
            args = argv[1:] if argv[0] == "zoo" else argv[3:]
            try:
                parser.parse_args(args)
            except SystemExit as e:
                pytest.fail(f"README.md:{line}: `{shlex.join(argv)}` does not parse (exit {e.code})")
        elif argv[0] == "python":
            assert os.path.isfile(os.path.join(ROOT, argv[1])), f"README.md:{line}: no {argv[1]}"
        else:
            assert any(shlex.join(argv).startswith(p) for p in OTHER_COMMANDS), f"README.md:{line}: {argv}"


@pytest.mark.heavy
def test_every_python_block_runs_as_written(tmp_path):
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "TF_CPP_MIN_LOG_LEVEL": "3",
           # closed network: the blocks that download must fail as they do offline, on any CI machine
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "readme_runner.py")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    results = [json.loads(s[6:]) for s in proc.stdout.splitlines() if s.startswith("BLOCK ")]
    unused = [json.loads(s[7:]) for s in proc.stdout.splitlines() if s.startswith("UNUSED ")]
    assert proc.returncode == 0 and unused, proc.stderr[-4000:]
    python = [b for b in readme_runner.blocks() if b[1] == "python"]
    assert [r["line"] for r in results] == [b[0] for b in python]
    problems = [f"README.md:{r['line']}: {r['problem']}" for r in results if r["problem"]]
    assert not problems, "\n\n".join(problems)
    assert unused == [[]], f"SCALE entries no block uses any more: {unused[0]}"
