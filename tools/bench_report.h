// What zan-bench prints on stdout: one text block or one JSON line per run.
// tools/bench.sh reads the JSON keys and the idle "open in" line, and
// man/zan-bench.1 describes the output, so the formats are an interface:
// change them only together with those.
#ifndef ZAN_TOOLS_BENCH_REPORT_H
#define ZAN_TOOLS_BENCH_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "tools/bench_histogram.h"
#include "tools/bench_http.h"
#include "tools/bench_options.h"

namespace zan_bench {

// The counters of one run.
struct Totals {
    long long issued = 0, completed = 0, lost = 0, errors = 0, reconnects = 0;
    long long bytes_out = 0, bytes_in = 0, peer_closed = 0;
};

// What an open loop (--rate) run adds: the requests that fell due, how late
// the generator sent what it could send (schedule lag), and whether that
// lag made the run invalid. All zero for a closed loop.
struct OpenLoop {
    long long due;
    double lag_p99_us, lag_max_us;
    bool behind;
};

// The result of a load run of secs seconds.
inline void print_report(const Options& o, const Totals& t, const Histogram& h, double secs,
                         const OpenLoop& ol)
{
    double rps = secs > 0 ? t.completed / secs : 0;
    const char* framing = o.http ? "http" : o.length_framing ? "length" : "line";
    const char* payload = o.http ? "get" : o.task ? "task" : "echo";
    int size = o.http ? static_cast<int>(http_request(o).size()) : o.size;
    Latency l = latency_us(h);
    if (o.json) {
        printf("{\"host\":\"%s\",\"port\":%d,\"connections\":%d,\"size\":%d,\"framing\":\"%s\","
               "\"pipeline\":%d,\"payload\":\"%s\",\"duration_s\":%.3f,\"requests\":%lld,"
               "\"errors\":%lld,\"lost\":%lld,\"reconnects\":%lld,\"rps\":%.1f,"
               "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
               "\"bytes_sent\":%lld,\"bytes_received\":%lld,\"rate\":%.1f,\"due\":%lld,"
               "\"sent\":%lld,\"lag_p99_us\":%.1f,\"lag_max_us\":%.1f,\"behind\":%s}\n",
               o.host.c_str(), o.port, o.connections, size, framing, o.pipeline, payload, secs,
               t.completed, t.errors, t.lost, t.reconnects, rps, l.p50_us, l.p90_us, l.p99_us,
               l.max_us, t.bytes_out, t.bytes_in, o.rate, ol.due, t.issued, ol.lag_p99_us,
               ol.lag_max_us, ol.behind ? "true" : "false");
        return;
    }
    printf("zan-bench %s:%d: %d connections, %s framing, %d B requests, pipeline %d, %s\n",
           o.host.c_str(), o.port, o.connections, framing, size, o.pipeline, payload);
    printf("  %lld requests in %.2f s, %lld errors, %lld lost in flight, %lld reconnects\n",
           t.completed, secs, t.errors, t.lost, t.reconnects);
    printf("  %.1f requests/s, %.2f MB/s out, %.2f MB/s in\n", rps,
           secs > 0 ? t.bytes_out / secs / 1e6 : 0.0, secs > 0 ? t.bytes_in / secs / 1e6 : 0.0);
    if (o.rate > 0)
        printf("  open loop: %.1f requests/s asked, %lld due, %lld sent; latency from when due\n",
               o.rate, ol.due, t.issued);
    printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", l.p50_us, l.p90_us,
           l.p99_us, l.max_us);
    if (o.rate > 0)
        printf("  schedule lag us: p99 %.1f  max %.1f  (limit %.1f at p99)%s\n", ol.lag_p99_us,
               ol.lag_max_us, o.max_lag_ms * 1e3,
               ol.behind ? "\n  INVALID: the generator fell behind its schedule" : "");
}

// Idle mode, once every connection is set up or given up. Flushed at once:
// tools/bench.sh waits for this line before it measures the server.
inline void print_idle_ready(size_t ready, double setup_ms, size_t given_up)
{
    printf("idle: %zu connections open in %.0f ms, %zu given up\n", ready, setup_ms, given_up);
    fflush(stdout);
}

// Idle mode, at the end; setup_ms is -1 when the set-up never finished.
inline void print_idle_report(const Options& o, const Totals& t, size_t open_now, double setup_ms)
{
    if (o.json)
        printf("{\"idle_connections\":%d,\"open_at_end\":%zu,\"errors\":%lld,"
               "\"closed_by_server\":%lld,\"setup_ms\":%.1f}\n",
               o.idle, open_now, t.errors, t.peer_closed, setup_ms);
    else
        printf("idle: %d wanted, %zu open at the end, %lld errors, %lld closed by the server, "
               "setup %.1f ms\n",
               o.idle, open_now, t.errors, t.peer_closed, setup_ms);
}

}  // namespace zan_bench

#endif
