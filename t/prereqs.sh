#!/bin/sh
# Makes sure the build prerequisites of `make check` are present. When one is
# missing and apt-get is usable (we are root), it is installed
# non-interactively; otherwise we stop with a one-line message naming it.
set -e
missing=""
need() { # need PACKAGE TEST-COMMAND...
    pkg=$1; shift
    if ! "$@" >/dev/null 2>&1; then missing="$missing $pkg"; fi
}
need g++ sh -c 'command -v g++'
need make sh -c 'command -v make'
need libgtest-dev sh -c 'test -f /usr/include/gtest/gtest.h && ls /usr/lib/*/libgtest.a /usr/lib/libgtest.a 2>/dev/null | grep -q .'
need mandoc sh -c 'command -v mandoc'
need curl sh -c 'command -v curl'
need python3 sh -c 'command -v python3'
# Real peers the integration tests start: a load balancer and reverse
# proxy, the HTTP load generator, systemd's socket activator and the
# Prometheus exposition checker.
need nginx sh -c 'command -v nginx || test -x /usr/sbin/nginx'
need wrk sh -c 'command -v wrk'
need systemd sh -c 'command -v systemd-socket-activate'
need prometheus sh -c 'command -v promtool'
if [ "${1:-}" = valgrind ]; then
    need valgrind sh -c 'command -v valgrind'
fi
if [ "${1:-}" = fuzz ]; then
    need clang sh -c 'command -v clang++'
    need libclang-rt-14-dev sh -c 'ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep -q .'
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "prereqs: installing$missing with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    exit 0
fi
echo "prereqs: missing$missing: install with: apt-get install$missing" >&2
exit 1
