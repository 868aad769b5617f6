// The load-independent costs of npipe's data path, beside the raw OS calls doing the same work.
// bench/costs.sh runs this program under the counters (wineserver's +server log, callgrind,
// strace) and subtracts a short run from a long one, so start-up cancels out.
//
//   costs rt npipe|raw ROUNDS   one thread, ROUNDS round trips of 64 bytes: client writes, server
//                               reads, server writes back, client reads. npipe: both ends on one
//                               poll, edge-triggered, read until NPIPE_EAGAIN then wait. raw:
//                               blocking ReadFile/WriteFile (Windows) or read/write on a socketpair
//                               (Linux).
//   costs pp npipe|raw|iocp ROUNDS
//                               the same over two threads (npipe bench pingpong): npipe with a
//                               poll each; raw: blocking calls (Windows); iocp: overlapped calls
//                               and a completion port each (Windows)
//   costs wait npipe|first ROUNDS
//                               the same over two threads blocking in npipe_wait (the bindings'
//                               synchronous calls): npipe reads first and waits on NPIPE_EAGAIN
//                               (Python); first waits before each read (.NET, after a read that
//                               had to wait)
//   costs react npipe ROUNDS    the same over two worker threads shaped like the .NET binding:
//                               each end's poll has a thread blocked on it (its reactor), which
//                               wakes the end's worker on READABLE; the worker reads until
//                               NPIPE_EAGAIN, then waits for that wake-up
//   costs tp npipe|raw|iocp CHUNKS
//                               a writer thread sends CHUNKS x 64 KiB, a reader thread reads them
//                               (raw and iocp as for pp)
//   costs mem npipe|raw0|raw64k PAIRS
//                               (Windows) PAIRS connected idle pairs on one poll; prints the
//                               private memory per pair in KiB. raw0: overlapped pairs on one
//                               completion port with a zero-byte ReadFile pending at each end;
//                               raw64k: the same with a 64 KiB ReadFile pending at each end.
//
// Exit 1 on any failure (with a line on stderr). Not a test: bench/costs.sh is how to run it.
#include <npipe.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifdef _WIN32
#include <windows.h>
// psapi.h needs windows.h first
#include <psapi.h>
#else
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace {

constexpr size_t kMsg = 64;
constexpr size_t kChunk = 64 * 1024;

[[noreturn]] void die(const char *what, long long rc) {
    std::fprintf(stderr, "costs: %s: %lld (%s)\n", what, rc, npipe_last_error_message());
    std::exit(1);
}

std::string unique_name(const char *what, int i) {
#ifdef _WIN32
    const unsigned long pid = GetCurrentProcessId();
#else
    const unsigned long pid = static_cast<unsigned long>(getpid());
#endif
    return std::string("npipe-costs-") + what + "-" + std::to_string(pid) + "-" + std::to_string(i);
}

// A connected npipe pair, both ends registered on `poll` (edge, readable | writable).
struct Pair {
    npipe_t server = 0;
    npipe_t client = 0;
};

Pair make_pair(npipe_poll_t poll, const std::string &name, uint64_t token) {
    Pair p;
    npipe_server_options_t so;
    npipe_server_options_init(&so);
    int32_t rc = npipe_create(name.c_str(), &so, &p.server);
    if (rc != NPIPE_OK) die("npipe_create", rc);
    rc = npipe_register(poll, p.server, token, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc != NPIPE_OK) die("npipe_register (server)", rc);
    rc = npipe_connect(p.server);
    if (rc != NPIPE_OK && rc != NPIPE_EAGAIN) die("npipe_connect", rc);
    npipe_client_options_t co;
    npipe_client_options_init(&co);
    rc = npipe_open(name.c_str(), &co, &p.client);
    if (rc != NPIPE_OK) die("npipe_open", rc);
    rc = npipe_register(poll, p.client, token + 1, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc != NPIPE_OK) die("npipe_register (client)", rc);
    return p;
}

// One wait until `pipe` may make progress: on `poll`, or (poll 0) in npipe_wait for `interest`,
// as the bindings' blocking calls wait.
void wait_once(npipe_poll_t poll, npipe_t pipe, uint32_t interest) {
    if (poll == 0) {
        const int32_t n = npipe_wait(pipe, interest, -1);
        if (n < 0) die("npipe_wait", n);
        return;
    }
    npipe_event_t ev[8];
    const int32_t n = npipe_poll_wait(poll, ev, 8, -1);
    if (n < 0) die("npipe_poll_wait", n);
}

void write_all(npipe_poll_t poll, npipe_t pipe, const uint8_t *buf, size_t len) {
    while (len > 0) {
        const int64_t n = npipe_write(pipe, buf, len);
        if (n == NPIPE_EAGAIN) {
            wait_once(poll, pipe, NPIPE_WRITABLE);
            continue;
        }
        if (n <= 0) die("npipe_write", n);
        buf += n;
        len -= static_cast<size_t>(n);
    }
}

void read_all(npipe_poll_t poll, npipe_t pipe, uint8_t *buf, size_t len, bool wait_first = false) {
    while (len > 0) {
        if (wait_first) wait_once(poll, pipe, NPIPE_READABLE);
        const int64_t n = npipe_read(pipe, buf, len);
        if (n == NPIPE_EAGAIN) {
            wait_once(poll, pipe, NPIPE_READABLE);
            continue;
        }
        if (n <= 0) die("npipe_read", n);
        buf += n;
        len -= static_cast<size_t>(n);
    }
}

void npipe_round_trips(long rounds) {
    npipe_poll_t poll = 0;
    int32_t rc = npipe_poll_create(&poll);
    if (rc != NPIPE_OK) die("npipe_poll_create", rc);
    const Pair p = make_pair(poll, unique_name("rt", 0), 1);
    // Settle the connect's events so the loop measures only the data path.
    npipe_event_t ev[8];
    while (npipe_poll_wait(poll, ev, 8, 0) > 0) {}
    uint8_t out[kMsg], in[kMsg], echo[kMsg];
    for (size_t i = 0; i < kMsg; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
    // Each call is made once as the raw loop makes its own; the loops only take over when a call
    // falls short (NPIPE_EAGAIN: wait), so the harness adds as little as the raw one.
    const auto n64 = static_cast<int64_t>(kMsg);
    const auto rest = [](int64_t n) { return n > 0 ? static_cast<size_t>(n) : size_t{0}; };
    for (long r = 0; r < rounds; ++r) {
        int64_t n = npipe_write(p.client, out, kMsg);
        if (n != n64) write_all(poll, p.client, out + rest(n), kMsg - rest(n));
        n = npipe_read(p.server, echo, kMsg);
        if (n != n64) read_all(poll, p.server, echo + rest(n), kMsg - rest(n));
        n = npipe_write(p.server, echo, kMsg);
        if (n != n64) write_all(poll, p.server, echo + rest(n), kMsg - rest(n));
        n = npipe_read(p.client, in, kMsg);
        if (n != n64) read_all(poll, p.client, in + rest(n), kMsg - rest(n));
        if (std::memcmp(in, out, kMsg) != 0) die("the echo differs", 0);
    }
    npipe_close(p.client);
    npipe_close(p.server);
    npipe_poll_close(poll);
}

// A connected pair with a poll per end (server token 1, client token 2), as two threads use it.
struct PollPair {
    npipe_poll_t cpoll = 0, spoll = 0;
    npipe_t server = 0, client = 0;
};

PollPair make_poll_pair(const char *what) {
    PollPair p;
    int32_t rc = npipe_poll_create(&p.cpoll);
    if (rc == NPIPE_OK) rc = npipe_poll_create(&p.spoll);
    if (rc != NPIPE_OK) die("npipe_poll_create", rc);
    const std::string name = unique_name(what, 0);
    npipe_server_options_t so;
    npipe_server_options_init(&so);
    rc = npipe_create(name.c_str(), &so, &p.server);
    if (rc != NPIPE_OK) die("npipe_create", rc);
    rc = npipe_register(p.spoll, p.server, 1, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc != NPIPE_OK) die("npipe_register", rc);
    rc = npipe_connect(p.server);
    if (rc != NPIPE_OK && rc != NPIPE_EAGAIN) die("npipe_connect", rc);
    npipe_client_options_t co;
    npipe_client_options_init(&co);
    const int32_t connecting = rc;
    rc = npipe_open(name.c_str(), &co, &p.client);
    if (rc != NPIPE_OK) die("npipe_open", rc);
    rc = npipe_register(p.cpoll, p.client, 2, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc != NPIPE_OK) die("npipe_register", rc);
    if (connecting == NPIPE_EAGAIN) {  // the server learns of the client through its poll
        npipe_event_t ev[4];
        bool connected = false;
        while (!connected) {
            const int32_t n = npipe_poll_wait(p.spoll, ev, 4, -1);
            if (n < 0) die("npipe_poll_wait", n);
            for (int32_t i = 0; i < n; ++i) connected = connected || (ev[i].events & NPIPE_CONNECTED) != 0;
        }
    }
    return p;
}

void close_poll_pair(const PollPair &p) {
    npipe_close(p.client);
    npipe_close(p.server);
    npipe_poll_close(p.cpoll);
    npipe_poll_close(p.spoll);
}

// Two threads, one poll each (as `npipe bench`): `pp`: the client sends 64 bytes, the server
// thread echoes them; `tp`: the client sends 64 KiB, the server thread reads them.
void npipe_two_threads(long rounds, bool echo_back) {
    const size_t size = echo_back ? kMsg : kChunk;
    const PollPair p = make_poll_pair("pp");
    const npipe_poll_t cpoll = p.cpoll, spoll = p.spoll;
    const npipe_t server = p.server, client = p.client;
    std::thread echo([&] {
        std::vector<uint8_t> buf(size);
        for (long r = 0; r < rounds; ++r) {
            read_all(spoll, server, buf.data(), size);
            if (echo_back) write_all(spoll, server, buf.data(), size);
        }
    });
    std::vector<uint8_t> out(size), in(size);
    for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
    for (long r = 0; r < rounds; ++r) {
        write_all(cpoll, client, out.data(), size);
        if (!echo_back) continue;
        read_all(cpoll, client, in.data(), size);
        if (in != out) die("the echo differs", 0);
    }
    echo.join();
    close_poll_pair(p);
}

// `react`: one end's poll with a thread blocked on it, as an NpipeReactor: it only notes each
// READABLE of its pipe and wakes the end's worker, which reads until NPIPE_EAGAIN and then waits
// for the next one.
class Reactor {
public:
    explicit Reactor(npipe_poll_t poll) : poll_(poll), thread_([this] { run(); }) {}
    Reactor(const Reactor &) = delete;
    Reactor &operator=(const Reactor &) = delete;
    ~Reactor() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        const int32_t rc = npipe_poll_wake(poll_, 0);
        if (rc != NPIPE_OK) die("npipe_poll_wake", rc);
        thread_.join();
    }

    void read_exactly(npipe_t pipe, uint8_t *buf, size_t len) {
        while (len > 0) {
            uint64_t seen;
            {
                std::lock_guard lock(mu_);
                seen = readable_;
            }
            const int64_t n = npipe_read(pipe, buf, len);
            if (n > 0) {
                buf += n;
                len -= static_cast<size_t>(n);
                continue;
            }
            if (n != NPIPE_EAGAIN) die("npipe_read", n);
            std::unique_lock lock(mu_);
            heard_.wait(lock, [&] { return readable_ != seen; });
        }
    }

private:
    void run() {
        npipe_event_t ev[8];
        for (;;) {
            const int32_t n = npipe_poll_wait(poll_, ev, 8, -1);
            if (n < 0) die("npipe_poll_wait", n);
            bool readable = false;
            for (int32_t i = 0; i < n; ++i) readable = readable || (ev[i].events & NPIPE_READABLE) != 0;
            std::lock_guard lock(mu_);
            if (readable) {
                ++readable_;
                heard_.notify_one();
            }
            if (stop_) return;
        }
    }

    npipe_poll_t poll_;
    std::mutex mu_;
    std::condition_variable heard_;
    uint64_t readable_ = 0;
    bool stop_ = false;
    std::thread thread_;  // last: it starts in the constructor and uses the members above
};

void npipe_reactor_threads(long rounds) {
    const PollPair p = make_poll_pair("react");
    const npipe_t server = p.server, client = p.client;
    {
        Reactor sreactor(p.spoll), creactor(p.cpoll);
        const auto n64 = static_cast<int64_t>(kMsg);
        std::thread echo([&] {
            uint8_t buf[kMsg];
            for (long r = 0; r < rounds; ++r) {
                sreactor.read_exactly(server, buf, kMsg);
                const int64_t n = npipe_write(server, buf, kMsg);  // 64 bytes always fit
                if (n != n64) die("npipe_write (server)", n);
            }
        });
        uint8_t out[kMsg], in[kMsg];
        for (size_t i = 0; i < kMsg; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
        for (long r = 0; r < rounds; ++r) {
            const int64_t n = npipe_write(client, out, kMsg);
            if (n != n64) die("npipe_write (client)", n);
            creactor.read_exactly(client, in, kMsg);
            if (std::memcmp(in, out, kMsg) != 0) die("the echo differs", 0);
        }
        echo.join();
    }
    close_poll_pair(p);
}

// `wait`: the 64-byte exchange between two threads with no poll of ours, each end blocking in
// npipe_wait (its private poll) as the Python and .NET bindings' blocking calls do.
void npipe_waiting_threads(long rounds, bool wait_first) {
    const std::string name = unique_name("wait", 0);
    npipe_server_options_t so;
    npipe_server_options_init(&so);
    npipe_t server = 0, client = 0;
    int32_t rc = npipe_create(name.c_str(), &so, &server);
    if (rc != NPIPE_OK) die("npipe_create", rc);
    rc = npipe_connect(server);  // starts when npipe_wait registers the pipe
    if (rc != NPIPE_OK && rc != NPIPE_EAGAIN) die("npipe_connect", rc);
    npipe_client_options_t co;
    npipe_client_options_init(&co);
    rc = npipe_open(name.c_str(), &co, &client);
    if (rc != NPIPE_OK) die("npipe_open", rc);
    while (npipe_connect(server) == NPIPE_EAGAIN) wait_once(0, server, NPIPE_WRITABLE);
    std::thread echo([&] {
        uint8_t buf[kMsg];
        for (long r = 0; r < rounds; ++r) {
            read_all(0, server, buf, kMsg, wait_first);
            write_all(0, server, buf, kMsg);
        }
    });
    uint8_t out[kMsg], in[kMsg];
    for (size_t i = 0; i < kMsg; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
    for (long r = 0; r < rounds; ++r) {
        write_all(0, client, out, kMsg);
        read_all(0, client, in, kMsg, wait_first);
        if (std::memcmp(in, out, kMsg) != 0) die("the echo differs", 0);
    }
    echo.join();
    npipe_close(client);
    npipe_close(server);
}

#ifdef _WIN32

[[noreturn]] void die_win(const char *what) {
    std::fprintf(stderr, "costs: %s: Win32 error %lu\n", what, GetLastError());
    std::exit(1);
}

std::wstring wide_path(const std::string &name) { return L"\\\\.\\pipe\\" + std::wstring(name.begin(), name.end()); }

struct RawPair {
    HANDLE server = INVALID_HANDLE_VALUE;
    HANDLE client = INVALID_HANDLE_VALUE;
};

RawPair raw_pair(const std::string &name, bool overlapped) {
    const std::wstring path = wide_path(name);
    const DWORD ov = overlapped ? FILE_FLAG_OVERLAPPED : 0;
    RawPair p;
    p.server = CreateNamedPipeW(path.c_str(), PIPE_ACCESS_DUPLEX | ov, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                                PIPE_UNLIMITED_INSTANCES, 64 * 1024, 64 * 1024, 0, nullptr);
    if (p.server == INVALID_HANDLE_VALUE) die_win("CreateNamedPipeW");
    p.client = CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING, ov, nullptr);
    if (p.client == INVALID_HANDLE_VALUE) die_win("CreateFileW");
    if (!overlapped && !ConnectNamedPipe(p.server, nullptr) && GetLastError() != ERROR_PIPE_CONNECTED)
        die_win("ConnectNamedPipe");
    return p;
}

void raw_round_trips(long rounds) {
    const RawPair p = raw_pair(unique_name("rawrt", 0), false);
    uint8_t out[kMsg], in[kMsg], echo[kMsg];
    for (size_t i = 0; i < kMsg; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
    for (long r = 0; r < rounds; ++r) {
        DWORD n = 0;
        if (!WriteFile(p.client, out, kMsg, &n, nullptr) || n != kMsg) die_win("WriteFile (client)");
        if (!ReadFile(p.server, echo, kMsg, &n, nullptr) || n != kMsg) die_win("ReadFile (server)");
        if (!WriteFile(p.server, echo, kMsg, &n, nullptr) || n != kMsg) die_win("WriteFile (server)");
        if (!ReadFile(p.client, in, kMsg, &n, nullptr) || n != kMsg) die_win("ReadFile (client)");
        if (std::memcmp(in, out, kMsg) != 0) die("the echo differs", 0);
    }
    CloseHandle(p.client);
    CloseHandle(p.server);
}

// Two threads without npipe, the baselines of `costs pp npipe` (64 bytes echoed) and `costs tp
// npipe` (64 KiB one way):
//   raw:  blocking ReadFile/WriteFile on synchronous handles (npipe bench's raw side);
//   iocp: overlapped handles, each on a completion port of its own with skip-on-success: a call
//         that completes at once queues nothing, one that has to wait is dequeued from the port.
//         The completion model at its floor: what any port-driven library pays at least.
void raw_two_threads(long rounds, bool iocp, bool echo_back) {
    const size_t size = echo_back ? kMsg : kChunk;
    const RawPair p = raw_pair(unique_name(iocp ? "rawiocp" : "rawpp", 0), iocp);
    HANDLE ports[2] = {nullptr, nullptr};
    if (iocp) {
        const HANDLE ends[2] = {p.server, p.client};
        for (int i = 0; i < 2; ++i) {
            ports[i] = CreateIoCompletionPort(ends[i], nullptr, 1, 0);
            if (!ports[i]) die_win("CreateIoCompletionPort");
            if (!SetFileCompletionNotificationModes(
                    ends[i], FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE))
                die_win("SetFileCompletionNotificationModes");
        }
        OVERLAPPED cov{};
        if (!ConnectNamedPipe(p.server, &cov) && GetLastError() != ERROR_PIPE_CONNECTED) die_win("ConnectNamedPipe");
    }
    // One call, waiting as the mode waits; returns the bytes it moved.
    const auto call = [&](HANDLE h, HANDLE port, uint8_t *buf, DWORD len, bool write) -> DWORD {
        DWORD n = 0;
        if (!iocp) {
            const BOOL ok = write ? WriteFile(h, buf, len, &n, nullptr) : ReadFile(h, buf, len, &n, nullptr);
            if (!ok) die_win(write ? "WriteFile" : "ReadFile");
            return n;
        }
        OVERLAPPED ov{};
        const BOOL ok = write ? WriteFile(h, buf, len, nullptr, &ov) : ReadFile(h, buf, len, nullptr, &ov);
        if (ok) return static_cast<DWORD>(ov.InternalHigh);
        if (GetLastError() != ERROR_IO_PENDING) die_win(write ? "WriteFile" : "ReadFile");
        ULONG_PTR key = 0;
        OVERLAPPED *got = nullptr;
        if (!GetQueuedCompletionStatus(port, &n, &key, &got, INFINITE) || got != &ov)
            die_win("GetQueuedCompletionStatus");
        return n;
    };
    const auto transfer = [&](HANDLE h, HANDLE port, uint8_t *buf, bool write) {
        for (size_t done = 0; done < size;) {
            const DWORD n = call(h, port, buf + done, static_cast<DWORD>(size - done), write);
            if (n == 0) die_win("a transfer that moved nothing");
            done += n;
        }
    };
    std::thread echo([&] {
        std::vector<uint8_t> buf(size);
        for (long r = 0; r < rounds; ++r) {
            transfer(p.server, ports[0], buf.data(), false);
            if (echo_back) transfer(p.server, ports[0], buf.data(), true);
        }
    });
    std::vector<uint8_t> out(size), in(size);
    for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
    for (long r = 0; r < rounds; ++r) {
        transfer(p.client, ports[1], out.data(), true);
        if (!echo_back) continue;
        transfer(p.client, ports[1], in.data(), false);
        if (in != out) die("the echo differs", 0);
    }
    echo.join();
    CloseHandle(p.client);
    CloseHandle(p.server);
    for (HANDLE port : ports)
        if (port) CloseHandle(port);
}

size_t private_usage() {
    PROCESS_MEMORY_COUNTERS_EX pmc{};
    pmc.cb = sizeof pmc;
    if (!GetProcessMemoryInfo(GetCurrentProcess(), reinterpret_cast<PROCESS_MEMORY_COUNTERS *>(&pmc), sizeof pmc))
        die_win("GetProcessMemoryInfo");
    // Windows reports the commit charge as both PrivateUsage and PagefileUsage; Wine 8 fills in
    // only PagefileUsage (PrivateUsage stays 0).
    return pmc.PrivateUsage ? pmc.PrivateUsage : pmc.PagefileUsage;
}

void memory(const std::string &what, int pairs) {
    if (what == "npipe") {
        npipe_poll_t poll = 0;
        const int32_t rc = npipe_poll_create(&poll);
        if (rc != NPIPE_OK) die("npipe_poll_create", rc);
        // One pair first, so what every process pays once (the heap's first arenas, the handle
        // table's first block) is not counted per pair.
        std::vector<Pair> all;
        all.push_back(make_pair(poll, unique_name("mem", 0), 1));
        npipe_event_t ev[64];
        while (npipe_poll_wait(poll, ev, 64, 0) > 0) {}
        all.reserve(static_cast<size_t>(pairs) + 1);
        const size_t before = private_usage();
        for (int i = 1; i <= pairs; ++i) all.push_back(make_pair(poll, unique_name("mem", i), 2 * i + 1));
        while (npipe_poll_wait(poll, ev, 64, 0) > 0) {}
        const size_t after = private_usage();
        std::printf("%.1f\n", static_cast<double>(after - before) / 1024.0 / pairs);
        for (const Pair &p : all) {
            npipe_close(p.client);
            npipe_close(p.server);
        }
        npipe_poll_close(poll);
        return;
    }
    const bool big = what == "raw64k";
    if (!big && what != "raw0") die("mem: npipe, raw0 or raw64k", 0);
    const DWORD size = big ? 64 * 1024 : 0;
    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
    if (!port) die_win("CreateIoCompletionPort");
    struct End {
        HANDLE h;
        OVERLAPPED *ov;
        uint8_t *buf;
    };
    std::vector<End> ends;
    ends.reserve(2 * static_cast<size_t>(pairs) + 2);
    auto start = [&](int i) {
        const std::string name = unique_name(big ? "raw64k" : "raw0", i);
        const std::wstring path = wide_path(name);
        HANDLE s = CreateNamedPipeW(path.c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                    PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, PIPE_UNLIMITED_INSTANCES,
                                    64 * 1024, 64 * 1024, 0, nullptr);
        if (s == INVALID_HANDLE_VALUE) die_win("CreateNamedPipeW");
        if (!CreateIoCompletionPort(s, port, 1, 0)) die_win("CreateIoCompletionPort (server)");
        OVERLAPPED cov{};
        const BOOL c = ConnectNamedPipe(s, &cov);
        if (!c && GetLastError() != ERROR_IO_PENDING && GetLastError() != ERROR_PIPE_CONNECTED)
            die_win("ConnectNamedPipe");
        const bool pending = !c && GetLastError() == ERROR_IO_PENDING;
        HANDLE cl = CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                                FILE_FLAG_OVERLAPPED, nullptr);
        if (cl == INVALID_HANDLE_VALUE) die_win("CreateFileW");
        if (!CreateIoCompletionPort(cl, port, 1, 0)) die_win("CreateIoCompletionPort (client)");
        if (pending) {
            DWORD n;
            ULONG_PTR key;
            OVERLAPPED *got;
            if (!GetQueuedCompletionStatus(port, &n, &key, &got, INFINITE)) die_win("GetQueuedCompletionStatus");
        }
        for (HANDLE h : {s, cl}) {
            End e{h, new OVERLAPPED{}, big ? new uint8_t[size] : nullptr};
            if (!ReadFile(h, e.buf, size, nullptr, e.ov) && GetLastError() != ERROR_IO_PENDING) die_win("ReadFile");
            ends.push_back(e);
        }
    };
    start(0);
    const size_t before = private_usage();
    for (int i = 1; i <= pairs; ++i) start(i);
    const size_t after = private_usage();
    std::printf("%.1f\n", static_cast<double>(after - before) / 1024.0 / pairs);
    for (const End &e : ends) CloseHandle(e.h);
    CloseHandle(port);
}

#else

void raw_round_trips(long rounds) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair", errno);
    uint8_t out[kMsg], in[kMsg], echo[kMsg];
    for (size_t i = 0; i < kMsg; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
    for (long r = 0; r < rounds; ++r) {
        if (write(sv[1], out, kMsg) != static_cast<ssize_t>(kMsg)) die("write (client)", errno);
        if (read(sv[0], echo, kMsg) != static_cast<ssize_t>(kMsg)) die("read (server)", errno);
        if (write(sv[0], echo, kMsg) != static_cast<ssize_t>(kMsg)) die("write (server)", errno);
        if (read(sv[1], in, kMsg) != static_cast<ssize_t>(kMsg)) die("read (client)", errno);
        if (std::memcmp(in, out, kMsg) != 0) die("the echo differs", 0);
    }
    close(sv[0]);
    close(sv[1]);
}

void memory(const std::string &, int) { die("mem: Windows only", 0); }
void raw_two_threads(long, bool, bool) { die("pp|tp raw|iocp: Windows only", 0); }

#endif

}  // namespace

int main(int argc, char **argv) {
    if (argc != 4) {
        std::fprintf(stderr,
                     "usage: costs rt|pp|react|wait|tp|mem WHAT N (the modes: bench/costs.cpp's first lines)\n");
        return 2;
    }
    const std::string mode = argv[1], what = argv[2];
    const long n = std::strtol(argv[3], nullptr, 10);
    if (n < 1) die("ROUNDS/PAIRS must be at least 1", n);
    if (mode == "rt" && what == "npipe")
        npipe_round_trips(n);
    else if (mode == "rt" && what == "raw")
        raw_round_trips(n);
    else if (mode == "pp" && what == "npipe")
        npipe_two_threads(n, true);
    else if ((mode == "pp" || mode == "tp") && (what == "raw" || what == "iocp"))
        raw_two_threads(n, what == "iocp", mode == "pp");
    else if (mode == "react" && what == "npipe")
        npipe_reactor_threads(n);
    else if (mode == "wait" && (what == "npipe" || what == "first"))
        npipe_waiting_threads(n, what == "first");
    else if (mode == "tp" && what == "npipe")
        npipe_two_threads(n, false);
    else if (mode == "mem")
        memory(what, static_cast<int>(n));
    else
        die("unknown mode", 0);
    return 0;
}
