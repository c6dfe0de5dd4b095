"""contrib/soak.py --short: the daemon under faults for about a minute keeps every invariant.

The soak starts its own lab (rTorrent with a few hundred items, a swarm, the daemon as a
process) on the rTorrent of this pytest run (``--rtorrent``), throws every kind of fault
once, and writes its verdicts as JSON; this test reads them.
"""
import json
import os
import subprocess
import sys

from conftest import REPO, require_lab

SOAK = str(REPO / "contrib" / "soak.py")


def test_the_short_soak_keeps_every_invariant_under_every_kind_of_fault(short_tmp):
    require_lab("rtorrent", "opentracker")
    report = short_tmp / "soak.json"
    command = [sys.executable, SOAK, "--short", "--seed", "3", "--json", str(report)]
    if os.environ.get("PYROTORQUE_RTORRENT"):
        command += ["--rtorrent", os.environ["PYROTORQUE_RTORRENT"]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240,
                          stdin=subprocess.DEVNULL)
    assert report.exists(), "no report (exit %d):\n%s\n%s" % (done.returncode, done.stdout,
                                                              done.stderr[-3000:])
    result = json.loads(report.read_text())
    broken = {name: verdict for name, verdict in result["invariants"].items()
              if not verdict["held"]}
    assert not broken, "%s\n%s" % (json.dumps(broken, indent=1), done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert set(result["faults_by_kind"]) == {
        "rt_kill", "rt_stop", "overflow", "hup_change", "hup_broken", "disk_full",
        "http_abuse", "daemon_kill"}
    said = {fault["kind"]: fault for fault in result["faults"]}
    assert "Reload failed" in said["hup_broken"]["details"]["daemon_said"]
    assert "Reloaded" in said["hup_change"]["details"]["daemon_said"]
    assert said["disk_full"]["details"]["mid_move"]
    assert "overflowed" in said["overflow"]["details"]["daemon_said"]
    assert "No space left" in said["disk_full"]["details"]["daemon_said"]
    assert said["http_abuse"]["details"]["scrapes_ok"] == said["http_abuse"]["details"]["scrapes"]
    figures = result["figures"]
    assert figures["loop_lag_s"]["samples"] > 10 and figures["rss_mib"]["max"] < 200
    assert result["ran_s"] < 120


# -- the soak's own rules, without a lab ------------------------------------------------

sys.path.insert(0, str(REPO / "contrib"))
import soak  # noqa: E402


def test_a_random_daemon_kill_comes_at_most_once_in_15_minutes():
    faults = soak.Faults.__new__(soak.Faults)
    for seed in range(5):
        faults.args = type("Args", (), {"seed": seed, "short": False, "fault_every": 45.0})
        kills = [at for at, kind in faults.plan(3600) if kind == "daemon_kill"]
        assert kills and all(b - a >= soak.KILL_SPACING for a, b in zip(kills, kills[1:]))


class _TiedProxy:
    """d.tied_to_file for the items rTorrent holds (a dict), a fault for the others."""

    def __init__(self, tied):
        self.d = type("D", (), {"tied_to_file": staticmethod(lambda h: self._tied(h))})()
        self.tied = tied

    def _tied(self, info_hash):
        if info_hash not in self.tied:
            raise soak.xmlrpc.client.Fault(-501, "Could not find info-hash.")
        return self.tied[info_hash]


def test_a_load_whose_line_a_sigkill_took_counts_only_when_rtorrent_ties_it(tmp_path):
    path = tmp_path / "good.torrent"
    path.write_bytes(b"d4:infod4:name1:xee")
    checker = soak.Soak.__new__(soak.Soak)
    checker.lab = type("Lab", (), {"good": {str(path): "A" * 40}, "dups": {}})
    checker.daemon = type("Daemon", (), {"killed_at": []})
    tied_here = _TiedProxy({"A" * 40: str(path)})
    assert not checker.check_good(tied_here, "")["held"]            # no kill: no excuse
    checker.daemon.killed_at = [os.path.getmtime(path) + 1]
    assert checker.check_good(tied_here, "")["held"]
    elsewhere = _TiedProxy({"A" * 40: "/somewhere/else.torrent"})
    assert not checker.check_good(elsewhere, "")["held"]             # not our load
    assert not checker.check_good(_TiedProxy({}), "")["held"]        # not in rTorrent
