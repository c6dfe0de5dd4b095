"""Items and fields against a real rTorrent 0.9.8 (``contrib/rtlab.py``)."""
import hashlib
import logging
import os
import sys
import time

import pytest

import pyrotorque
import rtlab  # conftest.py puts contrib/ on sys.path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMESTAMPS_RC = os.path.join(REPO, "contrib", "timestamps.rc")

#: Trackers are never reached: the items stay stopped, or announce to a closed port.
DEAD_TRACKER = "http://127.0.0.1:9/announce"
ANNOUNCE = {"EX": "http://tracker.example.org/announce", "LOCAL": DEAD_TRACKER}

#: Methods a read may use; anything else (a `.set`, a load, a start) is a write.
READ_ONLY = {"d.multicall2", "d.multicall.filtered", "system.multicall", "system.listMethods",
             "f.multicall", "t.multicall", "session.path", "f.path",
             # the proxy's handshake
             "system.client_version", "system.library_version", "session.name", "system.pid"}


class Spy(pyrotorque.RtorrentProxy):
    """The daemon's proxy, recording every method name, also those inside multicalls."""

    def __init__(self, url):
        super().__init__(url, timeout=10)
        self.calls = []

    def call(self, method, *params):
        self.calls.append((method,) + params)
        return super().call(method, *params)

    def multicall(self, calls, **how):
        self.calls.append(("system.multicall", calls))
        self.calls.extend(calls)
        return super().multicall(calls, **how)

    def names(self):
        return {call[0] for call in self.calls}


def _daemon_proxy(rtorrent):
    """The daemon's own client for the lab's rTorrent (the lab's ``proxy`` is rtlab's)."""
    return pyrotorque.RtorrentProxy(rtorrent.url, timeout=10)


@pytest.fixture
def library(rtorrent):
    """An rTorrent holding a few real items of different kinds; returns their hashes."""
    root = rtorrent.download_dir
    hashes = {}
    album = rtlab.make_payload(root, "Some Album", 0,
                               files={"01.flac": 70000, "02.flac": 30000, "cover.jpg": 30000,
                                      "scans/back.JPEG": 20000})
    hashes["album"] = rtorrent.load_raw(
        rtlab.make_torrent(album, "http://tracker.example.org/announce", 16 * 1024),
        "d.priority.set=3", "d.custom1.set=queued")
    rtorrent.proxy.d.custom.set(hashes["album"], "tags", "Music  Lossless")
    episode = rtlab.make_payload(root, "Pioneer.One.S01E06.720p.x264-VODO.mkv", 50000)
    hashes["episode"] = rtorrent.load_raw(
        rtlab.make_torrent(episode, DEAD_TRACKER, 16 * 1024, private=True), start=True)
    hashes["missing"] = rtorrent.load_raw(
        _metafile("Nothing.Here", [("a.iso", 20000), ("b.txt", 10)], "udp://tr.other.net:80"),
        "d.priority.set=1", "d.custom.set=tm_loaded,1000000000")
    rtorrent.wait_for(lambda: rtorrent.proxy.d.complete(hashes["episode"]) == 1, timeout=10)
    # The dead tracker's message: 0.9.8 has it when the check completes, 0.16 about 1 s later.
    rtorrent.wait_for(lambda: rtorrent.proxy.d.message(hashes["episode"]), timeout=10)
    return hashes


