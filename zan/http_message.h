// HttpMessage: what a request and a response have in common once parsed
// (version, header and trailer fields, the body and the framing flags), a
// plain value type. HttpRequest adds the request line; an HttpParser in
// response mode fills a bare HttpMessage and keeps the status line itself
// (see zan_http_parser(3)). It owns no descriptor and no shared memory;
// copying it after fork is harmless.
#ifndef ZAN_HTTP_MESSAGE_H
#define ZAN_HTTP_MESSAGE_H

#include <string>
#include <string_view>
#include <vector>

namespace zan {

struct HttpHeader {
    std::string name;   // as sent (case kept)
    std::string value;  // leading and trailing OWS (SP / HTAB) removed
};

class HttpMessage {
public:
    int version_major = 1;
    int version_minor = 1;
    std::vector<HttpHeader> headers;   // in order, repeated fields kept
    std::vector<HttpHeader> trailers;  // chunked trailer fields, in order
    std::string body;                  // de-chunked

    // Scalars below are set by the parser in both store modes.
    bool keep_alive = true;  // version default, then Connection: close / keep-alive
    bool chunked = false;    // Transfer-Encoding ends in chunked
    // What follows this message on the connection is not HTTP/1.1: a
    // CONNECT request or the HTTP/2 preface; a 101 (Switching Protocols)
    // response, or a 2xx response to CONNECT.
    bool upgrade = false;

    // First field with this name (case-insensitive), or nullptr.
    const std::string* header(std::string_view name) const;
    // Every value of fields with this name, in order.
    std::vector<std::string_view> header_all(std::string_view name) const;
    // True when a field `header_name` holds `token` as one of its
    // comma-separated elements (OWS trimmed, case-insensitive).
    bool has_token(std::string_view header_name, std::string_view token) const;

protected:
    // Empties the fields above; strings keep their capacity.
    void clear_message();
};

}  // namespace zan

#endif
