// An echo server on its own thread with its own poll (for `demo` and `bench`): start() returns
// once the first instance waits for clients (or with the failure that prevented it); stop() ends
// the server and joins the thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "echo_server.hpp"

namespace tool {

class EchoServerThread {
public:
    ~EchoServerThread() { stop(); }
    Failure start(const EchoServerConfig &cfg);
    EchoStats stop();  // safe to call twice
    const Failure &failure() const { return failure_; }  // after stop(): why the server ended early

private:
    EchoServerConfig cfg_;
    npipe_poll_t poll_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool ready_ = false, finished_ = false;
    Failure failure_;
    EchoStats stats_;
};

}  // namespace tool
