"""The lab itself works: real rtorrent, real tracker, real downloads on loopback.

If these fail, every test built on the lab is meaningless, so they come first.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import xmlrpc.client

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtlab


def _metafile(directory, name="item", size=256 * rtlab.KiB, files=None):
    """A payload in ``directory`` and its metafile bytes (the announce URL is never used)."""
    data = rtlab.make_payload(str(directory), name, size, files)
    return rtlab.make_torrent(data, "http://127.0.0.1:9/announce", 64 * rtlab.KiB)


# ─── one rtorrent ────────────────────────────────────────────────────────────────

def test_an_rtorrent_starts_and_answers_the_client_version_its_binary_names(rtorrent):
    assert rtorrent.proxy.system.client_version() == rtorrent.version
    assert rtorrent.proxy.system.library_version() == rtorrent.library_version
    assert rtorrent.url == "scgi://" + rtorrent.socket_path
    assert len(rtorrent.socket_path) < 60
    assert rtorrent.proxy.system.pid() == rtorrent.pid


def test_an_rtorrent_with_tcp_scgi_answers_on_a_loopback_port_also_after_restart(rtorrent_tcp):
    assert rtorrent_tcp.url.startswith("scgi://127.0.0.1:")
    assert rtorrent_tcp.socket_path is None
    assert rtlab.lab_proxy(rtorrent_tcp.url).system.client_version() == rtorrent_tcp.version
    rtorrent_tcp.restart()
    assert rtlab.lab_proxy(rtorrent_tcp.url).system.client_version() == rtorrent_tcp.version


def test_a_socket_path_too_long_for_rtorrent_is_refused_up_front(short_tmp):
    deep = short_tmp / ("d" * 90)
    deep.mkdir()
    with pytest.raises(rtlab.LabError, match="too long"):
        rtlab.RTorrent(parent=str(deep))
    assert list(deep.iterdir()) == [], "no half-made instance dir is left behind"


def test_load_raw_makes_the_hash_visible_in_stopped_state(rtorrent, short_tmp):
    raw = _metafile(short_tmp)
    h = rtorrent.load_raw(raw, "d.priority.set=1", "d.custom1.set=queued")
    assert h == rtlab.infohash(raw)
    [item] = rtorrent.downloads("d.hash=", "d.state=", "d.is_active=", "d.priority=", "d.custom1=")
    assert item == {"d.hash": h, "d.state": 0, "d.is_active": 0, "d.priority": 1,
                    "d.custom1": "queued"}


def test_load_raw_refuses_a_hash_that_is_already_loaded(rtorrent, short_tmp):
    raw = _metafile(short_tmp)
    rtorrent.load_raw(raw)
    with pytest.raises(rtlab.LabError, match="already loaded"):
        rtorrent.load_raw(raw, "d.priority.set=3")


def test_restart_keeps_the_session_and_the_address(rtorrent, short_tmp):
    h = rtorrent.load_raw(_metafile(short_tmp), "d.custom1.set=kept")
    url, old_pid = rtorrent.url, rtorrent.pid
    rtorrent.restart()
    assert rtorrent.pid != old_pid
    assert rtorrent.url == url
    assert rtorrent.proxy.d.custom1(h) == "kept"
    assert rtorrent.log_text().count("Ignoring rtorrent.rc") == 2, "earlier runs' log is kept"


def test_a_killed_rtorrent_starts_again_over_its_stale_lock(rtorrent, short_tmp):
    h = rtorrent.load_raw(_metafile(short_tmp))
    # 0.9.8 writes a new download's session files before load.raw returns, 0.16 a moment later.
    session_file = os.path.join(rtorrent.session_dir, h + ".torrent.rtorrent")
    rtorrent.wait_for(lambda: os.path.exists(session_file), 5, what="the session files of " + h)
    rtorrent.kill()
    assert os.path.exists(os.path.join(rtorrent.session_dir, "rtorrent.lock"))
    rtorrent.start()
    assert rtorrent.has(h)


def test_stop_falls_back_to_sigkill_when_rtorrent_hangs(rtorrent):
    # SIGSTOP stands in for the 0.9.8 hash-check deadlock: no RPC answer, SIGTERM ignored.
    os.kill(rtorrent.pid, signal.SIGSTOP)
    started = time.monotonic()
    assert rtorrent.stop(timeout=0.5) == "SIGKILL"
    assert time.monotonic() - started < 5
    assert not rtorrent.running


def test_a_missing_rtorrent_binary_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(rtlab.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(rtlab.MissingBinary, match="apt-get install -y rtorrent"):
        rtlab.RTorrent(version="system")


def test_a_missing_current_rtorrent_build_says_how_to_build_it(monkeypatch, short_tmp):
    monkeypatch.setattr(rtlab, "LAB_CACHE", str(short_tmp))
    with pytest.raises(rtlab.MissingBinary, match="contrib/build_rtorrent.sh"):
        rtlab.RTorrent(version="0.16")
    with pytest.raises(rtlab.MissingBinary, match="back end 'expat' is not one of"):
        rtlab.find_rtorrent("0.16-expat")


def test_find_rtorrent_picks_the_newest_build_of_a_series_and_the_asked_back_end(monkeypatch,
                                                                                short_tmp):
    for release in ("0.16.9", "0.16.17", "0.15.7"):
        for backend in rtlab.BACKENDS:
            binary = short_tmp / ("rtorrent-" + release) / "bin" / ("rtorrent-" + backend)
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_text("#!/bin/sh\n")
            binary.chmod(0o755)
    monkeypatch.setattr(rtlab, "LAB_CACHE", str(short_tmp))
    assert rtlab.find_rtorrent("0.16") == str(short_tmp / "rtorrent-0.16.17/bin/rtorrent-tinyxml2")
    assert rtlab.find_rtorrent("0.16.9-xmlrpc-c") == str(
        short_tmp / "rtorrent-0.16.9/bin/rtorrent-xmlrpc-c")
    assert rtlab.find_rtorrent("0.15") == str(short_tmp / "rtorrent-0.15.7/bin/rtorrent-tinyxml2")
    monkeypatch.setenv("PYROTORQUE_RTORRENT", "0.16-xmlrpc-c")
    assert rtlab.find_rtorrent() == str(short_tmp / "rtorrent-0.16.17/bin/rtorrent-xmlrpc-c")
    assert rtlab.find_rtorrent("system") == shutil.which("rtorrent")


def test_lab_proxy_gives_up_on_a_silent_server(short_tmp):
    path = str(short_tmp / "silent.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)  # accepts the connection (backlog), never answers
        started = time.monotonic()
        with pytest.raises(OSError):
            rtlab.lab_proxy(path, timeout=0.3).system.client_version()
        assert time.monotonic() - started < 2


#: How each rTorrent series and back end report an info-hash that is not loaded.
UNKNOWN_HASH_FAULTS = {
    ("0.9", "xmlrpc-c"): (-501, "Could not find info-hash."),
    ("0.16", "xmlrpc-c"): (-503, "invalid parameters: info-hash not found"),
    ("0.16", "tinyxml2"): (-500, "invalid parameters: info-hash not found"),
}


def test_lab_proxy_reports_faults_from_rtorrent(rtorrent):
    with pytest.raises(xmlrpc.client.Fault) as fault:
        rtorrent.proxy.d.name("0" * 40)
    series = rtorrent.version.rsplit(".", 1)[0]
    assert ((fault.value.faultCode, fault.value.faultString)
            == UNKNOWN_HASH_FAULTS[series, rtorrent.backend])
    assert rtlab.is_hash_not_found(fault.value)
    assert not rtorrent.has("0" * 40)


# ─── the tracker and the swarm ───────────────────────────────────────────────────

def test_the_tracker_serves_only_whitelisted_hashes():
    rtlab.find_binary("opentracker")
    with rtlab.OpenTracker() as tracker:
        h = "AB" * 20
        assert not tracker.is_authorized(h)
        tracker.add(h)
        assert tracker.is_authorized(h)


def test_a_swarm_download_completes_with_the_seeders_bytes(swarm, leecher):
    torrent = swarm.torrents["multi"]
    h = leecher.load_raw(torrent.raw, start=True)
    leecher.wait_for(lambda: leecher.proxy.d.complete(h) == 1, 30, what="download")
    assert rtlab.same_payload(torrent.data, os.path.join(leecher.download_dir, torrent.name))
    assert leecher.proxy.d.completed_bytes(h) == torrent.size_bytes


def test_a_throttled_seeder_makes_a_4_mib_download_take_more_than_a_second(swarm, leecher):
    torrent = swarm.torrents["single"]
    assert torrent.size_bytes == 4 * rtlab.MiB
    h = leecher.load_raw(torrent.raw)
    started = time.monotonic()
    leecher.proxy.d.start(h)
    leecher.wait_for(lambda: leecher.proxy.d.completed_bytes(h) > 0, 10, what="first bytes")
    assert leecher.proxy.d.complete(h) == 0, "still downloading: there is time to observe it"
    leecher.wait_for(lambda: leecher.proxy.d.complete(h) == 1, 30, what="download")
    assert time.monotonic() - started > 1.0
    assert rtlab.same_payload(torrent.data, os.path.join(leecher.download_dir, torrent.name))


def test_every_instance_has_its_own_loopback_address(swarm, leecher):
    addresses = [swarm.seeder.ip, leecher.ip, swarm.start_leecher().ip]
    assert len(set(addresses)) == 3
    assert all(ip.startswith("127.") for ip in addresses)
    assert leecher.proxy.network.bind_address() == leecher.ip


# ─── metafiles and payloads ──────────────────────────────────────────────────────

@pytest.mark.parametrize("files", [None, ["a b", "a.bin", "a/b", ".hidden", "empty"]],
                         ids=["single-file", "multi-file"])
def test_make_torrent_has_the_same_infohash_as_mktorrent(short_tmp, files):
    mktorrent = shutil.which("mktorrent")
    if not mktorrent:
        pytest.skip("mktorrent is not installed (apt-get install mktorrent)")
    if files:  # names chosen so that mktorrent's whole-path byte order matters
        files = {name: (0 if name == "empty" else 70_000 + i) for i, name in enumerate(files)}
    data = rtlab.make_payload(str(short_tmp), "payload", 300_000, files)
    out = str(short_tmp / "mk.torrent")
    subprocess.run([mktorrent, "-a", "http://127.0.0.1:9/announce", "-l", "16", "-o", out, data],
                   check=True, stdout=subprocess.DEVNULL, timeout=30)
    with open(out, "rb") as handle:
        expected = rtlab.infohash(handle.read())
    ours = rtlab.make_torrent(data, "http://127.0.0.1:9/announce", 1 << 16)
    assert rtlab.infohash(ours) == expected


bencodable = st.recursive(
    st.integers() | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.binary(max_size=10), children, max_size=5),
    max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(bencodable)
def test_bencode_round_trips(value):
    assert rtlab.bdecode(rtlab.bencode(value)) == value


@pytest.mark.parametrize("garbage", [b"", b"i12", b"4:abc", b"li1e", b"d1:ai1e", b"i1ei2e", b"x"])
def test_bdecode_rejects_malformed_input(garbage):
    with pytest.raises(ValueError):
        rtlab.bdecode(garbage)


def test_make_payload_is_deterministic_and_name_dependent(short_tmp):
    first = rtlab.make_payload(str(short_tmp / "one"), "x", 3 * rtlab.MiB + 5, files=3)
    again = rtlab.make_payload(str(short_tmp / "two"), "x", 3 * rtlab.MiB + 5, files=3)
    other = rtlab.make_payload(str(short_tmp / "three"), "y", 3 * rtlab.MiB + 5, files=3)
    assert sorted(os.listdir(first)) == ["file1.bin", "file2.bin", "file3.bin"]
    assert rtlab.same_payload(first, again)
    assert not rtlab.same_payload(first, other)  # same file names, other bytes
    assert rtlab.infohash(rtlab.make_torrent(first, "http://a/")) == \
        rtlab.infohash(rtlab.make_torrent(again, "http://b/"))
