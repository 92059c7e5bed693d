#!/bin/sh
# Installs zan into a temporary DESTDIR, compiles t/static_link.cc against
# the installed headers and library with -static (via the installed
# pkg-config file), and runs it; the program checks its own ELF headers.
set -eu
B=${1:-build}
CXX=${2:-g++}
tmp=$(mktemp -d -t zan-static.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
make --no-print-directory -s install B="$B" DESTDIR="$tmp" PREFIX=/usr >/dev/null
pc="$tmp/usr/lib/pkgconfig/zan.pc"
cflags=$(sed -n 's/^Cflags: //p' "$pc" | sed "s|\${includedir}|$tmp/usr/include|")
libs=$(sed -n 's/^Libs: //p' "$pc" | sed "s|\${libdir}|$tmp/usr/lib|")
# shellcheck disable=SC2086
$CXX -static -O1 $cflags t/static_link.cc -o "$tmp/static_link" $libs
"$tmp/static_link"
