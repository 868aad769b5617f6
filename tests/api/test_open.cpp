// Opening without blocking (NPIPE_NONBLOCK_OPEN, driven by the poll's clock and, on Windows, an
// asynchronous wait for a busy pipe) and waiting on one pipe (npipe_wait): the header's sections
// on npipe_open and npipe_wait, on real pipes.
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/support.hpp"

#ifndef _WIN32
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#endif

using namespace test;

namespace {

npipe_t open_nonblocking(const std::string &name, int32_t timeout_ms, uint32_t flags = 0) {
    npipe_client_options_t opts;
    npipe_client_options_init(&opts);
    opts.flags = NPIPE_NONBLOCK_OPEN | flags;
    opts.timeout_ms = timeout_ms;
    npipe_t h = 0;
    const int32_t rc = npipe_open(name.c_str(), &opts, &h);
    if (rc != NPIPE_OK) FAIL("npipe_open(", name, "): ", npipe_err_name(rc), " ", npipe_last_error_message());
    return h;
}

// A server instance of `name`, registered and waiting for a client.
void serve(Poller &poll, PipeGuard &server, const std::string &name, uint64_t token, uint32_t max_instances = 0) {
    server.reset(create_server(name, 0, max_instances));
    REQUIRE(npipe_register(poll, server, token, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
    const int32_t rc = npipe_connect(server);
    REQUIRE((rc == NPIPE_EAGAIN || rc == NPIPE_OK));
}

// A pipe pair on npipe_wait's private polls: the server connected, both ends waited on once.
void wait_pair(PipeGuard &server, PipeGuard &client, const std::string &name, uint32_t server_in_buffer = 0) {
    npipe_server_options_t opts;
    npipe_server_options_init(&opts);
    opts.in_buffer_size = server_in_buffer;
    npipe_t h = 0;
    REQUIRE(npipe_create(name.c_str(), &opts, &h) == NPIPE_OK);
    server.reset(h);
    CHECK(npipe_connect(server) == NPIPE_EAGAIN);
    client.reset(open_client(name));
    REQUIRE((npipe_wait(server, NPIPE_WRITABLE, kWaitMs) & NPIPE_CONNECTED) != 0);
    REQUIRE((npipe_wait(client, NPIPE_WRITABLE, kWaitMs) & NPIPE_WRITABLE) != 0);
}

// Until `holds()`, looking again and again for at most kWaitMs.
template <class Condition>
bool eventually(Condition &&holds) {
    const Stopwatch sw;
    while (sw.ms() < kWaitMs) {
        if (holds()) return true;
        std::this_thread::yield();
    }
    return holds();
}

// A thread running `body`, returned once it has begun: the caller acts as it starts its work.
template <class Body>
std::thread started_thread(Body body) {
    std::atomic<bool> started{false};
    std::thread t([&started, body]() mutable {
        started = true;  // the last use of `started`: the caller returns once it sees it
        body();
    });
    while (!started) std::this_thread::yield();
    return t;
}

// What a test of a waiting read does around it: `on_waiter` runs on the waiting thread before it
// waits; `before` on this thread before the close or disconnect (false: stop), `after` once it is done.
struct AroundWait {
    std::function<void()> on_waiter;
    std::function<bool()> before;
    std::function<bool()> after = [] { return true; };
};

// npipe_wait(READABLE) on another thread, ended by npipe_close from this one: at once (not by its
// timeout), with NPIPE_EBADF, and the peer sees the end of the stream.
void close_during_wait(const std::string &name, const AroundWait &around) {
    PipeGuard server;
    PipeGuard client;
    wait_pair(server, client, name);
    const npipe_t c = client.release();
    std::atomic<bool> finished{false};
    std::atomic<int32_t> waited{1};
    std::thread waiter([&] {
        around.on_waiter();
        waited = npipe_wait(c, NPIPE_READABLE, 3 * kWaitMs);
        finished = true;
    });
    const bool ready = around.before();
    CHECK(ready);
    CHECK(npipe_close(c) == NPIPE_OK);
    CHECK(eventually([&] { return finished.load(); }));
    waiter.join();
    CHECK(waited.load() == NPIPE_EBADF);
    CHECK(around.after());
    CHECK((npipe_wait(server, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
    char b[4];
    CHECK(npipe_read(server, b, sizeof b) == 0);
}

// The same wait on a server, ended by npipe_disconnect: the old client hears the end and its late
// bytes go nowhere; the waiting thread carries on into the next connection and gets its bytes only.
void disconnect_during_wait(const std::string &name, const AroundWait &around) {
    PipeGuard server;
    PipeGuard first;
    wait_pair(server, first, name);
    CHECK(npipe_write(first, "old", 3) == 3);
    char b[8];
    CHECK((npipe_wait(server, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
    CHECK(npipe_read(server, b, sizeof b) == 3);
    std::atomic<int32_t> waited{1};
    std::thread waiter([&] {
        around.on_waiter();
        waited = npipe_wait(server, NPIPE_READABLE, 3 * kWaitMs);
    });
    const bool ready = around.before();
    CHECK(ready);
    CHECK(npipe_disconnect(server) == NPIPE_OK);
    CHECK(around.after());
    CHECK((npipe_wait(first, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
    CHECK(npipe_read(first, b, sizeof b) == 0);
    CHECK(npipe_write(first, "late", 4) < 0);
    CHECK(npipe_connect(server) == NPIPE_EAGAIN);
    PipeGuard second(open_client(name));
    REQUIRE((npipe_wait(second, NPIPE_WRITABLE, kWaitMs) & NPIPE_WRITABLE) != 0);
    CHECK(npipe_write(second, "new", 3) == 3);
    waiter.join();
    CHECK((waited.load() & NPIPE_READABLE) != 0);
    CHECK(npipe_read(server, b, sizeof b) == 3);
    CHECK(std::string(b, 3) == "new");
}

#ifndef _WIN32
// Linux: npipe_wait(READABLE) may wait inside the kernel's recv. These see that a thread is in
// there, from /proc, so a test can act while it is.
long thread_id() { return static_cast<long>(syscall(SYS_gettid)); }

bool blocked_in_recv(long tid) {
    std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/syscall");
    long nr = -1;
    return (f >> nr) && nr == SYS_recvfrom;
}

bool wait_until_blocked_in_recv(const std::atomic<long> &tid) {
    return eventually([&] { return tid != 0 && blocked_in_recv(tid); });
}

#endif

}  // namespace

TEST_SUITE("open") {
    TEST_CASE("non-blocking open: the server appears after the client started waiting" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("later");
        PipeGuard client(open_nonblocking(name, kWaitMs));
        // Connecting: I/O answers EAGAIN with the reason, also before registration.
        char buf[16];
        CHECK(npipe_read(client, buf, sizeof buf) == NPIPE_EAGAIN);
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_write(client, "x", 1) == NPIPE_EAGAIN);
        CHECK(contains(npipe_last_error_message(), "connection in progress"));
        CHECK(npipe_flush(client) == NPIPE_EAGAIN);
        CHECK(poll.gather(2, 30) == 0u);  // the first attempts found nothing: no event yet
        PipeGuard server;
        serve(poll, server, name, 1);
        const uint32_t bits = poll.expect(2, NPIPE_CONNECTED);
        CHECK((bits & NPIPE_CONNECTED) != 0u);
        CHECK(npipe_take_error(client) == NPIPE_OK);
        CHECK(connect_server(poll, server) == NPIPE_OK);
        CHECK(write_all(poll, client, "hello") == 5);
        CHECK(read_exactly(poll, server, 5) == "hello");
    }

    TEST_CASE("non-blocking open: timeout 0 is one attempt, a positive timeout ends in ETIMEDOUT" *
              doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("absent");
        PipeGuard once(open_nonblocking(name, 0));
        REQUIRE(npipe_register(poll, once, 1, NPIPE_READABLE) == NPIPE_OK);
        CHECK((poll.expect(1, NPIPE_CONNECTED) & (NPIPE_CONNECTED | NPIPE_ERROR)) == (NPIPE_CONNECTED | NPIPE_ERROR));
        CHECK(npipe_take_error(once) == NPIPE_ENOENT);
        // The failure stays with the pipe: every I/O call returns it.
        char buf[4];
        CHECK(npipe_read(once, buf, sizeof buf) == NPIPE_ENOENT);
        CHECK(npipe_write(once, "x", 1) == NPIPE_ENOENT);

        PipeGuard bounded(open_nonblocking(name, 150));
        REQUIRE(npipe_register(poll, bounded, 2, NPIPE_WRITABLE) == NPIPE_OK);
        const Stopwatch sw;
        CHECK((poll.expect(2, NPIPE_CONNECTED) & NPIPE_WRITABLE) != 0u);  // WRITABLE comes with the end
        CHECK(sw.ms() >= 140);  // not before the deadline (counted from npipe_open)
        CHECK(npipe_take_error(bounded) == NPIPE_ETIMEDOUT);
        CHECK(contains(npipe_last_error_message(), "150 ms"));
    }

    TEST_CASE("non-blocking open: a negative timeout waits until the server comes" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("forever");
        PipeGuard client(open_nonblocking(name, -1));
        REQUIRE(npipe_register(poll, client, 2, NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(poll.gather(2, 200) == 0u);  // still trying, quietly
        PipeGuard server;
        serve(poll, server, name, 1);
        CHECK((poll.expect(2, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0u);
        CHECK(npipe_take_error(client) == NPIPE_OK);
    }

    TEST_CASE("non-blocking open: a busy single instance freed later is taken" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("busy");
        PipeGuard server;
        serve(poll, server, name, 1, 1);
        PipeGuard first(open_client(name));
        REQUIRE(connect_server(poll, server) == NPIPE_OK);
        PipeGuard second(open_nonblocking(name, kWaitMs));
        REQUIRE(npipe_register(poll, second, 3, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
#if defined(_WIN32)
        // The only instance is taken: the client waits (an asynchronous FSCTL_PIPE_WAIT, no thread).
        CHECK((poll.gather(3, 100) & NPIPE_CONNECTED) == 0u);
#endif
        first.reset();
        CHECK(npipe_disconnect(server) == NPIPE_OK);
        const int32_t rc = npipe_connect(server);
        CHECK((rc == NPIPE_OK || rc == NPIPE_EAGAIN));
        CHECK((poll.expect(3, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0u);
        CHECK(npipe_take_error(second) == NPIPE_OK);
        CHECK(connect_server(poll, server) == NPIPE_OK);
        CHECK(write_all(poll, second, "second") == 6);
        CHECK(read_exactly(poll, server, 6) == "second");
    }

    TEST_CASE("non-blocking open: close while connecting cancels the attempt" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("cancel");
        npipe_t client = open_nonblocking(name, -1);
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE) == NPIPE_OK);
        CHECK(poll.gather(2, 20) == 0u);
        CHECK(npipe_close(client) == NPIPE_OK);
        // A server that comes afterwards sees no client: the attempt is gone.
        PipeGuard server;
        serve(poll, server, name, 1);
        CHECK((poll.gather(1, 200) & NPIPE_CONNECTED) == 0u);
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
    }

    TEST_CASE("non-blocking open: the current-user check holds for our own server" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("mine");
        PipeGuard server;
        server.reset(create_server(name, NPIPE_CURRENT_USER_ONLY));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE) == NPIPE_OK);
        REQUIRE(npipe_connect(server) == NPIPE_EAGAIN);
        PipeGuard client(open_nonblocking(name, kWaitMs, NPIPE_CURRENT_USER_ONLY));
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE) == NPIPE_OK);
        CHECK((poll.expect(2, NPIPE_CONNECTED) & NPIPE_ERROR) == 0u);
        CHECK(npipe_take_error(client) == NPIPE_OK);
    }

    TEST_CASE("npipe_wait: timeouts, both interests, EEXIST on a registered pipe, EINVAL" * doctest::timeout(30)) {
        const std::string name = unique_name("wait");
        PipeGuard server(create_server(name));
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);  // starts when npipe_wait registers it
        PipeGuard client(open_client(name));
        CHECK(npipe_wait(client, 0, 0) == NPIPE_EINVAL);
        CHECK(npipe_wait(client, NPIPE_ERROR, 0) == NPIPE_EINVAL);
        CHECK(npipe_wait(client, NPIPE_READABLE, 0) == 0);  // just looks
        const Stopwatch sw;
        CHECK(npipe_wait(client, NPIPE_READABLE, 100) == 0);
        CHECK(sw.ms() >= 95);
        const int32_t w = npipe_wait(client, NPIPE_READABLE | NPIPE_WRITABLE, kWaitMs);
        CHECK(w == (NPIPE_WRITABLE | NPIPE_CONNECTED));
        CHECK((npipe_wait(server, NPIPE_WRITABLE, kWaitMs) & NPIPE_CONNECTED) != 0);
        CHECK(npipe_write(client, "ping", 4) == 4);
        CHECK((npipe_wait(server, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
        char buf[8];
        CHECK(npipe_read(server, buf, sizeof buf) == 4);
        // Bound for life to the private poll; and a pipe on a caller's poll cannot be waited on.
        Poller poll;
        CHECK(npipe_register(poll, client, 1, NPIPE_READABLE) == NPIPE_EEXIST);
        PipeGuard other(create_server(unique_name("registered")));
        REQUIRE(npipe_register(poll, other, 1, NPIPE_READABLE) == NPIPE_OK);
        CHECK(npipe_wait(other, NPIPE_READABLE, 0) == NPIPE_EEXIST);
        CHECK(contains(npipe_last_error_message(), "wait on its poll instead"));
        // EOF is readable.
        client.reset();
        CHECK((npipe_wait(server, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
        CHECK(npipe_read(server, buf, sizeof buf) == 0);
    }

    // READABLE is a level: bytes an earlier read took do not count, even when their arrival was
    // never waited for (Linux: an EPOLLIN still queued in the private poll), and bytes a read left
    // behind do.
    TEST_CASE("npipe_wait: READABLE counts the bytes still unread, not the arrivals" * doctest::timeout(30)) {
        const std::string name = unique_name("level");
        PipeGuard server(create_server(name));
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        PipeGuard client(open_client(name));
        REQUIRE((npipe_wait(server, NPIPE_WRITABLE, kWaitMs) & NPIPE_CONNECTED) != 0);
        REQUIRE(npipe_wait(client, NPIPE_READABLE, 0) == 0);  // the client is on its private poll now
        char buf[64];
        // Reads `want` bytes, waiting only where none have come yet.
        auto read_now = [&](size_t want) {
            for (;;) {
                const int64_t n = npipe_read(client, buf, want);
                if (n != NPIPE_EAGAIN) return n;
                if ((npipe_wait(client, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) == 0) return int64_t{-1000};
            }
        };
        for (int round = 0; round < 3; ++round) {
            CHECK(npipe_write(server, "abc", 3) == 3);
            CHECK(read_now(sizeof buf) == 3);                     // took everything: a short read
            CHECK(npipe_wait(client, NPIPE_READABLE, 100) == 0);  // the taken bytes' arrival is no level
            CHECK(npipe_wait(client, NPIPE_WRITABLE, 0) == (NPIPE_WRITABLE | NPIPE_CONNECTED));
        }
        CHECK(npipe_write(server, "12345678", 8) == 8);
        CHECK(read_now(4) == 4);  // filled the buffer: the rest stays readable
        CHECK(npipe_wait(client, NPIPE_READABLE, 0) == (NPIPE_READABLE | NPIPE_CONNECTED));
        CHECK(npipe_read(client, buf, 4) == 4);
        CHECK(std::string(buf, 4) == "5678");
        CHECK(npipe_wait(client, NPIPE_READABLE, 0) == 0);
        CHECK(npipe_read(client, buf, sizeof buf) == NPIPE_EAGAIN);
        // Bytes that come while nobody waits are found by the next wait, and by a look.
        CHECK(npipe_write(server, "z", 1) == 1);
        CHECK((npipe_wait(client, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
        CHECK(npipe_wait(client, NPIPE_READABLE, 0) == (NPIPE_READABLE | NPIPE_CONNECTED));
        CHECK(npipe_read(client, buf, sizeof buf) == 1);
    }

    TEST_CASE("npipe_wait: two threads, one reading and one writing, and a close that ends both" *
              doctest::timeout(30)) {
        const std::string name = unique_name("threads");
        PipeGuard server(create_server(name));
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        PipeGuard client(open_client(name));
        REQUIRE((npipe_wait(server, NPIPE_WRITABLE, kWaitMs) & NPIPE_WRITABLE) != 0);
        // One thread waits to read, another to write while the buffer is full.
        std::atomic<int32_t> read_result{1};
        std::atomic<int32_t> write_result{1};
        std::thread reader([&] { read_result = npipe_wait(client, NPIPE_READABLE, kWaitMs); });
        const std::string big = pattern(256 * 1024, 9);
        size_t sent = 0;
        for (;;) {
            const size_t at = sent % big.size();
            const int64_t n = npipe_write(server, big.data() + at, big.size() - at);
            if (n == NPIPE_EAGAIN) break;
            REQUIRE(n > 0);
            sent += static_cast<size_t>(n);
            REQUIRE(sent < (64u << 20));
        }
        std::thread writer([&] { write_result = npipe_wait(server, NPIPE_WRITABLE, kWaitMs); });
        reader.join();
        CHECK((read_result & NPIPE_READABLE) != 0);
        std::vector<char> buf(1 << 20);
        size_t drained = 0;
        while (drained < sent) {
            const int64_t n = npipe_read(client, buf.data(), buf.size());
            if (n == NPIPE_EAGAIN) {
                REQUIRE((npipe_wait(client, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
                continue;
            }
            REQUIRE(n > 0);
            drained += static_cast<size_t>(n);
        }
        writer.join();
        CHECK((write_result & NPIPE_WRITABLE) != 0);

        // Two waits on one pipe that nothing will satisfy: a close from here ends both with EBADF.
        std::atomic<int32_t> a{1};
        std::atomic<int32_t> b{1};
        const npipe_t c = client.release();
        std::thread t1 = started_thread([&] { a = npipe_wait(c, NPIPE_READABLE, kWaitMs); });
        std::thread t2 = started_thread([&] { b = npipe_wait(c, NPIPE_READABLE, kWaitMs); });
        CHECK(npipe_close(c) == NPIPE_OK);
        t1.join();
        t2.join();
        // A wait that had not begun when the handle went away sees a dead handle: EBADF either way.
        CHECK(a.load() == NPIPE_EBADF);
        CHECK(b.load() == NPIPE_EBADF);
    }

    // A one-way end has no direction that its peer's data makes ready: an inbound-only end never
    // gets room to write, and READABLE waits for the peer's first byte. Its unusable direction holds
    // once connected (a write there answers NPIPE_EACCES at once, not EAGAIN), so npipe_wait still
    // hears that the connect or the open ended instead of sleeping to its timeout.
    TEST_CASE("npipe_wait: an inbound-only server hears that its connect ended" * doctest::timeout(30)) {
        const std::string name = unique_name("inonly");
        PipeGuard server(create_server(name, NPIPE_INBOUND_ONLY));
        REQUIRE(npipe_connect(server) == NPIPE_EAGAIN);  // driven once npipe_wait registers it
        PipeGuard client(open_client(name, NPIPE_OUTBOUND_ONLY));
        const int32_t bits = npipe_wait(server, NPIPE_READABLE | NPIPE_WRITABLE, kWaitMs);
        CHECK((bits & NPIPE_CONNECTED) != 0);
        CHECK(npipe_connect(server) == NPIPE_OK);
        CHECK(npipe_write(server, "x", 1) == NPIPE_EACCES);
    }

    TEST_CASE("npipe_wait: an inbound-only client hears that its non-blocking open ended" * doctest::timeout(30)) {
        const std::string name = unique_name("inonly-open");
        PipeGuard server(create_server(name, NPIPE_OUTBOUND_ONLY));
        PipeGuard client(open_nonblocking(name, kWaitMs, NPIPE_INBOUND_ONLY));
        const int32_t bits = npipe_wait(client, NPIPE_READABLE | NPIPE_WRITABLE, kWaitMs);
        CHECK((bits & NPIPE_CONNECTED) != 0);
        CHECK(npipe_take_error(client) == NPIPE_OK);
    }

    // Two threads read one pipe, each read and its bookkeeping under one lock: one waits with
    // npipe_wait when a read finds nothing, the other reads again at once. Whatever the waiting
    // thread does meanwhile (Linux: takes the bytes inside the kernel's recv), a read on the other
    // thread never hands out bytes that came after them: the stream arrives whole and in order.
    TEST_CASE("npipe_wait: a read on another thread never overtakes bytes a waiting thread takes" *
              doctest::timeout(60)) {
        PipeGuard server;
        PipeGuard client;
        // A small in_buffer_size: a wait takes a few KiB at a time, and more are in the OS meanwhile.
        wait_pair(server, client, unique_name("order"), 4096);
        const npipe_t reading = server;
        const npipe_t writing = client;
        const std::string data = pattern(4u << 20, 21);
        std::thread writer([&] {
            size_t at = 0;
            uint32_t step = 1;
            while (at < data.size()) {
                step = step * 1103515245u + 12345u;
                const size_t len = std::min<size_t>(data.size() - at, 1 + (step >> 8) % 600);
                const int64_t n = npipe_write(writing, data.data() + at, len);
                if (n == NPIPE_EAGAIN) {
                    if ((npipe_wait(writing, NPIPE_WRITABLE, kWaitMs) & NPIPE_WRITABLE) == 0) return;
                    continue;
                }
                if (n <= 0) return;
                at += static_cast<size_t>(n);
            }
            // The documented way to close without losing bytes on a pipe driven by npipe_wait:
            // npipe_flush until NPIPE_OK (each flush looks at the pipe's poll; under Wine a loop that
            // did not would never hear that the write in flight finished).
            const Stopwatch flushing;
            while (npipe_flush(writing) == NPIPE_EAGAIN)
                if (flushing.ms() > kWaitMs || (npipe_wait(writing, NPIPE_WRITABLE, kWaitMs) & NPIPE_WRITABLE) == 0)
                    return;
            npipe_close(client.release());  // EOF tells the readers the stream is over
        });
        std::mutex mu;
        std::string got;
        bool failed = false;
        // `waits`: npipe_wait on NPIPE_EAGAIN; else try again at once, so reads keep coming while
        // the other thread waits.
        auto reader = [&](bool waits) {
            std::vector<char> buf(1500);
            const Stopwatch sw;
            for (;;) {
                int64_t n;
                {
                    std::lock_guard lock(mu);
                    if (failed) return;
                    n = npipe_read(reading, buf.data(), buf.size());
                    if (n > 0) got.append(buf.data(), static_cast<size_t>(n));
                    if (n < 0 && n != NPIPE_EAGAIN) failed = true;
                    if (sw.ms() > 4 * kWaitMs) failed = true;
                }
                if (n == 0) return;  // EOF
                if (n != NPIPE_EAGAIN) continue;
                if (!waits) {
                    std::this_thread::yield();
                } else if (npipe_wait(reading, NPIPE_READABLE, kWaitMs) <= 0) {
                    std::lock_guard lock(mu);
                    failed = true;
                }
            }
        };
        std::thread other(reader, false);
        reader(true);
        other.join();
        writer.join();
        CHECK_FALSE(failed);
        REQUIRE(got.size() == data.size());
        CHECK(got == data);
    }

    // npipe_wait(READABLE) alone, with nothing queued, may wait inside the OS's read (Linux: recv;
    // Windows: a ReadFile waited for on its event), where nobody drives the pipe's poll. A write
    // from another thread meanwhile must still hand everything it accepts to the OS, or a peer
    // that answers only the whole request would never answer. Portable, so without seeing where
    // the waiter is: each round starts the write as the waiter starts its wait.
    TEST_CASE("npipe_wait: a request written while another thread waits for the answer reaches the peer whole" *
              doctest::timeout(120)) {
        for (int round = 0; round < 10; ++round) {
            CAPTURE(round);
            PipeGuard server;
            PipeGuard client;
            wait_pair(server, client, unique_name("request-during-wait"));
            std::atomic<int32_t> waited{1};
            std::thread waiter = started_thread([&] { waited = npipe_wait(client, NPIPE_READABLE, 3 * kWaitMs); });
            const std::string request = pattern(256 * 1024 + static_cast<size_t>(round) * 1000, round);
            // The server reads the whole request, then answers.
            std::string got;
            std::atomic<bool> read_failed{false};
            std::thread reader([&] {
                std::vector<char> buf(1 << 16);
                while (got.size() < request.size()) {
                    const int64_t n = npipe_read(server, buf.data(), buf.size());
                    if (n == NPIPE_EAGAIN) {
                        if ((npipe_wait(server, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0) continue;
                    }
                    if (n <= 0) {
                        read_failed = true;
                        return;
                    }
                    got.append(buf.data(), static_cast<size_t>(n));
                }
                if (got == request) npipe_write(server, "done", 4);
            });
            size_t sent = 0;
            while (sent < request.size()) {
                const int64_t n = npipe_write(client, request.data() + sent, request.size() - sent);
                if (n == NPIPE_EAGAIN) {
                    REQUIRE((npipe_wait(client, NPIPE_WRITABLE, kWaitMs) & NPIPE_WRITABLE) != 0);
                    continue;
                }
                REQUIRE(n > 0);
                sent += static_cast<size_t>(n);
            }
            reader.join();
            CHECK_FALSE(read_failed.load());
            CHECK(got == request);
            waiter.join();
            CHECK(waited.load() == (NPIPE_READABLE | NPIPE_CONNECTED));
            char reply[8];
            CHECK(npipe_read(client, reply, sizeof reply) == 4);
            CHECK(std::string(reply, 4) == "done");
        }
    }

    // Two threads waiting to read: while one waits inside the OS's read, the other waits on the
    // poll. When the first wait ends with nothing (its timeout), the other must still hear of bytes
    // that come later (Windows: the read that waits for them is armed then, since the one waiting
    // on the poll went in while the first held the only read).
    TEST_CASE("npipe_wait: a reader waiting on the poll hears of bytes after another's wait timed out" *
              doctest::timeout(120)) {
        for (int round = 0; round < 5; ++round) {
            CAPTURE(round);
            PipeGuard server;
            PipeGuard client;
            wait_pair(server, client, unique_name("second-reader"));
            std::atomic<int32_t> first{1};
            std::atomic<int32_t> second{1};
            std::atomic<bool> second_finished{false};
            std::thread a = started_thread([&] { first = npipe_wait(client, NPIPE_READABLE, 300); });
            std::thread b([&] {
                second = npipe_wait(client, NPIPE_READABLE, 3 * kWaitMs);
                second_finished = true;
            });
            a.join();
            CHECK(first.load() == 0);  // nothing came within its time
            CHECK_FALSE(second_finished.load());
            CHECK(npipe_write(server, "late", 4) == 4);
            CHECK(eventually([&] { return second_finished.load(); }));  // the bytes ended it, not the timeout
            b.join();
            CHECK((second.load() & NPIPE_READABLE) != 0);
            char buf[8];
            CHECK(npipe_read(client, buf, sizeof buf) == 4);
        }
    }

    // The same wait ends at once when another thread closes the pipe or disconnects the server,
    // and a disconnect's old connection never feeds the next one.
    TEST_CASE("npipe_wait: a close or a disconnect from another thread ends a waiting read at once" *
              doctest::timeout(120)) {
        // Without seeing where the waiter is: each round acts as the waiter starts its wait.
        for (int round = 0; round < 10; ++round) {
            CAPTURE(round);
            std::atomic<bool> started{false};
            const AroundWait around{[&] { started = true; },
                                    [&] { return eventually([&] { return started.load(); }); }};
            close_during_wait(unique_name("close-during-wait"), around);
            started = false;
            disconnect_during_wait(unique_name("disconnect-during-wait"), around);
        }
    }

#ifndef _WIN32
    // While a thread waits inside the kernel's recv, nobody drives the pipe's poll: a write from
    // another thread must not leave accepted bytes waiting for it, or a peer that answers only
    // once it has them would never answer. Every byte accepted reaches the peer.
    TEST_CASE("npipe_wait: bytes written while another thread waits to read reach the peer" * doctest::timeout(60)) {
        PipeGuard server;
        PipeGuard client;
        wait_pair(server, client, unique_name("write-while"));
        std::atomic<long> tid{0};
        std::atomic<int32_t> waited{1};
        std::thread waiter([&] {
            tid = thread_id();
            waited = npipe_wait(client, NPIPE_READABLE, kWaitMs);
        });
        REQUIRE(wait_until_blocked_in_recv(tid));
        // One write, far more than the kernel's socket buffer; whatever it accepts must arrive.
        const std::string big = pattern(4u << 20, 5);
        const int64_t accepted = npipe_write(client, big.data(), big.size());
        REQUIRE(accepted > 0);
        // Not WRITABLE until the kernel has room: a writer waits instead of spinning on EAGAIN.
        if (accepted < static_cast<int64_t>(big.size())) {
            CHECK(npipe_write(client, big.data(), big.size()) == NPIPE_EAGAIN);
            CHECK(npipe_wait(client, NPIPE_WRITABLE, 0) == 0);
        }
        std::vector<char> buf(1 << 16);
        std::string echo;
        while (echo.size() < static_cast<size_t>(accepted)) {
            const int64_t n =
                npipe_read(server, buf.data(), std::min(buf.size(), static_cast<size_t>(accepted) - echo.size()));
            if (n == NPIPE_EAGAIN) {
                REQUIRE((npipe_wait(server, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
                continue;
            }
            REQUIRE(n > 0);
            echo.append(buf.data(), static_cast<size_t>(n));
        }
        CHECK(echo == big.substr(0, static_cast<size_t>(accepted)));
        CHECK(npipe_write(server, "done", 4) == 4);
        waiter.join();
        CHECK(waited.load() == (NPIPE_READABLE | NPIPE_CONNECTED));
        char reply[8];
        CHECK(npipe_read(client, reply, sizeof reply) == 4);
        CHECK(std::string(reply, 4) == "done");
        // The receive is over: the writer's room is back once the server has read everything.
        CHECK((npipe_wait(client, NPIPE_WRITABLE, kWaitMs) & NPIPE_WRITABLE) != 0);
        CHECK(npipe_write(client, "more", 4) == 4);
    }

    // A close or npipe_disconnect from another thread ends a wait that sits inside the kernel's
    // recv at once, and no descriptor is left behind.
    TEST_CASE("npipe_wait: a close or a disconnect ends a wait inside the kernel's recv" * doctest::timeout(60)) {
        const size_t fds_before = count_open_fds();
        std::atomic<long> tid{0};
        const AroundWait in_recv{[&] { tid = thread_id(); }, [&] { return wait_until_blocked_in_recv(tid); },
                                 [&] { return eventually([&] { return !blocked_in_recv(tid); }); }};
        close_during_wait(unique_name("close-recv"), in_recv);
        tid = 0;
        disconnect_during_wait(unique_name("disconnect-recv"), in_recv);  // then waits on the poll
        CHECK(count_open_fds() == fds_before);
    }
#endif
}
