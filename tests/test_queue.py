"""QueueManager against a real rTorrent 0.9.8 and a real local swarm."""
import logging
import os
import re
import textwrap
import threading
import time

import pytest

import pyrotorque
from daemon_process import DaemonProcess

import rtlab  # conftest puts contrib/ on sys.path
from helpers import queue_job

DEAD_TRACKER = "http://127.0.0.1:9/announce"


def load(rt, tmp, name, prio=1, size=64 * 1024, files=None, commands=()):
    """Load a metafile for fresh data (its tracker is dead: the item never finishes)."""
    path = rtlab.make_payload(str(tmp), name, size, files=files)
    return rt.load_raw(rtlab.make_torrent(path, DEAD_TRACKER), "d.priority.set=%d" % prio,
                       *commands)


def active(rt):
    return {row["d.hash"] for row in rt.downloads("d.hash=", "d.is_active=") if row["d.is_active"]}


def assert_active(rt, expected):
    """Exactly ``expected`` is active (d.start takes effect on rTorrent's next tick)."""
    deadline = time.monotonic() + 2
    while active(rt) != set(expected) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert active(rt) == set(expected)


def assert_active_names(rt, expected):
    rows = rt.downloads("d.hash=", "d.name=")
    assert_active(rt, {row["d.hash"] for row in rows if row["d.name"] in expected})


# -- one run at a time, in-process --------------------------------------------------

def test_one_run_starts_start_at_once_items_in_sort_order(rtorrent, short_tmp):
    hashes = {name: load(rtorrent, short_tmp, name, prio) for name, prio in
              [("low", 1), ("high-b", 3), ("high-a", 3), ("normal", 2)]}
    job = queue_job(short_tmp, rtorrent.url, start_at_once=3)
    job.run()
    assert_active(rtorrent, {hashes["high-a"], hashes["high-b"], hashes["normal"]})


def test_downloading_min_catches_up_beyond_start_at_once(rtorrent, short_tmp):
    for name in "abcd":
        load(rtorrent, short_tmp, name)
    job = queue_job(short_tmp, rtorrent.url, downloading_min=3, start_at_once=1)
    job.run()
    assert_active_names(rtorrent, ["a", "b", "c"])


def test_downloading_max_holds_back_further_starts(rtorrent, short_tmp, caplog):
    hashes = [load(rtorrent, short_tmp, name) for name in "abc"]
    for h in hashes[:2]:
        rtorrent.proxy.d.start(h)
    job = queue_job(short_tmp, rtorrent.url, downloading_max=2, downloading_min=0)
    with caplog.at_level(logging.DEBUG):
        job.run()
    assert_active(rtorrent, set(hashes[:2]))
    assert "Already downloading 2 item(s) out of 2 max, 1 more could be downloading" in caplog.text


def test_intermission_delays_the_next_batch(rtorrent, short_tmp, caplog):
    for name in "ab":
        load(rtorrent, short_tmp, name)
    job = queue_job(short_tmp, rtorrent.url, intermission=2, downloading_max=9)
    job.run()
    assert_active_names(rtorrent, ["a"])
    with caplog.at_level(logging.DEBUG):
        job.run()
    assert_active_names(rtorrent, ["a"])
    assert re.search(r"Delaying start of 1 item\(s\), due to 2s intermission with [12]s left",
                     caplog.text)
    time.sleep(2.05)
    job.run()
    assert_active_names(rtorrent, ["a", "b"])


def test_priority_zero_items_wait_until_their_priority_is_raised(rtorrent, short_tmp, caplog):
    h = load(rtorrent, short_tmp, "queued", prio=0)
    job = queue_job(short_tmp, rtorrent.url)
    with caplog.at_level(logging.DEBUG):
        job.run()
    assert not active(rtorrent)
    assert "none startable according to" in caplog.text
    rtorrent.proxy.d.priority.set(h, 1)
    job.run()
    assert_active(rtorrent, {h})


def test_a_stalled_item_stops_counting_as_downloading_once_it_is_no_longer_young(
        rtorrent, short_tmp):
    first = load(rtorrent, short_tmp, "first", prio=2)
    second = load(rtorrent, short_tmp, "second", prio=2)
    job = queue_job(short_tmp, rtorrent.url, downloading_max=1, downloading_min=0,
                    downloading="[ prio>1 [ down>3 OR started<3s ] ]")
    job.run()
    assert_active(rtorrent, {first})
    job.run()           # 'first' is young: it occupies the only slot
    assert_active(rtorrent, {first})
    time.sleep(3.5)     # no peers, no transfer: it is stalled and no longer young
    job.run()
    assert_active(rtorrent, {first, second})


