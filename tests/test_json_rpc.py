"""JSON-RPC (rTorrent 0.15 and later): the codec, the choice of protocol, and the same
faults, timeouts, multicalls and escaping as over XML-RPC.

Tests that need JSON-RPC run against the lab's rTorrent; with 0.9.8 (no JSON-RPC) they
check the fallback to XML-RPC and the clear error for ``rpc=json`` instead.
"""
import hashlib
import logging
import time

import pytest

import pyrotorque
import rtlab
from helpers import trickling_server
from pyrotorque import (HashNotFound, MethodMissing, RtorrentError, RtorrentFault,
                        RtorrentProxy, XmlRpcFault)

DEAD_TRACKER = "http://127.0.0.1:9/announce"


def speaks_json(rt):
    return rt.series >= (0, 15)


def over(rt, rpc, timeout=10):
    """A proxy that uses ``rpc`` ("json" or "xml"); None where the rTorrent has no JSON-RPC,
    after checking that ``rpc=json`` is refused with the clear error."""
    proxy = RtorrentProxy(rt.url + "?rpc=" + rpc, timeout=timeout)
    if rpc == "json" and not speaks_json(rt):
        with pytest.raises(RtorrentError, match="does not answer JSON-RPC, which the URL asks "
                                                "for with rpc=json .rTorrent %s" % rt.version):
            proxy.connect()
        return None
    assert proxy.connect().protocol == rpc
    return proxy


