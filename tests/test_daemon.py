"""The daemon as users run it: a real process against a real rTorrent (0.9.8, or --rtorrent's)."""
import os
import re
import signal
import subprocess
import sys
import textwrap
import time


from daemon_process import SCRIPT, DaemonProcess, run_cli

STATS = r"Stats for \S+ - up [^,]+, (\d+) torrents, (\d+) req"


def config_dir(base, torque_ini="", **files):
    path = os.path.join(str(base), "cfg")
    os.makedirs(path, exist_ok=True)
    if torque_ini:
        write(os.path.join(path, "torque.ini"), torque_ini)
    for name, text in files.items():
        write(os.path.join(path, name), text)
    return path


def write(path, text):
    with open(path, "w") as handle:
        handle.write(textwrap.dedent(text))


EVERY_SECOND = "[TORQUE]\njob.connstats.schedule = second=*\n"


def test_in_the_foreground_the_stats_line_appears_and_counts_items(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        assert daemon.wait_for(STATS)[0][0] == "0"
        rtorrent.load_raw(rtorrent_metafile(short_tmp, "one"))
        daemon.wait_for(r"Stats for \S+ - up [^,]+, 1 torrents")
        assert daemon.stop() == 0
    text = daemon.text()
    assert "Connected to rTorrent %s " % rtorrent.version in text
    assert "Termination request received (SIGTERM)" in text


def test_the_uptime_is_rtorrents_and_the_session_name_is_reported(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    name = rtorrent.proxy.session.name()
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp) as daemon:
        daemon.wait_for(STATS)
        daemon.stop()
    assert re.search(r"Stats for %s - up \d+s, 0 torrents" % re.escape(name), daemon.text())


def test_a_sighup_with_a_broken_file_keeps_the_old_config_running(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp) as daemon:
        daemon.wait_for(STATS)
        write(os.path.join(cfg, "torque.ini"), "[TORQUE]\njob.connstats.schedule = hour=25\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(r"Reload failed, the old configuration stays in force: .*torque.ini:2: "
                        r"job.connstats.schedule")
        before = len(re.findall(STATS, daemon.text()))
        daemon.wait_for(STATS, count=before + 2)        # still running every second

        write(os.path.join(cfg, "torque.ini"), "[TORQUE]\njob.connstats.schedule = second=*/2\n"
              "job.extra.handler = pyrotorque:EngineStats\njob.extra.schedule = second=*\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(r"Reloaded: 2 jobs, changed: connstats, extra")
        daemon.wait_for(r"Stats for .* \[pyrotorque\.job\.extra\]")
        assert daemon.stop() == 0


def test_a_reload_keeps_the_state_of_unchanged_jobs(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND + "job.other.handler = pyrotorque:EngineStats\n"
                     "job.other.schedule = second=*\n")
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp) as daemon:
        daemon.wait_for(STATS, count=2)
        with open(os.path.join(cfg, "torque.ini"), "a") as handle:
            handle.write("job.other.schedule = second=*/3\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(r"Reloaded: 2 jobs, changed: other")
        assert daemon.stop() == 0


def test_rtorrent_going_away_and_coming_back_is_logged_once_each(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(STATS)
        old_pid = rtorrent.pid
        rtorrent.stop()
        daemon.wait_for(r"Job connstats skipped", count=3)
        rtorrent.start()
        assert rtorrent.pid != old_pid
        daemon.wait_for(r"Connected to rTorrent %s .*pid %d" % (re.escape(rtorrent.version),
                                                                rtorrent.pid))
        count = len(re.findall(STATS, daemon.text()))
        daemon.wait_for(STATS, count=count + 1)
        assert daemon.stop() == 0
    text = daemon.text()
    assert text.count("waiting for it to come back") == 1, text
    assert text.count("is reachable again") == 1, text
    assert "Traceback" not in text


def test_a_daemon_started_while_rtorrent_is_down_connects_when_it_comes_up(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    rtorrent.stop()
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp) as daemon:
        daemon.wait_for(r"is unreachable")
        time.sleep(1.5)
        rtorrent.start()
        daemon.wait_for(STATS)
        assert daemon.stop() == 0


def test_a_hung_rtorrent_times_out_and_the_loop_goes_on(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND + "rpc_timeout = 0.5\n")
    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(STATS)
        os.kill(rtorrent.pid, signal.SIGSTOP)      # a frozen rTorrent accepts, never answers
        try:
            daemon.wait_for(r"unreachable \(timed out\)")
            daemon.wait_for(r"Job connstats skipped", count=2)
        finally:
            os.kill(rtorrent.pid, signal.SIGCONT)
        daemon.wait_for(r"reachable again")
        assert daemon.stop() == 0


def test_a_failing_job_is_logged_with_its_name_and_the_loop_goes_on(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND + textwrap.dedent("""\
        job.broken.handler = brokenjob:Broken
        job.broken.schedule = second=*
        """), **{"brokenjob.py": """\
        class Broken:
            def __init__(self, config):
                pass
            def run(self):
                raise RuntimeError("this job always fails")
        """})
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp) as daemon:
        daemon.wait_for(r"Job broken failed: RuntimeError: this job always fails", count=2)
        daemon.wait_for(STATS, count=2)
        assert daemon.stop() == 0


def test_runs_due_while_a_long_run_goes_on_merge_into_one(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, textwrap.dedent("""\
        [TORQUE]
        job.connstats.active = no
        job.slow.handler = slowjob:Slow
        job.slow.schedule = second=*
        """), **{"slowjob.py": """\
        import logging, time
        class Slow:
            def __init__(self, config):
                self.log = logging.getLogger("slow")
            def run(self):
                self.log.info("slow run starts")
                time.sleep(2.2)
        """})
    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(r"slow run starts", count=3)
        daemon.stop()
    text = daemon.text()
    assert re.search(r"Job slow took 2\.\d s; 2 runs due meanwhile merged into one", text), text
    starts = text.count("slow run starts")
    assert 3 <= starts <= 4     # never one run per missed second


def test_in_the_background_status_and_stop_follow_the_pid_file(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    os.makedirs(os.path.join(cfg, "run"))
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url)
    assert code == 75 and "Guard file" in err and "not found, won't start" in err

    open(os.path.join(cfg, "run", "pyrotorque"), "w").close()
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url)
    assert code == 0, err
    try:
        pid_path = os.path.join(cfg, "run", "pyrotorque.pid")
        pid = int(open(pid_path).read())
        assert run_cli("--config-dir", cfg, "--status")[0] == 0
        log_path = os.path.join(cfg, "log", "torque.log")
        wait_until(lambda: os.path.exists(log_path) and re.search(STATS, open(log_path).read()))

        code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url)
        assert code == 75 and "still running" in err
        code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--cron")
        assert code == 75 and err == ""         # the watchdog's calls stay quiet
    finally:
        code, _, err = run_cli("--config-dir", cfg, "--stop")
    assert code == 0 and "Process #%d stopped." % pid in err
    assert not process_alive(pid)
    assert not os.path.exists(pid_path)
    assert run_cli("--config-dir", cfg, "--status")[0] == 69
    assert run_cli("--config-dir", cfg, "--stop")[0] == 69


