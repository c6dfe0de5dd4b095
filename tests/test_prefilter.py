"""Letting rTorrent filter: conditions translated for d.multicall.filtered.

The translation may keep more items than the condition matches, never fewer; for
conditions on integer fields with whole thresholds it must keep exactly the same.
"""
import logging
import shutil
import tempfile
import time

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
    ("is_open=no", "not=$d.is_open="),
    ("is_open=!no", "d.is_open="),
    ("is_complete=yes", "d.complete="),
    ("is_active=1 is_complete=0",
     'and={"d.is_active=","not=$d.complete="}'),
    ("fno=2,3", 'or={"equal=d.size_files=,value=2","equal=d.size_files=,value=3"}'),
    # NOT is pushed down to the terms (De Morgan).
    ("NOT [ prio>1 OR size<1k ]",
     'and={"less=d.priority=,value=2","greater=d.size_bytes=,value=1023"}'),
    # A term rTorrent cannot check is left out of an AND ...
    ("alias=foo* prio>0", "greater=d.priority=,value=0"),
    ("is_ignored=no done=0 message=/^$|ghost/ prio>0",
     r'and={"greater=d.priority=,value=0","match={d.message=,\"(?:(?:\\\\n)?)|(?:.*gho(?:s|\\\\xc5\\\\xbf)t.*)|(?:.*(?:\\\\n|\\\\r))+.*\"}","not=$d.ignore_commands="}'),
    # rTorrent stops at the first false conjunct: integers, then text, flags last;
    # a nested AND is flattened into its parent.
    ("[ is_open=no is_active=no ] [ prio>3 OR size<1 ]",
     'and={"or={\\"greater=d.priority=,value=3\\",\\"less=d.size_bytes=,value=1\\"}",'
     '"not=$d.is_open=","not=$d.is_active="}'),
    # A test that every branch of an OR shares is written once ...
    ("[ is_open=no prio>1 OR is_open=no size<1k ]",
     'and={"or={\\"greater=d.priority=,value=1\\",\\"less=d.size_bytes=,value=1024\\"}",'
     '"not=$d.is_open="}'),
    # ... and a flag makes its negation in another branch redundant (X and not F, or F).
    ("[ prio>1 is_active=no OR is_active=yes ]",
     'or={"greater=d.priority=,value=1","d.is_active="}'),
    # The queue's startable and downloading conditions, as the queue joins them.
    ("[ is_open=no is_active=no is_complete=no prio>2 ] OR [ is_active=yes is_complete=no ]",
     'and={"or={\\"and={\\\\\\"greater=d.priority=,value=2\\\\\\",'
     '\\\\\\"not=$d.is_open=\\\\\\"}\\",\\"d.is_active=\\"}","not=$d.complete="}'),
    # ... and nested lists quote their elements one level deeper.
    ("prio=1,3 is_open=no",
     'and={"or={\\"equal=d.priority=,value=1\\",\\"equal=d.priority=,value=3\\"}",'
     '"not=$d.is_open="}'),
    # Text: rTorrent's case-insensitive `match` of the whole value; every character
    # but ASCII letters and digits as \xHH, so nothing reaches rTorrent as a command.
    ("name=foo", 'match={d.name=,"foo"}'),
    # A wildcard is '.', which stops at line breaks: a value with one is let through
    # by a second alternative (negated, the wildcard never matches more than Python).
    ("name=*zzz*",
     r'match={d.name=,".*zzz.*|(?:.*(?:\\n|\\r))+.*"}'),
    ("[ prio>3 OR name=*zzz* ]",
     r'or={"greater=d.priority=,value=3","match={d.name=,\".*zzz.*|(?:.*(?:\\\\n|\\\\r))+.*\"}"}'),
    ("name=a?",
     r'match={d.name=,"a.(?:.(?:..?)?)?|(?:.*(?:\\n|\\r))+.*"}'),
    ('name="b{c}$d;e\\"f\\\\g x"',
     'match={d.name=,"b\\\\x7bc\\\\x7d\\\\x24d\\\\x3be\\\\x22f\\\\x5cg\\\\x20x"}'),
    ("name=", 'match={d.name=,""}'),
    ("name=!foo", 'not="$match={d.name=,\\"foo\\"}"'),
    ("name=!*zzz*", r'not="$match={d.name=,\".*zzz.*\"}"'),
    # Python's case folding finds K (Kelvin) for k in a literal, and also İ ı ſ in a glob.
    ("name=kit", 'match={d.name=,"(?:k|\\\\xe2\\\\x84\\\\xaa)it"}'),
    ("name=kis*",
     r'match={d.name=,"(?:k|\\xe2\\x84\\xaa)(?:i|\\xc4\\xb0|\\xc4\\xb1)(?:s|\\xc5\\xbf).*|(?:.*(?:\\n|\\r))+.*"}'),
    ("message=/^$|gho/",
     r'match={d.message=,"(?:(?:\\n)?)|(?:.*gho.*)|(?:.*(?:\\n|\\r))+.*"}'),
    ("custom_1=x*",
     r'match={d.custom1=,"x.*|(?:.*(?:\\n|\\r))+.*"}'),
    ("custom_my.key=x", 'match={d.custom=my.key,"x"}'),
    ("tagged=foo",
     r'match={d.custom=tags,".*foo.*|(?:.*(?:\\n|\\r))+.*"}'),
    ("name=x alias=y", 'match={d.name=,"x"}'),
    # done and ratio: a d.* integer scaled (and divided), compared in integers on both
    # sides; thresholds are rounded outwards, and a size of 0 chunks is done 0.
    ("done>50", 'greater={"math.mul=$d.completed_chunks=,2","d.size_chunks="}'),
    ("done>0", "greater=d.completed_chunks=,value=0"),
    ("done>99.5", 'greater={"math.mul=$d.completed_chunks=,100","math.mul=$d.size_chunks=,99"}'),
    ("done<50", 'or={"less={\\"math.mul=$d.completed_chunks=,2\\",\\"d.size_chunks=\\"}",'
     '"not=$d.size_chunks="}'),
    ("done=!-50", 'greater={"math.mul=$d.completed_chunks=,100","math.mul=$d.size_chunks=,49"}'),
    ("done=!+100", 'or={"less={\\"math.mul=$d.completed_chunks=,100\\",'
     '\\"math.mul=$d.size_chunks=,101\\"}","not=$d.size_chunks="}'),
    ("ratio>1.5", "greater=d.ratio=,value=1500"),
    ("ratio<1.1", "less=d.ratio=,value=1101"),      # 1.1 is a little more than 11/10
    ("ratio=!+2", "less=d.ratio=,value=2001"),
]

