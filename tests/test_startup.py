"""Starting the daemon: under any file name, any way of starting, and what stops a start.

The script is copied to a temp dir as ``pyrotorque`` (no ``.py``, as pyrocore
users keep it in ~/bin), linked, or run by ``python3 FILE``; every way must run
``--version``, ``--check``, ``--fg`` and ``--cron`` against a real rTorrent, show up
as ``pyrotorque`` in ps/top/pgrep, and log the daemon's own pid.  Files and
folders the daemon cannot use stop the start with a sentence and exit 74.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import daemon_process
import rtlab
from daemon_process import DaemonProcess, run_cli

STARTED = r"pyrotorque \S+ started \(pid (\d+)\)"
WAYS = ["a copy named pyrotorque", "a symlink to pyrotorque.py", "a symlink to a renamed copy",
        "python3 FILE"]


def install(base, way):
    """The script installed under ``base`` as ``way`` says; return the command (a list)."""
    bin_dir = os.path.join(str(base), "bin")
    os.makedirs(bin_dir, exist_ok=True)
    copy = os.path.join(bin_dir, "pyrotorque")
    if way == "a symlink to pyrotorque.py":
        link = os.path.join(bin_dir, "pyro-link")
        os.symlink(daemon_process.SCRIPT, link)
        return [link]
    shutil.copy(daemon_process.SCRIPT, copy)
    os.chmod(copy, 0o755)
    if way == "a symlink to a renamed copy":
        link = os.path.join(str(base), "pyrotorque-link")
        os.symlink(copy, link)
        return [link]
    if way == "python3 FILE":
        return [sys.executable, copy]
    return [copy]


def env_for(**extra):
    """The script's '#!/usr/bin/env python3' finds the interpreter that runs the tests."""
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    env.update(extra)
    return env


def config_dir(base, text="[TORQUE]\njob.connstats.schedule = second=*\n"):
    path = os.path.join(str(base), "cfg")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "torque.ini"), "w") as handle:
        handle.write(text)
    return path


def comm(pid):
    with open("/proc/%d/comm" % pid) as handle:
        return handle.read().strip()


def pgrep(name):
    done = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return {int(word) for word in done.stdout.split()}


def read(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


# --- any name, any way of starting ------------------------------------------------

@pytest.mark.parametrize("way", WAYS)
def test_every_way_of_starting_answers_version(short_tmp, way):
    code, out, err = run_cli("--version", command=install(short_tmp, way), env=env_for())
    assert code == 0 and re.match(r"pyrotorque \d+\.\d+\.\d+ on Python 3\.", out), err
    assert "Traceback" not in err


@pytest.mark.parametrize("way", WAYS)
def test_every_way_of_starting_checks_the_config_and_reaches_rtorrent(rtorrent, short_tmp, way):
    cfg = config_dir(short_tmp)
    code, out, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--check",
                             command=install(short_tmp, way), env=env_for())
    assert code == 0, out + err
    assert "rTorrent at %s: version 0.9.8" % rtorrent.url in out


@pytest.mark.parametrize("way", WAYS)
def test_in_the_foreground_ps_and_pgrep_know_it_as_pyrotorque(rtorrent, short_tmp, way):
    cfg = config_dir(short_tmp)
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       command=install(short_tmp, way), env=env_for()) as daemon:
        logged_pid = int(daemon.wait_for(STARTED)[0])
        assert logged_pid == daemon.pid         # the hand-over to an import keeps the pid
        assert comm(daemon.pid) == "pyrotorque"
        assert daemon.pid in pgrep("pyrotorque")
        daemon.wait_for(r"Stats for ")
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.text()


