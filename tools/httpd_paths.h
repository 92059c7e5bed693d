// zan-httpd's helpers for serving files: media types, HTTP dates, paths
// (percent-decoding, merged slashes, encoding for Location) and byte
// ranges. Plain functions of strings and numbers, kept apart from the
// server so that zan-httpd.cc holds the request handling.
#ifndef ZAN_TOOLS_HTTPD_PATHS_H
#define ZAN_TOOLS_HTTPD_PATHS_H

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <string>

namespace zan_httpd {

inline const char* mime_type(const std::string& path)
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

// An HTTP-date in any of the three formats a recipient must accept (RFC
// 9110 5.6.7): IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", the obsolete
// RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6
// 08:49:37 1994". A two-digit year more than 50 years ahead of now is
// taken from the century before.
inline bool parse_http_date(const std::string& s, time_t* out)
{
    static const char* const kFormats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                           "%a %b %e %H:%M:%S %Y"};
    for (size_t i = 0; i < sizeof(kFormats) / sizeof(kFormats[0]); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char* end = strptime(s.c_str(), kFormats[i], &tm);
        if (!end || *end)
            continue;
        if (i == 1) {
            struct tm now;
            time_t t = time(nullptr);
            gmtime_r(&t, &now);
            tm.tm_year = now.tm_year - now.tm_year % 100 + tm.tm_year % 100;  // this century
            if (tm.tm_year > now.tm_year + 50)
                tm.tm_year -= 100;
        }
        *out = timegm(&tm);
        return true;
    }
    return false;
}

// Percent-decodes a path; false for bad escapes or a NUL byte.
inline bool url_decode(const std::string& in, std::string* out)
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

// Merges each run of '/' into one, as nginx's merge_slashes does: "//host"
// then never reaches the file system or a Location field, where a browser
// would read it as another host.
inline void merge_slashes(std::string* path)
{
    size_t j = 0;
    for (size_t i = 0; i < path->size(); i++)
        if ((*path)[i] != '/' || j == 0 || (*path)[j - 1] != '/')
            (*path)[j++] = (*path)[i];
    path->resize(j);
}

// Percent-encodes every byte that may not stand as is in an RFC 3986
// path, so that a decoded path (which may hold SP, CR, LF, '?', '#' or
// '%') can go back into a Location field.
inline std::string encode_path(const std::string& in)
{
    static const char kHex[] = "0123456789ABCDEF";
    static const char kSafe[] = "/-._~!$&'()*+,;=:@";
    std::string out;
    for (unsigned char c : in) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c != '\0' && strchr(kSafe, c))) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    return out;
}

// "bytes=a-b" against size: 1 one satisfiable range, 0 ignore the header
// (serve everything), -1 unsatisfiable (416).
inline int parse_range(const std::string& h, uint64_t size, uint64_t* from, uint64_t* len)
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

}  // namespace zan_httpd

#endif