NOT_TRANSLATED = [
    "alias=foo",                # computed here from the trackers
    "alias=foo OR prio=1",      # one unknown branch of an OR may match anything
    "name=Ünï",                 # non-ASCII: rTorrent folds the case of ASCII only
    "name=/a.b/",               # a regex with more than literal text and ^ $ |
    "name=item[12]",            # a glob with a character class
    "name=!item?",              # ? is 1-4 bytes there: not exact, so never negated
    "tagged=!foo",              # words are found as text: not exact, never negated
    "tagged=",
    "prio=1.5",                 # an integer never equals it: left to Python
    "prio=!1.5",
    "done=50",                  # equality of a quotient: left to Python
    "ratio=1",
    "[ NOT [ alias=foo prio>1 ] ]",
    "is_open=no OR is_open=yes",    # always true
]


@pytest.mark.parametrize("text, expected", TRANSLATIONS)
def test_a_condition_becomes_the_expected_rtorrent_filter(text, expected):
    assert pyrotorque.rtorrent_filter(pyrotorque.parse_condition(text)) == expected


#: The queue's conditions, joined as the queue joins them.
QUEUE = "[ is_open=no is_active=no is_complete=no prio>2 ] OR [ is_active=yes is_complete=no ]"

ORDERS = [
    # In a queue's backlog most items pass the flag tests: they go last.
    (QUEUE, {"not=$d.complete=": 1.0, "not=$d.is_open=": 1.0, "d.is_active=": 0.6},
     'and={"or={\\"and={\\\\\\"greater=d.priority=,value=2\\\\\\",'
     '\\\\\\"not=$d.is_open=\\\\\\"}\\",\\"d.is_active=\\"}","not=$d.complete="}'),
    # On a seedbox most items are complete and started: a test they fail comes first.
    (QUEUE, {"not=$d.complete=": 0.05, "not=$d.is_open=": 0.1, "d.is_active=": 0.9},
     'and={"not=$d.complete=","or={\\"and={\\\\\\"not=$d.is_open=\\\\\\",'
     '\\\\\\"greater=d.priority=,value=2\\\\\\"}\\",\\"d.is_active=\\"}"}'),
    ("is_complete=no prio>2", {"not=$d.complete=": 0.4},
     'and={"not=$d.complete=","greater=d.priority=,value=2"}'),
    ("is_complete=no prio>2", {"not=$d.complete=": 0.5},
     'and={"greater=d.priority=,value=2","not=$d.complete="}'),
]


