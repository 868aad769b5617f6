#include "server_thread.hpp"

namespace tool {

Failure EchoServerThread::start(const EchoServerConfig &cfg) {
    cfg_ = cfg;
    cfg_.stop = &stop_;
    int32_t rc = npipe_poll_create(&poll_);
    if (rc < 0) return capture(rc, "cannot create a poll");
    thread_ = std::thread([this] {
        Failure f = run_echo_server(
            poll_, cfg_, stats_,
            [](void *self) {
                auto *t = static_cast<EchoServerThread *>(self);
                std::lock_guard<std::mutex> lock(t->mu_);
                t->ready_ = true;
                t->cv_.notify_all();
            },
            this);
        std::lock_guard<std::mutex> lock(mu_);
        failure_ = f;
        finished_ = true;
        cv_.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return ready_ || finished_; });
    if (!ready_) {
        Failure f = failure_;
        lock.unlock();
        stop();
        return f;
    }
    return Failure{};
}

EchoStats EchoServerThread::stop() {
    if (thread_.joinable()) {
        stop_ = true;
        npipe_poll_wake(poll_, kStopToken);
        thread_.join();
    }
    if (poll_) {
        npipe_poll_close(poll_);
        poll_ = 0;
    }
    return stats_;
}

}  // namespace tool
