// The baseline for `npipe bench`: the same transfers through plain blocking OS calls, one thread
// per connection end. Windows: CreateNamedPipeW / ConnectNamedPipe / CreateFileW with blocking
// ReadFile / WriteFile. Linux: an AF_UNIX stream socket with blocking read / write.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace tool::raw {

class Conn {
public:
    Conn() = default;
    explicit Conn(intptr_t h) : h_(h) {}
    Conn(Conn &&o) noexcept : h_(o.h_) { o.h_ = -1; }
    Conn &operator=(Conn &&o) noexcept;
    Conn(const Conn &) = delete;
    Conn &operator=(const Conn &) = delete;
    ~Conn() { close(); }
    bool valid() const { return h_ != -1; }
    // > 0 bytes, 0 at EOF, < 0 on failure.
    int64_t read_some(void *buf, size_t len);
    bool read_exact(void *buf, size_t len);
    bool write_all(const void *buf, size_t len);
    void close();

private:
    intptr_t h_ = -1;
};

class Server {
public:
    // Linux: binds and listens on a socket path; Windows: remembers the pipe name.
    bool listen(const std::string &name);
    // Blocks until a client connects (Windows: creates a fresh instance and waits on it).
    Conn accept();
    ~Server();

private:
    std::string name_;
    intptr_t fd_ = -1;
};

// A name for a raw endpoint of this process (socket path or \\.\pipe\ name).
std::string endpoint_name(const std::string &tag);
// Connects, retrying a busy or absent server for up to timeout_ms.
Conn connect(const std::string &name, int timeout_ms);
// The last OS error as text.
std::string last_error();

}  // namespace tool::raw
