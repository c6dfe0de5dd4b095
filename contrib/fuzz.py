#!/usr/bin/env python3
"""Coverage-guided fuzzing of every parser of pyrotorque that reads outside input.

    python3 contrib/fuzz.py --list
    python3 contrib/fuzz.py --seconds 60                     # each target for 60 s
    python3 contrib/fuzz.py --seconds 600 --target template --target http

Needs atheris (``pip install atheris``; test-only, never needed at run time).  Each
target is a function of one input (bytes) that may raise only the errors its parser
documents (``TARGETS[name].errors``); anything else, an input that takes longer than
``--timeout`` seconds or makes the process grow past ``--rss-mb``, is a bug.  atheris
then saves the input as ``tests/fuzz_corpus/<target>/crash-<sha1>`` (timeout-, oom-
likewise), the run of that target stops, and the next target starts; the test suite
replays every file there (tests/test_fuzz_corpus.py), so an input that found a bug
stays a regression test once the bug is fixed.  The files in that folder also seed the
next run.  The hypothesis tests (tests/test_fuzz_parsers.py) drive the same targets.

Exit status: 0 when no target found anything, 1 when one did, 69 without atheris.
"""
import argparse
import collections
import datetime
import ftplib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CORPUS = os.path.join(REPO, "tests", "fuzz_corpus")
if REPO not in sys.path:
    sys.path.insert(0, REPO)

pyrotorque = None   # imported by load(), under atheris' instrumentation when fuzzing

Target = collections.namedtuple("Target", "name function errors about")
TARGETS = collections.OrderedDict()


def load():
    """Import pyrotorque (once)."""
    global pyrotorque
    if pyrotorque is None:
        import pyrotorque as module
        pyrotorque = module
    return pyrotorque


def target(name, about, *errors):
    """Register ``function(data)`` as the target ``name``; ``errors`` are the names of
    pyrotorque's exception classes the parser may raise (none: it may raise nothing)."""
    def register(function):
        TARGETS[name] = Target(name, function, errors, about)
        return function
    return register


def allowed(name):
    """The exception classes target ``name`` may raise."""
    load()
    return tuple(getattr(pyrotorque, error) for error in TARGETS[name].errors)


def run(name, data):
    """Run target ``name`` on one input: None, or the exception that is a bug."""
    load()
    try:
        TARGETS[name].function(bytes(data))
    except allowed(name):
        return None
    except Exception as exc:        # noqa: BLE001 (that is what is looked for)
        return exc
    return None


def text_of(data):
    """Input bytes as text, as a file read with errors='replace' would give them."""
    return data.decode("utf-8", "replace")


_scratch = []


def scratch():
    """A folder for the targets' files, made once per process, emptied per input."""
    if not _scratch:
        _scratch.append(tempfile.mkdtemp(prefix="pyrotorque-fuzz-"))
    folder = _scratch[0]
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return folder


