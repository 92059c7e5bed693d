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
            "                 [--cpu-affinity] [--daemonize]\n");
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

static void serve_file(const std::string& root, zan::HttpServer& srv, zan::HttpRequest& req,
                       zan::HttpResponse& resp)
{
    (void)srv;
    if (req.method != "GET" && req.method != "HEAD") {
        resp.set_status(405);
        resp.set_header("Allow", "GET, HEAD");
        resp.end();
        return;
    }
    std::string path;
    if (!url_decode(req.path, &path) || path.empty() || path[0] != '/') {
        resp.set_status(400);
        resp.end();
        return;
    }
    // Refuse any ".." segment outright; then make sure symlinks do not
    // lead outside the root either.
    if (("/" + path + "/").find("/../") != std::string::npos) {
        resp.set_status(403);
        resp.end("403 Forbidden\n");
        return;
    }
    std::string full = root + path;
    struct stat st;
    if (::stat(full.c_str(), &st) < 0) {
        resp.set_status(404);
        resp.set_header("Content-Type", "text/plain");
        resp.end("404 Not Found\n");
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        if (path.back() != '/') {
            resp.set_status(301);
            resp.set_header("Location", req.path + "/");
            resp.end();
            return;
        }
        full += "index.html";
        if (::stat(full.c_str(), &st) < 0) {
            resp.set_status(403);
            resp.end("403 Forbidden\n");
            return;
        }
    }
    char real[PATH_MAX];
    if (!S_ISREG(st.st_mode) || !realpath(full.c_str(), real) ||
        std::string(real).compare(0, root.size() + 1, root + "/") != 0) {
        resp.set_status(403);
        resp.end("403 Forbidden\n");
        return;
    }
    resp.set_header("Last-Modified", http_date(st.st_mtime));
    resp.set_header("Accept-Ranges", "bytes");
    time_t ims;
    const std::string* h = req.header("If-Modified-Since");
    if (h && parse_http_date(*h, &ims) && st.st_mtime <= ims) {
        resp.set_status(304);
        resp.end();
        return;
    }
    resp.set_header("Content-Type", mime_type(full));
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t from = 0, len = size;
    const std::string* range = req.header("Range");
    if (range && !req.header("If-Range")) {
        int r = parse_range(*range, size, &from, &len);
        if (r < 0) {
            resp.set_status(416);
            resp.set_header("Content-Range", "bytes */" + std::to_string(size));
            resp.end();
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

int main(int argc, char** argv)
{
    std::string host = "127.0.0.1";
    int port = 9501;
    std::string root;
    zan::ServerConfig cfg;
    zan::HttpConfig hc;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--daemonize") {
            cfg.daemonize = true;
            continue;
        }
        if (a == "--cpu-affinity") {
            cfg.open_cpu_affinity = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        std::string v = argv[++i];
        if (zan_tools::take_server_option("zan-httpd", a, v, &host, &port, &cfg, usage))
            continue;
        auto number = [&](long lo, long hi) {
            return static_cast<int>(zan_tools::number_or_usage("zan-httpd", a, v, lo, hi, usage));
        };
        if (a == "--root") root = v;
        else if (a == "--keepalive-timeout") hc.keepalive_timeout_ms = number(0, INT_MAX);
        else if (a == "--header-timeout") hc.header_timeout_ms = number(0, INT_MAX);
        else usage();
    }
    bool static_files = !root.empty();
    if (static_files) {
        char real[PATH_MAX];
        if (!realpath(root.c_str(), real)) {
            fprintf(stderr, "zan-httpd: --root %s: %s\n", root.c_str(), strerror(errno));
            return 1;
        }
        root = real;
        if (root == "/")
            root.clear();  // "/" + path; the prefix check below uses root + "/"
    }
    zan::HttpServer srv(cfg, hc);
    if (!srv.listen(host, port))
        return 1;
    srv.on_start([&](zan::TcpServer& s) {
        std::string line = "listening on " + host + ":" + std::to_string(s.port()) + "\n";
        ssize_t n = write(1, line.data(), line.size());
        (void)n;
    });
    srv.on_request([&](zan::HttpServer& s, zan::HttpRequest& req, zan::HttpResponse& resp) {
        if (static_files) {
            serve_file(root, s, req, resp);
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
