#!/usr/bin/env python3
"""soak — pyrotorque for a long time under faults, measured from the outside (standard library only).

    python3 contrib/soak.py                          # 60 minutes, 10,000 items
    python3 contrib/soak.py --minutes 20 --seed 7    # another plan of faults
    python3 contrib/soak.py --short                  # the CI run: ~90 s, a few hundred items
    python3 contrib/soak.py --short --rtorrent 0.16 --json /tmp/soak.json

What runs.  A real rTorrent from ``contrib/rtlab.py`` (``--rtorrent`` picks the
binary as the lab does) holding ``--items`` stopped synthetic items (bench.py's
metafiles, priority 0, no data), a small real swarm on loopback (opentracker and
a throttled seeder) whose torrents the soak drops into the watched tree one
after another, and the real daemon, ``python3 pyrotorque.py --fg`` with a
generated torque.ini: connstats, the item poller, the queue (``downloading_max``
2, only the swarm's items startable), the tree watch, the exporter, an exec
command, an action rule, the completion handler (target on a small tmpfs when
mount works, else a plain folder) and the statistics archive, each on a
schedule of one to five seconds.  RemoteWatch, TorrentMirror and TorrentMover
need servers and stay off.

The faults, in an order and at times drawn from ``--seed`` (each kind at least
once, then at random):

rt_kill      rTorrent SIGKILLed; a burst of metafiles lands in the tree while it is
             down (good ones, broken ones, duplicates under other names, hostile
             names with ``;$(),'"`` and a newline); restarted on its session.
rt_stop      rTorrent SIGSTOPped for longer than ``rpc_timeout``, then SIGCONT.
overflow     inotify overflow: ``fs.inotify.max_queued_events`` set to 8 while the
             daemon restarts (restored once its start scan has set up the watches,
             and at exit), then a flood of file events while the daemon is
             SIGSTOPped; without a writable sysctl a bigger flood.
hup_change   torque.ini changed (a job's schedule), then SIGHUP.
hup_broken   a broken torque.ini, SIGHUP, then the good one back.
disk_full    the completion target filled up while a move copies into it.
http_abuse   stuck, slow and garbage HTTP clients on the exporter (more than its
             ``max_connections``) while the scrapes go on.
daemon_kill  the daemon SIGKILLed and started again a second later, as systemd would
             (a random one at most once in 15 minutes).

Every ``--sample`` seconds: the daemon's RSS, open fds, threads and children
(``/proc``), one scrape of ``/metrics`` (its latency, the daemon's
``pyrotorque_loop_lag_seconds``: how late a due job or timer ran, at most, in the
last minute, and ``pyrotorque_job_last_duration_seconds``), and how many
items rTorrent has downloading.  Slopes per hour are fitted after a warm-up, within
each life of the daemon (a restart starts a new RSS), pooled.

At the end the invariants are checked (see ``check_invariants``) and a report is
printed; ``--json`` writes the figures, the invariants, every fault with the
daemon's log lines about it, and the samples.  Exit code 0 when every invariant
held, 1 otherwise, 2 when the lab could not be set up.
"""
import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the synthetic metafiles, /proc readers and scrape())
import rtlab  # noqa: E402

SCRIPT = os.path.join(REPO, "pyrotorque.py")
INOTIFY_SYSCTL = "/proc/sys/fs/inotify/max_queued_events"
FAULT_KINDS = ("rt_kill", "rt_stop", "overflow", "hup_change", "hup_broken", "disk_full",
               "http_abuse", "daemon_kill")
SWARM_PREFIX = "soakswarm"

#: Seconds between two random daemon_kill faults, at least (see Faults.plan).
KILL_SPACING = 900.0
DOWNLOADING_MAX = 2
RT_START_TIMEOUT = 600.0    # rTorrent reads 10,000 session files before it answers
LAG_WINDOW = 60.0   # pyrotorque_loop_lag_seconds is the most of the last minute
HOSTILE_NAMES = ["evil;$(touch PWNED)", "quote'\"both", "comma,[bracket]{brace}",
                 "new\nline", "dollar $HOME `id`", "semi;d.erase=", "pct %s %(x)s"]
#: A log line of the daemon: "HH:MM:SS LEVEL ..." or similar; counted, not parsed.
TRACEBACK = "Traceback (most recent call last)"


class SoakError(RuntimeError):
    """The soak's lab could not be set up or driven."""


def say(text, *args):
    sys.stderr.write("soak: " + (text % args if args else text) + "\n")
    sys.stderr.flush()


# ─── Looking at the daemon from the outside ──────────────────────────────────────

def proc_status(pid):
    """{'rss_mib', 'threads'} of ``pid`` from /proc, or None when it is gone."""
    found = {}
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    found["rss_mib"] = int(line.split()[1]) / 1024.0
                elif line.startswith("Threads:"):
                    found["threads"] = int(line.split()[1])
        found["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except (FileNotFoundError, ProcessLookupError):
        return None
    return found


def processes():
    """(pid, ppid, state, comm) of every process."""
    rows = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                text = handle.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        rows.append((int(name), int(fields[1]), fields[0], comm))
    return rows


def metric_values(body, name):
    """{labels text: float} of the samples of metric ``name`` in an exposition body."""
    found = {}
    for match in re.finditer(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), body, re.M):
        found[match.group(1) or ""] = float(match.group(2))
    return found


def slope_per_hour(series):
    """Least-squares slope (units per hour) of [(segment, t_seconds, value)], fitted within
    each segment (a life of the daemon) and pooled; None with too few points."""
    groups = collections.defaultdict(list)
    for segment, t, v in series:
        groups[segment].append((t, v))
    num = den = 0.0
    for points in groups.values():
        if len(points) < 3:
            continue
        mt = sum(t for t, _ in points) / len(points)
        mv = sum(v for _, v in points) / len(points)
        num += sum((t - mt) * (v - mv) for t, v in points)
        den += sum((t - mt) ** 2 for t, _ in points)
    return num / den * 3600.0 if den else None


def percentile(values, pct):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(pct / 100.0 * (len(values) - 1))))]


# ─── The daemon as systemd would run it ──────────────────────────────────────────

