#include "zan/detail/access_log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

namespace zan {

bool AccessLog::open(const std::string& path, EventLoop* loop)
{
    if (!file_.open(path))
        return false;
    loop_ = loop;
    return true;
}

bool AccessLog::reopen() { return file_.reopen(); }

// Never touches the loop: it may be gone (a child closes its log after
// its role, and the role's loop, have ended).
void AccessLog::close()
{
    file_.close();
    loop_ = nullptr;
    flush_timer_ = 0;
}

std::string_view AccessLog::now()
{
    long long pass = loop_ ? loop_->now_ms() : -1;
    if (pass < 0 || pass != clock_pass_) {
        clock_pass_ = pass;
        struct timespec ts;
        ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
        if (ts.tv_sec != clock_sec_) {
            clock_sec_ = ts.tv_sec;
            time_len_ = time_local(ts.tv_sec, time_, sizeof(time_));
        }
    }
    return std::string_view(time_, time_len_);
}

void AccessLog::write(const Entry& e)
{
    if (!file_.is_open())
        return;
    std::string_view t = now();
    bool was_empty = file_.pending() == 0;
    char* p = file_.begin_line(max_line(e, t.size()));
    file_.commit(format(p, e, t));
    if (was_empty && loop_ && !flush_timer_)
        flush_timer_ = loop_->run_after(1000, [this] {
            flush_timer_ = 0;
            file_.flush();
        });
}

size_t AccessLog::time_local(time_t t, char* out, size_t size)
{
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    ::localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    int n = snprintf(out, size, "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     sign, off / 60, off % 60);
    return n < 0 ? 0 : static_cast<size_t>(n) < size ? static_cast<size_t>(n) : size - 1;
}

// What nginx escapes in a logged variable (escape=default): '"', '\\',
// control bytes and everything from 0x7f up.
static bool needs_escape(unsigned char c) { return c < 0x20 || c >= 0x7f || c == '"' || c == '\\'; }

char* AccessLog::escape(char* out, std::string_view v)
{
    static const char kHex[] = "0123456789ABCDEF";
    if (v.empty()) {
        *out++ = '-';
        return out;
    }
    for (char ch : v) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (!needs_escape(c)) {
            *out++ = ch;
            continue;
        }
        out[0] = '\\';
        out[1] = 'x';
        out[2] = kHex[c >> 4];
        out[3] = kHex[c & 15];
        out += 4;
    }
    return out;
}

size_t AccessLog::max_line(const Entry& e, size_t time_len)
{
    // Each escaped byte takes at most 4; the fixed text, the status,
    // the byte count and the request time fit in 80.
    return e.remote_addr.size() + time_len + 80 +
           4 * (e.remote_user.size() + e.request.size() + e.referer.size() + e.user_agent.size());
}

static char* put(char* p, std::string_view s)
{
    memcpy(p, s.data(), s.size());
    return p + s.size();
}

// Decimal digits of v.
static char* put_number(char* p, unsigned long long v)
{
    char tmp[24];
    char* q = tmp + sizeof(tmp);
    do {
        *--q = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return put(p, std::string_view(q, static_cast<size_t>(tmp + sizeof(tmp) - q)));
}

char* AccessLog::format(char* p, const Entry& e, std::string_view time_local)
{
    p = escape(p, e.remote_addr);
    p = put(p, " - ");
    p = escape(p, e.remote_user);
    p = put(p, " [");
    p = put(p, time_local);
    p = put(p, "] \"");
    p = escape(p, e.request);
    p = put(p, "\" ");
    p = put_number(p, static_cast<unsigned long long>(e.status < 0 ? 0 : e.status));
    *p++ = ' ';
    p = put_number(p, e.body_bytes);
    p = put(p, " \"");
    p = escape(p, e.referer);
    p = put(p, "\" \"");
    p = escape(p, e.user_agent);
    p = put(p, "\" ");
    long long ms = e.request_ms < 0 ? 0 : e.request_ms;
    p = put_number(p, static_cast<unsigned long long>(ms / 1000));
    *p++ = '.';
    p[0] = static_cast<char>('0' + ms % 1000 / 100);
    p[1] = static_cast<char>('0' + ms % 100 / 10);
    p[2] = static_cast<char>('0' + ms % 10);
    p[3] = '\n';
    return p + 4;
}

std::string_view AccessLog::request_line(const char* data, size_t n)
{
    std::string_view v(data, n);
    size_t from = v.find_first_not_of("\r\n");
    if (from == std::string_view::npos)
        return std::string_view();
    v.remove_prefix(from);
    return v.substr(0, v.find_first_of("\r\n"));
}

static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

std::string AccessLog::basic_user(std::string_view a)
{
    if (a.size() < 6 || strncasecmp(a.data(), "Basic ", 6) != 0)
        return std::string();
    a.remove_prefix(6);
    while (!a.empty() && a.front() == ' ')
        a.remove_prefix(1);
    std::string out;
    unsigned bits = 0;
    int nbits = 0;
    for (char c : a) {
        int v = base64_value(c);
        if (v < 0)
            break;  // '=' padding, or not base64: what came before
        bits = (bits << 6) | static_cast<unsigned>(v);
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            char ch = static_cast<char>((bits >> nbits) & 0xff);
            if (ch == ':')
                return out;
            out.push_back(ch);
        }
    }
    return out;
}

size_t AccessLog::addr_text(const struct sockaddr* sa, socklen_t len, char* out)
{
    const char* r = nullptr;
    if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
        // Four numbers by hand: every request of a Worker pays for this.
        const uint8_t* b = reinterpret_cast<const uint8_t*>(
            &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
        char* p = out;
        for (int i = 0; i < 4; i++) {
            if (i)
                *p++ = '.';
            p = put_number(p, b[i]);
        }
        return static_cast<size_t>(p - out);
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6))
        r = ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, out, kAddrMax);
    if (!r) {
        out[0] = '\0';
        return 0;
    }
    return strlen(out);
}

}  // namespace zan
