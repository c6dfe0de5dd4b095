"""The rTorrent proxy: endpoints, SCGI framing, faults, timeouts, outages."""
import logging
import os
import signal
import socket
import threading
import time
import xmlrpc.client

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pyrotorque
import rtlab
from helpers import trickling_server
from pyrotorque import (ConfigError, HashNotFound, MethodMissing, RtorrentError,
                        RtorrentProxy, RtorrentUnavailable, parse_rpc_url)

HOME = os.path.expanduser("~")

URLS = [
    # pyrobase's own cases, then ours
    ("scgi://localhost:5000/", "tcp", ("localhost", 5000)),
    ("localhost:5000", "tcp", ("localhost", 5000)),
    ("example.com:5000", "tcp", ("example.com", 5000)),
    ("scgi://127.0.0.1:5000", "tcp", ("127.0.0.1", 5000)),
    ("scgi://[::1]:5000", "tcp", ("::1", 5000)),
    ("~/tmp/socket", "unix", HOME + "/tmp/socket"),
    ("/tmp/socket", "unix", "/tmp/socket"),
    ("scgi:///tmp/socket", "unix", "/tmp/socket"),
    ("scgi:/tmp/socket", "unix", "/tmp/socket"),
    ("scgi://~/rtorrent/.scgi_local", "unix", HOME + "/rtorrent/.scgi_local"),
]


@pytest.mark.parametrize("url, kind, address", URLS)
def test_every_endpoint_form_users_write_is_understood(url, kind, address):
    endpoint = parse_rpc_url(url)
    assert (endpoint.kind, endpoint.address) == (kind, address)


def test_http_urls_keep_user_password_host_and_path():
    endpoint = parse_rpc_url("https://me:s%40cret@seedbox.example:8443/RPC2")
    assert endpoint.kind == "http"
    parts = endpoint.address
    assert (parts.scheme, parts.username, parts.password, parts.hostname, parts.port, parts.path) \
        == ("https", "me", "s%40cret", "seedbox.example", 8443, "/RPC2")


def test_environment_variables_in_the_url_are_expanded(monkeypatch):
    monkeypatch.setenv("RT_HOME", "/srv/rt")
    assert parse_rpc_url("scgi://$RT_HOME/.scgi_local").address == "/srv/rt/.scgi_local"


@pytest.mark.parametrize("url", ["xxxx:///", "", "localhost", "localhost:notaport",
                                 "scgi://host:99999", "ftp://host/x"])
def test_a_bad_url_is_a_config_error(url):
    with pytest.raises(ConfigError):
        parse_rpc_url(url)


# -- SCGI framing: pyrobase's golden vectors ------------------------------------

def test_netstrings_are_length_colon_data_comma():
    assert pyrotorque._netstring(b"") == b"0:,"
    assert pyrotorque._netstring(b"a") == b"1:a,"


@pytest.mark.parametrize("body, headers, framed", [
    (b"", (), b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,"),
    (b"*" * 10, (), b"25:CONTENT_LENGTH\x0010\x00SCGI\x001\x00," + b"*" * 10),
    (b"", [("a", "b")], b"28:CONTENT_LENGTH\x000\x00SCGI\x001\x00a\x00b\x00,"),
])
def test_an_scgi_request_puts_content_length_first(body, headers, framed):
    assert pyrotorque.scgi_request(body, headers) == framed


def test_a_response_is_split_into_headers_and_body():
    headers, body = pyrotorque.parse_scgi_response(
        b"Status: 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 10\r\n\r\n**********")
    assert body == b"*" * 10
    assert headers == {"status": "200 OK", "content-type": "text/xml", "content-length": "10"}


@pytest.mark.parametrize("data, message", [
    (b"Content-Length: 10\r\n", "no header end"),
    (b"garbage line\r\n\r\nbody", "malformed SCGI response header"),
    (b"Content-Length: 10\r\n\r\n***", "truncated"),
    (b"Status: 500 Internal\r\n\r\n", "status"),
])
def test_a_malformed_response_is_an_rtorrent_error(data, message):
    with pytest.raises(RtorrentError, match=message):
        pyrotorque.parse_scgi_response(data)


def test_ints_beyond_32_bits_are_sent_as_strings_and_bytes_as_base64():
    safe = pyrotorque._xmlrpc_safe(["", 5_000_000_000, -2**31, True, b"d4:infod", {"k": 2**40}])
    assert safe == ["", "5000000000", -2**31, True, b"d4:infod", {"k": str(2**40)}]
    request = pyrotorque.xmlrpc_request("load.raw", safe)
    assert b"<base64>\nZDQ6aW5mb2Q=\n</base64>" in request
    assert xmlrpc.client.loads(request, use_builtin_types=True) == (tuple(safe), "load.raw")


XMLRPC_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**31, 2**31 - 1) | st.text() | st.binary()
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12).filter(lambda v: v is not None)


