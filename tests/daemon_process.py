"""Run pyrotorque.py as a real subprocess and watch what it logs."""
import os
import re
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "pyrotorque.py")


def run_cli(*args, env=None, timeout=30, command=None):
    """Run the command to its end; return (exit code, stdout, stderr).  ``command``
    (a list) replaces ``python3 pyrotorque.py``, e.g. a renamed copy of the script."""
    done = subprocess.run((command or [sys.executable, SCRIPT]) + list(args), capture_output=True,
                          text=True, timeout=timeout, env=_env(env), stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout, done.stderr


def _env(extra):
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra or {})
    return env


class DaemonProcess:
    """``pyrotorque.py ARGS`` in the foreground, its stderr collected in a file;
    ``command`` (a list) replaces ``python3 pyrotorque.py``."""

    def __init__(self, *args, workdir, env=None, command=None):
        self.log_path = os.path.join(str(workdir), "daemon-%d.log" % time.monotonic_ns())
        self._log = open(self.log_path, "w+")
        self.process = subprocess.Popen((command or [sys.executable, SCRIPT]) + list(args),
                                        stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=_env(env), start_new_session=True)

    @property
    def pid(self):
        return self.process.pid

    def text(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def wait_for(self, pattern, timeout=15.0, count=1):
        """Wait until ``pattern`` (a regex) appears ``count`` times in the log; return matches."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.findall(pattern, self.text())
            if len(found) >= count:
                return found
            if self.process.poll() is not None and len(re.findall(pattern, self.text())) < count:
                raise AssertionError("daemon exited (%s) before %r appeared:\n%s"
                                     % (self.process.returncode, pattern, self.text()))
            if time.monotonic() > deadline:
                raise AssertionError("%r did not appear %d times within %.0f s:\n%s"
                                     % (pattern, count, timeout, self.text()))
            time.sleep(0.05)

    def signal(self, signum):
        self.process.send_signal(signum)

    def stop(self, timeout=10.0):
        """SIGTERM, wait; SIGKILL if it hangs (and fail the test). Return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("daemon ignored SIGTERM:\n" + self.text())
        self._log.close()
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def torque_config(tmp, jobs, handler, extra=()):
    """A config dir under ``tmp`` whose torque.ini has ``jobs`` ({name: {param: value}},
    multi-line values allowed) with ``handler`` and ``second=*`` unless given, the default
    jobs switched off, and ``extra`` lines; return its path."""
    lines = ["[TORQUE]", "job.connstats.active = no", "job.queue.active = no",
             "job.treewatch.active = no"] + list(extra)
    for name, params in jobs.items():
        params = dict({"handler": handler, "schedule": "second=*"}, **params)
        for key, value in params.items():
            lines.append("job.%s.%s = %s" % (name, key, str(value).replace("\n", "\n    ")))
    cfg = os.path.join(str(tmp), "cfg")
    os.makedirs(cfg, exist_ok=True)
    with open(os.path.join(cfg, "torque.ini"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return cfg