@pytest.mark.parametrize("text, passing, expected", ORDERS)
def test_a_flag_test_most_items_fail_is_tested_first(text, passing, expected):
    assert pyrotorque.rtorrent_filter(pyrotorque.parse_condition(text), passing) == expected


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


def _daemon_proxy(rt):
    """The daemon's own client for a lab rTorrent (ItemSource calls ``proxy.call``)."""
    return pyrotorque.RtorrentProxy(rt.url, timeout=30)


#: Flag tests ordered as on a seedbox: every one taken to drop most items, so first.
SEEDBOX = {test: 0.1 for test in pyrotorque._FLAG_VIEWS}


def _hashes(proxy, condition, passing=None):
    """(hashes Python matches over the whole view, hashes rTorrent's filter keeps);
    `passing` stands for rTorrent's view counts (see ItemSource.flag_shares)."""
    source = pyrotorque.ItemSource(proxy)
    every = source.fetch("main", FIELDS)
    matched = {item.hash for item in every if condition.match(item)}
    assert source.view_size == len(ITEMS)
    return matched, _kept(source, condition, passing)


def _kept(source, condition, passing=None, known=None):
    """What rTorrent's filter keeps: the filter itself, whether or not fetch() would
    ask with it (it does not when the view counts say it keeps most); `known`: the
    name index's stand-ins."""
    rows = source.rows("main", ["d.hash="], pyrotorque.rtorrent_filter(condition, passing, known))
    return {row[0] for row in rows}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=CONDITIONS, seedbox=st.booleans())
@example(text="prio>2", seedbox=False)
@example(text="size<%d" % SIZES[3], seedbox=True)
@example(text="prio=!1 is_open=no", seedbox=False)
@example(text="[ NOT [ prio>1 OR is_open=yes ] ]", seedbox=True)
@example(text="fno=2,3 OR is_ignored=yes", seedbox=False)
@example(text="[ is_open=no prio>1 OR is_open=no size<%d ]" % SIZES[5], seedbox=True)
@example(text="[ prio>1 is_active=no OR is_active=yes ]", seedbox=False)
@example(text="[ is_open=no is_active=no prio>2 ] OR is_active=yes", seedbox=True)
@example(text="[ is_open=no prio>2 OR is_open=no ] OR is_ignored=yes", seedbox=False)
def test_rtorrent_keeps_exactly_the_items_an_integer_condition_matches(varied, text, seedbox):
    condition = pyrotorque.parse_condition(text)
    # No filter only for one that is always true (is_open=no OR is_open=yes): with
    # none, rTorrent keeps every item, and every item must then match.
    passing = SEEDBOX if seedbox else None
    matched, kept = _hashes(_daemon_proxy(varied), condition, passing)
    assert kept == matched, "%s -> %s" % (condition, pyrotorque.rtorrent_filter(condition, passing))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=CONDITIONS, name=st.sampled_from(["item0*", "item1?", "/[02468]$/", "nothing"]),
       joiner=st.sampled_from([" ", " OR ", " NOT "]))
