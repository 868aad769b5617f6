// The Windows poll: an I/O completion port under the portable ReadyPoll. Pipe handles join the
// port (key kPipeOpKey); their ops complete here and the pipes turn the results into readiness
// through the ReadyPoll ready list. The port also drives the linger of closed pipes: the OS wait is
// bounded by the nearest linger deadline, so closed pipes are released on time while the poll is
// waited on.
#pragma once
#include <windows.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "lib/core/ready_poll.hpp"
#include "lib/win/overlapped_op.hpp"

namespace npipe::win {

class IocpPoll final : public ReadyPoll {
public:
    using Clock = std::chrono::steady_clock;

    explicit IocpPoll(HANDLE port) : port_(port) {}
    ~IocpPoll() override;

    // Joins `handle` to the port for life and remembers `target` so that closing the poll can stop
    // it. NPIPE_EEXIST when the handle already belongs to another completion port.
    int32_t associate(HANDLE handle, const std::weak_ptr<OpTarget> &target);

    // Bookkeeping of ops whose packet is still due (reaped at close).
    void op_started() { outstanding_.fetch_add(1, std::memory_order_relaxed); }
    void op_finished() { outstanding_.fetch_sub(1, std::memory_order_relaxed); }

    // A closed pipe with bytes still to deliver: keep it alive until it finishes or `deadline`.
    // False if the poll is closing (nothing would drive the linger): the caller closes at once.
    bool add_lingering(std::shared_ptr<OpTarget> target, Clock::time_point deadline);
    void remove_lingering(const OpTarget *target);

protected:
    int32_t process_os_events(int32_t timeout_ms) override;
    void interrupt() override;
    void on_close() override;

private:
    struct Lingering {
        Clock::time_point deadline;
        std::shared_ptr<OpTarget> target;
    };

    // Handles one dequeued packet. Runs without poll locks (pipes lock themselves).
    void dispatch(const OVERLAPPED_ENTRY &entry);
    void expire_lingering();
    DWORD bound_by_linger(DWORD wait_ms);
    void release_port_locked();

    std::mutex mu_;  // everything below except the atomics; taken after a pipe's mutex, never before
    HANDLE port_;
    bool in_wait_ = false;             // a thread is inside GetQueuedCompletionStatusEx on port_
    bool port_close_pending_ = false;  // closing: the waiter closes port_ when it leaves
    bool closing_ = false;
    std::vector<std::weak_ptr<OpTarget>> targets_;
    size_t targets_prune_at_ = 64;
    std::vector<Lingering> lingering_;
    std::atomic<bool> interrupt_posted_{false};  // at most one interrupt packet in flight
    std::atomic<int64_t> outstanding_{0};
};

}  // namespace npipe::win
