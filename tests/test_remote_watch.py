"""RemoteWatch against real servers on loopback: an FTP(S) server (pyftpdlib, run as a child
process so it can be killed mid-transfer) and OpenSSH's sshd with its SFTP subsystem, loading
into a real rTorrent 0.9.8.  Every metafile is fetched once, and a partial one never loads.

The job runs in-process with a tiny stand-in for the daemon's loop (``Loop``); one test runs
the daemon as a process and restarts it.
"""
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

import daemon_process
import fuzz  # contrib/fuzz.py: its stand-in for a server's listing lines
import pyrotorque
import rtlab
import helpers
from helpers import Loop, hashes, logged, write

LOGGER = "pyrotorque.job.remote"
USER, PASSWORD = "feed", "s3cret word"


def metafile(name, pieces=1):
    """Metafile bytes of ``pieces`` fake pieces (rTorrent does not look at them)."""
    return helpers.metafile(name, size=16384 * pieces,
                            pieces=hashlib.sha1(name.encode()).digest() * pieces)


def put(folder, rel, data):
    """Write a file below ``folder``; its info-hash (None if it is not a metafile)."""
    return write(os.path.join(str(folder), rel), data)


def visible_files(folder):
    return sorted(os.path.relpath(os.path.join(d, n), str(folder))
                  for d, _, names in os.walk(str(folder)) for n in names)


# ---- servers ------------------------------------------------------------------------------

FTP_SERVER = textwrap.dedent("""\
    import sys
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler, ThrottledDTPHandler
    from pyftpdlib.servers import FTPServer
    root, port, user, password, certfile, rate, mlsd, locked = sys.argv[1:]
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elradfmw")
    if locked:      # listed, but RETR is refused
        authorizer.override_perm(user, locked, perm="el", recursive=True)
    handler = type("Handler", (TLS_FTPHandler if certfile else FTPHandler,), {})
    handler.authorizer = authorizer
    if certfile:
        handler.certfile = certfile
    if int(rate):
        handler.dtp_handler = type("Throttled", (ThrottledDTPHandler,), {"write_limit": int(rate)})
    if mlsd == "0":
        handler.proto_cmds = {k: v for k, v in handler.proto_cmds.items()
                              if k not in ("MLSD", "MLST")}
    server = FTPServer(("127.0.0.1", int(port)), handler)
    print("READY", server.socket.getsockname()[1], flush=True)
    server.serve_forever()
""")


class FtpServer:
    """pyftpdlib in a child process serving ``root`` (stopped by pid)."""

    def __init__(self, root, port=0, certfile="", rate=0, mlsd=True, locked=""):
        self.root = root
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FTP_SERVER, str(root), str(port), USER, PASSWORD,
             certfile, str(rate), "1" if mlsd else "0", locked],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().split()
        if line[:1] != ["READY"]:
            self.stop()
            pytest.fail("the FTP test server did not start: pip install pyftpdlib pyopenssl",
                        pytrace=False)
        self.port = int(line[1])

    def url(self, scheme="ftp"):
        """The URL with the password in it (the tests of password_file and netrc leave it out)."""
        return "%s://%s:%s@127.0.0.1:%d/" % (scheme, USER, PASSWORD.replace(" ", "%20"),
                                              self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def ftp(short_tmp):
    """(server, remote folder): an FTP server on 127.0.0.1."""
    root = short_tmp / "ftproot"
    root.mkdir()
    server = FtpServer(root)
    yield server
    server.stop()


def require(binary, package):
    if not os.path.exists(binary) and not shutil.which(binary):
        pytest.fail("%s is missing: apt-get install %s" % (binary, package), pytrace=False)


class Sshd:
    """OpenSSH's sshd on 127.0.0.1 with its own host key, accepting one client key."""

    def __init__(self, folder):
        require("/usr/sbin/sshd", "openssh-server")
        require("ssh-keygen", "openssh-client")
        self.folder = folder
        folder.mkdir()
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(folder / name)], check=True)
        self.port = rtlab.free_port()
        config = folder / "sshd_config"
        config.write_text(textwrap.dedent("""\
            ListenAddress 127.0.0.1
            Port %d
            HostKey %s/host
            AuthorizedKeysFile %s/client.pub
            StrictModes no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            PidFile none
            Subsystem sftp internal-sftp
            """ % (self.port, folder, folder)))
        os.makedirs("/run/sshd", exist_ok=True)     # its privilege separation folder
        self.log = open(str(folder / "sshd.log"), "w+")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        rtlab.wait_for(lambda: "Server listening" in (folder / "sshd.log").read_text()
                       or self.proc.poll() is not None, 10, what="sshd listening")
        if self.proc.poll() is not None:
            pytest.fail("sshd did not start:\n" + (folder / "sshd.log").read_text())
        self.params = {"identity": str(folder / "client"),
                       "ssh_options": "UserKnownHostsFile=%s/known_hosts "
                                      "StrictHostKeyChecking=accept-new" % folder}

    def url(self, folder):
        return "sftp://root@127.0.0.1:%d/%s" % (self.port, folder)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()
        self.log.close()


