"""StatsArchiver: the round-robin archive, its graphs, and serving them.

The archive is exercised with an injected clock (years of samples in seconds);
collecting runs against a real rTorrent 0.9.8; the graphs are parsed as XML and,
finally, rendered by a real headless Chromium whose screenshot must show the curves.
"""
import gzip
import logging
import os
import signal
import sqlite3
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib

import pytest

import daemon_process
import pyrotorque
import rtlab
from pyrotorque import ConfigError
from helpers import DaemonThread, free_port, request

SVG = "{http://www.w3.org/2000/svg}"
DEAD_TRACKER = "http://tracker.invalid:6969/announce"


def archive_at(path, tiers="1m:1h,1h:1d,1d:1y", busy_timeout=0.25):
    return pyrotorque.StatsArchive(str(path), pyrotorque.parse_tiers(tiers),
                                   logging.getLogger("pyrotorque.test"), busy_timeout)


def stats_job(tmp, url, **params):
    """A StatsArchiver built the way the daemon builds it, from torque.ini text."""
    cfg = daemon_process.torque_config(tmp, {"stats": params}, "pyrotorque:StatsArchiver")
    options = pyrotorque._parse_options(["--fg", "--config-dir", cfg, "-U", url])
    settings = pyrotorque.load_settings(cfg)
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    return jobs["stats"].job


def load_items(rt, folder, announces):
    """Load one small stopped item per announce URL; return their hashes."""
    hashes = []
    for index, announce in enumerate(announces):
        path = rtlab.make_payload(str(folder), "item%d" % index, 16 * 1024)
        hashes.append(rt.load_raw(rtlab.make_torrent(path, announce),
                                  "d.directory.set=" + str(folder)))
    return hashes


# Configuration ----------------------------------------------------------------------

@pytest.mark.parametrize("text, tiers", [
    ("1m:2d,1h:60d,1d:5y", [(60, 2880), (3600, 1440), (86400, 1825)]),
    ("10s:5m", [(10, 30)]),
    (" 1m:1h , 1h:1w ", [(60, 60), (3600, 168)]),
    ("1h:150m", [(3600, 3)]),                      # rounded up to whole slots
    ("1d:1y 1w:10y", [(86400, 365), (604800, 522)]),
])
def test_tier_specs_become_steps_and_slot_counts(text, tiers):
    assert pyrotorque.parse_tiers(text) == tiers


@pytest.mark.parametrize("text, message", [
    ("", "no tiers"),
    ("1m", "not STEP:SPAN"),
    ("1x:2d", "not a duration"),
    ("0m:2d", "not a duration"),
    ("1h:1h", "fewer than 2 points"),
    ("1h:2d,1m:5d", "longer step and span"),
    ("1m:2d,1h:1d", "longer step and span"),
    ("1s:10y", "more than"),
])
def test_bad_tier_specs_say_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=message):
        pyrotorque.parse_tiers(text)


@pytest.mark.parametrize("seconds, text", [
    (86400, "1 day"), (14 * 86400, "2 weeks"), (365 * 86400, "1 year"), (7200, "2 hours"),
    (90, "90 seconds"), (60, "1 minute"),
])
def test_durations_are_named_in_their_largest_even_unit(seconds, text):
    assert pyrotorque.duration_text(seconds) == text


def test_a_bad_parameter_is_a_config_error_naming_the_key(short_tmp):
    for params, key in (({"tiers": "1h:1m"}, "job.stats.tiers"),
                        ({"views": "main, bad/view"}, "views"),
                        ({"graph_range": "20y"}, "job.stats.graph_range")):
        with pytest.raises(ConfigError, match=key):
            stats_job(short_tmp, "/nonexistent.sock", **params)


# The archive ------------------------------------------------------------------------

def test_rates_are_averaged_and_counts_keep_their_last_value_in_coarser_tiers(short_tmp):
    archive = archive_at(short_tmp / "a.sqlite")
    start = 1_700_000_000 - 1_700_000_000 % 3600
    for minute, (rate, count) in enumerate([(100, 1), (200, 2), (600, 5)]):
        archive.add(start + 60 * minute, [("up_rate", "avg", rate),
                                          ("count.view.main", "last", count)])
    assert archive.points(60, start, start + 3600) == {
        "count.view.main": [(start, 1), (start + 60, 2), (start + 120, 5)],
        "up_rate": [(start, 100), (start + 60, 200), (start + 120, 600)]}
    assert archive.points(3600, start, start + 3600) == {
        "count.view.main": [(start, 5)], "up_rate": [(start, 300)]}
    assert archive.points(86400, 0, start + 3600)["up_rate"] == [
        (start - start % 86400, 300)]
    archive.close()


