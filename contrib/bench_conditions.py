#!/usr/bin/env python3
"""Time fetch+match of the documented `startable` example over N items in a real rTorrent.

    python3 contrib/bench_conditions.py [--items 10000] [--rounds 5] [--module PATH]

Loads N tiny synthetic multi-file metafiles (stopped) with `load.raw` into a fresh
rtorrent from `contrib/rtlab.py`, then measures, as medians of several rounds:

  bare      one `d.multicall2` of exactly the commands the condition needs
  cold      a new ItemSource: fetch + match every item (files fetched in batches)
  warm      the same ItemSource again: fetch + match, files from its cache
  match     matching only, over items already fetched (fields computed on demand)

`--module` picks the file with the condition code to measure (default: the
pyrotorque.py next to contrib/).  The client is pyrotorque's own `RtorrentProxy`
(taken from `--proxy-module`, by default the same file): ItemSource calls
`proxy.call` and `proxy.multicall`, which rtlab's xmlrpc.client proxy lacks.
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rtlab  # noqa: E402
from bench import load_items  # noqa: E402  (the same synthetic two-file items)

STARTABLE = ("is_ignored=0 message= prio>0 "
             "[ prio>2 OR [ NOT [ traits=audio kind_25=jpg,png,tif,bmp ] ] ]")


def load_module(path, name="pyrotorque"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def median_time(action, rounds):
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(module, proxy, rounds):
    condition = module.parse_condition(STARTABLE)
    probe = module.ItemSource(proxy)
    probe.fetch("main", condition.fields)
    commands = sorted(probe.fetch_state.index, key=probe.fetch_state.index.get)
    results = {"commands": " ".join(commands)}
    results["bare"] = median_time(lambda: proxy.call("d.multicall2", "", "main", *commands), rounds)

    def cold():
        source = module.ItemSource(proxy)
        return sum(condition.match(item) for item in source.fetch("main", condition.fields))
    results["cold"] = median_time(cold, max(1, rounds // 2))
    warm_source = module.ItemSource(proxy)
    warm_source.fetch("main", condition.fields)
    matched = []
    results["warm"] = median_time(lambda: matched.append(sum(
        condition.match(i) for i in warm_source.fetch("main", condition.fields))), rounds)
    results["matched"] = matched[-1]
    items = [warm_source.fetch("main", condition.fields) for _ in range(rounds)]
    results["match"] = median_time(lambda: sum(condition.match(i) for i in items.pop()),
                                   rounds)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--module", default=os.path.join(os.path.dirname(HERE), "pyrotorque.py"))
    parser.add_argument("--proxy-module")
    args = parser.parse_args()
    module = load_module(args.module)
    proxy_module = load_module(args.proxy_module, "pyrotorque_proxy") if args.proxy_module \
        else module
    with rtlab.RTorrent(rpc_timeout=120) as rt:
        print("loading %d items ... %.1fs" % (args.items, load_items(rt, args.items)))
        proxies = [("pyrotorque.RtorrentProxy", proxy_module.RtorrentProxy(rt.url, 120))]
        print("condition: %s" % STARTABLE)
        for label, proxy in proxies:
            r = measure(module, proxy, args.rounds)
            print("\n%s (%d of %d items match)" % (label, r["matched"], args.items))
            print("  commands      %s" % r["commands"])
            for key, text in (("bare", "bare d.multicall2"), ("cold", "fetch+match, cold"),
                              ("warm", "fetch+match, warm"), ("match", "match only")):
                print("  %-18s %7.1f ms" % (text, r[key] * 1000))


if __name__ == "__main__":
    main()
