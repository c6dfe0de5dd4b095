"""Helpers the tests share: the daemon's event loop turned by the test, small looks at a
real rTorrent and at the log, metafiles and tree watches, the queue job, and the clients
and parser the metrics tests read /metrics with.  (Processes are in daemon_process.py,
fixtures in conftest.py; a test file never imports from another test file.)"""
import contextlib
import hashlib
import http.client
import os
import re
import signal
import socket
import textwrap
import threading
import time
import tracemalloc

import pyrotorque
import rtlab  # conftest puts contrib/ on sys.path


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
        self.to_close = []      # jobs made for this loop (make_watch), closed by the fixture

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


# ---- metafiles and the tree watch ------------------------------------------------------

ANNOUNCE = "http://127.0.0.1:6969/announce"


def metafile(name, size=1000, announce=ANNOUNCE, files=None, **extra):
    """Small metafile bytes (fake pieces; rTorrent does not look at them for a stopped item)."""
    info = {"name": name, "piece length": 16384,
            "pieces": hashlib.sha1(name.encode("utf-8", "surrogateescape")).digest()}
    if files:
        info["files"] = [{"length": length, "path": path.split("/")} for path, length in files]
    else:
        info["length"] = size
    info.update(extra)
    top = {"info": info}
    if announce is not None:
        top["announce"] = announce
    return rtlab.bencode(top)


def write(path, data, mtime=None):
    """Write ``data`` to ``path`` (making its folders); its info-hash, or None if none."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    try:
        return rtlab.infohash(data)
    except ValueError:
        return None


def make_watch(loop, rt, root, **params):
    """A TreeWatch on ``root`` built as the daemon builds it; the ``lab`` fixture closes it."""
    spec = pyrotorque.JobSpec("treewatch")
    spec.params.update(handler="pyrotorque:TreeWatch", schedule="hour=*", path=str(root))
    spec.params.update({k: str(v) for k, v in params.items()})
    proxy = pyrotorque.RtorrentProxy(rt.url, 10) if rt is not None else None
    config = pyrotorque.job_config(spec, pyrotorque.TreeWatch, None, warn=None,
                                   proxy=proxy, daemon=loop)
    watch = pyrotorque.TreeWatch(config)
    if loop is not None:
        loop.to_close.append(watch)
    return watch


def wait_loaded(loop, rt, wanted, timeout=10.0):
    """Turn the loop until rTorrent holds every info-hash of ``wanted``."""
    wanted = set(wanted)
    loop.pump(lambda: wanted <= set(hashes(rt)), timeout, "all of %d loaded" % len(wanted))


def daemon_config(base, root, extra=""):
    """A config dir below ``base`` whose torque.ini watches ``root`` (plus ``extra`` lines)."""
    cfg = os.path.join(str(base), "cfg")
    os.makedirs(cfg, exist_ok=True)
    with open(os.path.join(cfg, "torque.ini"), "w") as handle:
        handle.write(textwrap.dedent("""\
            [TORQUE]
            job.connstats.active = False
            job.treewatch.active = True
            job.treewatch.path = %s
            """ % root) + extra)
    return cfg


# ---- the queue ------------------------------------------------------------------------------

def queue_job(tmp, url, **params):
    """A QueueManager built the way the daemon builds it, from torque.ini text."""
    lines = ["[TORQUE]", "job.connstats.active = no", "job.queue.active = yes",
             "job.queue.schedule = second=*"]
    lines += ["job.queue.%s = %s" % item for item in params.items()]
    cfg = os.path.join(str(tmp), "cfg")
    os.makedirs(cfg, exist_ok=True)
    with open(os.path.join(cfg, "torque.ini"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    options = pyrotorque._parse_options(["--fg", "--config-dir", cfg, "-U", url])
    settings = pyrotorque.load_settings(cfg)
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    return jobs["queue"].job


# ---- /metrics: a strict parser of the text format 0.0.4, and clients --------------------

_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)\Z')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|\Z)')
GO_FLOAT = re.compile(r"[+-]?(Inf|NaN|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)\Z")


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of an exposition; fails on anything the
    format forbids (missing HELP/TYPE, split families, duplicates, bad values)."""
    assert text.endswith("\n"), "the last line must end with a newline"
    samples, types, helps, done, current = {}, {}, {}, set(), None
    for line in text[:-1].split("\n"):
        assert line, "no empty lines expected"
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], line[7:].split(" ", 1)[0], line[7:].split(" ", 1)[1:]
            assert name not in done, "family %s is split" % name
            if name != current:
                if current is not None:
                    done.add(current)
                current = name
            table = helps if kind == "HELP" else types
            assert name not in table, "second %s for %s" % (kind, name)
            table[name] = rest[0] if rest else ""
            if kind == "TYPE":
                assert table[name] in ("counter", "gauge", "summary", "histogram", "untyped")
            continue
        assert not line.startswith("#"), line
        found = _SAMPLE.match(line)
        assert found, "bad sample line %r" % line
        name, labels_text, value = found.groups()
        family = name
        if current and types.get(current) in ("summary", "histogram"):
            for suffix in ("_sum", "_count", "_bucket"):
                if name == current + suffix:
                    family = current
        assert family == current, "%s outside its family (current: %s)" % (name, current)
        assert family in helps and family in types, "%s lacks HELP or TYPE" % family
        labels, pos = [], 0
        while labels_text and pos < len(labels_text):
            label = _LABEL.match(labels_text, pos)
            assert label, "bad labels in %r" % line
            value_text = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)),
                                label.group(2))
            labels.append((label.group(1), value_text))
            pos = label.end()
        assert len({k for k, _ in labels}) == len(labels), "label twice in %r" % line
        assert GO_FLOAT.match(value), "value %r is not Go float text" % value
        key = (name, tuple(sorted(labels)))
        assert key not in samples, "duplicate series %r" % (key,)
        samples[key] = float(value.replace("Inf", "inf"))
    return samples, types, helps


