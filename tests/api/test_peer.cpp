// npipe_peer_identity and npipe_drain on real pipes, natively and under Wine: who is on the other
// end (both sides), the output struct's size rules, and "the peer has read it" before a
// disconnect. Where Wine cannot show a rule (it reports no write quota: a pipe there counts as
// drained once flushed), the case says so and checks what Wine can show.
#include <cstring>
#include <string>
#include <vector>

#include "support.hpp"

#if !defined(_WIN32)
#include <unistd.h>
#endif

using namespace test;

namespace {

constexpr uint64_t kServer = 1;
constexpr uint64_t kClient = 2;

npipe_peer_t blank_peer() {
    npipe_peer_t p;
    std::memset(&p, 0xAB, sizeof p);  // whatever the call leaves alone shows
    p.size = sizeof p;
    return p;
}

// This process's user as npipe_peer_t reports it: a SID on Windows, nothing on Linux.
std::string my_sid() {
#if defined(_WIN32)
    return current_user_sid_text();
#else
    return "";
#endif
}

// The peer is this very process, run by this very user.
void check_is_me(const npipe_peer_t &p) {
    CHECK(p.size == sizeof(npipe_peer_t));
    CHECK(p.flags == NPIPE_PEER_SAME_USER);
    CHECK(p.pid == static_cast<uint64_t>(process_id()));
    CHECK(std::strlen(p.sid) < sizeof p.sid);
    CHECK(std::string(p.sid) == my_sid());
#if defined(_WIN32)
    CHECK(p.uid == UINT32_MAX);
    CHECK(p.gid == UINT32_MAX);
    CHECK(std::string(p.sid).rfind("S-1-", 0) == 0);
#else
    CHECK(p.uid == static_cast<uint32_t>(geteuid()));
    CHECK(p.gid == static_cast<uint32_t>(getegid()));
#endif
}

// A connected pair whose client has sent a byte the server has read: from then on a Windows server
// can tell who its client is.
void make_pair_that_spoke(Poller &poll, Pair &p) {
    make_pair(poll, p);
    REQUIRE(write_all(poll, p.client, "x") == 1);
    REQUIRE(read_exactly(poll, p.server, 1) == "x");
}

// Writes until the library refuses more and no room frees up for a moment: the pipe, the OS
// buffers and the library's buffer are full. Returns the bytes accepted.
size_t fill(Poller &poll, npipe_t pipe, uint64_t token) {
    const std::string chunk = pattern(64 * 1024, 3);
    size_t total = 0;
    for (int round = 0; round < 64; ++round) {
        int64_t w;
        while ((w = npipe_write(pipe, chunk.data(), chunk.size())) > 0) total += static_cast<size_t>(w);
        REQUIRE(w == NPIPE_EAGAIN);
        if ((poll.wait_for(token, NPIPE_WRITABLE, 100) & NPIPE_WRITABLE) == 0) break;
    }
    return total;
}

}  // namespace

