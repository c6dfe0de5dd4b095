"""The ctypes inotify binding on a temp dir: events, masks, overflow, errors."""
import ctypes
import errno
import os
import select

import pytest

import pyrotorque
from pyrotorque import (IN_CLOSE_WRITE, IN_CREATE, IN_DELETE_SELF, IN_IGNORED, IN_ISDIR,
                        IN_MOVED_FROM, IN_MOVED_TO, IN_ONLYDIR, IN_Q_OVERFLOW, INotify)

MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE_SELF


@pytest.fixture
def ino():
    with INotify() as instance:
        yield instance


def events(ino, timeout=1.0):
    select.select([ino], [], [], timeout)
    return ino.read()


def test_reading_with_nothing_queued_returns_at_once(ino):
    assert ino.read() == []
    assert ino.fileno() >= 0
    assert os.get_inheritable(ino.fileno()) is False


def test_cp_mv_mkdir_link_and_symlink_events(ino, tmp_path):
    wd = ino.add_watch(str(tmp_path), MASK)
    (tmp_path / "a.torrent").write_bytes(b"x")
    outside = tmp_path.parent / ("o-%s" % tmp_path.name)
    outside.write_bytes(b"y")
    os.rename(outside, tmp_path / "b.torrent")
    (tmp_path / "dir").mkdir()
    os.link(tmp_path / "a.torrent", tmp_path / "hard.torrent")
    os.symlink(tmp_path / "a.torrent", tmp_path / "soft.torrent")
    seen = [(e.wd, e.flags(), e.name) for e in events(ino)]
    assert (wd, ["IN_CREATE"], "a.torrent") in seen
    assert (wd, ["IN_CLOSE_WRITE"], "a.torrent") in seen
    assert (wd, ["IN_MOVED_TO"], "b.torrent") in seen
    assert (wd, ["IN_CREATE", "IN_ISDIR"], "dir") in seen
    assert (wd, ["IN_CREATE"], "hard.torrent") in seen
    assert (wd, ["IN_CREATE"], "soft.torrent") in seen
    assert not [s for s in seen if s[2] in ("hard.torrent", "soft.torrent") and s[1] != ["IN_CREATE"]]


def test_a_rename_inside_is_a_pair_with_one_cookie(ino, tmp_path):
    ino.add_watch(str(tmp_path), MASK)
    (tmp_path / "d").mkdir()
    events(ino)
    os.rename(tmp_path / "d", tmp_path / "e")
    got = events(ino)
    moved_from = [e for e in got if e.mask & IN_MOVED_FROM]
    moved_to = [e for e in got if e.mask & IN_MOVED_TO]
    assert moved_from[0].mask & IN_ISDIR and moved_from[0].name == "d"
    assert moved_to[0].name == "e" and moved_to[0].cookie == moved_from[0].cookie != 0


def test_removing_a_dir_and_rm_watch_give_ignored(ino, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    wd = ino.add_watch(str(sub), MASK)
    sub.rmdir()
    got = events(ino)
    assert [e.mask & (IN_DELETE_SELF | IN_IGNORED) for e in got if e.wd == wd] == \
        [IN_DELETE_SELF, IN_IGNORED]
    wd2 = ino.add_watch(str(tmp_path), MASK)
    ino.rm_watch(wd2)
    assert [e.mask for e in events(ino)] == [IN_IGNORED]
    with pytest.raises(OSError) as info:
        ino.rm_watch(wd2)
    assert info.value.errno == errno.EINVAL


def test_the_same_inode_gives_the_same_wd(ino, tmp_path):
    os.symlink(tmp_path, str(tmp_path) + "-link")
    try:
        assert ino.add_watch(str(tmp_path), MASK) == ino.add_watch(str(tmp_path) + "-link", MASK)
    finally:
        os.unlink(str(tmp_path) + "-link")


def test_errors_name_the_path_and_onlydir_refuses_files(ino, tmp_path):
    with pytest.raises(OSError) as info:
        ino.add_watch(str(tmp_path / "missing"), MASK)
    assert info.value.errno == errno.ENOENT and info.value.filename.endswith("missing")
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(OSError) as info:
        ino.add_watch(str(tmp_path / "f"), MASK | IN_ONLYDIR)
    assert info.value.errno == errno.ENOTDIR


def test_names_that_are_not_utf8_come_back_as_surrogates(ino, tmp_path):
    ino.add_watch(str(tmp_path), MASK)
    with open(os.path.join(os.fsencode(str(tmp_path)), b"x\xff.torrent"), "wb"):
        pass
    names = {e.name for e in events(ino)}
    assert "x\udcff.torrent" in names
    assert os.fsencode("x\udcff.torrent") == b"x\xff.torrent"


def test_overflow_is_an_event_with_wd_minus_one(ino, tmp_path):
    ino.add_watch(str(tmp_path), MASK)
    limit = int(open("/proc/sys/fs/inotify/max_queued_events").read())
    for index in range(limit // 2 + 100):       # two events per file, nobody reading
        with open(tmp_path / str(index), "wb"):
            pass
    got = events(ino)
    overflow = [e for e in got if e.mask & IN_Q_OVERFLOW]
    assert overflow and overflow[0].wd == -1
    assert len(got) <= limit + 1


def test_enospc_names_the_sysctl(monkeypatch, ino, tmp_path):
    class FakeLibc:
        def inotify_add_watch(self, fd, path, mask):
            ctypes.set_errno(errno.ENOSPC)
            return -1

    monkeypatch.setattr(pyrotorque, "_libc_handle", FakeLibc())
    with pytest.raises(pyrotorque.InotifyLimit, match="fs.inotify.max_user_watches") as info:
        ino.add_watch(str(tmp_path), MASK)
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)


def test_emfile_names_the_instances_sysctl(monkeypatch):
    class FakeLibc:
        def inotify_init1(self, flags):
            ctypes.set_errno(errno.EMFILE)
            return -1

    monkeypatch.setattr(pyrotorque, "_libc_handle", FakeLibc())
    with pytest.raises(pyrotorque.InotifyLimit, match="fs.inotify.max_user_instances"):
        INotify()


def test_the_filesystem_type_of_a_local_dir_is_not_a_network_one(tmp_path):
    kind = pyrotorque.filesystem_type(str(tmp_path))
    assert isinstance(kind, int) and kind not in pyrotorque.NETWORK_FILESYSTEMS
    assert pyrotorque.filesystem_type(str(tmp_path / "missing")) is None


def test_close_is_idempotent(tmp_path):
    ino = INotify()
    ino.close()
    ino.close()
    assert ino.fileno() == -1