def test_rtorrent_never_drops_an_item_a_mixed_condition_matches(varied, text, name, joiner):
    condition = pyrotorque.parse_condition("%s%sname=%s" % (text, joiner, name))
    matched, kept = _hashes(_daemon_proxy(varied), condition)
    assert matched <= kept


def test_a_filter_the_view_counts_say_keeps_most_is_not_sent(varied, caplog):
    proxy = _daemon_proxy(varied)
    source = pyrotorque.ItemSource(proxy)
    incomplete = pyrotorque.parse_condition("is_complete=no")   # every item of ITEMS
    with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
        assert len(source.fetch("main", {"prio"}, incomplete)) == len(ITEMS)
    assert "say its filter would keep at least 100% of view 'main'" in caplog.text
    assert "d.multicall.filtered" not in proxy.stats.by_method
    # A condition rTorrent cannot check at all is no filter, and nothing to say about.
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
        source.fetch("main", {"prio"}, pyrotorque.parse_condition("alias=foo"))
    assert "view counts" not in caplog.text
    # Where most items were complete (a seedbox), the same condition is worth a filter.
    source.shares = (time.monotonic(), SEEDBOX)
    assert len(source.fetch("main", {"prio"}, incomplete)) == len(ITEMS)
    assert proxy.stats.by_method["d.multicall.filtered"] == 1


def test_the_flag_shares_come_from_rtorrents_own_views(varied):
    shares = pyrotorque.ItemSource(_daemon_proxy(varied)).flag_shares()
    assert set(shares) == set(pyrotorque._FLAG_VIEWS)
    # ITEMS are loaded stopped and never hashed: none is complete or started.
    assert shares["not=$d.complete="] == shares["not=$d.is_active="] == 1.0
    assert shares["d.complete="] == shares["d.is_active="] == 0.0


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


# done: a quotient of two counts, compared by rTorrent's math.mul ------------------

#: Pieces of data present (of 4) for the items of the `partial` fixture.
PRESENT = [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def partial():
    """A module-wide rTorrent whose items have 0 to 4 of their 4 pieces on disk (done
    0, 25, 50, 75, 100), checked by rTorrent."""
    tmp = tempfile.mkdtemp(prefix="pd", dir="/tmp")
    piece = 16 * 1024
    try:
        with rtlab.RTorrent(parent=tmp) as rt:
            hashes = []
            for present in PRESENT:
                path = rtlab.make_payload(tmp, "part%d" % present, 4 * piece)
                metafile = rtlab.make_torrent(path, "http://127.0.0.1:9/announce", piece)
                with open(path, "r+b") as handle:   # spoil the pieces that are missing
                    for index in range(present, 4):
                        handle.seek(index * piece)
                        handle.write(b"\0" * piece)
                hashes.append(rt.load_raw(metafile, "d.directory.set=" + tmp, start=True))
            rt.wait_for(lambda: [rt.proxy.d.completed_chunks(h) for h in hashes] == PRESENT
                        and not any(rt.proxy.d.hashing(h) for h in hashes), 30)
            yield rt
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


DONE_TERMS = st.tuples(st.sampled_from(["done", "ratio"]), st.sampled_from(["", "!"]),
                       st.sampled_from(["+", "-"]),
                       st.sampled_from(["0", "1", "24.9", "25", "25.5", "50", "74", "99.9", "100"])
                       ).map(lambda t: "%s=%s%s%s" % t)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=DONE_TERMS, second=DONE_TERMS, joiner=st.sampled_from([" ", " OR "]))
