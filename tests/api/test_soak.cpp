// Soak and churn, sized for a few seconds in CI and scaled up by NPIPE_SOAK_SCALE: a verified
// two-way byte transfer with random write and read sizes, message mode with random sizes 0..1 MiB,
// and open/exchange/close churn with the process's descriptor (Linux) or handle (Windows) count
// compared before and after. Each end runs on its own poll and thread. Random choices come from
// the printed seed (NPIPE_TEST_SEED repeats a run).
#include <memory>

#include "peer/transfer.hpp"
#include "support.hpp"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dirent.h>
#endif

using namespace test;

namespace {

// A server instance on one poll and its client on another, connected.
struct SplitPair {
    std::string name;
    Poller server_poll, client_poll;
    PipeGuard server, client;

    explicit SplitPair(uint32_t flags, const char *tag) : name(unique_name(tag)) {
        server.reset(create_server(name, flags));
        REQUIRE(npipe_register(server_poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        const int32_t first = npipe_connect(server);
        REQUIRE((first == NPIPE_EAGAIN || first == NPIPE_OK));
        client.reset(open_client(name, flags));
        REQUIRE(npipe_register(client_poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(connect_server(server_poll, server) == NPIPE_OK);
    }
};

// Message mode: one end sends `count` messages of random sizes 0..1 MiB (the first two are 0 and
// exactly 1 MiB) and checks the peer's `count` messages, reading them in random-sized pieces.
struct MessageSoak {
    static constexpr size_t kMax = size_t(1) << 20;
    npipe_t pipe;
    uint64_t count;
    peer::Rng out_sizes, in_sizes, read_sizes;
    peer::Stream out, expect;
    uint64_t sent = 0, received = 0;  // whole messages
    uint64_t empties_received = 0;
    uint64_t in_msg_size = 0, in_msg_got = 0;  // the message being read
    bool in_msg_open = false;
    std::vector<uint8_t> wbuf, rbuf;
    bool have_out = false;
    std::string error;  // the first broken promise, for the main thread to report

    MessageSoak(npipe_t p, bool is_server, uint64_t seed, uint64_t n)
        : pipe(p),
          count(n),
          out_sizes(peer::server_stream_seed(seed) + (is_server ? 0 : 1)),
          in_sizes(peer::server_stream_seed(seed) + (is_server ? 1 : 0)),
          read_sizes(seed ^ (is_server ? 0xAAu : 0xBBu)),
          out(is_server ? peer::server_stream_seed(seed) : peer::client_stream_seed(seed)),
          expect(is_server ? peer::client_stream_seed(seed) : peer::server_stream_seed(seed)),
          rbuf(kMax + kMax / 2) {}

    static uint64_t size_of(peer::Rng &r, uint64_t index) {
        const uint64_t v = r.between(0, kMax);  // drawn for every message, so both ends agree
        return index == 0 ? 0 : index == 1 ? kMax : v;
    }
    bool done() const { return sent == count && received == count; }

    void pump() {
        while (sent < count && error.empty()) {
            if (!have_out) {
                wbuf.resize(static_cast<size_t>(size_of(out_sizes, sent)));
                for (auto &b : wbuf) b = out.next();
                have_out = true;
            }
            const int64_t n = npipe_write(pipe, wbuf.data(), wbuf.size());
            if (n == NPIPE_EAGAIN) break;
            if (n != static_cast<int64_t>(wbuf.size())) {
                error = "message write took " + std::to_string(n) + " of " + std::to_string(wbuf.size()) + " bytes";
                return;
            }
            have_out = false;
            ++sent;
        }
        while (received < count && error.empty()) {
            if (!in_msg_open) {
                in_msg_size = size_of(in_sizes, received);
                in_msg_got = 0;
                in_msg_open = true;
            }
            const size_t len = static_cast<size_t>(read_sizes.between(1, rbuf.size()));
            uint32_t flags = 0xFFFFFFFFu;
            const int64_t n = npipe_read_msg(pipe, rbuf.data(), len, &flags);
            if (n == NPIPE_EAGAIN) break;
            if (n < 0 || n > static_cast<int64_t>(len)) {
                error = "npipe_read_msg returned " + std::to_string(n) + " for " + std::to_string(len) + " bytes";
                return;
            }
            const uint64_t left = in_msg_size - in_msg_got;
            if (in_msg_size == 0) {
                if (n != 0 || flags != NPIPE_MSG_EMPTY) {
                    error = "message " + std::to_string(received) + " is empty, read gave " + std::to_string(n) +
                            " bytes, flags " + std::to_string(flags);
                    return;
                }
                ++empties_received;
            } else {
                const bool partial = static_cast<uint64_t>(n) < left;
                if (n == 0 || static_cast<uint64_t>(n) > left || flags != (partial ? NPIPE_MSG_PARTIAL : 0u)) {
                    error = "message " + std::to_string(received) + ": " + std::to_string(left) +
                            " bytes left, read gave " + std::to_string(n) + " with flags " + std::to_string(flags);
                    return;
                }
                for (int64_t i = 0; i < n; ++i)
                    if (rbuf[static_cast<size_t>(i)] != expect.next()) {
                        error = "message " + std::to_string(received) + ": byte " +
                                std::to_string(in_msg_got + static_cast<uint64_t>(i)) + " differs";
                        return;
                    }
                in_msg_got += static_cast<uint64_t>(n);
            }
            if (in_msg_got == in_msg_size) {
                in_msg_open = false;
                ++received;
            }
        }
    }
};

// Runs `step` after each wait on `poll` until `finished` holds or the bound passes.
template <class Step, class Finished>
bool drive(npipe_poll_t poll, Step &&step, Finished &&finished, int32_t bound_ms) {
    const Stopwatch sw;
    npipe_event_t ev[8];
    for (;;) {
        step();
        if (finished()) return true;
        if (sw.ms() > bound_ms || npipe_poll_wait(poll, ev, 8, 50) < 0) return false;
    }
}

// The OS objects the process holds: its handles on Windows, its descriptors on Linux.
size_t os_object_count() {
#if defined(_WIN32)
    DWORD n = 0;
    if (GetProcessHandleCount(GetCurrentProcess(), &n) && n > 0) return n;
    // Wine 8 answers 0: count the handle values that name a handle instead (a process's handles
    // are multiples of 4 from 4 up, reused after close, and a test process holds a few hundred).
    size_t probed = 0;
    for (ULONG_PTR v = 4; v < 65536; v += 4) {
        DWORD flags = 0;
        if (GetHandleInformation(reinterpret_cast<HANDLE>(v), &flags)) ++probed;
    }
    return probed;
#else
    size_t n = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
        while (readdir(d)) ++n;
        closedir(d);
    }
    return n;
#endif
}

constexpr int32_t kSoakBoundMs = 120000;  // far above the few seconds each soak takes

}  // namespace

TEST_SUITE("soak") {
    TEST_CASE("two-way transfer with random write and read sizes: every byte arrives, verified" *
              doctest::timeout(300)) {
        MESSAGE(seed_note());
        const uint64_t bytes = soak_amount(uint64_t(512) << 20);
        SplitPair p(0, "soak");
        peer::Transfer server_side(p.server, true, test_seed(), bytes, bytes);
        peer::Transfer client_side(p.client, false, test_seed(), bytes, bytes);
        std::atomic<bool> server_ok{false};
        const npipe_poll_t server_poll = p.server_poll;
        // A side stops waiting on its poll only once its last bytes are out: the poll's waits are
        // what moves them.
        const npipe_t server_pipe = p.server, client_pipe = p.client;
        std::thread server_thread([&] {
            server_ok = peer::pump_until(
                server_poll, server_side, [&] { return server_side.done() && npipe_flush(server_pipe) == NPIPE_OK; },
                kSoakBoundMs);
        });
        const bool client_ok = peer::pump_until(
            p.client_poll, client_side, [&] { return client_side.done() && npipe_flush(client_pipe) == NPIPE_OK; },
            kSoakBoundMs);
        server_thread.join();
        CAPTURE(bytes);
        CHECK(server_ok.load());
        CHECK(client_ok);
        for (const peer::Transfer *t : {&server_side, &client_side}) {
            CHECK(t->sent == bytes);
            CHECK(t->received == bytes);
            CHECK(t->mismatch_at == UINT64_MAX);
            CHECK_FALSE(t->oversized_read);
            CHECK(t->write_error == 0);
            CHECK(t->read_error == 0);
            CHECK_FALSE(t->eof);
        }
        CHECK(info_of(p.server).bytes_read == bytes);
        CHECK(info_of(p.client).bytes_written == bytes);
    }

    TEST_CASE("message mode, random sizes 0..1 MiB both ways: boundaries, flags and bytes" * doctest::timeout(300)) {
        MESSAGE(seed_note());
        const uint64_t count = soak_amount(640);
        SplitPair p(NPIPE_MESSAGE, "soak-msg");
        MessageSoak server_side(p.server, true, test_seed(), count);
        MessageSoak client_side(p.client, false, test_seed(), count);
        std::atomic<bool> server_ok{false};
        const npipe_poll_t server_poll = p.server_poll;
        const npipe_t server_pipe = p.server, client_pipe = p.client;
        std::thread server_thread([&] {
            server_ok = drive(
                server_poll, [&] { server_side.pump(); },
                [&] {
                    return (server_side.done() && npipe_flush(server_pipe) == NPIPE_OK) || !server_side.error.empty();
                },
                kSoakBoundMs);
        });
        const bool client_ok = drive(
            p.client_poll, [&] { client_side.pump(); },
            [&] { return (client_side.done() && npipe_flush(client_pipe) == NPIPE_OK) || !client_side.error.empty(); },
            kSoakBoundMs);
        server_thread.join();
        CAPTURE(count);
        CHECK(server_side.error == "");
        CHECK(client_side.error == "");
        CHECK(server_ok.load());
        CHECK(client_ok);
        CHECK(server_side.received == count);
        CHECK(client_side.received == count);
        CHECK(server_side.empties_received >= 1);  // the first message of each side is empty
        CHECK(client_side.empties_received >= 1);
    }

    TEST_CASE("open/exchange/close churn leaves as many descriptors / handles as before" * doctest::timeout(300)) {
        MESSAGE(seed_note());
        const uint64_t cycles = soak_amount(8000);
        peer::Rng rng(test_seed());
        auto poll = std::make_unique<Poller>();
        // One cycle: a fresh instance (or the previous one, disconnected), a client, a few bytes
        // each way, and both ends closed in a random order, sometimes with bytes still lingering.
        PipeGuard reuse;
        std::string reuse_name;
        uint64_t exchanged = 0;
        const auto cycle = [&](uint64_t i) {
            const uint32_t flags = rng.between(0, 3) == 0 ? NPIPE_MESSAGE : 0;
            PipeGuard server;
            std::string name;
            if (reuse && flags == 0) {
                REQUIRE(npipe_disconnect(reuse) == NPIPE_OK);
                server.reset(reuse.release());
                name = reuse_name;
            } else {
                reuse.reset();
                name = unique_name("churn");
                server.reset(create_server(name, flags));
                REQUIRE(npipe_register(*poll, server, 2 * i, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            }
            const int32_t first = npipe_connect(server);
            REQUIRE((first == NPIPE_EAGAIN || first == NPIPE_OK));
            PipeGuard client(open_client(name, flags));
            REQUIRE(npipe_register(*poll, client, 2 * i + 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            REQUIRE(connect_server(*poll, server) == NPIPE_OK);
            const std::string up = pattern(static_cast<size_t>(rng.between(1, 4096)), static_cast<uint32_t>(i));
            const std::string down = pattern(static_cast<size_t>(rng.between(1, 4096)), static_cast<uint32_t>(i + 7));
            REQUIRE(write_all(*poll, client, up) == up.size());
            REQUIRE(write_all(*poll, server, down) == down.size());
            REQUIRE(read_exactly(*poll, server, up.size()) == up);
            REQUIRE(read_exactly(*poll, client, down.size()) == down);
            exchanged += up.size() + down.size();
            if (rng.between(0, 3) == 0) write_all(*poll, client, up);  // left to linger at close
            switch (rng.between(0, 2)) {
                case 0:  // client first; the instance serves the next cycle
                    client.reset();
                    if (flags == 0) {
                        reuse_name = name;
                        reuse.reset(server.release());
                    }
                    break;
                case 1: server.reset(); break;
                default: break;  // both at scope exit, server last
            }
            if (i % 64 == 63) {
                client.reset();
                server.reset();
                reuse.reset();
                poll = std::make_unique<Poller>();  // closing the poll releases what still lingers
            }
        };
        cycle(0);  // whatever the library and the OS set up once is there before counting
        reuse.reset();
        poll.reset();
        const size_t before = os_object_count();
        REQUIRE(before > 0);
        poll = std::make_unique<Poller>();
        for (uint64_t i = 1; i <= cycles; ++i) cycle(i);
        reuse.reset();
        poll.reset();
        const size_t after = os_object_count();
        CAPTURE(cycles);
        CAPTURE(exchanged);
        CHECK(after == before);
    }
}