def write(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


# ---- configuration -------------------------------------------------------------------

@target("torque_ini", "torque.ini read by load_settings, every job's values converted",
        "ConfigError")
def fuzz_torque_ini(data):
    folder = scratch()
    write(folder, "torque.ini", data)
    settings = pyrotorque.load_settings(folder)
    for name, spec in settings.jobs.items():
        handler = str(spec.params.get("handler", ""))
        if not handler.startswith(pyrotorque.BUILTIN_MODULES):
            continue            # never import a module a fuzzed file names
        job = pyrotorque.resolve_handler(handler)
        config = pyrotorque.job_config(spec, job, settings, warn=lambda text: None)
        if config.schedule:
            pyrotorque.CronSchedule(config.schedule)


#: What the parsers log about bad input is not looked at (only what they raise).
_LOG = logging.getLogger("pyrotorque.fuzz")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False


class _WatchJob:
    """What _WatchSettings uses of its tree watch."""
    name = "fuzz"
    daemon = None
    log = _LOG

    @staticmethod
    def config_problem(text, kind=None):
        """A note such as an rTorrent 0.8 command name in a template: not an error."""

    @staticmethod
    def where(key):
        return "job.fuzz.%s" % key


@target("watch_ini", "a folder's watch.ini as the tree watch reads it (a dict or a "
        "ConfigError comes back; nothing may be raised)")
def fuzz_watch_ini(data):
    folder = scratch()
    write(folder, "watch.ini", data)
    config = pyrotorque.Bunch(load_mode="normal", queued=False, remove_loaded=False,
                              move_loaded_to="", quiet=False)
    settings = pyrotorque._WatchSettings(_WatchJob(), config)
    result = settings.read_ini(folder)
    assert isinstance(result, (dict, pyrotorque.ConfigError)), result


@target("pyrosimple_toml", "pyrosimple's config.toml read into JobSpecs (Python 3.11+)",
        "ConfigError")
def fuzz_pyrosimple_toml(data):
    folder = scratch()
    path = write(folder, "config.toml", data)
    pyrotorque.load_pyrosimple_settings(path, folder)


# ---- the languages in the configuration ----------------------------------------------

@target("condition", "rtcontrol's filter language (parse_condition), matched and printed",
        "ConditionError")
def fuzz_condition(data):
    condition = pyrotorque.parse_condition(text_of(data))
    condition.match({})
    again = pyrotorque.parse_condition(str(condition))
    assert str(again) == str(condition), (str(condition), str(again))


_FIRE_FROM = [datetime.datetime(2024, 3, 31, 1, 59, 30),                   # local time
              datetime.datetime(2030, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc),
              datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(
                  hours=14))),
              datetime.datetime(9999, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(
                  hours=-14)))]


@target("cron", "a job schedule (CronSchedule) and its next fire times", "ConfigError")
def fuzz_cron(data):
    schedule = pyrotorque.CronSchedule(text_of(data))
    assert pyrotorque.CronSchedule(str(schedule)) == schedule
    for start in _FIRE_FROM:
        fire = schedule.next_fire(start)
        assert fire is None or fire >= start, (start, fire)


_TEMPLATE_NAMES = {"name": "a b;$(x)", "size": 12345, "path": "/x/y.mkv", "tags": {"a", "b"},
                   "items": [1, 2], "flag": True, "none": None, "d": {"name": "n", "size": 1}}


@target("template", "load-command and item templates (Template, ItemTemplate) rendered",
        "TemplateError")
def fuzz_template(data):
    text = text_of(data)
    pyrotorque.Template(text, "fuzz").render(dict(_TEMPLATE_NAMES))
    item = pyrotorque.ItemTemplate(text, "fuzz")
    item.names()
    item.render(dict(_TEMPLATE_NAMES))


# ---- metafiles -----------------------------------------------------------------------

@target("bencode", "the strict bencode decoder (bdecode)", "BencodeError")
def fuzz_bencode(data):
    value = pyrotorque.bdecode(data)
    assert pyrotorque.bencode(value) == data        # what decodes is canonical


@target("metafile", "metafile bytes checked (read_metafile)", "MetafileError")
def fuzz_metafile(data):
    meta = pyrotorque.read_metafile(data)
    assert len(meta.info_hash) == 40 and meta.size >= 0
    meta.filetype   # noqa: B018 (reading it is the test)


@target("magnet", "a .magnet file (parse_magnet)", "MetafileError")
def fuzz_magnet(data):
    meta = pyrotorque.parse_magnet(data)
    assert len(meta.info_hash) == 40 and meta.data.startswith(b"magnet:?")


# ---- rTorrent's answers --------------------------------------------------------------

def _client_loads(data):
    try:
        return ("ok", xmlrpc.client.loads(data, use_builtin_types=True)[0])
    except xmlrpc.client.Fault as fault:
        return ("fault", (fault.faultCode, fault.faultString))
    except Exception as exc:        # noqa: BLE001 (compared, not hidden)
        return ("error", exc)


@target("xmlrpc", "rTorrent's XML-RPC answers (fast_loads), differential against "
        "xmlrpc.client.loads")
