// zan-httpd: the demo HTTP server of zan.
// Without --root every GET or HEAD of / gets 200 "hello\n" (the benchmark
// endpoint). With --root DIR it serves that directory: index.html, MIME
// types, 404/403, path traversal refused, repeated slashes merged,
// Last-Modified and the preconditions of RFC 9110 section 13 (304/412),
// single byte ranges for GET (206/416), bodies sent with sendfile(2) by
// the NetWorker. With --proxy HOST:PORT it is a reverse proxy to that
// upstream server instead (HttpProxy, one per Worker). Prints "listening
// on H:P" when ready.
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/httpd_paths.h"
#include "tools/server_options.h"
#include "zan/http_proxy.h"
#include "zan/http_server.h"

using zan_httpd::encode_path;
using zan_httpd::merge_slashes;
using zan_httpd::mime_type;
using zan_httpd::parse_http_date;
using zan_httpd::parse_range;
using zan_httpd::url_decode;

static void usage()
{
    fprintf(stderr,
            "usage: zan-httpd [--host H] [--port P] [--worker-num N] [--net-worker-num N]\n"
            "                 [--root DIR] [--max-request N] [--pid-file F] [--log-file F]\n"
            "                 [--log-level L] [--keepalive-timeout MS] [--header-timeout MS]\n"
            "                 [--send-timeout MS] [--hop-yield N] [--net-worker-slice US]\n"
            "                 [--upgrade-timeout S] [--metrics-path PATH] [--cpu-affinity]\n"
            "                 [--proxy HOST:PORT] [--proxy-timeout MS]\n"
            "                 [--client-max-body-size N] [--daemonize]\n");
    exit(2);
}

static void refuse(zan::HttpResponse& resp, int status, const char* body = nullptr)
{
    resp.set_status(status);
    if (body) {
        resp.set_header("Content-Type", "text/plain");
        resp.end(body);
    } else {
        resp.end();
    }
}

// Answers 405 with the Allow field that RFC 9110 section 15.5.6 requires,
// unless the method is GET or HEAD (then true).
static bool get_or_head(const zan::HttpRequest& req, zan::HttpResponse& resp)
{
    std::string_view m = req.method;
    if (m == "GET" || m == "HEAD")
        return true;
    resp.set_header("Allow", "GET, HEAD");
    refuse(resp, 405, "405 Method Not Allowed\n");
    return false;
}

// Maps the request path, percent-decoded and with repeated slashes
// merged, to a regular file under root: its name (for the media type),
// real path and stat. False after answering the request (301, 400, 403 or
// 404); a 301 names the merged path, so its Location never starts "//".
static bool resolve_file(const std::string& root, const zan::HttpRequest& req,
                         zan::HttpResponse& resp, std::string* name, std::string* real_path,
                         struct stat* st)
{
    std::string path;
    if (!url_decode(req.path, &path) || path.empty() || path[0] != '/') {
        refuse(resp, 400);
        return false;
    }
    merge_slashes(&path);
    // Refuse any ".." segment outright; then make sure symlinks do not
    // lead outside the root either.
    if (("/" + path + "/").find("/../") != std::string::npos) {
        refuse(resp, 403, "403 Forbidden\n");
        return false;
    }
    std::string full = root + path;
    if (::stat(full.c_str(), st) < 0) {
        refuse(resp, 404, "404 Not Found\n");
        return false;
    }
    if (S_ISDIR(st->st_mode)) {
        if (path.back() != '/') {
            // The query goes along, as with nginx (it is as the client
            // sent it: only characters a request-target may hold).
            std::string loc = encode_path(path) + "/";
            if (!req.query.empty())
                loc += "?" + req.query;
            resp.set_header("Location", loc);
            refuse(resp, 301);
            return false;
        }
        full += "index.html";
        if (::stat(full.c_str(), st) < 0) {
            refuse(resp, 403, "403 Forbidden\n");
            return false;
        }
    }
    char real[PATH_MAX];
    if (!S_ISREG(st->st_mode) || !realpath(full.c_str(), real) ||
        std::string(real).compare(0, root.size() + 1, root + "/") != 0) {
        refuse(resp, 403, "403 Forbidden\n");
        return false;
    }
    *name = full;
    *real_path = real;
    return true;
}