class Daemon:
    """pyrotorque.py --fg, its output appended to one log over all its lives."""

    def __init__(self, config_dir, url, log_path):
        self.config_dir, self.url, self.log_path = config_dir, url, log_path
        self.proc = None
        self.lives = []         # [start monotonic, end monotonic or None, how it ended, log offset]
        self.exits = []         # (exit code, expected)
        self.killed_at = []     # wall-clock times of its SIGKILLs

    def start(self):
        offset = self.log_size()
        env = dict(os.environ)
        for name in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "PYRO_CONFIG_DIR"):
            env.pop(name, None)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, SCRIPT, "--fg", "--config-dir", self.config_dir, "-U", self.url],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True)
        self.lives.append([time.monotonic(), None, None, offset])
        return self.proc.pid

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def _ended(self, how, expected):
        code = self.proc.wait(15)
        self.lives[-1][1:3] = [time.monotonic(), how]
        self.exits.append((code, expected))
        return code

    def kill(self):
        self.proc.kill()
        self.killed_at.append(time.time())
        return self._ended("SIGKILL", True)

    def stop(self):
        """SIGTERM and wait; the exit code (SIGKILL after 20 s, which counts as broken)."""
        if self.proc.poll() is not None:
            return self._ended("exited by itself", False)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self._ended("ignored SIGTERM", False)
        return self._ended("SIGTERM", True)

    def check_alive(self):
        """Restart a daemon that died on its own (counted as broken), as systemd would."""
        if self.proc is not None and self.proc.poll() is not None:
            self._ended("exited by itself (code %s)" % self.proc.returncode, False)
            time.sleep(1.0)
            self.start()

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_between(self, start, end=None):
        with open(self.log_path, "rb") as handle:
            handle.seek(start)
            data = handle.read(None if end is None else max(0, end - start))
        return data.decode("utf-8", "replace")

    def wait_log(self, pattern, since, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log_between(since))
            if found:
                return found
            time.sleep(0.1)
        return None


# ─── The lab: rTorrent with many items, a swarm, the watched tree, the target ────

class Lab:
    """Everything the daemon works on, under one short temp dir."""

    def __init__(self, args):
        self.args = args
        self.root = tempfile.mkdtemp(prefix="soak", dir="/tmp")
        self.rng = random.Random(args.seed)
        self.watch = os.path.join(self.root, "watch")
        self.config_dir = os.path.join(self.root, "cfg")
        self.target_mount = os.path.join(self.root, "full")
        self.target = os.path.join(self.target_mount, "done")
        # the flood's folder is watched from the start: events in a folder made during
        # the flood come before its watch, and never queue up
        for path in (self.watch, os.path.join(self.watch, "flood"), self.config_dir,
                     self.target_mount):
            os.makedirs(path)
        self.target_kind = self._mount_target()
        os.makedirs(self.target)
        self.swarm = self.rt = None
        self.swarm_torrents = []        # SwarmTorrent, dropped into the tree one by one
        self.dropped = []               # the swarm torrents in the tree
        self.good = {}                  # path -> info-hash of a good metafile in the tree
        self.bad = {}                   # path -> bytes of a bad one
        self.dups = {}                  # path -> info-hash it duplicates
        self.serial = 0

    def _mount_target(self):
        """A small tmpfs for the completion target (root, mount works), else a folder."""
        size = 12 if self.args.short else 16 + 3 * self.swarm_count()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % size,
                               "soaktmpfs", self.target_mount], capture_output=True, text=True)
        if done.returncode == 0:
            return "tmpfs of %d MiB" % size
        say("no tmpfs for the target (%s); a full disk is simulated by a filler file",
            (done.stderr or "").strip() or done.returncode)
        return "folder on %s (filled by a filler file)" % self.root

    def swarm_count(self):
        """How many torrents the swarm seeds: one dropped into the tree every ~2 minutes."""
        return 5 if self.args.short else max(8, int(self.args.minutes / 2))

    def reserved(self):
        """Torrents kept back from the regular feed for the disk_full faults."""
        return 1 if self.args.short else max(2, self.swarm_count() // 4)

    def start(self):
        args = self.args
        self.swarm = rtlab.Swarm(seeder_rc="throttle.global_up.max_rate.set_kb = %d"
                                 % (4096 if args.short else 1024), parent=self.root,
                                 version=args.rtorrent).start()
        count = self.swarm_count()
        size = (1 if args.short else 2) * rtlab.MiB
        for index in range(count):
            self.swarm_torrents.append(self.swarm.add_torrent(
                "%s%03d" % (SWARM_PREFIX, index), size + index * 4096,
                files=2 if index % 2 else None))
        self.rt = self.swarm.start_leecher()
        took = self.load_items(args.items)
        say("rTorrent %s with %d items (loaded in %.1f s), swarm of %d torrents, target: %s",
            self.rt.version, args.items, took, count, self.target_kind)

    def load_items(self, count, batch=500):
        """``count`` stopped synthetic items at priority 0 (the queue never starts them)."""
        rng = random.Random(42)
        started = time.monotonic()
        proxy = rtlab.lab_proxy(self.rt.url, timeout=300.0)     # a busy box is slow
        for first in range(0, count, batch):
            calls = [{"methodName": "load.raw", "params": [
                "", xmlrpc.client.Binary(bench.metafile(i, rng)), "d.priority.set=0"]}
                for i in range(first, min(first + batch, count))]
            proxy.system.multicall(calls)
        self.rt.wait_for(lambda: self.rt.proxy.view.size("", "main") >= count, 600, 0.2,
                         "%d items in view main" % count)
        return time.monotonic() - started

    # -- metafiles for the tree ----------------------------------------------------------

    def _good_bytes(self):
        self.serial += 1
        name = "Soak.Burst.%06d.%d" % (self.serial, self.args.seed)
        info = {"name": name, "piece length": 1 << 18,
                "pieces": hashlib.sha1(name.encode()).digest(),
                "length": 1000 + self.serial}
        # A loopback announce that nobody answers: these items are never started.
        return rtlab.bencode({"announce": "http://127.0.0.1:9/announce", "info": info})

    def _write(self, folder, name, data):
        path = os.path.join(folder, name)
        with open(path + ".part", "wb") as handle:      # not a metafile name: ignored
            handle.write(data)
        os.rename(path + ".part", path)
        return path

    def burst(self, good, bad, dups, hostile):
        """Metafiles into a new folder of the tree; returns what was written, by kind."""
        folder = os.path.join(self.watch, "burst%03d" % self.serial)
        os.makedirs(folder, exist_ok=True)
        written = collections.Counter()
        for _ in range(good):
            data = self._good_bytes()
            path = self._write(folder, "good%06d.torrent" % self.serial, data)
            self.good[path] = rtlab.infohash(data)
            written["good"] += 1
        for name in self.rng.sample(HOSTILE_NAMES, min(hostile, len(HOSTILE_NAMES))):
            data = self._good_bytes()
            path = self._write(folder, "%s %d.torrent" % (name, self.serial), data)
            self.good[path] = rtlab.infohash(data)
            written["hostile"] += 1
        originals = list(self.good.items())
        for index in range(min(dups, len(originals))):
            original, info_hash = self.rng.choice(originals)
            with open(original, "rb") as handle:
                data = handle.read()
            path = self._write(folder, "dup%06d-%d.torrent" % (self.serial, index), data)
            self.dups[path] = info_hash
            written["duplicate"] += 1
        old = time.time() - 3600
        for index in range(bad):
            kind = index % 4
            if kind == 0:
                data = bytes(self.rng.getrandbits(8) for _ in range(200))
            elif kind == 1:
                data = self._good_bytes()[:-7]                    # truncated
            elif kind == 2:
                data = rtlab.bencode({"announce": "http://127.0.0.1:9/", "comment": "no info"})
            else:
                data = b""                                        # empty
            path = self._write(folder, "bad%06d-%d.torrent" % (self.serial, index), data)
            if kind in (1, 3):      # an hour old: not being written, so reported at once
                os.utime(path, (old, old))
            self.bad[path] = data
            written["bad"] += 1
        return dict(written)

    def drop_swarm_torrent(self, reserve=0):
        """The next swarm torrent into the tree (the queue starts it, the handler moves it),
        unless only ``reserve`` are left."""
        if len(self.dropped) >= len(self.swarm_torrents) - reserve:
            return None
        torrent = self.swarm_torrents[len(self.dropped)]
        folder = os.path.join(self.watch, "swarm")
        os.makedirs(folder, exist_ok=True)
        path = self._write(folder, torrent.name + ".torrent", torrent.raw)
        self.good[path] = torrent.infohash
        self.dropped.append(torrent)
        return torrent

    def close(self):
        if self.args.keep and self.rt is not None:     # the swarm's dir goes with it
            for path in (self.rt.log_path, self.rt.log_path + ".old", self.rt.stdout_path):
                if os.path.exists(path):
                    shutil.copy(path, os.path.join(self.root, "leecher-" + os.path.basename(path)))
        if self.swarm is not None:
            self.swarm.close()
        subprocess.run(["umount", "-l", self.target_mount], capture_output=True)
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)


