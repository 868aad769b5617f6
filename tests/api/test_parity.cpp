// One program, one answer: the cases where the Windows and Linux backends once answered
// differently (each now lives once, in lib/core). Every case runs natively and under Wine and
// asserts the single answer the header gives, down to the message where the message is the point.
#include <cstdint>
#include <string>
#include <vector>

#include "api/support.hpp"

using namespace test;

TEST_SUITE("parity") {
    TEST_CASE("reregister/deregister on another poll after a deregister: ENOENT, then register: EEXIST") {
        Poller p1;
        Poller p2;
        Pair p;
        make_pair(p1, p);
        REQUIRE(npipe_deregister(p1, p.client) == NPIPE_OK);
        // Not registered anywhere: that answer comes before the question of which poll.
        CHECK(npipe_reregister(p2, p.client, 7, NPIPE_READABLE) == NPIPE_ENOENT);
        CHECK(std::string(npipe_last_error_message()) == "the pipe is not registered with a poll");
        CHECK(npipe_deregister(p2, p.client) == NPIPE_ENOENT);
        CHECK(npipe_deregister(p1, p.client) == NPIPE_ENOENT);
        // Bound for life to its first poll, on every platform.
        CHECK(npipe_register(p2, p.client, 7, NPIPE_READABLE) == NPIPE_EEXIST);
        CHECK(std::string(npipe_last_error_message()) ==
              "the pipe is bound for life to the poll it was first registered with");
        CHECK(npipe_register(p1, p.client, 7, NPIPE_READABLE) == NPIPE_OK);
        // Registered: the other poll is the wrong one.
        CHECK(npipe_reregister(p2, p.client, 8, NPIPE_READABLE) == NPIPE_EEXIST);
        CHECK(npipe_deregister(p2, p.client) == NPIPE_EEXIST);
        CHECK(npipe_register(p1, p.client, 9, NPIPE_READABLE) == NPIPE_EEXIST);
    }

    TEST_CASE("iovec lengths that add up past SIZE_MAX: EINVAL, and nothing is sent") {
        for (const uint32_t mode : {0u, static_cast<uint32_t>(NPIPE_MESSAGE)}) {
            CAPTURE(mode);
            Poller poll;
            Pair p;
            make_pair(poll, p, mode, mode);
            char a[4] = {'a', 'b', 'c', 'd'};
            char b[2] = {'e', 'f'};
            const npipe_iovec_t iov[2] = {{a, sizeof a}, {b, SIZE_MAX - 1}};
            CHECK(npipe_writev(p.client, iov, 2) == NPIPE_EINVAL);
            CHECK(contains(npipe_last_error_message(), "SIZE_MAX"));
            CHECK(npipe_readv(p.server, iov, 2) == NPIPE_EINVAL);
            // The pipe is still fine, and the peer got nothing of the refused call.
            CHECK(npipe_write(p.client, "ok", 2) == 2);
            CHECK(read_exactly(poll, p.server, 2) == "ok");
            std::vector<char> buf(16);
            CHECK(npipe_read(p.server, buf.data(), buf.size()) == NPIPE_EAGAIN);
        }
    }

    TEST_CASE("a write that completes gives no WRITABLE edge unless one was owed" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        poll.gather(1, 50);
        poll.forget();
        // One buffer-full: accepted whole (the buffer was empty), handed to the OS, completed once
        // the peer reads it, on Windows possibly asynchronously.
        const std::string data = pattern(64 * 1024, 3);
        REQUIRE(npipe_write(p.server, data.data(), data.size()) == static_cast<int64_t>(data.size()));
        CHECK(read_exactly(poll, p.client, data.size()) == data);
        CHECK(poll.pump_until([&] { return info_of(p.server).write_pending == 0; }));
        poll.gather(1, 100);
        // No write answered EAGAIN and no flush waited: there is no news for the writer.
        CHECK((poll.seen[1] & NPIPE_WRITABLE) == 0u);
        // A flush that has to wait does owe one.
        REQUIRE(npipe_write(p.server, data.data(), data.size()) == static_cast<int64_t>(data.size()));
        const int32_t flushed = npipe_flush(p.server);
        if (flushed == NPIPE_EAGAIN) {
            CHECK(read_exactly(poll, p.client, data.size()) == data);
            CHECK((poll.expect(1, NPIPE_WRITABLE) & NPIPE_WRITABLE) != 0u);
            CHECK(npipe_flush(p.server) == NPIPE_OK);
        } else {
            CHECK(flushed == NPIPE_OK);
            CHECK(read_exactly(poll, p.client, data.size()) == data);
        }
    }

    TEST_CASE("the peer gone while bytes wait: the write fails with EPIPE, take_error reports the loss once") {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        // Fill the pipe and the buffer until a write answers EAGAIN: bytes are waiting now.
        const std::string data = pattern(1 << 20, 4);
        size_t sent = 0;
        for (;;) {
            const int64_t n = npipe_write(p.server, data.data(), data.size());
            if (n == NPIPE_EAGAIN) break;
            REQUIRE(n > 0);
            sent += static_cast<size_t>(n);
            REQUIRE(sent < (64u << 20));
        }
        p.client.reset();
        CHECK((poll.expect(1, NPIPE_WRITE_CLOSED) & NPIPE_WRITE_CLOSED) != 0u);
        CHECK(poll.pump_until([&] { return npipe_write(p.server, "x", 1) == NPIPE_EPIPE; }));
        CHECK(npipe_take_error(p.server) == NPIPE_EPIPE);
        CHECK(npipe_take_error(p.server) == NPIPE_OK);
        CHECK((info_of(p.server).flags & NPIPE_INFO_CONNECTED) == 0u);  // the peer left
    }

    // Found by the fuzz target: a client opens while the instance has not taken it yet (no
    // npipe_connect, or not yet completed); the server calls npipe_disconnect. npipe.h: "Drops the
    // client of a server instance"; SPEC: "the next connection on the same instance sees nothing
    // of the previous one". Windows drops that client; Linux once handed it to the next connect.
    TEST_CASE("npipe_disconnect before the instance took its client drops that client" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("disc-queued");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        PipeGuard first(open_client(name));
        REQUIRE(npipe_register(poll, first, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(npipe_disconnect(server) == NPIPE_OK);
        const int32_t again = npipe_connect(server);
        REQUIRE((again == NPIPE_EAGAIN || again == NPIPE_OK));
        PipeGuard second(open_client(name));
        REQUIRE(npipe_register(poll, second, 3, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(connect_server(poll, server) == NPIPE_OK);
        const std::string hello = "for the second client";
        REQUIRE(write_all(poll, server, hello) == hello.size());
        // The instance's client now is the second one; the first one was dropped: EOF, no data.
        CHECK(read_exactly(poll, second, hello.size(), 65536, 1000) == hello);
        int64_t last = 1;
        CHECK(read_to_end(poll, first, &last, 1000) == "");
        CHECK(last == 0);
    }

    // The other side of the case above: an instance stops listening at npipe_disconnect until its
    // next npipe_connect, so a client that comes meanwhile is another instance's, and a second
    // npipe_disconnect of the first instance leaves it alone.
    TEST_CASE("npipe_disconnect of an instance that is not listening leaves the waiting client to another one" *
              doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("disc-other");
        PipeGuard a(create_server(name));
        REQUIRE(npipe_register(poll, a, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        PipeGuard first(open_client(name));
        REQUIRE(npipe_register(poll, first, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(connect_server(poll, a) == NPIPE_OK);
        REQUIRE(npipe_disconnect(a) == NPIPE_OK);
        PipeGuard b(create_server(name));
        REQUIRE(npipe_register(poll, b, 3, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        PipeGuard second(open_client(name));
        REQUIRE(npipe_register(poll, second, 4, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(npipe_disconnect(a) == NPIPE_OK);
        REQUIRE(connect_server(poll, b) == NPIPE_OK);
        const std::string hello = "from the second instance";
        REQUIRE(write_all(poll, b, hello) == hello.size());
        CHECK(read_exactly(poll, second, hello.size(), 65536, 1000) == hello);
        int64_t last = 1;
        CHECK(read_to_end(poll, first, &last, 1000) == "");
        CHECK(last == 0);
    }
}
