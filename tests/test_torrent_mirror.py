"""TorrentMirror on a real local swarm: opentracker, the seeder as the local rTorrent, and a
second real rTorrent (a leecher) as the remote that fetches the mirrored data."""
import glob
import hashlib
import json
import logging
import os
import subprocess
import time

import pytest

import daemon_process
import pyrotorque
from conftest import require_lab
from daemon_process import DaemonProcess

import rtlab  # conftest puts contrib/ on sys.path

PIECE = 256 * 1024
MULTI = ["a.bin", "sub/b.bin", "c.txt"]


def mirror_config(tmp, params):
    return daemon_process.torque_config(tmp, {"mirror": params}, "pyrotorque:TorrentMirror")


def mirror_job(tmp, local_url, *flags, **params):
    """A TorrentMirror built the way the daemon builds it, from torque.ini text."""
    cfg = mirror_config(tmp, params)
    options = pyrotorque._parse_options(["--fg", "--config-dir", cfg, "-U", local_url, *flags])
    settings = pyrotorque.load_settings(cfg)
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    return jobs["mirror"].job


def params_for(swarm, remote, matcher, **extra):
    return dict({"matcher": matcher, "tracker": swarm.tracker.announce_url,
                 "remotes": remote.url, "piece_size": "256k", "max_items": 0}, **extra)


def expect_mirror(swarm, torrent):
    """The mirror's info-hash, computed independently (mktorrent's layout and pieces, private
    flag); whitelisted, since the lab's opentracker serves nothing else."""
    mirror_hash = rtlab.infohash(rtlab.make_torrent(torrent.data, swarm.tracker.announce_url,
                                                    PIECE, private=True))
    swarm.tracker.add(mirror_hash)
    return mirror_hash


def run_until(job, done, caplog, timeout=40.0, what="the mirror"):
    """Run the job once a second-ish until ``done()``; return the log of all runs."""
    deadline = time.monotonic() + timeout
    text = ""
    with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
        while True:
            caplog.clear()
            job.run()
            text += caplog.text
            if done():
                return text
            if time.monotonic() > deadline:
                raise AssertionError("%s not done in %.0f s:\n%s" % (what, timeout, text))
            time.sleep(0.3)


def mirrored(job, *sources):
    """The job saw every remote complete for each of ``sources`` (original info-hashes)."""
    return lambda: all(job.state["mirrors"].get(h, {}).get("done") for h in sources)


def complete_at(rt, info_hash):
    return rt.has(info_hash) and rt.proxy.d.complete(info_hash) == 1


def mirrors_of(rt, source_hash):
    """The items in ``rt`` that are mirrors of ``source_hash``."""
    return [row["d.hash"] for row in rt.downloads("d.hash=", "d.custom=mirror_of")
            if row["d.custom=mirror_of"] == source_hash]


# -- the data arrives ----------------------------------------------------------------------

def test_single_and_multi_file_items_arrive_intact_at_the_remote(swarm, leecher, short_tmp,
                                                                   caplog):
    single = swarm.add_torrent("m1-single", 2 * rtlab.MiB)
    multi = swarm.add_torrent("m1-multi", 2 * rtlab.MiB, files=MULTI)
    expected = {t.infohash: expect_mirror(swarm, t) for t in (single, multi)}
    into = os.path.join(leecher.dir, "mirrored")
    job = mirror_job(short_tmp, swarm.seeder.url,
                     **params_for(swarm, leecher, "name=m1-*", remote_dir=into))

    text = run_until(job, mirrored(job, single.infohash, multi.infohash), caplog)

    for torrent in (single, multi):
        assert rtlab.same_payload(torrent.data, os.path.join(into, torrent.name))
        mirror_hash = expected[torrent.infohash]
        assert swarm.seeder.proxy.d.custom(torrent.infohash, "mirror") == mirror_hash
        assert mirrors_of(swarm.seeder, torrent.infohash) == [mirror_hash]
        assert mirrors_of(leecher, torrent.infohash) == [mirror_hash]
        assert "The mirror of '%s' [#%s] is complete at %s" % (
            torrent.name, torrent.infohash, leecher.url) in text
    assert text.count("is mirrored: complete at 1 of 1 remote(s)") == 2


