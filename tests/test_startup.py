"""Starting the daemon: under any file name, any way of starting, and what stops a start.

The script is copied to a temp dir as ``pyrotorque`` (no ``.py``, as pyrocore
users keep it in ~/bin), linked, or run by ``python3 FILE``; every way must run
``--version``, ``--check``, ``--fg`` and ``--cron`` against a real rTorrent, show up
as ``pyrotorque`` in ps/top/pgrep, and log the daemon's own pid.  Files and
folders the daemon cannot use stop the start with a sentence and exit 74.
"""
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import daemon_process
import pyrotorque
import rtlab
from daemon_process import DaemonProcess, run_cli

STARTED = r"pyrotorque \S+ started \(pid (\d+)\)"
WAYS = ["a copy named pyrotorque", "a symlink to pyrotorque.py", "a symlink to a renamed copy",
        "python3 FILE"]


def install(base, way):
    """The script installed under ``base`` as ``way`` says; return the command (a list)."""
    bin_dir = os.path.join(str(base), "bin")
    os.makedirs(bin_dir, exist_ok=True)
    copy = os.path.join(bin_dir, "pyrotorque")
    if way == "a symlink to pyrotorque.py":
        link = os.path.join(bin_dir, "pyro-link")
        os.symlink(daemon_process.SCRIPT, link)
        return [link]
    shutil.copy(daemon_process.SCRIPT, copy)
    os.chmod(copy, 0o755)
    if way == "a symlink to a renamed copy":
        link = os.path.join(str(base), "pyrotorque-link")
        os.symlink(copy, link)
        return [link]
    if way == "python3 FILE":
        return [sys.executable, copy]
    return [copy]


def env_for(**extra):
    """The script's '#!/usr/bin/env python3' finds the interpreter that runs the tests."""
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    env.update(extra)
    return env


def config_dir(base, text="[TORQUE]\njob.connstats.schedule = second=*\n"):
    path = os.path.join(str(base), "cfg")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "torque.ini"), "w") as handle:
        handle.write(text)
    return path


def comm(pid):
    with open("/proc/%d/comm" % pid) as handle:
        return handle.read().strip()


def pgrep(name):
    done = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return {int(word) for word in done.stdout.split()}


def read(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


# --- any name, any way of starting ------------------------------------------------

@pytest.mark.parametrize("way", WAYS)
def test_every_way_of_starting_answers_version(short_tmp, way):
    code, out, err = run_cli("--version", command=install(short_tmp, way), env=env_for())
    assert code == 0 and re.match(r"pyrotorque \d+\.\d+\.\d+ on Python 3\.", out), err
    assert "Traceback" not in err


@pytest.mark.parametrize("way", WAYS)
def test_every_way_of_starting_checks_the_config_and_reaches_rtorrent(rtorrent, short_tmp, way):
    cfg = config_dir(short_tmp)
    code, out, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--check",
                             command=install(short_tmp, way), env=env_for())
    assert code == 0, out + err
    assert "rTorrent at %s: version %s" % (rtorrent.url, rtorrent.version) in out


@pytest.mark.parametrize("way", WAYS)
def test_in_the_foreground_ps_and_pgrep_know_it_as_pyrotorque(rtorrent, short_tmp, way):
    cfg = config_dir(short_tmp)
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       command=install(short_tmp, way), env=env_for()) as daemon:
        logged_pid = int(daemon.wait_for(STARTED)[0])
        assert logged_pid == daemon.pid         # the hand-over to an import keeps the pid
        assert comm(daemon.pid) == "pyrotorque"
        assert daemon.pid in pgrep("pyrotorque")
        daemon.wait_for(r"Stats for ")
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.text()


@pytest.mark.parametrize("cron", [False, True], ids=["background", "cron"])
def test_a_detached_daemon_logs_its_own_pid_and_is_called_pyrotorque(rtorrent, short_tmp, cron):
    cfg = config_dir(short_tmp)
    run_dir = os.path.join(cfg, "run")
    os.makedirs(run_dir)
    open(os.path.join(run_dir, "pyrotorque"), "w").close()
    command = install(short_tmp, "a copy named pyrotorque")
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, *(["--cron"] if cron else []),
                           command=command, env=env_for())
    assert code == 0, err
    if cron:
        assert err == ""                        # everything went to the log file
    log_path = os.path.join(cfg, "log", "torque.log")
    pid_path = os.path.join(run_dir, "pyrotorque.pid")
    try:
        found = rtlab.wait_for(lambda: re.search(STARTED, read(log_path)), 15, 0.1,
                               "the start-up line in torque.log")
        pid = int(read(pid_path))
        assert int(found.group(1)) == pid       # not the pid of the parent that forked it
        assert comm(pid) == "pyrotorque" and pid in pgrep("pyrotorque")
    finally:
        code, _, err = run_cli("--config-dir", cfg, "--stop", command=command, env=env_for())
    assert code == 0, err
    assert "Traceback" not in read(log_path)


