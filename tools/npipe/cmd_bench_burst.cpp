// npipe bench burst: N clients open one name at the same moment, against a listener and against a
// single-instance server that creates its next instance only once a client took the current one
// (the pattern tokio and go-winio document), and what each client saw.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "common.hpp"

namespace tool {
namespace {

const char *const kHelp =
    "usage: npipe bench burst [options]\n"
    "\n"
    "Opens --clients clients at once (one thread each, released together) against two servers of\n"
    "a fresh name, one after the other:\n"
    "  listener         npipe_listen + npipe_accept: instances kept waiting, refilled as they go\n"
    "  single-instance  npipe_create one instance; when a client connected, create the next one,\n"
    "                   then hand the connected one off (the tokio / go-winio pattern)\n"
    "Each client first tries npipe_open with timeout 0. If that fails with NPIPE_EBUSY (every\n"
    "instance taken) or NPIPE_ENOENT (no instance of the name at that moment), the client counts\n"
    "as busy, the situation in which a client of the peers' pattern sleeps and retries, and opens\n"
    "again with timeout_ms = --timeout (npipe retries on its own clock). An open that still fails\n"
    "counts as failed. Connect latency is from the first attempt to the connected pipe.\n"
    "\n"
    "options:\n"
    "  --clients N     clients in the burst (1..1024, default 256)\n"
    "  --timeout MS    timeout_ms of the second open (1..600000, default 10000)\n"
    "  --json          print one JSON document on stdout instead of the table\n"
    "  -h, --help      this text\n";

struct Outcome {
    int64_t accepted = 0;  // pipes the server got
    int64_t opened = 0;    // clients connected
    int64_t busy = 0;      // first attempt (timeout 0) found no free instance
    int64_t failed = 0;    // the open with the timeout failed too
    std::vector<double> latency_us;  // per connected client
    std::string last_error;          // of a failed open
};

// The server side on its own thread with its own poll: counts what it accepts (and closes it)
// until told to stop.
class BurstServer {
public:
    BurstServer(std::string name, bool listener) : name_(std::move(name)), listener_(listener) {}
    ~BurstServer() { stop(); }

    Failure start() {
        int32_t rc = npipe_poll_create(&poll_);
        if (rc < 0) return capture(rc, "cannot create a poll");
        Failure f = listener_ ? listen() : next_instance();
        if (f.failed()) return f;
        thread_ = std::thread([this] { run(); });
        return Failure{};
    }

    // Waits (bounded) until `count` pipes were accepted; returns how many were.
    int64_t wait_accepted(int64_t count, int timeout_ms) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return accepted_ >= count || !failure_.message.empty(); });
        return accepted_;
    }

    Failure stop() {
        if (thread_.joinable()) {
            stop_ = true;
            npipe_poll_wake(poll_, 0);
            thread_.join();
        }
        if (current_) npipe_close(current_);
        current_ = 0;
        if (poll_) npipe_poll_close(poll_);
        poll_ = 0;
        return failure_;
    }

private:
    static constexpr uint64_t kToken = 1;

    Failure listen() {
        int32_t rc = npipe_listen(name_.c_str(), nullptr, &current_);
        if (rc < 0) return capture(rc, "cannot listen on \"" + name_ + "\"", true);
        rc = npipe_register(poll_, current_, kToken, NPIPE_READABLE);
        return rc < 0 ? capture(rc, "cannot register the listener") : Failure{};
    }

    // Creates, registers and starts the one instance that waits for the next client.
    Failure next_instance() {
        npipe_t h = 0;
        int32_t rc = npipe_create(name_.c_str(), nullptr, &h);
        if (rc < 0) return capture(rc, "cannot create pipe \"" + name_ + "\"", true);
        current_ = h;
        rc = npipe_register(poll_, h, kToken, NPIPE_READABLE);
        if (rc < 0) return capture(rc, "cannot register the instance");
        rc = npipe_connect(h);
        if (rc == NPIPE_OK) npipe_poll_wake(poll_, kToken);  // connected at once: look again now
        return rc < 0 && rc != NPIPE_EAGAIN ? capture(rc, "cannot wait for a client") : Failure{};
    }

    void count_one() {
        std::lock_guard<std::mutex> lock(mu_);
        ++accepted_;
        cv_.notify_all();
    }

    // One round after an event: everything that can be taken now.
    Failure take() {
        if (listener_) {
            for (npipe_t p = 0;;) {
                int32_t rc = npipe_accept(current_, &p);
                if (rc == NPIPE_EAGAIN) return Failure{};
                if (rc < 0) return capture(rc, "accept failed");
                npipe_close(p);
                count_one();
            }
        }
        int32_t rc = npipe_connect(current_);
        if (rc == NPIPE_EAGAIN) return Failure{};
        npipe_t connected = current_;
        // The next instance exists before the connected one is handed off (closed here), so the
        // name never disappears between clients.
        Failure f = next_instance();
        npipe_close(connected);
        if (rc == NPIPE_OK) count_one();  // else a client that vanished before it was seen
        return f;
    }

    void run() {
        npipe_event_t events[16];
        while (!stop_) {
            int32_t n = npipe_poll_wait(poll_, events, 16, -1);
            Failure f = n < 0 ? capture(n, "the server's poll failed") : take();
            if (f.failed()) {
                std::lock_guard<std::mutex> lock(mu_);
                failure_ = f;
                cv_.notify_all();
                return;
            }
        }
    }

    std::string name_;
    bool listener_;
    npipe_poll_t poll_ = 0;
    npipe_t current_ = 0;  // the listener, or the instance waiting for the next client
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    int64_t accepted_ = 0;
    Failure failure_;
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

