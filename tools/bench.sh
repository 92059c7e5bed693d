#!/bin/sh
# tools/bench.sh - the `make bench` driver: zan against nginx, against a
# minimal single-process epoll server (zan-baseline) and, for HTTP, against
# the bare hop of zan's process model (zan-hopfloor) and that hop with the
# HTTP work a conforming server cannot skip (zan-hopfloor --strict), and
# zan-httpd --proxy against nginx proxy_pass in front of one upstream, on
# 127.0.0.1 only.
#
# Usage: sh tools/bench.sh [BUILD_DIR]        (make bench passes $(B))
# Environment:
#   BENCH_REPS=3        interleaved repetitions per scenario (median reported)
#   BENCH_DUR=5         seconds per run
#   BENCH_ONLY=abcdefghi scenario letters to run (see tools/BENCH.md); l
#                       (a with and without access logs) runs only when named
#   BENCH_PORT=18180    first port tried; busy ports are skipped
#   BENCH_IDLE=10000    idle connections in the memory scenario
#   BENCH_ZAN_HTTPD     command used in place of zan-httpd, with {PORT},
#                       {W} (Workers) and {N} (NetWorkers) substituted
#   BENCH_ZAN_PROXY     command used in place of zan-httpd --proxy in i,
#                       with {PORT}, {UP_HOST} and {UP_PORT} substituted
#   BENCH_KEEP=DIR      keep configs, logs and raw outputs in DIR
#
# Each run is interleaved zan, nginx, baseline, hop, strict, zan, nginx, ...
# Server CPU us/request = utime+stime+cutime+cstime of the server's whole
# process tree (/proc/PID/stat, read right before and after each client
# run) / requests the client counted.
# Only processes this script started (and their descendants) are stopped,
# by PID; the system nginx service is never touched. A server that dies
# during a run is restarted: that run does not count, its row says (died).
# Needs bash (re-executes itself under it), wrk, nginx, python3 (for g).
# Scenario i (reverse proxy) runs an upstream server on the client's core
# and measures the proxies' own process trees; the upstream's CPU per
# request goes in the notes.
# The results are one markdown table, stamped with the commit, date,
# kernel, CPU count and load average, on stdout and in BUILD_DIR/bench-results.md.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
case $B in /*) ;; *) B=$ROOT/$B;; esac
REPS=${BENCH_REPS:-3}
DUR=${BENCH_DUR:-5}
ONLY=${BENCH_ONLY:-abcdefghi}
NEXT_PORT=${BENCH_PORT:-18180}
IDLE_N=${BENCH_IDLE:-10000}
WARM=1
ZB=$B/tools/zan-bench
ZBASE=$B/tools/zan-baseline
ZHOP=$B/tools/zan-hopfloor
ZHTTPD=$B/tools/zan-httpd
ZECHOD=$B/tools/zan-echod
RESULTS=$B/bench-results.md
T_START=$(date +%s)
DATE_START=$(date -u '+%F %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ "$COMMIT" != unknown ] && [ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null)" ] &&
  COMMIT=$COMMIT-dirty

log() { printf '%s\n' "$*" >&2; }
want() { case $ONLY in *"$1"*) return 0;; esac; return 1; }

# ---- prerequisites: wrk and nginx from Debian, installed if missing -------
apt_install() {  # apt_install PKG...: quietly, without starting services
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  local policy=/usr/sbin/policy-rc.d made=0 rc
  if [ ! -e "$policy" ]; then  # keep the package from starting its service
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; }
  rc=$?
  [ $made = 1 ] && rm -f "$policy"
  return $rc
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v wrk >/dev/null || { log "bench: installing wrk"; apt_install wrk; }
[ -x "$NGINX" ] || { log "bench: installing nginx-light"; apt_install nginx-light || apt_install nginx; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAVE_WRK=0; command -v wrk >/dev/null && HAVE_WRK=1
HAVE_NGINX=0; [ -x "$NGINX" ] && HAVE_NGINX=1
[ $HAVE_WRK = 1 ] || log "bench: wrk not available: HTTP scenarios are skipped"
[ $HAVE_NGINX = 1 ] || log "bench: nginx not available: nginx columns are n/a"
for t in "$ZB" "$ZBASE" "$ZHOP"; do
  [ -x "$t" ] || { log "bench: $t missing (run make first)"; exit 1; }
done
if [ -n "${BENCH_ZAN_HTTPD:-}" ]; then
  ZHTTPD_DESC="BENCH_ZAN_HTTPD=$BENCH_ZAN_HTTPD"
elif [ -x "$ZHTTPD" ]; then
  ZHTTPD_DESC="$ZHTTPD"
else
  ZHTTPD_DESC=""; log "bench: $ZHTTPD not built: zan HTTP rows are n/a"
fi
if [ -n "${BENCH_ZAN_PROXY:-}" ]; then
  ZPROXY_DESC="BENCH_ZAN_PROXY=$BENCH_ZAN_PROXY"
elif [ -x "$ZHTTPD" ] && "$ZHTTPD" --help 2>&1 | grep -q -e '--proxy'; then
  ZPROXY_DESC="$ZHTTPD --proxy"
else
  ZPROXY_DESC=""; want i && log "bench: $ZHTTPD has no --proxy: the zan rows of i are n/a"
fi

# ---- settings ------------------------------------------------------------
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NCPU=$(nproc)
HZ=$(getconf CLK_TCK)
PIN_SRV=(); PIN_CLI=()
if [ "$NCPU" -ge 2 ]; then PIN_SRV=(taskset -c 1); PIN_CLI=(taskset -c 0); fi
if [ -n "${BENCH_KEEP:-}" ]; then DIR=$BENCH_KEEP; mkdir -p "$DIR"
else DIR=$(mktemp -d -t zan-bench.XXXXXX); fi
mkdir -p "$DIR/tmp"
ROWS=$DIR/rows.tsv  # scenario server req/s p50 p99 cpu errors client% notes
: >"$ROWS"

# ---- processes: started here, stopped by PID with their descendants ------
STARTED=()
descendants() {
  local c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do echo "$c"; descendants "$c"; done
}
# PIDs wrap quickly on a busy machine (pid_max may be 32768), and a
# descendant reaped by its own parent frees its PID: a signal goes only to a
# PID whose start time is still the one seen when the tree was listed.
pstart() {  # start time of a live (not zombie) PID
  local l; l=$(cat /proc/"$1"/stat 2>/dev/null) || return 1
  l=${l##*") "}; set -- $l; [ "$1" != Z ] && echo "${20}"
}
signal_same() {  # signal_same SIG PID:START...: true if one of them was still there
  local sig=$1 e any=1; shift
  for e in "$@"; do
    [ "$(pstart "${e%%:*}")" = "${e#*:}" ] && kill -"$sig" "${e%%:*}" 2>/dev/null && any=0
  done
  return $any
}
stop_tree() {  # TERM the PID and its descendants; KILL what is left after 5 s
  local root=$1 all=() p st
  for p in "$root" $(descendants "$root"); do st=$(pstart "$p") && all+=("$p:$st"); done
  if [ ${#all[@]} -gt 0 ]; then
    signal_same TERM "${all[@]}"
    for _ in $(seq 50); do signal_same 0 "${all[@]}" || break; sleep 0.1; done
    signal_same KILL "${all[@]}"
  fi
  wait "$root" 2>/dev/null
  local keep=() q
  for q in "${STARTED[@]}"; do [ "$q" = "$root" ] || keep+=("$q"); done
  STARTED=("${keep[@]}")
}
cleanup() {
  local p
  for p in "${STARTED[@]}"; do stop_tree "$p"; done
  [ -z "${BENCH_KEEP:-}" ] && rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
alloc_port() {  # sets PORT to the next port nothing listens on
  while port_open "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT=$NEXT_PORT; NEXT_PORT=$((NEXT_PORT + 1))
}
# zan_httpd_cmd PORT W N: sets CMD to the zan HTTP server command line
zan_httpd_cmd() {
  local a
  CMD=()
  if [ -n "${BENCH_ZAN_HTTPD:-}" ]; then
    for a in $BENCH_ZAN_HTTPD; do a=${a//\{PORT\}/$1}; a=${a//\{W\}/$2}; CMD+=("${a//\{N\}/$3}"); done
  else
    CMD=("$ZHTTPD" --host 127.0.0.1 --port "$1" --worker-num "$2" --net-worker-num "$3")
  fi
}

# start NAME PORT PIN CMD...: sets PID_<NAME> and PORT_<NAME>; PIN is yes
# (the servers' cpu), cli (the client's cpu: i's upstream) or no.
# Ready when the output has "listening on" (nginx: when the port accepts).
start() {
  local name=$1 port=$2 pin=$3 pid; shift 3
  if [ "$pin" = yes ]; then "${PIN_SRV[@]}" "$@" >"$DIR/$name.out" 2>&1 &
  elif [ "$pin" = cli ]; then "${PIN_CLI[@]}" "$@" >"$DIR/$name.out" 2>&1 &
  else "$@" >"$DIR/$name.out" 2>&1 & fi
  pid=$!; STARTED+=("$pid")
  for _ in $(seq 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "bench: $name exited during start-up:"; tail -n 5 "$DIR/$name.out" >&2
      eval "PID_$name=''"; return 1
    fi
    if [ "${name#nginx}" != "$name" ]; then port_open "$port" && break
    else grep -q "listening on" "$DIR/$name.out" 2>/dev/null && break; fi
    sleep 0.1
  done
  eval "PID_$name=$pid; PORT_$name=$port; PIN_$name=$pin; ST_$name=$(pstart "$pid")"
  eval "CMD_$name=\$(printf '%q ' \"\$@\")"
}
alive() { local p st; eval "p=\${PID_$1:-}; st=\${ST_$1:-}"; [ -n "$p" ] && [ "$(pstart "$p")" = "$st" ]; }
restart() {  # restart NAME: the same command on the same port (after a death)
  local port pin cmd
  eval "port=\$PORT_$1; pin=\$PIN_$1; cmd=\$CMD_$1"
  mv -f "$DIR/$1.out" "$DIR/$1.out.died" 2>/dev/null
  eval "start $1 $port $pin $cmd" && log "bench: $1 restarted"
}
stop() { local p; eval "p=\${PID_$1:-}"; [ -n "$p" ] && stop_tree "$p"; eval "PID_$1=''"; }

# The access log of scenario l: zan's line (combined plus $request_time),
# buffered as zan buffers it (64 KiB, flushed at least once a second).
NGINX_ACCESS_FORMAT="log_format zan '\$remote_addr - \$remote_user [\$time_local] \"\$request\" '
                   '\$status \$body_bytes_sent \"\$http_referer\" \"\$http_user_agent\" \$request_time';"
# The reverse proxy of scenario i: HTTP/1.1 to the upstream over kept-alive
# connections (at least as many idle ones kept as the client has
# connections, none closed after a count of requests or a pause), and the
# header fields zan-httpd --proxy writes, so both send the same bytes: the
# client's Host, X-Forwarded-For/-Proto/-Host and Via upstream, Via back.
nginx_proxy() {  # nginx_proxy HOST:PORT: the upstream block and location of i
  NGINX_UPSTREAM="upstream up {
        server $1;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }"
  NGINX_LOCATION="location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header Via \"1.1 nginx\";
            add_header Via \"1.1 nginx\";
        }"
}
nginx_conf() {  # nginx_conf WORKERS PORT [NAME [ACCESS_LOG [UPSTREAM]]]: writes DIR/NAME.conf
  local name=${3:-nginx} access="access_log off;"
  local NGINX_UPSTREAM="" NGINX_LOCATION="location = / { return 200 \"hello\\n\"; }"
  [ -n "${4:-}" ] && access="$NGINX_ACCESS_FORMAT
    access_log $4 zan buffer=64k flush=1s;"
  [ -n "${5:-}" ] && nginx_proxy "$5"
  cat >"$DIR/$name.conf" <<CONF
worker_processes $1;
worker_rlimit_nofile $(ulimit -n);
daemon off;
master_process on;
pid $DIR/$name.pid;
error_log $DIR/${name}_error.log warn;
events { worker_connections 16384; }
http {
    $access
    default_type text/plain;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_body_temp_path $DIR/tmp/body;
    proxy_temp_path $DIR/tmp/proxy;
    fastcgi_temp_path $DIR/tmp/fastcgi;
    uwsgi_temp_path $DIR/tmp/uwsgi;
    scgi_temp_path $DIR/tmp/scgi;
    $NGINX_UPSTREAM
    server {
        listen 127.0.0.1:$2;
        $NGINX_LOCATION
    }
}
CONF
}
start_nginx() {  # start_nginx WORKERS PIN [NAME [ACCESS_LOG [UPSTREAM]]]
  local name=${3:-nginx}
  [ $HAVE_NGINX = 1 ] || { eval "PID_$name=''"; return 0; }
  alloc_port; nginx_conf "$1" "$PORT" "$name" "${4:-}" "${5:-}"
  start "$name" "$PORT" "$2" "$NGINX" -p "$DIR/" -e "$DIR/${name}_error.log" -c "$DIR/$name.conf"
}
start_httpd() {  # start_httpd WORKERS NETWORKERS PIN [NAME [ARG...]]: ARGs added to its command
  local name=${4:-zan}
  [ -n "$ZHTTPD_DESC" ] || { eval "PID_$name=''"; return 0; }
  alloc_port; zan_httpd_cmd "$PORT" "$1" "$2"
  start "$name" "$PORT" "$3" "${CMD[@]}" "${@:5}"
}
start_proxy() {  # start_proxy HOST:PORT: zan-httpd --proxy, 1 + 1 pinned, as PID_zan
  local a
  [ -n "$ZPROXY_DESC" ] || { PID_zan=''; return 0; }
  alloc_port
  if [ -n "${BENCH_ZAN_PROXY:-}" ]; then
    CMD=()
    for a in $BENCH_ZAN_PROXY; do
      a=${a//\{PORT\}/$PORT}; a=${a//\{UP_HOST\}/${1%:*}}; CMD+=("${a//\{UP_PORT\}/${1##*:}}")
    done
  else
    CMD=("$ZHTTPD" --host 127.0.0.1 --port "$PORT" --worker-num 1 --net-worker-num 1 --proxy "$1")
  fi
  start zan "$PORT" yes "${CMD[@]}"
}
start_echod() {  # start_echod PIN: 1 NetWorker, 1 Worker, 1 TaskWorker
  alloc_port
  start zan "$PORT" "$1" "$ZECHOD" --host 127.0.0.1 --port "$PORT" \
    --worker-num 1 --net-worker-num 1 --task-worker-num 1 || PID_zan=''
}
start_baseline() {  # start_baseline MODE PIN
  alloc_port
  start baseline "$PORT" "$2" "$ZBASE" "$1" --host 127.0.0.1 --port "$PORT"
}
start_hop() {  # start_hop PAIRS PIN: the floor of the hop (zan-hopfloor)
  alloc_port
  start hop "$PORT" "$2" "$ZHOP" --pairs "$1" --host 127.0.0.1 --port "$PORT"
}
start_strict() {  # start_strict PAIRS PIN: the hop floor plus the HTTP work a conforming server must do
  alloc_port
  start strict "$PORT" "$2" "$ZHOP" --pairs "$1" --strict --host 127.0.0.1 --port "$PORT"
}
http_ok() {  # one GET / must answer 200 with body hello
  local r=""
  exec 3<>/dev/tcp/127.0.0.1/"$1" || return 1
  printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&3
  read -r -t 0.5 -d '' r <&3
  exec 3<&-
  case $r in "HTTP/1."?" 200"*hello*) return 0;; esac
  log "bench: GET / on port $1 did not answer 200 hello: ${r%%$'\r'*}"; return 1
}

# ---- measurement ---------------------------------------------------------
tree_ticks() {  # utime+stime+cutime+cstime over ROOT and its descendants
  local p line t=0 f
  for p in "$1" $(descendants "$1"); do
    line=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    line=${line##*") "}
    read -r -a f <<<"$line"
    t=$((t + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$t"
}
to_us() {  # wrk latency "230.00us" / "1.13ms" / "1.2s" -> microseconds
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) { sub(/us$/, "", v); print v+0 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v*1000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v*1e6 } else print "nan" }'
}
jget() { sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p" "$1"; }
median() { tr ' ' '\n' | grep -v -e '^$' -e nan | sort -g | awk '{a[NR]=$1} END{
  if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

# child_cpu FILE: sets CHILD_CPU to the CPU seconds (user + system) of this
# shell's waited-for children so far: the second line of the `times`
# builtin, which must run in this shell (in a pipe or $(...) its counters
# start at zero), so it goes through FILE.
child_cpu() {
  times >"$1"
  CHILD_CPU=$(awk 'NR == 2 { split($0, a, /[ ms]+/); print a[1]*60 + a[2] + a[3]*60 + a[4] }' "$1")
}

# client_run KIND SERVER PORT OUT ARGS...: one client run; prints
# "rps p50_us p99_us requests errors client_cpu% behind". KIND is wrk or zb;
# behind is 1 when zan-bench's open loop (--rate) fell behind its schedule.
# client_cpu% is the client's CPU time over the run's length, 100 = one
# whole core: near 100 the client, not the server, sets the pace.
client_run() {
  local kind=$1 port=$3 out=$4 rps p50 p99 n e c0 c1 w0 w1 CHILD_CPU behind=0; shift 4
  child_cpu "$out.times"; c0=$CHILD_CPU; w0=$(date +%s.%N)
  if [ "$kind" = wrk ]; then
    timeout $((DUR + 30)) "${PIN_CLI[@]}" wrk -t1 --latency -d"${DUR}s" "$@" \
      "http://127.0.0.1:$port/" >"$out" 2>&1
    w1=$(date +%s.%N); child_cpu "$out.times"; c1=$CHILD_CPU
    rps=$(awk '/^Requests\/sec/{print $2}' "$out")
    p50=$(to_us "$(awk '$1=="50%"{print $2}' "$out")")
    p99=$(to_us "$(awk '$1=="99%"{print $2}' "$out")")
    n=$(awk '/ requests in /{print $1; exit}' "$out")
    e=$(awk '/Socket errors/{gsub(/,/,""); s+=$4+$6+$8+$10} /Non-2xx/{s+=$NF} END{print s+0}' "$out")
    # wrk prints a percentile of 0 when its histogram lost samples (seen
    # with pipelining): no data, not zero latency.
    [ "$p50" = 0 ] && p50=nan; [ "$p99" = 0 ] && p99=nan
  else
    timeout $((DUR + 30)) "${PIN_CLI[@]}" "$ZB" --port "$port" --duration "$DUR" --json "$@" \
      >"$out" 2>"$out.err"
    w1=$(date +%s.%N); child_cpu "$out.times"; c1=$CHILD_CPU
    rps=$(jget "$out" rps); p50=$(jget "$out" p50_us); p99=$(jget "$out" p99_us)
    n=$(jget "$out" requests); e=$(jget "$out" errors)
    [ "$(jget "$out" behind)" = true ] && behind=1
  fi
  echo "${rps:-0} ${p50:-nan} ${p99:-nan} ${n:-0} ${e:-0}" \
    "$(awk -v c="$c1" -v d="$c0" -v w="$w1" -v v="$w0" 'BEGIN{printf "%.0f", (w > v ? 100*(c-d)/(w-v) : 0)}')" \
    "$behind"
}

# scenario ID KIND SERVERS ARGS...: interleaved reps over the running
# SERVERS (e.g. "zan nginx baseline"); appends one row per server to ROWS.
# With zan-bench's --rate, the notes say the rate asked for and in how many
# runs the generator fell behind its schedule (such a run is invalid).
# With UPSTREAM set to a server's name (scenario i), its CPU per request
# in the same runs goes in the notes too.
scenario() {
  local id=$1 kind=$2 servers=$3 s pid port r res t0 t1 cpu rps p50 p99 n e cl bh rate="" a prev="" note
  local upid="" u0=0 u1=0
  local -A R P5 P9 C E D L BH U
  [ -n "${UPSTREAM:-}" ] && eval "upid=\${PID_$UPSTREAM:-}"
  shift 3
  for a in "$@"; do [ "$prev" = --rate ] && rate=$a; prev=$a; done
  log "== $id ($kind $*)"
  for s in $servers; do  # warm-up, not measured
    eval "pid=\${PID_$s:-}; port=\${PORT_$s:-}"; [ -n "$pid" ] || continue
    (DUR=$WARM; client_run "$kind" "$s" "$port" "$DIR/warm_${id}_$s" "$@" >/dev/null)
  done
  for r in $(seq "$REPS"); do
    for s in $servers; do
      eval "pid=\${PID_$s:-}; port=\${PORT_$s:-}"; [ -n "$pid" ] || continue
      [ -n "$upid" ] && u0=$(tree_ticks "$upid")
      t0=$(tree_ticks "$pid")
      res=$(client_run "$kind" "$s" "$port" "$DIR/run_${id}_${s}_$r" "$@")
      t1=$(tree_ticks "$pid")
      [ -n "$upid" ] && u1=$(tree_ticks "$upid")
      read -r rps p50 p99 n e cl bh <<<"$res"
      E[$s]=$(( ${E[$s]:-0} + e )); BH[$s]=$(( ${BH[$s]:-0} + bh ))
      if ! alive "$s"; then  # this run does not count
        log "bench: $s died during $id rep $r; the end of its output:"; tail -n 10 "$DIR/$s.out" >&2
        eval "PID_$s=''"; D[$s]=" (died)"; restart "$s"; continue
      fi
      cpu=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.2f", (n > 0 ? d/hz*1e6/n : 0)}')
      printf '  %-3s rep %d %-8s %10.0f req/s  p50 %8.1f us  p99 %9.1f us  cpu %7.2f us/req  client %3s%%  (%s req, %s err)%s\n' \
        "$id" "$r" "$s" "$rps" "$p50" "$p99" "$cpu" "$cl" "$n" "$e" "$([ "$bh" = 1 ] && echo ' BEHIND: invalid')" >&2
      R[$s]+=" $rps"; P5[$s]+=" $p50"; P9[$s]+=" $p99"; C[$s]+=" $cpu"; L[$s]+=" $cl"
      [ -n "$upid" ] && U[$s]+=" $(awk -v d=$((u1 - u0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.2f", (n > 0 ? d/hz*1e6/n : 0)}')"
    done
  done
  for s in $servers; do
    note=""
    [ -n "$rate" ] && note="open loop at $rate req/s; generator behind in ${BH[$s]:-0} of $REPS runs"
    [ -n "${U[$s]:-}" ] && note="${note:+$note; }upstream $(echo "${U[$s]}" | median) µs/req"
    # NAMElog (scenario l): the median over the reps of its CPU minus that
    # of NAME in the same rep, which saw the same drift of the machine.
    if [ "${s%log}" != "$s" ] && [ -n "${C[${s%log}]:-}" ] && [ -n "${C[$s]:-}" ]; then
      note=$(paste -d' ' <(echo ${C[$s]} | tr ' ' '\n') <(echo ${C[${s%log}]} | tr ' ' '\n') |
        awk 'NF == 2 { print $1 - $2 }' | median)
    fi
    if [ -z "${R[$s]:-}" ]; then
      printf '%s\t%s\tn/a\tn/a\tn/a\tn/a\t%s\tn/a\t%s\n' "$id" "$s" "${E[$s]:-n/a}${D[$s]:-}" "$note" >>"$ROWS"; continue
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$s" "$(echo "${R[$s]}" | median)" \
      "$(echo "${P5[$s]}" | median)" "$(echo "${P9[$s]}" | median)" \
      "$(echo "${C[$s]}" | median)" "${E[$s]}${D[$s]:-}" "$(echo "${L[$s]}" | median)" "$note" >>"$ROWS"
  done
}

# ---- memory: idle keep-alive connections ---------------------------------
tree_mem() {  # "RSS_kB PSS_kB PROCS" summed over ROOT and its descendants
  local p rss pss tr=0 tp=0 np=0
  for p in "$1" $(descendants "$1"); do
    rss=$(awk '/^VmRSS:/{print $2}' /proc/"$p"/status 2>/dev/null)
    pss=$(awk '/^Pss:/{print $2}' /proc/"$p"/smaps_rollup 2>/dev/null)
    tr=$((tr + ${rss:-0})); tp=$((tp + ${pss:-0})); np=$((np + 1))
  done
  echo "$tr $tp $np"
}
memory_one() {  # memory_one SERVER: IDLE_N idle connections, one GET each
  local s=$1 pid port before after cpid k i
  eval "pid=\${PID_$s:-}; port=\${PORT_$s:-}"
  [ -n "$pid" ] || { printf 'f-memory\t%s\t-\t-\t-\t-\tn/a\t-\tnot run\n' "$s" >>"$ROWS"; return; }
  sleep 0.5; before=$(tree_mem "$pid")
  "${PIN_CLI[@]}" "$ZB" --port "$port" --idle-connections "$IDLE_N" --idle-http --hold 120 \
    --max-time 150 >"$DIR/idle_$s.out" 2>"$DIR/idle_$s.err" &
  cpid=$!; STARTED+=("$cpid")
  for i in $(seq 600); do
    grep -q '^idle: .* open in' "$DIR/idle_$s.out" && break
    kill -0 "$cpid" 2>/dev/null || break; sleep 0.1
  done
  sleep 1; after=$(tree_mem "$pid")
  k=$(awk '/^idle: .* open in/{print $2; exit}' "$DIR/idle_$s.out")
  alive "$s" || log "bench: $s died holding idle connections"
  stop_tree "$cpid"
  local rb pb np ra pa na
  read -r rb pb np <<<"$before"; read -r ra pa na <<<"$after"
  log "  f   $s: ${k:-0}/$IDLE_N connections; RSS ${rb} -> ${ra} kB, PSS ${pb} -> ${pa} kB ($np -> $na processes)"
  awk -v s="$s" -v k="${k:-0}" -v n="$IDLE_N" -v rb="$rb" -v ra="$ra" -v pb="$pb" -v pa="$pa" -v np="$na" 'BEGIN{
    printf "f-memory\t%s\t-\t-\t-\t-\t%d\t-\t%d of %d idle conns open, %d processes: PSS %s B/conn (%d -> %d kB), RSS %s B/conn (%d -> %d kB)\n",
      s, n - k, k, n, np, (k > 0 ? sprintf("%.0f", (pa-pb)*1024/k) : "n/a"), pb, pa,
      (k > 0 ? sprintf("%.0f", (ra-rb)*1024/k) : "n/a"), rb, ra }' >>"$ROWS"
}

# ---- start-up and shutdown times (python3: exec -> ready, TERM -> gone) --
STARTUP_PY='
import os, select, signal, socket, subprocess, sys, time
reps, mode, port, cmd = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def tree(pid):
    out = [pid]
    for t in os.listdir("/proc/%d/task" % pid) if os.path.exists("/proc/%d" % pid) else []:
        try: kids = open("/proc/%d/task/%s/children" % (pid, t)).read().split()
        except OSError: kids = []
        for k in kids: out += tree(int(k))
    return out
def alive(pid):
    try: return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError: return False
def up():
    try: socket.create_connection(("127.0.0.1", port), 0.2).close(); return True
    except OSError: return False
for _ in range(reps):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pids = [p.pid]
    try:
        buf, line_t, dl = b"", None, t0 + 15
        while mode == "line" and time.perf_counter() < dl:
            if select.select([p.stdout], [], [], 0.2)[0]:
                c = os.read(p.stdout.fileno(), 65536)
                if not c: break
                buf += c
                if b"listening on" in buf: line_t = time.perf_counter(); break
        while not up() and time.perf_counter() < dl: time.sleep(0.0005)
        port_t = time.perf_counter()
        time.sleep(0.3)
        pids = tree(p.pid)
        t1 = time.perf_counter(); p.send_signal(signal.SIGTERM)
        while select.select([p.stdout], [], [], 0.01)[0] and os.read(p.stdout.fileno(), 65536): pass
        p.wait(15); exit_t = time.perf_counter()
        while any(alive(x) for x in pids) and time.perf_counter() < t1 + 15: time.sleep(0.0005)
        gone_t = time.perf_counter()
        print("%.2f %.2f %.2f %.2f" % (((line_t or port_t) - t0) * 1e3, (port_t - t0) * 1e3,
              (exit_t - t1) * 1e3, (gone_t - t1) * 1e3), flush=True)
    finally:
        for x in pids:
            try: os.kill(x, signal.SIGKILL) if alive(x) else None
            except OSError: pass
        try: p.wait(5)
        except Exception: pass
'
startup_one() {  # startup_one NAME MODE PORT CMD...
  local name=$1 mode=$2 port=$3 out; shift 3
  out=$(python3 -c "$STARTUP_PY" 5 "$mode" "$port" "$@" 2>"$DIR/startup_$name.err")
  [ -n "$out" ] || { log "bench: start-up test of $name failed"; printf 'g-startup\t%s\t-\t-\t-\t-\tfailed\t-\t\n' "$name" >>"$ROWS"; return; }
  log "  g   $name (ready ms, port ms, exit ms, tree gone ms): $(echo "$out" | tr '\n' ';')"
  printf 'g-startup\t%s\t-\t-\t-\t-\t0\t-\texec to ready %s ms, to port accepting %s ms; SIGTERM to exit %s ms, to tree gone %s ms (medians of 5)\n' \
    "$name" "$(echo "$out" | awk '{print $1}' | median)" \
    "$(echo "$out" | awk '{print $2}' | median)" "$(echo "$out" | awk '{print $3}' | median)" \
    "$(echo "$out" | awk '{print $4}' | median)" >>"$ROWS"
}

# ---- the scenarios -------------------------------------------------------
log "# zan bench $(date -u +%FT%TZ): $NCPU cpus, reps=$REPS dur=${DUR}s, tmp $DIR"
SERVERS="zan nginx baseline hop strict"
if [ $HAVE_WRK = 1 ] && { want a || want c; }; then
  start_httpd 1 1 yes; start_nginx 1 yes; start_baseline --http yes; start_hop 1 yes; start_strict 1 yes
  for s in $SERVERS; do eval "p=\${PID_$s:-}; q=\${PORT_$s:-}"; [ -n "$p" ] && { http_ok "$q" || stop "$s"; }; done
  want a && scenario a-http-1+1-pinned-c50 wrk "$SERVERS" -c50
  want c && scenario c-http-pipe16-1+1-pinned wrk "$SERVERS" -c50 -s "$ROOT/tools/bench-pipeline.lua"
  stop zan; stop nginx; stop baseline; stop hop; stop strict
fi
if [ $HAVE_WRK = 1 ] && want l; then  # a, with and without access logs: what a log line costs
  start_httpd 1 1 yes; start_httpd 1 1 yes zanlog --access-log "$DIR/zan_access.log"
  start_nginx 1 yes; start_nginx 1 yes nginxlog "$DIR/nginx_access.log"
  for s in zan zanlog nginx nginxlog; do eval "p=\${PID_$s:-}; q=\${PORT_$s:-}"; [ -n "$p" ] && { http_ok "$q" || stop "$s"; }; done
  scenario l-http-access-log-1+1-pinned-c50 wrk "zan zanlog nginx nginxlog" -c50
  log "  l   access log lines: zan $(wc -l <"$DIR/zan_access.log" 2>/dev/null), nginx $(wc -l <"$DIR/nginx_access.log" 2>/dev/null)"
  stop zan; stop zanlog; stop nginx; stop nginxlog
fi
if [ $HAVE_WRK = 1 ] && want b; then
  start_httpd 2 2 no; start_nginx 2 no; start_baseline --http no; start_hop 2 no; start_strict 2 no
  for s in $SERVERS; do eval "p=\${PID_$s:-}; q=\${PORT_$s:-}"; [ -n "$p" ] && { http_ok "$q" || stop "$s"; }; done
  scenario b-http-2+2-c50 wrk "$SERVERS" -c50
  scenario b-http-2+2-c1000 wrk "$SERVERS" -c1000
  stop zan; stop nginx; stop baseline; stop hop; stop strict
fi
if want d; then
  start_echod yes
  start_baseline --echo-lines yes
  scenario d-echo-64B-1+1-pinned zb "zan baseline" --connections 50 --size 64
  scenario d-echo-4KiB-1+1-pinned zb "zan baseline" --connections 50 --size 4096
  stop zan; stop baseline
fi
if want e; then
  start_echod no
  scenario e-task-64B-1W+1T zb "zan" --connections 50 --size 64 --payload task
  stop zan
fi
if want h; then  # open loop: latency and CPU at fixed rates, not at saturation
  start_httpd 1 1 yes; start_nginx 1 yes
  for s in zan nginx; do eval "p=\${PID_$s:-}; q=\${PORT_$s:-}"; [ -n "$p" ] && { http_ok "$q" || stop "$s"; }; done
  scenario h-http-10k-1+1-pinned zb "zan nginx" --http --rate 10000 --connections 50
  scenario h-http-30k-1+1-pinned zb "zan nginx" --http --rate 30000 --connections 50
  stop zan; stop nginx
fi
if want i; then  # reverse proxy: 1 + 1 pinned, in front of one upstream on the client's cpu
  if [ $HAVE_NGINX = 1 ]; then start_nginx 1 cli nginxup
  else start_baseline --http cli; PID_nginxup=${PID_baseline:-}; PORT_nginxup=${PORT_baseline:-}; fi
  if [ -n "${PID_nginxup:-}" ] && http_ok "$PORT_nginxup"; then
    start_proxy "127.0.0.1:$PORT_nginxup"; start_nginx 1 yes nginx "" "127.0.0.1:$PORT_nginxup"
    for s in zan nginx; do eval "p=\${PID_$s:-}; q=\${PORT_$s:-}"; [ -n "$p" ] && { http_ok "$q" || stop "$s"; }; done
    UPSTREAM=nginxup
    [ $HAVE_WRK = 1 ] && scenario i-proxy-1+1-pinned-c50 wrk "zan nginx" -c50
    scenario i-proxy-2k-1+1-pinned zb "zan nginx" --http --rate 2000 --connections 50
    scenario i-proxy-6k-1+1-pinned zb "zan nginx" --http --rate 6000 --connections 50
    UPSTREAM=""
    stop zan; stop nginx
  else
    log "bench: the upstream of i did not start: i is skipped"
  fi
  stop nginxup; stop baseline
fi
if want f; then
  log "== f-memory ($IDLE_N idle keep-alive connections, one GET / each)"
  start_httpd 1 1 no; memory_one zan; stop zan
  start_nginx 1 no; memory_one nginx; stop nginx
  start_baseline --http no; memory_one baseline; stop baseline
fi
if want g && command -v python3 >/dev/null; then
  log "== g-startup (5 runs each, medians)"
  if [ -n "$ZHTTPD_DESC" ]; then
    alloc_port; zan_httpd_cmd "$PORT" 1 1; startup_one zan-httpd line "$PORT" "${CMD[@]}"
  fi
  alloc_port; startup_one zan-echod line "$PORT" "$ZECHOD" --host 127.0.0.1 --port "$PORT" \
    --worker-num 1 --net-worker-num 1 --task-worker-num 1
  if [ $HAVE_NGINX = 1 ]; then
    alloc_port; nginx_conf 1 "$PORT"
    startup_one nginx port "$PORT" "$NGINX" -p "$DIR/" -e "$DIR/nginx_error.log" -c "$DIR/nginx.conf"
  fi
  alloc_port; startup_one baseline line "$PORT" "$ZBASE" --http --host 127.0.0.1 --port "$PORT"
fi

# ---- the table -----------------------------------------------------------
# One markdown table: a stamp line (commit, date, kernel, CPUs, load), the
# rows of every scenario run (f and g put their figures in the notes), and
# a legend. tools/BENCH.md's "Results" section is this output, pasted.
{
  echo "zan $COMMIT, $DATE_START, $(uname -sr), $NCPU CPUs, load average $LOAD_START at the start" \
    "($(cut -d' ' -f1-3 /proc/loadavg) at the end); \`BENCH_REPS=$REPS BENCH_DUR=$DUR\`, medians;" \
    "$([ $HAVE_NGINX = 1 ] && "$NGINX" -v 2>&1 | sed 's/.*: //'), $([ $HAVE_WRK = 1 ] && wrk -v 2>&1 | head -n1 | awk '{print $1, $2}');" \
    "zan HTTP server: ${ZHTTPD_DESC#"$ROOT"/};$(want i && echo " zan proxy: ${ZPROXY_DESC#"$ROOT"/};")" \
    "$(( $(date +%s) - T_START )) s."
  echo
  echo "| scenario | server | req/s | p50 µs | p99 µs | CPU µs/req | req/s ÷ nginx | CPU ÷ nginx | CPU ÷ baseline | CPU ÷ hop | client CPU % | errors | notes |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  awk -F'\t' '
    { id[NR]=$1; sv[NR]=$2; rps[NR]=$3; p50[NR]=$4; p99[NR]=$5; cpu[NR]=$6; err[NR]=$7; cl[NR]=$8; nt[NR]=$9
      if ($3 != "n/a" && $3 != "-") { R[$1 SUBSEP $2]=$3; C[$1 SUBSEP $2]=$6 }
      if ($2 ~ /log$/) PD[$1 SUBSEP $2]=$9 }
    # l: what the log adds per request over the same server without it:
    # the difference of the medians, and the median of the paired
    # differences (the note the scenario left); zan'"'"'s against nginx'"'"'s.
    function added(s, v, paired,   b, a, n) {
      b = substr(v, 1, length(v) - 3)
      if (!((s SUBSEP b) in C) || !((s SUBSEP v) in C)) return ""
      a = C[s SUBSEP v] - C[s SUBSEP b]
      n = sprintf("access log adds %.2f µs/req to %s (paired runs: %.2f)", a, b, paired)
      if (v == "zanlog" && (s SUBSEP "nginxlog") in C && (s SUBSEP "nginx") in C)
        n = n sprintf("; nginx %.2f (paired %.2f)", C[s SUBSEP "nginxlog"] - C[s SUBSEP "nginx"], PD[s SUBSEP "nginxlog"])
      return n }
    function ratio(a, b) { return (a == "" || b == "" || a == "n/a" || b+0 == 0) ? "–" : sprintf("%.2f", a/b) }
    function num(v, f) { return v == "n/a" ? "n/a" : v == "-" ? "–" : sprintf(f, v) }
    END { for (i = 1; i <= NR; i++) {
      s = id[i]; na = (rps[i] == "n/a" || rps[i] == "-")
      if (sv[i] ~ /log$/ && !na) nt[i] = added(s, sv[i], nt[i])
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, sv[i],
        num(rps[i], "%.0f"), num(p50[i], "%.0f"), num(p99[i], "%.0f"), num(cpu[i], "%.2f"),
        (sv[i] == "nginx" || na) ? "–" : ratio(rps[i], R[s SUBSEP "nginx"]),
        (sv[i] == "nginx" || na) ? "–" : ratio(cpu[i], C[s SUBSEP "nginx"]),
        (sv[i] == "baseline" || na) ? "–" : ratio(cpu[i], C[s SUBSEP "baseline"]),
        (sv[i] == "hop" || na) ? "–" : ratio(cpu[i], C[s SUBSEP "hop"]),
        num(cl[i], "%.0f"), err[i], nt[i] } }' "$ROWS"
  echo
  echo "CPU µs/req: utime+stime of the server's process tree over the run ÷ requests. Pinned: servers on cpu 1,"
  echo "client on cpu 0 (i: the upstream too). h, i at fixed rates: zan-bench --rate, latency from each request's"
  echo "due time. – : not measured or not applicable."
} >"$RESULTS"
echo
cat "$RESULTS"
echo "(written to $RESULTS)"
