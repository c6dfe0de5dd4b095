"""Erased stays erased, nothing is lost: what the tree watch remembers across runs and
restarts, items tied to their metafile, and a watch root that appears late (real rTorrent)."""
import json
import os
import time

import daemon_process
import rtlab
from helpers import daemon_config, hashes, logged, make_watch, metafile, wait_loaded, write


def memory(short_tmp):
    return str(short_tmp / "run" / "treewatch.json")


def test_items_are_tied_to_their_metafile_and_hostile_paths_stay_literal(lab, short_tmp):
    loop, rt, root = lab
    make_watch(loop, rt, root, memory_file=memory(short_tmp))
    loop.idle(0.1)
    path = root / "a,b;d.erase=$x" / "q\"uo'te (1).torrent"
    info_hash = write(str(path), metafile("tied"))
    wait_loaded(loop, rt, [info_hash])
    assert rt.proxy.d.tied_to_file(info_hash) == str(path)


def test_an_erased_item_is_not_loaded_again_at_the_next_run_nor_after_a_restart(lab, short_tmp,
                                                                                  caplog):
    loop, rt, root = lab
    watch = make_watch(loop, rt, root, memory_file=memory(short_tmp))
    loop.idle(0.1)
    keep = write(str(root / "keep.torrent"), metafile("keep"))
    gone = write(str(root / "sub" / "gone.torrent"), metafile("gone"))
    wait_loaded(loop, rt, [keep, gone])
    loop.pump(lambda: len(logged(caplog, "^Loaded ")) == 2, 5, "both reported")
    rt.proxy.d.erase(gone)
    watch.run()
    loop.idle(1.2)          # the memory is written within a second
    assert hashes(rt) == [keep]
    remembered = json.load(open(memory(short_tmp)))["files"]
    assert sorted(remembered) == sorted([str(root / "keep.torrent"), str(root / "sub" / "gone.torrent")])
    assert remembered[str(root / "sub" / "gone.torrent")][:2] == [gone, "loaded"]
    watch.close()

    # Down: a file arrives, and the erased one is touched (same content, new mtime).
    late = write(str(root / "late.torrent"), metafile("late"), mtime=time.time() - 60)
    os.utime(root / "sub" / "gone.torrent")
    # Changed: another metafile at a remembered path is a new file.
    os.unlink(root / "keep.torrent")
    rt.proxy.d.erase(keep)
    changed = write(str(root / "keep.torrent"), metafile("keep, second edition"))
    caplog.clear()
    watch = make_watch(loop, rt, root, memory_file=memory(short_tmp))
    wait_loaded(loop, rt, [late, changed])
    watch.run()
    loop.idle(0.5)
    assert sorted(hashes(rt)) == sorted([late, changed])
    assert logged(caplog, r"keep.torrent changed \(#%s before, #%s now\)" % (keep, changed))
    assert logged(caplog, r"gone.torrent: its item #%s was in rTorrent before" % gone)


def test_a_scheduled_run_asks_rtorrent_nothing_when_no_file_is_new(lab, short_tmp):
    loop, rt, root = lab
    want = [write(str(root / ("f%d.torrent" % i)), metafile("f%d" % i)) for i in range(20)]
    watch = make_watch(loop, rt, root, memory_file=memory(short_tmp))
    wait_loaded(loop, rt, want)
    loop.idle(0.2)
    before = watch.proxy.stats.calls
    for _ in range(5):
        watch.run()
        loop.idle(0.05)
    assert watch.proxy.stats.calls == before


def test_with_the_delete_tied_hook_erasing_removes_the_metafile(short_tmp, script):
    hook = "method.set_key = event.download.erased,delete_tied,d.delete_tied="
    with rtlab.RTorrent(extra_rc=[hook]) as rt:
        root = short_tmp / "watch"
        root.mkdir()
        cfg = daemon_config(short_tmp, root, "job.treewatch.schedule = second=*\n")
        args = ("--fg", "-v", "--config-dir", cfg, "-U", rt.url)
        with daemon_process.DaemonProcess(*args, workdir=short_tmp) as daemon:
            daemon.wait_for(r"Watching .* with inotify")
            info_hash = write(str(root / "hooked.torrent"), metafile("hooked"))
            daemon.wait_for(r"Loaded 'hooked'")
            rt.proxy.d.erase(info_hash)
            rt.wait_for(lambda: not os.path.exists(root / "hooked.torrent"), 5)
            daemon.wait_for(r"Scan \(scheduled run\)", count=2)
            assert daemon.stop() == 0
            assert rt.downloads("d.hash=") == []


