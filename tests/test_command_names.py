"""rTorrent command names in the tree watch's load commands: 0.8 names translated with one
warning per key, a name rTorrent lacks is a --check error, and a failing command never
makes an item lose its other commands (against a real rTorrent 0.9.8)."""
import os
import textwrap

import pytest

import daemon_process
import pyrotorque
import rtlab
from helpers import hashes, logged, make_watch, metafile, write

LOGGER = "pyrotorque.job.treewatch"


@pytest.mark.parametrize("text, expected, renamed", [
    ("f.multicall=*.jpg,f.set_priority=2", "f.multicall=*.jpg,f.priority.set=2",
     [("f.set_priority", "f.priority.set")]),
    ("d.set_custom1=x", "d.custom1.set=x", [("d.set_custom1", "d.custom1.set")]),
    ("branch=$d.get_complete=,d.set_directory=/x", "branch=$d.complete=,d.directory.set=/x",
     [("d.get_complete", "d.complete"), ("d.set_directory", "d.directory.set")]),
    ("(d.get_name)", "(d.name)", [("d.get_name", "d.name")]),
    ("load_start=x", "load.start=x", [("load_start", "load.start")]),
    # Values that merely look like an old name stay as they are.
    ("d.custom.set=targetdir,/var/get_name", "d.custom.set=targetdir,/var/get_name", []),
    ("d.custom.set=x,get_name", "d.custom.set=x,get_name", []),
    # 0.9.8 still has these; d.multicall2 takes other arguments, so d.multicall is not renamed.
    ("execute=a,b", "execute=a,b", []),
    ("d.multicall=main,d.name=", "d.multicall=main,d.name=", []),
    ("d.custom.set=x,y", "d.custom.set=x,y", []),
])
def test_old_names_are_translated_where_rtorrent_reads_a_command(text, expected, renamed):
    assert pyrotorque.translate_command_names(text) == (expected, renamed)


def test_the_renames_table_holds_only_names_the_real_rtorrent_lacks(rtorrent):
    methods = set(rtorrent.proxy.system.listMethods())
    table = pyrotorque.RTORRENT_RENAMED
    assert len(table) > 250
    assert not [old for old in table if old in methods]     # a working name is never changed
    if rtorrent.series == (0, 9):       # 0.16 dropped a few of the new names too
        assert not [new for new in table.values() if new not in methods]


def test_expressions_are_not_translated_only_the_template_text():
    template = pyrotorque.WatchTemplate("d.set_custom=x,{{name}}")
    assert template.translate_names() == [("d.set_custom", "d.custom.set")]
    assert template.render({"name": "d.get_name=x"}) == "d.custom.set=x,d.get_name\\=x"


# ---- loading with a real rTorrent -----------------------------------------------------------

FILES = [("a.nfo", 100), ("b.jpg", 100), ("c.png", 100), ("d.tif", 100), ("e.mkv", 5000)]

#: The tree watch examples of both documents in /work/shared/seeds, as written there.
SEED_000 = {
    "cmd.jpg": "f.multicall=*.jpg,f.set_priority=2",
    "cmd.png": "f.multicall=*.png,f.set_priority=2",
    "cmd.tif": "f.multicall=*.tif,f.set_priority=0",
    "cmd.target": "{{# set target path\n    }}d.custom.set=targetdir,/var/torrent/done/"
                  "{{label}}/{{relpath}}",
}
SEED_001 = dict(SEED_000, **{
    "cmd.nfo": "f.multicall=*.nfo,f.priority.set=2",
    "cmd.jpg": "f.multicall=*.jpg,f.priority.set=2",
    "cmd.png": "f.multicall=*.png,f.priority.set=2",
    "cmd.tif": "f.multicall=*.tif,f.priority.set=0",
})
#: An old name mixed in, as the issue's user had it.
SEED_MIXED = dict(SEED_001, **{"cmd.setprio": "f.multicall=*.nfo,f.set_priority=2"})


def file_priorities(rt, info_hash):
    rows = rt.proxy.f.multicall(info_hash, "", "f.path=", "f.priority=")
    return {path: prio for path, prio in rows}


@pytest.mark.parametrize("commands", [SEED_000, SEED_001, SEED_MIXED],
                         ids=["seed-000", "seed-001", "seed-001-with-an-0.8-name"])
def test_the_seeds_tree_watch_examples_load_with_every_command_applied(lab, caplog, commands):
    loop, rt, root = lab
    make_watch(loop, rt, root, load_mode="start", queued="True", **commands)
    old = [m for m in logged(caplog, "rTorrent 0.8's name")]
    assert len(old) == sum("set_priority" in v for v in commands.values())
    for key, text in commands.items():
        if "set_priority" in text:
            assert [m for m in old if m.startswith("job.treewatch.%s:" % key)
                    and "'f.set_priority' is rTorrent 0.8's name of 'f.priority.set'" in m]
    loop.idle(0.1)
    info_hash = write(str(root / "tv" / "show.torrent"), metafile("Show.S01E02", files=FILES))
    loop.pump(lambda: info_hash in hashes(rt), 10, "the item")
    loop.idle(0.3)
    assert rt.proxy.d.custom(info_hash, "targetdir") == "/var/torrent/done/tv/mkv/tv"
    assert file_priorities(rt, info_hash) == {
        "a.nfo": 2 if "cmd.nfo" in commands or "cmd.setprio" in commands else 1,
        "b.jpg": 2, "c.png": 2, "d.tif": 0, "e.mkv": 1}
    assert rt.proxy.d.state(info_hash) == 0     # queued: left to the queue to start
    assert logged(caplog, r"Loaded 'Show.S01E02' .* \[queued\] \[startable\]")
    assert not logged(caplog, "Load command .* failed")


