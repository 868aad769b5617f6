// ThreadReads: see lib/win/thread_reads.hpp and docs/design.md, "I/O whose thread ended".
#include "lib/win/thread_reads.hpp"

#include <algorithm>

#include "lib/win/nt_api.hpp"
#include "lib/win/overlapped_op.hpp"

namespace npipe::win {
namespace {

// How long an ending thread waits for its cancelled reads' results: each is one routine the
// wineserver queues to the thread at once, so this bound is only reached when Wine misbehaves.
constexpr ULONGLONG kSettleBoundMs = 1000;

void WINAPI on_thread_end(void *value) {
    auto *held = static_cast<std::shared_ptr<ThreadReads> *>(value);
    if (!held) return;
    (*held)->thread_ending();
    delete held;
}

// The fiber-local slot whose callback runs on each thread as it ends; FLS_OUT_OF_INDEXES when not
// under Wine (nothing to do) or when none is left (then reads are not listed, as before).
DWORD slot() {
    static const DWORD index = running_on_wine() ? FlsAlloc(on_thread_end) : FLS_OUT_OF_INDEXES;
    return index;
}

// The calling thread's list, made on its first read; nullptr when reads are not listed.
std::shared_ptr<ThreadReads> *this_thread_reads() {
    const DWORD index = slot();
    if (index == FLS_OUT_OF_INDEXES) return nullptr;
    auto *held = static_cast<std::shared_ptr<ThreadReads> *>(FlsGetValue(index));
    if (held) return held;
    held = new std::shared_ptr<ThreadReads>(std::make_shared<ThreadReads>());
    if (!FlsSetValue(index, held)) {
        delete held;
        return nullptr;
    }
    return held;
}

}  // namespace

void ThreadReads::started(OverlappedOp &op, HANDLE file) {
    std::shared_ptr<ThreadReads> *held = this_thread_reads();
    if (!held) return;
    ThreadReads &reads = **held;
    std::lock_guard lock(reads.mu_);
    reads.in_flight_.push_back(&op);
    op.file = file;
    op.starter = *held;
}

void ThreadReads::finished(OverlappedOp &op) {
    if (!op.starter) return;
    const std::shared_ptr<ThreadReads> reads = std::move(op.starter);
    std::lock_guard lock(reads->mu_);
    auto &list = reads->in_flight_;
    const auto it = std::find(list.begin(), list.end(), &op);
    if (it == list.end()) return;
    *it = list.back();
    list.pop_back();
}

void ThreadReads::unload() {
    const DWORD index = slot();
    if (index != FLS_OUT_OF_INDEXES) FlsFree(index);  // runs the callback for each thread's list
}

void ThreadReads::thread_ending() {
    // The slot freed while the thread lives on (the DLL unloaded): not this thread's end.
    if (GetCurrentThreadId() != thread_id_) return;
    {
        std::lock_guard lock(mu_);
        if (in_flight_.empty()) return;
        for (OverlappedOp *op : in_flight_) {
            op->canceled_as_thread_ended = true;
            CancelIoEx(op->file, &op->ov);
        }
    }
    // Each read's result (its bytes if it completed before the cancel, or the cancel) is written
    // by a routine queued to this thread, which a wait at the wineserver runs: a listed op stays
    // alive (its packet, taken elsewhere, unlists it first), and only this thread writes its
    // OVERLAPPED. Not Sleep: Wine sleeps without asking the server, and runs nothing.
    const ULONGLONG until = GetTickCount64() + kSettleBoundMs;
    for (;;) {
        {
            std::lock_guard lock(mu_);
            const bool unsettled = std::any_of(in_flight_.begin(), in_flight_.end(), [](const OverlappedOp *op) {
                return op->ov.Internal == static_cast<ULONG_PTR>(STATUS_PENDING);
            });
            if (!unsettled) return;
        }
        if (GetTickCount64() >= until) return;
        WaitForSingleObject(GetCurrentProcess(), 1);
    }
}

}  // namespace npipe::win
