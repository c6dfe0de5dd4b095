"""The state files of the jobs: one atomic writer and one reader that moves a bad file aside.

Every job that keeps state (the completion journal, the mirror state, the remote
watch state, the tree watch memory, the graph file) writes through
``write_file_atomic`` and reads through ``read_json_state``; these tests pin the
rules those promise: the old file or the new one and never a part, no temporary
file left behind, the fsync of file and folder only when durable, and a bad file
renamed to PATH.bad with one error line.
"""
import json
import logging
import os

import pytest

import pyrotorque

LOG = logging.getLogger("pyrotorque.test.state")


def files_in(folder):
    return sorted(os.listdir(folder))


def test_a_write_replaces_the_whole_file_and_leaves_no_temporary_file(short_tmp):
    path = str(short_tmp / "run" / "state.json")      # the folder is made on the way
    pyrotorque.write_json_atomic(path, {"version": 1, "files": {"a": [1, 2]}})
    pyrotorque.write_json_atomic(path, {"version": 2})
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle) == {"version": 2}
    assert files_in(short_tmp / "run") == ["state.json"]


@pytest.mark.parametrize("data, expected", [
    (b"d4:infoe", b"d4:infoe"),
    ("caf\u00e9\n", "caf\u00e9\n".encode("utf-8")),
])
def test_bytes_are_written_as_they_are_and_text_as_utf8(short_tmp, data, expected):
    path = str(short_tmp / "out")
    pyrotorque.write_file_atomic(path, data, durable=False)
    with open(path, "rb") as handle:
        assert handle.read() == expected


def test_a_write_that_fails_keeps_the_old_file_and_removes_its_temporary_file(short_tmp):
    path = str(short_tmp / "state.json")
    pyrotorque.write_file_atomic(path, "old")
    with pytest.raises(UnicodeEncodeError):
        pyrotorque.write_file_atomic(path, "half \ud800 written")     # cannot be UTF-8
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "old"
    assert files_in(short_tmp) == ["state.json"]


@pytest.mark.parametrize("durable, synced", [(True, ["file", "folder"]), (False, [])])
def test_only_a_durable_write_fsyncs_the_file_and_then_its_folder(short_tmp, monkeypatch,
                                                                   durable, synced):
    calls = []
    real_fsync = os.fsync

    def fsync(fd):
        calls.append("folder" if os.path.isdir("/proc/self/fd/%d" % fd) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    pyrotorque.write_file_atomic(str(short_tmp / "f"), "x", durable=durable)
    assert calls == synced


def test_a_missing_state_file_reads_as_none_and_is_not_created(short_tmp, caplog):
    path = str(short_tmp / "none.json")
    assert pyrotorque.read_json_state(path, LOG, "The state", "Starting afresh") is None
    assert files_in(short_tmp) == [] and not caplog.records


@pytest.mark.parametrize("text, check", [
    ("{not json", lambda data: data),
    ('{"files": []}', lambda data: data["move"]),              # the wrong shape: KeyError
    ('["a list"]', lambda data: data.get("files")),            # AttributeError
    ('{"files": 3}', lambda data: list(data["files"])),        # TypeError
])
def test_a_bad_state_file_is_moved_aside_with_one_error_line(short_tmp, caplog, text, check):
    path = str(short_tmp / "state.json")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    with caplog.at_level(logging.ERROR):
        assert pyrotorque.read_json_state(path, LOG, "The state", "Starting afresh",
                                          check) is None
    assert files_in(short_tmp) == ["state.json.bad"]
    with open(path + ".bad", encoding="utf-8") as handle:
        assert handle.read() == text                    # kept for a human, unchanged
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("The state %s is unreadable (" % path)
    assert errors[0].endswith("); moved aside to %s.bad. Starting afresh" % path)


def test_a_good_state_file_gives_what_the_check_returns(short_tmp):
    path = str(short_tmp / "state.json")
    pyrotorque.write_json_atomic(path, {"files": {"a": 1}})
    assert pyrotorque.read_json_state(path, LOG, "The state", "",
                                      lambda data: sorted(data["files"])) == ["a"]
    assert files_in(short_tmp) == ["state.json"]
