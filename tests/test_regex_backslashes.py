r"""Regexes keep their backslashes: `/S\d+E\d+/` means what it says in torque.ini, in
--match and in every job, and pyrocore's `/S\\d+E\\d+/` still works.

The rule (see "Backslashes in a regex" in pyrotorque.py): an unquoted backslash inside a
`/regex/` value (or after `~`) is kept with the character after it, except that `\\` is one
backslash (pyrocore's spelling, noted); quoted text splits exactly as in a shell; outside
a regex the shell rule is unchanged.
"""
import shlex

import pytest

import pyrotorque
from daemon_process import run_cli

import rtlab  # conftest puts contrib/ on sys.path

# Each row: the condition exactly as written in torque.ini (and as --match receives it
# after the shell), the canonical condition it parses to, and whether it is noted.
GOLDEN = [
    (r"name=/S\d+E\d+/", r"'name=/S\d+E\d+/'", False),
    (r"name=/S\\d+E\\d+/", r"'name=/S\d+E\d+/'", True),          # pyrocore's spelling
    (r"'name=/S\d+E\d+/'", r"'name=/S\d+E\d+/'", False),         # single quotes: verbatim
    (r'"name=/S\d+E\d+/"', r"'name=/S\d+E\d+/'", False),         # double quotes: as a shell
    (r'"name=/S\\d+E\\d+/"', r"'name=/S\d+E\d+/'", False),
    (r"'name=/a\\b/'", r"'name=/a\\b/'", False),                 # a literal backslash
    (r"name=/a\\\\b/", r"'name=/a\\b/'", True),                  # ... as pyrocore wrote it
    (r"name~S\d+E\d+", r"'name=/S\d+E\d+/'", False),
    (r"name=!/S\d+/", r"'name=!/S\d+/'", False),
    (r"/S\d+/", r"'name=/S\d+/'", False),                        # a bare word is a name
    (r"name=/x\.y/,/S\d+/", r"'name=/x\.y/,/S\d+/'", False),
    (r"name=/two\ words/", r"'name=/two\ words/'", False),       # `\ ` still joins the word
    (r"name=/it\'s/", r"""'name=/it\'"'"'s/'""", False),
    (r"name=foo\ bar", r"'name=foo bar'", False),                 # no regex: shell rule
    (r"name=foo\*", r"name=foo*", False),
    (r"path=/srv/my\ dir/*", r"'path=/srv/my dir/*'", False),     # a glob that starts with /
    (r"name=/S\d+/ prio>0 [ message=/tracker\:/ OR is_open=1 ]",
     r"'name=/S\d+/' prio=+0 [ 'message=/tracker\:/' OR is_open=yes ]", False),
]


