"""Every parser that reads outside input, fuzzed with hypothesis: it only ever raises its
own documented error, never hangs and never grows without bound.

The targets, with the errors each may raise, are contrib/fuzz.py's (the coverage-guided
fuzzer runs the same functions under atheris); here each gets inputs built from its own
grammar, mutated, plus raw bytes.  Every example runs under a time limit (SIGALRM) and a
memory limit (tracemalloc's peak).  Examples per parser: EXAMPLES (the whole file stays
under about a minute on a busy machine).
"""
import os
import xmlrpc.client

from hypothesis import HealthCheck, given, settings, strategies as st

import fuzz     # contrib/fuzz.py (tests/conftest.py puts contrib/ on sys.path)
from helpers import fuzz_check as check

#: hypothesis examples per parser: the budget reported in README.rst.  A longer run:
#: PYROTORQUE_FUZZ_SCALE=50 python3 -m pytest tests/test_fuzz_parsers.py
SCALE = float(os.environ.get("PYROTORQUE_FUZZ_SCALE") or 1)
EXAMPLES = {"torque_ini": 150, "watch_ini": 200, "pyrosimple_toml": 200, "condition": 400,
            "cron": 400, "template": 400, "bencode": 300, "metafile": 300, "magnet": 300,
            "xmlrpc": 400, "http": 200, "ftp_listing": 300, "sftp_listing": 300}

fuzz.load()


def fuzzing(name, *strategies):
    """The test of target ``name``: any of ``strategies`` (text or bytes), or raw bytes."""
    @settings(max_examples=max(1, int(EXAMPLES[name] * SCALE)), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(*strategies, st.binary(max_size=300)))
    def test(data):
        check(name, data)
    test.__name__ = "test_%s_raises_only_its_own_error_in_bounded_time_and_memory" % name
    return test


def lines(*pieces, size=12):
    """Text of up to ``size`` lines drawn from ``pieces`` (strategies or strings)."""
    parts = [p if isinstance(p, st.SearchStrategy) else st.just(p) for p in pieces]
    return st.lists(st.one_of(*parts), max_size=size).map("\n".join)


NOISE = st.text(st.sampled_from("ab1 =:%()[]{}.,;#'\"\\\t\n\x00\u00e9\U0001f600"), max_size=12)


# ---- configuration -------------------------------------------------------------------

#: Every key of every built-in job, and every built-in job's handler name.
JOB_KEYS = sorted({key for job in fuzz.pyrotorque.BUILTIN_JOBS.values()
                   for key in getattr(job, "PARAMS", {})} | set(
    fuzz.pyrotorque.COMMON_JOB_PARAMS) | {"cmd.x", "nope"})
HANDLERS = ["pyrotorque:%s" % name for name in sorted(fuzz.pyrotorque.BUILTIN_JOBS)]
INI_VALUES = st.one_of(st.sampled_from(HANDLERS), st.sampled_from([
    "pyrocore.torrent.queue:QueueManager", "pyrosimple.job.action:Action", "pyrotorque:Nope",
    "second=*/5", "hour=99", "day=3rd sun", "yes", "no", "maybe", "1", "-1", "1e9", "10G",
    "inf", "nan", "1e400", "-0", "0x10", "1_000", "\u0663",
    "%(nope)s", "%(config_dir)s/x", "~/x", "{{d.name}}", "is_complete=yes", "name,-size",
    "9" * 5000, "~\0/x", "/tmp/a\0b", "d.set_custom1=x", "file:nope",
    "ftp://u:p@127.0.0.1:1/x", "", "%", "\u00e9"]), NOISE)
INI_LINE = st.one_of(
    st.sampled_from(["[TORQUE]", "[GLOBAL]", "[ANNOUNCE]", "[TORQUE", "# comment", ";x", "",
                     "  continued value", "rpc_timeout = 1", "scgi_url = /no/sock"]),
    st.builds("job.{}.{} = {}".format, st.sampled_from(["x", "y", "connstats", "", "a.b"]),
              st.sampled_from(JOB_KEYS), INI_VALUES),
    NOISE)

