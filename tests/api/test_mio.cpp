// mio's tests/win_named_pipe.rs, ported to the C API. mio's "writable" after a
// connect is our NPIPE_CONNECTED (+ NPIPE_WRITABLE); mio's ERROR_NO_DATA is our NPIPE_EPIPE.
#include "support.hpp"

using namespace test;

namespace {

constexpr uint64_t kServer = 0;
constexpr uint64_t kClient = 1;

// mio's pipe(): a server with a client already attached, both registered, the server connected.
void attached_pair(Poller &poll, Pair &p) {
    p.name = unique_name("mio");
    p.server.reset(create_server(p.name));
    p.client.reset(open_client(p.name));
    REQUIRE(npipe_register(poll, p.server, kServer, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
    REQUIRE(npipe_register(poll, p.client, kClient, NPIPE_WRITABLE) == NPIPE_OK);
    REQUIRE(connect_server(poll, p.server) == NPIPE_OK);
}

}  // namespace

TEST_SUITE("mio") {
    TEST_CASE("writable_after_register" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        p.name = unique_name("mio");
        p.server.reset(create_server(p.name));
        p.client.reset(open_client(p.name));
        REQUIRE(npipe_register(poll, p.server, kServer, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(npipe_register(poll, p.client, kClient, NPIPE_WRITABLE) == NPIPE_OK);
        const int32_t rc = npipe_connect(p.server);
        CHECK((rc == NPIPE_OK || rc == NPIPE_EAGAIN));
        // The client is writable from registration on; the server once connected.
        CHECK((poll.expect(kClient, NPIPE_WRITABLE) & NPIPE_WRITABLE) != 0);
        CHECK((poll.expect(kServer, NPIPE_WRITABLE) & NPIPE_WRITABLE) != 0);
        CHECK(npipe_connect(p.server) == NPIPE_OK);
    }

    TEST_CASE("write_then_read" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        attached_pair(poll, p);
        CHECK(npipe_write(p.client, "1234", 4) == 4);
        CHECK((poll.expect(kServer, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        char buf[16] = {0};
        int64_t n = npipe_read(p.server, buf, sizeof buf);
        // Edge semantics allow the bytes to arrive in pieces: collect them (bounded).
        std::string got;
        if (n > 0) got.assign(buf, static_cast<size_t>(n));
        if (got.size() < 4) got += read_exactly(poll, p.server, 4 - got.size());
        CHECK(got == "1234");
    }

    TEST_CASE("connect_before_client" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("mio");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, kServer, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(poll.wait(0) == 0);  // an idle server reports nothing
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        CHECK(poll.wait(0) == 0);
        PipeGuard client(open_client(name));
        REQUIRE(npipe_register(poll, client, kClient, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        const uint32_t bits = poll.expect(kServer, NPIPE_CONNECTED | NPIPE_WRITABLE);
        CHECK((bits & NPIPE_CONNECTED) != 0);
        // The header: NPIPE_WRITABLE comes with the connect when registered for it (maybe in a later batch).
        if (!(bits & NPIPE_WRITABLE)) CHECK((poll.expect(kServer, NPIPE_WRITABLE) & NPIPE_WRITABLE) != 0);
        CHECK(npipe_take_error(server) == NPIPE_OK);
        CHECK(npipe_connect(server) == NPIPE_OK);
    }

    TEST_CASE("connect_after_client" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("mio");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, kServer, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(poll.wait(0) == 0);
        PipeGuard client(open_client(name));
        REQUIRE(npipe_register(poll, client, kClient, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        // The header: "if a client is already there it returns NPIPE_OK (CONNECTED)".
        CHECK(npipe_connect(server) == NPIPE_OK);
        CHECK((poll.expect(kServer, NPIPE_WRITABLE) & NPIPE_WRITABLE) != 0);
        CHECK(npipe_connect(server) == NPIPE_OK);
    }

    TEST_CASE("write_disconnected" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        attached_pair(poll, p);
        poll.gather(kServer, 50);
        poll.forget();
        p.client.reset();
        CHECK(poll.expect(kServer, ~0u) != 0);  // the server hears about it
        int32_t last = 0;
        for (int i = 0; i < 16; ++i) {
            const int64_t n = npipe_write(p.server, "\0", 1);
            if (n == 1) continue;
            if (n == NPIPE_EAGAIN) {
                CHECK(poll.wait(kWaitMs) > 0);  // must not hang: an event follows
                continue;
            }
            last = static_cast<int32_t>(n);
            break;
        }
        CHECK(npipe_err_name(last) == std::string("NPIPE_EPIPE"));
    }

    TEST_CASE("write_then_drop" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        attached_pair(poll, p);
        CHECK(npipe_write(p.client, "1234", 4) == 4);
        p.client.reset();
        CHECK((poll.expect(kServer, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        int64_t last = 1;
        CHECK(read_to_end(poll, p.server, &last) == "1234");
        CHECK(last == 0);
    }

    TEST_CASE("connect_twice" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("mio");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, kServer, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        const int32_t first = npipe_connect(server);
        CHECK((first == NPIPE_OK || first == NPIPE_EAGAIN));
        {
            PipeGuard c1(open_client(name));
            REQUIRE(npipe_register(poll, c1, kClient, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            CHECK(connect_server(poll, server) == NPIPE_OK);
        }  // c1 dropped
        // Poll until the server reads EOF; anything but EAGAIN or 0 fails.
        int64_t n = NPIPE_EAGAIN;
        char buf[16];
        CHECK(poll.pump_until([&] {
            n = npipe_read(server, buf, sizeof buf);
            return n != NPIPE_EAGAIN;
        }));
        CHECK(n == 0);
        CHECK(npipe_disconnect(server) == NPIPE_OK);
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        poll.forget();
        PipeGuard c2(open_client(name));
        REQUIRE(npipe_register(poll, c2, kClient + 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK((poll.expect(kServer, NPIPE_WRITABLE) & NPIPE_WRITABLE) != 0);
        CHECK(npipe_connect(server) == NPIPE_OK);
        // Beyond mio: the second connection really works (mio#1983 would read a stale EOF here).
        CHECK(write_all(poll, c2, "second") == 6);
        CHECK(read_exactly(poll, server, 6) == "second");
    }

    TEST_CASE("reregister_deregister_before_register") {
        Poller poll;
        const std::string name = unique_name("mio");
        PipeGuard server(create_server(name));
        CHECK(npipe_reregister(poll, server, 0, NPIPE_READABLE) == NPIPE_ENOENT);
        CHECK(npipe_deregister(poll, server) == NPIPE_ENOENT);
    }

    TEST_CASE("reregister_deregister_different_poll") {
        Poller poll1;
        Poller poll2;
        const std::string name = unique_name("mio");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll1, server, 0, NPIPE_READABLE) == NPIPE_OK);
        CHECK(npipe_reregister(poll2, server, 0, NPIPE_READABLE) == NPIPE_EEXIST);
        CHECK(npipe_deregister(poll2, server) == NPIPE_EEXIST);
        // The registration with poll1 is untouched.
        CHECK(npipe_reregister(poll1, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_deregister(poll1, server) == NPIPE_OK);
    }

    TEST_CASE("read_message_larger_than_internal_buffer" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        attached_pair(poll, p);
        const std::string data = pattern(8192, 11);
        CHECK(write_all(poll, p.client, data) == data.size());
        CHECK((poll.expect(kServer, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        // In 4000-byte reads: a read never returns more than asked (checked in read_exactly).
        CHECK(read_exactly(poll, p.server, data.size(), 4000) == data);
    }

    TEST_CASE("read_with_small_buffer_provided" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        attached_pair(poll, p);
        const std::string data = pattern(10000, 12);
        CHECK(write_all(poll, p.client, data) == data.size());
        // In 128-byte reads: a read never returns more than asked (checked in read_exactly).
        CHECK(read_exactly(poll, p.server, data.size(), 128) == data);
    }
}