// The one value of field `name` as an HTTP-date; false when the field is
// absent, repeated or not a date (RFC 9110 sections 13.1.3 and 13.1.4:
// then it is ignored).
static bool date_field(const zan::HttpRequest& req, const char* name, time_t* out)
{
    std::vector<std::string_view> v = req.header_all(name);
    return v.size() == 1 && parse_http_date(std::string(v[0]), out);
}

// True when If-Match or If-None-Match (`name`) is "*". There is no ETag,
// so "*" (any current representation; the file exists) is the only value
// that can match, never a list of entity-tags.
static bool matches_any(const zan::HttpRequest& req, const char* name)
{
    for (std::string_view v : req.header_all(name))
        if (v == "*")
            return true;
    return false;
}

// The preconditions of a GET or HEAD of an existing file last modified at
// mtime, in the order of RFC 9110 section 13.2.2: 412, 304, or 0 to go on.
// If-Unmodified-Since is ignored when If-Match is present, and
// If-Modified-Since when If-None-Match is.
static int precondition_status(const zan::HttpRequest& req, time_t mtime)
{
    time_t t;
    if (req.header("If-Match")) {
        if (!matches_any(req, "If-Match"))
            return 412;
    } else if (date_field(req, "If-Unmodified-Since", &t) && mtime > t) {
        return 412;
    }
    if (req.header("If-None-Match")) {
        if (matches_any(req, "If-None-Match"))
            return 304;  // only GET and HEAD get here
    } else if (date_field(req, "If-Modified-Since", &t) && mtime <= t) {
        return 304;
    }
    return 0;
}

static void serve_file(const std::string& root, zan::HttpRequest& req, zan::HttpResponse& resp)
{
    if (!get_or_head(req, resp))
        return;
    std::string name, real;
    struct stat st;
    if (!resolve_file(root, req, resp, &name, &real, &st))
        return;
    int pre = precondition_status(req, st.st_mtime);
    if (pre == 412) {
        refuse(resp, 412, "412 Precondition Failed\n");
        return;
    }
    resp.set_header("Last-Modified", zan::HttpServer::http_date(st.st_mtime));
    resp.set_header("Accept-Ranges", "bytes");
    if (pre == 304) {
        refuse(resp, 304);
        return;
    }
    resp.set_header("Content-Type", mime_type(name));
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t from = 0, len = size;
    // Range is only defined for GET (RFC 9110 section 14.2): a HEAD gets
    // the headers of the whole file.
    const std::string* range = req.header("Range");
    if (range && req.method == "GET" && !req.header("If-Range")) {
        int r = parse_range(*range, size, &from, &len);
        if (r < 0) {
            resp.set_header("Content-Range", "bytes */" + std::to_string(size));
            refuse(resp, 416);
            return;
        }
        if (r > 0) {
            resp.set_status(206);
            resp.set_header("Content-Range", "bytes " + std::to_string(from) + "-" +
                                                 std::to_string(from + len - 1) + "/" +
                                                 std::to_string(size));
        }
    }
    resp.sendfile(real, from, len);
}

struct Args {
    std::string host = "127.0.0.1";
    int port = 9501;
    std::string root;  // real path; empty: the hello server
    bool static_files = false;
    std::string proxy_host;  // empty: no proxy
    uint16_t proxy_port = 0;
    zan::HttpProxyOptions proxy;
    zan::ServerConfig cfg;
    zan::HttpConfig hc;
};

// HOST:PORT, or [V6]:PORT; exits 2 when it is not that.
static void parse_upstream(const std::string& v, std::string* host, uint16_t* port)
{
    size_t colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == v.size()) {
        fprintf(stderr, "zan-httpd: --proxy %s: expected HOST:PORT\n", v.c_str());
        exit(2);
    }
    std::string h = v.substr(0, colon);
    if (h.size() > 2 && h.front() == '[' && h.back() == ']')
        h = h.substr(1, h.size() - 2);
    char* end = nullptr;
    long p = strtol(v.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) {
        fprintf(stderr, "zan-httpd: --proxy %s: bad port\n", v.c_str());
        exit(2);
    }
    *host = h;
    *port = static_cast<uint16_t>(p);
}