test_torque_ini = fuzzing("torque_ini", lines("[TORQUE]", INI_LINE))

test_watch_ini = fuzzing("watch_ini", lines(
    st.sampled_from(["[watch]", "[x]", "", "# x"]),
    st.builds("{} = {}".format, st.sampled_from(
        ["load_mode", "queued", "load_by_path", "remove_loaded", "move_loaded_to", "quiet",
         "cmd.x", "cmd.", "job.fuzz.queued", "nope"]), INI_VALUES),
    NOISE, size=6))

TOML_VALUE = st.one_of(
    st.sampled_from(['"pyrosimple.job.engine:EngineStats"', '"pyrosimple.job.action:Action"',
                     '"pyrosimple.job.queue:QueueManager"', '"pyrosimple.job.treewatch:'
                     'TreeWatch"', '"second=*/5"', '"hour=99"', "true", "1", "-1", "1.5",
                     "[1, 2]", '["a"]', '{a = 1}', '"{{ item.name }}"', "'''x'''", '""']),
    NOISE)
test_pyrosimple_toml = fuzzing("pyrosimple_toml", lines(
    st.sampled_from(["[TORQUE]", "[TORQUE.x]", "[TORQUE.y]", "[CONNECTIONS]", "[TORQE.x]",
                     "[[TORQUE.x]]", "[TORQUE.x.y]", ""]),
    st.builds("{} = {}".format, st.sampled_from(
        ["handler", "schedule", "active", "dry_run", "path", "command", "args", "actions",
         "cmd", "matcher", "filter", "connection", "nope", "'quoted key'"]), TOML_VALUE),
    NOISE, size=8))


# ---- the languages in the configuration ----------------------------------------------

FIELDS = [field.name for field in fuzz.pyrotorque.FIELD_TABLE] + ["custom_x", "d.name"]
COND_TOKEN = st.one_of(
    st.builds("{}{}{}".format, st.sampled_from(FIELDS), st.sampled_from(
        ["=", "!=", "<", ">", "<=", ">=", "=!", "=<", "=>"]), st.sampled_from(
        ["x", "*x*", "/x+/", "/(/", "/x/i", "1", "1.5", "-2", "10G", "1m2d", "2024-01-31",
         "'a b'", '"q"', "yes", "no", "", "a,b", "!x", "+1h", "1e400", "9" * 30, "9" * 5000,
         "9" * 5000 + "d", "+9999999999999999999y"])),
    st.sampled_from(["[", "]", "OR", "NOT", "!", "AND", "x", "'", '"', ",", " "]),
    NOISE)
test_condition = fuzzing("condition", st.lists(COND_TOKEN, max_size=12).map(" ".join))

CRON_VALUE = st.one_of(
    st.sampled_from(["*", "*/5", "1-5", "5-1", "1-5/2", "mon-fri", "jan", "last", "3rd sun",
                     "last fri", "0", "59", "60", "99999999999", "2024-01-31",
                     "2024-01-31T12:00:00+01:00", "9999-12-31", "1969-01-01", "*/0", "",
                     "5\x1e", "9" * 5000, "\u0663"]),
    st.lists(st.sampled_from(["1", "2", "*/7", "mon", "10-20"]), max_size=4).map(",".join))
test_cron = fuzzing("cron", st.lists(st.builds("{}={}".format, st.sampled_from(
    ["second", "minute", "hour", "day", "week", "day_of_week", "month", "year",
     "start_date", "end_date", "jitter", "timezone", "nope"]), CRON_VALUE),
    max_size=6).map(lambda words: " ".join('"%s"' % w if " " in w else w for w in words)))