@example(first="done=+50", second="done=-100", joiner=" ")
@example(first="done=!-25", second="done=!+75", joiner=" ")
def test_rtorrent_never_drops_an_item_a_done_condition_matches(partial, first, second, joiner):
    condition = pyrotorque.parse_condition(first + joiner + second)
    source = pyrotorque.ItemSource(_daemon_proxy(partial))
    every = source.fetch("main", {"done", "ratio"})
    assert sorted(item["done"] for item in every) == [25.0 * n for n in PRESENT]
    matched = {item.hash for item in every if condition.match(item)}
    kept = _kept(source, condition)
    assert matched <= kept, "%s -> %s" % (condition, pyrotorque.rtorrent_filter(condition))
    if "!" not in first + second and "." not in first + second:    # whole, not negated
        assert kept == matched, "%s -> %s" % (condition, pyrotorque.rtorrent_filter(condition))


def test_the_queue_gets_no_row_for_items_that_are_not_done_enough(partial):
    proxy = _daemon_proxy(partial)
    source = pyrotorque.ItemSource(proxy)
    items = source.fetch("main", {"done"}, pyrotorque.parse_condition("done>60"))
    assert sorted(item["done"] for item in items) == [75.0, 100.0]
    assert proxy.stats.by_method["d.multicall.filtered"] == 1


# Text: rTorrent's `match` against Python's patterns -------------------------------

#: Names, messages, custom and tag values with every character the filter syntax or
#: the regex could trip on, and the letters Python's case folding finds outside ASCII.
TEXTS = ["Foo.Bar", "foo,bar", "ZZZ_x", "a{b}c", 'q"uote', "back\\slash", "dollar$x",
         "semi;colon", "new\nline", "ends\n", "Ünï", "plain", "Kelvin\u212a", "\u017fs",
         "\u0130x", "\u0131x", "tab\there", "caret^", "x", "kis", "KIS", "(par)|t",
         "[b]r*?", "zzz", "a zzz b", "gho\u017ft", "ghost", "cr\rzzz", "crlf\r\nx"]
MESSAGES = ["", "", "ghost", "Tracker: [Failure reason \"x\"]", "ends\n", "GHOST town",
            "ends\r"]
TAGS = ["", "foo bar", "Foo", "foobar", "x\u00a0foo", "kis \u212ais", "a,b"]
TEXT_FIELDS = {"name": TEXTS, "message": MESSAGES, "custom_1": TEXTS[::-1],
               "custom_my.key": TEXTS[5:] + TEXTS[:5], "tagged": TAGS}


@pytest.fixture(scope="module")
def texts():
    """A module-wide rTorrent whose items carry TEXTS as names (and the other fields)."""
    tmp = tempfile.mkdtemp(prefix="pt", dir="/tmp")
    try:
        with rtlab.RTorrent(parent=tmp) as rt:
            for index, name in enumerate(TEXTS):
                path = rtlab.make_payload(tmp, "p%02d" % index, 1000 + index)
                info_hash = rt.load_raw(rtlab.make_torrent(path, "http://127.0.0.1:9/announce",
                                                           name=name))
                rt.proxy.d.message.set(info_hash, MESSAGES[index % len(MESSAGES)])
                rt.proxy.d.custom1.set(info_hash, TEXT_FIELDS["custom_1"][index])
                rt.proxy.d.custom.set(info_hash, "my.key", TEXT_FIELDS["custom_my.key"][index])
                rt.proxy.d.custom.set(info_hash, "tags", TAGS[index % len(TAGS)])
            yield rt
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Pieces of values: text of the items, wildcards, and the characters that matter.
PIECES = ["foo", "bar", "zzz", "x", "kis", "KI", "s", "i", "gho", "t", " ", "*", "?", ",", "{",
          "}", '"', "\\", "$", ";", "\n", "^", ".", "|", "(", "[b]", "\u00fc", "Ünï", "line"]


def _text_term(field, value, negated):
    test, canonical = pyrotorque.field_for(field).type.compile(field, value)
    return pyrotorque.Term(field, canonical, negated, test)