def test_the_background_daemon_exits_when_the_guard_file_disappears(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    guard = os.path.join(cfg, "run", "pyrotorque")
    os.makedirs(os.path.dirname(guard))
    open(guard, "w").close()
    assert run_cli("--config-dir", cfg, "-U", rtorrent.url)[0] == 0
    pid = int(open(os.path.join(cfg, "run", "pyrotorque.pid")).read())
    os.remove(guard)
    wait_until(lambda: not process_alive(pid), timeout=5)
    assert "Guard file '%s' disappeared, exiting!" % guard in \
        open(os.path.join(cfg, "log", "torque.log")).read()


def test_restart_replaces_the_running_daemon(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    os.makedirs(os.path.join(cfg, "run"))
    open(os.path.join(cfg, "run", "pyrotorque"), "w").close()
    assert run_cli("--config-dir", cfg, "-U", rtorrent.url)[0] == 0
    pid_path = os.path.join(cfg, "run", "pyrotorque.pid")
    first = int(open(pid_path).read())
    try:
        code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--restart")
        assert code == 0, err
        wait_until(lambda: os.path.exists(pid_path) and open(pid_path).read().strip().isdigit()
                   and int(open(pid_path).read()) != first)
        assert not process_alive(first)
    finally:
        assert run_cli("--config-dir", cfg, "--stop")[0] == 0


def test_run_once_runs_one_job_and_exits_with_its_outcome(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, "[TORQUE]\njob.connstats.active = no\n")
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--run-once", "connstats")
    assert code == 0, err
    assert re.search(STATS, err) and "not active; running it once anyway" in err
    rtorrent.stop()
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--run-once", "connstats")
    assert code == 69 and "unreachable" in err
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--run-once", "nosuchjob")
    assert code == 70 and "no job 'nosuchjob'" in err


def test_check_lists_jobs_with_three_fire_times_and_rtorrents_version(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, "[TORQUE]\njob.connstats.schedule = hour=12 \"day=3rd sun\"\n")
    code, out, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--check")
    assert code == 0, out + err
    line = [l for l in out.splitlines() if l.strip().startswith("connstats")][0]
    fires = re.findall(r"\d{4}-\d\d-\d\d 12:00:00", line)
    assert len(fires) == 3
    assert "version %s (libtorrent %s)" % (rtorrent.version, rtorrent.library_version) in out
    assert "every method the active jobs need is there" in out and out.rstrip().endswith("OK")


def test_check_fails_on_a_broken_config_and_on_a_missing_rtorrent(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, "[TORQUE]\njob.connstats.schedule = minute=61\n")
    code, out, _ = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--check")
    assert code == 70 and "torque.ini:2: job.connstats.schedule" in out
    cfg = config_dir(short_tmp, "[TORQUE]\n")
    rtorrent.stop()
    code, out, _ = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--check")
    assert code == 69 and "unreachable" in out


def test_a_broken_config_stops_the_start_with_exit_70(short_tmp):
    cfg = config_dir(short_tmp, "[TORQUE]\njob.x.handler = pyrotorque:EngineStats\n")
    code, _, err = run_cli("--fg", "--config-dir", cfg, "-U", "/nonexistent.sock")
    assert code == 70
    assert "torque.ini:2: job 'x' is missing the required 'job.x.schedule' parameter" in err
    assert not os.path.exists(os.path.join(cfg, "run", "pyrotorque.pid"))


def test_on_the_journal_every_line_has_a_priority_and_no_timestamp(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, "[TORQUE]\njob.broken.handler = nowhere:X\njob.broken.schedule = minute=*\n"
                     "job.broken.active = no\n")
    err_path = os.path.join(str(short_tmp), "journal.txt")
    with open(err_path, "w") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        code = subprocess.call([sys.executable, SCRIPT, "--config-dir", cfg, "-U", rtorrent.url,
                                "-v", "--run-once", "connstats"], stderr=err, env=env)
        subprocess.call([sys.executable, SCRIPT, "--config-dir", cfg, "--fg", "-U", rtorrent.url,
                         "-D", "job.broken.active=yes"], stderr=err, env=env)
    assert code == 0
    lines = open(err_path).read().splitlines()
    assert len(lines) >= 3
    assert all(re.match(r"<[0-7]>", line) for line in lines), lines
    assert any(line.startswith("<6>Stats for") for line in lines)
    assert any(line.startswith("<3>") and "nowhere" in line for line in lines)
    assert not any(re.search(r"\d\d:\d\d:\d\d", line) for line in lines)


def rtorrent_metafile(base, name):
    import rtlab        # conftest puts contrib/ on sys.path
    data = os.path.join(str(base), name)
    rtlab.make_payload(str(base), name, 64 * 1024)
    return rtlab.make_torrent(data, "http://127.0.0.1:9/announce")


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as handle:      # a zombie is not alive
        return handle.read().split(") ")[-1][0] != "Z"


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_match_lists_the_matching_items_with_the_values_that_decided(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, "[TORQUE]\n")
    wanted = rtorrent.load_raw(rtorrent_metafile(short_tmp, "wanted"), "d.priority.set=2")
    rtorrent.load_raw(rtorrent_metafile(short_tmp, "other"), "d.priority.set=0")
    code, out, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--match", "prio>0 is_open=no")
    assert code == 0, err
    assert out.splitlines() == ["%s  wanted" % wanted, "    is_open=no", "    prio=2",
                                "1 of 2 item(s) in view 'main' match [ prio=+0 is_open=no ]"]
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--match", "prio=1 ]")
    assert code == 70 and "]" in err


def test_debug_logs_every_call_to_rtorrent_and_verbose_does_not(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, "[TORQUE]\n")
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--debug", "--run-once",
                           "connstats")
    assert code == 0 and re.search(r"TRACE\s+system.multicall\(\[", err), err
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "-v", "--run-once",
                           "connstats")
    assert code == 0 and "TRACE" not in err


def test_in_the_background_the_log_file_has_the_start_and_no_line_twice(rtorrent, short_tmp):
    cfg = config_dir(short_tmp, EVERY_SECOND)
    os.makedirs(os.path.join(cfg, "run"))
    open(os.path.join(cfg, "run", "pyrotorque"), "w").close()
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url)
    assert code == 0, err
    log_path = os.path.join(cfg, "log", "torque.log")
    try:
        wait_until(lambda: os.path.exists(log_path) and re.search(STATS, open(log_path).read()))
    finally:
        assert run_cli("--config-dir", cfg, "--stop")[0] == 0
    text = open(log_path).read()
    assert "pyrotorque %s started" % __import__("pyrotorque").__version__ in text
    lines = [line.split(" ", 2)[2] for line in text.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), text         # not once via logging, once via stderr