Failure burst(const std::string &name, bool listener, int64_t clients, int64_t timeout_ms, Outcome &out) {
    BurstServer server(name, listener);
    if (Failure f = server.start(); f.failed()) return f;
    std::mutex mu;
    std::condition_variable cv;
    int64_t ready = 0;
    bool go = false;
    std::vector<std::thread> threads;
    std::vector<npipe_t> opened(static_cast<size_t>(clients), 0);
    for (int64_t i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            {
                std::unique_lock<std::mutex> lock(mu);
                ++ready;
                cv.notify_all();
                cv.wait(lock, [&] { return go; });
            }
            npipe_client_options_t o;
            npipe_client_options_init(&o);
            const double t0 = now_seconds();
            npipe_t h = 0;
            int32_t rc = npipe_open(name.c_str(), &o, &h);
            const bool busy = rc == NPIPE_EBUSY || rc == NPIPE_ENOENT;
            if (busy) {
                o.timeout_ms = static_cast<int32_t>(timeout_ms);
                rc = npipe_open(name.c_str(), &o, &h);
            }
            const double us = (now_seconds() - t0) * 1e6;
            std::string error = rc < 0 ? std::string(npipe_err_name(rc)) + ": " + npipe_last_error_message() : "";
            std::lock_guard<std::mutex> lock(mu);
            out.busy += busy ? 1 : 0;
            if (rc < 0) {
                ++out.failed;
                out.last_error = error;
            } else {
                ++out.opened;
                out.latency_us.push_back(us);
                opened[static_cast<size_t>(i)] = h;
            }
        });
    }
    {
        // Released together once every thread is ready to open.
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return ready == clients; });
        go = true;
        cv.notify_all();
    }
    for (auto &t : threads) t.join();
    out.accepted = server.wait_accepted(out.opened, static_cast<int>(timeout_ms));
    Failure f = server.stop();
    for (npipe_t h : opened)
        if (h) npipe_close(h);
    return f;
}

}  // namespace

int cmd_bench_burst(const std::vector<std::string> &argv) {
    auto args = parse_args("bench burst", argv, {{"help", false, 'h'}, {"clients", true}, {"timeout", true}, {"json", false}});
    if (!args) return exit_usage;
    if (args->has("help")) {
        std::printf("%s\n%s", kHelp, kExitCodeHelp);
        return exit_ok;
    }
    if (!args->positional.empty()) return usage_error("bench burst", "unexpected argument '" + args->positional[0] + "'");
    int64_t clients = 256, timeout_ms = 10000;
    if (!int_option("bench burst", *args, "clients", 1, 1024, clients) ||
        !int_option("bench burst", *args, "timeout", 1, 600000, timeout_ms))
        return exit_usage;
    const bool json = args->has("json");
    const char *kinds[2] = {"listener", "single-instance"};
    Outcome outcomes[2];
    for (int k = 0; k < 2; ++k) {
        const std::string name = unique_name(k == 0 ? "npipe-burst-l" : "npipe-burst-s");
        if (Failure f = burst(name, k == 0, clients, timeout_ms, outcomes[k]); f.failed()) return f.report();
    }
    if (json) {
        std::string out = "{\n  \"tool\": \"npipe bench burst\",\n  \"npipe_version\": \"";
        out += npipe_version_string();
        out += "\",\n  \"platform\": \"";
        out += platform_name();
        out += "\",\n  \"params\": {\"clients\": " + std::to_string(clients) + ", \"timeout_ms\": " +
               std::to_string(timeout_ms) + "},\n  \"results\": [";
        for (int k = 0; k < 2; ++k) {
            const Outcome &o = outcomes[k];
            char line[512];
            std::snprintf(line, sizeof line,
                          "%s{\"server\": \"%s\", \"clients\": %lld, \"accepted\": %lld, \"opened\": %lld, "
                          "\"busy\": %lld, \"failed\": %lld, \"connect_p50_us\": %.1f, \"connect_p99_us\": %.1f}",
                          k ? ",\n    " : "\n    ", kinds[k], static_cast<long long>(clients),
                          static_cast<long long>(o.accepted), static_cast<long long>(o.opened),
                          static_cast<long long>(o.busy), static_cast<long long>(o.failed),
                          percentile(o.latency_us, 0.5), percentile(o.latency_us, 0.99));
            out += line;
        }
        out += "\n  ]\n}\n";
        std::fputs(out.c_str(), stdout);
    } else {
        std::printf("npipe bench burst: npipe %s on %s, %lld clients at once, second open with timeout_ms %lld\n",
                    npipe_version_string(), platform_name(), static_cast<long long>(clients),
                    static_cast<long long>(timeout_ms));
        for (int k = 0; k < 2; ++k) {
            const Outcome &o = outcomes[k];
            std::printf("%-16s accepted %5lld  busy %5lld  failed %5lld  connect p50 %10.1f us  p99 %10.1f us\n", kinds[k],
                        static_cast<long long>(o.accepted), static_cast<long long>(o.busy),
                        static_cast<long long>(o.failed), percentile(o.latency_us, 0.5), percentile(o.latency_us, 0.99));
        }
    }
    for (const Outcome &o : outcomes)
        if (!o.last_error.empty()) std::fprintf(stderr, "npipe: a failed open: %s\n", o.last_error.c_str());
    std::fflush(stdout);
    return exit_ok;
}

}  // namespace tool
