// HttpRequest: one parsed HTTP/1.x request, a plain value type. An
// HttpParser fills it (see zan_http_parser(3)); it owns no descriptor and
// no shared memory, and is used in Workers (and by NetWorkers only for its
// scalar fields). Copying it after fork is harmless.
#ifndef ZAN_HTTP_REQUEST_H
#define ZAN_HTTP_REQUEST_H

#include <string>
#include <string_view>

#include "zan/http_message.h"

namespace zan {

class HttpRequest : public HttpMessage {
public:
    std::string method;  // case-sensitive token, e.g. "GET"
    std::string target;  // request-target as sent
    // target split at '?': path is the part before it (for absolute-form the
    // path component of the URI, "/" when empty; for authority-form and
    // asterisk-form the whole target), query the part after it. A fragment
    // ("#...") is kept in target but left out of both. No percent-decoding.
    std::string path;
    std::string query;
    // Version, fields, body, keep_alive and chunked: see HttpMessage.

    // Scalars below are set by the parser in both store modes.
    bool expect_continue = false;  // Expect: 100-continue on HTTP/1.1
    // The body is not in `body`: it is streamed to the handler through
    // HttpResponse::read_body() (HttpConfig::stream_body_from).
    bool streamed = false;
    // upgrade (HttpMessage) marks CONNECT and the HTTP/2 preface line
    // "PRI * HTTP/1.1". zan does not tunnel, and refusal_status() says
    // 501. An Upgrade header field does not set it: zan switches to no
    // other protocol, so it ignores the offer (RFC 9110 7.8) and such a
    // request is served like any other.

    // Checks a parser accepts but a server refuses. Returns 0 when the
    // request may go to the application, else the status to answer with:
    // 501 for CONNECT and the HTTP/2 preface (upgrade); 400 for an
    // HTTP/1.1 request without Host, more than one Host field or an
    // invalid Host value (RFC 9112 3.2), and for asterisk-form ("*") with
    // a method other than OPTIONS. *reason (if given) gets a short static
    // text. Needs a parser with store=true.
    int refusal_status(const char** reason = nullptr) const;

    // Empties every field; strings keep their capacity.
    void clear();
};

}  // namespace zan

#endif