def test_when_the_clock_went_back_points_from_the_future_are_dropped(short_tmp, caplog):
    """A clock that was set ahead and then corrected leaves no points "in the future"."""
    archive = archive_at(short_tmp / "a.sqlite")
    now = 1_700_000_000 - 1_700_000_000 % 86400
    archive.add(now, [("up_rate", "avg", 10)])
    with caplog.at_level(logging.INFO, logger="pyrotorque"):
        archive.add(now - 86400, [("up_rate", "avg", 99)])   # the same hourly slot
    # In the minute and hour rings the slot of a day ago is the same slot: overwritten;
    # in the day ring, today's point is "in the future" and goes.
    for step in (60, 3600, 86400):
        assert [v for _, v in archive.points(step, 0, 2e9)["up_rate"]] == [99]
    assert "The clock went back: 1 archived point later than now dropped" in caplog.text
    archive.close()


def test_the_archive_stays_within_its_size_over_years_of_samples(short_tmp):
    path = short_tmp / "a.sqlite"
    archive = archive_at(path)              # 60 + 24 + 365 slots per series
    now = 1_600_000_000

    def sample(t, aliases=("LOCAL",)):
        archive.add(t, [("up_rate", "avg", t % 977), ("up_total", "last", t),
                        ("count.view.main", "last", 3)]
                    + [("count.alias." + a, "last", 1) for a in aliases])

    for _ in range(1440):                   # one day, every minute; an alias that then goes
        sample(now, ("LOCAL", "gone.example"))
        now += 60
    sizes, rows = [], []
    for day in range(int(2.5 * 365)):       # then two and a half years, twice a day
        for _ in range(2):
            sample(now)
            now += 43200
        if day >= 400:     # a page or two of B-tree splits settle after the first fill
            sizes.append(os.path.getsize(path))
            rows.append(archive.row_count())
    # After the first year the rings are full: nothing grows any more.
    assert max(sizes) == min(sizes) and max(rows) == min(rows)
    assert rows[-1] <= 4 * (1 + 24 + 365)
    assert os.path.getsize(path) < 200 * 1024
    with sqlite3.connect(str(path)) as db:
        names = {name for name, in db.execute("SELECT name FROM series")}
        assert names == {"up_rate", "up_total", "count.view.main", "count.alias.LOCAL"}
        per_tier = dict(db.execute("SELECT step, MAX(n) FROM (SELECT step, series, COUNT(*) AS n"
                                   " FROM points GROUP BY step, series) GROUP BY step"))
    assert per_tier[86400] == 365 and per_tier[3600] <= 24 and per_tier[60] <= 60
    archive.close()


def test_changing_a_tiers_slot_count_drops_only_that_tiers_points(short_tmp, caplog):
    path = short_tmp / "a.sqlite"
    archive = archive_at(path, "1m:1h,1h:1d")
    archive.add(1_700_000_000, [("up_rate", "avg", 5)])
    archive.close()
    archive = archive_at(path, "1m:1h,1h:2d")
    with caplog.at_level(logging.INFO, logger="pyrotorque"):
        found = archive.points(60, 0, 2e9), archive.points(3600, 0, 2e9)
    assert found == ({"up_rate": [(1_700_000_000 - 1_700_000_000 % 60, 5)]}, {})
    assert "Tiers changed" in caplog.text
    archive.close()


def test_a_corrupt_file_is_reported_moved_aside_and_recreated(short_tmp, caplog):
    path = short_tmp / "stats.sqlite"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    archive = archive_at(path)
    with caplog.at_level(logging.WARNING, logger="pyrotorque"):
        archive.add(1_700_000_000, [("up_rate", "avg", 5)])
    aside = [name for name in os.listdir(short_tmp) if ".corrupt-" in name]
    assert len(aside) == 1 and aside[0].startswith("stats.sqlite.corrupt-")
    assert (short_tmp / aside[0]).read_bytes() == garbage
    assert str(path) in caplog.text and "moved aside" in caplog.text
    assert archive.points(60, 0, 2e9) == {"up_rate": [(1_700_000_000 - 1_700_000_000 % 60, 5)]}
    archive.close()