TEST_SUITE("peer") {
    TEST_CASE("identity: both ends name this process and its user") {
        Poller poll;
        Pair p;
        make_pair_that_spoke(poll, p);
        npipe_peer_t server_side = blank_peer(), client_side = blank_peer();
        REQUIRE(npipe_peer_identity(p.server, &server_side) == NPIPE_OK);  // its client
        REQUIRE(npipe_peer_identity(p.client, &client_side) == NPIPE_OK);  // its server
        check_is_me(server_side);
        check_is_me(client_side);
    }

    TEST_CASE("identity: a Windows server must first receive the client's bytes; Linux answers at once") {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        npipe_peer_t peer = blank_peer();
        const int32_t early = npipe_peer_identity(p.server, &peer);
#if defined(_WIN32)
        CHECK(early == NPIPE_EAGAIN);
        CHECK(contains(npipe_last_error_message(), "has sent nothing yet"));
        CHECK(peer.size == sizeof peer);  // left alone
        CHECK(peer.pid == 0xABABABABABABABABull);
#else
        CHECK(early == NPIPE_OK);
        check_is_me(peer);
#endif
        npipe_peer_t server = blank_peer();
        REQUIRE(npipe_peer_identity(p.client, &server) == NPIPE_OK);  // a client answers at once
        check_is_me(server);
        REQUIRE(write_all(poll, p.client, "x") == 1);
        REQUIRE(read_exactly(poll, p.server, 1) == "x");
        peer = blank_peer();
        REQUIRE(npipe_peer_identity(p.server, &peer) == NPIPE_OK);
        check_is_me(peer);
    }

    TEST_CASE("identity: the output struct's size rules, bad handles first, pipes without a peer") {
        Poller poll;
        Pair p;
        make_pair_that_spoke(poll, p);
        npipe_peer_t peer = blank_peer();
        CHECK(npipe_peer_identity(0, &peer) == NPIPE_EBADF);
        CHECK(npipe_peer_identity(poll, &peer) == NPIPE_EBADF);  // a poll, not a pipe
        CHECK(npipe_peer_identity(0, nullptr) == NPIPE_EBADF);   // the handle is checked first
        CHECK(npipe_peer_identity(p.server, nullptr) == NPIPE_EINVAL);
        CHECK(contains(npipe_last_error_message(), "out is NULL"));
        for (uint32_t size : {0u, 8u, static_cast<uint32_t>(sizeof(npipe_peer_t) - 1)}) {
            peer = blank_peer();
            peer.size = size;
            CHECK(npipe_peer_identity(p.server, &peer) == NPIPE_EINVAL);
            CHECK(contains(npipe_last_error_message(), "npipe_peer_t.size"));
            CHECK(peer.size == size);
        }
        // A larger struct (a newer header): this library's 216 bytes are filled, the rest is not
        // touched, and size says how much was written.
        std::vector<unsigned char> bigger(sizeof(npipe_peer_t) + 64, 0xCD);
        npipe_peer_t head;
        std::memset(&head, 0, sizeof head);
        head.size = static_cast<uint32_t>(bigger.size());
        std::memcpy(bigger.data(), &head, sizeof head);
        REQUIRE(npipe_peer_identity(p.client, reinterpret_cast<npipe_peer_t *>(bigger.data())) == NPIPE_OK);
        std::memcpy(&head, bigger.data(), sizeof head);
        CHECK(head.size == sizeof(npipe_peer_t));
        check_is_me(head);
        for (size_t i = sizeof(npipe_peer_t); i < bigger.size(); ++i) CHECK(bigger[i] == 0xCD);

        // A server instance without a client.
        PipeGuard idle(create_server(unique_name("idle")));
        REQUIRE(npipe_register(poll, idle, 9, NPIPE_READABLE) == NPIPE_OK);
        peer = blank_peer();
        CHECK(npipe_peer_identity(idle, &peer) == NPIPE_ENOTCONN);
        CHECK(peer.pid == 0xABABABABABABABABull);
        // Closed: EBADF.
        const npipe_t closed = idle.release();
        REQUIRE(npipe_close(closed) == NPIPE_OK);
        CHECK(npipe_peer_identity(closed, &peer) == NPIPE_EBADF);
    }

    TEST_CASE("identity: the answer stays the same after the peer left") {
        Poller poll;
        Pair p;
        make_pair_that_spoke(poll, p);
        npipe_peer_t before = blank_peer();
        REQUIRE(npipe_peer_identity(p.server, &before) == NPIPE_OK);
        p.client.reset();
        int64_t last = 1;
        CHECK(read_to_end(poll, p.server, &last).empty());
        CHECK(last == 0);  // the client is gone
        npipe_peer_t after = blank_peer();
        REQUIRE(npipe_peer_identity(p.server, &after) == NPIPE_OK);
        CHECK(std::memcmp(&before, &after, sizeof before) == 0);
        // A new client on the same instance is asked about afresh.
        REQUIRE(npipe_disconnect(p.server) == NPIPE_OK);
        CHECK(npipe_peer_identity(p.server, &after) == NPIPE_ENOTCONN);
    }

    TEST_CASE("drain: nothing written is drained at once; the header's other answers") {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        CHECK(npipe_drain(p.server) == NPIPE_OK);
        CHECK(npipe_drain(p.client) == NPIPE_OK);
        CHECK(npipe_drain(0) == NPIPE_EBADF);
        CHECK(npipe_drain(poll) == NPIPE_EBADF);
        PipeGuard idle(create_server(unique_name("idle")));
        CHECK(npipe_drain(idle) == NPIPE_EAGAIN);  // not registered: nothing would re-check
        CHECK(contains(npipe_last_error_message(), "not registered"));
        REQUIRE(npipe_register(poll, idle, 9, NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_drain(idle) == NPIPE_ENOTCONN);
        // The client's bytes: drained once the server has read them.
        REQUIRE(write_all(poll, p.client, "ping") == 4);
        REQUIRE(read_exactly(poll, p.server, 4) == "ping");
        CHECK(retry_while_eagain(poll, [&] { return npipe_drain(p.client); }) == NPIPE_OK);
    }

    TEST_CASE("drain: a slow reader: EAGAIN until it has read everything, then NPIPE_WRITABLE and OK" *
              doctest::timeout(60)) {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        const std::string data = pattern(1024 * 1024, 11);  // more than the pipe and both buffers hold
        std::string got;
        std::vector<char> buf(64 * 1024);
        size_t written = 0;
        // The reader takes one buffer per turn, the writer writes what fits.
        const bool all_written = poll.pump_until([&] {
            int64_t w;
            while (written < data.size() &&
                   (w = npipe_write(p.server, data.data() + written, data.size() - written)) > 0)
                written += static_cast<size_t>(w);
            if (written == data.size()) return true;
            const int64_t n = npipe_read(p.client, buf.data(), buf.size());
            if (n > 0) got.append(buf.data(), static_cast<size_t>(n));
            return false;
        });
        REQUIRE(all_written);
        const int32_t first = npipe_drain(p.server);
        poll.forget();
        if (!running_on_wine()) {
            // The last bytes cannot have been read: the reader has not looked since they were written.
            CHECK(first == NPIPE_EAGAIN);
        }
        int32_t drained = first;
        size_t read_when_drained = drained == NPIPE_OK ? got.size() : 0;
        while (got.size() < data.size()) {
            const int64_t n = npipe_read(p.client, buf.data(), buf.size());
            if (n > 0) {
                got.append(buf.data(), static_cast<size_t>(n));
            } else {
                REQUIRE(n == NPIPE_EAGAIN);
                REQUIRE(poll.wait_for(kClient, NPIPE_READABLE) != 0u);
            }
            if (drained != NPIPE_OK) {
                drained = npipe_drain(p.server);
                REQUIRE((drained == NPIPE_OK || drained == NPIPE_EAGAIN));
                if (drained == NPIPE_OK) read_when_drained = got.size();
            }
        }
        CHECK(got.size() == data.size());
        CHECK(fnv1a(got.data(), got.size()) == fnv1a(data.data(), data.size()));
        // Everything read: NPIPE_WRITABLE tells the writer (the poll's clock re-checks, or the OS
        // reports the room the reader made); each wait below must end with such an event.
        for (int events = 0; drained != NPIPE_OK && events < 100; ++events) {
            REQUIRE((poll.wait_for(kServer, NPIPE_WRITABLE) & NPIPE_WRITABLE) != 0u);
            drained = npipe_drain(p.server);
            REQUIRE((drained == NPIPE_OK || drained == NPIPE_EAGAIN));
            if (drained == NPIPE_OK) read_when_drained = got.size();
        }
        CHECK(drained == NPIPE_OK);
#if !defined(_WIN32)
        // Linux counts what the reader's own npipe_read calls took: OK only once it had it all.
        CHECK(read_when_drained == data.size());
#endif
        (void)read_when_drained;
        CHECK(npipe_drain(p.server) == NPIPE_OK);
    }

    TEST_CASE("drain: a reader that leaves before reading everything: EPIPE" * doctest::timeout(60)) {
        // The reader reads a little, the writer fills what that freed, and the reader leaves while
        // bytes still wait in the writer's own buffer: that every platform can tell (Linux also
        // knows of bytes left unread in the reader's socket, see the posix_only suite; Windows and
        // Wine cannot ask a reader that has gone).
        Poller poll;
        Pair p;
        make_pair(poll, p);
        REQUIRE(fill(poll, p.server, kServer) > 64 * 1024);
        CHECK(read_exactly(poll, p.client, 4096).size() == 4096);
        fill(poll, p.server, kServer);
        CHECK(npipe_drain(p.server) == NPIPE_EAGAIN);
        REQUIRE(info_of(p.server).write_pending > 0);
        p.client.reset();  // leaves with most of it unread
        const int32_t rc = retry_while_eagain(poll, [&] { return npipe_drain(p.server); });
        CHECK(rc == NPIPE_EPIPE);
        INFO(npipe_last_error_message());
        CHECK(contains(npipe_last_error_message(), "peer"));
        CHECK(npipe_drain(p.server) == NPIPE_EPIPE);  // it stays so
    }

    TEST_CASE("drain: 200 rounds of write, drain, disconnect deliver every byte" * doctest::timeout(240)) {
        // Wine discards at disconnect what no read of the client has taken yet, and reports no
        // write quota (drained once flushed): there a response stays within the one read the npipe
        // client keeps pending (64 KiB), which is what Wine can show. Elsewhere responses reach
        // several times the pipe's and the library's buffers.
        const size_t max_size = running_on_wine() ? 64 * 1024 : 320 * 1024;
        Poller poll;
        const std::string name = unique_name("drain200");
        PipeGuard server(create_server(name));
        REQUIRE(npipe_register(poll, server, kServer, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        std::vector<char> buf(64 * 1024);
        size_t delivered = 0;
        for (uint32_t round = 0; round < 200; ++round) {
            const int32_t first = npipe_connect(server);
            REQUIRE((first == NPIPE_EAGAIN || first == NPIPE_OK));
            PipeGuard client(open_client(name));
            REQUIRE(npipe_register(poll, client, kClient, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            REQUIRE(connect_server(poll, server) == NPIPE_OK);
            const std::string response = pattern(1 + (round * 7919u) % max_size, round + 1);
            std::string got;
            size_t sent = 0;
            int32_t drained = NPIPE_EAGAIN;
            const bool done = poll.pump_until([&] {
                int64_t w;
                while (sent < response.size() &&
                       (w = npipe_write(server, response.data() + sent, response.size() - sent)) > 0)
                    sent += static_cast<size_t>(w);
                if (sent == response.size() && drained != NPIPE_OK) drained = npipe_drain(server);
                int64_t n;
                while ((n = npipe_read(client, buf.data(), buf.size())) > 0)
                    got.append(buf.data(), static_cast<size_t>(n));
                return drained != NPIPE_EAGAIN;
            });
            REQUIRE(done);
            REQUIRE(drained == NPIPE_OK);
            REQUIRE(npipe_disconnect(server) == NPIPE_OK);  // at once: drained means nothing is left to lose
            int64_t last = 1;
            got += read_to_end(poll, client, &last);
            CHECK(last == 0);
            REQUIRE(got.size() == response.size());
            REQUIRE(fnv1a(got.data(), got.size()) == fnv1a(response.data(), response.size()));
            delivered += got.size();
        }
        MESSAGE("200 responses, ", delivered, " bytes, every one delivered");
    }
}
