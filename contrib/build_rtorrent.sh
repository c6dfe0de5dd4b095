#!/usr/bin/env bash
# Build a current rTorrent (0.16.x) for the test lab, beside Debian 12's rtorrent 0.9.8.
#
#   contrib/build_rtorrent.sh            # build when the cache holds no working build, else nothing
#   contrib/build_rtorrent.sh --force    # build again
#
# Source: Debian unstable's source packages (libtorrent, rtorrent), fetched through a PRIVATE apt
# sources list, lists and cache directory under the cache, so the machine's own Debian 12 package
# lists and packages stay as they are. Toolchain and libraries: Debian 12's (the build dependencies
# are installed from Debian 12 when missing). Debian's own packaging needs dpkg-dev >= 1.22.5,
# which bookworm lacks, so both are built by hand: autoreconf, ./configure, make.
#
# Result (PYROTORQUE_LAB_CACHE, default /var/cache/pyrotorque-lab):
#   rtorrent-0.16.N/lib/libtorrent.so*        its own libtorrent (never the system's)
#   rtorrent-0.16.N/bin/rtorrent-tinyxml2     XML-RPC through the bundled tinyxml2 (upstream's choice)
#   rtorrent-0.16.N/bin/rtorrent-xmlrpc-c     XML-RPC through xmlrpc-c (Debian's choice)
#   rtorrent-0.16.N/bin/rtorrent              -> rtorrent-tinyxml2
#   rtorrent-0.16.N/BUILD                     what was built from what, and how long it took
# The binaries carry an rpath to ../lib, so no LD_LIBRARY_PATH is needed. contrib/rtlab.py finds them.
set -euo pipefail

cache=${PYROTORQUE_LAB_CACHE:-/var/cache/pyrotorque-lab}
series=${RTORRENT_SERIES:-0.16}
suite=${RTORRENT_SUITE:-sid}
force=no
[[ ${1:-} == --force ]] && force=yes
started=$SECONDS

say() { echo "build_rtorrent: $*" >&2; }

# A build works when every binary starts and names its version (no rc, no session: -h only;
# 0.16 wants a HOME even for that).
works() {
    local prefix=$1 bin banner
    [[ -f $prefix/BUILD ]] || return 1
    for bin in rtorrent-tinyxml2 rtorrent-xmlrpc-c; do
        banner=$(env -i HOME=/nonexistent "$prefix/bin/$bin" -h </dev/null 2>&1) || return 1
        [[ $banner == *"version $series."* ]] || return 1
    done
}

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9     # one build at a time (parallel CI steps, two sessions)

if [[ $force == no ]]; then
    for prefix in $(ls -d "$cache/rtorrent-$series".* 2>/dev/null | sort -V -r); do
        if works "$prefix"; then
            say "$prefix holds a working build; nothing to do"
            exit 0
        fi
    done
fi

as_root=(env DEBIAN_FRONTEND=noninteractive)
[[ $(id -u) -eq 0 ]] || as_root=(sudo -n "${as_root[@]}")

# Build dependencies, from Debian 12. (libtorrent: libcurl, libssl, zlib; rtorrent: ncurses, zlib,
# xmlrpc-c for that back end; tinyxml2 is bundled in rtorrent's source. cppunit only for `make check`.)
build_deps=(build-essential pkgconf autoconf automake libtool dpkg-dev
            libcurl4-openssl-dev libssl-dev zlib1g-dev libncurses-dev libxmlrpc-core-c3-dev)
missing=()
for pkg in "${build_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "installing build dependencies from Debian 12: ${missing[*]}"
    "${as_root[@]}" apt-get install -y -qq "${missing[@]}" </dev/null >&2 \
        || { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq "${missing[@]}" </dev/null >&2; }
fi

# The private apt: only deb-src of $suite, its own lists and caches; the system's stay untouched.
apt_dir=$cache/apt-$suite
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
    >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
          -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root)
say "apt-get update (private: deb-src $suite)"
apt-get "${apt_opts[@]}" -qq update >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/rtbuild.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get "${apt_opts[@]}" -qq source libtorrent rtorrent >/dev/null 2>&1 \
    || apt-get "${apt_opts[@]}" source libtorrent rtorrent >&2
rm -rf "$apt_dir"    # the lists (25 MB) are only needed for this one download
lt_src=$(ls -d libtorrent-*/ | head -1); lt_src=${lt_src%/}
rt_src=$(ls -d rtorrent-*/ | head -1); rt_src=${rt_src%/}
version=${rt_src#rtorrent-}
[[ $version == "$series".* ]] || { say "$suite has rtorrent $version, not $series.x"; exit 70; }
prefix=$cache/rtorrent-$version
jobs=$(nproc)
say "building libtorrent ${lt_src#libtorrent-} and rtorrent $version into $prefix ($jobs jobs)"
rm -rf "$prefix"

# libtorrent: Debian's rules add only --enable-ipv6, which 0.16's configure no longer knows.
t0=$SECONDS
(cd "$lt_src" && autoreconf -fi >/dev/null 2>&1 \
    && ./configure -q --prefix="$prefix" --disable-static >/dev/null \
    && make -s -j"$jobs" >/dev/null 2>&1 && make -s install >/dev/null) \
    || { say "libtorrent failed; rerun in $work by hand"; trap - EXIT; exit 70; }
lt_secs=$((SECONDS - t0))

# rtorrent, once per XML-RPC back end, against the libtorrent above (rpath: ../lib, absolute).
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
backend_secs=()
for backend in tinyxml2 xmlrpc-c; do
    t0=$SECONDS
    rm -rf "build-$backend" && cp -a "$rt_src" "build-$backend"
    if [[ $backend == xmlrpc-c ]]; then with=--with-xmlrpc-c; else with=--with-xmlrpc-tinyxml2; fi
    (cd "build-$backend" && autoreconf -fi >/dev/null 2>&1 \
        && ./configure -q --prefix="$prefix" "$with" LDFLAGS="-Wl,-rpath,$prefix/lib" >/dev/null \
        && make -s -j"$jobs" >/dev/null 2>&1) \
        || { say "rtorrent ($backend) failed; rerun in $work by hand"; trap - EXIT; exit 70; }
    install -D -m 755 "build-$backend/src/rtorrent" "$prefix/bin/rtorrent-$backend"
    backend_secs+=("$backend $((SECONDS - t0)) s")
done
ln -sfn rtorrent-tinyxml2 "$prefix/bin/rtorrent"
rm -rf "${prefix:?}/include" "$prefix/share"
# Symbols stay (for gdb backtraces of a hung rtorrent), debug info goes: 143 MB -> 7 MB.
strip --strip-debug "$prefix"/lib/libtorrent.so.*.*.* "$prefix"/bin/rtorrent-*

{
    echo "rtorrent $version + libtorrent ${lt_src#libtorrent-} from Debian $suite source packages"
    echo "built $(date -u +%FT%TZ) on $(. /etc/os-release; echo "$PRETTY_NAME"), $(g++ --version | head -1), $jobs jobs"
    echo "libtorrent $lt_secs s; rtorrent ${backend_secs[*]}; total $((SECONDS - started)) s"
} >"$prefix/BUILD"
works "$prefix" || { say "the build in $prefix does not start"; exit 70; }
say "done in $((SECONDS - started)) s: $(tail -1 "$prefix/BUILD")"
