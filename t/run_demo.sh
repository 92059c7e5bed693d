#!/bin/sh
# `make run`: the demo server in the foreground on 127.0.0.1 (Ctrl-C stops
# it cleanly). zan-httpd once it exists, zan-echod until then.
B=${1:-build}
if [ -x "$B/tools/zan-httpd" ]; then
    exec "$B/tools/zan-httpd" --host 127.0.0.1 --port 9501
fi
exec "$B/tools/zan-echod" --host 127.0.0.1 --port 9501
