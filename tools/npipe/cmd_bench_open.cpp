// npipe bench open: what waiting for a server costs when the open runs on the poll
// (NPIPE_NONBLOCK_OPEN): CPU time while nobody comes, and how soon a server that comes (or, on
// Windows, a busy instance that frees up) is connected. Reports numbers; checks nothing.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "common.hpp"

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/resource.h>
#endif

namespace tool {
namespace {

const char *const kHelp =
    "usage: npipe bench open [options]\n"
    "\n"
    "Measures the non-blocking open (NPIPE_NONBLOCK_OPEN, driven by a poll):\n"
    "  wait     one open waits --wait-ms for a name nobody creates: the CPU time this process\n"
    "           used meanwhile (user + system, all threads), and the same for the blocking\n"
    "           npipe_open with that timeout\n"
    "  appear   --trials times: a client starts opening, a server is created a random\n"
    "           0..--spread-ms later; the delay from npipe_create to the client's\n"
    "           NPIPE_CONNECTED (p50, p99, max)\n"
    "  busy     (Windows) --trials times: a second client waits for the single busy instance;\n"
    "           the delay from the server's npipe_disconnect to that client's NPIPE_CONNECTED\n"
    "\n"
    "options:\n"
    "  --wait-ms MS     how long the open waits for nobody (default 2000)\n"
    "  --trials N       trials of appear and busy (default 50)\n"
    "  --spread-ms MS   the server comes 0..MS after the client started (default 200)\n"
    "  --only LIST      comma-separated subset of wait,appear,busy\n"
    "  -h, --help       this text\n";

// CPU time of this process so far, in seconds (user + system, every thread).
double process_cpu_seconds() {
#if defined(_WIN32)
    FILETIME created, exited, kernel, user;
    if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user)) return 0;
    auto secs = [](const FILETIME &t) {
        return static_cast<double>((static_cast<uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime) / 1e7;
    };
    return secs(kernel) + secs(user);
#else
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto secs = [](const timeval &t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return secs(u.ru_utime) + secs(u.ru_stime);
#endif
}

Failure open_nonblocking(const std::string &name, int32_t timeout_ms, npipe_poll_t poll, npipe_t &out) {
    npipe_client_options_t o;
    npipe_client_options_init(&o);
    o.flags = NPIPE_NONBLOCK_OPEN;
    o.timeout_ms = timeout_ms;
    int32_t rc = npipe_open(name.c_str(), &o, &out);
    if (rc < 0) return capture(rc, "cannot start opening \"" + name + "\"", true);
    rc = npipe_register(poll, out, 1, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc < 0) return capture(rc, "cannot register the client");
    return Failure{};
}

// Waits on `poll` until token 1 reports NPIPE_CONNECTED (bounded by `bound_ms`); returns the time
// it came and npipe_take_error's answer in `rc`.
Failure await_connected(npipe_poll_t poll, npipe_t pipe, int32_t bound_ms, double &when, int32_t &rc) {
    const double deadline = now_seconds() + bound_ms / 1000.0;
    npipe_event_t events[8];
    for (;;) {
        const double left = deadline - now_seconds();
        if (left <= 0) return plain_failure("no NPIPE_CONNECTED", "the open did not end in time");
        const int32_t n = npipe_poll_wait(poll, events, 8, static_cast<int32_t>(left * 1000) + 1);
        if (n < 0) return capture(n, "cannot wait on the poll");
        for (int32_t i = 0; i < n; ++i) {
            if (events[i].token == 1 && (events[i].events & NPIPE_CONNECTED)) {
                when = now_seconds();
                rc = npipe_take_error(pipe);
                return Failure{};
            }
        }
    }
}

Failure measure_wait(int32_t wait_ms) {
    const std::string name = unique_name("npipe-bench-nobody");
    double cpu_nonblocking = 0, wall_nonblocking = 0;
    {
        Poll poll;
        npipe_t client = 0;
        const double cpu0 = process_cpu_seconds(), t0 = now_seconds();
        Failure f = open_nonblocking(name, wait_ms, poll.h, client);
        if (f.failed()) return f;
        double when = 0;
        int32_t rc = 0;
        f = await_connected(poll.h, client, wait_ms + 10000, when, rc);
        cpu_nonblocking = process_cpu_seconds() - cpu0;
        wall_nonblocking = when - t0;
        npipe_close(client);
        if (f.failed()) return f;
        // Timeout 0 makes one attempt, which says "not there"; any other ends in ETIMEDOUT.
        if (rc != (wait_ms == 0 ? NPIPE_ENOENT : NPIPE_ETIMEDOUT))
            return capture(rc, "the open of a name nobody creates ended unexpectedly");
    }
    npipe_client_options_t o;
    npipe_client_options_init(&o);
    o.timeout_ms = wait_ms;
    npipe_t client = 0;
    const double cpu0 = process_cpu_seconds(), t0 = now_seconds();
    const int32_t rc = npipe_open(name.c_str(), &o, &client);
    const double cpu_blocking = process_cpu_seconds() - cpu0, wall_blocking = now_seconds() - t0;
    if (rc >= 0) npipe_close(client);
    std::printf("wait    non-blocking open, nobody comes: %s CPU over %s\n", format_duration(cpu_nonblocking).c_str(),
                format_duration(wall_nonblocking).c_str());
    std::printf("wait    blocking npipe_open, nobody comes: %s CPU over %s\n", format_duration(cpu_blocking).c_str(),
                format_duration(wall_blocking).c_str());
    return Failure{};
}

void print_delays(const char *label, const char *what, std::vector<double> ms) {
    std::sort(ms.begin(), ms.end());
    auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))]; };
    std::printf("%-7s %s, %zu trials: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", label, what, ms.size(), at(0.50),
                at(0.99), ms.back());
}