def fuzz_xmlrpc(data):
    """fast_loads must give what xmlrpc.client gives: the same params, the same fault, or
    an error where it raises one (its ExpatError even where xmlrpc.client stops earlier at
    an XML-RPC error; UnreadableAnswer for its ResponseError)."""
    expected = _client_loads(data)
    try:
        got = ("ok", pyrotorque.fast_loads(data))
    except pyrotorque.XmlRpcFault as fault:
        got = ("fault", (fault.faultCode, fault.faultString))
    except Exception as exc:        # noqa: BLE001 (ExpatError, UnreadableAnswer, ...)
        assert expected[0] == "error", (expected, exc)      # it raises where the client does
        return
    assert got == expected or _same_nan(got, expected), (got, expected)


def _same_nan(got, expected):
    return repr(got) == repr(expected)      # nan != nan, yet both read the same


# ---- the exporter's HTTP server ------------------------------------------------------

class _Exporter:
    """A MetricsServer on 127.0.0.1 served by the daemon's own EventLoop in a thread."""

    def __init__(self):
        self.errors = []
        log = logging.getLogger("pyrotorque.fuzz.http")
        log.propagate = False
        log.setLevel(logging.DEBUG)
        log.addHandler(_Recorder(self.errors))
        self.loop = pyrotorque.EventLoop(log=log)
        self.server = pyrotorque.MetricsServer(self.loop, self.page, log, timeout=2.0)
        self.server.listen("127.0.0.1", 0)
        self.port = self.server.address[1]
        self.thread = threading.Thread(target=self.turn, daemon=True, name="fuzz-http")
        self.thread.start()

    @staticmethod
    def page(path, gzip_ok):
        if path == "/metrics":
            return 200, b"up 1\n", pyrotorque.METRICS_CONTENT_TYPE, ()
        return None

    def turn(self):
        while True:
            self.loop.run_timers()
            self.loop.poll_once(self.loop.timer_timeout(0.05))

    def exchange(self, data, timeout=5.0):
        """Send ``data``, half-close, and read the answer until the server closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass            # the server answered and closed early: read what it said
            chunks = []
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)


class _Recorder(logging.Handler):
    """Keeps every record that carries a traceback: the server's 'a bug here' path."""

    def __init__(self, into):
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record):
        if record.exc_info or record.levelno >= logging.ERROR:
            self.into.append(record.getMessage())


_exporter = []


@target("http", "raw bytes at the exporter's HTTP server (MetricsServer on 127.0.0.1)")
def fuzz_http(data):
    """Every request gets one well-formed HTTP/1.1 answer (or none when the head never
    ended), nothing is logged as an error, and the server still answers a good request."""
    if not _exporter:
        _exporter.append(_Exporter())
    server = _exporter[0]
    answer = server.exchange(data)
    assert answer == b"" or (answer.startswith(b"HTTP/1.1 ") and answer[9:12].isdigit()
                             and b"\r\n\r\n" in answer), answer[:200]
    if answer:
        head, _, body = answer.partition(b"\r\n\r\n")
        length = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:")]
        assert len(length) == 1 and (int(length[0]) == len(body) or data.startswith(b"HEAD")
                                     and not body), answer[:300]
    assert not server.errors, server.errors
    assert server.exchange(b"GET /metrics HTTP/1.0\r\n\r\n").endswith(b"\r\n\r\nup 1\n")


# ---- remote listings -----------------------------------------------------------------

class _ListingFtp(ftplib.FTP):
    """ftplib's own parsing of a server's MLSD, NLST, SIZE and MDTM answers, with the
    server's lines taken from the input instead of a socket."""

    def __init__(self, lines):
        super().__init__()
        self.lines = lines
        self.answers = iter(lines * 3)

    def retrlines(self, cmd, callback=None):
        for line in self.lines:
            callback(line)
        return "226 done"

    def sendcmd(self, cmd):
        """SIZE and MDTM: the next answer, checked as ftplib's getresp() checks one."""
        if not cmd.startswith(("SIZE ", "MDTM ")):
            return "200 ok"     # OPTS MLST before MLSD
        answer = next(self.answers, "550 gone")
        if answer[:1] == "4":
            raise ftplib.error_temp(answer)
        if answer[:1] == "5":
            raise ftplib.error_perm(answer)
        if answer[:1] not in ("1", "2", "3"):
            raise ftplib.error_proto(answer)
        return answer

    def voidcmd(self, cmd):
        return "200 ok"


