#!/bin/sh
# Layer check: a file under zan/ includes zan headers only from its own
# layer or lower ones (base < event < ipc < process < server < http).
# The table below lists every module by layer, whether public (zan/X.h)
# or internal (zan/detail/X.h); a module keeps its layer in either place.
# It must describe the tree as it is: a module missing from it fails, and
# so does a name in it that has no .h or .cc under zan/ or zan/detail/.
# A public header must not include an internal one (installed headers
# include only installed headers; t/header_check.sh compiles them).
set -eu
LAYERS='
0 fd sys log buffer inet_addr socket line_log hosts_resolver
0 sd_notify listen_fds
1 poller event_loop timer_queue connector tcp_client
2 shm shm_mutex ring frame_codec socket_channel ring_channel channel
2 msg_queue shm_tables session_id role stats metrics metrics_json
3 callbacks protocol server_config process process_setup child_process
3 master master_control
3 master_notifier binary_upgrade
3 master master_control control_socket metrics_snapshot
3 net_worker net_acceptor net_conn net_conn_table net_dispatch_policy
3 net_channels net_requests net_replies net_reply_order
3 worker worker_calls task_worker user_worker
4 tcp_server
5 http_chars http_message http_parser http_parser_body http_parser_load
5 http_parser_response http_request
5 http_response http_server http_server_access access_log body_streams
5 http_client http_proxy
9 zan
'
# " fd=0 sys=0 ... " for a lookup without a process per include.
MAP=" $(echo "$LAYERS" | awk '{ for (i = 2; i <= NF; i++) printf "%s=%s ", $i, $1 }')"
layer_of() {
    case $MAP in
    *" $1="*) r=${MAP#*" $1="}; echo "${r%% *}" ;;
    *) echo "" ;;
    esac
}
bad=0
for m in $(echo "$LAYERS" | awk '{ for (i = 2; i <= NF; i++) print $i }'); do
    if [ ! -e "zan/$m.h" ] && [ ! -e "zan/$m.cc" ] &&
       [ ! -e "zan/detail/$m.h" ] && [ ! -e "zan/detail/$m.cc" ]; then
        echo "layers: t/layers.sh lists '$m', but zan/ has no $m.h or $m.cc" >&2; bad=1
    fi
    if { [ -e "zan/$m.h" ] || [ -e "zan/$m.cc" ]; } &&
       { [ -e "zan/detail/$m.h" ] || [ -e "zan/detail/$m.cc" ]; }; then
        echo "layers: module '$m' is in both zan/ and zan/detail/" >&2; bad=1
    fi
done
for f in zan/*.h zan/*.cc zan/detail/*.h zan/detail/*.cc; do
    [ -e "$f" ] || continue
    m=$(basename "$f"); m=${m%.*}
    l=$(layer_of "$m")
    if [ -z "$l" ]; then echo "layers: $f: module '$m' has no layer in t/layers.sh" >&2; bad=1; continue; fi
    case $f in
    zan/detail/*) ;;
    *.h)
        if grep -q '^#include "zan/detail/' "$f"; then
            echo "layers: public header $f includes an internal header" >&2; bad=1
        fi ;;
    esac
    for inc in $(sed -n 's/^#include "zan\/\(detail\/\)\{0,1\}\([a-z_]*\)\.h".*/\2/p' "$f"); do
        il=$(layer_of "$inc")
        if [ -z "$il" ] || [ "$il" -gt "$l" ]; then
            echo "layers: $f (layer $l) includes zan/$inc.h (layer ${il:-?})" >&2; bad=1
        fi
    done
done
[ $bad -eq 0 ] && echo "layers: clean"
exit $bad
