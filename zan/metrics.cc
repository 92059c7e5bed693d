#include "zan/metrics.h"

#include <stdarg.h>
#include <stdio.h>

namespace zan {

namespace {

const char* const kClasses[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

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

// Writes the text format, one family at a time.
class Exposition {
public:
    explicit Exposition(std::string* out) : out_(out) {}

    void family(const char* name, const char* type, const char* help)
    {
        append(out_, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    }
    // name{role="r",id="i"<extra>} value
    void sample(const char* name, const ProcessMetrics& p, const char* extra, long long v)
    {
        append(out_, "%s{role=\"%s\",id=\"%d\"%s} %lld\n", name, p.role.c_str(), p.id, extra, v);
    }
    void sample(const char* name, const ProcessMetrics& p, const char* extra, double v)
    {
        append(out_, "%s{role=\"%s\",id=\"%d\"%s} %.6f\n", name, p.role.c_str(), p.id, extra, v);
    }

private:
    std::string* out_;
};

bool is(const ProcessMetrics& p, const char* role) { return p.role == role; }
bool is_child(const ProcessMetrics& p) { return p.role != "master"; }

void process_families(Exposition& e, const std::vector<ProcessMetrics>& procs)
{
    e.family("zan_process_up", "gauge", "1 while a process of this role and id runs.");
    for (const ProcessMetrics& p : procs)
        e.sample("zan_process_up", p, "", static_cast<long long>(p.pid > 0 ? 1 : 0));
    e.family("zan_process_start_time_seconds", "gauge",
             "Start time of the current process since the Unix epoch.");
    for (const ProcessMetrics& p : procs)
        e.sample("zan_process_start_time_seconds", p, "", ll(p.start_time));
    e.family("zan_process_cpu_seconds_total", "counter",
             "User and system CPU time of the current process.");
    for (const ProcessMetrics& p : procs)
        e.sample("zan_process_cpu_seconds_total", p, "", p.cpu_seconds);
    e.family("zan_process_resident_memory_bytes", "gauge", "Resident set size of the current process.");
    for (const ProcessMetrics& p : procs)
        e.sample("zan_process_resident_memory_bytes", p, "", ll(p.rss_bytes));
    e.family("zan_respawns_total", "counter", "Processes forked again after an exit, by cause.");
    for (const ProcessMetrics& p : procs) {
        if (!is_child(p))
            continue;
        e.sample("zan_respawns_total", p, ",cause=\"exit\"", ll(p.respawn_exit));
        e.sample("zan_respawns_total", p, ",cause=\"signal\"", ll(p.respawn_signal));
        e.sample("zan_respawns_total", p, ",cause=\"max_request\"", ll(p.respawn_max_request));
    }
}

void connection_families(Exposition& e, const std::vector<ProcessMetrics>& procs)
{
    e.family("zan_connections_accepted_total", "counter", "Client connections accepted.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "net"))
            e.sample("zan_connections_accepted_total", p, "", ll(p.accepted));
    e.family("zan_connections_closed_total", "counter", "Client connections closed.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "net"))
            e.sample("zan_connections_closed_total", p, "", ll(p.closed));
    e.family("zan_connections_open", "gauge", "Client connections open.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "net"))
            e.sample("zan_connections_open", p, "", ll(p.open()));
    e.family("zan_connections_state", "gauge",
             "Open client connections reading a request, busy with one (writing), or idle "
             "(waiting), sampled every 250 ms.");
    for (const ProcessMetrics& p : procs) {
        if (!is(p, "net"))
            continue;
        e.sample("zan_connections_state", p, ",state=\"reading\"", ll(p.reading));
        e.sample("zan_connections_state", p, ",state=\"writing\"", ll(p.writing));
        e.sample("zan_connections_state", p, ",state=\"waiting\"", ll(p.waiting));
    }
    e.family("zan_received_bytes_total", "counter", "Bytes read from clients.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "net"))
            e.sample("zan_received_bytes_total", p, "", ll(p.bytes_in));
    e.family("zan_sent_bytes_total", "counter", "Bytes written to clients.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "net"))
            e.sample("zan_sent_bytes_total", p, "", ll(p.bytes_out));
}

void request_families(Exposition& e, const std::vector<ProcessMetrics>& procs)
{
    e.family("zan_requests_received_total", "counter",
             "Messages a NetWorker received from clients and handed to Workers.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "net"))
            e.sample("zan_requests_received_total", p, "", ll(p.received));
    e.family("zan_requests_total", "counter", "Messages a Worker handled.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "worker"))
            e.sample("zan_requests_total", p, "", ll(p.requests));
    e.family("zan_http_responses_total", "counter",
             "HTTP replies by status class: a Worker's, or a NetWorker's own refusals.");
    char extra[32];
    for (const ProcessMetrics& p : procs) {
        if (!is(p, "net") && !is(p, "worker"))
            continue;
        for (int c = 0; c < 5; c++) {
            snprintf(extra, sizeof(extra), ",class=\"%s\"", kClasses[c]);
            e.sample("zan_http_responses_total", p, extra, ll(p.responses[c]));
        }
    }
    e.family("zan_http_refused_total", "counter",
             "HTTP requests a NetWorker refused itself, by status code.");
    for (const ProcessMetrics& p : procs) {
        if (!is(p, "net"))
            continue;
        for (int i = 0; i < kRefusedStatuses; i++) {
            snprintf(extra, sizeof(extra), ",code=\"%d\"", kRefusedStatus[i]);
            e.sample("zan_http_refused_total", p, extra, ll(p.refused[i]));
        }
    }
}

void duration_family(Exposition& e, const std::vector<ProcessMetrics>& procs)
{
    const char* name = "zan_request_duration_seconds";
    e.family(name, "histogram",
             "Time from a request's receipt by a NetWorker to its reply written.");
    char extra[48];
    for (const ProcessMetrics& p : procs) {
        if (!is(p, "net"))
            continue;
        int64_t cum = 0;
        for (int b = 0; b <= kDurationBuckets; b++) {
            cum += p.duration[b];
            if (b < kDurationBuckets)
                snprintf(extra, sizeof(extra), ",le=\"%g\"", kDurationBoundsUs[b] / 1e6);
            else
                snprintf(extra, sizeof(extra), ",le=\"+Inf\"");
            e.sample("zan_request_duration_seconds_bucket", p, extra, ll(cum));
        }
        e.sample("zan_request_duration_seconds_sum", p, "", p.duration_sum_us / 1e6);
        e.sample("zan_request_duration_seconds_count", p, "", ll(cum));
    }
}

void task_families(Exposition& e, const std::vector<ProcessMetrics>& procs)
{
    e.family("zan_tasks_queued_total", "counter", "Tasks a Worker submitted.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "worker"))
            e.sample("zan_tasks_queued_total", p, "", ll(p.tasks_queued));
    e.family("zan_tasks_running", "gauge", "1 while a TaskWorker runs a task.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "task"))
            e.sample("zan_tasks_running", p, "", ll(p.tasks_running));
    e.family("zan_tasks_done_total", "counter", "Tasks a TaskWorker ran to their end.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "task"))
            e.sample("zan_tasks_done_total", p, "", ll(p.tasks_done));
    e.family("zan_tasks_failed_total", "counter", "Tasks whose TaskWorker ended while running them.");
    for (const ProcessMetrics& p : procs)
        if (is(p, "task"))
            e.sample("zan_tasks_failed_total", p, "", ll(p.tasks_failed));
}

}  // namespace

int64_t ProcessMetrics::duration_count() const
{
    int64_t n = 0;
    for (int64_t v : duration)
        n += v;
    return n;
}

void ProcessMetrics::add(const ProcessMetrics& o)
{
    cpu_seconds += o.cpu_seconds;
    rss_bytes += o.rss_bytes;
    accepted += o.accepted;
    closed += o.closed;
    reading += o.reading;
    writing += o.writing;
    waiting += o.waiting;
    received += o.received;
    requests += o.requests;
    bytes_in += o.bytes_in;
    bytes_out += o.bytes_out;
    for (int i = 0; i < 5; i++)
        responses[i] += o.responses[i];
    for (int i = 0; i < kRefusedStatuses; i++)
        refused[i] += o.refused[i];
    tasks_queued += o.tasks_queued;
    tasks_running += o.tasks_running;
    tasks_done += o.tasks_done;
    tasks_failed += o.tasks_failed;
    respawns += o.respawns;
    respawn_exit += o.respawn_exit;
    respawn_signal += o.respawn_signal;
    respawn_max_request += o.respawn_max_request;
    for (int i = 0; i <= kDurationBuckets; i++)
        duration[i] += o.duration[i];
    duration_sum_us += o.duration_sum_us;
}

ProcessMetrics Metrics::total() const
{
    ProcessMetrics t;
    t.role = "total";
    for (const ProcessMetrics& p : procs)
        t.add(p);
    return t;
}

std::string Metrics::to_prometheus() const
{
    std::string out;
    out.reserve(4096 + procs.size() * 3072);
    Exposition e(&out);
    e.family("zan_build_info", "gauge", "The version of zan; always 1.");
    append(&out, "zan_build_info{version=\"%s\"} 1\n", version.c_str());
    e.family("zan_start_time_seconds", "gauge", "Start time of the server since the Unix epoch.");
    append(&out, "zan_start_time_seconds %lld\n", ll(start_time));
    e.family("zan_reloads_total", "counter", "Reloads of Workers and TaskWorkers (SIGUSR1, SIGUSR2).");
    append(&out, "zan_reloads_total %lld\n", ll(reloads));
    e.family("zan_last_reload_time_seconds", "gauge", "Time of the last reload, 0 if none.");
    append(&out, "zan_last_reload_time_seconds %lld\n", ll(last_reload));
    if (task_queue_depth >= 0) {
        e.family("zan_task_queue_depth", "gauge", "Tasks waiting in the task queue.");
        append(&out, "zan_task_queue_depth %lld\n", ll(task_queue_depth));
        e.family("zan_task_queue_bytes", "gauge", "Bytes of the tasks waiting in the task queue.");
        append(&out, "zan_task_queue_bytes %lld\n", ll(task_queue_bytes));
    }
    process_families(e, procs);
    connection_families(e, procs);
    request_families(e, procs);
    duration_family(e, procs);
    task_families(e, procs);
    return out;
}

}  // namespace zan
