"""TorrentMover (pyrosimple's Mover): complete items move to another real rTorrent 0.9.8
with their fast-resume data, arrive complete without a hash check, and leave the source."""
import hashlib
import logging
import os
import textwrap

import pytest

import pyrotorque
from daemon_process import DaemonProcess, run_cli

import rtlab  # conftest puts contrib/ on sys.path

DEAD_TRACKER = "http://127.0.0.1:9/announce"
SIZE = 3 * rtlab.MiB
PIECE = 256 * rtlab.KiB


@pytest.fixture
def source():
    with rtlab.RTorrent() as rt:
        yield rt


@pytest.fixture
def target():
    with rtlab.RTorrent() as rt:
        yield rt


def complete_item(rt, folder, name, files=None):
    """A complete item in ``rt``, its data in ``folder``; return (hash, metafile bytes)."""
    os.makedirs(folder, exist_ok=True)
    path = rtlab.make_payload(folder, name, SIZE, files=files)
    raw = rtlab.make_torrent(path, DEAD_TRACKER, piece_length=PIECE)
    info_hash = rt.load_raw(raw, "d.directory.set=" + pyrotorque.rtorrent_escape(folder),
                            start=True)
    rt.wait_for(lambda: rt.proxy.d.complete(info_hash) == 1, 10, what="the item complete")
    # The mover reads the session's copy of the metafile, which 0.16 writes a moment after
    # the load (0.9.8 before it answers); an item that completed has it long since.
    session = os.path.join(rt.proxy.session.path(), info_hash + ".torrent")
    rt.wait_for(lambda: os.path.exists(session), 5, what="the session's metafile")
    return info_hash, raw


