"""Configuration: pyrocore's torque.ini read as pyrocore read it, errors that say where."""
import os
import re
import textwrap

import pytest

import pyrotorque
from pyrotorque import ConfigError, load_settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(directory, name, text):
    path = os.path.join(str(directory), name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(text))
    return path


def test_the_shipped_default_file_is_the_embedded_defaults_word_for_word():
    with open(os.path.join(ROOT, "torque.ini.default"), encoding="utf-8") as handle:
        assert handle.read() == pyrotorque.DEFAULT_CONFIG


def test_every_default_key_is_explained_by_a_comment(tmp_path):
    lines = pyrotorque.DEFAULT_CONFIG.splitlines()
    keys = [i for i, line in enumerate(lines) if line and line[0] not in "#;[ " and "=" in line]
    for index in keys:
        above = lines[:index]
        # a comment stands above the key, possibly above a run of keys of the same group
        while above and above[-1] and above[-1][0] not in "#":
            above.pop()
        assert above and above[-1].startswith("#"), lines[index]


def test_the_embedded_torque_ini_states_each_job_default_as_the_jobs_params_table_does(tmp_path):
    """The job classes' PARAMS are the defaults (for a job of any name); torque.ini.default
    shows users the same values for the built-in jobs, and cannot drift from them."""
    settings = load_settings(str(tmp_path))
    compared = 0
    for name, spec in settings.jobs.items():
        handler = pyrotorque.resolve_handler(spec.params["handler"])
        known = dict(pyrotorque.COMMON_JOB_PARAMS, **handler.PARAMS)
        for key, text in spec.params.items():
            if key in ("handler", "schedule", "active"):    # per job, not a class default
                continue
            converter, default, _ = known[key]
            assert converter(text) == default, "job.%s.%s" % (name, key)
            compared += 1
    assert compared > 20


def test_defaults_alone_give_the_connstats_job_every_minute(tmp_path):
    settings = load_settings(str(tmp_path))
    spec = settings.jobs["connstats"]
    assert spec.params["handler"] == "pyrotorque:EngineStats"
    assert spec.params["schedule"] == "minute=*"
    assert settings.files == ["torque.ini.default"]
    assert set(settings.jobs) == {"queue", "connstats", "treewatch", "exporter"}