def test_the_made_metafile_is_private_announces_to_the_tracker_and_its_pieces_verify(
        swarm, leecher, short_tmp, caplog):
    torrent = swarm.add_torrent("m2-multi", 1 * rtlab.MiB + 12345, files=MULTI)
    mirror_hash = expect_mirror(swarm, torrent)
    job = mirror_job(short_tmp, swarm.seeder.url, **params_for(swarm, leecher, "name=m2-*"))
    run_until(job, lambda: swarm.seeder.has(mirror_hash), caplog)

    path = os.path.join(str(short_tmp), "cfg", "mirror-mirror", mirror_hash + ".torrent")
    with open(path, "rb") as handle:
        meta = rtlab.bdecode(handle.read())
    info = meta[b"info"]
    assert meta[b"announce"] == swarm.tracker.announce_url.encode()
    assert info[b"private"] == 1
    assert info[b"piece length"] == PIECE
    assert [b"/".join(f[b"path"]).decode() for f in info[b"files"]] == sorted(MULTI)
    data = b"".join(open(os.path.join(torrent.data, *name.split("/")), "rb").read()
                    for name in sorted(MULTI))
    assert info[b"pieces"] == b"".join(
        hashlib.sha1(data[at:at + PIECE]).digest() for at in range(0, len(data), PIECE))
    assert swarm.seeder.proxy.d.is_private(mirror_hash) == 1

    require_lab("mktorrent")
    made = os.path.join(str(short_tmp), "mktorrent.torrent")
    subprocess.run(["mktorrent", "-p", "-l", "18", "-a", swarm.tracker.announce_url, "-o", made,
                    torrent.data], check=True, capture_output=True)
    with open(made, "rb") as handle:
        assert rtlab.infohash(handle.read()) == mirror_hash


# -- remotes that are down, restarts ----------------------------------------------------------

def test_a_remote_that_is_down_at_first_gets_the_mirror_later(swarm, leecher, short_tmp,
                                                              caplog):
    torrent = swarm.add_torrent("m3-single", 1 * rtlab.MiB)
    mirror_hash = expect_mirror(swarm, torrent)
    leecher.stop()
    job = mirror_job(short_tmp, swarm.seeder.url, **params_for(swarm, leecher, "name=m3-*"))

    text = run_until(job, lambda: "sending it to 1 remote(s)" in caplog.text, caplog)
    assert "tried again at the next run" in text
    state = json.load(open(job.state_path))["mirrors"][torrent.infohash]
    assert state["remotes"][leecher.url]["state"] == "pending"

    leecher.start()
    job.close()         # and a new job from the same config: the daemon restarted meanwhile
    job = mirror_job(short_tmp, swarm.seeder.url, **params_for(swarm, leecher, "name=m3-*"))
    text = run_until(job, mirrored(job, torrent.infohash), caplog)
    assert "Sent the mirror of 'm3-single'" in text and complete_at(leecher, mirror_hash)
    assert "Hashing" not in text and mirrors_of(swarm.seeder, torrent.infohash) == [mirror_hash]
    assert rtlab.same_payload(torrent.data, os.path.join(leecher.download_dir, torrent.name))


def test_nothing_is_mirrored_twice_across_a_daemon_restart(swarm, leecher, short_tmp):
    torrent = swarm.add_torrent("m4-multi", 1 * rtlab.MiB, files=MULTI)
    mirror_hash = expect_mirror(swarm, torrent)
    cfg = mirror_config(short_tmp, params_for(swarm, leecher, "name=m4-*", hash_chunk="64k"))
    args = ("--fg", "--config-dir", cfg, "-U", swarm.seeder.url, "-v")
    with DaemonProcess(*args, workdir=short_tmp) as daemon:
        daemon.wait_for(r"is mirrored: complete at 1 of 1", timeout=40)
        assert daemon.stop() == 0
        first = daemon.text()
    assert first.count("Hashing 'm4-multi'") == 1
    with DaemonProcess(*args, workdir=short_tmp) as daemon:
        daemon.wait_for(r"1 item\(s\) match, 1 mirrored before, 0 to mirror now", count=2)
        assert daemon.stop() == 0
        second = daemon.text()
    assert "Hashing" not in second and "Sent the mirror" not in second
    assert mirrors_of(swarm.seeder, torrent.infohash) == [mirror_hash]
    assert mirrors_of(leecher, torrent.infohash) == [mirror_hash]
    assert rtlab.same_payload(torrent.data, os.path.join(leecher.download_dir, torrent.name))


