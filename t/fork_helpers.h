// Helpers for the unit tests that fork: a Child that runs a function and
// is always reaped, a Gate that passes a byte or a number across fork,
// and reads and waits with deadlines.
#ifndef ZAN_T_FORK_HELPERS_H
#define ZAN_T_FORK_HELPERS_H

#include <stdint.h>
#include <sys/types.h>

#include <functional>

#include "zan/fd.h"

namespace zt {

// A forked child that runs `body` and _exit()s with its return value (120
// if the parent died before it got going). The destructor SIGKILLs and
// reaps it by pid if the test did not, so a failed assertion never leaves
// a process behind.
class Child {
public:
    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child();

    bool start(const std::function<int()>& body);
    // Exit code of the child (128+signal if killed), or -1 if it is still
    // running after timeout_ms.
    int wait(int timeout_ms);
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

// A one-byte signal across fork, over a pipe made by the constructor: one
// process open()s the gate, the other wait()s for it. wait() first closes
// its own copy of the write end, so that it ends at once (false) when the
// other process dies without opening the gate.
class Gate {
public:
    Gate();
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;
    bool open();
    // False on timeout, EOF, or when the pipe could not be made.
    bool wait(int timeout_ms);
    // A number (a port, a pid) instead of the byte, as often as needed:
    // put() in one process, get() in the other (which, like wait(), first
    // closes its own write end).
    bool put(int32_t v);
    bool get(int32_t* v, int timeout_ms);

private:
    zan::Fd rd_, wr_;
};

// Waits for the forked child pid. Returns its wait status, or kills it and
// returns -1 when it has not exited within timeout_ms.
int wait_child(pid_t pid, int timeout_ms);

// Reads one byte with a deadline; false on timeout or EOF.
bool read_byte(int fd, int timeout_ms, char* c);

}  // namespace zt

#endif
