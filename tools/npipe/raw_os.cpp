#include "raw_os.hpp"

#include <chrono>
#include <thread>

#include "common.hpp"

#if defined(_WIN32)
#include <windows.h>
#else
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

namespace tool::raw {

Conn &Conn::operator=(Conn &&o) noexcept {
    if (this != &o) {
        close();
        h_ = o.h_;
        o.h_ = -1;
    }
    return *this;
}

bool Conn::read_exact(void *buf, size_t len) {
    auto *p = static_cast<char *>(buf);
    while (len > 0) {
        int64_t n = read_some(p, len);
        if (n <= 0) return false;
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

#if defined(_WIN32)

namespace {
std::wstring widen(const std::string &s) {
    int n = MultiByteToWideChar(CP_UTF8, 0, s.c_str(), -1, nullptr, 0);
    std::wstring w(static_cast<size_t>(n > 0 ? n : 1), L'\0');
    MultiByteToWideChar(CP_UTF8, 0, s.c_str(), -1, w.data(), n);
    w.resize(w.size() - 1);
    return w;
}
HANDLE H(intptr_t h) { return reinterpret_cast<HANDLE>(h); }
}  // namespace

int64_t Conn::read_some(void *buf, size_t len) {
    DWORD n = 0;
    DWORD want = len > (1u << 30) ? (1u << 30) : static_cast<DWORD>(len);
    if (!ReadFile(H(h_), buf, want, &n, nullptr)) {
        DWORD e = GetLastError();
        if (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED) return 0;
        return -1;
    }
    return n;
}

bool Conn::write_all(const void *buf, size_t len) {
    const char *p = static_cast<const char *>(buf);
    while (len > 0) {
        DWORD n = 0;
        DWORD want = len > (1u << 30) ? (1u << 30) : static_cast<DWORD>(len);
        if (!WriteFile(H(h_), p, want, &n, nullptr)) return false;
        p += n;
        len -= n;
    }
    return true;
}

void Conn::close() {
    if (h_ != -1) CloseHandle(H(h_));
    h_ = -1;
}

bool Server::listen(const std::string &name) {
    name_ = name;
    return true;
}

Conn Server::accept() {
    std::wstring w = widen(name_);
    HANDLE h = CreateNamedPipeW(w.c_str(), PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                                PIPE_UNLIMITED_INSTANCES, 64 * 1024, 64 * 1024, 0, nullptr);
    if (h == INVALID_HANDLE_VALUE) return Conn{};
    if (!ConnectNamedPipe(h, nullptr) && GetLastError() != ERROR_PIPE_CONNECTED) {
        CloseHandle(h);
        return Conn{};
    }
    return Conn{reinterpret_cast<intptr_t>(h)};
}

Server::~Server() = default;

std::string endpoint_name(const std::string &tag) { return "\\\\.\\pipe\\" + unique_name("npipe-raw-" + tag); }

Conn connect(const std::string &name, int timeout_ms) {
    std::wstring w = widen(name);
    double deadline = now_seconds() + timeout_ms / 1000.0;
    for (;;) {
        HANDLE h = CreateFileW(w.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING, 0, nullptr);
        if (h != INVALID_HANDLE_VALUE) return Conn{reinterpret_cast<intptr_t>(h)};
        DWORD e = GetLastError();
        if (now_seconds() > deadline || (e != ERROR_PIPE_BUSY && e != ERROR_FILE_NOT_FOUND)) return Conn{};
        if (e == ERROR_PIPE_BUSY) WaitNamedPipeW(w.c_str(), 50);
        else Sleep(1);
    }
}

std::string last_error() { return "Windows error " + std::to_string(GetLastError()); }

#else

int64_t Conn::read_some(void *buf, size_t len) {
    for (;;) {
        ssize_t n = ::read(static_cast<int>(h_), buf, len);
        if (n < 0 && errno == EINTR) continue;
        return n;
    }
}

bool Conn::write_all(const void *buf, size_t len) {
    const char *p = static_cast<const char *>(buf);
    while (len > 0) {
        ssize_t n = ::send(static_cast<int>(h_), p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

void Conn::close() {
    if (h_ != -1) ::close(static_cast<int>(h_));
    h_ = -1;
}

namespace {
bool make_addr(const std::string &path, sockaddr_un &addr) {
    std::memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return true;
}
}  // namespace

bool Server::listen(const std::string &name) {
    name_ = name;
    sockaddr_un addr;
    if (!make_addr(name, addr)) return false;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ::unlink(name.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0 || ::listen(fd, 256) < 0) {
        ::close(fd);
        return false;
    }
    fd_ = fd;
    return true;
}

Conn Server::accept() {
    for (;;) {
        int c = ::accept4(static_cast<int>(fd_), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0 && errno == EINTR) continue;
        return c < 0 ? Conn{} : Conn{c};
    }
}

Server::~Server() {
    if (fd_ != -1) {
        ::close(static_cast<int>(fd_));
        ::unlink(name_.c_str());
    }
}

std::string endpoint_name(const std::string &tag) {
    const char *dir = std::getenv("TMPDIR");
    std::string d = dir && *dir ? dir : "/tmp";
    if (d.back() != '/') d += '/';
    return d + unique_name("npipe-raw-" + tag) + ".sock";
}

Conn connect(const std::string &name, int timeout_ms) {
    sockaddr_un addr;
    if (!make_addr(name, addr)) return Conn{};
    double deadline = now_seconds() + timeout_ms / 1000.0;
    for (;;) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return Conn{};
        if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) return Conn{fd};
        int e = errno;
        ::close(fd);
        if (now_seconds() > deadline || (e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != EINTR)) return Conn{};
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

std::string last_error() { return std::strerror(errno); }

#endif

}  // namespace tool::raw
