"""pyrosimple's config.toml: its documented examples give the same jobs as torque.ini."""
import datetime
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import pyrotorque
from daemon_process import DaemonProcess, run_cli
from pyrotorque import ConfigError, load_settings

import rtlab  # conftest puts contrib/ on sys.path

DEAD_TRACKER = "http://127.0.0.1:9/announce"


@pytest.fixture(autouse=True)
def no_pyrosimple_environment(monkeypatch, tmp_path):
    """No PYRO_* from the developer's shell, and a HOME without a config.toml."""
    for name in ("PYRO_CONF", "PYRO_SCGI_URL", "PYRO_RTORRENT_RC", "PYRO_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write(path, text):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(text))
    return str(path)


def toml_settings(tmp, text, monkeypatch, config_dir=None):
    """Settings read from ``text`` as $PYRO_CONF (the config dir has no torque.ini)."""
    path = write(os.path.join(str(tmp), "config.toml"), text)
    monkeypatch.setenv("PYRO_CONF", path)
    return load_settings(config_dir or os.path.join(str(tmp), "nocfg"))


def ini_settings(tmp, text):
    cfg = os.path.join(str(tmp), "inicfg")
    write(os.path.join(cfg, "torque.ini"), text)
    return load_settings(cfg)


def typed_jobs(settings, names=None):
    """What each job's constructor receives, and which jobs are active."""
    jobs = {}
    for name, spec in sorted(settings.jobs.items()):
        if names is not None and name not in names:
            continue
        handler = pyrotorque.resolve_handler(spec.params["handler"])
        config = pyrotorque.job_config(spec, handler, settings, warn=None)
        jobs[name] = (handler.__name__, {k: v for k, v in config.items()
                                         if k not in ("settings", "handler")})
    return jobs


def active_jobs(settings):
    return {name for name, spec in settings.jobs.items()
            if spec.value("active", pyrotorque.parse_bool, True)}


# -- pyrosimple's documented examples, each with the torque.ini a pyrocore user writes --

WATCH = "/tmp/h3-pyrosimple-watch"       # replaced by a real folder in the tests

DOC_EXAMPLES = {
    "tutorial (pyrotorque-tutorial.md, full config.toml)": ('''
        [TORQUE]
        [TORQUE.load]
        handler = "pyrocore.job.watch:TreeWatch"
        schedule = "minute=*/15"
        check_unhandled = true
        path = "WATCH"
        started = false
        cmd_set_custom_fields = """
            d.custom.set=loaded_by,pyrotorque
            d.custom.set=tracker_alias,{{tracker_alias}}
        """
        cmd_download_directory = "d.directory.set=/var/rtorrent/downloading/"
        [TORQUE.start]
        handler         = "pyrocore.job.queue:QueueManager"
        schedule        = "minute=*/5"
        matcher         = "custom_loaded_by=pyrotorque is_ignored=no prio>0"
        sort_fields     = "-prio,loaded,name"
        start_at_once   = 1
        downloading     = "is_active=yes is_complete=no down>0"
        downloading_max = 20
        [TORQUE.move_complete]
        handler       = "pyrosimple.job.move_path:PathMover"
        schedule      = "minute=*/10"
        matcher       = "is_ignored=no is_complete=yes path=/var/rtorrent/downloading/* xfer=0"
        target        = "/var/rtorrent/done"
        ''', '''
        [TORQUE]
        job.connstats.active = False
        job.load.handler = pyrotorque:TreeWatch
        job.load.schedule = minute=*/15
        job.load.path = WATCH
        job.load.load_mode = normal
        job.load.cmd.set_custom_fields.1 = d.custom.set=loaded_by,pyrotorque
        job.load.cmd.set_custom_fields.2 = d.custom.set=tracker_alias,{{tracker_alias}}
        job.load.cmd.download_directory = d.directory.set=/var/rtorrent/downloading/
        job.start.handler = pyrotorque:QueueManager
        job.start.schedule = minute=*/5
        job.start.startable = custom_loaded_by=pyrotorque is_ignored=no prio>0
        job.start.sort_fields = -prio,loaded,name
        job.start.start_at_once = 1
        job.start.downloading = is_active=yes is_complete=no down>0
        job.start.downloading_max = 20
        job.start.downloading_min = 0
        job.start.intermission = 120
        job.move_complete.handler = pyrotorque:CompletionHandler
        job.move_complete.schedule = minute=*/10
        job.move_complete.matcher = is_ignored=no is_complete=yes path=/var/rtorrent/downloading/* xfer=0
        job.move_complete.target = /var/rtorrent/done
        job.move_complete.use_targetdir = False
        '''),
    "queue (pyrotorque-jobs.md, Queue Manager)": ('''
        [TORQUE.queue]
        handler = "pyrosimple.job.queue:QueueManager"
        schedule = "minute=*"
        sort = "-prio,loaded,name"
        matcher = "is_open=no tagged=torqued is_ignored=no done=0 message=''"
        downloading_min = 1
        downloading_max = 100
        ''', '''
        [TORQUE]
        job.connstats.active = False
        job.queue.handler = pyrotorque:QueueManager
        job.queue.active = True
        job.queue.schedule = minute=*
        job.queue.sort_fields = -prio,loaded,name
        job.queue.startable = is_open=no tagged=torqued is_ignored=no done=0 message=''
        job.queue.downloading_min = 1
        job.queue.downloading_max = 100
        job.queue.start_at_once = 1
        job.queue.intermission = 120
        '''),
    "tree watch (pyrotorque-jobs.md, Tree Watch)": ('''
        [TORQUE.watch]
        handler = "pyrocore.job.watch:TreeWatch"
        schedule = "second=*/5"
        path = "WATCH"
        started = false
        check_unhandled = true
        remove_already_added = true
        cmd_label = """
        {% if 'TV' in flags %}d.custom1.set=TV{% endif %}
        """
        ''', '''
        [TORQUE]
        job.connstats.active = False
        job.watch.handler = pyrotorque:TreeWatch
        job.watch.schedule = second=*/5
        job.watch.path = WATCH
        job.watch.load_mode = normal
        job.watch.cmd.label = {{if 'TV' in flags}}d.custom1.set=TV{{endif}}
        '''),
    "usage (usage-pyrotorque.md, Job Configuration)": ('''
        [TORQUE]
        [TORQUE._settings]
        autoreload = true # false by default
        [TORQUE.stats]
        handler = "pyrocore.torrent.jobs:EngineStats"
        schedule = "minute=*"
        active = true
        dry_run = true
        [TORQUE.watch]
        handler = "pyrocore.torrent.watch:TreeWatch"
        schedule = "minute=*"
        active = true
        dry_run = true
        path = "WATCH"
        cmd.test = "d.custom=test"
        [TORQUE.queue]
        handler = "pyrocore.torrent.watch:QueueManager"
        schedule = "hour=*"
        active = true
        dry_run = true
        ''', '''
        [TORQUE]
        job.connstats.active = False
        job.stats.handler = pyrotorque:EngineStats
        job.stats.schedule = minute=*
        job.stats.active = True
        job.stats.dry_run = True
        job.watch.handler = pyrotorque:TreeWatch
        job.watch.schedule = minute=*
        job.watch.active = True
        job.watch.dry_run = True
        job.watch.path = WATCH
        job.watch.cmd.test = d.custom=test
        job.queue.handler = pyrotorque:QueueManager
        job.queue.schedule = hour=*
        job.queue.active = True
        job.queue.dry_run = True
        job.queue.startable = is_complete=no is_ignored=no is_open=no message="" done=0
        job.queue.sort_fields = name,hash
        job.queue.downloading_min = 0
        job.queue.downloading_max = 20
        job.queue.start_at_once = 1
        job.queue.intermission = 120
        '''),
    "command (pyrotorque-jobs.md, Command)": ('''
        [TORQUE.send_mail]
        handler       = "pyrosimple.job.action:Command"
        args          = "echo 'pyrotorque is still running!' | mail -s 'pyrotorque check'"
        shell         = true
        schedule      = "hour=*"
        ''', '''
        [TORQUE]
        job.connstats.active = False
        job.send_mail.handler = pyrotorque:ExecCommand
        job.send_mail.command = echo 'pyrotorque is still running!' | mail -s 'pyrotorque check'
        job.send_mail.shell = True
        job.send_mail.schedule = hour=*
        '''),
    "item command (pyrotorque-jobs.md, Item Command)": ('''
        [TORQUE.log_messaages]
        handler       = "pyrosimple.job.action:ItemCommand"
        args          = "echo '{{item.hash}} has message {{item.message}}' >> /var/log/rtorrent/messages.log"
        shell         = true
        schedule      = "hour=*"
        matcher       = "message=/.+/"
        view          = "default"
        ''', '''
        [TORQUE]
        job.connstats.active = False
        job.log_messaages.handler = pyrotorque:ActionRule
        job.log_messaages.action = exec=/bin/sh -c 'echo '"'"''"'"'"${1}"'"'"' has message '"'"'"${2}"'"'"''"'"' >> /var/log/rtorrent/messages.log' sh {{item.hash}} {{item.message}}
        job.log_messaages.schedule = hour=*
        job.log_messaages.matcher = message=/.+/
        job.log_messaages.view = default
        '''),
    "action (pyrotorque-jobs.md, Action Job)": ('''
        [TORQUE.stop_well_seeded]
        handler       = "pyrosimple.job.action:Action"
        schedule      = "hour=*"
        matcher       = "is_ignored=no ratio>5.0"
        view          = "complete"
        action        = "stop"
        ''', '''
        [TORQUE]
        job.connstats.active = False
        job.stop_well_seeded.handler = pyrotorque:ActionRule
        job.stop_well_seeded.schedule = hour=*
        job.stop_well_seeded.matcher = is_ignored=no ratio>5.0
        job.stop_well_seeded.view = complete
        job.stop_well_seeded.action = stop
        '''),
}


@pytest.fixture
def watch_dir(tmp_path):
    path = tmp_path / "watch"
    path.mkdir()
    return str(path)


@pytest.mark.parametrize("example", sorted(DOC_EXAMPLES))
def test_each_documented_pyrosimple_example_gives_the_jobs_of_its_torque_ini(
        example, tmp_path, monkeypatch, watch_dir):
    toml_text, ini_text = (text.replace("WATCH", watch_dir) for text in DOC_EXAMPLES[example])
    from_toml = toml_settings(tmp_path, toml_text, monkeypatch)
    monkeypatch.delenv("PYRO_CONF")
    from_ini = ini_settings(tmp_path, ini_text)
    assert active_jobs(from_toml) == active_jobs(from_ini)
    assert typed_jobs(from_toml) == typed_jobs(from_ini, names=set(from_toml.jobs))
    for spec in from_toml.jobs.values():        # and each job can really be built
        handler = pyrotorque.resolve_handler(spec.params["handler"])
        config = pyrotorque.job_config(spec, handler, from_toml,
                                       schedule=spec.value("schedule", pyrotorque.CronSchedule))
        pyrotorque._close_job(handler(config), logging.getLogger("test"))


def test_pyrosimple_keys_that_have_no_equivalent_are_named_with_the_fix(tmp_path, monkeypatch,
                                                                         watch_dir):
    text = DOC_EXAMPLES["tree watch (pyrotorque-jobs.md, Tree Watch)"][0].replace("WATCH",
                                                                                  watch_dir)
    settings = toml_settings(tmp_path, text + "[TORQUE._settings]\npid_file = '/x.pid'\n",
                             monkeypatch)
    path = os.path.join(str(tmp_path), "config.toml")
    assert settings.warnings == [
        "%s:8: job.watch.remove_already_added: not read: a metafile whose item is already in "
        "rTorrent is left alone (never loaded twice); remove_loaded = true deletes every "
        "metafile once its item is in rTorrent" % path,
        "%s:13: TORQUE._settings.pid_file: not read; use --pid-file on the command line" % path,
    ]


# -- where values come from ------------------------------------------------------------

def test_errors_name_the_config_toml_line_of_the_key(tmp_path, monkeypatch):
    settings = toml_settings(tmp_path, '''
        [TORQUE.queue]
        handler = "pyrosimple.job.queue:QueueManager"
        schedule = "minute=*"

        downloading_max = "many"
        ''', monkeypatch)
    spec = settings.jobs["queue"]
    with pytest.raises(ConfigError) as caught:
        spec.value("downloading_max", int)
    path = os.path.join(str(tmp_path), "config.toml")
    assert str(caught.value).startswith("%s:6: job.queue.downloading_max: 'many'" % path)
    assert spec.origins["startable"] == "%s:2" % path     # a pyrosimple default: its table


def test_an_unknown_key_in_config_toml_is_reported_with_a_did_you_mean(tmp_path, monkeypatch):
    path = write(tmp_path / "config.toml", '''
        scgi_urll = "/tmp/x"
        [TORQUE.queue]
        handler = "pyrosimple.job.queue:QueueManager"
        schedule = "minute=*"
        downlaoding_max = 3
        ''')
    code, out, err = run_cli("--check", "--config-dir", str(tmp_path / "cfg"), "-U",
                             "scgi://127.0.0.1:9", env={"PYRO_CONF": path, "HOME": str(tmp_path)})
    assert "%s:2: scgi_urll: unknown key, not read (did you mean 'scgi_url'?)" % path in out
    assert ("%s:6: job.queue.downlaoding_max: unknown key for QueueManager (did you mean "
            "'downloading_max'?)" % path) in out


def test_a_toml_syntax_error_names_file_and_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as caught:
        toml_settings(tmp_path, '[TORQUE.queue]\nhandler = "x:y"\nschedule = minute=*\n',
                      monkeypatch)
    assert str(caught.value).startswith(os.path.join(str(tmp_path), "config.toml") + ":3: ")


def test_without_tomllib_the_error_says_how_to_convert(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tomllib", None)      # as on Python 3.9 and 3.10
    with pytest.raises(ConfigError) as caught:
        toml_settings(tmp_path, '[TORQUE.q]\nhandler = "x:y"\n', monkeypatch)
    message = str(caught.value)
    assert "needs Python 3.11 or later" in message
    assert "--convert-config %s > ~/.pyroscope/torque.ini" % (tmp_path / "config.toml") \
        in message


# -- which file is read -----------------------------------------------------------------

QUEUE_TOML = '''
    [TORQUE.start]
    handler = "pyrosimple.job.queue:QueueManager"
    schedule = "minute=*"
    '''


def test_the_default_config_toml_is_read_when_there_is_no_torque_ini(tmp_path, caplog):
    path = write(tmp_path / "home/.config/pyrosimple/config.toml", QUEUE_TOML)
    with caplog.at_level(logging.INFO, "pyrotorque"):
        settings = load_settings(str(tmp_path / "cfg"))
    assert settings.files == [path]
    assert set(settings.jobs) == {"start"}      # pyrosimple has no built-in jobs
    assert "Configuration read from pyrosimple's %s" % path in caplog.text


def test_torque_ini_wins_over_config_toml_and_the_warning_names_both(tmp_path):
    toml = write(tmp_path / "home/.config/pyrosimple/config.toml", QUEUE_TOML)
    ini = write(tmp_path / "cfg/torque.ini", "[TORQUE]\n")
    settings = load_settings(str(tmp_path / "cfg"))
    assert "start" not in settings.jobs
    assert settings.warnings == [
        "%s: its [TORQUE] jobs are not read, because %s exists (torque.ini wins; remove or "
        "rename it to run the config.toml jobs)" % (toml, ini)]


def test_a_config_toml_without_a_torque_table_is_not_the_daemons(tmp_path):
    write(tmp_path / "home/.config/pyrosimple/config.toml", 'fast_query = 1\n')
    (tmp_path / "cfg").mkdir()
    assert load_settings(str(tmp_path / "cfg")).files == ["torque.ini.default"]


def test_pyro_conf_naming_a_missing_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_CONF", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="nope.toml: no such file .named by PYRO_CONF."):
        load_settings(str(tmp_path / "cfg"))


# -- connections --------------------------------------------------------------------------

@pytest.mark.parametrize("written", ["local", "@local"])
def test_scgi_url_may_name_a_connection_alias(written, tmp_path, monkeypatch):
    settings = toml_settings(tmp_path, '''
        scgi_url = "%s"
        [CONNECTIONS]
        local = "~/rtorrent/.scgi_local"
        remote = "scgi://example.com:9000"
        ''' % written, monkeypatch)
    assert pyrotorque.find_rpc_url(settings) == os.path.expanduser("~/rtorrent/.scgi_local")


def test_an_unknown_at_alias_is_an_error_with_a_did_you_mean(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"config.toml:1: scgi_url: no connection 'locl' in "
                                          r"\[CONNECTIONS\] \(did you mean 'local'\?\)"):
        toml_settings(tmp_path, 'scgi_url = "@locl"\n[CONNECTIONS]\nlocal = "/x"\n', monkeypatch)


def test_a_job_naming_the_daemons_rtorrent_or_the_only_one_named_shares_its_connection(
        tmp_path, monkeypatch):
    text = '''
        [CONNECTIONS]
        local = "/tmp/one"
        [TORQUE.start]
        handler = "pyrosimple.job.queue:QueueManager"
        schedule = "minute=*"
        scgi_url = "local"
        '''
    settings = toml_settings(tmp_path, text, monkeypatch)
    assert settings.get("scgi_url") == "/tmp/one"
    assert "scgi_url" not in settings.jobs["start"].params
    settings = toml_settings(tmp_path, 'scgi_url = "/tmp/two"\n' + textwrap.dedent(text),
                             monkeypatch)
    assert settings.get("scgi_url") == "/tmp/two"
    assert settings.jobs["start"].params["scgi_url"] == "/tmp/one"      # its own


def test_jobs_with_their_own_scgi_url_work_on_their_rtorrent(rtorrent, short_tmp, monkeypatch):
    with rtlab.RTorrent() as other:
        settings = toml_settings(short_tmp, '''
            scgi_url = "main"
            [CONNECTIONS]
            main = "%s"
            second = "%s"
            [TORQUE.queue_main]
            handler = "pyrosimple.job.queue:QueueManager"
            schedule = "second=*"
            intermission = 0
            [TORQUE.queue_second]
            handler = "pyrosimple.job.queue:QueueManager"
            schedule = "second=*"
            intermission = 0
            scgi_url = "@second"
            ''' % (rtorrent.url, other.url), monkeypatch)
        here = _load(rtorrent, short_tmp / "a", "here", 1)
        there = _load(other, short_tmp / "b", "there", 1)
        options = pyrotorque._parse_options(["--fg", "--config-dir", str(short_tmp)])
        _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
        assert jobs["queue_second"].job.proxy.endpoint.url == other.url
        jobs["queue_second"].job.run()
        _wait_active(other, {there})
        _wait_active(rtorrent, set())
        jobs["queue_main"].job.run()
        _wait_active(rtorrent, {here})
        code, out, err = run_cli("--check", "--config-dir", str(short_tmp / "cfg"),
                                 env={"PYRO_CONF": str(short_tmp / "config.toml"),
                                      "HOME": str(short_tmp)})
        assert "rTorrent of queue_second at %s: version %s" % (other.url, other.version) in out
        assert code == 0, out + err
        other.stop()
        code, out, err = run_cli("--check", "--config-dir", str(short_tmp / "cfg"),
                                 env={"PYRO_CONF": str(short_tmp / "config.toml"),
                                      "HOME": str(short_tmp)})
        assert "rTorrent of queue_second: ERROR: " in out
        assert code != 0


# -- templates ------------------------------------------------------------------------------

def test_jinja_blocks_become_our_template_blocks_and_render_alike():
    text = pyrotorque._from_jinja("{# a comment #}{% if 'TV' in flags %}d.custom1.set=TV"
                                  "{% elif x %}no{%- else -%}d.custom1.set=other{% endif %}", "k")
    template = pyrotorque.WatchTemplate(text)
    assert template.render({"flags": {"TV"}, "x": 0}) == "d.custom1.set=TV"
    assert template.render({"flags": set(), "x": 0}) == "d.custom1.set=other"


def test_a_jinja_tag_we_cannot_do_is_an_error_naming_the_key(tmp_path, monkeypatch, watch_dir):
    with pytest.raises(ConfigError, match=r"config.toml:6: job.w.cmd_x: Jinja2's '\{% for %\}'"):
        toml_settings(tmp_path, '''
            [TORQUE.w]
            handler = "pyrosimple.job.watch:TreeWatch"
            schedule = "minute=*"
            path = "%s"
            cmd_x = "{%% for f in flags %%}{{f}}{%% endfor %%}"
            ''' % watch_dir, monkeypatch)


@pytest.mark.parametrize("hostile", ["$(touch PWNED)", "'; touch PWNED; '", '"`touch PWNED`"'])
def test_an_item_command_shell_script_gets_item_values_as_arguments_never_as_script(
        hostile, tmp_path):
    script, words = pyrotorque._shell_script_with_args(
        "echo '{{item.name}} is' \"{{item.name}}\" {{item.name}} >> out.txt")
    argv = ["/bin/sh", "-c", script, "sh"] + [
        pyrotorque.ItemTemplate(word).render({"item": {"name": hostile}}) for word in words]
    subprocess.run(argv, cwd=str(tmp_path), check=True)
    assert (tmp_path / "out.txt").read_text() == "%s is %s %s\n" % (hostile, hostile, hostile)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("action, args, lines", [
    ("stop", [], "stop"),
    ("delete", [], "erase"),
    ("set_prio", [0], "priority=0"),
    ("set_custom", ["kind", "{{d.name}}"], "custom.kind={{d.name}}"),
    ("tag", ["new,-old +kept"], "tag=new kept\nuntag=old"),
    ("set_throttle", ["slow"], "throttle=slow"),
])
def test_pyrosimple_actions_become_action_lines(action, args, lines):
    assert pyrotorque._pyrosimple_action(action, args, "w") == lines
    pyrotorque.parse_actions(lines, allow_erase=True)


@pytest.mark.parametrize("action", ["purge", "cull", "hash_check", "stopp"])
def test_a_pyrosimple_action_without_equivalent_is_an_error(action):
    with pytest.raises(ConfigError, match="has no equivalent"):
        pyrotorque._pyrosimple_action(action, [], "w")


@pytest.mark.parametrize("handler, builtin", [
    ("pyrosimple.job.queue:QueueManager", "QueueManager"),
    ("pyrosimple.job.watch:TreeWatch", "TreeWatch"),
    ("pyrosimple.job.metrics:EngineStats", "EngineStats"),
    ("pyrosimple.job.metrics:RtorrentExporter", "RtorrentExporter"),
    ("pyrosimple.job.action:Command", "ExecCommand"),
    ("pyrosimple.job.action:ItemCommand", "ActionRule"),
    ("pyrosimple.job.action:Action", "ActionRule"),
    ("pyrosimple.job.move_path:PathMover", "CompletionHandler"),
    ("pyrocore.torrent.queue:QueueManager", "QueueManager"),
    ("pyrocore.torrent.jobs:EngineStats", "EngineStats"),
])
def test_pyrosimple_handler_names_resolve_to_the_builtin_jobs(handler, builtin):
    assert pyrotorque.resolve_handler(handler).__name__ == builtin


# -- jitter -------------------------------------------------------------------------------

class _Job:
    RUN_AT_START = False


def test_jitter_delays_each_run_by_zero_to_n_seconds(monkeypatch):
    daemon = pyrotorque.Daemon(pyrotorque._parse_options(["--fg"]), pyrotorque.Settings("/x"))
    plain = pyrotorque.ScheduledJob(None, pyrotorque.CronSchedule("second=*/10"), _Job(), None)
    jittery = pyrotorque.ScheduledJob(None, pyrotorque.CronSchedule("second=*/10 jitter=5"),
                                      _Job(), None)
    plain.spec = jittery.spec = pyrotorque.JobSpec("j")
    now = datetime.datetime(2030, 1, 1, 12, 0, 1).timestamp()
    delays = []
    for _ in range(300):
        daemon._schedule(plain, now)
        daemon._schedule(jittery, now)
        delays.append(jittery.next_due - plain.next_due)
    assert plain.next_due == now + 9
    assert 0 <= min(delays) and max(delays) <= 5
    assert max(delays) > 4 and min(delays) < 1     # spread over the whole range
    assert str(jittery.schedule) == "second=*/10 jitter=5"


def test_jitter_is_whole_seconds_as_pyrosimple_reads_it():
    assert pyrotorque.CronSchedule("minute=* jitter=30").jitter == 30
    assert pyrotorque.CronSchedule("minute=*").jitter == 0
    with pytest.raises(ConfigError, match="jitter: '1.5' is not a whole number of seconds"):
        pyrotorque.CronSchedule("minute=* jitter=1.5")


# -- convert --------------------------------------------------------------------------------

@pytest.mark.parametrize("example", sorted(DOC_EXAMPLES))
def test_convert_config_writes_a_torque_ini_that_gives_the_same_jobs(example, tmp_path,
                                                                     monkeypatch, watch_dir):
    toml_text = DOC_EXAMPLES[example][0].replace("WATCH", watch_dir)
    path = write(tmp_path / "config.toml", toml_text)
    code, out, err = run_cli("--convert-config", path, env={"HOME": str(tmp_path / "home")})
    assert code == 0, err
    cfg = tmp_path / "converted"
    write(cfg / "torque.ini", out)
    from_ini = load_settings(str(cfg))
    from_toml = toml_settings(tmp_path, toml_text, monkeypatch)
    assert active_jobs(from_ini) == active_jobs(from_toml)
    assert typed_jobs(from_ini, names=set(from_toml.jobs)) == typed_jobs(from_toml)
    assert from_ini.torque.get("scgi_url", "") == from_toml.torque.get("scgi_url", "")


def test_convert_config_keeps_percent_signs_and_resolves_aliases(tmp_path, monkeypatch):
    text = '''
        scgi_url = "@local"
        [CONNECTIONS]
        local = "/tmp/rt.sock"
        [ALIASES]
        Ubuntu = ["ubuntu.com"]
        [TORQUE.run]
        handler = "pyrosimple.job.action:Command"
        schedule = "hour=*"
        args = ["date", "+%Y-%m-%d 100%"]
        '''
    path = write(tmp_path / "config.toml", text)
    code, out, err = run_cli("--convert-config", path, env={"HOME": str(tmp_path / "home")})
    assert code == 0, err
    assert "scgi_url = /tmp/rt.sock\n" in out
    assert "# Ubuntu = ubuntu.com\n" in out
    settings = load_settings(os.path.dirname(write(tmp_path / "c/torque.ini", out)))
    assert settings.jobs["run"].params["command"] == "date '+%Y-%m-%d 100%'"


# -- behaviour on a real rTorrent -------------------------------------------------------------

def _load(rt, tmp, name, prio):
    path = rtlab.make_payload(str(tmp), name, 64 * 1024)
    return rt.load_raw(rtlab.make_torrent(path, DEAD_TRACKER), "d.priority.set=%d" % prio)


def test_a_queue_from_config_toml_starts_items_on_a_real_rtorrent(rtorrent, short_tmp,
                                                                  monkeypatch):
    settings = toml_settings(short_tmp, '''
        scgi_url = "@lab"
        [CONNECTIONS]
        lab = "%s"
        [TORQUE.queue]
        handler = "pyrosimple.job.queue:QueueManager"
        schedule = "second=*"
        matcher = "is_complete=no is_ignored=no is_open=no message='' done=0 prio>1"
        sort = "-prio,name"
        intermission = 0
        ''' % rtorrent.url, monkeypatch)
    low = _load(rtorrent, short_tmp, "low", 1)
    normal = _load(rtorrent, short_tmp, "normal", 2)
    high = _load(rtorrent, short_tmp, "high", 3)
    options = pyrotorque._parse_options(["--fg", "--config-dir", str(short_tmp)])
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    queue = jobs["queue"].job
    queue.run()         # pyrosimple's start_at_once = 1: the best one first
    _wait_active(rtorrent, {high})
    queue.run()
    _wait_active(rtorrent, {high, normal})
    queue.run()         # prio>1 keeps the low one back
    time.sleep(0.3)
    _wait_active(rtorrent, {high, normal})
    assert low


def _wait_active(rt, expected):
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        active = {row["d.hash"] for row in rt.downloads("d.hash=", "d.is_active=")
                  if row["d.is_active"]}
        if active == set(expected):
            return
        time.sleep(0.05)
    assert active == set(expected)


def test_check_of_a_pyrosimple_config_lists_its_jobs_and_what_is_not_read(rtorrent, tmp_path,
                                                                          watch_dir):
    path = write(tmp_path / "config.toml", '''
        scgi_url = "lab"
        [CONNECTIONS]
        lab = "%s"
        [TORQUE._settings]
        autoreload = true
        [TORQUE.queue]
        handler = "pyrosimple.job.queue:QueueManager"
        schedule = "minute=* jitter=10"
        sort = "-prio,loaded,name"
        matcher = "is_open=no tagged=torqued is_ignored=no done=0 message=''"
        downloading_max = 100
        [TORQUE.watch]
        handler = "pyrosimple.job.watch:TreeWatch"
        schedule = "second=*/5"
        path = "%s"
        check_unhandled = true
        cmd_label = """
        {%% if 'TV' in flags %%}d.custom1.set=TV{%% endif %%}
        """
        [TORQUE.stop_well_seeded]
        handler = "pyrosimple.job.action:Action"
        schedule = "hour=*"
        matcher = "is_ignored=no ratio>5.0"
        view = "complete"
        action = "stop"
        ''' % (rtorrent.url, watch_dir))
    code, out, err = run_cli("--check", "--config-dir", str(tmp_path / "cfg"),
                             env={"PYRO_CONF": path, "HOME": str(tmp_path)})
    print(out)
    assert "configuration from: %s" % path in out
    assert "TORQUE._settings.autoreload: not read; pyrotorque re-reads" in out
    assert "schedule minute=* jitter=10" in out
    assert "every method the active jobs need is there" in out
    assert "1 ignored setting; exit 78" in out
    assert code == 78, out + err        # it would run, but _settings.autoreload is not read


def test_a_path_mover_from_config_toml_moves_complete_data_and_keeps_it_seeding(
        rtorrent, short_tmp, monkeypatch):
    downloading, done = short_tmp / "downloading", short_tmp / "done"
    downloading.mkdir()
    done.mkdir()
    data = rtlab.make_payload(str(downloading), "item", 256 * 1024)
    info_hash = rtorrent.load_raw(rtlab.make_torrent(data, DEAD_TRACKER),
                                  "d.directory.set=" + str(downloading),
                                  "d.custom.set=targetdir,/elsewhere", start=True)
    rtorrent.wait_for(lambda: rtorrent.proxy.d.complete(info_hash) == 1, 10)
    settings = toml_settings(short_tmp, '''
        scgi_url = "%s"
        [TORQUE.move_complete]
        handler       = "pyrosimple.job.move_path:PathMover"
        schedule      = "minute=*/10"
        matcher       = "is_ignored=no is_complete=yes path=%s/* xfer=0"
        target        = "%s"
        ''' % (rtorrent.url, downloading, done), monkeypatch)
    assert not settings.warnings
    options = pyrotorque._parse_options(["--fg", "--config-dir", str(short_tmp)])
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    jobs["move_complete"].job.run()
    assert (done / "item").is_file() and not os.path.exists(data)
    rtorrent.wait_for(lambda: rtorrent.proxy.d.is_active(info_hash) == 1, 5)
    assert rtorrent.proxy.d.directory(info_hash) == str(done)   # not the targetdir custom


def test_a_path_mover_without_is_complete_is_told_that_only_complete_items_move(
        tmp_path, monkeypatch):
    settings = toml_settings(tmp_path, '''
        [TORQUE.mv]
        handler = "pyrosimple.job.move_path:PathMover"
        schedule = "hour=*"
        matcher = "xfer=0"
        target = "/done"
        ''', monkeypatch)
    assert settings.warnings == [
        "%s:5: job.mv.matcher: pyrosimple's PathMover moved incomplete items too; pyrotorque "
        "moves complete ones only (is_complete=yes is added)" % (tmp_path / "config.toml")]


def test_an_item_command_from_config_toml_runs_per_item_and_no_name_injects(
        rtorrent, short_tmp, monkeypatch):
    hostile = "x'; touch PWNED; echo '$(touch PWNED2)"
    data = rtlab.make_payload(str(short_tmp / "data"), hostile, 64 * 1024)
    info_hash = rtorrent.load_raw(rtlab.make_torrent(data, DEAD_TRACKER))
    rtorrent.proxy.d.message.set(info_hash, "tracker says no")
    out = short_tmp / "messages.log"
    settings = toml_settings(short_tmp, '''
        scgi_url = "%s"
        [TORQUE.log_messages]
        handler       = "pyrosimple.job.action:ItemCommand"
        args          = "echo '{{item.name}} has message {{item.message}}' >> %s"
        shell         = true
        cwd           = "%s"
        schedule      = "hour=*"
        matcher       = "message=/.+/"
        view          = "default"
        ''' % (rtorrent.url, out, short_tmp), monkeypatch)
    options = pyrotorque._parse_options(["--fg", "--config-dir", str(short_tmp)])
    _, jobs = pyrotorque.Daemon(options, settings).build_jobs(settings)
    jobs["log_messages"].job.run()
    assert out.read_text() == "%s has message tracker says no\n" % hostile
    assert not (short_tmp / "PWNED").exists() and not (short_tmp / "PWNED2").exists()


@pytest.mark.parametrize("table", ["TORQE", "torque"])
def test_a_misspelled_torque_table_is_read_and_named(table, tmp_path):
    path = write(tmp_path / "home/.config/pyrosimple/config.toml", QUEUE_TOML.replace(
        "TORQUE", table))
    settings = load_settings(str(tmp_path / "cfg"))
    assert settings.files == [path]
    assert settings.warnings == ["%s:2: %s: unknown table, not read (did you mean 'TORQUE'?)"
                                 % (path, table)]


def test_the_daemon_says_which_file_it_read_and_reloads_config_toml_on_sighup(rtorrent,
                                                                              short_tmp):
    path = write(short_tmp / "config.toml", '''
        scgi_url = "%s"
        [TORQUE.stats]
        handler = "pyrosimple.job.metrics:EngineStats"
        schedule = "hour=*"
        ''' % rtorrent.url)
    env = {"PYRO_CONF": path, "HOME": str(short_tmp)}
    with DaemonProcess("--fg", "--config-dir", str(short_tmp / "cfg"), workdir=short_tmp,
                       env=env) as daemon:
        daemon.wait_for(r"started \(pid \d+\) with 1 job: stats")
        with open(path, "a") as handle:
            handle.write('[TORQUE.queue]\nhandler = "pyrosimple.job.queue:QueueManager"\n'
                         'schedule = "second=*/5 jitter=2"\n')
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(r"Reloaded: 2 jobs, changed: queue")
        assert daemon.stop() == 0
    assert "Configuration read from pyrosimple's %s" % path in daemon.text()


@pytest.mark.parametrize("key, hint", [
    ("matcher", "(pyrosimple's name: write startable)"),
    ("sort", "(pyrosimple's name: write sort_fields)"),
    ("log_to_client", "(pyrosimple's name: write quiet with the opposite value)"),
])
def test_pyrosimple_key_names_in_torque_ini_are_named_with_ours(key, hint, tmp_path):
    settings = ini_settings(tmp_path, "[TORQUE]\njob.queue.%s = no\n" % key)
    warnings = []
    pyrotorque.job_config(settings.jobs["queue"], pyrotorque.QueueManager, settings,
                          warn=warnings.append)
    assert warnings == ["%s:2: job.queue.%s: unknown key for QueueManager %s"
                        % (tmp_path / "inicfg" / "torque.ini", key, hint)]


def test_the_exporter_takes_pyrosimples_lists_and_says_it_listens_on_loopback(tmp_path,
                                                                            monkeypatch):
    settings = toml_settings(tmp_path, '''
        [TORQUE.metrics]
        handler = "pyrosimple.job.metrics:RtorrentExporter"
        schedule = "second=*/30"
        port = 9135
        jobs = "system,item"
        item-stats = ["d.down.total", "d.up.total", "d.size_bytes"]
        item-labels = ["d.hash", "d.name", "d.custom1"]
        ''', monkeypatch)
    job = pyrotorque.RtorrentExporter(pyrotorque.job_config(
        settings.jobs["metrics"], pyrotorque.RtorrentExporter, settings))
    assert job.item_stats == ["d.down.total", "d.up.total", "d.size_bytes"]
    assert job.item_labels == ["d.hash", "d.name", "d.custom1"]
    assert settings.warnings == [
        "%s:2: job.metrics.addr: pyrosimple's exporter listened on 0.0.0.0, pyrotorque's on "
        "127.0.0.1; set addr = \"0.0.0.0\" if Prometheus scrapes from another host"
        % (tmp_path / "config.toml")]


def test_a_bad_job_scgi_url_names_file_line_and_key(tmp_path, monkeypatch):
    settings = toml_settings(tmp_path, '''
        scgi_url = "/tmp/main.sock"
        [TORQUE.q]
        handler = "pyrosimple.job.queue:QueueManager"
        schedule = "minute=*"
        scgi_url = "gopher://x"
        ''', monkeypatch)
    daemon = pyrotorque.Daemon(pyrotorque._parse_options(["--fg"]), settings)
    with pytest.raises(ConfigError, match=r"config.toml:6: job.q.scgi_url: .*unsupported scheme"):
        daemon.build_jobs(settings)
