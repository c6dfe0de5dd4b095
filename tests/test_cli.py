"""Command line: options and exit codes that need no rTorrent."""
import os
import re

import pytest

import pyrotorque
from daemon_process import run_cli


def test_version_names_the_program_and_python():
    code, out, _ = run_cli("--version")
    assert code == 0 and re.match(r"pyrotorque \d+\.\d+\.\d+ on Python 3\.\d+", out)


def test_quiet_and_verbose_together_is_a_usage_error():
    code, _, err = run_cli("-q", "-v", "--status")
    assert code == 2 and "Don't know how to be quietly verbose!" in err


def test_status_without_a_daemon_is_69(short_tmp):
    code, _, err = run_cli("--config-dir", str(short_tmp), "--status")
    assert code == 69 and "NOT running" in err


def test_stop_without_a_daemon_is_69(short_tmp):
    assert run_cli("--config-dir", str(short_tmp), "--stop")[0] == 69


def test_an_unreadable_handler_stops_the_start_with_70(short_tmp):
    with open(os.path.join(str(short_tmp), "torque.ini"), "w") as handle:
        handle.write("[TORQUE]\njob.connstats.handler = EngineStats\n")
    code, _, err = run_cli("--fg", "--config-dir", str(short_tmp), "-U", "/x.sock")
    assert code == 70 and "torque.ini:2: job.connstats.handler" in err


def test_check_on_a_fresh_machine_says_what_to_configure(short_tmp):
    env = {"HOME": str(short_tmp)}
    code, out, _ = run_cli("--config-dir", str(short_tmp), "--check", env=env)
    assert code == 70
    assert "connstats" in out and "pyrotorque:EngineStats" in out
    assert "no rTorrent endpoint: set scgi_url" in out


def test_one_daemon_per_pid_file(short_tmp):
    pid_file = pyrotorque.PidFile(os.path.join(str(short_tmp), "run", "p.pid"))
    pid_file.acquire()
    try:
        assert pid_file.status() == (True, os.getpid())
        with pytest.raises(pyrotorque.AlreadyRunning, match="#%d still running" % os.getpid()):
            pyrotorque.PidFile(pid_file.path).acquire()
    finally:
        assert pid_file.release()
    assert pid_file.status() == (False, 0)


def test_a_stale_pid_file_does_not_block_a_start(short_tmp):
    path = os.path.join(str(short_tmp), "run", "p.pid")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write("999999\n")
    pid_file = pyrotorque.PidFile(path)
    assert pid_file.status() == (False, 999999)
    pid_file.acquire()
    assert pid_file.read_pid() == os.getpid()
    pid_file.release()


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (59, "59s"), (61, "1m 1s"), (3600, "1h"), (3 * 86400 + 5 * 3600 + 7, "3d 5h"),
])
def test_durations_read_in_their_two_largest_units(seconds, text):
    assert pyrotorque.human_duration(seconds) == text


@pytest.mark.parametrize("count, text", [
    (0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"), (5 * 2**20, "5.0 MiB"),
])
def test_sizes_read_as_pyrocore_wrote_them(count, text):
    assert pyrotorque.human_size(count) == text