def _text_terms():
    plain = st.lists(st.sampled_from(PIECES), min_size=0, max_size=4).map("".join)
    anchored = st.tuples(st.sampled_from(["", "^"]), plain.filter(lambda v: "*" not in v),
                         st.sampled_from(["", "$"])).map("".join)
    regex = st.lists(anchored, min_size=1, max_size=3).map(lambda alts: "/%s/" % "|".join(alts))
    value = st.one_of(plain, regex)
    return st.tuples(st.sampled_from(sorted(TEXT_FIELDS)), value, st.booleans())


def _condition(shape, terms):
    kind, *rest = shape
    if kind == "term":
        return terms[rest[0] % len(terms)]
    parts = [_condition(part, terms) for part in rest]
    if kind == "not":
        return pyrotorque.Not(parts[0])
    return (pyrotorque.AllOf if kind == "and" else pyrotorque.AnyOf)(parts)


SHAPES = st.recursive(st.integers(0, 5).map(lambda n: ("term", n)), lambda inner: st.one_of(
    st.tuples(st.just("and"), inner, inner), st.tuples(st.just("or"), inner, inner),
    st.tuples(st.just("not"), inner)), max_leaves=4)


def _exact(condition):
    """True if rTorrent's filter for `condition` must keep exactly what it matches
    (of the items whose texts hold no line break)."""
    if isinstance(condition, pyrotorque.Term):
        return (pyrotorque._text_filter(condition, False) is not None
                and condition.field != "tagged" and "?" not in condition.value)
    inner = getattr(condition, "parts", None) or [condition.inner]
    return all(_exact(part) for part in inner)


def _text_hashes(proxy, condition, breaks=None, indexed=False):
    """(hashes Python matches, hashes rTorrent keeps); `breaks` gets the hashes of
    the items with a line break in a text; `indexed`: with the name index."""
    source = pyrotorque.ItemSource(proxy)
    fields = set(TEXT_FIELDS)
    every = source.fetch("main", fields)
    matched = {item.hash for item in every if condition.match(item)}
    if breaks is not None:
        breaks.update(item.hash for item in every if any(
            "\n" in str(item[field]) or "\r" in str(item[field]) for field in fields))
    if indexed:
        assert source.names.filters(condition) == {}   # new terms: read at the next fetch
    return matched, _kept(source, condition,
                          known=source.names.filters(condition) if indexed else None)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(terms=st.lists(_text_terms(), min_size=1, max_size=6), shape=SHAPES)
@example(terms=[("name", "*zzz*", False)], shape=("term", 0))
@example(terms=[("message", "/^$|ghost/", False)], shape=("term", 0))
@example(terms=[("message", "/^$|ghost/", True)], shape=("term", 0))
@example(terms=[("name", "kis", False), ("name", "*s", True)], shape=("or", ("term", 0),
                                                                      ("term", 1)))
@example(terms=[("name", "ends\n", False)], shape=("term", 0))
@example(terms=[("name", "/s$/", False)], shape=("term", 0))
@example(terms=[("tagged", "foo", False)], shape=("term", 0))
@example(terms=[("name", "*ix", False), ("custom_1", "kelvin*", False)],
         shape=("or", ("term", 0), ("term", 1)))
@example(terms=[("name", "kelvink", True)], shape=("term", 0))
@example(terms=[("name", "zzz", True)], shape=("not", ("term", 0)))     # the index: not not
def test_rtorrent_keeps_the_items_a_text_condition_matches(texts, terms, shape):
    try:
        made = [_text_term(field, value, negated) for field, value, negated in terms]
    except pyrotorque.BadValue:
        return                              # e.g. a regex Python cannot compile
    condition = _condition(shape, made)
    breaks = set()
    matched, kept = _text_hashes(_daemon_proxy(texts), condition, breaks)
    assert matched <= kept, "%s -> %s" % (condition, pyrotorque.rtorrent_filter(condition))
    # The name index stands in for name terms that match one known item or none.
    matched, indexed = _text_hashes(_daemon_proxy(texts), condition, indexed=True)
    assert matched <= indexed, "%s (indexed)" % condition
    if _exact(condition):
        assert kept - breaks == matched - breaks, "%s -> %s" % (
            condition, pyrotorque.rtorrent_filter(condition))