def test_the_mirror_custom_alone_keeps_an_item_from_being_mirrored_again(swarm, leecher,
                                                                        short_tmp, caplog):
    torrent = swarm.add_torrent("m5-single", 256 * 1024)
    swarm.seeder.proxy.d.custom.set(torrent.infohash, "mirror", "ELSEWHERE")
    job = mirror_job(short_tmp, swarm.seeder.url, **params_for(swarm, leecher, "name=m5-*"))
    text = run_until(job, lambda: True, caplog)
    assert "'m5-single' [#%s] is mirrored already (custom mirror=ELSEWHERE)" % torrent.infohash \
        in text
    assert mirrors_of(swarm.seeder, torrent.infohash) == []


def test_with_remove_mirrored_the_local_mirror_goes_once_every_remote_has_the_data(
        swarm, leecher, short_tmp, caplog):
    torrent = swarm.add_torrent("m8-single", 512 * 1024)
    mirror_hash = expect_mirror(swarm, torrent)
    job = mirror_job(short_tmp, swarm.seeder.url,
                     **params_for(swarm, leecher, "name=m8-*", remove_mirrored="yes"))
    text = run_until(job, mirrored(job, torrent.infohash), caplog)
    assert "Removed the local mirror of 'm8-single'" in text
    assert not swarm.seeder.has(mirror_hash) and complete_at(leecher, mirror_hash)
    assert swarm.seeder.proxy.d.complete(torrent.infohash) == 1
    assert rtlab.same_payload(torrent.data, os.path.join(leecher.download_dir, torrent.name))


def test_a_dry_run_says_what_it_would_mirror_and_touches_nothing(swarm, leecher, short_tmp,
                                                                caplog):
    torrent = swarm.add_torrent("m9-single", 256 * 1024)
    job = mirror_job(short_tmp, swarm.seeder.url, "-n", **params_for(swarm, leecher, "name=m9-*"))
    text = run_until(job, lambda: True, caplog)
    assert "WOULD mirror 'm9-single' [#%s] (256.0 KiB in 1 file(s))" % torrent.infohash in text
    assert mirrors_of(swarm.seeder, torrent.infohash) == []
    assert swarm.seeder.proxy.d.custom(torrent.infohash, "mirror") == ""
    assert not os.path.exists(job.state_path) and not os.path.exists(job.metafile_dir)


def test_a_mirror_that_would_equal_its_item_is_refused_unless_source_makes_it_differ(
        swarm, leecher, short_tmp, caplog):
    path = rtlab.make_payload(swarm.data_dir, "m10-private", 256 * 1024)
    private = rtlab.make_torrent(path, swarm.tracker.announce_url, PIECE, private=True)
    h = swarm.seeder.load_raw(private, "d.directory.set=" + swarm.data_dir, start=True)
    swarm.seeder.wait_for(lambda: complete_at(swarm.seeder, h), 10, what="the private item")
    job = mirror_job(short_tmp, swarm.seeder.url, **params_for(swarm, leecher, "hash=" + h))
    text = run_until(job, lambda: True, caplog) + run_until(job, lambda: True, caplog)
    assert "Mirroring 'm10-private' [#%s] failed: MetafileError: its mirror would have the " \
        "same info-hash as the item itself; set 'source' to make it differ (not tried again" \
        % h in text
    assert "its mirror failed before" in text and text.count("Hashing") == 1

    job = mirror_job(short_tmp / "again", swarm.seeder.url,
                     **params_for(swarm, leecher, "hash=" + h, source="mirror"))
    run_until(job, lambda: True, caplog)
    entry = job.state["mirrors"][h]
    with open(entry["metafile"], "rb") as handle:
        assert rtlab.bdecode(handle.read())[b"info"][b"source"] == b"mirror"
    assert entry["hash"] != h and mirrors_of(swarm.seeder, h) == [entry["hash"]]