def _xml_safe(value):
    """Text that XML 1.0 can carry (rTorrent's names are made safe before sending)."""
    if isinstance(value, str):
        return not pyrotorque._XML_FORBIDDEN.search(value) and "\r" not in value
    if isinstance(value, list):
        return all(_xml_safe(v) for v in value)
    if isinstance(value, dict):
        return all(_xml_safe(k) and _xml_safe(v) for k, v in value.items())
    return value is not None


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(["d.multicall2", "load.raw_verbose", "a<&>b"]),
       params=st.lists(XMLRPC_VALUES, max_size=5))
def test_a_request_reads_back_as_what_was_sent_the_way_xmlrpc_client_reads_it(method, params):
    assume(_xml_safe(params))
    assert xmlrpc.client.loads(pyrotorque.xmlrpc_request(method, params),
                               use_builtin_types=True) == (tuple(params), method)


@pytest.mark.parametrize("value, error", [(2**31, OverflowError), (None, TypeError),
                                          ({1: 2}, TypeError), (object(), TypeError)])
def test_a_value_xml_rpc_cannot_carry_is_refused_before_sending(value, error):
    with pytest.raises(error):
        pyrotorque.xmlrpc_request("x", [value])


def test_an_answer_with_characters_xml_forbids_still_parses():
    body = (b"<?xml version='1.0'?><methodResponse><params><param><value><string>"
            b"bad\x01name\xff</string></value></param></params></methodResponse>")
    assert pyrotorque._parse_xmlrpc_response(body) == ("bad\ufffdname\ufffd",)


# -- against fake servers on loopback: hangs and refusals ---------------------------

