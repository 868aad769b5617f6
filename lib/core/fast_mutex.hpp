// The pipe's and listener's mutex: what std::mutex does, at the cost of one atomic instruction to
// lock and one to unlock when nobody contends (glibc's pthread_mutex_lock/unlock cost some fifty
// instructions between them, on every npipe_read and npipe_write). Contended, it sleeps in
// std::atomic::wait (a futex on Linux). Drepper's "mutex 3": 0 free, 1 locked, 2 locked with
// sleepers maybe. Usable with std::lock_guard, std::unique_lock and std::condition_variable_any.
// Linux; Windows has its own (below).
#pragma once
#include <atomic>
#include <mutex>

namespace npipe {

#if defined(__linux__)
class FastMutex {
public:
    FastMutex() = default;
    FastMutex(const FastMutex &) = delete;
    FastMutex &operator=(const FastMutex &) = delete;

    void lock() {
        int expected = 0;
        if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
            lock_contended(expected);
    }
    bool try_lock() {
        int expected = 0;
        return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed);
    }
    void unlock() {
        if (state_.exchange(0, std::memory_order_release) == 2) state_.notify_one();
    }

private:
    void lock_contended(int seen) {
        if (seen != 2) seen = state_.exchange(2, std::memory_order_acquire);
        while (seen != 0) {
            state_.wait(2, std::memory_order_relaxed);
            seen = state_.exchange(2, std::memory_order_acquire);
        }
    }

    std::atomic<int> state_{0};
};
#elif defined(_WIN32)
// Windows: a slim reader/writer lock taken exclusively (lib/win/fast_mutex.cpp). This toolchain's
// std::mutex (winpthreads) sleeps on an event object it makes at the first contention: a kernel
// object per mutex, and a kernel call per wake-up (under Wine a wineserver request each, measured
// at about two per echoed message when 64 clients share one reactor). An SRW lock waits on its own
// address instead, with no object of its own.
class FastMutex {
public:
    FastMutex() = default;
    FastMutex(const FastMutex &) = delete;
    FastMutex &operator=(const FastMutex &) = delete;

    void lock();
    bool try_lock();
    void unlock();

private:
    void *srw_ = nullptr;  // an SRWLOCK (one pointer; SRWLOCK_INIT is all zero)
};
#else
// Elsewhere std::atomic::wait has no futex underneath, and GCC 12's fallback can miss a
// notify_one (GCC PR 106183): the platform's mutex, as before.
using FastMutex = std::mutex;
#endif

}  // namespace npipe
