// Shared helpers of the C-API suites: unique pipe names, bounded waits on a poll, and RAII
// owners that close handles even when a CHECK fails. Every wait here is bounded so a bug fails
// the test instead of hanging CI.
#pragma once
#include <doctest.h>
#include <npipe.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#if defined(_WIN32)
#include <windows.h>
#else
#include <unistd.h>
#endif

namespace test {

constexpr int32_t kWaitMs = 5000;  // the bound of every "wait until" in the suites

inline unsigned long process_id() {
#if defined(_WIN32)
    return GetCurrentProcessId();
#else
    return static_cast<unsigned long>(getpid());
#endif
}

// A name no other test (or concurrent test process) uses: npipe-test-<pid>-<n>-<tag>.
inline std::string unique_name(const char *tag = "t") {
    static std::atomic<unsigned> counter{0};
    return "npipe-test-" + std::to_string(process_id()) + "-" + std::to_string(counter++) + "-" + tag;
}

// Closes a pipe handle at scope exit unless released.
struct PipeGuard {
    npipe_t h = 0;
    PipeGuard() = default;
    explicit PipeGuard(npipe_t handle) : h(handle) {}
    PipeGuard(const PipeGuard &) = delete;
    PipeGuard &operator=(const PipeGuard &) = delete;
    ~PipeGuard() { reset(); }
    void reset(npipe_t handle = 0) {
        if (h) npipe_close(h);
        h = handle;
    }
    npipe_t release() {
        npipe_t r = h;
        h = 0;
        return r;
    }
    operator npipe_t() const { return h; }
};

// A poll that closes itself, with bounded waits that collect events per token.
struct Poller {
    npipe_poll_t h = 0;
    std::vector<npipe_event_t> last;
    Poller() { REQUIRE(npipe_poll_create(&h) == NPIPE_OK); }
    Poller(const Poller &) = delete;
    Poller &operator=(const Poller &) = delete;
    ~Poller() {
        if (h) npipe_poll_close(h);
    }
    operator npipe_poll_t() const { return h; }

    // One npipe_poll_wait; returns its result and keeps the events in `last`.
    int32_t wait(int32_t timeout_ms, size_t capacity = 64) {
        last.assign(capacity, npipe_event_t{0, 0, 0});
        int32_t n = npipe_poll_wait(h, last.data(), capacity, timeout_ms);
        last.resize(n > 0 ? static_cast<size_t>(n) : 0);
        return n;
    }

    // Waits (bounded) until an event for `token` with any bit of `mask` arrives; returns the
    // union of that token's bits seen in the final batch, or 0 on timeout.
    uint32_t wait_for(uint64_t token, uint32_t mask, int32_t bound_ms = kWaitMs) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
        while (std::chrono::steady_clock::now() < deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (wait(static_cast<int32_t>(left.count()) + 1) < 0) return 0;
            uint32_t bits = 0;
            for (const auto &e : last)
                if (e.token == token) bits |= e.events;
            if (bits & mask) return bits;
        }
        return 0;
    }

    // Repeats `step` after each wait until it returns true or the bound passes.
    bool pump_until(const std::function<bool()> &step, int32_t bound_ms = kWaitMs) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
        for (;;) {
            if (step()) return true;
            if (std::chrono::steady_clock::now() >= deadline) return false;
            wait(50);
        }
    }
};

inline npipe_t create_server(const std::string &name, uint32_t flags = 0, uint32_t max_instances = 0) {
    npipe_server_options_t opts;
    npipe_server_options_init(&opts);
    opts.flags = flags;
    opts.max_instances = max_instances;
    npipe_t h = 0;
    const int32_t rc = npipe_create(name.c_str(), &opts, &h);
    INFO("npipe_create: ", npipe_err_name(rc), " ", npipe_last_error_message());
    REQUIRE(rc == NPIPE_OK);
    return h;
}

inline npipe_t open_client(const std::string &name, uint32_t flags = 0, int32_t timeout_ms = kWaitMs) {
    npipe_client_options_t opts;
    npipe_client_options_init(&opts);
    opts.flags = flags;
    opts.timeout_ms = timeout_ms;
    npipe_t h = 0;
    const int32_t rc = npipe_open(name.c_str(), &opts, &h);
    INFO("npipe_open: ", npipe_err_name(rc), " ", npipe_last_error_message());
    REQUIRE(rc == NPIPE_OK);
    return h;
}

// Reads exactly `want` bytes (bounded), polling on NPIPE_EAGAIN. Returns what arrived.
inline std::string read_exactly(Poller &poll, npipe_t pipe, size_t want, size_t chunk = 65536,
                                int32_t bound_ms = kWaitMs) {
    std::string got;
    std::vector<char> buf(chunk);
    poll.pump_until(
        [&] {
            for (;;) {
                if (got.size() >= want) return true;
                int64_t n = npipe_read(pipe, buf.data(), std::min(buf.size(), want - got.size()));
                if (n > 0) {
                    got.append(buf.data(), static_cast<size_t>(n));
                    continue;
                }
                return n != NPIPE_EAGAIN;  // EOF or error: stop
            }
        },
        bound_ms);
    return got;
}

// Writes all of `data` (bounded), polling on NPIPE_EAGAIN. Returns the bytes accepted.
inline size_t write_all(Poller &poll, npipe_t pipe, const std::string &data, int32_t bound_ms = kWaitMs) {
    size_t done = 0;
    poll.pump_until(
        [&] {
            while (done < data.size()) {
                int64_t n = npipe_write(pipe, data.data() + done, data.size() - done);
                if (n > 0) {
                    done += static_cast<size_t>(n);
                    continue;
                }
                return n != NPIPE_EAGAIN;
            }
            return true;
        },
        bound_ms);
    return done;
}

}  // namespace test