Failure measure_appear(int64_t trials, int64_t spread_ms) {
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> pause(0, static_cast<int>(spread_ms));
    std::vector<double> delays;
    for (int64_t i = 0; i < trials; ++i) {
        const std::string name = unique_name("npipe-bench-appear");
        Poll poll;
        npipe_t client = 0;
        Failure f = open_nonblocking(name, 30000, poll.h, client);
        if (f.failed()) return f;
        std::atomic<double> created{0};
        std::atomic<npipe_t> server{0};
        Failure server_failure;
        const int after_ms = pause(rng);
        // The server comes after a pause: the schedule of the experiment, not a synchronisation.
        std::thread maker([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
            npipe_t s = 0;
            created = now_seconds();
            const int32_t rc = npipe_create(name.c_str(), nullptr, &s);
            if (rc < 0) server_failure = capture(rc, "cannot create \"" + name + "\"", true);
            server = s;
        });
        double when = 0;
        int32_t rc = 0;
        f = await_connected(poll.h, client, 30000, when, rc);
        maker.join();
        npipe_close(client);
        if (server.load()) npipe_close(server.load());
        if (server_failure.failed()) return server_failure;
        if (f.failed()) return f;
        if (rc < 0) return capture(rc, "the client did not connect to the server that came");
        delays.push_back(std::max(0.0, when - created.load()) * 1000);
    }
    print_delays("appear", "npipe_create -> client NPIPE_CONNECTED", delays);
    return Failure{};
}

#if defined(_WIN32)
Failure measure_busy(int64_t trials, int64_t spread_ms) {
    std::mt19937 rng(54321);
    std::uniform_int_distribution<int> pause(0, static_cast<int>(spread_ms));
    std::vector<double> delays;
    for (int64_t i = 0; i < trials; ++i) {
        const std::string name = unique_name("npipe-bench-busy");
        npipe_server_options_t so;
        npipe_server_options_init(&so);
        so.max_instances = 1;
        npipe_t server = 0;
        int32_t rc = npipe_create(name.c_str(), &so, &server);
        if (rc < 0) return capture(rc, "cannot create \"" + name + "\"", true);
        Poll server_poll;
        npipe_register(server_poll.h, server, 9, NPIPE_READABLE | NPIPE_WRITABLE);
        npipe_connect(server);
        npipe_client_options_t o;
        npipe_client_options_init(&o);
        o.timeout_ms = 5000;
        npipe_t first = 0;
        rc = npipe_open(name.c_str(), &o, &first);
        if (rc < 0) {
            npipe_close(server);
            return capture(rc, "cannot open the first client", true);
        }
        Poll poll;
        npipe_t second = 0;
        Failure f = open_nonblocking(name, 30000, poll.h, second);
        if (f.failed()) return f;
        std::atomic<double> freed{0};
        const int after_ms = pause(rng);
        std::thread freer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
            npipe_close(first);
            freed = now_seconds();
            npipe_disconnect(server);
            npipe_connect(server);
        });
        double when = 0;
        f = await_connected(poll.h, second, 30000, when, rc);
        freer.join();
        npipe_close(second);
        npipe_close(server);
        if (f.failed()) return f;
        if (rc < 0) return capture(rc, "the second client did not get the freed instance");
        delays.push_back(std::max(0.0, when - freed.load()) * 1000);
    }
    print_delays("busy", "npipe_disconnect -> waiting client NPIPE_CONNECTED", delays);
    return Failure{};
}
#endif

}  // namespace

int cmd_bench_open(const std::vector<std::string> &argv) {
    auto args = parse_args("bench open", argv,
                           {{"help", false, 'h'}, {"wait-ms", true}, {"trials", true}, {"spread-ms", true}, {"only", true}});
    if (!args) return exit_usage;
    if (args->has("help")) {
        std::printf("%s\n%s", kHelp, kExitCodeHelp);
        return exit_ok;
    }
    if (!args->positional.empty())
        return usage_error("bench open", "unexpected argument '" + args->positional[0] + "'");
    int64_t wait_ms = 2000, trials = 50, spread_ms = 200;
    if (!int_option("bench open", *args, "wait-ms", 0, 600000, wait_ms) ||
        !int_option("bench open", *args, "trials", 1, 100000, trials) ||
        !int_option("bench open", *args, "spread-ms", 0, 10000, spread_ms))
        return exit_usage;
    std::string only = args->value("only").value_or("wait,appear,busy");
    auto wanted = [&](const std::string &w) { return ("," + only + ",").find("," + w + ",") != std::string::npos; };
    for (size_t start = 0; start <= only.size();) {
        const size_t comma = std::min(only.find(',', start), only.size());
        const std::string w = only.substr(start, comma - start);
        if (w != "wait" && w != "appear" && w != "busy")
            return usage_error("bench open", "--only takes wait, appear and busy, not '" + w + "'");
        start = comma + 1;
    }
    std::printf("npipe %s on %s\n", npipe_version_string(), platform_name());
    Failure f;
    if (wanted("wait")) f = measure_wait(static_cast<int32_t>(wait_ms));
    if (!f.failed() && wanted("appear")) f = measure_appear(trials, spread_ms);
#if defined(_WIN32)
    if (!f.failed() && wanted("busy")) f = measure_busy(trials, spread_ms);
#else
    if (wanted("busy")) std::printf("busy    skipped on Linux: the kernel queues a client of a busy server\n");
#endif
    return f.failed() ? f.report() : exit_ok;
}

}  // namespace tool
