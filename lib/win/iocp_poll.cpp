#include "lib/win/iocp_poll.hpp"

#include <algorithm>

#include "lib/core/backend.hpp"
#include "lib/core/deadline.hpp"
#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/win/win_error.hpp"

namespace npipe {

int32_t create_poll(std::shared_ptr<Poll> &out) {
    // Concurrency 0 (= processors), not 1: ReadyPoll already admits one waiter, and a limit of 1
    // would keep npipe_poll_close on another thread from reaping packets while the waiter thread
    // is busy outside the port.
    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
    if (!port) return win::fail_win32(GetLastError(), "CreateIoCompletionPort (new port)");
    try {
        out = std::make_shared<win::IocpPoll>(port);
    } catch (...) {
        CloseHandle(port);
        throw;
    }
    return st::ok;
}

}  // namespace npipe

namespace npipe::win {
namespace {

constexpr ULONG kBatch = 64;           // packets dequeued per GetQueuedCompletionStatusEx
constexpr uint32_t kSingleWaits = 15;  // waits taking one packet between two that take a batch
constexpr DWORD kReapBudgetMs = 2000;  // how long closing waits for cancelled ops' packets
constexpr DWORD kReapSliceMs = 50;

}  // namespace

IocpPoll::~IocpPoll() {
    // close() normally released the port; this covers a poll that never got a handle.
    if (port_) CloseHandle(port_);
}

int32_t IocpPoll::associate(HANDLE handle) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_ || !port_) return fail(st::badf, "the poll is closed");
    if (!CreateIoCompletionPort(handle, port_, kPipeOpKey, 0)) {
        const DWORD err = GetLastError();
        // A handle joins one port for life; the second association fails with this code.
        if (err == ERROR_INVALID_PARAMETER)
            return fail_win32_as(st::exist, err,
                                 "CreateIoCompletionPort (the handle already belongs to another completion port)");
        return fail_win32(err, "CreateIoCompletionPort (joining the pipe to the poll)");
    }
    return st::ok;
}

constexpr ULONG_PTR kStatusAlerted = 0x101;  // STATUS_ALERTED (ntstatus.h, which clashes with windows.h)

void IocpPoll::dispatch(const OVERLAPPED_ENTRY &entry) {
    if (entry.lpCompletionKey == kInterruptKey) {
        interrupt_posted_.store(false, std::memory_order_release);
        return;
    }
    if (entry.lpCompletionKey != kPipeOpKey || !entry.lpOverlapped) return;  // not ours: ignore
    // The packet gives the op back to us: exactly one packet per issued op, so ownership returns here.
    std::unique_ptr<OverlappedOp> op(CONTAINING_RECORD(entry.lpOverlapped, OverlappedOp, ov));
    ThreadReads::finished(*op);  // before its result is looked at: the thread that started it may be ending
    // The status is the OVERLAPPED's, which the OS writes before it queues the packet. Under Wine
    // a thread that ends just as its op completes never writes it (the completion routine meant
    // to is dropped with the thread) and it still says pending: then the packet's copy of the
    // status (the entry's Internal, the I/O status block it carries) is the op's. STATUS_ALERTED
    // there is Wine's "the result waits at the server", which nobody will now fetch.
    const ULONG_PTR written = entry.lpOverlapped->Internal;
    ULONG_PTR status = written;
    if (written == static_cast<ULONG_PTR>(STATUS_PENDING)) {
        op->status_block_lost = true;
        status = entry.Internal;
        if (status == kStatusAlerted) {
            op->bytes_left_behind = true;
            status = 0;
        }
    }
    const DWORD error = win32_from_ntstatus(status);
    std::shared_ptr<OpTarget> target = std::move(op->target);
    if (target) {
        try {
            target->complete(*op, entry.dwNumberOfBytesTransferred, error);
        } catch (...) {
            // Out of memory while re-issuing: the pipe has recorded what it could; never let one
            // packet take the others down with it.
        }
    }
    op.reset();
    op_finished();
    // `target` (maybe the pipe's last reference) goes here, after the pipe released its lock.
}

