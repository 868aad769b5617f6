// The Windows poll: an I/O completion port under the portable ReadyPoll. Pipe handles join the
// port (key kPipeOpKey); their ops complete here and the pipes turn the results into readiness
// through the ReadyPoll ready list. Stopping pipes at close and lingering are ReadyPoll's; this
// class only waits on the port, interrupts it, and reaps cancelled ops at close.
#pragma once
#include <windows.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "lib/core/ready_poll.hpp"
#include "lib/win/overlapped_op.hpp"

namespace npipe::win {

class IocpPoll final : public ReadyPoll {
public:
    explicit IocpPoll(HANDLE port) : port_(port) {}
    ~IocpPoll() override;

    // Joins `handle` to the port for life. NPIPE_EEXIST when the handle already belongs to another
    // completion port.
    int32_t associate(HANDLE handle);

    // Bookkeeping of ops whose packet is still due (reaped at close).
    void op_started() { outstanding_.fetch_add(1, std::memory_order_relaxed); }
    void op_finished() { outstanding_.fetch_sub(1, std::memory_order_relaxed); }

protected:
    int32_t process_os_events(int32_t timeout_ms) override;
    void interrupt() override;
    void on_close() override;

private:
    // Handles one dequeued packet. Runs without poll locks (pipes lock themselves).
    void dispatch(const OVERLAPPED_ENTRY &entry);
    void release_port_locked();
    // How many packets the next wait may take (see iocp_poll.cpp: one while the poll is quiet).
    ULONG next_batch();
    void learn_from_batch(ULONG batch, ULONG count);

    std::mutex mu_;  // everything below except the atomics; taken after a pipe's mutex, never before
    HANDLE port_;
    bool in_wait_ = false;             // a thread is inside GetQueuedCompletionStatusEx on port_
    bool port_close_pending_ = false;  // closing: the waiter closes port_ when it leaves
    bool closing_ = false;
    std::atomic<bool> interrupt_posted_{false};  // at most one interrupt packet in flight
    std::atomic<int64_t> outstanding_{0};
    // Waits left that take one packet before a full batch looks at the load again. Only the
    // poll's one waiter uses it, but the next wait may come from another thread.
    std::atomic<uint32_t> single_waits_left_{0};
};

}  // namespace npipe::win