# A CR reaches the daemon as LF (XML's line-end rule, in any XML-RPC client), so a name
# holding one is not found by its own literal; rTorrent's filter still keeps it (above).
@pytest.mark.parametrize("value", [v for v in TEXTS if v.isascii() and not set(v) & set("*?[\r")])
def test_a_name_with_any_character_is_found_by_its_own_literal_and_nothing_runs(texts, value):
    condition = _text_term("name", value, False)
    matched, kept = _text_hashes(_daemon_proxy(texts), condition)
    assert kept == matched and len(kept) >= 1
    assert texts.proxy.view.size("", "main") == len(TEXTS)     # nothing was erased or added


def test_the_name_index_runs_the_regex_once_and_then_passes_new_items_only(tmp_path):
    zzz = pyrotorque.parse_condition("[ prio>3 OR name=*zzz* ]")
    with rtlab.RTorrent(parent=str(tmp_path)) as rt:
        for name in ("alpha", "one zzz"):
            rt.load_raw(rtlab.make_torrent(rtlab.make_payload(str(tmp_path), name, 1000),
                                           "http://127.0.0.1:9/announce"))
        source = pyrotorque.ItemSource(_daemon_proxy(rt))
        time.sleep(1.1)         # loaded a second before the index is read
        assert [item["name"] for item in source.fetch("main", {"name"}, zzz)] == ["one zzz"]
        known = source.names.filters(zzz)     # the fetch above met the term: read now
        filter_text = pyrotorque.rtorrent_filter(zzz, None, known)
        assert "match=" not in filter_text and "d.load_date" in filter_text
        # Loaded after the read: rTorrent passes it by its load date, Python matches it.
        new = rt.load_raw(rtlab.make_torrent(rtlab.make_payload(str(tmp_path), "new zzz", 900),
                                             "http://127.0.0.1:9/announce"))
        found = source.fetch("main", {"name"}, zzz)
        assert sorted(item["name"] for item in found if zzz.match(item)) == ["new zzz", "one zzz"]
        assert new in {item.hash for item in found}
        # A minute on, the index reads the new items (the regex for them alone): now
        # two are known to match, more than it stands in for, so the regex comes back.
        source.names.read_at -= pyrotorque.NAMES_SECONDS
        assert ("name", "*zzz*") not in source.names.filters(zzz)
        assert "match=" in pyrotorque.rtorrent_filter(zzz, None, source.names.filters(zzz))


class _ClockProxy:
    """Answers the name index's multicalls: rTorrent's clock and the rows of each filter."""

    def __init__(self, rows):
        self.info, self.clock, self.rows, self.calls = object(), 1000, rows, []

    def multicall(self, calls, **_):
        self.calls.append(calls)
        return [self.clock] + [self.rows for _ in calls[1:]]


NAME_READS = [
    # (what happens before the second read, whether it is whole)
    ("a minute passes", False),
    ("rTorrent's clock goes back", True),
    ("rTorrent's clock goes back, asked by a proxy that keeps no RtorrentInfo", True),
    ("another rTorrent process answers", True),
    ("an hour passes", True),
]


@pytest.mark.parametrize("event, whole", NAME_READS)
def test_the_name_index_reads_again_what_it_can_no_longer_vouch_for(event, whole):
    proxy = _ClockProxy([["A" * 40, "zzz", 0]])
    if "no RtorrentInfo" in event:
        del proxy.info
    index = pyrotorque.NameIndex(proxy)
    condition = pyrotorque.parse_condition("name=*zzz*")
    assert index.filters(condition) == {} and not proxy.calls     # read at the next fetch
    assert index.filters(condition) == {("name", "*zzz*"): (
        "or", ["greater=d.load_date=,value=999", "equal={d.hash=,cat=%s}" % ("A" * 40)])}
    assert index.filters(condition) and len(proxy.calls) == 1    # not again within a minute
    index.read_at -= pyrotorque.NAMES_SECONDS
    proxy.clock = 1060
    if event.startswith("rTorrent's clock goes back"):
        proxy.clock = 900
    elif event == "another rTorrent process answers":
        proxy.info = object()
    elif event == "an hour passes":
        index.read_all_at -= pyrotorque.NAMES_ALL_SECONDS
    index.filters(condition)
    last = proxy.calls[-1][1][3]
    assert ("d.load_date" not in last) == whole, last
    assert index.since == proxy.clock


