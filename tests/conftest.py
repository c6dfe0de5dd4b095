"""Shared pytest fixtures: a real rTorrent lab on loopback (``contrib/rtlab.py``).

Fixtures
--------
``short_tmp``      a short dir under /tmp (``pathlib.Path``) for unix sockets and config
                   dirs; pytest's own ``tmp_path`` is too deep for a 107-byte socket path.
``rtorrent``       a fresh, empty, running rtorrent (SCGI on a unix socket), per test.
``rtorrent_tcp``   the same with SCGI on ``127.0.0.1:<free port>``.
``swarm``          per test module: opentracker + a seeder throttled to ``SEED_KB`` KiB/s,
                   seeding ``"single"`` (4 MiB, one file) and ``"multi"`` (3 MiB, three
                   files); ``swarm.torrents[name]`` is an ``rtlab.SwarmTorrent``.
``fresh_swarm``    the same, but private to one test.
``leecher``        a fresh rtorrent on its own 127.0.0.x in the module's ``swarm``,
                   stopped and removed after the test.  Load with
                   ``leecher.load_raw(swarm.torrents["single"].raw)``.
``lab``            the tree watch lab: ``(loop, rtorrent, watch root)``; the test makes the
                   job with ``helpers.make_watch`` and the fixture closes every one made.
                   (test_remote_watch.py has a ``lab`` of its own.)
``script``         the path of the pyrotorque.py that subprocess tests run.

Plain helpers (the test loop, metafiles, /metrics clients, ...) are in ``helpers.py``;
test files import from there and from here, never from another test file.

All of them stop their processes by pid and remove their dirs afterwards.  If
``rtorrent`` or ``opentracker`` is missing they FAIL with the install command:
skipping would let a CI without the packages pass green.

Which rTorrent: ``--rtorrent=VERSION`` (or ``$PYROTORQUE_RTORRENT``) makes every lab
process of the run — these fixtures, the tests' own ``rtlab.RTorrent()`` and the
subprocesses they start — use that binary: ``system`` (default: Debian 12's 0.9.8),
``0.16`` (tinyxml2 back end) or ``0.16-xmlrpc-c``, built by ``contrib/build_rtorrent.sh``
(see ``rtlab.find_rtorrent``).  ``.ci/run`` runs the suite once per version.

``pyrotorque`` is deliberately not imported here: helpers may run the tests
against a stand-in module during development.
"""

import logging
import os
import pathlib
import shutil
import sys
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "contrib"))

import rtlab  # noqa: E402  (needs the sys.path entry above)

#: The module swarm's seeder upload limit: 4 MiB then takes about 2 s.
SEED_KB = 2048


def pytest_addoption(parser):
    parser.addoption("--rtorrent", metavar="VERSION", default=None,
                     help="the rTorrent the lab starts: system (0.9.8), 0.16, 0.16-xmlrpc-c or a "
                          "binary's path (default: $PYROTORQUE_RTORRENT, else system)")


def pytest_configure(config):
    chosen = config.getoption("--rtorrent")
    if chosen:  # through the environment, so that subprocesses use the same one
        os.environ["PYROTORQUE_RTORRENT"] = chosen


def pytest_report_header(config):
    try:
        binary = rtlab.find_rtorrent()
    except rtlab.MissingBinary as exc:
        return "rtorrent: MISSING (%s)" % str(exc).splitlines()[0]
    return "rtorrent: %s (libtorrent %s, XML-RPC by %s) %s" % (
        rtlab.rtorrent_versions(binary) + (rtlab.rtorrent_backend(binary), binary))


def require_lab(*binaries):
    """``pytest.fail`` (never skip) with the install command if a lab binary is missing."""
    problems = []
    for name in binaries or ("rtorrent",):
        try:
            rtlab.find_rtorrent() if name == "rtorrent" else rtlab.find_binary(name)
        except rtlab.MissingBinary as exc:
            problems.append(str(exc))
    if problems:  # failed outside the except block: no chained traceback in the report
        pytest.fail("the rTorrent test lab cannot run: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def short_tmp():
    """A short temporary directory under /tmp, removed after the test."""
    path = tempfile.mkdtemp(prefix="pt", dir="/tmp")
    try:
        yield pathlib.Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rtorrent():
    """A running, empty rtorrent with SCGI on a unix socket (``.url``, ``.proxy``)."""
    require_lab("rtorrent")
    with rtlab.RTorrent() as rt:
        yield rt


@pytest.fixture
def rtorrent_tcp():
    """A running, empty rtorrent with SCGI on ``scgi://127.0.0.1:<port>``."""
    require_lab("rtorrent")
    with rtlab.RTorrent(tcp=True) as rt:
        yield rt


def _standard_swarm():
    """A swarm with a throttled seeder and two small torrents (entered: running)."""
    require_lab("rtorrent", "opentracker")
    swarm = rtlab.Swarm(seeder_rc="throttle.global_up.max_rate.set_kb = %d" % SEED_KB)
    swarm.__enter__()
    try:
        swarm.add_torrent("single", 4 * rtlab.MiB)
        swarm.add_torrent("multi", 3 * rtlab.MiB, files=["a.bin", "sub/b.bin", "c.txt"])
    except BaseException:
        swarm.close()
        raise
    return swarm


@pytest.fixture(scope="module")
def swarm():
    """Tracker + throttled seeder with torrents "single" and "multi", shared by a module."""
    sw = _standard_swarm()
    try:
        yield sw
    finally:
        sw.close()


@pytest.fixture
def fresh_swarm():
    """Like ``swarm``, but only for this test."""
    sw = _standard_swarm()
    try:
        yield sw
    finally:
        sw.close()


@pytest.fixture
def leecher(swarm):
    """A fresh rtorrent in the module swarm, on its own loopback address."""
    rt = swarm.start_leecher()
    try:
        yield rt
    finally:
        rt.cleanup()


@pytest.fixture(autouse=True)
def script_under_test(monkeypatch):
    """Subprocess tests run the module named by $PYROTORQUE_SCRIPT (a development build with
    a new section spliced in) when it is set, else the repository's pyrotorque.py."""
    import daemon_process
    monkeypatch.setattr(daemon_process, "SCRIPT",
                        os.environ.get("PYROTORQUE_SCRIPT", daemon_process.SCRIPT))


@pytest.fixture
def script(script_under_test):
    """The path of the pyrotorque.py that subprocess tests run (see ``script_under_test``)."""
    import daemon_process
    return daemon_process.SCRIPT


@pytest.fixture
def lab(rtorrent, short_tmp, caplog):
    """(loop, rtorrent, watch root) for the tree watch; the job is made by the test with
    ``helpers.make_watch``, and every watch made for this loop is closed afterwards."""
    from helpers import Loop        # imports pyrotorque: only when a test asks for a lab
    caplog.set_level(logging.DEBUG, logger="pyrotorque")
    root = short_tmp / "watch"
    root.mkdir()
    loop = Loop()
    try:
        yield loop, rtorrent, root
    finally:
        for job in loop.to_close:
            job.close()
        for key in list(loop.selector.get_map().values()):
            loop.selector.unregister(key.fileobj)