def test_the_config_dir_comes_from_pyro_config_dir_when_not_given(tmp_path, monkeypatch):
    write(tmp_path, "torque.ini", "[TORQUE]\njob.connstats.schedule = hour=*\n")
    monkeypatch.setenv("PYRO_CONFIG_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.config_dir == str(tmp_path)
    assert settings.jobs["connstats"].params["schedule"] == "hour=*"


def test_files_are_layered_defaults_then_torque_ini_then_config_files_then_defines(tmp_path):
    write(tmp_path, "torque.ini", """\
        [TORQUE]
        job.connstats.schedule = hour=*
        job.connstats.log_level = DEBUG
        """)
    extra = write(tmp_path, "extra.ini", "[TORQUE]\njob.connstats.schedule = second=*/5\n")
    settings = load_settings(str(tmp_path), [extra], ["job.connstats.active=no"])
    spec = settings.jobs["connstats"]
    assert spec.params == {"handler": "pyrotorque:EngineStats", "schedule": "second=*/5",
                           "active": "no", "log_level": "DEBUG"}
    assert spec.origins["schedule"] == extra + ":2"
    assert spec.origins["log_level"] == os.path.join(str(tmp_path), "torque.ini") + ":3"
    assert spec.origins["active"] == "-D job.connstats.active"
    assert spec.origins["handler"].startswith("torque.ini.default:")


def test_the_seeds_minimal_example_keeps_its_multi_line_condition(tmp_path):
    write(tmp_path, "torque.ini", """\
        # "pyrotorque" configuration file
        [TORQUE]
        job.queue.active            = True
        job.queue.schedule          = second=*/5
        job.queue.startable         = is_ignored=0 message= prio>0
                [ prio>2 OR [ NOT [ traits=audio kind_25=jpg,png,tif,bmp ] ] ]
        job.treewatch.cmd.target    = {{# set target path
            }}d.custom.set=targetdir,/var/torrent/done/{{label}}/{{relpath}}
        """)
    settings = load_settings(str(tmp_path))
    queue = settings.jobs["queue"].params
    assert queue["startable"] == ("is_ignored=0 message= prio>0\n"
                                  "[ prio>2 OR [ NOT [ traits=audio kind_25=jpg,png,tif,bmp ] ] ]")
    assert settings.jobs["treewatch"].params["cmd.target"].endswith("{{relpath}}")
    assert settings.jobs["treewatch"].params["cmd.target"].startswith("{{# set target path\n}}")


def test_values_starting_with_tilde_slash_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/home/seeder")
    write(tmp_path, "torque.ini", "[TORQUE]\njob.treewatch.path = ~/watch\nscgi_url = ~/rt/sock\n")
    settings = load_settings(str(tmp_path))
    assert settings.jobs["treewatch"].params["path"] == "/home/seeder/watch"
    assert settings.get("scgi_url") == "/home/seeder/rt/sock"


def test_percent_names_interpolate_other_keys_of_the_section(tmp_path):
    write(tmp_path, "torque.ini", "[TORQUE]\nroot = /srv\njob.treewatch.path = %(root)s/watch\n")
    assert load_settings(str(tmp_path)).jobs["treewatch"].params["path"] == "/srv/watch"


@pytest.mark.parametrize("text, typed", [
    ("17", 17), ("yes", True), ("Y", True), ("+", True), ("no", False), ("-", False),
    ("0", 0), ("-1", "-1"), ("1.5", "1.5"), ("", ""), ("on", "on"),
])
def test_pyrocore_value_typing(text, typed):
    assert pyrotorque.typed_value(text) == typed
    assert type(pyrotorque.typed_value(text)) is type(typed)


# -- every error names the file, the line and the key -----------------------

ERRORS = [
    # (torque.ini text, what the message must contain)
    ("[TORQUE]\njob.broken = 1\n", ["torque.ini:2", "job.broken", "expecting job.NAME.PARAM"]),
    ("[TORQUE]\njob.x.handler = pyrotorque:EngineStats\n",
     ["torque.ini:2", "job.x.schedule", "missing"]),
    ("[TORQUE]\njob.x.schedule = minute=*\n", ["torque.ini:2", "job.x.handler", "missing"]),
    ("[TORQUE]\njob.connstats.schedule = hour=24\n",
     ["torque.ini:2", "job.connstats.schedule", "hour"]),
    ("[TORQUE]\njob.connstats.schedule = every minute\n",
     ["torque.ini:2", "job.connstats.schedule"]),
    ("[TORQUE]\njob.connstats.active = maybe\n",
     ["torque.ini:2", "job.connstats.active", "'maybe' is not a boolean"]),
    ("[TORQUE]\n\n\njob.connstats.handler = EngineStats\n",
     ["torque.ini:4", "job.connstats.handler", "module:Class"]),
    ("[TORQUE]\njob.connstats.handler = no_such_module_here:Job\n",
     ["torque.ini:2", "job.connstats.handler", "ModuleNotFoundError"]),
    ("[TORQUE]\njob.connstats.handler = pyrotorque:NoSuchJob\n",
     ["torque.ini:2", "job.connstats.handler", "no built-in job 'NoSuchJob'"]),
    ("[TORQUE]\njob.connstats.log_level = LOUD\n",
     ["torque.ini:2", "job.connstats.log_level", "not a log level"]),
    ("[TORQUE]\njob.treewatch.active = True\n",
     ["torque.ini.default:", "job.treewatch.path", "job.treewatch.path"]),
    ("[TORQUE]\nrpc_timeout = soon\n", ["torque.ini:2", "rpc_timeout", "positive number"]),
    ("job.connstats.active = no\n", ["torque.ini:1", "before any [SECTION]"]),
    ("[TORQUE]\nthis line has no equals sign\n", ["torque.ini:2", "cannot parse"]),
    ("[TORQUE]\njob.connstats.schedule = %(nowhere)s\n",
     ["torque.ini:2", "job.connstats.schedule", "nowhere"]),
    # sizes float() reads as infinite: an OverflowError before (found by the fuzzing)
    ("[TORQUE]\njob.c.handler = pyrotorque:CompletionHandler\njob.c.schedule = hour=*\n"
     "job.c.target = /tmp\njob.c.copy_chunk = 1e400\n",
     ["torque.ini:5", "job.c.copy_chunk", "'1e400' is not a size in bytes"]),
    ("[TORQUE]\njob.m.handler = pyrotorque:TorrentMirror\njob.m.schedule = hour=*\n"
     "job.m.piece_size = inf\n", ["torque.ini:4", "job.m.piece_size", "'inf' is not a size"]),
    # os calls raise ValueError on it (found by the fuzzing, as a crash of --check)
    ("[TORQUE]\njob.treewatch.active = yes\njob.treewatch.path = /tmp/a\0b\n",
     ["torque.ini:3: a NUL byte, which no value may hold"]),
]


@pytest.mark.parametrize("text, expected", ERRORS, ids=[e[1][-1] for e in ERRORS])
def test_a_broken_config_line_names_file_line_and_key(tmp_path, text, expected):
    write(tmp_path, "torque.ini", text)
    with pytest.raises(ConfigError) as caught:
        settings = load_settings(str(tmp_path))
        daemon = pyrotorque.Daemon(_options(tmp_path), settings)
        daemon.build_jobs(settings)
    message = str(caught.value)
    for part in expected:
        assert part in message, (part, message)
    assert isinstance(caught.value, ValueError)


def test_a_missing_config_file_given_on_the_command_line_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(str(tmp_path), [str(tmp_path / "nope.ini")])


def test_a_define_without_equals_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="-D job.x: expected KEY=VALUE"):
        load_settings(str(tmp_path), (), ["job.x"])


