#!/usr/bin/env python3
"""bench — measure pyrotorque from the outside on a real rTorrent 0.9.8 (standard library only).

    python3 contrib/bench.py                    # N = 1,000 and 10,000, 3 repetitions (~12 min)
    python3 contrib/bench.py --quick            # smoke run: N = 1,000, 1 repetition (~1 min)
    python3 contrib/bench.py --items 2000 --repeat 5 --seconds 30
    python3 contrib/bench.py --no-pyrosimple    # our side only (no venv, no PyPI)
    python3 contrib/bench.py --rtorrent 0.16 --rpc json --items 10000 --no-pyrosimple
    python3 contrib/bench.py --seeding 0.9 --items 10000 --no-watch   # a seedbox

``--rtorrent`` picks the rTorrent every lab process runs (``system``: Debian 12's 0.9.8,
``0.16``, ``0.16-xmlrpc-c``; see ``rtlab.find_rtorrent``), ``--rpc`` the protocol our
daemon is told to use (``xml`` or ``json``: ``?rpc=`` on its URL; default: none, it
chooses itself, JSON where rTorrent answers it).  The discovery run and the raw floor
stay on XML-RPC (rTorrent logs only XML calls; the floor is the XML parse).

For every N it starts a fresh rTorrent from ``contrib/rtlab.py``, loads N tiny
synthetic metafiles *stopped* with ``load.raw`` (batched in ``system.multicall``,
count checked with ``view.size``), and then measures, ``--repeat`` times, each
daemon as a separate process, only from the outside: CPU is utime+stime from
``/proc/PID/stat``, memory is VmRSS from ``/proc/PID/status``, times are taken
when the daemon's log lines arrive on its stderr pipe.

Both daemons get the same work: pyrotorque (``pyrotorque.py`` beside ``contrib/``)
and pyrosimple 2.14.2's pyrotorque, installed from PyPI into a throwaway venv cached
under ``~/.cache/pyrotorque-bench/`` (``$XDG_CACHE_HOME``; the first run takes ~10 s
more).  If it cannot be installed (no PyPI), its column is skipped with the reason and
only ours is measured.  Each run of each daemon gets a fresh temp dir as its config
dir and HOME (pyrosimple: ``PYRO_CONF`` points at ``config.toml`` there, XDG dirs
inside it, ``PYRO_*`` variables of the caller dropped), so nothing of the user's is
read or written.  ``PYTHONDONTWRITEBYTECODE`` is not passed on: pip precompiled
pyrosimple, and a normal install of ours caches its bytecode beside ``pyrotorque.py``
after the first start (the first start of each N is then the only one that compiles).

startup  a queue job every second whose startable condition ``prio>3`` matches
         nothing (items have priority 0..3), so every tick fetches and evaluates
         all N items.  Ours: ``pyrotorque.py --fg -v --config-dir <tmp> -U <url>``
         with ``job.queue.startable = prio>3`` (connstats off).  pyrosimple:
         ``[TORQUE.queue]`` with ``handler = "pyrosimple.job.queue:QueueManager"``,
         ``schedule = "second=*"``, ``matcher = "prio>3"`` (everything else its
         defaults, e.g. ``FAST_QUERY = 0``), run as ``pyrotorque --fg -v -U <url>``.
         Launch -> the "started" line; launch -> the first completed tick; the first
         tick on its own (its start -> its end), and "started" plus that (the
         startup work without the wait for the schedule); daemon CPU used until
         then; RSS then.  The launch is put at a fixed phase (50 ms after a whole second),
         because a ``second=*`` schedule first fires on the next whole second (in
         both daemons): without that, launch -> first tick would jitter by up to a
         second between runs.
queue    the same process keeps running ``--seconds`` more; the window starts
         and ends right after a completed tick.  Daemon CPU and rTorrent CPU
         per completed tick (rTorrent's is the load a daemon puts on the user's
         client), ticks completed, RSS at the end: read 0.1 s after the last
         tick's line (what the daemon holds between ticks: ours hands freed memory
         back to the system right after each run, which is after that line) and,
         as a second row, at the line itself (near the tick's peak).
         The queue runs with each startable of ``QUEUE_CASES`` in turn: ``prio>3``
         (rTorrent's filter drops every item), ``[ prio>3 OR name=*zzz* ]`` (a
         name glob that matches nothing: rTorrent runs its regex once, then tests
         load dates), ``[ prio>3 OR done>50 ]`` (a computed field rTorrent
         compares with math.mul) and ``[ prio>3 OR name=/z.z/ ]`` (a regex
         rTorrent cannot run: every item is fetched and matched in the daemon);
         ``--one-queue-case`` keeps the first only.  Every item is one the queue
         must look at (the worst case for it); ``--seeding 0.9`` makes 90 % of the
         N items complete and seeding (data written to a temp dir, loaded started,
         trackers disabled), as on a seedbox, where the queue's own tests drop most
         items.
idle     each daemon's default jobs (ours: connstats every minute; pyrosimple has
         no default jobs): after the "started" line and 1 s to settle,
         ``--idle-seconds`` of daemon CPU per second, rTorrent CPU per second, RSS.
raw      the floor for a queue tick: one bare ``d.multicall2`` of the same
         commands the side's queue job asks for, sent with a minimal SCGI client
         (a pre-built request on a plain socket): round trip, parse time with
         ``xmlrpc.client.loads``, rTorrent CPU per call (averaged over several
         calls, since /proc counts CPU in clock ticks of 10 ms).

How a tick is seen.  Ours logs "Checked N item(s), none startable" per tick
(``-v``).  pyrosimple's queue logs nothing per run at ``-v`` unless it starts
something, so its pyrotorque is launched through a few-line shim
(``<venv>/bin/python -c``, see ``Pyrosimple.SHIM``) that only raises two loggers before
calling its normal entry point: APScheduler's executor (INFO: 'Running job "queue
..."' and 'Job "queue ..." executed successfully' around every run, 'skipped:
maximum number of running instances reached' for a run dropped because the last
one still ran) and pyrosimple's engine (DEBUG: "Got N items with K attributes"
after each fetch, which proves every tick fetched all N items of the view).
That is 4 short log lines per tick; nothing else about the daemon changes.
Its "started" line is APScheduler's 'Added job "queue"' (idle: "Scheduler
started", as it has no default jobs), its first tick starts at 'Running job'.

Which commands does the queue ask for?  By default the benchmark does not
guess: before the measurements it runs each side's queue job once (``--run-once
queue``, same configuration) against a small separate rTorrent started with
``log_xmlrpc=True``, and reads every ``d.multicall2`` / ``d.multicall.filtered``
call out of rTorrent's own XML-RPC log.  That is what the daemon really sends,
whatever its internals, and it works unchanged for any daemon.  The commands of
all those calls (in order, duplicates dropped) make the raw call; the table also
says how many multicalls one tick made.  ``--fields`` gives the commands
explicitly instead (e.g. to compare with a hand-picked set).

Every figure is the median of the repetitions (the two daemons alternate within
each repetition, on the same rTorrent); the table shows each daemon per N and
the ratio ours / pyrosimple of those medians, then the issue's targets (at
N = 10,000) as met / missed.  The details below list every run and the ratio of
every repetition (these shared machines are noisy: 20-30 % between runs is normal).

exporter each daemon's Prometheus exporter on the same rTorrent (N items), collecting
         ``system,tracker,item`` every 10 s: launch -> the first /metrics that holds
         every item's series, then ``--scrapes`` sequential GET /metrics (p50, p99),
         the series count, and the findings of ``promtool check metrics`` (if
         installed).  pyrosimple: ``pyrosimple.job.metrics:RtorrentExporter``.
watch    not per N: each daemon watches a folder of its own on a fresh, empty
         rTorrent (what one side loaded would be a duplicate for the other).
         ``--watch-files`` metafiles written (closed) or renamed in, one by one, each
         polled with d.hash every millisecond until it answers (p50, p99); a burst
         of ``--burst`` files, until view.size counts them; then ``--catchup`` files
         put into a new folder while the daemon is down (dated 10 s back, as if they
         arrived before the restart), launch -> all loaded.  Between burst and
         catch-up, the same tree (every file loaded) is watched with a scan every
         second (``schedule = second=*`` instead of the hourly default) for 10 s:
         daemon and rTorrent CPU per second, RSS.  pyrosimple:
         ``pyrosimple.job.watch:TreeWatch`` with ``check_unhandled`` (its only way
         to load what came while it was down).  The "raw" column is the floor: the
         same files read and sent with ``load.raw_verbose``, one call each, by a
         minimal client with no daemon in between.

Everything started here (rTorrent, daemons, temp dirs) is stopped by pid and
removed on exit, also on Ctrl-C or SIGTERM; the cached venv is kept.
"""
import argparse
import hashlib
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import rtlab  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
KINDS = ["flac", "mp3", "mkv", "avi", "iso", "epub", "bin"]


