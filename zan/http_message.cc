#include "zan/http_message.h"

#include "zan/detail/http_chars.h"

namespace zan {

using http_chars::iequals;

const std::string* HttpMessage::header(std::string_view name) const {
    for (const HttpHeader& h : headers)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

std::vector<std::string_view> HttpMessage::header_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const HttpHeader& h : headers)
        if (iequals(h.name, name)) out.emplace_back(h.value);
    return out;
}

bool HttpMessage::has_token(std::string_view header_name, std::string_view token) const {
    for (const HttpHeader& h : headers) {
        if (iequals(h.name, header_name) &&
            http_chars::any_element(h.value, [&](std::string_view e) { return iequals(e, token); }))
            return true;
    }
    return false;
}

void HttpMessage::clear_message() {
    version_major = 1;
    version_minor = 1;
    headers.clear();
    trailers.clear();
    body.clear();
    keep_alive = true;
    chunked = false;
    upgrade = false;
}

}  // namespace zan
