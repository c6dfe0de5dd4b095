"""ActionRule against a real rTorrent 0.9.8: rtcontrol-style actions as a job."""
import hashlib
import json
import logging
import os
import re
import sys
import textwrap

import pytest

import daemon_process
import pyrotorque
from daemon_process import DaemonProcess
from helpers import speaking

import rtlab  # conftest puts contrib/ on sys.path

DEAD_TRACKER = "http://127.0.0.1:9/announce"
#: rTorrent's text for an info-hash that is not loaded (0.9.8; 0.16).
UNKNOWN_HASH = "(Could not find info-hash|info-hash not found)"

#: Names that break anything that pastes them into a command line, rTorrent's or a shell's.
HOSTILE = [
    "a,b;c \"d\" 'e' $HOME $(touch PWNED) {x} =y",
    "line1\nline2\ttab; d.erase=",
    "back\\slash %s {{name}} |pipe & ;`touch PWNED2` (p) [q]",
]


def write_config(tmp, jobs):
    return daemon_process.torque_config(tmp, jobs, "pyrotorque:ActionRule")


def rule_job(tmp, url, **params):
    """An ActionRule built the way the daemon builds it, from torque.ini text."""
    cfg = write_config(tmp, {"rule": params})
    options = pyrotorque._parse_options(["--fg", "--config-dir", cfg, "-U", url])
    settings = pyrotorque.load_settings(cfg)
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    return jobs["rule"].job


def seeded(rt, tmp, name, size=64 * 1024, start=True):
    """An item whose data is there (complete once started and checked)."""
    data = os.path.join(str(tmp), "data-" + name)
    path = rtlab.make_payload(data, name, size)
    return rt.load_raw(rtlab.make_torrent(path, DEAD_TRACKER), "d.directory.set=" + data,
                       start=start)


def bare(rt, tmp, name):
    """An item without data, loaded stopped; its metafile carries ``name``."""
    payload = os.path.join(str(tmp), "payload-%s" % hashlib.sha1(name.encode()).hexdigest()[:8])
    path = payload if os.path.exists(payload) else rtlab.make_payload(str(tmp), os.path.basename(payload), 1024)
    return rt.load_raw(rtlab.make_torrent(path, DEAD_TRACKER, name=name))