EXPR = st.recursive(
    st.sampled_from(["name", "size", "d.name", "item.size", "tags", "none", "flag", "h",
                     "'a'", '"b"', "1", "-1", "1.5", "1e309", "[]", "x", "_x", "None",
                     "True", "...", "b'x'", "1j", "9" * 5000]),
    lambda inner: st.one_of(
        st.builds("({})".format, inner),
        st.builds("{} + {}".format, inner, inner),
        st.builds("{} if {} else {}".format, inner, inner, inner),
        st.builds("not {}".format, inner),
        st.builds("-{}".format, inner),
        st.builds("{}[{}]".format, inner, inner),
        st.builds("{}[{}:{}:{}]".format, inner, inner, inner, inner),
        st.builds("{} {} {}".format, inner, st.sampled_from(
            ["==", "<", "in", "is", "and", "or", "*", "**", "%", "//"]), inner),
        st.builds("{}.{}({})".format, inner, st.sampled_from(
            ["zfill", "replace", "split", "lower", "get", "count", "center", "format"]),
            inner),
        st.builds("{}({})".format, st.sampled_from(
            ["len", "str", "int", "sorted", "min", "h.sz", "h.iso", "h.json", "open"]), inner),
        st.builds("{}|{}".format, inner, st.sampled_from(["lower", "sz", "iso", "json", "x"])),
        st.builds("[{}, {}]".format, inner, inner)),
    max_leaves=12)
TEMPLATE_PART = st.one_of(
    st.builds("{{{{{}}}}}".format, EXPR),
    st.builds("{{{{if {}}}}}".format, EXPR), st.builds("{{{{elif {}}}}}".format, EXPR),
    st.sampled_from(["{{else}}", "{{endif}}", "{{# c }}", "%(name)s", "%(x)s", "{{", "}}",
                     "\n", "text ", "{{" + "(" * 300 + "x" + ")" * 300 + "}}",
                     "{{" + "not " * 3000 + "x}}", "{{" + "-" * 30000 + "1}}",
                     "{{" + "[" * 150 + "]" * 150 + "}}"]),
    NOISE)
test_template = fuzzing("template", st.lists(TEMPLATE_PART, max_size=8).map("".join))


# ---- metafiles -----------------------------------------------------------------------

BVALUE = st.recursive(
    st.integers(-2, 2**70) | st.binary(max_size=24) | st.sampled_from([b"..", b"a/b", b".x"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        [b"announce", b"info", b"name", b"length", b"files", b"path", b"pieces",
         b"piece length", b"announce-list", b"nodes", b"x"]), inner, max_size=5),
    max_leaves=20)
METAFILE = st.builds(
    lambda info, top: dict(top, info=dict({"name": "x", "piece length": 16384,
                                           "pieces": b"p" * 20, "length": 5}, **info)),
    st.dictionaries(st.sampled_from(["name", "length", "files", "pieces", "piece length"]),
                    BVALUE, max_size=3),
    st.dictionaries(st.sampled_from(["announce", "announce-list", "nodes"]), BVALUE,
                    max_size=2))


@st.composite
def mutated(draw, values, encode):
    """An encoded value with up to three bytes replaced, removed or repeated."""
    data = bytearray(encode(draw(values)))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        data[at:at + draw(st.integers(0, 2))] = draw(st.binary(max_size=3))
    return bytes(data)


test_bencode = fuzzing("bencode", mutated(BVALUE, fuzz.pyrotorque.bencode))
test_metafile = fuzzing("metafile", mutated(METAFILE, fuzz.pyrotorque.bencode))

MAGNET_PARAM = st.builds("{}={}".format, st.sampled_from(
    ["xt", "dn", "tr", "xl", "ws", "", "x"]), st.one_of(
    st.sampled_from(["urn:btih:" + "a" * 40, "urn:btih:" + "A" * 32, "urn:btih:" + "a" * 39,
                     "urn:btih:" + "\u0663" * 40, "urn:sha1:x", "%ff", "%", "a+b", "%0a"]),
    NOISE))
test_magnet = fuzzing("magnet", st.lists(MAGNET_PARAM, max_size=5).map(
    lambda params: "magnet:?" + "&".join(params)))


# ---- rTorrent's answers --------------------------------------------------------------

RPC_VALUE = st.recursive(
    st.integers(-2**31, 2**31 - 1) | st.text(max_size=10) | st.booleans()
    | st.floats(allow_nan=False) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=15)


def _answer(value):
    if isinstance(value, dict) and set(value) == {"code", "text"}:
        return xmlrpc.client.dumps(xmlrpc.client.Fault(1, "x"), methodresponse=True)
    return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False)