# -- hashing in the main loop ----------------------------------------------------------------

class ServingLoop(pyrotorque.EventLoop):
    serving = True      # what _loop_turns asks: work is split into steps on this loop


def test_hashing_is_split_into_loop_steps_and_data_that_changes_meanwhile_fails_cleanly(
        swarm, leecher, short_tmp, caplog):
    torrent = swarm.add_torrent("m6-single", 1 * rtlab.MiB)
    job = mirror_job(short_tmp, swarm.seeder.url,
                     **params_for(swarm, leecher, "name=m6-*", hash_chunk="64k"))
    job.daemon = loop = ServingLoop()
    with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
        job.run()
        assert job._gen is not None, "run() returned before the hashing was done"
        loop.run_timers()       # one step of 64 KiB
        assert job._gen is not None
        os.utime(torrent.data, ns=(1, 1))       # same bytes, another mtime: it changed
        loop.run_until(lambda: job._gen is None)
    assert "changed while it was hashed (tried again in 600 s)" in caplog.text
    assert glob.glob(os.path.join(str(short_tmp), "cfg", "mirror-mirror", "*")) == []
    assert not os.path.exists(job.state_path)
    assert mirrors_of(swarm.seeder, torrent.infohash) == []
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
        job.run()
    assert "waits 5" in caplog.text and job._gen is None
    loop.close()


# -- nothing can be injected -----------------------------------------------------------------

HOSTILE = "m7 \"q' $(touch PWN1) ;execute.nothrow=touch,PWN2;\n{a,b} end"


def test_a_hostile_item_name_and_remote_dir_inject_nothing(swarm, leecher, short_tmp, caplog):
    torrent = swarm.add_torrent(HOSTILE, 1 * rtlab.MiB, files=MULTI)
    mirror_hash = expect_mirror(swarm, torrent)
    into = os.path.join(leecher.dir, "in \";execute.nothrow=touch,PWN3;$(x)")
    os.mkdir(into)          # rTorrent makes only the item's own folder in it
    job = mirror_job(short_tmp, swarm.seeder.url,
                     **params_for(swarm, leecher, "hash=" + torrent.infohash, remote_dir=into))
    text = run_until(job, mirrored(job, torrent.infohash), caplog)
    assert complete_at(leecher, mirror_hash)
    assert rtlab.same_payload(torrent.data, os.path.join(into, HOSTILE))
    assert swarm.seeder.proxy.d.base_path(mirror_hash) == torrent.data
    for folder in (swarm.root, leecher.dir, str(short_tmp), os.getcwd()):
        for found in glob.glob(os.path.join(folder, "**", "PWN*"), recursive=True):
            pytest.fail("a command was injected: %s exists" % found)
    assert "\n{a,b}" not in text and "m7 \"q' $(touch PWN1) ;execute" in text


# -- configuration ---------------------------------------------------------------------------

GOOD = {"matcher": "name=x", "tracker": "http://127.0.0.1:6969/announce",
        "remotes": "scgi:///tmp/remote.sock"}

BAD_CONFIGS = [
    ({"matcher": ""}, "matcher: you need to set 'job.m.matcher'"),
    ({"matcher": "size>"}, "matcher: "),
    ({"tracker": ""}, "tracker: you need to set 'job.m.tracker'"),
    ({"tracker": "/announce"}, "tracker: '/announce' is not an announce URL"),
    ({"remotes": ""}, "remotes: you need to set 'job.m.remotes'"),
    ({"remotes": "scgi:///a.sock, ftp://host/x"}, "unsupported scheme 'ftp'"),
]