@pytest.mark.parametrize("text, canonical, noted", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_the_backslash_rule_in_a_golden_table(text, canonical, noted):
    notes = []
    condition = pyrotorque.parse_condition(text, notes=notes)
    assert str(condition) == canonical
    assert bool(notes) is noted, notes
    assert str(pyrotorque.parse_condition(str(condition))) == canonical   # parses back


NAMES = ["Show.S01E02.720p", "Show.Sd+Ed+", "Show.S1E", "two words", "it's", "a\\b", "ab",
         "x.y", "xzy", "Doc.S2024E100"]

MATCHES = [
    (r"name=/S\d+E\d+/", {"Show.S01E02.720p", "Doc.S2024E100"}),
    (r"name=/S\\d+E\\d+/", {"Show.S01E02.720p", "Doc.S2024E100"}),
    (r"name=/^S\d/", set()),
    (r"name=/\.S\d+E/", {"Show.S01E02.720p", "Doc.S2024E100", "Show.S1E"}),
    (r"name~\.S\d+E\d", {"Show.S01E02.720p", "Doc.S2024E100"}),
    (r"name=/two\ words/", {"two words"}),
    (r"name=/it\'s/", {"it's"}),
    (r"name=/x\.y/", {"x.y"}),
    (r"name=/x.y/", {"x.y", "xzy"}),
    (r"'name=/a\\b/'", {"a\\b"}),
    (r"name=/a\\\\b/", {"a\\b"}),
    (r"name=!/S\d+E\d+/", set(NAMES) - {"Show.S01E02.720p", "Doc.S2024E100"}),
]


@pytest.mark.parametrize("text, matched", MATCHES, ids=[m[0] for m in MATCHES])
def test_regexes_match_what_they_say(text, matched):
    condition = pyrotorque.parse_condition(text)
    assert {n for n in NAMES if condition.match({"name": n})} == matched


def test_the_note_names_the_regex_and_the_plain_spelling():
    notes = []
    pyrotorque.parse_condition(r"name=/S\\d+E\\d+/ OR name=/S\\d+E\\d+/", notes=notes)
    assert notes == [r"in the regex /S\d+E\d+/ an unquoted '\\' is read as one backslash, as "
                     r"pyrocore read it; a single backslash means the same now (write \d, "
                     r"not \\d)"]


def test_torque_ini_values_keep_their_backslashes_and_pyrocores_are_noted(tmp_path):
    path = tmp_path / "torque.ini"
    path.write_text("[TORQUE]\njob.queue.startable = name=/S\\d+E\\d+/ prio>0\n"
                    "job.queue.downloading = name=/S\\\\d+/\n")
    settings = pyrotorque.load_settings(str(tmp_path))
    assert settings.jobs["queue"].params["startable"] == r"name=/S\d+E\d+/ prio>0"
    assert [str(w) for w in settings.warnings] == [
        r"%s:3: job.queue.downloading: in the regex /S\d+/ an unquoted '\\' is read as one "
        r"backslash, as pyrocore read it; a single backslash means the same now (write \d, "
        r"not \\d)" % path]
    config = pyrotorque.job_config(settings.jobs["queue"], pyrotorque.QueueManager, settings,
                                   schedule=None, proxy=None, item_source=None, daemon=None)
    queue = pyrotorque.QueueManager(config)
    assert r"name=/S\d+E\d+/" in str(queue.startable)
    assert r"name=/S\d+/" in str(queue.downloading)


# -- through --match, against items in a real rTorrent ----------------------------------

@pytest.fixture
def episodes(rtorrent, short_tmp):
    """Items named like episodes and not, loaded into the lab's rTorrent."""
    names = ["Show.S01E02.720p", "Show.Sd+Ed+", "Doc.S2024E100", "x.y", "xzy"]
    hashes = {}
    for name in names:
        path = rtlab.make_payload(str(short_tmp), name, 16 * 1024)
        hashes[name] = rtorrent.load_raw(rtlab.make_torrent(path, "http://127.0.0.1:9/announce"))
    return hashes


def _matched(out):
    return {line.split("  ", 1)[1] for line in out.splitlines()
            if line[:1] != " " and "  " in line and "item(s)" not in line}


@pytest.mark.parametrize("written, matched, noted", [
    (r"name=/S\d+E\d+/", {"Show.S01E02.720p", "Doc.S2024E100"}, False),
    (r"name=/S\\d+E\\d+/", {"Show.S01E02.720p", "Doc.S2024E100"}, True),
    (r"name~S\d{2}E\d{2}", {"Show.S01E02.720p"}, False),
    (r"name=/x\.y/", {"x.y"}, False),
    (r"'name=/Sd\+Ed\+/'", {"Show.Sd+Ed+"}, False),
])
def test_match_against_a_real_rtorrent_keeps_the_backslashes(rtorrent, short_tmp, episodes,
                                                             written, matched, noted):
    # the argument as a shell hands it over: `pyrotorque --match 'name=/S\d+E\d+/'`
    argv = shlex.split("--match %s" % shlex.quote(written))
    code, out, err = run_cli("--config-dir", str(short_tmp), "-U", rtorrent.url, *argv)
    assert code == 0, err
    assert _matched(out) == matched, out
    assert ("--match: in the regex" in err) is noted, err
    assert "%d of 5 item(s) in view 'main' match" % len(matched) in out