@pytest.fixture
def sshd(short_tmp):
    server = Sshd(short_tmp / "ssh")
    yield server
    server.stop()


@pytest.fixture
def lab(rtorrent, short_tmp, caplog):
    """(loop, rtorrent, make): ``make(url, **params)`` builds the job on a fresh spool."""
    caplog.set_level(logging.DEBUG, logger="pyrotorque")
    loop = Loop()
    jobs = []

    def make(url, **params):
        spec = pyrotorque.JobSpec("remote")
        spec.params.update(handler="pyrotorque:RemoteWatch", schedule="hour=*", url=url,
                           spool=str(short_tmp / "spool"),
                           state_file=str(short_tmp / "state.json"), netrc="")
        spec.params.update({k: str(v) for k, v in params.items()})
        proxy = pyrotorque.RtorrentProxy(rtorrent.url, 10)
        config = pyrotorque.job_config(spec, pyrotorque.RemoteWatch, None, proxy=proxy,
                                       daemon=loop)
        job = pyrotorque.RemoteWatch(config)
        jobs.append(job)
        return job

    try:
        yield loop, rtorrent, make
    finally:
        for job in jobs:
            job.close()
        for key in list(loop.selector.get_map().values()):
            loop.selector.unregister(key.fileobj)


def poll(loop, job, timeout=15.0):
    """One scheduled run, until the worker is done and the loop has loaded what came."""
    job.run()
    loop.pump(lambda: job._remote_poll is None, timeout, "the poll's end")
    loop.pump(lambda: not (job.watcher.ready or job.watcher.settling or job._inflight), timeout,
              "loads done")


# ---- FTP ----------------------------------------------------------------------------------

def test_new_ftp_files_are_fetched_once_loaded_and_their_spool_copies_removed(
        lab, ftp, short_tmp, caplog):
    loop, rt, make = lab
    (short_tmp / "pw").write_text(PASSWORD + "\n")
    want = [put(ftp.root, "a b.torrent", metafile("plain")),
            put(ftp.root, "start/s.torrent", metafile("started")),
            put(ftp.root, "deep/er/d.torrent", metafile("deep"))]
    put(ftp.root, "notes.txt", b"not a metafile")
    put(ftp.root, ".upload.torrent", metafile("an upload in progress"))
    url = "ftp://%s@127.0.0.1:%d/" % (USER, ftp.port)
    job = make(url, password_file=short_tmp / "pw", recursive="yes")
    poll(loop, job)
    assert hashes(rt) == sorted(want)
    assert rt.proxy.d.state(want[1]) == 1 and rt.proxy.d.state(want[0]) == 0   # path flags
    assert len(logged(caplog, r"^Fetched ")) == 3
    assert visible_files(short_tmp / "spool") == []
    poll(loop, job)
    job.close()
    again = make(url, password_file=short_tmp / "pw", recursive="yes")     # a restart
    poll(loop, again)
    assert len(logged(caplog, r"^Fetched ")) == 3
    assert sorted(os.listdir(str(ftp.root))) == [".upload.torrent", "a b.torrent", "deep",
                                                 "notes.txt", "start"]
    assert not logged(caplog, r"upload")      # dot-files are ignored without a word


def test_without_recursive_only_the_top_folder_is_fetched(lab, ftp, caplog):
    loop, rt, make = lab
    want = put(ftp.root, "top.torrent", metafile("top"))
    put(ftp.root, "sub/below.torrent", metafile("below"))
    poll(loop, make(ftp.url()))
    assert hashes(rt) == [want]


