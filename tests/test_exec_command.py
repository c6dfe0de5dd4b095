"""ExecCommand: a scheduled command, run beside the main loop without blocking it."""
import logging
import os
import re
import time

import pytest

import daemon_process
import pyrotorque
from daemon_process import DaemonProcess, run_cli

#: Nothing here talks to rTorrent, but the daemon wants an endpoint in its configuration.
NO_RTORRENT = "scgi://127.0.0.1:9"


def write_config(tmp, jobs):
    return daemon_process.torque_config(tmp, jobs, "pyrotorque:ExecCommand")


def exec_job(tmp, **params):
    """An ExecCommand built the way the daemon builds it (its loop not turning: --run-once)."""
    cfg = write_config(tmp, {"cmd": params})
    options = pyrotorque._parse_options(["--fg", "--config-dir", cfg, "-U", NO_RTORRENT])
    settings = pyrotorque.load_settings(cfg)
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    return jobs["cmd"].job


def gone(pid):
    """The process is dead: no such pid, or a zombie nobody reaped yet (re-parented)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return gone(pid)


def pids_in(path, count=1, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as handle:
                pids = [int(word) for word in handle.read().split()]
            if len(pids) >= count:
                return pids
        time.sleep(0.02)
    raise AssertionError("no pid in %s" % path)


# -- in-process, the way --run-once runs it --------------------------------------------------

def test_output_is_logged_line_by_line_with_the_exit_status(short_tmp, caplog):
    job = exec_job(short_tmp, command="""sh -c 'echo one; echo "two  words"; echo oops >&2; exit 3'""")
    with caplog.at_level(logging.INFO, logger="pyrotorque"), \
            pytest.raises(pyrotorque.PyrotorqueError, match="exit status 3"):
        job.run()
    records = [(r.levelno, r.getMessage()) for r in caplog.records]
    out = [m for level, m in records if re.match(r"\[\d+ out\] ", m)]
    assert [m.split("] ", 1)[1] for m in out] == ["one", "two  words"]
    assert any(level == logging.WARNING and re.match(r"\[\d+ err\] oops$", m) for level, m in records)
    assert any(level == logging.WARNING and re.search(r": exit status 3, \d+\.\d\d s$", m)
               for level, m in records), records
    assert all(r.name == "pyrotorque.job.cmd" for r in caplog.records if "[" in r.getMessage())


def test_success_is_logged_at_info_and_env_cwd_are_passed_without_notify_socket(
        short_tmp, caplog, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    work = short_tmp / "work dir"
    work.mkdir()
    job = exec_job(short_tmp, command="""sh -c 'echo "[$FOO|${NOTIFY_SOCKET-unset}|$(pwd -P)]"'""",
                   cwd=str(work), **{"env.FOO": "bar baz"})
    with caplog.at_level(logging.INFO, logger="pyrotorque"):
        job.run()
    assert "[bar baz|unset|%s]" % os.path.realpath(str(work)) in caplog.text
    assert any(r.levelno == logging.INFO and re.search(r": exit status 0, [\d.]+ s$", r.getMessage())
               for r in caplog.records)


def test_no_shell_unless_asked_for(short_tmp, caplog, monkeypatch):
    monkeypatch.setenv("HOME", "/home/alice")
    job = exec_job(short_tmp, command="echo $HOME '$(id)' ; ~/bin")
    with caplog.at_level(logging.INFO, logger="pyrotorque"):
        job.run()
    assert re.search(r"\[\d+ out\] \$HOME \$\(id\) ; /home/alice/bin$", caplog.text, re.M)
    caplog.clear()
    job = exec_job(short_tmp, command="echo $((6 * 7)) | tr 4 X", shell="yes")
    with caplog.at_level(logging.INFO, logger="pyrotorque"):
        job.run()
    assert re.search(r"\[\d+ out\] X2$", caplog.text, re.M)


def test_dry_run_only_logs_the_command(short_tmp, caplog):
    marker = short_tmp / "ran"
    job = exec_job(short_tmp, command="touch '%s'" % marker, dry_run="yes")
    with caplog.at_level(logging.INFO, logger="pyrotorque"):
        job.run()
    assert "Would run touch %s" % marker in caplog.text
    assert not marker.exists()


def test_a_missing_program_is_a_logged_failure(short_tmp, caplog):
    job = exec_job(short_tmp, command="/nonexistent/program --flag")
    with caplog.at_level(logging.INFO, logger="pyrotorque"), \
            pytest.raises(pyrotorque.PyrotorqueError, match="could not be started"):
        job.run()
    assert "FileNotFoundError" in caplog.text


def test_config_errors_name_the_key(short_tmp):
    with pytest.raises(pyrotorque.ConfigError, match=r"torque.ini:\d+: job.cmd.command: .*quotation"):
        exec_job(short_tmp, command="echo 'unbalanced")
    with pytest.raises(pyrotorque.ConfigError, match=r"torque.ini:\d+: job.cmd.cwd: .*not a directory"):
        exec_job(short_tmp, command="true", cwd=str(short_tmp / "nope"))
    with pytest.raises(pyrotorque.ConfigError, match=r"torque.ini:\d+: job.cmd.env.1X: .*variable name"):
        exec_job(short_tmp, command="true", **{"env.1X": "y"})
    with pytest.raises(pyrotorque.ConfigError, match=r"job.cmd.timeout: '-1' must not be negative"):
        exec_job(short_tmp, command="true", timeout="-1")
    with pytest.raises(pyrotorque.ConfigError, match=r"command"):
        exec_job(short_tmp, command="   ")


def test_run_once_kills_the_whole_process_group_at_the_timeout(short_tmp):
    pidfile = short_tmp / "pids"
    cfg = write_config(short_tmp, {"slow": {
        "command": "sh -c 'sleep 30 & echo $! > %s; sleep 30'" % pidfile, "timeout": "0.5"}})
    started = time.monotonic()
    code, _, err = run_cli("--config-dir", cfg, "-U", NO_RTORRENT, "--run-once", "slow")
    assert time.monotonic() - started < 10
    assert code == 70, err
    assert "still running after its timeout of 0.5 s: SIGTERM to its process group" in err
    assert "killed by SIGTERM after its timeout of 0.5 s" in err
    assert wait_gone(pids_in(str(pidfile))[0]), "the background grandchild survived"


# -- in the daemon -----------------------------------------------------------------------------

def test_the_loop_keeps_ticking_while_a_long_command_runs_and_runs_never_overlap(short_tmp):
    cfg = write_config(short_tmp, {
        "slow": {"command": "sh -c 'echo slow-start; sleep 2.5; echo slow-end'"},
        "tick": {"command": "echo tick"},
    })
    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", NO_RTORRENT,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(r"\[\d+ out\] slow-end", timeout=10)
        # Every command the daemon started has been reaped: no zombie children.
        children = open("/proc/%d/task/%d/children" % (daemon.pid, daemon.pid)).read().split()
        assert not [pid for pid in children if gone(int(pid)) and os.path.exists("/proc/" + pid)]
        assert daemon.stop() == 0
    text = daemon.text()
    first_run = text[text.index("out] slow-start"):text.index("out] slow-end")]
    assert len(re.findall(r"\[\d+ out\] tick", first_run)) >= 2, text
    assert first_run.count("out] slow-start") == 1
    assert re.search(r"Not starting sh -c .* again: the run started [\d.]+ s ago \(pid \d+\) is "
                     r"still going", first_run), text
    assert re.search(r"echo tick \[pid \d+\]: exit status 0", text)


def test_a_child_ignoring_sigterm_gets_sigkill_and_closing_the_job_kills_its_child(short_tmp):
    stubborn, longrun = short_tmp / "stubborn", short_tmp / "longrun"
    cfg = write_config(short_tmp, {
        "stubborn": {"command": "sh -c 'trap \"\" TERM; sleep 30 & echo $! >> %s; wait'" % stubborn,
                     "timeout": "0.5", "kill_grace": "0.5"},
        "longrun": {"command": "sh -c 'sleep 30 & echo $! >> %s; wait'" % longrun},
    })
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", NO_RTORRENT,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(r"Process group \d+ outlived SIGTERM by 0.5 s: SIGKILL", timeout=10)
        daemon.wait_for(r"killed by SIGKILL after its timeout of 0.5 s")
        assert wait_gone(pids_in(str(stubborn))[0])
        long_pid = pids_in(str(longrun))[0]
        assert not gone(long_pid)
        assert daemon.stop() == 0
    assert "(the job is closing): SIGTERM to its process group" in daemon.text()
    assert wait_gone(long_pid)
