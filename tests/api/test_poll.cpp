// The poll (the header's poll section): timeouts, wake, batching, the single waiter, interests, edge and
// level triggering, re-evaluation at registration, and stale tokens after deregister / close.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "support.hpp"

using namespace test;

namespace {

size_t count_bits(const std::vector<npipe_event_t> &batch, uint64_t token, uint32_t bit) {
    size_t n = 0;
    for (const auto &e : batch)
        if (e.token == token && (e.events & bit)) ++n;
    return n;
}

// Reads everything available now (until EAGAIN); returns it. Fails on errors and EOF.
std::string drain(npipe_t pipe) {
    std::string got;
    char buf[4096];
    for (;;) {
        const int64_t n = npipe_read(pipe, buf, sizeof buf);
        if (n > 0) {
            got.append(buf, static_cast<size_t>(n));
            continue;
        }
        CHECK(n == NPIPE_EAGAIN);
        return got;
    }
}

// Three 300 ms waits that must each return 0 events and last the full time, while the caller's
// background activity produces internal completions but no event.
void expect_full_quiet_waits(npipe_poll_t poll) {
    for (int round = 0; round < 3; ++round) {
        const Stopwatch sw;
        npipe_event_t ev[8];
        const int32_t n = npipe_poll_wait(poll, ev, 8, 300);
        CHECK(n == 0);
        CHECK(sw.ms() >= 290);
    }
}

// A thread waiting on a poll (20 ms at a time) that counts the events `counted` accepts, for a
// test thread that reads and writes meanwhile; stopped and joined when it goes (also when a
// REQUIRE ends the test early).
class PollThread {
public:
    PollThread(npipe_poll_t poll, std::function<bool(const npipe_event_t &)> counted)
        : counted_(std::move(counted)), thread_([this, poll] { run(poll); }) {}
    ~PollThread() {
        stop_ = true;
        thread_.join();
    }
    uint64_t heard() {
        std::lock_guard lock(mu_);
        return heard_;
    }
    // Waits (at most `bound`) until an event is counted after heard() returned `before`.
    bool wait_past(uint64_t before, std::chrono::milliseconds bound = std::chrono::seconds(5)) {
        std::unique_lock lock(mu_);
        return changed_.wait_for(lock, bound, [&] { return heard_ != before; });
    }
    enum class Try { done, again, blocked };
    // Calls `attempt` until it says done: again at once after progress, after the next counted
    // event when it was blocked (NPIPE_EAGAIN); false when that event did not come within 5 s.
    template <class Attempt>
    bool retry_until(Attempt &&attempt) {
        for (;;) {
            const uint64_t before = heard();
            const Try result = attempt();
            if (result == Try::done) return true;
            if (result == Try::blocked && !wait_past(before)) return false;
        }
    }

private:
    void run(npipe_poll_t poll) {
        npipe_event_t ev[8];
        while (!stop_) {
            const int32_t n = npipe_poll_wait(poll, ev, 8, 20);
            for (int32_t i = 0; i < n; ++i) {
                if (!counted_(ev[i])) continue;
                std::lock_guard lock(mu_);
                ++heard_;
                changed_.notify_all();
            }
        }
    }

    std::function<bool(const npipe_event_t &)> counted_;
    std::mutex mu_;
    std::condition_variable changed_;
    uint64_t heard_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;  // last: starts once the members above exist
};

// One npipe_read of `len` bytes appended to `got`, for PollThread::retry_until: done once `got`
// holds `want` bytes, blocked on NPIPE_EAGAIN (any other failure fails the test).
PollThread::Try read_toward(npipe_t pipe, size_t len, std::string &got, size_t want) {
    char buf[256];
    REQUIRE(len <= sizeof buf);
    const int64_t n = npipe_read(pipe, buf, len);
    if (n <= 0) {
        REQUIRE(n == NPIPE_EAGAIN);
        return PollThread::Try::blocked;
    }
    got.append(buf, static_cast<size_t>(n));
    return got.size() >= want ? PollThread::Try::done : PollThread::Try::again;
}

}  // namespace

