// Character classes (RFC 9110), case-insensitive name comparison and
// word-at-a-time scanning for the HTTP layer: the parser (http_parser.cc,
// http_parser_body.cc), HttpRequest and HttpResponse.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_HTTP_CHARS_H
#define ZAN_DETAIL_HTTP_CHARS_H

#include <stdint.h>
#include <string.h>

#include <array>
#include <string_view>

namespace zan {
namespace http_chars {

using Table = std::array<bool, 256>;

template <typename F>
constexpr Table make_table(F f) {
    Table t{};
    for (unsigned c = 0; c < 256; ++c) t[c] = f(c);
    return t;
}

constexpr bool alnum(unsigned c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

constexpr bool among(unsigned c, const char* set) {
    for (; *set; ++set)
        if (static_cast<unsigned char>(*set) == c) return true;
    return false;
}

// tchar (RFC 9110 5.6.2)
constexpr Table kTchar = make_table([](unsigned c) { return alnum(c) || among(c, "!#$%&'*+-.^_`|~"); });
// request-target bytes: visible ASCII
constexpr Table kVchar = make_table([](unsigned c) { return c > 0x20 && c < 0x7f; });
// authority-form: reg-name / IPv4 / IP-literal characters and ':'
constexpr Table kAuth = make_table([](unsigned c) { return alnum(c) || among(c, "-._~%!$&'()*+,;=:[]"); });
// qdtext (RFC 9110 5.6.4)
constexpr Table kQdtext = make_table([](unsigned c) {
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) ||
           c >= 0x80;
});

inline unsigned char uc(char c) { return static_cast<unsigned char>(c); }
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// a[0, n) equals the lower-case literal b, ignoring ASCII case.
inline bool iequal(const char* a, const char* b, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (lower(a[i]) != b[i]) return false;
    return true;
}

// Two field names are the same, ignoring ASCII case (RFC 9110 5.1).
inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

// s without leading and trailing OWS (SP / HTAB).
inline std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls f(element) for each comma-separated element of a field value, OWS
// trimmed (empty elements included) until f returns true; returns whether
// it did.
template <typename F>
bool any_element(std::string_view list, F f) {
    for (;;) {
        size_t comma = list.find(',');
        if (f(trim_ows(list.substr(0, comma)))) return true;
        if (comma == std::string_view::npos) return false;
        list.remove_prefix(comma + 1);
    }
}

// Word-at-a-time scanning (SWAR): non-zero iff some byte of x is below n
// (n <= 0x80), or equal to c. Flags above the first true byte may be
// false (borrows), the first one never is.
constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHigh = 0x8080808080808080ull;
inline uint64_t load8(const char* p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}
inline uint64_t any_below(uint64_t x, unsigned n) { return (x - kOnes * n) & ~x & kHigh; }
inline uint64_t any_equal(uint64_t x, unsigned c) { return any_below(x ^ (kOnes * c), 1); }

// A byte that ends or breaks a field value: a CTL other than HTAB (CR
// among them), or DEL.
inline bool value_stop(char c) { return (uc(c) < 0x20 && c != '\t') || uc(c) == 0x7f; }

// Index of the first byte flagged in a non-zero mask. On little-endian the
// lowest flag is exact (a borrow only runs towards higher bytes).
inline int first_flagged(uint64_t mask, const char* w, bool (*is)(char)) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)w, (void)is;
    return __builtin_ctzll(mask) >> 3;
#else
    (void)mask;
    int i = 0;
    while (!is(w[i])) ++i;
    return i;
#endif
}

inline bool below_space_or_del(char c) { return uc(c) < 0x20 || uc(c) == 0x7f; }

inline const char* find_value_stop(const char* p, const char* end) {
    while (end - p >= 8) {
        uint64_t x = load8(p);
        uint64_t m = any_below(x, 0x20) | any_equal(x, 0x7f);
        if (!m) {
            p += 8;
            continue;
        }
        p += first_flagged(m, p, below_space_or_del);
        if (*p != '\t') return p;
        ++p;  // HTAB belongs to the value
    }
    while (p < end && !value_stop(*p)) ++p;
    return p;
}

// First byte that is not visible ASCII (0x21-0x7e): ends a request-target.
inline const char* find_target_stop(const char* p, const char* end) {
    while (end - p >= 8) {
        uint64_t x = load8(p);
        if (any_below(x, 0x21) | (x & kHigh) | any_equal(x, 0x7f)) break;
        p += 8;
    }
    while (p < end && kVchar[uc(*p)]) ++p;
    return p;
}

inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// scheme "://" and a first authority byte, all within the kept head.
inline bool absolute_form(const char* h, size_t n) {
    size_t i = 0;
    if (n == 0 || !((h[0] | 0x20) >= 'a' && (h[0] | 0x20) <= 'z')) return false;
    while (i < n && (alnum(uc(h[i])) || h[i] == '+' || h[i] == '-' || h[i] == '.')) ++i;
    if (i + 3 >= n || h[i] != ':' || h[i + 1] != '/' || h[i + 2] != '/') return false;
    return h[i + 3] != '/' && h[i + 3] != '?' && h[i + 3] != '#';
}

}  // namespace http_chars
}  // namespace zan

#endif  // ZAN_DETAIL_HTTP_CHARS_H
