"""contrib/rtorrent-watchdog.rc in a real rTorrent 0.9.8: it starts the daemon only with the guard file.

The rc text is used as shipped, with two edits: the three ADJUST values point at
this checkout (the interpreter that runs the tests, ``pyrotorque.py`` here, a
config dir with a space in its name, to prove the shell quoting), and the
schedule fires after 1 s and then every second instead of 30 s / 300 s.
rTorrent's ``execute`` runs with the lab's minimal environment, which is why
every path is absolute.

The daemon double-forks away from rTorrent, so every test stops it by its pid
file (``--stop``) and, if that fails, by the pid it wrote.
"""
import os
import re
import signal
import sys
import time

import pytest

import pyrotorque
import rtlab
from conftest import require_lab
from daemon_process import REPO, SCRIPT, run_cli

RC_FILE = os.path.join(REPO, "contrib", "rtorrent-watchdog.rc")


def watchdog_rc(config_dir, python=sys.executable, script=SCRIPT):
    """The shipped rc lines with this machine's paths and a 1 s schedule."""
    with open(RC_FILE, encoding="utf-8") as handle:
        text = handle.read()
    text, count = re.subn(r"^(schedule = pyro_watchdog,) 30, 300,", r"\1 1, 1,", text, flags=re.M)
    assert count == 1, "the schedule line changed; adjust the test"
    for name, value in (("config_dir", config_dir), ("python", python), ("script", script)):
        assert '"' not in value and "\\" not in value
        text, count = re.subn(r"^(method\.insert = pyro\.watchdog\.%s, private\|const\|string, ).*$"
                              % name, lambda m: m.group(1) + '"%s"' % value, text, flags=re.M)
        assert count == 1, "no ADJUST line for %s" % name
    return text.splitlines()


class Lab:
    """A config dir for the daemon and an rTorrent that runs the watchdog for it."""

    def __init__(self, base):
        self.config_dir = os.path.join(str(base), "pyro config")
        self.run_dir = os.path.join(self.config_dir, "run")
        self.guard = os.path.join(self.run_dir, "pyrotorque")
        self.pid_file = os.path.join(self.run_dir, "pyrotorque.pid")
        self.log_file = os.path.join(self.config_dir, "log", "torque.log")
        os.makedirs(self.run_dir)
        self.rt = rtlab.RTorrent(extra_rc=watchdog_rc(self.config_dir))
        with open(os.path.join(self.config_dir, "torque.ini"), "w") as handle:
            handle.write("[TORQUE]\nscgi_url = %s\njob.connstats.schedule = second=*\n" % self.rt.url)
        self.pids = set()

    def cli(self, *args):
        return run_cli("--config-dir", self.config_dir, *args)

    def daemon_pid(self):
        try:
            with open(self.pid_file) as handle:
                text = handle.read().strip()
        except OSError:
            return None
        if text.isdigit():
            self.pids.add(int(text))
            return int(text)
        return None

    def wait_running(self, timeout=15.0):
        """Wait until --status says the daemon runs; return its pid."""
        def running():
            return self.daemon_pid() if self.cli("--status")[0] == 0 else None
        return rtlab.wait_for(running, timeout, 0.1, "the watchdog to start the daemon")

    def log(self):
        try:
            with open(self.log_file, errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def close(self):
        """Guard file away first (or the watchdog starts a new daemon), then stop by pid."""
        if os.path.exists(self.guard):
            os.remove(self.guard)
        self.cli("--stop")
        self.daemon_pid()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.rt.cleanup()


@pytest.fixture
def lab(short_tmp):
    require_lab("rtorrent")
    lab = Lab(short_tmp)
    try:
        yield lab
    finally:
        lab.close()


def test_with_the_guard_file_rtorrent_starts_the_daemon_once(lab):
    open(lab.guard, "w").close()
    lab.rt.start()
    pid = lab.wait_running()
    rtlab.wait_for(lambda: "Stats for" in lab.log(), 10, 0.1, "connstats in torque.log")
    # The next ticks find it running: no second daemon, nothing new logged as a start.
    time.sleep(2.5)
    assert lab.cli("--status")[0] == 0 and lab.daemon_pid() == pid
    assert os.getsid(pid) != os.getsid(lab.rt.pid), "the daemon should be detached from rTorrent"
    code, _, err = lab.cli("--stop")
    assert code == 0 and "Process #%d stopped" % pid in err, err
    # With the guard file still there the next tick starts a new daemon; without
    # it, one that a tick started meanwhile exits by itself.
    os.remove(lab.guard)
    rtlab.wait_for(lambda: lab.cli("--status")[0] == pyrotorque.EX_UNAVAILABLE, 10, 0.1,
                   "every daemon to be gone")
    assert "Traceback" not in lab.log()


def test_without_the_guard_file_nothing_starts_until_it_is_touched(lab):
    lab.rt.start()
    time.sleep(3.0)                 # three ticks of the shortened schedule
    assert lab.daemon_pid() is None and not os.path.exists(lab.log_file)
    assert lab.cli("--status")[0] == pyrotorque.EX_UNAVAILABLE
    # pyrocore's cycle: touch the guard file and the watchdog brings the daemon up ...
    open(lab.guard, "w").close()
    pid = lab.wait_running()
    # ... remove it and the daemon goes away by itself.
    os.remove(lab.guard)
    rtlab.wait_for(lambda: lab.cli("--status")[0] != 0, 10, 0.1, "the daemon to exit")
    assert "Guard file '%s' disappeared, exiting!" % lab.guard in lab.log()
    assert not os.path.exists(lab.pid_file)
    time.sleep(1.5)
    assert lab.daemon_pid() is None, "the watchdog started a daemon without the guard file"
    assert pid in lab.pids
