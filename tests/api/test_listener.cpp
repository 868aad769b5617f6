// The listener (npipe_listen / npipe_accept): the header's listener section on real pipes, natively
// and under Wine: bursts from several threads all accepted with their own data, the accept-until-
// EAGAIN edge rule, accepted pipes bound to the listener's poll, a client that left before accept,
// closing in every state (go-winio #85, #281, #357), options and wrong kinds.
#include <atomic>
#include <deque>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "api/support.hpp"

using namespace test;

namespace {

npipe_t listen_on(const std::string &name, uint32_t flags = 0, uint32_t max_pending = 0) {
    npipe_listener_options_t opts;
    npipe_listener_options_init(&opts);
    opts.flags = flags;
    opts.max_pending = max_pending;
    npipe_t h = 0;
    const int32_t rc = npipe_listen(name.c_str(), &opts, &h);
    if (rc != NPIPE_OK) FAIL("npipe_listen(", name, "): ", npipe_err_name(rc), " ", npipe_last_error_message());
    return h;
}

// Accepts (bounded) until a pipe comes; 0 on timeout.
npipe_t accept_one(Poller &poll, npipe_t listener) {
    npipe_t pipe = 0;
    poll.pump_until([&] {
        const int32_t rc = npipe_accept(listener, &pipe);
        if (rc != NPIPE_OK) CHECK(rc == NPIPE_EAGAIN);
        return rc == NPIPE_OK;
    });
    return pipe;
}

}  // namespace

