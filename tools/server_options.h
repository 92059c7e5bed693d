// The command-line options zan-httpd and zan-echod share, parsed strictly:
// a number must be all decimal digits (a sign allowed) and within range,
// so that "--port abc" is an error instead of port 0.
#ifndef ZAN_TOOLS_SERVER_OPTIONS_H
#define ZAN_TOOLS_SERVER_OPTIONS_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <optional>
#include <string>

#include "zan/log.h"
#include "zan/server_config.h"

namespace zan_tools {

// The whole of v as a decimal number in [lo, hi]: digits, after a '-'
// only when lo is negative; one trailing newline is allowed (a line read
// from a file). No blanks, no '+', nothing else.
inline bool parse_number(std::string v, long lo, long hi, long* out)
{
    if (!v.empty() && v.back() == '\n')
        v.pop_back();
    size_t first = (lo < 0 && !v.empty() && v[0] == '-') ? 1 : 0;
    if (v.size() <= first || v[first] < '0' || v[first] > '9')
        return false;
    errno = 0;
    char* end = nullptr;
    long n = strtol(v.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

enum class Option { no, taken, bad_value };

// Applies "name value" when name is one of the options every server tool
// takes: --host, --port, --worker-num, --net-worker-num, --max-request,
// --send-timeout, --hop-yield, --net-worker-slice, --pid-file, --log-file, --log-level,
// --upgrade-timeout.
inline Option server_option(const std::string& name, const std::string& v, std::string* host,
                            int* port, zan::ServerConfig* cfg)
{
    long n = 0;
    auto number = [&](long lo, long hi) { return parse_number(v, lo, hi, &n); };
    if (name == "--host") {
        if (v.empty())
            return Option::bad_value;
        *host = v;
    } else if (name == "--port") {
        if (!number(0, 65535))
            return Option::bad_value;
        *port = static_cast<int>(n);
    } else if (name == "--worker-num") {  // 0: one per CPU; ServerConfig checks the range
        if (!number(0, INT_MAX))
            return Option::bad_value;
        cfg->worker_num = static_cast<int>(n);
    } else if (name == "--net-worker-num") {
        if (!number(0, INT_MAX))
            return Option::bad_value;
        cfg->net_worker_num = static_cast<int>(n);
    } else if (name == "--max-request") {
        if (!number(0, LONG_MAX))
            return Option::bad_value;
        cfg->max_request = n;
    } else if (name == "--send-timeout") {
        if (!number(0, INT_MAX))
            return Option::bad_value;
        cfg->send_timeout_ms = static_cast<int>(n);
    } else if (name == "--hop-yield") {  // ServerConfig checks the range
        if (!number(0, INT_MAX))
            return Option::bad_value;
        cfg->hop_yield = static_cast<int>(n);
    } else if (name == "--net-worker-slice") {  // ServerConfig checks the range
        if (!number(0, INT_MAX))
            return Option::bad_value;
        cfg->net_worker_slice_us = static_cast<int>(n);
    } else if (name == "--upgrade-timeout") {  // ServerConfig checks the range
        if (!number(0, INT_MAX))
            return Option::bad_value;
        cfg->upgrade_timeout = static_cast<int>(n);
    } else if (name == "--pid-file") {
        cfg->pid_file = v;
    } else if (name == "--log-file") {
        cfg->log_file = v;
    } else if (name == "--log-level") {
        std::optional<zan::Level> level = zan::parse_level(v);
        if (!level)
            return Option::bad_value;
        cfg->log_level = *level;
    } else {
        return Option::no;
    }
    return Option::taken;
}

// Says on stderr that option `name` has a bad value, then calls usage(),
// which must exit.
[[noreturn]] inline void bad_value(const char* prog, const std::string& name, const std::string& v,
                                   void (*usage)())
{
    fprintf(stderr, "%s: bad value for %s: '%s'\n", prog, name.c_str(), v.c_str());
    usage();
    exit(2);
}

// The value of option `name` as a number in [lo, hi], or bad_value().
inline long number_or_usage(const char* prog, const std::string& name, const std::string& v,
                            long lo, long hi, void (*usage)())
{
    long n = 0;
    if (!parse_number(v, lo, hi, &n))
        bad_value(prog, name, v, usage);
    return n;
}

// server_option(), with a bad value reported through bad_value(). True
// when the option was one of the shared ones.
inline bool take_server_option(const char* prog, const std::string& name, const std::string& v,
                               std::string* host, int* port, zan::ServerConfig* cfg, void (*usage)())
{
    Option o = server_option(name, v, host, port, cfg);
    if (o == Option::bad_value)
        bad_value(prog, name, v, usage);
    return o == Option::taken;
}

}  // namespace zan_tools

#endif
