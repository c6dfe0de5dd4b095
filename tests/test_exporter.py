"""The exporter against a real rTorrent 0.9.8 and a real swarm (contrib/rtlab.py).

In-process tests build the job in a real Daemon and compare what it exports with
what rTorrent says; the last test runs the daemon as a subprocess, as users do,
and feeds its /metrics to ``promtool check metrics``.
"""
import gzip
import shutil
import signal
import socket
import statistics
import subprocess
import time

import pytest

import daemon_process
import pyrotorque
from helpers import DaemonThread, free_port, parse_metrics, raw, request, series, status_of, value

#: The exporter as the tests configure it (every collector, the port filled in).
EXPORTER = ("job.exporter.active = yes\njob.exporter.schedule = hour=0\n"
            "job.exporter.port = {port}\njob.exporter.jobs = system,tracker,item\n"
            "job.exporter.item_stats = down.total,up.total,down.rate,size_bytes,ratio,no.such\n")


@pytest.fixture
def loops():
    made = []
    yield made
    for loop in made:
        loop.close()


def exporter_in(loops, tmp_path, rt, extra=""):
    """A Daemon (not yet looping) with the exporter on a free port; returns (loop, job)."""
    loop = DaemonThread(tmp_path, EXPORTER.format(port=free_port()) + extra, url=rt.url).build()
    loops.append(loop)
    return loop, loop.daemon.jobs["exporter"].job


def collect(job):
    job.run()
    return parse_metrics(job.text)[0]


def test_every_series_is_there_with_rtorrents_own_values(swarm, leecher, loops, tmp_path):
    single, multi = swarm.torrents["single"], swarm.torrents["multi"]
    loop, job = exporter_in(loops, tmp_path, leecher)
    h_single = leecher.load_raw(single.raw, start=True)
    h_multi = leecher.load_raw(multi.raw)
    proxy = leecher.proxy

    # During the download (the seeder sends 2 MiB/s): the byte counters grow.
    seen, downloading = [], 0
    while not proxy.d.complete(h_single):
        samples = collect(job)
        seen.append((value(samples, "rtorrent_downloaded_bytes_total"),
                     value(samples, "rtorrent_item_downloaded_bytes_total",
                           hash=h_single, name="single")))
        downloading = max(downloading, value(samples, "rtorrent_items", state="downloading"))
        time.sleep(0.3)
    assert downloading == 1
    assert len(seen) >= 2 and seen[-1][0] > seen[0][0] and seen[-1][1] > seen[0][1]
    assert all(b >= a for a, b in zip(seen, seen[1:]))

    before = proxy.throttle.global_down.total()
    samples = collect(job)
    after = proxy.throttle.global_down.total()
    assert before <= value(samples, "rtorrent_downloaded_bytes_total") <= after
    assert value(samples, "rtorrent_up") == 1
    assert value(samples, "rtorrent_info", client_version=leecher.version,
                 library_version=leecher.library_version) == 1
    for collector in ("system", "tracker", "item"):
        assert value(samples, "rtorrent_collector_success", collector=collector) == 1
    for view in proxy.view.list():
        assert value(samples, "rtorrent_view_items", view=view) == proxy.view.size("", view)
    assert value(samples, "rtorrent_items", state="seeding") == 1
    assert value(samples, "rtorrent_items", state="stopped") == 1
    assert value(samples, "rtorrent_items", state="paused") == 0
    assert value(samples, "rtorrent_items_size_bytes") == single.size_bytes + multi.size_bytes
    assert value(samples, "rtorrent_items_left_bytes") == multi.size_bytes
    messages = sum(1 for row in proxy.d.multicall2("", "main", "d.message=") if row[0])
    assert series(samples, "rtorrent_tracker_items") == {(("alias", "127.0.0.1"),): 2}
    assert value(samples, "rtorrent_tracker_error_items", alias="127.0.0.1") == messages
    assert value(samples, "rtorrent_open_sockets_limit") == proxy.network.max_open_sockets()
    http_limit = "network.http.max_open" if leecher.series < (0, 15) else \
        "network.http.max_total_connections"            # 0.16 renamed it
    assert value(samples, "rtorrent_http_requests_open_limit") == getattr(proxy, http_limit)()
    assert value(samples, "rtorrent_pieces_memory_limit_bytes") == proxy.pieces.memory.max()
    assert abs(value(samples, "rtorrent_start_time_seconds") - time.time()) < 300
    assert value(samples, "rtorrent_collection_duration_seconds") < 5
    for info_hash, name, size in ((h_single, "single", single.size_bytes),
                                  (h_multi, "multi", multi.size_bytes)):
        labels = {"hash": info_hash, "name": name}
        assert value(samples, "rtorrent_item_downloaded_bytes_total", **labels) == \
            proxy.d.down.total(info_hash)
        assert value(samples, "rtorrent_item_size_bytes", **labels) == size
        assert value(samples, "rtorrent_item_ratio", **labels) == pytest.approx(
            proxy.d.ratio(info_hash) / 1000)
        assert ("rtorrent_item_uploaded_bytes_total", tuple(sorted(labels.items()))) in samples
    assert value(samples, "rtorrent_item_downloaded_bytes_total", hash=h_single,
                 name="single") >= single.size_bytes
    assert not [key for key in samples if "no_such" in key[0]]     # a missing method is left out

    # Every family the code knows is there (the per-item ones checked above).
    names = {name for name, _ in samples}
    for name in pyrotorque.EXPORTER_METRICS:
        assert "rtorrent_" + name in names, name
    for name in ("job_runs_total", "rpc_calls_total", "rpc_duration_seconds_count", "build_info"):
        assert "pyrotorque_" + name in names, name

    # An item that leaves takes its series along.
    proxy.d.erase(h_multi)
    leecher.wait_for(lambda: not leecher.has(h_multi), 5)
    samples = collect(job)
    assert not [key for key in samples if ("hash", h_multi) in key[1]]
    assert series(samples, "rtorrent_tracker_items") == {(("alias", "127.0.0.1"),): 1}
    assert value(samples, "rtorrent_items", state="stopped") == 0