def test_the_name_index_keeps_the_regex_for_many_matches_and_odd_hashes():
    condition = pyrotorque.parse_condition("name=*zzz*")
    found = {}
    for case, rows in [("many", [["A" * 40, "zzz", 0], ["B" * 40, "a zzz", 0]]),
                       ("odd", [["not-a-hash", "zzz", 0]]),
                       ("meta", [["C" * 40, "C" * 40, 1]])]:     # a magnet: it matches
        index = pyrotorque.NameIndex(_ClockProxy(rows))
        index.filters(condition)
        found[case] = index.filters(condition)
    assert found["many"] == {} and found["odd"] == {}
    assert "cat=" + "C" * 40 in str(found["meta"])


def test_a_filter_that_keeps_most_of_the_view_is_left_out_for_a_while(varied, caplog):
    proxy = pyrotorque.RtorrentProxy(varied.url, timeout=5)
    source = pyrotorque.ItemSource(proxy)
    keeps_all = pyrotorque.parse_condition("prio<9")
    keeps_few = pyrotorque.parse_condition("prio>2")
    with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
        for _ in range(1 + pyrotorque.UNFILTERED_FETCHES):
            assert len(source.fetch("main", {"prio"}, keeps_all)) == len(ITEMS)
            assert source.view_size == len(ITEMS)
        few = source.fetch("main", {"prio"}, keeps_few)      # another filter: used
    assert "rTorrent's filter kept %d of %d item(s)" % (len(ITEMS), len(ITEMS)) in caplog.text
    assert proxy.stats.by_method["d.multicall2"] == pyrotorque.UNFILTERED_FETCHES
    assert proxy.stats.by_method["d.multicall.filtered"] == 2
    assert {item["prio"] for item in few} == {3}
    assert not source.unfiltered        # a pause that is over leaves nothing behind
    source.fetch("main", {"prio"}, keeps_all)               # its pause is over: tried again
    assert proxy.stats.by_method["d.multicall.filtered"] == 3


def test_the_queue_reads_name_and_order_only_for_the_few_startable_items(varied, caplog):
    spec = pyrotorque.JobSpec("queue")
    spec.params.update(startable="prio>2", dry_run="True", start_at_once="9")
    proxy = pyrotorque.RtorrentProxy(varied.url, timeout=5)
    config = pyrotorque.job_config(spec, pyrotorque.QueueManager, None, proxy=proxy,
                                   item_source=pyrotorque.ItemSource(proxy))
    job = pyrotorque.QueueManager(config)
    assert not {"name", "loaded"} & job.fields
    proxy.connect()             # the handshake's multicall is not per item,
    job.items.flag_shares()     # nor is the view counts' (read once a minute)
    per_item, multicall = [], proxy.multicall
    proxy.multicall = lambda calls, **how: per_item.extend(calls) or multicall(calls, **how)
    with caplog.at_level(logging.INFO, logger="pyrotorque"):
        job.run()
    expected = [name for name, _, _, prio, is_open, _ in ITEMS if prio == 3 and not is_open]
    started = [line.split("'")[1] for line in caplog.text.splitlines() if "WOULD start" in line]
    assert sorted(started) == sorted(expected) and len(expected) > 1
    assert proxy.stats.by_method["d.multicall.filtered"] == 1
    assert sorted(call[0] for call in per_item if call[0] != "t.multicall") == sorted(
        ["d.name", "d.custom", "d.load_date"] * len(expected))     # name, loaded: only these
