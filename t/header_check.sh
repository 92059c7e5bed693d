#!/bin/sh
# Installs zan into a temporary DESTDIR and compiles every installed
# header on its own (a file holding just #include <zan/X.h>) against the
# installed tree only: each public header must be self-contained and
# must not include an internal one (zan/detail/ is not installed, and a
# public header naming it fails here by name as well).
set -eu
B=${1:-build}
CXX=${2:-g++}
tmp=$(mktemp -d -t zan-headers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
make --no-print-directory -s install B="$B" DESTDIR="$tmp" PREFIX=/usr >/dev/null
inc="$tmp/usr/include"
bad=0
if [ -e "$inc/zan/detail" ]; then
    echo "header-check: zan/detail/ was installed" >&2; bad=1
fi
n=0
for h in "$inc"/zan/*.h; do
    name=zan/${h##*/}
    if grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]zan/detail/' "$h" >&2; then
        echo "header-check: $name includes an internal header" >&2; bad=1; continue
    fi
    printf '#include <%s>\n' "$name" > "$tmp/one.cc"
    if ! (cd "$tmp" && $CXX -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$inc" one.cc); then
        echo "header-check: $name does not compile on its own" >&2; bad=1
    fi
    n=$((n + 1))
done
[ $bad -eq 0 ] && echo "header-check: $n installed headers compile on their own"
exit $bad