def _metafile(name, files, announce):
    """A metafile for data that does not exist; `name` and paths may be any bytes."""
    encode = (lambda text: text if isinstance(text, bytes) else text.encode())
    info = {b"name": encode(name), b"piece length": 16384,
            b"pieces": hashlib.sha1(encode(name)).digest() * (1 + sum(s for _, s in files)
                                                             // 16384),
            b"files": [{b"length": size, b"path": encode(path).split(b"/")}
                       for path, size in files]}
    return rtlab.bencode({b"announce": encode(announce), b"info": info})


def _first_enabled(trackers):
    """The first enabled URL; the first at all when none is (UDP is off in the lab)."""
    return ([url for url, enabled in trackers if enabled] or [trackers[0][0]])[0]


def _all_field_names():
    return [f.name for f in pyrotorque.FIELD_TABLE] + [
        "custom_1", "custom_tags", "kind", "kind_25", "kind_50", "d_down_rate",
        "d_size_chunks"]


def _fetch(rtorrent, fields, **kwargs):
    spy = Spy(rtorrent.url)
    source = pyrotorque.ItemSource(spy, aliases=ANNOUNCE, **kwargs)
    items = {item.hash: item for item in source.fetch("main", fields)}
    return items, spy, source


def test_every_field_equals_what_rtorrent_reports(rtorrent, library):
    items, _, _ = _fetch(rtorrent, _all_field_names())
    rt = rtorrent.proxy
    for key, info_hash in library.items():
        item = items[info_hash]
        files = rt.f.multicall(info_hash, "", "f.path=", "f.size_bytes=")
        completed = rt.d.custom(info_hash, "tm_completed")
        expected = {
            "hash": info_hash, "name": rt.d.name(info_hash), "size": rt.d.size_bytes(info_hash),
            "prio": rt.d.priority(info_hash), "message": rt.d.message(info_hash),
            "is_private": bool(rt.d.is_private(info_hash)),
            "is_open": bool(rt.d.is_open(info_hash)),
            "is_active": bool(rt.d.is_active(info_hash)),
            "is_complete": bool(rt.d.complete(info_hash)),
            "is_multi_file": bool(rt.d.is_multi_file(info_hash)),
            "is_ignored": bool(rt.d.ignore_commands(info_hash)),
            "directory": rt.d.directory(info_hash),
            "metafile": rt.d.tied_to_file(info_hash),
            "sessionfile": rt.session.path() + info_hash + ".torrent",
            "fno": rt.d.size_files(info_hash),
            "done": 100.0 * rt.d.completed_chunks(info_hash) / rt.d.size_chunks(info_hash),
            "ratio": rt.d.ratio(info_hash) / 1000.0,
            "uploaded": rt.d.up.total(info_hash),
            "down": rt.d.down.rate(info_hash), "up": rt.d.up.rate(info_hash),
            "throttle": rt.d.throttle_name(info_hash) or "NONE",
            "loaded": int(rt.d.custom(info_hash, "tm_loaded") or rt.d.load_date(info_hash)),
            "started": rt.d.timestamp.started(info_hash),
            "completed": int(completed or rt.d.timestamp.finished(info_hash)),
            "views": set(rt.d.views(info_hash)),
            "files": tuple(path for path, _ in files),
            "tracker": _first_enabled(rt.t.multicall(info_hash, "", "t.url=", "t.is_enabled=")),
            "custom_1": rt.d.custom1(info_hash),
            "custom_tags": rt.d.custom(info_hash, "tags"),
            "tagged": set(rt.d.custom(info_hash, "tags").lower().split()),
            "d_down_rate": rt.d.down.rate(info_hash),
            "d_size_chunks": rt.d.size_chunks(info_hash),
            "last_xfer": 0, "active": 0,  # no such methods in a stock rTorrent
            "stopped": 0,  # no activations without timestamps.rc
        }
        base_path = rt.d.base_path(info_hash)
        expected["path"] = base_path or rt.d.directory(info_hash)
        expected["realpath"] = os.path.realpath(expected["path"])
        expected["is_ghost"] = not os.path.exists(expected["path"])
        expected["xfer"] = expected["up"] + expected["down"]
        # without timestamps.rc there are no activations: leechtime falls back to
        # completed - started, and seedtime is unknown
        started, finished = expected["started"], expected["completed"]
        expected["leechtime"] = finished - started if started and finished else None
        expected["seedtime"] = None
        for name, value in expected.items():
            assert item[name] == value, (key, name)
        assert set(item) >= set(expected)


@pytest.mark.parametrize("key, kind, kind_25, kind_50, traits, alias", [
    ("album", {"flac", "jpg"}, {"flac", "jpg"}, {"flac"}, ["audio", "flac"], "EX"),
    ("episode", {"mkv"}, {"mkv"}, {"mkv"}, ["tv", "mkv"], "LOCAL"),
    ("missing", {"iso", "txt"}, {"iso"}, {"iso"}, ["misc", "iso"], "other.net"),
])
def test_kinds_traits_and_aliases_come_from_files_and_trackers(rtorrent, library, key, kind,
                                                                kind_25, kind_50, traits,
                                                                alias):
    items, _, _ = _fetch(rtorrent, {"kind", "kind_25", "kind_50", "traits", "alias"})
    item = items[library[key]]
    assert (item["kind"], item["kind_25"], item["kind_50"]) == (kind, kind_25, kind_50)
    assert (item["traits"], item["alias"]) == (traits, alias)


def test_timestamps_prefer_pyrocores_customs(rtorrent, library):
    items, _, _ = _fetch(rtorrent, {"loaded"})
    assert items[library["missing"]]["loaded"] == 1000000000
    assert items[library["album"]]["loaded"] == rtorrent.proxy.d.load_date(library["album"])
    episode = items[library["episode"]]
    assert episode["completed"] == rtorrent.proxy.d.timestamp.finished(library["episode"]) > 0


def test_one_multicall_asks_only_for_what_the_condition_needs(rtorrent, library):
    condition = pyrotorque.parse_condition("is_ignored=0 message= prio>0 [ prio>2 OR [ NOT [ "
                                           "traits=audio kind_25=jpg,png,tif,bmp ] ] ]")
    items, spy, _ = _fetch(rtorrent, condition.fields)
    matched = {h for h, item in items.items() if condition.match(item)}
    # the album has high priority; the episode has a tracker message; the other is no audio
    assert matched == {library["album"], library["missing"]}
    multicalls = [c for c in spy.calls if c[0] == "d.multicall2"]
    assert multicalls == [("d.multicall2", "", "main", "d.hash=", "d.ignore_commands=",
                           "d.message=", "d.name=", "d.priority=")]
    assert spy.names() <= READ_ONLY


def test_files_and_trackers_are_read_once_per_item(rtorrent, library):
    spy = Spy(rtorrent.url)
    spy.connect()       # the handshake is a multicall too
    spy.calls.clear()
    source = pyrotorque.ItemSource(spy, aliases=ANNOUNCE)
    for _ in range(3):
        items = source.fetch("main", {"traits", "alias", "files"})
        [(item["traits"], item["alias"]) for item in items]
    assert [c[0] for c in spy.calls].count("f.multicall") == 3
    assert [c[0] for c in spy.calls].count("t.multicall") == 3
    assert [c[0] for c in spy.calls].count("system.multicall") == 2


def test_many_new_items_get_files_and_trackers_from_one_nested_multicall(rtorrent):
    hashes = [rtorrent.load_raw(_metafile("Item%02d" % n, [("a.flac", 100 + n), ("b.jpg", 50)],
                                          "http://t%d.example.org/announce" % n))
              for n in range(pyrotorque.FEW_ITEMS + 5)]
    items, spy, _ = _fetch(rtorrent, {"kind_25", "alias"})
    for info_hash in hashes:
        assert items[info_hash]["kind_25"] == {"flac", "jpg"}
        assert items[info_hash]["alias"] == "example.org"
    names = [c[0] for c in spy.calls]
    assert names.count("d.multicall2") == 3 and "system.multicall" not in names


def test_match_report_shows_why_items_match(rtorrent, library):
    source = pyrotorque.ItemSource(_daemon_proxy(rtorrent), aliases=ANNOUNCE)
    lines = pyrotorque.match_report(source, "prio>0 traits=audio,misc", sorter=(
        pyrotorque.parse_sort_fields("-prio, name")))
    assert lines == [
        library["album"] + "  Some Album", "    prio=3", "    traits=audio/flac",
        library["missing"] + "  Nothing.Here", "    prio=1", "    traits=misc/iso",
        "2 of 3 item(s) in view 'main' match [ prio=+0 traits=audio,misc ]"]


def test_reading_every_field_writes_nothing(rtorrent, library):
    _, spy, _ = _fetch(rtorrent, _all_field_names())
    assert spy.names() <= READ_ONLY
    items, spy, _ = _fetch(rtorrent, {"name"})
    for item in items.values():  # on-demand fields read with plain getters
        [item[name] for name in _all_field_names()]
    assert all(name in READ_ONLY or name.startswith(("d.", "t.", "f.")) and ".set" not in name
               for name in spy.names())


#: Names and paths rTorrent keeps as bytes.  Probed: 0.9.8 sends invalid UTF-8 as "?",
#: 0.16 (tinyxml2) as it is, 0.16 (xmlrpc-c) as %XX; all send control characters raw.
ODD_NAMES = [b"ctrl\x01\x1bname", b"bad\xff\xfe utf8", "emoji \U0001F600".encode(),
             b"quote\"'<&>", b"tab\there", b"amp&#1;ref", b"del\x7f\x1f", b"lone\xc3",
             b"surrogate\xed\xa0\x80", b"nonchar\xef\xbf\xbe"]


@pytest.mark.parametrize("few_items", [pyrotorque.FEW_ITEMS, 0],
                         ids=["files-by-multicall", "files-by-nested-multicall"])
def test_odd_bytes_in_names_and_paths_never_make_an_answer_unreadable(
        rtorrent, library, few_items, monkeypatch, caplog):
    """So ItemSource has no fallback for them: the proxy reads every answer."""
    caplog.set_level(logging.DEBUG, logger="pyrotorque.rtorrent")
    monkeypatch.setattr(pyrotorque, "FEW_ITEMS", few_items)
    odd = {}
    for index, name in enumerate(ODD_NAMES):
        odd[name] = rtorrent.load_raw(_metafile(name, [(b"ok.flac", 600), (
            b"odd\x02" + bytes([0x80 + index]) + b"\x01.jpg", 400)], DEAD_TRACKER))
    proxy = _daemon_proxy(rtorrent)
    source = pyrotorque.ItemSource(proxy, aliases=ANNOUNCE)
    items = {item.hash: item for item in source.fetch("main", {"name", "prio", "kind_25"})}
    assert set(items) == set(library.values()) | set(odd.values())
    for name, info_hash in odd.items():
        assert items[info_hash]["kind_25"] == {"flac", "jpg"}
        assert items[info_hash]["prio"] == 2 and isinstance(items[info_hash]["name"], str)
    assert items[odd[b"quote\"'<&>"]]["name"] == "quote\"'<&>"
    assert items[odd[b"amp&#1;ref"]]["name"] == "amp&#1;ref"
    assert items[odd[b"ctrl\x01\x1bname"]]["name"] == "ctrl\ufffd\ufffdname"
    assert items[odd[b"tab\there"]]["name"] == "tab\there"
    # Over JSON (0.16), rTorrent cannot write invalid UTF-8: such calls go again over XML
    # (and with xmlrpc-c, system.listMethods is not there over JSON: asked over XML).
    assert proxy.stats.errors == sum(m.count("cannot write its answer as JSON")
                                     for m in caplog.messages) + (
        proxy.protocol == "json" and rtorrent.backend == "xmlrpc-c")


def test_a_missing_view_or_a_dead_rtorrent_is_an_error_not_an_empty_list(rtorrent, library):
    source = pyrotorque.ItemSource(_daemon_proxy(rtorrent))
    with pytest.raises(pyrotorque.RtorrentFault):
        source.fetch("no-such-view", {"name"})


@pytest.fixture
def timestamped():
    """An rTorrent that includes contrib/timestamps.rc."""
    with rtlab.RTorrent(extra_rc="import = %s" % TIMESTAMPS_RC) as rt:
        yield rt


def test_timestamps_rc_loads_cleanly_and_stamps_items(timestamped):
    rt = timestamped
    before = int(time.time())
    info_hash = rt.load_raw(_metafile("Stamped", [("x.bin", 100)], DEAD_TRACKER))
    assert int(rt.proxy.d.custom(info_hash, "tm_loaded")) >= before
    rt.proxy.d.start(info_hash)
    rt.wait_for(lambda: rt.proxy.d.custom(info_hash, "tm_started"), timeout=5)
    rt.proxy.d.stop(info_hash)
    rt.wait_for(lambda: "P" in rt.proxy.d.custom(info_hash, "activations"), timeout=5)
    item = pyrotorque.ItemSource(_daemon_proxy(rt)).fetch("main", {"loaded", "started", "stopped"})[0]
    assert item["loaded"] >= before and item["started"] >= item["loaded"]
    assert item["stopped"] >= item["started"]
    assert pyrotorque.parse_condition("loaded<1i started<1i stopped<1i").match(item)
    assert " E " not in rt.log_text() and "rror" not in rt.log_text()


def test_timestamps_rc_stamps_a_real_download(swarm):
    leecher = swarm.start_leecher(extra_rc="import = %s" % TIMESTAMPS_RC)
    try:
        rt = leecher.proxy
        info_hash = leecher.load_raw(swarm.torrents["single"].raw, start=True)
        leecher.wait_for(lambda: rt.d.down.rate(info_hash) > 0, timeout=10)
        rt.d.multicall2("", "started", "pyro._stamp_activity=")  # what the schedule runs
        leecher.wait_for(lambda: rt.d.complete(info_hash) == 1, timeout=30)
        leecher.wait_for(lambda: rt.d.custom(info_hash, "tm_completed"), timeout=5)
        fields = {"loaded", "started", "completed", "active", "last_xfer", "leechtime",
                  "is_complete"}
        item = pyrotorque.ItemSource(_daemon_proxy(leecher)).fetch("main", fields)[0]
        assert item["loaded"] <= item["started"] <= item["completed"]
        assert item["completed"] == int(rt.d.custom(info_hash, "tm_completed"))
        assert item["started"] <= item["active"] == item["last_xfer"] <= item["completed"]
        assert 0 <= item["leechtime"] <= item["completed"] - item["started"] + 1
        assert pyrotorque.parse_condition("completed<1i last_xfer<1i is_complete=yes").match(item)
        assert " E " not in leecher.log_text()
    finally:
        leecher.cleanup()


def test_the_items_of_a_fetch_are_freed_as_soon_as_the_caller_drops_them(rtorrent, library):
    source = pyrotorque.ItemSource(_daemon_proxy(rtorrent))
    items = source.fetch("main", {"name", "alias"})
    assert items and all(item["alias"] for item in items)   # per-item data, read for all
    row = items[0].row
    held = sys.getrefcount(row)
    del items
    assert sys.getrefcount(row) == held - 1     # its item is gone: no cycle, no GC run
