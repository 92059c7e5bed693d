#include "zan/http_request.h"

#include "zan/detail/http_chars.h"

namespace zan {

namespace {

// uri-host [ ":" port ] (RFC 9110 7.2): reg-name / IPv4 / IP-literal
// characters, and digits only after the port colon.
bool valid_host(std::string_view h) {
    // The usual shape first: reg-name or IPv4 characters, then ":" and
    // digits or nothing. Anything else (an IP-literal, say) takes the
    // general loop below.
    size_t i = 0;
    while (i < h.size() && http_chars::kAuth[static_cast<unsigned char>(h[i])] && h[i] != ':' && h[i] != '[' &&
           h[i] != ']')
        ++i;
    if (i == h.size()) return true;
    if (h[i] == ':') {
        size_t j = i + 1;
        while (j < h.size() && h[j] >= '0' && h[j] <= '9') ++j;
        if (j == h.size()) return true;
    }
    size_t port_colon = std::string_view::npos;
    bool in_literal = false;
    for (size_t i = 0; i < h.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(h[i]);
        if (port_colon != std::string_view::npos) {
            if (c < '0' || c > '9') return false;
            continue;
        }
        if (c == '[') {
            if (i != 0) return false;
            in_literal = true;
        } else if (c == ']') {
            if (!in_literal) return false;
            in_literal = false;
            if (i + 1 < h.size() && h[i + 1] != ':') return false;
        } else if (c == ':') {
            if (!in_literal) port_colon = i;
        } else if (!http_chars::kAuth[c]) {  // ':', '[' and ']' were taken above
            return false;
        }
    }
    return !in_literal;
}

}  // namespace

int HttpRequest::refusal_status(const char** reason) const {
    const char* why = nullptr;
    int status = 0;
    int hosts = 0;
    bool bad_host = false;
    for (const HttpHeader& h : headers) {
        if (h.name.size() != 4 || !http_chars::iequal(h.name.data(), "host", 4)) continue;
        ++hosts;
        if (!valid_host(h.value)) bad_host = true;
    }
    if (upgrade) {
        status = 501, why = "CONNECT and the HTTP/2 preface are not supported";
    } else if (hosts == 0 && version_major == 1 && version_minor >= 1) {
        status = 400, why = "HTTP/1.1 request without Host";
    } else if (hosts > 1) {
        status = 400, why = "more than one Host field";
    } else if (bad_host) {
        status = 400, why = "invalid Host value";
    } else if (target.size() == 1 && target[0] == '*' && method.compare("OPTIONS") != 0) {
        status = 400, why = "asterisk-form with a method other than OPTIONS";
    }
    if (reason) *reason = why;
    return status;
}

void HttpRequest::clear() {
    method.clear();
    target.clear();
    path.clear();
    query.clear();
    clear_message();
    expect_continue = false;
    streamed = false;
}

}  // namespace zan
