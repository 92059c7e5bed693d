// The access log part of HttpServer (see zan/http_server.h and
// zan/detail/access_log.h): the hooks that open, reopen and close it in the
// Workers and NetWorkers, and the lines of the responses they finish or
// make themselves.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zan/detail/access_log.h"
#include "zan/http_server.h"
#include "zan/log.h"
#include "zan/detail/process.h"

namespace zan {

void HttpServer::install_access_log()
{
    // Relative to where start() runs: a daemon changes its directory.
    if (hc_.access_log[0] != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof(cwd)))
            hc_.access_log = std::string(cwd) + "/" + hc_.access_log;
    }
    rt().hooks.master_files = [this](std::string* err) { return access_log_file(err); };
    rt().hooks.loop_start = [this](EventLoop& loop) {
        access_.reset(new AccessLog);
        if (!access_->open(hc_.access_log, &loop)) {
            log_errno(Level::error, errno, "cannot open access log %s", hc_.access_log.c_str());
            access_.reset();
        }
    };
    rt().hooks.reopen = [this] {
        if (access_ && !access_->reopen())
            log_errno(Level::error, errno, "reopening access log %s", hc_.access_log.c_str());
    };
    rt().hooks.exit = [this] {
        if (access_)
            access_->close();
    };
}

// Master: the access log exists (made now if need be) and, when the
// children run as another user, is theirs to open. Run at start-up and
// on SIGRTMIN (after a rotation) before the children reopen it, so that
// they never need to create it in a directory they cannot write.
bool HttpServer::access_log_file(std::string* err)
{
    const std::string& path = hc_.access_log;
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!fd) {
        if (err)
            *err = "cannot open access log " + path + ": " + strerror(errno);
        else
            log_errno(Level::error, errno, "cannot open access log %s", path.c_str());
        return false;
    }
    struct stat st;
    if (rt().set_ids && ::fstat(fd.get(), &st) == 0 && st.st_uid != rt().uid &&
        ::fchown(fd.get(), rt().uid, rt().gid) < 0)
        log_errno(Level::warn, errno, "fchown() of access log %s failed", path.c_str());
    return true;
}

// The text of the client address of session s; 0 when it is gone.
size_t HttpServer::peer_text(SessionId s, char* out) const
{
    SessionSlot* ss = rt().live_session(s);
    if (!ss)
        return 0;
    uint8_t addr[sizeof(ss->addr)];
    uint32_t len = ss->addr_len;
    memcpy(addr, ss->addr, sizeof(addr));
    if (rt().live_session(s) != ss || len > sizeof(addr))
        return 0;  // closed and reused while we copied
    return AccessLog::addr_text(reinterpret_cast<const struct sockaddr*>(addr), len, out);
}

namespace {

// The body of a complete response: what follows its head.
uint64_t body_size(std::string_view reply)
{
    size_t h = reply.find("\r\n\r\n");
    return h == std::string_view::npos ? 0 : reply.size() - h - 4;
}

// Referer, User-Agent and Authorization of a request, in one pass.
struct LoggedFields {
    std::string_view referer, user_agent, authorization;
    explicit LoggedFields(const HttpRequest& req)
    {
        for (const HttpHeader& h : req.headers) {
            const std::string& n = h.name;
            if (n.size() == 7 && referer.empty() && strcasecmp(n.c_str(), "referer") == 0)
                referer = h.value;
            else if (n.size() == 10 && user_agent.empty() && strcasecmp(n.c_str(), "user-agent") == 0)
                user_agent = h.value;
            else if (n.size() == 13 && authorization.empty() &&
                     strcasecmp(n.c_str(), "authorization") == 0)
                authorization = h.value;
        }
    }
};

}  // namespace

// Worker: the line of a response just finished.
void HttpServer::log_response(const HttpResponse& r)
{
    AccessLog::Entry e;
    char addr[AccessLog::kAddrMax];
    std::string user;
    if (r.record_) {
        const AccessRecord& a = *r.record_;
        e.remote_addr = a.remote_addr;
        e.remote_user = a.remote_user;
        e.request = a.request;
        e.referer = a.referer;
        e.user_agent = a.user_agent;
    } else {
        e.remote_addr = std::string_view(addr, peer_text(r.session_, addr));
        e.request = r.line_;
        if (r.req_) {
            LoggedFields f(*r.req_);
            e.referer = f.referer;
            e.user_agent = f.user_agent;
            if (!f.authorization.empty()) {
                user = AccessLog::basic_user(f.authorization);
                e.remote_user = user;
            }
        }
    }
    e.status = r.status_;
    e.body_bytes = r.sent_bytes_ - r.head_bytes_;
    e.request_ms = access_->loop()->now_ms() - r.start_ms_;
    access_->write(e);
}

// Worker: what the line of a detached response needs of its request.
std::shared_ptr<const AccessRecord> HttpServer::access_record(const HttpResponse& r) const
{
    auto a = std::make_shared<AccessRecord>();
    char addr[AccessLog::kAddrMax];
    a->remote_addr.assign(addr, peer_text(r.session_, addr));
    a->request.assign(r.line_.data(), r.line_.size());
    if (r.req_) {
        LoggedFields f(*r.req_);
        a->referer.assign(f.referer.data(), f.referer.size());
        a->user_agent.assign(f.user_agent.data(), f.user_agent.size());
        if (!f.authorization.empty())
            a->remote_user = AccessLog::basic_user(f.authorization);
    }
    return a;
}

// A reply the server made itself (NetWorker: bad input, timeouts, a dead
// Worker; Worker: refused requests).
void HttpServer::log_refusal(SessionId s, int status, std::string_view request,
                             std::string_view reply, long long start_ms)
{
    AccessLog::Entry e;
    char addr[AccessLog::kAddrMax];
    e.remote_addr = std::string_view(addr, peer_text(s, addr));
    e.request = request;
    e.status = status;
    e.body_bytes = body_size(reply);
    e.request_ms = start_ms ? access_->loop()->now_ms() - start_ms : 0;
    access_->write(e);
}

}  // namespace zan