def test_a_server_that_never_answers_times_out_as_unavailable(short_tmp):
    path = os.path.join(short_tmp, "hang.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    try:
        proxy = RtorrentProxy(path, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(RtorrentUnavailable, match="timed out"):
            proxy.call("system.client_version")
        assert time.monotonic() - started < 2
    finally:
        server.close()


def test_a_trickling_server_cannot_stretch_a_call_past_its_timeout(short_tmp):
    with trickling_server(short_tmp) as (path, _):
        started = time.monotonic()
        with pytest.raises(RtorrentUnavailable):
            RtorrentProxy(path + "?rpc=xml", timeout=0.5).call("system.client_version")
        assert time.monotonic() - started < 1.5


def test_a_server_that_closes_without_an_answer_is_unavailable_not_a_broken_answer(short_tmp):
    """rTorrent killed while it answers: the call is a skipped run, never a job failure."""
    path = os.path.join(short_tmp, "close.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def close_after_reading():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.close()
    threading.Thread(target=close_after_reading, daemon=True).start()
    try:
        with pytest.raises(RtorrentUnavailable, match="closed the connection without an answer"):
            RtorrentProxy(path + "?rpc=xml", timeout=5).call("system.client_version")
    finally:
        server.close()


def test_a_hung_rtorrent_costs_one_timeout_then_calls_fail_at_once_until_it_answers(
        rtorrent, monkeypatch):
    monkeypatch.setattr(pyrotorque, "HUNG_PAUSE", 1.0)
    proxy = RtorrentProxy(rtorrent.url, timeout=2)
    proxy.connect()
    os.kill(rtorrent.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(RtorrentUnavailable, match="timed out"):
            proxy.call("system.pid")
        assert time.monotonic() - started >= 1.9
        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(RtorrentUnavailable, match="its last call timed out; asked again"):
                proxy.call("system.pid")
        assert time.monotonic() - started < 0.5       # not 20 timeouts
        time.sleep(1.1)             # the probe (1 s at most) finds it still stopped
        with pytest.raises(RtorrentUnavailable, match="asked again"):
            proxy.call("system.pid")
    finally:
        os.kill(rtorrent.pid, signal.SIGCONT)
    time.sleep(1.1)
    assert proxy.call("system.pid") == rtorrent.pid   # the next probe finds it back
    assert proxy.hung_until is None


def test_an_outage_is_logged_once_and_its_end_once(short_tmp, caplog, rtorrent):
    proxy = RtorrentProxy(rtorrent.url, timeout=5)
    assert proxy.call("system.client_version") == rtorrent.version
    rtorrent.stop()
    with caplog.at_level(logging.INFO, logger="pyrotorque.rtorrent"):
        for _ in range(3):
            with pytest.raises(RtorrentUnavailable):
                proxy.call("system.client_version")
        rtorrent.start()
        assert proxy.call("system.client_version") == rtorrent.version
        proxy.call("system.client_version")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
    assert proxy.stats.errors == 3


# -- against a real rTorrent (0.9.8, or the one --rtorrent names) -----------------------

def test_the_handshake_learns_version_session_pid_and_methods(rtorrent):
    proxy = RtorrentProxy(rtorrent.url, timeout=5)
    info = proxy.connect()
    assert (info.version, info.library) == (rtorrent.version, rtorrent.library_version)
    assert info.pid == rtorrent.pid
    assert "d.multicall2" in info.methods and "load.raw" in info.methods
    assert info.startup is not None and abs(info.startup - time.time()) < 600
    assert proxy.missing_methods(["d.multicall2", "d.no_such_thing"]) == ["d.no_such_thing"]


#: Faults as the rTorrents answer them (probed) -> the error pyrotorque raises.
FAULT_KINDS = [
    (-501, "Could not find info-hash.", HashNotFound),                       # 0.9.8
    (-503, "invalid parameters: info-hash not found", HashNotFound),         # 0.16 xmlrpc-c
    (-500, "invalid parameters: info-hash not found", HashNotFound),         # 0.16 tinyxml2
    (-506, "Method 'd.nope' not defined", MethodMissing),                    # 0.9.8, 0.16 xmlrpc-c
    (-506, "method 'd.nope' not defined", MethodMissing),                    # 0.16 tinyxml2
    (-501, "Unsupported target type found.", pyrotorque.RtorrentFault),      # 0.9.8
    (-500, "invalid parameters: invalid target", pyrotorque.RtorrentFault),  # 0.16 tinyxml2
    (-503, "Could not find view.", pyrotorque.RtorrentFault),
    (-500, "Could not find view.", pyrotorque.RtorrentFault),
]


@pytest.mark.parametrize("code, text, kind", FAULT_KINDS)
def test_each_rtorrents_fault_becomes_the_same_typed_error(code, text, kind):
    error = RtorrentProxy._fault("d.name", pyrotorque.XmlRpcFault(code, text))
    assert type(error) is kind
    assert (error.code, error.message) == (code, text)


def test_faults_become_typed_errors(rtorrent):
    proxy = RtorrentProxy(rtorrent.url + "?rpc=xml", timeout=5)   # JSON: tests/test_json_rpc.py
    with pytest.raises(HashNotFound):
        proxy.call("d.name", "0" * 40)
    with pytest.raises(MethodMissing):
        proxy.call("no.such.method")
    with pytest.raises(pyrotorque.RtorrentFault) as caught:
        proxy.call("d.multicall2", "", "no-such-view", "d.hash=")
    assert caught.value.code == rtlab.COMMAND_FAULT[rtorrent.backend]   # 0.16 tinyxml2: -500


def test_a_multicall_returns_each_result_and_raises_on_a_fault(rtorrent):
    proxy = RtorrentProxy(rtorrent.url, timeout=5)
    assert proxy.multicall([("system.client_version",), ("view.size", "", "main")]) == [rtorrent.version, 0]
    with pytest.raises(HashNotFound):
        proxy.multicall([("system.client_version",), ("d.name", "0" * 40)])


def test_a_multicall_can_return_faults_in_place_of_their_results(rtorrent):
    proxy = RtorrentProxy(rtorrent.url, timeout=5)
    results = proxy.multicall([("system.client_version",), ("d.name", "0" * 40),
                               ("no.such.method",), ("view.size", "", "main")], faults="return")
    assert results[0] == rtorrent.version and results[3] == 0
    assert type(results[1]) is HashNotFound and results[1].method == "d.name"
    assert type(results[2]) is MethodMissing
    with pytest.raises(ValueError, match="faults"):
        proxy.multicall([("system.client_version",)], faults="ignore")


def test_a_long_multicall_goes_in_batches_unless_the_caller_sized_it(rtorrent):
    proxy = RtorrentProxy(rtorrent.url, timeout=5)
    calls = [("view.size", "", "main")] * (pyrotorque.MULTICALL_BATCH + 1)
    assert proxy.multicall(calls) == [0] * len(calls)
    assert proxy.stats.by_method["system.multicall"] == 2
    assert proxy.multicall(calls, batch=None) == [0] * len(calls)
    assert proxy.stats.by_method["system.multicall"] == 3


def test_a_typo_in_a_method_is_an_attribute_error_not_a_call(rtorrent):
    proxy = RtorrentProxy(rtorrent.url, timeout=5)
    with pytest.raises(AttributeError):
        proxy.stat
    with pytest.raises(AttributeError):
        proxy.d.start("0" * 40)
    assert proxy.stats.calls == 0


def test_an_unreadable_answer_is_an_rtorrent_error_naming_the_method_and_counted(short_tmp):
    path = os.path.join(short_tmp, "odd.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    body = b"<?xml version='1.0'?><methodResponse><nothing/></methodResponse>"

    def answer():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"Status: 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        proxy = RtorrentProxy(path + "?rpc=xml", timeout=5)    # the one answer is XML
        with pytest.raises(pyrotorque.UnreadableAnswer, match="^system.client_version: unreadable"):
            proxy.call("system.client_version")
        assert issubclass(pyrotorque.UnreadableAnswer, RtorrentError)
        assert (proxy.stats.calls, proxy.stats.errors) == (1, 1)
    finally:
        thread.join(5)
        server.close()


def test_big_values_reach_rtorrent_as_strings(rtorrent):
    proxy = RtorrentProxy(rtorrent.url, timeout=5)
    proxy.call("pieces.memory.max.set", "", 5 * 2**30)
    assert proxy.call("pieces.memory.max") == 5 * 2**30


def test_tcp_endpoints_work_too(rtorrent_tcp):
    proxy = RtorrentProxy(rtorrent_tcp.url, timeout=5)
    assert parse_rpc_url(rtorrent_tcp.url).kind == "tcp"
    assert proxy.call("system.client_version") == rtorrent_tcp.version
    assert proxy.stats.by_method["system.client_version"] >= 1 and proxy.stats.bytes_in > 0


def test_http_endpoints_with_basic_auth_reach_rtorrent_through_a_web_server(rtorrent):
    """A web server in front of rTorrent's SCGI socket, as ruTorrent setups have."""
    import base64
    import http.server

    seen = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.path, self.headers.get("Authorization")))
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(rtorrent.socket_path)
                sock.sendall(pyrotorque.scgi_request(body))
                answer = b"".join(iter(lambda: sock.recv(65536), b""))
            payload = pyrotorque.parse_scgi_response(answer)[1]
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://me:p%%40ss@127.0.0.1:%d/RPC2" % server.server_address[1]
        proxy = RtorrentProxy(url, timeout=5)
        assert proxy.call("system.client_version") == rtorrent.version
        assert proxy.connect().version == rtorrent.version
    finally:
        server.shutdown()
        server.server_close()
    assert seen[0] == ("/RPC2", "Basic " + base64.b64encode(b"me:p@ss").decode())


# -- properties -------------------------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402


def _parse_request(data):
    length, _, rest = data.partition(b":")
    head, body = rest[:int(length)], rest[int(length) + 1:]
    assert rest[int(length):int(length) + 1] == b","
    fields = head.split(b"\0")[:-1]
    return list(zip(fields[::2], fields[1::2])), body


@given(st.binary(max_size=2000),
       st.lists(st.tuples(st.text("abcXYZ_", min_size=1, max_size=8),
                          st.text("abc 123", max_size=8)), max_size=3))
def test_any_request_frames_and_unframes_with_content_length_first(body, headers):
    pairs, rest = _parse_request(pyrotorque.scgi_request(body, headers))
    assert rest == body
    assert pairs[0] == (b"CONTENT_LENGTH", str(len(body)).encode())
    assert pairs[1] == (b"SCGI", b"1")
    assert pairs[2:] == [(k.encode(), v.encode()) for k, v in headers]


@given(st.binary(max_size=2000))
def test_any_body_survives_a_response_with_its_content_length(body):
    data = b"Status: 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert pyrotorque.parse_scgi_response(data)[1] == body


@given(st.binary(max_size=300))
def test_garbage_responses_only_ever_raise_rtorrent_errors(data):
    try:
        _, body = pyrotorque.parse_scgi_response(data)
    except RtorrentError:
        return
    assert data.endswith(b"\r\n\r\n" + body)      # what is accepted is the whole body


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_any_url_text_gives_an_endpoint_or_a_config_error(text):
    try:
        endpoint = parse_rpc_url(text)
    except ConfigError:
        return
    assert endpoint.kind in ("unix", "tcp", "http")
