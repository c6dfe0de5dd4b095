#!/usr/bin/env python3
"""Run pyrotorque for real against a throwaway rTorrent swarm on loopback.

    python3 contrib/demo.py                 # until Ctrl-C (or until the daemon exits)
    python3 contrib/demo.py --seconds 30    # SIGTERM the daemon after 30 s (scripted smoke run)
    python3 contrib/demo.py --keep          # afterwards, leave rtorrent & co. running
    python3 contrib/demo.py --daemon-cmd 'sleep 5'   # a stand-in instead of pyrotorque

What it sets up (everything on 127.0.0.x, in temp dirs under /tmp):

- opentracker and a seeder rtorrent, throttled (``--seed-kb``, default 512 KiB/s)
  so downloads last long enough to watch, seeding three small torrents;
- a leecher rtorrent, the one pyrotorque manages, with two of the metafiles
  loaded *stopped* with priority 1 (``d.priority.set=1``), so the queue job
  has something to start;
- a config dir with ``torque.ini`` (``[TORQUE]``, ``scgi_url = <leecher url>``,
  the queue job and the tree watch switched on) and a watch folder, into which
  the third metafile is dropped a few seconds after the daemon started: the
  tree watch loads it at once and the queue starts it in its turn.

Then it runs ``python3 pyrotorque.py --fg -v --config-dir <dir> -U <url>`` in
this terminal, prints the leecher's items every few seconds, and when the
daemon exits (or on Ctrl-C, or after ``--seconds``) tears everything down and
exits with the daemon's exit code.

Needs the Debian/Ubuntu packages ``rtorrent`` and ``opentracker``; run as root,
the demo installs them with apt-get.  Standard library only, plus rtlab.py.
"""

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DAEMON = os.path.join(REPO, "pyrotorque.py")
PACKAGES = ["rtorrent", "opentracker", "mktorrent"]

#: The three demo torrents: name, size, files (as in rtlab.make_payload).
TORRENTS = [
    ("demo-alpha", 8, None),
    ("demo-beta", 6, ["disc1/track01.bin", "disc1/track02.bin", "cover.jpg"]),
    ("demo-gamma", 4, None),
]
#: This one is not loaded up front: it is dropped into the watch folder.
WATCHED = "demo-gamma"
#: Seconds after the daemon's start when it is dropped.
DROP_AFTER = 3

TORQUE_INI = """\
# written by contrib/demo.py for a throwaway swarm; see torque.ini.default
[TORQUE]
scgi_url = {url}

# start the demo items (stopped, priority 1) one by one: at start, then one per run
# (the dropped one at once, as it comes with priority 2)
job.queue.active = True
job.queue.schedule = second=*/5
job.queue.downloading_min = 1
job.queue.downloading_max = 3
job.queue.start_at_once = 1

# load metafiles that land below the watch folder (stopped: the queue starts them)
job.treewatch.active = True
job.treewatch.path = {config_dir}/watch
job.treewatch.load_mode = normal
"""


def say(message):
    """Demo messages go to stderr with a prefix, apart from the daemon's own log."""
    print("[demo] " + message, file=sys.stderr, flush=True)


# ─── the packages ────────────────────────────────────────────────────────────────