def build(**params):
    config = pyrotorque.Bunch({name: default for name, (_, default, _)
                               in pyrotorque.TorrentMirror.PARAMS.items()})
    config.update(GOOD, job_name="m", **params)
    return pyrotorque.TorrentMirror(config)


@pytest.mark.parametrize("params, message", BAD_CONFIGS)
def test_a_bad_config_is_refused_with_the_key_it_is_about(params, message):
    with pytest.raises(pyrotorque.ConfigError) as caught:
        build(**params)
    assert message in str(caught.value)


README_EXAMPLE = """\
[TORQUE]
job.connstats.active = no
job.queue.active = no
job.treewatch.active = no
job.mirror.handler   = pyrotorque:TorrentMirror
job.mirror.schedule  = second=*/30
job.mirror.matcher   = tagged=mirror
job.mirror.tracker   = http://192.0.2.10:6969/announce
job.mirror.remotes   = scgi://192.0.2.20:5000
                       https://user:secret@nas.example/RPC2
job.mirror.remote_dir = /srv/torrent/from-seedbox
"""


def test_the_readme_example_builds_a_mirror_with_two_remotes(short_tmp):
    cfg = short_tmp / "cfg"
    cfg.mkdir()
    (cfg / "torque.ini").write_text(README_EXAMPLE)
    options = pyrotorque._parse_options(["--fg", "--config-dir", str(cfg), "-U", "/nowhere"])
    settings = pyrotorque.load_settings(str(cfg))
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    job = jobs["mirror"].job
    assert job.remote_urls == ["scgi://192.0.2.20:5000", "https://user:secret@nas.example/RPC2"]
    assert job.remote_dir == "/srv/torrent/from-seedbox" and job.max_items == 1
    assert job.state_path == os.path.join(str(cfg), "run", "mirror-mirror.json")


def test_a_remote_password_never_shows_in_the_log(short_tmp, caplog):
    with caplog.at_level(logging.DEBUG, logger="pyrotorque"):
        job = build(remotes="https://user:s3cret@127.0.0.1:9/RPC2")
        with pytest.raises(pyrotorque.RtorrentUnavailable):
            job.remotes["https://user:s3cret@127.0.0.1:9/RPC2"].call("system.pid")
    assert "https://user:***@127.0.0.1:9/RPC2" in caplog.text and "s3cret" not in caplog.text


def test_remotes_may_be_separated_by_commas_spaces_or_lines_and_take_every_url_form():
    job = build(remotes="scgi:///tmp/a.sock, scgi://127.0.0.1:5000\n  http://127.0.0.1:80/RPC2")
    assert [proxy.endpoint.kind for proxy in job.remotes.values()] == ["unix", "tcp", "http"]


PIECE_SIZES = [("auto", 0), ("", 0), ("256k", 256 * 1024), ("16K", 16 * 1024),
               ("64m", 64 * 1024 * 1024), ("4M", 4 * 1024 * 1024)]
BAD_PIECE_SIZES = ["8k", "300k", "128m", "lots"]


@pytest.mark.parametrize("text, size", PIECE_SIZES)
def test_piece_size_is_auto_or_a_power_of_two(text, size):
    assert pyrotorque.TorrentMirror.PARAMS["piece_size"][0](text) == size


@pytest.mark.parametrize("text", BAD_PIECE_SIZES)
def test_other_piece_sizes_are_refused(text):
    with pytest.raises(pyrotorque.ConfigError):
        pyrotorque.TorrentMirror.PARAMS["piece_size"][0](text)


AUTO_PIECES = [(0, 32 * 1024), (1, 32 * 1024), (64 * 1024 * 1024, 32 * 1024),
               (64 * 1024 * 1024 + 1, 64 * 1024), (4 * 1024 ** 3, 2 * 1024 * 1024),
               (1024 ** 4, 16 * 1024 * 1024)]


@pytest.mark.parametrize("total, size", AUTO_PIECES)
def test_automatic_piece_sizes_aim_at_about_two_thousand_pieces(total, size):
    assert pyrotorque.mirror_piece_size(total) == size