class BenchError(RuntimeError):
    """A measurement could not be made (the message says why)."""


# ─── Looking at processes from the outside ────────────────────────────────────────

def cpu_seconds(pid):
    """utime + stime of ``pid`` in seconds (resolution: one clock tick, usually 10 ms)."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    """VmRSS of ``pid`` in MiB."""
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise BenchError("no VmRSS for pid %d" % pid)


def machine():
    """(label, value) pairs describing where the benchmark ran."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return [("nproc", str(cores)), ("CPU", model),
            ("Python", "%s (%s)" % (platform.python_version(), sys.executable)),
            ("kernel", platform.release())]


# ─── Processes we start: a registry, so that every one is stopped by pid ──────────

_children = []          # subprocess.Popen objects of the daemons we launched
_children_lock = threading.Lock()


def stop_process(proc, timeout=10.0):
    """SIGTERM ``proc`` (its pid only), wait, then SIGKILL; always reap it."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10.0)
    with _children_lock:
        if proc in _children:
            _children.remove(proc)


def stop_all_children():
    with _children_lock:
        left = list(_children)
    for proc in left:
        try:
            stop_process(proc, timeout=3.0)
        except Exception:  # noqa: BLE001 - best effort while exiting
            pass


class DaemonProcess:
    """One daemon started with its stderr on a pipe; every log line is timestamped on arrival."""

    def __init__(self, argv, env=None, cwd=None):
        self.argv = argv
        self.lines = []                 # (time.monotonic(), text)
        self.cond = threading.Condition()
        self.eof = False
        self.launched = time.monotonic()
        with _children_lock:
            # start_new_session: the terminal's Ctrl-C reaches us, and we stop it ourselves.
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True)
            _children.append(self.proc)
        self.pid = self.proc.pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b""):
            stamp = time.monotonic()
            with self.cond:
                self.lines.append((stamp, raw.decode("utf-8", "replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_line(self, pattern, start=0, timeout=60.0):
        """Wait for a log line matching ``pattern`` at index >= ``start``; return (index, time, match)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            index = start
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index][1])
                    if match:
                        return index, self.lines[index][0], match
                    index += 1
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
        why = "exited with code %s" % self.proc.poll() if self.eof else \
            "timed out after %.0f s" % timeout
        raise BenchError("daemon %s waiting for /%s/\n  command: %s\n  last log lines:\n%s"
                         % (why, pattern, " ".join(self.argv), self.tail()))

    def count(self, pattern, start, end):
        return len(self.matches(pattern, start, end))

    def matches(self, pattern, start, end):
        """The match objects of ``pattern`` in log lines ``start`` .. ``end - 1``."""
        regex = re.compile(pattern)
        with self.cond:
            found = (regex.search(text) for _, text in self.lines[start:end])
            return [match for match in found if match]

    def tail(self, lines=15):
        with self.cond:
            return "\n".join("    " + text for _, text in self.lines[-lines:])

    def stop(self):
        stop_process(self.proc)
        self.reader.join(5.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


# ─── The daemons under test ───────────────────────────────────────────────────────

#: Not passed to either daemon: JOURNAL_STREAM (plain log lines on the pipe, please) and
#: PYTHONDONTWRITEBYTECODE (some CI machines set it; a normal install caches bytecode, and
#: pip precompiled pyrosimple's, so without it only one side would compile at every start).
NOT_PASSED = ("JOURNAL_STREAM", "PYTHONDONTWRITEBYTECODE")


class Side:
    """A daemon under test.  Subclasses say how to configure and launch it and what it logs."""

    name = "?"
    # Regular expressions for the log lines the measurements wait for.
    STARTED = None          # the daemon is up and has scheduled its jobs
    STARTED_IDLE = None     # the same with the idle configuration (default: STARTED)
    CONNECTED = None        # the start of the first tick (e.g. first contact with rTorrent)
    TICK_DONE = None        # a queue tick finished; group 1 = items checked, unless ITEMS
    ITEMS = None            # a fetch of the view's items; group 1 = how many (see items_checked)
    SKIPPED = None          # a queue run dropped because the previous one still ran
    STATS = None            # the connstats job ran
    WATCH_READY = None      # the tree watch is set up (a short settle follows)
    LOADED = None           # the tree watch loaded a file
    # The configurations write_config knows: see the module docstring.
    CONFIGS = ("queue", "idle", "watch", "exporter")

    def available(self):
        """None if it can be measured, else the reason why not (printed in its column)."""
        return None

    def write_config(self, config_dir, kind, **params):
        """Write the configuration for ``kind`` (one of CONFIGS) into ``config_dir``;
        ``params``: ``root`` for "watch", ``port`` for "exporter"."""
        raise NotImplementedError

    def command(self, config_dir, url, run_once=None):
        """argv that runs the daemon in the foreground (or one job once, for discovery)."""
        raise NotImplementedError

    def env(self, config_dir):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for name in NOT_PASSED:
            env.pop(name, None)
        return env

    def items_checked(self, daemon, start, done, match):
        """How many items the tick ending at log line ``done`` looked at (its start: ``start``)."""
        if self.ITEMS is None:
            return int(match.group(1))
        seen = [int(m.group(1)) for m in daemon.matches(self.ITEMS, start, done)]
        return seen[-1] if seen else None


class Pyrotorque(Side):
    name = "pyrotorque"
    STARTED = r"pyrotorque \S+ started \(pid \d+\)"
    CONNECTED = r"Connected to rTorrent"
    TICK_DONE = r"Checked (\d+) item\(s\), none startable"
    STATS = r"Stats for "
    WATCH_READY = r"Watching /"

    QUEUE_CONFIG = ("[TORQUE]\n"
                    "job.queue.active = True\n"
                    "job.queue.schedule = second=*\n"
                    "job.queue.startable = {startable}\n"
                    "job.connstats.active = False\n")
    IDLE_CONFIG = "[TORQUE]\n"      # the defaults: connstats every minute, nothing else
    WATCH_CONFIG = ("[TORQUE]\n"
                    "job.connstats.active = False\n"
                    "job.treewatch.active = True\n"
                    "job.treewatch.path = {root}\n"
                    "job.treewatch.schedule = {schedule}\n"
                    "job.treewatch.quiet = True\n")
    EXPORTER_CONFIG = ("[TORQUE]\n"
                       "job.connstats.active = False\n"
                       "job.exporter.active = True\n"
                       "job.exporter.handler = pyrotorque:RtorrentExporter\n"
                       "job.exporter.schedule = second=*/10\n"
                       "job.exporter.addr = 127.0.0.1\n"
                       "job.exporter.port = {port}\n"
                       "job.exporter.jobs = system,tracker,item\n")

    def __init__(self, script, rpc=None):
        self.script, self.rpc = script, rpc

    def available(self):
        if not os.path.isfile(self.script):
            return "not found: %s" % self.script
        return None

    def write_config(self, config_dir, kind, **params):
        with open(os.path.join(config_dir, "torque.ini"), "w") as handle:
            handle.write(getattr(self, kind.upper() + "_CONFIG").format(**params))

    def command(self, config_dir, url, run_once=None):
        rpc = "xml" if run_once else self.rpc   # discovery reads rTorrent's XML-RPC log
        if rpc:
            url += "?rpc=" + rpc
        argv = [sys.executable, self.script, "--config-dir", config_dir, "-U", url]
        return argv + (["--run-once", run_once] if run_once else ["--fg", "-v"])


PYROSIMPLE_VERSION = "2.14.2"


def cache_dir():
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                        "pyrotorque-bench")