def test_an_unknown_job_key_warns_with_the_closest_known_key(tmp_path, caplog):
    write(tmp_path, "torque.ini", "[TORQUE]\njob.connstats.shedule = minute=*\n")
    settings = load_settings(str(tmp_path))
    daemon = pyrotorque.Daemon(_options(tmp_path), settings)
    with caplog.at_level("WARNING"):
        daemon.build_jobs(settings)
    assert "torque.ini:2: job.connstats.shedule: unknown key for EngineStats " \
           "(did you mean 'schedule'?)" in caplog.text


def test_an_unknown_top_level_key_and_a_repeated_key_are_warnings(tmp_path):
    write(tmp_path, "torque.ini", "[TORQUE]\nscgi_ulr = /x\nrpc_timeout = 5\nrpc_timeout = 6\n")
    settings = load_settings(str(tmp_path))
    assert any("torque.ini:2: scgi_ulr: unknown key (did you mean 'scgi_url'?)" in w
               for w in settings.warnings)
    assert any("torque.ini:4: rpc_timeout is set again (first on line 3)" in w
               for w in settings.warnings)
    assert settings.get("rpc_timeout") == "6"


# -- handlers ------------------------------------------------------------------

@pytest.mark.parametrize("name, job", [
    ("pyrotorque:EngineStats", "EngineStats"),
    ("pyrocore.torrent.jobs:EngineStats", "EngineStats"),
    ("pyrosimple.job.metrics:EngineStats", "EngineStats"),
    ("pyrotorque:QueueManager", "QueueManager"),
    ("pyrocore.torrent.queue:QueueManager", "QueueManager"),
    ("pyrosimple.job.queue:QueueManager", "QueueManager"),
    ("pyrotorque:TreeWatch", "TreeWatch"),
    ("pyrocore.torrent.watch:TreeWatch", "TreeWatch"),
    ("pyrosimple.job.watch:TreeWatch", "TreeWatch"),
    ("pyrotorque:RtorrentExporter", "RtorrentExporter"),
    ("pyrocore.daemon.exporter:RtorrentExporter", "RtorrentExporter"),
    ("pyrosimple.job.metrics:RtorrentExporter", "RtorrentExporter"),
    ("pyrotorque:StatsArchiver", "StatsArchiver"),
    ("pyrocore.torrent.watch:RemoteWatch", "RemoteWatch"),
    ("pyrocore.torrent.filter:TorrentMirror", "TorrentMirror"),
])
def test_pyrotorque_pyrocore_and_pyrosimple_handler_names_resolve_to_the_built_in(name, job):
    assert pyrotorque.resolve_handler(name) is getattr(pyrotorque, job)


