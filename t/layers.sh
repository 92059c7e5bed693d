#!/bin/sh
# Layer check: a file under zan/ includes zan headers only from its own
# layer or lower ones (base < event < ipc < process < server < http).
# Each module's layer is listed here; a module missing from the list fails.
set -eu
layer_of() {
    case $1 in
    fd|sys|log|buffer|inet_addr|socket) echo 0 ;;
    poller|event_loop|timer_queue) echo 1 ;;
    shm|shm_mutex|ring|frame_codec|socket_channel|ring_channel|channel|msg_queue|shm_tables|session_id|role|stats) echo 2 ;;
    callbacks|protocol|server_config|process|process_setup|signals|master|child_process|master_control|net_worker|net_acceptor|net_conn|net_conn_table|net_dispatch_policy|net_channels|net_reply_order|net_requests|net_replies|worker|worker_calls|task_worker|user_worker|frame|proc_table|session) echo 3 ;;
    tcp_server) echo 4 ;;
    http_chars|http_parser|http_parser_body|http_parser_load|http_request|http_response|http_server) echo 5 ;;
    zan) echo 9 ;;
    *) echo "" ;;
    esac
}
bad=0
for f in zan/*.h zan/*.cc; do
    [ -e "$f" ] || continue
    m=$(basename "$f"); m=${m%.*}
    l=$(layer_of "$m")
    if [ -z "$l" ]; then echo "layers: $f: module '$m' has no layer in t/layers.sh" >&2; bad=1; continue; fi
    for inc in $(sed -n 's/^#include "zan\/\([a-z_]*\)\.h".*/\1/p' "$f"); do
        il=$(layer_of "$inc")
        if [ -z "$il" ] || [ "$il" -gt "$l" ]; then
            echo "layers: $f (layer $l) includes zan/$inc.h (layer ${il:-?})" >&2; bad=1
        fi
    done
done
[ $bad -eq 0 ] && echo "layers: clean"
exit $bad