def test_the_bytecode_is_cached_beside_a_renamed_copy_and_skipped_where_it_cannot_be(short_tmp):
    command = install(short_tmp, "a copy named pyrotorque")
    env = env_for()
    env_keep = dict(os.environ)
    env_keep.pop("PYTHONDONTWRITEBYTECODE", None)
    env_keep.update(env)
    cache = os.path.join(str(short_tmp), "bin", "__pycache__")
    done = subprocess.run(command + ["--version"], capture_output=True, text=True,
                          env=env_keep, timeout=30)
    assert done.returncode == 0, done.stderr
    assert [name for name in os.listdir(cache) if name.startswith("pyrotorque")]
    # A folder nobody may write into (root may write anywhere, so a file stands in
    # the way of __pycache__): it runs all the same, compiled afresh each time.
    shutil.rmtree(cache)
    open(cache, "w").close()
    for _ in range(2):
        done = subprocess.run(command + ["--version"], capture_output=True, text=True,
                              env=env_keep, timeout=30)
        assert done.returncode == 0 and done.stdout.startswith("pyrotorque "), done.stderr
    assert os.path.isfile(cache) and os.path.getsize(cache) == 0


@pytest.mark.parametrize("way", ["a copy named pyrotorque", "a symlink to pyrotorque.py"])
def test_a_custom_job_that_imports_pyrotorque_gets_the_running_module(rtorrent, short_tmp, way):
    cfg = config_dir(short_tmp, "[TORQUE]\njob.connstats.active = no\n"
                     "job.probe.handler = probejob:Probe\njob.probe.schedule = second=*\n")
    with open(os.path.join(cfg, "probejob.py"), "w") as handle:
        handle.write("import logging\nimport pyrotorque\n\n"
                     "class Probe:\n"
                     "    def __init__(self, config):\n"
                     "        self.config = config\n"
                     "    def run(self):\n"
                     "        logging.getLogger('probe').info('probe: same module %s',\n"
                     "            isinstance(self.config.daemon, pyrotorque.Daemon))\n")
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, workdir=short_tmp,
                       command=install(short_tmp, way), env=env_for()) as daemon:
        assert daemon.wait_for(r"probe: same module (\w+)") == ["True"]
        assert daemon.stop() == 0


# --- empty --match / --run-once ---------------------------------------------------

@pytest.mark.parametrize("option, words", [
    ("--match", "--match needs a condition"),
    ("--run-once", "--run-once needs the name of a job"),
])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_match_or_run_once_is_a_usage_error_not_a_daemon_start(short_tmp, option,
                                                                        words, value):
    cfg = config_dir(short_tmp)
    started = time.monotonic()
    code, out, err = run_cli("--config-dir", cfg, "-U", "/nowhere.sock", option, value)
    assert code == 2 and words in err, err
    assert time.monotonic() - started < 10
    assert not os.path.exists(os.path.join(cfg, "run"))     # no pid file: nothing started


# --- files and folders the daemon cannot use: a sentence and exit 74 ---------------
#
# The tests run as root, who may write nearly anywhere, so the table uses what
# stops root too: a folder where a file belongs, a file where a folder belongs,
# and /sys, which nobody may write into.  The cases of a file that root left
# behind (a run with sudo) run the daemon as 'nobody'.

def cron_ready(cfg):
    """A config dir with the guard file, as the watchdog finds it."""
    os.makedirs(os.path.join(cfg, "run"), exist_ok=True)
    open(os.path.join(cfg, "run", "pyrotorque"), "w").close()


def make_folder(path):
    os.makedirs(path)