int32_t IocpPoll::process_os_events(int32_t timeout_ms) {
    HANDLE port;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!port_ || port_close_pending_) return fail(st::badf, "the poll was closed");
        port = port_;
        in_wait_ = true;
    }
    const DWORD wait_ms = timeout_ms < 0 ? INFINITE : static_cast<DWORD>(timeout_ms);

    const ULONG batch = next_batch();
    OVERLAPPED_ENTRY entries[kBatch];
    ULONG count = 0;
    const BOOL ok = GetQueuedCompletionStatusEx(port, entries, batch, &count, wait_ms, FALSE);
    const DWORD err = ok ? 0 : GetLastError();
    // Wine 8 returns FALSE with count == 1 on a timeout: the count is only meaningful on TRUE.
    if (!ok) count = 0;
    learn_from_batch(batch, count);
    {
        std::lock_guard<std::mutex> lock(mu_);
        in_wait_ = false;
        if (port_close_pending_) release_port_locked();
    }
    for (ULONG i = 0; i < count; ++i) dispatch(entries[i]);
    if (!ok && err != WAIT_TIMEOUT && !is_closed()) return fail_win32(err, "GetQueuedCompletionStatusEx");
    return st::ok;
}

// Asking for a batch costs Wine a request per packet plus one that finds the port empty, so a
// wait that finds one packet costs a request more than a wait for one packet would; Windows makes
// one kernel transition either way. A private poll (npipe_wait) serves one pipe, or a listener
// and its pipes: one packet at a time, always. Any other poll takes full batches while they come
// back with more than one packet; once one brings a single packet (or none), the poll is quiet and
// the next waits take one packet each, with a full batch every kSingleWaits + 1 waits to see
// whether the load came back. A busy poll on Windows pays at most kSingleWaits extra transitions
// before it batches again.
ULONG IocpPoll::next_batch() {
    if (is_private()) return 1;
    uint32_t left = single_waits_left_.load(std::memory_order_relaxed);
    if (left == 0) return kBatch;
    single_waits_left_.store(left - 1, std::memory_order_relaxed);
    return 1;
}

void IocpPoll::learn_from_batch(ULONG batch, ULONG count) {
    if (batch == kBatch) single_waits_left_.store(count <= 1 ? kSingleWaits : 0, std::memory_order_relaxed);
}

void IocpPoll::interrupt() {
    if (interrupt_posted_.exchange(true, std::memory_order_acq_rel)) return;  // one is already queued
    std::lock_guard<std::mutex> lock(mu_);
    if (port_ && !PostQueuedCompletionStatus(port_, 0, kInterruptKey, nullptr))
        interrupt_posted_.store(false, std::memory_order_release);
}

void IocpPoll::release_port_locked() {
    if (port_) CloseHandle(port_);
    port_ = nullptr;
    port_close_pending_ = false;
}

void IocpPoll::on_close() {
    // ReadyPoll has stopped every pipe of this poll: each cancelled its ops and closed its handle.
    HANDLE port;
    {
        std::lock_guard<std::mutex> lock(mu_);
        closing_ = true;
        port = port_;
    }

    // Reap the cancelled ops' packets (bounded): they own memory and pipe references. A waiter on
    // another thread may dequeue some of them too; both sides dispatch safely.
    if (port) {
        const Deadline deadline = Deadline::after_ms(kReapBudgetMs);
        while (outstanding_.load(std::memory_order_relaxed) > 0 && !deadline.passed()) {
            OVERLAPPED_ENTRY entries[kBatch];
            ULONG count = 0;
            if (!GetQueuedCompletionStatusEx(port, entries, kBatch, &count, kReapSliceMs, FALSE)) continue;
            for (ULONG i = 0; i < count; ++i) dispatch(entries[i]);
        }
        // Ops that never came back (none are expected once the handles are closed) leak only their
        // own memory; the OS handles are already released.
    }

    std::lock_guard<std::mutex> lock(mu_);
    if (in_wait_) {
        // A waiter is blocked in the port: wake it; it closes the port on its way out, so no thread
        // ever uses a closed (and possibly reused) port handle.
        port_close_pending_ = true;
        if (port_) PostQueuedCompletionStatus(port_, 0, kInterruptKey, nullptr);
    } else {
        release_port_locked();
    }
}

}  // namespace npipe::win