def test_a_custom_job_is_imported_from_the_config_dir_with_pyrocore_typed_values(tmp_path):
    write(tmp_path, "myjobs_for_test.py", """\
        class Counter:
            instances = []
            def __init__(self, config):
                self.config = config
                Counter.instances.append(self)
            def run(self):
                self.config.proxy
        """)
    write(tmp_path, "torque.ini", """\
        [TORQUE]
        job.count.handler = myjobs_for_test:Counter
        job.count.schedule = second=*/10
        job.count.limit = 42
        job.count.flag = yes
        job.count.label = -1
        """)
    settings = load_settings(str(tmp_path))
    daemon = pyrotorque.Daemon(_options(tmp_path), settings)
    _, jobs = daemon.build_jobs(settings)
    config = jobs["count"].job.config
    assert (config.limit, config.flag, config.label) == (42, True, "-1")
    assert config.job_name == "count" and config.dry_run is False and config.active is True
    assert str(config.schedule) == str(pyrotorque.CronSchedule("second=*/10"))
    assert isinstance(config.proxy, pyrotorque.RtorrentProxy)


def test_dry_run_from_the_command_line_reaches_every_job(tmp_path):
    settings = load_settings(str(tmp_path))
    options = _options(tmp_path, dry_run=True)
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    assert jobs["connstats"].job.dry_run is True


# -- finding rTorrent ------------------------------------------------------------

def test_the_endpoint_comes_from_the_command_line_first(tmp_path):
    write(tmp_path, "torque.ini", "[TORQUE]\nscgi_url = /from/torque\n")
    settings = load_settings(str(tmp_path))
    assert pyrotorque.find_rpc_url(settings, "/from/cli") == "/from/cli"
    assert pyrotorque.find_rpc_url(settings) == "/from/torque"


def test_the_endpoint_falls_back_to_config_ini_global(tmp_path):
    write(tmp_path, "config.ini", "[GLOBAL]\nscgi_url = scgi://127.0.0.1:5000\n")
    assert pyrotorque.find_rpc_url(load_settings(str(tmp_path))) == "scgi://127.0.0.1:5000"


@pytest.mark.parametrize("rc, url", [
    ("network.scgi.open_local = /srv/rt/.scgi_local\n", "scgi:///srv/rt/.scgi_local"),
    ("network.scgi.open_port = 127.0.0.1:5000\n", "scgi://127.0.0.1:5000"),
    ("scgi_port = localhost:5000\nscgi_local = /tmp/s\n", "scgi:///tmp/s"),
    ('# network.scgi.open_local = /no\nnetwork.scgi.open_port = "127.0.0.1:7"\n',
     "scgi://127.0.0.1:7"),
    ("network.scgi.open_local = (cat,(cfg.basedir),.scgi)\n", None),
])
def test_the_endpoint_is_found_in_rtorrent_rc_preferring_the_unix_socket(tmp_path, rc, url):
    rc_path = write(tmp_path, "rtorrent.rc", rc)
    write(tmp_path, "torque.ini", "[TORQUE]\nrtorrent_rc = %s\n" % rc_path)
    settings = load_settings(str(tmp_path))
    if url is None:
        with pytest.raises(ConfigError, match="no rTorrent endpoint: set scgi_url"):
            pyrotorque.find_rpc_url(settings)
    else:
        assert pyrotorque.find_rpc_url(settings) == url


def _options(tmp_path, **overrides):
    options = pyrotorque._parse_options(["--fg", "--config-dir", str(tmp_path), "-U", "/no/sock"])
    for key, value in overrides.items():
        setattr(options, key, value)
    return options


from hypothesis import given, settings, strategies as st  # noqa: E402

_LINES = st.sampled_from([
    "[TORQUE]", "[GLOBAL]", "[TORQUE", "job.x.handler = pyrotorque:EngineStats",
    "job.x.schedule = second=*/5", "job.x.schedule = hour=99", "job.y.active = maybe",
    "job.broken = 1", "  continued value", "# comment", "; comment", "", "=", "key",
    "job.connstats.active = no", "rpc_timeout = %(nope)s", "scgi_url = ~/x", "%", "x = %",
    "job.x.handler = no.such:Thing", "job..handler = a:b", "[TORQUE]\n[TORQUE]",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINES, max_size=8), st.text(max_size=40))