@pytest.mark.parametrize("load_mode", ["normal", "start"])
def test_one_failing_command_among_valid_ones_costs_only_itself(lab, caplog, load_mode):
    loop, rt, root = lab
    make_watch(loop, rt, root, load_mode=load_mode, **{
        "cmd.a_first": "d.custom.set=first,1",
        "cmd.b_broken": "d.no_such_command=1",
        "cmd.c_value": "d.custom.set=third,{{info_name}}",
        "cmd.d_files": "f.multicall=*.jpg,f.priority.set=0",
        "cmd.e_bad_value": "d.priority.set=bogus",
        "cmd.f_last": "d.custom1.set=last"})
    loop.idle(0.1)
    info_hash = write(str(root / "x.torrent"), metafile("mixed", files=FILES))
    other = write(str(root / "y.torrent"), metafile("plain"))
    loop.pump(lambda: {info_hash, other} <= set(hashes(rt)), 10, "the items")
    loop.pump(lambda: rt.proxy.d.custom1(info_hash) == "last", 5, "the commands after the failure")
    loop.idle(0.2)
    proxy = rt.proxy
    assert proxy.d.custom(info_hash, "first") == "1"
    assert proxy.d.custom(info_hash, "third") == "mixed"
    assert file_priorities(rt, info_hash)["b.jpg"] == 0
    assert proxy.d.custom(info_hash, "tm_cmds_done") == ""
    # Not the fate rTorrent gives an item whose load command fails: hash-failed, not
    # started, and no event.download.inserted_new (so not saved in the session).
    assert proxy.d.hashing_failed(info_hash) == 0
    assert "Command on torrent creation failed" not in proxy.d.message(info_hash)
    assert proxy.d.state(info_hash) == (1 if load_mode == "start" else 0)
    assert os.path.exists(os.path.join(proxy.session.path(), info_hash + ".torrent"))
    errors = logged(caplog, "Load command .* failed for 'mixed'")
    assert len(errors) == 2, errors
    assert len(logged(caplog, "Load command .* failed for 'plain'")) == 2
    assert "cmd.b_broken failed for 'mixed' #%s" % info_hash in errors[0]
    assert 'Command "d.no_such_command" does not exist' in errors[0]
    assert "cmd.e_bad_value failed for 'mixed'" in errors[1]
    assert proxy.d.custom1(other) == "last" and proxy.d.custom(other, "third") == "plain"


def test_rtorrent_itself_skips_the_commands_after_a_failing_one():
    """What 'catch' around each command is there for: rTorrent 0.9.8 loads the item but
    runs no load command after the first that fails (so the seeds' example lost
    cmd.target), marks it hash-failed and does not save it in the session."""
    with rtlab.RTorrent() as rt:
        data = metafile("raw")
        info_hash = rtlab.infohash(data)
        rt.proxy.load.raw_start_verbose("", rtlab.xmlrpc.client.Binary(data), "d.custom.set=a,1",
                                        "f.set_priority=0", "d.custom.set=b,2")
        rt.wait_for(lambda: rt.has(info_hash), 5)
        proxy = rt.proxy
        assert (proxy.d.custom(info_hash, "a"), proxy.d.custom(info_hash, "b")) == ("1", "")
        assert proxy.d.hashing_failed(info_hash) == 1
        assert proxy.d.message(info_hash) == 'Command on torrent creation failed: Command ' \
                                             '"f.set_priority" does not exist.'
        assert not os.path.exists(os.path.join(proxy.session.path(), info_hash + ".torrent"))


# ---- --check ------------------------------------------------------------------------------

@pytest.fixture
def rtorrent_with_private_method():
    rc = 'method.insert = d.my_private_tag, private|simple, "d.custom.set=tag,mine"'
    with rtlab.RTorrent(extra_rc=[rc]) as rt:
        if rt.backend != "tinyxml2":    # which lists private commands too
            assert "d.my_private_tag" not in rt.proxy.system.listMethods()
        yield rt


def test_check_names_job_key_and_method_that_rtorrent_lacks(rtorrent_with_private_method,
                                                             short_tmp):
    rtorrent = rtorrent_with_private_method
    cfg = short_tmp / "cfg"
    cfg.mkdir()
    (short_tmp / "watch").mkdir()
    (cfg / "torque.ini").write_text(textwrap.dedent("""\
        [TORQUE]
        job.treewatch.active = True
        job.treewatch.path = %s
        job.treewatch.cmd.old = f.multicall=*.jpg,f.set_priority=2
        job.treewatch.cmd.typo = d.custom.sett=x,y
        job.treewatch.cmd.fine = d.custom.set=x,y
        job.treewatch.cmd.mine = d.my_private_tag=
        """ % (short_tmp / "watch")))
    code, out, err = daemon_process.run_cli("--check", "--config-dir", str(cfg),
                                            "-U", rtorrent.url)
    assert code == pyrotorque.EX_SOFTWARE, out + err
    assert "error:   %s:5: job.treewatch.cmd.typo: calls 'd.custom.sett', which this " \
           "rTorrent does not have (did you mean 'd.custom.set'?)" % (cfg / "torque.ini") in out
    assert out.count("does not have") == 1  # cmd.old is translated, cmd.mine is a private method
    assert "note:    %s:4: job.treewatch.cmd.old: 'f.set_priority' is rTorrent 0.8's name of " \
           "'f.priority.set'" % (cfg / "torque.ini") in out