class Pyrosimple(Side):
    """pyrosimple 2.14.2's pyrotorque, from PyPI in a throwaway venv (cached between runs)."""

    name = "pyrosimple"
    STARTED = r'Added job "queue" to job store'      # APScheduler, after the job was created
    STARTED_IDLE = r"Scheduler started"               # no jobs by default: the scheduler is up
    CONNECTED = r'Running job "queue '
    TICK_DONE = r'Job "queue \(.*\)" executed successfully'
    ITEMS = r"Got (\d+) items with \d+ attributes"
    SKIPPED = r'Execution of job "queue .* skipped|Run time of job "queue .* was missed'
    STATS = None                                      # it has no stats job
    WATCH_READY = r'Added job "watch" to job store'   # its inotify thread started before

    REQUIREMENT = "pyrosimple[torque]==%s" % PYROSIMPLE_VERSION   # [torque]: APScheduler, inotify
    HANDLERS = {"queue": "pyrosimple.job.queue:QueueManager",
                "watch": "pyrosimple.job.watch:TreeWatch",
                "exporter": "pyrosimple.job.metrics:RtorrentExporter"}
    # Its normal entry point (what the ``pyrotorque`` console script runs), with two loggers
    # raised so that every queue run shows in the log; see the module docstring.
    SHIM = ("import logging, sys\n"
            "logging.getLogger('apscheduler.executors').setLevel(logging.INFO)\n"
            "logging.getLogger('apscheduler.scheduler').setLevel(logging.INFO)\n"
            "logging.getLogger('pyrosimple.torrent.rtorrent.RtorrentEngine').setLevel(logging.DEBUG)\n"
            "sys.argv[0] = 'pyrotorque'\n"
            "from pyrosimple.scripts.pyrotorque import run\n"
            "sys.exit(run())\n")
    QUEUE_CONFIG = ('[TORQUE.queue]\n'
                    'handler = "%s"\n'
                    'schedule = "second=*"\n'
                    'matcher = "{startable}"\n' % HANDLERS["queue"])
    IDLE_CONFIG = ""                # the defaults: no jobs at all
    # check_unhandled: its only way to load what came while it was down (at start and
    # on every run; the hourly schedule keeps it to the start here).
    WATCH_CONFIG = ('[TORQUE.watch]\n'
                    'handler = "%s"\n'
                    'schedule = "{schedule}"\n'
                    'path = "{root}"\n'
                    'print_to_client = false\n'
                    'check_unhandled = true\n' % HANDLERS["watch"])
    EXPORTER_CONFIG = ('[TORQUE.exporter]\n'
                       'handler = "%s"\n'
                       'schedule = "second=*/10"\n'
                       'addr = "127.0.0.1"\n'
                       'port = {port}\n'
                       'jobs = "system,tracker,item"\n' % HANDLERS["exporter"])

    def __init__(self, venv=None, install=True, skip=None):
        self.venv = venv or os.path.join(cache_dir(), "pyrosimple-%s-py%d.%d" % (
            (PYROSIMPLE_VERSION,) + tuple(sys.version_info[:2])))
        self.python = os.path.join(self.venv, "bin", "python")
        self.install = install and not venv
        self._reason = skip         # None until prepared; then "" (ready) or why not
        self.installed_now = False

    def available(self):
        if self._reason is None:
            self._reason = self._prepare() or ""
        return self._reason or None

    def _version(self):
        """The pyrosimple version the venv holds (with APScheduler importable), else None."""
        if not os.path.exists(self.python):
            return None
        try:
            done = subprocess.run(
                [self.python, "-c", "import importlib.metadata as m, apscheduler, pyrosimple; "
                 "print(m.version('pyrosimple'))"], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60, env=self.clean_env())
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def _prepare(self):
        """Make sure the venv holds pyrosimple 2.14.2; return None, or why it can't be measured."""
        marker = os.path.join(self.venv, ".bench-complete")
        if os.path.exists(marker) or not self.install:
            version = self._version()
            if version == PYROSIMPLE_VERSION:
                return None
            if not self.install:
                return "skipped: no pyrosimple %s in %s (found: %s)" % (
                    PYROSIMPLE_VERSION, self.venv, version or "none")
        print("pyrosimple: installing %s into %s (from PyPI, once) ..." % (self.REQUIREMENT,
                                                                          self.venv), flush=True)
        shutil.rmtree(self.venv, ignore_errors=True)
        os.makedirs(os.path.dirname(self.venv), exist_ok=True)
        steps = [[sys.executable, "-m", "venv", self.venv],
                 [self.python, "-m", "pip", "install", "--disable-pip-version-check",
                  "--no-input", "--quiet", self.REQUIREMENT]]
        for argv in steps:
            try:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=600,
                                      env=dict(self.clean_env(), PIP_NO_INPUT="1"))
                failed = done.returncode != 0
                output = done.stdout.decode(errors="replace")
            except (OSError, subprocess.TimeoutExpired) as exc:
                failed, output = True, str(exc)
            if failed:
                shutil.rmtree(self.venv, ignore_errors=True)
                last = [line for line in output.splitlines()
                        if line.strip() and not line.startswith("WARNING: Location")][-3:]
                hint = ("PyPI not reachable?" if "pip" in argv else
                        "no venv module? (Debian: apt-get install python3-venv)")
                return ("skipped: could not install %s (%s): %s\n  %s"
                        % (self.REQUIREMENT, hint, " ".join(argv[:4]), "\n  ".join(last)))
        version = self._version()
        if version != PYROSIMPLE_VERSION:
            shutil.rmtree(self.venv, ignore_errors=True)
            return "skipped: the new venv holds pyrosimple %s, not %s" % (version,
                                                                          PYROSIMPLE_VERSION)
        with open(marker, "w") as handle:
            handle.write("%s\n" % self.REQUIREMENT)
        self.installed_now = True
        return None

    def write_config(self, config_dir, kind, **params):
        with open(os.path.join(config_dir, "config.toml"), "w") as handle:
            handle.write(getattr(self, kind.upper() + "_CONFIG").format(**params))

    @staticmethod
    def pyro_url(url):
        """rtlab's ``scgi:///path/rpc.sock`` is ``scgi+unix:///path/rpc.sock`` to pyrosimple."""
        if url.startswith("scgi:///"):
            return "scgi+unix://" + url[len("scgi://"):]
        return url

    def command(self, config_dir, url, run_once=None):
        argv = [self.python, "-c", self.SHIM, "-v", "-U", self.pyro_url(url)]
        return argv + (["--run-once", run_once] if run_once else ["--fg"])

    @staticmethod
    def clean_env():
        """The caller's environment without PYRO_* settings and Python paths."""
        return {k: v for k, v in os.environ.items()
                if not k.startswith("PYRO_") and k not in NOT_PASSED + (
                    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}

    def env(self, config_dir):
        """Its own HOME and XDG dirs; none of the caller's PYRO_* settings or Python paths."""
        env = self.clean_env()
        env.update(PYTHONUNBUFFERED="1", PYTHONNOUSERSITE="1", HOME=config_dir,
                   PYRO_CONF=os.path.join(config_dir, "config.toml"),
                   XDG_CONFIG_HOME=os.path.join(config_dir, ".config"),
                   XDG_CACHE_HOME=os.path.join(config_dir, ".cache"),
                   XDG_DATA_HOME=os.path.join(config_dir, ".local", "share"),
                   XDG_RUNTIME_DIR=config_dir)
        return env


# ─── Loading N synthetic items ───────────────────────────────────────────────────

#: The items' trackers (never reached: the items stay stopped).  --loopback-trackers puts
#: them on 127.0.0.x: rTorrent 0.16.17 aborts ("verify_libcurl_internal_wakeup ...
#: getsockname failed") after some 7,000-9,000 items with HTTP trackers at host names that
#: do not resolve, as on a machine without DNS; 0.9.8 does not.
ANNOUNCE = "http://tracker%d.example.org/announce"


def metafile(index, rng):
    """A tiny two-file metafile (a main file and a picture), as bench_conditions.py makes."""
    kind = KINDS[index % len(KINDS)]
    name = "Synthetic.Item.%05d.%s" % (index, kind)
    info = {"name": name, "piece length": 1 << 18,
            "pieces": hashlib.sha1(name.encode()).digest(),
            "files": [{"length": rng.randint(1000, 100000), "path": ["main.%s" % kind]},
                      {"length": rng.randint(0, 60000), "path": ["cover.jpg"]}]}
    return rtlab.bencode({"announce": ANNOUNCE % (index % 5), "info": info})


def seeding_metafile(index, folder):
    """A one-piece item whose data is written to ``folder``: started, it checks complete
    and seeds.  rTorrent needs a tracker in a metafile; load_items disables it, so that
    nothing announces (the seeding items' own timers are rTorrent's idle load)."""
    name = "Seeding.Item.%05d" % index
    data = name.encode() * 8
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)
    info = {"name": name, "piece length": 1 << 18, "length": len(data),
            "pieces": hashlib.sha1(data).digest()}
    return rtlab.bencode({"announce": "http://127.0.0.1:9/announce", "info": info})


