// zan-httpd: the demo HTTP server of zan.
// Without --root every GET or HEAD of / gets 200 "hello\n" (the benchmark
// endpoint). With --root DIR it serves that directory: index.html, MIME
// types, 404/403, path traversal refused, Last-Modified and
// If-Modified-Since, single byte ranges (206/416), bodies sent with
// sendfile(2) by the NetWorker. Prints "listening on H:P" when ready.
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "tools/server_options.h"
#include "zan/http_server.h"

static void usage()
{
    fprintf(stderr,
            "usage: zan-httpd [--host H] [--port P] [--worker-num N] [--net-worker-num N]\n"
            "                 [--root DIR] [--max-request N] [--pid-file F] [--log-file F]\n"
            "                 [--log-level L] [--keepalive-timeout MS] [--header-timeout MS]\n"
            "                 [--send-timeout MS] [--cpu-affinity] [--daemonize]\n");
    exit(2);
}

static const char* mime_type(const std::string& path)
{
    static const struct {
        const char* ext;
        const char* type;
    } kTypes[] = {
        {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
        {"css", "text/css"}, {"js", "text/javascript"}, {"mjs", "text/javascript"},
        {"json", "application/json"}, {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"}, {"xml", "application/xml"},
        {"svg", "image/svg+xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"webp", "image/webp"},
        {"ico", "image/x-icon"}, {"pdf", "application/pdf"}, {"wasm", "application/wasm"},
        {"woff", "font/woff"}, {"woff2", "font/woff2"}, {"mp4", "video/mp4"},
        {"webm", "video/webm"}, {"mp3", "audio/mpeg"}, {"ogg", "audio/ogg"},
        {"zip", "application/zip"}, {"gz", "application/gzip"}, {"tar", "application/x-tar"},
    };
    size_t dot = path.rfind('.');
    size_t slash = path.rfind('/');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
        std::string ext = path.substr(dot + 1);
        for (char& ch : ext)
            ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
        for (const auto& t : kTypes)
            if (ext == t.ext)
                return t.type;
    }
    return "application/octet-stream";
}

static std::string http_date(time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

static bool parse_http_date(const std::string& s, time_t* out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return false;
    *out = timegm(&tm);
    return true;
}

// Percent-decodes a path; false for bad escapes or a NUL byte.
static bool url_decode(const std::string& in, std::string* out)
{
    out->clear();
    for (size_t i = 0; i < in.size(); i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size() || !isxdigit(static_cast<unsigned char>(in[i + 1])) ||
                !isxdigit(static_cast<unsigned char>(in[i + 2])))
                return false;
            c = static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
            i += 2;
        }
        if (c == '\0')
            return false;
        out->push_back(c);
    }
    return true;
}

// "bytes=a-b" against size: 1 one satisfiable range, 0 ignore the header
// (serve everything), -1 unsatisfiable (416).
static int parse_range(const std::string& h, uint64_t size, uint64_t* from, uint64_t* len)
{
    if (h.compare(0, 6, "bytes=") != 0 || h.find(',') != std::string::npos)
        return 0;
    std::string r = h.substr(6);
    size_t dash = r.find('-');
    if (dash == std::string::npos)
        return 0;
    std::string a = r.substr(0, dash), b = r.substr(dash + 1);
    auto digits = [](const std::string& x) {
        return !x.empty() && x.size() < 19 && x.find_first_not_of("0123456789") == std::string::npos;
    };
    if (a.empty()) {  // suffix: the last b bytes
        if (!digits(b))
            return 0;
        uint64_t n = strtoull(b.c_str(), nullptr, 10);
        if (n == 0 || size == 0)
            return -1;
        if (n > size)
            n = size;
        *from = size - n;
        *len = n;
        return 1;
    }
    if (!digits(a) || (!b.empty() && !digits(b)))
        return 0;
    uint64_t s = strtoull(a.c_str(), nullptr, 10);
    uint64_t e = b.empty() ? size - 1 : strtoull(b.c_str(), nullptr, 10);
    if (!b.empty() && e < s)
        return 0;  // invalid: ignored (RFC 9110 section 14.2)
    if (s >= size)
        return -1;
    if (e >= size)
        e = size - 1;
    *from = s;
    *len = e - s + 1;
    return 1;
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

// Maps the request path to a regular file under root: its name (for the
// media type), real path and stat. False after answering the request
// (301, 400, 403 or 404).
static bool resolve_file(const std::string& root, const zan::HttpRequest& req,
                         zan::HttpResponse& resp, std::string* name, std::string* real_path,
                         struct stat* st)
{
    std::string path;
    if (!url_decode(req.path, &path) || path.empty() || path[0] != '/') {
        refuse(resp, 400);
        return false;
    }
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
            resp.set_header("Location", req.path + "/");
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

static void serve_file(const std::string& root, zan::HttpRequest& req, zan::HttpResponse& resp)
{
    if (req.method != "GET" && req.method != "HEAD") {
        resp.set_header("Allow", "GET, HEAD");
        refuse(resp, 405);
        return;
    }
    std::string name, real;
    struct stat st;
    if (!resolve_file(root, req, resp, &name, &real, &st))
        return;
    resp.set_header("Last-Modified", http_date(st.st_mtime));
    resp.set_header("Accept-Ranges", "bytes");
    time_t ims;
    const std::string* h = req.header("If-Modified-Since");
    if (h && parse_http_date(*h, &ims) && st.st_mtime <= ims) {
        refuse(resp, 304);
        return;
    }
    resp.set_header("Content-Type", mime_type(name));
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t from = 0, len = size;
    const std::string* range = req.header("Range");
    if (range && !req.header("If-Range")) {
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
    zan::ServerConfig cfg;
    zan::HttpConfig hc;
};

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
        else usage();
    }
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
    srv.on_request([&](zan::HttpServer&, zan::HttpRequest& req, zan::HttpResponse& resp) {
        if (static_files) {
            serve_file(root, req, resp);
            return;
        }
        if (req.path == "/" && (req.method == "GET" || req.method == "HEAD")) {
            resp.set_header("Content-Type", "text/plain");
            resp.end("hello\n");
            return;
        }
        resp.set_status(req.path == "/" ? 405 : 404);
        resp.set_header("Content-Type", "text/plain");
        resp.end(req.path == "/" ? "405 Method Not Allowed\n" : "404 Not Found\n");
    });
    int rc = srv.start();
    if (rc != 0)
        fprintf(stderr, "zan-httpd: %s\n", srv.error().c_str());
    return rc;
}
