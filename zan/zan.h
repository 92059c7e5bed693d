// zan: umbrella header. Includes every public header of the library.
#ifndef ZAN_ZAN_H
#define ZAN_ZAN_H

#include "zan/buffer.h"
#include "zan/callbacks.h"
#include "zan/channel.h"
#include "zan/event_loop.h"
#include "zan/fd.h"
#include "zan/hosts_resolver.h"
#include "zan/http_client.h"
#include "zan/http_proxy.h"
#include "zan/http_parser.h"
#include "zan/http_request.h"
#include "zan/http_response.h"
#include "zan/http_server.h"
#include "zan/inet_addr.h"
#include "zan/log.h"
#include "zan/metrics.h"
#include "zan/msg_queue.h"
#include "zan/server_config.h"
#include "zan/shm.h"
#include "zan/shm_mutex.h"
#include "zan/socket.h"
#include "zan/sys.h"
#include "zan/tcp_client.h"
#include "zan/tcp_server.h"

#endif