def make_file(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()


FAULTS = [
    # (mode, what to break under the config dir, extra arguments, the words that tell the fix)
    ("--cron", ("log/torque.log", make_folder), [],
     r"Cannot use the log file '\S+/log/torque\.log': it is a folder, not a file; move it "
     r"away, or choose another path with --log-file"),
    ("background", ("log", make_file), [],
     r"Cannot use the log file '\S+/log/torque\.log': '\S+/log' is a file, not a folder; "
     r"move it away, or choose another path with --log-file"),
    ("--fg", None, ["--log-file", "/sys/pyrotorque-test.log"],
     r"Cannot use the log file '/sys/pyrotorque-test\.log': Permission denied; check the mode "
     r"of '/sys' .*--log-file"),
    ("--fg", ("run", make_file), [],
     r"Cannot use the pid file '\S+/run/pyrotorque\.pid': '\S+/run' is a file, not a folder; "
     r"move it away, or choose another path with --pid-file"),
    ("--cron", None, ["--pid-file", "/sys/run/pyrotorque.pid"],
     r"Cannot use the pid file '/sys/run/pyrotorque\.pid': Operation not permitted; .*"
     r"--pid-file"),
    ("--cron", ("run", make_file), [],
     r"Cannot use the guard file '\S+/run/pyrotorque': '\S+/run' is a file, not a folder; "
     r"move it away, or choose another path with --guard-file"),
    ("--fg", ("torque.ini", lambda path: (os.remove(path), os.mkdir(path))), [],
     r"Cannot use the configuration file '\S+/torque\.ini': it is a folder, not a file; "
     r"move it away"),
]


@pytest.mark.parametrize("mode, breakage, args, sentence", FAULTS)
def test_an_unusable_path_stops_the_start_with_a_sentence_and_exit_74(short_tmp, mode, breakage,
                                                                      args, sentence):
    cfg = config_dir(short_tmp)
    if breakage:
        breakage[1](os.path.join(cfg, breakage[0]))
    if mode != "--fg" and not (breakage and breakage[0] == "run"):
        cron_ready(cfg)
    mode_args = [] if mode == "background" else [mode]
    code, out, err = run_cli("--config-dir", cfg, "-U", "/nowhere.sock", *mode_args, *args,
                             command=install(short_tmp, "a copy named pyrotorque"), env=env_for())
    log = read(os.path.join(cfg, "log", "torque.log"))
    assert code == 74, out + err + log
    # With --cron the log file hears it when it can be opened (stderr may be lost), else stderr.
    where = log if mode == "--cron" and os.path.isfile(os.path.join(cfg, "log", "torque.log")) \
        else err
    assert re.search(sentence, where), (err, log)
    assert "Traceback" not in err + log
    if where is log:
        assert err == ""


@pytest.mark.parametrize("number, words", [
    (errno.EROFS, "Read-only file system; remount the file system read-write, or choose another "
                  "path with --log-file"),
    (errno.ENOSPC, "No space left on device; free some space, or choose another path with "
                   "--log-file"),
    (errno.EIO, "Input/output error; check the path, or choose another path with --log-file"),
])
def test_errors_no_test_can_provoke_still_read_as_a_sentence_with_a_fix(short_tmp, number, words):
    path = os.path.join(str(short_tmp), "log", "torque.log")
    problem = pyrotorque.io_problem("the log file", path, OSError(number, os.strerror(number)),
                                    "--log-file")
    assert isinstance(problem, pyrotorque.StartupError)
    assert str(problem) == "Cannot use the log file '%s': %s" % (path, words)


@pytest.mark.parametrize("what", ["a config file", "a named pipe"])
def test_a_pid_file_path_that_holds_something_else_is_refused_and_left_alone(short_tmp, what):
    cfg = config_dir(short_tmp)
    target = os.path.join(str(short_tmp), "rtorrent.rc")
    if what == "a named pipe":      # as /dev/null would be, but harmless if the test fails
        os.mkfifo(target)
    else:
        with open(target, "w") as handle:
            handle.write("network.scgi.open_local = /tmp/rpc.sock\n")
    before = os.stat(target)
    code, out, err = run_cli("--config-dir", cfg, "-U", "/nowhere.sock", "--fg", "--pid-file",
                             target)
    assert code == 74, out + err
    assert ("Cannot use the pid file '%s': it is there and holds no pid, and the daemon would "
            "overwrite and then remove it; choose another path with --pid-file" % target) in err
    after = os.stat(target)
    assert (after.st_ino, after.st_mode, after.st_size) == (before.st_ino, before.st_mode,
                                                           before.st_size)


def as_nobody(command, *args):
    """Run the script as 'nobody' with the system's python3 (/root is not open to others)."""
    done = subprocess.run(["/usr/bin/python3", command[-1], *args], capture_output=True,
                          text=True, user="nobody", group="nogroup", timeout=30,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def owned_by_nobody(short_tmp):
    """(script command, config dir) with everything owned by 'nobody' but what a test chowns."""
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root (to leave files another user cannot write) and /usr/bin/python3")
    os.chmod(str(short_tmp), 0o755)
    command = install(short_tmp, "a copy named pyrotorque")
    cfg = config_dir(short_tmp)
    cron_ready(cfg)
    os.makedirs(os.path.join(cfg, "log"))
    for folder, dirs, files in os.walk(cfg):
        for name in [folder] + [os.path.join(folder, f) for f in files]:
            os.chown(name, 65534, 65534)
    return command, cfg


@pytest.mark.parametrize("left_by_sudo, args, what, option", [
    ("log", ["--cron"], "the log file '{cfg}/log/torque.log'", "--log-file"),
    ("log", [], "the log file '{cfg}/log/torque.log'", "--log-file"),
    ("run", ["--fg"], "the pid file '{cfg}/run/pyrotorque.pid'", "--pid-file"),
    ("torque.ini", ["--check"], "the configuration file '{cfg}/torque.ini'", None),
])
def test_a_path_that_root_left_behind_names_its_owner_and_the_chown(owned_by_nobody, left_by_sudo,
                                                                     args, what, option):
    command, cfg = owned_by_nobody
    path = os.path.join(cfg, left_by_sudo)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600 if os.path.isfile(path) else 0o755)
    code, out, err = as_nobody(command, "--config-dir", cfg, "-U", "/nowhere.sock", *args)
    assert code == 74, out + err
    expected = ("Cannot use %s: Permission denied ('%s' is owned by root, pyrotorque runs as "
                "nobody); fix: sudo chown -R nobody '%s'" % (what.format(cfg=cfg), path, path))
    if option:
        expected += ", or choose another path with %s" % option
    assert expected in out + err        # --check lists it on stdout, the daemon logs it
    assert "Traceback" not in out + err


# --- the log file: --log-file, logrotate, SIGHUP, pyrocore's logging.torque.ini -----

STATS = r"Stats for \S+ - up"

#: pyrocore's logging.torque.ini as `pyroadmin --create-config` wrote it, with a format
#: of our own so that its use shows.
PYROCORE_LOGGING_INI = """\
[loggers]
keys = root, apscheduler

[handlers]
keys = logfile

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = logfile

[logger_apscheduler]
level = WARN
handlers =
qualname = apscheduler.scheduler

[handler_logfile]
class = FileHandler
args = ('%(HERE)s/log/torque.log', 'a')
formatter = generic

[formatter_generic]
format = INI|%(levelname)s|%(name)s|%(message)s
"""


def lines_matching(path, pattern):
    return re.findall(pattern, read(path))


def test_lines_go_to_the_new_file_after_logrotate_moves_the_log(rtorrent, short_tmp):
    cfg = config_dir(short_tmp)
    log_path = os.path.join(str(short_tmp), "logs", "pyrotorque.log")
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url, "--log-file", log_path,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(STATS)                  # the terminal hears it ...
        rtlab.wait_for(lambda: lines_matching(log_path, STATS), 10, 0.1, "a line in the file")
        os.rename(log_path, log_path + ".1")    # ... and logrotate without copytruncate
        rotated = len(lines_matching(log_path + ".1", STATS))
        rtlab.wait_for(lambda: len(lines_matching(log_path, STATS)) >= 2, 10, 0.1,
                       "new lines in a new file")
        assert len(lines_matching(log_path + ".1", STATS)) <= rotated + 1
        os.remove(log_path)                     # removed: a new one is made as well
        rtlab.wait_for(lambda: lines_matching(log_path, STATS), 10, 0.1, "a file made anew")
        assert daemon.stop() == 0
    assert "Termination request received" in read(log_path)


def test_a_background_daemon_follows_logrotate_and_reopens_on_sighup(rtorrent, short_tmp):
    cfg = config_dir(short_tmp)
    cron_ready(cfg)
    log_path = os.path.join(cfg, "log", "torque.log")
    command = install(short_tmp, "a copy named pyrotorque")
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, command=command, env=env_for())
    assert code == 0, err
    try:
        pid = int(rtlab.wait_for(lambda: lines_matching(log_path, STARTED), 15, 0.1,
                                 "the start-up line")[0])
        os.rename(log_path, log_path + ".1")
        rtlab.wait_for(lambda: lines_matching(log_path, STATS), 10, 0.1, "a new torque.log")
        # The daemon's stdout and stderr (where a stray traceback would go) follow it.
        assert os.path.realpath("/proc/%d/fd/2" % pid) == os.path.realpath(log_path)
        os.kill(pid, signal.SIGHUP)
        rtlab.wait_for(lambda: lines_matching(log_path, r"Reloaded: 1 job"), 10, 0.1,
                       "the reload in the log")
    finally:
        assert run_cli("--config-dir", cfg, "--stop", command=command, env=env_for())[0] == 0
    assert "Traceback" not in read(log_path) + read(log_path + ".1")