TEST_SUITE("listener") {
    TEST_CASE("a client is accepted, its pipe registers on the listener's poll only, data flows") {
        Poller poll;
        Poller other;
        const std::string name = unique_name("listen");
        PipeGuard listener(listen_on(name));
        char buf[16];
        CHECK(npipe_read(listener, buf, sizeof buf) == NPIPE_EBADF);  // a listener is no pipe
        npipe_t none = 0;
        CHECK(npipe_accept(listener, &none) == NPIPE_EAGAIN);  // not registered: no progress yet
        REQUIRE(npipe_register(poll, listener, 9, NPIPE_READABLE) == NPIPE_OK);
        PipeGuard client(open_client(name));
        CHECK((poll.expect(9, NPIPE_READABLE) & NPIPE_READABLE) != 0u);
        PipeGuard accepted(accept_one(poll, listener));
        REQUIRE(accepted.h != 0);
        CHECK(npipe_accept(listener, &none) == NPIPE_EAGAIN);
        CHECK(npipe_register(other, accepted, 1, NPIPE_READABLE) == NPIPE_EEXIST);
        REQUIRE(npipe_register(poll, accepted, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(write_all(poll, client, "to the server") == 13);
        CHECK(read_exactly(poll, accepted, 13) == "to the server");
        CHECK(write_all(poll, accepted, "back") == 4);
        CHECK(read_exactly(poll, client, 4) == "back");
        const npipe_info_t info = info_of(listener);
        CHECK((info.flags & NPIPE_INFO_LISTENER) != 0u);
        CHECK((info_of(accepted).flags & (NPIPE_INFO_SERVER | NPIPE_INFO_CONNECTED)) ==
              (NPIPE_INFO_SERVER | NPIPE_INFO_CONNECTED));
        // An accepted pipe is reused like an npipe_create instance.
        client.reset();
        CHECK(npipe_disconnect(accepted) == NPIPE_OK);
        CHECK(npipe_connect(accepted) == NPIPE_EAGAIN);
    }

    TEST_CASE("a burst of 128 clients from 4 threads: every one accepted, each with its own data" *
              doctest::timeout(120)) {
        Poller poll;
        const std::string name = unique_name("burst");
        PipeGuard listener(listen_on(name));
        REQUIRE(npipe_register(poll, listener, 0, NPIPE_READABLE) == NPIPE_OK);
        constexpr int kThreads = 4, kPerThread = 32, kClients = kThreads * kPerThread;
        std::atomic<int> open_failures{0};
        std::vector<npipe_t> clients(kClients, 0);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < kPerThread; ++i) {
                    const int id = t * kPerThread + i;
                    npipe_client_options_t opts;
                    npipe_client_options_init(&opts);
                    opts.timeout_ms = 4 * kWaitMs;
                    npipe_t c = 0;
                    if (npipe_open(name.c_str(), &opts, &c) != NPIPE_OK) {
                        ++open_failures;
                        continue;
                    }
                    clients[static_cast<size_t>(id)] = c;
                    // Each client announces itself with its id and a pattern of its own.
                    const std::string hello = std::to_string(id) + ":" + pattern(100, static_cast<uint32_t>(id));
                    std::string frame = std::to_string(hello.size()) + "|" + hello;
                    size_t sent = 0;
                    while (sent < frame.size()) {  // unregistered: bind to a private poll and wait
                        const int64_t n = npipe_write(c, frame.data() + sent, frame.size() - sent);
                        if (n > 0)
                            sent += static_cast<size_t>(n);
                        else if (n != NPIPE_EAGAIN || npipe_wait(c, NPIPE_WRITABLE, kWaitMs) <= 0)
                            break;
                    }
                }
            });
        }
        std::map<int, bool> seen;
        std::vector<PipeGuard> accepted(kClients);
        size_t count = 0;
        const Stopwatch sw;
        while (count < static_cast<size_t>(kClients) - static_cast<size_t>(open_failures.load()) &&
               sw.ms() < 8 * kWaitMs) {
            npipe_t p = 0;
            const int32_t rc = npipe_accept(listener, &p);
            if (rc == NPIPE_EAGAIN) {
                poll.wait(50);
                continue;
            }
            REQUIRE(rc == NPIPE_OK);
            accepted[count++].reset(p);
        }
        for (auto &t : threads) t.join();
        CHECK(open_failures.load() == 0);
        REQUIRE(count == static_cast<size_t>(kClients));
        for (size_t i = 0; i < count; ++i) {
            REQUIRE(npipe_register(poll, accepted[i], 100 + i, NPIPE_READABLE) == NPIPE_OK);
            std::string head;
            while (head.find('|') == std::string::npos && head.size() < 16) head += read_exactly(poll, accepted[i], 1);
            const size_t len = std::stoul(head.substr(0, head.find('|')));
            const std::string hello = read_exactly(poll, accepted[i], len);
            const int id = std::stoi(hello.substr(0, hello.find(':')));
            CHECK(hello == std::to_string(id) + ":" + pattern(100, static_cast<uint32_t>(id)));
            CHECK_FALSE(seen[id]);
            seen[id] = true;
        }
        CHECK(seen.size() == static_cast<size_t>(kClients));
        for (npipe_t c : clients)
            if (c) npipe_close(c);
    }

    TEST_CASE("edge rule: READABLE once for clients waiting, accept until EAGAIN, then news only") {
        Poller poll;
        const std::string name = unique_name("edge");
        PipeGuard listener(listen_on(name));
        REQUIRE(npipe_register(poll, listener, 5, NPIPE_READABLE) == NPIPE_OK);
        PipeGuard a(open_client(name));
        PipeGuard b(open_client(name));
        CHECK((poll.expect(5, NPIPE_READABLE) & NPIPE_READABLE) != 0u);
        std::deque<PipeGuard> got;
        poll.pump_until([&] {
            npipe_t p = 0;
            while (npipe_accept(listener, &p) == NPIPE_OK) got.emplace_back(p);
            return got.size() == 2;
        });
        CHECK(got.size() == 2u);
        poll.forget();
        CHECK((poll.gather(5, 100) & NPIPE_READABLE) == 0u);  // nothing new
        PipeGuard c(open_client(name));
        CHECK((poll.expect(5, NPIPE_READABLE) & NPIPE_READABLE) != 0u);
    }

    TEST_CASE("a client that connected and left before accept is accepted: its data, then EOF") {
        Poller poll;
        const std::string name = unique_name("left");
        PipeGuard listener(listen_on(name));
        REQUIRE(npipe_register(poll, listener, 5, NPIPE_READABLE) == NPIPE_OK);
        {
            PipeGuard client(open_client(name));
            REQUIRE(npipe_wait(client, NPIPE_WRITABLE, kWaitMs) > 0);
            CHECK(npipe_write(client, "bye", 3) == 3);
            npipe_t c = client.release();
            // Flush before closing: a pipe driven by npipe_wait does not linger.
            while (npipe_flush(c) == NPIPE_EAGAIN) npipe_wait(c, NPIPE_WRITABLE, kWaitMs);
            npipe_close(c);
        }
        PipeGuard accepted(accept_one(poll, listener));
        REQUIRE(accepted.h != 0);
        REQUIRE(npipe_register(poll, accepted, 1, NPIPE_READABLE) == NPIPE_OK);
        int64_t last = 1;
        CHECK(read_to_end(poll, accepted, &last) == "bye");
        CHECK(last == 0);
    }

    TEST_CASE("close never hangs: no accept ever called, a client connecting, pipes not accepted" *
              doctest::timeout(60)) {
        // go-winio #85: a listener closed before any accept.
        {
            const std::string name = unique_name("close0");
            Poller poll;
            npipe_t l = listen_on(name);
            REQUIRE(npipe_register(poll, l, 1, NPIPE_READABLE) == NPIPE_OK);
            poll.wait(0);
            CHECK(npipe_close(l) == NPIPE_OK);
        }
        // go-winio #281: closed while a client is still connecting (a non-blocking open waiting).
        {
            const std::string name = unique_name("close1");
            Poller poll;
            npipe_t l = listen_on(name);
            REQUIRE(npipe_register(poll, l, 1, NPIPE_READABLE) == NPIPE_OK);
            npipe_client_options_t opts;
            npipe_client_options_init(&opts);
            opts.flags = NPIPE_NONBLOCK_OPEN;
            opts.timeout_ms = kWaitMs;
            PipeGuard client;
            npipe_t c = 0;
            REQUIRE(npipe_open(name.c_str(), &opts, &c) == NPIPE_OK);
            client.reset(c);
            REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            CHECK(npipe_close(l) == NPIPE_OK);
            // Whatever the client's open saw, it ends: connected then EOF, or a failure.
            CHECK((poll.expect(2, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0u);
        }
        // go-winio #357: connected pipes never accepted; their clients see the end.
        {
            const std::string name = unique_name("close2");
            Poller poll;
            npipe_t l = listen_on(name);
            REQUIRE(npipe_register(poll, l, 1, NPIPE_READABLE) == NPIPE_OK);
            PipeGuard client(open_client(name));
            REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE) == NPIPE_OK);
            CHECK((poll.expect(1, NPIPE_READABLE) & NPIPE_READABLE) != 0u);
            CHECK(npipe_close(l) == NPIPE_OK);
            int64_t last = 1;
            CHECK(read_to_end(poll, client, &last).empty());
            CHECK(last == 0);
        }
    }

    TEST_CASE("npipe_wait on a listener: READABLE when a client waits to be accepted") {
        const std::string name = unique_name("waitl");
        PipeGuard listener(listen_on(name));
        CHECK(npipe_wait(listener, NPIPE_READABLE, 0) == 0);
        PipeGuard client(open_client(name));
        CHECK((npipe_wait(listener, NPIPE_READABLE, kWaitMs) & NPIPE_READABLE) != 0);
        npipe_t p = 0;
        CHECK(npipe_accept(listener, &p) == NPIPE_OK);
        PipeGuard accepted(p);
        // The accepted pipe shares the listener's private poll: npipe_wait drives it too, and it
        // outlives the listener.
        const int32_t w = npipe_wait(accepted, NPIPE_WRITABLE, kWaitMs);
        CHECK(w > 0);
        CHECK((w & NPIPE_WRITABLE) != 0);
        listener.reset();
        CHECK(npipe_write(accepted, "still here", 10) == 10);
        std::string got;
        char buf[16];
        while (got.size() < 10) {
            const int64_t n = npipe_read(client, buf, sizeof buf);
            if (n == NPIPE_EAGAIN) {
                REQUIRE(npipe_wait(client, NPIPE_READABLE, kWaitMs) > 0);
                continue;
            }
            REQUIRE(n > 0);
            got.append(buf, static_cast<size_t>(n));
        }
        CHECK(got == "still here");
    }

    TEST_CASE("options and kinds: ranges, reserved, NULLs, FIRST_INSTANCE, wrong handle kinds") {
        const std::string name = unique_name("opts");
        npipe_listener_options_t o;
        npipe_listener_options_init(&o);
        CHECK(o.size == sizeof o);
        CHECK(o.spare_instances == 0u);
        npipe_t h = 0;
        o.spare_instances = 65;
        CHECK(npipe_listen(name.c_str(), &o, &h) == NPIPE_EINVAL);
        CHECK(contains(npipe_last_error_message(), "spare_instances"));
        o.spare_instances = 0;
        o.max_pending = 4097;
        CHECK(npipe_listen(name.c_str(), &o, &h) == NPIPE_EINVAL);
        o.max_pending = 0;
        o.reserved = 1;
        CHECK(npipe_listen(name.c_str(), &o, &h) == NPIPE_EINVAL);
        o.reserved = 0;
        o.size = 8;
        CHECK(npipe_listen(name.c_str(), &o, &h) == NPIPE_EINVAL);
        o.size = sizeof o;
        o.flags = 0x8000;
        CHECK(npipe_listen(name.c_str(), &o, &h) == NPIPE_EINVAL);
        CHECK(npipe_listen(name.c_str(), nullptr, nullptr) == NPIPE_EINVAL);
        CHECK(npipe_listen(nullptr, nullptr, &h) == NPIPE_EINVAL);
        CHECK(npipe_listen("", nullptr, &h) == NPIPE_EINVAL);
        PipeGuard listener(listen_on(name));
        // The name exists now: a first-instance listener (or server) of it is refused.
        npipe_listener_options_init(&o);
        o.flags = NPIPE_FIRST_INSTANCE;
        CHECK(npipe_listen(name.c_str(), &o, &h) == NPIPE_EEXIST);
        // Kinds.
        PipeGuard server(create_server(unique_name("kind")));
        npipe_t out = 0;
        CHECK(npipe_accept(server, &out) == NPIPE_EBADF);
        CHECK(npipe_accept(0, &out) == NPIPE_EBADF);
        CHECK(npipe_accept(listener, nullptr) == NPIPE_EINVAL);
        CHECK(npipe_connect(listener) == NPIPE_EBADF);
        CHECK(npipe_disconnect(listener) == NPIPE_EBADF);
        CHECK(npipe_write(listener, "x", 1) == NPIPE_EBADF);
        CHECK(npipe_flush(listener) == NPIPE_EBADF);
        intptr_t raw = 0;
        CHECK(npipe_raw_handle(listener, &raw) == NPIPE_EBADF);
        CHECK(npipe_take_error(listener) == NPIPE_OK);
        const npipe_t l = listener.release();
        CHECK(npipe_close(l) == NPIPE_OK);
        CHECK(npipe_close(l) == NPIPE_EBADF);
    }
}
