"""Helpers the job tests share: the daemon's event loop turned by the test, and small
looks at a real rTorrent and at the log.  (Processes are in daemon_process.py.)"""
import contextlib
import os
import re
import socket
import threading
import time

import pyrotorque


class _RaiseErrors:
    """A log for the loop that lets a callback's error fail the test instead of logging it."""

    def exception(self, *args):
        raise       # re-raises the error being handled


class Loop(pyrotorque.EventLoop):
    """The daemon's own event loop, turned by the test (``pump``), with the rest of what
    jobs use of the daemon; ``soon`` lists the jobs asked to run soon."""

    serving = True

    def __init__(self):
        super().__init__(log=_RaiseErrors())
        self.jobs = {}
        self.soon = []

    def run_soon(self, name):
        self.soon.append(name)

    def turn(self, wait=0.02):
        self.run_timers()
        self.poll_once(self.timer_timeout(wait))

    def pump(self, until, timeout=15.0, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            self.turn()
            if until():
                return
            if time.monotonic() > deadline:
                raise AssertionError("%s not reached within %.0f s" % (what, timeout))

    def idle(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.turn()


def hashes(rt):
    """The info-hashes a real rTorrent holds, sorted."""
    return sorted(row["d.hash"] for row in rt.downloads("d.hash="))


def logged(caplog, pattern):
    """The messages of the captured log records that match ``pattern``."""
    return [r.getMessage() for r in caplog.records if re.search(pattern, r.getMessage())]


@contextlib.contextmanager
def trickling_server(directory, name="slow.sock"):
    """A unix socket server that takes one request and then answers a byte every 50 ms,
    forever; yields (socket path, list that gets the request)."""
    path = os.path.join(directory, name)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    stop, seen = threading.Event(), []

    def trickle():
        conn, _ = server.accept()
        with conn:
            seen.append(conn.recv(65536))
            while not stop.is_set():
                try:
                    conn.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.05)

    threading.Thread(target=trickle, daemon=True).start()
    try:
        yield path, seen
    finally:
        stop.set()
        server.close()
