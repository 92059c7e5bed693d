// The interface HttpServer exposes: the TcpServer members that would
// bypass its protocol layer are not accessible on it (checked at
// compile time: access is part of overload resolution, so the
// detectors below see only what a user may call), and those an HTTP
// application uses are.
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <gtest/gtest.h>

#include "zan/http_server.h"
#include "zan/tcp_server.h"

namespace {

template <class T>
using OnReceive = decltype(std::declval<T&>().on_receive(zan::ReceiveCallback()));
template <class T>
using SetFrameHook = decltype(std::declval<T&>().set_frame_hook(zan::FrameHook()));
template <class T>
using SetProtocol = decltype(std::declval<T&>().set_protocol(zan::ProtocolSpec()));
template <class T>
using Send = decltype(std::declval<T&>().send(zan::SessionId(), std::string_view()));
template <class T>
using Close = decltype(std::declval<T&>().close(zan::SessionId()));
template <class T>
using OnDrained = decltype(std::declval<T&>().on_drained(zan::SessionCallback()));
template <class T>
using WatchOutput = decltype(std::declval<T&>().watch_output(zan::SessionId(), size_t()));
template <class T>
using Acknowledge = decltype(std::declval<T&>().acknowledge(zan::SessionId(), size_t()));
template <class T>
using OnClose = decltype(std::declval<T&>().on_close(zan::SessionCallback()));
template <class T>
using Taskwait = decltype(std::declval<T&>().taskwait(std::string_view()));
template <class T>
using ClientInfo = decltype(std::declval<T&>().client_info(zan::SessionId()));
template <class T>
using ToBase = decltype(static_cast<zan::TcpServer&>(std::declval<T&>()));

template <template <class> class Op, class T, class = void>
struct Callable : std::false_type {};
template <template <class> class Op, class T>
struct Callable<Op, T, std::void_t<Op<T>>> : std::true_type {};

TEST(HttpServerApi, ProtocolBypassesAreNotAccessible)
{
    static_assert(Callable<OnReceive, zan::TcpServer>::value, "detector works");
    static_assert(!Callable<OnReceive, zan::HttpServer>::value, "on_receive");
    static_assert(!Callable<SetFrameHook, zan::HttpServer>::value, "set_frame_hook");
    static_assert(!Callable<SetProtocol, zan::HttpServer>::value, "set_protocol");
    static_assert(!Callable<Send, zan::HttpServer>::value, "send");
    static_assert(!Callable<Close, zan::HttpServer>::value, "close");
    static_assert(Callable<OnDrained, zan::TcpServer>::value, "detector works");
    static_assert(!Callable<OnDrained, zan::HttpServer>::value, "on_drained");
    static_assert(!Callable<WatchOutput, zan::HttpServer>::value, "watch_output");
    static_assert(!Callable<Acknowledge, zan::HttpServer>::value, "acknowledge");
    static_assert(!std::is_convertible<zan::HttpServer&, zan::TcpServer&>::value, "no upcast");
    SUCCEED();
}

TEST(HttpServerApi, ApplicationMembersAreAccessible)
{
    static_assert(Callable<OnClose, zan::HttpServer>::value, "on_close");
    static_assert(Callable<Taskwait, zan::HttpServer>::value, "taskwait");
    static_assert(Callable<ClientInfo, zan::HttpServer>::value, "client_info");
    zan::HttpServer srv;
    srv.config().worker_num = 3;
    EXPECT_EQ(srv.config().worker_num, 3);
    EXPECT_EQ(srv.role(), zan::Role::master);
    EXPECT_EQ(srv.loop(), nullptr);
}

}  // namespace