TEST_SUITE("poll") {
    TEST_CASE("timeout 0 returns at once with 0") {
        Poller poll;
        Stopwatch sw;
        CHECK(poll.wait(0) == 0);
        const std::string name = unique_name("t0");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        for (int i = 0; i < 20; ++i) CHECK(poll.wait(0) == 0);
        CHECK(sw.ms() < 500);
    }

    TEST_CASE("a finite timeout is honoured in full, also with internal completions" * doctest::timeout(30)) {
        Poller poll;
        {
            const Stopwatch sw;
            CHECK(poll.wait(200) == 0);
            CHECK(sw.ms() >= 190);
            CHECK(sw.ms() < 2000);
        }
        // The server is registered for WRITABLE only and never writes: the reads the library
        // completes for the client's data are internal and must not end the wait early. The client
        // lives on another poll, so nothing else can legitimately produce an event here.
        Poller client_poll;
        const std::string name = unique_name("honour");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        PipeGuard client(open_client(name));
        REQUIRE(npipe_register(client_poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(connect_server(poll, server) == NPIPE_OK);
        poll.gather(1, 100);
        std::atomic<bool> stop{false};
        std::thread feeder([&] {
            while (!stop) {
                npipe_write(client, "0123456789", 10);
                sleep_ms(10);
            }
        });
        expect_full_quiet_waits(poll);
        stop = true;
        feeder.join();
        // The data did arrive: the server reads it once it asks.
        CHECK(npipe_reregister(poll, server, 1, NPIPE_READABLE) == NPIPE_OK);
        CHECK((poll.expect(1, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        CHECK(drain(server).size() >= 10);
    }

    TEST_CASE("completions of deregistered and lingering closed pipes do not end a finite wait" *
              doctest::timeout(30)) {
        Poller poll;       // the server's poll: the one whose waits are timed
        Poller peer_poll;  // the clients'
        // A deregistered server that keeps receiving data.
        const std::string n1 = unique_name("dereg-wait");
        PipeGuard s1(create_server(n1));
        REQUIRE(npipe_register(poll, s1, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_connect(s1) == NPIPE_EAGAIN);
        PipeGuard c1(open_client(n1));
        REQUIRE(npipe_register(peer_poll, c1, 11, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(connect_server(poll, s1) == NPIPE_OK);
        // A closed server still lingering: its data drains to a slowly reading client.
        const std::string n2 = unique_name("linger-wait");
        npipe_server_options_t so;
        npipe_server_options_init(&so);
        so.linger_ms = 5000;
        npipe_t h2 = 0;
        REQUIRE(npipe_create(n2.c_str(), &so, &h2) == NPIPE_OK);
        PipeGuard s2(h2);
        REQUIRE(npipe_register(poll, s2, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_connect(s2) == NPIPE_EAGAIN);
        PipeGuard c2(open_client(n2));
        REQUIRE(npipe_register(peer_poll, c2, 12, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(connect_server(poll, s2) == NPIPE_OK);
        const std::string blob = pattern(1 << 20, 17);
        size_t queued = 0;
        for (;;) {
            const int64_t n = npipe_write(s2, blob.data() + queued, blob.size() - queued);
            if (n <= 0) break;
            queued += static_cast<size_t>(n);
            if (queued == blob.size()) break;
        }
        poll.gather(~0ull, 100);
        CHECK(npipe_deregister(poll, s1) == NPIPE_OK);
        CHECK(npipe_close(s2.release()) == NPIPE_OK);
        std::atomic<bool> stop{false};
        std::thread peer([&] {
            char buf[4096];
            while (!stop) {
                npipe_write(c1, "0123456789", 10);
                npipe_read(c2, buf, sizeof buf);  // slowly drain the lingering server
                npipe_event_t ev[8];
                npipe_poll_wait(peer_poll, ev, 8, 10);
            }
        });
        expect_full_quiet_waits(poll);
        stop = true;
        peer.join();
    }

    TEST_CASE("wake interrupts an infinite wait from another thread" * doctest::timeout(30)) {
        npipe_poll_t p = 0;
        REQUIRE(npipe_poll_create(&p) == NPIPE_OK);
        std::atomic<bool> returned{false};
        std::thread waker([&] {
            sleep_ms(100);
            CHECK(npipe_poll_wake(p, 77) == NPIPE_OK);
            // Watchdog: a broken wake must fail the test, not hang it.
            for (int i = 0; i < 100 && !returned; ++i) sleep_ms(50);
            if (!returned) npipe_poll_close(p);
        });
        npipe_event_t ev[4];
        const Stopwatch sw;
        const int32_t n = npipe_poll_wait(p, ev, 4, -1);
        returned = true;
        waker.join();
        REQUIRE(n == 1);
        CHECK(ev[0].token == 77);
        CHECK(ev[0].events == NPIPE_WAKE);
        CHECK(sw.ms() >= 90);
        npipe_poll_close(p);
    }

    TEST_CASE("bytes that arrive after a read took the last ones are reported to a wait on another thread" *
              doctest::timeout(60)) {
        // The reading thread never sees NPIPE_EAGAIN here: it reads exactly what came. The thread
        // waiting on the poll must still hear of every later arrival (on Windows the zero-byte
        // read that notices it is armed at the wait, or at once while a wait is blocked).
        Poller poll;
        Pair p;
        make_pair(poll, p);
        PollThread waiter(poll.h, [](const npipe_event_t &e) { return e.token == 1 && (e.events & NPIPE_READABLE); });
        char c = 0;
        for (int round = 0; round < 50; ++round) {
            const uint64_t before = waiter.heard();
            const char sent = static_cast<char>('a' + round % 26);
            REQUIRE(npipe_write(p.client, &sent, 1) == 1);
            REQUIRE(waiter.wait_past(before, std::chrono::milliseconds(4000)));
            REQUIRE(npipe_read(p.server, &c, 1) == 1);
            CHECK(c == sent);
        }
    }

    TEST_CASE("reads of a reply's size while another thread waits on the poll: every byte, in order" *
              doctest::timeout(60)) {
        // The reader asks for exactly one 32-byte message at a time while 1 to 3 of them are
        // queued, so a read fills its buffer with more behind it, or takes the last one. After
        // NPIPE_EAGAIN it waits for the next READABLE the thread on the poll hears (Linux answers
        // EAGAIN from what its last read found while that thread is blocked in the poll, without
        // asking the kernel: the event must follow, and bytes a read took beyond the caller's
        // buffer must come next).
        Poller poll;
        Pair p;
        make_pair(poll, p);
        PollThread waiter(poll.h, [](const npipe_event_t &e) { return e.token == 1 && (e.events & NPIPE_READABLE); });
        constexpr size_t kMessage = 32;
        uint8_t next = 0;  // the byte value the next message starts with
        for (int round = 0; round < 300; ++round) {
            const int count = 1 + round % 3;
            std::string sent;
            for (int m = 0; m < count; ++m) {
                std::string message(kMessage, '\0');
                for (size_t i = 0; i < kMessage; ++i) message[i] = static_cast<char>(next + i);
                next = static_cast<uint8_t>(next + 7);
                REQUIRE(npipe_write(p.client, message.data(), message.size()) == static_cast<int64_t>(kMessage));
                sent += message;
            }
            std::string got;
            REQUIRE(waiter.retry_until([&] { return read_toward(p.server, kMessage, got, sent.size()); }));
            REQUIRE(got == sent);
        }
        char extra;
        CHECK(npipe_read(p.server, &extra, 1) == NPIPE_EAGAIN);
    }

    TEST_CASE("disconnects while another thread waits on the poll: no byte of one connection reaches the next" *
              doctest::timeout(120)) {
        // The thread on the poll arms the server's next read as it goes back to wait (on Windows a
        // ReadFile started without the pipe's lock, so the reader of the last event need not wait
        // for it). A disconnect from this thread races that read: it must end with the connection
        // and never take the next client's bytes, nor bring the last client's into the next one.
        Poller poll;
        const std::string name = unique_name("race-disc");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(npipe_connect(server) == NPIPE_EAGAIN);
        PollThread waiter(poll.h, [](const npipe_event_t &) { return true; });
        constexpr size_t kMessage = 64;
        constexpr int rounds = 150;
        for (int round = 0; round < rounds; ++round) {
            CAPTURE(round);
            PipeGuard client(open_client(name));
            REQUIRE(npipe_register(poll, client, 100 + static_cast<uint64_t>(round), NPIPE_READABLE) == NPIPE_OK);
            REQUIRE(waiter.retry_until([&] {
                const int32_t rc = npipe_connect(server);
                REQUIRE((rc == NPIPE_OK || rc == NPIPE_EAGAIN));
                return rc == NPIPE_OK ? PollThread::Try::done : PollThread::Try::blocked;
            }));
            const std::string mine(kMessage, static_cast<char>('A' + round % 26));
            REQUIRE(npipe_write(client, mine.data(), mine.size()) == static_cast<int64_t>(kMessage));
            std::string got;
            REQUIRE(waiter.retry_until([&] { return read_toward(server, kMessage - got.size(), got, kMessage); }));
            REQUIRE(got == mine);
            // Bytes the server never reads, sent just before it disconnects (the read the thread on
            // the poll arms may be taking them meanwhile); every third round the client leaves first.
            const std::string stale(kMessage, '!');
            REQUIRE(npipe_write(client, stale.data(), stale.size()) == static_cast<int64_t>(kMessage));
            if (round % 3 == 2) client.reset();
            REQUIRE(npipe_disconnect(server) == NPIPE_OK);
            char buf[8];
            CHECK(npipe_read(server, buf, sizeof buf) == NPIPE_ENOTCONN);
            client.reset();
            REQUIRE(npipe_connect(server) == NPIPE_EAGAIN);  // listening again for the next client
        }
    }

    TEST_CASE("wakes from racing threads are never lost" * doctest::timeout(60)) {
        Poller poll;
        constexpr int kThreads = 4;
        constexpr int kRounds = 300;
        std::atomic<int> acked[kThreads];
        for (auto &a : acked) a = 0;
        std::atomic<int> lost{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                for (int k = 0; k < kRounds; ++k) {
                    if (npipe_poll_wake(poll, 1000 + t) != NPIPE_OK) lost++;
                    const Stopwatch sw;
                    while (acked[t] <= k && sw.ms() < kWaitMs) std::this_thread::yield();
                    if (acked[t] <= k) {
                        lost++;
                        return;
                    }
                }
            });
        }
        int total = 0;
        const Stopwatch sw;
        npipe_event_t ev[8];
        while (total < kThreads * kRounds && lost == 0 && sw.ms() < 30000) {
            const int32_t n = npipe_poll_wait(poll, ev, 8, 200);
            REQUIRE(n >= 0);
            for (int32_t i = 0; i < n; ++i) {
                REQUIRE(ev[i].events == NPIPE_WAKE);
                REQUIRE(ev[i].token >= 1000);
                REQUIRE(ev[i].token < 1000 + kThreads);
                acked[ev[i].token - 1000]++;
                ++total;
            }
        }
        for (auto &th : threads) th.join();
        CHECK(lost == 0);
        CHECK(total == kThreads * kRounds);
    }

    TEST_CASE("wakes coalesce; 64 distinct tokens fit; wake events are separate") {
        Poller poll;
        for (int i = 0; i < 1000; ++i) REQUIRE(npipe_poll_wake(poll, 5) == NPIPE_OK);
        REQUIRE(poll.wait(100) == 1);
        CHECK(poll.last[0].token == 5);
        CHECK(poll.last[0].events == NPIPE_WAKE);
        CHECK(poll.wait(0) == 0);

        for (uint64_t t = 0; t < 64; ++t) REQUIRE(npipe_poll_wake(poll, t * 1000003ull + (1ull << 40)) == NPIPE_OK);
        CHECK(npipe_poll_wake(poll, 1ull << 40) == NPIPE_OK);  // already pending: coalesces
        std::set<uint64_t> tokens;
        npipe_event_t ev[128];
        const int32_t n = npipe_poll_wait(poll, ev, 128, 100);
        CHECK(n == 64);
        for (int32_t i = 0; i < n; ++i) {
            CHECK(ev[i].events == NPIPE_WAKE);
            tokens.insert(ev[i].token);
        }
        CHECK(tokens.size() == 64);
        for (uint64_t t = 0; t < 64; ++t) CHECK(tokens.count(t * 1000003ull + (1ull << 40)) == 1);
        CHECK(poll.wait(0) == 0);

        // A wake with a pipe's token: two events, never merged.
        Pair p;
        make_pair(poll, p, 0, 0, 1, 2);
        poll.gather(1, 50);
        CHECK(npipe_write(p.client, "x", 1) == 1);
        CHECK(flush_all(poll, p.client) == NPIPE_OK);
        sleep_ms(50);
        CHECK(npipe_poll_wake(poll, 1) == NPIPE_OK);
        poll.forget();
        uint32_t pipe_bits = 0, wake_events = 0;
        const Stopwatch sw;
        while ((!(pipe_bits & NPIPE_READABLE) || wake_events == 0) && sw.ms() < kWaitMs) {
            poll.wait(100);
            for (const auto &e : poll.last) {
                if (e.token != 1) continue;
                if (e.events & NPIPE_WAKE) {
                    CHECK(e.events == NPIPE_WAKE);
                    ++wake_events;
                } else {
                    pipe_bits |= e.events;
                }
            }
        }
        CHECK(wake_events == 1);
        CHECK((pipe_bits & NPIPE_READABLE) != 0);
        CHECK(drain(p.server) == "x");
    }

    TEST_CASE("capacity smaller than the ready pipes: the rest come next, nothing lost" * doctest::timeout(30)) {
        Poller poll;
        constexpr int N = 6;
        Pair pairs[N];
        for (int i = 0; i < N; ++i) make_pair(poll, pairs[i], 0, 0, 100 + i, 200 + i, NPIPE_READABLE | NPIPE_WRITABLE);
        poll.gather(0, 100);  // settle the connect-time events
        for (int i = 0; i < N; ++i) {
            CHECK(npipe_write(pairs[i].client, "abc", 3) == 3);
            CHECK(flush_all(poll, pairs[i].client) == NPIPE_OK);
        }
        std::set<uint64_t> readable;
        const Stopwatch sw;
        while (readable.size() < N && sw.ms() < kWaitMs) {
            npipe_event_t ev[2];
            const int32_t n = npipe_poll_wait(poll, ev, 2, 200);
            REQUIRE(n >= 0);
            CHECK(n <= 2);
            for (int32_t i = 0; i < n; ++i)
                if (ev[i].token >= 100 && ev[i].token < 100 + N && (ev[i].events & NPIPE_READABLE))
                    readable.insert(ev[i].token);
        }
        CHECK(readable.size() == N);
        for (int i = 0; i < N; ++i) CHECK(drain(pairs[i].server) == "abc");
    }

    TEST_CASE("a poll that was quiet takes a burst of ready pipes in a few waits, not one wait each" *
              doctest::timeout(60)) {
        // Windows takes one packet per wait while a poll is quiet (under Wine a batch costs a
        // request more); a burst must still come in batches again after a bounded number of waits.
        Poller servers, clients;
        constexpr int N = 32;
        std::vector<PipeGuard> server(N), client(N);
        for (int i = 0; i < N; ++i) {
            const std::string name = unique_name("burst");
            server[i].reset(create_server(name));
            REQUIRE(npipe_register(servers, server[i], 100 + i, NPIPE_READABLE) == NPIPE_OK);
            const int32_t first = npipe_connect(server[i]);
            REQUIRE((first == NPIPE_OK || first == NPIPE_EAGAIN));
            client[i].reset(open_client(name));
            REQUIRE(npipe_register(clients, client[i], 200 + i, NPIPE_WRITABLE) == NPIPE_OK);
            REQUIRE(connect_server(servers, server[i]) == NPIPE_OK);
        }
        // Quiet: waits that find nothing (and arm what waits for bytes).
        servers.gather(0, 100);
        for (int i = 0; i < 3; ++i) CHECK(servers.wait(0) == 0);
        for (int i = 0; i < N; ++i) {
            CHECK(npipe_write(client[i], "x", 1) == 1);
            CHECK(flush_all(clients, client[i]) == NPIPE_OK);
        }
        std::set<uint64_t> readable;
        int waits = 0;
        const Stopwatch sw;
        while (readable.size() < N && sw.ms() < kWaitMs) {
            REQUIRE(servers.wait(200) >= 0);
            ++waits;
            for (const auto &e : servers.last)
                if (e.events & NPIPE_READABLE) readable.insert(e.token);
        }
        CHECK(readable.size() == N);
        CHECK(waits <= 20);  // one packet per wait would take 32
        for (int i = 0; i < N; ++i) CHECK(drain(server[i]) == "x");
    }

    TEST_CASE("a second concurrent waiter gets EBUSY" * doctest::timeout(30)) {
        Poller poll;
        std::atomic<int32_t> first{1};
        std::atomic<bool> started{false};
        std::thread waiter([&] {
            npipe_event_t ev[4];
            started = true;
            first = npipe_poll_wait(poll, ev, 4, 3000);
        });
        while (!started) std::this_thread::yield();
        sleep_ms(100);
        npipe_event_t ev[4];
        CHECK(npipe_poll_wait(poll, ev, 4, 0) == NPIPE_EBUSY);
        CHECK(npipe_poll_wait(poll, ev, 4, 100) == NPIPE_EBUSY);
        CHECK(npipe_poll_wake(poll, 9) == NPIPE_OK);
        waiter.join();
        CHECK(first == 1);
        CHECK(poll.wait(0) == 0);  // free again
    }

    TEST_CASE("all flags of one pipe in one event; reregister re-evaluates") {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        poll.gather(1, 50);
        CHECK(npipe_write(p.client, "data", 4) == 4);
        CHECK((poll.expect(1, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        poll.forget();
        // Buffered data + room to write: one event with both bits.
        REQUIRE(npipe_reregister(poll, p.server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        poll.gather(1, 200);
        CHECK(poll.counts[1] == 1);
        CHECK((poll.seen[1] & (NPIPE_READABLE | NPIPE_WRITABLE)) == (NPIPE_READABLE | NPIPE_WRITABLE));
        CHECK(drain(p.server) == "data");
    }

    TEST_CASE("interests are honoured; closed flags come regardless" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, 0, 0, 1, 2, NPIPE_WRITABLE);  // server: WRITABLE only
        CHECK(write_all(poll, p.client, "hello") == 5);
        CHECK(flush_all(poll, p.client) == NPIPE_OK);
        CHECK((poll.gather(1, 300) & NPIPE_READABLE) == 0);
        CHECK(npipe_reregister(poll, p.server, 1, NPIPE_READABLE) == NPIPE_OK);
        CHECK((poll.expect(1, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        // READABLE only: never WRITABLE, also after writes complete.
        CHECK(write_all(poll, p.server, "world") == 5);
        CHECK(flush_all(poll, p.server) == NPIPE_OK);
        CHECK((poll.gather(1, 300) & NPIPE_WRITABLE) == 0);
        CHECK(drain(p.server) == "hello");
        CHECK(read_exactly(poll, p.client, 5) == "world");
        // Back to WRITABLE only: READ_CLOSED still arrives when the client goes.
        CHECK(npipe_reregister(poll, p.server, 1, NPIPE_WRITABLE) == NPIPE_OK);
        poll.forget();
        p.client.reset();
        const uint32_t bits = poll.expect(1, NPIPE_READ_CLOSED);
        CHECK((bits & NPIPE_READ_CLOSED) != 0);
        CHECK((bits & NPIPE_READABLE) == 0);
    }

    TEST_CASE("NPIPE_CONNECTED comes whatever the interests; WRITABLE only if asked" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("conn-int");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE) == NPIPE_OK);
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        PipeGuard client(open_client(name));
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE) == NPIPE_OK);
        const uint32_t bits = poll.expect(1, NPIPE_CONNECTED);
        CHECK((bits & NPIPE_CONNECTED) != 0);
        CHECK((bits & NPIPE_WRITABLE) == 0);
        CHECK((poll.gather(1, 200) & NPIPE_WRITABLE) == 0);
        CHECK((poll.seen[2] & NPIPE_WRITABLE) == 0);
        CHECK(npipe_take_error(server) == NPIPE_OK);
        CHECK(npipe_connect(server) == NPIPE_OK);
    }

    TEST_CASE(
        "a reader slower than its writer gets every byte in order, and still hears of bytes after it "
        "found none" *
        doctest::timeout(60)) {
        // Windows reads at once (no question first) after a read that found bytes in the OS, and
        // that read waits for bytes when none are there: it must neither lose nor reorder them,
        // and its completion must still come as READABLE.
        Poller poll;
        Pair p;
        make_pair(poll, p, 0, 0, 1, 2, NPIPE_READABLE);
        for (int round = 0; round < 3; ++round) {
            std::string sent;
            for (size_t size : {100, 30000, 5}) {
                const std::string piece = pattern(size, static_cast<uint32_t>(round * 10 + size));
                REQUIRE(write_all(poll, p.client, piece) == piece.size());
                REQUIRE(flush_all(poll, p.client) == NPIPE_OK);
                sent += piece;
            }
            // Small reads: most come from the library's queue, every few an empty queue asks the OS.
            CHECK(read_exactly(poll, p.server, sent.size(), 7) == sent);
            char byte;
            CHECK(npipe_read(p.server, &byte, 1) == NPIPE_EAGAIN);
        }
        poll.forget();
        CHECK(write_all(poll, p.client, "late") == 4);
        CHECK((poll.expect(1, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        CHECK(drain(p.server) == "late");
    }

    TEST_CASE("reregister with a new token while data is in flight: the old token never comes back" *
              doctest::timeout(60)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, 0, 0, 500, 2);
        poll.gather(500, 50);
        uint64_t token = 500;
        for (int round = 0; round < 30; ++round) {
            const std::string piece = pattern(50 + round, 300 + round);
            CHECK(write_all(poll, p.client, piece) == piece.size());
            ++token;
            REQUIRE(npipe_reregister(poll, p.server, token, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            std::string got;
            const Stopwatch sw;
            while (got.size() < piece.size() && sw.ms() < kWaitMs) {
                poll.wait(50);
                for (const auto &e : poll.last) CHECK((e.token == token || e.token == 2));
                got += drain(p.server);
            }
            CHECK(got == piece);
        }
    }

    TEST_CASE("edge mode: no repeat without a new change; READABLE again after EAGAIN + new data" *
              doctest::timeout(30)) {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        poll.gather(1, 50);
        for (int round = 0; round < 3; ++round) {
            CAPTURE(round);
            poll.forget();
            const std::string piece = "piece" + std::to_string(round);
            CHECK(npipe_write(p.client, piece.data(), piece.size()) == static_cast<int64_t>(piece.size()));
            CHECK((poll.expect(1, NPIPE_READABLE) & NPIPE_READABLE) != 0);
            std::string got = drain(p.server);
            if (got.size() < piece.size()) got += read_exactly(poll, p.server, piece.size() - got.size());
            CHECK(got == piece);
            CHECK(npipe_read(p.server, &got[0], 1) == NPIPE_EAGAIN);
            // Drained, nothing new: no further READABLE.
            CHECK((poll.gather(1, 200) & NPIPE_READABLE) == 0);
        }
        // WRITABLE is an edge too: it does not repeat while idle.
        poll.forget();
        CHECK((poll.gather(2, 200) & NPIPE_WRITABLE) == 0);
    }

    TEST_CASE("after EAGAIN from a write, WRITABLE follows when room frees up" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        poll.gather(1, 50);
        const std::string data = pattern(8 << 20, 8);
        size_t sent = 0;
        for (;;) {
            const int64_t n = npipe_write(p.server, data.data() + sent, data.size() - sent);
            if (n <= 0) {
                REQUIRE(n == NPIPE_EAGAIN);
                break;
            }
            sent += static_cast<size_t>(n);
            REQUIRE(sent < data.size());
        }
        poll.forget();
        // The peer reads on another thread of control (here: between waits) until all arrived.
        std::string got;
        std::vector<char> buf(1 << 16);
        bool writable = false;
        const Stopwatch sw;
        while ((got.size() < sent || !writable) && sw.ms() < kWaitMs) {
            for (;;) {
                const int64_t n = npipe_read(p.client, buf.data(), buf.size());
                if (n <= 0) break;
                got.append(buf.data(), static_cast<size_t>(n));
            }
            poll.wait(50);
            writable = writable || (poll.seen[1] & NPIPE_WRITABLE);
        }
        CHECK(writable);
        CHECK(got.size() == sent);
        CHECK(npipe_write(p.server, "more", 4) > 0);
    }

    TEST_CASE("an idle server reports nothing, also in level mode" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("idle-level");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE | NPIPE_LEVEL) == NPIPE_OK);
        CHECK(poll.gather(1, 150) == 0);
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        CHECK(poll.gather(1, 150) == 0);
        PipeGuard client(open_client(name));
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK((poll.expect(1, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
        CHECK(npipe_connect(server) == NPIPE_OK);
        // Connected, level WRITABLE: now it repeats.
        for (int i = 0; i < 2; ++i) {
            CHECK(poll.wait(1000) >= 1);
            CHECK(count_bits(poll.last, 1, NPIPE_WRITABLE) == 1);
        }
    }

    TEST_CASE("level mode repeats while data is unread and stops after draining" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, 0, 0, 1, 2, NPIPE_READABLE | NPIPE_LEVEL);
        poll.gather(1, 50);
        CHECK(npipe_write(p.client, "abcdef", 6) == 6);
        CHECK(flush_all(poll, p.client) == NPIPE_OK);
        CHECK((poll.expect(1, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        for (int i = 0; i < 3; ++i) {
            CHECK(poll.wait(1000) >= 1);
            CHECK(count_bits(poll.last, 1, NPIPE_READABLE) == 1);
        }
        char buf[3];
        CHECK(npipe_read(p.server, buf, 3) == 3);
        CHECK(poll.wait(1000) >= 1);
        CHECK(count_bits(poll.last, 1, NPIPE_READABLE) == 1);
        std::string rest = drain(p.server);
        if (rest.size() < 3) rest += read_exactly(poll, p.server, 3 - rest.size());
        CHECK(rest == "def");
        CHECK(npipe_read(p.server, buf, 1) == NPIPE_EAGAIN);
        // The client side is level WRITABLE: it repeats while there is room.
        CHECK(npipe_reregister(poll, p.client, 2, NPIPE_WRITABLE | NPIPE_LEVEL) == NPIPE_OK);
        for (int i = 0; i < 3; ++i) {
            CHECK(poll.wait(1000) >= 1);
            CHECK(count_bits(poll.last, 2, NPIPE_WRITABLE) == 1);
            CHECK(count_bits(poll.last, 1, NPIPE_READABLE) == 0);  // drained: level stops
        }
        CHECK(npipe_deregister(poll, p.client) == NPIPE_OK);
        poll.forget();
        CHECK((poll.gather(1, 200) & NPIPE_READABLE) == 0);
    }

    TEST_CASE("capacity 1: wakes and pipes, edge and level, all come in turn" * doctest::timeout(30)) {
        Poller poll;
        Pair a, b;
        make_pair(poll, a, 0, 0, 1, 2, NPIPE_READABLE | NPIPE_LEVEL, "cap1");
        make_pair(poll, b, 0, 0, 3, 4, NPIPE_READABLE | NPIPE_LEVEL, "cap1");
        poll.gather(0, 50);
        CHECK(npipe_write(a.client, "aa", 2) == 2);
        CHECK(npipe_write(b.client, "bb", 2) == 2);
        CHECK(flush_all(poll, a.client) == NPIPE_OK);
        CHECK(flush_all(poll, b.client) == NPIPE_OK);
        CHECK(poll.pump_until(
            [&] { return info_of(a.server).read_available == 2 && info_of(b.server).read_available == 2; }));
        CHECK(npipe_poll_wake(poll, 70) == NPIPE_OK);
        CHECK(npipe_poll_wake(poll, 71) == NPIPE_OK);
        // Level sources must not starve each other (or the wakes) with capacity 1.
        std::map<uint64_t, int> hits;
        for (int i = 0; i < 12; ++i) {
            REQUIRE(poll.wait(500, 1) == 1);
            hits[poll.last[0].token] += 1;
        }
        CHECK(hits[70] == 1);
        CHECK(hits[71] == 1);
        CHECK(hits[1] >= 3);
        CHECK(hits[3] >= 3);
        // Level -> edge: the repeats stop (at most the one pending report may still come).
        CHECK(npipe_reregister(poll, a.server, 1, NPIPE_READABLE) == NPIPE_OK);
        CHECK(npipe_deregister(poll, b.server) == NPIPE_OK);
        poll.forget();
        poll.gather(1, 300);
        CHECK(poll.counts[1] <= 1);
        CHECK(poll.counts[3] == 0);
        CHECK(drain(a.server) == "aa");
    }

    TEST_CASE("register re-evaluates: data buffered before registration gives READABLE" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("reeval");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        PipeGuard client(open_client(name));  // not registered yet
        CHECK(connect_server(poll, server) == NPIPE_OK);
        CHECK(write_all(poll, server, "early") == 5);
        CHECK(flush_all(poll, server) == NPIPE_OK);
        sleep_ms(50);
        poll.forget();
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        const uint32_t bits = poll.expect(2, NPIPE_READABLE);
        CHECK((bits & NPIPE_READABLE) != 0);
        CHECK(read_exactly(poll, client, 5) == "early");

        // Deregister, data arrives, register again with a new token: READABLE with the new token.
        CHECK(npipe_deregister(poll, client) == NPIPE_OK);
        CHECK(write_all(poll, server, "later") == 5);
        CHECK(flush_all(poll, server) == NPIPE_OK);
        sleep_ms(50);
        poll.forget();
        REQUIRE(npipe_register(poll, client, 3, NPIPE_READABLE) == NPIPE_OK);
        CHECK((poll.expect(3, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        CHECK(poll.seen.count(2) == 0);
        CHECK(read_exactly(poll, client, 5) == "later");
    }

    TEST_CASE("deregister then register with a new token: the old token never comes back" * doctest::timeout(60)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, 0, 0, 1000, 2);
        poll.gather(1000, 50);
        uint64_t token = 1000;
        size_t total = 0;
        for (int round = 0; round < 30; ++round) {
            // Data in flight towards the server while its registration changes.
            const std::string piece = pattern(100 + round, round);
            CHECK(write_all(poll, p.client, piece) == piece.size());
            CHECK(npipe_deregister(poll, p.server) == NPIPE_OK);
            const uint64_t old_token = token++;
            REQUIRE(npipe_register(poll, p.server, token, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            std::string got;
            const Stopwatch sw;
            while (got.size() < piece.size() && sw.ms() < kWaitMs) {
                poll.wait(50);
                for (const auto &e : poll.last) {
                    CHECK(e.token != old_token);
                    CHECK((e.token == token || e.token == 2));
                }
                got += drain(p.server);
            }
            CHECK(got == piece);
            total += got.size();
        }
        CHECK(total > 0);
    }

    TEST_CASE("close without deregister: the token is never reported" * doctest::timeout(60)) {
        Poller poll;
        for (int round = 0; round < 20; ++round) {
            Pair p;
            make_pair(poll, p, 0, 0, 5000 + round, 6000 + round);
            CHECK(write_all(poll, p.client, pattern(3000, round)) == 3000);
            CHECK(write_all(poll, p.server, pattern(3000, round + 1)) == 3000);
            // Close both with completions and events pending.
            p.server.reset();
            p.client.reset();
            for (int i = 0; i < 3; ++i) {
                poll.wait(i == 0 ? 0 : 20);
                for (const auto &e : poll.last) {
                    CHECK(e.token != uint64_t(5000 + round));
                    CHECK(e.token != uint64_t(6000 + round));
                }
            }
        }
    }

    TEST_CASE("poll_close while another thread waits with events pending" * doctest::timeout(30)) {
        for (int round = 0; round < 5; ++round) {
            Pair p;
            npipe_poll_t h = 0;
            {
                auto *poll = new Poller;
                make_pair(*poll, p);
                h = poll->h;
                poll->h = 0;  // closed below by hand
                delete poll;
            }
            std::atomic<int32_t> rc{1};
            std::atomic<int64_t> took{-1};
            std::thread waiter([&] {
                npipe_event_t ev[4];
                const Stopwatch sw;
                for (;;) {
                    const int32_t n = npipe_poll_wait(h, ev, 4, 3000);
                    if (n <= 0) {
                        rc = n;
                        break;
                    }
                    if (sw.ms() > 3000) break;
                }
                took = sw.ms();
            });
            npipe_write(p.client, "x", 1);
            sleep_ms(30);
            CHECK(npipe_poll_close(h) == NPIPE_OK);
            waiter.join();
            CHECK(rc == NPIPE_EBADF);
            CHECK(took < 2500);
        }
    }
}
