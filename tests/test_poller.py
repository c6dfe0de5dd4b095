"""ItemPoller: one d.multicall2 per tick for all the jobs that read items."""
import os
import signal

import pytest

import pyrotorque

import rtlab  # conftest puts contrib/ on sys.path
from helpers import queue_job

JOBS = """\
[TORQUE]
job.connstats.active = no
job.queue.active = yes
job.queue.schedule = second=*
job.queue.startable = prio>3
job.rule.handler = pyrotorque:ActionRule
job.rule.schedule = second=*
job.rule.matcher = name=nothing-is-called-this
job.rule.action = stop
job.other.handler = pyrotorque:ActionRule
job.other.schedule = second=*
job.other.matcher = is_complete=yes size>1g
job.other.action = stop
"""

POLLER = """\
job.poller.handler = pyrotorque:ItemPoller
job.poller.schedule = second=*
"""


def run_daemon(tmp, url, text, seconds):
    cfg = os.path.join(str(tmp), "cfg-%d" % len(text))
    os.makedirs(cfg)
    with open(os.path.join(cfg, "torque.ini"), "w") as handle:
        handle.write(text)
    options = pyrotorque._parse_options(["--fg", "--config-dir", cfg, "-U", url])
    daemon = pyrotorque.Daemon(options, pyrotorque.load_settings(cfg))
    daemon.start()
    jobs = dict(daemon.jobs)        # serve() closes and forgets them at the end
    daemon.call_later(seconds, lambda: os.kill(os.getpid(), signal.SIGTERM))
    daemon.serve()
    return daemon, min(sj.runs for sj in jobs.values())


@pytest.fixture
def loaded(rtorrent, short_tmp):
    for number in range(50):
        path = rtlab.make_payload(str(short_tmp), "item%02d" % number, 4096)
        rtorrent.load_raw(rtlab.make_torrent(path, "http://127.0.0.1:9/announce"))
    return rtorrent


def multicalls(daemon):
    """Item fetches: the queue lets rTorrent filter (d.multicall.filtered), the rules don't."""
    counts = daemon.proxy.stats.by_method
    return counts.get("d.multicall2", 0) + counts.get("d.multicall.filtered", 0)


def test_with_the_poller_three_reading_jobs_share_one_multicall_per_tick(loaded, short_tmp):
    without, ticks = run_daemon(short_tmp, loaded.url, JOBS, 3.5)
    assert ticks >= 3
    per_tick_without = multicalls(without) / ticks
    assert per_tick_without >= 2.9

    with_poller, ticks = run_daemon(short_tmp, loaded.url, JOBS + POLLER, 3.5)
    assert ticks >= 3
    # In the first tick each job fetches for itself (nobody had asked for fields yet);
    # from then on the poller's one multicall serves all three.
    assert (multicalls(with_poller) - 3) / (ticks - 1) <= 1.5


def test_a_start_drops_the_snapshot_so_the_next_reader_asks_rtorrent(loaded, short_tmp):
    proxy = pyrotorque.RtorrentProxy(loaded.url, timeout=5)
    source = pyrotorque.ItemSource(proxy)
    source.snapshot_age = 60
    first = source.fetch("main", {"name", "prio"})
    source.poll()
    calls = multicalls_of(proxy)
    assert source.fetch("main", {"name"}) and multicalls_of(proxy) == calls      # served
    source.fetch("main", {"name", "size"})                                       # new field
    assert multicalls_of(proxy) == calls + 1
    source.poll()
    calls = multicalls_of(proxy)
    source.invalidate()
    assert len(source.fetch("main", {"name"})) == len(first) == 50
    assert multicalls_of(proxy) == calls + 1


def multicalls_of(proxy):
    return proxy.stats.by_method.get("d.multicall2", 0)


def test_a_queue_start_drops_the_shared_snapshot(loaded, short_tmp):
    job = queue_job(short_tmp, loaded.url)
    job.items.snapshot_age = 60
    job.run()               # tells the source which fields the queue reads, starts one item
    job.items.poll()
    assert job.items.snapshots
    loaded.proxy.d.priority.set(loaded.proxy.download_list()[1], 3)
    job.run()               # served from the snapshot, starts another: the snapshot goes
    assert job.started == 2 and not job.items.snapshots
