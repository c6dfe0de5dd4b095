"""A broken pyrocore configuration against a real rTorrent: `--check` names every problem
in one run, with file, line and fix, and fails; the daemon logs the same list once at start
and runs on what it can use, or stops when the configuration cannot be read."""
import os
import re
import textwrap

from daemon_process import DaemonProcess, run_cli


def pyrocore_config(base, rtorrent_url):
    """A pyrocore user's ~/.pyroscope with the classic mistakes; returns (dir, problems),
    problems being what --check must list (kind, line text)."""
    cfg = os.path.join(str(base), "cfg")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "config.ini"), "w") as handle:
        handle.write(textwrap.dedent("""\
            [GLOBAL]
            scgi_url = %s
            job.queue.active = True
            sort_fields = name,alias

            [TORQUE]
            job.queue.active = True
            job.queue.schedule = second=*/5
            job.queue.downlaoding_max = 3

            [FORMATS]
            default = $(name)s

            [TORQE]
            job.connstats.schedule = second=*
            """ % rtorrent_url))
    os.symlink(os.path.join(cfg, "torque.ini.mine"), os.path.join(cfg, "torque.ini"))
    ini = os.path.join(cfg, "config.ini")
    problems = [
        ("error", "%s: a symbolic link to %s, which does not exist; fix the link or remove it"
         % (os.path.join(cfg, "torque.ini"), os.path.join(cfg, "torque.ini.mine"))),
        ("ignored", "%s:3: job.queue.active: in [GLOBAL], where pyrotorque does not look for "
         "it; move it to [TORQUE]" % ini),
        ("ignored", "%s:9: job.queue.downlaoding_max: unknown key for QueueManager (did you "
         "mean 'downloading_max'?)" % ini),
        ("ignored", "%s:14: [TORQE]: unknown section, its 1 key is ignored (did you mean "
         "[TORQUE]?)" % ini),
    ]
    return cfg, problems


def listed(out):
    """The problem lines of --check's output as (kind, text)."""
    return [tuple(re.split(r":\s+", line.strip(), 1)) for line in out.splitlines()
            if re.match(r"  (error|ignored|note): ", line)]


def test_check_lists_every_problem_of_a_broken_pyrocore_config_and_fails(rtorrent, short_tmp):
    cfg, problems = pyrocore_config(short_tmp, rtorrent.url)
    code, out, err = run_cli("--config-dir", cfg, "--check")
    assert code == 70, out + err
    assert listed(out) == problems, out
    ini = os.path.join(cfg, "config.ini")
    assert "info: %s:6: [TORQUE] is read, before torque.ini, as pyrocore read it" % ini in out
    assert "info: %s:11: [FORMATS] is used by pyrocore's rtcontrol (output formats), not by " \
           "pyrotorque" % ini in out
    assert "version %s" % rtorrent.version in out   # config.ini's [GLOBAL] scgi_url is used
    assert re.search(r"queue +pyrotorque:QueueManager +active, schedule second=\*/5", out), out
    assert out.rstrip().endswith("1 error, 3 ignored settings; exit 70")

    # with the link fixed, what is left would only be ignored: a distinct exit code
    with open(os.path.join(cfg, "torque.ini.mine"), "w") as handle:
        handle.write("[TORQUE]\njob.queue.startable = name=/S\\\\d+E\\\\d+/ prio>0\n")
    code, out, _ = run_cli("--config-dir", cfg, "--check")
    assert code == 78, out
    assert listed(out) == problems[1:] + [(
        "note", "%s:2: job.queue.startable: in the regex /S\\d+E\\d+/ an unquoted '\\\\' is "
        "read as one backslash, as pyrocore read it; a single backslash means the same now "
        "(write \\d, not \\\\d)" % os.path.join(cfg, "torque.ini"))], out


def test_check_names_a_config_dir_that_does_not_exist(rtorrent, short_tmp):
    missing = os.path.join(str(short_tmp), "no-such-dir")
    code, out, _ = run_cli("--config-dir", missing, "-U", rtorrent.url, "--check")
    assert code == 70
    assert listed(out) == [("error", "%s: the configuration directory does not exist (from "
                                     "--config-dir or $PYRO_CONFIG_DIR); create it or name the "
                                     "right one" % missing)]
    code, _, err = run_cli("--fg", "--config-dir", missing, "-U", rtorrent.url)
    assert code == 70 and "%s: the configuration directory does not exist" % missing in err


def test_the_daemon_logs_the_same_list_once_and_runs_or_stops_on_an_error(rtorrent, short_tmp):
    cfg, problems = pyrocore_config(short_tmp, rtorrent.url)
    code, _, err = run_cli("--fg", "--config-dir", cfg)
    assert code == 70 and problems[0][1] in err
    assert not os.path.exists(os.path.join(cfg, "run", "pyrotorque.pid"))

    with open(os.path.join(cfg, "torque.ini.mine"), "w") as handle:
        handle.write("[TORQUE]\njob.connstats.schedule = second=*\n")
    with DaemonProcess("--fg", "--config-dir", cfg, workdir=short_tmp) as daemon:
        daemon.wait_for(r"Stats for \S+ - up", count=2)     # it runs on what it can use
        assert daemon.stop() == 0
    text = daemon.text()
    for _, problem in problems[1:]:
        assert len(re.findall(r"WARNING +%s" % re.escape(problem), text)) == 1, text
    assert "[FORMATS] is used by pyrocore's rtcontrol" in text


def test_check_names_a_watch_root_that_is_not_there_yet_and_a_renamed_command(rtorrent,
                                                                              short_tmp):
    cfg = os.path.join(str(short_tmp), "cfg")
    os.makedirs(cfg)
    missing = os.path.join(str(short_tmp), "not-mounted", "watch")
    with open(os.path.join(cfg, "torque.ini"), "w") as handle:
        handle.write(textwrap.dedent("""\
            [TORQUE]
            scgi_url = %s
            job.treewatch.active = True
            job.treewatch.path = %s
            job.treewatch.cmd.prio = f.multicall=*.nfo,f.set_priority=2
            """ % (rtorrent.url, missing)))
    code, out, err = run_cli("--config-dir", cfg, "--check")
    ini = os.path.join(cfg, "torque.ini")
    assert listed(out) == [
        ("ignored", "%s:4: job.treewatch.path: the folder %s does not exist (yet); it is "
         "watched and loaded from as soon as it appears" % (ini, missing)),
        ("note", "%s:5: job.treewatch.cmd.prio: 'f.set_priority' is rTorrent 0.8's name of "
         "'f.priority.set'; loading with the new name (write it to silence this warning)" % ini),
    ], out + err
    assert code == 78, out + err