def test_a_transfer_cut_mid_way_is_never_loaded_and_is_fetched_whole_next_time(
        lab, short_tmp, caplog):
    loop, rt, make = lab
    root = short_tmp / "ftproot"
    want = put(root, "big.torrent", metafile("big", pieces=12000))     # 240 KB at 40 KB/s
    slow = FtpServer(root, rate=40000)
    try:
        job = make(slow.url(), timeout=5)
        job.run()
        spool = short_tmp / "spool"
        loop.pump(lambda: any(n.startswith(".pyrotorque-remote-") and os.path.getsize(
            str(spool / n)) > 0 for n in os.listdir(str(spool))), 10, "a partial download")
        slow.stop()
        loop.pump(lambda: job._remote_poll is None, 10, "the poll's end")
    finally:
        slow.stop()
    assert logged(caplog, r"Remote poll of .* failed: fetching 'big.torrent' failed")
    assert os.listdir(str(short_tmp / "spool")) == []       # no visible file, no partial one
    assert hashes(rt) == []
    fast = FtpServer(root, port=slow.port)
    try:
        poll(loop, job)
    finally:
        fast.stop()
    assert hashes(rt) == [want]
    assert logged(caplog, r"is reachable again")


def test_a_server_that_is_down_is_logged_and_tried_again_on_the_next_run(
        lab, short_tmp, caplog):
    loop, rt, make = lab
    root = short_tmp / "ftproot"
    want = put(root, "later.torrent", metafile("later"))
    port = rtlab.free_port()
    job = make("ftp://%s:%s@127.0.0.1:%d/" % (USER, PASSWORD, port), timeout=3)
    poll(loop, job)
    poll(loop, job)
    assert len(logged(caplog, r"Remote poll of .* failed: cannot log in")) == 1   # once, then:
    assert logged(caplog, r"Remote poll of .* failed again")
    assert job.status_text() == "2 polls, 0 fetched, server unreachable"
    server = FtpServer(root, port=port)
    try:
        poll(loop, job)
    finally:
        server.stop()
    assert hashes(rt) == [want]


def test_bad_and_incomplete_metafiles(lab, ftp, short_tmp, caplog):
    loop, rt, make = lab
    put(ftp.root, "bad.torrent", b"this is no bencode")
    put(ftp.root, "half.torrent", metafile("half")[:60])
    job = make(ftp.url(), after="delete")
    poll(loop, job)
    assert logged(caplog, r"Invalid metafile .*bad.torrent")
    assert logged(caplog, r"Download of 'half.torrent' not used: incomplete")
    assert visible_files(short_tmp / "spool") == ["bad.torrent"]    # kept for a look
    poll(loop, job)
    assert len(logged(caplog, r"^Fetched ")) == 1       # the bad one is not fetched again
    assert sorted(os.listdir(str(ftp.root))) == ["bad.torrent", "half.torrent"]
    want = put(ftp.root, "half.torrent", metafile("half"))      # the upload is finished
    poll(loop, job)
    poll(loop, job)
    assert hashes(rt) == [want]
    assert sorted(os.listdir(str(ftp.root))) == ["bad.torrent"]
    assert logged(caplog, r"Deleted remote 'half.torrent'")