def test_a_file_damaged_while_open_is_moved_aside_at_the_next_sample(short_tmp, caplog):
    path = short_tmp / "stats.sqlite"
    archive = archive_at(path)
    archive.add(1_700_000_000, [("up_rate", "avg", 5)])
    with open(path, "r+b") as handle:       # the header and the first pages, overwritten
        handle.write(os.urandom(4096))
    with caplog.at_level(logging.WARNING, logger="pyrotorque"):
        archive.add(1_700_000_060, [("up_rate", "avg", 7)])
        archive.add(1_700_000_120, [("up_rate", "avg", 9)])
    assert "moved aside" in caplog.text
    assert [v for _, v in archive.points(60, 0, 2e9)["up_rate"]][-1] == 9
    archive.close()


def test_a_locked_file_costs_the_sample_after_the_busy_timeout_only(short_tmp):
    path = short_tmp / "stats.sqlite"
    archive = archive_at(path, busy_timeout=0.2)
    archive.add(1_700_000_000, [("up_rate", "avg", 5)])
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        for action in (lambda: archive.add(1_700_000_060, [("up_rate", "avg", 6)]),
                       lambda: archive.points(60, 0, 2e9)):
            began = time.monotonic()
            with pytest.raises(pyrotorque.ArchiveBusy, match="locked"):
                action()
            assert time.monotonic() - began < 1.0
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [v for _, v in archive.points(60, 0, 2e9)["up_rate"]] == [5]
    assert not [name for name in os.listdir(short_tmp) if ".corrupt-" in name]
    archive.close()


# Drawing ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (0, "0 B/s"), (512, "512 B/s"), (1536, "1.5 KiB/s"), (2 * 1024 ** 2, "2 MiB/s"),
    (123.4 * 1024 ** 2, "123 MiB/s"), (5 * 1024 ** 4, "5 TiB/s"),
])
def test_rates_are_shown_in_binary_units(value, text):
    assert pyrotorque.human_rate(value) == text


@pytest.mark.parametrize("peak, axis", [
    (0, (1, "B/s", 1.0, 1.0)),
    (700, (1, "B/s", 200.0, 800.0)),
    (3 * 1024 ** 2, (1024 ** 2, "MiB/s", 1.0, 3.0)),
    (1.3 * 1024, (1024, "KiB/s", 0.5, 1.5)),
])
def test_rate_axes_have_round_ticks_in_one_unit(peak, axis):
    assert pyrotorque._rate_axis(peak) == axis


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("start, span, labels", [
    ("2026-11-25 10:10", 86400, ["12:00", "15:00", "18:00", "21:00", "00:00", "03:00",
                                 "06:00", "09:00"]),
    ("2026-11-25 10:10", 3600, ["10:10", "10:20", "10:30", "10:40", "10:50", "11:00", "11:10"]),
    ("2026-11-25 10:13", 3600, ["10:20", "10:30", "10:40", "10:50", "11:00", "11:10"]),
    ("2026-11-11 10:10", 14 * 86400, ["Nov 12", "Nov 14", "Nov 16", "Nov 18", "Nov 20",
                                      "Nov 22", "Nov 24"]),
    ("2025-11-25 10:10", 365 * 86400, ["Jan 2026", "Mar 2026", "May 2026", "Jul 2026",
                                       "Sep 2026", "Nov 2026"]),
])
def test_time_labels_fit_the_range(utc, start, span, labels):
    begin = time.mktime(time.strptime(start, "%Y-%m-%d %H:%M"))
    ticks = pyrotorque.time_ticks(begin, begin + span)
    assert [label for _, label in ticks] == labels
    assert all(begin <= t <= begin + span for t, _ in ticks)


def test_clock_time_labels_are_aligned_in_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")       # UTC+05:30
    time.tzset()
    try:
        begin = time.mktime(time.strptime("2026-11-25 10:10", "%Y-%m-%d %H:%M"))
        labels = [label for _, label in pyrotorque.time_ticks(begin, begin + 86400)]
    finally:
        monkeypatch.undo()
        time.tzset()
    assert labels == ["12:00", "15:00", "18:00", "21:00", "00:00", "03:00", "06:00", "09:00"]


