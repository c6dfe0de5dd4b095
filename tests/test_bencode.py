"""Bencode and metafile validation: golden tables, pyrobase's malformed inputs, hypothesis."""
import hashlib
import re

import pytest
from hypothesis import given, settings, strategies as st

import pyrotorque
import rtlab

bdecode, bencode = pyrotorque.bdecode, pyrotorque.bencode

# ---- golden cases --------------------------------------------------------------------------

VALUES = [
    (b"i4e", 4), (b"i0e", 0), (b"i123456789e", 123456789), (b"i-10e", -10),
    (b"i12345678901234567890e", 12345678901234567890),
    (b"0:", b""), (b"3:abc", b"abc"), (b"10:1234567890", b"1234567890"),
    (b"le", []), (b"l0:0:0:e", [b"", b"", b""]), (b"li1ei2ei3ee", [1, 2, 3]),
    (b"l3:asd2:xye", [b"asd", b"xy"]),
    (b"ll5:Alice3:Bobeli2ei3eee", [[b"Alice", b"Bob"], [2, 3]]),
    (b"de", {}), (b"d3:agei25e4:eyes4:bluee", {b"age": 25, b"eyes": b"blue"}),
    (b"d8:spam.mp3d6:author5:Alice6:lengthi100000eee",
     {b"spam.mp3": {b"author": b"Alice", b"length": 100000}}),
    (b"d0:i1e1:ai2ee", {b"": 1, b"a": 2}),
    (b"3:\x00\xff\n", b"\x00\xff\n"),
]


@pytest.mark.parametrize("data, value", VALUES)
def test_golden_values_decode_and_encode_back(data, value):
    assert bdecode(data) == value
    assert bencode(value) == data


# pyrobase's test_errors list, including the cases it had to comment out because its
# decoder was lenient (leading zeros, -0, non-string and unsorted or duplicate keys).
PYROBASE_MALFORMED = [
    b"", b"0:0:", b"ie", b"i341foo382e", b"i-0e", b"i123", b"i6easd",
    b"35208734823ljdahflajhdf", b"2:abfdjslhfld", b"02:xy", b"l", b"l0:", b"leanfdldjfh",
    b"relwjhrlewjh", b"d", b"defoobar", b"d3:fooe", b"di1e0:e", b"d1:b0:1:a0:e",
    b"d1:a0:1:a0:e", b"i03e", b"l01:ae", b"9999:x", b"d0:0:", b"d0:",
]
MORE_MALFORMED = [
    b"i-e", b"i--1e", b"i1.5e", b"i e", b"i+1e", b"-1:", b"1:", b":", b"e", b"x",
    b"d1:ae", b"dle", b"l" * 100 + b"e" * 100, b"i" + b"9" * 200 + b"e",
    b"99999999999999999999:x", b"3:abcd", b"de" + b"\n",
]


@pytest.mark.parametrize("data", PYROBASE_MALFORMED + MORE_MALFORMED)
def test_malformed_input_raises_value_error(data):
    with pytest.raises(ValueError):
        bdecode(data)


@pytest.mark.parametrize("data, truncated", [
    (b"", True), (b"i12", True), (b"5:ab", True), (b"l1:a", True), (b"d1:a", True),
    (b"d1:ai1e", True), (b"12", True), (b"x", False), (b"i1x", False), (b"de!", False),
])
def test_truncation_is_told_apart_from_garbage(data, truncated):
    with pytest.raises(pyrotorque.BencodeError) as info:
        bdecode(data)
    assert isinstance(info.value, pyrotorque.BencodeTruncated) is truncated


def test_limits():
    with pytest.raises(ValueError, match="limit"):
        bdecode(b"4:abcd", max_size=5)
    assert bdecode(b"l" * 64 + b"e" * 64) is not None
    with pytest.raises(ValueError, match="deeper"):
        bdecode(b"l" * 65 + b"e" * 65)
    with pytest.raises(ValueError, match="deeper"):
        bdecode(b"l" * 100000)          # no recursion error, no memory blow-up


def test_encoder_sorts_keys_as_bytes_and_refuses_other_types():
    assert bencode({"b": 1, "a": [True, "é"]}) == b"d1:ali1e2:\xc3\xa9e1:bi1ee"
    with pytest.raises(TypeError):
        bencode(1.5)
    with pytest.raises(ValueError):
        bencode({"a": 1, b"a": 2})


# ---- hypothesis ------------------------------------------------------------------------------