def test_rtorrent_up_follows_rtorrent_and_scrapes_go_on(rtorrent, loops, tmp_path):
    loop, job = exporter_in(loops, tmp_path, rtorrent)
    loop.start()
    port = job.server.address[1]
    loop.call(job.run)
    status, _, body = request(port)
    assert status == 200 and b"\nrtorrent_up 1\n" in body
    rtorrent.stop()
    with pytest.raises(pyrotorque.RtorrentUnavailable):
        loop.call(job.run)
    status, _, body = request(port)
    samples = parse_metrics(body.decode())[0]
    assert status == 200 and value(samples, "rtorrent_up") == 0
    assert "rtorrent_view_items" not in {name for name, _ in samples}
    rtorrent.start()
    loop.call(job.run)
    samples = parse_metrics(request(port)[2].decode())[0]
    assert value(samples, "rtorrent_up") == 1 and series(samples, "rtorrent_view_items")
    assert value(samples, "pyrotorque_rpc_errors_total") >= 1


def test_the_daemon_serves_metrics_that_promtool_accepts(swarm, leecher, short_tmp, script):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus (it is in that package)",
                    pytrace=False)
    leecher.load_raw(swarm.torrents["single"].raw, start=True)
    leecher.load_raw(swarm.torrents["multi"].raw)
    port = free_port()
    cfg = short_tmp / "cfg"
    cfg.mkdir()
    (cfg / "torque.ini").write_text(
        "[TORQUE]\njob.connstats.schedule = second=*\n"
        + EXPORTER.format(port=port).replace("hour=0", "second=*"))
    with daemon_process.DaemonProcess("--fg", "-v", "--config-dir", str(cfg), "-U", leecher.url,
                                      workdir=short_tmp) as daemon:
        daemon.wait_for(r"Serving metrics on http://127\.0\.0\.1:%d/metrics" % port)
        daemon.wait_for(r"Stats for ")
        deadline = time.monotonic() + 10
        while b'pyrotorque_job_runs_total{job_name="connstats"} 0' in request(port)[2]:
            assert time.monotonic() < deadline, daemon.text()
            time.sleep(0.05)
        status, headers, body = request(port)
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        samples = parse_metrics(body.decode())[0]
        assert value(samples, "rtorrent_up") == 1
        assert value(samples, "pyrotorque_job_runs_total", job_name="connstats") >= 1
        assert series(samples, "rtorrent_item_downloaded_bytes_total")
        status, headers, packed = request(port, headers={"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert parse_metrics(gzip.decompress(packed).decode())[0]
        checked = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                                 timeout=30)
        assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")

        # A silent client and garbage change nothing: scrapes stay fast, the loop ticks on.
        silent = socket.create_connection(("127.0.0.1", port))
        ticks = len(daemon.wait_for(r"Stats for "))
        for junk in (b"\x00\xff garbage\r\n\r\n", b"GET /../../etc/passwd HTTP/1.1\r\n\r\n",
                     b"PUT /metrics HTTP/1.1\r\n\r\n"):
            assert 400 <= status_of(raw(port, junk)) < 500
        times = []
        for _ in range(50):
            started = time.monotonic()
            assert request(port)[0] == 200
            times.append(time.monotonic() - started)
        assert statistics.median(times) < 0.05 and max(times) < 1.0, times
        daemon.wait_for(r"Stats for ", count=ticks + 2)
        silent.close()

        # A reload that changes the exporter keeps the port served.
        with open(cfg / "torque.ini", "a") as handle:
            handle.write("job.exporter.prefix = rt_\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(r"Taking over 127\.0\.0\.1:%d" % port)
        deadline = time.monotonic() + 10
        while b"\nrt_up 1\n" not in request(port)[2]:
            assert time.monotonic() < deadline, daemon.text()
            time.sleep(0.05)
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.text()
