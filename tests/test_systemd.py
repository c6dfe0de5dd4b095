"""sd_notify: a datagram socket stands in for systemd and hears what the daemon says."""
import os
import signal
import socket
import textwrap
import time

import pytest

import pyrotorque
from daemon_process import DaemonProcess


class FakeSystemd:
    """A bound AF_UNIX datagram socket, like the one systemd passes in $NOTIFY_SOCKET."""

    def __init__(self, directory):
        self.path = os.path.join(str(directory), "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []      # (monotonic time, {key: value})

    def receive(self, timeout=10.0, until=None):
        """Collect messages until one has key ``until`` (or the timeout); return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))
            if until and until in fields:
                return self.messages
        if until:
            raise AssertionError("no %s within %.0f s; got %r" % (until, timeout, self.messages))
        return self.messages

    def keys(self):
        return [key for _, fields in self.messages for key in fields
                if key not in ("STATUS", "MONOTONIC_USEC")]

    def close(self):
        self.sock.close()


@pytest.fixture
def systemd(short_tmp):
    fake = FakeSystemd(short_tmp)
    yield fake
    fake.close()


def config(short_tmp, extra=""):
    cfg = os.path.join(str(short_tmp), "cfg")
    os.makedirs(cfg, exist_ok=True)
    with open(os.path.join(cfg, "torque.ini"), "w") as handle:
        handle.write("[TORQUE]\njob.connstats.schedule = second=*\n" + textwrap.dedent(extra))
    return cfg


def test_ready_reloading_ready_stopping_in_that_order(rtorrent, short_tmp, systemd):
    cfg = config(short_tmp)
    env = {"NOTIFY_SOCKET": systemd.path}
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       env=env) as daemon:
        systemd.receive(until="READY")
        daemon.wait_for("Stats for")
        daemon.signal(signal.SIGHUP)
        systemd.receive(until="READY")
        daemon.signal(signal.SIGTERM)
        systemd.receive(until="STOPPING")
        assert daemon.stop() == 0
    assert systemd.keys() == ["READY", "RELOADING", "READY", "STOPPING"]
    reloading = [f for _, f in systemd.messages if "RELOADING" in f][0]
    now_usec = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
    assert 0 < now_usec - int(reloading["MONOTONIC_USEC"]) < 60e6


def test_the_status_line_says_what_the_daemon_is_doing(rtorrent, short_tmp, systemd):
    cfg = config(short_tmp)
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       env={"NOTIFY_SOCKET": systemd.path}) as daemon:
        daemon.wait_for("Stats for", count=2)
        rtorrent.stop()
        daemon.wait_for("is unreachable")
        time.sleep(1.2)
        daemon.stop()
    statuses = [f["STATUS"] for _, f in systemd.receive(timeout=0.5) if "STATUS" in f]
    assert "1 job, rTorrent up" in statuses
    assert "1 job, rTorrent unreachable" in statuses


def test_watchdog_pings_come_at_half_the_interval_from_the_loop(rtorrent, short_tmp, systemd):
    cfg = config(short_tmp)
    env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "400000"}
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       env=env) as daemon:
        systemd.receive(until="READY")
        started = time.monotonic()
        systemd.receive(timeout=2.0)
        daemon.stop()
    pings = [t for t, f in systemd.messages if "WATCHDOG" in f and t >= started]
    assert 7 <= len(pings) <= 13, len(pings)       # every 0.2 s for 2 s
    assert max(b - a for a, b in zip(pings, pings[1:])) < 0.45


def test_a_hanging_loop_stops_the_pings(rtorrent, short_tmp, systemd):
    cfg = config(short_tmp, """\
        job.connstats.active = no
        job.hang.handler = hangjob:Hang
        job.hang.schedule = second=*/3
        """)
    with open(os.path.join(cfg, "hangjob.py"), "w") as handle:
        handle.write("import time\nclass Hang:\n    def __init__(self, config): pass\n"
                     "    def run(self):\n        time.sleep(1.5)\n")
    env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "200000"}
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       env=env) as daemon:
        systemd.receive(timeout=4.5)
        daemon.stop()
    pings = [t for t, f in systemd.messages if "WATCHDOG" in f]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) >= 1.4         # no ping while the job hung the loop
    assert sorted(gaps)[len(gaps) // 2] < 0.2


def test_children_do_not_inherit_the_notify_socket(rtorrent, short_tmp, systemd):
    cfg = config(short_tmp, """\
        job.connstats.active = no
        job.child.handler = childjob:Child
        job.child.schedule = second=*
        """)
    with open(os.path.join(cfg, "childjob.py"), "w") as handle:
        handle.write(textwrap.dedent("""\
            import logging, subprocess
            class Child:
                def __init__(self, config):
                    pass
                def run(self):
                    out = subprocess.run(["sh", "-c", "echo child sees ${NOTIFY_SOCKET:-nothing}"],
                                         capture_output=True, text=True).stdout.strip()
                    logging.getLogger("child").warning(out)
            """))
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       env={"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "1000000"}) as daemon:
        daemon.wait_for("child sees")
        daemon.stop()
    assert "child sees nothing" in daemon.text()


def test_without_notify_socket_nothing_is_sent():
    notifier = pyrotorque.SystemdNotifier({})
    assert notifier.notify("READY=1") is False
    assert notifier.watchdog_timeout() is None


def test_a_watchdog_for_another_pid_is_not_ours(short_tmp):
    env = {"NOTIFY_SOCKET": str(short_tmp / "x"), "WATCHDOG_USEC": "1000000",
           "WATCHDOG_PID": str(os.getpid() + 1)}
    assert pyrotorque.SystemdNotifier(env).watchdog_interval is None
    env = {"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "1000000",
           "WATCHDOG_PID": str(os.getpid())}
    notifier = pyrotorque.SystemdNotifier(env)
    assert notifier.watchdog_interval == 0.5 and notifier.address == "\0abstract"
    assert env == {}        # removed, so children cannot inherit them