def spoil_a_piece(path):
    """Overwrite some bytes in the middle of a data file, keeping its size and mtime: a
    hash check would find the piece bad, a trusted fast resume does not look."""
    stat = os.stat(path)
    with open(path, "r+b") as handle:
        handle.seek(stat.st_size // 2)
        handle.write(b"\0" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def mover(tmp, source, hosts, monkeypatch, **params):
    """The job built from a pyrosimple config.toml with a [CONNECTIONS] alias per host."""
    connections = "\n".join('host%d = "%s"' % (n, url) for n, url in enumerate(hosts))
    params.setdefault("matcher", '"name=*"')
    extra = "\n".join("%s = %s" % item for item in params.items())
    path = os.path.join(str(tmp), "config.toml")
    with open(path, "w") as handle:
        handle.write(textwrap.dedent('''\
            scgi_url = "%s"
            [CONNECTIONS]
            %s
            [TORQUE.move]
            handler = "pyrosimple.job.move_torrent:Mover"
            schedule = "minute=*"
            hosts = [%s]
            ''') % (source.url, connections, ", ".join('"host%d"' % n for n in range(len(hosts))))
            + extra + "\n")
    monkeypatch.setenv("PYRO_CONF", path)
    monkeypatch.setenv("HOME", str(tmp))
    settings = pyrotorque.load_settings(os.path.join(str(tmp), "cfg"))
    options = pyrotorque._parse_options(["--fg", "--config-dir", str(tmp)])
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    return jobs["move"].job


@pytest.mark.parametrize("files", [None, ["a.bin", "sub/b.bin", "c.txt"]],
                         ids=["single-file", "multi-file"])
@pytest.mark.parametrize("folder", ["data", "we\"ird, dir;$(x) 'q'"])
def test_a_complete_item_arrives_complete_without_a_hash_check_and_leaves_the_source(
        source, target, short_tmp, monkeypatch, files, folder):
    data = os.path.join(str(short_tmp), folder)
    info_hash, raw = complete_item(source, data, "item", files)
    source.proxy.d.custom.set(info_hash, "origin", "seedbox one")
    source.proxy.d.custom1.set(info_hash, "tv")
    first_file = os.path.join(data, "item", "a.bin") if files else os.path.join(data, "item")
    spoil_a_piece(first_file)
    job = mover(short_tmp, source, [target.url], monkeypatch)
    job.run()
    moved = target.proxy.d
    target.wait_for(lambda: moved.complete(info_hash) == 1, 3, what="complete at the target")
    assert moved.completed_bytes(info_hash) == SIZE       # the spoiled piece was not checked
    assert moved.hashing(info_hash) == 0
    assert moved.is_active(info_hash) == 1
    assert moved.directory(info_hash) == (os.path.join(data, "item") if files else data)
    assert moved.custom(info_hash, "origin") == "seedbox one"
    assert moved.custom1(info_hash) == "tv"
    assert not source.has(info_hash)
    assert job.totals["moved"] == 1
    # the control: the same metafile loaded afresh is hash-checked and finds the bad piece
    source.load_raw(raw, "d.directory.set=" + pyrotorque.rtorrent_escape(data), start=True)
    source.wait_for(lambda: source.proxy.d.hashing(info_hash) == 0
                    and source.proxy.d.chunks_hashed(info_hash) > 0, 10)
    assert source.proxy.d.completed_bytes(info_hash) < SIZE


def test_the_running_daemon_moves_items_between_turns_of_its_loop(source, target, short_tmp):
    hashes = {complete_item(source, os.path.join(str(short_tmp), "data"), name)[0]
              for name in ("one", "two")}
    path = os.path.join(str(short_tmp), "config.toml")
    with open(path, "w") as handle:
        handle.write('scgi_url = "%s"\n[CONNECTIONS]\nother = "%s"\n[TORQUE.move]\n'
                     'handler = "pyrosimple.job.move_torrent:Mover"\nschedule = "second=*"\n'
                     'matcher = "name=one,two"\nhosts = ["other"]\n' % (source.url, target.url))
    env = {"PYRO_CONF": path, "HOME": str(short_tmp)}
    with DaemonProcess("--fg", "--config-dir", os.path.join(str(short_tmp), "cfg"),
                       workdir=short_tmp, env=env) as daemon:
        found = daemon.wait_for(r"Moved '(\w+)' \[#\w+\] to scgi://", count=2)
        daemon.stop()
    assert sorted(found) == ["one", "two"]
    for info_hash in hashes:
        target.wait_for(lambda: target.proxy.d.complete(info_hash) == 1, 3)
        assert not source.has(info_hash)


def test_a_host_that_has_the_item_already_is_skipped_for_the_next(source, target, short_tmp,
                                                                  monkeypatch, caplog):
    with rtlab.RTorrent() as third:
        info_hash, raw = complete_item(source, os.path.join(str(short_tmp), "data"), "item")
        hosts = [target.url, third.url]
        job = mover(short_tmp, source, hosts, monkeypatch)
        key = info_hash + (job.items.fetch("main", {"alias"})[0]["alias"] or "")
        first, second = pyrotorque.rendezvous_order(key, hosts)
        busy = target if first == target.url else third
        busy.load_raw(raw)
        with caplog.at_level(logging.INFO, "pyrotorque"):
            job.run()
        other = third if busy is target else target
        other.wait_for(lambda: other.proxy.d.complete(info_hash) == 1, 3)
        assert "is at %s already; trying the next host" % first in caplog.text
        assert not source.has(info_hash)


def test_an_incomplete_item_and_a_dry_run_move_nothing(source, target, short_tmp, monkeypatch,
                                                       caplog):
    done, _ = complete_item(source, os.path.join(str(short_tmp), "data"), "done")
    elsewhere = rtlab.make_payload(os.path.join(str(short_tmp), "src"), "loose", 64 * 1024)
    loose = source.load_raw(rtlab.make_torrent(elsewhere, DEAD_TRACKER),   # stays incomplete
                            "d.directory.set=" + str(short_tmp))
    job = mover(short_tmp, source, [target.url], monkeypatch, dry_run="true")
    with caplog.at_level(logging.INFO, "pyrotorque"):
        job.run()
    assert "WOULD move 'done' [#%s] to %s" % (done, target.url) in caplog.text
    assert "loose" not in caplog.text
    assert source.has(done) and source.has(loose)
    assert not target.has(done)


def test_an_unreachable_host_is_skipped_with_a_warning(source, target, short_tmp, monkeypatch,
                                                       caplog):
    info_hash, _ = complete_item(source, os.path.join(str(short_tmp), "data"), "item")
    dead = "scgi://" + os.path.join(str(short_tmp), "nobody.sock")
    job = mover(short_tmp, source, [dead], monkeypatch)
    with caplog.at_level(logging.INFO, "pyrotorque"):
        job.run()
    assert "No host can take 'item'" in caplog.text
    assert source.proxy.d.is_active(info_hash) == 1      # untouched


def test_hosts_are_tried_in_pyrosimples_rendezvous_order():
    hosts = ["scgi://a:1", "scgi://b:2", "/tmp/c.sock", "http://d/RPC2"]
    for key in ("AB" * 20 + "alias", "CD" * 20, "0" * 40 + "x"):
        weights = {h: int.from_bytes(hashlib.sha256(key.encode() + h.encode()).digest(), "big")
                   for h in hosts}
        assert pyrotorque.rendezvous_order(key, hosts) == sorted(hosts, key=weights.get)


def test_fast_resume_counts_each_files_pieces_and_refuses_a_size_that_differs(tmp_path):
    paths = []
    for name, size in (("a", 15), ("b", 5), ("c", 20)):
        paths.append(str(tmp_path / name))
        (tmp_path / name).write_bytes(b"x" * size)
    meta = {b"announce": b"x", b"info": {b"piece length": 10, b"pieces": b"P" * 20 * 4,
                                         b"files": [{b"length": 15, b"path": [b"a"]},
                                                    {b"length": 5, b"path": [b"b"]},
                                                    {b"length": 20, b"path": [b"c"]}]}}
    resume = pyrotorque.fast_resume(meta, paths, [1, 0, 2])[b"libtorrent_resume"]
    assert resume[b"bitfield"] == 4
    assert [f[b"completed"] for f in resume[b"files"]] == [2, 1, 2]
    assert [f[b"priority"] for f in resume[b"files"]] == [1, 0, 2]
    assert resume[b"files"][0][b"mtime"] == int(os.stat(paths[0]).st_mtime)
    (tmp_path / "b").write_bytes(b"x" * 6)
    with pytest.raises(OSError, match="has 6 bytes, the metafile says 5"):
        pyrotorque.fast_resume(meta, paths)


@pytest.mark.parametrize("params, message", [
    ({"handler": "pyrotorque:TorrentMover", "schedule": "hour=*", "hosts": "/x"},
     "matcher: you need to set 'job.m.matcher'"),
    ({"handler": "pyrotorque:TorrentMover", "schedule": "hour=*", "matcher": "name=*"},
     "hosts: you need to set 'job.m.hosts'"),
    ({"handler": "pyrotorque:TorrentMover", "schedule": "hour=*", "matcher": "name=*",
      "hosts": "gopher://x"}, "unsupported scheme"),
])
def test_a_bad_mover_config_is_refused_with_the_key_it_is_about(params, message):
    spec = pyrotorque.JobSpec("m")
    spec.params.update(params)
    config = pyrotorque.job_config(spec, pyrotorque.TorrentMover, pyrotorque.Settings("/x"))
    with pytest.raises(pyrotorque.ConfigError, match=message):
        pyrotorque.TorrentMover(config)


def test_an_item_whose_load_at_the_target_fails_is_started_again_here(source, target,
                                                                      short_tmp, monkeypatch,
                                                                      caplog):
    info_hash, _ = complete_item(source, os.path.join(str(short_tmp), "data"), "item")
    job = mover(short_tmp, source, [target.url], monkeypatch)
    remote = job.remotes[target.url]
    real_call = remote.call

    def load_refused(method, *params):       # rTorrent goes away between check and load
        if method == "load.raw_verbose":
            raise pyrotorque.RtorrentUnavailable("load.raw_verbose: gone")
        return real_call(method, *params)
    monkeypatch.setattr(remote, "call", load_refused)
    with caplog.at_level(logging.INFO, "pyrotorque"):
        job.run()
    assert "it stays here and is started again" in caplog.text
    source.wait_for(lambda: source.proxy.d.is_active(info_hash) == 1, 3)
    assert not target.has(info_hash)


def test_check_asks_each_target_host_and_names_one_that_is_down(source, target, short_tmp):
    down = "scgi://127.0.0.1:9"
    cfg = os.path.join(str(short_tmp), "cfg")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "torque.ini"), "w") as handle:
        handle.write("[TORQUE]\njob.move.handler = pyrotorque:TorrentMover\n"
                     "job.move.schedule = hour=*\njob.move.matcher = name=x\n"
                     "job.move.hosts = %s %s\n" % (target.url, down))
    code, out, err = run_cli("--check", "--config-dir", cfg, "-U", source.url)
    assert "rTorrent of move (hosts) at %s: version %s" % (target.url, target.version) in out
    assert "rTorrent of move (hosts): ERROR: " in out and down in out
    assert code == 70, out + err
