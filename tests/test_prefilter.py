"""Letting rTorrent filter: conditions translated for d.multicall.filtered.

The translation may keep more items than the condition matches, never fewer; for
conditions on integer fields with whole thresholds it must keep exactly the same.
"""
import logging
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pyrotorque

import rtlab  # conftest puts contrib/ on sys.path

TRANSLATIONS = [
    ("prio>3", "greater=d.priority=,value=3"),
    ("prio<2", "less=d.priority=,value=2"),
    ("prio=2", "equal=d.priority=,value=2"),
    ("prio=!2", 'or={"less=d.priority=,value=2","greater=d.priority=,value=2"}'),
    ("prio=!+1", "less=d.priority=,value=2"),
    ("prio=!-1", "greater=d.priority=,value=0"),
    ("size>1.5k", "greater=d.size_bytes=,value=1536"),
    ("size>1.2", "greater=d.size_bytes=,value=1"),
    ("size<1.2", "less=d.size_bytes=,value=2"),
    ("is_open=no", "equal=d.is_open=,value=0"),
    ("is_open=!no", "d.is_open="),
    ("is_complete=yes", "d.complete="),
    ("is_active=1 is_complete=0",
     'and={"d.is_active=","equal=d.complete=,value=0"}'),
    ("fno=2,3", 'or={"equal=d.size_files=,value=2","equal=d.size_files=,value=3"}'),
    # NOT is pushed down to the terms (De Morgan).
    ("NOT [ prio>1 OR size<1k ]",
     'and={"less=d.priority=,value=2","greater=d.size_bytes=,value=1023"}'),
    # A term rTorrent cannot check is left out of an AND ...
    ("name=foo* prio>0", "greater=d.priority=,value=0"),
    ("is_ignored=no done=0 message=/^$|ghost/ prio>0",
     'and={"equal=d.ignore_commands=,value=0","greater=d.priority=,value=0"}'),
    # ... and nested lists quote their elements one level deeper.
    ("prio=1,3 is_open=no",
     'and={"or={\\"equal=d.priority=,value=1\\",\\"equal=d.priority=,value=3\\"}",'
     '"equal=d.is_open=,value=0"}'),
]

NOT_TRANSLATED = [
    "name=foo",                 # text: rTorrent 0.9.8 has no pattern match
    "name=foo OR prio=1",       # one unknown branch of an OR may match anything
    "prio=1.5",                 # an integer never equals it: left to Python
    "prio=!1.5",
    "ratio>1",                  # a float computed from d.ratio
    "custom_x=1",
    "[ NOT [ name=foo prio>1 ] ]",
]


@pytest.mark.parametrize("text, expected", TRANSLATIONS)
def test_a_condition_becomes_the_expected_rtorrent_filter(text, expected):
    assert pyrotorque.rtorrent_filter(pyrotorque.parse_condition(text)) == expected


@pytest.mark.parametrize("text", NOT_TRANSLATED)
def test_a_condition_rtorrent_cannot_check_gives_no_filter(text):
    assert pyrotorque.rtorrent_filter(pyrotorque.parse_condition(text)) is None


# Against a real rTorrent -------------------------------------------------------

#: (name, size, files, priority, open, ignoring commands) of the items loaded.
ITEMS = [("item%02d" % n, 1000 + 700 * n, (n % 3) + 1 if n % 2 else None, n % 4, n % 5 == 0,
          n % 7 == 0) for n in range(24)]
SIZES = sorted({size for _, size, _, _, _, _ in ITEMS})


@pytest.fixture(scope="module")
def varied():
    """A module-wide rTorrent holding ITEMS (stopped: nothing changes under the tests)."""
    tmp = tempfile.mkdtemp(prefix="pf", dir="/tmp")
    try:
        with rtlab.RTorrent(parent=tmp) as rt:
            for name, size, files, prio, is_open, ignored in ITEMS:
                path = rtlab.make_payload(tmp, name, size, files=files)
                info_hash = rt.load_raw(rtlab.make_torrent(path, "http://127.0.0.1:9/announce"),
                                        "d.priority.set=%d" % prio,
                                        "d.ignore_commands.set=%d" % ignored)
                if is_open:
                    rt.proxy.d.open(info_hash)
            yield rt
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _number(field):
    if field == "size":
        near = st.sampled_from(SIZES).flatmap(lambda s: st.sampled_from([s - 1, s, s + 1]))
        return near.map(str)
    return st.integers(0, 4).map(str)