def value(samples, metric, **labels):
    return samples[(metric, tuple(sorted(labels.items())))]


def series(samples, metric):
    return {labels: v for (n, labels), v in samples.items() if n == metric}


class DaemonThread:
    """A Daemon's selector loop on a thread (signals stay with the main thread)."""

    def __init__(self, tmp_path, torque_ini="", url="/nonexistent/rpc.sock"):
        (tmp_path / "torque.ini").write_text("[TORQUE]\njob.connstats.active = no\n" + torque_ini)
        self.options = pyrotorque._parse_options(["--fg", "--config-dir", str(tmp_path), "-U", url])
        self.daemon = pyrotorque.Daemon(self.options, pyrotorque.load_settings(str(tmp_path)))
        self.stop_r, self.stop_w = socket.socketpair()
        self.daemon.add_reader(self.stop_r, lambda: None)
        self.running = True
        self.ticks = []
        self.thread = None

    def build(self):
        connection, self.daemon.jobs = self.daemon.build_jobs(self.daemon.settings)
        self.daemon.proxy, self.daemon.items, self.daemon.conn_key = connection
        return self

    def start(self):
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _serve(self):
        while self.running:
            self.daemon.run_timers()
            self.daemon._wait()
            self.ticks.append(time.monotonic())

    def call(self, function, timeout=10.0):
        """Run ``function`` in the loop thread and return its result."""
        done, result = threading.Event(), []

        def run():
            try:
                result.append(function())
            except BaseException as exc:    # handed to the caller
                result.append(exc)
            done.set()
        self.daemon.call_later(0, run)
        self.stop_w.send(b"x")
        assert done.wait(timeout), "the loop did not run the call"
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def close(self):
        if self.thread is not None:
            self.call(self.daemon.close)
            self.running = False
            self.stop_w.send(b"x")
            self.thread.join(5)
        self.stop_r.close()
        self.stop_w.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port, method="GET", path="/metrics", headers=None, timeout=5.0, context=None):
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw(port, data, timeout=5.0, shutdown=False):
    """Send raw bytes, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shutdown:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def status_of(answer):
    return int(answer.split(b" ", 2)[1])


# ---- talking to the lab's rTorrent over one protocol -------------------------------------

class SpeakingLab:
    """A lab rTorrent whose ``url`` asks the daemon for one protocol (``rpc=json`` or
    ``rpc=xml``); the lab itself keeps its own XML-RPC client."""

    def __init__(self, rt, rpc):
        self._rt, self._rpc = rt, rpc

    def __getattr__(self, name):
        return getattr(self._rt, name)

    @property
    def url(self):
        return "%s?rpc=%s" % (self._rt.url, self._rpc)


def speaking(rt, rpc):
    """``rt`` for a daemon that must use ``rpc``; None for JSON-RPC on an rTorrent without
    it (0.9.8), after checking that ``rpc=json`` is refused with a clear error."""
    if rpc == "json" and rt.series < (0, 15):
        proxy = pyrotorque.RtorrentProxy(rt.url + "?rpc=json", timeout=10)
        try:
            proxy.connect()
        except pyrotorque.RtorrentError as exc:
            assert "does not answer JSON-RPC" in str(exc), exc
            return None
        raise AssertionError("rTorrent %s took rpc=json" % rt.version)
    return SpeakingLab(rt, rpc)


# ---- an rTorrent that answers too slowly ----------------------------------------------

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


# ---- fuzzing (tests/test_fuzz_parsers.py, tests/test_fuzz_corpus.py) ------------------

FUZZ_SECONDS = 5        # one example may take this long
FUZZ_MEGABYTES = 64     # and allocate this much at its peak


class TookTooLong(BaseException):
    """Raised by the alarm; a BaseException, so no 'except Exception' of a parser eats it."""


def _alarm(signum, frame):
    raise TookTooLong("more than %d s" % FUZZ_SECONDS)


def fuzz_check(name, data):
    """Run fuzz target ``name`` on ``data``; fail on anything it may not raise, on a run
    past FUZZ_SECONDS and on a peak allocation above FUZZ_MEGABYTES."""
    import fuzz     # contrib/fuzz.py, imported only by the fuzz tests
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    previous = signal.signal(signal.SIGALRM, _alarm)
    tracemalloc.start()
    try:
        signal.alarm(FUZZ_SECONDS)
        bug = fuzz.run(name, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        signal.alarm(0)
        tracemalloc.stop()
        signal.signal(signal.SIGALRM, previous)
    assert bug is None, "%s(%r): %s: %s" % (name, data[:500], type(bug).__name__, bug)
    assert peak < FUZZ_MEGABYTES << 20, "%s(%r): %d MiB at the peak" % (name, data[:200],
                                                                       peak >> 20)