def ensure_packages():
    """Make sure rtorrent and opentracker are installed; return False if they are not.

    As root on Debian/Ubuntu the missing packages are installed with apt-get;
    anyone else is told the command.
    """
    missing = [name for name in ("rtorrent", "opentracker") if not shutil.which(name)]
    if not missing:
        return True
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or not apt:
        say("missing: %s. Install them first:" % ", ".join(missing))
        say("    sudo apt-get update && sudo apt-get install -y %s" % " ".join(PACKAGES))
        return False
    say("installing %s with apt-get (a minute or two)" % " ".join(PACKAGES))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run([apt, "update", "-qq"], env=env, check=True, timeout=600,
                       stdin=subprocess.DEVNULL)
        subprocess.run([apt, "install", "-y", "-qq"] + PACKAGES, env=env, check=True,
                       timeout=900, stdin=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        say("apt-get failed: %s" % exc)
        return False
    return all(shutil.which(name) for name in ("rtorrent", "opentracker"))


# ─── the swarm ───────────────────────────────────────────────────────────────────

def build_swarm(rtlab, seed_kb):
    """Tracker + throttled seeder with the demo torrents, and an empty leecher."""
    swarm = rtlab.Swarm(seeder_rc="throttle.global_up.max_rate.set_kb = %d" % seed_kb)
    swarm.__enter__()
    try:
        torrents = [swarm.add_torrent(name, size * rtlab.MiB, files)
                    for name, size, files in TORRENTS]
        leecher = swarm.start_leecher()
        for torrent in torrents:
            if torrent.name != WATCHED:
                # Stopped, priority 1 ("low" but startable): work for the queue job.
                leecher.load_raw(torrent.raw, "d.priority.set=1")
    except BaseException:
        swarm.close()
        raise
    say("swarm in %s: tracker %s (pid %d), seeder on %s at %d KiB/s (pid %d)"
        % (swarm.root, swarm.tracker.announce_url, swarm.tracker.pid, swarm.seeder.ip,
           seed_kb, swarm.seeder.pid))
    say("leecher rtorrent: %s (pid %d), %d items loaded stopped with priority 1"
        % (leecher.url, leecher.pid, len(torrents) - 1))
    return swarm, leecher


def write_config(url):
    """A config dir holding torque.ini for the leecher; return its path."""
    config_dir = tempfile.mkdtemp(prefix="rtq", dir="/tmp")
    os.mkdir(os.path.join(config_dir, "watch"))
    with open(os.path.join(config_dir, "torque.ini"), "w") as handle:
        handle.write(TORQUE_INI.format(url=url, config_dir=config_dir))
    say("config: %s" % os.path.join(config_dir, "torque.ini"))
    return config_dir


def show_items(leecher):
    """One line per leecher item: name, state, progress, rate."""
    try:
        rows = leecher.downloads("d.name=", "d.is_active=", "d.complete=", "d.completed_bytes=",
                                 "d.size_bytes=", "d.down.rate=", "d.priority=")
    except Exception as exc:  # noqa: BLE001 - the display must not end the demo
        say("leecher not reachable: %s" % exc)
        return
    for row in sorted(rows, key=lambda r: r["d.name"]):
        state = "done" if row["d.complete"] else "active" if row["d.is_active"] else "stopped"
        percent = 100.0 * row["d.completed_bytes"] / max(row["d.size_bytes"], 1)
        say("  %-12s %-7s %5.1f%%  %6.0f KiB/s  prio %d"
            % (row["d.name"], state, percent, row["d.down.rate"] / 1024.0, row["d.priority"]))


# ─── the daemon ──────────────────────────────────────────────────────────────────

def daemon_command(template, url, config_dir):
    """The daemon's argv: pyrotorque, or ``--daemon-cmd`` with {url} {config_dir} {python}."""
    if not template:
        return [sys.executable, DAEMON, "--fg", "-v", "--config-dir", config_dir, "-U", url]
    values = {"url": url, "config_dir": config_dir, "python": sys.executable, "repo": REPO}
    return [part.format(**values) for part in shlex.split(template)]


def end_daemon(proc, grace=10.0):
    """SIGTERM (after ``grace`` s for a Ctrl-C to take effect), then SIGKILL; return the code."""
    for sig, wait in ((None, grace), (signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            break
        if sig is not None:
            proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def drop_into_watch(config_dir, torrent):
    """Write a metafile into the watch folder the way a browser does: a temp name, a rename."""
    target = os.path.join(config_dir, "watch", torrent.name + ".torrent")
    with open(target + ".part", "wb") as handle:
        handle.write(torrent.raw)
    os.rename(target + ".part", target)
    say("dropped %s into the watch folder" % os.path.basename(target))


def supervise(proc, leecher, seconds, every, drop=None):
    """Wait for the daemon; show the items every ``every`` s; stop it after ``seconds``;
    call ``drop()`` once, DROP_AFTER seconds in."""
    started = time.monotonic()
    next_show = started + every if every else float("inf")
    drop_at = started + DROP_AFTER if drop else float("inf")
    try:
        while True:
            deadline = started + seconds if seconds else float("inf")
            try:
                return proc.wait(max(0.05, min(deadline, next_show, drop_at) - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now >= drop_at:
                drop()
                drop_at = float("inf")
            if now >= deadline:
                say("--seconds %g reached: stopping the daemon (SIGTERM)" % seconds)
                proc.send_signal(signal.SIGTERM)
                return end_daemon(proc)
            if now >= next_show:
                show_items(leecher)
                next_show = now + every
    except KeyboardInterrupt:
        # Ctrl-C reached the daemon as well (same terminal); give it time to finish.
        say("Ctrl-C: waiting for the daemon to exit")
        return end_daemon(proc)


def exit_status(code):
    """A child killed by signal N shows as -N; a shell would say 128+N."""
    return 128 - code if code < 0 else code


# ─── main ────────────────────────────────────────────────────────────────────────

def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Everything runs on loopback in temp dirs and is removed at the end "
               "(unless --keep).")
    parser.add_argument("--seconds", type=float, default=0,
                        help="stop the daemon with SIGTERM after this many seconds")
    parser.add_argument("--keep", action="store_true",
                        help="leave tracker, seeder and leecher running afterwards and "
                             "print how to reach them and how to stop them")
    parser.add_argument("--daemon-cmd", metavar="CMD",
                        help="run CMD instead of pyrotorque; {url}, {config_dir}, {python} "
                             "and {repo} are replaced")
    parser.add_argument("--seed-kb", type=int, default=512,
                        help="seeder upload limit in KiB/s (default: 512)")
    parser.add_argument("--every", type=float, default=5,
                        help="show the leecher's items every N seconds (0: never; default 5)")
    args = parser.parse_args(argv)

    if not ensure_packages():
        return 69
    sys.path.insert(0, HERE)
    import rtlab

    swarm, leecher = build_swarm(rtlab, args.seed_kb)
    config_dir = None
    code = 70
    try:
        config_dir = write_config(leecher.url)
        command = daemon_command(args.daemon_cmd, leecher.url, config_dir)
        say("running: %s   (Ctrl-C to stop)" % " ".join(shlex.quote(p) for p in command))
        try:
            # Same terminal and process group: the daemon sees Ctrl-C like any foreground job.
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        except OSError as exc:
            say("cannot run the daemon: %s" % exc)
            return 70
        drop = lambda: drop_into_watch(config_dir, swarm.torrents[WATCHED])  # noqa: E731
        code = exit_status(supervise(proc, leecher, args.seconds, args.every, drop))
        say("daemon exited with code %d" % code)
        show_items(leecher)
        return code
    finally:
        if args.keep:
            keep_running(swarm, leecher, config_dir)
        else:
            swarm.close()
            if config_dir:
                shutil.rmtree(config_dir, ignore_errors=True)
            say("torn down")


def keep_running(swarm, leecher, config_dir):
    """Leave the processes up (--keep) and say how to use and stop them."""
    swarm.detach()
    pids = [rt.pid for rt in swarm.leechers + swarm.seeders if rt.pid] + [swarm.tracker.pid]
    say("--keep: still running (pids %s)" % " ".join(map(str, pids)))
    say("  leecher:  %s" % leecher.url)
    say("  ask it:   python3 -c 'import sys; sys.path.insert(0, \"%s\"); import rtlab; "
        "print(rtlab.lab_proxy(\"%s\").download_list())'" % (HERE, leecher.url))
    say("  daemon:   python3 %s --fg -v --config-dir %s" % (DAEMON, config_dir))
    say("  stop all: kill %s; rm -rf %s %s"
        % (" ".join(map(str, pids)), swarm.root, config_dir or ""))


if __name__ == "__main__":
    sys.exit(main())