def _terms():
    numeric = st.sampled_from(["prio", "size", "fno"]).flatmap(
        lambda field: st.tuples(st.just(field), st.sampled_from(["", "+", "-", "!", "!+", "!-"]),
                                _number(field)).map(lambda t: "%s=%s%s" % t))
    flags = st.tuples(st.sampled_from(["is_open", "is_ignored", "is_multi_file", "is_active"]),
                      st.sampled_from(["", "!"]), st.sampled_from(["yes", "no"])).map(
                          lambda t: "%s=%s%s" % t)
    lists = st.tuples(st.integers(0, 3), st.integers(0, 3)).map(lambda t: "prio=%d,%d" % t)
    return st.one_of(numeric, flags, lists)


CONDITIONS = st.recursive(
    _terms(),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: "%s %s" % t),
        st.tuples(inner, inner).map(lambda t: "[ %s OR %s ]" % t),
        inner.map(lambda t: "[ NOT [ %s ] ]" % t)),
    max_leaves=6)

FIELDS = {"prio", "size", "fno", "is_open", "is_ignored", "is_multi_file", "is_active", "name"}


def _hashes(proxy, condition):
    """(hashes Python matches over the whole view, hashes rTorrent's filter keeps)."""
    source = pyrotorque.ItemSource(proxy)
    every = source.fetch("main", FIELDS)
    matched = {item.hash for item in every if condition.match(item)}
    kept = {item.hash for item in source.fetch("main", FIELDS,
                                               pyrotorque.rtorrent_filter(condition))}
    assert source.view_size == len(ITEMS)
    return matched, kept


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=CONDITIONS)
@example(text="prio>2")
@example(text="size<%d" % SIZES[3])
@example(text="prio=!1 is_open=no")
@example(text="[ NOT [ prio>1 OR is_open=yes ] ]")
@example(text="fno=2,3 OR is_ignored=yes")
def test_rtorrent_keeps_exactly_the_items_an_integer_condition_matches(varied, text):
    condition = pyrotorque.parse_condition(text)
    assert pyrotorque.rtorrent_filter(condition) is not None
    matched, kept = _hashes(varied.proxy, condition)
    assert kept == matched, "%s -> %s" % (condition, pyrotorque.rtorrent_filter(condition))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=CONDITIONS, name=st.sampled_from(["item0*", "item1?", "/[02468]$/", "nothing"]),
       joiner=st.sampled_from([" ", " OR ", " NOT "]))
def test_rtorrent_never_drops_an_item_a_mixed_condition_matches(varied, text, name, joiner):
    condition = pyrotorque.parse_condition("%s%sname=%s" % (text, joiner, name))
    matched, kept = _hashes(varied.proxy, condition)
    assert matched <= kept


def test_the_queue_lets_rtorrent_filter_and_still_counts_the_whole_view(varied, caplog):
    spec = pyrotorque.JobSpec("queue")
    spec.params["startable"] = "prio>3"
    proxy = pyrotorque.RtorrentProxy(varied.url, timeout=5)
    config = pyrotorque.job_config(spec, pyrotorque.QueueManager, None, proxy=proxy,
                                   item_source=pyrotorque.ItemSource(proxy))
    job = pyrotorque.QueueManager(config)
    with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
        job.run()
    assert "Checked %d item(s), none startable" % len(ITEMS) in caplog.text
    assert "(0 passed rTorrent's filter)" in caplog.text
    assert proxy.stats.by_method.get("d.multicall.filtered") == 1
    assert "d.multicall2" not in proxy.stats.by_method
