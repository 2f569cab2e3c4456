"""The trial record (tuning/records.py): the schema, atomic appends by concurrent writers, tolerant reading,
damaged lines moved aside, the latest record per trial. Reading a run folder's manifest: tests/test_manifest.py."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tuning.records import (
    append_record,
    check_record,
    latest_records,
    new_record,
    read_records,
    reject_bad_lines,
    rejects_path,
)
from tuning.searches import load_search

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_new_record_has_every_schema_field_and_is_valid():
    record = new_record(id="0001", model="mlp", seed=3, val_accuracy=0.9, params=120)
    assert check_record(record) is None and record["status"] == "completed" and record["error"] is None
    assert record["backend"] and record["versions"]["zoo"] and record["hyperparameters"] == {}
    with pytest.raises(ValueError, match="`status` must be one of"):
        new_record(id="x", model="mlp", status="done")


@pytest.mark.parametrize("record, reason", [
    ([1, 2], "not a JSON object"),
    ({"id": "", "status": "completed"}, "`id` must be a non-empty string"),
    ({"id": "1", "status": "done", "hyperparameters": {}}, "`status` must be one of"),
    ({"id": "1", "status": "failed", "hyperparameters": [["a", 1]]}, "`hyperparameters` must be an object"),
    ({"id": "1", "status": "completed", "hyperparameters": {}}, "a completed trial needs its `model`"),
    ({"id": "1", "status": "failed", "hyperparameters": {}, "history": [1]}, "`history` must be an object"),
])
def test_check_record_names_what_is_wrong(record, reason):
    assert reason in check_record(record)


def test_damaged_lines_are_set_aside_when_read_and_moved_aside_when_rejected(tmp_path):
    path = tmp_path / "records.jsonl"
    good = [new_record(id=str(i), model="mlp", seed=i) for i in range(3)]
    lines = [json.dumps(good[0]).encode(), b'{"id": "7"}', b"\xff\xfe not UTF-8", json.dumps(good[1]).encode(),
             b"[1, 2]", json.dumps(good[2]).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.warns(UserWarning, match=r"set aside 3 damaged line\(s\)"):
        assert [r["id"] for r in read_records(path)] == ["0", "1", "2"]  # the others are kept
    notes = []
    assert reject_bad_lines(path, notes) == 3 and "kept in" in notes[0]
    rejected = [json.loads(line) for line in open(rejects_path(path))]
    assert [r["line"] for r in rejected] == [2, 3, 5] and rejected[1]["raw"].startswith("\\xff\\xfe")
    assert [r["id"] for r in read_records(path, strict=True)] == ["0", "1", "2"]  # clean again
    assert reject_bad_lines(path) == 0


def test_concurrent_appends_merge_into_one_readable_file(tmp_path):
    """Several processes append to one records.jsonl (as the workers of a distributed search do)."""
    path = tmp_path / "records.jsonl"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from tuning.records import append_record
        w = int(sys.argv[1])
        for i in range(40):
            append_record({str(path)!r}, {{"id": f"{{w}}-{{i}}", "status": "completed", "model": "mlp",
                                           "hyperparameters": {{}}, "payload": "x" * 20000}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    with open(path, "a") as f:
        f.write('{"id": "cut-short", "sta')  # a writer killed mid-line
    append_record(path, {"id": "after", "status": "completed", "model": "mlp", "hyperparameters": {}})
    with pytest.warns(UserWarning, match="damaged line.*line 161: not JSON"):
        records = read_records(path)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 161 and "after" in ids
    assert all(r.get("payload", "x" * 20000) == "x" * 20000 for r in records)
    with pytest.warns(UserWarning):
        assert len(load_search(tmp_path).records) == 161  # a search's records are read the same way



def test_latest_records_keeps_the_last_record_per_id():
    records = [{"id": "10", "v": 1}, {"id": "b", "v": 1}, {"id": "2", "v": 1}, {"id": "10", "v": 2}]
    assert [(r["id"], r["v"]) for r in latest_records(records)] == [("2", 1), ("10", 2), ("b", 1)]
    assert [(r["id"], r["v"]) for r in latest_records(records, sort=False)] == [("10", 2), ("b", 1), ("2", 1)]


def test_a_record_nested_too_deep_is_rejected_not_a_crash(tmp_path):
    """Issue 29: a line nested 100,000 deep raised RecursionError out of read_records."""
    from tuning.records import read_records, reject_bad_lines

    path = tmp_path / "records.jsonl"
    good = json.dumps({"id": "0000", "model": "mlp", "status": "completed", "hyperparameters": {},
                       "val_accuracy": 0.5})
    path.write_text(good + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.warns(UserWarning, match="nested too deep"):
        assert [r["id"] for r in read_records(str(path))] == ["0000"]
    assert reject_bad_lines(str(path)) == 1
    assert "nested too deep" in (tmp_path / "records.rejected.jsonl").read_text()
