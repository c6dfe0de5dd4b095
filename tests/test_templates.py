"""The template language of load commands (``cmd.NAME``) and its escaping: what a template
renders to, what it refuses, and the documented tree watch examples from a torque.ini."""
import os
import textwrap

import pytest

import pyrotorque
from helpers import metafile, write


@pytest.mark.parametrize("template, namespace, expected", [
    ("plain", {}, "plain"),
    ("{{x}}", {"x": "a b"}, "a\\ b"),
    ("%(x)s/y", {"x": "1,2"}, "1\\,2/y"),
    ("{{x.get('k', 'd')}}", {"x": {}}, "d"),
    ("{{t.show.replace('.', ' ').title()}}", {"t": {"show": "pioneer.one"}}, "Pioneer\\ One"),
    ("{{p|h.pathname}}{{p|pathext}}", {"p": "/a/b.c.torrent"}, "b.c.torrent"),
    ("{{if a}}A{{elif b}}B{{else}}C{{endif}}", {"a": 0, "b": 1}, "B"),
    ("{{if 'x' in s}}yes{{endif}}", {"s": "axb"}, "yes"),
    ("{{# comment\n}}text", {}, "text"),
    ("{{if a}}\nline\n{{endif}}\n", {"a": 1}, "line\n"),
    ("{{n}}", {"n": None}, ""),
    # Every kind of expression the language has.
    ("{{n[1]}}{{s[1:3]}}{{s[::-1]}}", {"n": ["a", "b"], "s": "abcd"}, "bbcdcba"),
    ("{{a and b}}|{{a or b}}|{{not a}}|{{-n}}", {"a": "", "b": "y", "n": 3}, "|y|True|-3"),
    ("{{'y' if a else 'n'}}{{a + '.' + b}}", {"a": "x", "b": "z"}, "yx.z"),
    ("{{[a, b]}}{{(a, b)}}", {"a": 1, "b": 2}, "1\\,21\\,2"),
    ("{{len(s)}}{{min(n)}}{{sorted(n)}}", {"s": "abc", "n": [3, 1]}, "311\\,3"),
    ("{{h.upper(s)}}{{s|title}}", {"s": "ab cd"}, "AB\\ CDAb\\ Cd"),
])
def test_template_language(template, namespace, expected):
    assert pyrotorque.WatchTemplate(template).render(namespace) == expected


@pytest.mark.parametrize("template", ["{{x.__class__}}", "{{open('f')}}", "{{a if}}",
                                      "{{x|nofilter}}", "{{endif}}", "{{x", "{{else}}",
                                      "{{x * 2}}", "{{'a'.format()}}", "{{x.split(sep=',')}}",
                                      "{{x()}}", "{{h.nosuch(x)}}", "{{x.nosuch}}", "{{y}}",
                                      # Python's parser gives up on these without a
                                      # SyntaxError (found by tests/test_fuzz_parsers.py)
                                      "{{" + "not " * 3000 + "x}}", "{{" + "-" * 30000 + "1}}",
                                      "{{if " + "(" * 3000 + "}}{{endif}}"])
def test_template_errors(template):
    with pytest.raises(pyrotorque.TemplateError):
        pyrotorque.WatchTemplate(template).render({"x": "v", "a": 1})


def test_escaping_is_total():
    """Every ASCII character is kept, escaped, or (what XML cannot carry) replaced."""
    for char in map(chr, range(0, 128)):
        escaped = pyrotorque.rtorrent_escape("a" + char)
        if char.isalnum() or char in "_./-+@:":
            assert escaped == "a" + char, repr(char)
        elif ord(char) < 32 and char not in "\t\n\r":
            assert escaped == "a\ufffd", repr(char)
        else:
            assert escaped == "a\\" + char, repr(char)


def test_the_documented_templates_work_from_torque_ini(short_tmp):
    cfg = short_tmp / "cfg"
    cfg.mkdir()
    (cfg / "torque.ini").write_text(textwrap.dedent("""\
        [TORQUE]
        job.treewatch.path          = %s
        job.treewatch.cmd.nfo       = f.multicall=*.nfo,f.priority.set=2
        job.treewatch.cmd.target    = {{# set target path
            }}d.custom.set=targetdir,/var/torrent/done/{{label}}/{{relpath}}
        job.treewatch.cmd.sorted = {{# sort into folders
            }}{{if '/music/' in pathname}}d.directory_base.set="/var/torrent/sorted/{{relpath}}/{{pathname|h.pathname}}"
            {{elif traits.kind == 'tv'}}d.directory.set="/var/torrent/sorted/tv/{{traits.get('show', '_UNKNOWN').replace('.', ' ').title()}}"
            {{else}}d.directory.set="/var/torrent/sorted/{{relpath}}"
            {{endif}}
        """ % short_tmp))
    settings = pyrotorque.load_settings(str(cfg))
    spec = settings.jobs["treewatch"]
    config = pyrotorque.job_config(spec, pyrotorque.TreeWatch, settings, proxy=None, daemon=None)
    watch = pyrotorque.TreeWatch(config)

    def commands(rel, name):
        path = os.path.join(str(short_tmp), rel)
        write(path, metafile(name))
        entry = pyrotorque._Entry(path, str(short_tmp), True)
        assert watch._prepare(entry)
        return entry.commands

    assert commands("tv/x.torrent", "Pioneer.One.S01E06.720p.x264-VODO.mkv") == [
        "f.multicall=*.nfo,f.priority.set=2",
        'd.directory.set="/var/torrent/sorted/tv/Pioneer\\ One"',
        "d.custom.set=targetdir,/var/torrent/done/tv/mkv/tv"]
    assert commands("music/a b/y.torrent", "Album.flac")[1:] == [
        'd.directory_base.set="/var/torrent/sorted/music/a\\ b/y"',
        "d.custom.set=targetdir,/var/torrent/done/audio/flac/music/a\\ b"]
    assert commands("z.torrent", "other.bin")[1] == 'd.directory.set="/var/torrent/sorted/"'
