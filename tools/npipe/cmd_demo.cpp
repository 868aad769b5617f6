// npipe demo: an echo server and a few clients in one process, over a real pipe, with checked data
// and a short transcript. The newcomer's first look at what the library does.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "server_thread.hpp"

namespace tool {
namespace {

const char *const kHelp =
    "usage: npipe demo [options]\n"
    "\n"
    "Starts an echo server (message mode) and several clients in this process, over a real\n"
    "named pipe. Each client sends pseudo-random messages of random sizes (the last one empty),\n"
    "reads the echoes back and checks every byte and every message boundary. Prints a\n"
    "transcript and totals; exits 0 only if every check passed.\n"
    "\n"
    "options:\n"
    "  --clients N     number of clients (1..64, default 4)\n"
    "  --messages N    messages per client (1..100000, default 32)\n"
    "  --max-size SIZE largest message (1..16MiB, default 16KiB)\n"
    "  --name NAME     pipe name (default npipe-demo-<pid>-0)\n"
    "  -h, --help      this text\n";

struct Client {
    int id = 0;
    npipe_t h = 0;
    std::vector<std::string> msgs;
    size_t sent = 0, received = 0;
    std::string assembling;
    uint64_t bytes = 0;
    uint64_t sum_sent = 1469598103934665603ull, sum_received = 1469598103934665603ull;
    bool failed = false, done = false;
    std::string problem;
};

// Writes what it can, reads what is there; false when the client broke.
bool pump(Client &c, std::vector<char> &buf) {
    for (;;) {
        bool progress = false;
        while (c.sent < c.msgs.size()) {
            const std::string &m = c.msgs[c.sent];
            int64_t w = npipe_write(c.h, m.data(), m.size());
            if (w == NPIPE_EAGAIN) break;
            if (w < 0) {
                c.problem = std::string("write failed: ") + npipe_last_error_message() + " (" +
                            npipe_err_name(static_cast<int>(w)) + ")";
                return false;
            }
            c.sum_sent = fnv1a(m.data(), m.size(), c.sum_sent);
            c.bytes += m.size();
            ++c.sent;
            progress = true;
        }
        uint32_t mf = 0;
        int64_t r = npipe_read_msg(c.h, buf.data(), buf.size(), &mf);
        if (r == NPIPE_EAGAIN) {
            if (!progress) return true;
            continue;
        }
        if (r < 0 || (r == 0 && !(mf & NPIPE_MSG_EMPTY))) {
            c.problem = r == 0 ? std::string("the server closed early")
                               : std::string("read failed: ") + npipe_last_error_message() + " (" +
                                     npipe_err_name(static_cast<int>(r)) + ")";
            return false;
        }
        c.assembling.append(buf.data(), static_cast<size_t>(r));
        if (mf & NPIPE_MSG_PARTIAL) continue;
        if (c.received >= c.msgs.size() || c.assembling != c.msgs[c.received]) {
            c.problem = "echo " + std::to_string(c.received + 1) + " differs from the message sent (" +
                        std::to_string(c.assembling.size()) + " bytes)";
            return false;
        }
        c.sum_received = fnv1a(c.assembling.data(), c.assembling.size(), c.sum_received);
        c.assembling.clear();
        if (++c.received == c.msgs.size()) {
            c.done = true;
            return true;
        }
    }
}

}  // namespace

int cmd_demo(const std::vector<std::string> &argv) {
    auto args = parse_args("demo", argv,
                           {{"help", false, 'h'}, {"clients", true}, {"messages", true}, {"max-size", true}, {"name", true}});
    if (!args) return exit_usage;
    if (args->has("help")) {
        std::printf("%s\n%s", kHelp, kExitCodeHelp);
        return exit_ok;
    }
    if (!args->positional.empty()) return usage_error("demo", "unexpected argument '" + args->positional[0] + "'");
    int64_t nclients = 4, nmessages = 32;
    uint64_t max_size = 16 * 1024;
    if (!int_option("demo", *args, "clients", 1, 64, nclients) ||
        !int_option("demo", *args, "messages", 1, 100000, nmessages) ||
        !size_option("demo", *args, "max-size", 1, 16u << 20, max_size))
        return exit_usage;
    std::string name = args->value("name").value_or(unique_name("npipe-demo"));

    std::printf("npipe demo: one echo server and %d clients in this process, over a real named pipe\n",
                static_cast<int>(nclients));
    std::printf("  library   npipe %s on %s, message mode\n", npipe_version_string(), platform_name());
    std::printf("  pipe      %s  ->  %s\n", name.c_str(), os_name_of(name).c_str());
    std::fflush(stdout);

    double t0 = now_seconds();
    EchoServerThread server;
    EchoServerConfig cfg;
    cfg.name = name;
    cfg.flags = NPIPE_MESSAGE | NPIPE_FIRST_INSTANCE | NPIPE_CURRENT_USER_ONLY;
    if (Failure f = server.start(cfg); f.failed()) return f.report();
    std::printf("server    waiting for clients (one spare instance at a time, current user only)\n");

    npipe_poll_t poll = 0;
    int32_t rc = npipe_poll_create(&poll);
    if (rc < 0) return capture(rc, "cannot create a poll").report();
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < nclients; ++i) {
        auto c = std::make_unique<Client>();
        c->id = i + 1;
        Rng rng(static_cast<uint64_t>(i) + 1);
        for (int m = 0; m < nmessages; ++m) {
            size_t size = m + 1 == nmessages ? 0 : 1 + static_cast<size_t>(rng.next() % max_size);
            std::string s(size, '\0');
            rng.fill(s.data(), s.size());
            c->msgs.push_back(std::move(s));
        }
        npipe_client_options_t o;
        npipe_client_options_init(&o);
        o.flags = NPIPE_MESSAGE | NPIPE_CURRENT_USER_ONLY;
        o.timeout_ms = 5000;
        rc = npipe_open(name.c_str(), &o, &c->h);
        if (rc < 0) return capture(rc, "client " + std::to_string(i + 1) + " cannot connect", true).report();
        rc = npipe_register(poll, c->h, static_cast<uint64_t>(i), NPIPE_READABLE | NPIPE_WRITABLE);
        if (rc < 0) return capture(rc, "cannot register a client").report();
        std::printf("client %-2d connected (server pid %llu), sending %d messages of 0..%llu bytes\n", c->id,
                    peer_pid_of(c->h), static_cast<int>(nmessages),
                    static_cast<unsigned long long>(max_size));
        clients.push_back(std::move(c));
    }
    std::fflush(stdout);