def test_a_metafile_that_stays_truncated_is_reported_once_and_fetched_again_only_when_it_changes(
        lab, ftp, short_tmp, caplog):
    loop, rt, make = lab
    put(ftp.root, "half.torrent", metafile("half")[:60])
    want = put(ftp.root, "whole.torrent", metafile("whole"))
    job = make(ftp.url())
    fetched = []
    fetch = job.source.fetch
    job.source.fetch = lambda remote, handle: (fetched.append(remote.rel), fetch(remote, handle))
    for _ in range(4):
        poll(loop, job)
    # The first time it may be an upload in progress; unchanged the next time, it is not.
    assert fetched == ["half.torrent", "whole.torrent", "half.torrent"]
    assert len(logged(caplog, r"^Download of 'half.torrent' not used: incomplete")) == 1
    warned = [r for r in caplog.records if "still incomplete" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelname == "WARNING"
    assert re.match(r"Remote metafile 'half.torrent' on ftp://feed@127.0.0.1:%d/ is still "
                    r"incomplete \(incomplete bencode: .*\) and has not changed since the last "
                    r"poll \(60 bytes, modified \d{14}\): not fetched again until its size or "
                    r"modification time changes" % ftp.port, warned[0].getMessage())
    assert hashes(rt) == [want]
    job.close()
    again = make(ftp.url())     # a restart remembers it (the state file)
    fetched = []
    fetch = again.source.fetch
    again.source.fetch = lambda remote, handle: (fetched.append(remote.rel), fetch(remote, handle))
    poll(loop, again)
    assert fetched == [] and len(logged(caplog, r"still incomplete")) == 1
    want2 = put(ftp.root, "half.torrent", metafile("half"))     # the upload is finished
    poll(loop, again)
    assert fetched == ["half.torrent"]
    assert hashes(rt) == sorted([want, want2])


def test_folder_links_that_loop_end_the_recursive_listing_with_a_clear_error(
        lab, ftp, short_tmp, caplog):
    """pyftpdlib follows links: three folders linked to their parent are 3**8 folders down
    to the depth limit (found by the fuzzing as a hang); the poll stops at 1000."""
    loop, rt, make = lab
    put(ftp.root, "top.torrent", metafile("top"))
    for name in ("a", "b", "c"):
        os.symlink(".", str(ftp.root / name))
    job = make(ftp.url(), recursive="yes")
    poll(loop, job, timeout=60)
    assert logged(caplog, r"^Remote poll of ftp://.* failed: more than 1000 folders below "
                          r"ftp://feed@127.0.0.1:%d/ \(links that loop\?\)" % ftp.port)
    assert hashes(rt) == []


def test_a_file_the_server_refuses_is_reported_once_and_does_not_hold_up_the_others(
        lab, short_tmp, caplog):
    loop, rt, make = lab
    root = short_tmp / "ftproot"
    put(root, "a/locked.torrent", metafile("locked"))
    want = put(root, "b/open.torrent", metafile("open"))
    server = FtpServer(root, locked=str(root / "a"))
    try:
        job = make(server.url(), recursive="yes")
        poll(loop, job)
        poll(loop, job)
    finally:
        server.stop()
    assert hashes(rt) == [want]
    assert len(logged(caplog, r"Not fetching remote 'a/locked.torrent': the server did not "
                              r"send it: 550")) == 1
    assert visible_files(short_tmp / "spool") == []


def test_max_files_max_size_and_dry_run(lab, ftp, short_tmp, caplog):
    loop, rt, make = lab
    want = [put(ftp.root, "f%d.torrent" % i, metafile("file %d" % i)) for i in range(3)]
    put(ftp.root, "huge.torrent", metafile("huge", pieces=60000))        # 1.2 MB
    dry = make(ftp.url(), max_size="1M", dry_run="yes")
    poll(loop, dry)
    dry.close()
    assert len(logged(caplog, r"^Would fetch 'f\d.torrent'")) == 3
    assert visible_files(short_tmp / "spool") == [] and hashes(rt) == []
    job = make(ftp.url(), max_size="1M", max_files=2)
    poll(loop, job)
    assert len(hashes(rt)) == 2 and logged(caplog, r"Fetching 2 file\(s\) per poll")
    poll(loop, job)
    poll(loop, job)
    assert hashes(rt) == sorted(want)
    assert len(logged(caplog, r"Not fetching remote 'huge.torrent': 1.\d MiB is larger than "
                              r"max_size")) == 2     # once per job, not once per poll


def test_a_server_without_mlsd_is_listed_with_nlst_size_and_mdtm(lab, short_tmp, caplog):
    loop, rt, make = lab
    root = short_tmp / "ftproot"
    want = put(root, "old.torrent", metafile("old-server"))
    server = FtpServer(root, mlsd=False)
    try:
        job = make(server.url(), after="rename:.done")
        poll(loop, job)
        poll(loop, job)
    finally:
        server.stop()
    assert logged(caplog, r"has no MLSD")
    assert hashes(rt) == [want]
    assert os.listdir(str(root)) == ["old.torrent.done"]


def test_ftps_verifies_the_certificate_and_takes_a_cafile(lab, short_tmp, caplog):
    loop, rt, make = lab
    require("openssl", "openssl")
    cert, key, both = (short_tmp / name for name in ("cert.pem", "key.pem", "both.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    both.write_text(key.read_text() + cert.read_text())     # what pyftpdlib reads
    root = short_tmp / "ftproot"
    want = put(root, "tls.torrent", metafile("over tls"))
    server = FtpServer(root, certfile=str(both))
    try:
        url = server.url("ftps")
        unverified = make(url)
        poll(loop, unverified)
        unverified.close()
        assert logged(caplog, r"failed: cannot log in .*CERTIFICATE_VERIFY_FAILED")
        assert hashes(rt) == []
        poll(loop, make(url, cafile=cert))
    finally:
        server.stop()
    assert hashes(rt) == [want]


# ---- SFTP ---------------------------------------------------------------------------------

HOSTILE = ["sp ace.torrent", "q\"uo'te.torrent", "star*[x].torrent", "-dash.torrent",
           "back\\slash #1.torrent", "é~$(x).torrent"]


def test_sftp_fetches_hostile_names_intact_inside_the_spool_and_renames_them_after(
        lab, sshd, short_tmp, caplog):
    loop, rt, make = lab
    remote = short_tmp / "sftproot"
    want = [put(remote, name, metafile("hostile %d" % i)) for i, name in enumerate(HOSTILE)]
    want.append(put(remote, "queue/q.torrent", metafile("queued")))
    put(remote, "new\nline.torrent", metafile("newline"))
    put(remote, "start.torrent\n-rw-r--r-- 1 0 0 99 Nov 1 10:00 x.torrent", metafile("forged"))
    put(remote, ".hidden.torrent", metafile("hidden"))
    os.symlink("/etc/passwd", str(remote / "link.torrent"))
    job = make(sshd.url(str(remote)), recursive="yes", after="rename:.loaded",
               remove_loaded="no", **sshd.params)
    poll(loop, job)
    assert hashes(rt) == sorted(want)
    assert rt.proxy.d.priority(want[-1]) == 0           # the 'queue' folder flag
    spool = visible_files(short_tmp / "spool")
    assert spool == sorted(HOSTILE + ["queue/q.torrent"])
    assert not [name for name in os.listdir(str(short_tmp)) if name.endswith("x.torrent")]
    poll(loop, job)
    left = sorted(os.listdir(str(remote)))
    assert sorted(name + ".loaded" for name in HOSTILE) == [
        name for name in left if name.endswith(".loaded")]
    assert os.listdir(str(remote / "queue")) == ["q.torrent.loaded"]
    assert "new\nline.torrent" in left and ".hidden.torrent" in left
    assert len(logged(caplog, r"^Fetched ")) == len(want)


def test_sftp_delete_after_loading_and_a_restart_fetches_nothing_again(
        lab, sshd, short_tmp, caplog):
    loop, rt, make = lab
    remote = short_tmp / "sftproot"
    keep = put(remote, "keep/k.torrent", metafile("kept"))
    params = dict(recursive="yes", **sshd.params)
    first = make(sshd.url(str(remote)), **params)
    poll(loop, first)
    first.close()
    second = make(sshd.url(str(remote)), **params)     # a restart
    poll(loop, second)
    second.close()
    assert hashes(rt) == [keep] and len(logged(caplog, r"^Fetched ")) == 1
    gone = put(remote, "g.torrent", metafile("gone"))
    job = make(sshd.url(str(remote)), after="delete", **params)
    poll(loop, job)
    poll(loop, job)
    assert hashes(rt) == sorted([keep, gone])
    assert sorted(visible_files(remote)) == []
    assert logged(caplog, r"Deleted remote 'g.torrent'")
    assert logged(caplog, r"Deleted remote 'keep/k.torrent'")     # loaded before: deleted too


def test_sftp_server_down_and_a_wrong_key_are_retried_with_a_clear_message(
        lab, sshd, short_tmp, caplog):
    loop, rt, make = lab
    remote = short_tmp / "sftproot"
    put(remote, "x.torrent", metafile("x"))
    stranger = short_tmp / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    stranger_job = make(sshd.url(str(remote)), timeout=5, **dict(sshd.params, identity=stranger))
    poll(loop, stranger_job)
    stranger_job.close()
    assert logged(caplog, r"failed: sftp to .*Permission denied")
    sshd.stop()
    job = make(sshd.url(str(remote)), timeout=5, **sshd.params)
    poll(loop, job)
    assert logged(caplog, r"failed: sftp to .*(refused|closed)")
    assert hashes(rt) == []


# ---- configuration ------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("ftp://host/incoming", ("ftp", "host", 21, "", None, "incoming")),
    ("ftps://u:p%40ss@host:2121/in/sub/", ("ftps", "host", 2121, "u", "p@ss", "in/sub")),
    ("sftp://me@[::1]:2222//srv/feed", ("sftp", "::1", 2222, "me", None, "/srv/feed")),
    ("sftp://me@host", ("sftp", "host", 22, "me", None, "")),
    ("ftp://host//", ("ftp", "host", 21, "", None, "/")),
])
def test_remote_urls(url, expected):
    found = pyrotorque.parse_remote_url(url)
    assert (found.scheme, found.host, found.port, found.user, found.password,
            found.folder) == expected
    assert "p@ss" not in found.shown()


@pytest.mark.parametrize("rel, refused", [
    ("a.torrent", False), ("sub/dir/a b'\"*.torrent", False), ("é.torrent", False),
    ("../a.torrent", True), ("a/../../b.torrent", True), ("/etc/a.torrent", True),
    (".hidden.torrent", True), ("a\nb.torrent", True), ("a\rb.torrent", True),
    ("dir/./a.torrent", True), ("x" * 256 + ".torrent", True),
])
def test_remote_names_that_would_leave_the_spool_are_refused(rel, refused):
    assert (pyrotorque._unsafe_remote_name(rel) is not None) == refused


SFTP_OUTPUT = """\
sftp> -ls -ln FIRST
-rw-r--r--    ? 0        0             133 Nov 25 18:55 PREFIXa b.torrent
-rw-r--r--    ? 0        0             133 Jan  2  2019 PREFIXold.torrent
drwxr-xr-x    ? 0        0            4096 Nov 25 18:55 PREFIXsub
-rw-r--r--    ? 0        0               9 Nov 25 18:55 PREFIXnew
line.torrent
-rw-r--r--    ? 0        0               9 Nov 25 18:55 /elsewhere/x.torrent
sftp> -ls -ln SECOND
lrwxrwxrwx    ? 0        0              11 Nov 25 18:55 SUBFOLDER/link.torrent
"""


@pytest.mark.parametrize("folder, prefix, subfolder", [
    ("", "./", "sub"), ("in box", "in box/", "in box/sub"),
    ("/srv/feed", "/srv/feed/", "/srv/feed/sub"), ("-x", "./-x/", "./-x/sub"),
])
def test_sftp_listings_are_parsed_by_block_and_by_the_listed_path(folder, prefix, subfolder):
    """As OpenSSH's sftp shows them: 'ls .' lists './name', 'ls dir' lists 'dir/name'."""
    source = pyrotorque._SftpSource(pyrotorque.parse_remote_url("sftp://h/x"), "sftp", 5, "",
                                    [], logging.getLogger())
    source.url.folder = folder
    output = SFTP_OUTPUT.replace("PREFIX", prefix).replace("SUBFOLDER", subfolder)
    parsed = list(source._parse(output, ["", "sub"]))
    assert parsed == [("", "-", 133, "Nov 25", "a b.torrent"),
                      ("", "-", 133, "Jan 2", "old.torrent"),
                      ("", "d", 4096, "Nov 25", "sub"),
                      ("", "-", 9, "Nov 25", "new"),            # a name with a newline: cut
                      ("sub", "l", 11, "Nov 25", "link.torrent")]


def test_a_listed_size_of_5000_digits_is_no_crash():
    """int() refuses more than 4300 digits (found by tests/test_fuzz_parsers.py)."""
    source = pyrotorque._SftpSource(pyrotorque.parse_remote_url("sftp://h/in"), "sftp", 5, "",
                                    [], logging.getLogger())
    output = "sftp> -ls -ln in\n-rw-r--r--  1 0 0 %s Nov 25 18:55 in/a.torrent\n" % ("1" * 5000)
    assert list(source._parse(output, [""])) == []


def test_an_odd_ftp_listing_gives_each_metafile_once_and_never_lists_a_folder_again():
    """Found by the fuzzing: a name listed twice was fetched twice, and a folder named ''
    (or '.') was listed again and again down to the depth limit."""
    source = pyrotorque._FtpSource(pyrotorque.parse_remote_url("ftp://h/in"), "", 5, None,
                                   logging.getLogger())
    source.ftp = fuzz._ListingFtp(["type=file;size=5; a.torrent", "type=file;size=5; a.torrent",
                                   "type=dir; ", "type=dir; .", "type=file;size=x; b.torrent",
                                   "type=file;size=7; sub/a.torrent"])
    found = [(remote.rel, remote.size) for remote in source.listing(recursive=True)]
    assert found == [("a.torrent", 5), ("b.torrent", None)]


@pytest.mark.parametrize("text, size", [
    ("5", 5), (" 17 ", 17), ("", 0), (None, 0), ("0", 0),
    # what a server may send that is no size: the file is refused, the poll goes on
    # (found by tests/test_fuzz_parsers.py: int() raised, and the poll died each time)
    ("file", None), ("-5", None), ("1e3", None), ("\u0663", None), ("1_000", None),
    ("9" * 21, None),
])
def test_sizes_in_ftp_listings(text, size):
    assert pyrotorque._listed_size(text) == size


def test_sftp_batch_words_escape_everything_special():
    assert pyrotorque._sftp_word('/a b/"q\'*[x]#.torrent') == \
        '/a\\ b/\\"q\\\'\\*\\[x\\]\\#.torrent'
    assert pyrotorque._sftp_word("-rf.torrent") == "./-rf.torrent"


@pytest.mark.parametrize("params, message", [
    ({}, "url: you need to set"),
    ({"url": "http://host/x"}, "url: 'http://host/x' is not an ftp://"),
    ({"url": "sftp://me:pw@host/x"}, "url: sftp:// logs in with a key"),
    ({"url": "ftp://host/x", "after": "move"}, "after: 'move' is not keep"),
    ({"url": "ftp://host/x", "after": "rename:.torrent"}, "after: the suffix '.torrent'"),
    ({"url": "ftp://host/x", "after": "rename:a/b"}, "after: 'rename:SUFFIX' needs"),
    ({"url": "ftp://host/x", "password_file": "/nonexistent"}, "password_file: cannot read"),
    ({"url": "sftp://me@host/x", "identity": "/nonexistent"}, "identity: '/nonexistent'"),
    ({"url": "sftp://me@host/x", "ssh_options": "Port"}, "ssh_options: 'Port' is not"),
])
def test_configuration_errors_name_the_key(short_tmp, params, message):
    spec = pyrotorque.JobSpec("remote")
    spec.params.update(handler="pyrotorque:RemoteWatch", spool=str(short_tmp / "spool"),
                       state_file=str(short_tmp / "state.json"), **params)
    config = pyrotorque.job_config(spec, pyrotorque.RemoteWatch, None)
    with pytest.raises(pyrotorque.ConfigError) as caught:
        pyrotorque.RemoteWatch(config)
    assert str(caught.value).startswith(message)


def test_a_missing_sftp_program_is_a_clear_config_error(short_tmp, monkeypatch):
    monkeypatch.setenv("PATH", str(short_tmp))
    spec = pyrotorque.JobSpec("remote")
    spec.params.update(handler="pyrotorque:RemoteWatch", url="sftp://me@host/x")
    config = pyrotorque.job_config(spec, pyrotorque.RemoteWatch, None)
    with pytest.raises(pyrotorque.ConfigError, match="install openssh-client"):
        pyrotorque.RemoteWatch(config)


def test_netrc_gives_the_ftp_password_and_the_defaults_live_in_the_config_dir(short_tmp):
    (short_tmp / "netrc").write_text("machine 127.0.0.1 login feed password from-netrc\n")
    os.chmod(str(short_tmp / "netrc"), 0o600)
    spec = pyrotorque.JobSpec("feed")
    spec.params.update(handler="pyrotorque:RemoteWatch", url="ftp://127.0.0.1/x",
                       netrc=str(short_tmp / "netrc"))
    settings = pyrotorque.Settings(str(short_tmp / "cfg"))
    job = pyrotorque.RemoteWatch(pyrotorque.job_config(spec, pyrotorque.RemoteWatch, settings))
    assert (job.url.user, job.source.password) == ("feed", "from-netrc")
    assert job.spool == str(short_tmp / "cfg" / "run" / "remote-feed")
    assert job.state_file == str(short_tmp / "cfg" / "run" / "remote-feed.json")
    assert os.path.isdir(job.spool)


@pytest.mark.parametrize("content", ["{not json", '{"url": "ftp://127.0.0.1:21/x", "files": []}',
                                     "[1, 2]", '{"files": {}}'])
def test_an_unreadable_state_file_is_moved_aside_and_the_job_starts_afresh(
        short_tmp, caplog, content):
    caplog.set_level(logging.INFO, logger="pyrotorque")
    state = short_tmp / "state.json"
    state.write_text(content)
    spec = pyrotorque.JobSpec("remote")
    spec.params.update(handler="pyrotorque:RemoteWatch", url="ftp://127.0.0.1/x",
                       spool=str(short_tmp / "spool"), state_file=str(state), netrc="")
    job = pyrotorque.RemoteWatch(pyrotorque.job_config(spec, pyrotorque.RemoteWatch, None))
    assert job._state == {}
    moved = (short_tmp / "state.json.bad").exists()
    assert moved == (content != '{"files": {}}')        # another URL's state is not broken
    assert logged(caplog, r"Remote state .* (is unreadable|was for another URL)")


# ---- the daemon as a process --------------------------------------------------------------

def test_the_daemon_fetches_over_sftp_and_a_restart_fetches_nothing_again(
        rtorrent, sshd, short_tmp):
    remote = short_tmp / "sftproot"
    want = put(remote, "daemon.torrent", metafile("via the daemon"))
    cfg = short_tmp / "cfg"
    cfg.mkdir()
    (cfg / "torque.ini").write_text(textwrap.dedent("""\
        [TORQUE]
        job.connstats.active = False
        job.treewatch.active = False
        job.feed.handler = pyrotorque:RemoteWatch
        job.feed.schedule = second=*/2
        job.feed.url = %s
        job.feed.identity = %s
        job.feed.ssh_options = %s
        """ % (sshd.url(str(remote)), sshd.params["identity"],
               sshd.params["ssh_options"])))
    args = ("--fg", "-v", "--config-dir", str(cfg), "-U", rtorrent.url)
    with daemon_process.DaemonProcess(*args, workdir=short_tmp) as daemon:
        daemon.wait_for(r"Loaded 'via the daemon'", timeout=20)
        assert daemon.stop() == 0
        assert "Fetched 'daemon.torrent'" in daemon.text()
    assert hashes(rtorrent) == [want]
    with daemon_process.DaemonProcess(*args, workdir=short_tmp) as daemon:
        daemon.wait_for(r"Polled .*: 1 metafile\(s\) listed, 0 fetched", timeout=20)
        assert daemon.stop() == 0
        assert "Fetched" not in daemon.text()
    assert os.listdir(str(cfg / "run" / "remote-feed")) == []


def test_run_once_fetches_and_loads_before_it_exits_and_check_accepts_the_job(
        rtorrent, ftp, short_tmp):
    want = put(ftp.root, "once.torrent", metafile("run once"))
    cfg = short_tmp / "cfg"
    cfg.mkdir()
    (cfg / "torque.ini").write_text(textwrap.dedent("""\
        [TORQUE]
        job.connstats.active = False
        job.treewatch.active = False
        job.feed.handler = pyrotorque:RemoteWatch
        job.feed.schedule = minute=*
        job.feed.url = %s
        job.feed.after = delete
        """ % ftp.url().replace("%", "%%")))     # torque.ini interpolates %
    os.makedirs(str(cfg / "run" / "remote-feed"))
    leftover = cfg / "run" / "remote-feed" / ".pyrotorque-remote-999999999-1"
    leftover.write_bytes(b"from a daemon that was killed")
    code, out, err = daemon_process.run_cli("--check", "--config-dir", str(cfg),
                                            "-U", rtorrent.url)
    assert code == 0, err
    code, out, err = daemon_process.run_cli("--run-once", "feed", "-v", "--config-dir",
                                            str(cfg), "-U", rtorrent.url)
    assert code == 0, err
    assert "Fetched 'once.torrent'" in err and "Loaded 'run once'" in err
    assert hashes(rtorrent) == [want]
    assert os.listdir(str(cfg / "run" / "remote-feed")) == []
    code, out, err = daemon_process.run_cli("--run-once", "feed", "--config-dir", str(cfg),
                                            "-U", rtorrent.url)
    assert code == 0 and "Deleted remote 'once.torrent'" in err
    assert os.listdir(str(ftp.root)) == []
