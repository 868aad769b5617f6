// How npipe scales with connected pairs on one poll (Linux), through a listener: descriptors per
// pair, setup time per pair early and late, and the round trip of one busy pair among many.
//
//   build/native/bench/scale_pairs [PAIRS] [listener|instances]    (default 9000 listener)
//
// `instances` makes each pair from an npipe_create instance instead (npipe_connect, then the
// client's open), the other way servers are written.
//
// Timings move with the machine's load; the descriptor count does not. Prints one line per
// figure; exit 1 if the pairs could not be made.
#include <npipe.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

int open_fds() {
    int n = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
        while (readdir(d)) ++n;
        closedir(d);
    }
    return n - 3;  // ".", ".." and the directory's own descriptor
}

void die(const char *what, int64_t rc) {
    std::fprintf(stderr, "scale_pairs: %s: %s (%s)\n", what, npipe_err_name(static_cast<int>(rc)),
                 npipe_last_error_message());
    std::exit(1);
}

struct Pair {
    npipe_t client = 0;
    npipe_t server = 0;
};

// Ping-pong of 64 bytes over one pair, `rounds` times; mean microseconds per round trip.
double round_trip(npipe_poll_t poll, const Pair &p, int rounds) {
    char buf[64] = {0};
    npipe_event_t ev[16];
    const auto t0 = Clock::now();
    for (int i = 0; i < rounds; ++i) {
        if (npipe_write(p.client, buf, sizeof buf) != 64) die("write", -99);
        size_t got = 0;
        while (got < sizeof buf) {
            const int64_t n = npipe_read(p.server, buf, sizeof buf - got);
            if (n > 0) got += static_cast<size_t>(n);
            else if (n == NPIPE_EAGAIN) npipe_poll_wait(poll, ev, 16, 1000);
            else die("read", n);
        }
        if (npipe_write(p.server, buf, sizeof buf) != 64) die("write back", -99);
        got = 0;
        while (got < sizeof buf) {
            const int64_t n = npipe_read(p.client, buf, sizeof buf - got);
            if (n > 0) got += static_cast<size_t>(n);
            else if (n == NPIPE_EAGAIN) npipe_poll_wait(poll, ev, 16, 1000);
            else die("read back", n);
        }
    }
    return us_since(t0) / rounds;
}

}  // namespace

int main(int argc, char **argv) {
    const int pairs = argc > 1 ? std::atoi(argv[1]) : 9000;
    const bool instances = argc > 2 && std::string(argv[2]) == "instances";
    std::printf("pairs through %s\n", instances ? "npipe_create instances" : "a listener");
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 20000);  // the usual 20,000-descriptor limit
    setrlimit(RLIMIT_NOFILE, &lim);
    std::printf("descriptor limit %llu\n", static_cast<unsigned long long>(lim.rlim_cur));

    npipe_poll_t poll = 0;
    int64_t rc = npipe_poll_create(&poll);
    if (rc < 0) die("npipe_poll_create", rc);
    const std::string name = "npipe-scale-" + std::to_string(getpid());
    npipe_listener_options_t lo;
    npipe_listener_options_init(&lo);
    lo.max_pending = 4096;
    npipe_t listener = 0;
    if ((rc = npipe_listen(name.c_str(), &lo, &listener)) < 0) die("npipe_listen", rc);
    if ((rc = npipe_register(poll, listener, 0, NPIPE_READABLE)) < 0) die("register listener", rc);
    npipe_client_options_t co;
    npipe_client_options_init(&co);
    co.timeout_ms = 5000;

    const int fds_before = open_fds();
    std::vector<Pair> all(static_cast<size_t>(pairs));
    std::vector<double> batch_us;  // per-pair setup time, per batch of 1,000
    npipe_event_t ev[64];
    auto batch_start = Clock::now();
    for (int i = 0; i < pairs; ++i) {
        Pair &p = all[static_cast<size_t>(i)];
        if (instances) {
            if ((rc = npipe_create(name.c_str(), nullptr, &p.server)) < 0) die("npipe_create", rc);
            if ((rc = npipe_register(poll, p.server, 2 * static_cast<uint64_t>(i) + 2, NPIPE_READABLE)) < 0)
                die("register server", rc);
            npipe_connect(p.server);
        }
        if ((rc = npipe_open(name.c_str(), &co, &p.client)) < 0) die(("open " + std::to_string(i)).c_str(), rc);
        if (instances) {
            while ((rc = npipe_connect(p.server)) == NPIPE_EAGAIN) npipe_poll_wait(poll, ev, 64, 1000);
            if (rc < 0) die("connect", rc);
        } else {
            while ((rc = npipe_accept(listener, &p.server)) == NPIPE_EAGAIN) npipe_poll_wait(poll, ev, 64, 1000);
            if (rc < 0) die("accept", rc);
            if ((rc = npipe_register(poll, p.server, 2 * static_cast<uint64_t>(i) + 2, NPIPE_READABLE)) < 0)
                die("register server", rc);
        }
        if ((rc = npipe_register(poll, p.client, 2 * static_cast<uint64_t>(i) + 1, NPIPE_READABLE)) < 0)
            die("register client", rc);
        if ((i + 1) % 1000 == 0 || i + 1 == pairs) {
            const int in_batch = (i % 1000) + 1;
            batch_us.push_back(us_since(batch_start) / in_batch);
            batch_start = Clock::now();
        }
        if (i + 1 == 10) std::printf("round trip with     10 pairs: %.1f us\n", round_trip(poll, all[0], 2000));
    }
    const int fds = open_fds() - fds_before;
    std::printf("pairs %d, descriptors for them %d (%.2f per pair)\n", pairs, fds, static_cast<double>(fds) / pairs);
    std::printf("setup per pair, first 1,000: %.1f us; last batch: %.1f us (ratio %.2f)\n", batch_us.front(),
                batch_us.back(), batch_us.back() / batch_us.front());
    std::printf("round trip with %6d pairs: %.1f us\n", pairs, round_trip(poll, all[0], 2000));
    for (auto &p : all) {
        npipe_close(p.client);
        npipe_close(p.server);
    }
    npipe_close(listener);
    npipe_poll_close(poll);
    return 0;
}