def parse_svg(text):
    root = ET.fromstring(text)
    assert root.tag == SVG + "svg"
    assert int(root.get("width")) > 0 and int(root.get("height")) > 0
    return root


def texts(root):
    return ["".join(node.itertext()) for node in root.iter(SVG + "text")]


def test_a_chart_is_valid_svg_with_axes_legend_and_escaped_labels():
    start = 1_700_000_000
    up = [(start + 60 * i, 1024 * 100 * (1 + i % 7)) for i in range(60)]
    hostile = '<b>"tracker" & \'co\'</b>'
    long_name = "a-very-long-tracker-alias.example.org"
    text = pyrotorque.render_chart("Rates & more", [("upload", "#1f77b4", up),
                                                    (hostile, "#d62728", []),
                                                    (long_name, "#2ca02c", [])],
                                   start, start + 3600, 60, rate=True)
    root = parse_svg(text)
    shown = texts(root)
    assert shown[0] == "Rates & more" and root.find(SVG + "title").text == "Rates & more"
    assert any(t.endswith("KiB/s") for t in shown[1:6]), shown      # y axis units
    assert any(":" in t for t in shown)                              # x axis clock times
    assert "upload: 400 KiB/s" in shown and hostile + ": -" in shown  # legend, last value
    assert "a-very-long-tracker-ali\u2026: -" in shown                  # shortened
    paths = root.findall(SVG + "path")
    assert [p.get("stroke") for p in paths] == ["#1f77b4"]
    assert paths[0].get("d").count("M") == 1 and paths[0].get("d").count("L") == 59
    swatches = [r.get("fill") for r in root.findall(SVG + "rect")]
    assert "#1f77b4" in swatches and "#d62728" in swatches


def test_gaps_in_the_data_are_gaps_in_the_curve():
    start = 1_700_000_000
    points = [(start + 60 * i, 5) for i in range(10)] + [(start + 60 * i, 7)
                                                         for i in range(30, 40)]
    points.append((start + 3000, 9))        # a lone point: drawn as a dot
    root = parse_svg(pyrotorque.render_chart("Items", [("main", "#2ca02c", points)],
                                             start, start + 3600, 60))
    path, = root.findall(SVG + "path")
    assert path.get("d").count("M") == 2
    assert [c.get("fill") for c in root.findall(SVG + "circle")] == ["#2ca02c"]


def test_an_empty_range_says_so():
    root = parse_svg(pyrotorque.render_chart("Items", [("main", "#2ca02c", [])], 0, 86400, 60))
    assert "no data in this range" in texts(root) and not root.findall(SVG + "path")


# Collecting from a real rTorrent -----------------------------------------------------------

def test_archived_counts_equal_rtorrents_view_sizes_and_aliases(rtorrent, short_tmp):
    hashes = load_items(rtorrent, short_tmp / "data", [
        "http://tracker.one.example:6969/announce", "http://t2.one.example/announce",
        DEAD_TRACKER])
    rtorrent.proxy.d.start(hashes[0])
    rtorrent.wait_for(lambda: rtorrent.proxy.d.state(hashes[0]) == 1)
    job = stats_job(short_tmp, rtorrent.url, tiers="1m:1h,1h:1d",
                    views="main,started,stopped,no_such_view")
    calls_before = dict(job.proxy.stats.by_method)
    job.clock = lambda: 1_700_000_000
    job.run()
    latest = {name: points[-1][1] for name, points in job.archive.points(60, 0, 2e9).items()}
    proxy = rtorrent.proxy
    assert latest["count.view.main"] == proxy.view.size("", "main") == 3
    assert latest["count.view.started"] == proxy.view.size("", "started") == 1
    assert latest["count.view.stopped"] == proxy.view.size("", "stopped") == 2
    assert "count.view.no_such_view" not in latest
    assert latest["count.alias.one.example"] == 2 and latest["count.alias.tracker.invalid"] == 1
    assert latest["up_total"] == proxy.throttle.global_up.total() and "down_rate" in latest
    made = {m: n - calls_before.get(m, 0) for m, n in job.proxy.stats.by_method.items()}
    assert made.get("system.multicall", 0) <= 3 and made.get("d.multicall2") == 1
    job.close()