def test_pyrocores_logging_torque_ini_is_honoured_in_cron_mode(rtorrent, short_tmp):
    cfg = config_dir(short_tmp)
    cron_ready(cfg)
    with open(os.path.join(cfg, "logging.torque.ini"), "w") as handle:
        handle.write(PYROCORE_LOGGING_INI)
    log_path = os.path.join(cfg, "log", "torque.log")
    command = install(short_tmp, "a copy named pyrotorque")
    code, _, err = run_cli("--config-dir", cfg, "-U", rtorrent.url, "--cron", command=command,
                           env=env_for())
    assert code == 0 and err == "", err
    try:
        pid = int(rtlab.wait_for(lambda: lines_matching(log_path, r"INI\|INFO\|pyrotorque\|"
                                                        + STARTED), 15, 0.1, "the start")[0])
        assert lines_matching(log_path, r"INI\|INFO\|pyrotorque\|Logging as \S+logging\."
                              r"torque\.ini says")
        rtlab.wait_for(lambda: lines_matching(log_path, r"INI\|INFO\|pyrotorque\.job\.connstats"
                                              r"\|Stats for"), 10, 0.1, "the job's line")
        # A plain FileHandler does not notice logrotate; SIGHUP (logrotate's postrotate)
        # makes it write a new file.
        os.rename(log_path, log_path + ".1")
        os.kill(pid, signal.SIGHUP)
        rtlab.wait_for(lambda: lines_matching(log_path, r"INI\|INFO\|pyrotorque\|Reloaded"),
                       10, 0.1, "the reload in a new torque.log")
    finally:
        assert run_cli("--config-dir", cfg, "--stop", command=command, env=env_for())[0] == 0


