"""The Prometheus text renderer and the exporter's HTTP server, in-process.

The server runs in a real ``Daemon`` loop (its selector and timers) on a
thread of its own; the tests are its clients.  No rTorrent is needed here:
``test_exporter.py`` has the tests against a real one.
"""
import errno
import gzip
import math
import os
import re
import socket
import ssl
import subprocess
import time

import pytest

import pyrotorque
from helpers import (GO_FLOAT, DaemonThread, free_port, parse_metrics, raw, request, status_of,
                     value)

#: The README text that lists every metric (README.rst once merged).
README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.rst")


# The renderer ------------------------------------------------------------------------

def test_golden_rendering_is_byte_exact():
    up = pyrotorque.MetricFamily("x_up", "gauge", "1 if up.")
    up.add(1)
    sent = pyrotorque.MetricFamily("x_sent_bytes_total", "counter", "Bytes sent\nin total \\o/.")
    sent.add(21217331, {"view": "main", "alias": "tracker.example"})
    sent.add(0.5, {"view": "a\"b\\c\nd", "alias": ""})
    latency = pyrotorque.MetricFamily("x_rpc_seconds", "summary", "RPC time.")
    latency.add(0.25, suffix="_sum")
    latency.add(3, suffix="_count")
    empty = pyrotorque.MetricFamily("x_nothing", "gauge", "No samples: left out.")
    assert pyrotorque.render_metrics([up, sent, empty, latency]) == (
        '# HELP x_up 1 if up.\n'
        '# TYPE x_up gauge\n'
        'x_up 1\n'
        '# HELP x_sent_bytes_total Bytes sent\\nin total \\\\o/.\n'
        '# TYPE x_sent_bytes_total counter\n'
        'x_sent_bytes_total{alias="tracker.example",view="main"} 21217331\n'
        'x_sent_bytes_total{alias="",view="a\\"b\\\\c\\nd"} 0.5\n'
        '# HELP x_rpc_seconds RPC time.\n'
        '# TYPE x_rpc_seconds summary\n'
        'x_rpc_seconds_sum 0.25\n'
        'x_rpc_seconds_count 3\n')


