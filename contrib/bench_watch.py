#!/usr/bin/env python3
"""Measure the tree watch: latency from a metafile's close (or rename) to its info-hash
answering in rTorrent, and the time to load a burst of files.

Runs pyrotorque.py (``--script``, default: the one beside contrib/) as a real process in
the foreground against a throwaway rTorrent 0.9.8 (``rtlab``), so the figures include
everything: inotify, reading, validating, the XML-RPC load and rTorrent's own insertion.

    python3 contrib/bench_watch.py [--files 300] [--burst 1000] [--script PATH]
"""
import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rtlab  # noqa: E402


def metafile(name):
    info = {"name": name, "piece length": 16384, "length": 1000,
            "pieces": hashlib.sha1(name.encode()).digest()}
    return rtlab.bencode({"announce": "http://127.0.0.1:6969/announce", "info": info})


def has(proxy, info_hash):
    try:
        proxy.d.hash(info_hash)
        return True
    except xmlrpc.client.Fault:
        return False


def percentile(values, pct):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(pct / 100.0 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300, help="files for the latency figures")
    parser.add_argument("--burst", type=int, default=1000, help="files in the burst")
    parser.add_argument("--script", default=os.path.join(os.path.dirname(HERE), "pyrotorque.py"))
    parser.add_argument("--items", type=int, default=0,
                        help="stopped items in rTorrent before the watch starts")
    parser.add_argument("--schedule", default="hour=*", help="the tree watch's schedule")
    parser.add_argument("--idle", type=float, default=0,
                        help="then measure rTorrent's and the daemon's CPU for this many "
                             "seconds with nothing new (what the schedule's runs cost)")
    parser.add_argument("--raw", action="store_true",
                        help="no daemon: load each file with load.raw_verbose at once (the floor)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bw", dir="/tmp")
    root = os.path.join(work, "watch")
    staging = os.path.join(work, "staging")
    cfg = os.path.join(work, "cfg")
    for path in (root, staging, cfg):
        os.makedirs(path)
    with open(os.path.join(cfg, "torque.ini"), "w") as handle:
        handle.write("[TORQUE]\njob.connstats.active = False\njob.treewatch.active = True\n"
                     "job.treewatch.path = %s\njob.treewatch.quiet = True\n"
                     "job.treewatch.schedule = %s\n" % (root, args.schedule))
    with rtlab.RTorrent(rpc_timeout=120) as rt:       # a big load can take a while
        if args.items:
            import bench
            print("%d items loaded in %.1f s" % (args.items, bench.load_items(rt, args.items)))
        log = open(os.path.join(work, "daemon.log"), "w+")
        daemon = None if args.raw else subprocess.Popen(
            [sys.executable, args.script, "--fg", "--config-dir", cfg, "-U", rt.url],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            proxy = rtlab.lab_proxy(rt.url)
            if args.raw:
                def load(data):
                    proxy.load.raw_verbose("", xmlrpc.client.Binary(data))
            else:
                rtlab.wait_for(lambda: "Watching" in open(log.name).read(), 10, 0.05, "the watch")
                time.sleep(0.3)

                def load(data):
                    pass

            latencies = {"close": [], "rename": []}
            for index in range(args.files):
                how = "rename" if index % 2 else "close"
                data = metafile("lat%05d" % index)
                info_hash = rtlab.infohash(data)
                target = os.path.join(root, "lat%05d.torrent" % index)
                if how == "rename":
                    temp = os.path.join(staging, "tmp")
                    with open(temp, "wb") as out:
                        out.write(data)
                    os.rename(temp, target)
                    done = time.perf_counter()
                else:
                    with open(target, "wb") as out:
                        out.write(data)
                    done = time.perf_counter()
                load(data)
                while not has(proxy, info_hash):
                    if time.perf_counter() - done > 10:
                        raise SystemExit("%s did not load within 10 s" % target)
                    time.sleep(0.001)
                latencies[how].append(time.perf_counter() - done)
            every = latencies["close"] + latencies["rename"]
            print("latency over %d files (close/rename -> d.hash answers):" % len(every))
            for name, values in [("all", every)] + sorted(latencies.items()):
                print("  %-7s p50 %6.1f ms   p99 %6.1f ms   max %6.1f ms"
                      % (name, 1000 * percentile(values, 50), 1000 * percentile(values, 99),
                         1000 * max(values)))

            burst_dir = os.path.join(root, "burst")
            datas = [metafile("burst%05d" % i) for i in range(args.burst)]
            started = time.perf_counter()
            os.makedirs(burst_dir)
            for index, data in enumerate(datas):
                with open(os.path.join(burst_dir, "b%05d.torrent" % index), "wb") as out:
                    out.write(data)
                load(data)
            written = time.perf_counter()
            expected = args.items + args.files + args.burst
            while proxy.view.size("", "main") < expected:     # cheap at any number of items
                if time.perf_counter() - started > 120:
                    raise SystemExit("the burst did not load within 120 s")
                time.sleep(0.02)
            finished = time.perf_counter()
            print("burst of %d files: written in %.2f s, all loaded %.2f s after the first "
                  "write (%.0f files/s)" % (args.burst, written - started, finished - started,
                                             args.burst / (finished - started)))
            if args.idle:
                import bench
                time.sleep(2.0)
                pids = [("rTorrent", rt.pid)] + ([("daemon", daemon.pid)] if daemon else [])
                before, started = [bench.cpu_seconds(pid) for _, pid in pids], time.monotonic()
                time.sleep(args.idle)
                took = time.monotonic() - started
                print("idle for %.0f s (schedule %s): %s" % (took, args.schedule, ", ".join(
                    "%s CPU %.1f ms/s" % (name, 1000 * (bench.cpu_seconds(pid) - cpu) / took)
                    for (name, pid), cpu in zip(pids, before))))
            total = len(proxy.d.multicall2("", "main", "d.hash="))
            print("items in rTorrent: %d (expected %d)" % (total, args.items + args.files
                                                           + args.burst))
        finally:
            if daemon is not None:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(10)
            log.close()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
