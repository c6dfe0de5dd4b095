#!/usr/bin/env python3
"""rtlab — a real-rTorrent test lab on loopback, standard library only.

The lab starts real ``rtorrent`` 0.9.8 processes (daemon mode, no UI), a real
``opentracker`` and real seeders, all bound to 127.0.0.x, so that pyrotorque can
be tested against the actual program instead of a mock.  Nothing leaves the
machine, every wait has a timeout, and every process the lab starts stays its
child: it is stopped by pid and always reaped with ``wait()``.

Needs the Debian/Ubuntu packages ``rtorrent`` and ``opentracker``
(``apt-get install rtorrent opentracker``; ``mktorrent`` is optional, only the
tests compare against it).

A current rTorrent runs in the lab too: ``contrib/build_rtorrent.sh`` builds 0.16.x
(both XML-RPC back ends) into ``/var/cache/pyrotorque-lab``, and
``RTorrent(version="0.16")`` / ``"0.16-xmlrpc-c"`` or ``PYROTORQUE_RTORRENT=0.16``
(the default of every ``RTorrent`` and ``Swarm``) picks it; see ``find_rtorrent``.

Use it from tests, the demo or a benchmark::

    sys.path.insert(0, "<repo>/contrib")
    import rtlab

    with rtlab.RTorrent() as rt:                  # one rtorrent, SCGI on a unix socket
        rt.proxy.system.client_version()          # '0.9.8'
        rt.url                                    # 'scgi:///tmp/rtab12cd/rpc.sock'

    with rtlab.Swarm(seeder_rc="throttle.global_up.max_rate.set_kb = 2048") as sw:
        t = sw.add_torrent("movie", 4 * rtlab.MiB)        # payload + metafile, seeded
        leecher = sw.start_leecher()                      # the rtorrent under test
        h = leecher.load_raw(t.raw, start=True)
        leecher.wait_for(lambda: leecher.proxy.d.complete(h) == 1, timeout=30)
        assert rtlab.same_payload(t.data, os.path.join(leecher.download_dir, t.name))

Contents, in reading order:

1. Errors, constants and small helpers (free ports, loopback addresses, waiting)
2. SCGI: ``lab_proxy()`` — an ``xmlrpc.client.ServerProxy`` that talks SCGI
3. Bencode and metafiles: ``bencode``, ``bdecode``, ``infohash``,
   ``make_torrent``, ``make_payload``, ``same_payload``
4. ``RTorrent`` — one rtorrent process in its own short temp dir
5. ``OpenTracker`` — the (whitelist-only) Debian tracker
6. ``Swarm`` — tracker + seeder(s) + leechers

Why things are the way they are is documented in
``/work/shared/rtorrent/README.md`` (the tested recipe); the short comments
below point at the pitfalls that shaped each piece.
"""

import atexit
import hashlib
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import xmlrpc.client
from dataclasses import dataclass, field

__all__ = [
    "LabError", "JsonRpcError", "MissingBinary", "LabTimeout", "KiB", "MiB",
    "find_binary", "find_rtorrent", "rtorrent_versions", "rtorrent_backend", "is_hash_not_found",
    "free_port", "next_loopback_ip", "wait_for",
    "SCGITransport", "lab_proxy", "parse_scgi_url",
    "bencode", "bdecode", "infohash", "make_torrent", "make_payload", "same_payload",
    "RTorrent", "OpenTracker", "Swarm", "SwarmTorrent",
]

KiB = 1024
MiB = 1024 * 1024


# ─── 1. Errors, constants and small helpers ──────────────────────────────────────

class LabError(RuntimeError):
    """Something in the lab did not come up or behave as expected."""


class JsonRpcError(LabError):
    """A JSON-RPC error answer: ``code`` and ``message``."""

    def __init__(self, code, message):
        super().__init__("JSON-RPC error %s: %s" % (code, message))
        self.code, self.message = code, message


class MissingBinary(LabError):
    """A program the lab needs (rtorrent, opentracker, mktorrent) is not installed."""


class LabTimeout(LabError, TimeoutError):
    """A bounded wait ran out of time."""


#: Debian package that provides each binary, for the error message.
_PACKAGES = {"rtorrent": "rtorrent", "opentracker": "opentracker", "mktorrent": "mktorrent"}