def metafile(name, files=((b"a.bin", 1000),)):
    """Metafile bytes for data that does not exist; ``name`` and paths may be any bytes."""
    encode = (lambda text: text if isinstance(text, bytes) else text.encode())
    info = {b"name": encode(name), b"piece length": 16384,
            b"pieces": hashlib.sha1(encode(name)).digest() * (1 + sum(s for _, s in files) // 16384),
            b"files": [{b"length": size, b"path": encode(path).split(b"/")} for path, size in files]}
    return rtlab.bencode({b"announce": DEAD_TRACKER.encode(), b"info": info})


# -- the codec, with no rTorrent ------------------------------------------------------------

def test_a_call_is_one_json_object_and_a_multicall_a_batch_with_ids_in_order():
    assert pyrotorque.jsonrpc_request(("d.name", ("AB",))) == (
        b'{"jsonrpc": "2.0", "id": 0, "method": "d.name", "params": ["AB"]}')
    batch = pyrotorque.jsonrpc_request([("system.pid", ()), ("view.size", ("", "main"))])
    assert batch == (b'[{"jsonrpc": "2.0", "id": 0, "method": "system.pid", "params": []}, '
                     b'{"jsonrpc": "2.0", "id": 1, "method": "view.size", "params": ["", "main"]}]')


def test_json_requests_are_ascii_and_carry_any_text_exactly():
    text = "quote\" back\\ \x01 nl\n \u00e9 \U0001F600 {x} $y;z"
    body = pyrotorque.jsonrpc_request(("print", ("", text)))
    assert body.decode("ascii")
    assert pyrotorque.json.loads(body)["params"] == ["", text]


def test_ints_beyond_64_bits_go_as_strings_and_bytes_are_refused():
    body = pyrotorque.jsonrpc_request(("x", ("", 2**40, 2**63, -2**63, True)))
    assert pyrotorque.json.loads(body)["params"] == ["", 2**40, str(2**63), -2**63, True]
    with pytest.raises(TypeError, match="bytes"):
        pyrotorque.jsonrpc_request(("load.raw", ("", b"d4:infode")))


#: JSON-RPC answers as rTorrent 0.16.17 writes them -> what the codec gives.
ANSWERS = [
    (b'{"id":0,"jsonrpc":"2.0","result":"0.16.17"}', None, "0.16.17"),
    (b'{"id":0,"jsonrpc":"2.0","result":5368709120}', None, 5368709120),
    (b'[{"id":1,"jsonrpc":"2.0","result":0},{"id":0,"jsonrpc":"2.0","result":[["A"]]}]', 2,
     [[["A"]], 0]),
]


@pytest.mark.parametrize("body, count, result", ANSWERS)
def test_answers_are_read_in_id_order(body, count, result):
    assert pyrotorque.parse_jsonrpc_answer(body, count) == result


def test_an_error_in_a_batch_stands_in_place_of_its_result():
    body = (b'[{"id":0,"jsonrpc":"2.0","result":"0.16.17"},{"error":{"code":-32602,'
            b'"message":"invalid parameters: info-hash not found"},"id":1,"jsonrpc":"2.0"}]')
    version, fault = pyrotorque.parse_jsonrpc_answer(body, 2)
    assert version == "0.16.17" and type(fault) is XmlRpcFault
    assert (fault.faultCode, fault.faultString) == (-32602, "invalid parameters: info-hash not found")


@pytest.mark.parametrize("body, count", [
    (b'<?xml version="1.0"?><methodResponse><fault/></methodResponse>', None),
    (b'{"id":0,"jsonrpc":"2.0"}', None),
    (b'[{"id":0,"jsonrpc":"2.0","result":1}]', 2),          # an id missing
    (b'{"id":0,"jsonrpc":"2.0","result":1}', 1),            # no batch
])
def test_what_is_no_json_rpc_answer_is_a_value_error(body, count):
    with pytest.raises(ValueError):
        pyrotorque.parse_jsonrpc_answer(body, count)


def test_an_answer_rtorrent_could_not_write_as_json_is_told_apart():
    body = (b'{"error":{"code":-32700,"message":"[json.exception.type_error.316] invalid UTF-8 '
            b'byte at index 4: 0x80"},"id":null,"jsonrpc":"2.0"}')
    with pytest.raises(pyrotorque.JsonUnwritable):
        pyrotorque.parse_jsonrpc_answer(body, 3)


#: JSON-RPC errors as 0.16.17 answers them (probed) -> the error pyrotorque raises.
JSON_FAULTS = [
    (-32601, "method not found: d.nope", MethodMissing),
    (-32602, "invalid parameters: info-hash not found", HashNotFound),
    (-32602, "Could not find view: nosuch", RtorrentFault),
    (-32602, "invalid parameters: unexpected data type float", RtorrentFault),
]


@pytest.mark.parametrize("code, text, kind", JSON_FAULTS)
def test_json_errors_become_the_same_typed_errors_as_xml_faults(code, text, kind):
    error = RtorrentProxy._fault("d.name", XmlRpcFault(code, text))
    assert type(error) is kind and (error.code, error.message) == (code, text)


URLS = [
    ("scgi:///run/rt/rpc.socket?rpc=json", "unix", "json"),
    ("/run/rt/rpc.socket?rpc=XML", "unix", "xml"),
    ("scgi://127.0.0.1:5000?rpc=json", "tcp", "json"),
    ("127.0.0.1:5000/?rpc=xml", "tcp", "xml"),
    ("https://me:pw@seedbox.example/RPC2?rpc=json", "http", "json"),
    ("scgi:///run/rt/rpc.socket", "unix", None),
]


@pytest.mark.parametrize("url, kind, rpc", URLS)
def test_rpc_json_or_xml_in_any_url_chooses_the_protocol(url, kind, rpc):
    endpoint = pyrotorque.parse_rpc_url(url)
    assert (endpoint.kind, endpoint.rpc, endpoint.url) == (kind, rpc, url)


def test_other_query_keys_stay_in_an_http_url_and_are_an_error_elsewhere():
    endpoint = pyrotorque.parse_rpc_url("http://h:8080/RPC2?token=a%20b&rpc=json")
    assert endpoint.address.query == "token=a+b" and endpoint.rpc == "json"
    with pytest.raises(pyrotorque.ConfigError, match="unknown query 'token=x'"):
        pyrotorque.parse_rpc_url("scgi:///run/rt.sock?token=x")
    with pytest.raises(pyrotorque.ConfigError, match="rpc=yaml, expected rpc=json or rpc=xml"):
        pyrotorque.parse_rpc_url("/run/rt.sock?rpc=yaml")


def test_a_trickling_server_cannot_stretch_a_json_call_past_its_timeout(short_tmp):
    with trickling_server(short_tmp) as (path, seen):
        started = time.monotonic()
        with pytest.raises(pyrotorque.RtorrentUnavailable):
            RtorrentProxy(path + "?rpc=json", timeout=0.5).call("system.client_version")
        assert time.monotonic() - started < 1.5
        assert b"CONTENT_TYPE\0application/json\0" in seen[0] and b'"jsonrpc"' in seen[0]


# -- choosing the protocol, against the lab's rTorrent ----------------------------------------

def test_the_proxy_uses_json_where_rtorrent_answers_it_and_xml_elsewhere(rtorrent, caplog):
    proxy = RtorrentProxy(rtorrent.url, timeout=10)
    with caplog.at_level(logging.INFO, logger="pyrotorque.rtorrent"):
        info = proxy.connect()
    expected = "json" if speaks_json(rtorrent) else "xml"
    assert info.protocol == proxy.protocol == expected
    assert "over %s" % ("JSON-RPC" if expected == "json" else "XML-RPC") in caplog.text
    assert proxy.call("view.size", "", "main") == 0
    # Asking 0.9.8 in JSON is no failed call; 0.16 with xmlrpc-c lacks system.listMethods
    # over JSON (it is xmlrpc-c's own), so that call fails once and goes over XML.
    assert proxy.stats.errors == (expected == "json" and rtorrent.backend == "xmlrpc-c")
    assert "d.multicall2" in info.methods


def test_rpc_xml_never_asks_in_json(rtorrent):
    proxy = over(rtorrent, "xml")
    assert "system.client_version" not in proxy.stats.by_method    # no probe


def test_the_protocol_is_asked_again_after_rtorrent_was_down(rtorrent):
    proxy = RtorrentProxy(rtorrent.url, timeout=5)
    proxy.connect()
    rtorrent.stop()
    with pytest.raises(pyrotorque.RtorrentUnavailable):
        proxy.call("view.size", "", "main")
    assert proxy.protocol is None and proxy.info is None
    rtorrent.start()
    assert proxy.connect().protocol == ("json" if speaks_json(rtorrent) else "xml")


@pytest.mark.parametrize("rpc", ["xml", "json"])
def test_faults_are_the_same_typed_errors_over_both_protocols(rtorrent, rpc):
    proxy = over(rtorrent, rpc)
    if proxy is None:
        return
    with pytest.raises(HashNotFound):
        proxy.call("d.name", "0" * 40)
    with pytest.raises(MethodMissing):
        proxy.call("no.such.method")
    with pytest.raises(RtorrentFault):
        proxy.call("d.multicall2", "", "no-such-view", "d.hash=")


@pytest.mark.parametrize("rpc", ["xml", "json"])
def test_multicalls_over_both_protocols_return_results_and_typed_faults(rtorrent, rpc):
    proxy = over(rtorrent, rpc)
    if proxy is None:
        return
    calls = [("system.client_version",), ("d.name", "0" * 40), ("no.such.method",),
             ("view.size", "", "main")]
    results = proxy.multicall(calls, faults="return")
    assert results[0] == rtorrent.version and results[3] == 0
    assert [type(r) for r in results[1:3]] == [HashNotFound, MethodMissing]
    with pytest.raises(HashNotFound):
        proxy.multicall(calls)
    before = proxy.stats.by_method["system.multicall"]
    many = [("view.size", "", "main")] * (pyrotorque.MULTICALL_BATCH + 1)
    assert proxy.multicall(many) == [0] * len(many)
    assert proxy.stats.by_method["system.multicall"] == before + 2


@pytest.mark.parametrize("rpc", ["xml", "json"])
def test_big_integers_and_filtered_multicalls_work_over_both_protocols(rtorrent, rpc):
    proxy = over(rtorrent, rpc)
    if proxy is None:
        return
    proxy.call("pieces.memory.max.set", "", 5 * 2**30)
    assert proxy.call("pieces.memory.max") == 5 * 2**30
    hashes = [rtorrent.load_raw(metafile("item%d" % n), "d.priority.set=%d" % (n % 3))
              for n in range(6)]
    rows = proxy.call("d.multicall.filtered", "", "main", "greater=d.priority=,value=1",
                      "d.hash=", "d.priority=")
    assert sorted(rows) == sorted([h, 2] for n, h in enumerate(hashes) if n % 3 == 2)


def test_a_metafile_goes_over_xml_rpc_even_when_calls_use_json(rtorrent):
    """rTorrent's JSON has no binary type and takes only valid UTF-8: load.raw* needs XML."""
    proxy = RtorrentProxy(rtorrent.url, timeout=10)
    proxy.connect()
    data = metafile(b"raw\xff bytes")
    proxy.call("load.raw_verbose", "", data)
    info_hash = rtlab.infohash(data)
    rtorrent.wait_for(lambda: rtorrent.has(info_hash), 5)
    with pytest.raises(TypeError):
        pyrotorque.jsonrpc_request(("load.raw_verbose", ("", data)))


ODD = [b"bad\xff\xfe utf8", b"lone\xc3", b"ctrl\x01name", "emoji \U0001F600".encode()]


def test_names_rtorrent_cannot_write_as_json_are_read_over_xml(rtorrent, caplog):
    hashes = [rtorrent.load_raw(metafile(name, [(b"odd\x80.bin", 100)])) for name in ODD]
    json_proxy = RtorrentProxy(rtorrent.url, timeout=10)
    xml_proxy = over(rtorrent, "xml")
    with caplog.at_level(logging.DEBUG, logger="pyrotorque.rtorrent"):
        rows = json_proxy.call("d.multicall2", "", "main", "d.hash=", "d.name=",
                               "f.multicall=,f.path=")
        names = json_proxy.multicall([("d.name", h) for h in hashes])
    assert sorted(rows) == sorted(xml_proxy.call("d.multicall2", "", "main", "d.hash=",
                                                 "d.name=", "f.multicall=,f.path="))
    assert names == xml_proxy.multicall([("d.name", h) for h in hashes])
    assert names[2] == "ctrl\ufffdname"
    if speaks_json(rtorrent):
        assert "cannot write its answer as JSON" in caplog.text
        errors = json_proxy.stats.errors
        json_proxy.call("d.multicall2", "", "main", "d.name=")
        assert json_proxy.stats.errors == errors    # for a while straight over XML-RPC
        assert json_proxy.xml_for["d.multicall2"] == pyrotorque.XML_AFTER_UNWRITABLE - 1


# -- an rTorrent that answers JSON-RPC only (network.rpc.use_xmlrpc.set = 0) -----------------

@pytest.fixture
def json_only():
    """A 0.15+ rTorrent that refuses XML-RPC; None for one without JSON-RPC."""
    version = rtlab.rtorrent_versions(rtlab.find_rtorrent())[0]
    if tuple(int(part) for part in version.split(".")[:2]) < (0, 15):
        with pytest.raises(rtlab.LabError, match="no JSON-RPC"):
            rtlab.RTorrent(xmlrpc=False)
        yield None
        return
    with rtlab.RTorrent(xmlrpc=False) as rt:
        yield rt


def test_an_rtorrent_that_refuses_xml_is_called_over_json(json_only, caplog):
    if json_only is None:
        return
    good = json_only.load_raw(metafile("good"))
    proxy = RtorrentProxy(json_only.url, timeout=10)
    if json_only.backend == "xmlrpc-c":     # system.listMethods is xmlrpc-c's, not rTorrent's
        with pytest.raises(RtorrentError, match="lists its methods over XML-RPC only .built with "
                           "xmlrpc-c., and refuses XML-RPC: set network.rpc.use_xmlrpc back to 1"):
            proxy.connect()
        return
    with caplog.at_level(logging.INFO, logger="pyrotorque.rtorrent"):
        assert proxy.connect().protocol == "json" and proxy.xml_refused
    assert "over JSON-RPC (it refuses XML-RPC)" in caplog.text
    assert proxy.call("d.name", good) == "good"
    assert proxy.multicall([("d.name", good), ("view.size", "", "main")]) == ["good", 1]
    bad = json_only.load_raw(metafile(b"bad\xff name"))
    with pytest.raises(pyrotorque.UnreadableAnswer, match="^d.name: rTorrent cannot write its "
                       "answer as JSON .* and it refuses XML-RPC"):
        proxy.call("d.name", bad)
    with pytest.raises(RtorrentFault, match="XML-RPC not supported"):
        RtorrentProxy(json_only.url + "?rpc=xml", timeout=10).connect()