// Exits 2 on bad usage, 1 when --root cannot be resolved.
static Args parse_args(int argc, char** argv)
{
    Args r;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--daemonize") {
            r.cfg.daemonize = true;
            continue;
        }
        if (a == "--cpu-affinity") {
            r.cfg.open_cpu_affinity = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        std::string v = argv[++i];
        if (zan_tools::take_server_option("zan-httpd", a, v, &r.host, &r.port, &r.cfg, usage))
            continue;
        auto number = [&](long lo, long hi) {
            return static_cast<int>(zan_tools::number_or_usage("zan-httpd", a, v, lo, hi, usage));
        };
        if (a == "--root") r.root = v;
        else if (a == "--keepalive-timeout") r.hc.keepalive_timeout_ms = number(0, INT_MAX);
        else if (a == "--header-timeout") r.hc.header_timeout_ms = number(0, INT_MAX);
        else if (a == "--metrics-path" && !v.empty() && v[0] == '/') r.hc.metrics_path = v;
        else if (a == "--access-log") r.hc.access_log = v;
        else if (a == "--proxy") parse_upstream(v, &r.proxy_host, &r.proxy_port);
        else if (a == "--proxy-timeout") r.proxy.timeout_ms = number(0, INT_MAX);
        else if (a == "--client-max-body-size")
            r.hc.limits.max_body = static_cast<size_t>(
                zan_tools::number_or_usage("zan-httpd", a, v, 0, LONG_MAX, usage));
        else usage();
    }
    if (!r.root.empty() && !r.proxy_host.empty()) {
        fprintf(stderr, "zan-httpd: --root and --proxy exclude each other\n");
        exit(2);
    }
    // A relayed reply leaves in pieces as the upstream sends them (and
    // pipelined replies one by one): without TCP_NODELAY a piece after a
    // small one would wait for the client's delayed ACK, 40 ms.
    if (!r.proxy_host.empty())
        r.cfg.open_tcp_nodelay = true;
    // Uploads of 64 KiB and more go upstream as they arrive, never held
    // whole; smaller ones come whole, which costs one hop less.
    if (!r.proxy_host.empty())
        r.hc.stream_body_from = 64u << 10;
    r.static_files = !r.root.empty();
    if (r.static_files) {
        char real[PATH_MAX];
        if (!realpath(r.root.c_str(), real)) {
            fprintf(stderr, "zan-httpd: --root %s: %s\n", r.root.c_str(), strerror(errno));
            exit(1);
        }
        r.root = real;
        if (r.root == "/")
            r.root.clear();  // "/" + path; the prefix check uses root + "/"
    }
    return r;
}

int main(int argc, char** argv)
{
    Args args = parse_args(argc, argv);
    const std::string& host = args.host;
    const std::string& root = args.root;
    bool static_files = args.static_files;
    zan::HttpServer srv(args.cfg, args.hc);
    if (!srv.listen(host, args.port))
        return 1;
    srv.on_start([&](zan::TcpServer& s) {
        std::string line = "listening on " + host + ":" + std::to_string(s.port()) + "\n";
        ssize_t n = write(1, line.data(), line.size());
        (void)n;
    });
    // The proxy of this Worker, made after fork on its loop.
    std::unique_ptr<zan::HttpProxy> proxy;
    if (!args.proxy_host.empty()) {
        srv.on_worker_start([&](zan::TcpServer& s, int) {
            if (s.loop())
                proxy = std::make_unique<zan::HttpProxy>(*s.loop(), args.proxy_host, args.proxy_port,
                                                         args.proxy);
        });
        srv.on_worker_stop([&](zan::TcpServer&, int) { proxy.reset(); });
        srv.on_close([&](zan::TcpServer&, zan::SessionId s) {
            if (proxy)
                proxy->closed(s);
        });
    }
    srv.on_request([&](zan::HttpServer& s, zan::HttpRequest& req, zan::HttpResponse& resp) {
        if (proxy) {
            proxy->forward(s, req, resp);
            return;
        }
        if (static_files) {
            serve_file(root, req, resp);
            return;
        }
        if (std::string_view(req.path) != "/") {
            refuse(resp, 404, "404 Not Found\n");
        } else if (get_or_head(req, resp)) {
            resp.set_header("Content-Type", "text/plain");
            resp.end("hello\n");
        }
    });
    int rc = srv.start();
    if (rc != 0)
        fprintf(stderr, "zan-httpd: %s\n", srv.error().c_str());
    return rc;
}