def test_a_watch_root_created_after_start_is_watched_and_caught_up(rtorrent, short_tmp, script):
    root = short_tmp / "late" / "mount"
    cfg = daemon_config(short_tmp, root)
    args = ("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url)
    with daemon_process.DaemonProcess(*args, workdir=short_tmp) as daemon:
        found = daemon.wait_for(r"WARNING.*torque.ini:\d+: job.treewatch.path: the folder \S+ "
                                r"does not exist \(yet\)")
        assert "torque.ini.default" not in found[0]
        daemon.wait_for(r"Watching ")
        os.makedirs(root)
        early = write(str(root / "early.torrent"), metafile("early"))
        daemon.wait_for(r"Watched folder .* is there now", timeout=10)
        later = write(str(root / "sub" / "later.torrent"), metafile("later"))
        rtorrent.wait_for(lambda: {early, later} <= set(hashes(rtorrent)), 10, 0.1, "both loaded")
        assert daemon.process.poll() is None
        assert daemon.stop() == 0


def test_a_metafile_deleted_and_put_back_loads_again_while_a_moved_one_stays_erased(
        lab, short_tmp, caplog):
    loop, rt, root = lab
    (root / "sub").mkdir()
    watch = make_watch(loop, rt, root, memory_file=memory(short_tmp))
    loop.idle(0.1)
    back = write(str(root / "back.torrent"), metafile("back"))
    moved = write(str(root / "moved.torrent"), metafile("moved"))
    wait_loaded(loop, rt, [back, moved])
    loop.pump(lambda: len(logged(caplog, "^Loaded ")) == 2, 5, "both reported")
    rt.proxy.d.erase(back)
    rt.proxy.d.erase(moved)
    # Deleted (as rTorrent's delete_tied does) and put there again: a new file, loaded.
    os.unlink(root / "back.torrent")
    loop.idle(0.1)
    write(str(root / "back.torrent"), metafile("back"))
    # Moved inside the tree: the same file, and its item stays erased.
    os.rename(root / "moved.torrent", root / "sub" / "moved-here.torrent")
    wait_loaded(loop, rt, [back])
    watch.run()
    loop.idle(1.2)
    assert hashes(rt) == [back]
    remembered = json.load(open(memory(short_tmp)))["files"]
    assert sorted(remembered) == [str(root / "back.torrent"), str(root / "sub" / "moved-here.torrent")]
    watch.close()
    watch = make_watch(loop, rt, root, memory_file=memory(short_tmp))
    loop.idle(0.5)
    watch.run()
    loop.idle(0.3)
    assert hashes(rt) == [back]


def test_with_remove_loaded_the_memory_keeps_nothing(lab, short_tmp):
    loop, rt, root = lab
    watch = make_watch(loop, rt, root, memory_file=memory(short_tmp), remove_loaded="True")
    loop.idle(0.1)
    first = write(str(root / "once.torrent"), metafile("once"))
    wait_loaded(loop, rt, [first])
    loop.pump(lambda: not os.path.exists(root / "once.torrent"), 5, "the file removed")
    assert rt.proxy.d.tied_to_file(first) == ""         # nothing to tie to: it goes
    rt.proxy.d.erase(first)
    # The same metafile dropped again (after the user erased the item) loads again.
    write(str(root / "once.torrent"), metafile("once"))
    wait_loaded(loop, rt, [first])
    watch.close()
    assert not os.path.exists(memory(short_tmp)) or \
        json.load(open(memory(short_tmp)))["files"] == {}


def test_check_reads_no_memory_file_and_leaves_a_corrupt_one_where_it_is(rtorrent, short_tmp):
    root = short_tmp / "watched"
    root.mkdir()
    cfg = daemon_config(short_tmp, root)
    path = os.path.join(cfg, "run", "treewatch-treewatch.json")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write("{not json")
    code, out, err = daemon_process.run_cli("--check", "--config-dir", cfg, "-U", rtorrent.url)
    assert code == 0, out + err
    assert open(path).read() == "{not json" and not os.path.exists(path + ".bad")