@target("ftp_listing", "an FTP server's MLSD (or NLST, SIZE, MDTM) answers as RemoteWatch "
        "lists them", "RemoteError")
def fuzz_ftp_listing(data):
    mlsd, text = data[:1] != b"N", data[1:].decode("utf-8", "surrogateescape")
    source = pyrotorque._FtpSource(pyrotorque.parse_remote_url("ftp://h/in"), "", 5, None,
                                   _LOG)
    source.ftp, source.mlsd = _ListingFtp(text.split("\n")), mlsd
    found = source.listing(recursive=True)
    for remote in found:
        assert remote.size is None or remote.size >= 0, remote.size     # None: refused
        assert isinstance(remote.stamp, str) and remote.rel, (remote.rel, remote.stamp)
    assert len({remote.rel for remote in found}) == len(found), [r.rel for r in found]


@target("sftp_listing", "OpenSSH sftp's 'ls -ln' output as RemoteWatch parses it")
def fuzz_sftp_listing(data):
    source = pyrotorque._SftpSource(pyrotorque.parse_remote_url("sftp://h/in"), "sftp", 5, "",
                                    [], _LOG)
    for rel, kind, size, stamp, name in source._parse(
            data.decode("utf-8", "surrogateescape"), ["", "sub"]):
        assert name and "/" not in name and size >= 0, (name, size)


# ---- running atheris -----------------------------------------------------------------

#: Inputs each run starts from (besides tests/fuzz_corpus/<target>/): one good example of
#: each format, so that the fuzzer need not find "magnet:?" or "<methodResponse>" by chance.
SEEDS = {
    "torque_ini": [b"[TORQUE]\njob.q.handler = pyrotorque:QueueManager\njob.q.schedule = "
                   b"second=*/5\njob.q.startable = is_complete=no\n  prio>0\n"
                   b"job.w.handler = pyrocore.torrent.watch:TreeWatch\njob.w.schedule = hour=*\n"
                   b"[DEFAULT]\nbase = /tmp\n[TORQUE]\njob.w.path = %(base)s/w\n"],
    "watch_ini": [b"load_mode = start\nqueued = yes\ncmd.label = d.custom1.set={{name}}\n",
                  b"[x]\njob.fuzz.move_loaded_to = ~/done\n"],
    "pyrosimple_toml": [b'[CONNECTIONS]\nmain = "scgi:///x"\n[TORQUE.w]\nhandler = '
                        b'"pyrosimple.job.treewatch:TreeWatch"\nschedule = "second=*/5"\n'
                        b'path = "/tmp/w"\ncmds = ["d.custom1.set={{ item.name }}"]\n'],
    "condition": [b"name=foo* size>1G [ prio>0 OR NOT tagged=x ] loaded>2d completed>2024-01-31",
                  b"is_complete=no leechtime<1w2d message=/timed out/i traits=audio files=*.mkv"],
    "cron": [b"hour=*/2 minute=5-55/10 \"day=3rd sun,last\" month=jan-jun start_date=2024-01-31"
             b"T12:00:00+01:00 jitter=5"],
    "template": [b"{{if d.size > 1000}}{{d.name|lower}}{{elif flag}}{{h.sz(size)}}{{else}}"
                 b"%(name)s{{endif}}{{# note }}{{path|pathbase}}{{tags|json}}{{name[1:3]}}"],
    "bencode": [b"d1:ai1e1:bl3:xyzi-5eee"],
    "metafile": [b"d8:announce12:http://t/ann4:infod5:filesld6:lengthi5e4:pathl1:a1:beed6:"
                 b"lengthi0e4:pathl1:ceee4:name1:x12:piece lengthi16384e6:pieces20:"
                 b"aaaaaaaaaaaaaaaaaaaaee"],
    "magnet": [b"magnet:?xt=urn:btih:" + b"a" * 40 + b"&dn=x%20y&tr=http%3A%2F%2Ft%2Fa",
               b"magnet:?xt=urn:btih:" + b"A" * 32],
    "xmlrpc": [b"<?xml version='1.0'?>\r\n<methodResponse><params><param><value><array><data>"
               b"<value><i8>1</i8></value><value><string>a&amp;b</string></value><value>"
               b"<struct><member><name>k</name><value><i4>-2</i4></value></member></struct>"
               b"</value></data></array></value></param></params></methodResponse>",
               b"<methodResponse><fault><value><struct><member><name>faultCode</name><value>"
               b"<i4>-501</i4></value></member><member><name>faultString</name><value><string>"
               b"no</string></value></member></struct></value></fault></methodResponse>"],
    "http": [b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
             b"HEAD / HTTP/1.0\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n"],
    "ftp_listing": [b"Mtype=file;size=5;modify=20240101000000; a.torrent\ntype=dir; sub",
                    b"N213 5\n213 20240101000000\nb.magnet"],
    "sftp_listing": [b"sftp> -ls -ln in\n-rw-r--r--    ? 0        0             133 Nov 25 "
                     b"18:55 in/a.torrent\ndrwxr-xr-x    ? 0        0            4096 Nov 25 "
                     b"18:55 in/sub\nsftp> -ls -ln in/sub\n"],
}