values = st.recursive(
    st.integers() | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.binary(max_size=8),
                                                                      children, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip(value):
    data = bencode(value)
    assert bdecode(data) == value
    assert bencode(bdecode(data)) == data
    assert data == rtlab.bencode(value)     # the lab's independent encoder agrees


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_value_error(data):
    try:
        value = bdecode(data)
    except ValueError:
        return
    assert bencode(value) == data           # whatever decodes is canonical


@settings(max_examples=300, deadline=None)
@given(values, st.data())
def test_mutated_encodings_only_ever_raise_value_error(value, data):
    raw = bytearray(bencode(value))
    if raw:
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    try:
        result = pyrotorque.read_metafile(bytes(raw))
    except ValueError:
        return
    assert result.info_hash == rtlab.infohash(bytes(raw))     # what is accepted is whole


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_magnet_files_only_ever_raise_value_error(data):
    try:
        magnet = pyrotorque.parse_magnet(b"magnet:?" + data)
    except ValueError:
        return
    # What is accepted has a hex info-hash, and the link rTorrent gets carries it.
    assert re.fullmatch("[0-9A-F]{40}", magnet.info_hash)
    assert ("urn:btih:" + magnet.info_hash).encode() in magnet.data


# ---- metafiles -----------------------------------------------------------------------------

def meta(info=None, **top):
    base = {"name": "x", "piece length": 16384, "pieces": b"p" * 20, "length": 5}
    base.update(info or {})
    doc = {"announce": "http://t/a", "info": {k: v for k, v in base.items() if v is not None}}
    doc.update(top)
    return bencode({k: v for k, v in doc.items() if v is not None})


def test_a_good_metafile_and_its_facts():
    data = meta({"name": "Pioneer.One.S01E06.720p.x264-VODO.mkv"})
    result = pyrotorque.read_metafile(data)
    assert result.info_hash == rtlab.infohash(data)
    assert result.info_hash == hashlib.sha1(bencode(bdecode(data)[b"info"])).hexdigest().upper()
    assert result.info_name == "Pioneer.One.S01E06.720p.x264-VODO.mkv"
    assert result.filetype == ".mkv" and result.announce == "http://t/a" and result.size == 5
    multi = pyrotorque.read_metafile(meta({"length": None, "files": [
        {"length": 5, "path": ["a", "b.nfo"]}, {"length": 9, "path": ["big.MKV"]},
        {"length": 9, "path": ["Aa.avi"]}]}))
    assert multi.filetype == ".MKV" and multi.size == 23     # largest, then greatest name


BAD_METAFILES = [
    (b"li1ee", "not a dictionary"),
    (meta(announce=5), "announce"),
    (meta(announce=None), "no announce"),
    (bencode({"announce": "http://t/a", "info": b"x"}), "info"),
    (meta({"pieces": b"p" * 19}), "pieces"),
    (meta({"piece length": 0}), "piece length"),
    (meta({"piece length": b"1"}), "piece length"),
    (meta({"name": ".hidden"}), "name"),
    (meta({"name": "~x"}), "name"),
    (meta({"name": "a/b"}), "name"),
    (meta({"name": "a\\b"}), "name"),
    (meta({"name": 5}), "name"),
    (meta({"files": [{"length": 1, "path": ["a"]}]}), "exactly one"),
    (meta({"length": None}), "exactly one"),
    (meta({"length": -1}), "length"),
    (meta({"length": None, "files": []}), "files"),
    (meta({"length": None, "files": [{"length": 1, "path": [".."]}]}), r"\.\."),
    (meta({"length": None, "files": [{"length": 1, "path": ["a", "..", "b"]}]}), r"\.\."),
    (meta({"length": None, "files": [{"length": 1, "path": []}]}), "path"),
    (meta({"length": None, "files": [{"length": 1, "path": ["~x"]}]}), "path"),
    (meta({"length": None, "files": [{"length": 1, "path": ["a/b"]}]}), "path"),
    (meta({"length": None, "files": [{"length": -1, "path": ["a"]}]}), "length"),
    (meta({"length": None, "files": [{"length": 1, "path": ["a"]}] * 2}), "duplicate"),
    (meta({"length": None, "files": [b"a"]}), "entry"),
    (meta() + b"x", "trailing"),
    (meta()[:-1], "incomplete"),
    (b"d4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces0:e8:announce1:ae", "out of order"),
]


@pytest.mark.parametrize("data, message", BAD_METAFILES)
def test_bad_metafiles(data, message):
    with pytest.raises(pyrotorque.MetafileError, match=message):
        pyrotorque.read_metafile(data)


def test_trackerless_and_numbered_parts_are_accepted():
    for data in (meta(announce=None, **{"announce-list": [["http://t/b"]]}),
                 meta(announce=None, nodes=[["127.0.0.1", 6881]]),
                 meta({"length": None, "files": [
                     {"length": 1, "path": ["~1x"]}, {"length": 1, "path": ["", "a"]}]})):
        assert pyrotorque.read_metafile(data).info_hash == rtlab.infohash(data)


def test_magnet_links():
    hex_hash = "0123456789ABCDEF0123456789ABCDEF01234567"
    m = pyrotorque.parse_magnet(b"magnet:?xt=urn:btih:%s&dn=A%%20B&tr=http://t/a\n"
                                % hex_hash.lower().encode())
    assert (m.info_hash, m.info_name, m.announce) == (hex_hash, "A B", "http://t/a")
    import base64
    b32 = base64.b32encode(bytes.fromhex(hex_hash)).decode()
    m = pyrotorque.parse_magnet(("magnet:?xt=urn:btih:" + b32).encode())
    assert m.info_hash == hex_hash and hex_hash in m.magnet["uri"]
    for bad in (b"", b"http://x", b"magnet:?dn=x", b"magnet:?xt=urn:btih:123",
                b"magnet:?xt=urn:btih:%s&x=a b" % hex_hash.encode(), b"\xff\xfe"):
        with pytest.raises(pyrotorque.MetafileError):
            pyrotorque.parse_magnet(bad)
