// Message mode (the header's message rules, bug class B of docs/design.md, mio PR #1778): boundaries, partial reads,
// empty messages vs EOF, one message per writev, the 16 MiB limit, all-or-nothing writes.
#include <thread>

#include "support.hpp"

using namespace test;

namespace {

constexpr size_t kMaxMsg = 16u * 1024u * 1024u;

// Sends one message (bounded retry on EAGAIN); returns the write result.
int64_t send_msg(Poller &poll, npipe_t pipe, const std::string &m) {
    int64_t n = NPIPE_EAGAIN;
    poll.pump_until([&] { return (n = npipe_write(pipe, m.data(), m.size())) != NPIPE_EAGAIN; });
    return n;
}

// Reads one npipe_read_msg result (bounded retry on EAGAIN).
int64_t recv_msg(Poller &poll, npipe_t pipe, std::vector<char> &buf, size_t len, uint32_t &flags) {
    int64_t n = NPIPE_EAGAIN;
    flags = 0xDEADu;
    poll.pump_until([&] { return (n = npipe_read_msg(pipe, buf.data(), len, &flags)) != NPIPE_EAGAIN; });
    return n;
}

// Reads a whole message through chunks of `chunk` bytes: every chunk but the last has
// NPIPE_MSG_PARTIAL. Returns the message (or what arrived until something went wrong).
std::string recv_whole(Poller &poll, npipe_t pipe, size_t chunk, size_t *reads = nullptr) {
    std::string got;
    std::vector<char> buf(chunk ? chunk : 1);
    size_t count = 0;
    for (;;) {
        uint32_t flags = 0;
        const int64_t n = recv_msg(poll, pipe, buf, chunk, flags);
        ++count;
        if (n < 0) {
            FAIL_CHECK("read_msg: ", npipe_err_name(static_cast<int>(n)));
            break;
        }
        CHECK(static_cast<size_t>(n) <= chunk);
        got.append(buf.data(), static_cast<size_t>(n));
        CHECK((flags & ~(NPIPE_MSG_PARTIAL | NPIPE_MSG_EMPTY)) == 0u);
        if (!(flags & NPIPE_MSG_PARTIAL)) {
            if (n == 0) CHECK(flags == NPIPE_MSG_EMPTY);
            break;
        }
        CHECK(n > 0);
        if (count > (64u << 20)) break;
    }
    if (reads) *reads = count;
    return got;
}

const size_t kSizes[] = {0, 1, 4095, 4096, 4097, 8193, 100000};

}  // namespace