@pytest.mark.parametrize("cron", [False, True], ids=["background", "cron"])
def test_a_detached_daemon_logs_its_own_pid_and_is_called_pyrotorque(rtorrent, short_tmp, cron):
    cfg = config_dir(short_tmp)
    run_dir = os.path.join(cfg, "run")
    os.makedirs(run_dir)
    open(os.path.join(run_dir, "pyrotorque"), "w").close()
    command = install(short_tmp, "a copy named pyrotorque")
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, *(["--cron"] if cron else []),
                           command=command, env=env_for())
    assert code == 0, err
    if cron:
        assert err == ""                        # everything went to the log file
    log_path = os.path.join(cfg, "log", "torque.log")
    pid_path = os.path.join(run_dir, "pyrotorque.pid")
    try:
        found = rtlab.wait_for(lambda: re.search(STARTED, read(log_path)), 15, 0.1,
                               "the start-up line in torque.log")
        pid = int(read(pid_path))
        assert int(found.group(1)) == pid       # not the pid of the parent that forked it
        assert comm(pid) == "pyrotorque" and pid in pgrep("pyrotorque")
    finally:
        code, _, err = run_cli("--config-dir", cfg, "--stop", command=command, env=env_for())
    assert code == 0, err
    assert "Traceback" not in read(log_path)


def test_the_bytecode_is_cached_beside_a_renamed_copy_and_skipped_where_it_cannot_be(short_tmp):
    command = install(short_tmp, "a copy named pyrotorque")
    env = env_for()
    env_keep = dict(os.environ)
    env_keep.pop("PYTHONDONTWRITEBYTECODE", None)
    env_keep.update(env)
    cache = os.path.join(str(short_tmp), "bin", "__pycache__")
    done = subprocess.run(command + ["--version"], capture_output=True, text=True,
                          env=env_keep, timeout=30)
    assert done.returncode == 0, done.stderr
    assert [name for name in os.listdir(cache) if name.startswith("pyrotorque")]
    # A folder nobody may write into (root may write anywhere, so a file stands in
    # the way of __pycache__): it runs all the same, compiled afresh each time.
    shutil.rmtree(cache)
    open(cache, "w").close()
    for _ in range(2):
        done = subprocess.run(command + ["--version"], capture_output=True, text=True,
                              env=env_keep, timeout=30)
        assert done.returncode == 0 and done.stdout.startswith("pyrotorque "), done.stderr
    assert os.path.isfile(cache) and os.path.getsize(cache) == 0


@pytest.mark.parametrize("way", ["a copy named pyrotorque", "a symlink to pyrotorque.py"])
def test_a_custom_job_that_imports_pyrotorque_gets_the_running_module(rtorrent, short_tmp, way):
    cfg = config_dir(short_tmp, "[TORQUE]\njob.connstats.active = no\n"
                     "job.probe.handler = probejob:Probe\njob.probe.schedule = second=*\n")
    with open(os.path.join(cfg, "probejob.py"), "w") as handle:
        handle.write("import logging\nimport pyrotorque\n\n"
                     "class Probe:\n"
                     "    def __init__(self, config):\n"
                     "        self.config = config\n"
                     "    def run(self):\n"
                     "        logging.getLogger('probe').info('probe: same module %s',\n"
                     "            isinstance(self.config.daemon, pyrotorque.Daemon))\n")
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       command=install(short_tmp, way), env=env_for()) as daemon:
        assert daemon.wait_for(r"probe: same module (\w+)") == ["True"]
        assert daemon.stop() == 0


# --- empty --match / --run-once ---------------------------------------------------

@pytest.mark.parametrize("option, words", [
    ("--match", "--match needs a condition"),
    ("--run-once", "--run-once needs the name of a job"),
])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_match_or_run_once_is_a_usage_error_not_a_daemon_start(short_tmp, option,
                                                                        words, value):
    cfg = config_dir(short_tmp)
    started = time.monotonic()
    code, out, err = run_cli("--config-dir", cfg, "-U", "/nowhere.sock", option, value)
    assert code == 2 and words in err, err
    assert time.monotonic() - started < 10
    assert not os.path.exists(os.path.join(cfg, "run"))     # no pid file: nothing started
