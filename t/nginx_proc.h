// Debian's nginx as a test peer: started in the foreground with its own
// prefix in a temporary directory, on a loopback port picked here, and
// waited for until it answers.
#ifndef ZAN_T_NGINX_PROC_H
#define ZAN_T_NGINX_PROC_H

#include <string>

#include "t/proc_helpers.h"

namespace zt {

extern const char* const kNginx;  // /usr/sbin/nginx, installed by t/prereqs.sh

// A loopback port that was free a moment ago (nginx cannot report one it
// picked itself); 0 on failure.
int free_port();

// Starts nginx in *p with prefix dir (its pid file, error.log and temp
// directories there). `http` is the inside of the http block: upstreams
// and servers, where every "{PORT}" becomes the port picked (*port). It
// is up once GET `probe` answers 200. Returns "" then, else what went
// wrong with nginx's output and error log.
std::string start_nginx(Proc* p, const std::string& dir, const std::string& http, const std::string& probe,
                        int* port);

}  // namespace zt

#endif
