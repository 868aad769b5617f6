// tokio's tests/net_named_pipe.rs, ported to the C API. tokio's tasks become
// threads, each with its own poll; tokio's ERROR_NO_DATA is our NPIPE_EPIPE.
#include <memory>
#include <thread>

#include "support.hpp"

using namespace test;

namespace {

// A ping/pong server on one poll: keeps a spare instance listening (the next instance is created
// right after each connect, as tokio's example does), reads "ping\n" from each client, answers
// "pong\n" and closes the instance at the client's EOF. Runs until `clients` were served or the
// bound passes. Only CHECKs (runs on a helper thread).
void run_pong_server(const std::string &name, int clients, std::atomic<int> &served, std::atomic<bool> &ready) {
    Poller poll;
    struct Instance {
        PipeGuard pipe;
        bool connected = false;
        std::string in;
        size_t out_done = 0;
    };
    std::map<uint64_t, std::unique_ptr<Instance>> live;
    uint64_t next_token = 100;
    int accepted = 0;
    bool failed = false;

    std::vector<uint64_t> just_connected;  // connected at once by npipe_connect (no event)
    auto spawn = [&](bool first) {
        auto ins = std::make_unique<Instance>();
        npipe_server_options_t opts;
        npipe_server_options_init(&opts);
        opts.flags = first ? NPIPE_FIRST_INSTANCE : 0;
        npipe_t h = 0;
        const int32_t rc = npipe_create(name.c_str(), &opts, &h);
        CHECK(rc == NPIPE_OK);
        if (rc != NPIPE_OK) {
            failed = true;
            return;
        }
        ins->pipe.reset(h);
        const uint64_t token = next_token++;
        CHECK(npipe_register(poll, h, token, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        const int32_t c = npipe_connect(h);
        CHECK((c == NPIPE_EAGAIN || c == NPIPE_OK));
        live[token] = std::move(ins);
        if (c == NPIPE_OK) just_connected.push_back(token);
    };
    // Advances one instance as far as it goes without blocking.
    auto drive = [&](uint64_t token, Instance &ins) -> bool /* finished */ {
        if (!ins.connected) return false;
        char buf[64];
        for (;;) {
            const int64_t n = npipe_read(ins.pipe, buf, sizeof buf);
            if (n > 0) {
                ins.in.append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n == 0) {  // the client left after reading its pong
                CHECK(ins.in == "ping\n");
                CHECK(ins.out_done == 5);
                if (ins.in == "ping\n" && ins.out_done == 5) served++;
                return true;
            }
            if (n != NPIPE_EAGAIN) {
                FAIL_CHECK("server read on token ", token, ": ", npipe_err_name(static_cast<int>(n)));
                failed = true;
                return true;
            }
            break;
        }
        if (ins.in == "ping\n") {
            while (ins.out_done < 5) {
                const int64_t n = npipe_write(ins.pipe, "pong\n" + ins.out_done, 5 - ins.out_done);
                if (n > 0) {
                    ins.out_done += static_cast<size_t>(n);
                    continue;
                }
                if (n != NPIPE_EAGAIN) {
                    FAIL_CHECK("server write: ", npipe_err_name(static_cast<int>(n)));
                    failed = true;
                    return true;
                }
                break;
            }
        }
        return false;
    };

    spawn(true);
    ready = true;
    const Stopwatch sw;
    while (!failed && served < clients && sw.ms() < 20000) {
        if (poll.wait(200) < 0) break;
        std::vector<npipe_event_t> batch = poll.last;
        for (const auto &e : batch) {
            auto it = live.find(e.token);
            if (it == live.end()) continue;
            Instance &ins = *it->second;
            if (!ins.connected && (e.events & NPIPE_CONNECTED)) {
                const int32_t err = npipe_take_error(ins.pipe);
                CHECK(err == NPIPE_OK);
                CHECK(npipe_connect(ins.pipe) == NPIPE_OK);
                just_connected.push_back(e.token);
                continue;
            }
            if (drive(e.token, ins)) live.erase(it);
        }
        while (!just_connected.empty()) {
            const uint64_t token = just_connected.back();
            just_connected.pop_back();
            auto it = live.find(token);
            if (it == live.end()) continue;
            it->second->connected = true;
            if (++accepted < clients) spawn(false);  // the spare instance
            if (drive(token, *it->second)) live.erase(token);
        }
    }
    CHECK(served == clients);
}

// tokio's client: open with retries (timeout_ms covers busy / not yet created), write the ping,
// read the pong. `partial` uses the readiness API with 2-byte chunks both ways.
bool ping_client(const std::string &name, bool partial) {
    npipe_client_options_t opts;
    npipe_client_options_init(&opts);
    opts.timeout_ms = 10000;
    npipe_t h = 0;
    const int32_t rc = npipe_open(name.c_str(), &opts, &h);
    if (rc != NPIPE_OK) FAIL_CHECK("npipe_open: ", npipe_err_name(rc), " ", npipe_last_error_message());
    if (rc != NPIPE_OK) return false;
    PipeGuard pipe(h);
    Poller poll;
    CHECK(npipe_register(poll, pipe, 7, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
    const size_t chunk = partial ? 2 : 5;
    const char *ping = "ping\n";
    size_t done = 0;
    std::string got;
    const Stopwatch sw;
    while ((done < 5 || got.size() < 5) && sw.ms() < 15000) {
        if (partial) {
            // Readiness first, then try_write / try_read until EAGAIN.
            const uint32_t want = done < 5 ? NPIPE_WRITABLE : NPIPE_READABLE | NPIPE_READ_CLOSED;
            if (!(poll.expect(7, want, 1000) & want)) continue;
        }
        while (done < 5) {
            const int64_t n = npipe_write(pipe, ping + done, std::min(chunk, 5 - done));
            if (n > 0) {
                done += static_cast<size_t>(n);
                continue;
            }
            CHECK(n == NPIPE_EAGAIN);
            if (n != NPIPE_EAGAIN) return false;
            break;
        }
        if (done == 5) {
            char buf[8];
            for (;;) {
                const int64_t n = npipe_read(pipe, buf, chunk);
                if (n > 0) {
                    CHECK(static_cast<size_t>(n) <= chunk);
                    got.append(buf, static_cast<size_t>(n));
                    continue;
                }
                CHECK(n == NPIPE_EAGAIN);
                if (n != NPIPE_EAGAIN) return false;
                break;
            }
        }
        if (!partial && (done < 5 || got.size() < 5)) poll.wait(200);
    }
    CHECK(got == "pong\n");
    return got == "pong\n";
}

void multi_client(bool partial) {
    constexpr int N = 10;
    const std::string name = unique_name(partial ? "multi-ready" : "multi");
    std::atomic<int> served{0};
    std::atomic<bool> ready{false};
    std::atomic<int> ok{0};
    std::thread server([&] { run_pong_server(name, N, served, ready); });
    std::vector<std::thread> clients;
    // tokio starts the clients right away; they retry until the server and a spare exist.
    for (int i = 0; i < N; ++i)
        clients.emplace_back([&] {
            if (ping_client(name, partial)) ok++;
        });
    for (auto &t : clients) t.join();
    server.join();
    CHECK(ok == N);
    CHECK(served == N);
}

// One attempt of the mode test: both ends write 10 × 5 bytes, flush, then read with 32-byte buffers.
// Returns the sizes the server's reads returned (until 50 bytes arrived).
std::vector<int64_t> mode_round(uint32_t flags, std::string &client_got) {
    Poller poll;
    Pair p;
    make_pair(poll, p, flags, flags, 1, 2, NPIPE_READABLE | NPIPE_WRITABLE, "mode");
    for (int i = 0; i < 10; ++i) {
        int64_t n = NPIPE_EAGAIN;
        poll.pump_until([&] { return (n = npipe_write(p.client, "hello", 5)) != NPIPE_EAGAIN; });
        CHECK(n == 5);
        poll.pump_until([&] { return (n = npipe_write(p.server, "world", 5)) != NPIPE_EAGAIN; });
        CHECK(n == 5);
    }
    CHECK(flush_all(poll, p.client) == NPIPE_OK);
    CHECK(flush_all(poll, p.server) == NPIPE_OK);
    std::vector<int64_t> sizes;
    std::string server_got;
    char buf[32];
    poll.pump_until([&] {
        for (;;) {
            if (server_got.size() >= 50) return true;
            const int64_t n = npipe_read(p.server, buf, sizeof buf);
            if (n <= 0) {
                CHECK(n == NPIPE_EAGAIN);
                return n != NPIPE_EAGAIN;
            }
            sizes.push_back(n);
            server_got.append(buf, static_cast<size_t>(n));
        }
    });
    CHECK(server_got.size() == 50);
    client_got.clear();
    poll.pump_until([&] {
        for (;;) {
            if (client_got.size() >= 50) return true;
            const int64_t n = npipe_read(p.client, buf, sizeof buf);
            if (n <= 0) return n != NPIPE_EAGAIN;
            if (flags & NPIPE_MESSAGE) CHECK(std::string(buf, static_cast<size_t>(n)) == "world");
            client_got.append(buf, static_cast<size_t>(n));
        }
    });
    CHECK(client_got.size() == 50);
    return sizes;
}

}  // namespace

TEST_SUITE("tokio") {
    TEST_CASE("client_drop" * doctest::timeout(30)) {
        Poller poll;
        Pair p;
        make_pair(poll, p, 0, 0, 1, 2, NPIPE_READABLE | NPIPE_WRITABLE, "drop");
        p.client.reset();
        int64_t n = 0;
        // write_all("ping") must fail: bytes may be taken until the library notices, then EPIPE.
        const Stopwatch sw;
        while (sw.ms() < kWaitMs) {
            n = npipe_write(p.server, "ping", 4);
            if (n == NPIPE_EAGAIN || n > 0) {
                poll.wait(50);
                continue;
            }
            break;
        }
        CHECK(npipe_err_name(static_cast<int>(n)) == std::string("NPIPE_EPIPE"));
    }

    TEST_CASE("single_client" * doctest::timeout(30)) {
        const std::string name = unique_name("single");
        std::atomic<bool> server_ok{false};
        std::thread server([&] {
            Poller poll;
            PipeGuard s(create_server(name, NPIPE_FIRST_INSTANCE));
            CHECK(npipe_register(poll, s, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            CHECK(connect_server(poll, s, 10000) == NPIPE_OK);
            std::string line;
            poll.pump_until([&] {
                char c;
                for (;;) {
                    const int64_t n = npipe_read(s, &c, 1);
                    if (n != 1) return n != NPIPE_EAGAIN;
                    line += c;
                    if (c == '\n') return true;
                }
            });
            CHECK(line == "ping\n");
            CHECK(write_all(poll, s, "pong\n") == 5);
            int64_t last = 1;
            CHECK(read_to_end(poll, s, &last).empty());  // the client closes after the pong
            CHECK(last == 0);
            server_ok = line == "ping\n" && last == 0;
        });
        {
            Poller poll;
            // The client may start before the server exists: timeout_ms retries NPIPE_ENOENT.
            PipeGuard c(open_client(name, 0, 10000));
            REQUIRE(npipe_register(poll, c, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            CHECK(write_all(poll, c, "ping\n") == 5);
            CHECK(read_exactly(poll, c, 5) == "pong\n");
        }
        server.join();
        CHECK(server_ok);
    }

    TEST_CASE("multi_client" * doctest::timeout(60)) { multi_client(false); }

    TEST_CASE("multi_client_ready" * doctest::timeout(60)) { multi_client(true); }

    TEST_CASE("mode_message" * doctest::timeout(30)) {
        std::string client_got;
        const auto msg_sizes = mode_round(NPIPE_MESSAGE, client_got);
        REQUIRE(msg_sizes.size() == 10);
        for (int64_t n : msg_sizes) CHECK(n == 5);
        // Byte mode must fail that expectation: the same traffic coalesces, which shows the test
        // above really exercises message mode.
        const auto byte_sizes = mode_round(0, client_got);
        CHECK(byte_sizes.size() < 10);
        bool coalesced = false;
        for (int64_t n : byte_sizes) coalesced = coalesced || n > 5;
        CHECK(coalesced);
    }

    TEST_CASE("access" * doctest::timeout(60)) {
        struct Case {
            bool inbound, outbound;
            uint32_t server_flags, client_flags;
        };
        const Case cases[] = {{true, true, 0, 0},
                              {true, false, NPIPE_INBOUND_ONLY, NPIPE_OUTBOUND_ONLY},
                              {false, true, NPIPE_OUTBOUND_ONLY, NPIPE_INBOUND_ONLY}};
        for (const Case &c : cases) {
            CAPTURE(c.inbound);
            CAPTURE(c.outbound);
            Poller poll;
            const std::string name = unique_name("access");
            PipeGuard server(create_server(name, c.server_flags));
            REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            // Not ready before a client: EAGAIN, and no readable/writable (tokio#5170).
            CHECK(npipe_connect(server) == NPIPE_EAGAIN);
            CHECK(poll.gather(1, 200) == 0);
            CHECK(npipe_connect(server) == NPIPE_EAGAIN);
            PipeGuard client(open_client(name, c.client_flags));
            REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            CHECK((poll.expect(1, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
            CHECK(npipe_take_error(server) == NPIPE_OK);
            CHECK(npipe_connect(server) == NPIPE_OK);
            // The allowed direction carries data; the other gives NPIPE_EACCES.
            char buf[8];
            if (c.inbound) {
                CHECK(write_all(poll, client, "in") == 2);
                CHECK(read_exactly(poll, server, 2) == "in");
            } else {
                CHECK(npipe_read(server, buf, sizeof buf) == NPIPE_EACCES);
                CHECK(npipe_write(client, "x", 1) == NPIPE_EACCES);
            }
            if (c.outbound) {
                CHECK(write_all(poll, server, "out") == 3);
                CHECK(read_exactly(poll, client, 3) == "out");
            } else {
                CHECK(npipe_write(server, "x", 1) == NPIPE_EACCES);
                CHECK(npipe_read(client, buf, sizeof buf) == NPIPE_EACCES);
            }
        }
    }
}
