// Metrics::to_json(): the figures as one JSON document, the output of
// `zanctl stats`. Its keys are stable (zanctl(1) lists them).
#include <stdarg.h>
#include <stdio.h>

#include "zan/metrics.h"

namespace zan {

namespace {

void append(std::string* out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void append(std::string* out, const char* fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        out->append(buf, static_cast<size_t>(n) < sizeof(buf) ? static_cast<size_t>(n) : sizeof(buf) - 1);
}

long long ll(int64_t v) { return static_cast<long long>(v); }

// The members every process object and the totals share.
void counters(std::string* o, const ProcessMetrics& p)
{
    append(o, "\"cpu_seconds\":%.3f,\"rss_bytes\":%lld,", p.cpu_seconds, ll(p.rss_bytes));
    append(o,
           "\"connections\":{\"accepted\":%lld,\"closed\":%lld,\"open\":%lld,\"reading\":%lld,"
           "\"writing\":%lld,\"waiting\":%lld},",
           ll(p.accepted), ll(p.closed), ll(p.open()), ll(p.reading), ll(p.writing),
           ll(p.waiting));
    append(o, "\"received\":%lld,\"requests\":%lld,\"bytes_in\":%lld,\"bytes_out\":%lld,",
           ll(p.received), ll(p.requests), ll(p.bytes_in), ll(p.bytes_out));
    append(o, "\"responses\":{\"1xx\":%lld,\"2xx\":%lld,\"3xx\":%lld,\"4xx\":%lld,\"5xx\":%lld},",
           ll(p.responses[0]), ll(p.responses[1]), ll(p.responses[2]), ll(p.responses[3]),
           ll(p.responses[4]));
    o->append("\"refused\":{");
    for (int i = 0; i < kRefusedStatuses; i++)
        append(o, "%s\"%d\":%lld", i ? "," : "", kRefusedStatus[i], ll(p.refused[i]));
    append(o, "},\"tasks\":{\"queued\":%lld,\"running\":%lld,\"done\":%lld,\"failed\":%lld},",
           ll(p.tasks_queued), ll(p.tasks_running), ll(p.tasks_done), ll(p.tasks_failed));
    append(o, "\"respawns\":{\"total\":%lld,\"exit\":%lld,\"signal\":%lld,\"max_request\":%lld},",
           ll(p.respawns), ll(p.respawn_exit), ll(p.respawn_signal), ll(p.respawn_max_request));
    o->append("\"duration\":{\"le_seconds\":[");
    for (int b = 0; b < kDurationBuckets; b++)
        append(o, "%s%g", b ? "," : "", kDurationBoundsUs[b] / 1e6);
    o->append("],\"counts\":[");
    for (int b = 0; b <= kDurationBuckets; b++)
        append(o, "%s%lld", b ? "," : "", ll(p.duration[b]));
    append(o, "],\"count\":%lld,\"sum_seconds\":%.6f}", ll(p.duration_count()),
           p.duration_sum_us / 1e6);
}

}  // namespace

std::string Metrics::to_json() const
{
    std::string o;
    o.reserve(1024 + procs.size() * 1024);
    append(&o, "{\"version\":\"%s\",\"start_time\":%lld,\"last_reload\":%lld,\"reloads\":%lld,",
           version.c_str(), ll(start_time), ll(last_reload), ll(reloads));
    append(&o, "\"task_queue\":{\"depth\":%lld,\"bytes\":%lld},", ll(task_queue_depth),
           ll(task_queue_bytes));
    o.append("\"totals\":{");
    counters(&o, total());
    o.append("},\"processes\":[");
    for (size_t i = 0; i < procs.size(); i++) {
        const ProcessMetrics& p = procs[i];
        append(&o, "%s{\"role\":\"%s\",\"id\":%d,\"pid\":%d,\"state\":\"%c\",\"start_time\":%lld,",
               i ? "," : "", p.role.c_str(), p.id, static_cast<int>(p.pid), p.state,
               ll(p.start_time));
        counters(&o, p);
        o.append("}");
    }
    o.append("]}\n");
    return o;
}

}  // namespace zan
