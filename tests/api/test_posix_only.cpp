// Linux-only behaviour of the AF_UNIX backend (the header's "Names", "Security", "Linux
// instances"): the socket files themselves (stale ones replaced, live ones and non-sockets left
// alone, 0600 with NPIPE_CURRENT_USER_ONLY, removal on the last close), the name mapping, interop
// with plain AF_UNIX peers and the documented message framing, adopted sockets, peer pids and
// identities (another uid on either end), drain against a peer that resets the connection, fd
// hygiene (no leaks, CLOEXEC) and SIGPIPE. Every wait is bounded; child processes are reaped.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "support.hpp"

using namespace test;

namespace {

std::string resolve(const std::string &name) {
    char buf[256];
    const int32_t n = npipe_resolve_name(name.c_str(), buf, sizeof buf);
    REQUIRE(n > 0);
    return std::string(buf, static_cast<size_t>(n));
}

sockaddr_un address_of(const std::string &path, socklen_t &len) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return addr;
}

// A raw listening socket at `path` (blocking, CLOEXEC).
int raw_listener(const std::string &path) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    socklen_t len;
    sockaddr_un addr = address_of(path, len);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&addr), len) == 0);
    REQUIRE(listen(fd, 8) == 0);
    return fd;
}

// A raw client socket connected to `path`, or -1.
int raw_connect(const std::string &path) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    socklen_t len;
    sockaddr_un addr = address_of(path, len);
    if (connect(fd, reinterpret_cast<sockaddr *>(&addr), len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// In a child process (no doctest macros there): become uid and gid 65534, then make a raw socket
// connected to `path`, or listening on it. -1 on failure, with errno of the call that failed.
int socket_as_nobody(const std::string &path, bool listening) {
    if (setgid(65534) != 0 || setuid(65534) != 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || path.size() >= sizeof addr.sun_path) return -1;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const auto *a = reinterpret_cast<sockaddr *>(&addr);
    const bool ok = listening ? bind(fd, a, sizeof addr) == 0 && listen(fd, 8) == 0 : connect(fd, a, sizeof addr) == 0;
    return ok ? fd : -1;
}

// The peer of `pipe` is process `pid`, run as uid and gid 65534: not this process's user.
void check_peer_is_nobody(npipe_t pipe, pid_t pid) {
    npipe_peer_t peer;
    std::memset(&peer, 0, sizeof peer);
    peer.size = sizeof peer;
    REQUIRE(npipe_peer_identity(pipe, &peer) == NPIPE_OK);
    CHECK(peer.uid == 65534u);
    CHECK(peer.gid == 65534u);
    CHECK(peer.pid == static_cast<uint64_t>(pid));
    CHECK(peer.flags == 0u);
    CHECK(peer.sid[0] == '\0');
}

// Blocking helpers on raw sockets, bounded by poll().
bool raw_send_all(int fd, const void *data, size_t len) {
    const char *p = static_cast<const char *>(data);
    while (len > 0) {
        pollfd pf{fd, POLLOUT, 0};
        if (poll(&pf, 1, kWaitMs) != 1) return false;
        const ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return false;
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

std::string raw_recv_exactly(int fd, size_t want) {
    std::string got;
    char buf[4096];
    while (got.size() < want) {
        pollfd pf{fd, POLLIN, 0};
        if (poll(&pf, 1, kWaitMs) != 1) break;
        const ssize_t n = recv(fd, buf, std::min(sizeof buf, want - got.size()), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    return got;
}

// Reads from a raw socket until EOF (bounded); returns true if EOF came.
bool raw_wait_eof(int fd) {
    char buf[4096];
    for (;;) {
        pollfd pf{fd, POLLIN, 0};
        if (poll(&pf, 1, kWaitMs) != 1) return false;
        const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return true;
        if (n < 0 && errno != EAGAIN && errno != EINTR) return errno == ECONNRESET;
    }
}

bool path_exists(const std::string &path) {
    struct stat sb;
    return lstat(path.c_str(), &sb) == 0;
}

npipe_t create_with(const std::string &name, uint32_t flags, int32_t *rc_out = nullptr) {
    npipe_server_options_t opts;
    npipe_server_options_init(&opts);
    opts.flags = flags;
    npipe_t h = 0;
    const int32_t rc = npipe_create(name.c_str(), &opts, &h);
    if (rc_out) *rc_out = rc;
    return rc == NPIPE_OK ? h : 0;
}

int32_t open_with(const std::string &name, uint32_t flags, int32_t timeout_ms, npipe_t &out) {
    npipe_client_options_t opts;
    npipe_client_options_init(&opts);
    opts.flags = flags;
    opts.timeout_ms = timeout_ms;
    out = 0;
    return npipe_open(name.c_str(), &opts, &out);
}

// Registers `server` (token 1) and waits for a client that `connect_client` brings.
template <class Connect>
void accept_one(Poller &poll, npipe_t server, Connect &&connect_client) {
    REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
    const int32_t rc = npipe_connect(server);
    REQUIRE((rc == NPIPE_EAGAIN || rc == NPIPE_OK));
    connect_client();
    if (rc == NPIPE_EAGAIN) {
        REQUIRE((poll.wait_for(1, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
        REQUIRE(npipe_take_error(server) == NPIPE_OK);
    }
    REQUIRE(npipe_connect(server) == NPIPE_OK);
}

// A child process running `body` (raw syscalls only), reaped by the destructor.
struct Child {
    pid_t pid = -1;
    int to_child = -1;    // parent writes a byte: the child may finish
    int from_child = -1;  // the child writes a byte: it is ready
    template <class Body>
    explicit Child(Body &&body) {
        int a[2], b[2];
        REQUIRE(pipe2(a, O_CLOEXEC) == 0);
        REQUIRE(pipe2(b, O_CLOEXEC) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(a[1]);
            close(b[0]);
            const char ok = body() ? 'y' : 'n';
            (void)!write(b[1], &ok, 1);
            char c;
            pollfd pf{a[0], POLLIN, 0};
            poll(&pf, 1, 4 * kWaitMs);
            (void)!read(a[0], &c, 1);
            _exit(0);
        }
        close(a[0]);
        close(b[1]);
        to_child = a[1];
        from_child = b[0];
    }
    // True once the child has written its byte (without consuming it).
    bool finished() const {
        pollfd pf{from_child, POLLIN, 0};
        return poll(&pf, 1, 0) == 1;
    }
    // Waits (bounded) for the child's ready byte; true if it reported success.
    bool ready() {
        pollfd pf{from_child, POLLIN, 0};
        char c = 0;
        return poll(&pf, 1, kWaitMs) == 1 && read(from_child, &c, 1) == 1 && c == 'y';
    }
    ~Child() {
        if (to_child >= 0) {
            (void)!write(to_child, "x", 1);
            close(to_child);
        }
        if (from_child >= 0) close(from_child);
        if (pid > 0) {
            int status;
            waitpid(pid, &status, 0);
        }
    }
};

std::atomic<int> g_sigpipes{0};
void on_sigpipe(int) { g_sigpipes.fetch_add(1); }

}  // namespace

TEST_SUITE("posix_only") {
    TEST_CASE("names map to $TMPDIR/CoreFxPipe_<name>, full paths pass through, long names are refused") {
        const char *saved = std::getenv("TMPDIR");
        const std::string saved_value = saved ? saved : "";
        unsetenv("TMPDIR");
        CHECK(resolve("foo") == "/tmp/CoreFxPipe_foo");
        CHECK(resolve("\\\\.\\pipe\\foo") == "/tmp/CoreFxPipe_foo");
        CHECK(resolve("/run/user/x.sock") == "/run/user/x.sock");
        setenv("TMPDIR", "/var/tmp", 1);
        CHECK(resolve("bar") == "/var/tmp/CoreFxPipe_bar");
        setenv("TMPDIR", "/var/tmp/", 1);
        CHECK(resolve("bar") == "/var/tmp/CoreFxPipe_bar");
        unsetenv("TMPDIR");

        // Length: the path must fit sockaddr_un.sun_path (107 bytes + NUL), never truncated.
        const std::string fits = "/" + std::string(106, 'a');
        CHECK(resolve(fits) == fits);
        char buf[256];
        CHECK(npipe_resolve_name(("/" + std::string(107, 'a')).c_str(), buf, sizeof buf) == NPIPE_ENAMETOOLONG);
        const size_t room = 107 - std::strlen("/tmp/CoreFxPipe_");
        CHECK(npipe_resolve_name(std::string(room, 'b').c_str(), buf, sizeof buf) == static_cast<int32_t>(107));
        CHECK(npipe_resolve_name(std::string(room + 1, 'b').c_str(), buf, sizeof buf) == NPIPE_ENAMETOOLONG);
        npipe_t h = 0;
        CHECK(npipe_create(std::string(room + 1, 'b').c_str(), nullptr, &h) == NPIPE_ENAMETOOLONG);
        CHECK(h == 0);
        // A too-small buffer says so; (NULL, 0) asks for the length.
        CHECK(npipe_resolve_name("foo", buf, 5) == NPIPE_ENAMETOOLONG);
        CHECK(npipe_resolve_name("foo", nullptr, 0) == static_cast<int32_t>(std::strlen("/tmp/CoreFxPipe_foo")));
        CHECK(npipe_resolve_name("\\\\server\\pipe\\foo", buf, sizeof buf) == NPIPE_ENOTSUP);
        CHECK(npipe_resolve_name("a/b", buf, sizeof buf) == NPIPE_EINVAL);
        if (saved) setenv("TMPDIR", saved_value.c_str(), 1);
    }

    TEST_CASE("the socket file appears at the resolved path and goes with the last instance") {
        const std::string name = unique_name("file");
        const std::string path = resolve(name);
        {
            PipeGuard a(create_server(name));
            struct stat sb;
            REQUIRE(lstat(path.c_str(), &sb) == 0);
            CHECK(S_ISSOCK(sb.st_mode));
            PipeGuard b(create_server(name));
            a.reset();
            CHECK(path_exists(path));  // b still uses it
        }
        CHECK_FALSE(path_exists(path));
    }

    TEST_CASE("a replaced socket file is not removed by the last close (same-inode check)") {
        const std::string name = unique_name("inode");
        const std::string path = resolve(name);
        PipeGuard server(create_server(name));
        REQUIRE(unlink(path.c_str()) == 0);
        const int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        close(fd);
        server.reset();
        CHECK(path_exists(path));
        unlink(path.c_str());
    }

    TEST_CASE("a stale socket file (nobody listening) is replaced") {
        const std::string name = unique_name("stale");
        const std::string path = resolve(name);
        close(raw_listener(path));  // leaves a socket file that refuses connections
        REQUIRE(path_exists(path));
        npipe_t c = 0;
        CHECK(open_with(name, 0, 0, c) == NPIPE_ENOENT);  // refused: "no server"
        for (uint32_t flags : {0u, static_cast<uint32_t>(NPIPE_FIRST_INSTANCE)}) {
            if (!path_exists(path)) close(raw_listener(path));
            int32_t rc = 0;
            PipeGuard server(create_with(name, flags, &rc));
            INFO(npipe_last_error_message());
            REQUIRE(rc == NPIPE_OK);
            Poller poll;
            PipeGuard client;
            accept_one(poll, server, [&] { client.reset(open_client(name)); });
        }
    }

    TEST_CASE("a live listener in this process (raw socket) is never replaced") {
        const std::string name = unique_name("live");
        const std::string path = resolve(name);
        const int lfd = raw_listener(path);
        for (uint32_t flags : {0u, static_cast<uint32_t>(NPIPE_FIRST_INSTANCE)}) {
            int32_t rc = 0;
            PipeGuard server(create_with(name, flags, &rc));
            CHECK(rc == NPIPE_EEXIST);
        }
        // Still the raw listener's socket: a client reaches it.
        const int c = raw_connect(path);
        CHECK(c >= 0);
        if (c >= 0) close(c);
        close(lfd);
        unlink(path.c_str());
    }

    TEST_CASE("a live listener in another process owns the name: NPIPE_EEXIST, file untouched") {
        const std::string name = unique_name("other");
        const std::string path = resolve(name);
        Child child([&] {
            const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
            return fd >= 0 && bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 && listen(fd, 8) == 0;
        });
        REQUIRE(child.ready());
        for (uint32_t flags : {0u, static_cast<uint32_t>(NPIPE_FIRST_INSTANCE)}) {
            int32_t rc = 0;
            PipeGuard server(create_with(name, flags, &rc));
            CHECK(rc == NPIPE_EEXIST);
            CHECK(std::string(npipe_last_error_message()).find("live") != std::string::npos);
        }
        CHECK(path_exists(path));
        unlink(path.c_str());
    }

    TEST_CASE("a path that is not a socket is never touched") {
        const std::string name = unique_name("regular");
        const std::string path = resolve(name);
        const int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(write(fd, "keep", 4) == 4);
        close(fd);
        for (uint32_t flags :
             {0u, static_cast<uint32_t>(NPIPE_FIRST_INSTANCE), static_cast<uint32_t>(NPIPE_CURRENT_USER_ONLY)}) {
            int32_t rc = 0;
            PipeGuard server(create_with(name, flags, &rc));
            CHECK(rc == NPIPE_EEXIST);
        }
        struct stat sb;
        REQUIRE(lstat(path.c_str(), &sb) == 0);
        CHECK(S_ISREG(sb.st_mode));
        CHECK(sb.st_size == 4);
        unlink(path.c_str());
        // A directory in the way is not a socket either.
        REQUIRE(mkdir(path.c_str(), 0700) == 0);
        int32_t rc = 0;
        PipeGuard server(create_with(name, 0, &rc));
        CHECK(rc == NPIPE_EEXIST);
        rmdir(path.c_str());
    }

    TEST_CASE("NPIPE_CURRENT_USER_ONLY: socket mode 0600, no private directory left behind") {
        const std::string dir = "/tmp/npipe-posix-" + std::to_string(getpid());
        REQUIRE(mkdir(dir.c_str(), 0755) == 0);
        const std::string path = dir + "/cu.sock";
        {
            const mode_t old = umask(0);  // a wide umask must not widen the socket
            int32_t rc = 0;
            PipeGuard server(create_with(path, NPIPE_CURRENT_USER_ONLY, &rc));
            umask(old);
            INFO(npipe_last_error_message());
            REQUIRE(rc == NPIPE_OK);
            struct stat sb;
            REQUIRE(lstat(path.c_str(), &sb) == 0);
            CHECK(S_ISSOCK(sb.st_mode));
            CHECK((sb.st_mode & 0777) == 0600);
            CHECK(sb.st_uid == geteuid());
            size_t entries = 0;
            DIR *d = opendir(dir.c_str());
            REQUIRE(d != nullptr);
            while (dirent *e = readdir(d))
                if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) ++entries;
            closedir(d);
            CHECK(entries == 1);
            // Our own user gets through, with the check on the client side too.
            Poller poll;
            PipeGuard client;
            accept_one(poll, server, [&] { client.reset(open_client(path, NPIPE_CURRENT_USER_ONLY)); });
            npipe_info_t info;
            info.size = sizeof info;
            REQUIRE(npipe_get_info(server, &info) == NPIPE_OK);
            CHECK((info.flags & NPIPE_CURRENT_USER_ONLY) != 0);
        }
        CHECK_FALSE(path_exists(path));
        CHECK(rmdir(dir.c_str()) == 0);
    }

    TEST_CASE("NPIPE_CURRENT_USER_ONLY across users (needs root): foreign client refused, foreign server refused") {
        if (geteuid() != 0) {
            MESSAGE("skipped: needs root to act as another user");
            return;
        }
        const std::string name = unique_name("uid");
        const std::string path = resolve(name);
        {
            PipeGuard server(create_with(name, NPIPE_CURRENT_USER_ONLY));
            REQUIRE(server != 0);
            Child child([&] {
                // The 0600 socket keeps another user out at connect().
                return socket_as_nobody(path, false) < 0 && errno == EACCES;
            });
            CHECK(child.ready());
        }
        {
            // Past the file mode (widened here on purpose), SO_PEERCRED still keeps the foreign
            // client out: the server drops it without an event and keeps waiting.
            PipeGuard server(create_with(name, NPIPE_CURRENT_USER_ONLY));
            REQUIRE(server != 0);
            REQUIRE(chmod(path.c_str(), 0666) == 0);
            Poller poll;
            REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            REQUIRE(npipe_connect(server) == NPIPE_EAGAIN);
            Child child([&] {
                const int fd = socket_as_nobody(path, false);
                if (fd < 0) return false;
                pollfd pf{fd, POLLIN, 0};
                if (::poll(&pf, 1, kWaitMs) != 1) return false;
                char c;
                const ssize_t n = recv(fd, &c, 1, 0);
                return n == 0 || (n < 0 && errno == ECONNRESET);  // dropped by the server
            });
            uint32_t seen = 0;
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
            while (!child.finished() && std::chrono::steady_clock::now() < deadline) {
                poll.wait(20);
                for (const auto &e : poll.last) seen |= e.events;
            }
            CHECK(child.ready());
            CHECK((seen & NPIPE_CONNECTED) == 0);
            CHECK(npipe_connect(server) == NPIPE_EAGAIN);
            PipeGuard mine(open_client(name));
            CHECK((poll.wait_for(1, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
            CHECK(npipe_take_error(server) == NPIPE_OK);
            npipe_info_t info;
            info.size = sizeof info;
            REQUIRE(npipe_get_info(server, &info) == NPIPE_OK);
            CHECK(info.peer_pid == static_cast<uint64_t>(getpid()));
        }
        // A server run by another user: a client with the flag gets NPIPE_EACCES, one without connects.
        const std::string other = "/tmp/npipe-uid-" + std::to_string(getpid()) + ".sock";
        Child child([&] { return socket_as_nobody(other, true) >= 0; });
        REQUIRE(child.ready());
        npipe_t c = 0;
        CHECK(open_with(other, NPIPE_CURRENT_USER_ONLY, kWaitMs, c) == NPIPE_EACCES);
        CHECK(c == 0);
        REQUIRE(open_with(other, 0, kWaitMs, c) == NPIPE_OK);
        npipe_close(c);
        unlink(other.c_str());
    }

    TEST_CASE("unsupported on Linux: sddl and NPIPE_ALLOW_REMOTE") {
        npipe_server_options_t opts;
        npipe_server_options_init(&opts);
        opts.sddl = "D:P(A;;GA;;;WD)";
        npipe_t h = 0;
        const std::string name = unique_name("nosup");
        CHECK(npipe_create(name.c_str(), &opts, &h) == NPIPE_ENOTSUP);
        npipe_server_options_init(&opts);
        opts.flags = NPIPE_ALLOW_REMOTE;
        CHECK(npipe_create(name.c_str(), &opts, &h) == NPIPE_ENOTSUP);
        CHECK(h == 0);
        CHECK_FALSE(path_exists(resolve(name)));
    }

    TEST_CASE("instances share one socket; max_instances counts this process's instances") {
        const std::string name = unique_name("inst");
        PipeGuard a(create_server(name, 0, 2));
        PipeGuard b(create_server(name, 0, 2));
        npipe_t h = 0;
        CHECK(npipe_create(name.c_str(), nullptr, &h) == NPIPE_EBUSY);
        int32_t rc = 0;
        PipeGuard first(create_with(name, NPIPE_FIRST_INSTANCE, &rc));
        CHECK(rc == NPIPE_EEXIST);
        Poller poll;
        PipeGuard ca, cb;
        accept_one(poll, a, [&] { ca.reset(open_client(name)); });
        REQUIRE(npipe_register(poll, b, 2, NPIPE_READABLE) == NPIPE_OK);
        REQUIRE(npipe_connect(b) == NPIPE_EAGAIN);
        cb.reset(open_client(name));
        CHECK((poll.wait_for(2, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
        CHECK(npipe_connect(b) == NPIPE_OK);
        // Closing one instance frees a slot.
        a.reset();
        PipeGuard c(create_server(name, 0, 2));
    }

    TEST_CASE("interop with a raw AF_UNIX client: bytes both ways, EOF, peer pid") {
        const std::string name = unique_name("rawc");
        const std::string path = resolve(name);
        Poller poll;
        PipeGuard server(create_server(name));
        int raw = -1;
        accept_one(poll, server, [&] { raw = raw_connect(path); });
        REQUIRE(raw >= 0);
        REQUIRE(raw_send_all(raw, "hello from raw", 14));
        CHECK(read_exactly(poll, server, 14) == "hello from raw");
        CHECK(write_all(poll, server, "hello from npipe") == 16);
        CHECK(npipe_flush(server) == NPIPE_OK);
        CHECK(raw_recv_exactly(raw, 16) == "hello from npipe");
        npipe_info_t info;
        info.size = sizeof info;
        REQUIRE(npipe_get_info(server, &info) == NPIPE_OK);
        CHECK(info.peer_pid == static_cast<uint64_t>(getpid()));
        CHECK((info.flags & (NPIPE_INFO_SERVER | NPIPE_INFO_CONNECTED)) == (NPIPE_INFO_SERVER | NPIPE_INFO_CONNECTED));
        close(raw);
        CHECK((poll.wait_for(1, NPIPE_READ_CLOSED) & NPIPE_READ_CLOSED) != 0);
        char buf[8];
        CHECK(npipe_read(server, buf, sizeof buf) == 0);
        CHECK(npipe_read(server, buf, sizeof buf) == 0);
        CHECK(npipe_write(server, "x", 1) == NPIPE_EPIPE);
    }

    TEST_CASE("interop with a raw AF_UNIX server: npipe_open connects, peer pid, EOF on close") {
        const std::string path = "/tmp/npipe-raws-" + std::to_string(getpid()) + ".sock";
        unlink(path.c_str());
        const int lfd = raw_listener(path);
        npipe_t c = 0;
        REQUIRE(open_with(path, 0, kWaitMs, c) == NPIPE_OK);
        PipeGuard client(c);
        const int peer = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        REQUIRE(peer >= 0);
        Poller poll;
        REQUIRE(npipe_register(poll, client, 7, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        npipe_info_t info;
        info.size = sizeof info;
        REQUIRE(npipe_get_info(client, &info) == NPIPE_OK);
        CHECK(info.peer_pid == static_cast<uint64_t>(getpid()));
        CHECK((info.flags & NPIPE_INFO_SERVER) == 0);
        CHECK(write_all(poll, client, "ping") == 4);
        CHECK(raw_recv_exactly(peer, 4) == "ping");
        REQUIRE(raw_send_all(peer, "pong", 4));
        CHECK(read_exactly(poll, client, 4) == "pong");
        client.reset();  // nothing buffered: closed at once
        CHECK(raw_wait_eof(peer));
        close(peer);
        close(lfd);
        unlink(path.c_str());
    }

    TEST_CASE("message framing on the wire: 4-byte little-endian length, then the payload") {
        const std::string name = unique_name("frame");
        const std::string path = resolve(name);
        Poller poll;
        PipeGuard server(create_server(name, NPIPE_MESSAGE));
        int raw = -1;
        accept_one(poll, server, [&] { raw = raw_connect(path); });
        REQUIRE(raw >= 0);
        // npipe -> raw
        CHECK(npipe_write(server, "abc", 3) == 3);
        CHECK(npipe_write(server, "", 0) == 0);
        CHECK(raw_recv_exactly(raw, 11) == std::string("\x03\x00\x00\x00"
                                                       "abc"
                                                       "\x00\x00\x00\x00",
                                                       11));
        // raw -> npipe: two messages and an empty one in one send
        const std::string wire(
            "\x02\x00\x00\x00"
            "hi"
            "\x00\x00\x00\x00"
            "\x05\x00\x00\x00"
            "there",
            19);
        REQUIRE(raw_send_all(raw, wire.data(), wire.size()));
        char buf[16];
        uint32_t flags = 0;
        int64_t n = NPIPE_EAGAIN;
        poll.pump_until([&] { return (n = npipe_read_msg(server, buf, sizeof buf, &flags)) != NPIPE_EAGAIN; });
        CHECK(n == 2);
        CHECK(std::string(buf, 2) == "hi");
        CHECK(npipe_read_msg(server, buf, sizeof buf, &flags) == 0);
        CHECK(flags == NPIPE_MSG_EMPTY);
        CHECK(npipe_read_msg(server, buf, 3, &flags) == 3);
        CHECK(flags == NPIPE_MSG_PARTIAL);
        CHECK(npipe_read_msg(server, buf, sizeof buf, &flags) == 2);
        CHECK(flags == 0);
        // A header beyond 16 MiB is not npipe framing: a read error, not a 4 GiB allocation.
        REQUIRE(raw_send_all(raw, "\xff\xff\xff\xff", 4));
        n = NPIPE_EAGAIN;
        poll.pump_until([&] { return (n = npipe_read_msg(server, buf, sizeof buf, &flags)) != NPIPE_EAGAIN; });
        CHECK(n == NPIPE_EIO);
        CHECK(npipe_take_error(server) == NPIPE_EIO);
        CHECK(npipe_take_error(server) == NPIPE_OK);
        close(raw);
    }

    TEST_CASE("npipe_from_raw_handle adopts a socketpair end; non-sockets are NPIPE_EINVAL") {
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);  // blocking, inheritable on purpose
        npipe_t h = 0;
        REQUIRE(npipe_from_raw_handle(sv[0], 0, &h) == NPIPE_OK);
        PipeGuard pipe(h);
        CHECK((fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
        CHECK((fcntl(sv[0], F_GETFD) & FD_CLOEXEC) != 0);
        intptr_t raw = -1;
        CHECK(npipe_raw_handle(pipe, &raw) == NPIPE_OK);
        CHECK(raw == sv[0]);
        Poller poll;
        REQUIRE(npipe_register(poll, pipe, 3, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(raw_send_all(sv[1], "adopted", 7));
        CHECK(read_exactly(poll, pipe, 7) == "adopted");
        CHECK(write_all(poll, pipe, "back") == 4);
        CHECK(raw_recv_exactly(sv[1], 4) == "back");
        npipe_info_t info;
        info.size = sizeof info;
        REQUIRE(npipe_get_info(pipe, &info) == NPIPE_OK);
        CHECK(info.peer_pid == static_cast<uint64_t>(getpid()));
        CHECK((info.flags & NPIPE_INFO_CONNECTED) != 0);
        pipe.reset();
        CHECK(fcntl(sv[0], F_GETFD) == -1);  // the library owned and closed it
        CHECK(raw_wait_eof(sv[1]));
        close(sv[1]);

        int fds[2];
        REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
        CHECK(npipe_from_raw_handle(fds[0], 0, &h) == NPIPE_EINVAL);
        CHECK(fcntl(fds[0], F_GETFD) != -1);  // on failure the caller keeps it
        close(fds[0]);
        close(fds[1]);
        const int udp = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(npipe_from_raw_handle(udp, 0, &h) == NPIPE_EINVAL);
        close(udp);
        const int unconnected = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(npipe_from_raw_handle(unconnected, 0, &h) == NPIPE_EINVAL);
        close(unconnected);
        CHECK(npipe_from_raw_handle(-1, 0, &h) == NPIPE_EINVAL);
        CHECK(npipe_from_raw_handle(1 << 30, 0, &h) == NPIPE_EINVAL);
    }

    TEST_CASE("every fd the library creates is CLOEXEC") {
        auto open_fds = [] {
            std::vector<int> fds;
            DIR *d = opendir("/proc/self/fd");
            REQUIRE(d != nullptr);
            const int self = dirfd(d);
            while (dirent *e = readdir(d)) {
                if (e->d_name[0] == '.') continue;
                const int fd = std::atoi(e->d_name);
                if (fd != self) fds.push_back(fd);
            }
            closedir(d);
            return fds;
        };
        const std::vector<int> before = open_fds();
        const std::string name = unique_name("cloexec");
        Poller poll;                            // epoll fd + eventfd
        PipeGuard server(create_server(name));  // listening socket
        PipeGuard client;
        accept_one(poll, server, [&] { client.reset(open_client(name)); });  // dup, both ends
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE) == NPIPE_OK);
        size_t created = 0;
        for (int fd : open_fds()) {
            if (std::find(before.begin(), before.end(), fd) != before.end()) continue;
            ++created;
            INFO("fd ", fd);
            CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        }
        CHECK(created >= 6);
    }

    TEST_CASE("no fd leaks: many create/open/connect/transfer/close cycles, lingering closes, poll closes") {
        const size_t before = count_open_fds();
        for (int round = 0; round < 40; ++round) {
            const std::string name = unique_name("leak");
            Poller poll;
            PipeGuard server(create_server(name));
            PipeGuard client;
            accept_one(poll, server, [&] { client.reset(open_client(name)); });
            REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            CHECK(write_all(poll, client, "data") == 4);
            CHECK(read_exactly(poll, server, 4) == "data");
            if (round % 4 == 1) {
                // Leave bytes in the write buffer and close: they linger until the poll closes.
                const std::string big(1 << 20, 'x');
                while (npipe_write(server, big.data(), big.size()) > 0) {}
                server.reset();
            } else if (round % 4 == 2) {
                CHECK(npipe_disconnect(server) == NPIPE_OK);
            } else if (round % 4 == 3) {
                npipe_poll_close(poll.h);  // the pipes' fds go with it
                poll.h = 0;
            }
        }
        CHECK(count_open_fds() == before);
    }

    // A client waiting for a name nobody serves yet watches the socket's directory (inotify): one
    // descriptor per directory and poll, however many clients wait, closed with the poll; the
    // servers that come are found (the speed is bench open's to report, not a test's).
    TEST_CASE("clients waiting for absent names share one directory watch per poll, closed with the poll") {
        const size_t before = count_open_fds();
        constexpr int kClients = 8;
        std::vector<std::string> names;
        std::vector<PipeGuard> clients(kClients), servers(kClients);
        {
            Poller poll;
            const size_t with_poll = count_open_fds();
            for (int i = 0; i < kClients; ++i) {
                names.push_back(unique_name("watched"));
                npipe_client_options_t opts;
                npipe_client_options_init(&opts);
                opts.flags = NPIPE_NONBLOCK_OPEN;
                opts.timeout_ms = kWaitMs;
                npipe_t h = 0;
                REQUIRE(npipe_open(names.back().c_str(), &opts, &h) == NPIPE_OK);
                clients[i].reset(h);
                // The first attempt runs at registration and finds nobody.
                REQUIRE(npipe_register(poll, h, 100 + i, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            }
            CHECK(count_open_fds() == with_poll + 1);  // one inotify descriptor for all eight
            for (int i = 0; i < kClients; ++i) servers[i].reset(create_server(names[i]));
            for (int i = 0; i < kClients; ++i) {
                CHECK((poll.expect(100 + i, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
                CHECK(npipe_take_error(clients[i]) == NPIPE_OK);
            }
            // Connected: each client holds its socket, each server its name's. The watch's
            // descriptor stays with the poll (closing one costs milliseconds), watching nothing.
            CHECK(count_open_fds() == with_poll + 1 + 2 * kClients);
            for (auto &c : clients) c.reset();
        }
        for (auto &s : servers) s.reset();
        CHECK(count_open_fds() == before);
    }

    TEST_CASE("npipe_open (blocking) finds a server that comes while it waits, plain and current-user-only") {
        for (const uint32_t flags : {0u, static_cast<uint32_t>(NPIPE_CURRENT_USER_ONLY)}) {
            const std::string name = unique_name("late-blocking");
            const size_t before = count_open_fds();
            std::atomic<npipe_t> opened{0};
            std::atomic<int32_t> rc{1};
            std::thread client([&] {
                npipe_client_options_t opts;
                npipe_client_options_init(&opts);
                opts.flags = flags;
                opts.timeout_ms = kWaitMs;
                npipe_t h = 0;
                rc = npipe_open(name.c_str(), &opts, &h);
                opened = h;
            });
            // The client may or may not have tried yet: found either way.
            PipeGuard server(create_server(name, flags));
            client.join();
            CHECK(rc.load() == NPIPE_OK);
            PipeGuard guard(opened.load());
            guard.reset();
            server.reset();
            CHECK(count_open_fds() == before);  // the thread's directory watch went with the thread
        }
    }

    TEST_CASE("closing the poll releases the pipes' fds at once; their calls say NPIPE_ECANCELED") {
        const std::string name = unique_name("pclose");
        const size_t before = count_open_fds();
        PipeGuard server(create_server(name));
        PipeGuard client;
        {
            Poller poll;
            accept_one(poll, server, [&] { client.reset(open_client(name)); });
            REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE) == NPIPE_OK);
        }
        // The client handle is still open but both sockets, the dup and the epoll set are gone;
        // only the listening socket (owned by the name) stays until the server closes.
        CHECK(count_open_fds() <= before);
        char buf[4];
        CHECK(npipe_read(client, buf, sizeof buf) == NPIPE_ECANCELED);
        CHECK(npipe_write(server, "x", 1) == NPIPE_ECANCELED);
        npipe_info_t info;
        info.size = sizeof info;
        CHECK(npipe_get_info(server, &info) == NPIPE_OK);
        CHECK((info.flags & NPIPE_INFO_CONNECTED) == 0);
    }

    TEST_CASE("SIGPIPE is never raised: writes, flushes and lingering closes after the peer left") {
        struct sigaction sa {
        }, old{};
        sa.sa_handler = on_sigpipe;
        sigemptyset(&sa.sa_mask);
        REQUIRE(sigaction(SIGPIPE, &sa, &old) == 0);
        g_sigpipes = 0;
        {
            const std::string name = unique_name("sigpipe");
            Poller poll;
            PipeGuard server(create_server(name));
            PipeGuard client;
            accept_one(poll, server, [&] { client.reset(open_client(name)); });
            REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            const std::string big(1 << 20, 'y');
            while (npipe_write(client, big.data(), big.size()) > 0) {}
            server.reset();  // the reader leaves with the client's buffer full
            poll.pump_until([&] { return npipe_write(client, "z", 1) == NPIPE_EPIPE; });
            CHECK(npipe_write(client, "z", 1) == NPIPE_EPIPE);
            CHECK(npipe_flush(client) == NPIPE_EPIPE);
            CHECK(npipe_take_error(client) == NPIPE_EPIPE);  // accepted bytes were lost: said once
            CHECK(npipe_take_error(client) == NPIPE_OK);
        }
        {
            // A raw peer that shut its reading side: the write fails with EPIPE, no signal.
            int sv[2];
            REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
            npipe_t h = 0;
            REQUIRE(npipe_from_raw_handle(sv[0], 0, &h) == NPIPE_OK);
            PipeGuard pipe(h);
            Poller poll;
            REQUIRE(npipe_register(poll, pipe, 1, NPIPE_WRITABLE) == NPIPE_OK);
            close(sv[1]);
            CHECK(npipe_write(pipe, "x", 1) == NPIPE_EPIPE);
        }
        CHECK(g_sigpipes.load() == 0);
        sigaction(SIGPIPE, &old, nullptr);
    }

    TEST_CASE("npipe_open: absent name fails at once with timeout 0, times out otherwise") {
        const std::string name = unique_name("absent");
        npipe_t c = 0;
        CHECK(open_with(name, 0, 0, c) == NPIPE_ENOENT);
        const auto start = std::chrono::steady_clock::now();
        CHECK(open_with(name, 0, 200, c) == NPIPE_ETIMEDOUT);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        CHECK(ms.count() >= 190);
        CHECK(ms.count() < 2000);
        CHECK(c == 0);
    }

    TEST_CASE("one-way ends: the wrong direction is NPIPE_EACCES and the peer sees the shutdown") {
        const std::string name = unique_name("dir");
        Poller poll;
        PipeGuard server(create_server(name, NPIPE_INBOUND_ONLY));
        PipeGuard client;
        accept_one(poll, server, [&] { client.reset(open_client(name, NPIPE_OUTBOUND_ONLY)); });
        REQUIRE(npipe_register(poll, client, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        char buf[8];
        CHECK(npipe_write(server, "x", 1) == NPIPE_EACCES);
        CHECK(npipe_read(client, buf, sizeof buf) == NPIPE_EACCES);
        CHECK(write_all(poll, client, "one-way") == 7);
        CHECK(read_exactly(poll, server, 7) == "one-way");
    }

    TEST_CASE("npipe_open: NPIPE_EBUSY once the listen backlog is full, not before") {
        const std::string name = unique_name("backlog");
        PipeGuard server(create_server(name));  // never accepts
        std::vector<npipe_t> clients;
        int32_t rc = NPIPE_OK;
        while (clients.size() < 1000) {
            npipe_t c = 0;
            rc = open_with(name, 0, 0, c);
            if (rc != NPIPE_OK) break;
            clients.push_back(c);
        }
        CHECK(rc == NPIPE_EBUSY);
        CHECK(clients.size() >= 16);  // the kernel queued a reasonable number first
        npipe_t c = 0;
        CHECK(open_with(name, 0, 100, c) == NPIPE_ETIMEDOUT);  // busy the whole time
        for (npipe_t h : clients) npipe_close(h);
    }

    TEST_CASE("instances on different polls share the listener: each connecting one gets a client") {
        const std::string name = unique_name("polls");
        Poller pa, pb;
        PipeGuard a(create_server(name));
        PipeGuard b(create_server(name));
        // b asks to connect before it is registered: its wait starts at registration.
        CHECK(npipe_connect(b) == NPIPE_EAGAIN);
        REQUIRE(npipe_register(pa, a, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(npipe_connect(a) == NPIPE_EAGAIN);
        PipeGuard c1(open_client(name));
        PipeGuard c2(open_client(name));  // queued: nobody else is connecting yet
        CHECK((pa.wait_for(1, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
        REQUIRE(npipe_register(pb, b, 2, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
        CHECK((pb.wait_for(2, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
        CHECK(npipe_connect(a) == NPIPE_OK);
        CHECK(npipe_connect(b) == NPIPE_OK);
        CHECK(npipe_take_error(b) == NPIPE_OK);
        // Each client talks to exactly one instance.
        Poller pc;
        REQUIRE(npipe_register(pc, c1, 11, NPIPE_WRITABLE) == NPIPE_OK);
        REQUIRE(npipe_register(pc, c2, 12, NPIPE_WRITABLE) == NPIPE_OK);
        CHECK(npipe_write(c1, "one", 3) == 3);
        CHECK(npipe_write(c2, "two", 3) == 3);
        CHECK(read_exactly(pa, a, 3) == "one");
        CHECK(read_exactly(pb, b, 3) == "two");
    }
}

TEST_SUITE("posix_only") {
    TEST_CASE("peer identity across users (needs root): a client and a server of another uid") {
        if (geteuid() != 0) {
            MESSAGE("skipped: needs root to act as another user");
            return;
        }
        {
            // An npipe server; the client is a raw socket of uid/gid 65534 in a child process.
            const std::string name = unique_name("peeruid");
            const std::string path = resolve(name);
            PipeGuard server(create_with(name, 0));
            REQUIRE(server != 0);
            REQUIRE(chmod(path.c_str(), 0666) == 0);  // let the other user connect
            Poller poll;
            REQUIRE(npipe_register(poll, server, 1, NPIPE_READABLE | NPIPE_WRITABLE) == NPIPE_OK);
            REQUIRE(npipe_connect(server) == NPIPE_EAGAIN);
            Child child([&] { return socket_as_nobody(path, false) >= 0; });  // stays connected until the end
            REQUIRE(child.ready());
            REQUIRE((poll.wait_for(1, NPIPE_CONNECTED) & NPIPE_CONNECTED) != 0);
            REQUIRE(npipe_take_error(server) == NPIPE_OK);
            check_peer_is_nobody(server, child.pid);
        }
        // A raw server of uid/gid 65534: an npipe client learns who listens.
        const std::string other = "/tmp/npipe-peer-" + std::to_string(getpid()) + ".sock";
        Child child([&] { return socket_as_nobody(other, true) >= 0; });
        REQUIRE(child.ready());
        npipe_t c = 0;
        REQUIRE(open_with(other, 0, kWaitMs, c) == NPIPE_OK);
        PipeGuard client(c);
        check_peer_is_nobody(client, child.pid);
        unlink(other.c_str());
    }

    TEST_CASE("drain: a peer that closes with bytes unread resets the connection (EPIPE); one that read all does not") {
        {
            Poller poll;
            Pair p;
            make_pair(poll, p);
            REQUIRE(write_all(poll, p.server, "unread") == 6);
            CHECK(npipe_drain(p.server) == NPIPE_EAGAIN);  // in the client's socket, not read
            p.client.reset();
            CHECK(retry_while_eagain(poll, [&] { return npipe_drain(p.server); }) == NPIPE_EPIPE);
            CHECK(contains(npipe_last_error_message(), "without reading everything"));
        }
        {
            // The reset reaches a read of the server first: drain still knows.
            Poller poll;
            Pair p;
            make_pair(poll, p);
            REQUIRE(write_all(poll, p.server, "unread") == 6);
            p.client.reset();
            int64_t last = 1;
            CHECK(read_to_end(poll, p.server, &last).empty());
            CHECK(last == 0);
            CHECK(npipe_drain(p.server) == NPIPE_EPIPE);
        }
        {
            Poller poll;
            Pair p;
            make_pair(poll, p);
            REQUIRE(write_all(poll, p.server, "read it") == 7);
            REQUIRE(read_exactly(poll, p.client, 7) == "read it");
            p.client.reset();
            CHECK((poll.wait_for(1, NPIPE_WRITE_CLOSED) & NPIPE_WRITE_CLOSED) != 0);
            CHECK(npipe_drain(p.server) == NPIPE_OK);  // the peer is gone, but it had read everything
        }
    }
}
