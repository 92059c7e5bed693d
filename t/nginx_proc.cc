#include "t/nginx_proc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "t/http_client.h"
#include "t/net_helpers.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

namespace zt {

const char* const kNginx = "/usr/sbin/nginx";

int free_port()
{
    Sock s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = loopback_addr(0);
    if (!s.ok() || ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0)
        return 0;
    socklen_t len = sizeof(a);
    if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) < 0)
        return 0;
    return ntohs(a.sin_port);
}

namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

std::string conf(const std::string& dir, int port, const std::string& http)
{
    std::string temp;
    for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
        temp += std::string("    ") + t + "_temp_path " + dir + "/" + t + ";\n";
    return "worker_processes 1;\n"
           "daemon off;\n"
           "pid " + dir + "/nginx.pid;\n"
           "error_log " + dir + "/error.log warn;\n"
           "events { worker_connections 1024; }\n"
           "http {\n"
           "    access_log off;\n" + temp +
           replace_all(http, "{PORT}", std::to_string(port)) +
           "}\n";
}

}  // namespace

std::string start_nginx(Proc* p, const std::string& dir, const std::string& http, const std::string& probe,
                        int* port)
{
    for (int attempt = 0; attempt < 3; attempt++) {  // the free port may be taken meanwhile
        *port = free_port();
        if (!write_file(dir + "/nginx.conf", conf(dir, *port, http)))
            return "cannot write nginx.conf";
        if (!p->spawn({kNginx, "-p", dir, "-e", dir + "/error.log", "-c", dir + "/nginx.conf"}))
            return std::string("cannot start ") + kNginx;
        long long deadline = now_ms() + scaled(5000);
        while (now_ms() < deadline && p->running()) {
            HttpClient c(*port);
            HttpReply r;
            if (c.ok() && c.request("GET " + probe + " HTTP/1.1\r\nHost: probe\r\n\r\n", &r) && r.status == 200)
                return "";
            wait_fd(-1, 0, 20);  // polled: nginx says nothing when ready
        }
        p->wait_exit(scaled(3000));
        if (p->output().find("Address already in use") == std::string::npos)
            break;
    }
    return "nginx did not come up:\n" + p->output() + read_file(dir + "/error.log");
}

}  // namespace zt