def test_any_torque_ini_loads_or_fails_with_a_config_error_naming_the_file(tmp_path_factory,
                                                                            lines, noise):
    directory = tmp_path_factory.mktemp("cfg")
    path = write(directory, "torque.ini", "\n".join(lines + [noise]) + "\n")
    try:
        settings = load_settings(str(directory))
        daemon = pyrotorque.Daemon(_options(directory), settings)
        daemon.build_jobs(settings)
    except ConfigError as exc:
        assert path in str(exc) or "torque.ini.default" in str(exc) or "-U" in str(exc), exc


def test_a_job_config_carries_the_shared_item_source_under_a_name_no_dict_method_hides(
        tmp_path):
    settings = load_settings(str(tmp_path))
    _, jobs = pyrotorque.Daemon(_options(tmp_path), settings).build_jobs(settings)
    config = jobs["connstats"].job.config
    assert isinstance(config.item_source, pyrotorque.ItemSource)
    assert config.item_source.proxy is config.proxy


# -- nothing silently ignored: every problem in one list ----------------------------

def _problems(directory, *extra_args, **kwargs):
    """What --check lists for ``directory`` (no rTorrent needed): (exit code, output)."""
    import contextlib
    import io
    options = pyrotorque._parse_options(["--check", "--config-dir", str(directory),
                                         "-U", "/nonexistent/rtorrent.sock", *extra_args])
    settings = load_settings(options.config_dir, options.config_file, options.define,
                             strict=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = pyrotorque.run_check(options, settings, pyrotorque.logging.getLogger("t"))
    return code, out.getvalue()


QUEUE_ON = "[TORQUE]\njob.queue.active = True\n"

PROBLEMS = [
    # (files, expected lines of --check's problem list, exit code)
    ({"torque.ini": "[TORQE]\njob.queue.active = True\n"},
     ["ignored: {d}/torque.ini:1: [TORQE]: unknown section, its 1 key is ignored "
      "(did you mean [TORQUE]?)"], 78),
    ({"torque.ini": "[GLOBAL]\njob.queue.active = True\n"},
     ["ignored: {d}/torque.ini:2: job.queue.active: in [GLOBAL], where pyrotorque does not "
      "look for it; move it to [TORQUE]"], 78),
    ({"config.ini": "[GLOBAL]\nsort_fields = name\nrpc_timeout = 5\n"},
     ["ignored: {d}/config.ini:3: rpc_timeout: in [GLOBAL], where pyrotorque does not look "
      "for it; move it to [TORQUE]"], 78),
    ({"config.ini": "[GLOBAL]\nscgi_ulr = /x\n"},
     ["ignored: {d}/config.ini:2: scgi_ulr: unknown key in [GLOBAL] (did you mean "
      "'scgi_url'?)"], 78),
    ({"config.ini": "[ANNOUNCE]\nX = http://x/\n\n[SWEEEP]\na = 1\nb = 2\n"},
     ["ignored: {d}/config.ini:4: [SWEEEP]: unknown section, its 2 keys are ignored "
      "(did you mean [SWEEP]?)"], 78),
    ({"config.ini": "[MINE]\na = 1\n"},
     ["ignored: {d}/config.ini:1: [MINE]: unknown section, its 1 key is ignored "
      "(pyrotorque reads [TORQUE])"], 78),
    ({"torque.ini": QUEUE_ON + "job.queue.downlaoding_max = 3\n"},
     ["ignored: {d}/torque.ini:3: job.queue.downlaoding_max: unknown key for QueueManager "
      "(did you mean 'downloading_max'?)"], 78),
    ({"torque.ini": "[TORQUE]\njob.queue.downlaoding_max = 3\n"},        # queue inactive
     ["ignored: {d}/torque.ini:2: job.queue.downlaoding_max: unknown key for QueueManager "
      "(did you mean 'downloading_max'?)"], 78),
    ({"torque.ini": "[TORQUE]\nqueue_startable_bas = x\n"},
     ["ignored: {d}/torque.ini:2: queue_startable_bas: unknown key (did you mean "
      "'queue_startable_base'?)"], 78),
    ({"torque.ini": "[TORQUE]\nrpc_timeout = 5\nrpc_timeout = 6\n"},
     ["ignored: {d}/torque.ini:3: rpc_timeout is set again (first on line 2); the last "
      "value wins, delete the other line"], 78),
    ({"torque.ini": QUEUE_ON + "job.queue.startable = name=/S\\\\d+E\\\\d+/\n"},
     ["note:    {d}/torque.ini:3: job.queue.startable: in the regex /S\\d+E\\d+/ an unquoted "
      "'\\\\' is read as one backslash, as pyrocore read it; a single backslash means the "
      "same now (write \\d, not \\\\d)"], 69),
    ({"torque.ini": "[DEFAULT]\nroot = /srv\njob.queue.active = True\n[TORQUE]\n"
                    "job.treewatch.path = %(root)s/w\n"},
     ["ignored: {d}/torque.ini:3: job.queue.active: in [DEFAULT], which pyrotorque reads only "
      "for '%(job.queue.active)s' references, and nothing refers to it (a job key belongs "
      "in [TORQUE])"], 78),
    ({"torque.ini": "[TORQUE]\napscheduler.threadpool.max_threads = 4\n"
                    "apscheduler.coalesce = True\nhttpd.waitress.port = 9000\n"},
     ["ignored: {d}/torque.ini:2: apscheduler.threadpool.max_threads: pyrocore's scheduler "
      "setting; pyrotorque does not use it (it runs one job at a time, never overlapping, "
      "and merges missed runs), delete the line",
      "ignored: {d}/torque.ini:4: httpd.waitress.port: pyrocore's web server setting; "
      "pyrotorque does not use it (use the exporter job for metrics), delete the line"], 78),
    # two bad values of one job: both
    ({"torque.ini": QUEUE_ON + "job.queue.downloading_max = many\njob.queue.intermission = -\n"},
     ["error:   {d}/torque.ini:3: job.queue.downloading_max: ",
      "error:   {d}/torque.ini:4: job.queue.intermission: "], 70),
    # two broken jobs and a misspelled key: all three, one run
    ({"torque.ini": QUEUE_ON + "job.queue.schedule = hour=25\njob.queue.sort_feilds = name\n"
                    "job.connstats.schedule = minute=61\njob.x.handler = pyrotorque:EngineStats\n"
                    "this is no key\n"},
     ["error:   {d}/torque.ini:7: cannot parse 'this is no key\\n' (expected KEY = VALUE)",
      "error:   {d}/torque.ini:6: job 'x' is missing the required 'job.x.schedule' parameter",
      "error:   {d}/torque.ini:5: job.connstats.schedule: ",
      "error:   {d}/torque.ini:3: job.queue.schedule: ",
      "ignored: {d}/torque.ini:4: job.queue.sort_feilds: unknown key for QueueManager (did you "
      "mean 'sort_fields'?)"], 70),
]


@pytest.mark.parametrize("files, lines, code", PROBLEMS, ids=[p[1][-1][9:60] for p in PROBLEMS])
def test_check_lists_every_problem_with_file_line_and_fix(tmp_path, files, lines, code):
    """Each broken config gives exactly these problem lines (and the exit code)."""
    for name, text in files.items():
        write(tmp_path, name, text)
    got_code, out = _problems(tmp_path)
    listed = [l.strip() for l in out.splitlines() if l.startswith("  ") and ": " in l]
    problems = [l for l in listed if re.match(r"(error|ignored|note): ", l)]
    assert len(problems) == len(lines), out
    for line in lines:
        line = line.format(d=tmp_path)
        assert any(l.startswith(line) for l in problems), (line, out)
    assert got_code == code, out


def test_the_daemon_keeps_going_past_what_it_ignores_and_stops_on_all_errors_at_once(tmp_path):
    write(tmp_path, "torque.ini", "[TORQE]\nx = 1\n[TORQUE]\njob.a.handler = a:b\n"
                                  "job.b.schedule = minute=*\n-D\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(str(tmp_path), (), ["nokey"])
    message = str(caught.value)
    for part in ("torque.ini:6: cannot parse", "job 'a' is missing the required 'job.a.schedule'",
                 "job 'b' is missing the required 'job.b.handler'", "-D nokey: expected KEY=VALUE"):
        assert part in message, message
    assert "TORQE" not in message       # ignored things do not stop the daemon
    write(tmp_path, "torque.ini", "[TORQE]\nx = 1\n")
    settings = load_settings(str(tmp_path))
    assert [pyrotorque.problem_kind(w) for w in settings.warnings] == ["ignored"]


def test_config_ini_torque_section_counts_before_torque_ini_as_in_pyrocore(tmp_path):
    write(tmp_path, "config.ini", """\
        [GLOBAL]
        scgi_url = /from/config.ini

        [TORQUE]
        job.connstats.schedule = second=*/5
        job.queue.downloading_max = 3
        """)
    write(tmp_path, "torque.ini", "[TORQUE]\njob.queue.downloading_max = 4\n")
    settings = load_settings(str(tmp_path))
    config_ini = os.path.join(str(tmp_path), "config.ini")
    assert settings.jobs["connstats"].params["schedule"] == "second=*/5"
    assert settings.jobs["connstats"].origins["schedule"] == config_ini + ":5"
    assert settings.jobs["queue"].params["downloading_max"] == "4"    # torque.ini wins
    assert settings.files == ["torque.ini.default", config_ini,
                              os.path.join(str(tmp_path), "torque.ini")]
    assert config_ini + ":4: [TORQUE] is read, before torque.ini, as pyrocore read it" \
        in settings.notes
    assert settings.warnings == [] and settings.errors == []
    assert pyrotorque.find_rpc_url(settings) == "/from/config.ini"


def test_section_names_are_case_insensitive_and_torque_ini_may_set_global_keys(tmp_path):
    write(tmp_path, "torque.ini", "[global]\nscgi_url = /from/torque.ini\n"
                                  "[Torque]\njob.connstats.schedule = hour=*\n")
    settings = load_settings(str(tmp_path))
    assert settings.jobs["connstats"].params["schedule"] == "hour=*"
    assert pyrotorque.find_rpc_url(settings) == "/from/torque.ini"
    assert settings.warnings == []


def test_sections_for_pyrocores_other_tools_are_named_once_and_are_no_problem(tmp_path):
    write(tmp_path, "config.ini", """\
        [GLOBAL]
        config_script = %(config_dir)s/config.py
        sort_fields = name,alias
        base = /srv
        rtorrent_rc = %(base)s/rtorrent.rc

        [FORMATS]
        default = $(name)s

        [SWEEP]
        default_rules = builtin, custom
        [SWEEP_RULES_BUILTIN]
        bluray.prio = 100
        """)
    write(tmp_path, "config.py", "# pyrocore's custom fields\n")
    code, out = _problems(tmp_path)
    config_ini = os.path.join(str(tmp_path), "config.ini")
    assert "info: %s:7: [FORMATS] is used by pyrocore's rtcontrol (output formats), not by " \
           "pyrotorque" % config_ini in out
    assert "info: %s:10: [SWEEP] is used by pyrocore's rtsweep, not by pyrotorque" % config_ini \
        in out
    assert "info: %s is used by pyrocore's other tools, not by pyrotorque" \
        % tmp_path.joinpath("config.py") in out
    assert "Configuration problems" not in out and code == 69, out   # only rTorrent is missing


def test_a_dangling_torque_ini_symlink_is_an_error_naming_its_target(tmp_path):
    target = str(tmp_path / "elsewhere" / "torque.ini")
    os.symlink(target, str(tmp_path / "torque.ini"))
    code, out = _problems(tmp_path)
    assert "error:   %s: a symbolic link to %s, which does not exist; fix the link or remove " \
           "it" % (tmp_path / "torque.ini", target) in out
    assert code == 70
    with pytest.raises(ConfigError, match="symbolic link to .*elsewhere/torque.ini"):
        load_settings(str(tmp_path))


def test_a_config_dir_that_does_not_exist_is_an_error_but_a_missing_default_is_not(
        tmp_path, monkeypatch):
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match="nope: the configuration directory does not exist"):
        load_settings(missing)
    monkeypatch.setenv("PYRO_CONFIG_DIR", missing)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()
    monkeypatch.delenv("PYRO_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings()
    assert settings.errors == [] and set(settings.jobs) >= {"connstats", "queue"}
    assert settings.notes == ["%s does not exist: running on the built-in defaults"
                              % (tmp_path / ".pyroscope")]


def test_keys_only_used_by_interpolation_are_no_problem(tmp_path):
    write(tmp_path, "torque.ini", "[TORQUE]\nroot = /srv\njob.treewatch.path = %(root)s/w\n")
    assert load_settings(str(tmp_path)).warnings == []
