#!/usr/bin/env python3
"""pyrotorque: the background daemon for rTorrent seedboxes.

It runs beside rTorrent and drives jobs on cron-like schedules: the queue
manager starts queued downloads in a controlled way, the tree watch loads
metafiles the instant they land in a watched folder tree (the remote watch
fetches them from FTP and SFTP servers), the exporter serves statistics to
Prometheus and the statistics archive draws their history, the torrent mirror
sends finished data to other rTorrents, and EngineStats logs how rTorrent is doing.

One file, standard library only, Python 3.9+. Drop it on a seedbox and::

    python3 pyrotorque.py --check        # what would run, and can rTorrent be reached?
    python3 pyrotorque.py --fg -v        # run in the foreground, log to the terminal
    python3 pyrotorque.py                # run in the background (needs the guard file)

The configuration is pyrocore's ``~/.pyroscope/torque.ini``, unchanged; the
defaults are embedded below (``DEFAULT_CONFIG``) and shipped as
``torque.ini.default``.

Contents, in reading order (each section uses only those above it; the
banners below carry the same names):

 1. Constants              version, exit codes, the embedded torque.ini defaults
 2. Exceptions             PyrotorqueError and its family
 3. Utilities              Bunch, value converters, small helpers
 4. Cron schedules         CronSchedule: APScheduler 3 cron fields, DST policy
 5. Condition language     parse_condition: rtcontrol's filter language, value types
 6. Bencode and metafiles  the strict decoder, Metafile checks and info-hash
 7. inotify                INotify: a thin ctypes binding with fileno() for select
 8. Load command templates
                           Template (WatchTemplate for cmd.NAME), 0.8 command names
 9. Fast XML-RPC answers   fast_loads: rTorrent's answers parsed without xmlrpc.client
10. rTorrent proxy         RtorrentProxy.call: the one place a call goes to rTorrent
                           (XML-RPC or JSON-RPC), proxy.multicall
11. Items and fields       FIELD_TABLE, rtorrent_filter, NameIndex, ItemSource, Sorter
12. Configuration          load_settings: pyrocore's files, the problem list, JobSpec
13. pyrosimple configuration
                           config.toml read into the same JobSpecs
14. Metrics and HTTP       the exposition renderer and the thread-free HTTP server
15. systemd glue           SystemdNotifier: READY, STATUS, WATCHDOG
16. Event loop             EventLoop: one selector, timers, fd callbacks
17. Jobs                   Job, EngineStats, QueueManager.run (where the queue
                           decides), ItemPoller, resolve_handler
18. Tree watch             TreeWatcher finds metafiles; TreeWatch._prepare checks
                           them and _load_batch loads them
19. Prometheus exporter    RtorrentExporter: collection and /metrics
20. Commands and rules     ChildProcess and ExecCommand
21. Item templates         ItemTemplate: templates over an item's fields
22. Action rules           ActionRule: matcher -> actions on items
23. Completion handler     CompletionHandler: journaled moves of completed data
24. Statistics archive     StatsArchive (sqlite rings) and StatsArchiver's graphs
25. Torrent mirror         TorrentMirror: private copies seeded to other rTorrents
26. Torrent mover          TorrentMover: items moved with fast-resume data
27. Remote watch           RemoteWatch: FTP/FTPS/SFTP into a spool the tree watch loads
28. Main loop              Daemon: builds the jobs, schedules and runs them, reloads
29. Logging                terminal, journal and log-file handlers
30. Process control        PidFile, daemonize, stop_daemon
31. Command line           the options, --check, --match, --run-once, main()
"""
from __future__ import annotations

import os
import sys

# Run as a script, CPython keeps the parse tree of the whole file until the script's
# top-level code returns, which for a daemon is never: some 20 MiB for its whole life.
# So the script hands over at once to a fresh interpreter in the same process (same
# pid, arguments and environment) that imports this file as the module 'pyrotorque':
# an import frees the parse tree right after compiling.  SourceFileLoader takes a file
# of any name (~/bin/pyrotorque, a symlink to it); the bytecode is cached in the
# __pycache__ beside the real file, or not at all where that cannot be written.
_AS_MODULE = ("import os, sys; from importlib import util, machinery; sys.argv.pop(0); "
              "p = os.path.realpath(sys.argv[0]); sys.path[0] = os.path.dirname(p); "
              "s = util.spec_from_loader('pyrotorque', "
              "machinery.SourceFileLoader('pyrotorque', p)); "
              "m = sys.modules['pyrotorque'] = util.module_from_spec(s); "
              "s.loader.exec_module(m); sys.exit(m.main())")
# The daemon runs on glibc's malloc, not pymalloc: pymalloc keeps each 1 MiB arena
# that still holds one object, so after a tick over 10,000 items some 5 MiB stayed
# mapped; malloc_trim hands malloc's free pages back (see release_memory).  Children
# get the environment as it was (the marker says the setting is ours).
if __name__ == "__main__" and sys.executable and "__file__" in globals():
    try:
        os.execve(sys.executable, [sys.executable, "-c", _AS_MODULE, __file__] + sys.argv[1:],
                  dict(os.environ, PYTHONMALLOC="malloc", PYROTORQUE_MALLOC="1")
                  if "PYTHONMALLOC" not in os.environ else os.environ)
    except OSError:
        pass        # run as the script it is
if os.environ.pop("PYROTORQUE_MALLOC", None):
    del os.environ["PYTHONMALLOC"]

import argparse
import ast
import base64
import calendar
import collections
import configparser
import ctypes
import ctypes.util
import datetime
import difflib
import errno
import fcntl
import fnmatch
import gzip
import heapq
import html
import importlib
import importlib.util
import io
import json
import logging
import math
import operator
import re
import selectors
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
import traceback
import urllib.parse
import xml.parsers.expat


def _on_first_use(name):
    """Module ``name``, imported when one of its attributes is first used.

    The TLS, HTTP and XML-RPC client stacks, OpenSSL's hashes, FTP and SQLite
    together map some 10 MiB that a daemon running only the queue never needs;
    an exporter, a tree watch or an HTTPS rTorrent pays for what it uses.
    """
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.find_spec(name)
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    package, _, attribute = name.rpartition(".")
    if package:
        setattr(sys.modules[package], attribute, module)
    return module


ftplib = _on_first_use("ftplib")
hashlib = _on_first_use("hashlib")
hmac = _on_first_use("hmac")
netrc = _on_first_use("netrc")
sqlite3 = _on_first_use("sqlite3")
ssl = _on_first_use("ssl")
http = _on_first_use("http.client") and sys.modules["http"]
_on_first_use("http.server")
xmlrpc = _on_first_use("xmlrpc.client") and sys.modules["xmlrpc"]

__version__ = "0.1.0"

__all__ = [
    "PyrotorqueError", "ConfigError", "StartupError", "ConditionError", "RtorrentError",
    "RtorrentUnavailable", "ArchiveBusy", "AlreadyRunning", "CompletionHandler",
    "Template", "TreeWatcher", "SteppedJob",
    "RtorrentFault", "HashNotFound", "MethodMissing", "CronSchedule", "RpcEndpoint",
    "fast_loads", "XmlRpcFault", "UnreadableAnswer", "xmlrpc_request", "JsonUnwritable",
    "jsonrpc_request", "parse_jsonrpc_answer",
    "parse_rpc_url", "RtorrentProxy", "CallStats", "scgi_request", "parse_scgi_response",
    "Condition", "parse_condition", "condition_fields", "ValueType", "PATTERN", "BOOL",
    "FLOAT", "BYTESIZE", "TIME", "TIME_NOT_NULL", "DURATION", "TAGGED", "FILES", "MAGIC",
    "Field", "FIELD_TABLE", "FIELDS", "field_for", "Item", "ItemSource", "build_alias_map",
    "rtorrent_filter", "FILTERABLE_FIELDS", "NameIndex",
    "tracker_alias", "detect_traits", "name_trait", "file_kinds", "activation_sum",
    "display_value", "match_report", "parse_sort_fields", "Sorter", "DEFAULT_CONFIG",
    "Settings", "JobSpec", "load_settings", "BencodeError", "BencodeTruncated", "bencode",
    "bdecode", "MetafileError", "Metafile", "check_metafile", "read_metafile", "parse_magnet",
    "INotify", "InotifyEvent", "InotifyLimit", "filesystem_type", "TemplateError",
    "WatchTemplate", "rtorrent_escape", "MetricFamily", "render_metrics",
    "format_metric_value", "MetricsServer", "RtorrentExporter", "ChildProcess", "ItemTemplate",
    "split_command_template", "parse_actions", "ExecCommand", "ActionRule", "ItemPoller",
    "StatsArchiver", "StatsArchive", "parse_tiers", "render_chart",
    "SystemdNotifier", "Job", "EngineStats", "QueueManager", "TreeWatch", "resolve_handler",
    "RemoteWatch", "RemoteError", "parse_remote_url", "TorrentMirror", "mirror_piece_size",
    "TorrentMover", "fast_resume", "rendezvous_order", "load_pyrosimple_settings",
    "torque_ini_text",
    "EventLoop", "Daemon", "main",
]


###############################################################################
# Constants ###################################################################
###############################################################################

#: Exit codes, as pyrocore's (sysexits.h).
EX_OK = 0
EX_UNAVAILABLE = 69     # service unavailable: daemon not running, rTorrent down
EX_SOFTWARE = 70        # fatal error, most often a bad configuration
EX_IOERR = 74           # e.g. the pid file could not be removed
EX_TEMPFAIL = 75        # try again later: already running, guard file missing
EX_CONFIG = 78          # --check: the daemon would run, but ignore part of the configuration

#: Log record levels as syslog priorities, for journald's ``<N>`` prefixes.
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4,
    logging.INFO: 6, logging.DEBUG: 7,
}

#: A log level below DEBUG: every XML-RPC call and its answer (--debug).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

#: Words that pyrocore reads as booleans (compared in lower case).
TRUE_WORDS = frozenset("true t yes y 1 +".split())
FALSE_WORDS = frozenset("false f no n 0 -".split())

#: rTorrent's fault code for a method that is not defined (0.9.8, and 0.16 with either back end).
FAULT_NO_SUCH_METHOD = -506
#: How rTorrent says an info-hash is not loaded: 0.9.8 (-501) and 0.15+ ("invalid parameters:
#: info-hash not found", -503 with xmlrpc-c, -500 with tinyxml2), so the text decides.
HASH_NOT_FOUND_TEXTS = ("Could not find info-hash.", "info-hash not found")

#: The embedded defaults; ``torque.ini.default`` is the same text (a test keeps them equal).
#: pyrocore's configuration directory, used when neither --config-dir nor $PYRO_CONFIG_DIR says.
DEFAULT_CONFIG_DIR = "~/.pyroscope"

DEFAULT_CONFIG = r"""# pyrotorque configuration defaults
#
# This is torque.ini.default: the defaults built into pyrotorque.py, for
# reading.  Do not edit it; put your changes in ~/.pyroscope/torque.ini
# (or $PYRO_CONFIG_DIR/torque.ini), which is read after these defaults, and
# keep it minimal so that you get new defaults with new releases.
#
# Values:  'True'/'yes'/'1' and 'False'/'no'/'0' are booleans; a value
# starting with '~/' is expanded to your home directory; an indented line
# continues the value of the line above; '%(name)s' refers to another key of
# the section (write '%%' for a literal percent sign).  Comments start a line.

[TORQUE]

# --- Connecting to rTorrent --------------------------------------------------

# Where rTorrent's XML-RPC is: 'scgi:///path/to/socket', '~/rtorrent/.scgi_local',
# 'scgi://127.0.0.1:5000', '127.0.0.1:5000' or 'http(s)://[user:pass@]host/RPC2'.
# Empty means: take 'scgi_url' from config.ini's [GLOBAL] section, else the
# network.scgi.open_local / open_port line of the rTorrent configuration below.
scgi_url =

# The rTorrent configuration file searched for the SCGI endpoint.
rtorrent_rc = ~/.rtorrent.rc

# Seconds one call to rTorrent may take before it counts as failed.  A hung
# rTorrent is then treated as down: jobs wait for it, nothing is lost.
rpc_timeout = 30

# --- Scheduler (pyrocore compatibility) ---------------------------------------

# pyrocore passed these to APScheduler.  pyrotorque always behaves as they are
# set here: one job at a time, a job never overlaps itself, and runs that were
# missed (e.g. while a long run went on) are merged into one run.
apscheduler.threadpool.core_threads = 1
apscheduler.threadpool.max_threads = 1
apscheduler.threadpool.keepalive = 20
apscheduler.misfire_grace_time = 7
apscheduler.coalesce = True

# pyrocore's embedded web server (waitress) is not part of pyrotorque; use the
# exporter job for metrics.  Setting it to True logs a warning.
httpd.active = False

# --- Jobs ---------------------------------------------------------------------
#
# Every job is a group of keys 'job.NAME.PARAM'.  Each job needs a 'handler'
# (what it does) and a 'schedule' (when: cron fields like 'second=*/15',
# 'minute=*', or 'hour=12 "day=3rd sun"'; quote a field that has a space).
# Common parameters of every job:
#   active     run this job (True) or ignore it (False)
#   dry_run    log what would be done, change nothing
#   quiet      do not 'print' messages into rTorrent's log
#   log_level  the level of this job's own log (DEBUG, INFO, WARNING, ERROR)

# Queue manager: starts stopped items in a controlled way.
job.queue.handler = pyrotorque:QueueManager
job.queue.schedule = second=*/15
job.queue.active = False
job.queue.dry_run = False
job.queue.quiet = False
;job.queue.log_level = DEBUG
# Order in which startable items are started ('-' sorts descending).
job.queue.sort_fields = -prio, loaded, name
# Start new items while fewer than this many are downloading ...
job.queue.downloading_min = 1
# ... and never start one when this many are downloading (ignored items count too).
job.queue.downloading_max = 9
# At most this many starts per run (downloading_min wins over it).
job.queue.start_at_once = 1
# Seconds to wait after the last start before starting more.
job.queue.intermission = 0
# Which items may be started; always combined with queue_startable_base.
job.queue.startable = is_ignored=no done=0 message=/^$|ghost/ prio>0
# Which items count as downloading; 'is_active=1 is_complete=0' is always added.
;job.queue.downloading = down>0
# The part of 'startable' that is always there: closed, inactive, incomplete.
queue_startable_base = is_open=no is_active=no is_complete=no

# Connection statistics: logs rTorrent's uptime, item count and call figures.
job.connstats.handler = pyrotorque:EngineStats
job.connstats.schedule = minute=*
job.connstats.active = True

# Tree watch: loads metafiles that land anywhere below 'path' (':'-separated roots).
job.treewatch.handler = pyrotorque:TreeWatch
job.treewatch.schedule = hour=*
job.treewatch.active = False
job.treewatch.dry_run = False
job.treewatch.quiet = False
job.treewatch.trace_inotify = False
;job.treewatch.log_level = DEBUG
job.treewatch.path =
# 'start' or 'started' loads items started (or startable with 'queued');
# anything else loads them stopped.
job.treewatch.load_mode = normal
job.treewatch.queued = False

# Prometheus exporter: serves /metrics on addr:port.
job.exporter.handler = pyrotorque:RtorrentExporter
job.exporter.schedule = second=*/15
job.exporter.active = False
job.exporter.dry_run = False
job.exporter.quiet = False
job.exporter.addr = 127.0.0.1
job.exporter.port = 8000
job.exporter.prefix = rtorrent_
job.exporter.jobs = system
job.exporter.item_stats = down.total,up.total
job.exporter.item_labels = hash,name
# Optional basic authentication and TLS for /metrics (off when empty).
;job.exporter.user = prometheus
;job.exporter.password = secret
;job.exporter.tls_cert = ~/.pyroscope/exporter.crt
;job.exporter.tls_key = ~/.pyroscope/exporter.key
"""


###############################################################################
# Exceptions ##################################################################
###############################################################################

class PyrotorqueError(Exception):
    """The root of every error this module raises on purpose."""


class ConfigError(PyrotorqueError, ValueError):
    """A bad configuration value; the message names where it came from."""


class StartupError(ConfigError):
    """A file or folder the daemon needs cannot be used; the message names the fix (exit 74).
    A ConfigError as well, so that a reload keeps the old configuration on it."""


class ConditionError(ConfigError):
    """A condition (rtcontrol's filter language) that cannot be parsed; names token and position."""


class RtorrentError(PyrotorqueError):
    """Talking to rTorrent went wrong."""


class RtorrentUnavailable(RtorrentError):
    """rTorrent cannot be reached (down, restarting, hung past the timeout)."""


class RtorrentFault(RtorrentError):
    """rTorrent answered a call with an XML-RPC fault."""

    def __init__(self, method, code, message):
        super().__init__("%s: fault %d: %s" % (method, code, message))
        self.method, self.code, self.message = method, code, message


class HashNotFound(RtorrentFault):
    """The info-hash a call names is not loaded in rTorrent."""


class MethodMissing(RtorrentFault):
    """The method does not exist in this rTorrent."""


###############################################################################
# Utilities ###################################################################
###############################################################################

def parse_bool(text, what="value"):
    """Read one of pyrocore's boolean words, or raise ConfigError."""
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError("%s: %r is not a boolean (use one of: %s / %s)"
                      % (what, text, ", ".join(sorted(TRUE_WORDS)), ", ".join(sorted(FALSE_WORDS))))


def typed_value(text):
    """pyrocore's value typing: digits become int, boolean words become bool."""
    if not isinstance(text, str):
        return text
    if text.isdigit():
        return int(text)
    if text.lower() in TRUE_WORDS or text.lower() in FALSE_WORDS:
        return text.lower() in TRUE_WORDS
    return text


def human_size(count):
    """A byte count for humans, as pyrocore wrote it: '512 bytes', '1.5 MiB'."""
    if count < 1024:
        return "%d bytes" % count
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024.0
        if count < 1024 or unit == "TiB":
            return "%.1f %s" % (count, unit)


#: Characters that break a log line, a file name or a protocol line: C0 controls,
#: DEL and the Unicode line and paragraph separators.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _log_safe(text):
    """Text with control characters (newlines...) shown as escapes, for one log line."""
    return CONTROL_CHARS.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"),
                             str(text))


def _shown_item(name, info_hash):
    """An item as a log line shows it: 'NAME' [#HASH]."""
    return "'%s' [#%s]" % (_log_safe(name), info_hash)


def byte_size(text):
    """A size or rate in bytes from config text: '512', '1.5g', '10M' (1024-based)."""
    try:
        return int(BYTESIZE.number(str(text).strip()))
    except BadValue as exc:
        raise ConfigError(str(exc)) from None
    except (OverflowError, ValueError):     # 'inf', 'nan', '1e400': float() takes them
        raise ConfigError("%r is not a size in bytes" % text) from None


def non_negative(converter):
    """A converter that also refuses negative numbers."""
    def convert(text):
        value = converter(text)
        if value < 0:
            raise ConfigError("%r must not be negative" % text)
        return value
    return convert


# Files that must survive a crash.  A state file is replaced, never rewritten in
# place: written beside it as PATH.PID.tmp, then renamed over it, so a crash leaves
# the old file or the new one.  ``durable`` also fsyncs the file and then its folder
# (the rename), so the new one survives a power cut too; that can block for tens of
# milliseconds, so a file whose loss costs little (one written every second, a
# graph) is not durable.

def fsync_dir(path):
    """Flush a folder's entries (renames, new and removed names in it) to the disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path, data, durable=True):
    """Replace the file ``path`` with ``data`` (bytes, or text written as UTF-8) at once
    (see above; raises OSError and leaves no temporary file behind)."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    temp = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(temp, "wb") as handle:
            handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise
    if durable:
        fsync_dir(folder)


def write_json_atomic(path, data, durable=True):
    """Replace the JSON file ``path`` with ``data`` at once (see write_file_atomic)."""
    write_file_atomic(path, json.dumps(data, indent=0, sort_keys=True), durable)


def read_json_state(path, log, what, afterwards, check=lambda data: data):
    """``check(data)`` of the JSON file ``path``, or None if there is no such file.

    ``check`` returns what the caller keeps and raises KeyError, TypeError, ValueError
    or AttributeError for a file of the wrong shape.  A file that cannot be read or has
    the wrong shape is renamed to PATH.bad, so it is looked at once and kept for a
    human, and logged as an error: '<what> PATH is unreadable (why); moved aside to
    PATH.bad. <afterwards>'.  Raises OSError if it cannot be moved aside.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return check(json.load(handle))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        aside = path + ".bad"
        log.error("%s %s is unreadable (%s); moved aside to %s. %s", what, path, exc, aside,
                  afterwards)
        os.replace(path, aside)
        return None


def human_duration(seconds):
    """A duration in its two largest units: '2d 5h', '3m 12s', '42s'."""
    seconds = int(max(0, seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append("%d%s" % (seconds // size, unit))
            seconds %= size
    return " ".join(parts[:2])


class Bunch(dict):
    """A dict with attribute access: the shape pyrocore handed to its jobs."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


###############################################################################
# Cron schedules ##############################################################
###############################################################################

# A job's schedule is written as in pyrocore's torque.ini: keyword cron fields,
# split like a shell line, e.g. `second=*/15` or `hour=12 "day=3rd sun"`.
# The meaning is APScheduler 3.x CronTrigger's (pyrocore used APScheduler 2.1,
# pyrosimple uses 3.x; 3.11.3 is the test oracle):
#
#   year 1970-9999   month 1-12, jan-dec   day 1-31   week 1-53 (ISO)
#   day_of_week 0-6, mon-sun (0 is Monday)   hour 0-23   minute 0-59   second 0-59
#
# Each field takes a comma list of  *  */step  a  a-b  a-b/step  a/step  (names
# work where a field has them); day also takes "3rd sun", "last sun", "last".
# A time matches when every field does, so day and day_of_week are AND-ed
# (Vixie cron ORs them). Fields left out are "*" when bigger than the smallest
# field given and their minimum when smaller; week and day_of_week stay "*".
# So "hour=*/6" fires at 00:00:00, 06:00:00, ... and "month=2" on Feb 1st only.
# start_date and end_date (inclusive) limit the schedule, as in APScheduler.
# jitter=N (whole seconds, pyrosimple's) delays each run by a random 0-N s, as
# APScheduler's jitter does; the fire times themselves stay as they are.
#
# We are stricter than APScheduler where it silently ignores text: a step after
# names ("mon-fri/2" fires every weekday there), "lastx" taken as "last", and
# "jan-3" taken as "jan" are errors here.
#
# DST policy -- the same as APScheduler 3.x, which pyrocore and pyrosimple
# users know: a job fires at every instant whose local wall-clock time matches.
#   * The repeated autumn hour is lived twice, so it fires twice: "hour=1
#     minute=30" runs once per pass, "minute=*/30" and "second=*/15" keep
#     their pace through both passes.
#   * A wall time that the spring-forward jump skips fires once, at the instant
#     it would have had without the jump: Europe/Berlin 2024-03-31 "hour=2
#     minute=30" fires at 03:30 CEST (01:30 UTC). Interval schedules carry on
#     after the gap: "minute=*/30" at 01:35 EST fires next at 03:00 EDT.
# The fire times are thus one fixed set of instants, and next_fire(t) is the
# first of them at or after t (unlike APScheduler, even when t is just after a
# spring jump). Asking again from one second after each fire time marches
# through both transitions, never stalling, never going back -- as long as
# that second is a real one: `fire + timedelta(seconds=1)` counts wall-clock
# time and drops `fold`, which in the second pass of a repeated hour lands an
# hour back, in the first pass. Use fromtimestamp(fire.timestamp() + 1, tz).

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun",
                "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NTH_NAMES = ("1st", "2nd", "3rd", "4th", "5th")


#: One row of the field table; `names` stand for min, min + 1, ...
_CronField = collections.namedtuple("_CronField", "name min max names", defaults=((),))

#: Most significant first. week and day_of_week are no datetime attributes:
#: they only narrow down which days are allowed.
_CRON_FIELDS = (
    _CronField("year", 1970, 9999),
    _CronField("month", 1, 12, _MONTH_NAMES),
    _CronField("day", 1, 31),
    _CronField("week", 1, 53),
    _CronField("day_of_week", 0, 6, _WEEKDAY_NAMES),
    _CronField("hour", 0, 23),
    _CronField("minute", 0, 59),
    _CronField("second", 0, 59),
)
_CRON_FIELD = {field.name: field for field in _CRON_FIELDS}
_CRON_DATES = ("start_date", "end_date")

#: The fields a wall-clock time is made of, and what each starts over at.
_WALL_FIELDS = ("year", "month", "day", "hour", "minute", "second")
_WALL_RESTART = (1970, 1, 1, 0, 0, 0)
_EVERY_YEAR = (range(1970, 10000),)

#: One item of a comma list: "*" or a number or name, maybe "-last", maybe "/step".
_CRON_ITEM = re.compile(
    r"(?:(\*)|([0-9]+|[a-z]+)(?:-([0-9]+|[a-z]+))?)(?:/([0-9]+))?")
#: The day field's "3rd sun" and "last sun" (checked word by word afterwards).
_CRON_NTH_WEEKDAY = re.compile(r"([0-9a-z]+)\s+([0-9a-z]+)")
#: start_date and end_date as APScheduler reads them: a date, maybe a time,
#: maybe a UTC offset (seconds may be left out here).
_CRON_DATE = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:[ T]([0-9]{1,2}):([0-9]{1,2})(?::([0-9]{1,2})(?:\.([0-9]{1,6}))?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?)?")

_EPOCH = datetime.datetime(1970, 1, 1)
_SECOND = datetime.timedelta(seconds=1)
_DAY = 86400
#: Offsets are not probed later than this, so that no zone leaves year 9999.
_LAST_PROBE = (datetime.datetime(9999, 12, 30) - _EPOCH) // _SECOND


#: One field's comma list: its text as str() gives it back, the ranges of
#: values it allows, and (day only) its (nth, weekday) specials, see _special_day().
_CronExpr = collections.namedtuple("_CronExpr", "text ranges specials")


class CronSchedule:
    """A job schedule like `hour=12 "day=3rd sun"`, see the comment above.

        >>> CronSchedule("hour=*/6 minute=30").next_fire(
        ...     datetime.datetime(2024, 1, 1, 7, tzinfo=datetime.timezone.utc))
        datetime.datetime(2024, 1, 1, 12, 30, tzinfo=datetime.timezone.utc)
    """
    __slots__ = ("_text", "_ranges", "_day_specials", "_start", "_end", "jitter")

    def __init__(self, text):
        text = str(text)
        try:
            values = _split_schedule(text)
            self._start = _parse_cron_date("start_date", values.pop("start_date", None))
            self._end = _parse_cron_date("end_date", values.pop("end_date", None))
            self.jitter = _parse_jitter(values.pop("jitter", None))
            if not values:
                raise ConfigError("no time field given (use some of %s)" % ", ".join(_CRON_FIELD))
            self._compile(values)
        except ConfigError as exc:
            raise ConfigError("schedule %r: %s" % (text, exc)) from None

    def _compile(self, values):
        """Parse the given fields, fill in the others, remember the normal text."""
        given = {name: _parse_cron_expr(_CRON_FIELD[name], value)
                 for name, value in values.items()}
        self._text = " ".join(
            [_quote_word("%s=%s" % (name, given[name].text))
             for name in _CRON_FIELD if name in given]
            + ["%s=%s" % (name, date.isoformat()) for name, date in zip(
                _CRON_DATES, (self._start, self._end)) if date is not None]
            + (["jitter=%s" % self.jitter] if self.jitter else []))

        smallest = max(i for i, field in enumerate(_CRON_FIELDS) if field.name in given)
        exprs = {}
        for i, field in enumerate(_CRON_FIELDS):
            if field.name in given:
                exprs[field.name] = given[field.name]
            elif i < smallest or field.name in ("week", "day_of_week"):
                exprs[field.name] = _parse_cron_expr(field, "*")
            else:
                exprs[field.name] = _parse_cron_expr(field, str(field.min))
        self._ranges = {name: expr.ranges for name, expr in exprs.items()}
        self._day_specials = exprs["day"].specials

    def __str__(self):
        return self._text

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self._text)

    def __eq__(self, other):
        if not isinstance(other, CronSchedule):
            return NotImplemented
        return self._text == other._text

    def __hash__(self):
        return hash(self._text)

    def next_fire(self, after):
        """The first fire time at or after `after`, or None when there is none.

            A naive `after` is local time, and so is the result (with `fold`
            set in a repeated hour); an aware one gives an aware result in its
            zone. A fraction of a second rounds up to the next whole second.
            To get the fire time after `fire`, ask from one *real* second
            later (see the DST policy above).
        """
        if not isinstance(after, datetime.datetime):
            raise TypeError("next_fire() needs a datetime, not %r" % after)
        zone = after.tzinfo if after.utcoffset() is not None else None
        if after.year < 1970:   # nothing fires before; keeps timestamp() in range
            after = datetime.datetime(1969, 12, 30, tzinfo=zone)

        try:
            start = _posix_seconds(after, up=True)
            if self._start is not None:
                start = max(start, _posix_seconds(_in_zone(self._start, zone), up=True))
            fire = self._next_instant(start, zone)
            if fire is None:
                return None
            if self._end is not None and fire > _posix_seconds(_in_zone(self._end, zone)):
                return None
            return datetime.datetime.fromtimestamp(fire, zone)
        except (ValueError, OverflowError):
            # A date near the end of year 9999 (start_date=9999-12-31T23:59:59, say) that
            # is past it in this zone: datetime cannot hold that fire time, so there is none.
            return None

    def _next_instant(self, after, zone):
        """The first fire instant (POSIX seconds) at or after `after`, or None.

            Within a stretch of constant UTC offset, wall time is instant plus
            offset, so one _next_wall() per stretch finds its first match. A
            match past the stretch's end still counts if its wall time fell into
            the gap of a spring-forward jump: it fires at its pre-jump instant.
            The walk starts a day early so that a jump just before `after` is
            seen too.
        """
        start, best = after - _DAY, None
        while best is None or start < best:     # a later stretch may still beat it
            offset, begin = _utcoffset(start, zone), max(start, after)
            wall = self._next_wall(_wall_time(begin, offset))
            fire = None if wall is None else _posix_time(wall, offset)
            # No match at all: a fall-back within a day may still repeat one.
            end = _offset_change(start, begin, after + _DAY if fire is None else fire, zone)
            if end is None:
                return _earliest(best, fire)
            if fire is not None and fire - end < _utcoffset(end, zone) - offset:
                best = _earliest(best, fire)    # its wall time fell into the gap
            start = end
        return best

    def _next_wall(self, wall):
        """The first matching wall-clock time at or after `wall`, or None.

            Walks the fields from year to second like APScheduler: keep a
            field's value if allowed, else move on to the next allowed value
            and start the smaller fields over; if there is none, carry one into
            the bigger field and look at that again.
        """
        if wall is None:
            return None
        # The calendar repeats every 400 years: a schedule for every year that
        # has not matched by then never will (think "month=2 day=30").
        last_year = wall.year + 400 if self._ranges["year"] == _EVERY_YEAR else 9999
        values = [getattr(wall, name) for name in _WALL_FIELDS]
        i = 0
        while i < len(values):
            found = self._next_value(i, values)
            if i == 0 and (found is None or found > last_year):
                return None
            if found is None:
                i -= 1
                values[i] += 1
                values[i + 1:] = _WALL_RESTART[i + 1:]
            else:
                if found > values[i]:
                    values[i] = found
                    values[i + 1:] = _WALL_RESTART[i + 1:]
                i += 1
        return datetime.datetime(*values)

    def _next_value(self, i, values):
        """The smallest allowed value of wall field `i` at or above its current one."""
        name = _WALL_FIELDS[i]
        if name == "day":
            return self._next_day(*values[:3])
        return _next_in(self._ranges[name], values[i], _CRON_FIELD[name].max)

    def _next_day(self, year, month, day):
        """The first day from `day` on in this month that day, week and day_of_week allow."""
        last = calendar.monthrange(year, month)[1]
        specials = [d for d in (_special_day(year, month, *spec) for spec in self._day_specials)
                    if d is not None]
        while True:
            day = _earliest(_next_in(self._ranges["day"], day, last),
                            *[d for d in specials if d >= day])
            if day is None or self._weekday_allowed(datetime.date(year, month, day)):
                return day
            day += 1

    def _weekday_allowed(self, date):
        """Whether week and day_of_week allow this date."""
        return (_in_ranges(self._ranges["week"], date.isocalendar()[1])
                and _in_ranges(self._ranges["day_of_week"], date.weekday()))


def _split_schedule(text):
    """The schedule's `field=value` words as a dict (fields in lower case)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:   # unbalanced quotes, a trailing backslash
        raise ConfigError("cannot split it into words: %s" % exc) from None
    if not words:
        raise ConfigError("it is empty (give fields, e.g. 'minute=*/5')")
    values = {}
    for word in words:
        name, equals, value = word.partition("=")
        name = name.lower()
        if not equals:
            raise ConfigError("%r is not of the form field=value" % word)
        if name == "timezone":
            raise ConfigError("%s: not supported (schedules run in the daemon's local time)"
                              % name)
        if name not in _CRON_FIELD and name not in _CRON_DATES and name != "jitter":
            known = ", ".join((*_CRON_FIELD, *_CRON_DATES, "jitter"))
            raise ConfigError("unknown field %r (use %s)" % (name, known))
        if name in values:
            raise ConfigError("%s: given twice" % name)
        values[name] = value
    return values


def _parse_jitter(text):
    """jitter=N: whole seconds, as pyrosimple reads it (None: no jitter)."""
    if text is None:
        return 0
    if not re.fullmatch(r"[0-9]{1,9}", text.strip(), re.ASCII):
        raise ConfigError("jitter: %r is not a whole number of seconds" % text)
    return int(text.strip())    # int() keeps what str.strip() takes off, like '\x1e'


def _quote_word(word):
    """The word, in quotes if shlex.split() would not give it back as it is."""
    return word if re.fullmatch(r"[\w@%+=:,./*-]+", word, re.ASCII) else shlex.quote(word)


def _parse_cron_expr(field, text):
    """A field's comma list, checked as APScheduler 3.x checks it."""
    texts, ranges, specials = [], [], []
    for item in re.split(r"\s*,\s*", text.strip()):
        if not item:
            raise ConfigError("%s: empty item in %r" % (field.name, text))
        normal, allowed = _parse_cron_item(field, item)
        texts.append(normal)
        (ranges if isinstance(allowed, range) else specials).append(allowed)
    return _CronExpr(",".join(texts), tuple(ranges), tuple(specials))


def _parse_cron_item(field, item):
    """One item of a comma list: its normal text and a range (or a day special)."""
    key = item.lower()
    if field.name == "day":
        special = _parse_day_special(item, key)
        if special is not None:
            return special
    match = _CRON_ITEM.fullmatch(key)
    if not match:
        raise ConfigError("%s: %r is not a valid expression" % (field.name, item))
    star, first, last, step = match.groups()
    words = [word for word in (first, last) if word is not None]
    if step is not None and any(word.isalpha() for word in words):
        raise ConfigError("%s: %r: a step needs numbers, not names" % (field.name, item))
    if len({word.isalpha() for word in words}) > 1:
        raise ConfigError("%s: %r mixes a name and a number" % (field.name, item))

    if star:
        low, high = field.min, field.max
    else:
        low = _cron_value(field, first)
        if last:
            high = _cron_value(field, last)
        else:       # "a" is just a, "a/step" runs up to the field's max
            high = low if step is None else field.max
        if low > high:
            raise ConfigError("%s: range %r goes backwards (ranges do not wrap around)"
                              % (field.name, item))
    normal = star or "-".join(word if word.isalpha() else str(_cron_number(word))
                              for word in words)
    if step is None:
        return normal, range(low, high + 1)
    size = _cron_number(step)
    if size == 0:
        raise ConfigError("%s: step 0 in %r must be at least 1" % (field.name, item))
    if size > high - low:   # only `low` could ever fire
        raise ConfigError("%s: step %s in %r is too big for %s-%s (at most %s)"
                          % (field.name, step, item, low, high, high - low))
    return "%s/%s" % (normal, size), range(low, high + 1, size)


def _parse_day_special(item, key):
    """The day field's "last", "3rd sun" or "last sun"; None for anything else."""
    if key == "last":
        return "last", (0, None)
    match = _CRON_NTH_WEEKDAY.fullmatch(key)
    if not match:
        return None
    nth, weekday = match.groups()
    if nth != "last" and nth not in _NTH_NAMES:
        raise ConfigError("day: %r: %r is not one of 1st, 2nd, 3rd, 4th, 5th, last"
                          % (item, nth))
    if weekday not in _WEEKDAY_NAMES:
        raise ConfigError("day: %r: %r is not a weekday name (mon..sun)" % (item, weekday))
    number = 0 if nth == "last" else _NTH_NAMES.index(nth) + 1
    return "%s %s" % (nth, weekday), (number, _WEEKDAY_NAMES.index(weekday))


def _cron_value(field, word):
    """A number or name of the field, checked against the field's range."""
    if word.isalpha():
        if word not in field.names:
            hint = "%s..%s or " % (field.names[0], field.names[-1]) if field.names else ""
            raise ConfigError("%s: %r is unknown (use %s%s-%s)"
                              % (field.name, word, hint, field.min, field.max))
        return field.min + field.names.index(word)
    value = _cron_number(word)
    if not field.min <= value <= field.max:
        raise ConfigError("%s: %s is out of range %s-%s"
                          % (field.name, word, field.min, field.max))
    return value


def _cron_number(digits):
    """ASCII digits as an int; absurdly long ones (int() may refuse) as 10**6."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 6 else 10**6


def _parse_cron_date(name, text):
    """start_date/end_date as a datetime; naive ones mean the zone of next_fire()."""
    if text is None:
        return None
    match = _CRON_DATE.fullmatch(text.strip())
    if not match:
        raise ConfigError("%s: %r is not a date like 2024-01-31 or 2024-01-31T12:00:00"
                          % (name, text))
    *fields, fraction, offset = match.groups()
    try:
        zone = None
        if offset == "Z":
            zone = datetime.timezone.utc
        elif offset:
            sign = -1 if offset[0] == "-" else 1
            zone = datetime.timezone(sign * datetime.timedelta(
                hours=int(offset[1:3]), minutes=int(offset[4:6])))
        moment = datetime.datetime(*[int(value or 0) for value in fields],
                                   int((fraction or "").ljust(6, "0")), tzinfo=zone)
    except ValueError as exc:
        raise ConfigError("%s: %r is not a valid date (%s)" % (name, text, exc)) from None
    if moment.year < 1970:
        raise ConfigError("%s: %r is before 1970" % (name, text))
    return moment


def _special_day(year, month, nth, weekday):
    """The day of "3rd sun" (nth 3), "last sun" (nth 0) or "last" (no weekday)."""
    first_weekday, days = calendar.monthrange(year, month)
    if weekday is None:
        return days
    first = 1 + (weekday - first_weekday) % 7
    if nth == 0:
        return first + (days - first) // 7 * 7
    day = first + 7 * (nth - 1)
    return day if day <= days else None


def _next_in(ranges, value, high):
    """The smallest member >= `value` and <= `high` of any of the ranges, or None."""
    best = None
    for allowed in ranges:
        found = allowed.start if value <= allowed.start else \
            value + (allowed.start - value) % allowed.step    # round up to the step
        if found < allowed.stop and found <= high and (best is None or found < best):
            best = found
    return best


def _in_ranges(ranges, value):
    """Whether any of the ranges holds the value."""
    return any(value in allowed for allowed in ranges)


def _earliest(*instants):
    """The smallest of those that are not None, or None."""
    return min((instant for instant in instants if instant is not None), default=None)


def _in_zone(moment, zone):
    """An aware datetime as it is; a naive one as a time in `zone` (None: local)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _posix_seconds(moment, up=False):
    """POSIX time of a datetime in whole seconds, cut down or (`up`) rounded up."""
    seconds = int(moment.replace(microsecond=0).timestamp())
    return seconds + 1 if up and moment.microsecond else seconds


def _utcoffset(instant, zone):
    """Seconds east of UTC at POSIX time `instant` in `zone` (None: local time)."""
    if zone is None:
        return time.localtime(instant).tm_gmtoff
    return datetime.datetime.fromtimestamp(instant, zone).utcoffset() // _SECOND


def _wall_time(instant, offset):
    """The naive wall-clock time of `instant` at UTC `offset`; None past year 9999."""
    try:
        return _EPOCH + datetime.timedelta(seconds=instant + offset)
    except OverflowError:
        return None


def _posix_time(wall, offset):
    """The instant of a naive wall-clock time at UTC `offset`."""
    return (wall - _EPOCH) // _SECOND - offset


def _offset_change(start, begin, end, zone):
    """The instant in (start, end] at which start's UTC offset gives way, or None.

        Only the days after `start` and `begin` (where the search for wall
        times began) and the day before `end` are looked at closely. A change
        in between (say the summer between two winter dates) cannot hide a
        fire time: the wall times there all lie between those of `begin` and
        `end`, where _next_wall() found no match. (No zone changes its offset
        twice within a day.)
    """
    offset, low = _utcoffset(start, zone), start
    end = min(end, _LAST_PROBE)
    for high in (start + _DAY, begin + _DAY, end - _DAY, end):
        high = min(max(high, low), end)     # keep the probes in order
        if high > low:
            if _utcoffset(high, zone) != offset:
                return _bisect_change(low, high, zone)
            low = high
    return None


def _bisect_change(low, high, zone):
    """The first second after `low` whose UTC offset differs from low's (high's does)."""
    offset = _utcoffset(low, zone)
    while high - low > 1:
        middle = (low + high) // 2
        if _utcoffset(middle, zone) == offset:
            low = middle
        else:
            high = middle
    return high


###############################################################################
# Condition language ##########################################################
###############################################################################
#
# pyrocore's filter language, as users write it in `job.queue.startable`:
#
#     is_ignored=0 message= prio>0 [ prio>2 OR [ NOT [ traits=audio kind_25=jpg,png ] ] ]
#
# Words are split like a POSIX shell.  Terms side by side are AND-ed, `OR` separates
# AND-runs, `[ ]` groups, and `NOT` negates a group when it is the group's first word.
#
# A term is `FIELD=VALUES`, `FIELD<op>VALUE`, or a bare word that means `name=WORD`.
# VALUES is a comma list (OR-ed); `!` in front of one value negates it.
#
# Deliberate departures from pyrocore, each a fix of a QUIRK:
#   - a regex is matched case-insensitively as written (pyrocore lower-cased it, so `\D`
#     became `\d`), and it may contain `/` and `,`;
#   - an empty time value (`completed=`) means "never happened" instead of "exactly now";
#   - ByteSize also takes `t`; Duration takes plain seconds;
#   - `prio=1 ]` is an error;
#   - an unquoted backslash inside a regex is kept (see below);
#   - str() quotes a term with blanks or quotes, so that str() always parses back.
#
# Backslashes in a regex: outside quotes, a shell eats the backslash of `\d`, so
# `/S\d+E\d+/` matched `Sd+Ed+` in pyrocore, and its users learned to write `\\d`.
# Here an unquoted backslash inside a `/regex/` value (or after `~`) still escapes a
# blank or a quote as in a shell, but `\\` is one backslash and any other backslash is
# kept with the character after it (re reads `\ `, `\'` or `\,` as that character).
# So `/S\d+/` and pyrocore's `/S\\d+/` both mean `S\d+`, and a regex for a literal
# backslash is `\\\\`, as in pyrocore.  Quoted text is split exactly as a shell splits
# it: '\d' and "\d" are `\d`, "\\d" is `\d`, '\\d' stays `\\d`.  An unquoted `\\` in a
# regex is the one spelling whose reading depends on habit (in re's own syntax it is a
# literal backslash), so the parser notes it, and the note names the plain spelling.

#: Words of a condition that are syntax, not terms.
OPEN, CLOSE, OR, NOT = "[", "]", "OR", "NOT"

#: Deeper groups than this are surely a mistake (and would exhaust Python's stack).
MAX_NESTING = 50

#: The characters POSIX shlex treats as blanks.
_BLANKS = " \t\r\n"

#: `FIELD op VALUE`; the longer operators come first so `<=` is not read as `<`.
_TERM = re.compile(r"([_A-Za-z][_A-Za-z0-9]*)(<=|>=|<>|!=|<|>|~|=)(.*)\Z", re.S)

#: Comparison operators and how each is spelled in pyrocore's canonical `=` form.
_OPERATORS = {
    "<": "-{}",  # less than
    "<=": "!+{}",  # not greater
    ">": "+{}",  # greater than
    ">=": "!-{}",  # not less
    "!=": "!{}",  # not equal
    "<>": "!{}",
    "~": "/{}/",  # regex search
}

#: One element of a comma list: a `/regex/` up to a `/` that ends the list or meets a
#: comma, or anything up to the next comma.
_ELEMENT = re.compile(r"(!?/.*?/)(?:,|\Z)|([^,]*)(?:,|\Z)", re.S)


def tokenize(text):
    """Split `text` like POSIX `shlex.split`, as `(word, offset)` pairs.

    Quotes and backslashes work as in a shell; there are no comments, so an indented
    multi-line INI value is fine.  The offset is where the word starts in `text`.
    """
    return [(word, start) for word, start, _ in _tokenize(text)]


def _tokenize(text):
    """`tokenize`, with the set of places in each word that an unquoted backslash escaped
    (the parser puts those backslashes back inside a regex)."""
    words, word, start, pos, end = [], None, 0, 0, len(text)
    escaped = set()
    while pos < end:
        char = text[pos]
        if char in _BLANKS:
            if word is not None:
                words.append((word, start, frozenset(escaped)))
                word = None
                escaped.clear()
            pos += 1
            continue
        if word is None:
            word, start = "", pos
        if char == "\\":
            if pos + 1 >= end:
                raise ConditionError("No escaped character after '\\' at position %d" % pos)
            escaped.add(len(word))
            word += text[pos + 1]
            pos += 2
        elif char == "'":
            close = text.find("'", pos + 1)
            if close < 0:
                raise ConditionError("No closing quotation for ' at position %d" % pos)
            word += text[pos + 1:close]
            pos = close + 1
        elif char == '"':
            quoted, pos = _double_quoted(text, pos)
            word += quoted
        else:
            word += char
            pos += 1
    if word is not None:
        words.append((word, start, frozenset(escaped)))
    return words


def _double_quoted(text, pos):
    """Read a `"…"` string starting at `pos`; return its text and the offset after it."""
    out, index = [], pos + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(out), index + 1
        if char == "\\" and text[index + 1:index + 2] in ('"', "\\"):
            out.append(text[index + 1])
            index += 2
        else:
            out.append(char)
            index += 1
    raise ConditionError('No closing quotation for " at position %d' % pos)


def split_values(text):
    """Split VALUES at commas, keeping `/regex/` whole; an empty list is one empty value."""
    return [element for element, _ in _split_elements(text)]


def _split_elements(text):
    """`split_values` as `(element, offset)` pairs."""
    values, pos = [], 0
    while pos < len(text):
        found = _ELEMENT.match(text, pos)
        element = found.group(1) or found.group(2)
        if element:
            values.append((element, pos))
        pos = found.end()
    return values or [("", 0)]


def _regex_backslashes(body, offset, escaped, notes):
    """A regex body from a word, with the backslashes a shell split took back in place.

    `offset` is where `body` starts in its word, `escaped` the places in the word that
    an unquoted backslash escaped: `\\d` gave `d`, which becomes `\\d` again, and `\\\\`
    gave one backslash, which stays one (pyrocore's spelling); that last case is noted.
    """
    out = []
    for index, char in enumerate(body):
        if offset + index in escaped:
            if char == "\\":
                notes.append(body)
            else:
                out.append("\\")
        out.append(char)
    return "".join(out)


def _quote_term(term):
    """Quote a term for str() only when a shell split would change it."""
    if term and not any(char in term for char in _BLANKS + "'\"\\"):
        return term
    return "'" + term.replace("'", "'\"'\"'") + "'"


# Condition tree ##############################################################

class Condition:
    """A parsed condition: `match(item)`, `str()` (pyrocore's canonical form), `fields`.

    `match` is a compiled closure, built once at parse time, so a queue tick over
    thousands of items runs no parser code and compiles no regex.
    """

    __slots__ = ("match", "fields")

    def __init__(self, match, fields):
        self.match = match
        self.fields = frozenset(fields)

    def __call__(self, item):
        return self.match(item)

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self)

    def group_text(self):
        """How this condition reads inside a group's brackets."""
        return str(self)


class Term(Condition):
    """`field=value` or `field=!value`: one value of one field."""

    __slots__ = ("field", "value", "negated")

    def __init__(self, field, value, negated, test):
        self.field, self.value, self.negated = field, value, negated
        match = (lambda item: not test(item)) if negated else test
        super().__init__(match, [field])

    def __str__(self):
        return _quote_term("%s=%s%s" % (self.field, "!" if self.negated else "", self.value))


class AnyValue(Condition):
    """`field=a,b`: a comma list of values of one field, OR-ed."""

    __slots__ = ("terms",)

    def __init__(self, terms):
        self.terms = terms
        super().__init__(_any(t.match for t in terms), [terms[0].field])

    def __str__(self):
        values = ",".join(("!" if t.negated else "") + t.value for t in self.terms)
        return _quote_term("%s=%s" % (self.terms[0].field, values))


class AllOf(Condition):
    """Terms side by side: all must match."""

    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = parts
        super().__init__(_all(p.match for p in parts), _union(parts))

    def __str__(self):
        return " ".join(str(p) for p in self.parts)


class AnyOf(Condition):
    """AND-runs separated by `OR`: one must match."""

    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = parts
        super().__init__(_any(p.match for p in parts), _union(parts))

    def group_text(self):
        return " OR ".join(str(p) for p in self.parts)

    def __str__(self):
        return "[ %s ]" % self.group_text()


class Not(Condition):
    """A group that starts with `NOT`."""

    __slots__ = ("inner",)

    def __init__(self, inner):
        self.inner = inner
        test = inner.match
        super().__init__(lambda item: not test(item), inner.fields)

    def __str__(self):
        return "[ NOT [ %s ] ]" % self.inner.group_text()


def _union(parts):
    return frozenset().union(*(p.fields for p in parts))


def _all(tests):
    """One closure for an AND of tests (unrolled for the common short cases)."""
    tests = tuple(tests)
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda item: first(item) and second(item)

    def all_match(item):
        for test in tests:
            if not test(item):
                return False
        return True
    return all_match


def _any(tests):
    """One closure for an OR of tests."""
    tests = tuple(tests)
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda item: first(item) or second(item)

    def any_match(item):
        for test in tests:
            if test(item):
                return True
        return False
    return any_match


def _lookup(field):
    """A getter for `field` that treats a missing key like pyrocore's None."""
    def value_of(item):
        try:
            return item[field]
        except KeyError:
            return None
    return value_of


# Value types #################################################################
#
# A value type turns the text of one value into a test of one field.  `compile`
# returns `(test, canonical_text)`; a bad value raises `BadValue`, which the parser
# turns into a ConditionError that names the term and where it is.

class BadValue(ValueError):
    """A value its field's type cannot read."""


class ValueType:
    """How the values of one kind of field are written and compared."""

    name = "value"
    sort_default = ""  # what a missing value sorts as

    def compile(self, field, text):
        raise NotImplementedError

    def __repr__(self):
        return "<%s>" % self.name


def _comparison(text):
    """Split a leading `+` (greater) or `-` (less) off a numeric value."""
    if text[:1] == "+":
        return ">", text[1:]
    if text[:1] == "-":
        return "<", text[1:]
    return "==", text


def _compare(sign, threshold):
    """A test `number -> bool` against a fixed threshold."""
    if sign == ">":
        return lambda number: number > threshold
    if sign == "<":
        return lambda number: number < threshold
    return lambda number: number == threshold


class PatternType(ValueType):
    """Strings: a case-insensitive glob over the whole value, a `/regex/` search, or
    the empty value, which matches an empty field only."""

    name = "pattern"

    def compile(self, field, text):
        value_of = _lookup(field)
        if text == "":
            return (lambda item: _text(value_of(item)) == ""), text
        if len(text) >= 2 and text[0] == text[-1] == "/":
            try:
                search = re.compile(text[1:-1], re.I).search
            except re.error as exc:
                raise BadValue("Bad regex %r (%s)" % (text, exc)) from None
            return (lambda item: search(_text(value_of(item))) is not None), text
        if text.startswith("{{") or text.endswith("}}"):
            raise BadValue("Templates like %r are not supported in conditions" % text)
        if not any(char in text for char in "*?["):
            lowered = text.lower()
            return (lambda item: _text(value_of(item)).lower() == lowered), text
        glob = re.compile(fnmatch.translate(text.lower()), re.I).match
        return (lambda item: glob(_text(value_of(item))) is not None), text


def _text(value):
    """A field value as text, None as ''."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


class BoolType(ValueType):
    """Flags: `yes`/`no` and their friends; prints as `yes` or `no`."""

    name = "bool"
    sort_default = False

    def compile(self, field, text):
        word = text.lower()
        if word in TRUE_WORDS:
            wanted = True
        elif word in FALSE_WORDS:
            wanted = False
        else:
            raise BadValue("Bad boolean value %r (expected one of %s)" % (
                text, " ".join(sorted(TRUE_WORDS | FALSE_WORDS))))
        value_of = _lookup(field)
        return (lambda item: bool(value_of(item)) is wanted), ("yes" if wanted else "no")


class FloatType(ValueType):
    """Numbers: `+N` greater, `-N` less, `N` equal; a missing value counts as 0."""

    name = "number"
    sort_default = 0
    unit = ""

    def number(self, text):
        try:
            return float(text)
        except ValueError:
            raise BadValue("Bad numerical value %r" % text) from None

    def compile(self, field, text):
        sign, rest = _comparison(text)
        check = _compare(sign, self.number(rest))
        value_of = _lookup(field)
        return (lambda item: check(value_of(item) or 0)), text


#: Multipliers of the ByteSize units (1024-based).
_BYTE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_BYTE_SIZE = re.compile(r"(.*?)([bkmgt]?)(?:i?b)?\Z", re.I | re.S)


class ByteSizeType(FloatType):
    """Sizes and rates in bytes: a number with an optional unit b, k, m, g or t."""

    name = "bytesize"

    def number(self, text):
        digits, unit = _BYTE_SIZE.match(text).groups()
        try:
            return float(digits) * _BYTE_UNITS[unit.lower()]
        except ValueError:
            raise BadValue("Bad byte size %r (expected a number and b, k, m, g or t)"
                           % text) from None


#: An age, e.g. `1d12h`: y, m, w, d, h, i, s in this order.  These are rtcontrol's units
#: (pyrocore-compatible): here `m` is MONTHS and `i` is minutes, unlike the statistics
#: archive's tier durations (`_ARCHIVE_UNITS`), where `m` is minutes.
_AGE_DELTA = re.compile(r"(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)i)?"
                    r"(?:(\d+)s)?\Z", re.I | re.A)
#: Seconds per unit of `_AGE_DELTA` (y, m = months, w, d, h, i = minutes, s); as an age,
#: years and months use the calendar instead.
_AGE_DELTA_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)

#: `+` greater, `-` less, no sign equal.
_OPERATOR_FUNCTIONS = {">": operator.gt, "<": operator.lt, "==": operator.eq}

#: Absolute dates: the separator picks the format, colons pick the time part.
_DATE_FORMATS = (("/", "%m/%d/%Y"), (".", "%d.%m.%Y"), ("", "%Y-%m-%d"))
_TIME_FORMATS = ("", "T%H", "T%H:%M", "T%H:%M:%S")


def delta_start(parts, now):
    """The epoch `now` minus a delta given as the 7 groups of `_AGE_DELTA`."""
    years, months = int(parts[0] or 0), int(parts[1] or 0)
    seconds = delta_seconds((None, None) + tuple(parts[2:]))
    if years or months:
        local = time.localtime(now)
        month_index = local.tm_year * 12 + local.tm_mon - 1 - years * 12 - months
        shifted = (month_index // 12, month_index % 12 + 1) + tuple(local[2:6]) + (0, 0, -1)
        now = time.mktime(shifted)
    return now - seconds


def delta_seconds(parts):
    """A delta as a plain number of seconds (a year is 365 days, a month 30)."""
    return sum(int(n or 0) * unit for n, unit in zip(parts, _AGE_DELTA_SECONDS))


def _is_digits(text):
    """ASCII digits only (str.isdigit also takes '²', which int() refuses)."""
    return text.isascii() and text.isdigit()


def parse_date(text):
    """An absolute local date (and optional time) as epoch seconds."""
    text = text.upper().replace(" ", "T")
    date_format = next(fmt for sep, fmt in _DATE_FORMATS if sep in text)
    time_format = _TIME_FORMATS[text.count(":") + 1 if "T" in text else 0]
    try:
        return time.mktime(time.strptime(text, date_format + time_format))
    except (ValueError, OverflowError, IndexError):
        raise BadValue("Bad timestamp value %r" % text) from None


class TimeType(ValueType):
    """Timestamps.  A delta is an age: `+2d` older than two days, `-2i` within the last
    two minutes.  An epoch number or a date is an instant: `+date` means after."""

    name = "time"
    sort_default = 0
    not_null = False

    def compile(self, field, text):
        sign, rest = _comparison(text)
        value_of = _lookup(field)
        if rest == "" and sign == "==":  # `completed=`: never happened
            return (lambda item: not value_of(item)), text
        if _is_digits(rest):
            return self._fixed(value_of, sign, float(rest)), text
        delta = _AGE_DELTA.match(rest)
        if delta and rest:
            try:
                delta_start(delta.groups(), time.time())
            except (OverflowError, ValueError):
                raise BadValue("Time delta %r is too large" % rest) from None
            # older (+) means an earlier timestamp, so the sense inverts
            inverted = {">": "<", "<": ">"}.get(sign, sign)
            return self._moving(value_of, inverted, delta.groups()), text
        return self._fixed(value_of, sign, parse_date(rest)), text

    def _fixed(self, value_of, sign, threshold):
        check = _compare(sign, threshold)
        if self.not_null and threshold != 0:
            return lambda item: bool(value_of(item)) and check(value_of(item))
        return lambda item: check(value_of(item) or 0)

    def _moving(self, value_of, sign, parts):
        """A threshold that follows the clock, recomputed at most once a second."""
        cache = [None, None]

        def threshold():
            now = int(time.time())
            if cache[0] != now:
                cache[:] = now, delta_start(parts, now)
            return cache[1]
        compare, not_null = _OPERATOR_FUNCTIONS[sign], self.not_null

        def test(item):
            stamp = value_of(item) or 0
            if not_null and not stamp:
                return False
            return compare(stamp, threshold())
        return test


class TimeNotNullType(TimeType):
    """Timestamps where 0 means "never": an unset value matches no comparison but `=0`."""

    name = "time (not null)"
    not_null = True


class DurationType(ValueType):
    """Lengths of time in seconds: `+1w` longer than a week.  None matches only `-0`."""

    name = "duration"
    sort_default = 0

    def compile(self, field, text):
        sign, rest = _comparison(text)
        value_of = _lookup(field)
        delta = _AGE_DELTA.match(rest)
        if _is_digits(rest) or not rest:
            seconds = lambda: float(rest or 0)  # noqa: E731
        elif delta:
            try:
                fixed = delta_seconds(delta.groups())
            except ValueError:      # more digits than int() takes (as TimeType says it)
                raise BadValue("Time delta %r is too large" % rest) from None
            seconds = lambda: fixed  # noqa: E731
        else:
            instant = parse_date(rest)
            seconds = lambda: instant - time.time()  # noqa: E731
        compare = _OPERATOR_FUNCTIONS[sign]
        none_matches = sign == "<" and seconds() == 0

        def test(item):
            value = value_of(item)
            if value is None:
                return none_matches
            return compare(value, seconds())
        return test, text


class TaggedType(ValueType):
    """Sets of words (tags, views, kinds, traits): `tag` is a member, `=tag` is exactly
    that one tag, and the empty value is the empty set.  Globs match any member."""

    name = "tags"
    sort_default = ()

    def compile(self, field, text):
        value_of = _lookup(field)
        wanted = text.lower()
        if wanted == "":
            return (lambda item: not value_of(item)), text
        if wanted.startswith("="):
            exact = {wanted[1:]}
            return (lambda item: _tags(value_of(item)) == exact), text
        if any(char in wanted for char in "*?["):
            glob = re.compile(fnmatch.translate(wanted)).match
            return (lambda item: any(glob(tag) for tag in _tags(value_of(item)))), text
        return (lambda item: wanted in _tags(value_of(item))), text


def _tags(value):
    """A tags value (set, list, or a whitespace-separated string) as a lower-case set."""
    if not value:
        return set()
    if isinstance(value, str):
        value = value.split()
    return {str(tag).lower() for tag in value}


class FilesType(ValueType):
    """File lists: a glob matched against each file path (lower-cased); any match."""

    name = "files"
    sort_default = ()

    def compile(self, field, text):
        value_of = _lookup(field)
        glob = re.compile(fnmatch.translate(text.lower()), re.I).match
        return (lambda item: any(glob(_file_path(f)) for f in value_of(item) or ())), text


def _file_path(entry):
    """A file entry as its path: a str, a `(path, size)` tuple, or a mapping."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return entry.get("path", "")
    return entry[0]


class MagicType(ValueType):
    """For fields of unknown type: the value's look picks the type."""

    name = "magic"
    _NUMBER = re.compile(r"\d+(?:\.\d+)*\Z", re.A)
    _SIZE = re.compile(r"\d+(?:\.\d+)?[bkmgt]\Z", re.I | re.A)

    def inner(self, text):
        """The value type that `text` looks like."""
        rest = text[1:] if text[:1] in "+-" else text
        if rest == "" or (len(rest) >= 2 and rest[0] == rest[-1] == "/"):
            return PATTERN
        if self._NUMBER.match(rest):
            return FLOAT
        if rest.lower() in TRUE_WORDS | FALSE_WORDS:
            return BOOL
        if self._SIZE.match(rest):
            return BYTESIZE
        if _AGE_DELTA.match(rest):
            return TIME
        return PATTERN

    def compile(self, field, text):
        return self.inner(text).compile(field, text)


PATTERN, BOOL, FLOAT, BYTESIZE = PatternType(), BoolType(), FloatType(), ByteSizeType()
TIME, TIME_NOT_NULL, DURATION = TimeType(), TimeNotNullType(), DurationType()
TAGGED, FILES, MAGIC = TaggedType(), FilesType(), MagicType()


# Parser ######################################################################

def parse_condition(text, default_field="name", types=None, notes=None):
    """Parse pyrocore's filter language into a `Condition`.

    `default_field` is the field of a bare word (None makes a bare word an error).
    `types` maps field names to value types; by default the item fields of this module
    (`field_for`) are used, including `custom_KEY`, `kind_N` and `d_METHOD`.
    `notes`, a list, receives a sentence for each spelling that works but is worth a
    warning (an unquoted `\\\\` in a regex).
    """
    if types is None:
        type_of = _item_field_type
    else:
        type_of = types.get
    parser = _Parser(str(text), _tokenize(str(text)), default_field, type_of)
    condition = parser.parse()
    if notes is not None:
        for body in dict.fromkeys(parser.doubled):
            notes.append("in the regex /%s/ an unquoted '\\\\' is read as one backslash, as "
                         "pyrocore read it; a single backslash means the same now "
                         "(write \\d, not \\\\d)" % body)
    return condition


def condition_fields(*conditions):
    """The field names that some conditions use together."""
    return frozenset().union(*(c.fields for c in conditions if c is not None))


def _item_field_type(name):
    try:
        return field_for(name).type
    except KeyError:
        return None


class _Parser:
    """Recursive descent over the words of one condition."""

    def __init__(self, text, words, default_field, type_of):
        self.text, self.words, self.pos = text, words, 0
        self.default_field, self.type_of = default_field, type_of
        self.doubled = []       # regex bodies written with an unquoted '\\\\'

    def error(self, message, word=None):
        if word is None:
            return ConditionError("%s in %r" % (message, self.text))
        return ConditionError("%s: %r at position %d in %r" % (message, word[0], word[1],
                                                              self.text))

    def parse(self):
        return self.group(None, 0)

    def group(self, opener, depth):
        """Parse up to the `]` matching `opener` (or the end for the whole text)."""
        if depth > MAX_NESTING:
            raise self.error("Brackets nested deeper than %d" % MAX_NESTING, opener)
        negated_by = None
        if self.pos < len(self.words) and self.words[self.pos][0] == NOT:
            negated_by = self.words[self.pos]
            self.pos += 1
        runs, last_or = [[]], None
        while self.pos < len(self.words):
            word = self.words[self.pos]
            self.pos += 1
            if word[0] == OPEN:
                self.add(runs[-1], self.group(word, depth + 1))
            elif word[0] == CLOSE:
                if opener is None:
                    raise self.error("Unbalanced brackets, too many closing ']'", word)
                break
            elif word[0] == OR:
                if not runs[-1]:
                    raise self.error("Left-hand side of OR missing", word)
                runs.append([])
                last_or = word
            else:
                runs[-1].append(self.term(word))
        else:
            if opener is not None:
                raise self.error("Unbalanced brackets, too many open '['", opener)
        if not runs[-1]:
            if last_or is not None:
                raise self.error("Right-hand side of OR missing", last_or)
            if negated_by is not None:
                raise self.error("NOT must be followed by some conditions!", negated_by)
            raise self.error("No conditions given at all!", opener)
        runs = [r[0] if len(r) == 1 else AllOf(r) for r in runs]
        condition = runs[0] if len(runs) == 1 else AnyOf(runs)
        return Not(condition) if negated_by else condition

    @staticmethod
    def add(run, condition):
        """Append a sub-group to an AND-run; a plain AND group dissolves into it."""
        if isinstance(condition, AllOf):
            run.extend(condition.parts)
        else:
            run.append(condition)

    def term(self, word):
        """One `FIELD=VALUES`, `FIELD<op>VALUE` or bare word."""
        found = _TERM.match(word[0])
        if found:
            field, operator, values = found.groups()
            offset = found.start(3)
        elif "=" in word[0]:
            field, _, values = word[0].partition("=")
            operator, offset = "=", len(field) + 1
        elif self.default_field:
            field, operator, values, offset = self.default_field, "=", word[0], 0
        else:
            raise self.error("Field name missing (expected '=')", word)
        escaped = word[2] if len(word) > 2 else ()
        if operator == "~":
            elements = ["/%s/" % _regex_backslashes(values, offset, escaped, self.doubled)]
        elif operator != "=":
            if values[:1] in ("+", "-"):
                raise self.error("Comparison operator cannot be followed by %r"
                                 % values[:1], word)
            elements = split_values(_OPERATORS[operator].format(values))
        else:
            elements = [self.regex(element, offset + at, escaped)
                        for element, at in _split_elements(values)]
        value_type = self.type_of(field) if field else None
        if value_type is None:
            raise self.error("Unknown field %r" % field, word)
        terms = [self.value(field, value_type, element, word) for element in elements]
        return terms[0] if len(terms) == 1 else AnyValue(terms)

    def regex(self, element, offset, escaped):
        """A `/regex/` element gets back the backslashes the shell split took (see above)."""
        bang = element[:1] == "!"
        if len(element) - bang < 2 or not element[bang] == element[-1] == "/" or not escaped:
            return element
        body = _regex_backslashes(element[bang + 1:-1], offset + bang + 1, escaped, self.doubled)
        return element[:bang + 1] + body + "/"

    def value(self, field, value_type, element, word):
        negated = element.startswith("!")
        if negated:
            element = element[1:]
        try:
            test, canonical = value_type.compile(field, element)
        except BadValue as exc:
            raise self.error(str(exc), word) from None
        return Term(field, canonical, negated, test)


###############################################################################
# Bencode and metafiles #######################################################
###############################################################################
#
# Metafiles come from anywhere, so the decoder trusts nothing: it has a size and
# a depth limit, accepts only canonical bencode (no leading zeros, sorted unique
# keys, no trailing bytes) and raises ValueError for everything else.  A file
# that ends too early raises BencodeTruncated, which the tree watch reads as
# "maybe still being written".  Strings stay bytes.

class BencodeError(ValueError):
    """Not canonical bencode."""


class BencodeTruncated(BencodeError):
    """The data ends in the middle of a value (a file still being written?)."""


#: Nesting deeper than this is an attack, not a metafile.
BENCODE_MAX_DEPTH = 64

#: Metafiles larger than this are refused (a 100 GiB item with 256 KiB pieces needs 8 MiB).
METAFILE_MAX_SIZE = 32 * 1024 * 1024

_BENCODE_INT = re.compile(rb"-?(0|[1-9][0-9]{0,127})\Z")


def bdecode(data, max_size=METAFILE_MAX_SIZE, max_depth=BENCODE_MAX_DEPTH):
    """Decode one canonical bencoded value that spans all of ``data``.

    Strings and dict keys come back as bytes.  Any malformed, non-canonical,
    too large or too deep input raises BencodeError (a ValueError).
    """
    data = bytes(data)
    if max_size is not None and len(data) > max_size:
        raise BencodeError("%d bytes is more than the limit of %d" % (len(data), max_size))
    if not data:
        raise BencodeTruncated("no data")
    value, end = _bdecode_at(data, 0, max_depth)
    if end != len(data):
        raise BencodeError("%d bytes of trailing data after offset %d" % (len(data) - end, end))
    return value


def _bdecode_at(data, pos, depth):
    """The value at ``pos`` and the offset after it."""
    size = len(data)
    if pos >= size:
        raise BencodeTruncated("data ends at offset %d" % pos)
    lead = data[pos]
    if lead == 0x69:                                # i<digits>e
        end = data.find(b"e", pos + 1, pos + 132)
        if end < 0:
            if re.fullmatch(rb"-?[0-9]*", data[pos + 1:pos + 132]) and size - pos < 132:
                raise BencodeTruncated("integer at offset %d is cut off" % pos)
            raise BencodeError("bad integer at offset %d" % pos)
        text = data[pos + 1:end]
        if not _BENCODE_INT.match(text) or text == b"-0":
            raise BencodeError("bad integer %r at offset %d" % (text[:40], pos))
        return int(text), end + 1
    if 0x30 <= lead <= 0x39:                        # <length>:<bytes>
        colon = data.find(b":", pos, pos + 12)
        if colon < 0:
            if data[pos:pos + 12].isdigit() and size - pos < 12:
                raise BencodeTruncated("string length at offset %d is cut off" % pos)
            raise BencodeError("bad string length at offset %d" % pos)
        text = data[pos:colon]
        if not text.isdigit() or (len(text) > 1 and text[:1] == b"0"):
            raise BencodeError("bad string length %r at offset %d" % (text, pos))
        start = colon + 1
        end = start + int(text)
        if end > size:
            raise BencodeTruncated("string at offset %d runs past the end" % pos)
        return data[start:end], end
    if lead == 0x6C:                                # l...e
        if depth <= 0:
            raise BencodeError("nested deeper than %d levels" % BENCODE_MAX_DEPTH)
        pos, items = pos + 1, []
        while True:
            if pos >= size:
                raise BencodeTruncated("list is not terminated")
            if data[pos] == 0x65:
                return items, pos + 1
            item, pos = _bdecode_at(data, pos, depth - 1)
            items.append(item)
    if lead == 0x64:                                # d...e, keys sorted and unique
        if depth <= 0:
            raise BencodeError("nested deeper than %d levels" % BENCODE_MAX_DEPTH)
        pos, result, last = pos + 1, {}, None
        while True:
            if pos >= size:
                raise BencodeTruncated("dict is not terminated")
            if data[pos] == 0x65:
                return result, pos + 1
            if not 0x30 <= data[pos] <= 0x39:
                raise BencodeError("dict key at offset %d is not a string" % pos)
            key, pos = _bdecode_at(data, pos, depth - 1)
            if last is not None and key <= last:
                raise BencodeError("Bad bencoded data - dict keys out of order%s at offset %d"
                                   % (" (duplicate %r)" % key[:40] if key == last else "", pos))
            last = key
            result[key], pos = _bdecode_at(data, pos, depth - 1)
    raise BencodeError("unexpected byte %r at offset %d" % (bytes([lead]), pos))


def bencode(value):
    """Encode ints, bytes, str (UTF-8), lists and dicts (keys sorted as bytes)."""
    out = []
    _bencode_into(value, out)
    return b"".join(out)


def _bencode_into(value, out):
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, (bytes, bytearray, str)):
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, (list, tuple)):
        out.append(b"l")
        for item in value:
            _bencode_into(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        items = sorted(((k.encode("utf-8") if isinstance(k, str) else bytes(k)), v)
                       for k, v in value.items())
        out.append(b"d")
        for index, (key, item) in enumerate(items):
            if index and key == items[index - 1][0]:
                raise ValueError("duplicate dict key %r" % key)
            _bencode_into(key, out)
            _bencode_into(item, out)
        out.append(b"e")
    else:
        raise TypeError("cannot bencode %s" % type(value).__name__)


class MetafileError(ValueError):
    """A metafile that breaks the rules; ``truncated`` when it may still be growing."""

    def __init__(self, message, truncated=False):
        super().__init__(message)
        self.truncated = truncated


_META_NAME = re.compile(rb"[^/\\.~][^/\\]*\Z")
_META_PART = re.compile(rb"(?:~\d+)?[^/\\~][^/\\]*\Z")


def check_metafile(meta):
    """pyrocore's rules for a decoded metafile; raise MetafileError naming the first break.

    Unlike pyrocore, a metafile without 'announce' is accepted when it has
    'announce-list' or 'nodes' (a trackerless or multi-tracker item).
    """
    if not isinstance(meta, dict):
        raise MetafileError("not a dictionary")
    if b"announce" in meta:
        if not isinstance(meta[b"announce"], bytes):
            raise MetafileError("bad announce URL - not a string")
    elif b"announce-list" not in meta and b"nodes" not in meta:
        raise MetafileError("no announce URL (and neither 'announce-list' nor 'nodes')")
    info = meta.get(b"info")
    if not isinstance(info, dict):
        raise MetafileError("missing or bad 'info' dictionary")
    pieces = info.get(b"pieces")
    if not isinstance(pieces, bytes) or len(pieces) % 20:
        raise MetafileError("bad info.pieces")
    piece_length = info.get(b"piece length")
    if not isinstance(piece_length, int) or piece_length <= 0:
        raise MetafileError("bad info.piece length")
    name = info.get(b"name")
    if not isinstance(name, bytes) or not _META_NAME.match(name):
        raise MetafileError("bad info.name %r" % (name[:80] if isinstance(name, bytes) else name))
    if (b"length" in info) == (b"files" in info):
        raise MetafileError("info must have exactly one of 'length' and 'files'")
    if b"length" in info:
        if not isinstance(info[b"length"], int) or info[b"length"] < 0:
            raise MetafileError("bad info.length")
        return
    files = info[b"files"]
    if not isinstance(files, list) or not files:
        raise MetafileError("bad info.files")
    seen = set()
    for entry in files:
        if not isinstance(entry, dict):
            raise MetafileError("bad info.files entry")
        length, path = entry.get(b"length"), entry.get(b"path")
        if not isinstance(length, int) or length < 0:
            raise MetafileError("bad file length in info.files")
        if not isinstance(path, list) or not path:
            raise MetafileError("bad file path in info.files")
        for part in path:
            if not isinstance(part, bytes):
                raise MetafileError("bad file path part in info.files")
            if part == b".." or (part and not _META_PART.match(part)):
                raise MetafileError("bad file path %r in info.files" % b"/".join(path)[:120])
        key = b"/".join(path)
        if key in seen:
            raise MetafileError("duplicate file path %r in info.files" % key[:120])
        seen.add(key)


class Metafile:
    """A validated metafile: its bytes, decoded dict, info-hash and a few facts."""

    def __init__(self, data, meta=None, magnet=None):
        self.data = data
        self.meta = meta or {}
        self.magnet = magnet
        info = self.meta.get(b"info", {})
        if magnet is not None:
            self.info_hash, self.info_name = magnet["info_hash"], magnet["name"]
            self.announce, self.files = magnet["announce"], []
            return
        self.info_hash = hashlib.sha1(bencode(info)).hexdigest().upper()
        self.info_name = info[b"name"].decode("utf-8", "replace")
        announce = self.meta.get(b"announce")
        if announce is None:
            tiers = self.meta.get(b"announce-list")
            if isinstance(tiers, list) and tiers and isinstance(tiers[0], list) and tiers[0]:
                announce = tiers[0][0]
        self.announce = announce.decode("utf-8", "replace") if isinstance(announce, bytes) else None
        if b"files" in info:
            self.files = [("/".join(p.decode("utf-8", "replace") for p in f[b"path"]), f[b"length"])
                          for f in info[b"files"]]
        else:
            self.files = [(self.info_name, info[b"length"])]

    @property
    def size(self):
        return sum(size for _, size in self.files)

    @property
    def filetype(self):
        """The extension of the main file, dot and case kept (pyrocore: largest file wins)."""
        if not self.files:
            return ""
        main = max(self.files, key=lambda f: (f[1], f[0]))[0]
        return os.path.splitext(main.rsplit("/", 1)[-1])[1]


def read_metafile(data, max_size=METAFILE_MAX_SIZE):
    """Validate metafile bytes; return a Metafile or raise MetafileError."""
    if not data:
        raise MetafileError("empty file", truncated=True)
    try:
        meta = bdecode(data, max_size)
    except BencodeTruncated as exc:
        raise MetafileError("incomplete bencode: %s" % exc, truncated=True) from None
    except BencodeError as exc:
        raise MetafileError(str(exc)) from None
    check_metafile(meta)
    if bencode(meta) != data:       # cannot happen after the strict decode; cheap to be sure
        raise MetafileError("Bad bencoded data - dict keys out of order?")
    return Metafile(data, meta)


_MAGNET_HASH = re.compile(r"urn:btih:([0-9a-fA-F]{40}|[A-Za-z2-7]{32})\Z")


def parse_magnet(data):
    """Read a .magnet file (one magnet: URI); return a Metafile or raise MetafileError."""
    if len(data) > 64 * 1024:
        raise MetafileError("magnet file is larger than 64 KiB")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise MetafileError("magnet link is not UTF-8 text") from None
    if not text:
        raise MetafileError("empty file", truncated=True)
    if not text.startswith("magnet:?") or any(c.isspace() or ord(c) < 32 for c in text):
        raise MetafileError("not a single magnet: URI")
    query = urllib.parse.parse_qs(text[len("magnet:?"):])
    info_hash = None
    for xt in query.get("xt", []):
        found = _MAGNET_HASH.match(xt)
        if found:
            value = found.group(1)
            info_hash = (value.upper() if len(value) == 40
                         else base64.b32decode(value.upper()).hex().upper())
            break
    if info_hash is None:
        raise MetafileError("magnet link has no 'xt=urn:btih:' info-hash")
    # rTorrent 0.9.8 takes only the hex form: rewrite a base32 hash.
    uri = re.sub(r"(?i)urn:btih:[0-9a-z]+", "urn:btih:" + info_hash, text, count=1)
    name = (query.get("dn") or [info_hash])[0]
    announce = (query.get("tr") or [None])[0]
    return Metafile(uri.encode("utf-8"), magnet={"info_hash": info_hash, "name": name,
                                                  "announce": announce, "uri": uri})


###############################################################################
# inotify #####################################################################
###############################################################################
#
# A thin ctypes binding in the manner of inotify_simple: no recursion and no
# path tracking here (the tree watch does that).  Overflow comes back as an
# ordinary event with wd == -1 and IN_Q_OVERFLOW set.

IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x1, 0x2, 0x4, 0x8
IN_CLOSE_NOWRITE, IN_OPEN, IN_MOVED_FROM, IN_MOVED_TO = 0x10, 0x20, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x01000000, 0x02000000, 0x04000000
IN_MASK_ADD, IN_ISDIR, IN_ONESHOT = 0x20000000, 0x40000000, 0x80000000
IN_ALL_EVENTS = 0xFFF

_INOTIFY_FLAG_NAMES = {v: k for k, v in sorted(globals().items())
                       if k.startswith("IN_") and k != "IN_ALL_EVENTS" and isinstance(v, int)}

_EVENT_HEADER = struct.Struct("iIII")
_libc_handle = None


def _libc():
    global _libc_handle
    if _libc_handle is None:
        libc = ctypes.CDLL(None, use_errno=True)
        if not hasattr(libc, "inotify_init1"):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        _libc_handle = libc
    return _libc_handle


class InotifyLimit(OSError):
    """A kernel limit of inotify was reached; the message names the sysctl to raise."""


class InotifyEvent(tuple):
    """One event: ``wd``, ``mask``, ``cookie``, ``name`` (str, '' for the dir itself)."""

    __slots__ = ()

    def __new__(cls, wd, mask, cookie, name):
        return tuple.__new__(cls, (wd, mask, cookie, name))

    wd = property(lambda self: self[0])
    mask = property(lambda self: self[1])
    cookie = property(lambda self: self[2])
    name = property(lambda self: self[3])

    def flags(self):
        """The mask as names, e.g. ['IN_CLOSE_WRITE']."""
        return [name for bit, name in sorted(_INOTIFY_FLAG_NAMES.items()) if self.mask & bit]

    def __repr__(self):
        return "InotifyEvent(wd=%d, mask=%s, cookie=%d, name=%r)" % (
            self.wd, "|".join(self.flags()) or "0", self.cookie, self.name)


class INotify:
    """An inotify instance: put it in a selector, call read() when it is readable."""

    def __init__(self):
        fd = _libc().inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd == -1:
            code = ctypes.get_errno()
            if code == errno.EMFILE:
                raise InotifyLimit(code, "too many inotify instances; raise the sysctl "
                                   "fs.inotify.max_user_instances")
            raise OSError(code, "inotify_init1: %s" % os.strerror(code))
        self.fd = fd

    def fileno(self):
        return self.fd

    def add_watch(self, path, mask):
        """Watch ``path``; return the watch descriptor (the same one for the same inode)."""
        wd = _libc().inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd == -1:
            code = ctypes.get_errno()
            if code == errno.ENOSPC:
                raise InotifyLimit(code, "the inotify watch limit is reached (raise the sysctl "
                                   "fs.inotify.max_user_watches, e.g. 'sysctl -w "
                                   "fs.inotify.max_user_watches=524288')", path)
            raise OSError(code, os.strerror(code), path)
        return wd

    def rm_watch(self, wd):
        if _libc().inotify_rm_watch(self.fd, wd) == -1:
            code = ctypes.get_errno()
            raise OSError(code, "inotify_rm_watch(%d): %s" % (wd, os.strerror(code)))

    def read(self):
        """All events queued now (never blocks); [] when there are none."""
        events = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return events
            if not buf:
                return events
            offset = 0
            while offset + 16 <= len(buf):
                wd, mask, cookie, length = _EVENT_HEADER.unpack_from(buf, offset)
                raw = buf[offset + 16:offset + 16 + length].split(b"\0", 1)[0]
                events.append(InotifyEvent(wd, mask, cookie, os.fsdecode(raw)))
                offset += 16 + length

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: statfs f_type of file systems where inotify misses other hosts' changes.
NETWORK_FILESYSTEMS = {0x6969: "nfs", 0x517B: "smb", 0xFF534D42: "cifs", 0xFE534D42: "smb2",
                       0x65735546: "fuse", 0x01021997: "9p", 0x00C36400: "ceph",
                       0x5346414F: "afs", 0x73757245: "coda", 0x47504653: "gpfs"}


def filesystem_type(path):
    """The statfs f_type magic of the file system ``path`` is on (None if unknown)."""
    buf = ctypes.create_string_buffer(256)
    try:
        if _libc().statfs(os.fsencode(path), buf) != 0:
            return None
    except (AttributeError, OSError):
        return None
    return struct.unpack_from("l", buf.raw)[0] & 0xFFFFFFFF


###############################################################################
# Load command templates ######################################################
###############################################################################
#
# cmd.NAME values are small templates: '{{expr}}', '{{expr|filter}}',
# '{{# comment }}', '{{if}}/{{elif}}/{{else}}/{{endif}}', and pyrocore's
# '%(name)s'.  Expressions are a safe subset of Python (names, attributes,
# .get(), str methods, comparisons, and/or/not), checked with the ast module.
# Every value a template puts out is escaped for rTorrent's command parser,
# so no file, folder or torrent name can add or change a command.
# Template is the engine; WatchTemplate (the tree watch's cmd.NAME) is it as it
# is, ItemTemplate (in "Item templates") puts values out with another escaping.

class TemplateError(ValueError):
    """A template that cannot be parsed or expanded."""


#: ASCII characters that pass into an rTorrent command unescaped.
_RT_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+@:")
_RT_UNSENDABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def rtorrent_escape(value):
    """Make a value a literal inside an rTorrent command argument, quoted or not.

    rTorrent's parser takes the character after a backslash literally in both
    quoted and unquoted arguments, so every ASCII character that is not plainly
    safe gets one; characters XML-RPC cannot carry (and undecodable bytes of
    file names) become U+FFFD.
    """
    text = _RT_UNSENDABLE.sub("\ufffd", value if isinstance(value, str) else str(value))
    return "".join(c if c in _RT_SAFE or ord(c) > 127 else "\\" + c for c in text)


def _sendable(text):
    """Text XML-RPC can carry: undecodable bytes and control characters become U+FFFD."""
    return _RT_UNSENDABLE.sub("\ufffd", text)


# rTorrent 0.9 renamed the 0.8 commands; 0.9.8 no longer knows the old names, and a
# load command with one fails.  This table is rTorrent's own migration table
# (doc/scripts/update_commands_0.9.sed, which its wiki page RPC-Migration-0.9 points to),
# less the old names 0.9.8 still has (scgi_port, scgi_local, execute).
RTORRENT_RENAMED = dict(pair.split("=") for pair in """
d.multicall=d.multicall2 d.get_hash=d.hash d.get_local_id=d.local_id
d.get_local_id_html=d.local_id_html d.get_bitfield=d.bitfield d.get_base_path=d.base_path
d.get_base_filename=d.base_filename d.get_name=d.name d.get_creation_date=d.creation_date
d.get_peer_exchange=d.peer_exchange d.get_up_rate=d.up.rate d.get_up_total=d.up.total
d.get_down_rate=d.down.rate d.get_down_total=d.down.total d.get_skip_rate=d.skip.rate
d.get_skip_total=d.skip.total d.get_bytes_done=d.bytes_done d.get_chunk_size=d.chunk_size
d.get_chunks_hashed=d.chunks_hashed d.get_complete=d.complete
d.get_completed_bytes=d.completed_bytes d.get_completed_chunks=d.completed_chunks
d.get_connection_current=d.connection_current d.get_connection_leech=d.connection_leech
d.get_connection_seed=d.connection_seed d.get_custom=d.custom d.get_custom1=d.custom1
d.get_custom2=d.custom2 d.get_custom3=d.custom3 d.get_custom4=d.custom4 d.get_custom5=d.custom5
d.get_custom_throw=d.custom_throw d.get_directory=d.directory
d.get_directory_base=d.directory_base d.get_free_diskspace=d.free_diskspace
d.get_hashing=d.hashing d.get_hashing_failed=d.hashing_failed
d.get_ignore_commands=d.ignore_commands d.get_left_bytes=d.left_bytes
d.get_loaded_file=d.loaded_file d.get_max_file_size=d.max_file_size
d.get_max_size_pex=d.max_size_pex d.get_message=d.message d.get_mode=d.mode
d.get_peers_accounted=d.peers_accounted d.get_peers_complete=d.peers_complete
d.get_peers_connected=d.peers_connected d.get_peers_max=d.peers_max d.get_peers_min=d.peers_min
d.get_peers_not_connected=d.peers_not_connected d.get_priority=d.priority
d.get_priority_str=d.priority_str d.get_ratio=d.ratio d.get_size_bytes=d.size_bytes
d.get_size_chunks=d.size_chunks d.get_size_files=d.size_files d.get_size_pex=d.size_pex
d.get_state=d.state d.get_state_changed=d.state_changed d.get_state_counter=d.state_counter
d.get_throttle_name=d.throttle_name d.get_tied_to_file=d.tied_to_file
d.get_tracker_focus=d.tracker_focus d.get_tracker_numwant=d.tracker_numwant
d.get_tracker_size=d.tracker_size d.get_uploads_max=d.uploads_max
d.set_connection_current=d.connection_current.set d.set_custom=d.custom.set
d.set_custom1=d.custom1.set d.set_custom2=d.custom2.set d.set_custom3=d.custom3.set
d.set_custom4=d.custom4.set d.set_custom5=d.custom5.set d.set_directory=d.directory.set
d.set_directory_base=d.directory_base.set d.set_hashing_failed=d.hashing_failed.set
d.set_ignore_commands=d.ignore_commands.set d.set_max_file_size=d.max_file_size.set
d.set_message=d.message.set d.set_peers_max=d.peers_max.set d.set_peers_min=d.peers_min.set
d.set_priority=d.priority.set d.set_throttle_name=d.throttle_name.set
d.set_tied_to_file=d.tied_to_file.set d.set_tracker_numwant=d.tracker_numwant.set
d.set_uploads_max=d.uploads_max.set create_link=d.create_link delete_link=d.delete_link
delete_tied=d.delete_tied t.get_group=t.group t.get_id=t.id t.get_min_interval=t.min_interval
t.get_normal_interval=t.normal_interval t.get_scrape_complete=t.scrape_complete
t.get_scrape_downloaded=t.scrape_downloaded t.get_scrape_incomplete=t.scrape_incomplete
t.get_scrape_time_last=t.scrape_time_last t.get_type=t.type t.get_url=t.url
t.set_enabled=t.is_enabled.set f.get_completed_chunks=f.completed_chunks
f.get_frozen_path=f.frozen_path f.get_last_touched=f.last_touched
f.get_match_depth_next=f.match_depth_next f.get_match_depth_prev=f.match_depth_prev
f.get_offset=f.offset f.get_path=f.path f.get_path_components=f.path_components
f.get_path_depth=f.path_depth f.get_priority=f.priority f.get_range_first=f.range_first
f.get_range_second=f.range_second f.get_size_bytes=f.size_bytes f.get_size_chunks=f.size_chunks
f.set_priority=f.priority.set fi.get_filename_last=fi.filename_last p.get_address=p.address
p.get_client_version=p.client_version p.get_completed_percent=p.completed_percent
p.get_down_rate=p.down_rate p.get_down_total=p.down_total p.get_id=p.id p.get_id_html=p.id_html
p.get_options_str=p.options_str p.get_peer_rate=p.peer_rate p.get_peer_total=p.peer_total
p.get_port=p.port p.get_up_rate=p.up_rate p.get_up_total=p.up_total
get_directory=directory.default set_directory=directory.default.set get_session=session.path
set_session=session.path.set session_save=session.save get_name=session.name
set_name=session.name.set system.file_allocate=system.file.allocate
system.file_allocate.set=system.file.allocate.set get_max_file_size=system.file.max_size
set_max_file_size=system.file.max_size.set get_split_file_size=system.file.split_size
set_split_file_size=system.file.split_size.set get_split_suffix=system.file.split_suffix
set_split_suffix=system.file.split_suffix.set get_timeout_sync=pieces.sync.timeout
set_timeout_sync=pieces.sync.timeout.set get_timeout_safe_sync=pieces.sync.timeout_safe
set_timeout_safe_sync=pieces.sync.timeout_safe.set get_preload_type=pieces.preload.type
get_preload_min_size=pieces.preload.min_size get_preload_required_rate=pieces.preload.min_rate
set_preload_type=pieces.preload.type.set set_preload_min_size=pieces.preload.min_size.set
set_preload_required_rate=pieces.preload.min_rate.set get_stats_preloaded=pieces.stats_preloaded
get_stats_not_preloaded=pieces.stats_not_preloaded get_safe_sync=pieces.sync.always_safe
set_safe_sync=pieces.sync.always_safe.set get_memory_usage=pieces.memory.current
get_max_memory_usage=pieces.memory.max set_max_memory_usage=pieces.memory.max.set
load=load.normal load_verbose=load.verbose load_start=load.start
load_start_verbose=load.start_verbose load_raw=load.raw load_raw_start=load.raw_start
load_raw_verbose=load.raw_verbose get_connection_leech=protocol.connection.leech
get_connection_seed=protocol.connection.seed set_connection_leech=protocol.connection.leech.set
set_connection_seed=protocol.connection.seed.set throttle_up=throttle.up
throttle_down=throttle.down throttle_ip=throttle.ip get_throttle_up_max=throttle.up.max
get_throttle_up_rate=throttle.up.rate get_throttle_down_max=throttle.down.max
get_throttle_down_rate=throttle.down.rate set_min_peers=throttle.min_peers.normal.set
set_max_peers=throttle.max_peers.normal.set set_min_peers_seed=throttle.min_peers.seed.set
set_max_peers_seed=throttle.max_peers.seed.set set_max_uploads=throttle.max_uploads.set
set_max_uploads_div=throttle.max_uploads.div.set
set_max_uploads_global=throttle.max_uploads.global.set
set_max_downloads_div=throttle.max_downloads.div.set
set_max_downloads_global=throttle.max_downloads.global.set
get_min_peers=throttle.min_peers.normal get_max_peers=throttle.max_peers.normal
get_min_peers_seed=throttle.min_peers.seed get_max_peers_seed=throttle.max_peers.seed
get_max_uploads=throttle.max_uploads get_max_uploads_div=throttle.max_uploads.div
get_max_uploads_global=throttle.max_uploads.global
get_max_downloads_div=throttle.max_downloads.div
get_max_downloads_global=throttle.max_downloads.global get_up_rate=throttle.global_up.rate
get_up_total=throttle.global_up.total get_upload_rate=throttle.global_up.max_rate
set_upload_rate=throttle.global_up.max_rate.set get_down_rate=throttle.global_down.rate
get_down_total=throttle.global_down.total get_download_rate=throttle.global_down.max_rate
set_download_rate=throttle.global_down.max_rate.set
get_send_buffer_size=network.send_buffer.size set_send_buffer_size=network.send_buffer.size.set
get_receive_buffer_size=network.receive_buffer.size
set_receive_buffer_size=network.receive_buffer.size.set set_bind=network.bind_address.set
get_bind=network.bind_address set_ip=network.local_address.set get_ip=network.local_address
get_port_range=network.port_range set_port_range=network.port_range.set
get_port_random=network.port_random set_port_random=network.port_random.set
port_open=network.port_open.set get_port_open=network.port_open
set_port_open=network.port_open.set set_proxy_address=network.proxy_address.set
get_proxy_address=network.proxy_address scgi_dont_route=network.scgi.dont_route.set
set_scgi_dont_route=network.scgi.dont_route.set get_scgi_dont_route=network.scgi.dont_route
get_max_open_sockets=network.max_open_sockets get_max_open_files=network.max_open_files
set_max_open_files=network.max_open_files.set xmlrpc_dialect=network.xmlrpc.dialect.set
set_xmlrpc_dialect=network.xmlrpc.dialect.set xmlrpc_size_limit=network.xmlrpc.size_limit.set
get_xmlrpc_size_limit=network.xmlrpc.size_limit
set_xmlrpc_size_limit=network.xmlrpc.size_limit.set http_capath=network.http.capath.set
get_http_capath=network.http.capath set_http_capath=network.http.capath.set
http_cacert=network.http.cacert.set get_http_cacert=network.http.cacert
set_http_cacert=network.http.cacert.set get_max_open_http=network.http.max_open
set_max_open_http=network.http.max_open.set http_proxy=network.http.proxy_address.set
get_http_proxy=network.http.proxy_address set_http_proxy=network.http.proxy_address.set
peer_exchange=protocol.pex.set get_peer_exchange=protocol.pex set_peer_exchange=protocol.pex.set
tracker_numwant=trackers.numwant.set get_tracker_numwant=trackers.numwant
set_tracker_numwant=trackers.numwant.set use_udp_trackers=trackers.use_udp.set
get_use_udp_trackers=trackers.use_udp set_use_udp_trackers=trackers.use_udp.set
dht_add_node=dht.add_node dht_statistics=dht.statistics get_dht_port=dht.port
set_dht_port=dht.port.set get_dht_throttle=dht.throttle.name
set_dht_throttle=dht.throttle.name.set get_session_lock=session.use_lock
set_session_lock=session.use_lock.set get_session_on_completion=session.on_completion
set_session_on_completion=session.on_completion.set get_check_hash=pieces.hash.on_completion
set_check_hash=pieces.hash.on_completion.set view_add=view.add view_filter=view.filter
view_filter_on=view.filter_on view_list=view.list view_set=view.set view_sort=view.sort
view_sort_current=view.sort_current view_sort_new=view.sort_new execute_throw=execute.throw
execute_nothrow=execute.nothrow execute_raw=execute.raw execute_raw_nothrow=execute.raw_nothrow
execute_capture=execute.capture execute_capture_nothrow=execute.capture_nothrow
""".split())
# d.multicall2 wants a view where d.multicall took it, after an added empty target:
# a plain rename would be wrong, so the old name stays and --check names it.
del RTORRENT_RENAMED["d.multicall"]

#: A name where rTorrent's command parser expects a command: at the start, after ',',
#: ';', '{', '(', '"', '$', '=' or a blank.
_COMMAND_AT = re.compile(r'(?:^|(?<=[,;{("$=\s]))([A-Za-z_][\w.]*)')


def command_names(text):
    """The (start, end, name) of every name that rTorrent would call as a command in
    ``text``: one followed by '=' (``d.custom.set=...``, ``$d.name=``) or standing
    alone in new-style parentheses (``(d.name)``); values such as ``targetdir`` in
    ``d.custom.set=targetdir,...`` are not."""
    found = []
    for match in _COMMAND_AT.finditer(text):
        start, end = match.span(1)
        after = text[end:end + 1]
        before = text[start - 1:start] if start else ""
        if after == "=" or before == "(" and after in (")", ","):
            found.append((start, end, match.group(1)))
    return found


def translate_command_names(text):
    """``text`` with rTorrent 0.8 command names replaced by their 0.9 names, and the
    list of (old, new) replaced."""
    out, pos, renamed = [], 0, []
    for start, end, name in command_names(text):
        new = RTORRENT_RENAMED.get(name)
        if new:
            out.append(text[pos:start] + new)
            pos = end
            if (name, new) not in renamed:
                renamed.append((name, new))
    out.append(text[pos:])
    return "".join(out), renamed


def _render_value(value):
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(str(v) for v in value))
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _path_name(value):
    return os.path.splitext(os.path.basename(value or ""))[0]


#: Filters, usable as '{{x|name}}', '{{x|h.name}}' or '{{h.name(x)}}'.
TEMPLATE_FILTERS = {
    "pathbase": lambda v: os.path.basename(v or ""),
    "pathname": _path_name,
    "pathext": lambda v: os.path.splitext(v or "")[1],
    "pathdir": lambda v: os.path.dirname(v or ""),
    "strip": lambda v: str(v).strip(),
    "lower": lambda v: str(v).lower(),
    "upper": lambda v: str(v).upper(),
    "title": lambda v: str(v).title(),
    "sz": lambda v: human_size(int(v or 0)),
    "iso": lambda v: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(v or 0))),
    "json": lambda v: json.dumps(v, sort_keys=True, default=_render_value),
}


class _Helpers(dict):
    """The 'h' name of templates: the filters."""


_TEMPLATE_BUILTINS = {"len": len, "str": str, "int": int, "bool": bool, "min": min,
                      "max": max, "sorted": sorted, "h": _Helpers(TEMPLATE_FILTERS)}
_SAFE_METHODS = {
    str: frozenset("replace title lower upper strip lstrip rstrip startswith endswith split "
                   "rsplit capitalize casefold partition rpartition count find zfill "
                   "isdigit".split()),
    dict: frozenset(("get", "keys", "values", "items")),
    list: frozenset(("count", "index")),
}
_COMPARE = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
            ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
            ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
            ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b}


def _check_expr(node, source):
    """Reject everything outside the small expression language."""
    allowed = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Call,
               ast.Subscript, ast.Slice, ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp,
               ast.Not, ast.USub, ast.IfExp, ast.BinOp, ast.Add, ast.List, ast.Tuple) \
        + tuple(_COMPARE)
    for sub in ast.walk(node):
        if not isinstance(sub, allowed):
            raise TemplateError("%r: %s is not allowed in a template" % (source, type(sub).__name__))
        if isinstance(sub, ast.Attribute) and sub.attr.startswith("_") or \
                isinstance(sub, ast.Name) and sub.id.startswith("_"):
            raise TemplateError("%r: private names are not allowed" % source)
        if isinstance(sub, ast.Call) and sub.keywords:
            raise TemplateError("%r: keyword arguments are not allowed" % source)
        if isinstance(sub, ast.BinOp) and not isinstance(sub.op, ast.Add):
            raise TemplateError("%r: only '+' is allowed as an operator" % source)


def _compile_expr(source):
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise TemplateError("%r: %s" % (source, exc.msg)) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        # Python's parser gives up on deep nesting ('not not ...', '((((...') with these,
        # not a SyntaxError; ValueError is a NUL byte before Python 3.12.
        raise TemplateError("%r: %s" % (source[:200], str(exc) or "nested too deeply for "
                                        "Python's parser")) from None
    _check_expr(tree, source)
    return tree.body


def _eval(node, ns):
    """The value of a checked template expression (see _check_expr) in namespace ``ns``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ns:
            return ns[node.id]
        if node.id in _TEMPLATE_BUILTINS:
            return _TEMPLATE_BUILTINS[node.id]
        raise TemplateError("unknown name %r" % node.id)
    if isinstance(node, ast.Attribute):
        obj = _eval(node.value, ns)
        if isinstance(obj, dict) and node.attr in obj:
            return obj[node.attr]
        raise TemplateError("%s has no attribute %r" % (type(obj).__name__, node.attr))
    if isinstance(node, ast.Call):
        return _eval_call(node, ns)
    if isinstance(node, ast.Subscript):
        obj = _eval(node.value, ns)
        index = node.slice
        if isinstance(index, ast.Slice):
            parts = [None if p is None else _eval(p, ns) for p in (index.lower, index.upper, index.step)]
            return obj[slice(*parts)]
        return obj[_eval(index, ns)]
    if isinstance(node, ast.Compare):
        left = _eval(node.left, ns)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, ns)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        value = None
        for operand in node.values:
            value = _eval(operand, ns)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, ns)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, ns) else node.orelse, ns)
    if isinstance(node, ast.BinOp):
        return _eval(node.left, ns) + _eval(node.right, ns)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(elt, ns) for elt in node.elts]
    raise TemplateError("cannot evaluate %s" % type(node).__name__)


def _eval_call(node, ns):
    """A call in a template: a filter (``h.name(x)``), a safe method of a str, dict or
    list, or one of the few built-in functions; anything else is a TemplateError."""
    args = [_eval(arg, ns) for arg in node.args]
    func = node.func
    if isinstance(func, ast.Attribute):
        obj = _eval(func.value, ns)
        if isinstance(obj, _Helpers):
            if func.attr not in obj:
                raise TemplateError("no filter %r" % func.attr)
            return obj[func.attr](*args)
        for kind, methods in _SAFE_METHODS.items():
            if isinstance(obj, kind) and func.attr in methods:
                return getattr(obj, func.attr)(*args)
        raise TemplateError("%s.%s() is not allowed" % (type(obj).__name__, func.attr))
    target = _eval(func, ns)
    if target in TEMPLATE_FILTERS.values() or target in (len, str, int, bool, min, max, sorted):
        return target(*args)
    raise TemplateError("that is not a function templates may call")


def _split_filters(text):
    """'expr|f1|h.f2' -> ('expr', ['f1', 'f2']); a '|' inside quotes or brackets is kept."""
    parts, depth, quote, start = [], 0, None, 0
    for index, char in enumerate(text):
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    filters = []
    for name in (p.strip() for p in parts[1:]):
        name = name[2:] if name.startswith("h.") else name
        if name not in TEMPLATE_FILTERS:
            raise TemplateError("unknown filter %r (filters: %s)"
                                % (name, ", ".join(sorted(TEMPLATE_FILTERS))))
        filters.append(TEMPLATE_FILTERS[name])
    return parts[0], filters


_TEMPLATE_TOKEN = re.compile(r"\{\{(.*?)\}\}|%\((\w+)\)s", re.S)
_DIRECTIVE = re.compile(r"\s*(if|elif|else|endif)\b\s*(.*?)\s*:?\s*\Z", re.S)


class Template:
    """One compiled template; ``render(namespace)`` returns its text with every value put
    through ``escape``.  The tree watch's cmd.NAME templates (``WatchTemplate``) use it
    as it is; ItemTemplate (in "Item templates") chooses another escape."""

    #: Every value a template puts out goes through this.  By default it is rTorrent's
    #: command escaping: cmd.NAME templates become rTorrent commands, so nothing in a
    #: value may be read as syntax.
    escape = staticmethod(rtorrent_escape)

    def __init__(self, text, name="template"):
        self.text, self.name = text, name
        self.nodes = self._parse(self._tokens(text))

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.text)

    @staticmethod
    def _tokens(text):
        """Split into ('text', s) / ('expr', s) / ('var', name) / (directive, arg) tokens."""
        tokens, pos = [], 0
        for found in _TEMPLATE_TOKEN.finditer(text):
            tokens.append(("text", text[pos:found.start()]))
            pos = found.end()
            if found.group(2) is not None:
                tokens.append(("var", found.group(2)))
                continue
            inner = found.group(1)
            if inner.startswith("#"):
                tokens.append(("comment", ""))
                continue
            directive = _DIRECTIVE.match(inner)
            if directive:
                tokens.append((directive.group(1), directive.group(2)))
            else:
                tokens.append(("expr", inner))
        tokens.append(("text", text[pos:]))
        if "{{" in "".join(t for kind, t in tokens if kind == "text"):
            raise TemplateError("unclosed '{{' in %r" % text)
        # A directive or comment alone on its line takes the line with it (as Tempita does).
        for index, (kind, _) in enumerate(tokens):
            if kind in ("text", "expr", "var") or not 0 < index < len(tokens) - 1:
                continue
            before, after = tokens[index - 1][1], tokens[index + 1][1]
            head = before.rsplit("\n", 1)
            tail = after.split("\n", 1)
            if (len(head) == 2 or index == 1) and not head[-1].strip() and \
                    len(tail) == 2 and not tail[0].strip():
                tokens[index - 1] = ("text", head[0] + "\n" if len(head) == 2 else "")
                tokens[index + 1] = ("text", tail[1])
            elif kind == "comment" and after.startswith("\n"):
                tokens[index + 1] = ("text", after[1:])
        return tokens

    def _parse(self, tokens):
        root = []
        stack = [(None, root)]      # (if-node or None, the list being filled)
        for kind, arg in tokens:
            body = stack[-1][1]
            if kind == "text":
                if arg:
                    body.append(("text", arg))
            elif kind == "comment":
                continue
            elif kind == "var":
                body.append(("expr", ast.Name(id=arg, ctx=ast.Load()), [], arg))
            elif kind == "expr":
                source, filters = _split_filters(arg)
                body.append(("expr", _compile_expr(source), filters, arg.strip()))
            elif kind == "if":
                node = ["if", [(_compile_expr(arg), [])], [], False]
                body.append(node)
                stack.append((node, node[1][0][1]))
            elif kind in ("elif", "else"):
                node = stack[-1][0]
                if node is None or node[3]:
                    raise TemplateError("{{%s}} without {{if}} (or after {{else}}) in %r"
                                        % (kind, self.text))
                if kind == "elif":
                    node[1].append((_compile_expr(arg), []))
                    stack[-1] = (node, node[1][-1][1])
                else:
                    node[3] = True
                    stack[-1] = (node, node[2])
            elif kind == "endif":
                if stack[-1][0] is None:
                    raise TemplateError("{{endif}} without {{if}} in %r" % self.text)
                stack.pop()
        if len(stack) > 1:
            raise TemplateError("{{if}} without {{endif}} in %r" % self.text)
        return root

    @classmethod
    def _text_nodes(cls, nodes):
        """(nodes, index) of every literal text node, in order, {{if}} branches included."""
        for index, node in enumerate(nodes):
            if node[0] == "text":
                yield nodes, index
            elif node[0] == "if":
                for _, body in node[1]:
                    yield from cls._text_nodes(body)
                yield from cls._text_nodes(node[2])

    def translate_names(self):
        """Replace rTorrent 0.8 command names in the template's own text (never in what
        its expressions put out); return the (old, new) pairs replaced."""
        renamed = []
        for nodes, index in self._text_nodes(self.nodes):
            text, pairs = translate_command_names(nodes[index][1])
            nodes[index] = ("text", text)
            renamed.extend(p for p in pairs if p not in renamed)
        return renamed

    def command_names(self):
        """The names the template's own text calls as rTorrent commands."""
        names = []
        for nodes, index in self._text_nodes(self.nodes):
            names.extend(n for _, _, n in command_names(nodes[index][1]) if n not in names)
        return names

    def render(self, namespace):
        out = []
        self._render(self.nodes, namespace, out)
        return "".join(out)

    def _render(self, nodes, ns, out):
        for node in nodes:
            if node[0] == "text":
                out.append(node[1])
            elif node[0] == "expr":
                try:
                    value = _eval(node[1], ns)
                    for filt in node[2]:
                        value = filt(value)
                except TemplateError:
                    raise
                except Exception as exc:
                    raise TemplateError("{{%s}}: %s: %s" % (node[3], type(exc).__name__, exc)) from None
                out.append(self.escape(_render_value(value)))
            else:
                for condition, body in node[1]:
                    try:
                        hit = _eval(condition, ns)
                    except TemplateError:
                        raise
                    except Exception as exc:
                        raise TemplateError("{{if}}: %s: %s" % (type(exc).__name__, exc)) from None
                    if hit:
                        self._render(body, ns, out)
                        break
                else:
                    self._render(node[2], ns, out)


#: The tree watch's cmd.NAME templates: a Template with rTorrent's command escaping.
WatchTemplate = Template


###############################################################################
# Fast XML-RPC answers ########################################################
###############################################################################
#
# A queue tick at 10,000 items reads a 3.5 MiB d.multicall2 answer, and
# xmlrpc.client.loads spends ~155 ms on it: one Python call per element start,
# end and text piece.  fast_loads() gives the same result in about a third of
# that, still with the standard library only, by letting C code do all the
# per-element work:
#
# 1. expat parses the whole body with no handlers set (C speed).  It raises the
#    same ExpatError (same message) as xmlrpc.client.loads for a body that is
#    not well-formed XML, e.g. one with a control character from a torrent name,
#    and afterwards everything below may take well-formedness for granted.  The
#    one difference: where such a body also has an XML-RPC error *before* the
#    XML error (say <i4></i4>), xmlrpc.client raises that one (ValueError) and
#    fast_loads the ExpatError.
# 2. A handful of bytes.replace passes turn the tag groups XML-RPC is made of
#    into JSON: "<value><string>" becomes '"', "</i8></value>\r\n" ends a number,
#    and so on.  Every token carries marker bytes that XML forbids (so they
#    cannot come from the body): \x02 starts a value, \x01 ends one, \x03 ends
#    a "[", "{" or "key:" and \x04 starts a "]" or "}".  Only a marker pair with
#    nothing between becomes JSON ("\x01\x02" is ","), so any text left between
#    two tokens (text XML-RPC ignores, or whitespace we do not expect) and any
#    token that ended up inside a string (an element inside <string>) leaves a
#    marker behind, which json.loads refuses.
# 3. The content of strings and names is escaped for JSON (\\, ", tab,
#    newline after XML's line-end normalisation, entities and character
#    references), integer content is checked to be digits, and json.loads
#    (C speed) builds the lists, dicts, strs and ints.
#
# Anything else -- a fault, <double>, <base64>, <dateTime.iso8601>, a bare
# <value>text</value>, CDATA, comments, attributes, namespaces, another
# encoding, odd whitespace -- makes fast_loads hand the body to
# xmlrpc.client.loads, so the result (or the exception) is always the one that
# function gives (but for the ExpatError above).  rTorrent 0.9.8 sends only strings, i8/i4, arrays and
# structs, so its answers take the fast path.

_FP_WS = rb"[ \t\r\n]*"
#: What may come before the first <value>: an XML declaration in UTF-8 (the
#: default) and the methodResponse/params/param frame.  Anything else is left
#: to xmlrpc.client.
_FP_PROLOG = re.compile(
    rb"(?:<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:\"1\.[0-9]+\"|'1\.[0-9]+')"
    rb"(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:\"[Uu][Tt][Ff]-8\"|'[Uu][Tt][Ff]-8'))?"
    rb"(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:\"(?:yes|no)\"|'(?:yes|no)'))?"
    rb"[ \t\r\n]*\?>)?" + _FP_WS +
    rb"<methodResponse>" + _FP_WS + rb"<params>" + _FP_WS + rb"<param>" + _FP_WS +
    rb"(?=<value>)")
_FP_EPILOG = re.compile(
    rb"</param>" + _FP_WS + rb"</params>" + _FP_WS + rb"</methodResponse>" + _FP_WS + rb"\Z")
#: Integer content other than -?digits (xmlrpc.client takes " 7", "+7", "0_7" too:
#: those bodies are left to it; JSON would read "true" or "[]" as something else).
_FP_BAD_INT = re.compile(rb"<(?:i8|i4|int)>(?!-?[0-9]+</)")
_FP_REFERENCE = re.compile(rb"&(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));")
_FP_ENTITIES = {b"amp": b"&", b"lt": b"<", b"gt": b">", b"quot": b'\\"', b"apos": b"'"}


def _fp_refuse(text):
    raise ValueError("not an XML-RPC number: %r" % text)


#: Strict: a marker or a raw control character is an error.  NaN and Infinity
#: cannot get here (integer content is checked), the hook only makes sure.
_FP_JSON = json.JSONDecoder(parse_constant=_fp_refuse)


def _fp_families(gaps):
    """The tag groups of XML-RPC and their JSON tokens, for whitespace ``gaps``.

    A family is (triggers, patterns): its patterns are replaced in order, and only
    if one of its tag groups is in the text.  A
    pattern ending in a gap also eats the whitespace after its last tag (a
    separate gap-less pattern takes the rest).  No pattern of one family matches
    text of another, so the families may run in any order: the common ones first.
    """
    def opened(tags, token):
        return [(tags + gap, token) for gap in gaps] + [(tags, token)]

    closed = opened
    families = [
        # \x02 starts a value, \x01 ends one: "\x01\x02" becomes ","
        (b"<value><string>", [(b"<value><string>", b'\x02"')]
         + closed(b"</string></value>", b'"\x01')),
        (b"<value><i8>", [(b"<value><i8>", b"\x02")] + closed(b"</i8></value>", b"\x01")),
        # \x03 ends an opening "[", "{" or "key:", \x04 starts a closing "]" or "}"
        (b"<value><array><data>", opened(b"<value><array><data>", b"\x02[\x03")
         + closed(b"</data></array></value>", b"\x04]\x01")),
        (b"<value><i4>", [(b"<value><i4>", b"\x02")] + closed(b"</i4></value>", b"\x01")),
        (b"<value><struct>", opened(b"<value><struct>", b"\x02{\x03")
         + closed(b"</struct></value>", b"\x04}\x01")),
        (b"<member>", [(b"<member>" + gap + b"<name>", b'\x02"') for gap in gaps + (b"",)]
         + closed(b"</name>", b'":\x03') + closed(b"</member>", b"")),
        (b"<value><int>", [(b"<value><int>", b"\x02")] + closed(b"</int></value>", b"\x01")),
        (b"<value><boolean>", closed(b"<value><boolean>0</boolean></value>", b"\x02false\x01")
         + closed(b"<value><boolean>1</boolean></value>", b"\x02true\x01")),
        (b"<value><nil", closed(b"<value><nil/></value>", b"\x02null\x01")
         + closed(b"<value><nil></nil></value>", b"\x02null\x01")),
        (b"<value><string/>", closed(b"<value><string/></value>", b'\x02""\x01')),
        (b"<value><array><data/>", closed(b"<value><array><data/></array></value>",
                                          b"\x02[]\x01")),
        (b"<value><struct/>", closed(b"<value><struct/></value>", b"\x02{}\x01")),
    ]
    # The passes before may have taken any tag group of a family but not the others.
    return [({pattern for pattern, _ in family if not pattern.endswith(gaps)}, family)
            for _, family in families]




def _fp_passes(gap):
    """Every replacement, in order, for bodies whose lines end with ``gap``.

    First the common neighbours of rTorrent's answers in one go (a string
    followed by a number, the end of one row and the start of the next, ...):
    each is exactly the two tokens of its tag groups with the joint between
    them, so it needs no markers.  Then the families of single tag groups.
    """
    scalars = [(b"string", b'"'), (b"i8", b"")]
    end = b"</%s></value>" + gap                    # a scalar's end and the gap after it
    rows = b"</data></array></value>" + gap + b"<value><array><data>" + gap
    passes = []
    for left, quote in scalars:                     # two scalars in a row
        for right, quote2 in scalars:
            passes.append((end % left + b"<value><%s>" % right, quote + b"," + quote2))
    for left, quote in scalars:                     # one row ends, the next one starts
        for right, quote2 in scalars:
            passes.append((end % left + rows + b"<value><%s>" % right, quote + b"],[" + quote2))
    for right, quote2 in scalars:                   # the first row starts
        passes.append((b"<value><array><data>" + gap + b"<value><%s>" % right, b"\x02[" + quote2))
    for left, quote in scalars:                     # the last row ends
        passes.append((end % left + b"</data></array></value>" + gap, quote + b"]\x01"))
        passes.append((end % left + b"</data></array></value>", quote + b"]\x01"))
    # an array around arrays, e.g. d.multicall2's
    passes.append((b"<value><array><data>%s\x02" % gap, b"\x02["))
    passes.append((b"\x01</data></array></value>%s" % gap, b"]\x01"))
    passes.append((b"\x01</data></array></value>", b"]\x01"))
    return passes, _fp_families((gap,))


_FP_CRLF = _fp_passes(b"\r\n")   # rTorrent (xmlrpc-c) ends its lines with CRLF
_FP_LF = _fp_passes(b"\n")        # xmlrpc.client.dumps and most others with LF
#: Joints: two tokens with nothing between them.
_FP_JOINTS = ((b"\x01\x02", b","), (b"\x03\x02", b""), (b"\x01\x04", b""), (b"\x03\x04", b""))


def _fp_reference(match):
    """An entity or character reference as JSON string content."""
    name, decimal, hexa = match.groups()
    if name:
        return _FP_ENTITIES[name]
    char = chr(int(decimal) if decimal else int(hexa, 16))
    if char < " " or char in '"\\':
        return ("\\u%04x" % ord(char)).encode()
    return char.encode("utf-8")


def _fp_translate(body):
    """The methodResponse ``body`` (well-formed XML) as JSON text, or None.

    None means: not (only) what this translator knows; xmlrpc.client decides.
    """
    prolog = _FP_PROLOG.match(body)
    end = body.rfind(b"</param>")
    if not prolog or end < prolog.end() or not _FP_EPILOG.match(body, end):
        return None
    start = prolog.end()
    if _FP_BAD_INT.search(body, start, end):
        return None
    text = body[start:end]
    if b"\\" in text:
        text = text.replace(b"\\", b"\\\\")
    if b'"' in text:
        text = text.replace(b'"', b'\\"')
    passes, families = _FP_CRLF if b"\r" in prolog.group() else _FP_LF
    for pattern, token in passes:
        text = text.replace(pattern, token)
    if b"<" in text:
        for triggers, family in families:
            if any(trigger in text for trigger in triggers):
                for pattern, token in family:
                    text = text.replace(pattern, token)
                if b"<" not in text:
                    break
        else:
            return None                 # a tag we do not translate (or in an odd place)
    if not (text.startswith(b"\x02") and text.endswith(b"\x01")):
        return None
    text = b"".join((b"[", memoryview(text)[1:-1], b"]"))
    if b"\x01" in text or b"\x03" in text:   # rarely: joints the passes did not make
        for joint, separator in _FP_JOINTS:
            text = text.replace(joint, separator)
    # What is left of CR, LF and tab is string content (or text XML-RPC ignores,
    # which left its markers behind): XML turns CRLF and CR into LF.
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"\n" in text:
        text = text.replace(b"\n", b"\\n")
    if b"\t" in text:
        text = text.replace(b"\t", b"\\t")
    if b"&" in text:
        text = _FP_REFERENCE.sub(_fp_reference, text)
    return text


def _fp_fast(body):
    """fast_loads' own answer for a well-formed ``body``, or None for xmlrpc.client."""
    text = _fp_translate(body)
    if text is not None:
        try:
            return tuple(_FP_JSON.decode(text.decode("utf-8")))
        except (ValueError, RecursionError):
            pass                                    # e.g. a marker left: ask xmlrpc.client
    return None


class XmlRpcFault(PyrotorqueError):
    """A fault answer: ``faultCode`` and ``faultString``, as xmlrpc.client's Fault has."""

    def __init__(self, code, text):
        super().__init__(code, text)
        self.faultCode, self.faultString = code, text

    def __str__(self):
        return "<Fault %s: %r>" % (self.faultCode, self.faultString)


class UnreadableAnswer(RtorrentError):
    """An answer that cannot be read: well-formed XML that is no XML-RPC answer
    (xmlrpc.client's ResponseError), or, from RtorrentProxy.call, any answer it cannot
    parse (the message names the method)."""


def _fp_fault(body):
    """The XmlRpcFault of a fault answer the translator reads, else None."""
    if body.count(b"<fault>") != 1 or b"<params>" in body:
        return None
    params = _fp_fast(body.replace(b"<fault>", b"<params><param>")
                      .replace(b"</fault>", b"</param></params>"))
    if params and len(params) == 1 and isinstance(params[0], dict) \
            and set(params[0]) == {"faultCode", "faultString"}:
        return XmlRpcFault(params[0]["faultCode"], params[0]["faultString"])
    return None


def fast_loads(body):
    """``xmlrpc.client.loads(body, use_builtin_types=True)[0]``, three times as fast.

    Returns the params tuple of a methodResponse; raises ``XmlRpcFault`` for a
    fault answer, ``xml.parsers.expat.ExpatError`` for a body that is not
    well-formed XML (e.g. a control character XML forbids, or bytes that are not
    UTF-8) -- even where xmlrpc.client would have stopped earlier at an XML-RPC
    error -- ``UnreadableAnswer`` for XML that is no answer, and otherwise whatever
    ``xmlrpc.client.loads`` raises.  xmlrpc.client is only imported for answers
    the translator leaves to it.
    """
    if type(body) is bytes:                         # noqa: E721 (not a subclass)
        xml.parsers.expat.ParserCreate().Parse(body, True)  # ExpatError as xmlrpc.client's
        params = _fp_fast(body)
        if params is not None:
            return params
        fault = _fp_fault(body)
        if fault is not None:
            raise fault
    try:
        return xmlrpc.client.loads(body, use_builtin_types=True)[0]
    except xmlrpc.client.Fault as fault:
        raise XmlRpcFault(fault.faultCode, fault.faultString) from None
    except xmlrpc.client.ResponseError as exc:
        raise UnreadableAnswer(str(exc)) from None


###############################################################################
# rTorrent proxy ##############################################################
###############################################################################
#
# rTorrent speaks XML-RPC (and, from 0.15 on, JSON-RPC) over SCGI: one request per
# connection, a netstring of NUL-separated headers (CONTENT_LENGTH first) followed by
# the body, and a CGI-style answer.  The request XML is our own marshaller's and XML
# answers are read by fast_loads (above; xmlrpc.client only for what it cannot read),
# JSON ones by the json module; this section chooses the protocol and does the
# framing, the timeouts, the statistics and the bookkeeping of outages and hangs.

#: Calls per `system.multicall` round trip, unless the caller sizes its own batches.
MULTICALL_BATCH = 500

#: After a call timed out, rTorrent counts as hung: calls fail at once for this many
#: seconds, then a probe with HUNG_PROBE_TIMEOUT asks whether it answers again.  The
#: main loop is single-threaded, so without this every job in turn would wait the
#: whole rpc_timeout on a stopped rTorrent, and the exporter and the watches with it.
HUNG_PAUSE = 5.0
HUNG_PROBE_TIMEOUT = 1.0


class RpcEndpoint:
    """Where rTorrent listens: ``kind`` is 'unix', 'tcp' or 'http'; ``rpc`` is the
    protocol the URL asks for ('json', 'xml'), None to find out."""

    def __init__(self, kind, address, url, rpc=None):
        self.kind, self.address, self.url, self.rpc = kind, address, url, rpc

    def __repr__(self):
        return "RpcEndpoint(%r, %r)" % (self.kind, self.address)

    def __str__(self):
        return self.url


def parse_rpc_url(url):
    """Read every endpoint form pyrocore and pyrosimple users write.

    ``scgi://host:port`` and ``host:port`` are TCP; ``scgi:///path``,
    ``scgi:/path``, ``/path`` and ``~/path`` are unix sockets; ``http(s)://``
    URLs are XML-RPC over HTTP, as a web server in front of rTorrent offers.
    Any of them may end in pyrosimple's ``?rpc=json`` or ``?rpc=xml``.
    """
    text = os.path.expandvars(str(url).strip())
    if not text:
        raise ConfigError("empty rTorrent URL")
    endpoint = _parse_rpc_address(text)
    endpoint.url = text
    return endpoint


def _rpc_query(text, query, keep_others):
    """The protocol ``rpc=json|xml`` in a URL's ``query`` asks for (None: any), and
    the rest of the query (other keys are an error unless ``keep_others``)."""
    rpc, others = None, []
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key != "rpc":
            others.append((key, value))
        elif value.lower() in ("json", "xml"):
            rpc = value.lower()
        else:
            raise ConfigError("rTorrent URL %r: rpc=%s, expected rpc=json or rpc=xml"
                              % (text, value))
    if others and not keep_others:
        raise ConfigError("rTorrent URL %r: unknown query %r (only rpc=json or rpc=xml)"
                          % (text, urllib.parse.urlencode(others)))
    return rpc, urllib.parse.urlencode(others)


def _parse_rpc_address(text):
    if text.lower().startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(text)
        if not parts.hostname:
            raise ConfigError("rTorrent URL %r has no host" % text)
        rpc, rest = _rpc_query(text, parts.query, keep_others=True)
        return RpcEndpoint("http", parts._replace(query=rest), text, rpc)
    address, _, query = text.partition("?")
    rpc = _rpc_query(text, query, keep_others=False)[0]
    endpoint = _parse_scgi_address(address)
    endpoint.rpc = rpc
    return endpoint


def _parse_scgi_address(text):
    if text.startswith(("/", "~")):
        return RpcEndpoint("unix", os.path.expanduser(text), text)
    scheme, sep, rest = text.partition("://")
    if not sep and text.startswith("scgi:/"):
        scheme, rest = "scgi", text[len("scgi:"):]
        return RpcEndpoint("unix", os.path.expanduser(rest), text)
    if not sep:
        scheme, rest = "", text
    scheme = scheme.lower()
    if scheme not in ("", "scgi"):
        raise ConfigError("rTorrent URL %r: unsupported scheme %r (use scgi:// or http(s)://)"
                          % (text, scheme))
    if rest.startswith("/"):
        return RpcEndpoint("unix", os.path.expanduser(rest), text)
    if rest.startswith("~"):
        return RpcEndpoint("unix", os.path.expanduser(rest), text)
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("rTorrent URL %r: expected host:port or a socket path" % text)
    return RpcEndpoint("tcp", (host.strip("[]"), int(port)), text)


def _netstring(data):
    return b"%d:%s," % (len(data), data)


def scgi_request(body, headers=()):
    """Frame an XML-RPC body as one SCGI request (CONTENT_LENGTH must come first)."""
    fields = [("CONTENT_LENGTH", str(len(body))), ("SCGI", "1")] + list(headers)
    head = b"".join(b"%s\0%s\0" % (k.encode(), v.encode()) for k, v in fields)
    return _netstring(head) + body


def parse_scgi_response(data):
    """Split rTorrent's CGI-style answer into (headers, body); raise RtorrentError if malformed."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise RtorrentError("malformed SCGI response (no header end) in %r" % data[:80])
    headers = {}
    for line in head.decode("latin-1").splitlines():
        name, colon, value = line.partition(": ")
        if not colon:
            raise RtorrentError("malformed SCGI response header %r" % line)
        headers[name.lower()] = value
    status = headers.get("status", "200")
    if not status.startswith("200"):
        raise RtorrentError("rTorrent answered with status %r" % status)
    length = headers.get("content-length")
    if length is not None and int(length) != len(body):
        raise RtorrentError("truncated SCGI response: %d of %s bytes" % (len(body), length))
    return headers, body


class CallStats:
    """What every call to rTorrent cost, since the daemon started."""

    def __init__(self):
        self.calls = self.errors = 0
        self.bytes_out = self.bytes_in = self.max_out = self.max_in = 0
        self.net_seconds = self.total_seconds = 0.0
        self.by_method = {}

    def add(self, method, sent, received, net_seconds, total_seconds, failed=False):
        self.calls += 1
        self.errors += failed
        self.bytes_out += sent
        self.bytes_in += received
        self.max_out = max(self.max_out, sent)
        self.max_in = max(self.max_in, received)
        self.net_seconds += net_seconds
        self.total_seconds += total_seconds
        self.by_method[method] = self.by_method.get(method, 0) + 1

    def __str__(self):
        calls = max(1, self.calls)
        return "%d req, out %s [%s max], in %s [%s max], %.1fms/%.1fms avg latency" % (
            self.calls, human_size(self.bytes_out), human_size(self.max_out),
            human_size(self.bytes_in), human_size(self.max_in),
            1000 * self.net_seconds / calls, 1000 * self.total_seconds / calls)


def _xml_text(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _marshal(value, out):
    """Append ``value`` as an XML-RPC <value> to the list ``out`` (xmlrpc.client's
    encoding of the same types, without importing it and its HTTP stack)."""
    if isinstance(value, bool):
        out.append("<value><boolean>%d</boolean></value>\n" % value)
    elif isinstance(value, int):
        if not -2**31 <= value < 2**31:
            raise OverflowError("int exceeds XML-RPC limits")
        out.append("<value><int>%d</int></value>\n" % value)
    elif isinstance(value, float):
        out.append("<value><double>%r</double></value>\n" % value)
    elif isinstance(value, str):
        out.append("<value><string>%s</string></value>\n" % _xml_text(value))
    elif isinstance(value, (bytes, bytearray)):
        out.append("<value><base64>\n%s</base64></value>\n"
                   % base64.encodebytes(bytes(value)).decode("ascii"))
    elif isinstance(value, (list, tuple)):
        out.append("<value><array><data>\n")
        for item in value:
            _marshal(item, out)
        out.append("</data></array></value>\n")
    elif isinstance(value, dict):
        out.append("<value><struct>\n")
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("dictionary key must be string")
            out.append("<member>\n<name>%s</name>\n" % _xml_text(key))
            _marshal(item, out)
            out.append("</member>\n")
        out.append("</struct></value>\n")
    else:
        raise TypeError("cannot marshal %s objects" % type(value).__name__)


def xmlrpc_request(method, params):
    """The UTF-8 body of an XML-RPC call of ``method`` with ``params``."""
    out = ["<?xml version='1.0'?>\n<methodCall>\n<methodName>%s</methodName>\n<params>\n"
           % _xml_text(method)]
    for param in params:
        out.append("<param>\n")
        _marshal(param, out)
        out.append("</param>\n")
    out.append("</params>\n</methodCall>\n")
    return "".join(out).encode("utf-8")


def _xmlrpc_safe(value):
    """Make a value sendable: big ints as strings (rTorrent parses them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -2**31 <= value < 2**31:
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_xmlrpc_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _xmlrpc_safe(v) for k, v in value.items()}
    return value


#: Characters XML 1.0 forbids; rTorrent passes them through from names.
_XML_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _parse_xmlrpc_response(body):
    """Parse an answer; a name rTorrent sent as broken XML costs one item its name, not the call."""
    try:
        return fast_loads(body)
    except xml.parsers.expat.ExpatError:
        text = _XML_FORBIDDEN.sub("\ufffd", body.decode("utf-8", "replace"))
        return fast_loads(text.encode("utf-8"))


def _xmlrpc_result(body):
    return _parse_xmlrpc_response(body)[0]


# JSON-RPC 2.0 (rTorrent 0.15 and later, on the same socket) ------------------------
#
# rTorrent picks the protocol by CONTENT_TYPE (application/json) or a body that
# starts with "{" or "[".  Its JSON has no binary type and takes only valid UTF-8,
# so a call with bytes (load.raw*: a metafile) goes over XML-RPC.  It writes its
# answer with a strict encoder: a name or path with invalid UTF-8 makes it answer
# the whole call (or batch) with error -32700 instead, and that call is sent again
# over XML-RPC, which carries such names (see RtorrentProxy.call).

#: JSON-RPC's "method not found" (XML-RPC's is FAULT_NO_SUCH_METHOD).
JSONRPC_NO_SUCH_METHOD = -32601
#: rTorrent's JSON encoder refused its own answer (invalid UTF-8 in it).
JSONRPC_PARSE_ERROR = -32700
#: After that, this many calls of the same method go straight over XML-RPC (rTorrent
#: would do the work twice otherwise), then JSON is tried again.
XML_AFTER_UNWRITABLE = 10


class JsonUnwritable(XmlRpcFault):
    """rTorrent could not write its answer as JSON (invalid UTF-8 in a name or path)."""


def _json_safe(value):
    """Make a value sendable: ints beyond rTorrent's 64 bits as strings (it parses them)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("JSON-RPC cannot carry bytes (send the call over XML-RPC)")
    return value


def _has_bytes(value):
    if isinstance(value, (bytes, bytearray)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_bytes(v) for v in value)
    if isinstance(value, dict):
        return any(_has_bytes(v) for v in value.values())
    return False


def jsonrpc_request(calls):
    """The UTF-8 body of a JSON-RPC call (one (method, params) pair) or of a batch
    (a list of them, with ids 0, 1, ...)."""
    if isinstance(calls, tuple):
        method, params = calls
        return json.dumps({"jsonrpc": "2.0", "id": 0, "method": method,
                           "params": _json_safe(params)}).encode("ascii")
    return json.dumps([{"jsonrpc": "2.0", "id": index, "method": method,
                        "params": _json_safe(params)}
                       for index, (method, params) in enumerate(calls)]).encode("ascii")


def _json_fault(error):
    if not isinstance(error, dict):
        raise ValueError("not a JSON-RPC error: %.80r" % (error,))
    code, message = error.get("code", 0), str(error.get("message", ""))
    kind = JsonUnwritable if code == JSONRPC_PARSE_ERROR and "UTF-8" in message else XmlRpcFault
    return kind(code, message)


def parse_jsonrpc_answer(body, count=None):
    """The result of a JSON-RPC answer (raises XmlRpcFault for an error), or with
    ``count`` the results of a batch answer in id order, each fault an XmlRpcFault
    in place of its result.  ValueError for anything else (an XML answer, say)."""
    reply = json.loads(body)
    if isinstance(reply, dict) and "error" in reply:
        raise _json_fault(reply["error"])   # a batch fails as a whole this way too
    if count is None:
        if not isinstance(reply, dict) or "result" not in reply:
            raise ValueError("not a JSON-RPC answer: %.80r" % (body,))
        return reply["result"]
    if not isinstance(reply, list):
        raise ValueError("not a JSON-RPC batch answer: %.80r" % (body,))
    by_id = {}
    for answer in reply:
        if not isinstance(answer, dict) or "error" not in answer and "result" not in answer:
            raise ValueError("not a JSON-RPC answer: %.80r" % (answer,))
        by_id[answer.get("id")] = (_json_fault(answer["error"]) if "error" in answer
                                   else answer["result"])
    missing = [index for index in range(count) if index not in by_id]
    if missing:
        raise ValueError("JSON-RPC batch answer lacks id(s) %s" % missing[:5])
    return [by_id[index] for index in range(count)]


def _json_answer_or_none(body):
    """A JSON-RPC answer's result; None for an answer in XML (from an rTorrent without
    JSON-RPC: the probe's answer, which is no failed call)."""
    if body.lstrip()[:1] not in (b"{", b"["):
        return None
    return parse_jsonrpc_answer(body)


class _Hung(OSError):
    """rTorrent did not answer lately and is not asked before the next probe."""


class RtorrentInfo:
    """What the handshake learned about the rTorrent we talk to."""

    def __init__(self, version, library, session_name, session_path, pid, methods, startup,
                 protocol="xml"):
        self.version, self.library = version, library
        self.session_name, self.session_path = session_name, session_path
        self.pid, self.methods, self.startup = pid, frozenset(methods), startup
        self.protocol = protocol    # "json" or "xml": what calls use


class RtorrentProxy:
    """An XML-RPC and JSON-RPC client for one rTorrent, with a timeout on every call.

    Every call names its method as rTorrent spells it, so a grep finds it:
    ``proxy.call("d.multicall2", "", "main", "d.hash=")``; several calls in one
    round trip go through ``proxy.multicall``.  A refused
    connection or a timeout raises RtorrentUnavailable; the first one of an
    outage is logged as a warning and its end once at info level, so a job
    that meets a down rTorrent can simply skip its run.

    JSON-RPC is used when rTorrent answers it (asked once per rTorrent process,
    before its first call) or the URL says ``rpc=json``; ``rpc=xml`` never asks.
    A JSON answer costs a fraction of an XML one to read.
    """

    def __init__(self, url, timeout=30.0, log=None):
        self.endpoint = url if isinstance(url, RpcEndpoint) else parse_rpc_url(url)
        self.timeout = float(timeout)
        self.log = log or logging.getLogger("pyrotorque.rtorrent")
        self.stats = CallStats()
        self.info = None            # RtorrentInfo, set by connect()
        self.reachable = None       # None until the first call, then True/False
        self.down_since = None
        self.protocol = None        # "json" or "xml" once known, for this rTorrent process
        self.xml_refused = False    # network.rpc.use_xmlrpc.set = 0 (0.15+)
        self.xml_for = {}           # method → calls left that skip JSON (see _json_unwritable)
        self.hung_until = None      # monotonic time of the next probe while rTorrent is hung

    def __repr__(self):
        return "RtorrentProxy(%r)" % self.endpoint.url

    # -- one call ---------------------------------------------------------------

    def call(self, method, *params):
        """Call one method; return its result or raise an RtorrentError."""
        if self._uses_json(method, params):
            try:
                return self._round_trip(method, params, jsonrpc_request((method, params)),
                                        parse_jsonrpc_answer)
            except JsonUnwritable as exc:
                self._json_unwritable(method, exc)
        return self._xml_call(method, *params)

    def _xml_call(self, method, *params):
        return self._round_trip(method, params, xmlrpc_request(
            method, [_xmlrpc_safe(p) for p in params]), _xmlrpc_result)

    def multicall(self, calls, faults="raise", batch=MULTICALL_BATCH):
        """Run ``calls``, (method, *params) tuples, in round trips of ``batch`` calls
        (None: all in one, for callers that size their batches); return their
        results in order.  Over XML-RPC a round trip is a `system.multicall`, over
        JSON-RPC a batch (0.16's JSON-RPC has no system.multicall).

        A call's fault raises its typed RtorrentFault (``faults="raise"``), or stands
        in place of its result (``faults="return"``): the other calls still count.
        """
        if faults not in ("raise", "return"):
            raise ValueError("faults must be 'raise' or 'return', not %r" % (faults,))
        results = []
        step = batch or max(1, len(calls))
        for start in range(0, len(calls), step):
            chunk = calls[start:start + step]
            for (method, *_), answer in zip(chunk, self._multicall_round_trip(chunk)):
                if isinstance(answer, XmlRpcFault):
                    answer = self._fault(method, answer)
                    if faults == "raise":
                        raise answer
                results.append(answer)
        return results

    def _multicall_round_trip(self, chunk):
        """The results of ``chunk``, each fault an XmlRpcFault in place of its result."""
        if self._uses_json("system.multicall", chunk):
            try:    # counted as the system.multicall it stands for
                return self._round_trip("system.multicall", (chunk,), jsonrpc_request(
                    [(c[0], c[1:]) for c in chunk]), lambda body: parse_jsonrpc_answer(
                        body, len(chunk)))
            except JsonUnwritable as exc:
                self._json_unwritable("system.multicall", exc)
        answers = self._xml_call("system.multicall", [{"methodName": c[0], "params": list(c[1:])}
                                                      for c in chunk])
        return [XmlRpcFault(answer.get("faultCode", 0), answer.get("faultString", ""))
                if isinstance(answer, dict) else answer[0] if answer else None
                for answer in answers]

    def _uses_json(self, method, params):
        """Whether this call goes over JSON-RPC: not with bytes, which JSON cannot
        carry, and not for a while after rTorrent could not write its answer."""
        if self._protocol() != "json" or _has_bytes(params):
            return False
        left = self.xml_for.get(method)
        if left:
            self.xml_for[method] = left - 1
            return False
        return True

    def _json_unwritable(self, method, exc):
        """A name with invalid UTF-8 kept rTorrent from answering in JSON: the call
        goes again over XML-RPC, unless this rTorrent refuses that too."""
        if self.xml_refused:
            raise UnreadableAnswer("%s: rTorrent cannot write its answer as JSON (%s), and "
                                   "it refuses XML-RPC (network.rpc.use_xmlrpc)"
                                   % (method, exc.faultString)) from None
        self.xml_for[method] = XML_AFTER_UNWRITABLE
        self.log.debug("%s: rTorrent cannot write its answer as JSON (%s); asking over "
                       "XML-RPC, for this and the next %d such calls", method, exc.faultString,
                       XML_AFTER_UNWRITABLE)

    def _round_trip(self, method, params, request, parse):
        """Send one request (``params`` are for the log), read its answer with ``parse``;
        count and log the call."""
        started = time.monotonic()
        try:
            if self.hung_until is not None:
                self._probe_hung()
            answer = self._exchange(request, self.timeout)
        except OSError as exc:      # socket.timeout too, and HTTP trouble (see _exchange_http)
            self._count(method, len(request), 0, started, started, failed=True)
            if isinstance(exc, socket.timeout) and self.hung_until is None:
                self.hung_until = time.monotonic() + HUNG_PAUSE
            self._went_down(exc)
            raise RtorrentUnavailable("%s: rTorrent at %s is unreachable (%s)"
                                      % (method, self.endpoint, _describe_oserror(exc))) from None
        answered = time.monotonic()
        self._came_back()           # any answer, even a fault, means rTorrent is there
        try:
            result = parse(answer)
        except JsonUnwritable:
            self._count(method, len(request), len(answer), started, answered, failed=True)
            raise
        except XmlRpcFault as exc:
            self._count(method, len(request), len(answer), started, answered, failed=True)
            raise self._fault(method, exc) from None
        except (xml.parsers.expat.ExpatError, ValueError, UnreadableAnswer) as exc:
            self._count(method, len(request), len(answer), started, answered, failed=True)
            raise UnreadableAnswer("%s: unreadable answer from rTorrent (%s)"
                                   % (method, exc)) from None
        self._count(method, len(request), len(answer), started, answered, failed=False)
        if self.log.isEnabledFor(TRACE):
            self.log.log(TRACE, "%s%.150r -> %.200r", method, params, result)
        return result

    def _protocol(self):
        """"json" or "xml": what this rTorrent process is called with (asks it once)."""
        if self.protocol is None:
            self.protocol = self._choose_protocol()
        return self.protocol

    def _choose_protocol(self):
        """Ask rTorrent in JSON; 0.9.8 (or a 0.15+ without JSON) answers in XML."""
        if self.endpoint.rpc == "xml":
            return "xml"
        version = self._round_trip("system.client_version", (), jsonrpc_request(
            ("system.client_version", ())), _json_answer_or_none)
        if version is None:         # an XML fault: "not a proper XML-RPC call"
            if self.endpoint.rpc == "json":
                raise RtorrentError(
                    "rTorrent at %s does not answer JSON-RPC, which the URL asks for with "
                    "rpc=json (rTorrent %s; JSON-RPC needs 0.15 or later): remove rpc=json "
                    "to use XML-RPC" % (self.endpoint, self._xml_version()))
            return "xml"
        self.xml_refused = self._refuses_xml()
        return "json"

    def _xml_version(self):
        try:
            return self._xml_call("system.client_version")
        except RtorrentError:
            return "of unknown version"

    def _refuses_xml(self):
        """Whether this rTorrent answers XML-RPC calls with 'XML-RPC not supported'."""
        try:
            self._xml_call("system.client_version")
        except RtorrentFault:
            return True
        return False

    def _count(self, method, sent, received, started, answered, failed):
        self.stats.add(method, sent, received, answered - started, time.monotonic() - started,
                       failed=failed)

    @staticmethod
    def _fault(method, fault):
        kind = RtorrentFault
        if fault.faultCode in (FAULT_NO_SUCH_METHOD, JSONRPC_NO_SUCH_METHOD):
            kind = MethodMissing
        elif any(text in fault.faultString for text in HASH_NOT_FOUND_TEXTS):
            kind = HashNotFound
        return kind(method, fault.faultCode, fault.faultString)

    # -- transports -------------------------------------------------------------

    def _probe_hung(self):
        """Raise _Hung until a cheap call answers within HUNG_PROBE_TIMEOUT (tried every
        HUNG_PAUSE seconds); any answer, even a fault, ends the hang."""
        if time.monotonic() >= self.hung_until:
            try:
                self._exchange(xmlrpc_request("system.pid", []),
                               min(self.timeout, HUNG_PROBE_TIMEOUT))
                self.hung_until = None
                return
            except (OSError, RtorrentError):
                self.hung_until = time.monotonic() + HUNG_PAUSE
        raise _Hung("its last call timed out; asked again in %.0f s"
                           % max(0, self.hung_until - time.monotonic()))

    def _exchange(self, request, timeout):
        if self.endpoint.kind == "http":
            return self._exchange_http(request, timeout)
        return self._exchange_scgi(request, timeout)

    def _exchange_scgi(self, request, timeout):
        deadline = time.monotonic() + timeout
        family = socket.AF_UNIX if self.endpoint.kind == "unix" else socket.AF_INET
        if family == socket.AF_INET and ":" in self.endpoint.address[0]:
            family = socket.AF_INET6
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.endpoint.address)
            sock.sendall(scgi_request(request, [("CONTENT_TYPE", "application/json")]
                                      if request[:1] in (b"{", b"[") else ()))
            chunks = []
            while True:
                # The whole call shares one deadline, not each recv: a trickling
                # answer must not keep a job waiting forever.
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        if not chunks:      # killed while it answered, or closed on us: no answer at all
            raise ConnectionResetError("rTorrent closed the connection without an answer")
        return parse_scgi_response(b"".join(chunks))[1]

    def _exchange_http(self, request, timeout):
        parts = self.endpoint.address
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        headers = {"Content-Type": "application/json" if request[:1] in (b"{", b"[")
                   else "text/xml", "User-Agent": "pyrotorque/" + __version__}
        if parts.username:
            token = "%s:%s" % (urllib.parse.unquote(parts.username),
                               urllib.parse.unquote(parts.password or ""))
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        try:
            path = (parts.path or "/RPC2") + ("?" + parts.query if parts.query else "")
            conn.request("POST", path, body=request, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except http.client.HTTPException as exc:    # a broken answer: as good as no answer
            raise ConnectionError("HTTP: %s" % (exc or exc.__class__.__name__)) from None
        finally:
            conn.close()
        if response.status != 200:
            raise RtorrentError("HTTP %d %s from %s" % (response.status, response.reason, self.endpoint))
        return body

    # -- reachability -------------------------------------------------------------

    def _went_down(self, exc):
        if self.reachable is not False:
            self.log.warning("rTorrent at %s is unreachable (%s); waiting for it to come back",
                             self.endpoint, _describe_oserror(exc))
            self.down_since = time.monotonic()
        self.reachable = False
        self.info = None            # it may come back as another process: handshake again
        self.protocol = None        # ... maybe another version: ask again

    def _came_back(self):
        if self.reachable is False:
            self.log.info("rTorrent at %s is reachable again (it was down for %s)",
                          self.endpoint, human_duration(time.monotonic() - self.down_since))
        self.reachable = True

    # -- handshake ----------------------------------------------------------------

    def connect(self, force=False):
        """Learn who we talk to (once per rTorrent process); return RtorrentInfo."""
        if self.info is not None and not force:
            return self.info
        if force:
            self.protocol = None
        version, library, name, session, pid = self.multicall([
            ("system.client_version",), ("system.library_version",), ("session.name",),
            ("session.path",), ("system.pid",)])
        methods = self._list_methods()
        startup = None
        if session and self.endpoint.kind != "http":
            try:    # the lock file is written when rTorrent starts: its mtime is the start time
                startup = os.stat(os.path.join(os.path.expanduser(session), "rtorrent.lock")).st_mtime
            except OSError:
                pass
        self.info = RtorrentInfo(version, library, name, session, pid, methods, startup,
                                 self._protocol())
        self.log.info("Connected to rTorrent %s (libtorrent %s, session %r, pid %s) at %s "
                      "over %s%s", version, library, name, pid, self.endpoint,
                      "JSON-RPC" if self.protocol == "json" else "XML-RPC",
                      " (it refuses XML-RPC)" if self.xml_refused else "")
        return self.info

    def _list_methods(self):
        try:
            return self.call("system.listMethods")
        except MethodMissing:
            if self.xml_refused:
                raise RtorrentError(
                    "rTorrent at %s lists its methods over XML-RPC only (built with xmlrpc-c), "
                    "and refuses XML-RPC: set network.rpc.use_xmlrpc back to 1" % self.endpoint
                ) from None
            # Built with xmlrpc-c, rTorrent leaves system.listMethods to xmlrpc-c: JSON lacks it.
            return self._xml_call("system.listMethods")

    def missing_methods(self, wanted):
        """Those of ``wanted`` that this rTorrent lacks (connects first)."""
        methods = self.connect().methods
        return sorted(m for m in wanted if m not in methods)


def _describe_oserror(exc):
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__



###############################################################################
# Items and fields ############################################################
###############################################################################
#
# An item is a dict from field name to value, built lazily from one row of
# `d.multicall2`: a field is computed the first time a condition asks for it.
# The field table says, for every field, its value type, where its value comes from
# and how it is computed.  A source is one of
#   - an rTorrent command as `d.multicall2` takes it ("d.name=", "d.custom=tm_loaded");
#   - another field's name ("up"), so fields build on fields;
#   - "@files", "@trackers", "@session": data fetched per item (or per fetch) in
#     batches, and cached when it cannot change for an info-hash.

class Field:
    """One row of the field table.  A `stable` field cannot change for an info-hash,
    so its value is computed once per item and kept across ticks."""

    __slots__ = ("name", "type", "sources", "convert", "doc", "stable")

    def __init__(self, name, type, sources, convert, doc, stable=False):  # noqa: A002
        self.name, self.type, self.sources = name, type, tuple(sources)
        self.convert, self.doc, self.stable = convert, doc, stable

    def __repr__(self):
        return "<Field %s: %s>" % (self.name, self.type.name)


def _as_is(value):
    return value


def _flag(value):
    return bool(value)


def _int(value):
    """A number from rTorrent; None (a per-item fault) counts as 0."""
    return int(value or 0)


def _word_set(value):
    return frozenset(_text(value).lower().split())


def _epoch(custom, fallback=0):
    """A pyrocore `tm_*` custom (epoch text) if set, else rTorrent's own timestamp."""
    try:
        return int(custom) or int(fallback or 0)
    except (TypeError, ValueError):
        return int(fallback or 0)


def _item_path(base_path, directory, name, is_multi_file):
    """pyrocore's `path`: the base path, else the directory (plus the name of a file)."""
    path = base_path or (directory if is_multi_file or not directory
                         else os.path.join(directory, name or ""))
    return os.path.expanduser(path) if path else ""


def _done(completed_chunks, size_chunks):
    return 100.0 * (completed_chunks or 0) / size_chunks if size_chunks else 0.0


def _is_ghost(path):
    return not (path and os.path.exists(path))


def _last_pause(activations):
    stops = [stamp for event, stamp in _events(activations) if event == "P"]
    return stops[-1] if stops else 0


def _leechtime(activations, started, completed):
    end = completed or time.time()
    total = activation_sum(activations, end=end)
    if total is None and started:
        total = end - started
    return total


def _seedtime(activations, completed, is_complete):
    if not is_complete:
        return None
    return activation_sum(activations, start=completed or 0, end=time.time())


def _first_tracker(trackers):
    """The first enabled announce URL, else the first one (so that an item keeps its
    alias while its trackers are disabled), else ''."""
    urls = [url for url, enabled in trackers if enabled] or [url for url, _ in trackers]
    return urls[0] if urls else ""


#: The item fields.  Names, value types and sources follow pyrocore's `engine.py`.
FIELD_TABLE = [
    Field("hash", PATTERN, ["d.hash="], _as_is, "info-hash (40 upper-case hex digits)"),
    Field("name", PATTERN, ["d.name="], _text, "name of the item"),
    Field("size", BYTESIZE, ["d.size_bytes="], _int, "size of the data in bytes"),
    Field("left", BYTESIZE, ["d.left_bytes="], _int, "bytes still to download"),
    Field("prio", FLOAT, ["d.priority="], _int, "priority: 0 off, 1 low, 2 normal, 3 high"),
    Field("message", PATTERN, ["d.message="], _text, "tracker or error message"),
    Field("is_private", BOOL, ["d.is_private="], _flag, "private torrent?"),
    Field("is_open", BOOL, ["d.is_open="], _flag, "open?"),
    Field("is_active", BOOL, ["d.is_active="], _flag, "started and not paused?"),
    Field("is_complete", BOOL, ["d.complete="], _flag, "all data present?"),
    Field("is_multi_file", BOOL, ["d.is_multi_file="], _flag, "a directory of files?"),
    Field("is_ignored", BOOL, ["d.ignore_commands="], _flag, "ignoring commands?"),
    Field("directory", PATTERN, ["d.directory="], _text, "directory of the data"),
    Field("path", PATTERN, ["d.base_path=", "d.directory=", "d.name=", "d.is_multi_file="],
          _item_path, "path of the data (file or directory)"),
    Field("realpath", PATTERN, ["path"], lambda path: os.path.realpath(path) if path else "",
          "path with symlinks resolved"),
    Field("is_ghost", BOOL, ["path"], _is_ghost, "data path missing locally?"),
    Field("metafile", PATTERN, ["d.tied_to_file="],
          lambda path: os.path.expanduser(path) if path else "", "metafile it was loaded from"),
    Field("sessionfile", PATTERN, ["@session", "d.hash="],
          lambda session, hash_: os.path.join(session, hash_ + ".torrent") if session else "",
          "copy of the metafile in the session directory"),
    Field("fno", FLOAT, ["d.size_files="], _int, "number of files"),
    Field("done", FLOAT, ["d.completed_chunks=", "d.size_chunks="], _done,
          "percent of the data downloaded"),
    Field("ratio", FLOAT, ["d.ratio="], lambda ratio: (ratio or 0) / 1000.0,
          "upload/download ratio"),
    Field("uploaded", BYTESIZE, ["d.up.total="], _int, "bytes uploaded"),
    Field("down", BYTESIZE, ["d.down.rate="], _int, "download rate (bytes/s)"),
    Field("up", BYTESIZE, ["d.up.rate="], _int, "upload rate (bytes/s)"),
    Field("xfer", BYTESIZE, ["up", "down"], lambda up, down: up + down,
          "upload plus download rate"),
    Field("throttle", PATTERN, ["d.throttle_name="], lambda name: name or "NONE",
          "throttle group, NONE without one"),
    Field("loaded", TIME_NOT_NULL, ["d.custom=tm_loaded", "d.load_date="], _epoch,
          "time loaded (tm_loaded, else d.load_date)"),
    Field("started", TIME_NOT_NULL, ["d.custom=tm_started", "d.timestamp.started="], _epoch,
          "time first started (tm_started, else d.timestamp.started)"),
    Field("completed", TIME_NOT_NULL, ["d.custom=tm_completed", "d.timestamp.finished="],
          _epoch, "time completed (tm_completed, else d.timestamp.finished)"),
    Field("stopped", TIME_NOT_NULL, ["d.custom=activations"], _last_pause,
          "time last stopped (from activations)"),
    Field("last_xfer", TIME, ["d.timestamp.last_xfer="], _epoch,
          "time of the last transfer (rc-defined method, else 0)"),
    Field("active", TIME, ["d.timestamp.last_active="], _epoch,
          "time last active (rc-defined method, else 0)"),
    Field("leechtime", DURATION, ["d.custom=activations", "started", "completed"],
          _leechtime, "time spent downloading"),
    Field("seedtime", DURATION, ["d.custom=activations", "completed", "is_complete"],
          _seedtime, "time spent seeding (complete items only)"),
    Field("tagged", TAGGED, ["d.custom=tags"], _word_set, "words of d.custom=tags"),
    Field("views", TAGGED, ["d.views="], lambda views: frozenset(views or ()),
          "views the item is in"),
    Field("files", FILES, ["@files"], lambda files: tuple(path for path, _ in files),
          "paths of the files", stable=True),
    Field("tracker", PATTERN, ["@trackers"], _first_tracker, "first enabled announce URL",
          stable=True),
    Field("alias", PATTERN, ["tracker", "@aliases"], lambda url, aliases:
          tracker_alias(url, aliases), "tracker alias ([ANNOUNCE] of config.ini)",
          stable=True),
    Field("traits", TAGGED, ["name", "alias", "kind_51", "@traits_by_alias"],
          lambda name, alias, kinds, by_alias: detect_traits(
              name, alias, next(iter(kinds)) if len(kinds) == 1 else None, by_alias),
          "kind of content, e.g. audio/flac or tv/mkv", stable=True),
]

#: Fields by name.
FIELDS = {f.name: f for f in FIELD_TABLE}


def _kinds_at(percent):
    def kinds(files):
        return frozenset(ext for ext, share in file_kinds(files) if share >= percent and ext)
    return kinds


#: Fields whose name carries a parameter: pattern → row factory.
DYNAMIC_FIELDS = [
    (re.compile(r"custom_([1-5])\Z"), lambda n: Field(
        "custom_" + n, PATTERN, ["d.custom%s=" % n], _text, "d.custom%s" % n)),
    (re.compile(r"custom_([A-Za-z0-9_.-]+)\Z"), lambda key: Field(
        "custom_" + key, PATTERN, ["d.custom=" + key], _text, "d.custom=" + key)),
    (re.compile(r"kind(?:_(\d+))?\Z", re.A), lambda n: Field(
        "kind" + ("_" + n if n is not None else ""), TAGGED, ["@files"],
        _kinds_at(int(n or 0)), "extensions that make up at least %s%% of the size" % (n or 0),
        stable=True)),
    (re.compile(r"d_([_A-Za-z][_A-Za-z0-9]*)\Z"), lambda method: Field(
        "d_" + method, PATTERN, ["@method:" + method], _as_is, "raw value of d." + method)),
]


def field_for(name):
    """The `Field` called `name`, including dynamic ones; KeyError if there is none."""
    field = FIELDS.get(name) or _DYNAMIC_MADE.get(name)
    if field is not None:
        return field
    for pattern, make in DYNAMIC_FIELDS:
        found = pattern.match(name)
        if found:
            if name.startswith("kind_") and int(found.group(1)) > 100:
                raise KeyError(name)
            field = _DYNAMIC_MADE[name] = make(found.group(1))
            return field
    raise KeyError(name)


_DYNAMIC_MADE = {}  # dynamic rows are made once


def required_sources(field_names):
    """All sources the given fields need, with fields expanded to their own sources."""
    needed, todo = set(), list(field_names)
    while todo:
        source = todo.pop()
        if source in needed:
            continue
        needed.add(source)
        if "=" not in source and not source.startswith("@"):
            todo.extend(field_for(source).sources)
    return needed


# Files, kinds, traits ########################################################

#: Extensions counted as one kind.
_SAME_EXTENSION = {"jpeg": "jpg", "mpeg": "mpg"}
_RAR_PART = re.compile(r"r\d\d\Z", re.A)


def _extension(path):
    ext = os.path.splitext(path)[1][1:].lower()
    if _RAR_PART.match(ext):
        return "rar"
    return _SAME_EXTENSION.get(ext, ext)


def file_kinds(files):
    """`(extension, percent of the size)` pairs, largest first, of `(path, size)` files."""
    total = sum(size for _, size in files)
    if not total:
        return []
    histogram = {}
    for path, size in files:
        ext = _extension(path)
        histogram[ext] = histogram.get(ext, 0) + size
    shares = [(ext, int(size * 100 / total + 0.499)) for ext, size in histogram.items()]
    return sorted(shares, key=lambda pair: (-pair[1], pair[0]))


#: Extensions of each kind of content.
KIND_EXTENSIONS = {
    "audio": frozenset("flac mp3 ogg wav dts ac3 alac wma".split()),
    "video": frozenset("avi mkv m4v vob mp4 mpg mpeg m2ts ts ogv wmv".split()),
    "image": frozenset("jpg png gif tif bmp svg".split()),
    "docs": frozenset("chm pdf cbr cbz odt ods doc xls ppt epub mobi azw3 djvu".split()),
    "archive": frozenset("rar zip tgz bz2 iso bin".split()),
}

#: In order: a kind of file, the trait it gives, and whether a TV or movie name wins.
TRAIT_RULES = [("audio", "audio", False), ("video", "video", True), ("image", "img", False),
               ("docs", "docs", False), ("archive", "misc", True)]

#: Default `[TRAITS_BY_ALIAS]` of config.ini.
TRAITS_BY_ALIAS = {"Debian": "linux", "jamendo.com": "audio"}

_FORMAT = r"HDTV|PDTV|DSR|DVD|DVD5|DVD9|DVDSCR|480p|576p|720p|1080p|1080i|2160p"
_CODEC = r"X264|H264|X\.264|H\.264|XviD|VTS|ISO|NTSC|PAL"
_VIDEO_EXT = "|".join(sorted(KIND_EXTENSIONS["video"]))
_TV_TAIL = (
    r"(?:[._ ](?P<release>PREAIR|READNFO))?"
    r"(?:[._ ](?P<release2>REPACK|PROPER|REAL|REALPROPER|INTERNAL))?"
    r"(?:[._ ](?P<aspect>WS))?"
    r"(?:[._ ](?P<format>" + _FORMAT + "))?"
    r"(?:[._ ](?P<source>WEB-DL|WEB\.DL|WEBRip))?"
    r"(?:[._ ](?P<format2>" + _FORMAT + "))?"
    r"(?:[._ ](?P<codec>" + _CODEC + "))?"
    r"(?:[._ ](?P<sound>MP3|AC3|DD5\.1|PCM|LPCM|AAC[. ]2\.0))?"
    r"(?:[._ ](?P<codec2>" + _CODEC + "))?"
    r"(?:-(?P<group>.+?))?"
    r"(?:\.(?P<extension>" + _VIDEO_EXT + r"))?\Z")
_TITLE = r"(?:[._ ](?P<title>.+?))??"  # lazy: tags are no title

#: TV name patterns, tried in order.
TV_PATTERNS = [(name, re.compile(pattern + _TV_TAIL, re.I | re.S)) for name, pattern in [
    ("Normal TV Episodes",
     r"(?P<show>.+?)[._ ]S?(?P<season>\d{1,2})[xE](?P<episode>\d{2}(?:-?E\d{2})?)" + _TITLE),
    ("Normal TV Episodes (all-numeric season+episode)",
     r"(?P<show>.+?)[._ ](?P<season>\d)(?P<episode>\d{2})" + _TITLE),
    ("Daily Shows", r"(?P<show>.+?)[._ ](?P<date>\d{4}[._ ]\d{2}[._ ]\d{2})" + _TITLE),
    ("Full Seasons", r"(?P<show>.+?)[._ ]S?(?P<season>\d{2})"),
    ("Mini Series", r"(?P<show>.+?)[._ ](?:Part[._ ]?(?P<part>\d+)|(?P<pilot>Pilot))" + _TITLE),
    ("Mini Series (Roman numerals)",
     r"(?P<show>.+?)[._ ]Pa?r?t[._ ]?(?P<part>[ivx]+)" + _TITLE),
]]

_MOVIE_HEAD = (r"(?P<title>.+?)[._ ]\(?(?P<year>\d{4})\)?"
               r"(?:[._ ](?P<release>UNRATED|REPACK|INTERNAL|MULTI|PROPER|LIMITED|RERiP))*"
               r"(?:[._ ](?P<format>480p|576p|720p|1080p|1080i|2160p))?")
_MOVIE_TAIL = (r"(?:[._ ](?P<sound>MP3|AC3|DD5\.1|AAC|DTS))?"
               r"(?:[._ ](?P<codec>xvid|divx|avc|x264|hevc|h265))?"
               r"(?:-(?P<group>.+?))?(?:\.(?P<extension>" + _VIDEO_EXT + r"))?\Z")

#: Movie name patterns, tried after the TV ones.
MOVIE_PATTERNS = [(name, re.compile(_MOVIE_HEAD + source + _MOVIE_TAIL, re.I | re.S))
                  for name, source in [
    ("Scene tagged movie", r"[._ ](?P<source>BDRip|BRRip|HDRip|DVDRip|PAL|NTSC)"),
    ("Blu-ray movie", r"[._ ](?P<source>Blu-ray|BluRay|BD25|BD50)"),
]]

#: Words that make a show or title match a false one.
_NOT_A_TITLE = re.compile(r"(?<![a-z0-9])(?:bdrip|brrip|hdrip|dvdrip|ntsc|hdtv|dvd-r|dvdr|dvd5"
                          r"|dvd9|web-dl|blu-ray|bluray|bd25|bd50|480p|576p|720p|1080p|2160p"
                          r"|mp3|ac3|dts)(?![a-z0-9])", re.I)


def name_trait(name):
    """Classify a name as `("tv" | "movie", details)`, or `(None, {})`."""
    if not name or name.startswith("VTS_"):
        return None, {}
    lowered = name.lower()
    tv_only = any(tag in lowered for tag in (".hdtv.", ".pdtv.", ".dsr."))
    candidates = [("tv", TV_PATTERNS)] + ([] if tv_only else [("movie", MOVIE_PATTERNS)])
    for kind, patterns in candidates:
        for pattern_name, pattern in patterns:
            found = pattern.match(name)
            if not found:
                continue
            details = {k: v for k, v in found.groupdict().items() if v is not None}
            if _NOT_A_TITLE.search(details.get("show", "") + " " + details.get("title", "")):
                continue
            return kind, _fold_numbered(details, pattern_name)
    return None, {}


def _fold_numbered(details, pattern_name):
    """Fold `format2` into `format` (space-separated) and note the pattern's name."""
    folded = {}
    for key in sorted(details):
        base = key.rstrip("0123456789")
        folded[base] = folded[base] + " " + details[key] if base in folded else details[key]
    folded["pattern"] = pattern_name
    return folded


def detect_traits(name, alias=None, filetype=None, traits_by_alias=None):
    """pyrocore's traits: e.g. `["audio", "flac"]`, `["tv", "mkv"]`, or `[]`."""
    by_alias = TRAITS_BY_ALIAS if traits_by_alias is None else traits_by_alias
    if alias and alias in by_alias:
        return [by_alias[alias], filetype or "other"]
    for kind, trait, by_name in TRAIT_RULES:
        if filetype in KIND_EXTENSIONS[kind]:
            classified = name_trait(name)[0] if by_name else None
            return [classified or trait, filetype]
    return []


# Activations (R<epoch> starts and P<epoch> stops) ############################

_EVENT = re.compile(r"([RP])(\d+)", re.A)


def _events(activations):
    return [(event, int(stamp)) for event, stamp in _EVENT.findall(activations or "")]


def activation_sum(activations, start=0, end=None):
    """Seconds between each start and the stop right after it, clipped to [start, end].

    A start counts when a stop follows at once, or when it is the last event (then it
    runs to `end`).  None when no interval is left.
    """
    end = time.time() if end is None else end
    events, total, found = _events(activations), 0, False
    for index, (event, stamp) in enumerate(events):
        if event != "R":
            continue
        following = events[index + 1] if index + 1 < len(events) else None
        if following is None:
            stop = end
        elif following[0] == "P":
            stop = following[1]
        else:
            continue
        low, high = max(stamp, start), min(stop, end)
        if high > low:
            total, found = total + high - low, True
    return total if found else None


# Tracker aliases #############################################################

def build_alias_map(announce_section):
    """The `[ANNOUNCE]` section of config.ini ({alias: "url1 url2"}) as a lookup table."""
    exact, sites = {}, {}
    for alias, urls in announce_section.items():
        for url in (urls.split() if isinstance(urls, str) else urls):
            exact.setdefault(url, alias)
            parts = _url_parts(url)
            if parts:
                sites.setdefault(_site(parts), alias)
    return {"exact": exact, "site": sites}


def _url_parts(url):
    """A URL split into its parts, None if it has no scheme and host (or is no URL)."""
    try:
        parts = urllib.parse.urlsplit(url or "")
    except ValueError:  # e.g. "http://[::1" in some metafile
        return None
    return parts if parts.scheme and parts.netloc else None


def _site(parts):
    return "%s://%s/" % (parts.scheme, parts.netloc)


def tracker_alias(url, alias_map=None):
    """The alias of an announce URL: a configured URL, else a configured site
    (`scheme://host/`), else the last two labels of the host name."""
    alias_map = alias_map or build_alias_map({})
    if url in alias_map["exact"]:
        return alias_map["exact"][url]
    parts = _url_parts(url)
    if parts is None:
        return ""
    if _site(parts) in alias_map["site"]:
        return alias_map["site"][_site(parts)]
    host = (parts.hostname or "").rstrip(".")
    if re.fullmatch(r"[\d.]+|.*:.*", host):        # an IP address has no domain to shorten
        return host
    return ".".join(host.split(".")[-2:])


# Item model ##################################################################

class Item(dict):
    """One item: a dict of field values, filled in from its multicall row on demand.

    `item["name"]` and `item.get("name")` compute a field the first time; `in` and
    iteration only see the fields computed so far.
    """

    __slots__ = ("row", "source")

    def __init__(self, row, source):
        super().__init__()
        self.row, self.source = row, source

    def __missing__(self, name):
        value = self.source.compute(self, name)
        self[name] = value
        return value

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    @property
    def hash(self):
        return self.row[0]

    def __repr__(self):
        return "<Item %s %s>" % (self.row[0], dict.__repr__(self))


#: Seconds an unseen info-hash stays in the per-hash caches.
CACHE_SECONDS = 3600

#: Seconds before rTorrent's list of methods is read again.
METHODS_SECONDS = 300

#: Up to this many items missing from a cache are read with per-hash calls.
FEW_ITEMS = 20

#: A pre-filter that keeps more than this share of a view costs rTorrent more (it runs
#: the filter's commands for every item) than it saves; it is then left out for the
#: next UNFILTERED_FETCHES fetches with it, and tried again after them.
FILTER_USEFUL = 0.5
UNFILTERED_FETCHES = 9

#: Per-item data as nested multicalls: files (path, size) and trackers (URL, enabled).
_NESTED_CALLS = {"@files": "f.multicall=,f.path=,f.size_bytes=",
                 "@trackers": "t.multicall=,t.url=,t.is_enabled="}


# Letting rTorrent filter ---------------------------------------------------------
#
# Most of a big tick's cost is rTorrent writing, and us reading, one XML row per
# item.  `d.multicall.filtered` lets rTorrent drop items first, so a condition is
# translated into rTorrent's filter language where it can be done without doubt:
# the translation may keep items the condition would reject (they are matched in
# Python anyway), never the other way round.  Integer fields whose value is a d.*
# command as it is are compared as integers, and so are done and ratio (scaled by
# math.mul); text fields (names, messages, custom fields, tags) become rTorrent's
# `match` (a case-insensitive ECMAScript regex that must match the whole value), and
# a name term that matches next to nothing a load-date test (NameIndex).  The
# filter text is built from these tables, integers, ASCII letters and digits,
# `\xHH` escapes for every other character of a value and info-hashes checked to be
# hex, so nothing a user writes can reach rTorrent as a command.

#: Fields whose item value is exactly the integer a d.* command returns.
FILTERABLE_FIELDS = {
    "prio": "d.priority=", "size": "d.size_bytes=", "left": "d.left_bytes=",
    "fno": "d.size_files=", "uploaded": "d.up.total=", "up": "d.up.rate=",
    "down": "d.down.rate=", "is_open": "d.is_open=", "is_active": "d.is_active=",
    "is_complete": "d.complete=", "is_ignored": "d.ignore_commands=",
    "is_private": "d.is_private=", "is_multi_file": "d.is_multi_file=",
}

#: A flag's test and its negation, both ways.  The flag itself is the cheapest test
#: rTorrent runs; `not=$d.is_open=` costs it less than `equal=d.is_open=,value=0`
#: (fewer arguments to read and call: on 0.9.8, a filter of five flag tests over
#: 10,000 items took 103 ms instead of 116 ms).
_FLAG_COMPLEMENT = dict(pair for name, command in FILTERABLE_FIELDS.items()
                        if isinstance(field_for(name).type, BoolType)
                        for pair in ((command, "not=$" + command), ("not=$" + command, command)))

#: rTorrent's built-in views that count the items passing a flag test.  On a seedbox
#: most items are complete and started, in a queue's backlog most are not: the
#: counts say which a test drops, and one that drops most goes first.  (`started`
#: and `stopped` count d.state; an item can be open and stopped, so for is_open
#: they are an estimate, which is all the order needs.)
_FLAG_VIEWS = {"d.complete=": "complete", "not=$d.complete=": "incomplete",
               "d.is_active=": "started", "not=$d.is_active=": "stopped",
               "d.is_open=": "started", "not=$d.is_open=": "stopped"}

#: Seconds the built-in views' counts serve before they are read again.
FLAG_SHARES_SECONDS = 60.0

#: rTorrent compares 64-bit integers; thresholds beyond this are left to Python.
_FILTER_INT_MAX = 1 << 62

#: Float fields that are a d.* integer times a scale, divided by another d.* integer
#: (the value is 0 where it is 0): (numerator, denominator or None, scale as (p, q)).
#: rTorrent compares them in integers, `math.mul` on both sides, so that done>50 is
#: 100 * completed_chunks > 50 * size_chunks: no row for an item that cannot match.
_SCALED_FIELDS = {"done": ("d.completed_chunks=", "d.size_chunks=", (100, 1)),
                  "ratio": ("d.ratio=", None, (1, 1000))}
#: A bound for the scaled threshold: times a chunk count it stays within 64 bits.
_SCALED_MAX = 1 << 24

#: Text fields whose item value is the text a d.* command returns (None as '');
#: `custom_*` fields are found from their field row.
FILTERABLE_TEXT = {"name": "d.name=", "message": "d.message=", "directory": "d.directory=",
                   "hash": "d.hash="}

#: Text fields holding words: `tagged` is the words of d.custom=tags.
FILTERABLE_WORDS = {"tagged": "d.custom=tags"}

#: ASCII letters Python's re.IGNORECASE also finds outside ASCII (rTorrent's regex
#: folds ASCII only, so these come as UTF-8 alternatives); str.lower() only does k.
_CASE_FOLDS = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}
_LOWER_FOLDS = {"k": "\u212a"}

#: Wildcards: any bytes, and one character as 1-4 UTF-8 bytes (a superset: rTorrent
#: reads bytes).  rTorrent compiles the regex for every item, so it stays short:
#: no brackets ([^] costs 40 us an item), no groups around '.', which does not
#: match CR or LF -- a value with a line break is let through instead (_ANY_BREAK).
_ANY_BYTES = ".*"
_ONE_CHAR = ".(?:.(?:..?)?)?"
#: An alternative that matches every value holding a CR or LF (lines, then the last).
#: \n and \r rather than \x0a and \x0d: rTorrent reads and compiles the regex again
#: for every item, and the short escapes cost it less (the queue's filter over
#: 10,000 names on 0.9.8: 93 ms a fetch instead of 106 ms).
_ANY_BREAK = "(?:.*(?:\\n|\\r))+.*"
#: What the end of a Python `$` may still pass over: one last line feed.
_LAST_LF = "(?:\\n)?"


def rtorrent_filter(condition, passing=None, known=None):
    """A `d.multicall.filtered` expression that keeps every item `condition` can
    match (and maybe a few more), or None when it cannot narrow anything down.

    `passing` maps flag tests to the share of items that pass them (see
    ItemSource.flag_shares): a test that most items fail goes first.  `known`:
    the name index's stand-ins for name terms (NameIndex.filters)."""
    tree = _filter_of(condition, False, passing or {}, known)
    return None if tree is None else _render_filter(tree)


def _kept_share(tree, passing):
    """The share of items filter `tree` keeps at least, as far as the flag tests'
    `passing` shares tell (0 for any other test)."""
    if tree is None:
        return 1.0
    if isinstance(tree, str):
        return passing.get(tree, 0.0)
    shares = [_kept_share(child, passing) for child in tree[1]]
    if tree[0] == "or":
        return max(shares)
    return max(0.0, 1.0 - sum(1.0 - part for part in shares))   # each drops its rest


def _filter_of(condition, negated, passing, known=None):
    """Filter tree for `condition`, or for its negation: a filter text, or
    (operation, [trees]); NOT is pushed down to the terms.  None: no narrowing.
    `known` maps (field, value) of a name term to the tree that stands in for its
    regex (NameIndex.filters)."""
    if isinstance(condition, Term):
        negated = condition.negated != negated
        if not negated and known and (condition.field, condition.value) in known:
            return known[condition.field, condition.value]
        return _term_filter(condition, negated)
    if isinstance(condition, Not):
        return _filter_of(condition.inner, not negated, passing, known)
    if isinstance(condition, AnyValue):
        parts, all_needed = condition.terms, negated
    elif isinstance(condition, AllOf):
        parts, all_needed = condition.parts, not negated
    elif isinstance(condition, AnyOf):
        parts, all_needed = condition.parts, negated
    else:
        return None
    trees = [_filter_of(part, negated, passing, known) for part in parts]
    if all_needed:         # AND: a conjunct left out only lets more items through
        return _and_filter(trees, passing)
    return _or_filter(trees, passing)


def _and_filter(trees, passing):
    """AND of filter trees (None ones left out).  rTorrent stops at the first false
    conjunct and runs the filter for every item: a flag test most items fail first,
    then integer tests, text (a regex), and other flags (true for most items of a
    queue) last; and={a,and={b,c}} is and={a,b,c}, less to read."""
    flat = []
    for tree in sorted((tree for tree in trees if tree is not None),
                       key=lambda tree: _filter_cost(tree, passing)):
        for part in _parts(tree, "and"):
            if part not in flat:
                flat.append(part)
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else ("and", flat)


def _or_filter(trees, passing):
    """OR of filter trees; None (no narrowing) if any of them is None.

    rTorrent reads the whole filter text again for every item, so what logic allows
    is written once: (A and B) or (A and C) is A and (B or C) -- the queue's startable
    and downloading conditions share is_complete=no --, and (X and not F) or F is
    X or F for a flag F."""
    if not trees or any(tree is None for tree in trees):
        return None
    flat = []
    for tree in trees:
        flat.extend(part for part in _parts(tree, "or") if part not in flat)
    branches = [_parts(tree, "and") for tree in flat]
    common = [part for part in branches[0] if all(part in other for other in branches[1:])]
    if common and len(flat) > 1:
        rest = [[part for part in branch if part not in common] for branch in branches]
        if not all(rest):       # A or (A and B) is A
            return _and_filter(common, passing)
        return _and_filter(common + [_or_filter([_and_filter(branch, passing)
                                                 for branch in rest], passing)], passing)
    for flag in [tree for tree in flat if isinstance(tree, str) and tree in _FLAG_COMPLEMENT]:
        others = []
        for tree in flat:
            if tree != flag:
                tree = _and_filter([part for part in _parts(tree, "and")
                                    if part != _FLAG_COMPLEMENT[flag]], passing)
                if tree is None:
                    return None     # F or not F
            others.append(tree)
        flat = others
    return flat[0] if len(flat) == 1 else ("or", flat)


def _parts(tree, operation):
    return list(tree[1]) if isinstance(tree, tuple) and tree[0] == operation else [tree]


def _leaves(tree):
    return [tree] if isinstance(tree, str) else [leaf for child in tree[1]
                                                 for leaf in _leaves(child)]


def _filter_cost(tree, passing):
    """Where a conjunct goes in an AND: -1 a flag test most items fail, 0 integer
    tests, 1 text, 2 other flags."""
    if isinstance(tree, str) and passing.get(tree, 1.0) < 0.5:
        return -1
    leaves = _leaves(tree)
    if all(leaf in _FLAG_COMPLEMENT for leaf in leaves):
        return 2
    return 1 if any("match={" in leaf for leaf in leaves) else 0


def _render_filter(tree):
    if isinstance(tree, str):
        return tree
    return _filter_list(tree[0], [_render_filter(child) for child in tree[1]])


def _filter_list(operation, filters):
    if len(filters) == 1:
        return filters[0]
    # rTorrent reads list elements as quoted strings; quotes nest by backslashes.
    quoted = ('"%s"' % f.replace("\\", "\\\\").replace('"', '\\"') for f in filters)
    return "%s={%s}" % (operation, ",".join(quoted))


def _term_filter(term, negated):
    """Filter for one `field=value` term (or its negation), None if not translatable."""
    if term.field in _SCALED_FIELDS:
        return _scaled_filter(term, negated)
    command = FILTERABLE_FIELDS.get(term.field)
    if command is None:
        return _text_filter(term, negated)
    value_type = field_for(term.field).type
    if isinstance(value_type, BoolType):
        return command if (term.value == "yes") != negated else _FLAG_COMPLEMENT[command]
    sign, rest = _comparison(term.value)
    try:
        threshold = value_type.number(rest)
    except BadValue:
        return None
    if not math.isfinite(threshold) or abs(threshold) > _FILTER_INT_MAX:
        return None
    if sign != "==":
        operation, bound = _integer_bound(sign, threshold, negated)
        return "%s=%s,value=%d" % (operation, command, bound)
    low, high = math.floor(threshold), math.ceil(threshold)
    if low != high:     # an integer never equals a fraction: leave it to Python
        return None
    if negated:
        return _filter_list("or", ["less=%s,value=%d" % (command, low),
                                   "greater=%s,value=%d" % (command, low)])
    return "equal=%s,value=%d" % (command, low)


def _scaled_filter(term, negated):
    """Filter for a term on a _SCALED_FIELDS field: value = N * p / (q * D) against a
    threshold t is p*N against t*q*D, with t*q rounded outwards to an integer
    (_integer_bound), so that rTorrent keeps a superset (done>50 and done<50 exactly)."""
    numerator, denominator, (p, q) = _SCALED_FIELDS[term.field]
    sign, rest = _comparison(term.value)
    try:
        threshold = field_for(term.field).type.number(rest)
    except BadValue:
        return None
    if sign == "==" or not math.isfinite(threshold):
        return None         # equality: left to Python (and done=0 is true for most)
    operation, k = _integer_bound(sign, threshold, negated, q)    # pN against k*D
    if abs(k) > (_SCALED_MAX if denominator else _FILTER_INT_MAX):
        return None
    common = math.gcd(p, k)
    left = _times(numerator, p // common)
    if denominator is None or k == 0:
        test = _compare_filter(operation, left, "value=%d" % (k // common))
    else:
        test = _compare_filter(operation, left, _times(denominator, k // common))
    if denominator and _compare(sign, threshold)(0) != negated:
        return ("or", [test, "not=$" + denominator])    # D = 0: the value is 0
    return test


def _integer_bound(sign, threshold, negated, scale=1):
    """(operation, k) so that `integer operation k` holds for every integer v with
    v `sign` threshold*scale (or its negation), exactly: the threshold is a float,
    taken at its exact value."""
    a, b = threshold.as_integer_ratio()
    floor, ceil = (a * scale) // b, -((-a * scale) // b)
    if sign == ">":     # v > t  <=>  v > floor(t);  not: v <= t  <=>  v < floor(t) + 1
        return ("less", floor + 1) if negated else ("greater", floor)
    # v < t  <=>  v < ceil(t);  not: v >= t  <=>  v > ceil(t) - 1
    return ("greater", ceil - 1) if negated else ("less", ceil)


def _times(command, factor):
    return command if factor == 1 else "math.mul=$%s,%d" % (command, factor)


def _compare_filter(operation, left, right):
    if "," not in left and "," not in right:
        return "%s=%s,%s" % (operation, left, right)
    return '%s={"%s","%s"}' % (operation, left, right)


def _text_command(name):
    """The d.* command whose text is the value of text field `name`, else None."""
    if name in FILTERABLE_TEXT:
        return FILTERABLE_TEXT[name]
    if not name.startswith("custom_"):
        return None
    field = field_for(name)      # custom_1..5, custom_KEY: KEY is [A-Za-z0-9_.-]+
    return field.sources[0] if field.convert is _text else None


def _text_filter(term, negated):
    """`match` filter for a text or words term, None if it cannot be done exactly
    enough: a negated term needs a translation that is exact, others a superset."""
    words = term.field in FILTERABLE_WORDS
    command = FILTERABLE_WORDS[term.field] if words else _text_command(term.field)
    if command is None:
        return None
    found = _words_regex(term.value) if words else _pattern_regex(term.value)
    if found is None:
        return None
    regex, exact = found
    if negated and not exact:
        return None
    if not negated and "." in regex:    # a wildcard: a value with a line break passes
        regex += "|" + _ANY_BREAK       # (negated, it never matches more than Python)
    # In rTorrent's quoted string a backslash escapes: `\xHH` reaches the regex as \xHH.
    test = 'match={%s,"%s"}' % (command, regex.replace("\\", "\\\\"))
    if negated:
        return 'not="$%s"' % test.replace("\\", "\\\\").replace('"', '\\"')
    return test


def _regex_literal(text, folds):
    """ECMAScript regex text matching `text` (ASCII) as Python's case-insensitive
    match does: letters and digits as they are, the rest as \\xHH escapes."""
    out = []
    for char in text:
        if char.isalnum():
            others = folds.get(char.lower())
            if others:
                char = "(?:%s|%s)" % (char, "|".join(
                    "".join("\\x%02x" % byte for byte in other.encode()) for other in others))
            out.append(char)
        else:
            out.append("\\x%02x" % ord(char))
    return "".join(out)


def _glob_regex(glob):
    """(regex, exact) for a glob of `*` and `?` (ASCII), None for one with `[`."""
    if "[" in glob:
        return None
    parts, exact = [], True
    for index, piece in enumerate(glob.split("*")):
        if index:
            parts.append(_ANY_BYTES)
        for number, chunk in enumerate(piece.split("?")):
            if number:
                parts.append(_ONE_CHAR)
                exact = False
            parts.append(_regex_literal(chunk, _CASE_FOLDS))
    return "".join(parts), exact


def _pattern_regex(value):
    """(regex, exact) for a PatternType value, None if it cannot be translated.

    Exact means rTorrent matches exactly the values Python matches (valid UTF-8 and,
    where the regex has a wildcard, no line break: see _ANY_BREAK).
    Only ASCII values are translated; a /regex/ only when each of its `|`
    alternatives is literal text with an optional ^ and $.
    """
    if not value.isascii():
        return None
    if len(value) >= 2 and value[0] == value[-1] == "/":
        alternatives = []
        for alternative in value[1:-1].split("|"):
            start = alternative.startswith("^")
            end = alternative.endswith("$") and len(alternative) > start
            body = alternative[start:len(alternative) - end]
            if any(char in body for char in "\\.^$*+?{}[]()"):
                return None
            # re.search: anywhere unless anchored; $ also before a last newline.
            alternatives.append("(?:%s%s%s)" % ("" if start else _ANY_BYTES,
                                                _regex_literal(body, _CASE_FOLDS),
                                                _LAST_LF if end else _ANY_BYTES))
        return "|".join(alternatives), True
    if any(char in value for char in "*?["):
        return _glob_regex(value)
    return _regex_literal(value, _LOWER_FOLDS), True


def _words_regex(value):
    """A superset regex (never exact) for a TaggedType value: the wanted word or glob
    anywhere in the text; None for the empty value and globs with `[`."""
    wanted = value[1:] if value.startswith("=") else value
    if not wanted or not wanted.isascii():
        return None
    found = _glob_regex(wanted)
    if found is None:
        return None
    return "%s%s%s" % (_ANY_BYTES, found[0], _ANY_BYTES), False


#: Seconds between two reads of the items loaded since the name index's last read,
#: and between two reads of every name (items that are gone leave the index then).
NAMES_SECONDS = 60.0
NAMES_ALL_SECONDS = 3600.0

#: A name term known to match more items than this goes to rTorrent as its regex:
#: one info-hash test costs rTorrent about as much as the regex.
NAME_HASHES_MAX = 1

_INFO_HASH = re.compile(r"[0-9A-F]{40}\Z")


def _name_terms(condition):
    """The terms on `name` in `condition` (whatever their negation)."""
    if isinstance(condition, Term):
        return [condition] if condition.field == "name" else []
    parts = getattr(condition, "parts", None) or getattr(condition, "terms", None)
    if parts is None:
        parts = [condition.inner] if isinstance(condition, Not) else []
    return [term for part in parts for term in _name_terms(part)]


class NameIndex:
    """The items whose name matches each name term the jobs ask about, by info-hash.

    rTorrent's only text test is a regex that it compiles again for every item at
    every fetch: about half of what the queue's filter for [ prio>3 OR name=*zzz* ]
    costs it over 10,000 items.  But an item's name never changes: its info-hash is
    a hash of the metafile's info, name included.  So rTorrent runs the regex over
    the names once, and then once a minute over the items loaded since (d.load_date,
    its own clock); the filter of each fetch passes, in place of the regex, those
    new items and the one known to match.  Items still fetching their metafile
    (d.is_meta) count as matching.  A term that matches more keeps its regex.
    """

    def __init__(self, proxy):
        self.proxy = proxy
        self.terms = {}         # (field, value) → the name term's regex filter
        self.matching = {}      # (field, value) → matching info-hashes, None: too many
        self.since = None       # rTorrent's clock: every item loaded before it was read
        self.read_at = None     # monotonic times of the last read, and of the last whole
        self.read_all_at = None     # one (None: the next read is whole)
        self.rtorrent = None    # the proxy's RtorrentInfo then: another process, read anew

    def filters(self, condition):
        """{(field, value): filter tree} standing in for the regex of each name term
        of `condition` that matches at most NAME_HASHES_MAX known items."""
        fresh = False
        for term in _name_terms(condition):
            key = (term.field, term.value)
            regex = None if key in self.terms else _text_filter(term, False)
            if regex is not None:
                self.terms[key] = (term, regex)
                fresh = True
        if fresh or not self.terms:
            return {}   # a new term is read at the next fetch: a first run is not slowed
        self._read()
        loaded = "greater=d.load_date=,value=%d" % (self.since - 1)
        return {key: ("or", [loaded] + ["equal={d.hash=,cat=%s}" % h for h in sorted(hashes)])
                if hashes else loaded
                for key, hashes in self.matching.items() if hashes is not None}

    def _read(self):
        now = time.monotonic()
        info = getattr(self.proxy, "info", None)
        whole = (info is not self.rtorrent or self.read_all_at is None
                 or any(key not in self.matching for key in self.terms)
                 or now - self.read_all_at > NAMES_ALL_SECONDS)
        if not whole and now - self.read_at < NAMES_SECONDS:
            return
        if whole:
            self.matching = {key: set() for key in self.terms}
            self.read_all_at = now
        keys = [key for key, hashes in self.matching.items() if hashes is not None]
        calls = [("system.time",)]
        for key in keys:
            test = ("or", [self.terms[key][1], "d.is_meta="])
            if not whole:   # rTorrent tests the load date first: the regex runs for new items
                test = ("and", ["greater=d.load_date=,value=%d" % (self.since - 1), test])
            calls.append(("d.multicall.filtered", "", "main", _render_filter(test),
                          "d.hash=", "d.name=", "d.is_meta="))
        clock, *found = self.proxy.multicall(calls)
        if not whole and clock < self.since:
            self.read_all_at = None     # rTorrent's clock went back: new items may look old
            return self._read()
        for key, rows in zip(keys, found):
            term, hashes = self.terms[key][0], self.matching[key]
            # The regex keeps a superset: Python decides (the term's own sense, not its `!`).
            hashes.update(info_hash for info_hash, name, is_meta in rows
                          if is_meta or term.match({"name": _text(name)}) != term.negated)
            if len(hashes) > NAME_HASHES_MAX or not all(map(_INFO_HASH.match, hashes)):
                self.matching[key] = None   # (an info-hash goes into the filter: hex only)
        # Items loaded from now on have a load date of at least `clock` (the multicall
        # is one step of rTorrent's loop), so they pass greater=d.load_date=,value=clock-1.
        self.since, self.read_at, self.rtorrent = clock, now, info


class ItemSource:
    """Fetches the items of a view from rTorrent, with only the fields asked for.

    One `d.multicall2` brings the commands the fields need; files and trackers come
    in `system.multicall` batches, once per info-hash (they never change for it).
    Nothing is written to rTorrent.  Keep one instance per connection so its caches
    live across ticks.
    """

    def __init__(self, proxy, aliases=None, traits_by_alias=None, log=None):
        self.proxy = proxy
        self.log = log or logging.getLogger("pyrotorque.items")
        self.aliases = build_alias_map(aliases or {})
        self.traits_by_alias = TRAITS_BY_ALIAS if traits_by_alias is None else traits_by_alias
        self.methods, self.methods_read = None, 0.0  # system.listMethods
        self.per_hash = {}  # "@files", "@trackers", stable field names → {hash: value}
        self.seen = {}  # hash → last time it was fetched
        self.wanted = {}  # view → every field asked for so far (what a poll fetches)
        self.snapshots = {}  # view → (items, fields, monotonic time taken)
        self.snapshot_age = None  # seconds a snapshot serves; None: no ItemPoller
        self.view_size = None  # items in the view at the last fetch, filtered or not
        self.unfiltered = {}  # (view, filter) → fetches left that skip a filter that kept most
        self.shares = None  # (monotonic time read, flag_shares())
        self.counted_out = {}  # (view, condition text) → the view counts say: no filter
        self.names = NameIndex(proxy)

    # Fetching rows ---------------------------------------------------------

    def fetch(self, view="main", fields=("name",), condition=None):
        """The items of `view` as a list of `Item`, prepared for `fields`.

        With an ItemPoller active, a fresh enough snapshot that has the fields is
        answered without calling rTorrent.  Otherwise rTorrent leaves out items that
        cannot match `condition`, where it can tell (`rtorrent_filter`);
        the caller still matches what comes back.
        """
        fields = set(fields)
        for name in fields:
            field_for(name)  # an unknown field fails here, before any call
        self.wanted.setdefault(view, set()).update(fields)
        snapshot = self.snapshots.get(view)
        if snapshot and self.snapshot_age is not None and fields <= snapshot[1] \
                and time.monotonic() - snapshot[2] <= self.snapshot_age:
            self.view_size = len(snapshot[0])
            return list(snapshot[0])
        prefilter = None
        if condition is not None and "d.multicall.filtered" in self.known_methods():
            shares = self.flag_shares()
            known = (self.names.filters(condition)
                     if {"system.time", "match"} <= self.known_methods() else None)
            tree = _filter_of(condition, False, shares, known)
            kept = _kept_share(tree, shares)
            if tree is not None and kept <= FILTER_USEFUL:
                prefilter = _render_filter(tree)
            key = (view, str(condition))
            if tree is not None and self.counted_out.get(key) != (kept > FILTER_USEFUL):
                self.counted_out[key] = kept > FILTER_USEFUL
                if kept > FILTER_USEFUL:     # see FILTER_USEFUL: not worth its cost
                    self.log.debug("rTorrent's view counts say its filter would keep at "
                                   "least %d%% of view %r: asking without it", kept * 100, view)
        if prefilter and ("match={" in prefilter and "match" not in self.known_methods()
                          or "math.mul=" in prefilter and "math.mul" not in self.known_methods()):
            prefilter = None    # a command this rTorrent lacks (match: 0.9.8 and later)
        key = (view, prefilter)
        if prefilter and self.unfiltered.get(key):
            self.unfiltered[key] -= 1       # the filter let most through lately
            if not self.unfiltered[key]:
                del self.unfiltered[key]    # (the name index changes filters each minute)
            prefilter = None
        items = self._fetch(view, fields, prefilter)
        self.view_size = self.proxy.call("view.size", "", view) if prefilter else len(items)
        if prefilter and len(items) > self.view_size * FILTER_USEFUL:
            # Evaluating the filter costs rTorrent more than sending the rows it drops.
            self.unfiltered[key] = UNFILTERED_FETCHES
            self.log.debug("rTorrent's filter kept %d of %d item(s) in view %r: the next %d "
                           "fetches ask without it", len(items), self.view_size, view,
                           UNFILTERED_FETCHES)
        return items

    def flag_shares(self):
        """The share of all items that passes each flag test of _FLAG_VIEWS, from
        the item counts of rTorrent's built-in views (read once a minute)."""
        if self.shares is None or time.monotonic() - self.shares[0] > FLAG_SHARES_SECONDS:
            views = sorted(set(_FLAG_VIEWS.values()))
            sizes = self.proxy.multicall([("view.size", "", v) for v in ["main"] + views],
                                         faults="return")
            counts = dict(zip(["main"] + views, sizes))
            total = counts.pop("main")
            shares = {} if not isinstance(total, int) or not total else {
                test: counts[view] / total for test, view in _FLAG_VIEWS.items()
                if isinstance(counts[view], int)}
            self.shares = (time.monotonic(), shares)
        return self.shares[1]

    def poll(self):
        """Fetch every view jobs asked for, once, with the union of their fields."""
        for view, fields in sorted(self.wanted.items()):
            taken = time.monotonic()
            self.snapshots[view] = (self._fetch(view, fields), frozenset(fields), taken)

    def invalidate(self):
        """Forget the snapshots: a job just changed items, the next fetch asks rTorrent."""
        self.snapshots.clear()

    def _fetch(self, view, fields, prefilter=None):
        sources = required_sources(fields | {"hash"})
        commands = ["d.hash="] + sorted(self.command(s) for s in sources
                                        if s != "d.hash=" and self.command(s))
        rows = self.rows(view, commands, prefilter)
        state = _FetchState(self, commands, view)
        items = [Item(row, state) for row in rows]
        # The state knows the hashes, not the items: no cycle, so the items and
        # their rows are gone as soon as the caller drops them.
        state.hashes = [row[0] for row in rows]
        self.forget_old(state.hashes)
        return items

    def complete(self, items, fields):
        """Read the commands `fields` need that the fetch of `items` did not ask for,
        for these items only, in one `system.multicall` (for a few items: rTorrent
        looks up each info-hash in a list)."""
        if not items:
            return
        wanted = [self.command(s) for s in sorted(required_sources(set(fields)))]
        states = {}
        for item in items:
            states.setdefault(id(item.source), (item.source, []))[1].append(item)
        for state, members in states.values():
            if not isinstance(state, _FetchState):
                continue
            missing = [c for c in wanted if c and c not in state.index and c not in state.extra]
            calls = [_call(command, item.hash) for item in members for command in missing]
            values = iter(self.proxy.multicall(calls, faults="return"))
            for item in members:
                for command in missing:
                    value = next(values)
                    state.extra.setdefault(command, {})[item.hash] = (
                        None if isinstance(value, RtorrentFault) else value)

    def command(self, source):
        """The multicall command for a source, None for per-item sources and for
        methods this rTorrent lacks (their value is then None)."""
        if source.startswith("@method:"):
            return self.resolve_method(source.split(":", 1)[1])
        if "=" not in source:
            return None
        method = source.split("=", 1)[0]
        return source if method in self.known_methods() else None

    def known_methods(self):
        """rTorrent's method names: our proxy learns them once per rTorrent process; with
        another proxy they are re-read every few minutes (an rc may add some)."""
        if isinstance(self.proxy, RtorrentProxy):
            return self.proxy.connect().methods
        if self.methods is None or time.monotonic() - self.methods_read > METHODS_SECONDS:
            self.methods = frozenset(self.proxy.call("system.listMethods"))
            self.methods_read = time.monotonic()
        return self.methods

    def resolve_method(self, method):
        """`d_METHOD` → a `d.*` command: underscores may stand for dots
        (`d_down_rate` is `d.down.rate`); the first existing spelling wins."""
        parts = method.split("_")
        if len(parts) > 6:  # too many spellings to try: take it as written
            parts = [method]
        for dots in range(2 ** (len(parts) - 1)):
            name = parts[0]
            for index, part in enumerate(parts[1:]):
                name += ("." if dots & (1 << index) else "_") + part
            if "d." + name in self.known_methods():
                return "d.%s=" % name
        return None

    def rows(self, view, commands, prefilter=None):
        """One `d.multicall2` (or `d.multicall.filtered` with `prefilter`).

        Odd bytes in names and paths never make an answer unreadable: rTorrent
        0.9.8 sends invalid UTF-8 as "?", 0.16 as it is, both send control
        characters raw, and the proxy replaces whatever XML forbids (tested with
        each rTorrent in tests/test_items_rtorrent.py).
        """
        if prefilter:
            return self.proxy.call("d.multicall.filtered", "", view, prefilter, *commands)
        return self.proxy.call("d.multicall2", "", view, *commands)

    def forget_old(self, hashes):
        """Drop cached data of items not seen for CACHE_SECONDS (erased ones).

        Only items with cached data are tracked: with no cache in use, a tick keeps
        nothing of its rows (10,000 info-hashes kept would pin the memory they sit in).
        """
        now = time.time()
        if not any(self.per_hash.values()):
            self.seen.clear()
            return
        cached = set().union(*self.per_hash.values())
        self.seen.update(dict.fromkeys((h for h in hashes if h in cached), now))
        self.seen.update(dict.fromkeys((h for h in cached if h not in self.seen), now))
        for info_hash in [h for h, when in self.seen.items() if now - when > CACHE_SECONDS]:
            del self.seen[info_hash]
            for cache in self.per_hash.values():
                cache.pop(info_hash, None)

    # Per-item data -----------------------------------------------------------

    def per_item(self, source, hashes, view):
        """Fill the per-hash cache of `source` for all items (info-hashes) that lack it.

        rTorrent finds an item by a linear search over its hash, so per-hash calls
        cost O(items) each.  Many missing items are therefore read with one nested
        `d.multicall2` over the view; a few new ones with per-hash calls.
        """
        cache = self.per_hash.setdefault(source, {})
        missing = [info_hash for info_hash in hashes if info_hash not in cache]
        if not missing:
            return
        nested = _NESTED_CALLS[source]
        if len(missing) > FEW_ITEMS:
            for info_hash, rows in self.proxy.call("d.multicall2", "", view, "d.hash=", nested):
                cache[info_hash] = tuple(self.clean(source, rows))
            return
        calls = [_call(nested, h) for h in missing]
        for info_hash, result in zip(missing, self.proxy.multicall(calls, faults="return")):
            if isinstance(result, list):
                cache[info_hash] = tuple(self.clean(source, result))

    @staticmethod
    def clean(source, rows):
        if source == "@files":
            return [(path or "", int(size or 0)) for path, size in rows]
        return [(url or "", bool(enabled)) for url, enabled in rows
                if not (url or "").startswith("dht://")]


def _call(command, info_hash):
    """A multicall command ("d.custom=tm_loaded") as a per-item call."""
    method, _, args = command.partition("=")
    return (method, info_hash) + tuple(args.split(",") if args else ())


class _FetchState:
    """What the items of one fetch share: where each command sits in a row, and one
    compiled getter per field, so that computing a field is a call or two."""

    def __init__(self, source, commands, view):
        self.source, self.view, self.hashes, self.session = source, view, [], None
        self.index = {command: position for position, command in enumerate(commands)}
        self.extra = {}     # command the fetch did not ask for → {hash: value} (complete())
        self.getters = {}

    def compute(self, item, name):
        getter = self.getters.get(name)
        if getter is None:
            getter = self.getters[name] = self.getter(field_for(name))
        return getter(item)

    def getter(self, field):
        """A function item → value for `field`, cached per hash if the field is stable."""
        readers, convert = [self.reader(s) for s in field.sources], field.convert
        if len(readers) == 1:
            read = readers[0]
            compute = lambda item: convert(read(item))  # noqa: E731
        else:
            compute = lambda item: convert(*[read(item) for read in readers])  # noqa: E731
        if not field.stable:
            return compute
        cache = self.source.per_hash.setdefault(field.name, {})

        def cached(item):
            try:
                return cache[item.row[0]]
            except KeyError:
                value = cache[item.row[0]] = compute(item)
                return value
        return cached

    def reader(self, source):
        """A function item → raw value of one source."""
        if source == "@aliases":
            return lambda item: self.source.aliases
        if source == "@traits_by_alias":
            return lambda item: self.source.traits_by_alias
        if source == "@session":
            return self.session_path
        if source in _NESTED_CALLS:
            return lambda item: self.per_item(source, item)
        if "=" in source or source.startswith("@method:"):
            command = self.source.command(source)
            position = self.index.get(command)
            if position is not None:
                return lambda item: item.row[position]
            if command is None:
                return lambda item: None  # this rTorrent has no such method
            return lambda item: self.read_extra(command, item)
        return lambda item: item[source]

    def session_path(self, item):
        if self.session is None:
            self.session = self.source.proxy.call("session.path")
        return self.session

    def per_item(self, source, item):
        cache = self.source.per_hash.setdefault(source, {})
        if item.row[0] not in cache:
            self.source.per_item(source, self.hashes, self.view)
        return cache.get(item.row[0], ())

    def read_extra(self, command, item):
        """A command the fetch did not ask for: read by `complete`, else now."""
        values = self.extra.get(command)
        if values is not None and item.row[0] in values:
            return values[item.row[0]]
        return self.fetch_one(command, item)

    def fetch_one(self, command, item):
        """A command the fetch did not ask for, read for this one item."""
        value = self.source.proxy.multicall([_call(command, item.row[0])], faults="return")[0]
        return None if isinstance(value, RtorrentFault) else value


# Looking at matches (`pyrotorque.py --match CONDITION`) ######################

def display_value(name, value):
    """A field value as a user reads it: dates, `tv/mkv` traits, sorted tag lists."""
    try:
        value_type = field_for(name).type
    except KeyError:
        value_type = None
    if name == "traits":
        return "/".join(value) if value else "misc/other"
    if isinstance(value_type, TimeType):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) if value else "never"
    if isinstance(value, (set, frozenset, list, tuple)):
        return ",".join(sorted(str(v) for v in value)) or "''"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "%g" % value
    return "''" if value in (None, "") else str(value)


def match_report(source, condition, view="main", sorter=None):
    """Lines that show which items of `view` match `condition`, and why: each one's
    name, hash and the values of the fields the condition uses."""
    if isinstance(condition, str):
        condition = parse_condition(condition)
    shown = sorted(condition.fields - {"name", "hash"})
    items = source.fetch(view, condition.fields | {"name"} | (sorter.fields if sorter else set()))
    if sorter:
        items = sorter(items)
    lines = []
    for item in items:
        if condition.match(item):
            lines.append("%s  %s" % (item.hash, item["name"]))
            lines.extend("    %s=%s" % (name, display_value(name, item[name])) for name in shown)
    lines.append("%d of %d item(s) in view %r match [ %s ]" % (
        sum(1 for line in lines if not line.startswith(" ")), len(items), view, condition))
    return lines


# Sorting #####################################################################

class Sorter:
    """Sorts items by `sort_fields` such as `-prio, loaded, name` (`-` descending)."""

    def __init__(self, keys):
        self.keys = keys  # [(field name, descending)]
        self.fields = frozenset(name for name, _ in keys)

    def __call__(self, items):
        """A new list of `items`, sorted (stable: one pass per key, last key first)."""
        items = list(items)
        for name, descending in reversed(self.keys):
            items.sort(key=_sort_key(name), reverse=descending)
        return items

    def __str__(self):
        return ", ".join(("-" if desc else "") + name for name, desc in self.keys)


def _sort_key(name):
    try:
        default = field_for(name).type.sort_default
    except KeyError:
        default = ""

    def key(item):
        try:
            value = item[name]
        except KeyError:
            value = None
        if value is None:
            return default
        if isinstance(value, (set, frozenset)):
            return tuple(sorted(value))
        return tuple(value) if isinstance(value, list) else value
    return key


def parse_sort_fields(text, types=None):
    """`-prio, loaded, name` → a `Sorter`; an unknown field is a ConfigError."""
    keys = []
    for word in re.split(r"[\s,]+", text or ""):
        if not word:
            continue
        name = word.lstrip("-")
        known = (name in types) if types is not None else _item_field_type(name) is not None
        if not known:
            raise ConfigError("Unknown field name %r in sort_fields %r" % (name, text))
        keys.append((name, word.startswith("-")))
    return Sorter(keys)


###############################################################################
# Configuration ###############################################################
###############################################################################
#
# pyrocore's files, read the way pyrocore read them, in its order: the embedded
# defaults, then <config dir>/config.ini, then <config dir>/torque.ini, then
# each --config-file, then -D KEY=VAL.  pyrocore put every file's sections into
# one namespace, so a [TORQUE] section in config.ini counts (torque.ini, read
# later, wins), and so does a [GLOBAL] scgi_url in torque.ini.  Keys are
# case-sensitive, section names are not (pyrocore lower-cased them), '%(name)s'
# interpolates, indented lines continue a value, '~/' expands.  Unlike
# pyrocore, every value remembers the file and line it came from, so an error
# can say exactly where to look.
#
# Nothing is dropped without a word.  What pyrotorque will not use is a
# ConfigProblem naming file, line and key, with the fix (often "did you mean"):
#   error    the daemon would not start (a broken file or symlink, a missing
#            --config-dir, a bad value); --check exits 70
#   ignored  the daemon starts but does not use it (an unknown section or key,
#            a job key outside [TORQUE], a key set twice); --check exits 78
#   note     it works, but reads in a way worth knowing (a pyrocore '\\d');
#            no effect on the exit code
# The daemon logs the ignored ones and the notes once at start as warnings and
# runs on, as pyrocore did; errors stop it.  Sections that only pyrocore's
# other tools read ([FORMATS], [SWEEP], ...) are named once at INFO.
# ~/.pyroscope not existing is fine (the defaults run); a --config-dir or
# $PYRO_CONFIG_DIR that does not exist is an error: it names a configuration
# the user meant to have.

#: [TORQUE] keys that are not grouped into jobs, with what each means.
TOP_LEVEL_KEYS = {
    "scgi_url": "where rTorrent's XML-RPC listens",
    "rtorrent_rc": "the rTorrent configuration searched for the SCGI endpoint",
    "rpc_timeout": "seconds one call to rTorrent may take",
    "queue_startable_base": "the part of the queue's 'startable' that is always there",
}

#: Key prefixes accepted for pyrocore compatibility and otherwise ignored.
COMPAT_PREFIXES = ("apscheduler.", "httpd.")

#: Sections pyrotorque reads besides [TORQUE], and from which keys.  Their keys are
#: free-form names (tracker aliases, connection names) except in [GLOBAL].
READ_SECTIONS = {
    "GLOBAL": "scgi_url and rtorrent_rc, when [TORQUE] does not set them",
    "ANNOUNCE": "tracker aliases (the 'alias' field)",
    "TRAITS_BY_ALIAS": "traits of a tracker alias (the 'traits' field)",
    "CONNECTIONS": "named rTorrent endpoints (scgi_url = @NAME)",
}

#: The [GLOBAL] keys pyrotorque reads.
GLOBAL_KEYS = ("scgi_url", "rtorrent_rc")

#: Sections and [GLOBAL] keys of pyrocore's config.ini that only its other tools read.
OTHER_TOOLS_SECTIONS = {
    "FORMATS": "rtcontrol (output formats)",
    "XMLRPC": "XML-RPC layer (call logging)",
    "XMLRPC_0_8_7": "XML-RPC layer (rTorrent 0.8 method names)",
    "INFLUXDB": "InfluxDBStats job",
    "SWEEP": "rtsweep", "SWEEP_RULES_CUSTOM": "rtsweep", "SWEEP_RULES_BUILTIN": "rtsweep",
}
OTHER_TOOLS_GLOBAL_KEYS = (
    "config_dir", "config_script", "engine", "fast_query", "waif_pattern_list",
    "output_header_frequency", "output_header_ecma48", "sort_fields",
    "config_validator_callbacks", "custom_field_factories", "custom_template_helpers",
)

#: What a ConfigProblem means for the daemon (see above).
ERROR, IGNORED, NOTE = "error", "ignored", "note"


class ConfigProblem(str):
    """One finding about the configuration: the text a user reads ('file:line: key:
    what (fix)'), and its ``kind``: ERROR, IGNORED or NOTE.  A plain string in
    ``Settings.warnings`` counts as IGNORED."""

    def __new__(cls, text, kind=IGNORED):
        problem = super().__new__(cls, text)
        problem.kind = kind
        return problem


def problem_kind(problem):
    """The kind of an entry of ``Settings.warnings`` or ``Settings.errors``."""
    return getattr(problem, "kind", IGNORED)

#: Parameters every job has, with their converters and defaults.
COMMON_JOB_PARAMS = {
    "handler": (str, None, "what the job does: 'module:Class'"),
    "schedule": (str, None, "when it runs: cron fields such as 'second=*/15'"),
    "active": (parse_bool, True, "run this job"),
    "dry_run": (parse_bool, False, "log what would be done, change nothing"),
    "quiet": (parse_bool, False, "do not print messages into rTorrent's log"),
    "log_level": (str, None, "the level of this job's log"),
    "scgi_url": (str, None, "this job's own rTorrent, if not the daemon's scgi_url"),
}


class JobSpec:
    """One job's configuration: ``job.NAME.*`` values and where each came from."""

    def __init__(self, name):
        self.name = name
        self.params = {}        # PARAM -> raw text
        self.origins = {}       # PARAM -> "file:line"

    def __repr__(self):
        return "JobSpec(%r, %r)" % (self.name, self.params)

    def __eq__(self, other):
        return isinstance(other, JobSpec) and (self.name, self.params) == (other.name, other.params)

    __hash__ = None

    def where(self, param):
        """'file:line: job.NAME.PARAM', the prefix of every error about that value."""
        origin = self.origins.get(param) or self.origins.get("handler") or "<config>"
        return "%s: job.%s.%s" % (origin, self.name, param)

    def error(self, param, message):
        return ConfigError("%s: %s" % (self.where(param), message))

    def constructor_error(self, exc):
        """A job constructor's ConfigError; 'PARAM: message' points at that key's line."""
        param, colon, message = str(exc).partition(": ")
        if colon and param in self.params:
            return self.error(param, message)
        return self.error("handler", str(exc))

    def value(self, param, converter=str, default=None):
        """The value of PARAM passed through ``converter``; errors name file, line and key."""
        if param not in self.params:
            return default
        if "\0" in str(self.params[param]):     # every os call would refuse it
            raise self.error(param, "a NUL byte, which no value may hold")
        try:
            return converter(self.params[param])
        except ConfigError as exc:
            raise self.error(param, str(exc).replace("value: ", "")) from None
        except (ValueError, TypeError) as exc:
            raise self.error(param, "%r: %s" % (self.params[param], exc)) from None


class Settings:
    """Everything the configuration files said, with the origin of each [TORQUE] value."""

    def __init__(self, config_dir):
        self.config_dir = config_dir
        self.torque = {}        # [TORQUE] key -> text
        self.origins = {}       # [TORQUE] key -> "file:line"
        self.sections = {}      # config.ini sections, lower-cased names -> dict
        self.files = []         # the files read, in order
        self.warnings = []      # ConfigProblems (or plain text) the daemon logs as warnings
        self.errors = []        # ConfigProblems that stop the daemon (load_settings raises)
        self.unreadable = False     # one of them: a file that could not be read (exit 74)
        self.notes = []         # worth knowing, logged at INFO (sections for other tools)
        self.defaults = {}      # [TORQUE] key -> the built-in default's text
        self.jobs = {}          # NAME -> JobSpec

    def get(self, key, default=None):
        value = self.torque.get(key, "")
        return value if value != "" else default

    def where(self, key):
        return "%s: %s" % (self.origins.get(key, "<config>"), key)

    def item_source(self, proxy):
        """An ItemSource for ``proxy`` with config.ini's tracker aliases and traits."""
        return ItemSource(proxy, aliases=self.sections.get("announce"),
                          traits_by_alias=self.sections.get("traits_by_alias"))

    def connection_key(self, url, timeout):
        """What decides whether two configurations talk to rTorrent the same way."""
        return (parse_rpc_url(url).url, timeout, sorted(self.sections.get("announce", {}).items()),
                sorted(self.sections.get("traits_by_alias", {}).items()),
                sorted((k, v) for k, v in self.torque.items() if not k.startswith("job.")))


def _key_lines(lines, source):
    """Map (section, key) to the line it is set on, (section, None) to the section's first
    header, and report keys set twice in one file."""
    found, dupes, section = {}, [], None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line[0] in " \t#;":
            continue
        header = re.match(r"\[([^\]]+)\]", line)
        if header:
            section = header.group(1)
            found.setdefault((section, None), number)
            continue
        key = re.split(r"[=:]", line, maxsplit=1)[0].strip()
        if (section, key) in found:
            dupes.append(ConfigProblem(
                "%s:%d: %s is set again (first on line %d); the last value wins, delete the "
                "other line" % (source, number, key, found[section, key])))
        found[section, key] = number
    return found, dupes


def _known_section_names(text):
    """Write the section names pyrotorque knows in upper case, as pyrocore's lower-casing
    merged [torque] into [TORQUE]; line numbers stay as they are."""
    known = set(READ_SECTIONS) | set(OTHER_TOOLS_SECTIONS) | {"TORQUE"}

    def upper(found):
        name = found.group(2).strip().upper()
        return found.group(1) + name + "]" if name in known else found.group(0)
    return re.sub(r"(?m)^(\[)([^\]\n]+)\]", upper, text)


def _read_ini(parser, text, source, settings):
    """Feed one file to the parser; return {(section, key): line}.  What cannot be read
    is an error in ``settings.errors``; the lines that can be read still count."""
    text = _known_section_names(text)
    problem = _nul_byte(text)
    if problem:
        settings.errors.append(ConfigProblem("%s:%s" % (source, problem), ERROR))
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        message = getattr(exc, "message", str(exc)).splitlines()[0]
        if isinstance(exc, configparser.MissingSectionHeaderError):
            message = "a key before any [SECTION] header (pyrotorque reads [TORQUE])"
        elif isinstance(exc, configparser.ParsingError) and exc.errors:
            for line, bad in exc.errors:
                settings.errors.append(ConfigProblem(
                    "%s:%s: cannot parse %s (expected KEY = VALUE)" % (source, line, bad), ERROR))
            message = None
        if message:
            settings.errors.append(ConfigProblem("%s:%s: %s" % (source, line or "?", message),
                                                 ERROR))
    found, dupes = _key_lines(text.splitlines(), source)
    settings.warnings.extend(dupes)
    settings.files.append(source)
    return found


def _nul_byte(text):
    """'LINE: ...' when the text holds a NUL byte, which no value may hold (os calls
    refuse it), else None."""
    at = text.find("\0")
    return None if at < 0 else "%d: a NUL byte, which no value may hold (is this a text " \
        "file?)" % (text.count("\n", 0, at) + 1)


def _expand(value):
    return os.path.expanduser(value) if value.startswith("~/") or value == "~" else value


def _config_file(path, what, settings):
    """True when ``path`` can be read; a dangling symlink or a missing --config-file is
    an error (pyrocore skipped both without a word)."""
    if os.path.exists(path):
        return True
    if os.path.islink(path):
        settings.errors.append(ConfigProblem(
            "%s: a symbolic link to %s, which does not exist; fix the link or remove it"
            % (path, os.readlink(path)), ERROR))
    elif what:
        settings.errors.append(ConfigProblem("%s: no such configuration file (from %s)"
                                             % (path, what), ERROR))
    return False


def load_settings(config_dir=None, config_files=(), defines=(), strict=True):
    """Read the configuration the way pyrocore did.

    Every problem lands in ``settings.errors`` / ``settings.warnings`` (see above);
    with ``strict`` (the daemon), errors then raise one ConfigError naming them all,
    without it (``--check``) the caller lists them.
    """
    config_dir = os.path.expanduser(config_dir or os.environ.get("PYRO_CONFIG_DIR")
                                    or DEFAULT_CONFIG_DIR)
    toml_file, toml_warning = pyrosimple_config_file(config_dir)       # pyrosimple's users
    if toml_file:
        return _checked(load_pyrosimple_settings(toml_file, config_dir, config_files, defines),
                        strict)
    settings = Settings(config_dir)
    settings.warnings.extend([toml_warning] if toml_warning else [])
    # pyrocore's order: defaults, config.ini, torque.ini, --config-file...; all files
    # go into one parser, so a later file's value wins and '%(name)s' sees earlier ones.
    parser = configparser.ConfigParser(strict=False, empty_lines_in_values=False,
                                       interpolation=configparser.BasicInterpolation())
    parser.optionxform = str
    origins, headers = _read_sources(parser, _config_sources(config_dir, config_files, settings),
                                     settings)
    if parser.has_section("TORQUE"):
        for key in parser.options("TORQUE"):
            if key in parser.defaults():
                continue
            where = origins.get(("TORQUE", key), "<config>")
            try:
                value = parser.get("TORQUE", key)
            except configparser.InterpolationError as exc:
                settings.errors.append(ConfigProblem("%s: %s: %s" % (
                    where, key, str(exc).splitlines()[0]), ERROR))
                continue
            settings.torque[key] = _expand(value)
            settings.origins[key] = where
    _check_sections(parser, origins, headers, settings)

    apply_defines(settings, defines)
    used = _interpolated_names(v for _, v in parser.items("TORQUE", raw=True)) \
        if parser.has_section("TORQUE") else ()
    _group_jobs(settings, used)
    _check_inactive_jobs(settings)
    _note_conditions(settings)
    return _checked(settings, strict)


def _config_sources(config_dir, config_files, settings):
    """[(path, text or None)] of the files to read, in pyrocore's order; what is missing
    or only pyrocore's goes to ``settings``."""
    if not os.path.isdir(config_dir):
        if os.path.abspath(config_dir) != os.path.abspath(os.path.expanduser(
                DEFAULT_CONFIG_DIR)) or os.path.lexists(config_dir):
            settings.errors.append(ConfigProblem(
                "%s: the configuration directory does not exist (from --config-dir or "
                "$PYRO_CONFIG_DIR); create it or name the right one" % config_dir, ERROR))
        else:
            settings.notes.append("%s does not exist: running on the built-in defaults"
                                  % config_dir)
    sources = [("torque.ini.default", DEFAULT_CONFIG)]
    for name in ("config.ini", "torque.ini"):
        path = os.path.join(config_dir, name)
        if _config_file(path, None, settings):
            sources.append((path, None))
    for extra in config_files:
        extra = os.path.expanduser(extra)
        if _config_file(extra, "--config-file", settings):
            sources.append((extra, None))
    script = os.path.join(config_dir, "config.py")
    if os.path.exists(script):
        settings.notes.append("%s is used by pyrocore's other tools, not by pyrotorque (custom "
                              "fields defined there are unknown here; conditions can use "
                              "custom_KEY and d_METHOD)" % script)
    return sources


def _read_sources(parser, sources, settings):
    """Feed the files to the one parser; returns (origins, headers): (section, key) ->
    'file:line' of the value that counts, and (section, 'file:line') of every header."""
    origins, headers = {}, []
    for source, text in sources:
        if text is None:
            try:
                text = _read_text(source)
            except ConfigError as exc:
                settings.errors.append(ConfigProblem(str(exc), ERROR))
                settings.unreadable = settings.unreadable or isinstance(exc, StartupError)
                continue
        found = _read_ini(parser, text, source, settings)
        if source == "torque.ini.default":
            settings.defaults = dict(parser.items("TORQUE", raw=True))
        for (section, key), line in found.items():
            if key is None:
                headers.append((section, "%s:%d" % (source, line)))
            else:
                origins[section, key] = "%s:%d" % (source, line)
        if source.endswith("config.ini") and ("TORQUE", None) in found:
            settings.notes.append("%s:%d: [TORQUE] is read, before torque.ini, as pyrocore "
                                  "read it" % (source, found["TORQUE", None]))
    return origins, headers


def _checked(settings, strict):
    """``settings``, unless ``strict`` (the daemon) and they hold errors: then one
    ConfigError that names them all."""
    if strict and settings.errors:
        # A file that cannot be read is an I/O problem (exit 74), whatever else is wrong.
        raise (StartupError if settings.unreadable else ConfigError)("\n".join(settings.errors))
    return settings


def _check_sections(parser, origins, headers, settings):
    """Keep the sections pyrotorque reads; name every other section and key (see above)."""
    reported = set()
    for section, where in headers:
        if section in ("TORQUE", "DEFAULT") or section in READ_SECTIONS:
            continue
        if section in OTHER_TOOLS_SECTIONS:
            if section not in reported:
                settings.notes.append("%s: [%s] is used by pyrocore's %s, not by pyrotorque"
                                      % (where, section, OTHER_TOOLS_SECTIONS[section]))
            reported.add(section)
            continue
        keys = [k for (s, k) in origins if s == section]
        hint = _did_you_mean(section.upper(), ["TORQUE"] + list(READ_SECTIONS)
                             + list(OTHER_TOOLS_SECTIONS), show="[%s]".__mod__)
        settings.warnings.append(ConfigProblem(
            "%s: [%s]: unknown section, its %d key%s ignored%s" % (
                where, section, len(keys), " is" if len(keys) == 1 else "s are",
                hint or " (pyrotorque reads [TORQUE])")))
    defaults = parser.defaults()
    referenced = _interpolated_names(v for section in parser.sections()
                                     for _, v in parser.items(section, raw=True))
    for key in defaults:
        if key not in referenced:
            settings.warnings.append(ConfigProblem(
                "%s: %s: in [DEFAULT], which pyrotorque reads only for '%%(%s)s' references, "
                "and nothing refers to it (a job key belongs in [TORQUE])"
                % (origins.get(("DEFAULT", key), "<config>"), key, key)))
    for section in parser.sections():
        if section == "TORQUE":
            continue
        raw = {k: v for k, v in parser.items(section, raw=True) if k not in defaults}
        if section in READ_SECTIONS:
            settings.sections[section.lower()] = {k: _expand(v) for k, v in raw.items()}
        used = _interpolated_names(raw.values())
        for key in raw:
            where = "%s: %s" % (origins.get((section, key), "<config>"), key)
            if section not in READ_SECTIONS and section not in OTHER_TOOLS_SECTIONS:
                continue        # the whole section is reported above
            if key.startswith(("job.",) + COMPAT_PREFIXES) or key in TOP_LEVEL_KEYS and not (
                    section == "GLOBAL" and key in GLOBAL_KEYS):
                settings.warnings.append(ConfigProblem(
                    "%s: in [%s], where pyrotorque does not look for it; move it to [TORQUE]"
                    % (where, section)))
            elif section == "GLOBAL" and key not in GLOBAL_KEYS + OTHER_TOOLS_GLOBAL_KEYS \
                    and key not in used:
                settings.warnings.append(ConfigProblem("%s: unknown key in [GLOBAL]%s" % (
                    where, _did_you_mean(key, list(GLOBAL_KEYS + OTHER_TOOLS_GLOBAL_KEYS)
                                         + list(TOP_LEVEL_KEYS)))))


def _interpolated_names(values):
    """The keys that '%(name)s' references in some values refer to."""
    return {name for value in values for name in re.findall(r"%\(([^)]+)\)s", value)}


def _check_inactive_jobs(settings):
    """The unknown keys of an inactive built-in job are named too (an active job's are named
    when it is built): switched on later, it would ignore them."""
    for spec in settings.jobs.values():
        module = str(spec.params.get("handler")).partition(":")[0].strip()
        if module != "pyrotorque" and not module.startswith(BUILTIN_MODULES[1:]):
            continue        # a custom job: importing it is for when it runs
        try:
            if spec.value("active", parse_bool, True):
                continue
            job_config(spec, resolve_handler(spec.params["handler"]), settings,
                       warn=settings.warnings.append)
        except ConfigError:
            continue        # a bad value of an inactive job harms nothing until it is on


def _note_conditions(settings):
    """Notes for [TORQUE] conditions that read in a way worth knowing (pyrocore's '\\d')."""
    for key, value in settings.torque.items():
        if "\\\\" not in value:
            continue
        notes = []
        try:
            parse_condition(value, notes=notes)
        except ConfigError:
            continue        # not a condition, or a broken one its job reports
        for note in notes:
            settings.warnings.append(ConfigProblem("%s: %s" % (settings.where(key), note), NOTE))


def _read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not UTF-8 text (%s)" % (path, exc)) from None
    except OSError as exc:
        raise io_problem("the configuration file", path, exc) from None


def _group_jobs(settings, used=()):
    """Split 'job.NAME.PARAM' keys into JobSpecs; check the other keys (those in ``used``
    are referenced as '%(key)s').  A job whose keys cannot make a job is left out, with an
    error in ``settings.errors``."""
    broken = set()
    for key, value in settings.torque.items():
        if key.startswith("job."):
            parts = key.split(".", 2)
            if len(parts) != 3 or not parts[1] or not parts[2]:
                settings.errors.append(ConfigProblem(
                    "%s: bad job configuration key (expecting job.NAME.PARAM)"
                    % settings.where(key), ERROR))
                continue
            spec = settings.jobs.setdefault(parts[1], JobSpec(parts[1]))
            spec.params[parts[2]] = value
            spec.origins[parts[2]] = settings.origins[key]
        elif key == "httpd.active" and typed_value(value) is True:
            settings.warnings.append(ConfigProblem(
                "%s: pyrocore's web server is not part of pyrotorque; use the exporter job "
                "for metrics" % settings.where(key)))
        elif key.startswith(COMPAT_PREFIXES) and key != "httpd.active" and \
                value != settings.defaults.get(key, value + "?"):
            settings.warnings.append(ConfigProblem(
                "%s: pyrocore's %s setting; pyrotorque does not use it (%s), delete the line"
                % (settings.where(key), "scheduler" if key.startswith("apscheduler.")
                   else "web server", "it runs one job at a time, never overlapping, and "
                   "merges missed runs" if key.startswith("apscheduler.")
                   else "use the exporter job for metrics")))
        elif key not in TOP_LEVEL_KEYS and not key.startswith(COMPAT_PREFIXES) \
                and key not in used:
            settings.warnings.append(ConfigProblem("%s: unknown key%s" % (
                settings.where(key), _did_you_mean(key, list(TOP_LEVEL_KEYS)))))
    for spec in settings.jobs.values():
        for required in ("handler", "schedule"):
            if not spec.params.get(required, "").strip():
                settings.errors.append(ConfigProblem(
                    "%s: job %r is missing the required 'job.%s.%s' parameter"
                    % (next(iter(spec.origins.values())), spec.name, spec.name, required),
                    ERROR))
                broken.add(spec.name)
    for name in broken:
        del settings.jobs[name]


def _did_you_mean(word, candidates, show=repr):
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return " (did you mean %s?)" % show(close[0]) if close else ""


def find_rpc_url(settings, override=None):
    """The rTorrent endpoint: -U, else scgi_url, else config.ini, else the rtorrent.rc scan."""
    if override:
        return override
    url = settings.get("scgi_url") or settings.sections.get("global", {}).get("scgi_url")
    if url:
        return url
    rc_path = os.path.expanduser(settings.get("rtorrent_rc")
                                 or settings.sections.get("global", {}).get("rtorrent_rc")
                                 or "~/.rtorrent.rc")
    url = scan_rtorrent_rc(rc_path)
    if not url:
        raise ConfigError("no rTorrent endpoint: set scgi_url in %s (e.g. scgi_url = "
                          "scgi:///home/you/rtorrent/.scgi_local), pass -U URL, or add a "
                          "network.scgi.open_local line to %s"
                          % (os.path.join(settings.config_dir, "torque.ini"), rc_path))
    return url


def scan_rtorrent_rc(path):
    """The SCGI endpoint named in an rtorrent.rc (a unix socket wins), or None.

    Only plain 'key = value' lines are understood: rTorrent's own expressions
    such as (cat,...) cannot be evaluated here, so such a file needs scgi_url.
    """
    local = port = None
    try:
        lines = _read_text(path).splitlines()
    except ConfigError:
        return None
    for line in lines:
        key, equals, value = line.partition("=")
        key, value = key.strip(), value.strip().strip('"')
        if not equals or key.startswith("#") or value.startswith("("):
            continue
        if key in ("network.scgi.open_local", "scgi_local"):
            local = os.path.expanduser(value)
        elif key in ("network.scgi.open_port", "scgi_port"):
            port = value
    if local:
        return "scgi://" + local if local.startswith("/") else local
    return "scgi://" + port if port else None


###############################################################################
# pyrosimple configuration ####################################################
###############################################################################
#
# pyrosimple (pyrocore's Python 3 successor) keeps its jobs in a TOML file,
# ~/.config/pyrosimple/config.toml or $PYRO_CONF, as [TORQUE.NAME] tables with
# its own key names and defaults.  Such a file is read into the very Settings
# and JobSpecs torque.ini gives (values as text, origins 'config.toml:LINE'),
# so every job, error and --check works the same; --convert-config writes the
# equivalent torque.ini.  Which file is read:
#
#   * <config dir>/torque.ini, when it exists (pyrotorque's own format); a
#     config.toml with a [TORQUE] table is then named in a warning, unread;
#   * else $PYRO_CONF (which must exist), else ~/.config/pyrosimple/config.toml
#     when it has a [TORQUE] table;
#   * else the built-in defaults, as before.
#
# Python 3.11+ reads TOML with tomllib; older ones get an error saying how to
# convert the file once with a newer Python.

#: Where pyrosimple keeps its configuration ($PYRO_CONF names another file).
PYROSIMPLE_CONFIG = "~/.config/pyrosimple/config.toml"

#: Top-level keys and tables of pyrosimple's config.toml that belong to its other
#: tools (rtcontrol, mktor, ...): valid there, of no use to the daemon.
PYROSIMPLE_OTHER_KEYS = ("sort_fields", "mktor_ignore", "fast_query", "safety_checks_enabled",
                         "item_cache_expiration", "FORMATS")

#: [TORQUE._settings] keys and what a pyrotorque user does instead.
PYROSIMPLE_DAEMON_SETTINGS = {
    "autoreload": "pyrotorque re-reads its configuration on SIGHUP (kill -HUP, "
                  "systemctl reload), it does not poll the file",
    "log_level": "use -v (debug) or -q (warnings) on the command line",
    "log_file": "use --log-file on the command line",
    "log_format": "pyrotorque's log format is fixed",
    "pid_file": "use --pid-file on the command line",
}

#: Per pyrosimple job class (the part after ':' of its handler name): its keys
#: that pyrotorque names differently ('!' inverts a boolean, None drops a key
#: whose behaviour pyrotorque always has), and pyrosimple's defaults where they
#: differ from ours.  The handler names themselves resolve through
#: HANDLER_ALIASES (in the Jobs section).
PYROSIMPLE_JOBS = {
    "QueueManager": {
        "keys": {"matcher": "startable", "sort": "sort_fields", "log_to_client": "!quiet",
                 "max_downloading_traffic": "downloading_traffic_max", "viewname": "view"},
        "defaults": {"startable": 'is_complete=no is_ignored=no is_open=no message="" done=0',
                     "sort_fields": "name,hash", "downloading_min": "0",
                     "downloading_max": "20", "start_at_once": "1", "intermission": "120"},
    },
    "TreeWatch": {
        "keys": {"print_to_client": "!quiet", "check_unhandled": None,
                 "start_immediately": None, "preload_fields": None,
                 "remove_unhandled": "remove_loaded"},
        "defaults": {},
    },
    "RtorrentExporter": {
        "keys": {}, "defaults": {},
    },
    "Command": {
        "keys": {"args": "command", "check": None},
        "defaults": {},
    },
    "ItemCommand": {
        "keys": {"sort": "sort_fields", "timeout": "exec_timeout", "check": None},
        "defaults": {"view": "main"},
    },
    "Action": {
        "keys": {"sort": "sort_fields"},
        "defaults": {"view": "main"},
    },
    "PathMover": {
        "keys": {"sort": None},
        "defaults": {"use_targetdir": "False"},
    },
    "Mover": {
        "keys": {"sort": "sort_fields"},
        "defaults": {},
    },
}

#: pyrosimple's Action job: its item methods -> our action lines ({0}, {1}: its args).
PYROSIMPLE_ACTIONS = {
    "start": "start", "stop": "stop", "close": "close", "delete": "erase",
    "set_prio": "priority={0}", "set_throttle": "throttle={0}", "set_custom": "custom.{0}={1}",
}

#: Jinja2 block tags that have an equivalent in our templates.
_JINJA_BLOCK = re.compile(r"\{%-?\s*(if|elif|else|endif)\b(.*?)-?%\}", re.S)
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_JINJA_OTHER = re.compile(r"\{%-?\s*(\w+)")


def pyrosimple_config_file(config_dir):
    """(config.toml to read or None, a warning or None) for ``config_dir``."""
    named = os.environ.get("PYRO_CONF", "").strip()
    path = os.path.expanduser(named or PYROSIMPLE_CONFIG)
    torque_ini = os.path.join(config_dir, "torque.ini")
    if os.path.exists(torque_ini) or os.path.islink(torque_ini):
        if _has_torque_table(path):
            return None, ("%s: its [TORQUE] jobs are not read, because %s exists (torque.ini "
                          "wins; remove or rename it to run the config.toml jobs)"
                          % (path, torque_ini))
        return None, None
    if named and not os.path.exists(path):
        raise ConfigError("%s: no such file (named by PYRO_CONF)" % path)
    return (path if named or _has_torque_table(path) else None), None


def _has_torque_table(path):
    """Does this TOML file have a [TORQUE] or [TORQUE.x] table, or one misspelled like
    [TORQE.x] (then read, and the spelling named)?  A text scan: no tomllib needed."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            tables = [found.group(1) for found in
                      (re.match(r"\s*\[\s*([A-Za-z_]+)\s*[\].]", line) for line in handle) if found]
    except OSError:
        return False
    return any(difflib.get_close_matches(table.upper(), ["TORQUE"], n=1, cutoff=0.8)
               for table in tables)


def read_toml(path, text=None):
    """The parsed TOML file; ConfigError with file and line, or how to do without tomllib."""
    try:
        import tomllib
    except ImportError:         # Python 3.9, 3.10
        raise ConfigError(
            "%s: reading pyrosimple's config.toml needs Python 3.11 or later (this is %s). "
            "Convert it once with a newer Python: python3.11 pyrotorque.py --convert-config "
            "%s > ~/.pyroscope/torque.ini; torque.ini is then read instead"
            % (path, sys.version.split()[0], shlex.quote(path))) from None
    if text is None:
        text = _read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if found:
            message = message[:found.start()].strip() + " (column %s)" % found.group(2)
        raise ConfigError("%s:%s: %s" % (path, found.group(1) if found else "?", message)) from None


def _toml_key_lines(text):
    """{key path tuple: line} of a TOML text, by a plain scan (tomllib gives no lines).

    Table headers and 'key = value' lines are found; the insides of multi-line
    strings are skipped.  Good enough to point an error at the right line.
    """
    lines, table, quote = {}, (), None
    key_part = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
    dotted = re.compile(r"\s*(%s(?:\s*\.\s*%s)*)\s*=" % (key_part, key_part))
    for number, line in enumerate(text.splitlines(), 1):
        if quote:
            if quote in line:
                quote = None
            continue
        header = re.match(r"\s*\[\[?\s*(%s(?:\s*\.\s*%s)*)\s*\]" % (key_part, key_part), line)
        if header:
            table = _toml_key_path(header.group(1))
            for n in range(1, len(table) + 1):      # [A.B] makes table A too
                lines.setdefault(table[:n], number)
            continue
        found = dotted.match(line)
        if found:
            lines.setdefault(table + _toml_key_path(found.group(1)), number)
            rest = line[found.end():]
            for mark in ('"""', "'''"):
                if rest.count(mark) == 1:
                    quote = mark
    return lines


def _toml_key_path(text):
    return tuple(part.strip().strip("\"'") for part in
                 re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text))


def _toml_text(value):
    """A TOML value as torque.ini text: true -> 'True', lists -> comma lists."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return ",".join(_toml_text(v) for v in value)
    return str(value)


def _flatten(table, prefix=""):
    """{'cmd': {'test': x}} -> {'cmd.test': x}: TOML's dotted keys as our dotted params."""
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix + key + "."))
        else:
            flat[prefix + key] = value
    return flat


def pyrosimple_key_hint(handler, param):
    """" (pyrosimple's name for 'startable')" when a torque.ini uses pyrosimple's key name."""
    for kind, mapping in PYROSIMPLE_JOBS.items():
        target = mapping["keys"].get(param)
        if target and HANDLER_ALIASES.get(kind, kind) == handler.__name__:
            return " (pyrosimple's name: write %s%s)" % (
                target.lstrip("!"), " with the opposite value" if target[0] == "!" else "")
    return ""


def lookup_connection(url, connections, where):
    """A [CONNECTIONS] alias ('name' or '@name') as its URL; any other URL as it is."""
    text = str(url).strip()
    name = text[1:] if text.startswith("@") else text
    if name in connections:
        target = connections[name]
        if isinstance(target, list):
            if len(target) != 1:
                raise ConfigError("%s: connection %r lists %d URLs; a job talks to one rTorrent"
                                  % (where, name, len(target)))
            target = target[0]
        return lookup_connection(target, {}, where) if str(target).strip() else text
    if text.startswith("@"):
        raise ConfigError("%s: no connection %r in [CONNECTIONS]%s" % (
            where, name, _did_you_mean(name, list(connections))))
    return text


def _from_jinja(text, where):
    """A pyrosimple (Jinja2) template in our template syntax: {% if %} -> {{if}}, {# #} out."""
    text = _JINJA_COMMENT.sub("", text)
    text = _JINJA_BLOCK.sub(lambda m: "{{%s%s}}" % (m.group(1), (" " + m.group(2).strip())
                                                     if m.group(2).strip() else ""), text)
    other = _JINJA_OTHER.search(text)
    if other:
        raise ConfigError("%s: Jinja2's '{%% %s %%}' has no equivalent in pyrotorque's "
                          "templates (they have {{expr}}, {{expr|filter}} and "
                          "{{if}}/{{elif}}/{{else}}/{{endif}})" % (where, other.group(1)))
    return text


def _watch_commands(name, value, where):
    """cmd_NAME -> {'cmd.NAME': text}, one key per line when each line is a command.

    pyrosimple splits a rendered cmd_ value into commands at whitespace; here a
    value whose lines each hold a whole command becomes one cmd.NAME.N per line,
    and one whose {% if %} blocks span lines is joined into one command.
    """
    text = _from_jinja(str(value), where)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    balanced = all(line.count("{{if") == line.count("{{endif") for line in lines)
    if len(lines) > 1 and balanced:
        return {"cmd.%s.%d" % (name, n): line for n, line in enumerate(lines, 1)}
    return {"cmd." + name: "".join(lines) if not balanced else " ".join(lines)}


def _shell_script_with_args(script):
    """A shell script whose {{...}} are moved out into positional parameters.

    ('echo "{{d.name}}"' -> 'echo "${1}"', ['{{d.name}}']): the item's values then
    reach /bin/sh as arguments, never as script text, so no name can inject a
    command.  The quoting state of the script decides the replacement.
    """
    out, words, state, i = [], [], None, 0
    while i < len(script):
        token = _TEMPLATE_TOKEN.match(script, i)
        if token:
            words.append(token.group(0))
            n = len(words)
            out.append({"'": "'\"${%d}\"'" % n, '"': "${%d}" % n}.get(state, '"${%d}"' % n))
            i = token.end()
            continue
        char = script[i]
        if char == "\\" and state != "'" and i + 1 < len(script):
            out.append(script[i:i + 2])
            i += 2
            continue
        if char in "'\"":
            state = None if state == char else (char if state is None else state)
        out.append(char)
        i += 1
    return "".join(out), words


def _pyrosimple_job(name, table, origin, line_of, connections, warn):
    """One [TORQUE.NAME] table as {param: text} and {param: origin}; raise ConfigError."""
    flat = _flatten(table)
    handler = str(flat.get("handler", ""))
    kind = handler.rpartition(":")[2].rpartition(".")[2]
    mapping = PYROSIMPLE_JOBS.get(kind, {"keys": {}, "defaults": {}})
    params, origins = {}, {}

    def where(key):
        return "%s: job.%s.%s" % (line_of(key), name, key)

    def put(param, text, key):
        params[param] = text
        origins[param] = line_of(key)

    for key, value in flat.items():
        if isinstance(value, str) and ("{%" in value or "{#" in value):
            value = _from_jinja(value, where(key))
        if kind == "QueueManager" and key in ("startable", "sort_fields") and \
                {"startable": "matcher", "sort_fields": "sort"}[key] in flat:
            continue        # pyrosimple: 'matcher' and 'sort' win over the old names
        target = mapping["keys"].get(key, key)
        if kind == "TreeWatch" and _pyrosimple_watch_key(key, value, flat, put, where, warn):
            continue
        if key == "scgi_url":
            put(key, lookup_connection(value, connections, where(key)), key)
        elif target is None:
            continue        # behaviour pyrotorque always has
        elif target.startswith("!"):
            put(target[1:], "False" if parse_bool(value, key) else "True", key)
        elif kind == "Command" and key == "args":
            put("command", value if isinstance(value, str) else
                " ".join(shlex.quote(str(v)) for v in value), key)
        elif kind == "ItemCommand" and key == "args":
            continue        # below, with 'shell'
        elif kind == "Action" and key in ("action", "args"):
            continue        # below
        elif kind == "Mover" and key == "hosts":
            hosts = value if isinstance(value, list) else [value]
            put("hosts", " ".join(lookup_connection(h, connections, where(key)) for h in hosts),
                key)
        else:
            put(target, _toml_text(value), key)

    if kind == "PathMover" and "is_complete" not in str(flat.get("matcher", "")):
        warn("%s: pyrosimple's PathMover moved incomplete items too; pyrotorque moves complete "
             "ones only (is_complete=yes is added)" % where("matcher"))
    if kind == "Action":
        put("action", _pyrosimple_action(flat.get("action"), flat.get("args") or [],
                                         where("action")), "action")
        if params["action"].splitlines()[0] == "erase":
            params["allow_erase"], origins["allow_erase"] = "True", line_of("action")
    elif kind == "ItemCommand":
        params.pop("shell", None)
        put("action", _pyrosimple_item_command(flat), "args")
    for param, text in mapping["defaults"].items():
        if param not in params:
            params[param], origins[param] = text, origin
    return params, origins


def _pyrosimple_watch_key(key, value, flat, put, where, warn):
    """A TreeWatch key of pyrosimple's that is not a plain rename: its cmd_NAME templates,
    'started' and 'remove_already_added'; False for any other key."""
    if key.startswith("cmd_"):
        for param, text in _watch_commands(key[4:], value, where(key)).items():
            put(param, text, key)
    elif key == "started":
        if "load_mode" not in flat:
            put("load_mode", "start" if parse_bool(value, key) else "normal", key)
    elif key == "remove_already_added":
        if parse_bool(value, key):
            warn("%s: not read: a metafile whose item is already in rTorrent is left alone "
                 "(never loaded twice); remove_loaded = true deletes every metafile once "
                 "its item is in rTorrent" % where(key))
    else:
        return False
    return True


def _pyrosimple_item_command(flat):
    """pyrosimple's ItemCommand 'args' (a shell script if 'shell' is true) as our
    ActionRule's ``exec=`` action."""
    args = flat.get("args") or []
    if isinstance(args, str) and parse_bool(flat.get("shell", False)):
        script, words = _shell_script_with_args(args)
        command = "/bin/sh -c %s sh %s" % (shlex.quote(script), " ".join(words))
    else:
        command = args if isinstance(args, str) else " ".join(
            shlex.quote(str(a)) if not _TEMPLATE_TOKEN.search(str(a)) else str(a)
            for a in args)
    return "exec=" + command.strip()


def _pyrosimple_action(action, args, where):
    """pyrosimple's Action 'action' (+ 'args') as our ActionRule 'action' lines."""
    if not action:
        raise ConfigError("%s: missing (the rtcontrol action to do, e.g. 'stop')" % where)
    args = [str(a) for a in (args if isinstance(args, list) else [args])]
    if action == "tag":
        words = " ".join(args).replace(",", " ").split()
        lines = ["tag=" + " ".join(w.lstrip("+") for w in words if not w.startswith("-")),
                 "untag=" + " ".join(w[1:] for w in words if w.startswith("-"))]
        return "\n".join(line for line in lines if not line.endswith("="))
    if action not in PYROSIMPLE_ACTIONS:
        raise ConfigError("%s: %r has no equivalent in pyrotorque's ActionRule (pyrosimple "
                          "actions it knows: %s, tag)%s" % (
                              where, action, ", ".join(sorted(PYROSIMPLE_ACTIONS)),
                              _did_you_mean(action, list(PYROSIMPLE_ACTIONS) + ["tag"])))
    template = PYROSIMPLE_ACTIONS[action]
    needed = template.count("{")
    if len(args) < needed:
        raise ConfigError("%s: %r needs %d value%s in 'args'" % (where, action, needed,
                                                                 "s"[:needed != 1]))
    return template.format(*args)


def load_pyrosimple_settings(path, config_dir, config_files=(), defines=()):
    """pyrosimple's config.toml as Settings with JobSpecs; raise ConfigError naming file and line."""
    if config_files:
        raise ConfigError("--config-file adds INI files to torque.ini; with pyrosimple's %s "
                          "put the jobs into it, or convert it with --convert-config" % path)
    text = _read_text(path)
    data = read_toml(path, text)
    key_lines = _toml_key_lines(text)
    settings = Settings(config_dir)
    settings.files.append(path)

    def line_of(*keys):
        for n in range(len(keys), 0, -1):       # the key, else its table, else the file
            if keys[:n] in key_lines:
                return "%s:%d" % (path, key_lines[keys[:n]])
        return path

    connections = data.get("CONNECTIONS", {})
    if not isinstance(connections, dict):
        raise ConfigError("%s: CONNECTIONS: expected a table of name = URL" % line_of("CONNECTIONS"))
    _pyrosimple_top_level(settings, data, connections, line_of)
    torque = data.get("TORQUE", {})
    for name, table in torque.items():
        if name == "_settings" and isinstance(table, dict):
            for key in table:
                fix = PYROSIMPLE_DAEMON_SETTINGS.get(key)
                settings.warnings.append("%s: TORQUE._settings.%s: %s" % (
                    line_of("TORQUE", name, key), key,
                    ("not read; " + fix) if fix else "unknown key%s" % _did_you_mean(
                        key, list(PYROSIMPLE_DAEMON_SETTINGS))))
        elif not isinstance(table, dict):       # a [TORQUE] key, e.g. queue_startable_base
            settings.torque[name] = _toml_text(table)
            settings.origins[name] = line_of("TORQUE", name)
        else:
            params, origins = _pyrosimple_job(name, table, line_of("TORQUE", name),
                                              lambda k: line_of("TORQUE", name, *k.split(".")),
                                              connections, settings.warnings.append)
            for param, text in params.items():
                settings.torque["job.%s.%s" % (name, param)] = text
                settings.origins["job.%s.%s" % (name, param)] = origins[param]
            if params.get("handler", "").rpartition(":")[2].endswith("RtorrentExporter") \
                    and "addr" not in params:
                settings.warnings.append(
                    "%s: job.%s.addr: pyrosimple's exporter listened on 0.0.0.0, pyrotorque's "
                    "on 127.0.0.1; set addr = \"0.0.0.0\" if Prometheus scrapes from another "
                    "host" % (line_of("TORQUE", name), name))

    apply_defines(settings, defines)
    _group_jobs(settings)
    _one_connection(settings)
    logging.getLogger("pyrotorque").info("Configuration read from pyrosimple's %s", path)
    return settings


def _pyrosimple_top_level(settings, data, connections, line_of):
    """config.toml's keys outside [TORQUE]: scgi_url and rtorrent_rc (with pyrosimple's
    $PYRO_SCGI_URL and $PYRO_RTORRENT_RC on top), [ALIASES]; unknown ones are warnings."""
    for key, value in data.items():
        if key in ("scgi_url", "rtorrent_rc"):
            settings.torque[key] = _expand(lookup_connection(
                value, connections, "%s: %s" % (line_of(key), key))
                if key == "scgi_url" else str(value))
            settings.origins[key] = line_of(key)
        elif key == "ALIASES" and isinstance(value, dict):
            settings.sections["announce"] = {alias: (urls if isinstance(urls, list) else [urls])
                                             for alias, urls in value.items()}
        elif key not in ("TORQUE", "CONNECTIONS", "ALIASES") and key not in PYROSIMPLE_OTHER_KEYS:
            known = ["scgi_url", "rtorrent_rc", "TORQUE", "CONNECTIONS", "ALIASES",
                     *PYROSIMPLE_OTHER_KEYS]
            settings.warnings.append("%s: %s: unknown %s, not read%s" % (
                line_of(key), key, "table" if isinstance(value, dict) else "key",
                _did_you_mean(key, known) or _did_you_mean(key.upper(), known)))
    for key in ("scgi_url", "rtorrent_rc"):     # pyrosimple's PYRO_<KEY> overrides
        value = os.environ.get("PYRO_" + key.upper())
        if value:
            settings.torque[key] = _expand(lookup_connection(value, connections,
                                                             "$PYRO_" + key.upper()))
            settings.origins[key] = "$PYRO_" + key.upper()


def apply_defines(settings, defines):
    """-D KEY=VAL on top of either configuration file."""
    for define in defines:
        key, equals, value = define.partition("=")
        if not equals or not key.strip():
            settings.errors.append(ConfigProblem("-D %s: expected KEY=VALUE" % define, ERROR))
            continue
        settings.torque[key.strip()] = _expand(value.strip())
        settings.origins[key.strip()] = "-D %s" % key.strip()


def _one_connection(settings):
    """A job's scgi_url that says the daemon's is dropped; without a top-level scgi_url,
    the one all jobs name becomes the daemon's.  Others stay: that job's own rTorrent."""
    main_url = settings.get("scgi_url")
    urls = {spec.params["scgi_url"] for spec in settings.jobs.values() if "scgi_url" in spec.params}
    if main_url is None and len(urls) == 1 and all(
            "scgi_url" in spec.params for spec in settings.jobs.values()):
        main_url = settings.torque["scgi_url"] = urls.pop()
        settings.origins["scgi_url"] = next(iter(settings.jobs.values())).origins["scgi_url"]
    for spec in settings.jobs.values():
        if "scgi_url" in spec.params and spec.params["scgi_url"] == main_url:
            del spec.params["scgi_url"], settings.torque["job.%s.scgi_url" % spec.name]


def check_job_connections(settings, out):
    """--check for the other rTorrents jobs talk to (their own scgi_url, a mirror's
    remotes, a mover's hosts): is each there, with every method they need?  Returns the
    number of problems."""
    needed, users = {}, {}      # URL -> methods wanted there / the jobs that use it
    for name, spec in settings.jobs.items():
        if not spec.value("active", parse_bool, True):
            continue
        try:
            handler = resolve_handler(spec.params.get("handler"), settings.config_dir)
        except ConfigError:
            continue            # reported with the job already
        wanted = []
        own = (spec.params.get("scgi_url") or "").strip()
        if own:
            wanted.append((own, name, getattr(handler, "RPC_METHODS", ())))
        key, methods = getattr(handler, "REMOTES", (None, ()))
        try:
            wanted += [(url, "%s (%s)" % (name, key), methods)
                       for url in _remote_urls(spec.params.get(key))] if key else []
        except ConfigError:
            pass                # reported with the job already
        for url, user, methods in wanted:
            needed.setdefault(url, set()).update(methods)
            users.setdefault(url, set()).add(user)
    problems = 0
    for url, methods in sorted(needed.items()):
        jobs = ", ".join(sorted(users[url]))
        try:
            endpoint = parse_rpc_url(url)
            endpoint.url = _shown_url(url)
            proxy = RtorrentProxy(endpoint, float(settings.get("rpc_timeout", "30")))
            info = proxy.connect()
            missing = proxy.missing_methods(methods)
        except (RtorrentError, ConfigError, ValueError) as exc:
            problems += 1
            out.write("rTorrent of %s: ERROR: %s\n" % (jobs, exc))
            continue
        out.write("rTorrent of %s at %s: version %s, session %r\n"
                  % (jobs, endpoint, info.version, info.session_name))
        if missing:
            problems += 1
            out.write("  missing methods the jobs need: %s\n" % ", ".join(missing))
    return problems


def torque_ini_text(settings):
    """The torque.ini equivalent of ``settings`` (read from a config.toml)."""
    out = ["# pyrotorque's torque.ini, converted from %s by pyrotorque --convert-config"
           % ", ".join(settings.files)]
    if settings.sections.get("announce"):
        out.append("# pyrosimple's [ALIASES], for ~/.pyroscope/config.ini:")
        out.append("# [ANNOUNCE]")
        out.extend("# %s = %s" % (alias, " ".join(urls))
                   for alias, urls in sorted(settings.sections["announce"].items()))
    out += ["", "[TORQUE]"]
    defaults = configparser.ConfigParser(strict=False, interpolation=None)
    defaults.optionxform = str
    defaults.read_string(DEFAULT_CONFIG)
    for key in sorted(settings.torque, key=lambda k: (k.startswith("job."), k.split(".")[:2])):
        out.append("%s = %s" % (key, _ini_value(settings.torque[key])))
    for name in sorted(settings.jobs):      # a job named like a built-in one is not off
        if "active" not in settings.jobs[name].params:
            out.append("job.%s.active = True" % name)
    for key, value in defaults.items("TORQUE"):     # built-in jobs it does not have stay off
        name = key.split(".")[1] if key.startswith("job.") else None
        if key.endswith(".active") and name not in settings.jobs and parse_bool(value):
            out.append("job.%s.active = False" % name)
    return "\n".join(out) + "\n"


def convert_config(path, config_dir, defines=(), out=None, log=None):
    """--convert-config: write the torque.ini equivalent of a config.toml; the exit code."""
    path = os.path.expanduser(path or os.environ.get("PYRO_CONF", "").strip() or PYROSIMPLE_CONFIG)
    if not os.path.exists(path):
        raise ConfigError("%s: no such file (give the config.toml to convert: "
                          "--convert-config FILE)" % path)
    settings = load_pyrosimple_settings(path, config_dir, (), defines)
    for warning in settings.warnings:
        (log or logging.getLogger("pyrotorque")).warning("%s", warning)
    (out or sys.stdout).write(torque_ini_text(settings))
    return EX_OK


def _ini_value(text):
    """A value as configparser gives it back: '%' doubled, lines after the first indented."""
    lines = [line for line in str(text).replace("%", "%%").splitlines() if line.strip()]
    return "\n    ".join(lines)


###############################################################################
# Metrics and HTTP ############################################################
###############################################################################
#
# The Prometheus text format 0.0.4, and a small HTTP server that lives in the
# main loop's selector: no threads.  Every connection is non-blocking and has a
# deadline, the request is read up to a size limit and parsed by
# http.server's own parser (fed from memory), the answer is written as the
# socket takes it.  So a slow, stuck or malicious client costs a file
# descriptor for a few seconds, never the loop.
#
# Jobs that want their numbers exported offer a ``metrics()`` method that returns
# samples ``(name, type, help, labels, value)``: ``name`` without the
# ``pyrotorque_`` prefix (a counter's ends in ``_total``), ``type`` 'counter' or
# 'gauge', ``labels`` a dict (the exporter adds ``job_name``: not ``job``, which is
# Prometheus' own label), ``value`` a number.

#: The Content-Type of the text format 0.0.4, as Prometheus expects it.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_METRIC_TYPES = ("counter", "gauge", "summary", "histogram", "untyped")
_SUFFIXES = {"summary": ("", "_sum", "_count"), "histogram": ("_bucket", "_sum", "_count")}


def format_metric_value(value):
    """A sample value as Go's ParseFloat reads it: integers exactly, floats shortest
    (``repr``), and ``+Inf``, ``-Inf``, ``NaN`` for the special values."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return "%d" % value
    return repr(value)


def escape_label_value(text):
    """Backslash, double quote and newline are escaped in label values."""
    return str(text).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text):
    """Backslash and newline are escaped in HELP text."""
    return str(text).replace("\\", "\\\\").replace("\n", "\\n")


def label_text(labels):
    """``{a="1",b="2"}`` with the names sorted, or '' for no labels."""
    if not labels:
        return ""
    for name in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError("bad label name %r" % name)
    return "{%s}" % ",".join('%s="%s"' % (name, escape_label_value(labels[name]))
                             for name in sorted(labels))


class MetricFamily:
    """One metric family: name, type, help text and samples, rendered contiguously.

    ``add(value, labels)`` appends a sample; ``suffix`` is for the ``_sum`` and
    ``_count`` samples of a summary.  The same labels twice raise ValueError.
    """

    __slots__ = ("name", "type", "help", "samples", "_seen")

    def __init__(self, name, type, help):  # noqa: A002
        if not _METRIC_NAME.match(name):
            raise ValueError("bad metric name %r" % name)
        if type not in _METRIC_TYPES:
            raise ValueError("bad metric type %r for %s" % (type, name))
        if type == "counter" and not name.endswith("_total"):
            raise ValueError("counter %s must end in _total" % name)
        if type != "counter" and name.endswith("_total"):
            raise ValueError("only counters end in _total (%s is a %s)" % (name, type))
        self.name, self.type, self.help = name, type, help
        self.samples = []
        self._seen = set()

    def add(self, value, labels=None, suffix=""):
        return self.add_raw(value, label_text(labels), suffix)

    def add_raw(self, value, labels_text, suffix=""):
        """Add a sample whose labels are already rendered by ``label_text``."""
        if suffix not in _SUFFIXES.get(self.type, ("",)):
            raise ValueError("a %s has no %r samples" % (self.type, suffix))
        key = (suffix, labels_text)
        if key in self._seen:
            raise ValueError("duplicate sample %s%s%s" % (self.name, suffix, labels_text))
        self._seen.add(key)
        self.samples.append("%s%s%s %s\n" % (self.name, suffix, labels_text,
                                             format_metric_value(value)))

    def __len__(self):
        return len(self.samples)

    def render(self):
        return "# HELP %s %s\n# TYPE %s %s\n%s" % (self.name, escape_help(self.help), self.name,
                                                   self.type, "".join(self.samples))


def render_metrics(families):
    """The text exposition of ``families`` (empty ones left out); names must be unique."""
    seen, parts = set(), []
    for family in families:
        if not family.samples:
            continue
        if family.name in seen:
            raise ValueError("metric family %s rendered twice" % family.name)
        seen.add(family.name)
        parts.append(family.render())
    return "".join(parts)


class _Families(dict):
    """Families by name, made on first use, in order of creation."""

    def get_family(self, name, type, help):  # noqa: A002
        family = self.get(name)
        if family is None:
            family = self[name] = MetricFamily(name, type, help)
        elif family.type != type:
            raise ValueError("%s is a %s, not a %s" % (name, family.type, type))
        return family


# The HTTP server -------------------------------------------------------------

#: HTTP methods that exist but are not served here (405 with Allow); others get 501.
_KNOWN_METHODS = frozenset("POST PUT DELETE PATCH OPTIONS TRACE CONNECT".split())

#: Seconds a closed connection may still deliver what the client sent (lingering close).
_LINGER_SECONDS = 2.0

_INDEX_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pyrotorque exporter</title></head>
<body><h1>pyrotorque %s</h1><p><a href="/metrics">Metrics</a>%s</p></body></html>
"""


def job_pages(daemon):
    """{path: (title, page function)} of the pages the running jobs offer through an
    ``http_pages()`` method (StatsArchiver's /graphs); the exporter serves them too."""
    pages = {}
    for sj in list(getattr(daemon, "jobs", {}).values()):
        offer = getattr(sj.job, "http_pages", None)
        if callable(offer):
            for path, entry in offer().items():
                pages.setdefault(path, entry)
    return pages


def job_page(daemon, path, gzip_ok):
    """The answer of the job page at ``path`` or above it, None (404) if there is none."""
    for prefix, (_, function) in job_pages(daemon).items():
        if path == prefix or path.startswith(prefix + "/"):
            return function(path, gzip_ok)
    return None


def index_page(daemon):
    """The exporter's / page: a link to /metrics and to each page the jobs offer."""
    links = "".join(' | <a href="%s">%s</a>' % (html.escape(path), html.escape(title))
                    for path, (title, _) in sorted(job_pages(daemon).items()))
    return (_INDEX_PAGE % (__version__, links)).encode("utf-8")


# Over 60 lines only because it holds a class statement (a dozen short methods): the class
# derives from http.server's, so it is made when the first request needs it.
def _request_class():
    """The HTTP request parser (a class), made when the first request comes: a daemon
    that serves nothing never imports http.server."""
    if not _REQUEST_CLASS:
        class _Request(http.server.BaseHTTPRequestHandler):
            """http.server's request parser, fed from memory; writes its answer to ``wfile``.

            Never instantiated through ``__init__`` (that would read a socket): see ``parse()``.
            """

            protocol_version = "HTTP/1.1"
            default_request_version = "HTTP/1.0"      # so that errors about garbage get a status line
            server_version = "pyrotorque/" + __version__
            sys_version = ""

            @classmethod
            def parse(cls, data, peer, log):
                request = cls.__new__(cls)
                request.rfile, request.wfile = io.BytesIO(data), io.BytesIO()
                request.client_address, request.log = peer, log
                request.requestline = request.command = ""
                request.request_version = "HTTP/1.0"
                request.close_connection = True
                request.raw_requestline = request.rfile.readline(65537)
                request.ok = len(request.raw_requestline) <= 65536 and request.parse_request()
                if len(request.raw_requestline) > 65536:
                    request.send_error(414)
                elif not request.ok and not request.wfile.getvalue():
                    request.send_error(400)         # an empty request line
                return request

            @classmethod
            def failed(cls, code, peer, log):
                """A request that could not be read: only the error answer."""
                request = cls.parse(b"GET / HTTP/1.0\r\n\r\n", peer, log)
                request.wfile, request.ok = io.BytesIO(), False
                request.send_error(code)
                return request

            def handle_expect_100(self):
                return True         # no body is ever read: nothing to continue to

            def send_error(self, code, message=None, explain=None, headers=()):
                short = self.responses.get(code, ("Error", ""))[0]
                body = ("%d %s\n" % (code, message or short)).encode("utf-8", "replace")
                self.reply(code, body, "text/plain; charset=utf-8", headers)

            def reply(self, code, body, content_type, headers=()):
                # To a request that says "HTTP/0.9" http.server answers without status
                # line and headers, which no client reads right (a real 0.9 request has
                # no version word, and gets an HTTP/1.0 answer).
                self.request_version = "HTTP/1.0" if self.request_version == "HTTP/0.9" \
                    else self.request_version
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                    self.wfile.write(body)

            def log_message(self, format, *args):  # noqa: A002
                self.log.debug("HTTP %s %s", self.address_string(), format % args)

            def version_string(self):
                return self.server_version

            def address_string(self):
                return str(self.client_address[0]) if self.client_address else "-"

        _REQUEST_CLASS.append(_Request)
    return _REQUEST_CLASS[0]


_REQUEST_CLASS = []


class _Listener:
    """A listening socket, shared while a reload hands it from one server to the next.

    The newest user accepts; when the last one lets go, the socket is closed.
    """

    def __init__(self, sock, daemon, where):
        self.sock, self.daemon, self.where = sock, daemon, where
        self.users = []
        self.paused = None          # the timer that resumes accepting after EMFILE

    @property
    def address(self):
        return self.sock.getsockname()[:2]

    def attach(self, server):
        self.users.append(server)
        if self.paused is None:
            self.daemon.watch(self.sock, selectors.EVENT_READ, self._accept)

    def detach(self, server):
        if server in self.users:
            self.users.remove(server)
        if not self.users:
            if self.paused is not None:
                self.daemon.cancel(self.paused)
                self.paused = None
            self.daemon.unwatch(self.sock)
            self.sock.close()

    def _accept(self):
        server = self.users[-1]
        for _ in range(64):     # a burst is accepted at once, but the loop keeps turning
            try:
                sock, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:      # EMFILE and the like: pause, or the loop would spin
                server.log.warning("Cannot accept connections on %s (%s); pausing for a second",
                                   self.where, exc.strerror or exc)
                self.daemon.unwatch(self.sock)
                self.paused = self.daemon.call_later(1.0, self._resume)
                return
            server.accepted(sock, peer)

    def _resume(self):
        self.paused = None
        if self.users:
            self.daemon.watch(self.sock, selectors.EVENT_READ, self._accept)


class MetricsServer:
    """Serves ``/metrics`` (the pages ``page()`` returns) from the daemon's selector.

    ``timeout`` bounds each connection's whole life (TLS handshake, request,
    answer); ``max_request`` the bytes of the request head; at ``max_connections``
    the oldest connection that has not sent its request yet is dropped to make room.
    """

    def __init__(self, daemon, page, log, timeout=10.0, max_request=8192, max_connections=16,
                 auth=None, tls=None):
        self.daemon, self.page, self.log = daemon, page, log
        self.timeout, self.max_request, self.max_connections = timeout, max_request, max_connections
        self.auth = auth            # (user, password) or None
        self.tls = tls              # ssl.SSLContext or None
        self.listener = None
        self.connections = []       # oldest first
        self.requests = {}          # status code -> count
        self.closed = False

    # -- the listening socket ------------------------------------------------------

    def listen(self, addr, port):
        """Bind and listen; raise OSError with a readable message if that fails."""
        infos = socket.getaddrinfo(addr or None, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and not addr:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(sockaddr)
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.use(_Listener(sock, self.daemon, "%s:%s" % (addr, port)))

    def use(self, listener):
        self.listener = listener
        listener.attach(self)

    def take_over_or_listen(self, job, addr, port):
        """Serve ``job`` on addr:port: on the socket of the running job of its class that
        listens there (a reload builds the new jobs before it closes the old ones, so the
        port is never given up), else on a new one; ConfigError('port: ...') if that
        fails.  Returns the job taken over from, or None."""
        other = self._listening_job(job, addr, port)
        if other is not None:
            self.use(other.server.listener)
            job.log.info("Taking over %s from the job being replaced", self.listener.where)
            return other
        try:
            self.listen(addr, port)
        except OSError as exc:
            raise ConfigError("port: cannot listen on %s:%s (%s)"
                              % (addr, port, exc.strerror or exc)) from None
        return None

    @staticmethod
    def _listening_job(job, addr, port):
        """The other job of ``job``'s class whose server listens on addr:port (as the
        system resolves the address, so 'localhost' finds '127.0.0.1'), or None.  Port 0
        (any free port) is never taken over."""
        if not port:
            return None
        try:
            wanted = socket.getaddrinfo(addr or None, port, 0, socket.SOCK_STREAM, 0,
                                        socket.AI_PASSIVE)[0][4][:2]
        except OSError:
            return None
        for sj in list(getattr(job.daemon, "jobs", {}).values()):
            other = getattr(sj, "job", None)
            server = getattr(other, "server", None)
            if (isinstance(other, type(job)) and other is not job and server is not None
                    and server.listener is not None and server.address == wanted):
                return other
        return None

    @property
    def address(self):
        return self.listener.address if self.listener else None

    def close(self):
        self.closed = True
        if self.listener is not None:
            self.listener.detach(self)
            self.listener = None
        for conn in list(self.connections):
            conn.close()

    # -- connections ---------------------------------------------------------------

    def accepted(self, sock, peer):
        if self.closed:
            sock.close()
            return
        if len(self.connections) >= self.max_connections:
            waiting = [c for c in self.connections if c.state in ("handshake", "reading")]
            victim = waiting[0] if waiting else None
            if victim is None:
                self.log.debug("Refusing %s: %d connections busy", peer[0], len(self.connections))
                self.count(503)
                try:        # one try, never waiting
                    sock.setblocking(False)
                    if self.tls is None:
                        sock.send(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                                  b"Retry-After: 1\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass
                sock.close()
                return
            self.log.debug("Dropping %s, the oldest waiting connection, to make room", victim.peer)
            victim.close()
        sock.setblocking(False)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:
                self.log.debug("TLS setup for %s failed: %s", peer[0], exc)
                sock.close()
                return
        conn = _HttpClient(self, sock, peer)
        self.connections.append(conn)
        conn.start()

    def count(self, code):
        self.requests[code] = self.requests.get(code, 0) + 1

    def respond(self, request):
        """The answer to a parsed request, as bytes (status line, headers, body)."""
        if request.ok:
            self.route(request)
        data = request.wfile.getvalue()
        code = int(data[9:12]) if data.startswith(b"HTTP/") else 0
        self.count(code)
        return data

    def route(self, request):
        if request.command not in ("GET", "HEAD"):
            if request.command in _KNOWN_METHODS:
                request.send_error(405, headers=[("Allow", "GET, HEAD")])
            else:
                request.send_error(501)
            return
        if self.auth and not self.authorized(request.headers.get("Authorization", "")):
            request.send_error(401, headers=[
                ("WWW-Authenticate", 'Basic realm="pyrotorque", charset="UTF-8"')])
            return
        length = request.headers.get("Content-Length", "0").strip() or "0"
        if not length.isdigit():
            request.send_error(400, "Bad Content-Length")
            return
        if int(length) > self.max_request:
            request.send_error(413)
            return
        path = request.path.split("?", 1)[0]
        gzip_ok = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
        answer = self.page(path, gzip_ok)
        if answer is None:
            request.send_error(404)
            return
        code, body, content_type, headers = answer
        request.reply(code, body, content_type, headers)

    def authorized(self, header):
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, colon, password = base64.b64decode(token.strip(), validate=True).partition(b":")
        except ValueError:
            return False
        want_user, want_password = (s.encode("utf-8") for s in self.auth)
        # Both compared in full, so that timing tells nothing about which was wrong.
        return bool(colon) & hmac.compare_digest(user, want_user) \
            & hmac.compare_digest(password, want_password)


def _accepts_gzip(header):
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() == "gzip":
            quality = params.strip()
            return not re.fullmatch(r"q\s*=\s*0(\.0*)?", quality)
    return False


class _HttpClient:
    """One client's connection to the HTTP server: TLS handshake, reading the request head,
    writing, lingering close."""

    def __init__(self, server, sock, peer):
        self.server, self.sock, self.peer = server, sock, peer[0] if peer else "?"
        self.daemon = server.daemon
        self.state = "handshake" if isinstance(sock, ssl.SSLSocket) else "reading"
        self.buffer = bytearray()
        self.out = memoryview(b"")
        self.timer = None

    def start(self):
        self.timer = self.daemon.call_later(self.server.timeout, self.expire)
        self.step()

    def wait(self, events):
        self.daemon.watch(self.sock, events, self.step)

    def step(self):
        try:
            if self.state == "handshake":
                self.handshake()
            if self.state == "reading":
                self.read()
            if self.state == "writing":
                self.write()
            if self.state == "lingering":
                self.linger()
        except ssl.SSLWantReadError:
            self.wait(selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self.wait(selectors.EVENT_WRITE)
        except (BlockingIOError, InterruptedError):
            self.wait(selectors.EVENT_WRITE if self.state == "writing" else selectors.EVENT_READ)
        except OSError as exc:      # a reset, a broken pipe, a failed TLS handshake
            self.server.log.debug("Connection from %s ended: %s", self.peer, exc)
            self.close()
        except Exception:           # a bug here must not leave the socket in the selector
            self.server.log.exception("Error serving %s", self.peer)
            self.close()

    def handshake(self):
        self.sock.do_handshake()
        self.state = "reading"

    def read(self):
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:           # the client gave up
                self.close()
                return
            self.buffer += chunk
            head = self.request_head()
            if head is not None:
                self.answer(_request_class().parse(head, (self.peer,), self.server.log))
                return
            if len(self.buffer) > self.server.max_request:
                first = self.buffer.find(b"\n")
                code = 431 if 0 <= first <= self.server.max_request else 414
                self.answer(_request_class().failed(code, (self.peer,), self.server.log))
                return

    def request_head(self):
        """The complete request head in the buffer, or None while it is incomplete."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            end = self.buffer.find(b"\n\n")
            end = end + 2 if end >= 0 else end
        else:
            end += 4
        if 0 <= end <= self.server.max_request:
            return bytes(self.buffer[:end])
        first = self.buffer.find(b"\n")
        if 0 <= first <= self.server.max_request:
            words = self.buffer[:first].split()
            if len(words) != 3 or not words[2].startswith(b"HTTP/"):
                return bytes(self.buffer[:first + 1]) + b"\r\n"     # let the parser say 400
        return None

    def answer(self, request):
        self.out = memoryview(self.server.respond(request))
        self.state = "writing"

    def write(self):
        while self.out:
            sent = self.sock.send(self.out[:262144])
            self.out = self.out[sent:]
        self.state = "lingering"
        if isinstance(self.sock, ssl.SSLSocket):
            self.close()
            return
        # Close only after the client had its chance to read: closing with unread
        # request bytes would reset the connection and lose the answer.
        self.sock.shutdown(socket.SHUT_WR)
        self.daemon.cancel(self.timer)
        self.timer = self.daemon.call_later(_LINGER_SECONDS, self.close)
        self.wait(selectors.EVENT_READ)

    def linger(self):
        while self.sock.recv(65536):
            pass
        self.close()

    def expire(self):
        self.timer = None
        if self.state in ("handshake", "reading"):
            self.server.log.debug("Connection from %s timed out (%s)", self.peer, self.state)
            if self.state == "reading" and not isinstance(self.sock, ssl.SSLSocket):
                self.server.count(408)
                try:        # one try, never waiting: it is only a courtesy
                    self.sock.send(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                   b"Content-Length: 0\r\n\r\n")
                except OSError:
                    pass
        self.close()

    def close(self):
        if self.state == "closed":
            return
        self.state = "closed"
        if self.timer is not None:
            self.daemon.cancel(self.timer)
            self.timer = None
        self.daemon.unwatch(self.sock)
        try:
            self.sock.close()
        except OSError:
            pass
        if self in self.server.connections:
            self.server.connections.remove(self)


###############################################################################
# systemd glue ################################################################
###############################################################################
#
# sd_notify(3) without libsystemd: one datagram per message to $NOTIFY_SOCKET.
# Without that variable every method does nothing, so the daemon needs no
# special case for running outside systemd.

class SystemdNotifier:
    """Tells systemd about readiness, reloads, shutdown and liveness."""

    def __init__(self, environ=None, log=None):
        environ = os.environ if environ is None else environ
        self.log = log or logging.getLogger("pyrotorque.systemd")
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):          # abstract namespace
            address = "\0" + address[1:]
        self.address = address if address[:1] in ("/", "\0") else None
        self.watchdog_interval = None
        usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        if self.address and usec.isdigit() and int(usec) > 0 \
                and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 2e6    # ping at half the timeout
        self.next_ping = 0.0
        self.last_status = None
        # Children (ExecCommand, a user's job) must not speak for us.
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            environ.pop(name, None)

    def notify(self, *fields):
        """Send 'KEY=VALUE' lines as one datagram; failures are only logged."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode("utf-8"), self.address)
            return True
        except OSError as exc:
            self.log.debug("sd_notify to %r failed: %s", self.address, exc)
            return False

    def ready(self, status=None):
        self.notify("READY=1", *self._status_field(status))

    def reloading(self):
        usec = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        self.notify("RELOADING=1", "MONOTONIC_USEC=%d" % usec)

    def stopping(self):
        self.notify("STOPPING=1")

    def status(self, text):
        """STATUS=, sent only when it changed."""
        if text != self.last_status:
            self.notify(*self._status_field(text))

    def _status_field(self, text):
        if text is None:
            return []
        self.last_status = text
        return ["STATUS=" + text.replace("\n", " ")]

    def watchdog_timeout(self):
        """Seconds until the next ping is due (None without a watchdog)."""
        if self.watchdog_interval is None:
            return None
        return max(0.0, self.next_ping - time.monotonic())

    def ping(self):
        """WATCHDOG=1 if due; called from the main loop so a stuck loop stops the pings."""
        if self.watchdog_interval is not None and time.monotonic() >= self.next_ping:
            self.notify("WATCHDOG=1")
            self.next_ping = time.monotonic() + self.watchdog_interval


###############################################################################
# Event loop ##################################################################
###############################################################################
#
# One thread, one selector, a heap of timers: the daemon's main loop is this plus
# schedules and signals.  --run-once, whose daemon never turns, gives a job that
# must wait on a child or a socket a private EventLoop instead.

class EventLoop:
    """Readers, writers and timers on one selector, called from one thread."""

    def __init__(self, log=None):
        self.log = log or logging.getLogger("pyrotorque")
        self.selector = selectors.DefaultSelector()
        self._timers = []           # heap of [monotonic due, seq, callback]
        self._timer_seq = 0
        self.late_max = 0.0         # seconds a timer or job fired behind its time, at most,
                                    # since the exporter last looked: the loop's lag

    def watch(self, fileobj, events, callback):
        """Call ``callback()`` when ``fileobj`` is ready for ``events`` (selectors.EVENT_READ
        and/or EVENT_WRITE); watching it again changes the events and the callback."""
        try:
            self.selector.modify(fileobj, events, callback)
        except KeyError:
            self.selector.register(fileobj, events, callback)

    def unwatch(self, fileobj):
        try:
            self.selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass

    def add_reader(self, fileobj, callback):
        """Call ``callback()`` whenever ``fileobj`` (anything with fileno()) is readable."""
        self.watch(fileobj, selectors.EVENT_READ, callback)

    def remove_reader(self, fileobj):
        self.unwatch(fileobj)

    def call_later(self, delay, callback):
        """Call ``callback()`` from the loop after ``delay`` seconds; return a handle for cancel()."""
        self._timer_seq += 1
        timer = [time.monotonic() + max(0.0, delay), self._timer_seq, callback]
        heapq.heappush(self._timers, timer)
        return timer

    @staticmethod
    def cancel(timer):
        timer[2] = None         # left in the heap, skipped when it comes up

    def run_timers(self):
        """Call the timers that are due.  A timer that a callback adds runs at the next
        turn, after select(): work split into call_later(0) steps never starves the loop."""
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            due, _, callback = heapq.heappop(self._timers)
            if callback is not None:
                self.late_max = max(self.late_max, now - due)
                try:
                    callback()
                except Exception:       # a broken callback must not take the loop down
                    self.log.exception("Error in a timer callback %r", callback)

    def timer_timeout(self, longest):
        """Seconds select() may sleep: ``longest`` at most, less if a timer is due sooner."""
        while self._timers and self._timers[0][2] is None:
            heapq.heappop(self._timers)         # cancelled: they need not wake anybody
        if self._timers:
            return max(0.0, min(longest, self._timers[0][0] - time.monotonic()))
        return max(0.0, longest)

    def poll_once(self, timeout):
        """Wait up to ``timeout`` seconds in select() and call the ready files' callbacks."""
        for key, _ in self.selector.select(timeout):
            try:
                key.data()
            except Exception:       # a broken reader must not take the loop down
                self.log.exception("Error in the handler of %r", key.fileobj)

    def run_until(self, done):
        """Turn until ``done()`` is true (the private loop of --run-once)."""
        while not done():
            self.run_timers()
            if done():
                break
            self.poll_once(self.timer_timeout(0.5))

    def close(self):
        self.selector.close()


###############################################################################
# Jobs ########################################################################
###############################################################################
#
# A job is a class with a constructor taking one config object and a run()
# method, exactly as in pyrocore, so existing custom jobs keep working.  The
# config is a Bunch of the job's typed 'job.NAME.*' values plus job_name,
# dry_run, active, schedule, handler, and two additions: 'proxy' (the shared
# RtorrentProxy) and 'daemon' (the main loop, for jobs that watch files or
# sockets).  run() is called on the job's schedule, never twice at once.

#: Built-in jobs by class name; the handler names of pyrotorque, pyrocore and
#: pyrosimple all resolve here.
BUILTIN_JOBS = {}

#: Modules whose handler names mean our built-ins.
BUILTIN_MODULES = ("pyrotorque", "pyrocore.", "pyrosimple.")

#: pyrocore's and pyrosimple's job classes whose built-in has another name (the
#: rest have the same one); their keys are translated in "pyrosimple configuration".
HANDLER_ALIASES = {
    "Command": "ExecCommand",           # pyrosimple.job.action:Command
    "ItemCommand": "ActionRule",        # pyrosimple.job.action:ItemCommand (an 'exec' action)
    "Action": "ActionRule",             # pyrosimple.job.action:Action
    "PathMover": "CompletionHandler",   # pyrosimple.job.move_path:PathMover
    "Mover": "TorrentMover",            # pyrosimple.job.move_torrent:Mover
}


def builtin_job(cls):
    """Register a class as a built-in job (a class decorator)."""
    BUILTIN_JOBS[cls.__name__] = cls
    return cls


def job_path(config, text, default):
    """A file or folder of a job: ``text`` from its config (~ expanded, made absolute),
    else ``default`` below the config dir (the daemon's; without one $PYRO_CONFIG_DIR,
    else ~/.pyroscope), e.g. 'run/completion-NAME.json'."""
    text = str(text or "").strip()
    if text:
        return os.path.abspath(os.path.expanduser(text))
    config_dir = getattr(config.get("settings"), "config_dir", None) \
        or getattr(getattr(config.get("daemon"), "settings", None), "config_dir", None) \
        or os.path.expanduser(os.environ.get("PYRO_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    return os.path.join(config_dir, default)


class Job:
    """The base of the built-in jobs, and a convenient one for your own.

    Subclasses declare their parameters in PARAMS (name -> (converter, default,
    help)), which types and checks them and warns about unknown keys, families of
    free-form keys in PARAM_PREFIXES (e.g. 'cmd.' for 'cmd.NAME', passed as text),
    and the rTorrent methods they need in RPC_METHODS, which ``--check`` verifies.
    A job that keeps something current (the queue, the exporter's figures) sets
    RUN_AT_START: it runs once when it starts, then on its schedule.
    """

    PARAMS = {}
    PARAM_PREFIXES = ()
    RPC_METHODS = ()
    RUN_AT_START = False

    def __init__(self, config):
        self.config = config
        self.name = config.job_name
        self.log = logging.getLogger("pyrotorque.job." + self.name)
        if config.get("log_level"):
            self.log.setLevel(config.log_level)
        self.proxy = config.get("proxy")
        self.daemon = config.get("daemon")
        self.dry_run = config.get("dry_run", False)
        self.config_problem = config.get("config_problem") or (
            lambda text, kind=IGNORED: self.log.warning("%s", text))

    def run(self):
        raise NotImplementedError

    def close(self):
        """Give back what the job holds (watches, sockets); called on stop and reload."""


@builtin_job
class EngineStats(Job):
    """Logs rTorrent's uptime, item count and what our calls to it cost."""

    RPC_METHODS = ("system.multicall", "system.time", "system.pid", "view.size", "session.name")

    def run(self):
        info = self.proxy.connect()
        now, pid, count = self.proxy.multicall([
            ("system.time",), ("system.pid",), ("view.size", "", "default")])
        if pid != info.pid:     # restarted between two of our calls without us seeing it down
            self.log.info("rTorrent was restarted (pid %s, was %s)", pid, info.pid)
            info = self.proxy.connect(force=True)
        uptime = human_duration(now - info.startup) if info.startup else "?"
        self.log.info("Stats for %s - up %s, %d torrents, %s",
                      info.session_name, uptime, count, self.proxy.stats)


def _loop_turns(daemon):
    """Does the main loop turn (the daemon), or must work finish inside run() (--run-once)?"""
    return daemon is not None and daemon.serving


class SteppedJob(Job):
    """A job that works through things one at a time, each in many small steps.

    Why: the daemon is one thread, and copying a big item or hashing it takes minutes.
    So run() only picks the things (into ``_pending``) and calls ``_next()``; the work
    on one thing is a generator whose steps run from main-loop timers, each returning
    at once, so the other jobs, signals and /metrics go on in between.  Without a
    turning loop (--run-once) the steps run right inside run().

    A subclass gives ``_prepare(thing)`` (the work to do, or None: that thing waits),
    ``_would(work)`` (what --dry-run says instead), ``_steps(work)`` (a generator: each
    ``yield`` is the seconds until the next step), ``_work_done(work)`` and
    ``_work_failed(work, error)``; its close() calls ``_stop_work()``.
    """

    #: What one piece of work is called in a log line.
    WORK = "piece of work"

    def __init__(self, config):
        super().__init__(config)
        self._pending = collections.deque()     # things still to work on in this run
        self._gen = None            # the steps of the work going on
        self._work = None           # what they work on
        self._timer = None          # the timer of the next step
        self._closed = False

    def _chosen_enough(self, chosen):
        """Has run() chosen ``max_items`` things (a setting of every such job) already?"""
        if self.max_items and len(chosen) >= self.max_items:
            self.log.debug("max_items %d reached; more items wait for the next run",
                           self.max_items)
            return True
        return False

    def _next(self):
        """Start the work on the next pending thing (all of them, one by one, outside the
        daemon)."""
        while self._pending and not self._closed and self._gen is None:
            work = self._prepare(self._pending.popleft())
            if work is None:
                continue
            if self.dry_run:
                self._would(work)
                continue
            self._begin(work)

    def _begin(self, work):
        self._work = work
        self._gen = self._steps(work)
        if _loop_turns(self.daemon):
            self._timer = self.daemon.call_later(0, self._drive)
            return
        try:                    # --run-once, or a job without the loop: work right here
            while self._gen is not None:
                delay = self._drive()
                if delay:
                    time.sleep(delay)
        finally:
            self._gen = None

    def _drive(self):
        """One step of the work going on; schedules the next one in the daemon."""
        self._timer = None
        gen, work = self._gen, self._work
        if gen is None:
            return None
        try:
            delay = next(gen)
        except StopIteration:
            self._gen = self._work = None
            self._work_done(work)
        except Exception as exc:
            self._gen = self._work = None
            self._work_failed(work, exc)
        else:
            if _loop_turns(self.daemon) and not self._closed:
                self._timer = self.daemon.call_later(delay, self._drive)
            return delay
        self._start_next()
        return None

    def _start_next(self):
        """From a loop callback, when one piece of work is done: start the next one.  An
        error drops what was pending, since nothing calls back into a loop callback; the
        job's next run starts afresh."""
        if not _loop_turns(self.daemon):
            return
        try:
            self._next()
        except RtorrentUnavailable as exc:
            self._pending.clear()
            self.log.warning("%s", exc)
        except Exception:       # noqa: BLE001 - logged with its traceback
            self._pending.clear()
            self.log.exception("While starting the next %s", self.WORK)

    def _stop_work(self):
        """For close(): start nothing more and stop the steps; the work they were doing
        (to settle), or None."""
        self._closed = True
        self._pending.clear()
        if self._timer is not None and self.daemon is not None:
            self.daemon.cancel(self._timer)
            self._timer = None
        gen, work = self._gen, self._work
        self._gen = self._work = None
        if gen is not None:
            gen.close()         # closes the files it reads or writes
        return work if gen is not None else None



@builtin_job
class QueueManager(Job):
    """Starts stopped items in a controlled way: the job pyrotorque is named after.

    Each run fetches the view once, counts the items that are downloading, and
    starts the best startable ones (in ``sort_fields`` order) while the limits
    allow.  It never stops anything.  Every decision is logged at debug level.
    """

    PARAMS = {
        "startable": (str, "is_ignored=no done=0 message=/^$|ghost/ prio>0",
                      "which items may be started (queue_startable_base is always added)"),
        "downloading": (str, "", "which items count as downloading "
                        "(is_active=1 is_complete=0 is always added)"),
        "downloading_min": (non_negative(int), 1, "start items while fewer download"),
        "downloading_max": (non_negative(int), 9, "never start one while this many download"),
        "start_at_once": (non_negative(int), 1, "at most this many starts per run"),
        "intermission": (non_negative(float), 0.0, "seconds between two batches of starts"),
        "sort_fields": (str, "-prio, loaded, name", "order in which items are started"),
        "view": (str, "main", "the rTorrent view the queue looks at"),
        "downloading_traffic_max": (byte_size, 0, "no start while the downloading items "
                                    "receive more bytes/s than this (0: off)"),
        "diskspace_min": (byte_size, 0, "never start an item that would leave less free "
                          "space than this on its filesystem (0: off)"),
    }
    RPC_METHODS = ("d.multicall2", "d.multicall.filtered", "view.size", "d.open", "d.start",
                   "print", "system.listMethods")
    RUN_AT_START = True     # after a restart, items wait no longer than the start-up

    def __init__(self, config):
        super().__init__(config)
        self.items = config.get("item_source")
        base = (config.get("settings") and config.settings.get("queue_startable_base")
                or "is_open=no is_active=no is_complete=no")
        self.startable = self._condition("startable", "[ %s ] [ %s ]" % (base, config.startable))
        downloading = "is_active=1 is_complete=0"
        if config.downloading.strip():
            downloading += " [ %s ]" % config.downloading
        self.downloading = self._condition("downloading", downloading)
        try:
            self.sorter = parse_sort_fields(config.sort_fields) if config.sort_fields.strip() else None
        except ConfigError as exc:
            raise ConfigError("sort_fields: %s" % exc) from None
        # Two steps: the fields that decide go to rTorrent for every item that passes
        # its filter; the order (and the name) only for the few startable ones.
        self.fields = set(self.startable.fields | self.downloading.fields)
        self.order_fields = (self.sorter.fields if self.sorter else set()) | {"name", "is_open"}
        self.many_startable = False     # the last run had many: fetch it all at once
        # rTorrent sends only what may be startable or downloading (all, if unsure).
        self.relevant = AnyOf([self.startable, self.downloading])
        if config.downloading_traffic_max:
            self.fields |= {"down"}
        if config.diskspace_min:
            self.fields |= {"left", "directory"}
        self.last_start = None      # monotonic time of the last batch of starts
        self.started = 0
        self.log.info("Startable matcher for '%s' is: [ %s ]", self.name, self.startable)
        self.log.info("Downloading matcher for '%s' is: [ %s ]", self.name, self.downloading)
        self.log.debug("rTorrent pre-filters for '%s' with: %s", self.name,
                       rtorrent_filter(self.relevant) or "nothing (no condition it can check)")

    def _condition(self, key, text):
        try:
            return parse_condition(text)
        except ConditionError as exc:
            raise ConfigError("%s: %s" % (key, exc)) from None

    def _fetch(self):
        """(items, startable): the view's items with the fields the conditions need, and
        the startable ones among them with the fields of ``sort_fields`` too."""
        view = self.config.view
        fields = self.fields | self.order_fields if self.many_startable else self.fields
        items = self.items.fetch(view, fields, self.relevant)
        startable = [item for item in items if self.startable.match(item)]
        self.many_startable = len(startable) > FEW_ITEMS
        if startable and not self.order_fields <= fields:
            if self.many_startable:     # one more full fetch costs less than per-item calls
                items = self.items.fetch(view, self.fields | self.order_fields, self.relevant)
                startable = [item for item in items if self.startable.match(item)]
            else:
                self.items.complete(startable, self.order_fields)
        return items, startable

    def run(self):
        config = self.config
        self.proxy.connect()
        items, startable = self._fetch()
        if not startable:
            self.log.debug("Checked %d item(s), none startable according to [ %s ]%s",
                           self.items.view_size, self.startable,
                           "" if len(items) == self.items.view_size else
                           " (%d passed rTorrent's filter)" % len(items))
            return
        if self.sorter:
            startable = self.sorter(startable)
        if self.last_start is not None and config.intermission:
            left = self.last_start + config.intermission - time.monotonic()
            if left > 0:
                self.log.debug("Delaying start of %d item(s), due to %ds intermission with %ds left",
                               len(startable), config.intermission, math.ceil(left))
                return
        downloading = [item for item in items if self.downloading.match(item)]
        self.log.debug("%d of %d item(s) startable, %d downloading (min %d, max %d)",
                       len(startable), self.items.view_size, len(downloading),
                       config.downloading_min, config.downloading_max)
        budget = min(len(startable), max(config.start_at_once,
                                         config.downloading_min - len(downloading)))
        space = _FreeSpace(downloading) if config.diskspace_min else None
        starts = 0
        for item in startable:
            if starts >= budget:
                self.log.debug("Only starting %d item(s) in this run, %d more could be downloading",
                               starts, len(startable) - starts)
                break
            catching_up = len(downloading) < config.downloading_min
            if catching_up:
                self.log.debug("Catching up from %d to a minimum of %d downloading item(s)",
                               len(downloading), config.downloading_min)
            elif len(downloading) >= config.downloading_max:
                self.log.debug("Already downloading %d item(s) out of %d max, %d more could be "
                               "downloading", len(downloading), config.downloading_max,
                               len(startable) - starts)
                break
            elif config.downloading_traffic_max:
                traffic = sum(i["down"] or 0 for i in downloading)
                if traffic > config.downloading_traffic_max:
                    self.log.debug("Not starting more: the %d downloading item(s) receive %s/s, "
                                   "above downloading_traffic_max %s/s", len(downloading),
                                   human_size(traffic), human_size(config.downloading_traffic_max))
                    break
            if space is not None and not space.allows(item, config.diskspace_min, self.log):
                continue
            if self._start(item):
                starts += 1
                downloading.append(item)
                self.last_start = time.monotonic()
        self.log.debug("%s - %s", self.proxy.info.session_name, self.proxy.stats)

    def status_text(self):
        return "%d started" % self.started

    def _start(self, item):
        """Start one item; an rTorrent fault is logged with the item and the run goes on."""
        name, alias = item["name"], item.get("alias") or "?"
        self.log.info("%s '%s' [%s, #%s]", "WOULD start" if self.dry_run else "Starting",
                      name, alias, item.hash)
        if self.dry_run:
            return True
        try:
            if not item.get("is_open"):
                self.proxy.call("d.open", item.hash)
            self.proxy.call("d.start", item.hash)
            if not self.config.quiet:
                self.proxy.call("print", "", "QueueManager: Started '%s' {%s}" % (name, alias))
        except RtorrentFault as exc:
            self.log.warning("Could not start '%s' [#%s]: %s", name, item.hash, exc)
            return False
        self.started += 1
        self.items.invalidate()     # a shared snapshot no longer tells the truth
        return True


class _FreeSpace:
    """Free space per filesystem, less what downloading items will still write there."""

    def __init__(self, downloading):
        self.free = {}          # st_dev -> bytes free after pending downloads
        self.pending = {}       # st_dev -> bytes the downloading items still need
        for item in downloading:
            found = _filesystem(item["directory"])
            if found:
                self.pending[found[0]] = self.pending.get(found[0], 0) + (item["left"] or 0)

    def allows(self, item, minimum, log):
        found = _filesystem(item["directory"])
        if not found:
            log.debug("'%s': target %r is not visible here; diskspace_min not checked",
                      item["name"], item["directory"])
            return True
        device, free, where = found
        after = free - self.pending.get(device, 0) - (item["left"] or 0)
        if after < minimum:
            log.info("Not starting '%s' [#%s]: it needs %s, which would leave %s free on %s "
                     "(diskspace_min %s)", item["name"], item.hash, human_size(item["left"] or 0),
                     human_size(max(0, after)), where, human_size(minimum))
            return False
        self.pending[device] = self.pending.get(device, 0) + (item["left"] or 0)
        return True


def _filesystem(directory):
    """(st_dev, bytes free, existing dir) for the nearest existing ancestor, or None."""
    path = directory
    while path and not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    if not path:
        return None
    stat = os.statvfs(path)
    return os.stat(path).st_dev, stat.f_bavail * stat.f_frsize, path



@builtin_job
class ItemPoller(Job):
    """Keeps one snapshot of the items that every job reads, fetched once per run.

    Jobs ask the shared ItemSource for the fields they need; the poller fetches the
    union of them with one d.multicall2 per view, and until the snapshot is older
    than ``max_age`` the jobs are answered from it instead of calling rTorrent each.
    A job that changes items (a start, a load, a rule) drops the snapshot, so the
    next reader sees rTorrent's truth.
    """

    PARAMS = {
        "max_age": (non_negative(float), None, "seconds a snapshot serves the jobs "
                    "(default: the poller's own interval plus one second)"),
    }
    RPC_METHODS = ("d.multicall2",)
    RUNS_FIRST = True       # at a shared second, poll before the jobs that read

    def __init__(self, config):
        super().__init__(config)
        self.items = config.get("item_source")
        self.max_age = config.max_age
        if self.max_age is None:
            first = config.schedule.next_fire(datetime.datetime.now())
            second = first and config.schedule.next_fire(
                datetime.datetime.fromtimestamp(first.timestamp() + 1))
            self.max_age = (second.timestamp() - first.timestamp() + 1) if second else 0.0
        self.polls = 0

    def run(self):
        self.proxy.connect()
        self.items.snapshot_age = self.max_age
        self.items.poll()
        self.polls += 1
        self.log.debug("Polled %s", ", ".join("%s: %d item(s), %d field(s)"
                                              % (view, len(snap[0]), len(snap[1]))
                                              for view, snap in sorted(self.items.snapshots.items()))
                       or "nothing yet (no job has asked for items)")

    def status_text(self):
        return "%d polls" % self.polls

    def close(self):
        if self.items is not None:
            self.items.snapshot_age = None
            self.items.invalidate()


def resolve_handler(name, config_dir=None):
    """The job class a 'module:Class' handler name means; raise ConfigError if none."""
    module_name, colon, attr = str(name).strip().partition(":")
    if not colon or not module_name or not attr:
        raise ConfigError("%r is not a handler name (expected 'module:Class', e.g. "
                          "'pyrotorque:EngineStats')" % name)
    if module_name == "pyrotorque" or module_name.startswith(BUILTIN_MODULES[1:]):
        class_name = attr.rsplit(".", 1)[-1]
        if module_name != "pyrotorque":
            class_name = HANDLER_ALIASES.get(class_name, class_name)
        if class_name in BUILTIN_JOBS:
            return BUILTIN_JOBS[class_name]
        raise ConfigError("no built-in job %r (built-in: %s)"
                          % (class_name, ", ".join(sorted(BUILTIN_JOBS))))
    if config_dir and config_dir not in sys.path:
        sys.path.insert(0, config_dir)      # users keep their own jobs beside torque.ini
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:        # any error in a user's module is a config error to us
        raise ConfigError("bad handler name %r: %s: %s"
                          % (name, exc.__class__.__name__, exc)) from None
    if not callable(obj):
        raise ConfigError("handler %r is not a class" % name)
    return obj


def _log_level(text):
    level = logging.getLevelName(str(text).upper())
    if not isinstance(level, int):
        raise ConfigError("%r is not a log level (DEBUG, INFO, WARNING, ERROR)" % text)
    return level


def job_config(spec, handler, settings, warn=None, **extra):
    """The config Bunch a job's constructor receives; value errors name file, line and key."""
    config = Bunch(job_name=spec.name, handler=handler, settings=settings)
    known = dict(COMMON_JOB_PARAMS)
    known["log_level"] = (_log_level, None, "")
    declared = getattr(handler, "PARAMS", None)
    if declared is not None:
        known.update(declared)
    prefixes = getattr(handler, "PARAM_PREFIXES", ())     # families such as 'cmd.NAME'
    for param in spec.params:
        if param in known:
            continue
        if param.startswith(tuple(prefixes)):
            config[param] = spec.params[param]
        elif declared is None:      # a custom job without PARAMS gets pyrocore's typing
            config[param] = typed_value(spec.params[param])
        elif warn:
            warn("%s: unknown key for %s%s" % (spec.where(param), handler.__name__,
                                               pyrosimple_key_hint(handler, param)
                                               or _did_you_mean(param, list(known))))
            config[param] = typed_value(spec.params[param])
    errors = []         # every bad value of the job, not just the first
    for param, (converter, default, _) in known.items():
        try:
            config[param] = spec.value(param, converter, default)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("\n".join(errors))
    # What a job finds wrong with its settings while it is built: --check lists it,
    # the daemon logs it.
    config.config_problem = (lambda text, kind=IGNORED: warn(ConfigProblem(text, kind))) \
        if warn else None
    config.update(extra)
    return config


###############################################################################
# Tree watch ##################################################################
###############################################################################
#
# Life of a metafile: an inotify event (close-write, moved-to; a link or
# symlink's create) or a scan finds it; files not known to be complete wait
# until their size and mtime are stable ("settling"); then it is read,
# validated and hashed; if rTorrent already has the info-hash it is a
# duplicate, else it is sent with load.raw(_start) and we poll d.hash until it
# answers.  rTorrent is the source of truth: every start and every scheduled
# run scans all roots, so nothing that arrived while we or rTorrent were down
# is lost.  What was handled is remembered by (device, inode, size, mtime).
#
# Four parts, in dependency order (the job builds the other three and hands each
# the few things it asks of the job):
#   _WatchSettings  how a folder's metafiles are loaded: the job's settings, each
#                   folder's watch.ini on top, the cmd.NAME templates, and what that
#                   means for one metafile (start or not, queued, its load commands,
#                   the load.* call that carries them)
#   _TreeMemory     what was handled: the file signatures of this run, and the
#                   metafiles whose item got into rTorrent, kept in memory_file so
#                   that an erased item stays erased across restarts
#   TreeWatcher     the folder trees: inotify, scans, polls on network file systems,
#                   roots that come and go, files settling until they are ready to
#                   be read; it knows nothing of rTorrent
#   TreeWatch       the job: reads what is ready, loads it into rTorrent in batches,
#                   verifies, waits and retries while rTorrent is down, reports
#                   failing load commands, counts and logs

METAFILE_SUFFIXES = (".torrent", ".load", ".start", ".queue", ".magnet")
WATCH_INI = "watch.ini"
_DIR_MASK = (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE
             | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#: Settings a watch.ini may change, with their converters.
_WATCH_INI_KEYS = {
    "load_mode": str, "queued": parse_bool, "load_by_path": parse_bool,
    "remove_loaded": parse_bool, "move_loaded_to": str, "quiet": parse_bool,
}
#: The custom field where each load command that worked leaves its number ('1-2-3-').
LOAD_COMMAND_MARK = "tm_cmds_done"



def _file_signature(st):
    """One version of one file: (device, inode, size, mtime in ns) from its stat."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _move_into(path, folder, log):
    """Move a file into ``folder`` under a free name; return the new path, or None when
    that failed (and was logged)."""
    try:
        os.makedirs(folder, exist_ok=True)
        base = os.path.basename(path)
        target = os.path.join(folder, base)
        number = 1
        while os.path.lexists(target):
            stem, ext = os.path.splitext(base)
            target = os.path.join(folder, "%s.%d%s" % (stem, number, ext))
            number += 1
        shutil.move(path, target)       # a rename, or copy and delete across devices
        return target
    except OSError as exc:
        log.error("Cannot move %r to %s: %s", path, folder, exc)
        return None


def _abs_path(path):
    """A configured folder as an absolute path without a trailing '/' ('' stays '')."""
    path = path.strip()
    return os.path.abspath(os.path.expanduser(path)).rstrip("/") or "/" if path else ""


class _LoadSettings:
    """What decides how one folder's metafiles are loaded (job config + watch.ini files)."""

    __slots__ = ("load_mode", "queued", "load_by_path", "remove_loaded", "move_loaded_to",
                 "quiet", "commands", "source")

    def copy(self):
        new = _LoadSettings()
        for slot in self.__slots__:
            setattr(new, slot, getattr(self, slot))
        new.commands = dict(self.commands)
        return new


class _Entry:
    """A metafile on its way: where it is and what we know so far."""

    __slots__ = ("path", "root", "trusted", "sig", "meta", "settings", "flags", "start",
                 "queue", "commands", "keys", "method", "params", "deadline", "found", "waits")

    def __init__(self, path, root, trusted, found=None):
        self.path, self.root, self.trusted = path, root, trusted
        self.found = found or time.monotonic()
        self.sig = self.meta = self.settings = None
        self.waits = 0


class _WatchSettings:
    """How each folder's metafiles are loaded: the job's settings (``base``) with the
    watch.ini of every folder from the root down on top (read again when one changes),
    and what they mean for one metafile (``decide``) and for its load call (``load_call``)."""

    def __init__(self, job, config):
        self.job, self.log = job, job.log
        self._ini_cache = {}                        # dir -> (stat sig, dict or ConfigError)
        self._ini_errors = set()
        self._alias_map = None
        base = _LoadSettings()
        base.load_mode = str(config.get("load_mode") or "normal")
        base.queued = config.queued
        base.load_by_path = config.get("load_by_path", False)     # not a RemoteWatch key
        base.remove_loaded = config.remove_loaded
        base.move_loaded_to = _abs_path(config.move_loaded_to or "")
        base.quiet = config.quiet
        base.commands = {}
        base.source = "job.%s" % job.name
        for key in sorted(config):
            if key.startswith("cmd.") and key[4:]:
                value = config[key]
                text = value if isinstance(value, str) else str(value)
                if text.strip():
                    base.commands[key[4:]] = self.template(text, key)
        if base.remove_loaded and base.move_loaded_to:
            raise ConfigError("set only one of remove_loaded and move_loaded_to")
        self.base = base

    def template(self, text, key, where=None):
        """Compile one cmd.NAME value ('file:NAME' reads it from the templates folder);
        rTorrent 0.8 command names in it are renamed, with a note in the problem list."""
        job = self.job
        if text.startswith("file:"):
            name = os.path.expanduser(text[5:].strip())
            if not os.path.isabs(name):
                config_dir = getattr(getattr(job.daemon, "settings", None), "config_dir", None) \
                    or os.path.expanduser(os.environ.get("PYRO_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
                name = os.path.join(config_dir, "templates", name)
            try:
                with open(name, encoding="utf-8") as handle:
                    text = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError("%s: cannot read template file %r (%s)" % (key, name, exc)) from None
        try:
            template = WatchTemplate(text, key)
        except TemplateError as exc:
            raise ConfigError("%s: %s" % (key, exc)) from None
        renamed = template.translate_names()
        if renamed:
            job.config_problem("%s: %s; loading with the new name%s (write %s to silence this "
                               "warning)" % (where or job.where(key), ", ".join(
                                   "%r is rTorrent 0.8's name of %r" % pair for pair in renamed),
                                   "s"[:len(renamed) > 1], "them" if len(renamed) > 1 else "it"),
                               NOTE)
        return template

    # -- watch.ini ----------------------------------------------------------------------

    def changed(self, directory):
        """A watch.ini was written or removed; True when what is there now is usable."""
        self._ini_cache.pop(directory, None)
        self.log.info("Reloading watch config %s", os.path.join(directory, WATCH_INI))
        return not isinstance(self.read_ini(directory), ConfigError)

    def read_ini(self, directory):
        """The settings of ``directory``'s watch.ini: a dict, {} if none, or a ConfigError.

        A watch.ini is a few 'key = value' lines, a section header optional, so it is read
        with configparser directly: the module's _read_ini (pyrocore's files: [TORQUE]
        names, interpolation) numbers its errors by the text it is given, and the header
        added here to a file without one would put them one line off."""
        path = os.path.join(directory, WATCH_INI)
        try:
            st = os.stat(path)
        except OSError:
            self._ini_cache.pop(directory, None)
            return {}
        sig = _file_signature(st)
        cached = self._ini_cache.get(directory)
        if cached and cached[0] == sig:
            return cached[1]
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(65536)
            parser = configparser.ConfigParser(interpolation=None, strict=True,
                                               empty_lines_in_values=False)
            parser.optionxform = str
            if _nul_byte(text):
                raise ConfigError("line %s" % _nul_byte(text))
            if not re.match(r"\s*\[", text):
                text = "[watch]\n" + text
            parser.read_string(text, source=path)
            result = self._ini_values(path, parser)
        except (OSError, UnicodeDecodeError, configparser.Error, ConfigError) as exc:
            result = ConfigError("%s: %s" % (path, str(exc).splitlines()[0]))
            if (path, sig) not in self._ini_errors:
                self._ini_errors.add((path, sig))
                self.log.error("Bad watch config %s; metafiles below it wait until it is "
                               "fixed", result)
        self._ini_cache[directory] = (sig, result)
        return result

    def _ini_values(self, path, parser):
        result = {}
        prefix = "job.%s." % self.job.name
        for section in parser.sections():
            for key, value in parser.items(section):
                key = key[len(prefix):] if key.startswith(prefix) else key
                if key.startswith("cmd.") and key[4:]:
                    result[key] = self.template(value, key, "%s: %s" % (path, key)) \
                        if value.strip() else None
                elif key in _WATCH_INI_KEYS:
                    try:
                        result[key] = _WATCH_INI_KEYS[key](value)
                    except ValueError as exc:
                        raise ConfigError("%s: %s" % (key, exc)) from None
                else:
                    raise ConfigError("unknown key %r (known: %s, cmd.NAME)"
                                      % (key, ", ".join(sorted(_WATCH_INI_KEYS))))
        if "move_loaded_to" in result:
            result["move_loaded_to"] = _abs_path(result["move_loaded_to"])
        return result

    def for_path(self, path, root):
        """The load settings of a metafile's folder, or a ConfigError from a broken watch.ini."""
        settings = self.base
        directory = os.path.dirname(path)
        chain = [root]
        rel = os.path.relpath(directory, root) if directory != root else ""
        for part in (rel.split("/") if rel and rel != "." else []):
            chain.append(os.path.join(chain[-1], part))
        for folder in chain:
            values = self.read_ini(folder)
            if isinstance(values, ConfigError):
                return values
            if not values:
                continue
            if settings is self.base:
                settings = settings.copy()
            settings.source = os.path.join(folder, WATCH_INI)
            for key, value in values.items():
                if key.startswith("cmd."):
                    if value is None:
                        settings.commands.pop(key[4:], None)
                    else:
                        settings.commands[key[4:]] = value
                else:
                    setattr(settings, key, value)
            # The folder's choice of what happens after loading replaces the inherited one.
            if values.get("move_loaded_to"):
                settings.remove_loaded = False
            elif values.get("remove_loaded"):
                settings.move_loaded_to = ""
        return settings

    # -- one metafile ---------------------------------------------------------------------

    def decide(self, entry, settings):
        """Fill in what ``settings`` and the path flags mean for a read metafile: start,
        queue, and its load commands rendered (a template that fails is logged, skipped)."""
        entry.settings = settings
        rel = os.path.relpath(entry.path, entry.root)
        parts = [p for p in rel.split("/") if p]
        entry.flags = set(parts) | set(p for p in parts[-1].split(".") if p)
        start = settings.load_mode.strip().lower() in ("start", "started")
        if "start" in entry.flags:
            start = True
        elif "load" in entry.flags:
            start = False
        entry.start = start
        entry.queue = settings.queued or bool(entry.flags & {"queue", "queued"})
        commands, keys = [], []
        if settings.commands:
            namespace = self.namespace(entry)
            for name in sorted(settings.commands):
                try:
                    command = settings.commands[name].render(namespace).strip()
                except TemplateError as exc:
                    self.log.error("While expanding '%s' custom command for %s: %s", name,
                                   entry.path, exc)
                    continue
                if command:
                    commands.append(command)
                    keys.append("cmd." + name)
        entry.commands, entry.keys = commands, keys

    def namespace(self, entry):
        """The template variables for one metafile (pyrocore's, §5.4)."""
        meta = entry.meta
        if self._alias_map is None:
            sections = getattr(getattr(self.job.daemon, "settings", None), "sections", {}) or {}
            self._alias_map = build_alias_map(sections.get("announce", {}))
        alias = tracker_alias(meta.announce, self._alias_map) if meta.announce else None
        filetype = meta.filetype
        kind, details = name_trait(meta.info_name)
        traits = Bunch(details)
        traits.kind = kind
        label = "/".join(detect_traits(meta.info_name, alias, filetype.lstrip("."))).strip("/")
        directory = os.path.dirname(entry.path)
        relpath = os.path.relpath(directory, entry.root) if directory != entry.root else ""
        return {
            "pathname": os.path.abspath(entry.path), "info_hash": meta.info_hash,
            "info_name": meta.info_name, "tracker_alias": alias,
            "watch_path": frozenset(self.job.roots), "relpath": relpath,
            "flags": frozenset(entry.flags),
            "filetype": filetype, "traits": traits, "label": label, "size": meta.size,
            "announce": meta.announce, "is_magnet": meta.magnet is not None,
            "rel_path": relpath or ".",     # pyrosimple's name (a Path there: '.' at the root)
        }

    @staticmethod
    def load_call(entry):
        """The load.* method and its parameters for a decided entry."""
        settings, meta, path = entry.settings, entry.meta, entry.path
        start = entry.start and not entry.queue
        if meta.magnet is not None:
            entry.method = "load.start_verbose" if start else "load.verbose"
            entry.params = ["", meta.magnet["uri"]]
        elif settings.load_by_path and _sendable(path) == path:
            entry.method = "load.start_verbose" if start else "load.verbose"
            entry.params = ["", os.path.abspath(path)]
        else:
            entry.method = "load.raw_start_verbose" if start else "load.raw_verbose"
            entry.params = ["", meta.data]
        if not (settings.remove_loaded or settings.move_loaded_to):
            # Tied to its file as pyrocore's items were, so that rTorrent's erase hooks
            # (d.delete_tied) remove the metafile with the item.
            entry.params.append("d.tied_to_file.set=" + rtorrent_escape(os.path.abspath(path)))
        # When a load command fails, rTorrent 0.9.8 skips the commands after it, does not
        # start the item, skips event.download.inserted_new (so the item is not saved in
        # the session) and marks it hash-failed.  So each command runs inside 'catch'
        # (its text escaped once more, for catch's own parse), followed by a note of its
        # number; TreeWatch._verify_once reads the notes and reports the commands that
        # left none.
        for index, command in enumerate(entry.commands, 1):
            entry.params.append("catch=" + rtorrent_escape(
                "%s ; d.custom.set=%s,(cat,(d.custom,%s),%d,-)"
                % (command, LOAD_COMMAND_MARK, LOAD_COMMAND_MARK, index)))
        if entry.queue and not entry.start:
            entry.params.append("d.priority.set=0")


class _TreeMemory:
    """What the tree watch handled.

    ``handled`` (signature -> (info-hash, outcome)) and ``reported`` (signatures of bad
    files) cover this run.  ``files`` (path -> [info-hash, outcome, signature]) are the
    metafiles whose item got into rTorrent (loaded, or there already), kept in a small
    JSON file so that an item the user erased is not loaded again from the same file,
    at the next run or after a restart.  Files it does not know are looked up in
    rTorrent (one d.hash each), so what arrived while we were down is still loaded;
    a scheduled run asks rTorrent nothing when no file is new.
    """

    def __init__(self, path, log, later):
        self.path, self.log, self._later = path, log, later
        self.handled, self.reported = {}, set()
        self.files = {}                     # path -> [info-hash, outcome, sig]
        self._by_inode = {}                 # (device, inode) -> path in files
        self._timer = None
        self.dirty = self._failed = False

    @staticmethod
    def configured_path(job, config):
        """memory_file, else <config dir>/run/treewatch-NAME.json; None without either."""
        path = str(config.get("memory_file") or "").strip()
        if path:
            return _abs_path(path)
        config_dir = getattr(config.get("settings"), "config_dir", None) \
            or getattr(getattr(job.daemon, "settings", None), "config_dir", None)
        return os.path.join(config_dir, "run", "treewatch-%s.json" % job.name) \
            if config_dir else None

    def knows(self, sig):
        """True when this version of a file was handled (or reported bad) already."""
        return sig in self.handled or sig in self.reported

    def outcome(self, sig):
        return self.handled.get(sig, (None, "bad"))[1]

    def load(self):
        if not self.path:
            return

        def check(data):        # all three or nothing: a half-read file is not kept
            files, by_inode, handled = {}, {}, {}
            for path, (info_hash, outcome, sig) in data["files"].items():
                files[path] = [info_hash, outcome, tuple(sig)]
                by_inode[tuple(sig[:2])] = path
                handled[tuple(sig)] = (info_hash, outcome)
            return files, by_inode, handled
        try:
            found = read_json_state(self.path, self.log, "The tree watch memory",
                                    "Items erased in rTorrent whose metafile is still in the "
                                    "tree may load again once", check)
        except OSError:         # it could not even be moved aside: start afresh all the same
            found = None
        if found is None:
            return
        self.files, self._by_inode, self.handled = found
        self.log.debug("Remembering %d loaded metafile(s) from %s", len(self.files), self.path)

    def remember(self, entry, outcome):
        self.handled[entry.sig] = (entry.meta.info_hash, outcome)
        settings = entry.settings
        if outcome in ("loaded", "duplicate") and self.path \
                and not (settings.remove_loaded or settings.move_loaded_to):   # it leaves
            self.files[entry.path] = [entry.meta.info_hash, outcome, entry.sig]
            self._by_inode[entry.sig[:2]] = entry.path
            self._changed()

    def forget(self, path):
        known = self.files.pop(path, None)
        if known is not None:
            if self._by_inode.get(tuple(known[2][:2])) == path:
                del self._by_inode[tuple(known[2][:2])]
            self._changed()

    def seen_again(self, path, sig):
        """A handled file seen (again) at ``path``: if the memory knows its inode under
        another name that is gone, the file moved."""
        old = self._by_inode.get(sig[:2])
        if path in self.files or old is None:
            return
        known = self.files.get(old)
        if known and tuple(known[2]) == sig and not os.path.lexists(old):
            del self.files[old]
            self.files[path] = known
            self._by_inode[sig[:2]] = path
            self._changed()
            self.log.debug("%s: moved from %s", path, old)

    def recall(self, entry):
        """True when ``entry`` is the very file an item came from before (the same inode
        with the same info-hash: touched, written again the same, or moved within the
        trees): if that item is not in rTorrent, the user erased it, and erased stays
        erased.  A file put in its place is another file."""
        path, sig, info_hash = entry.path, entry.sig, entry.meta.info_hash
        for where in (path, self._by_inode.get(sig[:2])):
            known = self.files.get(where) if where else None
            if known and known[0] == info_hash and tuple(known[2][:2]) == sig[:2]:
                break
        else:
            known = self.files.get(path)
            if known and known[0] != info_hash:
                self.log.info("%s changed (#%s before, #%s now): a new metafile", path,
                              known[0], info_hash)
            return False
        del self.files[where]
        known[2] = sig
        self.files[path] = known
        self._by_inode[sig[:2]] = path
        self.handled[sig] = (known[0], known[1])
        self._changed()
        self.log.debug("%s: its item #%s was in rTorrent before%s; not loaded again", path,
                       known[0], "" if where == path else " (as %s)" % where)
        return True

    def prune(self, live_sigs, live_paths, scanned_roots):
        """After a scan of all roots: forget the files that are gone, so the memory stays
        as big as the trees; a root that is not there (not mounted) keeps what is
        remembered below it."""
        self.handled = {s: v for s, v in self.handled.items() if s in live_sigs}
        self.reported &= live_sigs
        gone = [p for p in self.files if p not in live_paths
                and any(p.startswith(r.rstrip("/") + "/") for r in scanned_roots)]
        for path in gone:
            self.forget(path)

    def _changed(self):
        self.dirty = True
        if self._timer is None:
            # Written at most once a second, so a burst costs one write.
            self._timer = self._later(1.0, self.save)

    def save(self):
        self._timer = None
        self.dirty = False
        try:
            # No fsync in the loop: after a power cut the worst is an erased item's file
            # loaded once more.
            write_json_atomic(self.path, {"version": 1, "files": self.files}, durable=False)
        except OSError as exc:
            if not self._failed:     # said once, not on every save
                self.log.error("Cannot save the tree watch memory %s: %s; items erased in "
                               "rTorrent may load again after a restart", self.path, exc)
            self._failed = True
        else:
            self._failed = False


class TreeWatcher:
    """The folder trees below ``roots``: which files in them are ready to be read.

    inotify (or, on network file systems and where inotify gives out, scans every
    ``poll_interval`` seconds) finds metafiles; a file not known to be complete waits
    until its size and mtime stayed the same for ``settle`` seconds.  What is ready
    waits in ``ready`` (path -> _Entry) for the owner, which is told by ``kick()``.
    Roots that are missing or go away are watched for until they (re)appear.

    The owner (the job) provides: ``memory`` (a _TreeMemory: what was handled),
    ``folder_settings.changed(directory)`` for a watch.ini written or removed,
    ``busy(path)`` (a file being loaded now), ``skip_dir(path)`` (its own target
    folders) and ``kick()``.  It knows nothing of rTorrent.
    """

    #: How long an incomplete (truncated) file may wait before it is reported.
    INCOMPLETE_GRACE = 60.0

    def __init__(self, owner, roots, missing_roots, poll_interval=0.0, settle=1.0, trace=False):
        self.owner, self.log, self.stats = owner, owner.log, owner.stats
        self.memory, self._later = owner.memory, owner.later
        self.roots, self._missing_roots = roots, missing_roots
        self.poll_interval, self.settle, self.trace = poll_interval, settle, trace
        self.inotify = None
        self.daemon = owner.daemon
        self.wd_dir, self.dir_wd = {}, {}
        self._root_dev = {}                         # root -> st_dev when last scanned
        self.ready = collections.OrderedDict()      # path -> _Entry
        self.settling = {}                          # path -> (_Entry, due monotonic)
        self._settle_timer = None

    # -- life cycle ------------------------------------------------------------------

    def start(self, settings_text=""):
        """Watch the roots (or poll them) and scan them at once."""
        networked = []
        for root in self.roots:
            kind = NETWORK_FILESYSTEMS.get(filesystem_type(root))
            if kind:
                networked.append("%s (%s)" % (root, kind))
        if not self.poll_interval:
            try:
                self.inotify = INotify()
            except OSError as exc:
                self.log.error("inotify is not available (%s); scanning every 15 s instead", exc)
                self.poll_interval = 15.0
            else:
                self.daemon.add_reader(self.inotify, self._on_readable)
        if networked and not self.poll_interval:
            self.poll_interval = 30.0
            self.log.info("%s on a network file system: inotify only sees this host's changes, "
                          "so the trees are also scanned every %.0f s", ", ".join(networked),
                          self.poll_interval)
        self.log.info("Watching %s%s: %s%s", ", ".join(self.roots),
                      " with inotify" if self.inotify else "", settings_text,
                      ", scanning every %g s" % self.poll_interval if self.poll_interval else "")
        self._later(0, lambda: self.scan("start"))
        if self.poll_interval:
            self._later(self.poll_interval, self._poll)
        for root in self._missing_roots:
            self._later(1.0, lambda root=root: self._rewatch_root(root, 1.0))

    def close(self):
        """Give back the inotify instance (the owner cancels the timers)."""
        if self.inotify is not None:
            self.daemon.remove_reader(self.inotify)
            self.inotify.close()
            self.inotify = None

    def _poll(self):
        self.scan("poll")
        self._later(self.poll_interval, self._poll)

    # -- watching --------------------------------------------------------------------

    def root_of(self, path):
        for root in self.roots:
            if path == root or path.startswith(root + "/"):
                return root
        return None

    def _skip_dir(self, path):
        """The owner's own target folders inside a tree, and hidden folders, are not watched."""
        if self.owner.skip_dir(path):
            return True
        return os.path.basename(path).startswith(".") and path not in self.roots

    def _watch(self, path):
        """Watch one directory; False if it cannot be watched."""
        if self.inotify is None:
            return False
        try:
            mask = _DIR_MASK | (IN_ALL_EVENTS if self.trace else 0)
            if path in self.roots:
                mask &= ~IN_DONT_FOLLOW         # a configured root may be a symlink
            wd = self.inotify.add_watch(path, mask)
        except InotifyLimit as exc:
            if not self.poll_interval:
                self.log.error("Cannot watch %s: %s; scanning every 60 s instead until restarted",
                               path, exc.strerror)
                self.poll_interval = 60.0
                self._later(self.poll_interval, self._poll)
            return False
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                self.log.warning("Cannot watch %s: %s", path, exc.strerror)
            return False
        old = self.wd_dir.get(wd)
        if old is not None and old != path:
            self.dir_wd.pop(old, None)
        self.wd_dir[wd] = path
        self.dir_wd[path] = wd
        return True

    def _unwatch_tree(self, path):
        for directory in [d for d in self.dir_wd if d == path or d.startswith(path + "/")]:
            wd = self.dir_wd.pop(directory)
            if self.wd_dir.get(wd) == directory:
                del self.wd_dir[wd]
                try:
                    self.inotify.rm_watch(wd)
                except OSError:
                    pass

    def scan(self, why="scan", top=None):
        """Watch every folder below the roots (or ``top``) and look at every metafile."""
        self.stats["rescans"] += 1
        found = 0
        live_sigs = set() if top is None else None
        live_paths, scanned = set(), []
        for root in ([top] if top else self.roots):
            if not self._root_present(root):
                continue
            scanned.append(root)
            base = self.root_of(root) or root
            for path in self._metafiles_below(root):
                found += 1
                sig = self._arrived(path, base, trusted=False, quiet=True)
                if live_sigs is not None and sig:
                    live_sigs.add(sig)
                    live_paths.add(path)
        if live_sigs is not None:
            self.memory.prune(live_sigs, live_paths, scanned)
        self.log.log(logging.INFO if why == "start" else logging.DEBUG,
                     "Scan (%s) of %s: %d metafile(s), %d to look at now, %d waiting to settle",
                     why, top or ", ".join(self.roots), found, len(self.ready), len(self.settling))
        self.owner.kick()

    def _root_present(self, root):
        """True when ``root`` (a root, or a folder below one) is there to be scanned; notes
        a root that went, came back, or is another file system now."""
        try:
            root_dev = os.stat(root).st_dev if os.path.isdir(root) else None
        except OSError:
            root_dev = None
        if root_dev is None:
            if root in self.roots:
                self._root_missing(root)
            return False
        if root in self._missing_roots:
            self._missing_roots.discard(root)
            self.log.info("Watched folder %s is %s", root,
                          "back" if root in self._root_dev else "there now")
            kind = NETWORK_FILESYSTEMS.get(filesystem_type(root))
            if kind and not self.poll_interval and self.daemon is not None:
                self.poll_interval = 30.0       # as start() does for a network root
                self.log.info("%s is on %s: also scanned every 30 s", root, kind)
                self._later(self.poll_interval, self._poll)
        if root in self.roots and self._root_dev.get(root, root_dev) != root_dev:
            # Something was mounted on (or unmounted from) the root: watch anew.
            self.log.info("Watched folder %s is another file system now; watching it "
                          "anew", root)
            self._unwatch_tree(root)
        self._root_dev[root] = root_dev
        return True

    def _metafiles_below(self, top):
        """The candidate files below ``top``, watching each folder on the way."""
        stack = [top]
        while stack:
            directory = stack.pop()
            if self._skip_dir(directory):
                continue
            if directory not in self.dir_wd:
                self._watch(directory)
            try:
                entries = list(os.scandir(directory))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    self.log.warning("Cannot read folder %s: %s", directory, exc.strerror)
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                except OSError:
                    continue
                if self._candidate(entry.name):
                    yield entry.path

    def _root_missing(self, root):
        if root in self._missing_roots:
            return
        self._missing_roots.add(root)
        self.log.warning("Watched folder %s is gone; watching for it to come back", root)
        self._later(1.0, lambda: self._rewatch_root(root, 1.0))

    def _rewatch_root(self, root, delay):
        if root not in self._missing_roots:
            return      # a scan found it first
        if os.path.isdir(root):
            self.scan("folder there", top=root)
        else:
            # A stat every few seconds: cheap, and it sees a late mount as well as a mkdir.
            delay = min(delay * 2, 5.0)
            self._later(delay, lambda: self._rewatch_root(root, delay))

    @staticmethod
    def _candidate(name):
        return (not name.startswith(".") and name.lower().endswith(METAFILE_SUFFIXES)) \
            or name == WATCH_INI

    # -- inotify events ----------------------------------------------------------------

    def _on_readable(self):
        try:
            events = self.inotify.read()
        except OSError as exc:
            self.log.error("Reading inotify events failed: %s", exc)
            return
        rescan, new_dirs = False, []
        for event in events:
            if self.trace:
                self.log.debug("inotify event %r in %s", event, self.wd_dir.get(event.wd))
            if event.mask & IN_Q_OVERFLOW:
                self.stats["overflows"] += 1
                self.log.warning("The inotify event queue overflowed (more than "
                                 "fs.inotify.max_queued_events events were pending); "
                                 "rescanning all trees")
                rescan = True
                continue
            directory = self.wd_dir.get(event.wd)
            if directory is None:
                continue        # a watch we dropped; its last events may still come
            if event.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
                self._folder_event(event, directory)
            elif event.name:
                self._file_event(event, directory, new_dirs)
        if not rescan:
            for path in new_dirs:
                self.scan("new folder", top=path)
        if rescan:
            self.scan("overflow")
        self.owner.kick()

    def _folder_event(self, event, directory):
        """The watched folder itself went away (or its watch did)."""
        if event.mask & IN_IGNORED:
            del self.wd_dir[event.wd]
            if self.dir_wd.get(directory) == event.wd:
                del self.dir_wd[directory]
            if directory in self.roots:
                self._root_missing(directory)
        elif directory in self.roots and event.mask & IN_MOVE_SELF:
            self._unwatch_tree(directory)
            self._root_missing(directory)

    def _file_event(self, event, directory, new_dirs):
        """Something happened to ``event.name`` in ``directory``; folders that came are
        added to ``new_dirs`` (scanned after the whole batch of events)."""
        mask, path = event.mask, os.path.join(directory, event.name)
        if mask & IN_ISDIR:
            if mask & IN_MOVED_FROM:
                self._unwatch_tree(path)
            elif mask & (IN_CREATE | IN_MOVED_TO) and not self._skip_dir(path):
                new_dirs.append(path)
            return
        if event.name == WATCH_INI:
            if mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM):
                if self.owner.folder_settings.changed(directory):
                    self.scan("watch.ini changed", top=directory)
            return
        root = self.root_of(path) if self._candidate(event.name) else None
        if root is None:
            return
        if mask & (IN_CLOSE_WRITE | IN_MOVED_TO):
            self._arrived(path, root, trusted=True)
        elif mask & IN_DELETE:
            # Gone (say rTorrent's delete_tied removed it): a file put there later is new.
            self.memory.forget(path)
        elif mask & IN_CREATE:
            # Hard links and symlinks only ever produce IN_CREATE.
            try:
                st = os.lstat(path)
            except OSError:
                return
            if stat.S_ISLNK(st.st_mode) or st.st_nlink > 1:
                self._arrived(path, root, trusted=False)

    # -- readiness -------------------------------------------------------------------

    def _arrived(self, path, root, trusted, quiet=False):
        """A metafile showed up (or may have); return its signature if it is a file."""
        if os.path.basename(path) == WATCH_INI:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        sig = _file_signature(st)
        if self.memory.knows(sig):
            self.memory.seen_again(path, sig)
            if not quiet:
                self.log.debug("%s: already handled (%s)", path, self.memory.outcome(sig))
            return sig
        if path in self.ready or self.owner.busy(path):
            if path in self.ready:
                self.ready[path].trusted |= trusted
            return sig
        if st.st_size == 0 and not self._stale(st):    # a close-write or scan brings it back
            self.log.debug("%s: empty, waiting for it to be written", path)
            return sig
        entry = _Entry(path, root, trusted)
        age = time.time() - st.st_mtime
        if trusted or age >= self.settle:
            entry.sig = sig
            self.settling.pop(path, None)
            self.ready[path] = entry
        else:
            self.settle_again(entry, st)
        return sig

    def settle_again(self, entry, st, delay=None):
        """Let ``entry`` wait until it stays unchanged (``delay`` seconds, or settle)."""
        entry.sig = _file_signature(st)
        due = time.monotonic() + (delay if delay is not None
                                  else max(0.05, self.settle - max(0.0, time.time() - st.st_mtime)))
        if entry.path not in self.settling:
            self.log.debug("%s: waiting until it stops changing", entry.path)
        self.settling[entry.path] = (entry, due)
        if self.daemon is not None and self._settle_timer is None:
            self._settle_timer = self._later(max(0.0, due - time.monotonic()),
                                             self.check_settling)

    def check_settling(self):
        self._settle_timer = None
        now = time.monotonic()
        for path, (entry, due) in list(self.settling.items()):
            if due > now:
                continue
            del self.settling[path]
            self._arrived_again(entry)
        if self.settling and self.daemon is not None:
            next_due = min(due for _, due in self.settling.values())
            self._settle_timer = self._later(max(0.0, next_due - time.monotonic()),
                                             self.check_settling)
        self.owner.kick()

    def _arrived_again(self, entry):
        try:
            st = os.stat(entry.path)
        except OSError:
            return
        sig = _file_signature(st)
        if self.memory.knows(sig) or entry.path in self.ready:
            return
        if st.st_size == 0 and not self._stale(st):
            return
        elif sig == entry.sig and time.time() - st.st_mtime >= self.settle:
            self.ready[entry.path] = entry
        else:
            self.settle_again(entry, st)

    def _stale(self, st):
        """An empty or truncated file this old is not being written: it gets reported."""
        return time.time() - st.st_mtime >= self.INCOMPLETE_GRACE

    def requeue(self, entries):
        """Put entries back at the head of ``ready``, in their order (to be tried again)."""
        for entry in reversed(entries):
            self.ready[entry.path] = entry
            self.ready.move_to_end(entry.path, last=False)

    def read(self, entry, max_size):
        """Read and parse a ready metafile into ``entry.meta``.  False when it is gone,
        handled already, or not complete yet (it settles again; a truncated one waits
        up to INCOMPLETE_GRACE seconds, longer each time); raises MetafileError for a
        bad one."""
        path = entry.path
        try:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return False
                data = handle.read(max_size + 1)
            st2 = os.stat(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.log.error("Can't read metafile %r (%s)", path, exc.strerror)
            return False
        sig = _file_signature(st2)
        if sig != _file_signature(st):          # changed while we read it: later
            self.settle_again(entry, st2)
            return False
        entry.sig = sig
        if self.memory.knows(sig):
            return False
        try:
            if len(data) > max_size:
                raise MetafileError("larger than max_size (%s)" % human_size(max_size))
            entry.meta = parse_magnet(data) if path.lower().endswith(".magnet") \
                else read_metafile(data, max_size)
        except MetafileError as exc:
            if not exc.truncated or self._stale(st2):
                raise
            self.log.debug("%s: incomplete (%s), waiting for the rest", path, exc)
            if data:
                delay = max(self.settle, 2.0) * min(8, 2 ** entry.waits)
                self.settle_again(entry, st2, delay=delay)
                entry.waits += 1
            return False
        return True


@builtin_job
class TreeWatch(Job):
    """Loads every metafile that lands anywhere in the watched folder trees, once."""

    PARAMS = {
        "path": (str, "", "watched roots, ':'-separated"),
        "load_mode": (str, "normal", "'start'/'started' starts new items, else just load"),
        "queued": (parse_bool, False, "leave new items to the queue (priority 0 if not started)"),
        "trace_inotify": (parse_bool, False, "log every file system event at debug level"),
        "poll_interval": (non_negative(float), 0.0, "scan every N seconds instead of using inotify (0: inotify)"),
        "settle": (non_negative(float), 1.0, "seconds a scanned or linked file must stay unchanged"),
        "load_by_path": (parse_bool, False, "load by path (item tied to its file) instead of bytes"),
        "remove_loaded": (parse_bool, False, "delete a metafile once its item is in rTorrent"),
        "move_loaded_to": (str, "", "move a metafile here once its item is in rTorrent"),
        "failed_dir": (str, "", "move bad metafiles here"),
        "max_size": (byte_size, METAFILE_MAX_SIZE, "larger metafiles are refused"),
        "memory_file": (str, "", "what was loaded, kept across restarts (default: "
                        "<config dir>/run/treewatch-NAME.json)"),
    }
    PARAM_PREFIXES = ("cmd.",)
    RPC_METHODS = ("system.multicall", "d.hash", "load.raw_verbose",
                   "load.raw_start_verbose", "load.verbose", "load.start_verbose",
                   "network.xmlrpc.size_limit", "network.xmlrpc.size_limit.set", "print",
                   "d.custom", "d.custom.set", "d.tied_to_file.set", "branch")

    #: Seconds a just-sent load may take to show up in rTorrent.
    VERIFY_TIMEOUT = 5.0
    #: Items per batch of loads.
    BATCH = 200

    def __init__(self, config):
        super().__init__(config)
        self._timers = {}                           # id -> handle of our daemon timers
        self._closed = False
        self.stats = collections.Counter()
        missing_roots = set()
        self.roots = self._parse_roots(config.get("path") or "", missing_roots)
        self.max_size = config.max_size or METAFILE_MAX_SIZE     # 0: the built-in limit
        self.failed_dir = _abs_path(config.get("failed_dir") or "")
        self.folder_settings = _WatchSettings(self, config)
        self.base = self.folder_settings.base
        self.memory = _TreeMemory(_TreeMemory.configured_path(self, config), self.log, self.later)
        # RemoteWatch (a subclass) has no settle and trace_inotify: its spool is ours.
        self.watcher = TreeWatcher(self, self.roots, missing_roots, config.poll_interval,
                                   config.get("settle", 1.0), config.get("trace_inotify", False))
        self._inflight = {}                         # info-hash -> _Entry
        self._blocked = {}                          # info-hash -> [_Entry] waiting for it
        self._process_timer = self._verify_timer = None
        self._down = False
        self._backoff = 0.0
        self._verify_delay = 0.005
        self._size_limit = None
        self._started_at = time.time()
        if self.daemon is not None:     # the daemon, or --run-once (which saves it at the
            self.memory.load()          # end); never --check, which must change no file
            self.watcher.start("load_mode=%s, queued=%s" % (self.base.load_mode,
                                                             self.base.queued))

    # -- configuration -------------------------------------------------------------

    def _parse_roots(self, text, missing):
        roots = []
        for part in str(text).split(os.pathsep):
            part = part.strip()
            if not part:
                continue
            root = os.path.abspath(os.path.expanduser(part)).rstrip("/") or "/"
            if os.path.exists(root) and not os.path.isdir(root):
                raise ConfigError("path: %r is not a folder" % root)
            if not os.path.isdir(root) and root not in missing:
                # A late mount: watched as soon as it is there.
                missing.add(root)
                self.config_problem("%s: the folder %s does not exist (yet); it is watched "
                                    "and loaded from as soon as it appears"
                                    % (self.where("path"), root))
            if root not in roots:
                roots.append(root)
        if not roots:
            raise ConfigError("You need to set 'job.%s.path' in the configuration!" % self.name)
        return roots

    def where(self, param):
        """'file:line: job.NAME.PARAM' for a key of this job's configuration."""
        spec = getattr(self.config.get("settings"), "jobs", {}).get(self.name)
        return spec.where(param) if spec is not None else "job.%s.%s" % (self.name, param)

    def command_methods(self):
        """(key, method) of every rTorrent command the job's cmd.* templates call."""
        return [("cmd." + name, method) for name, template in sorted(self.base.commands.items())
                for method in template.command_names()]

    # -- what the watcher asks ------------------------------------------------------------

    def skip_dir(self, path):
        """Our own target folders inside a tree are not watched."""
        for special in (self.failed_dir, self.base.move_loaded_to):
            if special and (path == special or path.startswith(special + "/")):
                return True
        return False

    def busy(self, path):
        """True while the metafile at ``path`` is being loaded."""
        return any(e.path == path for e in self._inflight.values())

    def kick(self):
        """Make the ready queue move (at once, unless we wait for rTorrent)."""
        if self.watcher.ready and not self._down and self._process_timer is None \
                and self.daemon is not None and not self._closed:
            self._process_timer = self.later(0, self._process)

    # -- life cycle ------------------------------------------------------------------

    def later(self, delay, callback):
        """Call ``callback`` from the loop in ``delay`` seconds, unless the job is closed
        by then; None without a loop (--run-once, tests)."""
        if self.daemon is None:
            return None
        handle = None

        def fire():
            self._timers.pop(id(handle), None)
            if not self._closed:
                callback()
        handle = self.daemon.call_later(delay, fire)
        self._timers[id(handle)] = handle
        return handle

    def close(self):
        self._closed = True
        for handle in list(self._timers.values()):
            self._timers.pop(id(handle), None)
            self.daemon.cancel(handle)
        if self.memory.dirty:
            self.memory.save()
        self.watcher.close()

    def scan(self, why="scan", top=None):
        """Look at every metafile below the roots (or ``top``) now."""
        self.watcher.scan(why, top)

    def run(self):
        """The scheduled run: catch up with everything in the trees."""
        self.scan("scheduled run")
        if self.daemon is None or not self.daemon.serving:
            self._drain_blocking()      # --run-once: the loop does not turn, finish here

    def _drain_blocking(self, timeout=60.0):
        """Finish all pending work without the main loop (for --run-once)."""
        deadline = time.monotonic() + timeout
        watcher = self.watcher
        while (watcher.ready or watcher.settling or self._inflight) \
                and time.monotonic() < deadline:
            watcher.check_settling()
            self._process()
            self._verify()
            if self._down:
                break
            time.sleep(0.01)
        if self.memory.dirty:
            self.memory.save()

    # -- preparing a load --------------------------------------------------------------

    def _prepare(self, entry):
        """Read, validate and decide; return True if the entry should be loaded."""
        try:
            if not self.watcher.read(entry, self.max_size):
                return False
        except MetafileError as exc:
            self._bad(entry, str(exc))
            return False
        if self.memory.recall(entry):
            return False            # erased stays erased
        settings = self.folder_settings.for_path(entry.path, entry.root)
        if isinstance(settings, ConfigError):
            return False            # said once; it waits until the watch.ini is fixed
        self.folder_settings.decide(entry, settings)
        self.folder_settings.load_call(entry)
        return True

    def _bad(self, entry, reason):
        """Report a bad metafile once; move it to failed_dir if that is set."""
        self.stats["bad"] += 1
        if entry.sig in self.memory.reported:
            return
        self.memory.reported.add(entry.sig)
        self.log.error("Invalid metafile %r: %s", entry.path, reason)
        if self.failed_dir and not self.dry_run:
            target = _move_into(entry.path, self.failed_dir, self.log)
            if target:
                self.log.info("Moved bad metafile %r to %r", entry.path, target)

    # -- loading -------------------------------------------------------------------------

    def _present(self, hashes):
        """The subset of ``hashes`` that rTorrent has (raises RtorrentUnavailable)."""
        hashes = list(hashes)
        if not hashes:
            return set()
        # One d.hash per file (never a fetch of every item): the cost follows the files.
        answers = self.proxy.multicall([("d.hash", h) for h in hashes], faults="return")
        return {h for h, answer in zip(hashes, answers) if not isinstance(answer, RtorrentFault)}

    def _process(self):
        """Load what is ready, in batches; called from the loop."""
        self._process_timer = None
        if self._closed:
            return
        ready = self.watcher.ready
        while ready and not self._down:
            batch = []
            while ready and len(batch) < self.BATCH:
                _, entry = ready.popitem(last=False)
                try:
                    if self._prepare(entry):
                        batch.append(entry)
                except Exception as exc:        # one odd file must not stop the others
                    self.log.exception("While preparing %s: %s", entry.path, exc)
            if batch:
                try:
                    self._load_batch(batch)
                except RtorrentError as exc:    # a fault: report it, try again later
                    self.log.error("While loading %d metafile(s): %s", len(batch), exc)
                    self._went_down(batch, exc)
            if self.daemon is not None and ready and not self._down:
                self.kick()     # let the loop breathe between batches
                return

    def _went_down(self, entries, exc):
        self.watcher.requeue(entries)
        waiting = len(self.watcher.ready)
        self._down = True           # no tries until _retry; _backoff is 0 while rTorrent answers
        if not self._backoff:
            self._backoff = 0.5
            self.log.warning("rTorrent %s; %d metafile(s) wait and are retried with backoff (%s)",
                             "is unreachable" if isinstance(exc, RtorrentUnavailable)
                             else "failed a call", waiting, exc)
        else:
            self._backoff = min(10.0, self._backoff * 2)
            self.log.debug("rTorrent still unreachable; %d metafile(s) wait, next try in %.1f s",
                           waiting, self._backoff)
        if self.daemon is not None:
            self.later(self._backoff, self._retry)

    def _retry(self):
        self._down = False
        self._process()

    def _load_batch(self, batch):
        # Duplicates inside the batch or with loads in flight wait for those to finish.
        unique, later = [], []
        hashes = set()
        for entry in batch:
            info_hash = entry.meta.info_hash
            if info_hash in hashes or info_hash in self._inflight:
                later.append(entry)
            else:
                hashes.add(info_hash)
                unique.append(entry)
        try:
            present = self._present(hashes)
        except RtorrentUnavailable as exc:
            self._went_down(batch, exc)
            return
        except RtorrentError as exc:
            self.log.error("While checking for %d info-hash(es): %s", len(hashes), exc)
            self.watcher.requeue(batch)
            self._went_down([], exc)
            return
        if self._backoff:
            self.log.info("rTorrent is reachable again; loading the metafiles that waited")
            self._backoff = 0.0
        to_load = []
        for entry in unique:
            if entry.meta.info_hash in present:
                self._duplicate(entry)
            else:
                to_load.append(entry)
        for entry in later:     # looked at again once the first of their hash is through
            self._blocked.setdefault(entry.meta.info_hash, []).append(entry)
        if to_load:
            self._load(to_load)

    def _load(self, entries):
        """Send the loads (or say what would be loaded) and wait for them to arrive."""
        if self.dry_run:
            for entry in entries:
                self.log.info("Would load %r #%s from %r%s (dry run)", entry.meta.info_name,
                              entry.meta.info_hash, entry.path, self._suffix(entry))
                self.memory.handled[entry.sig] = (entry.meta.info_hash, "dry run")
            return
        try:
            self._send(entries)
        except RtorrentUnavailable as exc:
            self._went_down(entries, exc)
            return
        now = time.monotonic()
        for entry in entries:
            entry.deadline = now + self.VERIFY_TIMEOUT
            self._inflight[entry.meta.info_hash] = entry
        self._verify_delay = 0.005
        if self.daemon is not None and self._verify_timer is None:
            self._verify_timer = self.later(self._verify_delay, self._verify)

    def _send(self, entries):
        """Send load calls in system.multicalls that fit rTorrent's XML-RPC size limit."""
        chunk, size = [], 0
        chunks = []
        for entry in entries:
            need = 4 * len(entry.params[1]) // 3 + 512 + sum(len(c) + 64 for c in entry.params[2:]) \
                if isinstance(entry.params[1], bytes) else 1024 + len(entry.params[1])
            if chunk and size + need > 400 * 1024:
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(entry)
            size += need
        if chunk:
            chunks.append(chunk)
        for chunk in chunks:
            need = sum(4 * len(e.params[1]) // 3 + 4096 for e in chunk
                       if isinstance(e.params[1], bytes))
            if need > 400 * 1024:
                self._ensure_size_limit(need + 64 * 1024, chunk[0].path)
            calls = [(e.method,) + tuple(e.params) for e in chunk]
            try:    # the chunk is sized for rTorrent's limit: one round trip
                answers = self.proxy.multicall(calls, faults="return", batch=None)
            except RtorrentFault as exc:
                self.log.error("While loading %d metafile(s): %s", len(chunk), exc)
                continue
            for entry, answer in zip(chunk, answers):
                if isinstance(answer, RtorrentFault):
                    self.log.error("While loading #%s from %r: %s", entry.meta.info_hash,
                                   entry.path, answer.message)

    def _ensure_size_limit(self, need, path):
        if self._size_limit is None:
            self._size_limit = int(self.proxy.call("network.xmlrpc.size_limit"))
        if need <= self._size_limit:
            return
        new = ((need >> 20) + 2) << 20
        self.log.info("Raising rTorrent's network.xmlrpc.size_limit from %s to %s to load %r",
                      human_size(self._size_limit), human_size(new), path)
        try:
            self.proxy.call("network.xmlrpc.size_limit.set", "", new)
        except RtorrentFault as exc:
            self.log.error("Cannot raise network.xmlrpc.size_limit: %s", exc)
            return
        self._size_limit = new

    # -- verifying -----------------------------------------------------------------------

    def _verify(self):
        """Poll d.hash for the loads in flight; report what arrived and what did not."""
        self._verify_timer = None
        if not self._inflight or self._closed:
            return
        try:
            self._verify_once()
        finally:
            if self._inflight and self._verify_timer is None and not self._down:
                self._verify_delay = min(0.1, self._verify_delay * 2)
                self._verify_timer = self.later(self._verify_delay, self._verify)

    def _verify_once(self):
        # An item with load commands is asked for its marker (which also says whether it
        # is there), any other for its hash.
        waiting = list(self._inflight.items())
        try:
            answers = self.proxy.multicall([
                ("d.custom", info_hash, LOAD_COMMAND_MARK) if entry.commands
                else ("d.hash", info_hash) for info_hash, entry in waiting], faults="return")
        except RtorrentError as exc:
            # rTorrent went away before it said yes: load those again once it is back.
            entries = list(self._inflight.values())
            self._inflight.clear()
            self._went_down(entries, exc)
            return
        present = {info_hash: answer for (info_hash, _), answer in zip(waiting, answers)
                   if not isinstance(answer, RtorrentFault)}
        now = time.monotonic()
        loaded, calls, failed = [], [], []
        for info_hash, entry in list(self._inflight.items()):
            if info_hash in present:
                del self._inflight[info_hash]
                loaded.append(entry)
                if entry.commands:
                    done = set(present[info_hash].split("-"))
                    failed += [(entry, index) for index in range(len(entry.commands))
                               if str(index + 1) not in done]
                    calls.append(("d.custom.set", info_hash, LOAD_COMMAND_MARK, ""))
            elif now > entry.deadline:
                del self._inflight[info_hash]
                self._bad(entry, "rTorrent did not take it within %.0f s (see rTorrent's log "
                          "for 'Could not create download'%s)" % (
                              self.VERIFY_TIMEOUT, "; a magnet link needs a tracker unless DHT "
                              "is on" if entry.meta.magnet else ""))
        for info_hash in [h for h in self._blocked if h not in self._inflight]:
            self.watcher.requeue(self._blocked.pop(info_hash))
        self._loaded(loaded, calls)
        if failed:
            self._command_failures(failed)
        if calls:
            try:
                self.proxy.multicall(calls, faults="return")
            except RtorrentError:
                pass
        # Items loaded stopped with a priority above 0 are what the queue starts.
        if any("start" not in e.method and not (e.queue and not e.start) for e in loaded):
            self._wake_queue()
        self.kick()

    def _loaded(self, entries, calls):
        """Count, remember and log the loads that arrived; add a 'print' to rTorrent's
        log for each (one for all when there are more than 20) to ``calls``."""
        prints = []
        for entry in entries:
            self.stats["loaded"] += 1
            if self.config.get("item_source") is not None:
                self.config.get("item_source").invalidate()
            self.memory.remember(entry, "loaded")
            self.log.info("Loaded %r #%s from %r%s", entry.meta.info_name, entry.meta.info_hash,
                          entry.path, self._suffix(entry))
            if not entry.settings.quiet:
                prints.append(("print", "", _sendable(
                    "TreeWatch: Loaded '%s' from '%s/'%s" % (
                        entry.meta.info_name, os.path.dirname(entry.path), self._suffix(entry)))))
            self._after_load(entry)
        if len(prints) > 20:
            prints = [("print", "", "TreeWatch: Loaded %d items" % len(prints))]
        calls.extend(prints)

    def _command_failures(self, failed):
        """Log each load command that failed, with rTorrent's reason: the command is sent
        once more on its own (one system.multicall for all), and the fault says why."""
        calls = [("branch", entry.meta.info_hash, 1, entry.commands[index])
                 for entry, index in failed]
        try:
            answers = self.proxy.multicall(calls, faults="return")
        except RtorrentError as exc:
            answers = [RtorrentFault("branch", 0, "(no reason: %s)" % exc)] * len(failed)
        for (entry, index), answer in zip(failed, answers):
            self.stats["command_errors"] += 1
            reason = answer.message if isinstance(answer, RtorrentFault) else \
                "it failed at load time, and worked when sent again"
            self.log.error("Load command %s failed for %r #%s from %r: %s: %s (the other "
                           "commands were applied)", entry.keys[index], entry.meta.info_name,
                           entry.meta.info_hash, entry.path, entry.commands[index], reason)

    @staticmethod
    def _suffix(entry):
        if entry.queue:
            return " [queued] [%s]" % ("startable" if entry.start else "normal")
        return " [started]" if entry.start else " [normal]"

    def _duplicate(self, entry):
        self.stats["duplicates"] += 1
        self.memory.remember(entry, "duplicate")
        # Files that were there before we started are most likely loaded by us earlier.
        fresh = entry.trusted or entry.sig[3] >= self._started_at * 1e9
        level = logging.INFO if fresh else logging.DEBUG
        self.log.log(level, "Item #%s %r from %r is already in rTorrent", entry.meta.info_hash,
                     entry.meta.info_name, entry.path)
        self._after_load(entry)

    def _after_load(self, entry):
        """remove_loaded / move_loaded_to, if configured (never for a file that changed)."""
        settings = entry.settings
        if self.dry_run or not (settings.remove_loaded or settings.move_loaded_to):
            return
        try:
            if _file_signature(os.stat(entry.path)) != entry.sig:
                return
        except OSError:
            return
        if settings.remove_loaded:
            try:
                os.remove(entry.path)
                self.log.info("Removed loaded metafile %r", entry.path)
            except OSError as exc:
                self.log.error("Cannot remove %r: %s", entry.path, exc.strerror)
        else:
            target = _move_into(entry.path, settings.move_loaded_to, self.log)
            if target:
                self.log.info("Moved loaded metafile %r to %r", entry.path, target)

    def _wake_queue(self):
        """The queue's fast path: run every QueueManager job at the next turn of the loop."""
        jobs = getattr(self.daemon, "jobs", None) or {}
        for name, scheduled in list(jobs.items()):
            job = getattr(scheduled, "job", None)
            if job is not self and type(job).__name__ == "QueueManager":
                self.daemon.run_soon(name)


###############################################################################
# Prometheus exporter #########################################################
###############################################################################
#: Global figures from one system.multicall: (method, name after the prefix, type, help).
SYSTEM_METRICS = [
    ("throttle.global_down.total", "downloaded_bytes_total", "counter",
     "Bytes received from peers since rTorrent started (payload and protocol)."),
    ("throttle.global_up.total", "uploaded_bytes_total", "counter",
     "Bytes sent to peers since rTorrent started (payload and protocol)."),
    ("throttle.global_down.rate", "download_rate_bytes_per_second", "gauge",
     "Download rate: bytes received in the last 60 seconds, divided by 60."),
    ("throttle.global_up.rate", "upload_rate_bytes_per_second", "gauge",
     "Upload rate: bytes sent in the last 60 seconds, divided by 60."),
    ("throttle.global_down.max_rate", "download_rate_limit_bytes_per_second", "gauge",
     "Global download rate limit (0: none)."),
    ("throttle.global_up.max_rate", "upload_rate_limit_bytes_per_second", "gauge",
     "Global upload rate limit (0: none)."),
    ("throttle.unchoked_downloads", "unchoked_downloads", "gauge",
     "Peers that are downloaded from now."),
    ("throttle.unchoked_uploads", "unchoked_uploads", "gauge", "Peers that are uploaded to now."),
    ("throttle.max_downloads.global", "unchoked_downloads_limit", "gauge",
     "Most peers downloaded from at once, over all items (0: no limit)."),
    ("throttle.max_uploads.global", "unchoked_uploads_limit", "gauge",
     "Most peers uploaded to at once, over all items (0: no limit)."),
    ("network.open_sockets", "open_sockets", "gauge", "Sockets rTorrent has open."),
    ("network.max_open_sockets", "open_sockets_limit", "gauge", "Most sockets rTorrent opens."),
    ("network.max_open_files", "open_files_limit", "gauge", "Most data files rTorrent keeps open."),
    ("network.http.current_open", "http_requests_open", "gauge",
     "Tracker HTTP requests in progress."),
    ("network.http.max_open", "http_requests_open_limit", "gauge",
     "Most tracker HTTP requests at once."),
    # 0.16 has no network.http.max_open; this is its name for the same limit (one of the two
    # exists, so the series comes from whichever rTorrent has).
    ("network.http.max_total_connections", "http_requests_open_limit", "gauge",
     "Most tracker HTTP requests at once."),
    ("pieces.memory.current", "pieces_memory_bytes", "gauge",
     "Memory that holds file chunks (mapped data)."),
    ("pieces.memory.max", "pieces_memory_limit_bytes", "gauge",
     "Most memory for file chunks (pieces.memory.max)."),
    ("pieces.memory.block_count", "pieces_memory_blocks", "gauge",
     "Memory blocks that hold file chunks."),
    ("pieces.memory.sync_queue", "pieces_sync_queue_bytes", "gauge",
     "Bytes of chunks waiting to be synced to disk."),
    ("pieces.sync.queue_size", "pieces_sync_queue_chunks", "gauge",
     "Chunks waiting to be synced to disk."),
    ("pieces.stats_preloaded", "pieces_preloaded_total", "counter",
     "Chunks preloaded before sending them (since rTorrent started)."),
    ("pieces.stats_not_preloaded", "pieces_not_preloaded_total", "counter",
     "Chunks sent without preloading (since rTorrent started)."),
    ("system.files.opened_counter", "files_opened_total", "counter",
     "Data files opened since rTorrent started."),
    ("system.files.closed_counter", "files_closed_total", "counter",
     "Data files closed since rTorrent started."),
    ("system.files.failed_counter", "files_failed_total", "counter",
     "Data files that failed to open since rTorrent started."),
]

#: The other metrics of the exporter (the prefix in front), for the README and the tests:
#: name -> (type, labels, help).  The per-item series are in ITEM_STATS.
EXPORTER_METRICS = {
    "up": ("gauge", (), "1 if rTorrent answered the last collection, 0 if it was unreachable."),
    "collection_duration_seconds": ("gauge", (), "How long the last collection took."),
    "collection_timestamp_seconds": ("gauge", (), "When the last collection ran (Unix time)."),
    "collector_success": ("gauge", ("collector",),
                          "1 if a collector (system, tracker, item) worked in the last "
                          "collection, else 0."),
    "collector_duration_seconds": ("gauge", ("collector",),
                                   "How long each collector took in the last collection."),
    "info": ("gauge", ("client_version", "library_version"),
             "rTorrent's version and libtorrent's, as labels; the value is 1."),
    "start_time_seconds": ("gauge", (), "When rTorrent started (Unix time; the mtime of its "
                           "session lock file)."),
    "open_files": ("gauge", (), "Data files open now (opened minus closed)."),
    "view_items": ("gauge", ("view",), "Items in each rTorrent view."),
    "items": ("gauge", ("state",), "Items by state: downloading, seeding, paused, stopped, "
              "hashing (each item counts once)."),
    "items_size_bytes": ("gauge", (), "Size of the data of all items."),
    "items_left_bytes": ("gauge", (), "Bytes the incomplete items still have to download."),
    "tracker_items": ("gauge", ("alias",), "Items per tracker alias ('none': no tracker)."),
    "tracker_error_items": ("gauge", ("alias",),
                            "Items per tracker alias that show a message (d.message, e.g. a "
                            "tracker error)."),
}
EXPORTER_METRICS.update((name, (kind, (), help_))
                        for _, name, kind, help_ in SYSTEM_METRICS)

#: Per-item series (the 'item' collector): d.* method -> (name after the prefix + 'item_',
#: type, help, scale).  Other methods become item_d_<method> gauges (counters if *_total).
ITEM_STATS = {
    "d.down.total": ("downloaded_bytes_total", "counter", "Bytes this item received.", 1),
    "d.up.total": ("uploaded_bytes_total", "counter", "Bytes this item sent.", 1),
    "d.down.rate": ("download_rate_bytes_per_second", "gauge",
                    "Download rate of this item (60-second average).", 1),
    "d.up.rate": ("upload_rate_bytes_per_second", "gauge",
                  "Upload rate of this item (60-second average).", 1),
    "d.size_bytes": ("size_bytes", "gauge", "Size of this item's data.", 1),
    "d.completed_bytes": ("completed_bytes", "gauge", "Bytes of this item that are done.", 1),
    "d.left_bytes": ("left_bytes", "gauge", "Bytes this item still has to download.", 1),
    "d.ratio": ("ratio", "gauge", "Upload/download ratio of this item.", 0.001),
    "d.peers_connected": ("peers_connected", "gauge", "Peers this item is connected to.", 1),
    "d.peers_complete": ("peers_complete", "gauge", "Connected seeders of this item.", 1),
    "d.priority": ("priority", "gauge", "Priority: 0 off, 1 low, 2 normal, 3 high.", 1),
    "d.is_active": ("active", "gauge", "1 if this item is started and not paused.", 1),
    "d.complete": ("complete", "gauge", "1 if all of this item's data is there.", 1),
    "d.state": ("started", "gauge", "1 if this item is started (d.state).", 1),
    "d.size_files": ("files", "gauge", "Files in this item.", 1),
    "d.creation_date": ("created_timestamp_seconds", "gauge",
                        "When the metafile was made (Unix time).", 1),
    "d.load_date": ("loaded_timestamp_seconds", "gauge", "When this item was loaded.", 1),
    "d.timestamp.started": ("started_timestamp_seconds", "gauge",
                            "When this item was last started (0: never).", 1),
    "d.timestamp.finished": ("finished_timestamp_seconds", "gauge",
                             "When this item completed (0: not yet).", 1),
}

#: The daemon's own metrics (``pyrotorque_`` in front): name -> (type, labels, help).
DAEMON_METRICS = {
    "build_info": ("gauge", ("version", "python_version"),
                   "pyrotorque's version and Python's, as labels; the value is 1."),
    "start_time_seconds": ("gauge", (), "When the daemon started (Unix time)."),
    "job_runs_total": ("counter", ("job_name",), "Runs of each job."),
    "job_failures_total": ("counter", ("job_name",), "Runs of each job that ended with an error."),
    "job_skips_total": ("counter", ("job_name",),
                        "Runs of each job skipped because rTorrent was unreachable."),
    "job_merged_runs_total": ("counter", ("job_name",),
                              "Runs merged into one because an earlier run took too long."),
    "job_last_duration_seconds": ("gauge", ("job_name",),
                                  "How long the last run of each job took."),
    "queue_started_total": ("counter", ("job_name",), "Items the queue manager started."),
    "watch_loaded_total": ("counter", ("job_name",), "Metafiles the tree watch loaded."),
    "watch_duplicates_total": ("counter", ("job_name",),
                               "Metafiles the tree watch skipped: already loaded."),
    "watch_bad_metafiles_total": ("counter", ("job_name",),
                                  "Metafiles the tree watch could not use."),
    "watch_inotify_overflows_total": ("counter", ("job_name",),
                                      "Times the inotify queue overflowed (each one rescans "
                                      "the trees)."),
    "watch_rescans_total": ("counter", ("job_name",), "Full scans of the watched trees."),
    "rpc_calls_total": ("counter", ("method",), "XML-RPC calls to rTorrent, per method."),
    "rpc_errors_total": ("counter", (), "XML-RPC calls that failed (unreachable or a fault)."),
    "rpc_sent_bytes_total": ("counter", (), "Bytes of XML-RPC requests sent to rTorrent."),
    "rpc_received_bytes_total": ("counter", (), "Bytes of XML-RPC answers from rTorrent."),
    "rpc_duration_seconds": ("summary", (), "Time XML-RPC calls took, answer parsing included "
                             "(_sum and _count)."),
    "http_requests_total": ("counter", ("code",),
                            "HTTP requests to this exporter, by status code."),
    "http_connections": ("gauge", (), "HTTP connections to this exporter open now."),
    "loop_lag_seconds": ("gauge", (), "How late the main loop ran a due job or timer, at "
                         "most, in the last minute."),
}

#: Seconds over which pyrotorque_loop_lag_seconds takes its maximum.
LAG_WINDOW = 60.0

#: For jobs without metrics() that count in a ``stats`` Counter (the tree watch):
#: Counter key -> metric name.
STATS_METRICS = {"loaded": "watch_loaded_total", "duplicates": "watch_duplicates_total",
                 "bad": "watch_bad_metafiles_total", "overflows": "watch_inotify_overflows_total",
                 "rescans": "watch_rescans_total"}

#: The collectors a 'jobs' value may name.
EXPORTER_COLLECTORS = ("system", "tracker", "item")

#: When this module was loaded: the daemon's start, near enough.
_LOADED_AT = time.time()


def _method_list(text, what):
    """'down.total, d.up.total' -> ['d.down.total', 'd.up.total']."""
    methods = []
    for word in re.split(r"[\s,]+", str(text).strip()):
        if not word:
            continue
        method = word if word.startswith("d.") else "d." + word
        if not re.fullmatch(r"d\.[A-Za-z_][A-Za-z0-9_.]*", method) or method.endswith("."):
            raise ConfigError("%r is not a d.* method name" % word)
        if method not in methods:
            methods.append(method)
    return methods


def _item_stat(method):
    """(name after 'item_', type, help, scale) for a per-item stat."""
    if method in ITEM_STATS:
        return ITEM_STATS[method]
    name = "d_" + method[2:].replace(".", "_")
    kind = "counter" if name.endswith("_total") else "gauge"
    return name, kind, "The value of %s for each item." % method, 1


def _label_name(method):
    """'d.custom1' -> 'custom1'; 'd.base_path' -> 'base_path'."""
    return method[2:].replace(".", "_")


@builtin_job
class RtorrentExporter(Job):
    """Serves rTorrent's figures and the daemon's own to Prometheus, on ``addr:port``.

    run() collects on the job's schedule and renders the text once; a scrape is
    answered from that text by the HTTP server in the main loop and never waits
    on rTorrent.  With rTorrent down, ``<prefix>up`` is 0 and scrapes still work.
    """

    PARAMS = {
        "addr": (str, "127.0.0.1", "address to listen on ('' or 0.0.0.0: all)"),
        "port": (int, 8000, "port to listen on"),
        "prefix": (str, "rtorrent_", "prefix of the rTorrent metric names"),
        "jobs": (str, "system", "collectors: system, tracker, item (comma list)"),
        "item_stats": (str, "down.total,up.total", "per-item values (d.* methods)"),
        "item_labels": (str, "hash,name", "labels of the per-item series (d.* methods)"),
        "item-stats": (str, None, "pyrocore's spelling of item_stats (wins if set)"),
        "item-labels": (str, None, "pyrocore's spelling of item_labels (wins if set)"),
        "user": (str, "", "user name for HTTP basic authentication (with password)"),
        "password": (str, "", "password for HTTP basic authentication"),
        "tls_cert": (str, "", "PEM certificate (chain) file: serve HTTPS"),
        "tls_key": (str, "", "PEM private key file (if not in tls_cert)"),
        "max_connections": (int, 16, "HTTP connections open at once"),
        "http_timeout": (float, 10.0, "seconds a client has for its request and the answer"),
        "max_request_size": (byte_size, 8192, "largest request head accepted (bytes)"),
    }
    RPC_METHODS = ("system.multicall", "system.client_version", "system.library_version",
                   "view.list", "view.size", "d.multicall2")
    RUN_AT_START = True     # scrapes get figures as soon as the daemon is up

    def __init__(self, config):
        super().__init__(config)
        self.prefix = self._prefix(config)
        self.collectors = self._collectors(config)
        self.item_stats = self._item_methods(config, "item_stats")
        self.item_labels = self._item_methods(config, "item_labels")
        if "d.hash" not in self.item_labels:
            self.item_labels.insert(0, "d.hash")     # the hash keeps every series unique
        self._check_http(config)
        self.auth = (config.user, config.password) if config.user else None
        self.tls = self._tls_context(config)
        self.text = None            # the rendered metrics (str), None before the first collection
        self.body = self.gzipped = None
        self.views = []             # view.list, as last seen
        self.missing_warned = set()
        self.lags = collections.deque()     # (monotonic, the loop's lag in that collection's window)
        self.up = None
        self.fetched = None
        self.server = None
        if self.daemon is not None:     # else --check: validate only
            self._serve(config)

    # -- the settings, checked -----------------------------------------------------------

    @staticmethod
    def _prefix(config):
        prefix = config.prefix.strip()
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", prefix) or prefix.startswith("pyrotorque_"):
            raise ConfigError("prefix: %r is not a metric name prefix (letters, digits, '_'; "
                              "pyrotorque_ is the daemon's own)" % prefix)
        return prefix

    @staticmethod
    def _collectors(config):
        collectors = []
        for word in re.split(r"[\s,]+", config.jobs.strip()):
            if word and word not in EXPORTER_COLLECTORS:
                raise ConfigError("jobs: unknown collector %r (choose from %s)"
                                  % (word, ", ".join(EXPORTER_COLLECTORS)))
            if word and word not in collectors:
                collectors.append(word)
        return collectors

    @staticmethod
    def _item_methods(config, key):
        """item_stats or item_labels as d.* methods; pyrocore's spelling (item-stats) wins."""
        old_key = key.replace("_", "-")
        if config.get(old_key) is not None:
            key = old_key
        try:
            return _method_list(config[key], "")
        except ConfigError as exc:
            raise ConfigError("%s: %s" % (key, exc)) from None

    @staticmethod
    def _check_http(config):
        if not 0 <= config.port < 65536:
            raise ConfigError("port: %d is not a port number (0-65535)" % config.port)
        if config.max_connections < 1:
            raise ConfigError("max_connections: must be at least 1")
        if config.http_timeout <= 0:
            raise ConfigError("http_timeout: must be more than 0 seconds")
        if bool(config.user) != bool(config.password):
            raise ConfigError("%s: user and password go together (basic authentication)"
                              % ("user" if config.user else "password"))

    def _serve(self, config):
        self.server = MetricsServer(self.daemon, self.page, self.log, timeout=config.http_timeout,
                                    max_request=config.max_request_size,
                                    max_connections=config.max_connections, auth=self.auth,
                                    tls=self.tls)
        other = self.server.take_over_or_listen(self, config.addr, config.port)
        if other is not None:       # serve the old text until our first collection
            self.text, self.body, self.gzipped = other.text, other.body, other.gzipped
        host, port = self.server.address
        self.log.info("Serving metrics on %s://%s:%d/metrics (%s)",
                      "https" if self.tls else "http",
                      "[%s]" % host if ":" in host else host, port, ", ".join(self.collectors)
                      or "no collectors")

    @staticmethod
    def _tls_context(config):
        if not config.tls_cert:
            if config.tls_key:
                raise ConfigError("tls_key: needs tls_cert as well")
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(os.path.expanduser(config.tls_cert),
                                    os.path.expanduser(config.tls_key) if config.tls_key else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("tls_cert: cannot load the certificate%s (%s)"
                              % (" and key" if config.tls_key else "",
                                 getattr(exc, "strerror", None) or exc)) from None
        return context

    def close(self):
        if self.server is not None:
            self.server.close()

    def status_text(self):
        if self.server is None or self.server.address is None:
            return ""
        return "metrics on port %d" % self.server.address[1]

    # -- serving ---------------------------------------------------------------------

    def page(self, path, gzip_ok):
        """(code, body, content type, headers) for a path, or None (404)."""
        if path == "/":
            return 200, index_page(self.daemon), "text/html; charset=utf-8", ()
        if path != "/metrics":
            return job_page(self.daemon, path, gzip_ok)
        if self.body is None:
            return (503, b"No metrics yet: the first collection has not run.\n",
                    "text/plain; charset=utf-8", [("Retry-After", "5")])
        if gzip_ok and len(self.body) > 1024:
            if self.gzipped is None:
                self.gzipped = gzip.compress(self.body, compresslevel=3)
            return 200, self.gzipped, METRICS_CONTENT_TYPE, [("Content-Encoding", "gzip"),
                                                             ("Vary", "Accept-Encoding")]
        return 200, self.body, METRICS_CONTENT_TYPE, [("Vary", "Accept-Encoding")]

    # -- collecting --------------------------------------------------------------------

    def run(self):
        """Collect everything, render it once; an unreachable rTorrent is re-raised (after
        the text says so) for the daemon to count the run as skipped."""
        started = time.monotonic()
        families = _Families()
        unavailable = None
        durations, success = {}, {}
        self.fetched = None
        try:
            if not self.collectors:
                self.proxy.connect(force=True)      # nothing to collect but rtorrent_up
            for collector in self.collectors:
                begun = time.monotonic()
                try:
                    getattr(self, "collect_" + collector)(families)
                    success[collector] = 1
                except RtorrentUnavailable:
                    raise
                except (RtorrentError, ValueError, TypeError, KeyError) as exc:
                    success[collector] = 0
                    self.log.warning("Collector %s failed: %s: %s", collector,
                                     exc.__class__.__name__, exc)
                durations[collector] = time.monotonic() - begun
        except RtorrentUnavailable as exc:
            unavailable = exc
            families = _Families()      # no stale figures from a half-done collection
        self.up = unavailable is None
        self.render(families, unavailable is None, started, durations, success)
        self.log.debug("Collected %d bytes of metrics in %.3f s%s", len(self.body),
                       time.monotonic() - started, "" if self.up else " (rTorrent is down)")
        if unavailable is not None:
            raise unavailable

    def render(self, families, up, started, durations, success):
        prefix = self.prefix
        meta = _Families()
        meta.get_family(prefix + "up", *self._doc("up")).add(int(up))
        for collector in self.collectors:
            if up and collector in success:
                meta.get_family(prefix + "collector_success", *self._doc("collector_success")) \
                    .add(success[collector], {"collector": collector})
                meta.get_family(prefix + "collector_duration_seconds",
                                *self._doc("collector_duration_seconds")) \
                    .add(round(durations[collector], 6), {"collector": collector})
        daemon = _Families()
        try:
            self.collect_daemon(daemon)
        except Exception as exc:    # a job's broken metrics() must not cost the rest
            self.log.warning("Daemon metrics failed: %s: %s", exc.__class__.__name__, exc)
            daemon = _Families()
        meta.get_family(prefix + "collection_duration_seconds",
                        *self._doc("collection_duration_seconds")) \
            .add(round(time.monotonic() - started, 6))
        meta.get_family(prefix + "collection_timestamp_seconds",
                        *self._doc("collection_timestamp_seconds")).add(round(time.time(), 3))
        text = render_metrics(list(meta.values()) + list(families.values())
                              + list(daemon.values()))
        self.text = text
        self.body = text.encode("utf-8", "replace")
        self.gzipped = None

    @staticmethod
    def _doc(name):
        kind, _, help_ = EXPORTER_METRICS[name]
        return kind, help_

    def _family(self, families, name, doc_name=None):
        return families.get_family(self.prefix + name, *self._doc(doc_name or name))

    def collect_system(self, families):
        """Globals, versions and view sizes in one system.multicall (a second one when
        the list of views changed); item states in one ItemSource fetch."""
        info = self.proxy.connect()
        methods = info.methods
        wanted = [entry for entry in SYSTEM_METRICS if entry[0] in methods]
        calls = [(m,) for m, _, _, _ in wanted] + [("view.list",)]
        calls += [("view.size", "", view) for view in self.views]
        results = self._multicall(calls)
        views = results[len(wanted)]
        sizes = dict(zip(self.views, results[len(wanted) + 1:]))
        if isinstance(views, list) and views != self.views:
            self.views = [v for v in views if isinstance(v, str)]
            sizes = dict(zip(self.views, self._multicall([("view.size", "", v)
                                                          for v in self.views])))
        values = {}
        for (method, name, kind, help_), value in zip(wanted, results):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                families.get_family(self.prefix + name, kind, help_).add(value)
                values[method] = value
        if "system.files.opened_counter" in values and "system.files.closed_counter" in values:
            self._family(families, "open_files").add(values["system.files.opened_counter"]
                                                     - values["system.files.closed_counter"])
        self._family(families, "info").add(1, {"client_version": info.version,
                                               "library_version": info.library})
        if info.startup:
            self._family(families, "start_time_seconds").add(round(info.startup, 3))
        for view in sorted(sizes):
            if isinstance(sizes[view], int):
                self._family(families, "view_items").add(sizes[view], {"view": view})
        self.collect_states(families)

    def fetch_items(self):
        """The items of 'main' with what the system and tracker collectors need, fetched
        once per collection (alias is cached per hash by the ItemSource)."""
        if self.fetched is None:
            fields = set()
            if "system" in self.collectors:
                fields |= {"is_active", "is_complete", "size", "left", "d_state",
                           "d_is_hash_checking"}
            if "tracker" in self.collectors:
                fields |= {"alias", "message"}
            source = self.config.get("item_source") or ItemSource(self.proxy)
            self.fetched = source.fetch("main", fields)
        return self.fetched

    def collect_states(self, families):
        """Items by state, total size and bytes left."""
        states = dict.fromkeys(("downloading", "seeding", "paused", "stopped", "hashing"), 0)
        size = left = 0
        for item in self.fetch_items():
            if item["d_is_hash_checking"]:
                state = "hashing"
            elif not item["d_state"]:
                state = "stopped"
            elif not item["is_active"]:
                state = "paused"
            else:
                state = "seeding" if item["is_complete"] else "downloading"
            states[state] += 1
            size += item["size"] or 0
            left += item["left"] or 0
        for state, count in states.items():
            self._family(families, "items").add(count, {"state": state})
        self._family(families, "items_size_bytes").add(size)
        self._family(families, "items_left_bytes").add(left)

    def collect_tracker(self, families):
        """Items and items with a message per tracker alias (the fetch is shared)."""
        per_alias, errors = {}, {}
        for item in self.fetch_items():
            alias = item["alias"] or "none"
            per_alias[alias] = per_alias.get(alias, 0) + 1
            errors[alias] = errors.get(alias, 0) + bool(item["message"])
        for alias in sorted(per_alias):
            self._family(families, "tracker_items").add(per_alias[alias], {"alias": alias})
        for alias in sorted(per_alias):
            self._family(families, "tracker_error_items").add(errors[alias], {"alias": alias})

    def collect_item(self, families):
        """One d.multicall2 with the labels and the stats of every item."""
        methods = self.proxy.connect().methods
        labels = [m for m in self.item_labels if m in methods]
        stats = [m for m in self.item_stats if m in methods]
        for method in set(self.item_labels + self.item_stats) - set(labels + stats):
            if method not in self.missing_warned:
                self.missing_warned.add(method)
                self.log.warning("rTorrent has no method %s; it is left out of the item series",
                                 method)
        if not stats:
            return
        rows = self.proxy.call("d.multicall2", "", "main", *[m + "=" for m in labels + stats])
        names = [_label_name(m) for m in labels]
        order = sorted(range(len(names)), key=lambda i: names[i])
        made = []
        for method in stats:
            name, kind, help_, scale = _item_stat(method)
            made.append((families.get_family(self.prefix + "item_" + name, kind, help_), scale))
        count = len(labels)
        for row in rows:
            text = "{%s}" % ",".join('%s="%s"' % (names[i], escape_label_value(
                "" if row[i] is None else row[i])) for i in order)
            for (family, scale), value in zip(made, row[count:]):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    family.add_raw(value * scale if scale != 1 else value, text)

    def _multicall(self, calls):
        """The proxy's multicall; a fault in one call gives None for it, not an exception."""
        return [None if isinstance(answer, RtorrentFault) else answer
                for answer in self.proxy.multicall(calls, faults="return")]

    # -- the daemon's own metrics ------------------------------------------------------

    def collect_daemon(self, families):
        def family(name, doc=None):
            kind, _, help_ = DAEMON_METRICS[doc or name]
            return families.get_family("pyrotorque_" + name, kind, help_)

        family("build_info").add(1, {"version": __version__,
                                     "python_version": "%d.%d.%d" % sys.version_info[:3]})
        family("start_time_seconds").add(round(_LOADED_AT, 3))
        if isinstance(self.daemon, EventLoop):
            # Over a minute, not one collection's window: a scrape every 15 or 60 s sees it.
            now = time.monotonic()
            self.lags.append((now, self.daemon.late_max))
            self.daemon.late_max = 0.0
            while self.lags[0][0] < now - LAG_WINDOW:
                self.lags.popleft()
            family("loop_lag_seconds").add(round(max(lag for _, lag in self.lags), 6))
        jobs = sorted(getattr(self.daemon, "jobs", {}).items())
        for field, name in (("runs", "job_runs_total"), ("failures", "job_failures_total"),
                            ("skips", "job_skips_total"), ("merged", "job_merged_runs_total")):
            for job_name, sj in jobs:
                family(name).add(getattr(sj, field, 0) or 0, {"job_name": job_name})
        for job_name, sj in jobs:
            if sj.last_duration is not None:
                family("job_last_duration_seconds").add(round(sj.last_duration, 6),
                                                        {"job_name": job_name})
        for job_name, sj in jobs:
            job = sj.job
            if callable(getattr(job, "metrics", None)):
                self._job_metrics(families, job_name, job)
            elif isinstance(job, QueueManager):
                family("queue_started_total").add(job.started, {"job_name": job_name})
            elif isinstance(getattr(job, "stats", None), collections.Counter):
                for key, name in STATS_METRICS.items():
                    family(name).add(job.stats.get(key, 0), {"job_name": job_name})
        stats = self.proxy.stats if self.proxy is not None else None
        if stats is not None:
            for method in sorted(stats.by_method):
                family("rpc_calls_total").add(stats.by_method[method], {"method": method})
            family("rpc_errors_total").add(stats.errors)
            family("rpc_sent_bytes_total").add(stats.bytes_out)
            family("rpc_received_bytes_total").add(stats.bytes_in)
            summary = family("rpc_duration_seconds")
            summary.add(round(stats.total_seconds, 6), suffix="_sum")
            summary.add(stats.calls, suffix="_count")
        if self.server is not None:
            requests = dict(self.server.requests)
            for code in sorted(requests):
                family("http_requests_total").add(requests[code], {"code": str(code)})
            family("http_connections").add(len(self.server.connections))

    def _job_metrics(self, families, job_name, job):
        """Samples from a job's metrics(): (name, type, help, labels, value)."""
        for sample in job.metrics():
            try:
                name, kind, help_, labels, value = sample
                labels = dict(labels or {}, job_name=job_name)
                families.get_family("pyrotorque_" + name, kind, help_).add(value, labels)
            except (ValueError, TypeError) as exc:
                key = (job_name, repr(sample)[:80])
                if key not in self.missing_warned:
                    self.missing_warned.add(key)
                    self.log.warning("Job %s offers a bad metric sample %.80r: %s",
                                     job_name, sample, exc)


###############################################################################
# Commands and rules ##########################################################
###############################################################################
#
# ExecCommand runs a command on its schedule; ActionRule is rtcontrol as a job:
# it acts on the items that match a condition.  Both run children the same
# way: no shell unless asked for, in a process group of their own (a timeout
# kills the whole tree: SIGTERM, then SIGKILL after a grace), stdout and
# stderr read as they come from non-blocking pipes in the main loop's
# selector and logged line by line, the exit seen through a pidfd (or by
# polling where there is none) and reaped at once.  Under --run-once, where
# the loop does not turn, the same machinery runs on a private selector.
#
# Nothing from an item ever becomes rTorrent command text: values go out as
# XML-RPC parameters (d.custom.set, d.throttle_name.set...) or as whole argv
# words of a command run without a shell.  stop, close, pause and erase are
# never sent to an item that is hash-checking (rTorrent 0.9.8 can deadlock).

#: Environment variables a child must not inherit: they speak for the daemon.
_CHILD_ENV_DROP = ("NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "JOURNAL_STREAM",
                   "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
def _shown_command(argv, limit=300):
    text = _log_safe(shlex.join(argv))
    return text if len(text) <= limit else text[:limit] + "..."


def _env_keys(config):
    """The env.NAME keys of a job's config as {NAME: value}; raise ConfigError('env.NAME: ...')."""
    env = {}
    for key in sorted(config):
        if key.startswith("env."):
            name = key[4:]
            if not _ENV_NAME.match(name):
                raise ConfigError("%s: %r is not an environment variable name" % (key, name))
            value = config[key]
            env[name] = value if isinstance(value, str) else str(value)
    return env


def _child_env(extra):
    """The daemon's environment now, without its systemd variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _CHILD_ENV_DROP}
    env.update(extra or {})
    return env


def _work_dir(text, key="cwd"):
    path = os.path.expanduser(str(text or "").strip())
    if path and not os.path.isdir(path):
        raise ConfigError("%s: %r is not a directory" % (key, path))
    return path or None


class _Output:
    """One output pipe of a child: its buffer and what was logged of it."""

    __slots__ = ("stream", "name", "level", "buffer", "lines", "dropped")

    def __init__(self, stream, name, level):
        self.stream, self.name, self.level = stream, name, level
        self.buffer = bytearray()
        self.lines = self.dropped = 0


class ChildProcess:
    """One command run in its own process group, without blocking the loop.

    ``loop`` is the daemon (or a private EventLoop); ``env`` holds variables to add to
    the daemon's environment (see _child_env).  Output is logged line by line
    (stdout at info, stderr at warning level) as '[PID out] line' / '[PID err] line';
    the end is logged with the exit status and duration, and ``on_exit(child)`` is
    called.  ``ok`` tells whether it ran and exited with status 0.
    """

    #: A line longer than this many bytes is logged in pieces.
    MAX_LINE = 8192
    #: Lines logged per stream and run; further ones are only counted.
    MAX_LINES = 2000

    def __init__(self, argv, log, loop, *, env=None, cwd=None, timeout=0.0, grace=5.0,
                 on_exit=None, label=None):
        self.argv = list(argv)
        self.label = label or _shown_command(self.argv)
        self.log, self.loop = log, loop
        self.env, self.cwd = env, cwd
        self.timeout, self.grace = timeout, grace
        self.on_exit = on_exit
        self.proc = None
        self.pid = None
        self.returncode = None
        self.error = None           # why it could not be started
        self.started = None
        self.duration = None
        self.timed_out = False
        self._outputs = []
        self._pidfd = None
        self._poll_timer = self._timeout_timer = self._kill_timer = None
        self._poll_delay = 0.01
        self._kill_deadline = 0.0
        self._finished = False

    def __repr__(self):
        return "<ChildProcess %s pid=%s>" % (self.label, self.pid)

    @property
    def running(self):
        """Started and not yet ended."""
        return self.proc is not None and not self._finished

    @property
    def busy(self):
        """Running, or a SIGKILL for what is left of its process group is still due."""
        return self.running or self._kill_timer is not None

    @property
    def ok(self):
        return self._finished and self.returncode == 0 and not self.timed_out

    def outcome(self):
        """How it ended, in words."""
        if self.error:
            return "could not be started: %s" % self.error
        if self.returncode is None:
            return "running for %.1f s" % (time.monotonic() - self.started)
        if self.returncode < 0:
            try:
                signame = signal.Signals(-self.returncode).name
            except ValueError:
                signame = "signal %d" % -self.returncode
            text = "killed by %s" % signame
        else:
            text = "exit status %d" % self.returncode
        if self.timed_out:
            text += " after its timeout of %g s" % self.timeout
        return text

    def start(self):
        """Start the command; False (and logged) if it cannot be started."""
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=self.cwd, env=_child_env(self.env), close_fds=True,
                start_new_session=True)     # its own process group: a timeout kills the tree
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self.error = "%s: %s" % (type(exc).__name__, exc)
            self._finished = True
            self.log.warning("%s %s", self.label, self.outcome())
            return False
        self.pid = self.proc.pid
        self.started = time.monotonic()
        self.log.debug("Started %s [pid %d]", self.label, self.pid)
        for stream, name, level in ((self.proc.stdout, "out", logging.INFO),
                                    (self.proc.stderr, "err", logging.WARNING)):
            os.set_blocking(stream.fileno(), False)
            output = _Output(stream, name, level)
            self._outputs.append(output)
            self.loop.watch(stream, selectors.EVENT_READ, lambda o=output: self._readable(o))
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):       # Python < 3.9 or Linux < 5.3: poll instead
            self._pidfd = None
        if self._pidfd is not None:
            self.loop.watch(self._pidfd, selectors.EVENT_READ, self._check_exit)
        else:
            self._poll_timer = self.loop.call_later(self._poll_delay, self._poll)
        if self.timeout:
            self._timeout_timer = self.loop.call_later(self.timeout, self._timed_out)
        return True

    # -- output ---------------------------------------------------------------------

    def _readable(self, output, final=False):
        """Read what the pipe has; at EOF (or ``final``), log the rest and let it go."""
        rounds = 0
        while output.stream is not None:
            rounds += 1
            if rounds > 16:     # a grandchild that keeps the pipe open and keeps writing
                self._readable_done(output)
                return
            try:
                chunk = os.read(output.stream.fileno(), 65536)
            except (BlockingIOError, InterruptedError):
                if not final:
                    return
                chunk = b""
            except OSError:
                chunk = b""
            if not chunk:
                self._readable_done(output)
                return
            output.buffer += chunk
            self._lines(output)
            if not final:
                return

    def _readable_done(self, output):
        self._lines(output, flush=True)
        self.loop.unwatch(output.stream)
        output.stream.close()
        output.stream = None

    def _lines(self, output, flush=False):
        buffer = output.buffer
        while True:
            end = buffer.find(b"\n", 0, self.MAX_LINE + 1)
            if end >= 0:
                line, cut = bytes(buffer[:end]), end + 1
            elif len(buffer) >= self.MAX_LINE:      # a long line is logged in pieces
                line, cut = bytes(buffer[:self.MAX_LINE]), self.MAX_LINE
            elif flush and buffer:
                line, cut = bytes(buffer), len(buffer)
            else:
                return
            del buffer[:cut]
            if output.lines >= self.MAX_LINES:
                output.dropped += 1
                continue
            output.lines += 1
            text = line.decode("utf-8", "replace").rstrip("\r")
            self.log.log(output.level, "[%d %s] %s", self.pid, output.name, _log_safe(text))

    # -- the end --------------------------------------------------------------------

    def _check_exit(self):
        if self.proc.poll() is not None:
            self._finish()

    def _poll(self):
        self._poll_timer = None
        if self._finished:
            return
        if self.proc.poll() is not None:
            self._finish()
        else:
            self._poll_delay = min(0.25, self._poll_delay * 2)
            self._poll_timer = self.loop.call_later(self._poll_delay, self._poll)

    def _signal_group(self, signum):
        """Send ``signum`` to the child's process group; False if nobody is left in it."""
        try:
            os.killpg(self.pid, signum)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def _group_alive(self):
        """Is any process of the child's group still alive (zombies do not count)?"""
        try:
            names = os.listdir("/proc")
        except OSError:             # no /proc: ask the kernel (zombies count there)
            return self._signal_group(0)
        for name in names:
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name, "rb") as handle:
                    fields = handle.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if len(fields) > 2 and fields[2] == b"%d" % self.pid and fields[0] != b"Z":
                return True
        return False

    def _timed_out(self):
        self._timeout_timer = None
        if self._finished:
            return
        self.timed_out = True
        self.log.warning("%s [pid %d] is still running after its timeout of %g s: "
                         "SIGTERM to its process group", self.label, self.pid,
                         self.timeout)
        self._signal_group(signal.SIGTERM)
        self._kill_deadline = time.monotonic() + self.grace
        self._kill_timer = self.loop.call_later(min(0.05, self.grace), self._kill_group)

    def _kill_group(self):
        """During the grace after SIGTERM: done once the group is gone, else SIGKILL at its end."""
        self._kill_timer = None
        if not self._group_alive():
            return
        if time.monotonic() < self._kill_deadline:
            self._kill_timer = self.loop.call_later(0.05, self._kill_group)
            return
        self.log.warning("Process group %d outlived SIGTERM by %g s: SIGKILL", self.pid, self.grace)
        self._signal_group(signal.SIGKILL)

    def _finish(self):
        """The child ended: take the rest of its output, log the outcome, tell on_exit."""
        if self._finished:
            return
        self._finished = True
        self.returncode = self.proc.poll()
        self.duration = time.monotonic() - self.started
        for output in self._outputs:
            # Everything it wrote before it ended is in the pipe now; a grandchild
            # that keeps the pipe open is not waited for.
            self._readable(output, final=True)
            if output.dropped:
                self.log.warning("[%d %s] ... %d more line(s) not logged", self.pid,
                                 output.name, output.dropped)
        self._release()
        level = logging.INFO if self.ok else logging.WARNING
        self.log.log(level, "%s [pid %d]: %s, %.2f s", self.label, self.pid,
                     self.outcome(), self.duration)
        callback, self.on_exit = self.on_exit, None
        if callback is not None:
            callback(self)

    def _release(self):
        for output in self._outputs:
            if output.stream is not None:
                self.loop.unwatch(output.stream)
                output.stream.close()
                output.stream = None
        if self._pidfd is not None:
            self.loop.unwatch(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        for name in ("_poll_timer", "_timeout_timer"):
            timer = getattr(self, name)
            if timer is not None:
                self.loop.cancel(timer)
                setattr(self, name, None)

    def kill(self, why, wait=2.0):
        """End it now (SIGTERM to the group, SIGKILL after ``wait`` s at most) and reap it;
        on_exit is not called."""
        if self._kill_timer is not None:
            self.loop.cancel(self._kill_timer)
            self._kill_timer = None
        if not self.running:
            return
        self.on_exit = None
        self.log.warning("Stopping %s [pid %d] (%s): SIGTERM to its process group",
                         self.label, self.pid, why)
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + min(self.grace, wait)
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._signal_group(0):
            self._signal_group(signal.SIGKILL)
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:       # unkillable (D state): leave it to init
            self.log.error("Process %d did not end even after SIGKILL", self.pid)
        self._finish()

    def run_blocking(self):
        """Start it and wait for its end (and its group's SIGKILL), on a private loop;
        the ``loop`` given to the constructor must be that private EventLoop."""
        if self.start():
            self.loop.run_until(lambda: not self.busy)
        return self.ok


def _command_argv(text, shell, key="command"):
    """The argv of a command line: split like a shell would, or given to /bin/sh -c."""
    text = str(text or "").strip()
    if not text:
        raise ConfigError("%s: no command given" % key)
    if shell:
        return ["/bin/sh", "-c", text]
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ConfigError("%s: %s in %r" % (key, exc, text)) from None
    if not argv:
        raise ConfigError("%s: no command given" % key)
    return [os.path.expanduser(word) if word.startswith("~") else word for word in argv]


#: What every job that runs commands knows; the environment comes from 'env.NAME' keys.
_CHILD_PARAMS = {
    "kill_grace": (non_negative(float), 5.0, "seconds from SIGTERM to SIGKILL on a timeout"),
    "cwd": (str, "", "working directory of the commands (default: the daemon's)"),
}


@builtin_job
class ExecCommand(Job):
    """Runs a command on its schedule: cron for rTorrent housekeeping, in the daemon.

    The command runs without a shell (unless ``shell = True``), in its own process
    group; its output is logged line by line; a run that is still going when the
    next one is due is not started twice.
    """

    PARAMS = {
        "command": (str, "", "the command line; split as a shell would, run without one"),
        "shell": (parse_bool, False, "run the command line with /bin/sh -c"),
        "timeout": (non_negative(float), 0.0, "seconds after which the command's process "
                    "group is killed (0: no limit)"),
        **_CHILD_PARAMS,
    }
    PARAM_PREFIXES = ("env.",)
    RPC_METHODS = ()

    def __init__(self, config):
        super().__init__(config)
        if not str(config.get("command") or "").strip():
            raise ConfigError("command: you need to set 'job.%s.command'" % self.name)
        self.argv = _command_argv(config.command, config.shell)
        self.label = _shown_command(self.argv)
        self.cwd = _work_dir(config.get("cwd"))
        self.env = _env_keys(config)
        self.timeout = config.get("timeout") or 0.0
        self.grace = config.kill_grace
        self.child = None
        self.runs = self.failures = self.overlaps = 0

    def run(self):
        if self.child is not None and self.child.running:
            self.overlaps += 1
            self.log.debug("Not starting %s again: the run started %.1f s ago (pid %d) is "
                           "still going", self.label,
                           time.monotonic() - self.child.started, self.child.pid)
            return
        if self.dry_run:
            self.log.info("Would run %s%s", self.label,
                          " in %s" % self.cwd if self.cwd else "")
            return
        self.runs += 1
        serving = _loop_turns(self.daemon)
        loop = self.daemon if serving else EventLoop()
        child = self.child = ChildProcess(self.argv, self.log, loop, env=self.env, cwd=self.cwd,
                                          timeout=self.timeout, grace=self.grace,
                                          on_exit=self._ended, label=self.label)
        if serving:
            if not child.start():
                self.failures += 1
            return
        try:
            child.run_blocking()        # --run-once: finish here, and say how it went
        finally:
            loop.close()
        if not child.ok:
            raise PyrotorqueError("%s %s" % (self.label, child.outcome()))

    def _ended(self, child):
        if not child.ok:
            self.failures += 1

    def status_text(self):
        if self.child is not None and self.child.running:
            return "running (pid %d)" % self.child.pid
        return "%d run%s, %d failed" % (self.runs, "" if self.runs == 1 else "s", self.failures)

    def close(self):
        if self.child is not None:
            self.child.kill("the job is closing")


###############################################################################
# Item templates ##############################################################
###############################################################################

class ItemTemplate(Template):
    """A Template whose values go through ``escape`` (default: none) instead of
    rTorrent's command escaping: for text that never becomes an rTorrent command
    (an XML-RPC value, a whole argv word, a log line)."""

    def __init__(self, text, name="template", escape=None):
        self.escape = escape or (lambda text: text)
        super().__init__(text, name)

    def names(self):
        """(field names, other names) the template reads; 'd.X'/'item.X' count as field X."""
        fields, others = set(), set()

        def walk_expr(tree):
            for sub in ast.walk(tree):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) \
                        and sub.value.id in _ITEM_NAMES and sub.attr not in _SAFE_METHODS[dict]:
                    fields.add(sub.attr)
                elif isinstance(sub, ast.Name):
                    (others if sub.id in _ITEM_NAMES or sub.id in _TEMPLATE_BUILTINS
                     else fields).add(sub.id)

        def walk(nodes):
            for node in nodes:
                if node[0] == "expr":
                    walk_expr(node[1])
                elif node[0] == "if":
                    for condition, body in node[1]:
                        walk_expr(condition)
                        walk(body)
                    walk(node[2])
        walk(self.nodes)
        return fields, others


#: Template names that mean the item itself: '{{d.name}}', '{{item.name}}'.
_ITEM_NAMES = ("d", "item")


class _ItemNamespace(dict):
    """An item as template names: each field by its name, and 'd' / 'item' for the item."""

    __slots__ = ("item",)

    def __init__(self, item):
        super().__init__()
        self.item = item

    def __contains__(self, name):
        if name in _ITEM_NAMES:
            return True
        try:
            field_for(name)
        except (KeyError, TypeError):
            return False
        return True

    def __getitem__(self, name):
        if name in _ITEM_NAMES:
            return self
        if not self.__contains__(name):
            raise KeyError(name)
        return self.item[name]

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default


def split_command_template(text, name="exec"):
    """Split a command template into one ItemTemplate per argv word.

    The line is split as a shell would split it (quotes, backslashes, a '~' that
    starts a word), with each '{{...}}' kept whole inside its word; then each word
    is a template whose values are not escaped or split again.  So '{{name}}' is exactly one argv
    word whatever the name holds, and no shell ever sees it.
    """
    parts = []

    def protect(found):
        parts.append(found.group(0))
        return "\x00%d\x00" % (len(parts) - 1)

    if "\x00" in text:
        raise TemplateError("a NUL character in %r" % text)
    masked = _TEMPLATE_TOKEN.sub(protect, text)
    try:
        words = shlex.split(masked)
    except ValueError as exc:
        raise TemplateError("%s in %r" % (exc, text)) from None
    if not words:
        raise TemplateError("no command in %r" % text)
    words = [re.sub("\x00(\\d+)\x00", lambda m: parts[int(m.group(1))], word) for word in words]
    return [ItemTemplate(os.path.expanduser(word) if word.startswith("~") else word, name)
            for word in words]


###############################################################################
# Action rules ################################################################
###############################################################################

#: Actions that can hang rTorrent 0.9.8 for good when sent during a hash check.
_DANGEROUS = frozenset(("stop", "close", "pause", "erase"))
_GERUNDS = {"start": "Starting", "stop": "Stopping", "close": "Closing", "pause": "Pausing",
            "resume": "Resuming", "erase": "Erasing"}
_PRIORITIES = {"off": 0, "low": 1, "normal": 2, "high": 3}
_CUSTOM_KEY = re.compile(r"[A-Za-z0-9_.-]+\Z")
_THROTTLE_NAME = re.compile(r"[A-Za-z0-9_.-]*\Z")
_PLAIN_ACTIONS = ("start", "stop", "close", "pause", "resume", "erase")
#: For each plain action: is it needed, given the item's state now (d.state, d.is_open,
#: d.is_active), and the calls that do it.  A start of a paused item (or one closed
#: while started) is a resume.
_PLAIN_NEEDED = {
    "start": lambda state, is_open, active: not active,
    "stop": lambda state, is_open, active: state == 1,
    "close": lambda state, is_open, active: state == 1 or is_open,
    "pause": lambda state, is_open, active: active,
    "resume": lambda state, is_open, active: state == 1 and not active,
    "erase": lambda state, is_open, active: True,
}
_PLAIN_CALLS = {
    "start": lambda state, is_open: ((() if is_open else ("d.open",))
                                     + (("d.start",) if state == 0 else ("d.resume",))),
    "stop": lambda state, is_open: ("d.stop",),
    "close": lambda state, is_open: (("d.stop",) if state == 1 else ()) + ("d.close",),
    "pause": lambda state, is_open: ("d.pause",),
    "resume": lambda state, is_open: (() if is_open else ("d.open",)) + ("d.resume",),
    "erase": lambda state, is_open: ("d.erase",),
}
_VALUE_ACTIONS = ("priority", "tag", "untag", "custom.KEY", "throttle", "print", "exec")


class _Action:
    """One parsed line of 'action'."""

    __slots__ = ("kind", "value", "key", "template", "words", "text")

    def __init__(self, kind, text, value=None, key=None, template=None, words=None):
        self.kind, self.text, self.value, self.key = kind, text, value, key
        self.template, self.words = template, words

    def __repr__(self):
        return "<_Action %s>" % self.text

    def templates(self):
        return ([self.template] if self.template else []) + list(self.words or ())


def parse_actions(text, allow_erase=False):
    """The actions of an 'action' value: one per line (so that a template may hold any
    character, commas and semicolons included); raise ConfigError('action: ...')."""
    actions = []
    for line in str(text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        name, value = name.strip(), value.strip()
        try:
            actions.append(_parse_action(name, equals, value, line, allow_erase))
        except TemplateError as exc:
            raise ConfigError("action: %r: %s" % (line, exc)) from None
    if not actions:
        raise ConfigError("action: no action given (one per line: %s)"
                          % ", ".join(_PLAIN_ACTIONS + tuple(a + "=..." for a in _VALUE_ACTIONS)))
    return actions


def _parse_action(name, equals, value, line, allow_erase):
    def bad(message):
        return ConfigError("action: %r: %s" % (line, message))

    if name in _PLAIN_ACTIONS:
        if equals:
            raise bad("'%s' takes no value" % name)
        if name == "erase" and not allow_erase:
            raise bad("'erase' removes items from rTorrent; set allow_erase = True to allow it "
                      "(the data is never deleted)")
        return _Action(name, line)
    if not equals:
        known = list(_PLAIN_ACTIONS) + [a.split(".")[0] for a in _VALUE_ACTIONS]
        if name in known:
            raise bad("'%s' needs a value: %s=..." % (name, name))
        raise bad("unknown action%s (actions: %s)" % (
            _did_you_mean(name, known), ", ".join(_PLAIN_ACTIONS + _VALUE_ACTIONS)))
    if name == "priority":
        number = _PRIORITIES.get(value.lower(), value)
        try:
            number = int(number)
        except ValueError:
            number = -1
        if not 0 <= number <= 3:
            raise bad("a priority is 0-3 or off, low, normal, high")
        return _Action(name, line, value=number)
    if name in ("tag", "untag"):
        words = value.split()
        if not words:
            raise bad("give the tag word(s)")
        return _Action(name, line, value=words)
    if name == "throttle":
        throttle = "" if value.lower() == "none" else value
        if not _THROTTLE_NAME.match(throttle):
            raise bad("%r is not a throttle name (letters, digits, '_.-'; NONE for none)" % value)
        return _Action(name, line, value=throttle)
    if name.startswith("custom.") or name.startswith("custom_"):
        key = name[7:]
        if not _CUSTOM_KEY.match(key):
            raise bad("%r is not a custom key (letters, digits, '_.-')" % key)
        return _Action("custom", line, key=key, template=ItemTemplate(value, name, _sendable))
    if name == "print":
        return _Action(name, line, template=ItemTemplate(value, name, _log_safe))
    if name == "exec":
        return _Action(name, line, words=split_command_template(value, name))
    raise bad("unknown action%s (actions: %s)" % (
        _did_you_mean(name, list(_PLAIN_ACTIONS) + ["priority", "tag", "untag", "custom",
                                                    "throttle", "print", "exec"]),
        ", ".join(_PLAIN_ACTIONS + _VALUE_ACTIONS)))


class _Task:
    """One matched item on its way through the actions."""

    __slots__ = ("item", "index")

    def __init__(self, item):
        self.item, self.index = item, 0


class _RunTally:
    """What one run of a rule did."""

    def __init__(self, matched, left):
        self.matched, self.left = matched, left
        self.acted = self.skipped = self.failed = 0
        self.started = time.monotonic()


def required_matcher(job, frame="%s"):
    """The job's 'matcher' condition (put into ``frame``); ConfigError('matcher: ...')."""
    text = str(job.config.get("matcher") or "")
    if not text.strip():
        raise ConfigError("matcher: you need to set 'job.%s.matcher' (a condition)" % job.name)
    try:
        return parse_condition(frame % text)
    except ConditionError as exc:
        raise ConfigError("matcher: %s" % exc) from None


def sort_order(config):
    """A Sorter for the job's 'sort_fields', or None; ConfigError('sort_fields: ...')."""
    try:
        return parse_sort_fields(config.sort_fields) \
            if str(config.get("sort_fields") or "").strip() else None
    except ConfigError as exc:
        raise ConfigError("sort_fields: %s" % exc) from None


@builtin_job
class ActionRule(Job):
    """rtcontrol as a job: does the actions to every item that matches the condition.

    Each run fetches the view once (only the fields the matcher, the sort order and
    the templates need), acts on the matches in ``sort_fields`` order, at most
    ``max_items`` of them, and logs a summary.  The actions of one item are done in
    the order given; an ``exec`` holds back the item's later actions (and the later
    items) until its command ends, and if it fails those later actions are not done.
    """

    PARAMS = {
        "matcher": (str, "", "which items to act on (a condition; required)"),
        "view": (str, "main", "the rTorrent view to look at"),
        "sort_fields": (str, "", "the order in which matches are acted on"),
        "max_items": (non_negative(int), 0, "act on at most this many items per run (0: all)"),
        "action": (str, "", "what to do to each match, one action per line"),
        "allow_erase": (parse_bool, False, "allow the 'erase' action (the data is never deleted)"),
        "exec_timeout": (non_negative(float), 60.0, "seconds an exec command may take "
                         "(0: no limit)"),
        **_CHILD_PARAMS,
    }
    PARAM_PREFIXES = ("env.",)
    RPC_METHODS = ("d.multicall2", "system.multicall", "d.state", "d.is_open", "d.is_active",
                   "d.hashing", "d.is_hash_checking", "d.open", "d.start", "d.stop", "d.close",
                   "d.pause", "d.resume", "d.erase", "d.priority.set", "d.custom.set",
                   "d.throttle_name.set")

    def __init__(self, config):
        super().__init__(config)
        self.items = config.get("item_source")
        self.matcher = required_matcher(self)
        self.sorter = sort_order(config)
        self.actions = parse_actions(config.action, config.allow_erase)
        self._guarded = "/".join(sorted({a.kind for a in self.actions
                                         if a.kind in _DANGEROUS or a.kind == "throttle"}))
        fields = set(self.matcher.fields) | {"name"}
        if self.sorter:
            fields |= set(self.sorter.fields)
        for action in self.actions:
            for template in action.templates():
                used, _ = template.names()
                for name in used:
                    try:
                        field_for(name)
                    except KeyError:
                        raise ConfigError("action: %r: no field %r" % (action.text, name)) from None
                fields |= used
            if action.kind in ("tag", "untag"):
                fields.add("custom_tags")
        self.fields = fields
        self.max_items = config.max_items
        self.view = config.view or "main"
        self.exec_timeout = config.exec_timeout
        self.grace = config.kill_grace
        self.cwd = _work_dir(config.get("cwd"))
        self.env = _env_keys(config)
        self.child = None
        self._queue = collections.deque()
        self._tally = None
        self._closed = False
        self.totals = collections.Counter()
        self.log.info("Rule '%s': [ %s ] in view %r -> %s", self.name, self.matcher, self.view,
                      "; ".join(_log_safe(a.text) for a in self.actions))

    # -- a run -------------------------------------------------------------------------

    def run(self):
        if self._queue:
            self.log.debug("The previous run still works through %d item(s) (a command is "
                           "running); not starting another", len(self._queue))
            return
        self.proxy.connect()
        items = self.items.fetch(self.view, self.fields, self.matcher)
        matched = [item for item in items if self.matcher.match(item)]
        if self.sorter:
            matched = self.sorter(matched)
        chosen = matched[:self.max_items] if self.max_items else matched
        self._tally = _RunTally(len(matched), len(matched) - len(chosen))
        self._queue.extend(_Task(item) for item in chosen)
        self._advance(raise_down=True)

    def _advance(self, raise_down=False):
        """Work through the items until all are done or one waits for its command."""
        try:
            while self._queue and not self._closed:
                task = self._queue[0]
                outcome = self._step(task)
                if outcome == "wait":
                    return
                self._queue.popleft()
                setattr(self._tally, outcome, getattr(self._tally, outcome) + 1)
        except RtorrentUnavailable as exc:
            left = len(self._queue)
            self._queue.clear()
            self._summary(" (rTorrent went away, %d item(s) not done)" % left)
            if raise_down:
                raise
            self.log.warning("%s", exc)
            return
        except BaseException:       # never leave a queue behind that blocks all later runs
            left = len(self._queue)
            self._queue.clear()
            self._summary(" (stopped by an error, %d item(s) not done)" % left)
            raise
        if not self._closed:
            self._summary()

    def _summary(self, extra=""):
        tally, self._tally = self._tally, None
        if tally is None:
            return
        self.totals.update(matched=tally.matched, acted=tally.acted, skipped=tally.skipped,
                           failed=tally.failed)
        if tally.acted and not self.dry_run and self.config.get("item_source") is not None:
            self.config.get("item_source").invalidate()      # a shared snapshot no longer tells the truth
        level = logging.INFO if tally.matched else logging.DEBUG
        self.log.log(level, "%s%d matched, %d %s, %d skipped, %d failed%s in %.2f s%s",
                     "DRY RUN: " if self.dry_run else "", tally.matched, tally.acted,
                     "would be acted on" if self.dry_run else "acted on", tally.skipped,
                     tally.failed, ", %d left for later runs (max_items)" % tally.left
                     if tally.left else "", time.monotonic() - tally.started, extra)

    def _step(self, task):
        """Do the item's actions from where it stands: 'acted', 'skipped', 'failed' or 'wait'."""
        item = task.item
        if task.index == 0 and self._guarded:
            try:
                if self._hash_checking(item):
                    return "skipped"
            except RtorrentUnavailable:
                raise
            except RtorrentError as exc:
                self.log.warning("Checking %s failed: %s", self._where(item), exc)
                return "failed"
        while task.index < len(self.actions):
            action = self.actions[task.index]
            task.index += 1
            try:
                result = self._do(action, task)
            except RtorrentUnavailable:
                raise
            except (RtorrentError, TemplateError) as exc:
                self.log.warning("%s on %s failed: %s", _log_safe(action.text),
                                 self._where(item), exc)
                return "failed"
            if result in ("wait", "skipped", "failed"):
                return result
        return "acted"

    def _where(self, item):
        return _shown_item(item["name"], item.hash)

    def _fresh(self, item):
        """The item's state now, not at the fetch: (state, open, active, hash-checking)."""
        state, is_open, active, hashing, checking = self.proxy.multicall([
            ("d.state", item.hash), ("d.is_open", item.hash), ("d.is_active", item.hash),
            ("d.hashing", item.hash), ("d.is_hash_checking", item.hash)])
        return int(state), bool(is_open), bool(active), bool(hashing or checking)

    def _hash_checking(self, item):
        if not self._fresh(item)[3]:
            return False
        self._skip_hashing(item, self._guarded)
        return True

    def _skip_hashing(self, item, action):
        self.log.info("%sSkipping %s: it is hash-checking, and %s during a hash check can hang "
                      "rTorrent", "DRY RUN: " if self.dry_run else "", self._where(item), action)

    def _do(self, action, task):
        """One action on one item; returns None, or 'wait' / 'skipped' / 'failed'."""
        return self._ACTIONS[action.kind](self, action, task)

    def _print(self, action, task):
        self.log.info("%s", action.template.render(_ItemNamespace(task.item)))

    def _custom(self, action, task):
        item = task.item
        value = action.template.render(_ItemNamespace(item))
        if self.dry_run:
            self.log.info("Would set custom %r of %s to '%s'", action.key, self._where(item),
                          _log_safe(value))
        elif action.key in ("1", "2", "3", "4", "5"):
            self.proxy.call("d.custom%s.set" % action.key, item.hash, value)
        else:
            self.proxy.call("d.custom.set", item.hash, action.key, value)

    def _priority(self, action, task):
        if self.dry_run:
            self.log.info("Would set the priority of %s to %d", self._where(task.item),
                          action.value)
        else:
            self.proxy.call("d.priority.set", task.item.hash, action.value)

    def _throttle(self, action, task):
        item, h = task.item, task.item.hash
        _, _, active, checking = self._fresh(item)
        if checking and active:
            self._skip_hashing(item, "stop (to change the throttle)")
            return "skipped"
        if self.dry_run:
            self.log.info("Would set the throttle of %s to %r%s", self._where(item),
                          action.value or "NONE", " (stopping and starting it)" if active else "")
            return None
        if active:      # rTorrent refuses to change the throttle of an active item
            self.proxy.call("d.stop", h)
            try:
                self.proxy.call("d.throttle_name.set", h, action.value)
            finally:
                self.proxy.call("d.start", h)
        else:
            self.proxy.call("d.throttle_name.set", h, action.value)
        return None

    def _plain(self, action, task):
        """start, stop, close, pause, resume, erase: what the item's state now needs."""
        item, kind, where = task.item, action.kind, self._where(task.item)
        state, is_open, active, checking = self._fresh(item)
        if checking and kind in _DANGEROUS:
            self._skip_hashing(item, kind)
            return "skipped"
        if not _PLAIN_NEEDED[kind](state, is_open, active):
            self.log.debug("%s: no need to %s it", where, kind)
            return None
        if self.dry_run:
            self.log.info("Would %s %s", kind, where)
            return None
        self.log.info("%s %s", _GERUNDS[kind], where)
        for method in _PLAIN_CALLS[kind](state, is_open):
            self.proxy.call(method, item.hash)
        return None

    def _tags(self, action, task):
        item = task.item
        words = str(item["custom_tags"] or "").split()
        lower = {w.lower() for w in words}
        if action.kind == "tag":
            new = words + [w for w in action.value if w.lower() not in lower]
        else:
            drop = {w.lower() for w in action.value}
            new = [w for w in words if w.lower() not in drop]
        if new == words:
            self.log.debug("%s: tags already %r", self._where(item), " ".join(words))
            return None
        text = " ".join(new)
        if self.dry_run:
            self.log.info("Would set the tags of %s to %r", self._where(item), text)
        else:
            self.proxy.call("d.custom.set", item.hash, "tags", text)
        item["custom_tags"] = text      # later actions of this run see the change
        return None

    def _exec(self, action, task):
        item = task.item
        ns = _ItemNamespace(item)
        argv = [word.render(ns) for word in action.words]
        if self.dry_run:
            self.log.info("Would run %s for %s", _shown_command(argv), self._where(item))
            return None
        self.log.info("Running %s for %s", _shown_command(argv), self._where(item))
        serving = _loop_turns(self.daemon)
        loop = self.daemon if serving else EventLoop()
        child = self.child = ChildProcess(
            argv, self.log, loop, env=self.env, cwd=self.cwd, timeout=self.exec_timeout,
            grace=self.grace, label="exec for %s" % self._where(item),
            on_exit=(lambda c: self._exec_ended(task, c)) if serving else None)
        if serving:
            return "wait" if child.start() else "failed"
        try:
            child.run_blocking()
        finally:
            loop.close()
        return None if child.ok else "failed"

    def _exec_ended(self, task, child):
        """A command of an item ended (in the loop): go on with that item and the rest."""
        if self._closed or not self._queue or self._queue[0] is not task:
            return
        if not child.ok:
            self._queue.popleft()
            self._tally.failed += 1
        try:
            self._advance()
        except Exception:       # from a loop callback: log it, the next run starts afresh
            self._queue.clear()
            self._summary()
            self.log.exception("While acting on the items")

    def status_text(self):
        return "%d acted on, %d skipped, %d failed" % (
            self.totals["acted"], self.totals["skipped"], self.totals["failed"])

    def close(self):
        self._closed = True
        if self._queue:
            self.log.info("Closing with %d item(s) not done", len(self._queue))
            self._queue.clear()
        if self.child is not None:
            self.child.kill("the job is closing")

    #: The method that does each kind of action (_do's table).
    _ACTIONS = dict(dict.fromkeys(_PLAIN_ACTIONS, _plain), print=_print, exec=_exec,
                    custom=_custom, tag=_tags, untag=_tags, priority=_priority,
                    throttle=_throttle)


###############################################################################
# Completion handler ##########################################################
###############################################################################
#
# Moving the data of a completed item is the one place where the daemon touches
# payload data, so it is done like a database would: a small journal (one JSON
# file per job, replaced atomically) records the move before any byte moves and
# after each step that changes where the data is whole:
#
#   stop    the item is being stopped and closed; the data is at the source
#   rename  os.rename (no-replace) source -> target; the data is at one of them
#   copy    (across filesystems) copying into TARGETDIR/.pyrotorque-partial-HASH
#           and comparing the copy with the source; the data is at the source
#   place   the verified copy is renamed into place (no-replace)
#   delete  the target is whole; the source is renamed to .pyrotorque-deleting-HASH
#           in its folder and removed
#   point   the data is at the target; rTorrent is told (d.directory.set /
#           d.directory_base.set) and the item is started again if it was
#
# An interrupted move (a crash, SIGKILL, a failed copy, the job closing) is
# finished from 'place' on and rolled back before: the partial copy is removed
# and rTorrent is pointed at the source again.  So the data is whole in exactly
# one place at every moment, and the journal says which.

#: Names of the temporary paths a move makes (never a name rTorrent would use).
_PARTIAL = ".pyrotorque-partial-"
_DELETING = ".pyrotorque-deleting-"

#: Seconds a failed move of an item waits before it is tried again.
COMPLETION_RETRY = 3600.0

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _rename_noreplace(source, target):
    """Rename ``source`` to ``target``, never replacing an existing ``target``.

    Uses renameat2(RENAME_NOREPLACE) (atomic); on a filesystem or libc without it,
    a check for ``target`` right before os.rename.  EXDEV goes to the caller.
    """
    func = None
    try:
        libc = _libc()
        func = getattr(libc, "renameat2", None)
    except (OSError, AttributeError):
        pass
    if func is not None:
        func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
        if func(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target),
                _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), source, None, target)
    if os.path.lexists(target):
        raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), source, None, target)
    os.rename(source, target)


def _remove_path(path):
    """Remove a file, symlink or tree (no error if it is gone)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _payload_entries(root):
    """[(relpath, kind)] of a file or a tree, parents first; kind is file, dir or link."""
    mode = os.lstat(root).st_mode
    if stat.S_ISLNK(mode):
        return [("", "link")]
    if stat.S_ISREG(mode):
        return [("", "file")]
    if not stat.S_ISDIR(mode):
        raise OSError(errno.EINVAL, "not a file, folder or symlink", root)
    entries = [("", "dir")]
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        dirnames.sort()
        for name in list(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                entries.append((os.path.join(rel, name), "link"))
                dirnames.remove(name)
            else:
                entries.append((os.path.join(rel, name), "dir"))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                kind = "link"
            elif stat.S_ISREG(os.lstat(full).st_mode):
                kind = "file"
            else:
                raise OSError(errno.EINVAL, "not a file, folder or symlink", full)
            entries.append((os.path.join(rel, name), kind))
    return entries


def _copy_steps(source, target, chunk):
    """Copy a file or tree to ``target`` (which must not exist), fsynced, keeping modes and
    times (so rTorrent needs no hash check); yields the bytes copied in each step."""
    entries = _payload_entries(source)
    for rel, kind in entries:
        src = os.path.join(source, rel) if rel else source
        dst = os.path.join(target, rel) if rel else target
        if kind == "dir":
            os.mkdir(dst, 0o700)
        elif kind == "link":
            os.symlink(os.readlink(src), dst)
        else:
            with open(src, "rb") as fin:
                fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fout:
                    while True:
                        block = fin.read(chunk)
                        if not block:
                            break
                        fout.write(block)
                        yield len(block)
                    fout.flush()
                    os.fsync(fout.fileno())
            _copy_meta(src, dst)
    for rel, kind in reversed(entries):
        if kind == "dir":
            dst = os.path.join(target, rel) if rel else target
            _copy_meta(os.path.join(source, rel) if rel else source, dst)
            fsync_dir(dst)
    fsync_dir(os.path.dirname(target))


def _tree_size(root):
    """Bytes in the regular files of a file or tree (symlinks not followed)."""
    if not os.path.isdir(root) or os.path.islink(root):
        return os.lstat(root).st_size if not os.path.islink(root) else 0
    return sum(os.lstat(os.path.join(folder, name)).st_size
               for folder, _, names in os.walk(root) for name in names
               if not os.path.islink(os.path.join(folder, name)))


def _free_bytes(folder):
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def _copy_meta(src, dst):
    shutil.copystat(src, dst)
    if os.geteuid() == 0:
        st = os.stat(src)
        try:
            os.chown(dst, st.st_uid, st.st_gid)
        except OSError:
            pass


class CopyMismatch(OSError):
    """The copy of an item's data differs from the original."""


def _verify_steps(source, target, chunk):
    """Compare a copy with its original: the same entries, sizes and bytes (the copy is
    read back from the disk, not the page cache, where the kernel allows it)."""
    entries = _payload_entries(source)
    if _payload_entries(target) != entries:
        raise CopyMismatch(errno.EIO, "the copy does not hold the same files", target)
    for rel, kind in entries:
        src = os.path.join(source, rel) if rel else source
        dst = os.path.join(target, rel) if rel else target
        if kind == "link":
            if os.readlink(src) != os.readlink(dst):
                raise CopyMismatch(errno.EIO, "symlink differs", dst)
        elif kind == "file":
            if os.path.getsize(src) != os.path.getsize(dst):
                raise CopyMismatch(errno.EIO, "size differs", dst)
            with open(src, "rb") as left, open(dst, "rb") as right:
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(right.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                while True:
                    block = left.read(chunk)
                    if block != right.read(chunk):
                        raise CopyMismatch(errno.EIO, "content differs", dst)
                    if not block:
                        break
                    yield len(block)


class _TargetNamespace(_ItemNamespace):
    """Template names for the target: the item's fields plus ``label`` and ``relpath``."""

    __slots__ = ("extra",)

    def __init__(self, item, extra):
        super().__init__(item)
        self.extra = extra

    def __contains__(self, name):
        return name in self.extra or super().__contains__(name)

    def __getitem__(self, name):
        if name in self.extra:
            return self.extra[name]
        return super().__getitem__(name)


#: Template names the completion handler adds to the item's fields.
_TARGET_NAMES = ("label", "relpath")


@builtin_job
class CompletionHandler(SteppedJob):
    """Moves the data of completed items to their target folder and keeps them seeding.

    The target folder of an item is its ``targetdir`` custom (set by a tree watch
    ``cmd.target``), else the ``target`` template.  The item is stopped (never while
    it hash-checks), its data renamed, or across filesystems copied, verified and
    then deleted, rTorrent is pointed at the new place and the item started again.
    An existing path at the target is never replaced.  Moves are journalled, so a
    move cut short is finished or rolled back at the next run.
    """

    PARAMS = {
        "matcher": (str, "", "which complete items to move (a condition; default: all)"),
        "target": (str, "", "target folder template, for items without a targetdir custom"),
        "view": (str, "main", "the rTorrent view to look at"),
        "max_items": (non_negative(int), 0, "start at most this many moves per run (0: all)"),
        "copy_chunk": (byte_size, 8 * 1024 * 1024, "bytes copied per step of the main loop"),
        "copy_rate": (byte_size, 0, "limit copies across filesystems to this many bytes/s "
                      "(0: no limit)"),
        "journal": (str, "", "the journal file (default: <config dir>/run/completion-NAME.json)"),
        "use_targetdir": (parse_bool, True, "an item's targetdir custom wins over 'target' "
                          "(pyrosimple's PathMover: False)"),
    }
    RPC_METHODS = ("d.multicall2", "system.multicall", "d.state", "d.is_open", "d.is_active",
                   "d.hashing", "d.is_hash_checking", "d.complete", "d.directory",
                   "d.is_multi_file", "d.name", "d.base_path", "d.stop", "d.close", "d.open",
                   "d.start", "d.directory.set", "d.directory_base.set", "d.custom.set",
                   "directory.default", "d.save_full_session")

    def __init__(self, config):
        super().__init__(config)
        self.items = config.get("item_source")
        text = config.matcher.strip()
        condition = "is_complete=yes" + (" [ %s ]" % text if text else "")
        try:
            self.matcher = parse_condition(condition)
        except ConditionError as exc:
            raise ConfigError("matcher: %s" % exc) from None
        self.template = None
        self.use_targetdir = config.use_targetdir
        fields = set(self.matcher.fields) | {"name", "directory", "is_multi_file"} | (
            {"custom_targetdir"} if self.use_targetdir else set())
        target = config.target.strip()
        if target:
            try:
                self.template = ItemTemplate(target, "target")
                used, _ = self.template.names()
            except TemplateError as exc:
                raise ConfigError("target: %s" % exc) from None
            for name in used - set(_TARGET_NAMES):
                try:
                    field_for(name)
                except KeyError:
                    raise ConfigError("target: no field or name %r (fields, label, relpath)"
                                      % name) from None
                fields.add(name)
            if "label" in used:
                fields.add("traits")
        self.fields = fields
        self.view = config.get("view") or "main"
        self.max_items = config.max_items
        self.chunk = max(64 * 1024, config.copy_chunk or 8 * 1024 * 1024)
        self.rate = config.copy_rate
        self.journal = job_path(config, config.journal, "run/completion-%s.json" % self.name)
        self._started = time.monotonic()
        self._failed = {}           # hash -> monotonic time of a failed move
        self._told = set()          # (hash, reason) said at info level already
        self._download_root = None
        self.totals = collections.Counter()
        self.log.info("Completion handler '%s': [ %s ] in view %r -> %s%s", self.name,
                      self.matcher, self.view, "targetdir custom, else " if self.use_targetdir
                      else "", repr(target) if target else "nothing (no 'target' template)")

    # -- a run -------------------------------------------------------------------------

    def run(self):
        if self._gen is not None:
            self.log.debug("Still moving %s; no new moves until it is done",
                           self._where(self._work))
            return
        self.proxy.connect()
        if not self._recover_journal():
            return
        items = self.items.fetch(self.view, self.fields, self.matcher)
        chosen = []
        for item in items:
            if not self.matcher.match(item):
                continue
            target_dir = self._target_dir(item)
            if target_dir is None:
                continue
            if self._chosen_enough(chosen):
                break
            chosen.append((item, target_dir))
        self._pending = collections.deque(chosen)
        self._next()

    def _target_dir(self, item):
        """The item's target folder (absolute, normalized), or None: nothing to do."""
        where = self._where(item)
        target = str(item["custom_targetdir"] or "").strip() if self.use_targetdir else ""
        origin = "targetdir custom"
        if not target and self.template is not None:
            origin = "target template"
            try:
                target = self.template.render(_TargetNamespace(item, self._extra(item))).strip()
            except TemplateError as exc:
                self._say(item, "template", logging.WARNING, "%s waits: the target template "
                          "failed: %s", where, exc)
                return None
        if not target:
            self.log.debug("%s has no target (no targetdir custom%s)", where,
                           "" if self.template is None else ", the template gave ''")
            return None
        target = os.path.expanduser(target)
        if not os.path.isabs(target):
            self._say(item, "relative", logging.WARNING, "%s waits: its %s %r is not an "
                      "absolute path", where, origin, target)
            return None
        target = os.path.normpath(target)
        source = self._source_path(item["directory"], item["name"], item["is_multi_file"])
        if source and os.path.realpath(os.path.dirname(source)) == os.path.realpath(target):
            self.log.debug("%s is at its target %s already", where, target)
            return None
        return target

    def _extra(self, item):
        """'label' (e.g. tv/mkv) and 'relpath' (the data's folder below rTorrent's
        directory.default, '' elsewhere) for the target template."""
        extra = {"label": "", "relpath": ""}
        try:
            extra["label"] = "/".join(item["traits"] or ()).strip("/")
        except KeyError:
            pass
        if self._download_root is None:
            try:
                self._download_root = os.path.expanduser(
                    str(self.proxy.call("directory.default") or ""))
            except RtorrentUnavailable:
                raise
            except RtorrentError:
                self._download_root = ""
        source = self._source_path(item["directory"], item["name"], item["is_multi_file"])
        root = self._download_root.rstrip("/")
        if root and source:
            rel = os.path.relpath(os.path.dirname(source), root)
            if rel != "." and not rel.startswith(".."):
                extra["relpath"] = rel
        return extra

    @staticmethod
    def _source_path(directory, name, multi):
        """Where an item's data is: d.directory for a multi-file item (d.base_path is
        stale while it is closed, and '' before it was ever opened), else dir/name."""
        directory = os.path.expanduser(str(directory or ""))
        if not directory:
            return ""
        return os.path.normpath(directory if multi else os.path.join(directory, str(name)))

    def _where(self, item):
        if item is None:
            return "?"
        return _shown_item(item["name"], item["hash"])

    def _say(self, item, reason, level, message, *args):
        """Log why an item waits: at ``level`` the first time, at debug after that."""
        key = (item["hash"], reason)
        if key in self._told:
            level = logging.DEBUG
        self._told.add(key)
        self.log.log(level, message, *args)

    # -- starting one move (SteppedJob's work is a journal entry) ----------------------

    WORK = "move"

    def _would(self, entry):
        self.log.info("WOULD move %s from %s to %s", self._where(entry), entry["source"],
                      entry["target"])
        self.totals["would move"] += 1

    def _fresh(self, info_hash):
        """The item's state now: a dict of the fields a move decides on."""
        names = ("state", "is_open", "is_active", "hashing", "is_hash_checking", "complete",
                 "directory", "is_multi_file", "name")
        values = self.proxy.multicall([("d." + n, info_hash) for n in names])
        return dict(zip(names, values))

    def _prepare(self, pending):
        """Check an item right before its move; its journal entry, or None if it waits."""
        item, target_dir = pending
        where = self._where(item)
        failed = self._failed.get(item.hash)
        if failed is not None and time.monotonic() - failed < COMPLETION_RETRY:
            self.log.debug("%s waits: its last move failed %d s ago (retried after %d s)",
                           where, time.monotonic() - failed, COMPLETION_RETRY)
            return None
        try:
            now = self._fresh(item.hash)
        except HashNotFound:
            self.log.debug("%s is gone from rTorrent", where)
            return None
        except RtorrentUnavailable:
            raise
        except RtorrentError as exc:
            self.log.warning("Checking %s failed: %s", where, exc)
            return None
        if now["hashing"] or now["is_hash_checking"]:
            self.log.debug("%s waits: it is hash-checking (stopping it now can hang rTorrent)",
                           where)
            return None
        if not now["complete"]:
            self.log.debug("%s waits: it is not complete any more", where)
            return None
        if now["state"] == 1 and not now["is_active"]:
            self.log.debug("%s waits: it is paused (resume or stop it to have it moved)", where)
            return None
        multi = bool(now["is_multi_file"])
        source = self._source_path(now["directory"], now["name"], multi)
        if not source or not os.path.lexists(source):
            self._say(item, "ghost", logging.WARNING, "%s waits: its data %r is missing",
                      where, source)
            return None
        target = os.path.join(target_dir, os.path.basename(source))
        if os.path.realpath(os.path.dirname(source)) == os.path.realpath(target_dir):
            self.log.debug("%s is at its target %s already", where, target_dir)
            return None
        real_source = os.path.realpath(source)
        if os.path.realpath(target_dir) == real_source or \
                os.path.realpath(target_dir).startswith(real_source.rstrip("/") + "/"):
            self._say(item, "inside", logging.WARNING, "%s waits: its target %s is inside "
                      "its own data", where, target_dir)
            return None
        if os.path.lexists(target):
            self._say(item, "exists:" + target, logging.WARNING, "%s waits: %s exists already "
                      "(a move never replaces anything)", where, target)
            return None
        partial = os.path.join(target_dir, _PARTIAL + item.hash)
        return {
            "hash": item.hash, "name": now["name"], "multi": multi, "source": source,
            "target": target, "target_dir": target_dir, "partial": partial,
            "deleting": os.path.join(os.path.dirname(source), _DELETING + item.hash),
            "was": "started" if now["state"] == 1 else "open" if now["is_open"] else "closed",
            "phase": "stop", "bytes": 0, "method": "",
        }

    def _steps(self, entry):
        self._started = time.monotonic()
        return self._move_steps(entry)

    def _work_done(self, entry):
        self.totals["moved"] += 1

    def _work_failed(self, entry, exc):
        if isinstance(exc, RtorrentUnavailable):
            self.log.warning("Moving %s: rTorrent went away (%s); the move is settled when it "
                             "is back", self._where(entry), exc)
            return
        self._failed[entry["hash"]] = time.monotonic()
        self.totals["failed"] += 1
        self.log.error("Moving %s from %s to %s failed in phase '%s': %s: %s",
                       self._where(entry), entry["source"], entry["target"], entry["phase"],
                       exc.__class__.__name__, exc)
        try:
            self._recover(entry)
        except RtorrentUnavailable as down:
            self.log.warning("Cannot tell rTorrent about %s now (%s); done at the next run",
                             self._where(entry), down)
        except Exception as again:
            self.log.error("Recovering the move of %s failed: %s: %s (the journal %s keeps it "
                           "for the next run)", self._where(entry), again.__class__.__name__,
                           again, self.journal)

    # -- the move, step by step -------------------------------------------------------

    def _move_steps(self, entry):
        """The move as a generator: each ``yield`` gives the seconds until the next step."""
        where = self._where(entry)
        self._write_journal(entry, "stop")
        self._stop_item(entry)
        os.makedirs(entry["target_dir"], exist_ok=True)
        self._write_journal(entry, "rename")
        try:
            _rename_noreplace(entry["source"], entry["target"])
            entry["method"] = "rename"
            fsync_dir(entry["target_dir"])
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            entry["method"] = "copy"
        self.log.info("Moving %s from %s to %s (%s)", where, entry["source"], entry["target"],
                      "renamed" if entry["method"] == "rename" else "copying across filesystems")
        if entry["method"] == "copy":
            self._write_journal(entry, "copy")
            if os.path.lexists(entry["partial"]):      # ours, left by an earlier attempt
                _remove_path(entry["partial"])
            need, free = _tree_size(entry["source"]), _free_bytes(entry["target_dir"])
            if need > free:
                raise OSError(errno.ENOSPC, "%s needed, %s free" % (human_size(need),
                                                                 human_size(free)),
                              entry["target_dir"])
            for count in _copy_steps(entry["source"], entry["partial"], self.chunk):
                entry["bytes"] += count
                yield count / self.rate if self.rate else 0
            for _ in _verify_steps(entry["source"], entry["partial"], self.chunk):
                yield 0
            self.log.debug("%s: copy of %s verified", where, human_size(entry["bytes"]))
            self._write_journal(entry, "place")
            _rename_noreplace(entry["partial"], entry["target"])
            fsync_dir(entry["target_dir"])
            self._write_journal(entry, "delete")
            self._delete_source(entry)
            yield 0
        self._write_journal(entry, "point")
        self._settle(entry, entry["target"], "moved")

    def _stop_item(self, entry):
        """Stop and close the item (rTorrent keeps its files open until d.close)."""
        h = entry["hash"]
        now = self._fresh(h)
        if now["hashing"] or now["is_hash_checking"]:
            raise RtorrentError("it started a hash check; not stopping it")
        if now["state"] == 1:
            self.proxy.call("d.stop", h)
        if now["state"] == 1 or now["is_open"]:
            self.proxy.call("d.close", h)

    def _delete_source(self, entry):
        """Remove the source, first renamed so that its path is whole or gone."""
        if os.path.lexists(entry["source"]):
            os.rename(entry["source"], entry["deleting"])
        if os.path.lexists(entry["deleting"]):
            _remove_path(entry["deleting"])
        fsync_dir(os.path.dirname(entry["source"]))

    def _settle(self, entry, path, outcome):
        """Point rTorrent at ``path``, bring the item back to how it was, forget the move."""
        h, where = entry["hash"], self._where(entry)
        try:
            if entry["multi"]:
                self.proxy.call("d.directory_base.set", h, path)
            else:
                self.proxy.call("d.directory.set", h, os.path.dirname(path))
            if outcome == "moved":
                self.proxy.call("d.custom.set", h, "targetdir", entry["target_dir"])
            self.proxy.call("d.open", h)    # opens the files at once, which refreshes d.base_path
            if entry["was"] == "started":
                self.proxy.call("d.start", h)
            elif entry["was"] == "closed":
                now = self._fresh(h)
                if not (now["hashing"] or now["is_hash_checking"]):
                    self.proxy.call("d.close", h)
            base = self.proxy.call("d.base_path", h)
            # rTorrent writes its session only every 20 minutes: killed before that, it
            # would come back pointing at the old place, where the data is gone.
            self.proxy.call("d.save_full_session", h)
        except HashNotFound:
            self.log.warning("%s was removed from rTorrent during its move; its data is at %s",
                             where, path)
            self._clear_journal()
            return
        self._clear_journal()
        if getattr(self.items, "invalidate", None):
            self.items.invalidate()
        if base and os.path.normpath(base) != os.path.normpath(path):
            self.log.warning("%s: rTorrent says its data is at %r, expected %r", where, base, path)
        took = time.monotonic() - getattr(self, "_started", time.monotonic())
        if outcome == "moved":
            self.log.info("Moved %s to %s (%s%s) in %.2f s%s", where, path, entry["method"],
                          ", %s" % human_size(entry["bytes"]) if entry["bytes"] else "", took,
                          ", seeding again" if entry["was"] == "started" else "")
        else:
            self.log.info("%s %s: its data is at %s%s", outcome, where, path,
                          ", seeding again" if entry["was"] == "started" else "")

    # -- the journal and recovery -----------------------------------------------------

    def _write_journal(self, entry, phase):
        entry["phase"] = phase
        write_json_atomic(self.journal, {"version": 1, "move": entry})
        self.log.debug("Journal: %s %s", phase, self._where(entry))

    def _clear_journal(self):
        if os.path.exists(self.journal):
            os.unlink(self.journal)
            fsync_dir(os.path.dirname(self.journal))

    def _read_journal(self):
        entry = read_json_state(self.journal, self.log, "The journal", "No data was deleted: "
                                "look for %s* folders/files left behind" % _PARTIAL,
                                self._journal_entry)
        if entry is not None:
            entry.setdefault("bytes", 0)
            entry.setdefault("method", "")
        return entry

    @staticmethod
    def _journal_entry(data):
        entry = data["move"]
        for key in ("hash", "name", "source", "target", "target_dir", "partial", "deleting",
                    "phase", "was", "multi"):
            entry[key]
        return entry

    def _recover_journal(self):
        """Finish or roll back a move the journal holds; True if the job may go on."""
        entry = self._read_journal()
        if entry is None:
            return True
        if self.dry_run:
            self.log.info("WOULD finish or roll back the interrupted move of %s (phase '%s', "
                          "from %s to %s)", self._where(entry), entry["phase"], entry["source"],
                          entry["target"])
            return False
        self.log.info("Found an interrupted move of %s in phase '%s' (from %s to %s)",
                      self._where(entry), entry["phase"], entry["source"], entry["target"])
        self._started = time.monotonic()
        self._recover(entry)
        return True

    def _recover(self, entry):
        """Make a journal entry whole: roll back before the copy is in place, finish after.

        Raises RtorrentUnavailable (the journal is kept) when rTorrent cannot be told.
        """
        phase = entry["phase"]
        source, target, partial = entry["source"], entry["target"], entry["partial"]
        exists = os.path.lexists
        if phase in ("stop", "rename"):
            if exists(source):
                return self._settle(entry, source, "Rolled back the move of")
            if phase == "rename" and exists(target):
                return self._settle(entry, target, "Finished the move of")
        elif phase == "copy":
            if exists(partial):
                _remove_path(partial)
            if exists(source):
                return self._settle(entry, source, "Rolled back the move of")
        elif phase == "place":
            if exists(partial) and not exists(target):
                _rename_noreplace(partial, target)      # verified before 'place' was written
                fsync_dir(entry["target_dir"])
            elif exists(partial):           # someone else's target: ours is the source
                _remove_path(partial)
                if exists(source):
                    return self._settle(entry, source, "Rolled back the move of")
            if exists(target):
                self._write_journal(entry, "delete")
                phase = "delete"
            elif exists(source):
                return self._settle(entry, source, "Rolled back the move of")
        if phase == "delete":
            self._delete_source(entry)
            self._write_journal(entry, "point")
            phase = "point"
        if phase == "point" and exists(target):
            return self._settle(entry, target, "Finished the move of")
        self.log.error("The interrupted move of %s (phase '%s'): its data is neither at %s "
                       "nor at %s; forgetting the move", self._where(entry), phase, source,
                       target)
        self._clear_journal()
        return None

    # -- status and closing -----------------------------------------------------------

    def status_text(self):
        text = "%d moved, %d failed" % (self.totals["moved"], self.totals["failed"])
        if self._work is not None:
            text += ", moving %s" % self._work["name"]
        return text

    def close(self):
        """Stop a move going on: roll it back (or finish it, past the copy) right now."""
        entry = self._stop_work()
        if entry is None:
            return
        self.log.info("Closing during the move of %s (phase '%s')", self._where(entry),
                      entry["phase"])
        try:
            self._recover(entry)
        except Exception as exc:
            self.log.warning("Could not settle the move of %s now (%s: %s); the journal %s "
                             "keeps it for the next start", self._where(entry),
                             exc.__class__.__name__, exc, self.journal)


###############################################################################
# Statistics archive ##########################################################
###############################################################################
#
# A round-robin store in SQLite: every series (up_rate, count.view.main,
# count.alias.NAME...) has, per tier, a fixed ring of slots, slot =
# (t // step) % count.  Each sample updates the current slot of every tier
# at once: rates are averaged over the slot's period, totals and counts keep
# their last value.  A slot whose period passed is overwritten in place and
# points older than their tier's span are deleted, so the number of rows, and
# with it the file, stays the same once the rings are full.
#
# The graphs are SVG written by hand, rendered on request from the archive and
# cached until the next sample.  A corrupt database file is moved aside and a
# new one started; a locked one costs a sample, never more than the busy timeout.

#: How the samples of one slot's period become its value.
_AVERAGED, _LAST = "avg", "last"

DEFAULT_TIERS = "1m:2d,1h:60d,1d:5y"

#: Seconds per unit of a tier or graph duration ('1m:2d', '7d').  Here `m` is MINUTES (as
#: in rrdtool's specs), unlike the condition language's ages (`_AGE_DELTA`), where `m` is
#: months and `i` minutes; there are no months here.
_ARCHIVE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_ARCHIVE_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week",
                       "y": "year"}

#: Where the graphs are served (by the exporter, or by the job itself on its port).
GRAPHS_PATH = "/graphs"

#: Ranges the /graphs page links to (its default is the first).
GRAPH_RANGES = ("1d", "2w", "1y")

#: Slots a tier may have: 5 years of minutes, at most.
_MAX_SLOTS = 5 * 366 * 1440

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL, step INTEGER NOT NULL, slot INTEGER NOT NULL,
    t INTEGER NOT NULL, value REAL NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (series, step, slot)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (step, t);
"""

# The clock is trusted: a sample replaces whatever its slot held from another period.
_UPSERT = """
INSERT INTO points (series, step, slot, t, value, n) VALUES (?, ?, ?, ?, ?, 1)
ON CONFLICT (series, step, slot) DO UPDATE SET
    value = CASE WHEN t = excluded.t THEN %s ELSE excluded.value END,
    n = CASE WHEN t = excluded.t THEN n + 1 ELSE 1 END,
    t = excluded.t
"""
_UPSERTS = {_AVERAGED: _UPSERT % "(value * n + excluded.value) / (n + 1)",
            _LAST: _UPSERT % "excluded.value"}


def parse_duration(text):
    """'90s', '5m', '2d', '1y' -> seconds (`m` is minutes, a year 365 days: `_ARCHIVE_UNITS`)."""
    found = re.fullmatch(r"\s*(\d+)\s*([smhdwy])\s*", str(text))
    if not found or int(found.group(1)) == 0:
        raise ConfigError("%r is not a duration such as 90s, 5m, 2h, 2d, 2w or 1y" % text)
    return int(found.group(1)) * _ARCHIVE_UNITS[found.group(2)]


def duration_text(seconds):
    """86400 -> '1 day', 1209600 -> '2 weeks': the largest unit that divides evenly."""
    unit = next(u for u in "ywdhms" if seconds % _ARCHIVE_UNITS[u] == 0)    # 's' always does
    number = seconds // _ARCHIVE_UNITS[unit]
    return "%d %s%s" % (number, _ARCHIVE_UNIT_NAMES[unit], "" if number == 1 else "s")


def parse_tiers(text):
    """'1m:2d,1h:60d,1d:5y' -> [(60, 2880), (3600, 1440), (86400, 1825)]: (step, slots)
    per tier, finest first; each must keep more time than the one before."""
    tiers = []
    for word in re.split(r"[\s,]+", str(text).strip()):
        if not word:
            continue
        step, colon, span = word.partition(":")
        if not colon:
            raise ConfigError("%r is not STEP:SPAN (e.g. 1m:2d)" % word)
        step, span = parse_duration(step), parse_duration(span)
        if span < 2 * step:
            raise ConfigError("%r keeps fewer than 2 points" % word)
        count = -(-span // step)
        if count > _MAX_SLOTS:
            raise ConfigError("%r has %d slots, more than %d" % (word, count, _MAX_SLOTS))
        if tiers and (step <= tiers[-1][0] or step * count <= tiers[-1][0] * tiers[-1][1]):
            raise ConfigError("%r must have a longer step and span than the tier before it" % word)
        tiers.append((step, count))
    if not tiers:
        raise ConfigError("no tiers (e.g. %s)" % DEFAULT_TIERS)
    return tiers


def _graph_range(text):
    seconds = parse_duration(text)
    if seconds > 10 * 365 * 86400:
        raise ConfigError("%r is longer than 10 years" % text)
    return seconds


class ArchiveBusy(PyrotorqueError):
    """Another process holds the database locked longer than our busy timeout."""


class StatsArchive:
    """The round-robin store of one StatsArchiver, in one SQLite file.

    ``add(now, samples)`` stores (name, kind, value) samples; ``points()`` reads a
    time range from one tier.  Both raise ArchiveBusy when the file stays locked, and
    sqlite3.OperationalError for trouble that moving the file would not mend (I/O,
    permissions); a corrupt file is renamed to ``<path>.corrupt-<time>`` and recreated.
    """

    def __init__(self, path, tiers, log, busy_timeout=0.25):
        self.path, self.tiers, self.log = path, tiers, log
        self.busy_timeout = busy_timeout
        self.db = None
        self.series_ids = {}
        self.last_prune = None

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None
        self.series_ids = {}

    # -- opening, and the ways it goes wrong -------------------------------------------

    def _open(self):
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        # One thread at a time uses it (the main loop), not always the one that opened it.
        self.db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                  check_same_thread=False)
        try:
            check = self.db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError("quick_check: %s" % check)
            self.db.executescript(_SCHEMA)
            self._forget_changed_tiers()
        except BaseException:
            self.close()
            raise

    def _forget_changed_tiers(self):
        """Slots mean other times after a tier's slot count changed: drop those points."""
        spec = ",".join("%d:%d" % tier for tier in self.tiers)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'tiers'").fetchone()
        if row and row[0] == spec:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if row:
                kept = [step for step, count in self.tiers if "%d:%d" % (step, count)
                        in row[0].split(",")]
                self.db.execute("DELETE FROM points WHERE step NOT IN (%s)"
                                % ",".join("?" * len(kept)) if kept else "DELETE FROM points",
                                kept)
                self.log.info("Tiers changed from %s to %s: points of the changed tiers dropped",
                              row[0], spec)
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('tiers', ?)",
                            (spec,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _rotate(self, exc):
        """Move a corrupt file (and its journal) aside, so that a new one can start."""
        self.close()
        aside = "%s.corrupt-%s" % (self.path, time.strftime("%Y%m%d-%H%M%S"))
        self.log.warning("Statistics archive %s is damaged (%s); moved aside to %s, "
                         "starting a new one", self.path, exc, aside)
        for suffix in ("", "-journal", "-wal", "-shm"):
            # A stale journal next to a new file would be "rolled back" into it.
            try:
                os.replace(self.path + suffix, aside + suffix)
            except FileNotFoundError:
                pass

    def _use(self, action):
        """``action()`` on an open database: busy -> ArchiveBusy, corrupt -> rotate and retry."""
        for attempt in (1, 2):
            try:
                if self.db is None:
                    self._open()
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc):
                    raise ArchiveBusy("%s is locked by another process (%s)"
                                      % (self.path, exc)) from None
                self.close()        # reopened next time: the trouble may pass
                raise
            except sqlite3.DatabaseError as exc:    # not a database, malformed
                if attempt == 2:
                    raise
                self._rotate(exc)
        raise AssertionError("unreachable")

    # -- writing and reading ---------------------------------------------------------------

    def add(self, now, samples):
        """Store ``samples`` ((name, kind, value)...) taken at epoch ``now``, in one transaction."""
        self._use(lambda: self._add(int(now), samples))

    def _add(self, now, samples):
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for name, kind, value in samples:
                series = self._series_id(name)
                for step, count in self.tiers:
                    start = now - now % step
                    db.execute(_UPSERTS[kind], (series, step, start // step % count, start,
                                                float(value)))
            later = 0
            for step, count in self.tiers:
                db.execute("DELETE FROM points WHERE step = ? AND t <= ?",
                           (step, now - step * count))
                later += db.execute("DELETE FROM points WHERE step = ? AND t > ?",
                                    (step, now)).rowcount
            if later:
                self.log.info("The clock went back: %d archived point%s later than now dropped",
                              later, "" if later == 1 else "s")
            if self.last_prune is None or abs(now - self.last_prune) >= 3600:
                db.execute("DELETE FROM series WHERE id NOT IN (SELECT series FROM points)")
                self.last_prune = now
                self.series_ids = {}
            db.execute("COMMIT")
        except BaseException:
            self.series_ids = {}
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:   # the file is in trouble: the first error says why
                    pass
            raise

    def _series_id(self, name):
        if name not in self.series_ids:
            self.db.execute("INSERT OR IGNORE INTO series (name) VALUES (?)", (name,))
            self.series_ids[name] = self.db.execute(
                "SELECT id FROM series WHERE name = ?", (name,)).fetchone()[0]
        return self.series_ids[name]

    def tier_for(self, seconds):
        """The finest tier that keeps ``seconds`` (the coarsest if none does)."""
        for step, count in self.tiers:
            if step * count >= seconds:
                return step, count
        return self.tiers[-1]

    def points(self, step, start, end):
        """{series name: [(t, value)...]} of tier ``step`` with start <= t <= end, in time order."""
        def read():
            found = {}
            for name, t, value in self.db.execute(
                    "SELECT s.name, p.t, p.value FROM points p JOIN series s ON s.id = p.series "
                    "WHERE p.step = ? AND p.t >= ? AND p.t <= ? ORDER BY s.name, p.t",
                    (step, int(start), int(end))):
                found.setdefault(name, []).append((t, value))
            return found
        return self._use(read)

    def row_count(self):
        return self._use(lambda: self.db.execute("SELECT COUNT(*) FROM points").fetchone()[0])


# Drawing ---------------------------------------------------------------------

#: Curve colours, distinct from each other and from the greys of axes and text.
CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf", "#bcbd22", "#393b79", "#ad494a", "#637939")

#: Chart geometry: the plot area's margins inside each chart, in pixels.
CHART_WIDTH, CHART_HEIGHT = 1180, 270
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM_MARGIN, LEGEND_WIDTH = 80, 34, 30, 230

_LEGEND_CHARS = 24
_RATE_UNITS = ("B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s")
_TIME_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
_DAY_STEPS = (1, 2, 7, 14)
_MONTH_STEPS = (1, 2, 3, 6, 12)


def human_rate(value):
    """Bytes per second with a 1024-based unit: '0 B/s', '1.5 KiB/s', '12 MiB/s'."""
    power = 0
    while abs(value) >= 1024 and power < len(_RATE_UNITS) - 1:
        value /= 1024.0
        power += 1
    return "%s %s" % (_short_number(value), _RATE_UNITS[power])


def _short_number(value):
    return "%d" % round(value) if abs(value) >= 100 or value == int(value) else "%.3g" % value


def _nice_axis(top, whole):
    """(tick step, axis top) for values up to ``top``: a 1/2/2.5/5 x 10^n step, 2-6 ticks."""
    if top <= 0:
        return 1.0, 1.0
    raw = top / 4.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1.0, float(math.ceil(step)))
    return step, step * math.ceil(top / step - 1e-9)


def _rate_axis(top):
    """(scale, unit, tick step, axis top) for a rate axis: ticks are round in the unit."""
    power = 0
    while top / 1024 ** power >= 1024 and power < len(_RATE_UNITS) - 1:
        power += 1
    scale = 1024 ** power
    step, axis_top = _nice_axis(top / scale, False)
    return scale, _RATE_UNITS[power], step, axis_top


def time_ticks(start, end, most=8):
    """[(t, label)] for an x axis from ``start`` to ``end`` (epoch, local time): clock times
    for short ranges, dates for weeks and months, months for years; at most ``most``."""
    span = end - start
    for step in _TIME_STEPS:
        if span / step <= most:
            # Aligned in local time, so that 3-hour ticks fall on 00:00, 03:00...
            t = start - (start + time.localtime(start).tm_gmtoff) % step
            t += step if t < start else 0
            ticks = []
            while t <= end:
                ticks.append((t, time.strftime("%H:%M", time.localtime(t))))
                t += step
            return ticks
    for days in _DAY_STEPS:
        if span / (days * 86400) <= most:
            day = datetime.date.fromtimestamp(start)
            ticks = []
            while True:
                t = time.mktime(day.timetuple())
                if t > end:
                    return ticks
                if t >= start and day.toordinal() % days == 0:
                    ticks.append((t, day.strftime("%b %d")))
                day += datetime.timedelta(days=1)
    for months in _MONTH_STEPS:
        if span / (months * 30.5 * 86400) <= most or months == _MONTH_STEPS[-1]:
            day = datetime.date.fromtimestamp(start).replace(day=1)
            ticks = []
            while True:
                t = time.mktime(day.timetuple())
                if t > end:
                    return ticks
                if t >= start and (day.month - 1) % months == 0:
                    ticks.append((t, day.strftime("%b %Y")))
                day = (day + datetime.timedelta(days=31)).replace(day=1)
    return []


def _runs(points, step):
    """The points cut into runs at gaps: a gap is a missing stretch of more than 2.5
    times the usual distance between points (never less than the tier's step)."""
    if len(points) < 2:
        return [points] if points else []
    gaps = sorted(b[0] - a[0] for a, b in zip(points, points[1:]))
    limit = 2.5 * max(step, gaps[len(gaps) // 2])
    runs, run = [], [points[0]]
    for before, point in zip(points, points[1:]):
        if point[0] - before[0] > limit:
            runs.append(run)
            run = []
        run.append(point)
    runs.append(run)
    return runs


def _svg_attr(value):
    return '"%s"' % html.escape(str(value))


def _svg_text(value):
    return html.escape(str(value), quote=False)


def render_chart(title, lines, start, end, step, rate=False, width=CHART_WIDTH):
    """One chart as an SVG document (text): ``lines`` is [(label, colour, [(t, value)...])]
    drawn from epoch ``start`` to ``end``; ``step`` is the points' tier step (for gaps).
    ``rate`` puts bytes/s units on the y axis, else the values are counts."""
    legend_rows = max(1, len(lines))
    height = max(CHART_HEIGHT, PLOT_TOP + 10 + 20 * legend_rows + PLOT_BOTTOM_MARGIN)
    left, top = PLOT_LEFT, PLOT_TOP
    right, bottom = width - LEGEND_WIDTH, height - PLOT_BOTTOM_MARGIN
    values = [v for _, _, points in lines for _, v in points]
    peak = max(values) * 1.05 if values else 0     # headroom: a curve at the top stays visible
    if rate:
        scale, unit, tick, axis_top = _rate_axis(peak)
    else:
        scale, unit = 1, ""
        tick, axis_top = _nice_axis(peak, True)
    span = max(1, end - start)

    def x_of(t):
        return left + (t - start) * (right - left) / span

    def y_of(value):
        return bottom - min(value / scale, axis_top) * (bottom - top) / axis_top

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="12">' % (width, height, width, height),
           '<title>%s</title>' % _svg_text(title),
           '<rect width="%d" height="%d" fill="#ffffff"/>' % (width, height),
           '<text x="%d" y="20" font-size="15" font-weight="bold" fill="#222222">%s</text>'
           % (left, _svg_text(title))]
    grid = ['<g stroke="#dddddd" stroke-width="1">']
    labels = ['<g fill="#444444">']
    for index in range(int(round(axis_top / tick)) + 1):
        level = index * tick
        y = bottom - level * (bottom - top) / axis_top
        grid.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>' % (left, y, right, y))
        text = "%s %s" % (_short_number(level), unit) if rate else _short_number(level)
        labels.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>'
                      % (left - 6, y + 4, _svg_text(text)))
    for t, label in time_ticks(start, end):
        x = x_of(t)
        grid.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (x, top, x, bottom))
        labels.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                      % (x, bottom + 18, _svg_text(label)))
    out += grid + ["</g>"] + labels + ["</g>"]
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999999"/>'
               % (left, top, right - left, bottom - top))
    if not values:
        out.append('<text x="%d" y="%d" text-anchor="middle" fill="#888888">'
                   'no data in this range</text>' % ((left + right) // 2, (top + bottom) // 2))
    for _, colour, points in lines:
        out += _chart_curve(points, step, colour, x_of, y_of)
    out += _chart_legend(lines, right + 14, top + 8, rate)
    out.append("</svg>")
    return "\n".join(out)


def _chart_curve(points, step, colour, x_of, y_of):
    """One line of a chart as SVG elements: a path broken at gaps, lone points as dots."""
    parts, dots = [], []
    for run in _runs(points, step):
        if len(run) == 1:       # a lone point between gaps: a dot, or it would not show
            dots.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill=%s/>'
                        % (x_of(run[0][0]), y_of(run[0][1]), _svg_attr(colour)))
            continue
        parts.append("M" + " L".join("%.1f %.1f" % (x_of(t), y_of(v)) for t, v in run))
    path = ['<path d="%s" fill="none" stroke=%s stroke-width="2" stroke-linejoin="round"/>'
            % (" ".join(parts), _svg_attr(colour))] if parts else []
    return path + dots


def _chart_legend(lines, x, y, rate):
    """The legend from (x, y) down: a colour box, the label and the last value per line."""
    out = []
    for row, (label, colour, points) in enumerate(lines):
        top = y + 20 * row
        last = points[-1][1] if points else None
        shown = "-" if last is None else human_rate(last) if rate else _short_number(last)
        out.append('<rect x="%d" y="%d" width="14" height="14" fill=%s/>'
                   % (x, top, _svg_attr(colour)))
        if len(label) > _LEGEND_CHARS:      # alias names can be long: the legend has a width
            label = label[:_LEGEND_CHARS - 1] + "\u2026"
        out.append('<text x="%d" y="%d" fill="#222222">%s: %s</text>'
                   % (x + 20, top + 12, _svg_text(label), _svg_text(shown)))
    return out


@builtin_job
class StatsArchiver(Job):
    """Keeps a round-robin archive of rTorrent's rates and item counts, and draws it.

    Each run takes one sample: one system.multicall for the global rates, totals and
    view sizes, and one ItemSource fetch of 'main' for the counts per tracker alias.
    The graphs are served at /graphs by the exporter (or on ``port`` by the job
    itself) and written to ``graph_file`` after each sample when that is set.
    """

    PARAMS = {
        "db": (str, "", "the archive file (default: <config dir>/run/stats-NAME.sqlite)"),
        "tiers": (parse_tiers, parse_tiers(DEFAULT_TIERS),
                  "STEP:SPAN per tier, finest first (default %s)" % DEFAULT_TIERS),
        "views": (str, "main,started,stopped,complete,incomplete",
                  "views whose item counts are archived"),
        "aliases": (parse_bool, True, "archive the item counts per tracker alias"),
        "graph_file": (str, "", "write the graphs here after each sample (.svg: one SVG "
                       "image, else an HTML page)"),
        "graph_range": (_graph_range, 86400, "the time range of graph_file (e.g. 1d, 2w, 1y)"),
        "addr": (str, "127.0.0.1", "address for port"),
        "port": (int, 0, "serve /graphs on this port (0: only through the exporter)"),
        "busy_timeout": (non_negative(float), 0.25,
                         "seconds to wait for a database another process locked"),
    }
    RPC_METHODS = ("system.multicall", "throttle.global_up.rate", "throttle.global_down.rate",
                   "throttle.global_up.total", "throttle.global_down.total", "view.size",
                   "d.multicall2")

    #: rTorrent's global figures: (method, series name, kind).
    GLOBALS = (("throttle.global_up.rate", "up_rate", _AVERAGED),
               ("throttle.global_down.rate", "down_rate", _AVERAGED),
               ("throttle.global_up.total", "up_total", _LAST),
               ("throttle.global_down.total", "down_total", _LAST))

    def __init__(self, config):
        super().__init__(config)
        self.clock = time.time      # tests set their own
        self.views = [v for v in re.split(r"[\s,]+", config.views.strip()) if v]
        for view in self.views:
            if not re.fullmatch(r"[\w.-]+", view):
                raise ConfigError("views: %r is not a view name" % view)
        if not 0 <= config.port < 65536:
            raise ConfigError("port: %d is not a port number (0-65535)" % config.port)
        path = job_path(config, config.db, "run/stats-%s.sqlite" % self.name)
        self.graph_file = os.path.expanduser(config.graph_file) if config.graph_file else ""
        self.archive = StatsArchive(path, config.tiers, self.log, config.busy_timeout)
        self.missing_views = set()
        self.busy_since = None      # the first sample lost to a lock, in a row of them
        self.generation = 0         # samples taken: the page cache is of one generation
        self.cache = {}             # (seconds, kind) -> (generation, body, gzipped body)
        self.server = None
        if self.daemon is None:     # --check: validate only
            return
        if config.port:
            self.server = MetricsServer(self.daemon, self.serve_page, self.log)
            self.server.take_over_or_listen(self, config.addr, config.port)
            host, port = self.server.address
            self.log.info("Serving graphs on http://%s:%d%s", "[%s]" % host if ":" in host
                          else host, port, GRAPHS_PATH)
        self.log.info("Archiving statistics in %s (tiers %s)", path, ", ".join(
            "%s for %s" % (duration_text(step), duration_text(step * count))
            for step, count in config.tiers))

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None
        self.archive.close()

    def status_text(self):
        return "archive busy" if self.busy_since is not None else ""

    # -- sampling ----------------------------------------------------------------------

    def run(self):
        now = self.clock()
        samples = self.collect()
        try:
            self.archive.add(now, samples)
        except ArchiveBusy as exc:
            if self.busy_since is None:
                self.busy_since = now
                self.log.warning("Sample skipped: %s", exc)
            else:
                self.log.debug("Sample skipped: %s", exc)
            return
        if self.busy_since is not None:
            self.log.info("Statistics archive usable again after %.0f s of locks",
                          now - self.busy_since)
            self.busy_since = None
        self.generation += 1
        self.log.debug("Archived %d values", len(samples))
        if self.graph_file:
            self.write_graph_file(now)

    def collect(self):
        """[(series name, kind, value)] from rTorrent: one system.multicall, one item fetch."""
        self.proxy.connect()
        calls = [(method,) for method, _, _ in self.GLOBALS]
        calls += [("view.size", "", view) for view in self.views]
        answers = self.proxy.multicall(calls, faults="return")
        samples = []
        names = [(name, kind) for _, name, kind in self.GLOBALS]
        names += [("count.view." + view, _LAST) for view in self.views]
        for (name, kind), call, answer in zip(names, calls, answers):
            value = None if isinstance(answer, RtorrentFault) else answer
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                samples.append((name, kind, value))
            elif call[0] == "view.size" and call[2] not in self.missing_views:
                self.missing_views.add(call[2])
                self.log.warning("rTorrent has no view %r; its count is not archived (%s)",
                                 call[2], answer.message if isinstance(answer, RtorrentFault)
                                 else answer)
        if self.config.aliases:
            source = self.config.get("item_source") or ItemSource(self.proxy)
            per_alias = collections.Counter(item["alias"] or "none"
                                            for item in source.fetch("main", {"alias"}))
            samples += [("count.alias." + alias, _LAST, count)
                        for alias, count in sorted(per_alias.items())]
        return samples

    # -- graphs ------------------------------------------------------------------------

    def charts(self, seconds, now=None):
        """The SVG charts (texts) of the last ``seconds``: rates, views, aliases."""
        end = self.clock() if now is None else now
        start = end - seconds
        step, _ = self.archive.tier_for(seconds)
        found = self.archive.points(step, start, end)
        colours = iter(CURVE_COLOURS * 100)
        rates = [(label, next(colours), found.get(name, []))
                 for name, label in (("up_rate", "upload"), ("down_rate", "download"))]
        views = [(view, next(colours), found.get("count.view." + view, []))
                 for view in self.views]
        aliases = [(name[len("count.alias."):], next(colours), points)
                   for name, points in sorted(found.items()) if name.startswith("count.alias.")]
        span = duration_text(seconds)
        charts = [render_chart("Transfer rates, last %s" % span, rates, start, end, step, True),
                  render_chart("Items per view, last %s" % span, views, start, end, step)]
        if self.config.aliases:
            charts.append(render_chart("Items per tracker, last %s" % span, aliases,
                                       start, end, step))
        return charts

    def html_page(self, seconds, now=None):
        links = " ".join('<a href="%s/%s">%s</a>' % (GRAPHS_PATH, key, duration_text(
            parse_duration(key))) for key in GRAPH_RANGES)
        return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
                '<title>pyrotorque statistics, last %s</title>\n<style>body{margin:0;'
                'font-family:sans-serif}header{height:40px;display:flex;align-items:center;'
                'gap:24px;padding:0 12px}h1{font-size:18px;margin:0}svg{display:block}'
                '</style></head>\n<body><header><h1>Statistics, last %s</h1><nav>%s</nav>'
                '</header>\n%s\n</body></html>\n'
                % (duration_text(seconds), duration_text(seconds), links,
                   "\n".join(self.charts(seconds, now))))

    def svg_image(self, seconds, now=None):
        """All charts stacked in one standalone SVG image."""
        parts, height = [], 0
        for chart in self.charts(seconds, now):
            chart_height = int(re.search(r'height="(\d+)"', chart).group(1))
            parts.append(chart.replace("<svg ", '<svg y="%d" ' % height, 1))
            height += chart_height
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'
                ' width="%d" height="%d" viewBox="0 0 %d %d">\n%s\n</svg>\n'
                % (CHART_WIDTH, height, CHART_WIDTH, height, "\n".join(parts)))

    def write_graph_file(self, now):
        svg = self.graph_file.endswith(".svg")
        try:
            text = (self.svg_image if svg else self.html_page)(self.config.graph_range, now)
        except ArchiveBusy as exc:
            self.log.debug("Graph file not written: %s", exc)
            return
        try:
            write_file_atomic(self.graph_file, text, durable=False)
        except OSError as exc:
            self.log.warning("Cannot write the graph file %s: %s", self.graph_file,
                             exc.strerror or exc)

    # -- serving -----------------------------------------------------------------------

    def http_pages(self):
        """The pages this job offers the exporter's HTTP server: {path: (title, page)}."""
        return {GRAPHS_PATH: ("Graphs", self.graphs_page)}

    def serve_page(self, path, gzip_ok):
        """The page function of the job's own server (``port``): an index and /graphs."""
        if path == "/":
            return 200, ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>pyrotorque'
                         '</title></head><body><p><a href="%s">Graphs</a></p></body></html>\n'
                         % GRAPHS_PATH).encode(), "text/html; charset=utf-8", ()
        if path == GRAPHS_PATH or path.startswith(GRAPHS_PATH + "/"):
            return self.graphs_page(path, gzip_ok)
        return None

    def graphs_page(self, path, gzip_ok):
        """/graphs, /graphs/RANGE (an HTML page) and /graphs/RANGE.svg (one SVG image);
        RANGE is a duration such as 1d, 2w, 1y.  Rendered once per sample."""
        rest = path[len(GRAPHS_PATH):].strip("/") or GRAPH_RANGES[0]
        kind = "svg" if rest.endswith(".svg") else "html"
        try:
            seconds = _graph_range(rest[:-4] if kind == "svg" else rest)
        except ConfigError:
            return None
        key = (seconds, kind)
        cached = self.cache.get(key)
        if cached is None or cached[0] != self.generation:
            try:
                text = self.svg_image(seconds) if kind == "svg" else self.html_page(seconds)
            except ArchiveBusy:
                if cached is None:
                    return (503, b"The statistics archive is locked; try again.\n",
                            "text/plain; charset=utf-8", [("Retry-After", "5")])
            except sqlite3.Error as exc:
                self.log.warning("Cannot read the statistics archive: %s", exc)
                return 500, b"The statistics archive cannot be read.\n", \
                    "text/plain; charset=utf-8", ()
            else:
                if len(self.cache) >= 16:       # any range may be asked for: keep a few
                    self.cache.clear()
                cached = self.cache[key] = (self.generation, text.encode("utf-8"),
                                            gzip.compress(text.encode("utf-8"), compresslevel=3))
        content_type = "image/svg+xml" if kind == "svg" else "text/html; charset=utf-8"
        if gzip_ok:
            return 200, cached[2], content_type, [("Content-Encoding", "gzip"),
                                                  ("Vary", "Accept-Encoding")]
        return 200, cached[1], content_type, [("Vary", "Accept-Encoding")]


###############################################################################
# Torrent mirror ##############################################################
###############################################################################
#
# Life of a mirror, one entry per mirrored item in a JSON state file (replaced
# atomically, so a restart never mirrors an item twice):
#
#   hash    the item's files (in rTorrent's order) are SHA1-hashed in steps of the
#           main loop; a file that changes meanwhile fails the mirror cleanly
#   made    the new metafile (announce = 'tracker', private by default) is saved in
#           metafile_dir and loaded into the local rTorrent, pointed at the item's
#           own data: it hash-checks and seeds without a copy
#   seeding the local mirror is complete and announced: only now are the remotes
#           sent the metafile (one that announces before a seeder is known gets no
#           peers for half an hour)
#   remotes each remote is 'pending' (down, or not sent yet), 'loaded' (followed
#           at every run), 'complete' or 'gone' (refused it or had it removed,
#           after three loads)
#   done    every remote is complete or gone; the local mirror keeps seeding,
#           unless remove_mirrored erases it (the data stays)
#
# The original item gets the custom 'mirror' (the mirror's info-hash) and the
# mirror the custom 'mirror_of' (the original's), so conditions can tell them
# apart and a mirror is never mirrored again.

#: Automatic piece sizes stay within these bounds, aiming at this many pieces.
MIRROR_PIECE_MIN = 32 * 1024
MIRROR_PIECE_MAX = 16 * 1024 * 1024
MIRROR_PIECES = 2048

#: Seconds an item whose hashing failed (its data changed, a read error) waits.
MIRROR_RETRY = 600.0

#: How often a remote that keeps losing the mirror is sent it before it counts as gone.
MIRROR_MAX_LOADS = 3

_MIRROR_URL_SPLIT = re.compile(r"[\s,]+")


def mirror_piece_size(total):
    """The piece size for ``total`` bytes: a power of two giving at most about
    MIRROR_PIECES pieces, between MIRROR_PIECE_MIN and MIRROR_PIECE_MAX."""
    size = MIRROR_PIECE_MIN
    while size < MIRROR_PIECE_MAX and size * MIRROR_PIECES < total:
        size *= 2
    return size


def _piece_size(text):
    """'auto' (or empty) -> 0; else a power of two from 16 KiB to 64 MiB."""
    if str(text).strip().lower() in ("", "auto", "0"):
        return 0
    size = byte_size(text)
    if size < 16 * 1024 or size > 64 * 1024 * 1024 or size & (size - 1):
        raise ConfigError("%r is not a power of two from 16K to 64M (or 'auto')" % text)
    return size


def _shown_url(url):
    """A remote's URL as logs show it: without the password of an http(s) URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc="%s:***@%s" % (parts.username, host)))


def _remote_urls(text):
    urls = [url for url in _MIRROR_URL_SPLIT.split(str(text or "").strip()) if url]
    for url in urls:
        parse_rpc_url(url)          # raises ConfigError for a URL no proxy can use
    return urls


def _remote_proxies(job, key, what):
    """{URL: RtorrentProxy} for the other rTorrents a job's ``key`` lists; ConfigError if none."""
    config = job.config
    urls = _remote_urls(config.get(key))
    if not urls:
        raise ConfigError("%s: you need to set 'job.%s.%s' (XML-RPC URLs of %s)"
                          % (key, job.name, key, what))
    settings = config.get("settings")
    timeout = config.get("remote_timeout") or float(
        settings.get("rpc_timeout", "30") if settings is not None else 30)
    remote_log = logging.getLogger("pyrotorque.job.%s.remote" % job.name)
    proxies = {}
    for url in urls:
        endpoint = parse_rpc_url(url)
        endpoint.url = _shown_url(url)      # what the proxy's own log lines show
        proxies[url] = RtorrentProxy(endpoint, timeout, log=remote_log)
    return proxies


class MirrorDataError(OSError):
    """The item's data is not what rTorrent says, or changed while it was hashed."""


def _file_stamp(path):
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev


def _piece_steps(files, piece_size, digests, step):
    """Hash ``files`` ([(path, size)], concatenated) into ``digests`` (SHA1 per piece).

    A generator that yields after about ``step`` bytes, so the caller decides when
    to go on.  Sizes are checked against rTorrent's before, and size, mtime and
    inode after: data that changed raises MirrorDataError.
    """
    stamps = []
    for path, size in files:
        stamp = _file_stamp(path)
        if stamp[0] != size:
            raise MirrorDataError("%s has %d bytes, rTorrent says %d" % (path, stamp[0], size))
        stamps.append(stamp)
    piece, filled, since = hashlib.sha1(), 0, 0
    for path, size in files:
        with open(path, "rb") as handle:
            left = size
            while left:
                chunk = handle.read(min(piece_size - filled, left, 1024 * 1024))
                if not chunk:
                    raise MirrorDataError("%s ended early while it was hashed" % path)
                piece.update(chunk)
                filled += len(chunk)
                left -= len(chunk)
                since += len(chunk)
                if filled == piece_size:
                    digests.append(piece.digest())
                    piece, filled = hashlib.sha1(), 0
                if since >= step:
                    yield since
                    since = 0
    if filled:
        digests.append(piece.digest())
    for (path, _), stamp in zip(files, stamps):
        try:
            changed = _file_stamp(path) != stamp
        except OSError:
            changed = True
        if changed:
            raise MirrorDataError("%s changed while it was hashed" % path)


def mirror_info(name, files, piece_size, pieces, multi, private=True, source=""):
    """The info dict of a mirror: ``files`` are [(relative path parts, size)] in the
    item's order; a single-file item has one, whose parts are just its name."""
    info = {"name": name, "piece length": piece_size, "pieces": b"".join(pieces)}
    if multi:
        info["files"] = [{"length": size, "path": parts} for parts, size in files]
    else:
        info["length"] = files[0][1]
    if private:
        info["private"] = 1
    if source:
        info["source"] = source
    return info


@builtin_job
class TorrentMirror(SteppedJob):
    """Sends the data of complete items to remote rTorrents by BitTorrent.

    For each matching complete item a new metafile is made for its data (announcing
    to ``tracker``, private unless told otherwise), seeded from the local rTorrent
    in place, and loaded into every remote rTorrent in ``remotes``, which then fetch
    the data from the local one.  Later runs follow the remotes' progress and log
    when each has the data complete.  What was mirrored is kept in a state file.
    """

    PARAMS = {
        "matcher": (str, "", "which complete items to mirror (a condition; required)"),
        "view": (str, "main", "the rTorrent view to look at"),
        "tracker": (str, "", "announce URL of the mirror metafiles (required)"),
        "remotes": (str, "", "XML-RPC URLs of the remote rTorrents, separated by spaces, "
                    "commas or lines (required)"),
        "remote_dir": (str, "", "download folder on the remotes (default: theirs)"),
        "remote_timeout": (non_negative(float), 0.0, "seconds one call to a remote may take "
                           "(0: rpc_timeout)"),
        "piece_size": (_piece_size, 0, "piece size of the mirrors: a power of two, or auto"),
        "private": (parse_bool, True, "mark the mirrors private (no DHT, no PEX)"),
        "source": (str, "", "info.source of the mirrors (makes their info-hash differ from "
                   "an otherwise identical metafile's)"),
        "max_items": (non_negative(int), 1, "start at most this many new mirrors per run "
                      "(0: all)"),
        "hash_chunk": (byte_size, 4 * 1024 * 1024, "bytes hashed per step of the main loop"),
        "metafile_dir": (str, "", "where the made metafiles are kept "
                         "(default: <config dir>/mirror-NAME)"),
        "state_file": (str, "", "what was mirrored (default: <config dir>/run/mirror-NAME.json)"),
        "remove_mirrored": (parse_bool, False, "erase the local mirror item once every remote "
                            "has the data (its data stays)"),
    }
    RPC_METHODS = ("d.multicall2", "system.multicall", "d.complete", "d.hashing",
                   "d.is_hash_checking", "d.is_multi_file", "d.directory", "d.name",
                   "d.size_bytes", "d.bytes_done", "f.multicall", "t.multicall",
                   "load.raw_start_verbose", "d.custom.set", "d.erase")
    #: The key listing the other rTorrents, and what the job calls there (for --check).
    REMOTES = ("remotes", ("system.multicall", "d.complete", "d.bytes_done", "d.size_bytes",
                           "load.raw_start_verbose"))

    def __init__(self, config):
        super().__init__(config)
        self.items = config.get("item_source")
        self.matcher = required_matcher(self, "is_complete=yes [ %s ]")
        self.tracker = config.tracker.strip()
        if not re.match(r"(?i)(https?|udp)://[^\s/]+", self.tracker):
            raise ConfigError("tracker: %s (an http://, https:// or udp:// announce URL)"
                              % ("you need to set 'job.%s.tracker'" % self.name
                                 if not self.tracker else "%r is not an announce URL"
                                 % self.tracker))
        self.remotes = _remote_proxies(self, "remotes", "the remote rTorrents")
        self.remote_urls = list(self.remotes)
        self.remote_dir = config.remote_dir.strip()
        self.view = config.view or "main"
        self.max_items = config.max_items
        self.step = max(64 * 1024, config.hash_chunk or 4 * 1024 * 1024)
        self.metafile_dir = job_path(config, config.metafile_dir, "mirror-%s" % self.name)
        self.state_path = job_path(config, config.state_file, "run/mirror-%s.json" % self.name)
        self.fields = set(self.matcher.fields) | {"name", "custom_mirror", "custom_mirror_of"}
        self.state = self._read_state()
        self._retry_at = {}         # hash -> monotonic time its next try may start
        self.totals = collections.Counter()
        self.log.info("Mirror '%s': [ %s ] in view %r -> %s via %s", self.name, self.matcher,
                      self.view, ", ".join(map(_shown_url, self.remote_urls)), self.tracker)

    # -- the state file ------------------------------------------------------------------

    def _read_state(self):
        return read_json_state(self.state_path, self.log, "The state file", "Items with a "
                               "'mirror' custom are still not mirrored again", self._state_of) \
            or {"version": 1, "mirrors": {}, "failed": {}}

    @staticmethod
    def _state_of(data):
        mirrors, failed = data["mirrors"], data.get("failed", {})
        for entry in mirrors.values():
            entry["hash"], entry["remotes"], entry["local"]
        return {"version": 1, "mirrors": mirrors, "failed": failed}

    def _save_state(self):
        write_json_atomic(self.state_path, self.state)

    # -- a run ---------------------------------------------------------------------------

    def run(self):
        self.proxy.connect()
        self._follow()
        if self._gen is not None:
            self.log.debug("Still hashing %s; no new mirrors until it is done",
                           self._where(self._work))
            return
        mirrors = self.state["mirrors"]
        made = {entry["hash"] for entry in mirrors.values()}
        chosen, matched, before = [], 0, 0
        for item in self.items.fetch(self.view, self.fields):
            if not self.matcher.match(item) or item.hash in made or item["custom_mirror_of"]:
                continue
            matched += 1
            if item.hash in mirrors:
                before += 1
                continue
            if item.hash in self.state["failed"]:
                self.log.debug("%s: its mirror failed before (%s)", self._where(item),
                               self.state["failed"][item.hash])
                continue
            if self._retry_at.get(item.hash, 0) > time.monotonic():
                self.log.debug("%s waits %d s more after a failed try", self._where(item),
                               self._retry_at[item.hash] - time.monotonic())
                continue
            if item["custom_mirror"]:
                self.log.debug("%s is mirrored already (custom mirror=%s)", self._where(item),
                               _log_safe(item["custom_mirror"]))
                continue
            if self._chosen_enough(chosen):
                break
            chosen.append(item)
        self.log.debug("%d item(s) match, %d mirrored before, %d to mirror now", matched, before,
                       len(chosen))
        self._pending = collections.deque(chosen)
        self._next()

    @staticmethod
    def _where(thing):
        """An item, a mirror being made or a state entry, as a log shows it: by the
        original item's name and info-hash."""
        if thing is None:
            return "?"
        origin = thing.hash if isinstance(thing, Item) else thing["source"]
        return _shown_item(thing["name"], origin)

    # -- making a mirror (SteppedJob's work is a dict of what is hashed) ----------------

    WORK = "mirror"

    def _would(self, mirror):
        self.log.info("WOULD mirror %s (%s in %d file(s)) to %s", self._where(mirror),
                      human_size(mirror["size"]), len(mirror["files"]),
                      ", ".join(map(_shown_url, self.remote_urls)))

    def _prepare(self, item):
        """The item's files as rTorrent sees them right now, or None if it cannot be mirrored."""
        where = self._where(item)
        names = ("complete", "hashing", "is_hash_checking", "is_multi_file", "directory",
                 "name", "size_bytes")
        try:
            now = dict(zip(names, self.proxy.multicall([("d." + n, item.hash) for n in names])))
            rows = self.proxy.call("f.multicall", item.hash, "", "f.path=", "f.size_bytes=")
        except HashNotFound:
            self.log.debug("%s is gone from rTorrent", where)
            return None
        if not now["complete"] or now["hashing"] or now["is_hash_checking"]:
            self.log.debug("%s waits: it is not complete, or hash-checking", where)
            return None
        directory = os.path.expanduser(str(now["directory"] or ""))
        if not directory or not rows or not now["size_bytes"]:
            self.log.debug("%s has no data to mirror", where)
            return None
        files = [(str(path).split("/"), os.path.join(directory, str(path)), int(size))
                 for path, size in rows]
        return {"source": item.hash, "name": str(now["name"]), "directory": directory,
                "multi": bool(now["is_multi_file"]), "files": files,
                "size": sum(size for _, _, size in files)}

    def _steps(self, mirror):
        mirror["piece_size"] = self.config.piece_size or mirror_piece_size(mirror["size"])
        mirror["pieces"] = []
        mirror["started"] = time.monotonic()
        self.log.info("Hashing %s for its mirror (%s, %s pieces)", self._where(mirror),
                      human_size(mirror["size"]), human_size(mirror["piece_size"]))
        return self._hash_steps(mirror)

    def _hash_steps(self, mirror):
        """Hash in steps (the next one after the loop turned), then make the mirror."""
        for _ in _piece_steps([(path, size) for _, path, size in mirror["files"]],
                              mirror["piece_size"], mirror["pieces"], self.step):
            yield 0
        self._finish(mirror)

    def _work_done(self, mirror):
        """_finish counted and logged it."""

    def _work_failed(self, mirror, error):
        """Log a failed mirror; remember it (never tried again) unless the error may pass:
        an OSError (the data changed, a read failed) or rTorrent being away."""
        self.totals["failed"] += 1
        reason = _log_safe("%s: %s" % (error.__class__.__name__, error))
        if isinstance(error, (OSError, RtorrentUnavailable)):
            self._retry_at[mirror["source"]] = time.monotonic() + MIRROR_RETRY
            self.log.warning("Mirroring %s failed: %s (tried again in %d s)",
                             self._where(mirror), reason, MIRROR_RETRY)
            return
        self.log.error("Mirroring %s failed: %s (not tried again; remove it from %s to retry)",
                       self._where(mirror), reason, self.state_path)
        self.state["failed"][mirror["source"]] = reason
        self._save_state()

    def _finish(self, mirror):
        """Write the mirror's metafile, remember it, and seed it locally."""
        info = mirror_info(mirror["name"],
                           [(parts, size) for parts, _, size in mirror["files"]],
                           mirror["piece_size"], mirror["pieces"], mirror["multi"],
                           self.config.private, self.config.source)
        data = bencode({"announce": self.tracker, "created by": "pyrotorque/" + __version__,
                        "creation date": int(time.time()), "info": info})
        meta = read_metafile(data)          # our own rules for metafiles, as for any other
        if meta.info_hash == mirror["source"]:
            raise MetafileError("its mirror would have the same info-hash as the item itself; "
                                "set 'source' to make it differ")
        path = os.path.join(self.metafile_dir, meta.info_hash + ".torrent")
        write_file_atomic(path, data)
        entry = {"hash": meta.info_hash, "name": mirror["name"], "source": mirror["source"],
                 "metafile": path, "size": mirror["size"], "directory": mirror["directory"],
                 "multi": mirror["multi"], "made": int(time.time()), "local": "new",
                 "remotes": {url: {"state": "pending", "loads": 0}
                             for url in self.remote_urls}}
        self.state["mirrors"][mirror["source"]] = entry
        self._save_state()
        self.totals["made"] += 1
        self.log.info("Made the mirror %s of %s (%d pieces in %.2f s): %s", meta.info_hash,
                      self._where(mirror), len(mirror["pieces"]),
                      time.monotonic() - mirror["started"], path)
        try:
            self.proxy.call("d.custom.set", mirror["source"], "mirror", meta.info_hash)
            self._load_local(entry)
        except RtorrentUnavailable as exc:
            self.log.warning("%s; the mirror is loaded at the next run", exc)
        except RtorrentError as exc:
            self.log.warning("Loading the mirror of %s: %s (tried again at the next run)",
                             self._where(entry), exc)

    def _metafile(self, entry):
        with open(entry["metafile"], "rb") as handle:
            return handle.read()

    def _load_local(self, entry):
        """Load the mirror into the local rTorrent, pointed at the item's data."""
        h = entry["hash"]
        try:
            self.proxy.call("d.complete", h)
            present = True
        except HashNotFound:
            present = False
        if not present and self.dry_run:
            self.log.info("WOULD seed the mirror of %s locally", self._where(entry))
            return
        if not present:
            # Values inside a load command are parsed by rTorrent: escaped, never raw.
            where = ("d.directory_base.set=" if entry["multi"] else "d.directory.set=") \
                + rtorrent_escape(entry["directory"])
            self.proxy.call("load.raw_start_verbose", "", self._metafile(entry), where,
                            "d.custom.set=mirror_of," + entry["source"])
            self.log.info("Seeding the mirror of %s locally from %s", self._where(entry),
                          _log_safe(entry["directory"]))
        entry["local"] = "loaded"
        self._save_state()
        if self.items is not None:
            self.items.invalidate()

    # -- following the mirrors -----------------------------------------------------------

    def _follow(self):
        """Move every unfinished mirror on: local seeding, sending, remote progress."""
        for entry in list(self.state["mirrors"].values()):
            if entry.get("done") or self._closed:
                continue
            try:
                if entry["local"] == "new":
                    self._load_local(entry)
                    continue
                if entry["local"] == "loaded" and not self._seeding(entry):
                    continue
            except RtorrentUnavailable:
                raise
            except (RtorrentError, OSError) as exc:
                self.log.warning("Checking the local mirror of %s: %s", self._where(entry), exc)
                continue
            for url, remote in entry["remotes"].items():
                if url in self.remotes and remote["state"] in ("pending", "loaded"):
                    self._follow_remote(entry, url, remote)
            self._check_done(entry)

    def _seeding(self, entry):
        """True once the local mirror is complete and announced (said once at info)."""
        h = entry["hash"]
        try:
            complete, hashing, checking = self.proxy.multicall([
                ("d.complete", h), ("d.hashing", h), ("d.is_hash_checking", h)])
        except HashNotFound:
            self.log.warning("The mirror of %s is gone from the local rTorrent; loading it "
                             "again", self._where(entry))
            entry["local"] = "new"
            self._load_local(entry)
            return False
        if hashing or checking or not complete:
            self.log.debug("The local mirror of %s is %s", self._where(entry),
                           "hash-checking" if hashing or checking else "not complete (its "
                           "data differs from what was hashed?)")
            return False
        rows = self.proxy.call("t.multicall", h, "", "t.success_counter=")
        if not any(int(row[0] or 0) for row in rows):
            self.log.debug("The local mirror of %s waits for its first announce to %s",
                           self._where(entry), self.tracker)
            return False
        entry["local"] = "seeding"
        self._save_state()
        self.log.info("The mirror of %s is seeding and announced; sending it to %d remote(s)",
                      self._where(entry), len(entry["remotes"]))
        return True

    def _follow_remote(self, entry, url, remote):
        proxy, h, where = self.remotes[url], entry["hash"], self._where(entry)
        shown = proxy.endpoint.url
        try:
            if remote["state"] == "pending":
                self._send(entry, url, remote, proxy)
                return
            try:
                complete, done, size = proxy.multicall([
                    ("d.complete", h), ("d.bytes_done", h), ("d.size_bytes", h)])
            except HashNotFound:
                if remote["loads"] >= MIRROR_MAX_LOADS:
                    remote["state"] = "gone"
                    self.log.warning("%s does not have the mirror of %s after %d loads "
                                     "(refused, or removed there); not sent again", shown,
                                     where, remote["loads"])
                else:
                    remote["state"] = "pending"
                    self.log.warning("%s does not have the mirror of %s (refused, or removed "
                                     "there); sending it again", shown, where)
                self._save_state()
                return
        except RtorrentUnavailable as exc:
            self.log.debug("%s: %s (%s); tried again at the next run", where, exc,
                           remote["state"])
            return
        except RtorrentError as exc:
            self.log.warning("%s at %s: %s", where, shown, exc)
            return
        if complete:
            remote["state"] = "complete"
            remote["completed"] = int(time.time())
            self._save_state()
            self.totals["complete"] += 1
            took = remote["completed"] - remote.get("sent", remote["completed"])
            self.log.info("The mirror of %s is complete at %s (%s in %s)", where, shown,
                          human_size(size), human_duration(took))
        else:
            self.log.debug("The mirror of %s at %s: %.1f%% (%s of %s)", where, shown,
                           100.0 * done / size if size else 0.0, human_size(done),
                           human_size(size))

    def _send(self, entry, url, remote, proxy):
        """Load the mirror into one remote (idempotent: a remote that has it is followed)."""
        h, shown = entry["hash"], proxy.endpoint.url
        try:
            proxy.call("d.complete", h)
            self.log.info("%s has the mirror of %s already", shown, self._where(entry))
        except HashNotFound:
            if self.dry_run:
                self.log.info("WOULD send the mirror of %s to %s", self._where(entry), shown)
                return
            commands = ["d.custom.set=mirror_of," + entry["source"]]
            if self.remote_dir:
                commands.insert(0, "d.directory.set=" + rtorrent_escape(self.remote_dir))
            proxy.call("load.raw_start_verbose", "", self._metafile(entry), *commands)
            remote["loads"] += 1
            self.log.info("Sent the mirror of %s to %s%s", self._where(entry), shown,
                          " (into %s)" % _log_safe(self.remote_dir) if self.remote_dir else "")
        remote["state"] = "loaded"
        remote["sent"] = int(time.time())
        self._save_state()

    def _check_done(self, entry):
        states = [remote["state"] for url, remote in entry["remotes"].items()
                  if url in self.remotes]
        if any(state in ("pending", "loaded") for state in states):
            return
        if self.config.get("remove_mirrored") and not self.dry_run and not self._erase(entry):
            return
        entry["done"] = True
        self._save_state()
        self.log.info("%s is mirrored: complete at %d of %d remote(s)", self._where(entry),
                      states.count("complete"), len(states))

    def _erase(self, entry):
        """Remove the local mirror item (never during a hash check, which can hang
        rTorrent); True once it is gone."""
        h = entry["hash"]
        try:
            if any(self.proxy.multicall([("d.hashing", h), ("d.is_hash_checking", h)])):
                self.log.debug("The local mirror of %s is removed after its hash check",
                               self._where(entry))
                return False
            self.proxy.call("d.erase", h)
            self.log.info("Removed the local mirror of %s (its data stays)", self._where(entry))
        except HashNotFound:
            pass
        entry["local"] = "removed"
        return True

    # -- status and closing --------------------------------------------------------------

    def status_text(self):
        text = "%d made, %d complete at remotes, %d failed" % (
            self.totals["made"], self.totals["complete"], self.totals["failed"])
        if self._work is not None:
            text += ", hashing %s" % _log_safe(self._work["name"])
        return text

    def close(self):
        mirror = self._stop_work()
        if mirror is not None:
            self.log.info("Closing while hashing %s; it is hashed again at the next start",
                          self._where(mirror))


###############################################################################
# Torrent mover ###############################################################
###############################################################################
#
# pyrosimple's Mover: a complete item leaves this rTorrent for another one that
# sees its data at the same path (the same machine, or shared storage), and
# arrives there complete, without a re-check.  For each matching item:
#
#   1. the hosts are ordered by rendezvous hashing (sha256 of info-hash + tracker
#      alias + URL, lowest first, as pyrosimple does), so an item always prefers
#      the same host; a host that has the item already is skipped;
#   2. the metafile is read from this rTorrent's session directory, and
#      fast-resume data (every piece done, each file's size and mtime checked
#      against the disk) is added to it;
#   3. the item is stopped here (never while it hash-checks) and loaded there
#      with load.raw_verbose and d.directory_base.set (escaped);
#   4. once it shows up there (within MOVER_ARRIVAL seconds, polled between
#      turns of the main loop), its customs (d.custom.keys and custom1-5) are
#      copied, it is started there and erased here.
#
# If it does not arrive, it is started here again: nothing is lost.

#: Seconds a moved item may take to show up in the target rTorrent.
MOVER_ARRIVAL = 5.0
#: Seconds between two looks for it.
MOVER_POLL = 0.05


def rendezvous_order(key, hosts):
    """``hosts`` in the order pyrosimple's Mover tries them for ``key`` (hash + alias)."""
    return sorted(hosts, key=lambda host: hashlib.sha256(key.encode() + host.encode()).digest())


def fast_resume(meta, paths, priorities=None):
    """A copy of metafile dict ``meta`` whose libtorrent_resume says every piece is there.

    ``paths`` are the data files in the metafile's order; a size that differs from
    the metafile's raises OSError, since rTorrent would then have to re-check.
    """
    info = meta[b"info"]
    piece = info[b"piece length"]
    lengths = ([f[b"length"] for f in info[b"files"]] if b"files" in info else [info[b"length"]])
    if len(lengths) != len(paths):
        raise OSError(errno.EINVAL, "rTorrent lists %d file(s), the metafile %d"
                      % (len(paths), len(lengths)))
    files, offset = [], 0
    for index, (path, length) in enumerate(zip(paths, lengths)):
        stat = os.stat(path)
        if stat.st_size != length:
            raise OSError(errno.EINVAL, "%s has %d bytes, the metafile says %d"
                          % (path, stat.st_size, length))
        first, last = offset // piece, (offset + length + piece - 1) // piece
        files.append({b"priority": priorities[index] if priorities else 1,
                      b"mtime": int(stat.st_mtime), b"completed": last - first})
        offset += length
    resumed = {k: v for k, v in meta.items() if k not in (b"libtorrent_resume", b"rtorrent")}
    resumed[b"libtorrent_resume"] = {b"bitfield": len(info[b"pieces"]) // 20, b"files": files}
    return resumed


@builtin_job
class TorrentMover(SteppedJob):
    """Moves complete items, with their fast-resume data, to another rTorrent.

    pyrosimple's Mover (``pyrosimple.job.move_torrent:Mover``).  The target must see
    the data at the same path; the item arrives complete, is started there without
    a hash check, and is erased here.
    """

    PARAMS = {
        "matcher": (str, "", "which complete items to move (a condition; required)"),
        "hosts": (str, "", "XML-RPC URLs of the target rTorrents, separated by spaces, "
                  "commas or lines (required)"),
        "view": (str, "main", "the rTorrent view to look at"),
        "sort_fields": (str, "", "the order in which matches are moved"),
        "max_items": (non_negative(int), 0, "move at most this many items per run (0: all)"),
        "remote_timeout": (non_negative(float), 0.0, "seconds one call to a target may take "
                           "(0: rpc_timeout)"),
    }
    RPC_METHODS = ("d.multicall2", "system.multicall", "d.complete", "d.hashing",
                   "d.is_hash_checking", "d.is_active", "d.directory_base", "d.name",
                   "f.multicall", "d.custom.keys", "d.custom", "d.custom1", "d.stop", "d.start",
                   "d.erase", "session.path", "load.raw_verbose", "d.custom.set",
                   "d.directory_base.set")
    REMOTES = ("hosts", ("d.hash", "load.raw_verbose", "d.directory_base.set"))

    def __init__(self, config):
        super().__init__(config)
        self.items = config.get("item_source")
        self.matcher = required_matcher(self, "is_complete=yes [ %s ]")
        self.sorter = sort_order(config)
        self.remotes = _remote_proxies(self, "hosts", "the target rTorrents")
        self.hosts = list(self.remotes)
        self.view = config.view or "main"
        self.max_items = config.max_items
        self.fields = set(self.matcher.fields) | {"name", "alias"} | (
            set(self.sorter.fields) if self.sorter else set())
        # SteppedJob's pending queue and timer, with a _next of its own: a move is one
        # call, then a wait for the item to show up at the target (_arrived).
        self._moving = None         # (item, target url, was active, deadline) while it travels
        self.totals = collections.Counter()
        self.log.info("Mover '%s': [ %s ] in view %r -> %s", self.name, self.matcher, self.view,
                      ", ".join(map(_shown_url, self.hosts)))

    def status_text(self):
        return "%d moved" % self.totals["moved"]

    WORK = "move"

    def close(self):
        self._stop_work()
        if self._moving is not None:        # stopped here, not confirmed there: back on
            self._give_back(self._moving, "the daemon stops")

    # -- a run ---------------------------------------------------------------------------

    def run(self):
        self.proxy.connect()
        if self._moving is not None:
            self.log.debug("Still moving %s", self._where(self._moving[0]))
            return
        matches = [item for item in self.items.fetch(self.view, self.fields)
                   if self.matcher.match(item)]
        if self.sorter:
            matches = self.sorter(matches)
        if self.max_items:
            matches = matches[:self.max_items]
        self.log.debug("%d item(s) to move", len(matches))
        self._pending = collections.deque(matches)
        self._next()

    @staticmethod
    def _where(item):
        return _shown_item(item["name"], item.hash)

    def _next(self):
        """Move the pending items one by one; each waits for the previous one to arrive."""
        while self._pending and self._moving is None and not self._closed:
            item = self._pending.popleft()
            try:
                self._send(item)
            except HashNotFound:
                self.log.debug("%s is gone from rTorrent", self._where(item))
            except (RtorrentFault, OSError, ValueError) as exc:
                self.totals["failed"] += 1
                self.log.warning("Moving %s failed: %s", self._where(item), _log_safe(str(exc)))

    def _target(self, item):
        """The first host in rendezvous order that does not have the item, or None."""
        for url in rendezvous_order(item.hash + (item["alias"] or ""), self.hosts):
            remote = self.remotes[url]
            try:
                remote.call("d.hash", item.hash)
            except HashNotFound:
                return url
            except RtorrentUnavailable as exc:
                self.log.warning("%s: target skipped for %s: %s", _shown_url(url),
                                 self._where(item), exc)
                continue
            self.log.info("%s is at %s already; trying the next host", self._where(item),
                          _shown_url(url))
        return None

    def _send(self, item):
        names = ("complete", "hashing", "is_hash_checking", "is_active", "directory_base",
                 "is_multi_file")
        now = dict(zip(names, self.proxy.multicall([("d." + n, item.hash) for n in names])))
        if not now["complete"] or now["hashing"] or now["is_hash_checking"]:
            self.log.debug("%s waits: not complete, or hash-checking", self._where(item))
            return
        url = self._target(item)
        if url is None:
            self.log.info("No host can take %s", self._where(item))
            return
        if self.dry_run:
            self.log.info("WOULD move %s to %s", self._where(item), _shown_url(url))
            return
        rows = self.proxy.call("f.multicall", item.hash, "", "f.frozen_path=", "f.priority=")
        meta = fast_resume(self._metafile(item), [str(path) for path, _ in rows],
                           [int(priority) for _, priority in rows])
        base = str(now["directory_base"])
        self.proxy.call("d.stop", item.hash)
        self._moving = (item, url, bool(now["is_active"]), time.monotonic() + MOVER_ARRIVAL)
        try:
            self.remotes[url].call("load.raw_verbose", "", bencode(meta),
                                   "d.directory_base.set=" + rtorrent_escape(base))
        except RtorrentError as exc:
            self._give_back(self._moving, str(exc))
            return
        self.log.debug("Sent %s to %s (data in %s)", self._where(item), _shown_url(url), base)
        self._arrived()

    def _metafile(self, item):
        """The item's metafile from this rTorrent's session directory (a dict)."""
        session = self.proxy.connect().session_path
        if not session:
            raise OSError(errno.ENOENT, "rTorrent keeps no session directory "
                          "(session.path is empty), so its metafiles cannot be read")
        path = os.path.join(os.path.expanduser(session), item.hash + ".torrent")
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:     # rTorrent on another machine: ask it for the file
            data = base64.b64decode(self.proxy.call("execute.capture", "", "base64", path))
        return bdecode(data)

    def _arrived(self):
        """Has the item shown up at the target? Finish, wait a little more, or give back."""
        self._timer = None
        item, url, _, deadline = self._moving
        remote = self.remotes[url]
        while True:
            try:
                remote.call("d.hash", item.hash)
                break
            except (HashNotFound, RtorrentUnavailable):
                pass
            if time.monotonic() > deadline:
                self._give_back(self._moving, "it did not show up within %.0f s" % MOVER_ARRIVAL)
                self._start_next()
                return
            if _loop_turns(self.daemon):        # look again after the loop turned
                self._timer = self.daemon.call_later(MOVER_POLL, self._arrived)
                return
            time.sleep(MOVER_POLL)              # --run-once: wait right here
        try:
            self._finish(item, remote)
        except RtorrentError as exc:
            self.totals["failed"] += 1
            self.log.warning("Moving %s: it is at %s, but finishing failed: %s (it stays "
                             "stopped here)", self._where(item), _shown_url(url), exc)
        self._moving = None
        self._start_next()

    def _finish(self, item, remote):
        """Copy the customs, start the item there, erase it here."""
        customs = []
        try:
            keys = self.proxy.call("d.custom.keys", item.hash)
        except MethodMissing:
            keys = []
        except RtorrentFault:       # 0.9.8 faults when an item has no customs at all
            keys = []
        if keys:
            values = self.proxy.multicall([("d.custom", item.hash, key) for key in keys])
            customs += [("d.custom.set", item.hash, key, value) for key, value in zip(keys, values)]
        numbered = self.proxy.multicall([("d.custom%d" % n, item.hash) for n in range(1, 6)])
        customs += [("d.custom%d.set" % n, item.hash, value)
                    for n, value in enumerate(numbered, 1) if value]
        remote.multicall(customs + [("d.start", item.hash)])
        self.proxy.call("d.erase", item.hash)
        self.items.invalidate()
        self.totals["moved"] += 1
        self.log.info("Moved %s to %s", self._where(item), _shown_url(self._moving[1]))

    def _give_back(self, moving, why):
        """The item did not make it: start it here again if it was running."""
        item, url, was_active, _ = moving
        self._moving = None
        self.totals["failed"] += 1
        self.log.warning("Moving %s to %s failed: %s; it stays here%s", self._where(item),
                         _shown_url(url), why, " and is started again" if was_active else "")
        if was_active:
            try:
                self.proxy.call("d.start", item.hash)
            except RtorrentError as exc:
                self.log.warning("Could not start %s again: %s", self._where(item), exc)


###############################################################################
# Remote watch ################################################################
###############################################################################
#
# A remote folder (FTP, FTPS or SFTP) is mirrored into a local spool folder that a
# tree watch loads from, so loading, validation, duplicates, failed_dir, cmd.NAME
# templates and the path flags (start/load/queue) are the tree watch's.  A poll
# lists the remote tree, fetches each new metafile into a dot-file (which the tree
# watch ignores), checks its byte count against the listed size, and only then
# renames it into place.  What was fetched is remembered by remote path and
# (size, mtime) in a small JSON state file, so a restart fetches nothing again.
#
# The network is blocking (ftplib, the sftp program), so a poll runs in one worker
# thread that only touches the spool and its own result; the main loop takes the
# result when the thread is done and owns the state and everything else.

#: URL schemes and their default ports.
REMOTE_SCHEMES = {"ftp": 21, "ftps": 21, "sftp": 22}
#: Temporary download names in the spool (dot-files: the tree watch never sees them).
_REMOTE_PARTIAL = ".pyrotorque-remote-"
#: Deepest folder level a recursive poll goes down to.
REMOTE_MAX_DEPTH = 8
#: Most folders one poll lists: links that loop (a folder linked to its parent, twice)
#: would otherwise make the depth limit list 2**8 folders, ten of them 10**8.
REMOTE_MAX_FOLDERS = 1000
#: What gets a backslash in an sftp batch word: all but letters, digits, '/._-' and non-ASCII.
_SFTP_PLAIN = re.compile(r"([^A-Za-z0-9/._\x80-\U0010ffff-])")
#: One line of 'ls -ln': mode, links, owner, group, size, date (3 words), name.  Of the
#: date only month and day are kept: the third word is the time for recent files and the
#: year for old ones, and a signature must not change because a file grew old.
_SFTP_LS = re.compile(r"([-dlpscb])[-rwxsStT]{9}\S*\s+\S+\s+\S+\s+\S+\s+([0-9]{1,20})\s+"
                      r"(\w+\s+\d+)\s+[\d:]+ (.+)\Z")


class RemoteError(PyrotorqueError):
    """A remote server could not be reached or did not do what it was asked."""


class _RemoteFileRefused(RemoteError):
    """The server refused one file (e.g. no permission): the others can still be fetched."""


class _RemoteUrl:
    """What a job's 'url' says: scheme, host, port, user, password and folder."""

    __slots__ = ("scheme", "host", "port", "user", "password", "folder")

    def shown(self):
        """The URL without its password, for logs and the state file."""
        user = urllib.parse.quote(self.user, safe="") + "@" if self.user else ""
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s%s:%d/%s" % (self.scheme, user, host, self.port,
                                    urllib.parse.quote(self.folder))


def parse_remote_url(text):
    """'ftp://user:pass@host:port/dir' (also ftps://, sftp://) -> _RemoteUrl.

    The folder is relative to the login (home) folder; '//dir' makes it absolute.
    """
    parts = urllib.parse.urlsplit(str(text).strip())
    if parts.scheme not in REMOTE_SCHEMES:
        raise ConfigError("%r is not an ftp://, ftps:// or sftp:// URL" % text)
    if parts.query or parts.fragment:
        raise ConfigError("%r: a remote URL has no '?' or '#' part" % text)
    url = _RemoteUrl()
    url.scheme = parts.scheme
    try:
        url.host, url.port = parts.hostname, parts.port or REMOTE_SCHEMES[parts.scheme]
    except ValueError as exc:
        raise ConfigError("%r: %s" % (text, exc)) from None
    if not url.host:
        raise ConfigError("%r has no host name" % text)
    url.user = urllib.parse.unquote(parts.username or "")
    url.password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    path = urllib.parse.unquote(parts.path)[1:]     # the '/' after the host is not in it
    url.folder = path.rstrip("/") or path[:1]       # '//' is the root folder '/'
    for value in (url.user, url.password or "", url.folder):
        if CONTROL_CHARS.search(value):
            raise ConfigError("%r: control characters are not allowed" % text)
    return url


def _remote_join(folder, rel):
    return "%s/%s" % (folder.rstrip("/"), rel) if folder else rel


def _unsafe_remote_name(rel):
    """Why a remote relative path must not be fetched, or None if it is fine."""
    if CONTROL_CHARS.search(rel):
        return "it has control characters"
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return "it has an empty, '.' or '..' path part"
        if part.startswith("."):
            return "hidden names (starting with '.') are not fetched"
        if len(os.fsencode(part)) > 255:
            return "a name is longer than 255 bytes"
    return None


def _remote_candidate(name):
    """A metafile name; dot-files are ignored as in the tree watch (uploads in progress)."""
    return not name.startswith(".") and name.lower().endswith(METAFILE_SUFFIXES)


class _RemoteFile:
    """One remote metafile: its path below the watched folder, size and mtime text."""

    __slots__ = ("rel", "size", "stamp")

    def __init__(self, rel, size, stamp):
        self.rel, self.size, self.stamp = rel, size, stamp

    @property
    def sig(self):
        return [self.size, self.stamp]


class _FtpSource:
    """FTP and FTPS (explicit, AUTH TLS, with a protected data channel) with ftplib."""

    def __init__(self, url, password, timeout, context, log):
        self.url, self.password, self.timeout = url, password, timeout
        self.context, self.log = context, log
        self.ftp = None
        self.mlsd = True
        self.cancelled = threading.Event()

    def open(self):
        try:
            if self.url.scheme == "ftps":
                ftp = ftplib.FTP_TLS(context=self.context, timeout=self.timeout)
            else:
                ftp = ftplib.FTP(timeout=self.timeout)
            ftp.connect(self.url.host, self.url.port)
            self.ftp = ftp
            if self.url.scheme == "ftps":
                ftp.auth()
            ftp.login(self.url.user or "anonymous", self.password or "")
            if self.url.scheme == "ftps":
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
        except (OSError, EOFError, ftplib.Error) as exc:
            self.close()
            raise RemoteError("cannot log in to %s: %s" % (self.url.shown(), _ftp_reason(exc))) \
                from None

    def close(self):
        ftp, self.ftp = self.ftp, None
        if ftp is not None:
            try:
                ftp.quit()
            except (OSError, EOFError, ftplib.Error):
                ftp.close()

    def abort(self):
        """From the main thread: make the worker's transfer fail at once."""
        self.cancelled.set()
        ftp = self.ftp
        if ftp is not None and ftp.sock is not None:
            try:
                ftp.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def listing(self, recursive):
        """The metafiles below the folder: [_RemoteFile]."""
        found, folders, seen, count = [], [("", 0)], set(), 0
        while folders:
            rel_dir, depth = folders.pop(0)
            path = _remote_join(self.url.folder, rel_dir) or "."
            try:
                entries = self._entries(path)
            except (OSError, EOFError, ftplib.Error) as exc:
                raise RemoteError("cannot list %s: %s" % (path, _ftp_reason(exc))) from None
            for name, kind, size, stamp in entries:
                rel = _remote_join(rel_dir, name)
                if name in ("", ".", "..") or rel in seen:   # an odd listing must not loop
                    continue                                # or fetch a file twice
                seen.add(rel)
                if kind == "dir":
                    if recursive and depth < REMOTE_MAX_DEPTH and not name.startswith("."):
                        folders.append((rel, depth + 1))
                        count += 1
                        _check_folder_count(count, self.url)
                elif kind == "file" and _remote_candidate(name):
                    found.append(_RemoteFile(rel, size, stamp))
        return found

    def _entries(self, path):
        """(name, 'file'/'dir'/'other', size, mtime text) of one folder."""
        if self.mlsd:
            try:
                rows = list(self.ftp.mlsd(path, ["type", "size", "modify"]))
            except ftplib.error_perm as exc:
                if not str(exc).startswith(("500", "501", "502")):
                    raise
                self.mlsd = False
                self.log.info("%s has no MLSD; listing with NLST, SIZE and MDTM (only the top "
                              "folder)", self.url.shown())
            else:
                return [(name.rsplit("/", 1)[-1], facts.get("type", "").lower(),
                         _listed_size(facts.get("size")), facts.get("modify", ""))
                        for name, facts in rows]
        entries = []
        names = self.ftp.nlst(path)
        self.ftp.voidcmd("TYPE I")      # NLST switched to ASCII, where SIZE is refused
        for name in names:
            name = name.rsplit("/", 1)[-1]
            if not _remote_candidate(name):
                continue
            full = _remote_join(path if path != "." else "", name)
            try:
                answer = self.ftp.sendcmd("SIZE " + full)
                stamp = self.ftp.sendcmd("MDTM " + full).split()[-1]
            except ftplib.error_perm:       # a folder, or gone meanwhile
                continue
            entries.append((name, "file", _listed_size(answer[3:]) if answer[:3] == "213"
                            else 0, stamp))
        return entries

    def fetch(self, remote, handle):
        """Copy a remote file into ``handle``; more bytes than listed is an error."""
        received = [0]

        def write(block):
            if self.cancelled.is_set():
                raise RemoteError("the job is closing")
            handle.write(block)
            received[0] += len(block)
            if received[0] > remote.size:
                raise RemoteError("more bytes than the listed %d (still being written?)"
                                  % remote.size)
        try:
            self.ftp.retrbinary("RETR " + _remote_join(self.url.folder, remote.rel), write)
        except ftplib.error_perm as exc:
            raise _RemoteFileRefused(_ftp_reason(exc)) from None
        except (OSError, EOFError, ftplib.Error) as exc:
            raise RemoteError(_ftp_reason(exc)) from None

    def delete(self, rel):
        self._command(self.ftp.delete, _remote_join(self.url.folder, rel))

    def rename(self, rel, new_rel):
        self._command(self.ftp.rename, _remote_join(self.url.folder, rel),
                      _remote_join(self.url.folder, new_rel))

    @staticmethod
    def _command(method, *args):
        try:
            method(*args)
        except (OSError, EOFError, ftplib.Error) as exc:
            raise RemoteError(_ftp_reason(exc)) from None


def _check_folder_count(count, url):
    """RemoteError once a recursive listing has more than REMOTE_MAX_FOLDERS folders."""
    if count > REMOTE_MAX_FOLDERS:
        raise RemoteError("more than %d folders below %s (links that loop?); a recursive poll "
                          "lists at most %d" % (REMOTE_MAX_FOLDERS, url.shown(),
                                                REMOTE_MAX_FOLDERS))


def _listed_size(text):
    """A size as a server lists it (MLSD's size fact, the answer to SIZE): an int, 0 when
    there is none, None when it is no number (the file is then refused, not fetched)."""
    text = (text or "0").strip()
    return int(text) if re.fullmatch(r"[0-9]{1,20}", text) else None


def _ftp_reason(exc):
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, socket.timeout):
        text = "timed out"
    return _log_safe(text)


def _sftp_word(path):
    """A path as one word of an sftp batch command: every special character escaped, so
    neither globbing nor quoting nor '#' can change what it names; './' in front of a
    leading '-' keeps it from being read as an option."""
    if path.startswith("-"):
        path = "./" + path
    return _SFTP_PLAIN.sub(r"\\\1", path)


class _SftpSource:
    """SFTP through the system's sftp program in batch mode, one session per step."""

    def __init__(self, url, program, timeout, identity, options, log):
        self.url, self.program, self.timeout = url, program, timeout
        self.log = log
        self.argv = [program, "-b", "-", "-P", str(url.port),
                     "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % max(1, round(timeout)),
                     "-o", "ServerAliveInterval=%d" % max(1, round(timeout / 3)),
                     "-o", "ServerAliveCountMax=3"]
        if identity:
            self.argv += ["-i", identity, "-o", "IdentitiesOnly=yes"]
        for option in options:
            self.argv += ["-o", option]
        host = "[%s]" % url.host if ":" in url.host else url.host
        self.argv.append("%s@%s" % (url.user, host) if url.user else host)
        self.proc = None
        self.cancelled = threading.Event()

    def open(self):
        """Sessions are opened per step; nothing to do."""

    def close(self):
        """Sessions end with their batch; nothing to do."""

    def abort(self):
        """From the main thread: end the running sftp session at once."""
        self.cancelled.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def session(self, commands, seconds):
        """Run sftp with these batch commands; its standard output, or RemoteError."""
        if self.cancelled.is_set():
            raise RemoteError("the job is closing")
        batch = "".join(command + "\n" for command in commands)
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise RemoteError("cannot run %s: %s" % (self.program, exc.strerror)) from None
        try:
            out, err = self.proc.communicate(batch.encode("utf-8", "surrogateescape"),
                                             timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RemoteError("sftp to %s did not finish within %.0f s"
                              % (self.url.shown(), seconds)) from None
        finally:
            returncode, self.proc = self.proc.returncode, None
        if returncode != 0:
            lines = [line for line in err.decode("utf-8", "replace").splitlines()
                     if line.strip() and not line.startswith("Warning: Permanently added")]
            raise RemoteError("sftp to %s: %s" % (
                self.url.shown(), _log_safe(" / ".join(lines[-3:]) or "exit status %d"
                                            % returncode)))
        return out.decode("utf-8", "surrogateescape")

    def listing(self, recursive):
        found, level, depth, folders = [], [""], 0, 0
        while level:
            commands = ["-ls -ln %s" % _sftp_word(_remote_join(self.url.folder, rel) or ".")
                        for rel in level]
            output = self.session(commands, self.timeout * (1 + len(commands)))
            subfolders = []
            for rel_dir, kind, size, stamp, name in self._parse(output, level):
                rel = _remote_join(rel_dir, name)
                if kind == "d":
                    if recursive and depth < REMOTE_MAX_DEPTH and not name.startswith("."):
                        subfolders.append(rel)
                elif kind == "-" and _remote_candidate(name):
                    found.append(_RemoteFile(rel, size, stamp))
            level, depth = subfolders, depth + 1
            folders += len(level)
            _check_folder_count(folders, self.url)
        return found

    def _parse(self, output, level):
        """(folder rel, kind, size, date text, name) of each listed entry.

        Each 'ls' output block follows its own echoed command line; names are shown
        with the listed path in front, which is cut off.  A name with a newline
        breaks its line in two, so it never parses as the name it is.
        """
        block = -1
        for line in output.split("\n"):
            if line.startswith("sftp> "):
                block += 1
                continue
            found = _SFTP_LS.match(line)
            if not found or not 0 <= block < len(level):
                continue
            kind, size, stamp, path = found.groups()
            prefix = _remote_join(self.url.folder, level[block])
            prefix = ("./" + prefix if prefix.startswith("-") else prefix or ".").rstrip("/") + "/"
            name = path[len(prefix):] if path.startswith(prefix) else ""
            if name and "/" not in name:
                yield level[block], kind, int(size), " ".join(stamp.split()), name

    def fetch_all(self, wanted, targets):
        """Get each wanted file into its target path in one session."""
        commands = ["-get %s %s" % (_sftp_word(_remote_join(self.url.folder, remote.rel)),
                                    _sftp_word(target)) for remote, target in zip(wanted, targets)]
        seconds = self.timeout * (1 + len(commands))
        self.session(commands, seconds)

    def actions(self, actions):
        """Delete or rename files in one session; unsuccessful ones are seen at the next
        listing (a rename or delete that did not happen leaves the file listed)."""
        commands = []
        for rel, new_rel in actions:
            source = _sftp_word(_remote_join(self.url.folder, rel))
            if new_rel is None:
                commands.append("-rm %s" % source)
            else:
                commands.append("-rename %s %s" % (
                    source, _sftp_word(_remote_join(self.url.folder, new_rel))))
        self.session(commands, self.timeout * (1 + len(commands)))


class _RemotePoll:
    """One poll of the remote folder, run in a worker thread (or inline with --run-once).

    Reads only what it was given and writes only the spool (through the job's place(),
    which also records each file in the state) and its own results: ``done`` (remote
    paths whose after-action succeeded), ``fetched`` (remote paths), ``listed``
    ({rel: sig} of a complete listing, else None) and ``error``.
    """

    def __init__(self, job, known, actions):
        self.job, self.log = job, job.log
        self.source = job.source
        self.known = known          # rel -> sig fetched before
        self.actions = actions      # [(rel, new rel or None for delete)]
        self.done, self.fetched = [], []
        self.listed = None
        self.error = None
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.run, name="pyrotorque-%s" % self.job.name,
                                       daemon=True)
        self.thread.start()

    def run(self):
        try:
            self.source.open()
            try:
                if self.actions:
                    self._act()
                self._poll()
            finally:
                self.source.close()
        except RemoteError as exc:
            self.error = exc
        except Exception as exc:        # a bug must not leave the job waiting forever
            self.log.exception("Remote poll failed")
            self.error = exc

    def _act(self):
        if isinstance(self.source, _SftpSource):
            self.source.actions(self.actions)       # the listing that follows tells how it went
            return
        for rel, new_rel in self.actions:
            try:
                if new_rel is None:
                    self.source.delete(rel)
                else:
                    self.source.rename(rel, new_rel)
            except RemoteError as exc:
                self.log.warning("Cannot %s remote %r: %s; trying again at the next poll",
                                 "delete" if new_rel is None else "rename", rel, exc)
                continue
            self.log.info("%s remote %r%s", "Deleted" if new_rel is None else "Renamed",
                          rel, "" if new_rel is None else " to %r" % new_rel)
            self.done.append(rel)

    def _poll(self):
        job = self.job
        files = self.source.listing(job.recursive)
        self.listed = {remote.rel: remote.sig for remote in files}
        if isinstance(self.source, _SftpSource):
            for rel, new_rel in self.actions:
                if rel in self.listed:
                    self.log.warning("Remote %r is still there after the %s; trying again at "
                                     "the next poll", rel, "delete" if new_rel is None
                                     else "rename")
                else:
                    self.log.info("%s remote %r%s", "Deleted" if new_rel is None else "Renamed",
                                  rel, "" if new_rel is None else " to %r" % new_rel)
        wanted = self._wanted(files)
        if not wanted:
            return
        targets = [job.partial_path(remote.rel) for remote in wanted]
        if isinstance(self.source, _SftpSource):
            session_ok = False
            try:
                self.source.fetch_all(wanted, targets)
                session_ok = True
            finally:
                for remote, partial in zip(wanted, targets):
                    if os.path.exists(partial):
                        self._place(remote, partial)
                    elif session_ok:        # 'get' failed for this one file
                        job.refuse(remote, "the server did not send it (see its permissions)")
            return
        for remote, partial in zip(wanted, targets):
            try:
                with open(partial, "wb") as handle:
                    self.source.fetch(remote, handle)
            except _RemoteFileRefused as exc:
                os.remove(partial)
                job.refuse(remote, "the server did not send it: %s" % exc)
                continue
            except RemoteError as exc:
                os.remove(partial)
                raise RemoteError("fetching %r failed: %s" % (remote.rel, exc)) from None
            self._place(remote, partial)

    def _wanted(self, files):
        """The listed files to fetch in this poll: new or changed ones, within the limits
        (those refused are reported; none in a dry run, which says what it would fetch)."""
        job, wanted = self.job, []
        for remote in sorted(files, key=lambda r: r.rel):
            if self.known.get(remote.rel) == remote.sig:
                continue
            why = _unsafe_remote_name(remote.rel)
            if why is None and remote.size is None:
                why = "the server lists no size for it"
            if why is None and remote.size > job.max_size:
                why = "%s is larger than max_size (%s)" % (human_size(remote.size),
                                                           human_size(job.max_size))
            if why is None and remote.size == 0:
                continue        # being created; a later poll sees it written
            if why:
                job.refuse(remote, why)
                continue
            if job.dry_run:
                self.log.info("Would fetch %r (%s) (dry run)", remote.rel,
                              human_size(remote.size))
                continue
            if job.max_files and len(wanted) >= job.max_files:
                self.log.info("Fetching %d file(s) per poll (max_files); the rest come with "
                              "the next polls", job.max_files)
                break
            wanted.append(remote)
        return wanted

    def _place(self, remote, partial):
        """Rename a complete download into place; anything else is removed."""
        try:
            size = os.path.getsize(partial)
            if size != remote.size:
                self.log.warning("Download of %r not used: got %d of %d bytes; it is fetched "
                                 "again at the next poll", remote.rel, size, remote.size)
                return
            if not remote.rel.lower().endswith(".magnet"):
                with open(partial, "rb") as handle:
                    data = handle.read(self.job.max_size + 1)
                try:
                    read_metafile(data, self.job.max_size)
                except MetafileError as exc:
                    if exc.truncated:       # uploaded in place and not finished yet?
                        self.job.incomplete(remote, exc)
                        return
            target = self.job.place(partial, remote)
            partial = None
            self.fetched.append(remote.rel)
            self.log.info("Fetched %r (%s) into %s", remote.rel, human_size(remote.size),
                          os.path.dirname(target))
        except OSError as exc:
            self.log.error("Cannot place the download of %r: %s", remote.rel, exc)
        finally:
            if partial is not None:
                try:
                    os.remove(partial)
                except OSError:
                    pass


@builtin_job
class RemoteWatch(TreeWatch):
    """Fetches new metafiles from an FTP, FTPS or SFTP folder, once, and loads them.

    The remote tree is mirrored into a local spool folder that is watched like a
    TreeWatch root, so folder names (start/load/queue) and cmd.NAME templates work
    as there.  Each poll runs in a worker thread; the main loop never waits for it.
    """

    PARAMS = {
        "url": (str, "", "ftp://[user[:password]@]host[:port]/folder, ftps://..., "
                "sftp://[user@]host[:port]/folder ('//folder': absolute)"),
        "password_file": (str, "", "a file whose first line is the FTP password"),
        "netrc": (str, "~/.netrc", "a netrc file with the FTP password ('' to not read one)"),
        "identity": (str, "", "the SSH private key for sftp:// (default: ssh's own)"),
        "ssh_options": (str, "", "more 'Key=Value' ssh options for sftp://, space-separated"),
        "cafile": (str, "", "CA certificates (or the server's own) to verify an FTPS server"),
        "tls_verify": (parse_bool, True, "verify the FTPS server's certificate and host name"),
        "after": (str, "keep", "what to do with a remote file once its item is in rTorrent: "
                  "keep, delete or rename:SUFFIX"),
        "recursive": (parse_bool, False, "also fetch from sub-folders (mirrored in the spool)"),
        "timeout": (non_negative(float), 30.0, "seconds any one network step may take"),
        "max_files": (non_negative(int), 50, "files fetched per poll at most (0: no limit)"),
        "spool": (str, "", "local folder the files are fetched into (default: "
                  "<config dir>/run/remote-<job>)"),
        "state_file": (str, "", "where fetched files are remembered (default: "
                       "<config dir>/run/remote-<job>.json)"),
        "load_mode": TreeWatch.PARAMS["load_mode"],
        "queued": TreeWatch.PARAMS["queued"],
        "remove_loaded": (parse_bool, True, "delete the spool copy once its item is in "
                          "rTorrent"),
        "move_loaded_to": TreeWatch.PARAMS["move_loaded_to"],
        "failed_dir": TreeWatch.PARAMS["failed_dir"],
        "max_size": TreeWatch.PARAMS["max_size"],
    }
    RUN_AT_START = True     # like the tree watch's scan at start: what came meanwhile comes now

    def __init__(self, config):
        self.name = config.job_name
        # The tree watch's constructor comes last (it needs the spool); Job's sets the same.
        self.log = logging.getLogger("pyrotorque.job." + self.name)
        url = str(config.get("url") or "").strip()
        if not url:
            raise ConfigError("url: you need to set 'job.%s.url'" % self.name)
        try:
            self.url = parse_remote_url(url)
        except ConfigError as exc:
            raise ConfigError("url: %s" % exc) from None
        self.spool = job_path(config, config.spool, "run/remote-%s" % self.name)
        self.state_file = job_path(config, config.state_file, "run/remote-%s.json" % self.name)
        self.after = self._after_action(config.after.strip() or "keep")
        self.recursive = config.recursive
        self.max_files = config.max_files
        timeout = config.timeout or 30.0
        self.source = self._source(config, timeout)
        try:
            os.makedirs(self.spool, exist_ok=True)
        except OSError as exc:
            raise ConfigError("spool: cannot make %r (%s)" % (self.spool, exc.strerror)) from None
        self._remove_partials()
        config = type(config)(config)
        config["path"] = self.spool
        config["poll_interval"] = 0.0
        self._state = self._load_state()
        self._remote_poll = None
        self._down_since = None
        self._refused = set()       # (rel, sig) refused and said so
        self._incomplete = {}       # rel -> sig of a download found incomplete once
        # The worker records each file as it places it, so the main loop may load it
        # before the poll is over; both sides change the state under this lock.
        self._state_lock = threading.Lock()
        self._partials = 0
        self.polls = self.fetches = 0
        super().__init__(config)
        self.log.info("Remote watch %s -> %s (after loading: %s%s)", self.url.shown(),
                      self.spool, config.get("after") or "keep",
                      ", recursive" if self.recursive else "")

    # -- configuration -------------------------------------------------------------

    @staticmethod
    def _after_action(text):
        """'keep' -> None, 'delete' -> '', 'rename:SUFFIX' -> SUFFIX."""
        text = text.strip()
        if text == "keep":
            return None
        if text == "delete":
            return ""
        if text.startswith("rename:"):
            suffix = text[7:]
            if not suffix or "/" in suffix or CONTROL_CHARS.search(suffix):
                raise ConfigError("after: 'rename:SUFFIX' needs a suffix without '/', "
                                  "e.g. rename:.loaded")
            if _remote_candidate("x" + suffix):
                raise ConfigError("after: the suffix %r would make the renamed file a "
                                  "metafile name that is fetched again" % suffix)
            return suffix
        raise ConfigError("after: %r is not keep, delete or rename:SUFFIX" % text)

    def _source(self, config, timeout):
        url = self.url
        if url.scheme == "sftp":
            if url.password is not None:
                raise ConfigError("url: sftp:// logs in with a key (see 'identity'), "
                                  "not a password")
            program = shutil.which("sftp")
            if not program:
                raise ConfigError("url: sftp:// needs the 'sftp' program, which is not on "
                                  "PATH (install openssh-client)")
            identity = os.path.expanduser(str(config.get("identity") or "").strip())
            if identity and not os.path.isfile(identity):
                raise ConfigError("identity: %r is not a file" % identity)
            try:
                options = shlex.split(str(config.get("ssh_options") or ""))
            except ValueError as exc:
                raise ConfigError("ssh_options: %s" % exc) from None
            for option in options:
                if "=" not in option:
                    raise ConfigError("ssh_options: %r is not Key=Value" % option)
            return _SftpSource(url, program, timeout, identity, options, self.log)
        context = None
        if url.scheme == "ftps":
            cafile = os.path.expanduser(str(config.get("cafile") or "").strip())
            try:
                context = ssl.create_default_context(cafile=cafile or None)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError("cafile: cannot read %r (%s)" % (cafile, exc)) from None
            if not config.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return _FtpSource(url, self._password(config), timeout, context, self.log)

    def _password(self, config):
        """The FTP password: from the URL, password_file or netrc, else none (anonymous)."""
        if self.url.password is not None:
            return self.url.password
        name = os.path.expanduser(str(config.get("password_file") or "").strip())
        if name:
            try:
                with open(name, encoding="utf-8") as handle:
                    return handle.readline().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError("password_file: cannot read %r (%s)" % (name, exc)) from None
        name = os.path.expanduser(config.netrc.strip())
        if name and os.path.isfile(name):
            try:
                found = netrc.netrc(name).authenticators(self.url.host)
            except (OSError, netrc.NetrcParseError) as exc:
                raise ConfigError("netrc: %s" % exc) from None
            if found and (not self.url.user or found[0] in (self.url.user, None, "")):
                if not self.url.user:
                    self.url.user = found[0] or ""
                return found[2]
        return None

    # -- state ---------------------------------------------------------------------------

    def _load_state(self):
        """{remote rel: {"sig": [size, mtime], "loaded": bool, "acted": bool}} for this URL
        ("incomplete": why, for a truncated file that is not fetched again while its sig
        stays the same)."""
        try:
            return read_json_state(self.state_file, self.log, "Remote state", "Starting afresh "
                                   "(what is fetched again is a duplicate to the tree watch)",
                                   self._files_of) or {}
        except OSError:         # cannot be moved aside: it is read (and logged) again next time
            return {}

    def _files_of(self, data):
        if data.get("url") != self.url.shown():
            self.log.info("Remote state %s was for another URL; starting afresh", self.state_file)
            return {}
        return {rel: value for rel, value in data["files"].items()
                if isinstance(value, dict) and isinstance(value.get("sig"), list)}

    def _save_state(self):
        """Replace the state file atomically (called with the state lock held)."""
        try:
            write_json_atomic(self.state_file, {"url": self.url.shown(), "files": self._state})
        except OSError as exc:
            self.log.error("Cannot save remote state %s: %s", self.state_file, exc)

    def place(self, partial, remote):
        """Rename a complete download into the spool and remember it (called by the worker).

        Renamed first, remembered right after: a crash in between fetches the file again,
        which the tree watch then finds already in rTorrent; the other order could lose it.
        """
        target = os.path.join(self.spool, *remote.rel.split("/"))
        with self._state_lock:
            os.replace(partial, target)
            self._state[remote.rel] = {"sig": remote.sig, "loaded": False}
            self._save_state()
        return target

    def _remove_partials(self):
        """Downloads a killed daemon left behind are never used (live ones are not ours)."""
        for folder, _, files in os.walk(self.spool):
            for name in files:
                pid = name[len(_REMOTE_PARTIAL):].partition("-")[0]
                if name.startswith(_REMOTE_PARTIAL) and pid.isdigit() \
                        and not _process_alive(int(pid)):
                    try:
                        os.remove(os.path.join(folder, name))
                    except OSError:
                        pass

    def partial_path(self, rel):
        """A fresh dot-file beside where ``rel`` goes in the spool (called by the worker)."""
        parts = rel.split("/")
        folder = os.path.join(self.spool, *parts[:-1])
        os.makedirs(folder, exist_ok=True)
        self._partials += 1
        return os.path.join(folder, "%s%d-%d" % (_REMOTE_PARTIAL, os.getpid(), self._partials))

    def refuse(self, remote, why):
        """Say once per file version why it is not fetched (called by the worker)."""
        key = (remote.rel, tuple(remote.sig))
        if key not in self._refused:
            self._refused.add(key)
            self.log.warning("Not fetching remote %r: %s", _log_safe(remote.rel), why)

    def incomplete(self, remote, why):
        """A download that is no whole metafile (called by the worker).  The first time it
        may be an upload in progress: fetched again at the next poll.  Unchanged (same size
        and mtime) and still incomplete the second time, it is reported once and remembered
        in the state, so it is not fetched again until its size or mtime changes."""
        with self._state_lock:
            if self._incomplete.get(remote.rel) != remote.sig:
                self._incomplete[remote.rel] = remote.sig
                self.log.info("Download of %r not used: incomplete (%s), still being "
                              "uploaded?; it is fetched again at the next poll", remote.rel, why)
                return
            del self._incomplete[remote.rel]
            self._state[remote.rel] = {"sig": remote.sig, "loaded": False,
                                       "incomplete": str(why)}
            self._save_state()
        self.log.warning("Remote metafile %r on %s is still incomplete (%s) and has not changed "
                         "since the last poll (%d bytes, modified %s): not fetched again until "
                         "its size or modification time changes", _log_safe(remote.rel),
                         self.url.shown(), why, remote.size, remote.stamp or "?")

    # -- polls ---------------------------------------------------------------------------

    def run(self):
        """The scheduled run: poll the remote folder, then load what came."""
        if self._remote_poll is not None:
            self.log.debug("The previous poll of %s is still going; not starting another",
                           self.url.shown())
            return
        with self._state_lock:
            known = {rel: value["sig"] for rel, value in self._state.items()}
            actions = self._due_actions()
        poll = self._remote_poll = _RemotePoll(self, known, actions)
        self.polls += 1
        if _loop_turns(self.daemon):
            poll.start()
            self.later(0.05, self._check_poll)
            return
        poll.run()          # --run-once: finish here
        self._finish_poll()
        super().run()

    def _due_actions(self):
        if self.after is None or self.dry_run:
            return []
        return [(rel, None if self.after == "" else rel + self.after)
                for rel, value in sorted(self._state.items())
                if value.get("loaded") and not value.get("acted")]

    def _check_poll(self):
        if self._remote_poll.thread.is_alive():
            self.later(0.05, self._check_poll)
            return
        self._finish_poll()
        self.scan("fetched")

    def _finish_poll(self):
        poll, self._remote_poll = self._remote_poll, None
        self.fetches += len(poll.fetched)
        with self._state_lock:
            for rel in poll.done:
                if rel in self._state:
                    self._state[rel]["acted"] = True
            if poll.listed is not None:
                # Forget what is gone remotely, so the state stays as big as the folder.
                self._state = {rel: value for rel, value in self._state.items()
                               if rel in poll.listed}
                self._incomplete = {rel: sig for rel, sig in self._incomplete.items()
                                    if poll.listed.get(rel) == sig}
            self._save_state()
        if poll.error is None:
            if self._down_since is not None:
                self.log.info("%s is reachable again", self.url.shown())
                self._down_since = None
            self.log.debug("Polled %s: %d metafile(s) listed, %d fetched", self.url.shown(),
                           len(poll.listed or ()), len(poll.fetched))
        elif self._down_since is None:
            self._down_since = time.monotonic()
            self.log.warning("Remote poll of %s failed: %s; trying again at the next run",
                             self.url.shown(), poll.error)
        else:
            self.log.debug("Remote poll of %s failed again: %s", self.url.shown(), poll.error)

    # -- after loading -------------------------------------------------------------------

    def _after_load(self, entry):
        """The item is in rTorrent: mark its remote file for the after-action, then let the
        tree watch remove (or move) the spool copy."""
        rel = os.path.relpath(entry.path, self.spool).replace(os.sep, "/")
        with self._state_lock:
            value = self._state.get(rel)
            if value is not None and not value.get("loaded"):
                value["loaded"] = True
                self._save_state()
        super()._after_load(entry)

    def status_text(self):
        return "%d polls, %d fetched%s" % (self.polls, self.fetches,
                                           ", server unreachable" if self._down_since else "")

    def close(self):
        poll = self._remote_poll
        if poll is not None and poll.thread is not None:
            self.source.abort()
            poll.thread.join(5.0)       # aborted, it ends at once; it must not outlive us long
        super().close()


###############################################################################
# Main loop ###################################################################
###############################################################################
#
# One thread, one selector.  Timers come from the schedules; signals arrive
# through set_wakeup_fd and only set flags; jobs that watch files or sockets
# register readers with the daemon.  A job runs to its end before anything
# else runs, so it can never overlap itself.

#: What the daemon holds of one rTorrent: its proxy, its item source, and the key that tells
#: whether a reloaded configuration still means the same rTorrent.
RtorrentLink = collections.namedtuple("RtorrentLink", "proxy items key")


def release_memory():
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``).

    Compiling this module at launch and a tick over thousands of items free tens
    of MiB that glibc would otherwise keep mapped, so the daemon's RSS would show
    its peak rather than what it holds.  It costs well under a millisecond.
    """
    trim = getattr(_libc(), "malloc_trim", None)     # glibc only (not musl)
    if trim is not None:
        trim(0)


def jitter_delay(jitter):
    """A random delay from 0 to ``jitter`` seconds (os.urandom: 'random' is not loaded
    for this alone)."""
    return jitter * int.from_bytes(os.urandom(4), "big") / 0xFFFFFFFF


class ScheduledJob:
    """A job in the loop: its spec, schedule, instance, and its run record."""

    def __init__(self, spec, schedule, job, conn_key):
        self.spec, self.schedule, self.job, self.conn_key = spec, schedule, job, conn_key
        self.next_due = None        # epoch seconds
        self.runs = self.failures = self.skips = self.merged = 0
        self.last_duration = None
        self.last_overrun_notice = 0.0

    @property
    def name(self):
        return self.spec.name


class Daemon(EventLoop):
    """The main loop: runs the jobs on their schedules until told to stop."""

    def __init__(self, options, settings, guard_file=None, notifier=None):
        super().__init__(logging.getLogger("pyrotorque"))
        self.options = options
        self.notifier = notifier or SystemdNotifier({})
        self.settings = settings
        self.guard_file = guard_file
        self.jobs = {}
        self.proxy = self.items = self.conn_key = None
        self.exit_code = EX_OK
        self._signals = []
        self._wakeup = None
        self._last_now = time.time()

    # -- the interface jobs use -------------------------------------------------

    @property
    def serving(self):
        """True in the running daemon; False for --run-once, whose jobs must not wait on
        the loop (it never turns)."""
        return self._wakeup is not None

    def run_soon(self, name):
        """Make job NAME run at the next turn of the loop (e.g. the queue after a load)."""
        if name in self.jobs and self.jobs[name].next_due is not None:
            self.jobs[name].next_due = min(self.jobs[name].next_due, time.time())

    # -- building jobs from settings --------------------------------------------

    def build_jobs(self, settings, keep=None):
        """Construct the active jobs of ``settings``; reuse unchanged ones from ``keep``.

        Everything is checked before anything is replaced: a ConfigError leaves
        the running jobs alone (the new ones made so far are closed again).
        """
        keep = keep or {}
        url = find_rpc_url(settings, self.options.url)
        timeout = settings.get("rpc_timeout", "30")
        try:
            timeout = float(timeout)
            if timeout <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError("%s: %r is not a positive number of seconds"
                              % (settings.where("rpc_timeout"), timeout)) from None
        conn_key = settings.connection_key(url, timeout)
        if self.proxy is not None and self.conn_key == conn_key:
            proxy, items = self.proxy, self.items
        else:
            proxy = RtorrentProxy(url, timeout)
            items = settings.item_source(proxy)

        built, made = {}, []
        others = {}     # a job's own scgi_url (pyrosimple's per-job rTorrent) -> RtorrentLink
        try:
            for name, spec in sorted(settings.jobs.items()):
                schedule = spec.value("schedule", CronSchedule)
                if not spec.value("active", parse_bool, True):
                    continue
                own = spec.value("scgi_url", lambda t: parse_rpc_url(t).url if t.strip() else "")
                link = RtorrentLink(proxy, items, conn_key)
                if own and own != url:
                    if own not in others:
                        own_proxy = RtorrentProxy(own, timeout)
                        others[own] = RtorrentLink(own_proxy, settings.item_source(own_proxy),
                                                   settings.connection_key(own, timeout))
                    link = others[own]
                old = keep.get(name)
                if old is not None and old.spec == spec and old.conn_key == link.key:
                    built[name] = old
                    continue
                handler = spec.value("handler", lambda n: resolve_handler(n, settings.config_dir))
                config = job_config(spec, handler, settings, warn=self.log.warning,
                                    proxy=link.proxy, item_source=link.items, daemon=self,
                                    schedule=schedule)
                if self.options.dry_run:
                    config.dry_run = True
                try:
                    job = handler(config)
                except ConfigError as exc:
                    raise spec.constructor_error(exc) from None
                made.append(job)
                built[name] = ScheduledJob(spec, schedule, job, link.key)
        except BaseException:
            for job in made:
                _close_job(job, self.log)
            raise
        return RtorrentLink(proxy, items, conn_key), built

    def start(self):
        """Build the jobs, install the signal handlers, schedule the first runs."""
        for note in self.settings.notes:
            self.log.info("%s", note)
        for warning in self.settings.warnings:
            self.log.warning("%s", warning)
        connection, self.jobs = self.build_jobs(self.settings)
        self.proxy, self.items, self.conn_key = connection
        now = time.time()
        for sj in self.jobs.values():
            self._schedule(sj, now, at_start=True)
        self._install_signals()
        release_memory()

    def log_started(self):
        """The start-up line; main() logs it once detached, so that the pid is the daemon's."""
        self.log.info("pyrotorque %s started (pid %d) with %d job%s: %s", __version__, os.getpid(),
                      len(self.jobs), "" if len(self.jobs) == 1 else "s",
                      ", ".join(sorted(self.jobs)) or "none")

    def reload(self):
        """Re-read the configuration; a broken one is logged and the old one keeps running."""
        reopen_log_files()
        self.log.info("Reloading the configuration (SIGHUP)")
        try:
            settings = load_settings(self.options.config_dir, self.options.config_file,
                                     self.options.define)
            connection, jobs = self.build_jobs(settings, keep=self.jobs)
        except ConfigError as exc:
            self.log.error("Reload failed, the old configuration stays in force: %s", exc)
            return False
        for warning in settings.warnings:
            self.log.warning("%s", warning)
        now = time.time()
        for name, sj in self.jobs.items():
            if jobs.get(name) is not sj:
                _close_job(sj.job, self.log)
        for name, sj in jobs.items():
            if sj.next_due is None:
                self._schedule(sj, now, at_start=True)
        changed = sorted(n for n in set(jobs) | set(self.jobs) if jobs.get(n) is not self.jobs.get(n))
        self.settings, self.jobs = settings, jobs
        self.proxy, self.items, self.conn_key = connection
        self.log.info("Reloaded: %d job%s, changed: %s", len(jobs), "" if len(jobs) == 1 else "s",
                      ", ".join(changed) or "none")
        return True

    def status_line(self):
        """One line for systemd's STATUS=: the jobs, rTorrent, what the jobs did."""
        parts = ["%d job%s" % (len(self.jobs), "" if len(self.jobs) == 1 else "s")]
        if self.proxy is not None and self.proxy.reachable is not None:
            parts.append("rTorrent %s" % ("up" if self.proxy.reachable else "unreachable"))
        for name, sj in sorted(self.jobs.items()):
            text = getattr(sj.job, "status_text", lambda: "")()
            if text:
                parts.append("%s: %s" % (name, text))
        failures = sum(sj.failures for sj in self.jobs.values())
        if failures:
            parts.append("%d failed run%s" % (failures, "" if failures == 1 else "s"))
        return ", ".join(parts)

    # -- the loop ----------------------------------------------------------------

    def serve(self):
        """Run until a signal or the guard file says stop; return the exit code."""
        try:
            while not self._handle_signals():
                now = time.time()
                if now < self._last_now - 1.0:      # the clock went back: reschedule all
                    self.log.warning("The system clock went back by %.0f s; rescheduling",
                                     self._last_now - now)
                    for sj in self.jobs.values():
                        self._schedule(sj, now)
                self._last_now = now
                self.run_timers()
                for sj in sorted(self.jobs.values(), key=lambda j: (
                        j.next_due or float("inf"), not getattr(j.job, "RUNS_FIRST", False))):
                    if sj.next_due is not None and sj.next_due <= time.time():
                        self.run_job(sj)
                        self.notifier.ping()     # a loop that is busy, not stuck
                        if self._signals:
                            break
                if self.guard_file and not os.path.exists(self.guard_file):
                    self.log.warning("Guard file '%s' disappeared, exiting!", self.guard_file)
                    self.notifier.stopping()
                    break
                self.notifier.ping()
                if self.notifier.address:        # the line is built only for somebody who listens
                    self.notifier.status(self.status_line())
                self._wait()
        finally:
            self.close()
        return self.exit_code

    def _wait(self):
        """Sleep in select() until the next job is due (at most 1 s: guard file, clock)."""
        dues = [sj.next_due for sj in self.jobs.values() if sj.next_due is not None]
        timeout = min([1.0] + [d - time.time() for d in dues])
        if self.notifier.watchdog_timeout() is not None:
            timeout = min(timeout, self.notifier.watchdog_timeout())
        self.poll_once(self.timer_timeout(timeout))

    def run_job(self, sj):
        """Run one job now; log and count what happened, then schedule its next run."""
        scheduled = sj.next_due if sj.next_due is not None else time.time()
        self.late_max = max(self.late_max, time.time() - scheduled)
        started = time.monotonic()
        sj.next_due = None
        try:
            sj.job.run()
        except RtorrentUnavailable as exc:
            sj.skips += 1
            self.log.debug("Job %s skipped: %s", sj.name, exc)
        except Exception as exc:
            sj.failures += 1
            self.log.error("Job %s failed: %s: %s\n%s", sj.name, exc.__class__.__name__, exc,
                           traceback.format_exc().rstrip())
        finally:
            sj.runs += 1
            sj.last_duration = time.monotonic() - started
            self._schedule(sj, time.time(), since=scheduled + 1)
            release_memory()

    def _schedule(self, sj, now, since=None, at_start=False):
        """Set the next run: the first fire time from ``since`` (default: now) on, or
        now for a job that just started and wants to (RUN_AT_START).

        Fire times that passed while the last run went on are merged into one
        run, started at once, as pyrocore's scheduler did with 'coalesce'.
        """
        if at_start and getattr(sj.job, "RUN_AT_START", False):
            sj.next_due = now
            return
        due = self._fire_time(sj.schedule, now if since is None else since)
        missed = 0
        while due is not None and due < now and missed < 1000:
            missed += 1
            due = self._fire_time(sj.schedule, due + 1)
        if missed:
            sj.merged += missed
            due = now
            level = logging.DEBUG
            if now - sj.last_overrun_notice > 3600:     # say it at info level once an hour
                level, sj.last_overrun_notice = logging.INFO, now
            self.log.log(level, "Job %s took %.1f s; %d run%s due meanwhile merged into one, "
                         "starting now", sj.name, sj.last_duration or 0, missed,
                         "" if missed == 1 else "s")
        elif due is not None and getattr(sj.schedule, "jitter", 0):
            # pyrosimple's jitter: a random delay after each fire time (not after a merged run)
            delay = jitter_delay(sj.schedule.jitter)
            self.log.debug("Job %s: next run at %s + %.1f s jitter", sj.name,
                           time.strftime("%H:%M:%S", time.localtime(due)), delay)
            due += delay
        sj.next_due = due

    @staticmethod
    def _fire_time(schedule, after):
        nxt = schedule.next_fire(datetime.datetime.fromtimestamp(after))
        return nxt.timestamp() if nxt is not None else None

    # -- signals -----------------------------------------------------------------

    def _install_signals(self):
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._wakeup = (reader, writer)
        signal.set_wakeup_fd(writer.fileno())
        self.add_reader(reader, self._drain_wakeup)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame):
        self._signals.append(signum)        # handled by the loop, never in the handler

    def _drain_wakeup(self):
        try:
            while self._wakeup[0].recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _handle_signals(self):
        """Act on signals received; True means stop."""
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:
                self.notifier.reloading()
                self.reload()
                self.notifier.ready(self.status_line())
            else:
                self.log.info("Termination request received (%s)", signal.Signals(signum).name)
                self.notifier.stopping()
                return True
        return False

    def close(self):
        for sj in self.jobs.values():
            _close_job(sj.job, self.log)
        self.jobs = {}
        if self._wakeup:
            signal.set_wakeup_fd(-1)
            for sock in self._wakeup:
                self.remove_reader(sock)
                sock.close()
            self._wakeup = None


def _close_job(job, log):
    close = getattr(job, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception as exc:
        log.warning("Closing job %s failed: %s", getattr(job, "name", job), exc)

###############################################################################
# Logging #####################################################################
###############################################################################
#
# Three destinations: a terminal gets a human format; the systemd journal
# gets '<N>' priority prefixes on every line and no timestamps (journald adds
# its own); background and cron mode append to <config dir>/log/torque.log
# (--log-file chooses another file, also beside the terminal with --fg).
#
# The log file is reopened when logrotate (or anybody) moved or removed it, as
# logging.handlers.WatchedFileHandler does (that module costs 0.6 MiB), and on
# SIGHUP.  In the background stderr is the log file as well (tracebacks that
# escape logging), and it follows the file when that is reopened.
#
# pyrocore configured the logging of its cron mode with logging.torque.ini in the
# config dir (logging.config.fileConfig, HERE = the file's folder): that file is
# honoured where pyrotorque writes its log file by default, in the background
# and with --cron.  pyrocore's logging.scripts.ini served its terminal tools; the
# daemon keeps its own terminal and journal format and names the file once.

LOG_FILE_FORMAT = "%(asctime)s %(levelname)-8s %(message)s [%(name)s]"    # pyrocore's


def io_problem(what, path, exc, option=None):
    """The sentence for an OSError ``exc`` on ``path``: what failed, why, and the fix.

    ``what`` is e.g. "the log file"; ``option`` the command-line option that picks
    another path.  As root can write nearly everything, a permission problem
    most often is a file or folder that root created (a run with sudo).
    """
    import pwd      # a builtin module, only needed here
    other = ", or choose another path with %s" % option if option else ""
    path = os.path.abspath(path)
    blocker = path      # the nearest part of the path that is there
    while not os.path.lexists(blocker) and os.path.dirname(blocker) != blocker:
        blocker = os.path.dirname(blocker)
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        def name(uid):
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return str(uid)
        try:
            owner = name(os.stat(blocker).st_uid)
        except OSError:
            owner = "?"
        user = name(os.geteuid())
        if owner != user:
            reason += " ('%s' is owned by %s, pyrotorque runs as %s)" % (blocker, owner, user)
            fix = "fix: sudo chown -R %s '%s'%s" % (user, blocker, other)
        else:
            fix = "check the mode of '%s' and of the folders above it%s" % (blocker, other)
    elif exc.errno == errno.ENOTDIR or (exc.errno == errno.EEXIST and not os.path.isdir(blocker)):
        reason = "'%s' is a file, not a folder" % blocker
        fix = "move it away%s" % other
    elif exc.errno == errno.EISDIR:
        reason = "it is a folder, not a file"
        fix = "move it away%s" % other
    elif exc.errno == errno.EROFS:
        fix = "remount the file system read-write%s" % other
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space%s" % other
    else:
        fix = "check the path%s" % other
    return StartupError("Cannot use %s '%s': %s; %s" % (what, path, reason, fix))


class LogFile(logging.FileHandler):
    """Appends to a log file and reopens it when it was moved or removed (logrotate),
    as logging.handlers.WatchedFileHandler does; ``std_streams`` makes fd 1 and 2
    follow it (the daemon's stdout and stderr)."""

    def __init__(self, path):
        self.identity = None
        self.std_streams = False
        super().__init__(path, encoding="utf-8")

    def _open(self):
        stream = super()._open()
        st = os.fstat(stream.fileno())
        self.identity = (st.st_dev, st.st_ino)
        if self.std_streams:
            os.dup2(stream.fileno(), 1)
            os.dup2(stream.fileno(), 2)
        return stream

    def reopen(self):
        """Close the file; the next line opens it anew (SIGHUP)."""
        with self.lock:
            if self.stream is not None:
                self.stream.close()
                self.stream = None

    def emit(self, record):
        try:
            st = os.stat(self.baseFilename)
            moved = (st.st_dev, st.st_ino) != self.identity
        except FileNotFoundError:
            moved = True
        except OSError:
            moved = False
        if moved:
            self.reopen()
        super().emit(record)


def _open_log_file(path):
    """A LogFile handler for ``path``, its folder made; StartupError names the fix."""
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        handler = LogFile(path)
    except OSError as exc:
        raise io_problem("the log file", path, exc, "--log-file") from None
    handler.setFormatter(logging.Formatter(LOG_FILE_FORMAT, "%Y-%m-%d %H:%M:%S"))
    return handler


class JournalFormatter(logging.Formatter):
    """Prefix every line of a record with its syslog priority, as journald reads it."""

    def format(self, record):
        text = super().format(record)
        prefix = "<%d>" % SYSLOG_PRIORITY.get(record.levelno, 7 if record.levelno < 20 else 6)
        return "\n".join(prefix + line for line in text.splitlines() or [""])


def stderr_is_journal():
    """True when stderr is connected to journald ($JOURNAL_STREAM names it)."""
    dev, _, ino = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return dev.isdigit() and ino.isdigit() and (st.st_dev, st.st_ino) == (int(dev), int(ino))


def setup_logging(level, log_file=None, console=True, logging_ini=None):
    """Send the root logger to the journal or a terminal (``console``), and/or to ``log_file``.

    ``logging_ini``, a pyrocore logging.torque.ini, takes the place of ``log_file``
    (its handlers, formats and levels; ``level`` is set when not None).  An
    unusable log file raises StartupError before anything is changed.
    """
    file_handler = _open_log_file(log_file) if log_file and not logging_ini else None
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    if logging_ini:
        _file_config(logging_ini)
    if file_handler is not None:
        root.addHandler(file_handler)
    if console:
        handler = logging.StreamHandler(sys.stderr)
        if stderr_is_journal():
            handler.setFormatter(JournalFormatter("%(message)s [%(name)s]"))
        else:
            handler.setFormatter(logging.Formatter(
                "%(asctime)s %(levelname)-7s %(message)s [%(name)s]", "%H:%M:%S"))
        root.addHandler(handler)
    if level is not None or not logging_ini:
        root.setLevel(logging.INFO if level is None else level)


def _file_config(path):
    """Apply pyrocore's logging.torque.ini as pyrocore did; StartupError if it cannot be."""
    import logging.config       # 0.9 MiB, only for those who have the file
    here = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(os.path.join(here, "log"), exist_ok=True)     # pyroadmin made it
    except OSError:
        pass        # fileConfig says what is wrong, if its handlers need the folder
    try:
        logging.config.fileConfig(path, defaults={"HERE": here}, disable_existing_loggers=False)
    except OSError as exc:      # its log file, most often
        raise io_problem("the log file that %s names," % path,
                         getattr(exc, "filename", None) or path, exc) from None
    except Exception as exc:    # fileConfig raises whatever the file's text leads to
        raise ConfigError("%s: %s: %s (pyrocore's logging configuration; fix it or "
                          "move it away)" % (path, exc.__class__.__name__, exc)) from None


def stop_console_logging():
    """After detaching: stderr is the log file now, so only the files keep logging."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if not isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)


def reopen_log_files():
    """SIGHUP: close every log file; each is opened anew with its next line."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogFile):
            handler.reopen()
        elif isinstance(handler, logging.FileHandler):      # from logging.torque.ini
            with handler.lock:
                if handler.stream is not None:
                    handler.stream.close()
                    handler.stream = None


###############################################################################
# Process control #############################################################
###############################################################################
#
# As pyrocore: a pid file in <config dir>/run, a guard file that must exist for
# the background daemon to start (and whose removal stops it), a double fork.
# Unlike pyrocore, the pid file is held with an flock for the daemon's whole
# life, so two daemons can never run, and a stale file from a crash is harmless.

class AlreadyRunning(PyrotorqueError):
    """Another daemon holds the pid file."""


class PidFile:
    """The daemon's pid file, locked while the daemon lives."""

    def __init__(self, path):
        self.path = path
        self.handle = None

    def acquire(self):
        """Take the lock or raise AlreadyRunning; call write() once the pid is final.
        StartupError says why the file cannot be used and how to fix that."""
        # The daemon overwrites its pid file and removes it at the end: a path that
        # holds anything else (--pid-file ~/.rtorrent.rc, /dev/null) is refused.
        if os.path.lexists(self.path) and not os.path.isdir(self.path):
            text = "?"
            if os.path.isfile(self.path) and os.path.getsize(self.path) <= 32:
                with open(self.path, errors="replace") as handle:
                    text = handle.read().strip() or "0"
            if not text.isdigit():
                raise StartupError("Cannot use the pid file '%s': it is there and holds no pid, "
                                   "and the daemon would overwrite and then remove it; choose "
                                   "another path with --pid-file" % self.path)
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            handle = open(self.path, "a+")
        except OSError as exc:
            raise io_problem("the pid file", self.path, exc, "--pid-file") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise AlreadyRunning("Daemon process #%s still running, won't start!"
                                     % (self.read_pid() or "?")) from None
            raise io_problem("the pid file", self.path, exc, "--pid-file") from None
        self.handle = handle
        self.write(os.getpid())

    def write(self, pid):
        try:
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.write("%d\n" % pid)
            self.handle.flush()
        except OSError as exc:
            raise io_problem("the pid file", self.path, exc, "--pid-file") from None

    def release(self):
        """Remove the file; False if that failed."""
        ok = True
        if self.handle is not None:
            try:
                os.remove(self.path)
            except OSError:
                ok = False
            self.handle.close()
            self.handle = None
        return ok

    def read_pid(self):
        try:
            with open(self.path) as handle:
                text = handle.read().strip()
        except OSError:
            return 0
        return int(text) if text.isdigit() else 0

    def status(self):
        """(running, pid): running means a live daemon holds the lock."""
        pid = self.read_pid()
        try:
            handle = open(self.path)
        except OSError:
            return False, pid
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True, pid
        return False, pid


def daemonize(pid_file, log_file):
    """Detach from the terminal (double fork); the grandchild returns, holding the pid
    file, with stdout and stderr appended to ``log_file`` (None: /dev/null)."""
    if os.fork():
        os._exit(EX_OK)
    os.setsid()
    if os.fork():
        os._exit(EX_OK)
    pid_file.write(os.getpid())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    out = null
    if log_file:
        try:
            out = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            pass        # the log handler said why, before the fork
    os.dup2(out, 1)
    os.dup2(out, 2)     # tracebacks that escape logging end up in the log too
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogFile):
            handler.std_streams = True      # and follow it when logrotate moves it
    if out != null:
        os.close(out)
    os.close(null)


def name_process(name="pyrotorque"):
    """Set the kernel's name of this process (ps -e, top, pgrep NAME), best-effort:
    the hand-over to an import leaves it at "python3"."""
    try:
        _libc().prctl(15, name.encode()[:15], 0, 0, 0)     # 15: PR_SET_NAME
    except (OSError, AttributeError):
        pass


def stop_daemon(pid_file, log, timeout=10.0):
    """SIGTERM the running daemon and wait until it is gone; return an exit code."""
    running, pid = pid_file.status()
    if not running:
        log.info("Process #%d NOT running.", pid)
        return EX_UNAVAILABLE
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while (pid_file.status()[0] or _process_alive(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_file.status()[0] or _process_alive(pid):
        log.warning("Process #%d did not stop within %.0f s.", pid, timeout)
        return EX_TEMPFAIL
    log.info("Process #%d stopped.", pid)
    return EX_OK


def _process_alive(pid):
    """Is ``pid`` a live process (not a zombie that nobody reaped yet)?"""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


###############################################################################
# Command line ################################################################
###############################################################################

def _parser():
    parser = argparse.ArgumentParser(
        prog="pyrotorque", description="The rTorrent companion daemon: queue manager, "
        "tree watch, statistics and any scheduled job.",
        epilog="Exit codes: 0 ok, 69 not running / rTorrent unavailable, 70 bad "
        "configuration or failure, 74 I/O error, 75 try again later (already running, "
        "no guard file), 78 (--check) the daemon would ignore part of the configuration.")
    add = parser.add_argument
    add("--version", action="version", version="pyrotorque %s on Python %s"
        % (__version__, sys.version.split()[0]))
    add("-q", "--quiet", action="store_true", help="log only warnings and errors")
    add("-v", "--verbose", action="store_true", help="log debug messages")
    add("--debug", action="store_true", help="log every call to rTorrent too (implies -v)")
    add("--cron", action="store_true", help="cron mode: log to <config dir>/log/torque.log, "
        "quietly give up when already running or without the guard file")
    add("--config-dir", metavar="DIR", help="configuration directory (default: "
        "$PYRO_CONFIG_DIR, else ~/.pyroscope)")
    add("--config-file", metavar="PATH", action="append", default=[],
        help="another INI file read after torque.ini (repeatable)")
    add("-D", "--define", metavar="KEY=VAL", action="append", default=[],
        help="set a [TORQUE] key, e.g. -D job.queue.active=True (repeatable)")
    add("-U", "--url", metavar="URL", help="rTorrent's XML-RPC endpoint (overrides scgi_url)")
    add("-n", "--dry-run", action="store_true", help="every job only logs what it would do")
    add("--fg", "--no-fork", dest="fg", action="store_true", help="stay in the foreground")
    add("--log-file", metavar="PATH", help="append the log to PATH, reopened when logrotate "
        "moves it and on SIGHUP (default in background and cron mode: <config dir>/log/"
        "torque.log, or what <config dir>/logging.torque.ini says; with --fg: none)")
    add("--pid-file", metavar="PATH", help="default: <config dir>/run/pyrotorque.pid")
    add("--guard-file", metavar="PATH", help="default in background mode: <config dir>/run/pyrotorque")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--status", "-?", action="store_true",
                      help="is the daemon running? (exit 0 yes, 69 no)")
    what.add_argument("--stop", action="store_true", help="stop the running daemon")
    what.add_argument("--restart", action="store_true", help="stop the daemon, then start anew")
    what.add_argument("--check", action="store_true", help="check the configuration and "
                      "the connection to rTorrent, list the jobs and their next runs")
    what.add_argument("--run-once", metavar="JOB", help="run job JOB once in the "
                      "foreground and exit with its outcome")
    what.add_argument("--convert-config", metavar="TOML", nargs="?", const="",
                      help="write the torque.ini equivalent of pyrosimple's config.toml "
                      "(default: $PYRO_CONF, else %s) to stdout" % PYROSIMPLE_CONFIG)
    what.add_argument("--match", metavar="CONDITION", help="list the items in rTorrent that "
                      "match CONDITION, with the values of the fields it uses")
    add("--view", default="main", help="the rTorrent view --match looks at (default: main)")
    return parser


def _parse_options(argv):
    parser = _parser()
    options = parser.parse_args(argv)
    if options.quiet and (options.verbose or options.debug):
        parser.error("Don't know how to be quietly verbose!")
    # An empty value must not fall through to starting the daemon.
    if options.run_once is not None and not options.run_once.strip():
        parser.error("--run-once needs the name of a job (--check lists them)")
    if options.match is not None and not options.match.strip():
        parser.error("--match needs a condition, e.g. --match 'name=*ubuntu*' "
                     "(--match 'is_open=1' lists the open items)")
    options.config_dir = os.path.expanduser(
        options.config_dir or os.environ.get("PYRO_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    run_dir = os.path.join(options.config_dir, "run")
    options.pid_file = os.path.expanduser(options.pid_file or os.path.join(run_dir, "pyrotorque.pid"))
    command = (options.status or options.stop or options.check or options.run_once is not None
               or options.match is not None or options.convert_config is not None)
    options.background = not options.fg and not command
    if options.guard_file is None and not (options.fg or command):
        options.guard_file = os.path.join(run_dir, "pyrotorque")
    # pyrocore's logging.torque.ini, where pyrotorque would write its default log file.
    options.logging_ini = None
    if options.log_file:
        options.log_file = os.path.abspath(os.path.expanduser(options.log_file))
    elif options.background or options.cron:
        options.log_file = os.path.join(options.config_dir, "log", "torque.log")
        ini = os.path.join(options.config_dir, "logging.torque.ini")
        if os.path.isfile(ini):
            options.logging_ini = ini
    options.level = (TRACE if options.debug else logging.DEBUG if options.verbose
                     else logging.WARNING if options.quiet else logging.INFO)
    if options.logging_ini and not (options.debug or options.verbose or options.quiet):
        options.level = None        # the file's levels, as pyrocore had it
    return options


def run_check(options, settings, log):
    """--check: list every configuration problem, what would run, and whether rTorrent
    answers.  Exit 74 when a file cannot be read, else 70 when something would fail,
    else 78 (EX_CONFIG) when something would be ignored, else 69 when rTorrent does
    not answer, else 0."""
    out = sys.stdout
    found = list(settings.errors) + [ConfigProblem(w, problem_kind(w)) for w in settings.warnings]
    out.write("pyrotorque %s, configuration from: %s\n" % (__version__, ", ".join(settings.files)))
    out.write("Jobs:\n")
    needed, commands = set(), []
    for name, spec in sorted(settings.jobs.items()):
        out.write(_check_job_line(name, spec, settings, found, needed, commands, log) + "\n")
    problems, unavailable = _check_rtorrent(options, settings, found, needed, commands, out)
    problems += check_job_connections(settings, out)
    for note in settings.notes:
        out.write("info: %s\n" % note)
    return _check_verdict(settings, found, problems, unavailable, out)


def _check_job_line(name, spec, settings, found, needed, commands, log):
    """Build one job as the daemon would, without a daemon; its line for --check.  Every
    problem goes to ``found`` (one broken value hides nothing else), the methods it needs
    to ``needed``, and (job, key, method) of its own rTorrent commands to ``commands``."""
    failed = []

    def attempt(step):
        try:
            return step()
        except ConfigError as exc:
            failed.append(exc)
            found.extend(ConfigProblem(line, ERROR) for line in str(exc).splitlines())
    schedule = attempt(lambda: spec.value("schedule", CronSchedule))
    active = attempt(lambda: spec.value("active", parse_bool, True)) is not False
    if active:
        handler = attempt(lambda: spec.value(
            "handler", lambda n: resolve_handler(n, settings.config_dir)))
        if handler is not None:
            needed.update(getattr(handler, "RPC_METHODS", ()))
            config = attempt(lambda: job_config(
                spec, handler, settings,
                warn=lambda m: found.append(ConfigProblem(m, problem_kind(m))),
                schedule=schedule, proxy=None, item_source=None, daemon=None))
            if config is not None and not failed:
                calls = attempt(lambda: _check_job(spec, handler, config, log))
                commands.extend((name, key, method) for key, method in calls or ())
    if failed:
        return "  %-12s %-40s ERROR (see below)" % (name, spec.params["handler"])
    line = "  %-12s %-40s %s" % (name, spec.params["handler"], "active" if active else "inactive")
    if active:
        fires, after = [], datetime.datetime.now()
        for _ in range(3):
            after = schedule.next_fire(after)
            if after is None:
                break
            fires.append(after.strftime("%Y-%m-%d %H:%M:%S"))
            after = datetime.datetime.fromtimestamp(after.timestamp() + 1)
        line += ", schedule %s, next: %s" % (schedule, ", ".join(fires) or "never")
    return line


def _check_rtorrent(options, settings, found, needed, commands, out):
    """Connect to the daemon's rTorrent: are the methods the jobs need there, and those
    their own commands call?  Returns (problems, unavailable)."""
    problems = 0
    try:
        url = find_rpc_url(settings, options.url)
        proxy = RtorrentProxy(url, float(settings.get("rpc_timeout", "30")))
        info = proxy.connect()
        out.write("rTorrent at %s: version %s (libtorrent %s), session %r, %d methods\n"
                  % (url, info.version, info.library, info.session_name, len(info.methods)))
        missing = proxy.missing_methods(needed)
        if missing:
            problems += 1
            out.write("  missing methods the jobs need: %s\n" % ", ".join(missing))
        unknown = sorted({m for _, _, m in commands if m not in info.methods})
        if unknown:
            # Methods made with method.insert's 'private' flag are not listed, but work in
            # commands: method.get knows them.
            answers = proxy.multicall([("method.get", "", method) for method in unknown],
                                      faults="return")
            unknown = {m for m, answer in zip(unknown, answers)
                       if isinstance(answer, RtorrentFault)}
        for name, key, method in commands:
            if method in unknown:
                found.append(ConfigProblem("%s: calls %r, which this rTorrent does not have%s" % (
                    settings.jobs[name].where(key), method,
                    _did_you_mean(method, sorted(info.methods))), ERROR))
        if not missing and not unknown:
            out.write("  every method the active jobs need is there\n")
    except (ConfigError, ValueError) as exc:
        out.write("rTorrent: ERROR: %s\n" % exc)
        return problems + 1, False
    except RtorrentError as exc:
        out.write("rTorrent: ERROR: %s\n" % exc)
        return problems, True
    return problems, False


def _check_verdict(settings, found, problems, unavailable, out):
    """The problem list, in order, and the summary line; returns --check's exit code."""
    counts = {kind: sum(problem_kind(p) == kind for p in found) for kind in (ERROR, IGNORED, NOTE)}
    counts[ERROR] += problems
    if found:
        out.write("Configuration problems:\n")
        for problem in sorted(found, key=lambda p: _problem_order(p, settings.files)):
            out.write("  %-8s %s\n" % (problem_kind(problem) + ":", problem))
    code = (EX_IOERR if settings.unreadable else EX_SOFTWARE if counts[ERROR]
            else EX_CONFIG if counts[IGNORED]
            else EX_UNAVAILABLE if unavailable else EX_OK)
    summary = ", ".join("%d %s%s" % (counts[kind], label, "s"[:counts[kind] != 1])
                        for kind, label in ((ERROR, "error"), (IGNORED, "ignored setting"),
                                            (NOTE, "note")) if counts[kind])
    if code == EX_OK:
        out.write("OK%s\n" % (" (%s)" % summary if summary else ""))
    else:
        out.write("%s; exit %d\n" % (summary or "rTorrent unavailable", code))
    return code


def _problem_order(problem, files):
    """Errors first, then what is ignored, then notes; each in file and line order."""
    kind = (ERROR, IGNORED, NOTE).index(problem_kind(problem))
    found = re.match(r"(.*?):(\d+): ", problem)
    if not found:
        return kind, -1, 0
    path = found.group(1)
    return kind, files.index(path) if path in files else len(files), int(found.group(2))


def _check_job(spec, handler, config, log):
    """Build a job without a daemon: it only checks its settings.  Returns the
    (key, method) pairs of the rTorrent commands its own settings call."""
    try:
        job = handler(config)
    except ConfigError as exc:
        raise spec.constructor_error(exc) from None
    calls = list(getattr(job, "command_methods", lambda: ())())
    _close_job(job, log)
    return calls


def run_match(options, settings, log):
    """--match CONDITION: show which items match and the values that decided it."""
    notes = []
    condition = parse_condition(options.match, notes=notes)
    for note in notes:
        log.warning("--match: %s", note)
    proxy = RtorrentProxy(find_rpc_url(settings, options.url), float(settings.get("rpc_timeout", "30")))
    try:
        lines = match_report(settings.item_source(proxy), condition, options.view)
    except RtorrentUnavailable as exc:
        log.error("%s", exc)
        return EX_UNAVAILABLE
    except RtorrentFault as exc:
        log.error("%s", exc)
        return EX_SOFTWARE
    sys.stdout.write("\n".join(lines) + "\n")
    return EX_OK


def run_once(options, settings, log):
    """--run-once JOB: build that one job (even an inactive one) and run it now."""
    spec = settings.jobs.get(options.run_once)
    if spec is None:
        raise ConfigError("no job %r in the configuration (jobs: %s)"
                          % (options.run_once, ", ".join(sorted(settings.jobs))))
    daemon = Daemon(options, settings)
    if not spec.value("active", parse_bool, True):
        log.info("Job %s is not active; running it once anyway", spec.name)
        spec = JobSpec(spec.name)
        spec.params.update(settings.jobs[options.run_once].params, active="True")
        spec.origins.update(settings.jobs[options.run_once].origins)
        settings.jobs = {spec.name: spec}
    else:
        settings.jobs = {spec.name: spec}
    _, daemon.jobs = daemon.build_jobs(settings)
    sj = daemon.jobs[spec.name]
    try:
        sj.job.run()
    except RtorrentUnavailable as exc:
        log.error("Job %s: %s", spec.name, exc)
        return EX_UNAVAILABLE
    except Exception as exc:
        log.error("Job %s failed: %s: %s\n%s", spec.name, exc.__class__.__name__, exc,
                  traceback.format_exc().rstrip())
        return EX_SOFTWARE
    finally:
        daemon.close()
    log.info("Job %s done", spec.name)
    return EX_OK


def main(argv=None):
    """The pyrotorque command; returns the exit code."""
    if argv is None:
        name_process()
    options = _parse_options(sys.argv[1:] if argv is None else argv)
    log = logging.getLogger("pyrotorque")
    code = _start_logging(options, log)
    if code is not None:
        return code
    pid_file = PidFile(options.pid_file)

    if options.status:
        running, pid = pid_file.status()
        log.info("Process #%d %s.", pid, "UP and running" if running else "NOT running")
        return EX_OK if running else EX_UNAVAILABLE
    if options.stop:
        return stop_daemon(pid_file, log)

    try:
        if options.convert_config is not None:
            return convert_config(options.convert_config, options.config_dir, options.define)
        settings = load_settings(options.config_dir, options.config_file, options.define,
                                 strict=not options.check)
        if options.check:
            return run_check(options, settings, log)
        if options.run_once is not None:
            return run_once(options, settings, log)
        if options.match is not None:
            return run_match(options, settings, log)
    except ConfigError as exc:
        log.error("%s", exc)
        return EX_IOERR if isinstance(exc, StartupError) else EX_SOFTWARE

    if options.restart and pid_file.status()[0]:
        code = stop_daemon(pid_file, log)
        if code != EX_OK:
            return code
    code = _claim_pid_file(options, pid_file, log)
    if code is not None:
        return code
    try:
        code = _run_daemon(options, settings, pid_file, log)
    finally:
        if not pid_file.release():
            log.warning("Failed to remove pid file '%s'", options.pid_file)
            code = EX_IOERR
    return code


def _start_logging(options, log):
    """Logging as the options say; an exit code if even that fails, else None."""
    # With --cron, stderr may go nowhere (rTorrent's watchdog), so the log file hears
    # everything from the start, a broken configuration too; what keeps the log file
    # from being used goes to stderr, the only place left.
    try:
        setup_logging(options.level, options.log_file, console=not options.cron,
                      logging_ini=options.logging_ini)
    except (StartupError, ConfigError) as exc:
        code = EX_IOERR if isinstance(exc, StartupError) else EX_SOFTWARE
        try:        # a broken logging.torque.ini: the default log file still hears it
            setup_logging(options.level or logging.INFO,
                          options.log_file if options.logging_ini else None, console=True)
        except StartupError:
            setup_logging(options.level or logging.INFO)
        log.error("%s", exc)
        return code
    return None


def _claim_pid_file(options, pid_file, log):
    """The guard file must be there and no other daemon running; an exit code if not."""
    # Being called every few minutes by rTorrent's watchdog schedule is normal in
    # cron mode, so "won't start" is only worth a debug line there.
    quiet_level = logging.DEBUG if options.cron else logging.WARNING
    if options.guard_file:
        try:
            os.stat(options.guard_file)
        except FileNotFoundError:
            log.log(quiet_level, "Guard file '%s' not found, won't start!", options.guard_file)
            return EX_TEMPFAIL
        except OSError as exc:      # e.g. run/ is a file: no guard file could ever be there
            log.error("%s", io_problem("the guard file", options.guard_file, exc, "--guard-file"))
            return EX_IOERR
    try:
        pid_file.acquire()
    except AlreadyRunning as exc:
        log.log(quiet_level, "%s", exc)
        return EX_TEMPFAIL
    except StartupError as exc:
        log.error("%s", exc)
        return EX_IOERR
    return None


def _run_daemon(options, settings, pid_file, log):
    """Start the jobs, detach (in the background), serve until stopped; the exit code."""
    background = options.background
    if options.logging_ini:
        log.info("Logging as %s says (pyrocore's logging configuration)", options.logging_ini)
    scripts_ini = os.path.join(options.config_dir, "logging.scripts.ini")
    if not background and not options.cron and os.path.isfile(scripts_ini):
        log.info("%s (pyrocore's logging of its terminal tools) is not used: pyrotorque logs to "
                 "the terminal or journal in its own format; -v/-q set the level, --log-file "
                 "adds a file", scripts_ini)
    notifier = SystemdNotifier(log=log)
    daemon = Daemon(options, settings, guard_file=options.guard_file, notifier=notifier)
    try:
        daemon.start()      # config errors show on the terminal, before detaching
        if background:
            daemonize(pid_file, next((h.baseFilename for h in logging.getLogger().handlers
                                      if isinstance(h, logging.FileHandler)), None))
            stop_console_logging()
        daemon.log_started()
        notifier.ready(daemon.status_line())
        started = time.monotonic()
        code = daemon.serve()
        log.info("Total time: %.3f seconds.", time.monotonic() - started)
        return code
    except ConfigError as exc:
        log.error("%s", exc)
        return EX_IOERR if isinstance(exc, StartupError) else EX_SOFTWARE


if __name__ == "__main__":
    # Custom jobs that 'import pyrotorque' must get this very module, not a second copy.
    sys.modules.setdefault("pyrotorque", sys.modules[__name__])
    sys.exit(main())