def load_items(rt, count, seeding=0.0, folder=None, batch=500, timeout=600.0):
    """Load ``count`` items: the first ``seeding`` share complete and started (their data
    in ``folder``), the rest stopped with priorities 0..3; return the seconds it took."""
    rng = random.Random(42)
    started = time.monotonic()
    seeders = int(count * seeding)
    for first in range(0, count, batch):
        calls = []
        for i in range(first, min(first + batch, count)):
            if i < seeders:
                params = ["", xmlrpc.client.Binary(seeding_metafile(i, folder)),
                          "d.directory.set=" + folder, "t.multicall=,t.disable="]
                calls.append({"methodName": "load.raw_start", "params": params})
            else:
                params = ["", xmlrpc.client.Binary(metafile(i, rng)),
                          "d.priority.set=%d" % rng.randint(0, 3)]
                calls.append({"methodName": "load.raw", "params": params})
        rt.proxy.system.multicall(calls)
    rt.wait_for(lambda: rt.proxy.view.size("", "main") >= count, timeout, 0.1,
                "%d items in view main" % count)
    rt.wait_for(lambda: rt.proxy.view.size("", "complete") >= seeders, timeout, 0.5,
                "%d complete items" % seeders)
    size = rt.proxy.view.size("", "main")
    if size != count:
        raise BenchError("view main holds %d items, expected %d" % (size, count))
    return time.monotonic() - started


# ─── Which commands does a queue tick send? ──────────────────────────────────────

MULTICALLS = {"d.multicall2": 2, "d.multicall.filtered": 3}     # method: params before commands


def multicalls_in_log(text):
    """(method, commands) of every d.multicall2 / d.multicall.filtered request in an XML-RPC log."""
    found = []
    for body in re.findall(r"<methodCall>.*?</methodCall>", text, re.S):
        if "d.multicall" not in body:
            continue
        params, method = xmlrpc.client.loads(body)
        if method in MULTICALLS:
            found.append((method, [str(p) for p in params[MULTICALLS[method]:]]))
    return found


