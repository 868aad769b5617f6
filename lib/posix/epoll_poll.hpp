// The Linux reactor: an epoll instance plus an eventfd for interrupts, under the portable
// ReadyPoll (ready list, wakes, single waiter, honoured timeouts).
//
// OS sources (pipes) are kept in an id table of weak pointers; epoll_event.data.u64 carries
// (id << 32) | tag, where the tag is the source's own (e.g. kind and connection generation), so a
// stale event can never reach a freed object or a later connection. The waiter looks a source up
// under the table lock, drops the lock, then calls it (lock order: pipe -> poll, never poll -> pipe
// while holding a poll lock). Stopping pipes at close and lingering are ReadyPoll's.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "lib/core/ready_poll.hpp"

namespace npipe::posix {

class EpollSource {
public:
    virtual ~EpollSource() = default;
    // An epoll event for one of the source's fds; `tag` is what the source passed to ctl().
    virtual void on_os_event(uint32_t tag, uint32_t events) = 0;
};

class EpollPoll final : public ReadyPoll {
public:
    static int32_t create(std::shared_ptr<EpollPoll> &out);
    EpollPoll(int epfd, int evfd) : epfd_(epfd), evfd_(evfd) {}
    ~EpollPoll() override;

    // Source table. add_source returns the id to pass to ctl().
    uint32_t add_source(std::weak_ptr<EpollSource> source);
    void remove_source(uint32_t id);

    // epoll_ctl(op, fd) with data (id << 32 | tag). Returns 0 or the errno.
    int ctl(int op, int fd, uint32_t id, uint32_t tag, uint32_t events) noexcept;

protected:
    int32_t process_os_events(int32_t timeout_ms) override;
    void interrupt() override;
    void on_close() override;

private:
    const int epfd_;
    const int evfd_;
    std::atomic<bool> interrupt_pending_{false};
    std::mutex src_mu_;  // guards sources_, next_id_
    std::unordered_map<uint32_t, std::weak_ptr<EpollSource>> sources_;
    uint32_t next_id_ = 1;  // id 0 is the eventfd
};

}  // namespace npipe::posix