    std::vector<char> buf(64 * 1024);
    size_t active = clients.size();
    for (auto &c : clients) {
        if (!pump(*c, buf)) c->failed = true;
        if (c->failed || c->done) --active;
    }
    npipe_event_t events[64];
    bool stalled = false;
    while (active > 0) {
        int32_t n = npipe_poll_wait(poll, events, 64, 10000);
        if (n <= 0) {
            stalled = true;  // 10 s without any event: report instead of hanging
            break;
        }
        for (int32_t i = 0; i < n; ++i) {
            Client &c = *clients[static_cast<size_t>(events[i].token)];
            if (c.failed || c.done) continue;
            if (!pump(c, buf)) c.failed = true;
            if (c.failed || c.done) --active;
        }
    }
    double elapsed = now_seconds() - t0;
    for (auto &c : clients) npipe_close(c->h);
    npipe_poll_close(poll);
    EchoStats st = server.stop();

    int ok = 0;
    uint64_t bytes = 0, messages = 0;
    for (auto &c : clients) {
        bytes += c->bytes;
        messages += c->received;
        bool good = c->done && c->sum_sent == c->sum_received;
        if (good) ++ok;
        char line[256];
        if (good)
            std::snprintf(line, sizeof line, "%zu messages (last one empty), %s each way, checksum %016llx OK",
                          c->received, format_bytes(c->bytes).c_str(), static_cast<unsigned long long>(c->sum_received));
        else
            std::snprintf(line, sizeof line, "FAILED after %zu of %zu echoes: %s", c->received, c->msgs.size(),
                          stalled && c->problem.empty() ? "no progress for 10 s" : c->problem.c_str());
        std::printf("client %-2d %s\n", c->id, line);
    }
    std::printf("server    echoed %llu messages, %s, to %llu clients\n", static_cast<unsigned long long>(st.messages),
                format_bytes(st.bytes).c_str(), static_cast<unsigned long long>(st.clients));
    std::printf("totals    %zu clients, %llu messages, %s each way, checksums %d/%zu OK, elapsed %s\n", clients.size(),
                static_cast<unsigned long long>(messages), format_bytes(bytes).c_str(), ok, clients.size(),
                format_duration(elapsed).c_str());
    std::fflush(stdout);
    if (static_cast<size_t>(ok) != clients.size()) {
        std::fprintf(stderr, "npipe: demo failed: %zu of %zu clients did not get their data back intact\n",
                     clients.size() - static_cast<size_t>(ok), clients.size());
        return exit_other;
    }
    return exit_ok;
}

}  // namespace tool