def discover_commands(side, tmp):
    """Run the side's queue job once against a small logged rTorrent; return its multicalls."""
    with rtlab.RTorrent(log_xmlrpc=True, parent=tmp, prefix="disc") as rt:
        load_items(rt, 20)
        config_dir = tempfile.mkdtemp(prefix="cfg", dir=tmp)
        side.write_config(config_dir, "queue", startable=QUEUE_CASES[0][1])
        argv = side.command(config_dir, rt.url, run_once="queue")
        done = subprocess.run(argv, env=side.env(config_dir), cwd=config_dir,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        if done.returncode != 0:
            raise BenchError("%s\nexited with %d:\n%s" % (" ".join(argv), done.returncode,
                                                          done.stdout.decode(errors="replace")))
        calls = multicalls_in_log(rt.xmlrpc_log_text())
    if not calls:
        raise BenchError("the queue job of %s sent no d.multicall2 (see --fields)" % side.name)
    return calls


def union_commands(calls):
    seen = []
    for _, commands in calls:
        seen.extend(c for c in commands if c not in seen)
    return seen


# ─── The measurements ────────────────────────────────────────────────────────────

def launch_at_phase(phase=0.05):
    """Sleep until ``phase`` seconds after a whole second of the wall clock."""
    now = time.time()
    delay = (phase - (now % 1.0)) % 1.0
    time.sleep(delay if delay > 0.005 else delay + 1.0)


#: Seconds after a tick's log line before the RSS between ticks is read.
RSS_SETTLE = 0.1


def measure_startup_and_queue(side, rt, count, seconds, tmp, startable=None):
    """One daemon run: startup figures, then the queue window.  Returns a dict of figures."""
    config_dir = tempfile.mkdtemp(prefix="cfg", dir=tmp)
    side.write_config(config_dir, "queue", startable=startable or QUEUE_CASES[0][1])
    argv = side.command(config_dir, rt.url)
    launch_at_phase()
    with DaemonProcess(argv, env=side.env(config_dir), cwd=config_dir) as daemon:
        _, t_started, _ = daemon.wait_line(side.STARTED)
        i_first, t_first, match = daemon.wait_line(side.TICK_DONE, timeout=120)
        # Right after a tick the daemon sleeps until the next whole second: read it now.
        cpu_first = cpu_seconds(daemon.pid)
        rss_first = rss_mib(daemon.pid)
        try:
            i_conn, t_conn, _ = daemon.wait_line(side.CONNECTED, timeout=0)
            first_tick = t_first - t_conn
        except BenchError:
            i_conn, first_tick = 0, float("nan")
        checked = side.items_checked(daemon, i_conn, i_first, match)
        if checked != count:
            raise BenchError("the first queue tick of %s checked %s items, expected %d\n%s"
                             % (side.name, checked, count, daemon.tail()))
        cpu_d0, cpu_r0, t0 = cpu_seconds(daemon.pid), cpu_seconds(rt.pid), time.monotonic()
        # The window ends right after the first tick completed once `seconds` have passed.
        index = i_first
        while True:
            previous = index
            index, t_end, match = daemon.wait_line(side.TICK_DONE, start=index + 1, timeout=120)
            checked = side.items_checked(daemon, previous + 1, index, match)
            if checked != count:
                raise BenchError("a queue tick of %s checked %s items, expected %d\n%s"
                                 % (side.name, checked, count, daemon.tail()))
            if t_end - t0 >= seconds:
                break
        cpu_d1, cpu_r1 = cpu_seconds(daemon.pid), cpu_seconds(rt.pid)
        rss_tick_end = rss_mib(daemon.pid)
        # What the daemon holds between ticks: a moment after the tick's last line
        # (ours hands freed memory back right after each run, after that line).
        time.sleep(RSS_SETTLE)
        rss_end = rss_mib(daemon.pid)
        ticks = daemon.count(side.TICK_DONE, i_first + 1, index + 1)
        window = t_end - t_first
        run = {
            "launch_started": t_started - daemon.launched,
            "launch_first_tick": t_first - daemon.launched,
            "first_tick": first_tick,
            "startup_work": t_started - daemon.launched + first_tick,
            "startup_cpu": cpu_first,
            "startup_rss": rss_first,
            "ticks": ticks,
            "tick_interval": window / ticks,
            "daemon_cpu_tick": (cpu_d1 - cpu_d0) / ticks,
            "rt_cpu_tick": (cpu_r1 - cpu_r0) / ticks,
            "queue_rss": rss_end,
            "queue_rss_tick_end": rss_tick_end,
        }
        if side.SKIPPED:
            run["skipped"] = daemon.count(side.SKIPPED, i_first + 1, index + 1)
    return run


def measure_idle(side, rt, seconds, tmp):
    config_dir = tempfile.mkdtemp(prefix="cfg", dir=tmp)
    side.write_config(config_dir, "idle")
    with DaemonProcess(side.command(config_dir, rt.url), env=side.env(config_dir),
                       cwd=config_dir) as daemon:
        daemon.wait_line(side.STARTED_IDLE or side.STARTED)
        time.sleep(1.0)
        i0 = len(daemon.lines)
        cpu_d0, cpu_r0, t0 = cpu_seconds(daemon.pid), cpu_seconds(rt.pid), time.monotonic()
        time.sleep(seconds)
        cpu_d1, cpu_r1, t1 = cpu_seconds(daemon.pid), cpu_seconds(rt.pid), time.monotonic()
        rss = rss_mib(daemon.pid)
        run = {"idle_rss": rss, "idle_cpu": (cpu_d1 - cpu_d0) / (t1 - t0),
               "idle_rt_cpu": (cpu_r1 - cpu_r0) / (t1 - t0)}
        if side.STATS:
            run["idle_stats_runs"] = daemon.count(side.STATS, i0, len(daemon.lines))
    return run


def scgi_exchange(address, request, timeout=120.0):
    """Send a ready SCGI request, return the whole reply (rTorrent closes after one answer)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def scgi_request(method, params):
    body = xmlrpc.client.dumps(tuple(params), method).encode("utf-8")
    headers = b"CONTENT_LENGTH\0%d\0SCGI\x001\0" % len(body)
    return b"%d:%s,%s" % (len(headers), headers, body)


def measure_raw(rt, commands, count, calls):
    """``calls`` bare d.multicall2 of ``commands``: medians of round trip and parse, CPU per call."""
    address = rtlab.parse_scgi_url(rt.url)
    request = scgi_request("d.multicall2", ["", "main"] + list(commands))
    trips, parses, size = [], [], 0
    cpu_r0 = cpu_seconds(rt.pid)
    for _ in range(calls):
        started = time.perf_counter()
        reply = scgi_exchange(address, request)
        trips.append(time.perf_counter() - started)
        xml = reply[reply.index(b"\r\n\r\n") + 4:]
        started = time.perf_counter()
        (rows,), _ = xmlrpc.client.loads(xml)
        parses.append(time.perf_counter() - started)
        if len(rows) != count:
            raise BenchError("raw d.multicall2 returned %d rows, expected %d" % (len(rows), count))
        size = len(reply)
        del rows, xml, reply
    cpu_r1 = cpu_seconds(rt.pid)
    return {"raw_size": size / 1048576.0, "raw_trip": statistics.median(trips),
            "raw_parse": statistics.median(parses), "raw_rt_cpu": (cpu_r1 - cpu_r0) / calls}


# ─── Watch: metafiles landing in a watched folder ─────────────────────────────────
#
# Each daemon watches a folder of its own on a fresh, empty rTorrent (the same
# binary and settings each time: what one side loaded would be a duplicate for the
# other).  Latency: a metafile is written there (closed) or renamed into it, every
# other one, then d.hash is polled every millisecond until it answers.  Burst:
# 1,000 files written at once, until view.size shows them all.  Catch-up: 50 files
# put into the folder before the daemon starts, from launch until all are loaded.
# The raw rows do the same loads with a minimal client and no daemon: the file is
# read and sent with load.raw_verbose (one call per file), which is the floor.

def watch_metafile(name):
    info = {"name": name, "piece length": 16384, "length": 1000,
            "pieces": hashlib.sha1(name.encode()).digest()}
    return rtlab.bencode({"announce": "http://127.0.0.1:6969/announce", "info": info})


def percentile(values, pct):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(pct / 100.0 * (len(values) - 1))))]


def answers(address, info_hash):
    reply = scgi_exchange(address, scgi_request("d.hash", [info_hash]), timeout=10)
    return b"<fault>" not in reply


def wait_loaded(address, count, started, timeout, what):
    """Poll view.size until it reaches ``count``; seconds since ``started``."""
    request = scgi_request("view.size", ["", "main"])
    while True:
        reply = scgi_exchange(address, request, timeout=30)
        (size,), _ = xmlrpc.client.loads(reply[reply.index(b"\r\n\r\n") + 4:])
        if size >= count:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise BenchError("%s: %d of %d loaded after %.0f s" % (what, size, count, timeout))
        time.sleep(0.01)


def drop_files(folder, prefix, count, how=None):
    """Write ``count`` metafiles into ``folder``; yield (info-hash, moment it was there)."""
    staging = folder + ".staging"
    os.makedirs(staging, exist_ok=True)
    for index in range(count):
        data = watch_metafile("%s%05d" % (prefix, index))
        target = os.path.join(folder, "%s%05d.torrent" % (prefix, index))
        if (how or ("rename" if index % 2 else "close")) == "rename":
            temp = os.path.join(staging, "tmp")
            with open(temp, "wb") as out:
                out.write(data)
            os.rename(temp, target)
        else:
            with open(target, "wb") as out:
                out.write(data)
        yield rtlab.infohash(data), time.monotonic(), target


def latency_run(address, folder, count, load=None):
    """Per-file latency: drop a file, poll d.hash every ms until it answers."""
    latencies = []
    for info_hash, there, path in drop_files(folder, "lat", count):
        if load:
            load(path)
        while not answers(address, info_hash):
            if time.monotonic() - there > 10:
                raise BenchError("%s did not load within 10 s" % path)
            time.sleep(0.001)
        latencies.append(time.monotonic() - there)
    return {"watch_p50": percentile(latencies, 50), "watch_p99": percentile(latencies, 99)}


def raw_loader(address):
    def load(path):
        with open(path, "rb") as handle:
            data = handle.read()
        scgi_exchange(address, scgi_request("load.raw_verbose", ["", xmlrpc.client.Binary(data)]))
    return load


#: Seconds the tree watch on a 1 s schedule is measured for.
WATCH_SCHEDULE_SECONDS = 10.0


def measure_watch(side, tmp, files, burst, catchup):
    """Latency, burst and catch-up of ``side``'s tree watch (``side`` None: the raw floor)."""
    run = {}
    with rtlab.RTorrent(parent=tmp, prefix="w") as rt:
        address = rtlab.parse_scgi_url(rt.url)
        root = tempfile.mkdtemp(prefix="watch", dir=tmp)
        loaded = 0
        if side is None:
            load = raw_loader(address)
            run.update(latency_run(address, root, files, load))
            loaded += files
            cpu, started = cpu_seconds(rt.pid), time.monotonic()
            for _, _, path in drop_files(root, "burst", burst, how="close"):
                load(path)
            loaded += burst
            run["watch_burst"] = wait_loaded(address, loaded, started, 600, "raw burst")
            run["watch_burst_rt_cpu"] = cpu_seconds(rt.pid) - cpu
            started = time.monotonic()
            for _, _, path in list(drop_files(root, "late", catchup, how="close")):
                load(path)
            loaded += catchup
            run["watch_catchup"] = wait_loaded(address, loaded, started, 600, "raw catch-up")
            return run
        config_dir = tempfile.mkdtemp(prefix="cfg", dir=tmp)
        side.write_config(config_dir, "watch", root=root, schedule="hour=*")
        with DaemonProcess(side.command(config_dir, rt.url), env=side.env(config_dir),
                           cwd=config_dir) as daemon:
            daemon.wait_line(side.WATCH_READY)
            time.sleep(1.0)         # both: the watches are set a moment after that line
            run.update(latency_run(address, root, files))
            loaded += files
            # Into the watched folder itself: files written into a brand-new subfolder
            # before pyrosimple's watch on it is set would be missed (ours scans it).
            cpu, started = cpu_seconds(rt.pid), time.monotonic()
            list(drop_files(root, "burst", burst, how="close"))
            loaded += burst
            run["watch_burst"] = wait_loaded(address, loaded, started, 600,
                                             "%s burst" % side.name)
            run["watch_burst_rt_cpu"] = cpu_seconds(rt.pid) - cpu
        # The same tree (every file loaded) with a scan every second instead of hourly.
        config_dir = tempfile.mkdtemp(prefix="cfg", dir=tmp)
        side.write_config(config_dir, "watch", root=root, schedule="second=*")
        with DaemonProcess(side.command(config_dir, rt.url), env=side.env(config_dir),
                           cwd=config_dir) as daemon:
            daemon.wait_line(side.WATCH_READY)
            time.sleep(2.0)
            cpu_d0, cpu_r0, t0 = cpu_seconds(daemon.pid), cpu_seconds(rt.pid), time.monotonic()
            time.sleep(WATCH_SCHEDULE_SECONDS)
            cpu_d1, cpu_r1, t1 = cpu_seconds(daemon.pid), cpu_seconds(rt.pid), time.monotonic()
            run["watch_sched_cpu"] = (cpu_d1 - cpu_d0) / (t1 - t0)
            run["watch_sched_rt_cpu"] = (cpu_r1 - cpu_r0) / (t1 - t0)
            run["watch_sched_rss"] = rss_mib(daemon.pid)
        # A new folder: pyrosimple's catch-up would load every file of the old one again.
        root = tempfile.mkdtemp(prefix="late", dir=tmp)
        arrived = time.time() - 10.0       # as if they came in before the restart
        for _, _, path in list(drop_files(root, "late", catchup, how="close")):
            os.utime(path, (arrived, arrived))
        loaded += catchup
        config_dir = tempfile.mkdtemp(prefix="cfg", dir=tmp)
        side.write_config(config_dir, "watch", root=root, schedule="hour=*")
        with DaemonProcess(side.command(config_dir, rt.url), env=side.env(config_dir),
                           cwd=config_dir) as daemon:
            run["watch_catchup"] = wait_loaded(address, loaded, daemon.launched, 600,
                                               "%s catch-up" % side.name)
            run["watch_rss"] = rss_mib(daemon.pid)
    return run


# ─── Exporter: /metrics ──────────────────────────────────────────────────────────

def scrape(port, timeout=60.0):
    """(status, body, seconds) of one GET /metrics on 127.0.0.1:port."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    took = time.perf_counter() - started
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(None, 2)[1]) if head else 0
    if b"chunked" in head.lower():
        body = _unchunk(body)
    return status, body, took


def _unchunk(data):
    out, pos = [], 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if not size:
            return b"".join(out)
        out.append(data[end + 2:end + 2 + size])
        pos = end + 4 + size


def promtool_findings(body):
    """Lines ``promtool check metrics`` prints about ``body``; None without promtool."""
    if shutil.which("promtool") is None:
        return None
    done = subprocess.run(["promtool", "check", "metrics"], input=body, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120)
    return len([line for line in done.stdout.decode(errors="replace").splitlines()
                if line.strip()])


def measure_exporter(side, rt, count, scrapes, tmp):
    """First full collection, then ``scrapes`` sequential scrapes: p50/p99, series, promtool."""
    config_dir = tempfile.mkdtemp(prefix="cfg", dir=tmp)
    port = rtlab.free_port()
    side.write_config(config_dir, "exporter", port=port)
    with DaemonProcess(side.command(config_dir, rt.url), env=side.env(config_dir),
                       cwd=config_dir) as daemon:
        body = b""
        while body.count(b'hash="') < 2 * count:     # down.total and up.total per item
            if time.monotonic() - daemon.launched > 300:
                raise BenchError("%s: no full /metrics within 300 s\n%s"
                                 % (side.name, daemon.tail()))
            if daemon.eof:
                raise BenchError("%s exited\n%s" % (side.name, daemon.tail()))
            time.sleep(0.2)
            try:
                status, body, _ = scrape(port)
            except OSError:
                continue
        first = time.monotonic() - daemon.launched
        times = []
        for _ in range(scrapes):
            status, body, took = scrape(port)
            if status != 200:
                raise BenchError("%s: /metrics answered %d" % (side.name, status))
            times.append(took)
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        run = {"scrape_p50": percentile(times, 50), "scrape_p99": percentile(times, 99),
               "scrape_first": first, "series": series, "scrape_rss": rss_mib(daemon.pid)}
    findings = promtool_findings(body)
    if findings is not None:
        run["promtool"] = findings
    return run


# ─── The table ───────────────────────────────────────────────────────────────────

def _s(v):
    return "%.2f s" % v


def _ms(v):
    return "%.0f ms" % (v * 1000) if v >= 0.0995 else "%.1f ms" % (v * 1000)


def _rate(v):
    """CPU per second over a window of ~10 s: /proc counts 10 ms ticks, so 1 ms/s is the step."""
    return "< 1 ms" if v < 0.0005 else "%.0f ms" % (v * 1000)


def _mib(v):
    return "%.1f MiB" % v


def _n(v):
    return "%g" % v


ROWS = [
    ("startup (queue job every second, nothing startable)", None, None),
    ("launch -> 'started' line", "launch_started", _s),
    ("launch -> first tick done (launch at x.05 s)", "launch_first_tick", _s),
    ("first tick alone (its start -> done)", "first_tick", _s),
    ("launch -> started, plus first tick alone (no wait)", "startup_work", _s),
    ("daemon CPU, launch -> first tick done", "startup_cpu", _s),
    ("RSS at first tick", "startup_rss", _mib),
    ("queue tick every 1 s (window: --seconds)", None, None),
    ("multicalls per tick (rTorrent's XML-RPC log)", "multicalls", _n),
    ("ticks completed in the window", "ticks", _n),
    ("runs skipped in the window (its log)", "skipped", _n),
    ("mean time between ticks", "tick_interval", _s),
    ("daemon CPU per tick", "daemon_cpu_tick", _ms),
    ("rTorrent CPU per tick", "rt_cpu_tick", _ms),
    ("RSS at the end (0.1 s after a tick's line)", "queue_rss", _mib),
    ("RSS at the end, read at the tick's line", "queue_rss_tick_end", _mib),
    ("idle (default jobs: ours connstats/min, pyrosimple none)", None, None),
    ("RSS", "idle_rss", _mib),
    ("daemon CPU per second", "idle_cpu", _rate),
    ("rTorrent CPU per second (N items, no daemon work)", "idle_rt_cpu", _rate),
    ("connstats runs in the window", "idle_stats_runs", _n),
    ("raw limit: one bare d.multicall2 of the queue's commands", None, None),
    ("reply size", "raw_size", _mib),
    ("round trip (minimal SCGI client)", "raw_trip", _ms),
    ("parse (xmlrpc.client.loads)", "raw_parse", _ms),
    ("rTorrent CPU per call", "raw_rt_cpu", _ms),
    ("exporter: /metrics with system,tracker,item (collecting every 10 s)", None, None),
    ("launch -> first complete /metrics", "scrape_first", _s),
    ("scrape p50 (sequential scrapes)", "scrape_p50", _ms),
    ("scrape p99", "scrape_p99", _ms),
    ("series", "series", _n),
    ("promtool check metrics: findings", "promtool", _n),
    ("RSS after the scrapes", "scrape_rss", _mib),
]
NO_RATIO = {"multicalls", "ticks", "skipped", "idle_stats_runs", "series", "promtool"}

#: The queue's startable conditions measured: (key suffix, condition, what it shows).  The
#: first is the one above; the others get their own rows (``KEY:suffix``) and targets.
QUEUE_CASES = [
    ("", "prio>3", "integers only: rTorrent's filter drops every item"),
    ("text", "[ prio>3 OR name=*zzz* ]", "a name glob that matches nothing: its regex runs "
     "once (the name index), then rTorrent tests load dates"),
    ("done", "[ prio>3 OR done>50 ]", "a computed field: rTorrent compares 2 * completed chunks "
     "with the chunks"),
    ("all", "[ prio>3 OR name=/z.z/ ]", "a regex rTorrent cannot run: every item is fetched "
     "and matched here"),
]
#: Rows measured for each further queue case.
CASE_ROWS = [
    ("launch -> first tick done (launch at x.05 s)", "launch_first_tick", _s),
    ("launch -> started, plus first tick alone (no wait)", "startup_work", _s),
    ("ticks completed in the window", "ticks", _n),
    ("daemon CPU per tick", "daemon_cpu_tick", _ms),
    ("rTorrent CPU per tick", "rt_cpu_tick", _ms),
    ("RSS at the end (0.1 s after a tick's line)", "queue_rss", _mib),
    ("RSS at the end, read at the tick's line", "queue_rss_tick_end", _mib),
]


def case_rows(cases):
    """ROWS plus a group of CASE_ROWS for each further queue case."""
    rows = list(ROWS)
    for suffix, condition, _ in cases[1:]:
        rows.append(("queue, startable = %s" % condition, None, None))
        rows.extend((label, "%s:%s" % (key, suffix), fmt) for label, key, fmt in CASE_ROWS)
        NO_RATIO.add("ticks:" + suffix)
    return rows


WATCH_ROWS = [
    ("close/rename -> d.hash answers, p50", "watch_p50", _ms),
    ("close/rename -> d.hash answers, p99", "watch_p99", _ms),
    ("burst: all loaded, from the first write", "watch_burst", _s),
    ("burst: rTorrent CPU meanwhile", "watch_burst_rt_cpu", _s),
    ("catch-up: files put in while down, launch -> all loaded", "watch_catchup", _s),
    ("RSS after the catch-up", "watch_rss", _mib),
    ("schedule every 1 s (tree of files+burst): daemon CPU/s", "watch_sched_cpu", _rate),
    ("schedule every 1 s: rTorrent CPU per second", "watch_sched_rt_cpu", _rate),
    ("schedule every 1 s: RSS", "watch_sched_rss", _mib),
]

# The targets: (what, key, largest ratio ours / pyrosimple that meets it), at N = 10,000.
TARGETS = [
    ("daemon CPU per queue tick", "daemon_cpu_tick", 0.25),
    ("rTorrent CPU per queue tick", "rt_cpu_tick", 0.5),
    ("RSS (end of the queue run)", "queue_rss", 0.5),
    ("startup: launch -> first queue tick done", "launch_first_tick", 0.25),
    # The same without the wait for the first whole second (a ``second=*`` schedule fires
    # there in both daemons; launched at x.05 s that is 0.95 s for each, which alone keeps
    # the literal ratio near 1 whenever the ticks are short): the startup work itself.
    ("  same, without the common wait for x+1.00 s", "startup_work", 0.25),
]
TARGET_N = 10000
#: The targets checked for each further queue case as well.
CASE_TARGETS = ["daemon_cpu_tick", "rt_cpu_tick", "queue_rss", "launch_first_tick", "startup_work"]
EXPORTER_TARGETS = [
    ("exporter: scrape p99", "scrape_p99", 0.25),
]
# Watch targets: (what, key, largest ratio against pyrosimple, largest ratio against raw).
WATCH_TARGETS = [
    ("watch: latency p99", "watch_p99", 1.0, None),
    ("watch: burst of files", "watch_burst", None, 1.5),
    ("watch: catch-up", "watch_catchup", 0.2, None),
]


def median_of(runs, key):
    values = [run[key] for run in runs if key in run and run[key] == run[key]]  # drop NaN
    return statistics.median(values) if values else None


def ratio(ours, theirs):
    """ours / theirs, or None when either is missing or theirs is 0."""
    if ours is None or not theirs:
        return None
    return ours / theirs


def _ratio(value):
    if value is None:
        return "-"
    return "%.2f" % value if value >= 0.0995 else "%.3f" % value


def print_table(sides, counts, results, out=sys.stdout):
    """``results[side.name][count]`` is the list of per-repetition dicts.

    One column per measured side and N, and with two sides the ratio of their medians
    (first side / second side: ours / pyrosimple)."""
    measured = [side for side in sides if not side.available()]
    for side in sides:
        if side.available():
            out.write("\n%s: %s\n" % (side.name, side.available()))
    if not measured:
        return
    compare = len(measured) == 2
    rows = case_rows(QUEUE_CASES)
    width = max(len(label) for label, _, _ in rows) + 2
    col, rcol = 12, 8
    group = col * len(measured) + (rcol if compare else 0)
    out.write("\n" + " " * width + "".join(
        ("N = {:,}".format(n)).center(group) for n in counts) + "\n")
    names = "".join("%*s" % (col, side.name) for side in measured)
    names += "%*s" % (rcol, "ratio") if compare else ""
    out.write(" " * width + names * len(counts) + "\n")
    for label, key, fmt in rows:
        if key is None:
            out.write("%s\n" % label)
            continue
        cells = []
        for n in counts:
            values = [median_of(results[side.name].get(n, []), key) for side in measured]
            cells.extend("%*s" % (col, "-" if v is None else fmt(v)) for v in values)
            if compare:
                cells.append("%*s" % (rcol, "" if key in NO_RATIO else
                                      _ratio(ratio(values[0], values[1]))))
        out.write("  %-*s" % (width - 2, label) + "".join(cells) + "\n")
    if compare:
        out.write("(ratio = %s / %s, of the medians; below 1 = %s needs less)\n"
                  % (measured[0].name, measured[1].name, measured[0].name))


def print_targets(sides, counts, results, out=sys.stdout):
    """The issue's queue targets, met or missed, at N = 10,000 (else the largest N run)."""
    measured = [side for side in sides if not side.available()]
    if len(measured) != 2:
        out.write("\nTargets: not checked (%s)\n" % "; ".join(
            "%s %s" % (s.name, s.available()) for s in sides if s.available()))
        return
    ours, theirs = measured
    n = TARGET_N if TARGET_N in counts else max(counts)
    out.write("\nTargets (issue 10), at N = {:,}{}: ratio {} / {} of the medians\n".format(
        n, "" if n == TARGET_N else " (the issue sets them at N = 10,000: not run)",
        ours.name, theirs.name))
    targets = list(TARGETS)
    for suffix, condition, _ in QUEUE_CASES[1:]:
        targets.append(("queue, startable = %s:" % condition, None, None))
        targets.extend(("  " + label.strip(), "%s:%s" % (key, suffix), limit)
                       for label, key, limit in TARGETS if key in CASE_TARGETS)
    for label, key, limit in targets + EXPORTER_TARGETS:
        if key is None:
            out.write("  %s\n" % label)
            continue
        mine = median_of(results[ours.name].get(n, []), key)
        other = median_of(results[theirs.name].get(n, []), key)
        value = ratio(mine, other)
        verdict = "-" if value is None else ("met" if value <= limit else "MISSED")
        per_rep = [ratio(a.get(key), b.get(key)) for a, b in
                   zip(results[ours.name].get(n, []), results[theirs.name].get(n, []))]
        out.write("  %-44s <= %-4s %6s  %-6s  (each repetition: %s)\n"
                  % (label, "1/%d" % round(1 / limit), _ratio(value), verdict,
                     ", ".join(_ratio(r) for r in per_rep)))


def print_watch(sides, watch, args, out=sys.stdout):
    """The watch table: each side, the raw floor, and the ratios; then its targets."""
    measured = [side for side in sides if not side.available()]
    columns = [side.name for side in measured] + ["raw"]
    out.write("\nwatch (%d files one by one, a burst of %d, catch-up of %d; a fresh rTorrent "
              "each)\n" % (args.watch_files, args.burst, args.catchup))
    width = max(len(label) for label, _, _ in WATCH_ROWS) + 4
    ratios = (["%s/%s" % (measured[0].name[:6], measured[1].name[:6])] if len(measured) == 2
              else []) + ["%s/raw" % measured[0].name[:6]]
    out.write(" " * width + "".join("%12s" % c for c in columns + ratios) + "\n")
    for label, key, fmt in WATCH_ROWS:
        values = [median_of(watch.get(c, []), key) for c in columns]
        cells = ["%12s" % ("-" if v is None else fmt(v)) for v in values]
        if len(measured) == 2:
            cells.append("%12s" % _ratio(ratio(values[0], values[1])))
        cells.append("%12s" % _ratio(ratio(values[0], values[-1])))
        out.write("  %-*s" % (width - 2, label) + "".join(cells) + "\n")
    ours = measured[0].name
    p99, raw_p99 = median_of(watch.get(ours, []), "watch_p99"), median_of(watch.get("raw", []),
                                                                           "watch_p99")
    out.write("\nWatch targets (issue 10):\n")
    for label, key, limit, raw_limit in WATCH_TARGETS:
        mine = median_of(watch.get(ours, []), key)
        if limit is not None and len(measured) == 2:
            value = ratio(mine, median_of(watch.get(measured[1].name, []), key))
            verdict = "-" if value is None else ("met" if value <= limit else "MISSED")
            out.write("  %-44s <= %-5s %6s  %s (vs %s)\n" % (label, _ratio(limit), _ratio(value),
                                                            verdict, measured[1].name))
        if raw_limit is not None:
            value = ratio(mine, median_of(watch.get("raw", []), key))
            verdict = "-" if value is None else ("met" if value <= raw_limit else "MISSED")
            out.write("  %-44s <= %-5s %6s  %s (vs raw load.raw)\n"
                      % (label, _ratio(raw_limit), _ratio(value), verdict))
    if p99 is not None and raw_p99 is not None:
        gap = p99 - raw_p99
        out.write("  %-44s <= 2 ms %5.1f ms %s (vs raw load.raw)\n"
                  % ("watch: latency p99 above the raw floor", gap * 1000,
                     "met" if gap <= 0.002 else "MISSED"))


def print_details(sides, counts, results, extra, out=sys.stdout):
    out.write("\nEvery run (the table shows medians):\n")
    for side in sides:
        if side.available():
            continue
        for n in counts:
            runs = results[side.name].get(n, [])
            out.write("  %s, N = %s:\n" % (side.name, "{:,}".format(n)))
            for label, key, fmt in case_rows(QUEUE_CASES):
                if key is None:
                    continue
                values = [run[key] for run in runs if key in run]
                if values:
                    out.write("    %-50s %s\n" % (label, ", ".join(fmt(v) for v in values)))
    for line in extra:
        out.write("  %s\n" % line)


# ─── Main ────────────────────────────────────────────────────────────────────────

def _terminate(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", default="1000,10000",
                        help="comma-separated item counts N (default: 1000,10000)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per measurement")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="length of the queue-tick window (default: 20)")
    parser.add_argument("--idle-seconds", type=float, default=10.0,
                        help="length of the idle window (default: 10)")
    parser.add_argument("--scrapes", type=int, default=50, help="scrapes of /metrics (default: 50)")
    parser.add_argument("--watch-files", type=int, default=200,
                        help="files for the watch latency (default: 200)")
    parser.add_argument("--burst", type=int, default=1000, help="files in the burst (default: 1000)")
    parser.add_argument("--catchup", type=int, default=50,
                        help="files put in while the daemon is down (default: 50)")
    parser.add_argument("--no-watch", action="store_true", help="leave out the watch section")
    parser.add_argument("--seeding", type=float, default=0.0, metavar="SHARE",
                        help="this share of the N items is complete and seeding, as on a "
                        "seedbox (default: 0, every item is a stopped one the queue looks at)")
    parser.add_argument("--one-queue-case", action="store_true",
                        help="measure the queue with its first startable (prio>3) only")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N = 1000, one repetition")
    parser.add_argument("--fields", help="the commands of the raw d.multicall2, separated by "
                        "spaces (default: read from what the queue job sends)")
    parser.add_argument("--pyrotorque", default=os.path.join(REPO, "pyrotorque.py"),
                        help="the pyrotorque.py to measure (default: the one beside contrib/)")
    parser.add_argument("--rtorrent", metavar="VERSION",
                        help="the rTorrent to run: system (0.9.8, default), 0.16, 0.16-xmlrpc-c")
    parser.add_argument("--rpc", choices=("xml", "json"),
                        help="the protocol pyrotorque is told to use (default: its own choice)")
    parser.add_argument("--loopback-trackers", action="store_true",
                        help="items announce to 127.0.0.x, not trackerN.example.org (see ANNOUNCE)")
    parser.add_argument("--no-pyrosimple", action="store_true",
                        help="measure our side only (no venv, no PyPI)")
    parser.add_argument("--pyrosimple-venv", metavar="DIR",
                        help="an existing venv holding pyrosimple %s (default: one installed "
                        "from PyPI and cached under ~/.cache/pyrotorque-bench/)"
                        % PYROSIMPLE_VERSION)
    args = parser.parse_args(argv)
    if args.one_queue_case:
        del QUEUE_CASES[1:]
    if args.quick:
        args.items, args.repeat = "1000", 1
        args.watch_files, args.burst, args.scrapes = 50, 200, 10
    try:
        args.counts = [int(n.replace("_", "")) for n in args.items.split(",") if n.strip()]
    except ValueError:
        parser.error("--items: comma-separated integers, e.g. 1000,10000")
    if not args.counts or min(args.counts) < 1 or args.repeat < 1:
        parser.error("need at least one N >= 1 and --repeat >= 1")
    if not 0.0 <= args.seeding < 1.0:
        parser.error("--seeding: a share from 0 to below 1, e.g. 0.9")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.loopback_trackers:
        global ANNOUNCE
        ANNOUNCE = "http://127.0.0.1%d:6969/announce"
    if args.rtorrent:   # through the environment, as the tests do: every lab process
        os.environ["PYROTORQUE_RTORRENT"] = args.rtorrent
    if args.rtorrent in (None, "system") and shutil.which("rtorrent") is None:
        sys.stderr.write("bench.py: rtorrent is not installed (or not on PATH); it needs the "
                         "real rTorrent 0.9.8: apt-get install rtorrent\n")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    sides = [Pyrotorque(args.pyrotorque, args.rpc),
             Pyrosimple(venv=args.pyrosimple_venv,
                        skip="skipped (--no-pyrosimple)" if args.no_pyrosimple else None)]
    for side in sides:
        if side.available():
            sys.stderr.write("bench.py: %s %s\n" % (side.name, side.available()))
    measured = [side for side in sides if side.available() is None]
    if not measured:
        sys.stderr.write("bench.py: nothing to measure: %s\n"
                         % "; ".join("%s %s" % (s.name, s.available()) for s in sides))
        return 2
    begun = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bench")
    results = {side.name: {} for side in sides}
    watch = {}                  # side name or "raw" -> list of per-repetition dicts
    extra = []
    rt_version = "?"
    try:
        commands, multicalls = {}, {}
        for side in measured:
            if isinstance(side, Pyrosimple):
                extra.append("pyrosimple %s: %s -c <Pyrosimple.SHIM> -v -U scgi+unix://... --fg "
                             "(venv %s)" % (PYROSIMPLE_VERSION, side.python,
                                            "installed now" if side.installed_now else "cached"))
            if args.fields:
                commands[side.name] = args.fields.split()
                extra.append("%s raw commands (from --fields): %s"
                             % (side.name, " ".join(commands[side.name])))
            else:
                calls = discover_commands(side, tmp)
                commands[side.name] = union_commands(calls)
                multicalls[side.name] = len(calls)
                extra.append("%s: one queue tick sent %d multicall(s): %s"
                             % (side.name, len(calls), "; ".join(
                                 "%s of %d commands" % (m, len(c)) for m, c in calls)))
                extra.append("%s raw commands (%d, from its XML-RPC log): %s"
                             % (side.name, len(commands[side.name]), " ".join(commands[side.name])))
            print("%s: the raw d.multicall2 uses %d commands" % (side.name, len(commands[side.name])),
                  flush=True)
        for count in args.counts:
            with rtlab.RTorrent(rpc_timeout=300, parent=tmp) as rt:
                rt_version = "%s (libtorrent %s)" % (rt.proxy.system.client_version(),
                                                     rt.proxy.system.library_version())
                seed_dir = tempfile.mkdtemp(prefix="seed", dir=tmp)
                took = load_items(rt, count, args.seeding, seed_dir)
                extra.append("N = {:,}: loaded with load.raw in {:.1f} s{}".format(
                    count, took, ", %d %% of it seeding" % round(args.seeding * 100)
                    if args.seeding else ""))
                print("N = {:,}: loaded in {:.1f} s".format(count, took), flush=True)
                for rep in range(args.repeat):
                    for side in measured:       # sides interleaved: same conditions for each
                        run = {"multicalls": multicalls[side.name]} \
                            if side.name in multicalls else {}
                        run.update(measure_startup_and_queue(side, rt, count, args.seconds, tmp))
                        time.sleep(0.5)
                        for suffix, startable, _ in QUEUE_CASES[1:]:
                            figures = measure_startup_and_queue(side, rt, count, args.seconds,
                                                                tmp, startable)
                            run.update(("%s:%s" % (key, suffix), value)
                                       for key, value in figures.items())
                            time.sleep(0.5)
                        run.update(measure_idle(side, rt, args.idle_seconds, tmp))
                        time.sleep(0.5)
                        run.update(measure_raw(rt, commands[side.name], count,
                                               calls=max(3, -(-20000 // count))))
                        run.update(measure_exporter(side, rt, count, args.scrapes, tmp))
                        results[side.name].setdefault(count, []).append(run)
                        print("  %s run %d/%d: first tick %.2f s, %d ticks, daemon CPU/tick "
                              "%.0f ms, rTorrent CPU/tick %.0f ms  (%.0f s so far)"
                              % (side.name, rep + 1, args.repeat, run["launch_first_tick"],
                                 run["ticks"], run["daemon_cpu_tick"] * 1000,
                                 run["rt_cpu_tick"] * 1000, time.monotonic() - begun), flush=True)
        for rep in range(0 if args.no_watch else args.repeat):
            for side in measured + [None]:
                name = side.name if side else "raw"
                run = measure_watch(side, tmp, args.watch_files, args.burst, args.catchup)
                watch.setdefault(name, []).append(run)
                print("  watch, %s run %d/%d: p99 %.1f ms, burst %.1f s, catch-up %.2f s  "
                      "(%.0f s so far)" % (name, rep + 1, args.repeat, run["watch_p99"] * 1000,
                                           run["watch_burst"], run["watch_catchup"],
                                           time.monotonic() - begun), flush=True)
    except KeyboardInterrupt:
        sys.stderr.write("\nbench.py: interrupted, stopping what it started\n")
        return 130
    except (BenchError, rtlab.LabError) as exc:
        sys.stderr.write("bench.py: %s\n" % exc)
        return 1
    finally:
        stop_all_children()
        shutil.rmtree(tmp, ignore_errors=True)

    print("\npyrotorque benchmark: medians of %d repetition(s); queue window %g s, idle window %g s"
          % (args.repeat, args.seconds, args.idle_seconds))
    for label, value in machine() + [("rTorrent", rt_version),
                                     ("protocol", args.rpc or "pyrotorque's choice"),
                                     ("items", "%d %% seeding, the rest stopped"
                                      % round(args.seeding * 100))]:
        print("  %-9s %s" % (label + ":", value))
    print_table(sides, args.counts, results)
    print_targets(sides, args.counts, results)
    if watch:
        print_watch(sides, watch, args)
        for name, runs in sorted(watch.items()):
            extra.append("watch, %s: %s" % (name, "; ".join(
                ", ".join("%s %s" % (key, fmt(run[key])) for _, key, fmt in WATCH_ROWS
                          if key in run) for run in runs)))
    print_details(sides, args.counts, results, extra)
    print("\nTotal run time: %.0f s" % (time.monotonic() - begun))
    return 0


if __name__ == "__main__":
    sys.exit(main())