def big_sparse(rt, tmp, size=384 * rtlab.MiB):
    """A started item over a sparse file of zeros: its hash check takes a while."""
    data = os.path.join(str(tmp), "sparse")
    os.makedirs(data)
    with open(os.path.join(data, "zeros.bin"), "wb") as handle:
        handle.truncate(size)
    piece = 4 * rtlab.MiB
    meta = rtlab.bencode({"announce": DEAD_TRACKER, "info": {
        "name": "zeros.bin", "piece length": piece, "length": size,
        "pieces": hashlib.sha1(bytes(piece)).digest() * (size // piece)}})
    return rt.load_raw(meta, "d.directory.set=" + data, start=True)


def state(rt, h):
    p = rt.proxy
    return p.d.state(h), p.d.is_active(h), p.d.is_open(h)


def wait_state(rt, h, expected, timeout=3.0):
    """d.start and friends take effect on rTorrent's next tick."""
    rt.wait_for(lambda: state(rt, h) == expected, timeout, 0.02,
                "%s to reach (state, active, open) %s, is %s" % (h, expected, state(rt, h)))


def idle(rt, h):
    return rt.proxy.d.hashing(h) == 0 and rt.proxy.d.is_hash_checking(h) == 0


def run(job, caplog, level=logging.INFO):
    caplog.clear()
    with caplog.at_level(level, logger="pyrotorque"):
        job.run()
    return caplog.text


# -- the actions, one by one, on real items ----------------------------------------------------

def test_start_pause_resume_stop_close_on_a_real_item(rtorrent, short_tmp, caplog):
    h = seeded(rtorrent, short_tmp, "item", start=False)
    other = seeded(rtorrent, short_tmp, "other", start=False)
    rtorrent.wait_for(lambda: idle(rtorrent, h), what="loaded")

    def act(action, expected):
        text = run(rule_job(short_tmp, rtorrent.url, matcher="name=item", action=action), caplog)
        assert "1 matched, 1 acted on, 0 skipped, 0 failed" in text, text
        wait_state(rtorrent, h, expected)
        rtorrent.wait_for(lambda: idle(rtorrent, h), what="not hashing")
        return text

    assert "Starting 'item' [#%s]" % h in act("start", (1, 1, 1))
    assert "Pausing 'item'" in act("pause", (1, 0, 1))
    assert "Resuming 'item'" in act("resume", (1, 1, 1))
    assert "Stopping 'item'" in act("stop", (0, 0, 1))
    act("start", (1, 1, 1))
    assert "Closing 'item'" in act("close", (0, 0, 0))
    act("start", (1, 1, 1))
    assert state(rtorrent, other) == (0, 0, 0)      # the matcher chose


def test_priority_tags_customs_and_throttle(rtorrent, short_tmp, caplog):
    h = seeded(rtorrent, short_tmp, "item")
    other = seeded(rtorrent, short_tmp, "other", start=False)
    wait_state(rtorrent, h, (1, 1, 1))
    rtorrent.wait_for(lambda: idle(rtorrent, h) and rtorrent.proxy.d.complete(h), what="seeding")
    rtorrent.proxy.d.custom.set(h, "tags", "Old keep")
    job = rule_job(short_tmp, rtorrent.url, matcher="name=item", action="""
        priority=high
        tag=New old
        untag=KEEP
        custom.note={{name}} of {{size}} bytes, {{h.sz(size)}}, done {{done}}%%
        custom.2={{d.name|upper}}
        throttle=slow""")
    text = run(job, caplog)
    assert "1 matched, 1 acted on" in text, text
    p = rtorrent.proxy
    assert p.d.priority(h) == 3
    assert p.d.custom(h, "tags") == "Old New"
    assert p.d.custom(h, "note") == "item of 65536 bytes, 64.0 KiB, done 100.0%"
    assert p.d.custom2(h) == "ITEM"
    assert p.d.throttle_name(h) == "slow"
    wait_state(rtorrent, h, (1, 1, 1))      # stopped for the throttle change, started again
    assert p.d.priority(other) != 3 and p.d.custom(other, "tags") == ""
    # The condition language reads the tags the way they were written.
    rtorrent.wait_for(lambda: idle(rtorrent, h), what="not hashing")
    tagged = rule_job(short_tmp, rtorrent.url, matcher="tagged=new tagged=old", action="untag=new\nthrottle=none")
    assert "1 matched, 1 acted on" in run(tagged, caplog)
    assert p.d.custom(h, "tags") == "Old" and p.d.throttle_name(h) == ""
    assert "0 matched" in run(tagged, caplog, logging.DEBUG)


def test_erase_needs_allow_erase_and_keeps_the_data(rtorrent, short_tmp, caplog):
    with pytest.raises(pyrotorque.ConfigError,
                       match=r"torque.ini:\d+: job.rule.action: 'erase': .*allow_erase = True"):
        rule_job(short_tmp, rtorrent.url, matcher="name=gone", action="erase")
    h = seeded(rtorrent, short_tmp, "gone")
    keep = seeded(rtorrent, short_tmp, "kept")
    rtorrent.wait_for(lambda: idle(rtorrent, h) and rtorrent.proxy.d.complete(h), what="checked")
    text = run(rule_job(short_tmp, rtorrent.url, matcher="name=gone", action="erase",
                        allow_erase="yes"), caplog)
    assert "Erasing 'gone' [#%s]" % h in text
    rtorrent.wait_for(lambda: not rtorrent.has(h), what="erased")
    assert rtorrent.has(keep)
    assert os.path.getsize(os.path.join(str(short_tmp), "data-gone", "gone")) == 64 * 1024


def test_dry_run_changes_nothing_and_says_what_it_would_do(rtorrent, short_tmp, caplog):
    h = seeded(rtorrent, short_tmp, "item")
    wait_state(rtorrent, h, (1, 1, 1))
    rtorrent.wait_for(lambda: idle(rtorrent, h), what="checked")
    marker = short_tmp / "ran"
    job = rule_job(short_tmp, rtorrent.url, matcher="name=item", dry_run="yes",
                   allow_erase="yes", action="""
        stop
        priority=0
        tag=x
        custom.k={{name}}
        throttle=slow
        exec=touch %s {{name}}
        print=would print {{name}}
        erase""" % marker)
    text = run(job, caplog)
    for line in ("Would stop 'item' [#%s]" % h, "Would set the priority of 'item' [#%s] to 0" % h,
                 "Would set the tags of 'item' [#%s] to 'x'" % h,
                 "Would set custom 'k' of 'item' [#%s] to 'item'" % h,
                 "Would set the throttle of 'item' [#%s] to 'slow' (stopping and starting it)" % h,
                 "Would run touch %s item for 'item'" % marker, "would print item",
                 "Would erase 'item' [#%s]" % h,
                 "DRY RUN: 1 matched, 1 would be acted on, 0 skipped, 0 failed"):
        assert line in text, text
    assert not marker.exists()
    p = rtorrent.proxy
    assert state(rtorrent, h) == (1, 1, 1) and p.d.priority(h) != 0
    assert p.d.custom(h, "tags") == "" and p.d.custom(h, "k") == "" and p.d.throttle_name(h) == ""


def test_hash_checking_items_are_skipped_for_stop_and_the_rest_goes_on(rtorrent, short_tmp, caplog):
    plain = seeded(rtorrent, short_tmp, "zz-plain")
    wait_state(rtorrent, plain, (1, 1, 1))
    rtorrent.wait_for(lambda: idle(rtorrent, plain), what="checked")
    h = big_sparse(rtorrent, short_tmp)
    rtorrent.wait_for(lambda: not idle(rtorrent, h), 5, 0.005, "the hash check to begin")
    job = rule_job(short_tmp, rtorrent.url, matcher="is_complete=no OR name=zz-*",
                   action="tag=seen\npause", sort_fields="name")
    text = run(job, caplog)
    assert re.search(r"Skipping 'zeros.bin' \[#%s\]: it is hash-checking, and pause during a "
                     r"hash check can hang rTorrent" % h, text), text
    assert "2 matched, 1 acted on, 1 skipped, 0 failed" in text
    assert rtorrent.proxy.d.custom(h, "tags") == ""     # nothing at all was done to it
    assert rtorrent.proxy.d.custom(plain, "tags") == "seen"
    wait_state(rtorrent, plain, (1, 0, 1))
    assert not idle(rtorrent, h), "the hash check ended too soon for this test to mean anything"
    rtorrent.wait_for(lambda: idle(rtorrent, h), 30, 0.05, "the hash check to end")
    job = rule_job(short_tmp, rtorrent.url, matcher="name=zeros.bin", action="stop")
    assert "1 matched, 1 acted on, 0 skipped" in run(job, caplog)
    wait_state(rtorrent, h, (0, 0, 1))
    assert rtorrent.proxy.system.client_version() == rtorrent.version   # still answering


# -- templates and hostile names ------------------------------------------------------------

ARGV_DUMP = textwrap.dedent("""\
    import json, sys
    with open(sys.argv[1], "a") as out:
        out.write(json.dumps(sys.argv[2:]) + "\\n")
""")


@pytest.mark.parametrize("rpc", ["xml", "json"])
def test_exec_print_and_custom_with_hostile_names(rtorrent, rpc, short_tmp, caplog, monkeypatch):
    daemons_view = speaking(rtorrent, rpc)
    if daemons_view is None:
        return      # no JSON-RPC in this rTorrent: speaking() checked the clear refusal
    monkeypatch.chdir(str(short_tmp))
    script, out = short_tmp / "dump.py", short_tmp / "argv.jsonl"
    script.write_text(ARGV_DUMP)
    hashes = {bare(rtorrent, short_tmp, name): name for name in HOSTILE}
    job = rule_job(short_tmp, daemons_view.url, matcher="is_complete=no", sort_fields="hash",
                   cwd=str(short_tmp), action="""
        exec=%s %s %s {{name}} "name: {{name}}!" {{hash}} '{{name|upper}}' --x={{d.custom_1}} =;$x
        print=P|{{name}}|{{alias}}
        custom.seen={{name}}""" % (sys.executable, script, out))
    text = run(job, caplog)
    assert "3 matched, 3 acted on, 0 skipped, 0 failed" in text, text
    calls = [json.loads(line) for line in out.read_text().splitlines()]
    assert calls == [[name, "name: %s!" % name, h, name.upper(), "--x=", "=;$x"]
                     for h, name in sorted(hashes.items())]
    assert not list(short_tmp.glob("PWNED*")) and not os.path.exists("PWNED")
    for h, name in hashes.items():
        assert rtorrent.proxy.d.custom(h, "seen") == name
        assert rtorrent.has(h)
    assert "P|line1\\nline2\\ttab; d.erase=|127.0.0.1" in text    # one log line per print
    assert "P|a,b;c \"d\" 'e' $HOME $(touch PWNED) {x} =y|" in text
    assert "P|back\\slash %s {{name}} |pipe & ;`touch PWNED2` (p) [q]|" in text


def test_a_failing_exec_holds_back_that_items_later_actions(rtorrent, short_tmp, caplog):
    good, bad = bare(rtorrent, short_tmp, "good"), bare(rtorrent, short_tmp, "bad")
    job = rule_job(short_tmp, rtorrent.url, matcher="name=good,bad", exec_timeout="5",
                   action="""exec=sh -c 'echo "checking $1"; test "$1" = good' sh {{name}}
                             tag=checked""")
    text = run(job, caplog)
    assert "2 matched, 1 acted on, 0 skipped, 1 failed" in text, text
    assert re.search(r"\[\d+ out\] checking bad", text) and "exit status 1" in text
    assert rtorrent.proxy.d.custom(good, "tags") == "checked"
    assert rtorrent.proxy.d.custom(bad, "tags") == ""


def test_exec_in_the_daemon_does_not_block_the_loop_and_keeps_the_order(rtorrent, short_tmp):
    hashes = [bare(rtorrent, short_tmp, name) for name in ("one", "two")]
    cfg = write_config(short_tmp, {
        "rule": {"matcher": "tagged=!done", "sort_fields": "name", "action": textwrap.dedent("""\
            exec=sh -c 'sleep 1; echo "slept for $1"' sh {{name}}
            tag=done""")},
        "tick": {"handler": "pyrotorque:ExecCommand", "command": "echo tick"},
    })
    with DaemonProcess("--fg", "-v", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(r"2 matched, 2 acted on, 0 skipped, 0 failed", timeout=15)
        assert daemon.stop() == 0
    text = daemon.text()
    first, second = text.index("out] slept for one"), text.index("out] slept for two")
    assert first < second
    assert len(re.findall(r"\[\d+ out\] tick", text[:second])) >= 2, text
    assert "The previous run still works through 1 item(s)" in text
    assert all(rtorrent.proxy.d.custom(h, "tags") == "done" for h in hashes)


# -- runs: order, limits, faults, config --------------------------------------------------------

def test_max_items_and_sort_fields_choose_what_one_run_does(rtorrent, short_tmp, caplog):
    hashes = {name: bare(rtorrent, short_tmp, name) for name in ("b", "c", "a")}
    job = rule_job(short_tmp, rtorrent.url, matcher="tagged=!seen", sort_fields="-name",
                   max_items="2", action="tag=seen")
    text = run(job, caplog)
    assert "3 matched, 2 acted on, 0 skipped, 0 failed, 1 left for later runs (max_items)" in text
    assert [rtorrent.proxy.d.custom(hashes[n], "tags") for n in "abc"] == ["", "seen", "seen"]
    assert "1 matched, 1 acted on" in run(job, caplog)


def test_a_fault_on_one_item_is_logged_and_the_run_goes_on(rtorrent, short_tmp, caplog):
    hashes = [bare(rtorrent, short_tmp, name) for name in ("a", "b", "c")]
    job = rule_job(short_tmp, rtorrent.url, matcher="name=a,b,c", sort_fields="name",
                   action="priority=3")
    fetch = job.items.fetch

    def fetch_then_erase_the_first(*args, **kwargs):
        items = fetch(*args, **kwargs)
        rtorrent.proxy.d.erase(hashes[0])       # gone between the fetch and the action
        return items

    job.items.fetch = fetch_then_erase_the_first
    text = run(job, caplog)
    assert re.search(r"priority=3 on 'a' \[#%s\] failed: .*%s" % (hashes[0], UNKNOWN_HASH),
                     text), text
    assert "3 matched, 2 acted on, 0 skipped, 1 failed" in text
    assert [rtorrent.proxy.d.priority(h) for h in hashes[1:]] == [3, 3]
    # The same when the item vanishes before its hash-check test (stop is guarded).
    job = rule_job(short_tmp, rtorrent.url, matcher="name=b,c", sort_fields="name",
                   action="tag=y\nstop")
    fetch = job.items.fetch

    def fetch_then_erase_b(*args, **kwargs):
        items = fetch(*args, **kwargs)
        rtorrent.proxy.d.erase(hashes[1])
        return items

    job.items.fetch = fetch_then_erase_b
    text = run(job, caplog)
    assert re.search(r"Checking 'b' \[#%s\] failed: .*%s" % (hashes[1], UNKNOWN_HASH), text)
    assert "2 matched, 1 acted on, 0 skipped, 1 failed" in text, text
    assert rtorrent.proxy.d.custom(hashes[2], "tags") == "y"


def test_config_errors_name_the_key(rtorrent, short_tmp):
    def fails(pattern, **params):
        params.setdefault("matcher", "name=x")
        params.setdefault("action", "stop")
        with pytest.raises(pyrotorque.ConfigError, match=pattern):
            rule_job(short_tmp, rtorrent.url, **params)

    fails(r"job.rule.matcher: .*condition", matcher="")
    fails(r"torque.ini:\d+: job.rule.matcher: ", matcher="prio=")
    fails(r"job.rule.sort_fields: .*nosuchfield", sort_fields="nosuchfield")
    fails(r"job.rule.action: 'stp': unknown action \(did you mean 'stop'\?\)", action="stp")
    fails(r"job.rule.action: 'priority=7': a priority is 0-3", action="priority=7")
    fails(r"job.rule.action: 'tag': 'tag' needs a value", action="tag")
    fails(r"job.rule.action: 'start=now': 'start' takes no value", action="start=now")
    fails(r"job.rule.action: 'print=\{\{nosuch\}\}': no field 'nosuch'", action="print={{nosuch}}")
    fails(r"job.rule.action: .*closing quotation", action="exec=echo 'open")
    fails(r"job.rule.action: .*throttle name", action="throttle=a,b")
    fails(r"job.rule.action: no action given", action="")
    fails(r"job.rule.action: .*\{\{if\}\} without \{\{endif\}\}",
          action="exec=echo {{if name}}a b{{endif}}")


def test_every_kind_of_action_has_its_method_in_the_dispatch_table():
    kinds = set(pyrotorque._PLAIN_ACTIONS) | {word.split(".")[0]
                                              for word in pyrotorque._VALUE_ACTIONS}
    assert set(pyrotorque.ActionRule._ACTIONS) == kinds
    assert set(pyrotorque._PLAIN_NEEDED) == set(pyrotorque._PLAIN_CALLS) \
        == set(pyrotorque._PLAIN_ACTIONS)


@pytest.mark.parametrize("kind, state, is_open, calls", [
    ("start", 0, False, ("d.open", "d.start")),
    ("start", 1, True, ("d.resume",)),          # paused: start means go on
    ("close", 1, True, ("d.stop", "d.close")),
    ("close", 0, True, ("d.close",)),
    ("resume", 1, False, ("d.open", "d.resume")),
    ("erase", 0, False, ("d.erase",)),
])
def test_a_plain_action_makes_the_calls_the_items_state_needs(kind, state, is_open, calls):
    assert pyrotorque._PLAIN_CALLS[kind](state, is_open) == calls