TEST_SUITE("message") {
    TEST_CASE("messages of many sizes keep their boundaries: queued before the read (bug B)" * doctest::timeout(60)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
        // All of them are written before the first read (the 100000-byte one last: it is taken
        // whole once the write buffer is empty, and stays pending until the reader reads).
        for (size_t i = 0; i < std::size(kSizes); ++i) {
            const std::string m = pattern(kSizes[i], static_cast<uint32_t>(i));
            CHECK(send_msg(poll, p.client, m) == static_cast<int64_t>(m.size()));
        }
        sleep_ms(100);  // let them queue up in the OS before the first read
        std::vector<char> buf(200000);
        for (size_t i = 0; i < std::size(kSizes); ++i) {
            CAPTURE(kSizes[i]);
            const std::string m = pattern(kSizes[i], static_cast<uint32_t>(i));
            // The header fixes boundaries, not chunk sizes: a message may come in pieces flagged
            // NPIPE_MSG_PARTIAL even into a big buffer, but never merged with the next one.
            CHECK(recv_whole(poll, p.server, buf.size()) == m);
        }
        uint32_t flags = 0xFF;
        CHECK(npipe_read_msg(p.server, buf.data(), buf.size(), &flags) == NPIPE_EAGAIN);
    }

    TEST_CASE("messages of many sizes keep their boundaries: arriving after the read (bug B)" * doctest::timeout(60)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
        std::vector<char> buf(200000);
        for (size_t i = 0; i < std::size(kSizes); ++i) {
            CAPTURE(kSizes[i]);
            uint32_t flags = 0;
            CHECK(npipe_read_msg(p.server, buf.data(), buf.size(), &flags) == NPIPE_EAGAIN);  // read first
            poll.wait(20);
            const std::string m = pattern(kSizes[i], static_cast<uint32_t>(100 + i));
            CHECK(send_msg(poll, p.client, m) == static_cast<int64_t>(m.size()));
            CHECK(recv_whole(poll, p.server, buf.size()) == m);
        }
    }

    TEST_CASE("small buffers: NPIPE_MSG_PARTIAL, then the rest, never merged with the next" * doctest::timeout(60)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
        for (size_t chunk : {size_t(1), size_t(7), size_t(128), size_t(4096), size_t(5000)}) {
            CAPTURE(chunk);
            const std::string a = pattern(10000, static_cast<uint32_t>(chunk));
            const std::string b = "next";
            CHECK(send_msg(poll, p.client, a) == 10000);
            CHECK(send_msg(poll, p.client, b) == 4);
            size_t reads = 0;
            CHECK(recv_whole(poll, p.server, chunk, &reads) == a);
            CHECK(reads >= (a.size() + chunk - 1) / chunk);
            CHECK(recv_whole(poll, p.server, chunk) == b);
        }
        // npipe_read with a small buffer on a message pipe: at most one message's bytes per call.
        CHECK(send_msg(poll, p.client, "first-message") == 13);
        CHECK(send_msg(poll, p.client, "second") == 6);
        std::string got;
        char buf[5];
        while (got.size() < 13) {
            int64_t n = NPIPE_EAGAIN;
            poll.pump_until([&] { return (n = npipe_read(p.server, buf, sizeof buf)) != NPIPE_EAGAIN; });
            REQUIRE(n > 0);
            got.append(buf, static_cast<size_t>(n));
        }
        CHECK(got == "first-message");  // the last piece stopped at the boundary
        std::vector<char> big(64);
        uint32_t flags = 0;
        CHECK(recv_msg(poll, p.server, big, big.size(), flags) == 6);
        CHECK(flags == 0u);
        CHECK(std::string(big.data(), 6) == "second");
    }

    TEST_CASE("empty messages vs EOF; npipe_read skips empty messages" * doctest::timeout(30)) {
        std::vector<char> buf(64);
        {
            Poller poll;
            Pair p;
            make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
            CHECK(npipe_write(p.client, buf.data(), 0) == 0);  // an empty message
            CHECK(send_msg(poll, p.client, "x") == 1);
            CHECK(npipe_write(p.client, nullptr, 0) == 0);
            CHECK(flush_all(poll, p.client) == NPIPE_OK);
            p.client.reset();
            uint32_t flags = 0;
            CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 0);
            CHECK(flags == NPIPE_MSG_EMPTY);
            CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 1);
            CHECK(flags == 0u);
            CHECK(buf[0] == 'x');
            CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 0);
            CHECK(flags == NPIPE_MSG_EMPTY);
            CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 0);
            CHECK(flags == 0u);  // EOF
            CHECK(npipe_read_msg(p.server, buf.data(), buf.size(), &flags) == 0);
            CHECK(flags == 0u);
            // msg_flags may be NULL.
            CHECK(npipe_read_msg(p.server, buf.data(), buf.size(), nullptr) == 0);
        }
        {
            Poller poll;
            Pair p;
            make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
            CHECK(npipe_write(p.client, buf.data(), 0) == 0);
            CHECK(send_msg(poll, p.client, "y") == 1);
            CHECK(npipe_write(p.client, buf.data(), 0) == 0);
            CHECK(npipe_write(p.client, buf.data(), 0) == 0);
            CHECK(send_msg(poll, p.client, "z") == 1);
            CHECK(npipe_write(p.client, buf.data(), 0) == 0);
            CHECK(flush_all(poll, p.client) == NPIPE_OK);
            p.client.reset();
            int64_t last = 1;
            CHECK(read_to_end(poll, p.server, &last) == "yz");  // read never returns 0 for them
            CHECK(last == 0);
        }
    }

    TEST_CASE("an empty message raises READABLE; npipe_read skips it to EAGAIN, not 0" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
        poll.gather(1, 50);
        poll.forget();
        char buf[16];
        CHECK(npipe_write(p.client, buf, 0) == 0);
        CHECK((poll.expect(1, NPIPE_READABLE) & NPIPE_READABLE) != 0);
        uint32_t flags = 0;
        CHECK(npipe_read_msg(p.server, buf, sizeof buf, &flags) == 0);
        CHECK(flags == NPIPE_MSG_EMPTY);
        // With npipe_read an empty message is skipped: nothing else queued means EAGAIN.
        CHECK(npipe_write(p.client, buf, 0) == 0);
        CHECK(flush_all(poll, p.client) == NPIPE_OK);
        poll.gather(1, 100);
        CHECK(npipe_read(p.server, buf, sizeof buf) == NPIPE_EAGAIN);
        CHECK(send_msg(poll, p.client, "a") == 1);
        int64_t n = NPIPE_EAGAIN;
        poll.pump_until([&] { return (n = npipe_read(p.server, buf, sizeof buf)) != NPIPE_EAGAIN; });
        CHECK(n == 1);
        CHECK(buf[0] == 'a');
    }

    TEST_CASE("disconnect in the middle of a message: the next client sees none of it" * doctest::timeout(30)) {
        Poller poll;
        const std::string name = unique_name("msg-reuse");
        PipeGuard server(create_server(name, NPIPE_MESSAGE));
        REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        std::vector<char> buf(64);
        {
            PipeGuard c1(open_client(name, NPIPE_MESSAGE));
            REQUIRE(npipe_register(poll, c1, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            REQUIRE(connect_server(poll, server) == NPIPE_OK);
            CHECK(send_msg(poll, c1, pattern(100000, 1)) == 100000);
            CHECK(send_msg(poll, c1, "queued behind") == 13);
            uint32_t flags = 0;
            CHECK(recv_msg(poll, server, buf, 10, flags) == 10);
            CHECK(flags == NPIPE_MSG_PARTIAL);
            CHECK(npipe_disconnect(server) == NPIPE_OK);
        }
        CHECK(npipe_connect(server) == NPIPE_EAGAIN);
        PipeGuard c2(open_client(name, NPIPE_MESSAGE));
        REQUIRE(npipe_register(poll, c2, 3, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(connect_server(poll, server) == NPIPE_OK);
        uint32_t flags = 0;
        CHECK(npipe_read_msg(server, buf.data(), buf.size(), &flags) == NPIPE_EAGAIN);
        CHECK(send_msg(poll, c2, "new") == 3);
        CHECK(recv_msg(poll, server, buf, buf.size(), flags) == 3);
        CHECK(flags == 0u);
        CHECK(std::string(buf.data(), 3) == "new");
    }

    TEST_CASE("writev sends one message") {
        Poller poll;
        Pair p;
        make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
        char a[] = "ab", b[] = "cd", c[] = "ef";
        npipe_iovec_t iov[3] = {{a, 2}, {b, 2}, {c, 2}};
        CHECK(npipe_writev(p.client, iov, 3) == 6);
        npipe_iovec_t none[1] = {{a, 0}};
        CHECK(npipe_writev(p.client, none, 1) == 0);  // one empty message
        CHECK(npipe_writev(p.client, iov, 1) == 2);
        std::vector<char> buf(64);
        uint32_t flags = 0;
        CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 6);
        CHECK(flags == 0u);
        CHECK(std::string(buf.data(), 6) == "abcdef");
        CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 0);
        CHECK(flags == NPIPE_MSG_EMPTY);
        CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 2);
        CHECK(std::string(buf.data(), 2) == "ab");
        // readv on a message pipe also stops at the boundary, across its buffers.
        CHECK(npipe_writev(p.client, iov, 3) == 6);
        CHECK(npipe_writev(p.client, iov, 3) == 6);
        char x[4], y[4];
        npipe_iovec_t in[2] = {{x, 4}, {y, 4}};
        int64_t n = NPIPE_EAGAIN;
        poll.pump_until([&] { return (n = npipe_readv(p.server, in, 2)) != NPIPE_EAGAIN; });
        CHECK(n == 6);
        CHECK(std::string(x, 4) + std::string(y, 2) == "abcdef");
    }

    TEST_CASE("16 MiB limit: 16 MiB + 1 is NPIPE_EMSGSIZE; 16 MiB goes through whole" * doctest::timeout(120)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
        std::string big = pattern(kMaxMsg + 1, 3);
        CHECK(npipe_write(p.client, big.data(), big.size()) == NPIPE_EMSGSIZE);
        npipe_iovec_t iov[2] = {{&big[0], kMaxMsg}, {&big[kMaxMsg], 1}};
        CHECK(npipe_writev(p.client, iov, 2) == NPIPE_EMSGSIZE);
        big.resize(kMaxMsg);
        // The write buffer is empty: the whole message is taken even though it exceeds its room.
        CHECK(npipe_write(p.client, big.data(), big.size()) == static_cast<int64_t>(kMaxMsg));
        // The next message is taken whole or not at all (EAGAIN) while the big one drains.
        const int64_t early = npipe_write(p.client, "after", 5);
        CHECK((early == NPIPE_EAGAIN || early == 5));
        const std::string got = recv_whole(poll, p.server, 1 << 20);
        CHECK(got.size() == kMaxMsg);
        CHECK(fnv1a(got.data(), got.size()) == fnv1a(big.data(), big.size()));
        if (early != 5) CHECK(send_msg(poll, p.client, "after") == 5);
        std::vector<char> buf(64);
        uint32_t flags = 0;
        CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 5);
        CHECK(std::string(buf.data(), 5) == "after");
    }

    TEST_CASE("write takes the whole message or EAGAIN, never part of it" * doctest::timeout(60)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
        size_t accepted = 0;
        int64_t n = 0;
        for (int i = 0; i < 200; ++i) {
            const std::string m = pattern(30000, static_cast<uint32_t>(i));
            n = npipe_write(p.client, m.data(), m.size());
            if (n == NPIPE_EAGAIN) break;
            REQUIRE(n == 30000);
            ++accepted;
        }
        CHECK(n == NPIPE_EAGAIN);  // the peer does not read: the buffer fills up
        CHECK(accepted >= 1);
        // A big message on a non-empty, full buffer: EAGAIN too, not partial.
        const std::string huge = pattern(1 << 20, 999);
        CHECK(npipe_write(p.client, huge.data(), huge.size()) == NPIPE_EAGAIN);
        std::vector<char> buf(65536);
        for (size_t i = 0; i < accepted; ++i) {
            CAPTURE(i);
            uint32_t flags = 0;
            const int64_t r = recv_msg(poll, p.server, buf, buf.size(), flags);
            REQUIRE(r == 30000);
            CHECK(flags == 0u);
            CHECK(std::string(buf.data(), 30000) == pattern(30000, static_cast<uint32_t>(i)));
        }
        uint32_t flags = 0;
        CHECK(npipe_read_msg(p.server, buf.data(), buf.size(), &flags) == NPIPE_EAGAIN);
        // Drained and flushed: the big one is taken whole now.
        CHECK(flush_all(poll, p.client) == NPIPE_OK);
        CHECK(npipe_write(p.client, huge.data(), huge.size()) == static_cast<int64_t>(huge.size()));
        CHECK(recv_whole(poll, p.server, 65536) == huge);
    }

    TEST_CASE("PR #1778: a 15314-byte message in one big read; 50/500/3000 from a writer thread" *
              doctest::timeout(60)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, NPIPE_MESSAGE, NPIPE_MESSAGE);
        const std::string m = pattern(15314, 1778);
        CHECK(send_msg(poll, p.client, m) == 15314);
        std::vector<char> buf(1 << 20);
        uint32_t flags = 0;
        int64_t n = recv_msg(poll, p.server, buf, buf.size(), flags);
        CHECK(n == 15314);
        CHECK(flags == 0u);
        CHECK(std::string(buf.data(), static_cast<size_t>(n > 0 ? n : 0)) == m);

        const size_t sizes[] = {50, 500, 3000};
        std::atomic<int> written{0};
        std::thread writer([&] {
            for (int rep = 0; rep < 5; ++rep) {
                for (size_t s : sizes) {
                    const std::string w = pattern(s, static_cast<uint32_t>(s + rep));
                    int64_t r = NPIPE_EAGAIN;
                    const Stopwatch sw;
                    while ((r = npipe_write(p.client, w.data(), w.size())) == NPIPE_EAGAIN && sw.ms() < kWaitMs)
                        sleep_ms(1);
                    CHECK(r == static_cast<int64_t>(s));
                    written++;
                    sleep_ms(rep);  // vary the timing: some arrive together, some apart
                }
            }
        });
        for (int rep = 0; rep < 5; ++rep) {
            for (size_t s : sizes) {
                CAPTURE(rep);
                CAPTURE(s);
                n = recv_msg(poll, p.server, buf, buf.size(), flags);
                CHECK(n == static_cast<int64_t>(s));
                CHECK(flags == 0u);
                if (n > 0)
                    CHECK(std::string(buf.data(), static_cast<size_t>(n)) ==
                          pattern(s, static_cast<uint32_t>(s + rep)));
            }
        }
        writer.join();
        CHECK(written == 15);
    }

    TEST_CASE("byte mode: read_msg behaves like read with flags 0") {
        Poller poll;
        Pair p;
        make_pair(poll, p);
        CHECK(npipe_write(p.client, "x", 0) == 0);  // nothing is sent in byte mode
        CHECK(send_msg(poll, p.client, "hello") == 5);
        CHECK(send_msg(poll, p.client, "world") == 5);
        CHECK(flush_all(poll, p.client) == NPIPE_OK);
        std::vector<char> buf(64);
        std::string got;
        while (got.size() < 10) {
            uint32_t flags = 0;
            const int64_t n = recv_msg(poll, p.server, buf, buf.size(), flags);
            REQUIRE(n > 0);
            CHECK(flags == 0u);
            got.append(buf.data(), static_cast<size_t>(n));
        }
        CHECK(got == "helloworld");
        p.client.reset();
        uint32_t flags = 0xFF;
        CHECK(recv_msg(poll, p.server, buf, buf.size(), flags) == 0);
        CHECK(flags == 0u);
    }
}
