#!/usr/bin/env python3
"""bench_parse — xmlrpc.client.loads against fast_loads on a real d.multicall2 answer.

    python3 contrib/bench_parse.py                  # 10,000 items, 10 parses each
    python3 contrib/bench_parse.py --items 1000 --repeat 20
    python3 contrib/bench_parse.py --body saved.xml # a saved methodResponse body instead

Starts a fresh rTorrent 0.9.8 from ``contrib/rtlab.py``, loads N tiny stopped items
with ``load.raw`` in ``system.multicall`` batches (``bench.load_items``: the same
items as contrib/bench.py), stamps ``tm_loaded`` on them as contrib/timestamps.rc
would, and fetches the queue's fields (``d.hash= d.complete= d.custom=tm_loaded
d.is_active= d.is_open= d.load_date= d.name= d.priority=``) with one bare
``d.multicall2``.  Then it parses that body ``--repeat`` times with each parser,
alternating, and prints the median wall and CPU time per parse, the peak memory of
one parse (tracemalloc, measured apart from the timing), and the ratios.  Both
parsers must give the same result, or it exits 1.

``fast_loads`` is taken from pyrotorque.py when it has it, else from parts/fastparse.py.
"""
import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402
import rtlab  # noqa: E402

FIELDS = ["d.hash=", "d.complete=", "d.custom=tm_loaded", "d.is_active=", "d.is_open=",
          "d.load_date=", "d.name=", "d.priority="]


def find_fast_loads():
    sys.path.insert(0, REPO)
    try:
        import pyrotorque
        if hasattr(pyrotorque, "fast_loads"):
            return pyrotorque.fast_loads, "pyrotorque.py"
    except ImportError:
        pass
    sys.path.insert(0, os.path.join(REPO, "parts"))
    import fastparse
    return fastparse.fast_loads, "parts/fastparse.py"


def fetch_body(items):
    """Load ``items`` items into a fresh rTorrent and return its d.multicall2 answer body."""
    with rtlab.RTorrent() as rt:
        seconds = bench.load_items(rt, items)
        print("loaded %d items in %.1f s" % (items, seconds), file=sys.stderr)
        rt.proxy.d.multicall2("", "main", "d.custom.set=tm_loaded,%d" % int(time.time()))
        reply = bench.scgi_exchange(rtlab.parse_scgi_url(rt.url),
                                    bench.scgi_request("d.multicall2", ["", "main"] + FIELDS))
    return reply[reply.index(b"\r\n\r\n") + 4:]


def slow_loads(body):
    return xmlrpc.client.loads(body, use_builtin_types=True)[0]


def timed(parse, body):
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = parse(body)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    del result
    return wall, cpu


def peak_memory(parse, body):
    gc.collect()
    tracemalloc.start()
    result = parse(body)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--body", help="a saved methodResponse body to parse instead")
    parser.add_argument("--save", help="also save the body fetched from rTorrent here")
    args = parser.parse_args(argv)

    fast_loads, source = find_fast_loads()
    if args.body:
        with open(args.body, "rb") as handle:
            body = handle.read()
    else:
        body = fetch_body(args.items)
        if args.save:
            with open(args.save, "wb") as handle:
                handle.write(body)
    expected, got = slow_loads(body), fast_loads(body)
    if got != expected or [list(map(type, row)) for row in got[0]] != [
            list(map(type, row)) for row in expected[0]]:
        print("MISMATCH: fast_loads and xmlrpc.client.loads disagree", file=sys.stderr)
        return 1
    rows = len(expected[0])
    del expected, got

    parsers = [("xmlrpc.client.loads", slow_loads), ("fast_loads", fast_loads)]
    times = {name: [] for name, _ in parsers}
    for _ in range(args.repeat):
        for name, parse in parsers:     # alternate, so that drift hits both alike
            times[name].append(timed(parse, body))
    peaks = {name: peak_memory(parse, body) for name, parse in parsers}

    print("body: %.2f MiB, %d rows of %d fields; fast_loads from %s; median of %d parses"
          % (len(body) / 1048576.0, rows, len(FIELDS), source, args.repeat))
    print("%-22s %10s %10s %14s" % ("parser", "wall", "CPU", "peak memory"))
    medians = {}
    for name, _ in parsers:
        wall = statistics.median(t[0] for t in times[name])
        cpu = statistics.median(t[1] for t in times[name])
        medians[name] = (wall, cpu, peaks[name])
        print("%-22s %8.1f ms %8.1f ms %10.1f MiB"
              % (name, wall * 1000, cpu * 1000, peaks[name] / 1048576.0))
    slow, fast = medians["xmlrpc.client.loads"], medians["fast_loads"]
    print("%-22s %10.2f %10.2f %14.2f" % ("ratio fast/slow", fast[0] / slow[0],
                                          fast[1] / slow[1], fast[2] / slow[2]))
    print("speed-up: %.1fx (CPU)" % (slow[1] / fast[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
