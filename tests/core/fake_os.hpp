// A fake OS layer for the portable pipe: a poll whose "OS wait" is a condition variable and a pipe
// whose OS hooks record what the core asked for. Tests drive it the way a backend would (data
// arrives, a write completes, the peer leaves), so the rules of lib/core run natively, in
// milliseconds, under every sanitizer, without Windows or sockets.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/pipe_core.hpp"
#include "lib/core/status.hpp"

namespace fake {

using namespace npipe;

class Poll final : public ReadyPoll {
protected:
    int32_t process_os_events(int32_t timeout_ms) override {
        std::unique_lock lock(mu_);
        const auto bound = std::chrono::milliseconds(timeout_ms < 0 ? 10000 : timeout_ms);
        cv_.wait_for(lock, bound, [&] { return interrupted_; });
        interrupted_ = false;
        return st::ok;
    }
    void interrupt() override {
        std::lock_guard lock(mu_);
        interrupted_ = true;
        cv_.notify_all();
    }
    void on_close() override {}

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool interrupted_ = false;
};

// Writes complete asynchronously, as on Windows: the core hands pieces over, the test completes them.
class Pipe final : public PipeCore {
public:
    explicit Pipe(const PipeSetup &setup) : PipeCore(setup) {}
    using Outcome = OpenAttempt::Outcome;

    // Script for the next os_start_connect and os_try_open.
    int32_t connect_answer = st::again;
    Failure connect_failure;
    OpenAttempt::Outcome open_answer = OpenAttempt::connected;
    int open_attempts = 0;
    // What os_peer_identity answers (the identity on st::ok), and how often it was asked.
    int32_t identity_answer = st::ok;
    PeerIdentity identity;
    int identity_queries = 0;

    // What the core did.
    std::vector<std::string> handed_to_os;  // every piece os_write_more handed over, in order
    size_t in_flight = 0;                   // of those, not yet completed
    int connects_started = 0;
    int disconnects = 0;
    int releases = 0;
    // os_before_wait: how often, and on which thread the last time (read it once that thread joined).
    std::atomic<int> waits_armed{0};
    std::thread::id last_armed_on;
    // os_before_wait throws std::bad_alloc (out of memory arming the read).
    bool arming_throws = false;
    // Runs inside os_write_more, with the pipe's lock held: a test holds a write there.
    std::function<void()> while_handing_over;

    // The OS side, as a backend would report it.
    void arrive(const std::string &bytes, bool end_of_message = true) {
        std::lock_guard lock(mu_);
        read_queue_.push(std::vector<uint8_t>(bytes.begin(), bytes.end()), end_of_message);
        data_arrived();
    }
    void finish_connect(const Failure &failure = Failure{}) {
        std::lock_guard lock(mu_);
        connect_finished(failure);
    }
    void end_of_stream(bool peer_gone_too) {
        std::lock_guard lock(mu_);
        on_eof(peer_gone_too);
    }
    void read_fails(const Failure &failure) {
        std::lock_guard lock(mu_);
        on_read_failed(failure);
    }
    void write_fails(const Failure &failure) {
        std::lock_guard lock(mu_);
        in_flight = 0;
        on_write_failed(failure);
    }
    // The OS completes every piece in flight.
    void complete_writes() {
        std::lock_guard lock(mu_);
        for (size_t i = handed_to_os.size() - in_flight; i < handed_to_os.size(); ++i) {
            write_queue_.completed(handed_to_os[i].size());
            write_queue_.piece_done();
        }
        in_flight = 0;
        os_write_more();
        write_progressed();
    }
    size_t write_used() {
        std::lock_guard lock(mu_);
        return write_queue_.used();
    }
    // What the OS says the peer has not read yet (os_peer_unread; st::pipe: it left without
    // reading them), and how often the core asked.
    void set_unread(int64_t n) {
        std::lock_guard lock(mu_);
        unread_ = n;
    }
    int unread_queries() {
        std::lock_guard lock(mu_);
        return unread_queries_;
    }

private:
    int32_t os_attach(ReadyPoll &) override { return st::ok; }
    int32_t os_start_connect(Failure &failure) override {
        ++connects_started;
        failure = connect_failure;
        return connect_answer;
    }
    OpenAttempt os_try_open() override {
        ++open_attempts;
        OpenAttempt a;
        a.outcome = open_answer;
        if (open_answer == OpenAttempt::busy) a.failure = Failure{st::busy, 0, "busy"};
        if (open_answer == OpenAttempt::absent) a.failure = Failure{st::noent, 0, "absent"};
        if (open_answer == OpenAttempt::failed) a.failure = Failure{st::acces, 0, "denied"};
        return a;
    }
    void os_disconnect() override {
        ++disconnects;
        in_flight = 0;
    }
    void os_write_more() override {
        if (while_handing_over) while_handing_over();
        while (write_queue_.has_queued()) {
            const std::vector<uint8_t> piece = write_queue_.take_front();
            handed_to_os.emplace_back(piece.begin(), piece.end());
            ++in_flight;
        }
    }
    void os_release() override { ++releases; }
    void os_before_wait(std::unique_lock<FastMutex> &) override {
        if (arming_throws) throw std::bad_alloc();
        last_armed_on = std::this_thread::get_id();
        ++waits_armed;
    }
    void os_query_info(PipeInfo &) override {}
    int64_t os_peer_unread() override {
        ++unread_queries_;
        return unread_;
    }
    int32_t os_peer_identity(PeerIdentity &out) override {
        ++identity_queries;
        if (identity_answer == st::ok) out = identity;
        return identity_answer;
    }
    intptr_t os_raw_handle() override { return 42; }

    int64_t unread_ = 0;
    int unread_queries_ = 0;
};

inline PipeSetup server_setup(uint32_t flags = 0) {
    ServerConfig config;
    config.flags = flags;
    return npipe::server_setup(config);
}

// A client whose open has not been made yet (NPIPE_NONBLOCK_OPEN: the attempt starts at registration).
inline PipeSetup pending_client_setup(int32_t timeout_ms, uint32_t flags = 0) {
    ClientConfig config;
    config.flags = flags;
    config.timeout_ms = timeout_ms;
    return npipe::client_setup(config);
}

// A client as the blocking npipe_open hands it out: connected.
inline PipeSetup client_setup(uint32_t flags = 0) {
    PipeSetup setup = pending_client_setup(0, flags);
    setup.open_pending = false;
    setup.connected = true;
    return setup;
}

}  // namespace fake
