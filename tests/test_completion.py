"""CompletionHandler against a real rTorrent 0.9.8 and a real local swarm."""
import hashlib
import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile

import pytest

import daemon_process
import pyrotorque
from daemon_process import DaemonProcess

import rtlab  # conftest puts contrib/ on sys.path

DEAD_TRACKER = "http://127.0.0.1:9/announce"
MULTI = ["a.bin", "sub/b.bin", "c.txt"]


@pytest.fixture
def other_fs(short_tmp):
    """A folder on another filesystem than /tmp: a fresh tmpfs if we may mount one, else
    /dev/shm if that is another filesystem; else the test is skipped, saying why."""
    mount = short_tmp / "otherfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode == 0:
        try:
            yield mount
        finally:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        return
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(short_tmp).st_dev:
        folder = tempfile.mkdtemp(prefix="ptc", dir="/dev/shm")
        try:
            yield pathlib.Path(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    pytest.skip("no second filesystem: 'mount -t tmpfs' failed (%s) and /dev/shm is on the "
                "same filesystem as /tmp" % done.stderr.strip())


def write_config(tmp, params, name="done", extra=()):
    return daemon_process.torque_config(tmp, {name: params}, "pyrotorque:CompletionHandler", extra)


def completion_job(tmp, url, **params):
    """A CompletionHandler built the way the daemon builds it, from torque.ini text."""
    cfg = write_config(tmp, params)
    options = pyrotorque._parse_options(["--fg", "--config-dir", cfg, "-U", url])
    settings = pyrotorque.load_settings(cfg)
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    return jobs["done"].job


def run(job, caplog, level=logging.DEBUG):
    caplog.clear()
    with caplog.at_level(level, logger="pyrotorque"):
        job.run()
    return caplog.text


def idle(rt, h):
    return rt.proxy.d.hashing(h) == 0 and rt.proxy.d.is_hash_checking(h) == 0


def complete_item(rt, folder, name, size=256 * 1024, files=None, commands=()):
    """A started item whose data is there (dead tracker): complete once checked."""
    path = rtlab.make_payload(str(folder), name, size, files=files)
    h = rt.load_raw(rtlab.make_torrent(path, DEAD_TRACKER), "d.directory.set=" + str(folder),
                    *commands, start=True)
    rt.wait_for(lambda: rt.proxy.d.complete(h) == 1 and idle(rt, h), 20, 0.02,
                "%s to be complete" % name)
    return h, path


def reference(tmp, name, size=256 * 1024, files=None):
    """The same payload again, elsewhere: what the moved data must equal."""
    folder = os.path.join(str(tmp), "ref")
    if os.path.exists(os.path.join(folder, name)):
        return os.path.join(folder, name)
    return rtlab.make_payload(folder, name, size, files=files)


def assert_seeding_from(rt, h, path):
    """rTorrent points at ``path``, and the item is started, complete and not checking."""
    p = rt.proxy
    rt.wait_for(lambda: p.d.is_active(h) == 1 and idle(rt, h), 10, 0.02, "seeding again")
    assert p.d.base_path(h) == str(path)
    assert p.d.complete(h) == 1 and p.d.state(h) == 1


def leftovers(*folders):
    return [name for folder in folders for name in os.listdir(str(folder))
            if name.startswith(".pyrotorque-")]


# -- moves that keep seeding ----------------------------------------------------------------

def test_completed_downloads_move_and_a_new_leecher_downloads_from_the_moved_data(
        fresh_swarm, short_tmp, caplog):
    done = short_tmp / "done"
    leecher = fresh_swarm.start_leecher()
    hashes = {}
    for name in ("single", "multi"):
        hashes[name] = leecher.load_raw(fresh_swarm.torrents[name].raw,
                                        "d.custom.set=targetdir," + str(done), start=True)
    leecher.wait_for(lambda: all(leecher.proxy.d.complete(h) == 1 and idle(leecher, h)
                                 for h in hashes.values()), 30, 0.05, "the downloads")
    job = completion_job(short_tmp, leecher.url)
    text = run(job, caplog)
    for name, h in hashes.items():
        moved = done / name
        assert "Moved '%s' [#%s] to %s (rename" % (name, h, moved) in text, text
        assert not os.path.exists(os.path.join(leecher.download_dir, name))
        assert rtlab.same_payload(fresh_swarm.torrents[name].data, str(moved))
        assert_seeding_from(leecher, h, moved)
    assert not os.path.exists(job.journal) and not leftovers(done, leecher.download_dir)
    assert "rTorrent says its data is at" not in text, text

    # Only the moved copy seeds now; a new leecher gets all of it from there.
    seeder = fresh_swarm.seeder
    for h in hashes.values():
        seeder.wait_for(lambda: idle(seeder, h), 10, 0.02, "the seeder to be idle")
        seeder.proxy.d.stop(h)
        seeder.proxy.d.close(h)
    second = fresh_swarm.start_leecher()
    for name in hashes:
        second.load_raw(fresh_swarm.torrents[name].raw, start=True)
    second.wait_for(lambda: all(second.proxy.d.complete(h) == 1 for h in hashes.values()),
                    30, 0.05, "the second leecher to download from the moved data")
    for name in hashes:
        assert rtlab.same_payload(os.path.join(second.download_dir, name), str(done / name))
    assert "moved" not in run(job, caplog).lower()      # idempotent: all are at the target


def test_target_template_with_relpath_and_the_move_happens_once(rtorrent, short_tmp, caplog):
    folder = os.path.join(rtorrent.download_dir, "tv")
    h, path = complete_item(rtorrent, folder, "show.s01e01", files=MULTI)
    stopped, spath = complete_item(rtorrent, folder, "plain.bin")
    rtorrent.proxy.d.stop(stopped)
    rtorrent.proxy.d.close(stopped)
    sorted_dir = short_tmp / "sorted"
    job = completion_job(short_tmp, rtorrent.url,
                         target="%s/{{relpath}}/{{name.upper()}}" % sorted_dir)
    text = run(job, caplog)
    target = sorted_dir / "tv" / "SHOW.S01E01" / "show.s01e01"
    assert rtlab.same_payload(reference(short_tmp, "show.s01e01", files=MULTI), str(target))
    assert not os.path.exists(path)
    assert_seeding_from(rtorrent, h, target)
    assert rtorrent.proxy.d.custom(h, "targetdir") == str(target.parent)
    # A stopped, closed item stays stopped and closed, and rTorrent knows the new place.
    moved = sorted_dir / "tv" / "PLAIN.BIN" / "plain.bin"
    assert os.path.isfile(str(moved)) and not os.path.exists(spath), text
    p = rtorrent.proxy
    assert (p.d.state(stopped), p.d.is_open(stopped)) == (0, 0)
    assert p.d.base_path(stopped) == str(moved) and p.d.directory(stopped) == str(moved.parent)
    # relpath is now '' (the data left the download folder), but the move happens once.
    text = run(job, caplog)
    assert "is at its target %s already" % target.parent in text
    assert "Moving" not in text and os.path.exists(str(target))


def test_rtorrent_killed_right_after_a_move_comes_back_pointing_at_the_new_place(
        rtorrent, short_tmp, caplog):
    h, path = complete_item(rtorrent, os.path.join(rtorrent.download_dir, "in"), "kept.bin")
    done = short_tmp / "done"
    job = completion_job(short_tmp, rtorrent.url, target=str(done))
    text = run(job, caplog)
    assert "Moved 'kept.bin'" in text, text
    # rTorrent 0.16 writes the session file a moment after the call, 0.9.8 at once
    state = os.path.join(rtorrent.session_dir, h + ".torrent.rtorrent")

    def saved():
        with open(state, "rb") as handle:
            return rtlab.bdecode(handle.read()).get(b"directory") == str(done).encode()

    rtorrent.wait_for(saved, 5, 0.05, "the session file to hold the new directory")
    rtorrent.kill()         # no session save of its own: rTorrent saves every 20 minutes
    rtorrent.start()
    assert rtorrent.proxy.d.directory(h) == str(done)
    assert rtorrent.proxy.d.custom(h, "targetdir") == str(done)
    assert os.path.isfile(str(done / "kept.bin")) and not os.path.exists(path)


def test_an_existing_target_is_never_overwritten(rtorrent, short_tmp, caplog):
    done = short_tmp / "done"
    done.mkdir()
    (done / "keep.bin").write_bytes(b"somebody else's file")
    h, path = complete_item(rtorrent, short_tmp / "data", "keep.bin",
                            commands=["d.custom.set=targetdir,%s" % done])
    job = completion_job(short_tmp, rtorrent.url)
    text = run(job, caplog)
    assert "waits: %s exists already (a move never replaces anything)" % (done / "keep.bin") \
        in text, text
    assert (done / "keep.bin").read_bytes() == b"somebody else's file"
    assert rtlab.same_payload(reference(short_tmp, "keep.bin"), path)
    assert rtorrent.proxy.d.is_active(h) == 1 and rtorrent.proxy.d.base_path(h) == path
    assert not leftovers(done) and not os.path.exists(job.journal)


def test_dry_run_moves_nothing(rtorrent, short_tmp, caplog):
    done = short_tmp / "done"
    h, path = complete_item(rtorrent, short_tmp / "data", "dry.bin",
                            commands=["d.custom.set=targetdir,%s" % done])
    job = completion_job(short_tmp, rtorrent.url, dry_run="True")
    text = run(job, caplog)
    assert "WOULD move 'dry.bin' [#%s] from %s to %s" % (h, path, done / "dry.bin") in text
    assert os.path.isfile(path) and not done.exists() and not os.path.exists(job.journal)
    assert rtorrent.proxy.d.is_active(h) == 1


def test_hash_checking_items_wait_until_the_check_ends(rtorrent, short_tmp, caplog):
    data = short_tmp / "sparse"
    data.mkdir()
    size, piece = 384 * rtlab.MiB, 4 * rtlab.MiB
    with open(str(data / "zeros.bin"), "wb") as handle:
        handle.truncate(size)
    meta = rtlab.bencode({"announce": DEAD_TRACKER, "info": {
        "name": "zeros.bin", "piece length": piece, "length": size,
        "pieces": hashlib.sha1(bytes(piece)).digest() * (size // piece)}})
    done = short_tmp / "done"
    h = rtorrent.load_raw(meta, "d.directory.set=%s" % data,
                          "d.custom.set=targetdir,%s" % done, start=True)
    rtorrent.wait_for(lambda: rtorrent.proxy.d.complete(h) == 1 and idle(rtorrent, h), 60)
    job = completion_job(short_tmp, rtorrent.url)
    for _ in range(5):
        rtorrent.proxy.d.check_hash(h)
        text = run(job, caplog)
        if not idle(rtorrent, h):       # still checking after the run: the run saw it
            break
        rtorrent.wait_for(lambda: idle(rtorrent, h), 30, 0.02)
    else:
        pytest.fail("the hash check always ended before the run looked")
    assert "'zeros.bin' [#%s] waits: it is hash-checking" % h in text, text
    assert (data / "zeros.bin").exists() and not done.exists()
    rtorrent.wait_for(lambda: idle(rtorrent, h), 30, 0.02, "the hash check to end")
    text = run(job, caplog)
    assert "Moved 'zeros.bin'" in text, text
    assert_seeding_from(rtorrent, h, done / "zeros.bin")


# -- across filesystems ---------------------------------------------------------------------

def test_cross_filesystem_move_copies_verifies_then_deletes(rtorrent, short_tmp, other_fs,
                                                             caplog):
    assert os.stat(str(other_fs)).st_dev != os.stat(str(short_tmp)).st_dev
    done = other_fs / "done"
    h, path = complete_item(rtorrent, short_tmp / "data", "multi", 3 * rtlab.MiB, files=MULTI,
                            commands=["d.custom.set=targetdir,%s" % done])
    single, spath = complete_item(rtorrent, short_tmp / "data", "single.bin", 2 * rtlab.MiB,
                                  commands=["d.custom.set=targetdir,%s" % done])
    mtime = os.stat(spath).st_mtime_ns
    job = completion_job(short_tmp, rtorrent.url, copy_chunk="1M")
    text = run(job, caplog)
    assert "copying across filesystems" in text and "copy of 3.0 MiB verified" in text, text
    assert rtlab.same_payload(reference(short_tmp, "multi", 3 * rtlab.MiB, MULTI),
                              str(done / "multi"))
    assert rtlab.same_payload(reference(short_tmp, "single.bin", 2 * rtlab.MiB),
                              str(done / "single.bin"))
    assert os.stat(str(done / "single.bin")).st_mtime_ns == mtime     # no re-check needed
    assert not os.path.exists(path) and not os.path.exists(spath)
    assert not leftovers(done, short_tmp / "data") and not os.path.exists(job.journal)
    assert_seeding_from(rtorrent, h, done / "multi")
    assert_seeding_from(rtorrent, single, done / "single.bin")


def journal_of(job, entry):
    os.makedirs(os.path.dirname(job.journal), exist_ok=True)
    with open(job.journal, "w") as handle:
        json.dump({"version": 1, "move": entry}, handle)


@pytest.mark.parametrize("phase", ["rename", "copy", "place", "delete", "point"])
def test_a_journalled_move_is_finished_or_rolled_back(rtorrent, short_tmp, other_fs, caplog,
                                                      phase):
    """The states a crash in each phase leaves behind, made by hand: the next run makes the
    data whole in one place, and rTorrent seeds it from there."""
    done = (short_tmp if phase == "rename" else other_fs) / "done"
    done.mkdir()
    h, path = complete_item(rtorrent, short_tmp / "data", "multi", 2 * rtlab.MiB, files=MULTI,
                            commands=["d.custom.set=targetdir,%s" % done])
    rtorrent.proxy.d.stop(h)
    rtorrent.proxy.d.close(h)
    target, partial = done / "multi", done / (".pyrotorque-partial-" + h)
    deleting = short_tmp / "data" / (".pyrotorque-deleting-" + h)
    if phase == "rename":
        os.rename(path, str(target))
    elif phase == "copy":       # cut short: one file of three copied
        os.makedirs(str(partial))
        shutil.copy2(os.path.join(path, "a.bin"), str(partial / "a.bin"))
    elif phase == "place":      # copied and verified, not yet in place
        shutil.copytree(path, str(partial))
    elif phase == "delete":     # in place; the source half deleted
        shutil.copytree(path, str(target))
        os.rename(path, str(deleting))
        os.unlink(str(deleting / "a.bin"))
    elif phase == "point":      # in place, source gone, rTorrent not told yet
        shutil.copytree(path, str(target))
        shutil.rmtree(path)
    job = completion_job(short_tmp, rtorrent.url)
    journal_of(job, {"hash": h, "name": "multi", "multi": True, "source": path,
                     "target": str(target), "target_dir": str(done), "partial": str(partial),
                     "deleting": str(deleting), "phase": phase, "was": "started"})
    text = run(job, caplog)
    if phase == "copy":
        assert "Rolled back the move of 'multi' [#%s]" % h in text, text
        assert "Moved 'multi' [#%s] to %s (copy" % (h, target) in text, text
    else:
        assert "Finished the move of 'multi' [#%s]" % h in text, text
    assert rtlab.same_payload(reference(short_tmp, "multi", 2 * rtlab.MiB, MULTI), str(target))
    assert not os.path.exists(path) and not deleting.exists() and not partial.exists()
    assert not os.path.exists(job.journal) and not leftovers(done, short_tmp / "data")
    assert_seeding_from(rtorrent, h, target)


def test_a_copy_that_cannot_fit_is_rolled_back_and_logged(rtorrent, short_tmp, caplog):
    small = short_tmp / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        h, path = complete_item(rtorrent, short_tmp / "data", "fat.bin", 2 * rtlab.MiB,
                                commands=["d.custom.set=targetdir,%s" % small])
        job = completion_job(short_tmp, rtorrent.url)
        text = run(job, caplog)
        assert "failed in phase 'copy': OSError: [Errno 28]" in text, text
        assert "Rolled back the move of 'fat.bin'" in text
        assert not leftovers(small) and not os.path.exists(job.journal)
        assert_seeding_from(rtorrent, h, path)
        assert "its last move failed" in run(job, caplog)     # not again at once
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


# -- SIGKILL in the middle of a copy --------------------------------------------------------

def test_sigkill_mid_copy_then_restart_leaves_the_data_whole_in_one_place(
        rtorrent, short_tmp, other_fs):
    done = other_fs / "done"
    size = 12 * rtlab.MiB
    h, path = complete_item(rtorrent, short_tmp / "data", "big", size, files=MULTI,
                            commands=["d.custom.set=targetdir,%s" % done])
    cfg = write_config(short_tmp, {"copy_chunk": "256k", "copy_rate": "2M"})
    journal = os.path.join(cfg, "run", "completion-done.json")
    partial = done / (".pyrotorque-partial-" + h)

    def copied():
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(str(partial))
                   for f in fs) if partial.exists() else 0

    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(r"copying across filesystems", timeout=15)
        rtlab.wait_for(lambda: copied() >= 2 * rtlab.MiB, 10, 0.05, "some bytes copied")
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.process.wait()
    with open(journal) as handle:
        assert json.load(handle)["move"]["phase"] == "copy"
    assert 0 < copied() < size
    assert rtlab.same_payload(reference(short_tmp, "big", size, MULTI), path)   # whole
    assert rtorrent.proxy.d.state(h) == 0       # stopped for the move

    write_config(short_tmp, {"copy_chunk": "4M"})
    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(r"Rolled back the move of 'big'", timeout=15)
        daemon.wait_for(r"Moved 'big' \[#%s\] to " % h, timeout=20)
        assert daemon.stop() == 0
    text = daemon.text()
    assert text.index("Rolled back") < text.index("Moved 'big'")
    assert "rTorrent says its data is at" not in text, text
    assert rtlab.same_payload(reference(short_tmp, "big", size, MULTI), str(done / "big"))
    assert not os.path.exists(path) and not partial.exists() and not os.path.exists(journal)
    assert_seeding_from(rtorrent, h, done / "big")


def test_sigterm_mid_copy_rolls_back_and_the_loop_kept_turning(rtorrent, short_tmp, other_fs):
    done = other_fs / "done"
    size = 8 * rtlab.MiB
    h, path = complete_item(rtorrent, short_tmp / "data", "slow.bin", size,
                            commands=["d.custom.set=targetdir,%s" % done])
    cfg = write_config(short_tmp, {"copy_chunk": "256k", "copy_rate": "1M"}, extra=[
        "job.tick.handler = pyrotorque:ExecCommand", "job.tick.schedule = second=*",
        "job.tick.command = echo tick"])
    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(r"copying across filesystems", timeout=15)
        before = daemon.text().count("out] tick")
        daemon.wait_for(r"out\] tick", count=before + 2, timeout=10)   # ticks during the copy
        assert "Moved" not in daemon.text()
        assert daemon.stop() == 0
    text = daemon.text()
    assert "Closing during the move of 'slow.bin' [#%s] (phase 'copy')" % h in text, text
    assert "Rolled back the move of 'slow.bin'" in text
    assert rtlab.same_payload(reference(short_tmp, "slow.bin", size), path)
    assert not leftovers(done) and not os.listdir(os.path.join(cfg, "run"))
    assert_seeding_from(rtorrent, h, path)