# ─── torque.ini ──────────────────────────────────────────────────────────────────

def torque_ini(lab, port, variant=0, broken=False):
    """The soak's configuration; ``variant`` changes a schedule, ``broken`` breaks it."""
    short = lab.args.short
    lines = [
        "[TORQUE]",
        "rpc_timeout = %d" % lab.args.rpc_timeout,
        "job.connstats.schedule = second=*/5",
        "job.poller.handler = pyrotorque:ItemPoller",
        "job.poller.schedule = second=*/%d" % (2 if short else 5),
        "job.queue.active = True",
        "job.queue.schedule = second=*/%d" % (1 if short else 2),
        "job.queue.downloading_max = %d" % DOWNLOADING_MAX,
        "job.queue.downloading_min = 1",
        "job.queue.start_at_once = %d" % (DOWNLOADING_MAX + 1),
        "job.queue.startable = is_ignored=no done=0 prio>0 name=%s*" % SWARM_PREFIX,
        "job.treewatch.active = True",
        "job.treewatch.schedule = second=*/5",
        "job.treewatch.path = %s" % lab.watch,
        "job.exporter.active = True",
        "job.exporter.schedule = second=*/%d" % (1 if short else 2),
        "job.exporter.port = %d" % port,
        "job.exporter.jobs = system,tracker",
        "job.exec.handler = pyrotorque:ExecCommand",
        "job.exec.schedule = second=*/%d" % (3 + variant % 2),
        "job.exec.command = sh -c 'sleep 0.2; true'",
        "job.exec.timeout = 5",
        "job.rule.handler = pyrotorque:ActionRule",
        "job.rule.schedule = second=*/3",
        "job.rule.matcher = is_complete=yes name=%s* tagged=!soaked" % SWARM_PREFIX,
        "job.rule.action = tag=soaked",
        "job.complete.handler = pyrotorque:CompletionHandler",
        "job.complete.schedule = second=*/2",
        "job.complete.matcher = name=%s*" % SWARM_PREFIX,
        "job.complete.target = %s" % lab.target,
        "job.complete.copy_chunk = 64k",
        "job.complete.copy_rate = %s" % ("1M" if short else "512k"),
        "job.stats.handler = pyrotorque:StatsArchiver",
        "job.stats.schedule = second=*/5",
    ]
    if broken:
        lines.append("job.queue.downloading_max = a few")
        lines.append("job.stats.schedule = second=*/99/x")
    return "\n".join(lines) + "\n"


def write_config(lab, port, **kwargs):
    path = os.path.join(lab.config_dir, "torque.ini")
    with open(path + ".new", "w") as handle:
        handle.write(torque_ini(lab, port, **kwargs))
    os.rename(path + ".new", path)


# ─── The soak ────────────────────────────────────────────────────────────────────

class BadClients:
    """HTTP clients that misbehave on 127.0.0.1:port for ``seconds``; ``outcome`` counts
    what happened to them."""

    def __init__(self, port, seconds):
        self.port, self.seconds = port, seconds
        self.stop = time.monotonic() + seconds
        self.outcome = collections.Counter()

    def guarded(self, work):
        try:
            work()
        except OSError as exc:
            self.outcome["%s: %s" % (work.__name__, exc.__class__.__name__)] += 1

    def stuck(self):
        """Connects and says nothing."""
        with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
            sock.settimeout(self.seconds + 15)
            try:
                self.outcome["stuck closed by the daemon" if not sock.recv(100)
                             else "stuck answered"] += 1
            except socket.timeout:
                self.outcome["stuck still open"] += 1

    def slow(self):
        """Sends its request one byte every half second."""
        with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
            try:
                for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n":
                    sock.sendall(bytes([byte]))
                    if time.monotonic() > self.stop:
                        break
                    time.sleep(0.5)
                self.outcome["slow finished" if sock.recv(100) else "slow closed"] += 1
            except OSError:
                self.outcome["slow cut off"] += 1

    def garbage(self):
        """Random bytes, up to 20,000 at a time, again and again."""
        rng = random.Random()
        while time.monotonic() < self.stop:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
                    sock.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 20000))))
                    sock.settimeout(5)
                    self.outcome["garbage answered %s"
                                 % sock.recv(12)[9:12].decode("latin-1")] += 1
            except OSError:
                self.outcome["garbage cut off"] += 1
            time.sleep(0.2)


