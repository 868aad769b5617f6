// npipe bench: throughput, ping-pong latency and many-clients fan-out, each measured through npipe
// and through plain blocking OS calls (raw_os.hpp) in the same run, with the npipe/raw ratio.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "raw_os.hpp"
#include "server_thread.hpp"

namespace tool {
namespace {

const char *const kHelp =
    "usage: npipe bench [options]\n"
    "       npipe bench burst [options]   (clients opening at once: see npipe bench burst --help)\n"
    "       npipe bench open [options]    (waiting for a server: see npipe bench open --help)\n"
    "\n"
    "Measures three workloads, each through npipe (one poll per thread) and through plain\n"
    "blocking OS calls with one thread per connection end (Windows: CreateNamedPipeW/CreateFileW\n"
    "+ ReadFile/WriteFile; Linux: AF_UNIX socket + read/write), in the same run:\n"
    "  throughput  one client streams --bytes in --chunk writes to a server that reads them\n"
    "  pingpong    --round-trips request/response exchanges of --msg-size bytes with an echo server\n"
    "  fanout      --clients clients at once, each echoing --client-bytes in --chunk pieces\n"
    "              (write a piece, read it back) through echo servers on --threads polls, the\n"
    "              clients spread over as many polls of their own\n"
    "ratio = npipe speed / raw speed (1.00 = as fast as the raw OS calls, below 1 = slower).\n"
    "\n"
    "options:\n"
    "  --bytes SIZE         throughput volume (default 256MiB)\n"
    "  --chunk SIZE         write size for throughput and fanout (default 64KiB)\n"
    "  --round-trips N      ping-pong exchanges (default 10000)\n"
    "  --msg-size SIZE      ping-pong message size (default 64)\n"
    "  --clients N          fanout clients (1..200, default 64)\n"
    "  --client-bytes SIZE  fanout volume per client (default 1MiB)\n"
    "  --threads N          fanout polls (each with its thread) per side (1..64, default: one\n"
    "                       per processor, at most 16)\n"
    "  --repeat N           run each measurement N times and keep the best (default 1)\n"
    "  --only LIST          comma-separated subset of throughput,pingpong,fanout\n"
    "  --json               print one JSON document on stdout instead of the table\n"
    "  --progress           progress line on stderr (default: only when stderr is a terminal)\n"
    "  -h, --help           this text\n";

constexpr int kStallMs = 10000;  // any wait without progress for this long fails the run

// One poll per processor on each side of the fan-out, as a server on npipe would use them.
int64_t default_threads() {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : std::min<int64_t>(n, 16);
}

struct Params {
    uint64_t bytes = 256ull << 20;
    uint64_t chunk = 64 * 1024;
    int64_t round_trips = 10000;
    uint64_t msg_size = 64;
    int64_t clients = 64;
    uint64_t client_bytes = 1 << 20;
    int64_t threads = default_threads();
    int64_t repeat = 1;
    bool progress = false;
};

// Progress on stderr, at most every 200 ms.
class Progress {
public:
    Progress(bool on, std::string label) : on_(on), label_(std::move(label)) {}
    void update(uint64_t done, uint64_t total) {
        if (!on_) return;
        double t = now_seconds();
        if (t - last_ < 0.2 && done < total) return;
        last_ = t;
        std::fprintf(stderr, "\rbench: %-20s %3d%%", label_.c_str(),
                     total ? static_cast<int>(done * 100 / total) : 100);
        std::fflush(stderr);
    }
    ~Progress() {
        if (on_) std::fprintf(stderr, "\r%-40s\r", "");
    }

private:
    bool on_;
    std::string label_;
    double last_ = 0;
};

// Waits on `poll`; a failure, or kStallMs without an event, becomes `f`.
bool wait_or_fail(npipe_poll_t poll, Failure &f, const char *what) {
    npipe_event_t events[64];
    int32_t n = npipe_poll_wait(poll, events, 64, kStallMs);
    if (n > 0) return true;
    f = n < 0 ? capture(n, what) : plain_failure(what, "no progress for 10 s");
    return false;
}

Failure open_registered(const std::string &name, npipe_poll_t poll, uint64_t token, npipe_t &out) {
    npipe_client_options_t o;
    npipe_client_options_init(&o);
    o.timeout_ms = kStallMs;
    int32_t rc = npipe_open(name.c_str(), &o, &out);
    if (rc < 0) return capture(rc, "cannot connect to \"" + name + "\"", true);
    rc = npipe_register(poll, out, token, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc < 0) return capture(rc, "cannot register a client");
    return Failure{};
}

// --- throughput -------------------------------------------------------------------------------

Failure npipe_throughput(const Params &p, double &seconds) {
    std::string name = unique_name("npipe-bench-tp");
    npipe_t server = 0;
    int32_t rc = npipe_create(name.c_str(), nullptr, &server);
    if (rc < 0) return capture(rc, "cannot create pipe \"" + name + "\"", true);
    Failure sink_failure;
    std::thread sink([&] {
        Poll poll;
        Failure &f = sink_failure;
        int32_t r = npipe_register(poll.h, server, 1, NPIPE_READABLE);
        if (r < 0) {
            f = capture(r, "cannot register the server");
            return;
        }
        int32_t c = npipe_connect(server);
        while (c == NPIPE_EAGAIN) {
            if (!wait_or_fail(poll.h, f, "throughput: waiting for the client")) return;
            c = npipe_connect(server);
        }
        if (c < 0) {
            f = capture(c, "throughput: connect failed");
            return;
        }
        std::vector<char> buf(p.chunk);
        uint64_t got = 0;
        while (got < p.bytes) {
            int64_t n = npipe_read(server, buf.data(), buf.size());
            if (n == NPIPE_EAGAIN) {
                if (!wait_or_fail(poll.h, f, "throughput: reading")) return;
                continue;
            }
            if (n <= 0) {
                f = n == 0 ? plain_failure("throughput", "early EOF")
                           : capture(static_cast<int>(n), "throughput: read failed");
                return;
            }
            got += static_cast<uint64_t>(n);
        }
        npipe_close(server);
    });
    Failure f;
    {
        Poll poll;
        npipe_t client = 0;
        f = open_registered(name, poll.h, 1, client);
        std::vector<char> buf(p.chunk);
        Rng(1).fill(buf.data(), buf.size());
        Progress prog(p.progress, "throughput npipe");
        double t0 = now_seconds();
        uint64_t sent = 0;
        size_t off = 0;
        while (!f.failed() && sent < p.bytes) {
            size_t len = static_cast<size_t>(std::min<uint64_t>(buf.size() - off, p.bytes - sent));
            int64_t w = npipe_write(client, buf.data() + off, len);
            if (w == NPIPE_EAGAIN) {
                wait_or_fail(poll.h, f, "throughput: writing");
                continue;
            }
            if (w < 0) {
                f = capture(static_cast<int>(w), "throughput: write failed");
                break;
            }
            sent += static_cast<uint64_t>(w);
            off = (off + static_cast<size_t>(w)) % buf.size();
            prog.update(sent, p.bytes);
        }
        while (!f.failed()) {
            int32_t fl = npipe_flush(client);
            if (fl == NPIPE_OK) break;
            if (fl != NPIPE_EAGAIN)
                f = capture(fl, "throughput: flush failed");
            else
                wait_or_fail(poll.h, f, "throughput: flushing");
        }
        if (f.failed()) npipe_close(server);  // unblocks nothing by itself; the sink times out
        sink.join();
        seconds = now_seconds() - t0;
        if (client) npipe_close(client);
    }
    if (!f.failed()) f = sink_failure;
    return f;
}

Failure raw_throughput(const Params &p, double &seconds) {
    raw::Server srv;
    std::string name = raw::endpoint_name("tp");
    if (!srv.listen(name)) return plain_failure("raw throughput: cannot listen on " + name, raw::last_error());
    std::atomic<bool> sink_ok{false};
    std::thread sink([&] {
        raw::Conn c = srv.accept();
        std::vector<char> buf(p.chunk);
        uint64_t got = 0;
        while (c.valid() && got < p.bytes) {
            int64_t n = c.read_some(buf.data(), buf.size());
            if (n <= 0) break;
            got += static_cast<uint64_t>(n);
        }
        sink_ok = got == p.bytes;
    });
    raw::Conn c = raw::connect(name, kStallMs);
    if (!c.valid()) {
        sink.detach();  // blocked in accept; the process exits soon after this failure
        return plain_failure("raw throughput: cannot connect to " + name, raw::last_error());
    }
    std::vector<char> buf(p.chunk);
    Rng(1).fill(buf.data(), buf.size());
    Progress prog(p.progress, "throughput raw");
    double t0 = now_seconds();
    uint64_t sent = 0;
    bool ok = true;
    while (ok && sent < p.bytes) {
        size_t len = static_cast<size_t>(std::min<uint64_t>(buf.size(), p.bytes - sent));
        ok = c.write_all(buf.data(), len);
        sent += len;
        prog.update(sent, p.bytes);
    }
    c.close();
    sink.join();
    seconds = now_seconds() - t0;
    if (!ok || !sink_ok) return plain_failure("raw throughput", "transfer failed: " + raw::last_error());
    return Failure{};
}

// --- ping-pong ---------------------------------------------------------------------------------

Failure npipe_pingpong(const Params &p, double &seconds) {
    EchoServerThread server;
    EchoServerConfig cfg;
    cfg.name = unique_name("npipe-bench-pp");
    if (Failure f = server.start(cfg); f.failed()) return f;
    Poll poll;
    npipe_t client = 0;
    Failure f = open_registered(cfg.name, poll.h, 1, client);
    std::vector<char> out(p.msg_size), in(p.msg_size);
    Rng(2).fill(out.data(), out.size());
    Progress prog(p.progress, "pingpong npipe");
    double t0 = now_seconds();
    for (int64_t i = 0; i < p.round_trips && !f.failed(); ++i) {
        for (size_t off = 0; off < out.size() && !f.failed();) {
            int64_t w = npipe_write(client, out.data() + off, out.size() - off);
            if (w == NPIPE_EAGAIN)
                wait_or_fail(poll.h, f, "pingpong: writing");
            else if (w < 0)
                f = capture(static_cast<int>(w), "pingpong: write failed");
            else
                off += static_cast<size_t>(w);
        }
        for (size_t got = 0; got < in.size() && !f.failed();) {
            int64_t r = npipe_read(client, in.data() + got, in.size() - got);
            if (r == NPIPE_EAGAIN)
                wait_or_fail(poll.h, f, "pingpong: reading");
            else if (r <= 0)
                f = r == 0 ? plain_failure("pingpong", "early EOF")
                           : capture(static_cast<int>(r), "pingpong: read failed");
            else
                got += static_cast<size_t>(r);
        }
        prog.update(static_cast<uint64_t>(i + 1), static_cast<uint64_t>(p.round_trips));
    }
    seconds = now_seconds() - t0;
    if (client) npipe_close(client);
    server.stop();
    if (!f.failed() && in != out) f = plain_failure("pingpong", "the echo differs from the request");
    return f;
}

Failure raw_pingpong(const Params &p, double &seconds) {
    raw::Server srv;
    std::string name = raw::endpoint_name("pp");
    if (!srv.listen(name)) return plain_failure("raw pingpong: cannot listen on " + name, raw::last_error());
    std::thread echo([&] {
        raw::Conn c = srv.accept();
        std::vector<char> buf(64 * 1024);
        for (;;) {
            int64_t n = c.valid() ? c.read_some(buf.data(), buf.size()) : 0;
            if (n <= 0 || !c.write_all(buf.data(), static_cast<size_t>(n))) break;
        }
    });
    raw::Conn c = raw::connect(name, kStallMs);
    if (!c.valid()) {
        echo.detach();
        return plain_failure("raw pingpong: cannot connect to " + name, raw::last_error());
    }
    std::vector<char> out(p.msg_size), in(p.msg_size);
    Rng(2).fill(out.data(), out.size());
    Progress prog(p.progress, "pingpong raw");
    double t0 = now_seconds();
    bool ok = true;
    for (int64_t i = 0; i < p.round_trips && ok; ++i) {
        ok = c.write_all(out.data(), out.size()) && c.read_exact(in.data(), in.size());
        prog.update(static_cast<uint64_t>(i + 1), static_cast<uint64_t>(p.round_trips));
    }
    seconds = now_seconds() - t0;
    c.close();
    echo.join();
    if (!ok || in != out) return plain_failure("raw pingpong", "exchange failed: " + raw::last_error());
    return Failure{};
}

// --- fan-out -----------------------------------------------------------------------------------

struct FanClient {
    npipe_t h = 0;
    uint64_t left = 0;
    size_t len = 0, off = 0, got = 0;
    bool sending = true;
};

// One client thread of the fan-out: `count` clients on its own poll, each echoing
// --client-bytes in lock-step (write a piece, read it back, next piece).
Failure run_fan_clients(const Params &p, const std::string &name, size_t count, std::atomic<uint64_t> &done,
                        Progress *prog) {
    Poll poll;
    std::vector<char> out(p.chunk), in(p.chunk);
    Rng(3).fill(out.data(), out.size());
    std::vector<FanClient> clients(count);
    Failure f;
    for (size_t i = 0; i < clients.size() && !f.failed(); ++i) {
        f = open_registered(name, poll.h, i, clients[i].h);
        clients[i].left = p.client_bytes;
    }
    size_t finished = 0;
    auto pump = [&](FanClient &c) {
        while (c.left > 0 && !f.failed()) {
            if (c.sending) {
                if (c.off == 0) c.len = static_cast<size_t>(std::min<uint64_t>(c.left, out.size()));
                int64_t w = npipe_write(c.h, out.data() + c.off, c.len - c.off);
                if (w == NPIPE_EAGAIN) return;
                if (w < 0) {
                    f = capture(static_cast<int>(w), "fanout: write failed");
                    return;
                }
                c.off += static_cast<size_t>(w);
                if (c.off == c.len) c.sending = false;
            } else {
                int64_t r = npipe_read(c.h, in.data(), c.len - c.got);
                if (r == NPIPE_EAGAIN) return;
                if (r <= 0) {
                    f = r == 0 ? plain_failure("fanout", "early EOF")
                               : capture(static_cast<int>(r), "fanout: read failed");
                    return;
                }
                c.got += static_cast<size_t>(r);
                if (c.got == c.len) {
                    c.left -= c.len;
                    done += c.len;
                    c.off = c.got = 0;
                    c.sending = true;
                    if (c.left == 0) ++finished;
                }
            }
        }
    };
    for (auto &c : clients) pump(c);
    uint64_t total = static_cast<uint64_t>(p.clients) * p.client_bytes;
    npipe_event_t events[256];
    while (!f.failed() && finished < clients.size()) {
        int32_t n = npipe_poll_wait(poll.h, events, 256, kStallMs);
        if (n <= 0) {
            f = n < 0 ? capture(n, "fanout: wait failed") : plain_failure("fanout", "no progress for 10 s");
            break;
        }
        for (int32_t i = 0; i < n; ++i) pump(clients[static_cast<size_t>(events[i].token)]);
        if (prog) prog->update(done, total);
    }
    for (auto &c : clients)
        if (c.h) npipe_close(c.h);
    return f;
}

// --threads echo servers (each a listener on its own poll and thread, all of one name) and as many
// client threads, each with its own poll and its share of the clients: how a server on npipe
// uses the processors, where the raw side needs a thread per connection end.
Failure npipe_fanout(const Params &p, double &seconds) {
    size_t threads = static_cast<size_t>(std::min(p.threads, p.clients));
    EchoServerConfig cfg;
    cfg.name = unique_name("npipe-bench-fan");
    std::vector<std::unique_ptr<EchoServerThread>> servers;
    for (size_t t = 0; t < threads; ++t) {
        servers.push_back(std::make_unique<EchoServerThread>());
        if (Failure f = servers.back()->start(cfg); f.failed()) return f;
    }
    Progress prog(p.progress, "fanout npipe");
    std::atomic<uint64_t> done{0};
    std::vector<Failure> failures(threads);
    std::vector<std::thread> pumps;
    double t0 = now_seconds();
    for (size_t t = 0; t < threads; ++t) {
        // Clients spread evenly: the first (clients % threads) threads take one more.
        size_t count =
            static_cast<size_t>(p.clients) / threads + (t < static_cast<size_t>(p.clients) % threads ? 1 : 0);
        pumps.emplace_back(
            [&, t, count] { failures[t] = run_fan_clients(p, cfg.name, count, done, t == 0 ? &prog : nullptr); });
    }
    for (auto &th : pumps) th.join();
    seconds = now_seconds() - t0;
    for (auto &s : servers) s->stop();
    for (auto &f : failures)
        if (f.failed()) return f;
    uint64_t total = static_cast<uint64_t>(p.clients) * p.client_bytes;
    if (done != total)
        return plain_failure("fanout",
                             "echoed " + std::to_string(done.load()) + " of " + std::to_string(total) + " bytes");
    return Failure{};
}

Failure raw_fanout(const Params &p, double &seconds) {
    raw::Server srv;
    std::string name = raw::endpoint_name("fan");
    if (!srv.listen(name)) return plain_failure("raw fanout: cannot listen on " + name, raw::last_error());
    size_t k = static_cast<size_t>(p.clients);
    std::atomic<size_t> failures{0};
    std::atomic<uint64_t> done{0};
    std::vector<std::thread> servers, clients;
    Progress prog(p.progress, "fanout raw");
    double t0 = now_seconds();
    for (size_t i = 0; i < k; ++i)
        servers.emplace_back([&] {
            raw::Conn c = srv.accept();
            std::vector<char> buf(p.chunk);
            for (;;) {
                int64_t n = c.valid() ? c.read_some(buf.data(), buf.size()) : 0;
                if (n <= 0 || !c.write_all(buf.data(), static_cast<size_t>(n))) break;
            }
        });
    for (size_t i = 0; i < k; ++i)
        clients.emplace_back([&] {
            raw::Conn c = raw::connect(name, kStallMs);
            std::vector<char> out(p.chunk), in(p.chunk);
            uint64_t left = p.client_bytes;
            bool ok = c.valid();
            while (ok && left > 0) {
                size_t len = static_cast<size_t>(std::min<uint64_t>(left, out.size()));
                ok = c.write_all(out.data(), len) && c.read_exact(in.data(), len);
                left -= len;
                done += len;
            }
            if (!ok) ++failures;
        });
    uint64_t total = static_cast<uint64_t>(p.clients) * p.client_bytes;
    for (auto &t : clients) {
        t.join();
        prog.update(done, total);
    }
    seconds = now_seconds() - t0;
    if (failures > 0) {
        // Server threads of clients that never connected are still in accept(): leave them.
        for (auto &t : servers) t.detach();
        return plain_failure("raw fanout", std::to_string(failures.load()) + " clients failed");
    }
    for (auto &t : servers) t.join();
    return Failure{};
}

// --- report ------------------------------------------------------------------------------------

struct Row {
    const char *test;
    std::string what;
    const char *unit;
    bool higher_is_better;
    double npipe, raw;
    double npipe_seconds, raw_seconds;
    double ratio() const {
        if (npipe <= 0 || raw <= 0) return 0;
        return higher_is_better ? npipe / raw : raw / npipe;
    }
};

std::string json_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

}  // namespace

int cmd_bench(const std::vector<std::string> &argv) {
    if (!argv.empty() && argv[0] == "burst") return cmd_bench_burst({argv.begin() + 1, argv.end()});
    if (!argv.empty() && argv[0] == "open") return cmd_bench_open({argv.begin() + 1, argv.end()});
    auto args = parse_args("bench", argv,
                           {{"help", false, 'h'},
                            {"bytes", true},
                            {"chunk", true},
                            {"round-trips", true},
                            {"msg-size", true},
                            {"clients", true},
                            {"client-bytes", true},
                            {"threads", true},
                            {"only", true},
                            {"repeat", true},
                            {"json", false},
                            {"progress", false}});
    if (!args) return exit_usage;
    if (args->has("help")) {
        std::printf("%s\n%s", kHelp, kExitCodeHelp);
        return exit_ok;
    }
    if (!args->positional.empty()) return usage_error("bench", "unexpected argument '" + args->positional[0] + "'");
    Params p;
    if (!size_option("bench", *args, "bytes", 1, 1ull << 40, p.bytes) ||
        !size_option("bench", *args, "chunk", 1, 16u << 20, p.chunk) ||
        !int_option("bench", *args, "round-trips", 1, 100000000, p.round_trips) ||
        !size_option("bench", *args, "msg-size", 1, 1u << 20, p.msg_size) ||
        !int_option("bench", *args, "clients", 1, 200, p.clients) ||
        !size_option("bench", *args, "client-bytes", 1, 1ull << 36, p.client_bytes) ||
        !int_option("bench", *args, "threads", 1, 64, p.threads) ||
        !int_option("bench", *args, "repeat", 1, 100, p.repeat))
        return exit_usage;
    bool json = args->has("json");
    p.progress = args->has("progress") || stderr_is_tty();
    bool run[3] = {true, true, true};
    const char *names[3] = {"throughput", "pingpong", "fanout"};
    if (auto only = args->value("only")) {
        run[0] = run[1] = run[2] = false;
        std::string list = *only + ",";
        for (size_t start = 0, comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1) {
            std::string item = list.substr(start, comma - start);
            bool known = false;
            for (int i = 0; i < 3; ++i)
                if (item == names[i]) run[i] = known = true;
            if (!known)
                return usage_error("bench", "unknown test '" + item + "' in --only (throughput, pingpong, fanout)");
        }
    }

    if (!json) {
        std::printf("npipe bench: npipe %s on %s; raw = blocking %s with one thread per end\n", npipe_version_string(),
                    platform_name(),
#if defined(_WIN32)
                    "ReadFile/WriteFile on CreateNamedPipeW/CreateFileW handles"
#else
                    "read/write on AF_UNIX stream sockets"
#endif
        );
        std::fflush(stdout);
    }
    std::vector<Row> rows;
    auto measure = [&](int idx, auto npipe_fn, auto raw_fn) -> Failure {
        double ns = 0, rs = 0;
        for (int64_t i = 0; i < p.repeat; ++i) {  // best of --repeat: the least disturbed run
            double n = 0, r = 0;
            if (Failure f = npipe_fn(p, n); f.failed()) return f;
            if (Failure f = raw_fn(p, r); f.failed()) return f;
            ns = i == 0 ? n : std::min(ns, n);
            rs = i == 0 ? r : std::min(rs, r);
        }
        Row r{names[idx], "", "", true, 0, 0, ns, rs};
        char what[128];
        if (idx == 0) {
            std::snprintf(what, sizeof what, "%s in %s writes", format_bytes(p.bytes).c_str(),
                          format_bytes(p.chunk).c_str());
            r.unit = "MiB/s";
            r.npipe = static_cast<double>(p.bytes) / 1048576.0 / ns;
            r.raw = static_cast<double>(p.bytes) / 1048576.0 / rs;
        } else if (idx == 1) {
            std::snprintf(what, sizeof what, "%lld round trips of %s", static_cast<long long>(p.round_trips),
                          format_bytes(p.msg_size).c_str());
            r.unit = "us/round-trip";
            r.higher_is_better = false;
            r.npipe = ns * 1e6 / static_cast<double>(p.round_trips);
            r.raw = rs * 1e6 / static_cast<double>(p.round_trips);
        } else {
            long long polls = static_cast<long long>(std::min(p.threads, p.clients));
            std::snprintf(what, sizeof what, "%lld clients x %s echoed, %lld poll%s", static_cast<long long>(p.clients),
                          format_bytes(p.client_bytes).c_str(), polls, polls == 1 ? "" : "s");
            r.unit = "MiB/s";
            double total = static_cast<double>(p.client_bytes) * static_cast<double>(p.clients) / 1048576.0;
            r.npipe = total / ns;
            r.raw = total / rs;
        }
        r.what = what;
        rows.push_back(r);
        if (!json) {
            std::printf("%-11s %-40s npipe %10.2f %-13s raw %10.2f %-13s npipe/raw %.2f\n", r.test, r.what.c_str(),
                        r.npipe, r.unit, r.raw, r.unit, r.ratio());
            std::fflush(stdout);
        }
        return Failure{};
    };
    Failure f;
    if (run[0] && !f.failed()) f = measure(0, npipe_throughput, raw_throughput);
    if (run[1] && !f.failed()) f = measure(1, npipe_pingpong, raw_pingpong);
    if (run[2] && !f.failed()) f = measure(2, npipe_fanout, raw_fanout);
    if (f.failed()) return f.report();

    if (json) {
        std::string out = "{\n  \"tool\": \"npipe bench\",\n  \"npipe_version\": \"";
        out += npipe_version_string();
        out += "\",\n  \"platform\": \"";
        out += platform_name();
        out += "\",\n  \"ratio\": \"npipe speed / raw speed\",\n  \"params\": {\"bytes\": " + std::to_string(p.bytes) +
               ", \"chunk\": " + std::to_string(p.chunk) + ", \"round_trips\": " + std::to_string(p.round_trips) +
               ", \"msg_size\": " + std::to_string(p.msg_size) + ", \"clients\": " + std::to_string(p.clients) +
               ", \"client_bytes\": " + std::to_string(p.client_bytes) + ", \"threads\": " + std::to_string(p.threads) +
               ", \"repeat\": " + std::to_string(p.repeat) + "},\n  \"results\": [";
        for (size_t i = 0; i < rows.size(); ++i) {
            const Row &r = rows[i];
            out += i ? ",\n    " : "\n    ";
            out += "{\"test\": \"" + std::string(r.test) + "\", \"description\": \"" + r.what + "\", \"unit\": \"" +
                   r.unit + "\", \"higher_is_better\": " + (r.higher_is_better ? "true" : "false") +
                   ", \"npipe\": " + json_number(r.npipe) + ", \"raw\": " + json_number(r.raw) +
                   ", \"ratio\": " + json_number(r.ratio()) + ", \"npipe_seconds\": " + json_number(r.npipe_seconds) +
                   ", \"raw_seconds\": " + json_number(r.raw_seconds) + "}";
        }
        out += "\n  ]\n}\n";
        std::fputs(out.c_str(), stdout);
        std::fflush(stdout);
    }
    return exit_ok;
}

}  // namespace tool