def test_dry_run_starts_nothing_and_says_what_it_would_do(rtorrent, short_tmp, caplog):
    h = load(rtorrent, short_tmp, "item")
    job = queue_job(short_tmp, rtorrent.url, dry_run="yes")
    with caplog.at_level(logging.INFO):
        job.run()
    assert not active(rtorrent)
    assert "WOULD start 'item' [" in caplog.text and h in caplog.text


def test_quiet_controls_the_print_message_sent_to_rtorrent(short_tmp):
    with rtlab.RTorrent(log_xmlrpc=True) as rt:
        load(rt, short_tmp, "loud")
        queue_job(short_tmp, rt.url).run()
        load(rt, short_tmp, "silent")
        queue_job(short_tmp, rt.url, quiet="yes", downloading_max=9, start_at_once=9).run()
        calls = rt.xmlrpc_log_text()
    assert "QueueManager: Started 'loud'" in calls
    assert "Started 'silent'" not in calls


def test_an_rtorrent_fault_on_one_item_does_not_stop_the_others(rtorrent, short_tmp, caplog):
    hashes = [load(rtorrent, short_tmp, name) for name in "abc"]
    job = queue_job(short_tmp, rtorrent.url, start_at_once=3)
    complete = job.items.complete      # reads name and order of the startable ones

    def read_then_erase_the_first(*args, **kwargs):
        complete(*args, **kwargs)
        rtorrent.proxy.d.erase(hashes[0])       # gone between the fetch and its start

    job.items.complete = read_then_erase_the_first
    with caplog.at_level(logging.WARNING):
        job.run()
    assert_active(rtorrent, set(hashes[1:]))
    assert re.search(r"Could not start 'a' \[#%s\]" % hashes[0], caplog.text)


def test_diskspace_min_keeps_an_item_waiting_and_says_why(rtorrent, short_tmp, caplog):
    h = load(rtorrent, short_tmp, "big", size=256 * 1024)
    stat = os.statvfs(rtorrent.download_dir)
    free = stat.f_bavail * stat.f_frsize
    job = queue_job(short_tmp, rtorrent.url, diskspace_min=str(free + 2**30))
    with caplog.at_level(logging.INFO):
        job.run()
    assert not active(rtorrent)
    assert re.search(r"Not starting 'big' \[#%s\]: it needs .* \(diskspace_min" % h, caplog.text)
    queue_job(short_tmp, rtorrent.url, diskspace_min="1m").run()
    assert_active(rtorrent, {h})


def test_a_bad_condition_or_sort_field_is_a_config_error_naming_the_key(rtorrent, short_tmp):
    with pytest.raises(pyrotorque.ConfigError, match=r"torque.ini:5: job.queue.startable: .*prio"):
        queue_job(short_tmp, rtorrent.url, startable="prio=")
    with pytest.raises(pyrotorque.ConfigError, match=r"torque.ini:5: job.queue.sort_fields: .*nosuchfield"):
        queue_job(short_tmp, rtorrent.url, sort_fields="-prio, nosuchfield")
    with pytest.raises(pyrotorque.ConfigError, match=r"torque.ini:5: job.queue.downloading_max: '-1' must not be negative"):
        queue_job(short_tmp, rtorrent.url, downloading_max="-1")


def test_the_documented_startable_example_on_real_multi_file_torrents(rtorrent, short_tmp):
    """Audio with many images waits unless its priority is high; other items start."""
    flac_jpg = {"cd/%02d.flac" % i: 100 * 1024 for i in range(3)}
    flac_jpg.update({"scans/%02d.jpg" % i: 60 * 1024 for i in range(3)})
    picky = load(rtorrent, short_tmp, "Artist - Album (2001) [FLAC]", prio=1, files=flac_jpg)
    plain = load(rtorrent, short_tmp, "Other Artist - Album [FLAC]", prio=1,
                 files={"%02d.flac" % i: 100 * 1024 for i in range(3)})
    vip = load(rtorrent, short_tmp, "VIP - Album [FLAC]", prio=3, files=flac_jpg)
    job = queue_job(short_tmp, rtorrent.url, start_at_once=9, downloading_max=9,
                    startable="is_ignored=0 message= prio>0\n"
                              "  [ prio>2 OR [ NOT [ traits=audio kind_25=jpg,png,tif,bmp ] ] ]")
    job.run()
    assert_active(rtorrent, {plain, vip})
    assert picky not in active(rtorrent)