class Faults:
    """The faults of the plan: a part of Soak, using its daemon, lab, port and records."""

    # -- the plan --------------------------------------------------------------------------

    def plan(self, seconds):
        """[(offset, kind)]: every kind once in a seeded order, then seeded random kinds.

        A random daemon_kill comes at most once in KILL_SPACING seconds: a daemon
        that dies every few minutes shows no slope of its RSS, which needs lives of
        many minutes after the warm-up (and a real one dies rarely)."""
        rng = random.Random(self.args.seed)
        kinds = list(FAULT_KINDS)
        rng.shuffle(kinds)
        spacing = seconds / (len(kinds) + 1) if self.args.short else self.args.fault_every
        # slot n comes at 0.9 n spacing plus up to 0.1 spacing of jitter
        last_kill = spacing * (kinds.index("daemon_kill") + 1) * 0.9
        while (len(kinds) + 1) * spacing < seconds - spacing:
            kind = rng.choice(FAULT_KINDS)
            at = spacing * (len(kinds) + 1) * 0.9
            if kind == "daemon_kill" and at - last_kill < KILL_SPACING + spacing * 0.1:
                kind = rng.choice([other for other in FAULT_KINDS if other != "daemon_kill"])
            last_kill = at if kind == "daemon_kill" else last_kill
            kinds.append(kind)
        return [(spacing * (index + 1) * 0.9 + rng.uniform(0, spacing * 0.1), kind)
                for index, kind in enumerate(kinds) if spacing * (index + 1) < seconds]

    def fault(self, kind):
        self.check_rtorrent()
        record = {"kind": kind, "at_s": round(self.now(), 1), "details": {}}
        start_offset = self.daemon.log_size()
        started = time.monotonic()
        say("%6.1f s  fault %s", self.now(), kind)
        try:
            getattr(self, "fault_" + kind)(record["details"])
        except Exception as exc:
            record["details"]["soak_error"] = "%s: %s" % (exc.__class__.__name__, exc)
            say("fault %s could not be done fully: %s", kind, record["details"]["soak_error"])
        time.sleep(1.5)     # what the daemon says right after
        record["seconds"] = round(time.monotonic() - started, 1)
        text = self.daemon.log_between(start_offset)
        lines = [line for line in text.splitlines() if line.strip()]
        record["log_lines"] = len(lines)
        notable = [line for line in lines if re.search(
            r"WARNING|ERROR|CRITICAL|Reload|overflow|unreachable|reachable again|Invalid|"
            r"Moving|Moved|failed|started|Rolled|Finished|Termination|Watching", line)]
        record["log"] = notable[:12] + (["... %d more" % (len(notable) - 12)]
                                        if len(notable) > 12 else [])
        self.faults.append(record)

    def _outage(self, seconds):
        """rTorrent is down (killed or stopped) for ``seconds``; count the daemon's log."""
        begin = self.daemon.log_size()
        time.sleep(seconds)
        self.outages.append((begin, self.daemon.log_size(), seconds))

    def fault_rt_kill(self, details):
        begin, started = self.daemon.log_size(), time.monotonic()
        self.lab.rt.kill()
        short = self.args.short
        written = self.lab.burst(good=40 if short else 200, bad=8 if short else 20,
                                 dups=8 if short else 20, hostile=len(HOSTILE_NAMES))
        details["burst"] = written
        time.sleep(self.args.rpc_timeout + (3 if short else self.lab.rng.uniform(5, 30)))
        self.lab.rt.start(RT_START_TIMEOUT)     # until it answers: its session is read first
        down = time.monotonic() - started
        self.outages.append((begin, self.daemon.log_size(), down))
        details["down_s"] = round(down, 1)

    def fault_rt_stop(self, details):
        seconds = self.args.rpc_timeout + (2 if self.args.short else self.lab.rng.uniform(2, 20))
        os.kill(self.lab.rt.pid, signal.SIGSTOP)
        try:
            self._outage(seconds)
        finally:
            os.kill(self.lab.rt.pid, signal.SIGCONT)
        details["stopped_s"] = round(seconds, 1)

    def _set_sysctl(self, value):
        with open(INOTIFY_SYSCTL, "w") as handle:
            handle.write("%d\n" % value)

    def restore_sysctl(self):
        if self.sysctl_saved is not None:
            self._set_sysctl(self.sysctl_saved)
            self.sysctl_saved = None

    def fault_overflow(self, details):
        """The sysctl is the whole machine's: changed at most 3 times a run, for the
        second or two the daemon takes to start."""
        self.overflows = getattr(self, "overflows", 0) + 1
        try:
            if self.overflows > 3:
                raise OSError(0, "left alone after 3 times")
            with open(INOTIFY_SYSCTL) as handle:
                saved = int(handle.read())
            self.sysctl_saved = saved
            self._set_sysctl(8)
            tiny = True
        except OSError as exc:
            details["sysctl"] = "not writable (%s): a flood only" % exc.strerror
            tiny = False
        try:
            if tiny:        # the limit is taken when the daemon makes its inotify instance
                self.daemon.kill()
                since = self.daemon.log_size()
                self.daemon.start()
                # the watches are added by the start scan, after the "Watching" line: a
                # flood before the scan's line would fall into no watch at all
                found = self.daemon.wait_log(r"Scan \(start\) of ", since, 30)
                details["sysctl"] = "max_queued_events 8 while the daemon started (%s)" % (
                    "its watches are set up" if found else "NO start scan line in 30 s")
        finally:
            self.restore_sysctl()
        folder = os.path.join(self.lab.watch, "flood")
        since = self.daemon.log_size()
        count = 300 if tiny else 20000
        # The daemon stopped meanwhile, as a busy one is: left running, on a second core
        # it can read the events as fast as they come, and the queue never fills.
        pid = self.daemon.pid
        if pid:
            os.kill(pid, signal.SIGSTOP)
        try:
            for index in range(count):
                path = os.path.join(folder, "f%05d.txt" % index)
                with open(path, "w"):
                    pass
                os.unlink(path)
        finally:
            if pid:
                os.kill(pid, signal.SIGCONT)
        details["file_events"] = count * 3
        found = self.daemon.wait_log(r"The inotify event queue overflowed.*", since, 5)
        details["daemon_said"] = found.group(0)[:200] if found else None

    def fault_hup_change(self, details):
        self.variant += 1
        write_config(self.lab, self.port, variant=self.variant)
        since = self.daemon.log_size()
        os.kill(self.daemon.pid, signal.SIGHUP)
        found = self.daemon.wait_log(r"Reloaded: .*|Reload failed.*", since, 15)
        details["daemon_said"] = found.group(0) if found else None

    def fault_hup_broken(self, details):
        write_config(self.lab, self.port, variant=self.variant, broken=True)
        since = self.daemon.log_size()
        try:
            os.kill(self.daemon.pid, signal.SIGHUP)
            found = self.daemon.wait_log(r"Reloaded: .*|Reload failed.*", since, 15)
            details["daemon_said"] = found.group(0)[:300] if found else None
        finally:
            write_config(self.lab, self.port, variant=self.variant)

    def _partial(self):
        try:
            return [n for n in os.listdir(self.lab.target) if n.startswith(".pyrotorque-")]
        except OSError:
            return []

    def fault_disk_full(self, details):
        """Fill the target while a move copies into it (a new swarm torrent if none does)."""
        deadline = time.monotonic() + (20 if self.args.short else 60)
        if not self._partial():
            torrent = self.lab.drop_swarm_torrent()
            details["dropped"] = torrent.name if torrent else None
        while not self._partial() and time.monotonic() < deadline:
            time.sleep(0.05)
        details["mid_move"] = bool(self._partial())
        filler = os.path.join(self.lab.target_mount, "filler")
        st = os.statvfs(self.lab.target_mount)
        free = st.f_bavail * st.f_frsize
        keep = 128 * 1024
        with open(filler, "wb") as handle:
            try:
                for _ in range(max(0, free - keep) // (1 << 20)):
                    handle.write(b"\0" * (1 << 20))
                handle.write(b"\0" * max(0, (free - keep) % (1 << 20)))
                handle.flush()
            except OSError as exc:
                details["filler"] = "stopped at %s" % exc.strerror
        details["free_left_bytes"] = keep
        since = self.daemon.log_size()
        found = self.daemon.wait_log(r"failed in phase.*|Moved .*", since,
                                     10 if self.args.short else 30)
        details["daemon_said"] = found.group(0)[:300] if found else None
        os.unlink(filler)

    def fault_http_abuse(self, details):
        """Stuck, slow and garbage clients, more than max_connections, for a while."""
        seconds = 6 if self.args.short else 20
        clients = BadClients(self.port, seconds)
        workers = [clients.stuck] * 20 + [clients.slow] * 4 + [clients.garbage] * 2
        threads = [threading.Thread(target=clients.guarded, args=(w,), daemon=True)
                   for w in workers]
        for thread in threads:
            thread.start()
        scrapes = []
        while time.monotonic() < clients.stop:
            try:
                status, _, took = bench.scrape(self.port, timeout=15.0)
                scrapes.append((status, took))
            except OSError:
                scrapes.append((0, None))
            time.sleep(0.5)
        for thread in threads:
            thread.join(seconds + 20)
        details["clients"] = {"stuck": 20, "slow": 4, "garbage": 2}
        details["outcome"] = dict(clients.outcome)
        details["scrapes"] = len(scrapes)
        details["scrapes_ok"] = sum(1 for s, _ in scrapes if s == 200)
        took = [t for s, t in scrapes if s == 200]
        details["scrape_max_s"] = round(max(took), 4) if took else None

    def fault_daemon_kill(self, details):
        self.daemon.kill()
        time.sleep(1.0)      # systemd's RestartSec
        since = self.daemon.log_size()
        details["new_pid"] = self.daemon.start()
        found = self.daemon.wait_log(r"pyrotorque \S+ started .*", since, 30)
        details["daemon_said"] = found.group(0) if found else None



class Soak(Faults):
    """Runs the daemon, samples it, throws the faults of the plan, checks the invariants."""

    def __init__(self, args):
        self.args = args
        self.lab = Lab(args)
        self.port = rtlab.free_port()
        self.daemon = None
        self.samples = []
        self.faults = []
        self.outages = []           # (start offset, end offset, seconds) of the daemon log
        self.sysctl_saved = None
        self.abuse_threads = []
        self.zombie_pids = collections.Counter()
        self.t0 = None
        self.stop_sampling = threading.Event()
        self.variant = 0
        self.rt_deaths = []         # rTorrent exits the soak did not cause

    def now(self):
        return time.monotonic() - self.t0

    # -- sampling ------------------------------------------------------------------------

    def sample(self):
        pid = self.daemon.pid
        row = {"t": round(self.now(), 2), "life": len(self.daemon.lives)}
        status = proc_status(pid) if pid else None
        if status:
            row.update(status)
            rows = processes()
            kids = [r for r in rows if r[1] == pid]
            row["children"] = len(kids)
            row["zombies"] = [r[0] for r in kids if r[2] == "Z"]
        try:
            status_code, body, took = bench.scrape(self.port, timeout=15.0)
            row["scrape_s"] = round(took, 4)
            row["scrape_status"] = status_code
            text = body.decode("utf-8", "replace")
            lag = metric_values(text, "pyrotorque_loop_lag_seconds")
            if lag:
                row["loop_lag_s"] = lag[""]
            durations = metric_values(text, "pyrotorque_job_last_duration_seconds")
            row["job_s"] = {re.search(r'job_name="([^"]*)"', k).group(1): v
                            for k, v in durations.items()}
            up = metric_values(text, "rtorrent_up")
            row["rtorrent_up"] = up.get("")
        except (OSError, ValueError, IndexError) as exc:
            row["scrape_error"] = "%s: %s" % (exc.__class__.__name__, exc)
        try:
            if self.lab.rt.running:
                proxy = rtlab.lab_proxy(self.lab.rt.url, timeout=2.0)
                rows = proxy.d.multicall2("", "leeching", "d.name=", "d.complete=")
                row["downloading"] = sum(1 for name, done in rows if not done)
        except (OSError, xmlrpc.client.Error):
            pass
        self.samples.append(row)
        if self.args.json:      # as it goes: a run cut short still leaves its samples
            with open(self.args.json + ".samples", "a") as handle:
                handle.write(json.dumps(row, sort_keys=True) + "\n")

    def _sampler(self):
        while not self.stop_sampling.wait(self.args.sample):
            try:
                self.sample()
            except Exception as exc:        # a sample lost must not end the soak
                say("sample failed: %s: %s", exc.__class__.__name__, exc)

    # -- the run -------------------------------------------------------------------------

    def run(self):
        args = self.args
        self.lab.start()
        write_config(self.lab, self.port)
        self.daemon = Daemon(self.lab.config_dir, self.lab.rt.url,
                             os.path.join(self.lab.root, "daemon.log"))
        self.t0 = time.monotonic()
        self.daemon.start()
        if not self.daemon.wait_log(r"pyrotorque \S+ started", 0, 60):
            raise SoakError("the daemon did not start:\n" + self.daemon.log_between(0)[-3000:])
        sampler = threading.Thread(target=self._sampler, daemon=True)
        sampler.start()
        seconds = args.minutes * 60.0
        plan = self.plan(seconds)
        feed_every = seconds / (len(self.lab.swarm_torrents) - self.lab.reserved() + 1)
        next_feed = 0.0
        say("%d faults planned over %.0f s (seed %d)", len(plan), seconds, args.seed)
        while self.now() < seconds or (args.short and plan):     # CI: every kind once
            if self.now() >= next_feed:
                self.lab.drop_swarm_torrent(self.lab.reserved())
                next_feed += feed_every
            if plan and self.now() >= plan[0][0]:
                self.fault(plan.pop(0)[1])
                continue
            self.daemon.check_alive()
            self.check_rtorrent()
            time.sleep(0.2)
        self.settle()
        self.stop_sampling.set()
        sampler.join(30)
        self.sample()
        end = self.check_invariants()
        return end

    def check_rtorrent(self):
        """Restart an rTorrent that died on its own (its watchdog would); note its last words."""
        rt = self.lab.rt
        if rt.running:
            return
        code = rt._proc.returncode if rt._proc is not None else None
        tail = [line for line in rt.log_text().splitlines()[-8:]]
        with open(rt.stdout_path, errors="replace") as handle:
            tail += handle.read().splitlines()[-5:]
        self.rt_deaths.append({"at_s": round(self.now(), 1), "exit_code": code,
                               "last_words": tail})
        say("%6.1f s  rTorrent died on its own (exit %s); restarting it", self.now(), code)
        rt.kill()       # reaps it and forgets the lab's registration
        rt.start(RT_START_TIMEOUT)

    def settle(self):
        """After the faults: give what was dropped time to download and move."""
        deadline = time.monotonic() + (15 if self.args.short else 120)
        while time.monotonic() < deadline:
            self.daemon.check_alive()
            self.check_rtorrent()
            if self.moves_pending() == 0:
                break
            time.sleep(0.5)

    def moves_pending(self):
        pending = 0
        for torrent in self.lab.dropped:
            if not os.path.exists(os.path.join(self.lab.target, torrent.name)):
                pending += 1
        return pending

    # -- the invariants ----------------------------------------------------------------------

    def check_invariants(self):
        log = self.daemon.log_between(0)
        rt = self.lab.rt
        self.check_rtorrent()
        invariants = {}
        proxy = rtlab.lab_proxy(rt.url, timeout=30.0)
        invariants["good metafiles loaded exactly once"] = self.check_good(proxy, log)
        invariants["bad metafiles reported once (per daemon life) and kept"] = \
            self.check_bad(log)

        most = max([s.get("downloading", 0) for s in self.samples] or [0])
        invariants["never more than downloading_max downloading"] = _held(
            [] if most <= DOWNLOADING_MAX else ["%d downloading at once" % most],
            "at most %d downloading in the samples (downloading_max %d)" % (most, DOWNLOADING_MAX))

        invariants["every completed move whole in exactly one place"] = self.check_moves(proxy)

        zombies = collections.Counter(p for s in self.samples for p in s.get("zombies", []))
        lasting = [p for p, n in zombies.items() if n > 1]
        invariants["no zombie"] = _held(["zombie pid %d in %d samples" % (p, zombies[p])
                                         for p in lasting],
                                        "%d zombie sightings, none lasting" % sum(zombies.values()))

        leftovers = []
        for top in (self.lab.watch, self.lab.config_dir, self.lab.target, rt.download_dir):
            for folder, dirs, names in os.walk(top):
                for name in names + dirs:
                    if name.startswith(".pyrotorque-") or name.endswith(".tmp"):
                        leftovers.append(os.path.join(folder, name))
        invariants["no leftover temp file"] = _held(leftovers, "none found")

        invariants["log bounded during outages"] = self.check_outage_logs()

        lines = log.splitlines()
        tracebacks = [lines[i - 1][:300] for i, line in enumerate(lines) if i and TRACEBACK in line]
        died = ["exit code %s (%s)" % (code, "expected" if ok else "UNEXPECTED")
                for code, ok in self.daemon.exits if not ok]
        invariants["no traceback, no unexpected exit"] = _held(
            ["a traceback after: %s" % line for line in tracebacks] + died,
            "the daemon ran %d lives" % len(self.daemon.lives))
        pwned = [os.path.join(f, n) for top in (self.lab.root, REPO, rt.dir)
                 for f, _, names in os.walk(top) for n in names if n == "PWNED"]
        invariants["no command injected by a hostile name"] = _held(pwned, "no PWNED file")
        return invariants

    def check_good(self, proxy, log):
        """Each good metafile's item in rTorrent, and one 'Loaded' line for it."""
        present, tied = {}, {}
        for path, info_hash in self.lab.good.items():
            try:
                tied[info_hash] = proxy.d.tied_to_file(info_hash)
                present[info_hash] = True
            except xmlrpc.client.Fault:
                present[info_hash] = False
        loaded = collections.Counter(re.findall(r"Loaded .* #([0-9A-F]{40}) from ", log))
        # A load that went through while rTorrent or the daemon was killed is found at the
        # next try as "already in rTorrent": still one load.
        there = collections.Counter(re.findall(r"Item #([0-9A-F]{40}) .* is already in rTorrent",
                                               log))
        # A life SIGKILLed between rTorrent's answer and its 'Loaded' line leaves no
        # line, and the next life finds the file at start, already in rTorrent, which it
        # says at debug level only (it must have loaded it before); rTorrent's tie of the
        # item to this very file shows who loaded it.
        unsaid = {p for p, h in self.lab.good.items()
                  if present[h] and not loaded[h] + there[h] and tied.get(h) == p
                  and any(when >= os.path.getmtime(p) for when in self.daemon.killed_at)}
        wrong = ["%s: in rTorrent=%s, 'Loaded' lines=%d, 'already' lines=%d"
                 % (os.path.basename(p), present[h], loaded[h], there[h])
                 for p, h in self.lab.good.items()
                 if not present[h] or loaded[h] > 1 or not loaded[h] + there[h]
                 and p not in unsaid]
        return _held(
            wrong, "%d good metafiles (and %d duplicates)%s" % (
                len(self.lab.good), len(self.lab.dups),
                "; %d of them loaded by a life SIGKILLed before it logged it, each tied "
                "to its file" % len(unsaid) if unsaid else ""))

    def check_bad(self, log):
        """Each bad metafile said once in each life of the daemon, and left as it was."""
        wrong = []
        offsets = [life[3] for life in self.daemon.lives] + [len(log.encode())]
        lives = [log.encode()[a:b].decode("utf-8", "replace") for a, b in zip(offsets, offsets[1:])]
        for path, data in self.lab.bad.items():
            said = [text.count("Invalid metafile %r" % path) for text in lives]
            try:
                with open(path, "rb") as handle:
                    kept = handle.read() == data
            except OSError:
                kept = False
            if max(said) > 1 or not sum(said) or not kept:
                wrong.append("%s: reported %s times in the daemon's lives, kept=%s"
                             % (os.path.basename(path), said, kept))
        return _held(
            wrong, "%d bad metafiles" % len(self.lab.bad))

    def check_moves(self, proxy):
        wrong, moved = [], 0
        for torrent in self.lab.dropped:
            source = os.path.join(self.lab.rt.download_dir, torrent.name)
            target = os.path.join(self.lab.target, torrent.name)
            at_source, at_target = os.path.lexists(source), os.path.lexists(target)
            if at_source and at_target:
                wrong.append("%s is in both places" % torrent.name)
                continue
            try:
                # d.base_path is empty while an item is closed: then its directory tells
                base = proxy.d.base_path(torrent.infohash) or proxy.d.directory(torrent.infohash)
                complete = proxy.d.complete(torrent.infohash)
            except xmlrpc.client.Fault:
                base, complete = None, 0
            if at_target:
                moved += 1
                if not rtlab.same_payload(torrent.data, target):
                    wrong.append("%s: the moved data differs from the original" % torrent.name)
                elif base not in (target, self.lab.target):
                    wrong.append("%s: moved, but rTorrent points at %r" % (torrent.name, base))
            elif complete and not at_source:
                wrong.append("%s: complete in rTorrent, data in neither place" % torrent.name)
        return _held(wrong, "%d moved of %d dropped" % (moved, len(self.lab.dropped)))

    def check_outage_logs(self):
        """At most 30 lines per outage plus 60 per hour and job (bad metafiles' reports left
        out): no line per failed call."""
        jobs = 9
        wrong, rates = [], []
        for begin, end, seconds in self.outages:
            # a bad metafile of the burst is reported once: its own invariant, not a flood
            lines = len([x for x in self.daemon.log_between(begin, end).splitlines()
                         if x and "Invalid metafile" not in x])
            bound = 30 + 60 * jobs * seconds / 3600.0
            rates.append(lines / seconds * 3600.0)
            if lines > bound:
                wrong.append("%d lines in a %.0f s outage (bound %.0f)" % (lines, seconds, bound))
        return _held(wrong, "%d outages, at most %.0f lines/hour during one" % (
            len(self.outages), max(rates or [0])))

    # -- the report ------------------------------------------------------------------------

    def figures(self):
        warm = self.args.warmup
        lives = self.daemon.lives
        life_start = {index + 1: life[0] - self.t0 for index, life in enumerate(lives)}
        names = [("rss_mib", "RSS (MiB)"), ("fds", "open fds"), ("threads", "threads"),
                 ("children", "children"), ("loop_lag_s", "main-loop lag (s)"),
                 ("scrape_s", "scrape latency (s)"), ("downloading", "items downloading")]
        found = {}
        for key, label in names:
            points = [(s["life"], s["t"], s[key]) for s in self.samples if key in s]
            if not points:
                continue
            values = [v for _, _, v in points]
            steady = [(life, t, v) for life, t, v in points
                      if t - life_start.get(life, 0) >= warm]
            found[key] = {"label": label, "start": values[0], "end": values[-1],
                          "max": max(values), "p99": percentile(values, 99),
                          "slope_per_hour": _round(slope_per_hour(steady)),
                          "samples": len(values)}
        jobs = collections.defaultdict(list)
        for s in self.samples:
            for name, value in (s.get("job_s") or {}).items():
                jobs[name].append(value)
        found["job_last_duration_s"] = {name: {"max": max(v), "p50": percentile(v, 50)}
                                        for name, v in sorted(jobs.items())}
        log = self.daemon.log_between(0)
        lines = len(log.splitlines())
        found["log_lines"] = {"total": lines, "per_hour": round(lines / (self.now() / 3600.0))}
        return found


def fault_figures(faults, samples, sample_s):
    """Add to each fault the loop lag and scrape latency the samples saw while it lasted
    (and one sample after); return the lag between faults and the worst lag by kind.

    The lag gauge is the most of the last minute, so a fault's lag counts only where it
    rose above the last sample before the fault (None: it added nothing visible)."""
    for fault in faults:
        end = fault["at_s"] + fault.get("seconds", 0) + sample_s
        seen = [s for s in samples if fault["at_s"] <= s["t"] <= end]
        before = [s["loop_lag_s"] for s in samples if s["t"] < fault["at_s"] and "loop_lag_s" in s]
        lags = [s["loop_lag_s"] for s in seen if "loop_lag_s" in s]
        rose = [lag for lag in lags if not before or lag > before[-1]]
        fault["loop_lag_s_max"] = max(rose) if rose else None
        scrapes = [s["scrape_s"] for s in seen if "scrape_s" in s]
        fault["scrape_s_max"] = max(scrapes) if scrapes else None
    windows = [(f["at_s"], f["at_s"] + f.get("seconds", 0) + sample_s + LAG_WINDOW)
               for f in faults]
    quiet = [s["loop_lag_s"] for s in samples if "loop_lag_s" in s
             and not any(a <= s["t"] <= b for a, b in windows)]
    by_kind = collections.defaultdict(list)
    for fault in faults:
        if fault["loop_lag_s_max"] is not None:
            by_kind[fault["kind"]].append(fault["loop_lag_s_max"])
    return {"loop_lag_s_between_faults": {"p99": percentile(quiet, 99),
                                          "max": max(quiet) if quiet else None,
                                          "samples": len(quiet)},
            "loop_lag_s_max_by_fault": {k: max(v) for k, v in sorted(by_kind.items())}}


def _held(problems, detail):
    return {"held": not problems, "detail": detail, "problems": problems[:20]}


def _round(value):
    return None if value is None else round(value, 3)


def report(soak, invariants, started_wall):
    args = soak.args
    figures = soak.figures()
    figures.update(fault_figures(soak.faults, soak.samples, args.sample))
    result = {
        "seed": args.seed, "minutes": args.minutes, "items": args.items, "short": args.short,
        "ran_s": round(soak.now(), 1), "started": started_wall,
        "rtorrent": soak.lab.rt.version, "target": soak.lab.target_kind,
        "daemon_lives": len(soak.daemon.lives),
        "figures": figures, "invariants": invariants, "faults": soak.faults,
        "faults_by_kind": dict(collections.Counter(f["kind"] for f in soak.faults)),
        "rtorrent_deaths": soak.rt_deaths,      # rTorrent's own crashes: not the daemon's
        "samples": soak.samples,
    }
    out = sys.stdout
    out.write("\nSoak: %d items, rTorrent %s, %.1f min, seed %d, target %s, %d daemon lives\n"
              % (args.items, result["rtorrent"], soak.now() / 60, args.seed,
                 result["target"], result["daemon_lives"]))
    out.write("\n%-22s %10s %10s %10s %10s %12s\n" % ("figure", "start", "end", "max", "p99",
                                                      "slope/hour"))
    for key, fig in figures.items():
        if "label" in fig:
            out.write("%-22s %10s %10s %10s %10s %12s\n" % (
                fig["label"], _fmt(fig["start"]), _fmt(fig["end"]), _fmt(fig["max"]),
                _fmt(fig["p99"]), _fmt(fig["slope_per_hour"])))
    calm = figures["loop_lag_s_between_faults"]
    out.write("main-loop lag between faults: p99 %s s, max %s s; worst by fault: %s\n" % (
        _fmt(calm["p99"]), _fmt(calm["max"]), ", ".join(
            "%s %.2f" % kv for kv in figures["loop_lag_s_max_by_fault"].items())))
    out.write("log lines: %d (%d per hour)\n" % (figures["log_lines"]["total"],
                                                   figures["log_lines"]["per_hour"]))
    out.write("job run durations (max s): %s\n" % ", ".join(
        "%s %.3f" % (n, v["max"]) for n, v in figures["job_last_duration_s"].items()))
    out.write("\nFaults (%s):\n" % ", ".join("%s %d" % kv for kv in
                                             sorted(result["faults_by_kind"].items())))
    for fault in soak.faults:
        out.write("  %7.1f s  %-11s lag max %s s, scrape max %s s  %s\n" % (
            fault["at_s"], fault["kind"], _fmt(fault["loop_lag_s_max"]),
            _fmt(fault["scrape_s_max"]), json.dumps(fault["details"], sort_keys=True)[:160]))
        for line in fault["log"][:4]:
            out.write("               | %s\n" % line[:160])
    for death in soak.rt_deaths:
        out.write("\nrTorrent died on its own at %.0f s (exit %s), restarted: %s\n" % (
            death["at_s"], death["exit_code"], " / ".join(death["last_words"][-2:])))
    out.write("\nInvariants:\n")
    for name, verdict in invariants.items():
        out.write("  %-6s %s: %s\n" % ("held" if verdict["held"] else "BROKEN", name,
                                       verdict["detail"]))
        for problem in verdict["problems"][:5]:
            out.write("           - %s\n" % problem)
    if args.json:
        with open(args.json + ".new", "w") as handle:
            json.dump(result, handle, indent=1, sort_keys=True)
        os.rename(args.json + ".new", args.json)
        out.write("\nJSON: %s\n" % args.json)
    return all(v["held"] for v in invariants.values())


def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.3f" % value if abs(value) < 100 else "%.0f" % value
    return str(value)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Soak pyrotorque under faults "
                                     "(see the module docstring).")
    parser.add_argument("--minutes", type=float, default=None, help="how long (default 60; "
                        "--short: 1)")
    parser.add_argument("--items", type=int, default=None, help="synthetic items in rTorrent "
                        "(default 10,000; --short: 300)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault plan")
    parser.add_argument("--short", action="store_true", help="the CI run, ~90 s in all")
    parser.add_argument("--rtorrent", default=None, metavar="VERSION",
                        help="the lab's rTorrent: system, 0.16, 0.16-xmlrpc-c or a path "
                        "(default: $PYROTORQUE_RTORRENT, else system)")
    parser.add_argument("--sample", type=float, default=None, help="seconds between samples "
                        "(default 5; --short: 2)")
    parser.add_argument("--fault-every", type=float, default=45.0,
                        help="seconds between faults in a long run (default 45)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds after each daemon start left out of the slopes "
                        "(default 480: over 10,000 items the RSS settled within about 8 "
                        "minutes in the hour-long runs; --short: 10)")
    parser.add_argument("--json", default=None, help="write the report as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the lab's dir (and log)")
    args = parser.parse_args(argv)
    short = args.short
    args.minutes = args.minutes if args.minutes is not None else (0.9 if short else 60.0)
    args.items = args.items if args.items is not None else (300 if short else 10000)
    args.sample = args.sample or (2.0 if short else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (10.0 if short else 480.0)
    args.rpc_timeout = 2 if short else 5
    if args.rtorrent:
        os.environ["PYROTORQUE_RTORRENT"] = args.rtorrent    # every lab process, as pytest does
    return args


def main(argv=None):
    args = parse_args(argv)
    started_wall = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    soak = None

    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        soak = Soak(args)
        invariants = soak.run()
        code = soak.daemon.stop()
        invariants["the daemon stops cleanly at the end"] = _held(
            [] if code == 0 else ["exit code %s" % code], "exit code %s" % code)
        return 0 if report(soak, invariants, started_wall) else 1
    except (rtlab.LabError, SoakError) as exc:
        say("the soak could not run: %s", exc)
        return 2
    finally:
        if soak is not None:
            soak.stop_sampling.set()
            soak.restore_sysctl()
            if soak.daemon is not None and soak.daemon.pid:
                soak.daemon.proc.kill()
                soak.daemon.proc.wait(10)
            if args.keep:
                say("kept %s", soak.lab.root)
            soak.lab.close()


if __name__ == "__main__":
    sys.exit(main())
