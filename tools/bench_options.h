// zan-bench's command line. Numbers go through strtod, not the integer-only
// parse_number() of server_options.h, because zan-bench has always taken
// "--duration 0.5" and "--requests 1e6"; an integer option keeps the whole
// part of its value. Every mistake exits 2 with the usage text.
#ifndef ZAN_TOOLS_BENCH_OPTIONS_H
#define ZAN_TOOLS_BENCH_OPTIONS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

namespace zan_bench {

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    int connections = 10;
    double duration = 0;  // seconds; 0 with requests == 0 means 10 s
    long long requests = 0;
    int size = 64;
    bool length_framing = false;
    int pipeline = 1;
    bool task = false;
    bool json = false;
    bool verbose = false;  // up to 1000 error messages instead of 5
    int idle = 0;
    double hold = 10;
    bool idle_http = false;
    int connect_timeout_ms = 3000;
    int reply_timeout_ms = 5000;
    double max_time = 120;
    bool http = false;        // HTTP/1.1 GET requests instead of echo lines
    std::string path = "/";   // the target of those requests
    double rate = 0;          // requests per second in all; 0: closed loop
    double max_lag_ms = 1;    // open loop: the largest schedule lag (p99) of a valid run
};

[[noreturn]] inline void usage()
{
    fprintf(stderr,
            "usage: zan-bench --port P [--host H] [--connections C] [--duration S | --requests N]\n"
            "                 [--size BYTES] [--framing line|length] [--pipeline D]\n"
            "                 [--payload echo|task] [--connect-timeout MS] [--reply-timeout MS]\n"
            "                 [--max-time S] [--json] [--verbose]\n"
            "                 [--http [--path P]] [--rate R [--max-lag MS]]\n"
            "       zan-bench --port P --idle-connections N [--hold S] [--idle-http] [--json]\n");
    exit(2);
}

// The whole of s as a number in [lo, hi]; NaN is never in range.
inline bool parse_num(const char* s, double lo, double hi, double* out)
{
    char* end = nullptr;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

// Applies option a with value v; false when a takes no value or v is not
// one it accepts.
inline bool set_option(Options* o, const std::string& a, const char* v)
{
    double d = 0;
    auto num = [&](double lo, double hi) { return parse_num(v, lo, hi, &d); };
    if (a == "--host")
        o->host = v;
    else if (a == "--framing" && (!strcmp(v, "line") || !strcmp(v, "length")))
        o->length_framing = v[1] == 'e';
    else if (a == "--payload" && (!strcmp(v, "echo") || !strcmp(v, "task")))
        o->task = v[0] == 't';
    else if (a == "--port" && num(1, 65535))
        o->port = static_cast<int>(d);
    else if (a == "--connections" && num(1, 100000))
        o->connections = static_cast<int>(d);
    else if (a == "--duration" && num(0.001, 86400))
        o->duration = d;
    else if (a == "--requests" && num(1, 1e15))
        o->requests = static_cast<long long>(d);
    else if (a == "--size" && num(1, 16 << 20))
        o->size = static_cast<int>(d);
    else if (a == "--pipeline" && num(1, 4096))
        o->pipeline = static_cast<int>(d);
    else if (a == "--connect-timeout" && num(1, 600000))
        o->connect_timeout_ms = static_cast<int>(d);
    else if (a == "--reply-timeout" && num(1, 600000))
        o->reply_timeout_ms = static_cast<int>(d);
    else if (a == "--max-time" && num(0.001, 86400))
        o->max_time = d;
    else if (a == "--idle-connections" && num(1, 1000000))
        o->idle = static_cast<int>(d);
    else if (a == "--hold" && num(0, 86400))
        o->hold = d;
    else if (a == "--path" && v[0] == '/' && !strpbrk(v, " \r\n"))
        o->path = v;
    else if (a == "--rate" && num(0.001, 1e8))
        o->rate = d;
    else if (a == "--max-lag" && num(0.001, 600000))
        o->max_lag_ms = d;
    else
        return false;
    return true;
}

// The checks that need all options: a port, a request size that holds the
// framing and the "task " prefix, HTTP without either, --rate only for a
// load run, and a default run time of 10 s.
inline void finish_options(Options* o)
{
    if (o->port == 0)
        usage();
    int min_size = o->length_framing ? 5 : o->task ? 7 : 2;
    if (o->size < min_size) {
        fprintf(stderr, "zan-bench: --size must be at least %d for this framing and payload\n",
                min_size);
        exit(2);
    }
    if (o->task && o->length_framing) {
        fprintf(stderr, "zan-bench: --payload task needs line framing\n");
        exit(2);
    }
    if (o->duration > 0 && o->requests > 0) {
        fprintf(stderr, "zan-bench: --duration and --requests are alternatives: give one\n");
        exit(2);
    }
    if (o->http && (o->task || o->length_framing)) {
        fprintf(stderr, "zan-bench: --http sends GET requests: no --payload task or length framing\n");
        exit(2);
    }
    if (o->idle && o->rate > 0) {
        fprintf(stderr, "zan-bench: --rate is for a load run, not --idle-connections\n");
        exit(2);
    }
    if (o->duration == 0 && o->requests == 0)
        o->duration = 10;
}

inline Options parse_args(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--json") { o.json = true; continue; }
        if (a == "--idle-http") { o.idle_http = true; continue; }
        if (a == "--verbose") { o.verbose = true; continue; }
        if (a == "--http") { o.http = true; continue; }
        if (a == "-h" || a == "--help" || i + 1 >= argc)
            usage();
        const char* v = argv[++i];
        if (!set_option(&o, a, v)) {
            fprintf(stderr, "zan-bench: bad option or value: %s %s\n", a.c_str(), v);
            usage();
        }
    }
    finish_options(&o);
    return o;
}

}  // namespace zan_bench

#endif