def test_a_locked_archive_skips_samples_with_one_warning(rtorrent, short_tmp, caplog):
    job = stats_job(short_tmp, rtorrent.url, tiers="1m:1h,1h:1d", busy_timeout="0.1")
    job.run()
    other = sqlite3.connect(job.archive.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
            for _ in range(3):
                began = time.monotonic()
                job.run()
                assert time.monotonic() - began < 1.0
    finally:
        other.execute("ROLLBACK")
        other.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Sample skipped" in warnings[0].getMessage()
    assert job.status_text() == "archive busy"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pyrotorque"):
        job.run()
    assert "usable again" in caplog.text and job.status_text() == ""
    job.close()


def test_with_rtorrent_down_the_run_is_skipped_and_nothing_is_archived(short_tmp):
    job = stats_job(short_tmp, str(short_tmp / "nothing-here.sock"))
    with pytest.raises(pyrotorque.RtorrentUnavailable):
        job.run()
    assert job.archive.row_count() == 0
    job.close()


def test_the_archive_survives_a_restart(rtorrent, short_tmp):
    job = stats_job(short_tmp, rtorrent.url, tiers="1m:1h,1h:1d")
    job.clock = lambda: 1_700_000_000
    job.run()
    job.close()
    again = stats_job(short_tmp, rtorrent.url, tiers="1m:1h,1h:1d")
    again.clock = lambda: 1_700_000_060
    again.run()
    assert len(again.archive.points(60, 0, 2e9)["count.view.main"]) == 2
    again.close()


# Pages, files and serving --------------------------------------------------------------------

def fill(archive, now, minutes, step=60, aliases=("LOCAL", "<&alias>")):
    """Archive ``minutes`` of wavy samples ending at ``now``."""
    for index in range(0, minutes, step // 60):
        t = now - 60 * (minutes - index)
        wave = 1 + (index % 180) / 180.0
        archive.add(t, [("up_rate", "avg", 300 * 1024 * wave), ("down_rate", "avg", 900 * 1024),
                        ("count.view.main", "last", 10), ("count.view.started", "last", 6),
                        ("count.view.stopped", "last", 4)]
                    + [("count.alias." + a, "last", 2 + i) for i, a in enumerate(aliases)])


def test_graph_files_are_an_html_page_or_one_svg_image(short_tmp):
    for name in ("graphs.html", "graphs.svg"):
        job = stats_job(short_tmp, "/nonexistent.sock", views="main,started,stopped",
                        tiers="1m:2d,1h:60d", graph_file=str(short_tmp / name), graph_range="2w")
        now = time.time()
        fill(job.archive, now, 600, step=300)
        job.write_graph_file(now)
        text = (short_tmp / name).read_text()
        if name.endswith(".svg"):
            root = parse_svg(text)
            charts = root.findall(SVG + "svg")
        else:
            assert text.startswith("<!DOCTYPE html>") and "last 2 weeks" in text
            charts = [parse_svg(chunk[:chunk.index("</svg>") + 6])
                      for chunk in text.split("<svg ")[1:] for chunk in ["<svg " + chunk]]
        assert len(charts) == 3
        assert ["Transfer rates, last 2 weeks", "Items per view, last 2 weeks",
                "Items per tracker, last 2 weeks"] == [texts(c)[0] for c in charts]
        assert any("<&alias>: 3" == t for t in texts(charts[2]))
        job.close()


def test_the_exporter_serves_graphs_and_links_them_from_its_index(tmp_path, short_tmp):
    port = free_port()
    loop = DaemonThread(tmp_path, "job.exporter.active = yes\njob.exporter.schedule = hour=0\n"
                "job.exporter.port = %d\njob.stats.handler = pyrotorque:StatsArchiver\n"
                "job.stats.schedule = hour=0\njob.stats.db = %s\njob.stats.views = main,started\n"
                % (port, short_tmp / "s.sqlite")).build()
    try:
        fill(loop.daemon.jobs["stats"].job.archive, time.time(), 120)
        loop.start()
        status, _, body = request(port, path="/")
        assert status == 200 and b'<a href="/graphs">Graphs</a>' in body
        status, headers, body = request(port, path="/graphs")
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert body.count(b"<svg ") == 3 and b"last 1 day" in body
        status, headers, body = request(port, path="/graphs/1y.svg",
                                        headers={"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Type"] == "image/svg+xml"
        root = parse_svg(gzip.decompress(body))
        assert len(root.findall(SVG + "svg")) == 3
        for path in ("/graphs/2w", "/graphs/6h", "/graphs/"):
            assert request(port, path=path)[0] == 200, path
        for path in ("/graphs/bogus", "/graphs/0d", "/graphsx", "/graphs/20y"):
            assert request(port, path=path)[0] == 404, path
        assert request(port, path="/metrics")[0] in (200, 503)
    finally:
        loop.close()


# What users see: a screenshot by a real browser ------------------------------------------

def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        for folder in os.environ.get("PATH", "").split(os.pathsep):
            if os.access(os.path.join(folder, name), os.X_OK):
                return os.path.join(folder, name)
    pytest.fail("the screenshot test needs Chromium: apt-get install -y chromium",
                pytrace=False)


def screenshot(url, target, workdir, timeout=60):
    """A headless Chromium screenshot of ``url``; the browser is killed by pid at the end."""
    process = subprocess.Popen(
        [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-color-profile=srgb", "--user-data-dir=%s" % (workdir / "profile"),
         "--screenshot=%s" % target, "--window-size=1200,1000", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        _, errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        errors = b"timed out"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        else:       # the browser's helpers are in its session: none may outlive it
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert os.path.exists(target), errors.decode(errors="replace")[-2000:]


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB(A) non-interlaced PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        begin = y * (stride + 1)
        kind, line = raw[begin], bytearray(raw[begin + 1:begin + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc
                                      else corner)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def test_a_browser_screenshot_of_graphs_shows_every_curve(short_tmp):
    db = short_tmp / "stats.sqlite"
    archive = archive_at(db, pyrotorque.DEFAULT_TIERS)
    fill(archive, time.time(), 1440, step=300, aliases=("LOCAL", "other"))
    archive.close()
    port = free_port()
    cfg = daemon_process.torque_config(short_tmp, {
        "stats": {"schedule": "hour=0", "db": str(db), "views": "main,started,stopped"},
        "exporter": {"handler": "pyrotorque:RtorrentExporter", "schedule": "hour=0",
                     "active": "yes", "port": port}}, "pyrotorque:StatsArchiver")
    with daemon_process.DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U",
                                      str(short_tmp / "no.sock"), workdir=short_tmp) as daemon:
        daemon.wait_for(r"Serving metrics on http://127\.0\.0\.1:%d/metrics" % port)
        shot = short_tmp / "graphs.png"
        screenshot("http://127.0.0.1:%d/graphs" % port, str(shot), short_tmp)
        assert daemon.stop() == 0
    width, height, rows = read_png(str(shot))
    assert (width, height) == (1200, 1000)
    plot = range(pyrotorque.PLOT_LEFT + 2, pyrotorque.CHART_WIDTH - pyrotorque.LEGEND_WIDTH - 2)

    def near(pixel, colour):
        return all(abs(a - b) <= 6 for a, b in zip(pixel, colour))

    def pixels(colour_text):
        colour = tuple(int(colour_text[i:i + 2], 16) for i in (1, 3, 5))
        return sum(1 for row in rows for x in plot if near(row[x], colour))

    # Upload, download, three views, two aliases: the first seven colours, in the plot area;
    # the next colour is nobody's, so it must not be there.
    for colour_text in pyrotorque.CURVE_COLOURS[:7]:
        assert pixels(colour_text) >= 50, "no curve in %s" % colour_text
    assert pixels(pyrotorque.CURVE_COLOURS[7]) == 0


def test_a_reload_hands_the_graphs_port_to_the_changed_job(short_tmp):
    port = free_port()
    params = {"schedule": "hour=0", "db": str(short_tmp / "stats.sqlite"), "views": "main",
              "port": port}
    cfg = daemon_process.torque_config(short_tmp, {"stats": params}, "pyrotorque:StatsArchiver")
    with daemon_process.DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U",
                                      str(short_tmp / "no.sock"), workdir=short_tmp) as daemon:
        daemon.wait_for(r"Serving graphs on")
        status, _, body = request(port, path="/graphs")
        assert status == 200 and b"stopped: -" not in body
        daemon_process.torque_config(short_tmp, {"stats": dict(params, views="main,stopped")},
                                     "pyrotorque:StatsArchiver")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(r"Reloaded: 1 job, changed: stats")
        status, _, body = request(port, path="/graphs")
        assert status == 200 and b"stopped: -" in body
        assert daemon.stop() == 0
    assert "cannot listen" not in daemon.text()
