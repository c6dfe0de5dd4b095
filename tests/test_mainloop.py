"""The main loop in-process: timers, readers, schedules, reload bookkeeping."""
import os
import selectors
import signal
import socket
import time

import pytest

import pyrotorque


class Recorder(pyrotorque.Job):
    """A job that records when it ran and can be told to fail or take long."""

    PARAMS = {"sleep": (float, 0.0, "seconds each run takes"),
              "fail": (pyrotorque.parse_bool, False, "raise in run()")}
    runs = []

    def run(self):
        Recorder.runs.append((self.name, time.time()))
        if self.config.sleep:
            time.sleep(self.config.sleep)
        if self.config.fail:
            raise RuntimeError("failing on purpose")


@pytest.fixture
def daemon(tmp_path, monkeypatch):
    monkeypatch.setitem(pyrotorque.BUILTIN_JOBS, "Recorder", Recorder)
    Recorder.runs = []

    def make(torque_ini):
        (tmp_path / "torque.ini").write_text("[TORQUE]\njob.connstats.active = no\n" + torque_ini)
        options = pyrotorque._parse_options(["--fg", "--config-dir", str(tmp_path), "-U", "/x"])
        settings = pyrotorque.load_settings(str(tmp_path))
        made = pyrotorque.Daemon(options, settings)
        made.start()
        return made

    yield make


def serve_for(daemon, seconds):
    daemon.call_later(seconds, lambda: os.kill(os.getpid(), signal.SIGTERM))
    return daemon.serve()


def test_a_job_runs_on_whole_seconds_of_its_schedule(daemon):
    loop = daemon("job.rec.handler = pyrotorque:Recorder\njob.rec.schedule = second=*\n")
    assert serve_for(loop, 2.6) == 0
    stamps = [t for _, t in Recorder.runs]
    assert 2 <= len(stamps) <= 3
    assert all(t - int(t) < 0.2 for t in stamps)        # fired right at the second


def test_a_failing_job_is_counted_and_the_loop_keeps_running(daemon):
    loop = daemon("job.rec.handler = pyrotorque:Recorder\njob.rec.schedule = second=*\n"
                  "job.rec.fail = yes\n")
    sj = loop.jobs["rec"]
    serve_for(loop, 2.5)
    assert sj.runs >= 2 and sj.failures == sj.runs


def test_runs_missed_during_a_long_run_are_merged_into_one(daemon):
    loop = daemon("job.rec.handler = pyrotorque:Recorder\njob.rec.schedule = second=*\n"
                  "job.rec.sleep = 1.5\n")
    sj = loop.jobs["rec"]
    serve_for(loop, 4.2)
    assert sj.merged >= 1
    assert len(Recorder.runs) <= 3      # not one run per missed second


def test_timers_fire_in_order_and_a_cancelled_one_never_fires(daemon):
    loop = daemon("")
    fired = []
    loop.call_later(0.2, lambda: fired.append("second"))
    loop.call_later(0.1, lambda: fired.append("first"))
    loop.cancel(loop.call_later(0.15, lambda: fired.append("cancelled")))
    serve_for(loop, 0.5)
    assert fired == ["first", "second"]


def test_a_readable_file_calls_its_reader(daemon):
    loop = daemon("")
    left, right = socket.socketpair()
    got = []
    loop.add_reader(left, lambda: got.append(left.recv(100)))
    loop.call_later(0.1, lambda: right.send(b"ping"))
    loop.call_later(0.3, lambda: loop.remove_reader(left))
    serve_for(loop, 0.5)
    assert got == [b"ping"]
    left.close()
    right.close()


def test_run_soon_brings_a_scheduled_run_forward(daemon):
    loop = daemon("job.rec.handler = pyrotorque:Recorder\njob.rec.schedule = hour=*\n")
    started = time.time()
    loop.call_later(0.1, lambda: loop.run_soon("rec"))
    serve_for(loop, 0.6)
    assert len(Recorder.runs) == 1 and Recorder.runs[0][1] - started < 0.5


def test_a_reload_keeps_unchanged_jobs_and_replaces_changed_ones(daemon, tmp_path):
    loop = daemon("job.a.handler = pyrotorque:Recorder\njob.a.schedule = hour=*\n"
                  "job.b.handler = pyrotorque:Recorder\njob.b.schedule = hour=*\n")
    a, b = loop.jobs["a"], loop.jobs["b"]
    with open(tmp_path / "torque.ini", "a") as handle:
        handle.write("job.b.sleep = 0.1\njob.c.handler = pyrotorque:Recorder\n"
                     "job.c.schedule = hour=*\n")
    assert loop.reload()
    assert loop.jobs["a"] is a and loop.jobs["b"] is not b and set(loop.jobs) == {"a", "b", "c"}
    (tmp_path / "torque.ini").write_text("[TORQUE]\njob.a.handler = pyrotorque:Nope\n")
    assert not loop.reload()
    assert loop.jobs["a"] is a
    loop.close()


def test_a_clock_that_goes_back_reschedules_every_job(daemon, monkeypatch):
    loop = daemon("job.rec.handler = pyrotorque:Recorder\njob.rec.schedule = minute=*\n")
    sj = loop.jobs["rec"]
    real = time.time
    monkeypatch.setattr(pyrotorque.time, "time", lambda: real() - 7200)
    loop.call_later(0.05, lambda: os.kill(os.getpid(), signal.SIGTERM))
    loop.serve()
    # without rescheduling, the next run would wait two hours of the new clock
    assert sj.next_due <= real() - 7200 + 61


def test_a_watched_socket_can_switch_from_reading_to_writing(daemon):
    loop = daemon("")
    left, right = socket.socketpair()
    events = []

    def on_write():
        events.append("write")
        left.send(b"pong")
        loop.unwatch(left)

    def on_read():
        events.append("read:" + left.recv(100).decode())
        loop.watch(left, selectors.EVENT_WRITE, on_write)

    loop.watch(left, selectors.EVENT_READ, on_read)
    loop.call_later(0.1, lambda: right.send(b"ping"))
    serve_for(loop, 0.4)
    assert events == ["read:ping", "write"] and right.recv(100) == b"pong"
    left.close()
    right.close()


def test_a_job_or_timer_held_up_by_a_slow_one_shows_as_loop_lag(daemon):
    loop = daemon("job.a.handler = pyrotorque:Recorder\njob.a.schedule = second=*\n"
                  "job.a.sleep = 0.4\n"
                  "job.b.handler = pyrotorque:Recorder\njob.b.schedule = second=*\n")
    serve_for(loop, 1.5)
    assert len(Recorder.runs) >= 2
    assert loop.late_max >= 0.35          # b was due with a, and waited for it
    quiet = daemon("")
    quiet.call_later(0.1, lambda: time.sleep(0.3))
    quiet.call_later(0.15, lambda: None)
    serve_for(quiet, 0.6)
    assert 0.2 <= quiet.late_max < 1.0