def find_binary(name):
    """Return the absolute path of program ``name`` or raise ``MissingBinary``.

    The message says how to install it, because a missing binary is the most
    likely first failure on a fresh machine or CI runner.
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin:/bin")
    if path:
        return path
    pkg = _PACKAGES.get(name, name)
    raise MissingBinary(
        "%s is not installed (not on PATH). Install it with:\n"
        "    sudo apt-get update && sudo apt-get install -y %s\n"
        "(the lab needs: apt-get install rtorrent opentracker mktorrent)" % (name, pkg))


# ─── which rTorrent: Debian 12's 0.9.8, or a current one built into the lab cache ───

#: Where ``contrib/build_rtorrent.sh`` puts current rTorrent builds (rtorrent-0.16.N/bin, lib).
LAB_CACHE = os.environ.get("PYROTORQUE_LAB_CACHE", "/var/cache/pyrotorque-lab")

#: The XML-RPC back ends a 0.15+ build may have; the first is the lab's default (see the script).
BACKENDS = ("tinyxml2", "xmlrpc-c")


def find_rtorrent(version=None):
    """Return the path of the rtorrent binary the lab should start for ``version``.

    ``version`` (default: ``$PYROTORQUE_RTORRENT``, else ``"system"``) is one of
    ``"system"`` / ``"0.9.8"`` (the rtorrent on PATH, Debian 12's package), a series or
    release built by ``contrib/build_rtorrent.sh`` such as ``"0.16"`` or ``"0.16.17"``,
    optionally with a back end (``"0.16-xmlrpc-c"``; default tinyxml2), or the path of
    an rtorrent binary.  Raises ``MissingBinary`` saying how to get it.
    """
    version = (version or os.environ.get("PYROTORQUE_RTORRENT") or "system").strip()
    if version in ("system", "0.9.8"):
        return find_binary("rtorrent")
    if os.sep in version:
        if os.access(version, os.X_OK):
            return os.path.abspath(version)
        raise MissingBinary("%s is not an executable rtorrent" % version)
    release, _, backend = version.partition("-")
    backend = backend or BACKENDS[0]
    if backend not in BACKENDS:
        raise MissingBinary("rtorrent back end %r is not one of %s" % (backend, ", ".join(BACKENDS)))
    builds = []
    for name in os.listdir(LAB_CACHE) if os.path.isdir(LAB_CACHE) else ():
        built = name[len("rtorrent-"):] if name.startswith("rtorrent-") else ""
        binary = os.path.join(LAB_CACHE, name, "bin", "rtorrent-" + backend)
        if (built == release or built.startswith(release + ".")) and os.access(binary, os.X_OK):
            builds.append((tuple(int(part) for part in built.split(".") if part.isdigit()), binary))
    if builds:
        return max(builds)[1]   # the newest release of the series
    raise MissingBinary(
        "no rtorrent %s (%s) in %s. Build it with:\n    contrib/build_rtorrent.sh\n"
        "(libtorrent and rtorrent from Debian unstable's source packages; a few minutes)"
        % (release, backend, LAB_CACHE))


_versions_seen = {}


def rtorrent_versions(binary=None):
    """``(client_version, library_version)`` of an rtorrent binary, from its ``-h`` banner.

    What ``system.client_version`` / ``system.library_version`` must answer, known
    without starting it.  rtorrent 0.9.N pairs with libtorrent 0.13.N; from 0.15 on
    both carry the same number.
    """
    binary = binary or find_rtorrent()
    if binary not in _versions_seen:
        # 0.16 wants a HOME even for -h ("Could not find home directory").
        banner = subprocess.run([binary, "-h"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env={"HOME": "/nonexistent"},
                                timeout=10).stdout.decode()
        client = banner.split("version ", 1)[1].split()[0].rstrip(".")
        major, minor, patch = client.split(".")
        library = "0.13.%s" % patch if (major, minor) == ("0", "9") else client
        _versions_seen[binary] = (client, library)
    return _versions_seen[binary]


def rtorrent_backend(binary=None):
    """The XML-RPC back end an rtorrent binary was built with: "xmlrpc-c" or "tinyxml2".

    They answer the same calls but not with the same fault codes (see ``COMMAND_FAULT``).
    A build without xmlrpc-c has tinyxml2 (0.15+) or none (then every call fails).
    """
    binary = binary or find_rtorrent()
    if binary not in _backends_seen:
        with open(binary, "rb") as handle:
            _backends_seen[binary] = ("xmlrpc-c" if b"libxmlrpc_server" in handle.read()
                                      else "tinyxml2")
    return _backends_seen[binary]


_backends_seen = {}


#: The fault code of a command error (an unknown view, a wrong argument type) per back end:
#: xmlrpc-c (0.9.8 and 0.16) says -503, tinyxml2 says -500 (its "internal error") for all of them.
COMMAND_FAULT = {"xmlrpc-c": -503, "tinyxml2": -500}


def is_hash_not_found(fault):
    """True if an XML-RPC fault says the info-hash is not loaded.

    rtorrent 0.9.8: -501 "Could not find info-hash."; 0.15/0.16: "invalid parameters:
    info-hash not found" (the target lookup moved into the RPC layer), with a code that
    depends on the XML-RPC back end: -503 with xmlrpc-c, -500 with tinyxml2.
    """
    return (fault.faultString == "Could not find info-hash."
            or "info-hash not found" in fault.faultString)


def free_port(ip="127.0.0.1", udp_too=False):
    """Ask the kernel for a free TCP port on ``ip`` (optionally also free for UDP).

    Binding to port 0 avoids clashes with anything else on the machine; the
    window between closing our probe socket and the real bind is tiny.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((ip, 0))
            port = tcp.getsockname()[1]
            if not udp_too:
                return port
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((ip, port))
                return port
            except OSError:
                continue
    raise LabError("no free %s port on %s" % ("tcp+udp" if udp_too else "tcp", ip))


# libtorrent 0.13.8 keys a torrent's peers by IP only, so two rtorrents on the
# same address never connect to each other: every instance gets its own
# 127.0.0.N.  127.0.0.1 is left to the tracker and to TCP SCGI.
_ip_counter = itertools.count(2)
_ip_lock = threading.Lock()


def next_loopback_ip():
    """Return a loopback address not yet handed out in this process (127.0.0.2, .3, …)."""
    with _ip_lock:
        while True:
            n = next(_ip_counter)
            third, fourth = divmod(n, 256)
            if third > 255:
                raise LabError("ran out of loopback addresses")
            if fourth not in (0, 1, 255):
                return "127.0.%d.%d" % (third, fourth)


def wait_for(predicate, timeout, interval=0.05, what=None):
    """Call ``predicate()`` until it returns something truthy; return that value.

    Raises ``LabTimeout`` after ``timeout`` seconds.  Exceptions from the
    predicate propagate (a typo in a method name should fail fast, not time out).
    The default interval is 50 ms: rtorrent answers thousands of calls per
    second, and polling it in a tight loop only burns its CPU.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabTimeout("timed out after %.1fs waiting for %s"
                             % (timeout, what or getattr(predicate, "__name__", "a condition")))
        time.sleep(interval)


def _tail(path, lines=25):
    """Last ``lines`` lines of a text file, or '' if it does not exist."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# Every process the lab starts is registered here, so that an interpreter exit
# (a crashed test run, Ctrl-C in the demo) still stops them: by pid, never by name.
_live = set()
_live_lock = threading.Lock()


def _register(obj):
    with _live_lock:
        _live.add(obj)


def _unregister(obj):
    with _live_lock:
        _live.discard(obj)


@atexit.register
def _stop_leftovers():
    with _live_lock:
        leftovers = list(_live)
    for obj in leftovers:
        try:
            obj.kill()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


# ─── 2. SCGI: XML-RPC over a unix socket or TCP ──────────────────────────────────

def parse_scgi_url(url_or_socket):
    """Turn a URL or socket path into an address: a unix path (str) or ``(host, port)``.

    Accepted: ``scgi:///tmp/x/rpc.sock``, ``/tmp/x/rpc.sock``, ``scgi://127.0.0.1:5000``,
    ``127.0.0.1:5000``, and ``pathlib.Path`` objects.
    """
    text = os.fspath(url_or_socket)
    if text.startswith(("/", ".")):
        return text
    if "://" not in text:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError("not a socket path, host:port or scgi:// URL: %r" % text)
        return (host or "127.0.0.1", int(port))
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "scgi":
        raise ValueError("unsupported scheme %r in %r (use scgi://)" % (parts.scheme, text))
    if parts.hostname:
        if not parts.port:
            raise ValueError("scgi URL without a port: %r" % text)
        return (parts.hostname, parts.port)
    if not parts.path:
        raise ValueError("scgi URL without a socket path: %r" % text)
    return parts.path


# The lab has its own SCGI client (xmlrpc.client over _scgi_request) and its own bencode
# on purpose, not pyrotorque's: the fixtures must not depend on the code under test, or
# a bug in pyrotorque's RtorrentProxy could set up and check a test with the same error.
def _scgi_request(address, body, timeout):
    """Send one SCGI request and return the XML body of the reply.

    The whole exchange (connect, send, every recv) shares one deadline, so a
    server that dribbles bytes cannot stretch a call past ``timeout``.
    rtorrent answers one request per connection and then closes it.
    """
    deadline = time.monotonic() + timeout

    def remaining():
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("SCGI call to %r took longer than %.1fs" % (address, timeout))
        return left

    # CONTENT_LENGTH must be the first header, then SCGI=1 (the SCGI spec; rtorrent insists).
    headers = b"CONTENT_LENGTH\0%d\0SCGI\x001\0" % len(body)
    request = b"%d:%s,%s" % (len(headers), headers, body)
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(remaining())
        sock.connect(address)
        sock.settimeout(remaining())
        sock.sendall(request)
        chunks = []
        while True:
            sock.settimeout(remaining())
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    reply = b"".join(chunks)

    # The reply is CGI style: "Status: 200 OK\r\nContent-Type: text/xml\r\n...\r\n\r\n<xml>".
    head, sep, xml = reply.partition(b"\r\n\r\n")
    if not sep:
        head, sep, xml = reply.partition(b"\n\n")
    if not sep:
        raise xmlrpc.client.ProtocolError(str(address), 0, "malformed SCGI reply: %r" % reply[:200], {})
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status" and not value.strip().startswith("200"):
            code = value.split()[0] if value.split() else "0"
            raise xmlrpc.client.ProtocolError(str(address), int(code) if code.isdigit() else 0,
                                              value.strip(), {})
    return xml


class SCGITransport(xmlrpc.client.Transport):
    """An ``xmlrpc.client`` transport that speaks SCGI to a unix socket or TCP address."""

    def __init__(self, address, timeout=10.0):
        super().__init__()
        self.address = address
        self.timeout = timeout

    def request(self, host, handler, request_body, verbose=False):
        if isinstance(request_body, str):
            request_body = request_body.encode("utf-8")
        xml = _scgi_request(self.address, request_body, self.timeout)
        parser, unmarshaller = self.getparser()
        parser.feed(xml)
        parser.close()
        return unmarshaller.close()


def lab_proxy(url_or_socket, timeout=10.0):
    """Return an ``xmlrpc.client.ServerProxy`` that reaches rtorrent over SCGI.

    ``url_or_socket``: ``scgi:///path/rpc.sock``, ``/path/rpc.sock``,
    ``scgi://127.0.0.1:PORT`` or ``127.0.0.1:PORT``.  Every call is bounded by
    ``timeout`` seconds (``socket.timeout``/``TimeoutError`` when exceeded).

    Remember rtorrent's conventions: global setters and ``load.*`` /
    ``d.multicall2`` take ``""`` as the first argument, integers above 2**31-1
    must be sent as strings.
    """
    address = parse_scgi_url(url_or_socket)
    return xmlrpc.client.ServerProxy("http://rtlab/RPC2", transport=SCGITransport(address, timeout))


# ─── 3. Bencode and metafiles ────────────────────────────────────────────────────

def bencode(value):
    """Encode ints, str (as UTF-8), bytes, lists/tuples and dicts (keys sorted as bytes)."""
    out = []
    _bencode_into(value, out)
    return b"".join(out)


def _bencode_into(value, out):
    if isinstance(value, bool):  # a bool is an int; encode it as 0/1 explicitly
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
        items = {}
        for key, item in value.items():
            raw_key = key.encode("utf-8") if isinstance(key, str) else bytes(key)
            if raw_key in items:
                raise ValueError("duplicate dict key after encoding: %r" % raw_key)
            items[raw_key] = item
        out.append(b"d")
        for raw_key in sorted(items):  # the spec wants keys in raw byte order
            _bencode_into(raw_key, out)
            _bencode_into(items[raw_key], out)
        out.append(b"e")
    else:
        raise TypeError("cannot bencode %s" % type(value).__name__)


def bdecode(data):
    """Decode one bencoded value that spans all of ``data``.

    Strings come back as ``bytes`` and dict keys as ``bytes``; malformed input
    or trailing bytes raise ``ValueError``.
    """
    data = bytes(data)
    try:
        value, end = _bdecode_at(data, 0)
    except (IndexError, ValueError) as exc:
        raise ValueError("invalid bencode: %s" % exc) from None
    if end != len(data):
        raise ValueError("invalid bencode: %d trailing bytes" % (len(data) - end))
    return value


def _bdecode_at(data, pos):
    """Decode the value starting at ``pos``; return ``(value, position after it)``."""
    lead = data[pos:pos + 1]
    if lead == b"i":
        end = data.index(b"e", pos)
        return int(data[pos + 1:end]), end + 1
    if lead == b"l":
        pos, items = pos + 1, []
        while data[pos:pos + 1] != b"e":
            if pos >= len(data):
                raise ValueError("unterminated list")
            item, pos = _bdecode_at(data, pos)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        pos, result = pos + 1, {}
        while data[pos:pos + 1] != b"e":
            if pos >= len(data):
                raise ValueError("unterminated dict")
            key, pos = _bdecode_at(data, pos)
            if not isinstance(key, bytes):
                raise ValueError("dict key is not a string at offset %d" % pos)
            result[key], pos = _bdecode_at(data, pos)
        return result, pos + 1
    if lead.isdigit():
        colon = data.index(b":", pos)
        length = int(data[pos:colon])
        start = colon + 1
        if start + length > len(data):
            raise ValueError("string runs past the end at offset %d" % pos)
        return data[start:start + length], start + length
    raise ValueError("unexpected byte %r at offset %d" % (lead, pos))


def infohash(metafile):
    """Return the info-hash of a metafile's bytes as 40 uppercase hex digits (like ``d.hash``).

    The hash is taken over the *raw* bytes of the ``info`` value, not a
    re-encoding, so it is right even for slightly non-canonical metafiles.
    """
    data = bytes(metafile)
    if data[:1] != b"d":
        raise ValueError("not a metafile: does not start with a bencoded dict")
    pos = 1
    while data[pos:pos + 1] != b"e":
        if pos >= len(data):
            raise ValueError("not a metafile: unterminated dict")
        key, pos = _bdecode_at(data, pos)
        start = pos
        _, pos = _bdecode_at(data, pos)
        if key == b"info":
            return hashlib.sha1(data[start:pos]).hexdigest().upper()
    raise ValueError("not a metafile: no 'info' key")


def _payload_files(path):
    """List ``(relative path parts, absolute path, size)`` in mktorrent's order.

    mktorrent 1.1 sorts by the whole relative path compared byte-wise ("a b" <
    "a.bin" < "a/b"), not component by component; hidden and empty files are
    included.  Using the same order is what makes our info-hashes equal.
    """
    files = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            files.append((rel.encode("utf-8", "surrogateescape"), rel.split(os.sep), full))
    files.sort()
    return [(parts, full, os.path.getsize(full)) for _, parts, full in files]


def make_torrent(path, announce, piece_length=256 * KiB, *, private=False, name=None,
                 creation_date=None):
    """Build a metafile for file or directory ``path``; return its bytes.

    Pure Python, same info dict as ``mktorrent -a ANNOUNCE -l log2(piece_length)``
    (same file order, same piece hashing across file boundaries), so the
    info-hash is identical to mktorrent's for the same input.
    """
    if piece_length <= 0 or piece_length & (piece_length - 1):
        raise ValueError("piece_length must be a power of two, got %r" % piece_length)
    path = os.path.abspath(os.fspath(path))
    is_dir = os.path.isdir(path)
    files = _payload_files(path) if is_dir else [([os.path.basename(path)], path, os.path.getsize(path))]
    if is_dir and not files:
        raise ValueError("directory %s has no files" % path)

    pieces, pending = [], b""
    for _, full, _ in files:
        with open(full, "rb") as handle:
            while True:
                chunk = handle.read(piece_length - len(pending))
                if not chunk:
                    break
                pending += chunk
                if len(pending) == piece_length:
                    pieces.append(hashlib.sha1(pending).digest())
                    pending = b""
    if pending:
        pieces.append(hashlib.sha1(pending).digest())

    info = {"name": name or os.path.basename(path), "piece length": piece_length,
            "pieces": b"".join(pieces)}
    if is_dir:
        info["files"] = [{"length": size, "path": parts} for parts, _, size in files]
    else:
        info["length"] = files[0][2]
    if private:
        info["private"] = 1
    return bencode({
        "announce": announce,
        "created by": "rtlab",
        "creation date": int(time.time()) if creation_date is None else creation_date,
        "info": info,
    })


def _write_pseudo_random(path, size, seed):
    """Write ``size`` deterministic pseudo-random bytes derived from ``seed``.

    SHAKE-128 is a fast C-implemented stream (~500 MB/s), deterministic on every
    Python, and its output does not compress, so transfers are honest.
    """
    block = MiB
    with open(path, "wb") as handle:
        for index in range(0, size, block):
            stream = hashlib.shake_128(b"%s:%d" % (seed, index))
            handle.write(stream.digest(min(block, size - index)))


def make_payload(directory, name, size_bytes, files=None):
    """Create deterministic payload data ``directory/name``; return its path.

    - ``files=None``: one file ``name`` of ``size_bytes``.
    - ``files=N`` (int): a directory ``name`` with ``file1.bin`` … ``fileN.bin``.
    - ``files=[relpaths]``: a directory ``name`` with those files (sub-dirs allowed);
      ``size_bytes`` is split evenly, the last file takes the remainder.
    - ``files={relpath: size}``: exact sizes (``size_bytes`` is ignored).

    The same arguments always produce the same bytes (the seed is the name and
    relative path), so two runs build torrents with the same info-hash.
    """
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, name)
    if os.path.exists(target):
        raise FileExistsError(target)
    if files is None:
        _write_pseudo_random(target, size_bytes, name.encode("utf-8"))
        return target

    if isinstance(files, int):
        files = ["file%d.bin" % i for i in range(1, files + 1)]
    if not isinstance(files, dict):
        files = list(files)
        if not files:
            raise ValueError("files must not be empty")
        share = size_bytes // len(files)
        sizes = [share] * (len(files) - 1) + [size_bytes - share * (len(files) - 1)]
        files = dict(zip(files, sizes))
    for rel, size in files.items():
        if os.path.isabs(rel) or ".." in rel.split("/"):
            raise ValueError("payload file paths must be relative and inside: %r" % rel)
        full = os.path.join(target, *rel.split("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        _write_pseudo_random(full, size, ("%s/%s" % (name, rel)).encode("utf-8"))
    return target


def same_payload(left, right):
    """True if two files, or two directory trees, hold exactly the same files and bytes."""
    def listing(path):
        if os.path.isfile(path):
            return {"": path}
        return {os.path.relpath(full, path): full for _, full, _ in _payload_files(path)}

    if not (os.path.exists(left) and os.path.exists(right)):
        return False
    a, b = listing(left), listing(right)
    if a.keys() != b.keys():
        return False
    for rel in a:
        if os.path.getsize(a[rel]) != os.path.getsize(b[rel]):
            return False
        with open(a[rel], "rb") as fa, open(b[rel], "rb") as fb:
            while True:
                chunk = fa.read(MiB)
                if chunk != fb.read(MiB):
                    return False
                if not chunk:
                    break
    return True


# ─── 4. RTorrent: one real rtorrent process ──────────────────────────────────────

# The rc file.  Each line is there for a reason; see README §2 and §6.
_RC_TEMPLATE = """\
# generated by rtlab.py
# No curses UI: without a TTY rtorrent would otherwise exit or crash (and leave a stale lock).
system.daemon.set = true
session.path.set = {session}
directory.default.set = {download}
# Exactly one SCGI endpoint; a second one makes rtorrent exit with "SCGI already enabled".
{scgi}
# Peer traffic on this instance's own loopback address (peers are keyed by IP only).
# bind_address also binds the outgoing tracker requests, so the tracker sees this IP.
network.bind_address.set = {ip}
network.port_range.set = {port}-{port}
network.port_random.set = no
# Nothing that could leave the machine.
dht.mode.set = disable
protocol.pex.set = no
trackers.use_udp.set = no
# The default erase handler deletes the .torrent a download was loaded from.
method.set_key = event.download.erased, ~_delete_tied
# Daemon mode has no other visible output than this log.  (0.16 buffers log files until
# exit unless opened with log.open_file.flush, which 0.9.8 lacks: it writes every line.)
{log_open} = "main", {log}
log.add_output = "info", "main"
{xmlrpc_log}
# extra_rc:
{extra}
"""


def _rc_lines(extra):
    """``extra_rc`` may be one string (with newlines) or an iterable of lines."""
    if not extra:
        return ""
    if isinstance(extra, str):
        return extra
    return "\n".join(extra)


class RTorrent:
    """One real rtorrent process in daemon mode, in its own short temp dir.

    ``version`` picks the binary (``find_rtorrent``: Debian 12's 0.9.8 by default, or
    ``$PYROTORQUE_RTORRENT``, e.g. ``"0.16"``); ``.version`` and ``.library_version``
    are what it reports over XML-RPC.

    Layout of ``.dir`` (``/tmp/rtXXXXXXXX`` by default — unix socket paths must stay
    under 107 bytes, so deep pytest tmp dirs are not used)::

        rtorrent.rc  rpc.sock  rtorrent.log  stdout.log  [xmlrpc.log]
        session/     download/

    ``tcp=True`` puts SCGI on ``127.0.0.1:<free port>`` instead of the socket.
    ``xmlrpc=False`` (0.15 and later) starts it with ``network.rpc.use_xmlrpc.set = 0``:
    it then answers JSON-RPC only, ``.proxy`` (XML) gets faults, ``json_call`` works,
    and ``has``/``load_raw`` go over JSON (loading from a file: JSON cannot carry bytes).
    ``extra_rc`` adds rc lines (a string or a list of lines); ``log_xmlrpc=True``
    makes rtorrent log every raw XML-RPC request and reply to ``.xmlrpc_log_path``,
    which is a handy spy on what a daemon sent.

    Use as a context manager (starts, then stops and removes the dir), or call
    ``start()`` / ``stop()`` / ``cleanup()`` yourself.
    """

    def __init__(self, *, tcp=False, ip=None, extra_rc=(), log_xmlrpc=False,
                 parent="/tmp", prefix="rt", rpc_timeout=10.0, version=None, xmlrpc=True):
        self.binary = find_rtorrent(version)  # fail before creating anything
        self.version, self.library_version = rtorrent_versions(self.binary)
        self.series = tuple(int(part) for part in self.version.split(".")[:2])  # (0, 9), (0, 16)
        self.backend = rtorrent_backend(self.binary)
        self.xmlrpc = xmlrpc
        if not xmlrpc and self.series < (0, 15):
            raise LabError("rtorrent %s has no JSON-RPC: xmlrpc=False needs 0.15 or later"
                           % self.version)
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=parent)
        self._proc = None
        try:
            self._setup(tcp, ip, extra_rc, log_xmlrpc, rpc_timeout)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _setup(self, tcp, ip, extra_rc, log_xmlrpc, rpc_timeout):
        """Fill in paths and addresses (split out so that a failure removes the new dir)."""
        self.ip = ip or next_loopback_ip()
        self.tcp = tcp
        self.extra_rc = _rc_lines(extra_rc)
        self.rpc_timeout = rpc_timeout
        self.session_dir = os.path.join(self.dir, "session")
        self.download_dir = os.path.join(self.dir, "download")
        self.rc_path = os.path.join(self.dir, "rtorrent.rc")
        self.log_path = os.path.join(self.dir, "rtorrent.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.xmlrpc_log_path = os.path.join(self.dir, "xmlrpc.log") if log_xmlrpc else None
        os.makedirs(self.session_dir)
        os.makedirs(self.download_dir)
        if tcp:
            self.socket_path = None
            self.scgi_port = free_port("127.0.0.1")
            self.url = "scgi://127.0.0.1:%d" % self.scgi_port
        else:
            self.socket_path = os.path.join(self.dir, "rpc.sock")
            if len(self.socket_path.encode()) > 100:
                raise LabError("socket path too long for rtorrent (max ~107 bytes): %s"
                               % self.socket_path)
            self.scgi_port = None
            self.url = "scgi://" + self.socket_path
        self.port = None  # peer port, chosen afresh at each start()
        self.proxy = lab_proxy(self.url, timeout=rpc_timeout)

    def __repr__(self):
        return "<RTorrent %s ip=%s pid=%s>" % (self.url, self.ip, self.pid)

    # -- process life cycle ----------------------------------------------------------

    @property
    def pid(self):
        """The pid of the running rtorrent (it does not fork in daemon mode), else None."""
        return self._proc.pid if self.running else None

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def _write_rc(self):
        # A fresh peer port per start: the old one may still be in TIME_WAIT after a restart.
        self.port = free_port(self.ip)
        if self.tcp:
            scgi = "network.scgi.open_port = 127.0.0.1:%d" % self.scgi_port
        else:
            scgi = "network.scgi.open_local = %s" % self.socket_path
        xmlrpc_log = "log.xmlrpc = %s" % self.xmlrpc_log_path if self.xmlrpc_log_path else ""
        if not self.xmlrpc:
            xmlrpc_log += "\nnetwork.rpc.use_xmlrpc.set = 0"
        with open(self.rc_path, "w") as handle:
            handle.write(_RC_TEMPLATE.format(
                log_open="log.open_file" if self.series < (0, 15) else "log.open_file.flush",
                session=self.session_dir, download=self.download_dir, scgi=scgi, ip=self.ip,
                port=self.port, log=self.log_path, xmlrpc_log=xmlrpc_log, extra=self.extra_rc))

    def start(self, timeout=15.0):
        """Start rtorrent and wait until ``system.client_version`` answers; return self.

        If rtorrent exits (a bad rc line, a port in use, a locked session), raise
        ``LabError`` with its exit code and the tail of its output and log.
        """
        if self.running:
            raise LabError("%r is already running" % self)
        self._write_rc()
        self._keep_old_logs()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir,
               "LANG": "C.UTF-8"}
        with open(self.stdout_path, "ab") as out:
            # -n: ignore ~/.rtorrent.rc; our rc comes in through -o import=.
            # A new session keeps the terminal's Ctrl-C away from it; no stdin, no TTY.
            self._proc = subprocess.Popen(
                [self.binary, "-n", "-o", "import=" + self.rc_path],
                cwd=self.dir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        _register(self)
        probe = lab_proxy(self.url, timeout=1.0)

        def answers():
            if self._proc.poll() is not None:
                raise LabError("rtorrent exited with code %s during start-up\n%s"
                               % (self._proc.returncode, self._diagnostics()))
            try:
                if not self.xmlrpc:
                    return self.json_call("system.client_version", timeout=1.0)
                return probe.system.client_version()
            except (OSError, xmlrpc.client.ProtocolError):
                return None  # socket not there yet, or not listening yet

        try:
            wait_for(answers, timeout, 0.02, "rtorrent at %s to answer" % self.url)
        except LabTimeout:
            self.kill()
            raise LabTimeout("rtorrent at %s did not answer within %.1fs\n%s"
                             % (self.url, timeout, self._diagnostics())) from None
        except BaseException:
            self.kill()
            raise
        return self

    def _keep_old_logs(self):
        # rtorrent 0.9.8 truncates its log files when it opens them and has no
        # append mode, so a restart would erase what the last run logged.
        for path in (self.log_path, self.xmlrpc_log_path):
            if path and os.path.exists(path):
                with open(path, "rb") as current, open(path + ".old", "ab") as old:
                    shutil.copyfileobj(current, old)
                os.unlink(path)

    def _ask_to_shut_down(self, timeout=2.0):
        """Send ``system.shutdown.normal``; return False if rtorrent did not take it.

        A short timeout: rtorrent deadlocked in a hash check (README §6.1) never answers.
        """
        try:
            if not self.xmlrpc:
                self.json_call("system.shutdown.normal", timeout=timeout)
            else:
                lab_proxy(self.url, timeout=timeout).system.shutdown.normal()
            return True
        except (OSError, xmlrpc.client.Error):
            return False

    def _reap(self, timeout, asked):
        """Wait for the process to end, escalating to SIGTERM and then SIGKILL.

        Returns how it ended: "shutdown.normal", "SIGTERM" or "SIGKILL".
        """
        how = "shutdown.normal"
        try:
            if not asked:
                raise subprocess.TimeoutExpired(self._proc.args, 0)
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            how = "SIGTERM"
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(min(timeout, 3.0))
            except subprocess.TimeoutExpired:
                # A deadlocked rtorrent ignores SIGTERM.
                how = "SIGKILL"
                self._proc.kill()
                self._proc.wait(10.0)
        _unregister(self)
        return how

    def stop(self, timeout=5.0):
        """Stop rtorrent cleanly if possible; return how it ended (or "not running").

        ``system.shutdown.normal`` (the call itself bounded by 2 s) and up to
        ``timeout`` s to exit, then SIGTERM and up to 3 s, then SIGKILL.  Always reaped.
        """
        if self._proc is None:
            return "not running"
        if self._proc.poll() is not None:
            self._proc.wait()
            _unregister(self)
            return "not running"
        return self._reap(timeout, self._ask_to_shut_down(min(timeout, 2.0)))

    def kill(self):
        """SIGKILL rtorrent, as a crash would (the session lock stays; the next start takes it over)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(10.0)
        _unregister(self)

    def restart(self, timeout=15.0):
        """Stop and start again with the same dir, session and SCGI address; return self.

        This is how to test a daemon that must survive rtorrent going away; it
        also resets libtorrent's memory of peers (README §6.4).
        """
        self.stop()
        return self.start(timeout)

    def cleanup(self):
        """Stop rtorrent (if running) and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def detach(self):
        """Leave the process running after this interpreter exits (for ``demo.py --keep``)."""
        _unregister(self)

    def __enter__(self):
        if not self.running:
            try:
                self.start()
            except BaseException:
                self.cleanup()
                raise
        return self

    def __exit__(self, *exc_info):
        self.cleanup()

    # -- looking inside --------------------------------------------------------------

    @staticmethod
    def _read_log(path):
        """A log's text including earlier runs (kept in ``<path>.old`` by ``start()``)."""
        text = ""
        for part in (path + ".old", path):
            try:
                with open(part, "rb") as handle:
                    text += handle.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return text

    def log_text(self):
        """The rtorrent log as text, of this run and the earlier ones ('' before any)."""
        return self._read_log(self.log_path)

    def xmlrpc_log_text(self):
        """The raw XML-RPC log, every request and reply (needs ``log_xmlrpc=True``)."""
        if not self.xmlrpc_log_path:
            raise LabError("this RTorrent was created without log_xmlrpc=True")
        return self._read_log(self.xmlrpc_log_path)

    def _diagnostics(self):
        return ("--- stdout/stderr (%s) ---\n%s\n--- log (%s) ---\n%s"
                % (self.stdout_path, _tail(self.stdout_path), self.log_path, _tail(self.log_path)))

    def wait_for(self, predicate, timeout=10.0, interval=0.05, what=None):
        """Like ``rtlab.wait_for``, but fails at once if rtorrent dies, and shows its log.

        ``predicate`` takes no arguments; use ``self.proxy`` inside it.
        """
        def check():
            if not self.running:
                raise LabError("rtorrent is not running (exit code %s)\n%s"
                               % (self._proc and self._proc.returncode, self._diagnostics()))
            return predicate()

        try:
            return wait_for(check, timeout, interval, what)
        except LabTimeout as exc:
            raise LabTimeout("%s\n%s" % (exc, self._diagnostics())) from None

    def json_call(self, method, *params, timeout=None):
        """One JSON-RPC call (rtorrent 0.15+); a JSON-RPC error raises ``JsonRpcError``."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        reply = json.loads(_scgi_request(parse_scgi_url(self.url), body.encode(),
                                         timeout or self.rpc_timeout))
        if "error" in reply:
            raise JsonRpcError(reply["error"].get("code"), reply["error"].get("message"))
        return reply["result"]

    def has(self, info_hash):
        """True if a download with this info-hash is loaded."""
        if not self.xmlrpc:
            try:
                self.json_call("d.hash", info_hash)
                return True
            except JsonRpcError as error:
                if "info-hash not found" in error.message:
                    return False
                raise
        try:
            self.proxy.d.hash(info_hash)
            return True
        except xmlrpc.client.Fault as fault:
            if is_hash_not_found(fault):  # 0.9.8: -501; 0.16: -503
                return False
            raise

    def downloads(self, *fields, view="main"):
        """``d.multicall2`` as a list of dicts keyed by field name without the '='.

        ``rt.downloads("d.hash=", "d.state=")`` -> ``[{"d.hash": "AB…", "d.state": 0}]``.
        """
        fields = fields or ("d.hash=", "d.name=", "d.state=", "d.is_active=", "d.complete=",
                            "d.completed_bytes=", "d.size_bytes=", "d.priority=", "d.message=")
        rows = self.proxy.d.multicall2("", view, *fields)
        names = [field.rstrip("=") for field in fields]
        return [dict(zip(names, row)) for row in rows]

    # -- loading ---------------------------------------------------------------------

    def load_raw(self, metafile, *commands, start=False, timeout=5.0):
        """Load metafile bytes with ``load.raw`` (or ``load.raw_start``); return the info-hash.

        ``commands`` are applied at load time, e.g. ``"d.priority.set=1"`` or
        ``"d.directory.set=/x"``.  rtorrent's ``load.*`` returns 0 whatever
        happens, so this polls until the info-hash answers.  A hash that is
        already loaded raises ``LabError``: rtorrent would silently ignore the
        load and its commands.
        """
        data = bytes(metafile)
        info_hash = infohash(data)
        if self.has(info_hash):
            raise LabError("%s is already loaded; rtorrent would ignore this load" % info_hash)
        # The *_verbose variants log why a load was rejected, which ends up in our errors.
        method = "load.raw_start_verbose" if start else "load.raw_verbose"
        if not self.xmlrpc:     # JSON has no bytes: load from a file
            method = "load.start_verbose" if start else "load.verbose"
            path = os.path.join(self.dir, "%s.torrent" % info_hash)
            with open(path, "wb") as handle:
                handle.write(data)
            self.json_call(method, "", path, *commands)
        else:
            getattr(self.proxy, method)("", xmlrpc.client.Binary(data), *commands)
        # The download appears on the next main-loop tick, not always by the next call.
        self.wait_for(lambda: self.has(info_hash), timeout, 0.01,
                      "%s to appear after %s" % (info_hash, method))
        return info_hash


# ─── 5. OpenTracker ──────────────────────────────────────────────────────────────

class OpenTracker:
    """The Debian ``opentracker`` on ``127.0.0.1:<free port>`` (TCP and UDP).

    The Debian build only serves info-hashes in its whitelist, so ``add()`` them
    before anyone announces.  Run as root it chroots to its dir and drops to
    ``nobody``: hence the whitelist path relative to the chroot, and mode 0755.
    """

    def __init__(self, *, parent="/tmp", prefix="ot"):
        self.binary = find_binary("opentracker")
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=parent)
        os.chmod(self.dir, 0o755)  # mkdtemp makes it 0700; 'nobody' must read inside
        self.whitelist_path = os.path.join(self.dir, "whitelist.txt")
        with open(self.whitelist_path, "w") as handle:
            # An empty whitelist makes opentracker warn "Can't open accesslist file";
            # a dummy entry keeps its output free of that misleading line.
            handle.write("0" * 40 + "\n")
        os.chmod(self.whitelist_path, 0o644)
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.ip = "127.0.0.1"
        self.port = free_port(self.ip, udp_too=True)
        self.announce_url = "http://%s:%d/announce" % (self.ip, self.port)
        self.hashes = set()
        self._proc = None

    def __repr__(self):
        return "<OpenTracker %s pid=%s>" % (self.announce_url, self.pid)

    @property
    def pid(self):
        """The tracker's pid while it runs, else None."""
        return self._proc.pid if self.running else None

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout=10.0):
        """Start the tracker and wait until it accepts connections; return self."""
        if self.running:
            raise LabError("%r is already running" % self)
        # -w is looked up *inside* the chroot (-d), so it must be a relative name.
        args = [self.binary, "-i", self.ip, "-p", str(self.port), "-P", str(self.port),
                "-d", self.dir, "-w", "whitelist.txt"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        with open(self.stdout_path, "ab") as out:
            self._proc = subprocess.Popen(args, cwd=self.dir, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        _register(self)

        def accepts():
            if self._proc.poll() is not None:
                raise LabError("opentracker exited with code %s:\n%s"
                               % (self._proc.returncode, _tail(self.stdout_path)))
            try:
                with socket.create_connection((self.ip, self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        try:
            wait_for(accepts, timeout, 0.02, "opentracker on port %d" % self.port)
        except BaseException:
            self.kill()
            raise
        if self.hashes:
            self._wait_authorized(self.hashes, timeout)
        return self

    def add(self, *info_hashes, timeout=5.0):
        """Whitelist info-hashes and wait until the running tracker accepts them."""
        with open(self.whitelist_path, "a") as handle:
            for info_hash in info_hashes:
                handle.write(info_hash.lower() + "\n")
        self.hashes.update(h.upper() for h in info_hashes)
        if self.running:
            self._proc.send_signal(signal.SIGHUP)  # opentracker re-reads the whitelist on HUP
            self._wait_authorized(info_hashes, timeout)

    def _wait_authorized(self, info_hashes, timeout):
        # The reload happens in a worker thread; ask the tracker instead of sleeping.
        for info_hash in info_hashes:
            wait_for(lambda: self.is_authorized(info_hash), timeout, 0.02,
                     "opentracker to whitelist %s" % info_hash)

    def is_authorized(self, info_hash):
        """Ask the tracker whether it serves this info-hash.

        opentracker checks the whitelist on every announce except
        ``event=stopped``, so the probe is a real announce from a pseudo peer
        (127.0.0.1:1, nobody listens there) that is withdrawn at once with a
        ``stopped``.  A refused announce registers nothing.
        """
        reply = self._announce(info_hash, None)
        if isinstance(reply, dict) and b"failure reason" not in reply:
            self._announce(info_hash, "stopped")
            return True
        return False

    def _announce(self, info_hash, event):
        params = {"info_hash": bytes.fromhex(info_hash), "peer_id": b"-RL0001-rtlab-probe-",
                  "port": 1, "uploaded": 0, "downloaded": 0, "left": 1, "compact": 1,
                  "numwant": 0}
        if event:
            params["event"] = event
        conn = http.client.HTTPConnection(self.ip, self.port, timeout=2.0)
        try:
            # quote, not quote_plus: a 0x20 byte of the hash as '+' would be a plus sign
            conn.request("GET", "/announce?" + urllib.parse.urlencode(
                params, quote_via=urllib.parse.quote))
            body = conn.getresponse().read()
        finally:
            conn.close()
        try:
            return bdecode(body)
        except ValueError:
            return None

    def stop(self, timeout=5.0):
        """SIGTERM the tracker (then SIGKILL) and reap it."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10.0)
        else:
            self._proc.wait()
        _unregister(self)

    def kill(self):
        """SIGKILL the tracker and reap it."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(10.0)
        _unregister(self)

    def cleanup(self):
        """Stop the tracker and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def detach(self):
        """Leave the tracker running after this interpreter exits."""
        _unregister(self)

    def __enter__(self):
        if not self.running:
            try:
                self.start()
            except BaseException:
                self.cleanup()
                raise
        return self

    def __exit__(self, *exc_info):
        self.cleanup()


# ─── 6. Swarm: tracker + seeders + leechers ──────────────────────────────────────

@dataclass(frozen=True)
class SwarmTorrent:
    """A torrent the swarm seeds: its payload, metafile and info-hash."""

    name: str        #: torrent name = payload file or directory name
    path: str        #: the .torrent metafile on disk
    data: str        #: the seeder's payload (file or directory)
    infohash: str    #: 40 uppercase hex digits, as rtorrent's d.hash
    size_bytes: int  #: payload size
    raw: bytes = field(repr=False)  #: the metafile bytes, ready for RTorrent.load_raw()


class Swarm:
    """A local BitTorrent swarm: opentracker + one seeder rtorrent, plus leechers you start.

    ``seeder_rc`` adds rc lines to every seeder; throttling the seeder, e.g.
    ``"throttle.global_up.max_rate.set_kb = 2048"``, keeps the leecher (the
    rtorrent under test) configured as in production while making downloads
    slow enough to observe.

    Everything lives under one short ``mkdtemp`` dir (``.root``): ``data/``
    (payloads), ``torrents/`` (metafiles) and one dir per process.  Leaving the
    ``with`` block (or ``close()``) stops every process by pid and removes it.
    ``version`` picks the rtorrent of every seeder and leecher (``find_rtorrent``).
    """

    def __init__(self, *, seeder_rc=(), parent="/tmp", piece_length=256 * KiB, version=None):
        self.version = version
        find_rtorrent(version)
        find_binary("opentracker")
        self.root = tempfile.mkdtemp(prefix="rtsw", dir=parent)
        os.chmod(self.root, 0o755)  # opentracker, as 'nobody', lives below it
        self.data_dir = os.path.join(self.root, "data")
        self.torrent_dir = os.path.join(self.root, "torrents")
        os.makedirs(self.data_dir)
        os.makedirs(self.torrent_dir)
        self.seeder_rc = _rc_lines(seeder_rc)
        self.piece_length = piece_length
        self.tracker = None
        self.seeders = []
        self.leechers = []
        self.torrents = {}  # name -> SwarmTorrent

    def __repr__(self):
        return "<Swarm %s torrents=%d seeders=%d leechers=%d>" % (
            self.root, len(self.torrents), len(self.seeders), len(self.leechers))

    @property
    def seeder(self):
        """The first seeder."""
        return self.seeders[0] if self.seeders else None

    def start(self, timeout=30.0):
        """Start the tracker and the first seeder; return self."""
        self.tracker = OpenTracker(parent=self.root).start()
        self.add_seeder(timeout=timeout)
        return self

    def __enter__(self):
        try:
            if self.tracker is None:
                self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    def add_torrent(self, name, size_bytes, files=None, *, piece_length=None, timeout=30.0):
        """Create payload + metafile, whitelist it, have every seeder seed it; return a SwarmTorrent.

        Returns only once each seeder has the data complete, active and
        announced (``t.success_counter >= 1``): a leecher that announces before
        the seeder is registered gets no peers for ~30 minutes.
        ``files`` is as in ``make_payload``.
        """
        if name in self.torrents:
            raise ValueError("the swarm already has a torrent named %r" % name)
        data = make_payload(self.data_dir, name, size_bytes, files)
        raw = make_torrent(data, self.tracker.announce_url, piece_length or self.piece_length)
        path = os.path.join(self.torrent_dir, name + ".torrent")
        with open(path, "wb") as handle:
            handle.write(raw)
        size = sum(os.path.getsize(full) for _, full, _ in _payload_files(data)) \
            if os.path.isdir(data) else os.path.getsize(data)
        torrent = SwarmTorrent(name=name, path=path, data=data, infohash=infohash(raw),
                               size_bytes=size, raw=raw)
        self.tracker.add(torrent.infohash)
        self.torrents[name] = torrent
        for seeder in self.seeders:
            self._seed(seeder, torrent, timeout)
        return torrent

    def _seed(self, seeder, torrent, timeout):
        """Make ``seeder`` seed ``torrent`` from the swarm's data dir, and wait until announced."""
        # The data is already in data/: a start just hash-checks it to complete.
        seeder.load_raw(torrent.raw, "d.directory.set=" + self.data_dir, start=True)
        h = torrent.infohash

        def seeding():
            return (seeder.proxy.d.complete(h) == 1 and seeder.proxy.d.is_active(h) == 1
                    and seeder.proxy.d.hashing(h) == 0)

        def announced():
            counters = seeder.proxy.t.multicall(h, "", "t.success_counter=")
            return any(row[0] >= 1 for row in counters)

        seeder.wait_for(seeding, timeout, what="the seeder to have %s complete" % torrent.name)
        seeder.wait_for(announced, timeout, what="the seeder to announce %s" % torrent.name)

    def add_seeder(self, extra_rc=None, timeout=30.0):
        """Start one more seeder on a new 127.0.0.x seeding every torrent; return it.

        Use it after a leecher stopped and restarted a download: libtorrent will
        not re-dial a peer it talked to in the last 600 s, so a fresh seeder on a
        new address is what gets the download moving again.
        """
        seeder = RTorrent(parent=self.root, prefix="seed", version=self.version,
                          extra_rc=self.seeder_rc if extra_rc is None else _rc_lines(extra_rc))
        self.seeders.append(seeder)
        seeder.start()
        for torrent in self.torrents.values():
            self._seed(seeder, torrent, timeout)
        return seeder

    def start_leecher(self, extra_rc=(), *, tcp=False, log_xmlrpc=False):
        """Start an empty rtorrent on its own 127.0.0.x, ready to load the swarm's torrents."""
        leecher = RTorrent(parent=self.root, prefix="leech", extra_rc=extra_rc, tcp=tcp,
                           log_xmlrpc=log_xmlrpc, version=self.version)
        self.leechers.append(leecher)
        return leecher.start()

    def close(self):
        """Stop every process (leechers, seeders, tracker) and remove ``.root``.

        All rtorrents are asked to shut down first and reaped afterwards, so
        their shutdowns overlap instead of adding up.
        """
        instances = [rt for rt in self.leechers + self.seeders if rt.running]
        asked = [(rt, rt._ask_to_shut_down()) for rt in instances]
        for rt, ok in asked:
            rt._reap(5.0, ok)
        for rt in self.leechers + self.seeders:
            rt.stop()  # reaps anything that had already exited
        if self.tracker is not None:
            self.tracker.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    cleanup = close

    def detach(self):
        """Leave all processes running after this interpreter exits (for ``demo.py --keep``)."""
        for proc in self.leechers + self.seeders + [self.tracker]:
            if proc is not None:
                proc.detach()


if __name__ == "__main__":  # a quick self-check: python3 contrib/rtlab.py
    started = time.monotonic()
    with Swarm(seeder_rc="throttle.global_up.max_rate.set_kb = 4096") as swarm:
        item = swarm.add_torrent("selfcheck", 4 * MiB, files=3)
        leech = swarm.start_leecher()
        leech_hash = leech.load_raw(item.raw, start=True)
        leech.wait_for(lambda: leech.proxy.d.complete(leech_hash) == 1, 60, what="download")
        ok = same_payload(item.data, os.path.join(leech.download_dir, item.name))
        print("rtlab self-check: %s in %.1fs" % ("OK" if ok else "DATA MISMATCH",
                                                time.monotonic() - started))
    raise SystemExit(0 if ok else 1)