def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="time budget per target (default: 60)")
    parser.add_argument("--target", action="append", choices=list(TARGETS), metavar="NAME",
                        help="fuzz only this target (repeatable; default: all)")
    parser.add_argument("--timeout", type=int, default=5,
                        help="seconds one input may take (default: 5)")
    parser.add_argument("--rss-mb", type=int, default=1024,
                        help="memory the process may grow to (default: 1024 MiB)")
    parser.add_argument("--max-len", type=int, default=4096,
                        help="the longest input tried (default: 4096 bytes)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def _worker(options):
    """One target under atheris, in this process (libFuzzer exits when it is done)."""
    import atheris
    with atheris.instrument_imports(include=["pyrotorque"]):
        load()
    name = options.worker
    folder = os.path.join(CORPUS, name)
    os.makedirs(folder, exist_ok=True)
    work = tempfile.mkdtemp(prefix="pyrotorque-fuzz-%s-" % name)
    for index, seed in enumerate(SEEDS.get(name, ())):
        write(work, "seed-%d" % index, seed)

    def one_input(data):
        bug = run(name, data)
        if bug is not None:
            raise bug

    atheris.Setup([sys.argv[0], "-max_total_time=%d" % max(1, round(options.seconds)),
                   "-timeout=%d" % options.timeout, "-rss_limit_mb=%d" % options.rss_mb,
                   "-max_len=%d" % options.max_len, "-print_final_stats=1",
                   "-artifact_prefix=%s/" % folder, work, folder], one_input)
    atheris.Fuzz()


def main(argv=None):
    options = _parser().parse_args(argv)
    if options.list:
        for each in TARGETS.values():
            print("%-16s %s" % (each.name, each.about))
        return 0
    if options.worker:
        return _worker(options)
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz.py: needs atheris (pip install atheris)", file=sys.stderr)
        return 69
    names = options.target or list(TARGETS)
    if sys.version_info < (3, 11) and "pyrosimple_toml" in names and not options.target:
        names.remove("pyrosimple_toml")     # tomllib: Python 3.11+
    found = []
    for name in names:
        folder = os.path.join(CORPUS, name)
        before = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        started = time.monotonic()
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", name,
                               "--seconds", str(options.seconds), "--timeout",
                               str(options.timeout), "--rss-mb", str(options.rss_mb),
                               "--max-len", str(options.max_len)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace")
        runs = [line for line in proc.stdout.splitlines() if "stat::number_of_executed_units"
                in line]
        new = sorted(name for name in set(os.listdir(folder)) - before
                     if name.startswith(("crash-", "timeout-", "oom-", "leak-")))
        print("%-16s %6.0f s  %s inputs  %s" % (
            name, time.monotonic() - started, runs[-1].split()[-1] if runs else "?",
            "FOUND: %s" % ", ".join(new) if new else "nothing found"), flush=True)
        if new or proc.returncode not in (0,):
            found.append(name)
            print("\n".join(proc.stdout.splitlines()[-40:]), flush=True)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