def _rtorrent_style(body):
    return body.replace("<int>", "<i8>").replace("</int>", "</i8>").replace("\n", "\r\n")


test_xmlrpc = fuzzing("xmlrpc", mutated(RPC_VALUE, lambda v: _answer(v).encode("utf-8")),
                      mutated(RPC_VALUE, lambda v: _rtorrent_style(_answer(v)).encode()),
                      st.just(xmlrpc.client.dumps(xmlrpc.client.Fault(-501, "no"),
                                                  methodresponse=True).encode()))


# ---- the exporter's HTTP server ------------------------------------------------------

HTTP_HEAD = st.builds(
    "{} {} {}\r\n{}\r\n".format,
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "BREW", "get", "", "GET GET"]),
    st.sampled_from(["/metrics", "/", "/nope", "/metrics?x=1", "*", "http://x/metrics",
                     "/" + "a" * 9000, "/%00", ""]),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "HTTP/0.9", "", "FTP"]),
    st.lists(st.sampled_from([
        "Host: x", "Content-Length: 5", "Content-Length: -1", "Content-Length: 99999999999",
        "Content-Length: x", "Accept-Encoding: gzip;q=0", "Accept-Encoding: gzip",
        "Authorization: Basic Zm9vOmJhcg==", "Authorization: Basic !!", "Expect: 100-continue",
        "Connection: keep-alive", " folded", "X: " + "y" * 9000, "bad header", ":",
        "Transfer-Encoding: chunked"]), max_size=5).map(
        lambda headers: "".join(h + "\r\n" for h in headers)))
test_http = fuzzing("http", HTTP_HEAD, HTTP_HEAD.map(lambda head: head.replace("\r\n", "\n")))


# ---- remote listings -----------------------------------------------------------------

MLSD_LINE = st.builds(
    "{} {}".format,
    st.lists(st.builds("{}={}".format, st.sampled_from(["type", "size", "modify", "perm", "x"]),
                       st.sampled_from(["file", "dir", "cdir", "pdir", "5", "-5", "1e3", "x",
                                        "", "20240101000000", "99999999999999999999"])),
             max_size=4).map(lambda facts: "".join(f + ";" for f in facts)),
    st.sampled_from(["a.torrent", "sub", ".hidden.torrent", "a b.magnet", "x/y.torrent",
                     "..", "", "\u00e9.torrent"]))
test_ftp_listing = fuzzing("ftp_listing", st.lists(MLSD_LINE, max_size=6).map(
    lambda rows: "M" + "\n".join(rows)), st.lists(st.one_of(
        st.sampled_from(["a.torrent", "b.magnet", "213 5", "213 x", "213 -5", "213 ",
                         "213 20240101000000", "550 no", "450 busy", "500 ?"]), NOISE),
        max_size=8).map(lambda rows: "N" + "\n".join(rows)))

SFTP_LINE = st.builds(
    "{} {} ? 0 0 {} {} {}".format,
    st.sampled_from(["-rw-r--r--", "drwxr-xr-x", "lrwxrwxrwx", "?", "-"]),
    st.sampled_from(["1", "2"]), st.sampled_from(["133", "0", "-5", "99999999999999999999",
                                                  "x", "\u0663", "9" * 5000]),
    st.sampled_from(["Nov 25 18:55", "Jan  2  2020", "x"]),
    st.sampled_from(["in/a.torrent", "in/sub", "in/sub/b.torrent", "in/", "in/x/y.torrent",
                     "/elsewhere/z.torrent", "in/\u00e9.torrent", "./a.torrent"]))
test_sftp_listing = fuzzing("sftp_listing", st.lists(st.one_of(
    SFTP_LINE, st.sampled_from(["sftp> -ls -ln in", "sftp> -ls -ln in/sub", ""]), NOISE),
    max_size=8).map("\n".join))


def test_every_target_of_the_fuzzer_has_a_test_here():
    assert sorted(EXAMPLES) == sorted(fuzz.TARGETS)
    assert all(callable(globals().get("test_%s" % name)) for name in fuzz.TARGETS)