@pytest.mark.parametrize("number, text", [
    (0, "0"), (1, "1"), (-7, "-7"), (True, "1"), (False, "0"), (2 ** 64, "18446744073709551616"),
    (3.0, "3"), (0.1, "0.1"), (-2.5, "-2.5"), (1e-07, "1e-07"), (1e20, "1e+20"),
    (1795459832.711, "1795459832.711"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"),
    (float("nan"), "NaN"),
])
def test_values_are_text_that_gos_parsefloat_reads(number, text):
    assert pyrotorque.format_metric_value(number) == text
    assert GO_FLOAT.match(text)
    if not (isinstance(number, float) and math.isnan(number)):
        assert float(text.replace("Inf", "inf")) == float(number)


def test_labels_are_sorted_and_escaped():
    assert pyrotorque.label_text({"b": "1", "a": 'say "hi"\\\n'}) == \
        '{a="say \\"hi\\"\\\\\\n",b="1"}'
    assert pyrotorque.label_text({}) == ""
    text = pyrotorque.label_text({"name": "Ünïcode ✓ \\ \" \n end"})
    samples, _, _ = parse_metrics("# HELP m h\n# TYPE m gauge\nm%s 1\n" % text)
    assert value(samples, "m", name="Ünïcode ✓ \\ \" \n end") == 1


@pytest.mark.parametrize("make", [
    lambda: pyrotorque.MetricFamily("bad-name", "gauge", ""),
    lambda: pyrotorque.MetricFamily("x", "enum", ""),
    lambda: pyrotorque.MetricFamily("x_bytes", "counter", ""),         # counters end in _total
    lambda: pyrotorque.MetricFamily("x_total", "gauge", ""),           # and only counters do
    lambda: pyrotorque.MetricFamily("x", "gauge", "").add(1, {"__reserved": "a"}),
    lambda: pyrotorque.MetricFamily("x", "gauge", "").add(1, {"bad-label": "a"}),
    lambda: pyrotorque.MetricFamily("x", "gauge", "").add(1, suffix="_sum"),
])
def test_names_types_and_labels_are_checked(make):
    with pytest.raises(ValueError):
        make()


def test_the_same_series_twice_and_a_family_twice_are_refused():
    family = pyrotorque.MetricFamily("x", "gauge", "")
    family.add(1, {"a": "1"})
    with pytest.raises(ValueError, match="duplicate"):
        family.add(2, {"a": "1"})
    with pytest.raises(ValueError, match="twice"):
        pyrotorque.render_metrics([family, family])


# The HTTP server in a real Daemon loop ------------------------------------------------

@pytest.fixture
def loop(tmp_path):
    made = []

    def make(torque_ini="", url="/nonexistent/rpc.sock"):
        made.append(DaemonThread(tmp_path, torque_ini, url))
        return made[-1]
    yield make
    for each in made:
        each.close()


BODY = b"# HELP t_up Up.\n# TYPE t_up gauge\nt_up 1\n"


def static_server(loop, body=BODY, **options):
    """A MetricsServer on an ephemeral port serving ``body`` as /metrics."""
    def page(path, gzip_ok):
        if path == "/metrics":
            data = gzip.compress(body) if gzip_ok else body
            headers = [("Content-Encoding", "gzip")] if gzip_ok else []
            return 200, data, pyrotorque.METRICS_CONTENT_TYPE, headers
        if path == "/":
            return 200, b"<html></html>", "text/html; charset=utf-8", ()
        return None
    server = pyrotorque.MetricsServer(loop.daemon, page, pyrotorque.logging.getLogger("t"),
                                      **options)
    server.listen("127.0.0.1", 0)
    loop.start()
    return server


def test_get_and_head_of_metrics(loop):
    server = static_server(loop())
    port = server.address[1]
    status, headers, body = request(port)
    assert status == 200 and body == BODY
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["Content-Length"] == str(len(BODY)) and headers["Connection"] == "close"
    status, headers, body = request(port, "HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len(BODY))
    status, headers, body = request(port, path="/metrics?collect[]=x")
    assert status == 200 and body == BODY
    status, headers, body = request(port, headers={"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == BODY


def test_index_unknown_paths_and_methods(loop):
    server = static_server(loop())
    port = server.address[1]
    assert request(port, path="/")[0] == 200
    assert request(port, path="/nope")[0] == 404
    status, headers, body = request(port, "POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert request(port, "DELETE")[0] == 405
    assert request(port, "BREW")[0] == 501
    assert server.requests[405] == 2 and server.requests[200] == 1


@pytest.mark.parametrize("data, code", [
    (b"garbage\r\n\r\n", 400),
    (b"\r\n\r\n", 400),
    (b"GET /metrics HTTP/x.y\r\n\r\n", 400),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    (b"GET GET /metrics HTTP/0.9\r\n\r\n", 400),      # a status line even for "0.9" (fuzz)
    (b"GET /metrics JUNK\r\n", 400),                        # answered without waiting
    (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 200),     # http.client is lenient
    (b"GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 9000 + b"\r\n\r\n", 431),
    (b"GET /" + b"m" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
], ids=lambda x: str(x) if isinstance(x, int) else x[:24].decode("latin-1"))
def test_garbage_gets_a_4xx_and_the_server_goes_on(loop, data, code):
    server = static_server(loop())
    port = server.address[1]
    answer = raw(port, data)
    assert answer.startswith(b"HTTP/1.1 ") and status_of(answer) == code, answer[:200]
    assert request(port)[0] == 200


def test_a_request_that_says_http_0_9_gets_an_answer_with_status_line_and_headers(loop):
    """http.server would send only the body (found by tests/test_fuzz_parsers.py)."""
    server = static_server(loop())
    answer = raw(server.address[1], b"GET /metrics HTTP/0.9\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\n" + BODY)


def test_a_request_in_tiny_pieces_is_put_together(loop):
    server = static_server(loop())
    with socket.create_connection(("127.0.0.1", server.address[1]), timeout=5) as sock:
        for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n":
            sock.sendall(bytes([byte]))
        answer = sock.makefile("rb").read()
    assert status_of(answer) == 200 and answer.endswith(BODY)


def test_a_request_with_a_body_is_answered_without_a_reset(loop):
    server = static_server(loop())
    answer = raw(server.address[1], b"POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"
                 + b"z" * 100000)
    assert status_of(answer) == 405


def test_silent_and_slow_clients_do_not_delay_other_scrapes(loop):
    running = loop()
    server = static_server(running, timeout=1.5)
    port = server.address[1]
    silent = socket.create_connection(("127.0.0.1", port))
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /metrics HTTP/1.1\r\n")          # and never the rest
    times = []
    for _ in range(10):
        started = time.monotonic()
        assert request(port)[0] == 200
        times.append(time.monotonic() - started)
    assert max(times) < 0.2, times
    silent.settimeout(5)
    slow.settimeout(5)
    started = time.monotonic()
    assert silent.recv(1000).startswith(b"HTTP/1.1 408 ")      # after the 1.5 s deadline
    assert status_of(slow.recv(1000)) == 408
    assert 0.5 < time.monotonic() - started < 3.0
    assert silent.recv(1000) == b""
    silent.close()
    slow.close()
    assert server.requests[408] == 2


def test_a_client_that_never_reads_its_answer_does_not_stall_the_loop(loop):
    running = loop()
    big = b"# HELP t_x X.\n# TYPE t_x gauge\n" + b"".join(
        b't_x{i="%d"} %d\n' % (i, i) for i in range(400000))     # about 8 MB
    server = static_server(running, body=big, timeout=2.0)
    port = server.address[1]
    stuck = socket.create_connection(("127.0.0.1", port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    time.sleep(0.2)
    started = time.monotonic()
    status, _, body = request(port, "HEAD")
    assert status == 200 and time.monotonic() - started < 0.5
    wait_until(lambda: not server.connections, 5)       # dropped at its deadline
    stuck.close()


def test_at_the_connection_cap_the_oldest_idle_connection_makes_room(loop):
    server = static_server(loop(), max_connections=4, timeout=30)
    port = server.address[1]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    for _ in range(3):
        assert request(port)[0] == 200
    wait_until(lambda: len(server.connections) <= 4, 5)
    for sock in idle:
        sock.close()


def test_running_out_of_file_descriptors_pauses_accepting_for_a_second(loop):
    running = loop()
    server = static_server(running)
    port, listener = server.address[1], server.listener
    real = listener.sock

    class Exhausted:
        """The listening socket, but the first accept() fails with EMFILE."""
        failures = 1

        def fileno(self):
            return real.fileno()

        def accept(self):
            if Exhausted.failures:
                Exhausted.failures -= 1
                raise OSError(errno.EMFILE, "Too many open files")
            return real.accept()

        def getsockname(self):
            return real.getsockname()

        def close(self):
            real.close()

    running.call(lambda: setattr(listener, "sock", Exhausted()))
    started = time.monotonic()
    assert request(port)[0] == 200                  # waits in the backlog meanwhile
    assert 0.8 < time.monotonic() - started < 3
    assert request(port)[0] == 200


def test_basic_authentication(loop):
    server = static_server(loop(), auth=("prom", "s3cret ✓"))
    port = server.address[1]
    status, headers, _ = request(port)
    assert status == 401 and headers["WWW-Authenticate"].startswith('Basic realm="pyrotorque"')
    wrong = "Basic " + pyrotorque.base64.b64encode(b"prom:nope").decode()
    assert request(port, headers={"Authorization": wrong})[0] == 401
    assert request(port, headers={"Authorization": "Basic !!!"})[0] == 401
    assert request(port, headers={"Authorization": "Bearer x"})[0] == 401
    good = "Basic " + pyrotorque.base64.b64encode("prom:s3cret ✓".encode()).decode()
    status, _, body = request(port, headers={"Authorization": good})
    assert status == 200 and body == BODY


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A throwaway self-signed certificate for 127.0.0.1, made by openssl."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = str(where / "cert.pem"), str(where / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_serves_https_and_a_stuck_handshake_blocks_nothing(loop, certificate):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = static_server(loop(), tls=context, timeout=1.5)
    port = server.address[1]
    client = ssl.create_default_context(cafile=cert)
    stuck = socket.create_connection(("127.0.0.1", port))       # never says hello
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"\x16\x03\x01\x00\x50")                        # the start of a hello
    for _ in range(5):
        started = time.monotonic()
        status, headers, body = request(port, context=client)
        assert status == 200 and body == BODY and time.monotonic() - started < 0.5
    try:                                                        # plain HTTP to the TLS port
        assert not raw(port, b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
    except ConnectionResetError:
        pass                                                    # the failed handshake
    assert request(port, context=client)[0] == 200
    stuck.settimeout(5)
    assert stuck.recv(100) == b""                                # closed at the deadline
    stuck.close()
    half.close()


def test_the_exporter_job_loads_tls_and_refuses_bad_settings(tmp_path, certificate):
    cert, key = certificate
    ok = exporter_config(tmp_path, tls_cert=cert, tls_key=key, user="a", password="b")
    assert ok.tls is not None and ok.auth == ("a", "b") and ok.server is None  # --check: no socket
    for params, where in [({"jobs": "system,trackers"}, "jobs"), ({"prefix": "9x"}, "prefix"),
                          ({"prefix": "pyrotorque_"}, "prefix"), ({"port": "70000"}, "port"),
                          ({"user": "a"}, "user"), ({"password": "b"}, "password"),
                          ({"tls_key": key}, "tls_key"), ({"tls_cert": "/nonexistent"}, "tls_cert"),
                          ({"tls_cert": key}, "tls_cert"), ({"item_stats": "d.x y!"}, "item_stats"),
                          ({"item-labels": "a,,b c.="}, "item-labels"),
                          ({"max_connections": "0"}, "max_connections")]:
        with pytest.raises(pyrotorque.ConfigError, match=r"torque.ini:\d+: job.exporter.%s: "
                           % re.escape(where)):
            exporter_config(tmp_path, **params)


def test_item_keys_take_both_spellings_and_an_optional_d_prefix(tmp_path):
    job = exporter_config(tmp_path, item_stats="d.down.rate up.total")
    assert job.item_stats == ["d.down.rate", "d.up.total"]
    assert job.item_labels == ["d.hash", "d.name"]
    job = exporter_config(tmp_path, **{"item-stats": "size_bytes", "item-labels": "custom1,name"})
    assert job.item_stats == ["d.size_bytes"]
    assert job.item_labels == ["d.hash", "d.custom1", "d.name"]     # the hash is always there


def exporter_config(tmp_path, **params):
    """An exporter built the way --check builds it (no daemon), from a torque.ini."""
    lines = ["job.exporter.active = yes"] + ["job.exporter.%s = %s" % kv for kv in params.items()]
    (tmp_path / "torque.ini").write_text("[TORQUE]\n" + "\n".join(lines) + "\n")
    settings = pyrotorque.load_settings(str(tmp_path))
    spec = settings.jobs["exporter"]
    handler = pyrotorque.resolve_handler(spec.params["handler"])
    config = pyrotorque.job_config(spec, handler, settings, proxy=None, item_source=None, daemon=None,
                                   schedule=None)
    try:
        return handler(config)
    except pyrotorque.ConfigError as exc:
        raise spec.constructor_error(exc) from None


def test_pyrocores_handler_name_means_the_exporter():
    assert pyrotorque.resolve_handler("pyrocore.daemon.exporter:RtorrentExporter") \
        is pyrotorque.RtorrentExporter


# The exporter job in the loop, without rTorrent ---------------------------------------

EXPORTER = ("job.exporter.active = yes\njob.exporter.schedule = second=*/30\n"
            "job.exporter.port = {port}\njob.exporter.jobs = system,tracker,item\n")


class Counting(pyrotorque.Job):
    """A job offering samples through the metrics() protocol (one of them broken)."""

    def run(self):
        pass

    def metrics(self):
        return [("things_done_total", "counter", "Things done.", {"kind": "a"}, 3),
                ("things_done_total", "counter", "Things done.", {"kind": "b"}, 4),
                ("queue_length", "gauge", "Length.", {}, 7),
                ("broken name", "gauge", "Bad.", {}, 1)]


class Watching(pyrotorque.Job):
    """A job that counts in a ``stats`` Counter, as the tree watch does."""

    def __init__(self, config):
        super().__init__(config)
        self.stats = pyrotorque.collections.Counter(loaded=5, overflows=1)

    def run(self):
        pass


def test_with_rtorrent_unreachable_up_is_0_and_scrapes_answer(loop, monkeypatch):
    monkeypatch.setitem(pyrotorque.BUILTIN_JOBS, "Counting", Counting)
    monkeypatch.setitem(pyrotorque.BUILTIN_JOBS, "Watching", Watching)
    port = free_port()
    running = loop(EXPORTER.format(port=port) + "job.count.handler = pyrotorque:Counting\n"
                   "job.count.schedule = hour=*\njob.tw.handler = pyrotorque:Watching\n"
                   "job.tw.schedule = hour=*\n").build().start()
    job = running.daemon.jobs["exporter"].job
    status, headers, body = request(port)
    assert status == 503 and headers["Retry-After"]             # before the first collection
    with pytest.raises(pyrotorque.RtorrentUnavailable):
        running.call(job.run)
    status, headers, body = request(port)
    assert status == 200
    samples, types, _ = parse_metrics(body.decode())
    assert value(samples, "rtorrent_up") == 0
    assert not [n for n, _ in samples if n.startswith("rtorrent_") and not n.startswith(
        ("rtorrent_up", "rtorrent_collection_"))]                # nothing stale or half-done
    assert value(samples, "pyrotorque_build_info", version=pyrotorque.__version__,
                 python_version="%d.%d.%d" % pyrotorque.sys.version_info[:3]) == 1
    assert value(samples, "pyrotorque_things_done_total", job_name="count", kind="b") == 4
    assert value(samples, "pyrotorque_queue_length", job_name="count") == 7
    assert not [name for name, _ in samples if "broken" in name]
    assert value(samples, "pyrotorque_watch_loaded_total", job_name="tw") == 5
    assert value(samples, "pyrotorque_watch_inotify_overflows_total", job_name="tw") == 1
    assert value(samples, "pyrotorque_watch_bad_metafiles_total", job_name="tw") == 0
    assert types["pyrotorque_things_done_total"] == "counter"
    assert value(samples, "pyrotorque_rpc_errors_total") >= 1
    assert value(samples, "pyrotorque_http_requests_total", code="503") == 1


def test_a_reload_hands_the_listening_socket_to_the_new_exporter(loop, tmp_path):
    port = free_port()
    running = loop(EXPORTER.format(port=port)).build().start()
    old = running.daemon.jobs["exporter"].job
    with pytest.raises(pyrotorque.RtorrentUnavailable):
        running.call(old.run)
    # What Daemon.reload does: build the new jobs (the old ones still run), then close the old.
    with open(tmp_path / "torque.ini", "a") as handle:
        handle.write("job.exporter.prefix = rt_\n")
    settings = pyrotorque.load_settings(str(tmp_path))
    _, jobs = running.call(lambda: running.daemon.build_jobs(settings, keep=running.daemon.jobs))
    new = jobs["exporter"].job
    assert new is not old and new.server.listener is old.server.listener
    assert b"rtorrent_up 0" in request(port)[2]                 # the old text until we collect
    running.call(new.close)                                     # as a failed reload would
    assert request(port)[0] == 200 and old.server.listener.users == [old.server]
    _, jobs = running.call(lambda: running.daemon.build_jobs(settings, keep=running.daemon.jobs))
    new = jobs["exporter"].job
    running.call(old.close)
    with pytest.raises(pyrotorque.RtorrentUnavailable):
        running.call(new.run)
    assert b"\nrt_up 0\n" in request(port)[2]
    running.call(new.close)
    with pytest.raises(OSError):
        request(port)


def test_a_port_in_use_is_a_config_error_naming_the_key(loop, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        running = loop(EXPORTER.format(port=taken.getsockname()[1]))
        with pytest.raises(pyrotorque.ConfigError, match=r"job.exporter.port: cannot listen"):
            running.build()


# The README lists every metric ----------------------------------------------------------

def readme_metrics():
    """{name: (type, labels)} from the README's metric tables."""
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    found = {}
    for name, kind, labels in re.findall(
            r"^``([a-z_<>]+)``\s+(counter|gauge|summary)\s+(\S+)", text, re.M):
        found[name] = (kind, () if labels == "(none)" else tuple(labels.split(",")))
    return found


def code_metrics():
    found = {}
    for name, (kind, labels, _) in pyrotorque.EXPORTER_METRICS.items():
        found["rtorrent_" + name] = (kind, tuple(labels))
    for name, (kind, labels, _) in pyrotorque.DAEMON_METRICS.items():
        found["pyrotorque_" + name] = (kind, tuple(labels))
    for method in pyrotorque.ITEM_STATS:
        name, kind, _, _ = pyrotorque._item_stat(method)
        found["rtorrent_item_" + name] = (kind, ("hash", "name"))
    return found


def test_the_readme_lists_every_metric_and_no_other():
    documented, made = readme_metrics(), code_metrics()
    assert sorted(set(made) - set(documented)) == [], "not in the README"
    assert sorted(set(documented) - set(made)) == [], "in the README, not in the code"
    for name in made:
        assert documented[name] == made[name], name


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_the_loop_lag_is_the_most_of_the_last_minute(tmp_path, monkeypatch):
    job = exporter_config(tmp_path)
    job.daemon = pyrotorque.EventLoop()
    clock = [1000.0]
    monkeypatch.setattr(pyrotorque.time, "monotonic", lambda: clock[0])

    def lag_after(late, seconds):
        clock[0] += seconds
        job.daemon.late_max = late
        families = pyrotorque._Families()
        job.collect_daemon(families)
        text = pyrotorque.render_metrics(list(families.values()))
        return float(re.search(r"^pyrotorque_loop_lag_seconds (\S+)$", text, re.M).group(1))

    assert lag_after(2.5, 0) == 2.5
    assert lag_after(0.1, 15) == 2.5        # a scrape 15 s later still sees it
    assert lag_after(0.2, 40) == 2.5
    assert lag_after(0.05, 10) == 0.2       # 65 s on: gone
    job.daemon.close()
