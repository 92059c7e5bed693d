#include "zan/hosts_resolver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

namespace zan {

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Host names compare case-insensitively, and "name." is "name".
static std::string_view strip_dot(std::string_view s)
{
    if (s.size() > 1 && s.back() == '.')
        s.remove_suffix(1);
    return s;
}

static bool same_name(std::string_view a, std::string_view b)
{
    a = strip_dot(a);
    b = strip_dot(b);
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

bool HostsResolver::valid_name(std::string_view name)
{
    name = strip_dot(name);
    if (name.empty() || name.size() > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && label > 0))
            return false;
        if (++label > 63)
            return false;
    }
    return name.back() != '-';
}

// One line of a hosts file: "address name [alias...]  # comment". Appends
// the address to *out when one of the names is `name`.
static void match_line(std::string_view line, std::string_view name, uint16_t port,
                       std::vector<InetAddr>* out)
{
    size_t hash = line.find('#');
    if (hash != std::string_view::npos)
        line = line.substr(0, hash);
    std::string_view fields[2];  // the address, then one name at a time
    size_t n = 0;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_space(line[i]))
            ++i;
        size_t start = i;
        while (i < line.size() && !is_space(line[i]))
            ++i;
        if (i == start)
            break;
        fields[n < 1 ? 0 : 1] = line.substr(start, i - start);
        if (n++ == 0)
            continue;
        if (same_name(fields[1], name)) {
            if (std::optional<InetAddr> a = InetAddr::parse(std::string(fields[0]), port))
                out->push_back(*a);
            return;
        }
    }
}

// Appends to *out the addresses `path` gives for `name`; false with errno
// when the file cannot be opened.
static bool scan(const std::string& path, std::string_view name, uint16_t port,
                 std::vector<InetAddr>* out)
{
    FILE* f = ::fopen(path.c_str(), "re");
    if (!f)
        return false;
    char line[1024];
    while (::fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        bool whole = len > 0 && line[len - 1] == '\n';
        match_line(std::string_view(line, len), name, port, out);
        // A line longer than the buffer: skip its rest (no hosts line is).
        while (!whole && ::fgets(line, sizeof line, f)) {
            len = strlen(line);
            whole = len > 0 && line[len - 1] == '\n';
        }
    }
    ::fclose(f);
    return true;
}

std::vector<InetAddr> HostsResolver::lookup(std::string_view name, uint16_t port) const
{
    std::vector<InetAddr> out;
    scan(path_, name, port, &out);
    return out;
}

std::optional<InetAddr> HostsResolver::resolve(std::string_view host, uint16_t port,
                                               std::string* error) const
{
    if (std::optional<InetAddr> a = InetAddr::parse(std::string(host), port))
        return a;
    std::string why;
    if (!valid_name(host)) {
        why = "\"" + std::string(host) + "\" is neither an IP address nor a valid host name";
    } else {
        std::vector<InetAddr> found;
        if (!scan(path_, host, port, &found))
            why = "\"" + std::string(host) + "\" is not an IP address and " + path_ +
                  " cannot be read: " + strerror(errno);
        else if (!found.empty())
            return found.front();
        else
            why = "\"" + std::string(host) + "\" is not in " + path_ +
                  " and needs DNS, which zan does not do on an event loop: resolve it in a "
                  "TaskWorker (which may block) and connect to the address";
    }
    if (error)
        *error = why;
    return std::nullopt;
}

}  // namespace zan