def test_a_broken_logging_torque_ini_is_named_in_the_default_log_and_stops_the_start(short_tmp):
    cfg = config_dir(short_tmp)
    cron_ready(cfg)
    ini = os.path.join(cfg, "logging.torque.ini")
    with open(ini, "w") as handle:
        handle.write(PYROCORE_LOGGING_INI.replace("class = FileHandler", "class = NoSuchHandler"))
    code, _, err = run_cli("--config-dir", cfg, "-U", "/nowhere.sock", "--cron")
    log = read(os.path.join(cfg, "log", "torque.log"))
    assert code == 70, err + log
    assert re.search(r"ERROR +%s: \w+: .*NoSuchHandler.* \(pyrocore's logging configuration; "
                     r"fix it or move it away\)" % re.escape(ini), log), (err, log)
    assert "Traceback" not in err + log


def test_in_the_foreground_logging_scripts_ini_is_named_and_not_used(rtorrent, short_tmp):
    cfg = config_dir(short_tmp)
    scripts_ini = os.path.join(cfg, "logging.scripts.ini")
    with open(scripts_ini, "w") as handle:
        handle.write(PYROCORE_LOGGING_INI)
    with DaemonProcess("--fg", "--config-dir", cfg, "-U", rtorrent.url,
                       workdir=short_tmp) as daemon:
        daemon.wait_for(STATS)
        assert daemon.stop() == 0
    text = daemon.text()
    assert "%s (pyrocore's logging of its terminal tools) is not used" % scripts_ini in text
    assert "INI|" not in text and not os.path.exists(os.path.join(cfg, "log"))