# -- the queue on a real swarm, in the daemon --------------------------------------------

def test_five_queued_items_download_two_at_a_time_in_sort_order(short_tmp):
    rtlab.find_binary("opentracker")
    with rtlab.Swarm(seeder_rc="throttle.global_up.max_rate.set_kb = 2048") as swarm:
        sizes = [("e-first", 3), ("d-second", 2), ("a-third", 1), ("b-fourth", 1), ("c-fifth", 1)]
        for name, _ in sizes:
            swarm.add_torrent(name, 1536 * 1024)
        leecher = swarm.start_leecher()
        order = []
        for name, prio in sizes:
            leecher.load_raw(swarm.torrents[name].raw, "d.priority.set=%d" % prio)
            order.append(swarm.torrents[name].infohash)
        cfg = os.path.join(str(short_tmp), "cfg")
        os.makedirs(cfg)
        with open(os.path.join(cfg, "torque.ini"), "w") as handle:
            handle.write(textwrap.dedent("""\
                [TORQUE]
                job.connstats.active = no
                job.queue.active = yes
                job.queue.schedule = second=*
                job.queue.downloading_max = 2
                job.queue.downloading_min = 2
                """))
        samples, seen_max, stop = [], [0], threading.Event()

        def sample():
            while not stop.is_set():
                rows = leecher.downloads("d.hash=", "d.is_active=", "d.complete=")
                downloading = sum(1 for r in rows if r["d.is_active"] and not r["d.complete"])
                seen_max[0] = max(seen_max[0], downloading)
                samples.append(downloading)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", leecher.url,
                           workdir=short_tmp) as daemon:
            sampler.start()
            try:
                leecher.wait_for(lambda: all(r["d.complete"] for r in
                                             leecher.downloads("d.hash=", "d.complete=")),
                                 timeout=60, what="all five complete")
            finally:
                stop.set()
                sampler.join()
            assert daemon.stop() == 0
        started = re.findall(r"Starting '[^']+' \[[^,]*, #([0-9A-F]{40})\]", daemon.text())
        assert started == order, daemon.text()
        assert seen_max[0] == 2 and max(samples) == 2
        assert len(samples) > 20
        for torrent in swarm.torrents.values():
            assert rtlab.same_payload(torrent.data, os.path.join(leecher.download_dir,
                                                                 torrent.name))


def test_run_once_queue_dry_run_verbose_shows_the_decisions_and_starts_nothing(
        rtorrent, short_tmp):
    from daemon_process import run_cli
    h = load(rtorrent, short_tmp, "candidate")
    load(rtorrent, short_tmp, "held-back", prio=0)
    cfg = os.path.join(str(short_tmp), "cfg")
    os.makedirs(cfg)
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--run-once", "queue",
                           "-n", "-v")
    assert code == 0, err
    assert "1 of 2 item(s) startable, 0 downloading (min 1, max 9)" in err
    assert "WOULD start 'candidate' [127.0.0.1, #%s]" % h in err
    assert not active(rtorrent)


def test_downloading_traffic_max_holds_back_starts_while_traffic_is_high(short_tmp, caplog):
    with rtlab.Swarm(seeder_rc="throttle.global_up.max_rate.set_kb = 256") as swarm:
        for name in ("a-busy", "b-waiting"):
            swarm.add_torrent(name, 2 * rtlab.MiB)
        leecher = swarm.start_leecher()
        for torrent in swarm.torrents.values():
            leecher.load_raw(torrent.raw, "d.priority.set=1")
        job = queue_job(short_tmp, leecher.url, downloading_traffic_max="1k")
        job.run()           # below downloading_min: starts one whatever the traffic
        busy = swarm.torrents["a-busy"].infohash
        assert_active(leecher, {busy})
        leecher.wait_for(lambda: leecher.proxy.d.down.rate(busy) > 1024, timeout=10,
                         what="traffic above 1 KiB/s")
        with caplog.at_level(logging.DEBUG):
            job.run()
        assert_active(leecher, {busy})
        assert re.search(r"Not starting more: the 1 downloading item\(s\) receive .* above "
                         r"downloading_traffic_max 1\.0 KiB/s", caplog.text)
