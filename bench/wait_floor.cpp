// The floor under any blocking read built on readiness (Linux): a 64-byte ping-pong between two
// processes over an AF_UNIX socketpair, each end either blocking in read(2) (what
// multiprocessing.connection and System.IO.Pipes' synchronous Read do) or making the read
// npipe_wait makes: recv(MSG_DONTWAIT) -> EAGAIN -> epoll_wait -> recv. No npipe code runs here:
// it measures what the OS charges for the pattern, so a binding's ratio to a blocking read can be
// read against it. A third way shows where the cost is: the same EAGAIN probe, then a recv that
// blocks (the wake-up hands over the bytes, with no epoll in between). The three run in turn,
// `rounds` times; prints the medians and their ratios to the blocking read.
//   wait_floor [round_trips=20000] [rounds=9]
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

constexpr size_t kSize = 64;

enum class Read { blocking, readiness, probe_then_block };

// One message of kSize bytes, the way `how` says.
bool read_message(Read how, int fd, int ep, char *buf) {
    if (how == Read::blocking) return read(fd, buf, kSize) == static_cast<ssize_t>(kSize);
    if (how == Read::probe_then_block) {
        if (recv(fd, buf, kSize, MSG_DONTWAIT) == static_cast<ssize_t>(kSize)) return true;
        return errno == EAGAIN && recv(fd, buf, kSize, 0) == static_cast<ssize_t>(kSize);
    }
    for (;;) {
        const ssize_t n = recv(fd, buf, kSize, MSG_DONTWAIT);
        if (n == static_cast<ssize_t>(kSize)) return true;
        if (n >= 0 || errno != EAGAIN) return false;
        epoll_event e{};
        if (epoll_wait(ep, &e, 1, 10000) <= 0) return false;  // bounded: a lost peer ends the run
    }
}

// Round trips per second of one run; -1 when a call failed.
double run(Read how, int trips) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return -1;
    const pid_t child = fork();
    if (child < 0) return -1;
    const int fd = child == 0 ? sv[1] : sv[0];
    close(child == 0 ? sv[0] : sv[1]);
    const int ep = epoll_create1(0);
    epoll_event e{};
    e.events = EPOLLIN | EPOLLET;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    char buf[kSize] = {1};
    if (child == 0) {  // the echoing end
        for (int i = 0; i < trips; ++i)
            if (!read_message(how, fd, ep, buf) || write(fd, buf, kSize) != static_cast<ssize_t>(kSize)) _exit(1);
        _exit(0);
    }
    const auto start = std::chrono::steady_clock::now();
    bool ok = true;
    for (int i = 0; i < trips && ok; ++i)
        ok = write(fd, buf, kSize) == static_cast<ssize_t>(kSize) && read_message(how, fd, ep, buf);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    close(fd);
    close(ep);
    int status = 0;
    waitpid(child, &status, 0);
    if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return trips / took.count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char **argv) {
    const int trips = argc > 1 ? std::atoi(argv[1]) : 20000;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 9;
    std::vector<double> blocking, readiness, probing;
    for (int r = 0; r < rounds; ++r) {
        const double b = run(Read::blocking, trips);
        const double w = run(Read::readiness, trips);
        const double p = run(Read::probe_then_block, trips);
        if (b < 0 || w < 0 || p < 0) {
            std::fprintf(stderr, "wait_floor: a run failed\n");
            return 1;
        }
        blocking.push_back(b);
        readiness.push_back(w);
        probing.push_back(p);
    }
    const double b = median(blocking), w = median(readiness), p = median(probing);
    std::printf("64-byte ping-pong, median of %d alternating rounds of %d round trips\n", rounds, trips);
    std::printf("blocking read(2)                          %9.0f round trips/s\n", b);
    std::printf("recv EAGAIN, epoll_wait, recv (readiness) %9.0f round trips/s   %.2fx\n", w, w / b);
    std::printf("recv EAGAIN, then a blocking recv         %9.0f round trips/s   %.2fx\n", p, p / b);
    return 0;
}
