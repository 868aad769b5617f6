// The reads each thread has in flight, so that a thread that ends takes none of their bytes with
// it (Wine only; docs/design.md, "I/O whose thread ended"). Wine writes a read's result, bytes
// included, on the thread that started it, in a routine the wineserver queues to that thread when
// the read completes; a thread that ends with that routine queued drops the bytes. So, under Wine,
// a read is listed with its thread while it is in flight, and when the thread ends (a fiber-local
// slot's callback, which runs on the ending thread) its reads are cancelled and the thread waits,
// bounded, until each one's result is written: each read then brings its bytes or ends cancelled,
// and its pipe starts the next read on the thread that takes the packet. On Windows the result of
// I/O on a handle tied to a completion port does not depend on its thread, and nothing is listed.
#pragma once
#include <windows.h>

#include <memory>
#include <mutex>
#include <vector>

namespace npipe::win {

struct OverlappedOp;

class ThreadReads {
public:
    // `op`, a read about to be issued on `file` by the calling thread, is in flight from now on.
    // Call before the ReadFile: its packet may be taken on another thread before ReadFile returns.
    static void started(OverlappedOp &op, HANDLE file);
    // `op` is no longer in flight: its packet was taken, or it finished without one.
    static void finished(OverlappedOp &op);

    // The DLL is being unloaded: the slot (and its callback) goes.
    static void unload();

    // The fiber-local slot's callback: the thread ends (or the slot is freed).
    void thread_ending();

private:
    std::mutex mu_;
    std::vector<OverlappedOp *> in_flight_;  // guarded by mu_; each op stays alive while listed
    DWORD thread_id_ = GetCurrentThreadId();
};

}  // namespace npipe::win
