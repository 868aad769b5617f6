// Waiting for a server's name to appear without polling the file system: inotify on the socket's
// directory. A client whose open found nobody listening (ENOENT, ECONNREFUSED) tries again as
// soon as a file of that name is created or moved into place (npipe_create binds the socket;
// NPIPE_CURRENT_USER_ONLY links it in from a private directory), instead of at the next step of
// the 1..50 ms backoff. The backoff stays as the fallback: a socket bound but not listening yet,
// a directory that cannot be watched, or an inotify limit reached only make the open slower, never
// wrong.
//   - DirectoryWatch: one inotify descriptor watching one directory, for the blocking open on the
//     caller's thread (it waits in poll(2) on the descriptor instead of sleeping).
//   - NameWatch: the same, once per (directory, poll) in the poll's epoll set, for every client
//     on that poll that waits for a name in the directory (NPIPE_NONBLOCK_OPEN): one descriptor
//     and one epoll entry however many clients wait. Like SocketWatch it never holds its lock
//     while it calls a client (a client calls the watch with its own lock held).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "lib/posix/epoll_poll.hpp"

namespace npipe::posix {

class UnixPipe;

class DirectoryWatch {
public:
    DirectoryWatch() = default;
    ~DirectoryWatch() { reset(); }
    DirectoryWatch(const DirectoryWatch &) = delete;
    DirectoryWatch &operator=(const DirectoryWatch &) = delete;

    // Starts watching `dir` for files created or moved in; false when it cannot (the errno is
    // left for the caller to ignore: the watch is an optimisation).
    bool watch(const std::string &dir);
    bool active() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    // Reads what the kernel reported so far: the names created or moved in go to `appeared`;
    // true if events were lost (the queue overflowed), so any name may have appeared.
    bool read_events(std::vector<std::string> &appeared);
    // Blocks for at most `ms` until a file called `name` appears in the directory.
    void wait_for(const std::string &name, int32_t ms);
    void reset();

private:
    int fd_ = -1;
};

class NameWatch final : public EpollSource, public std::enable_shared_from_this<NameWatch> {
public:
    // The watch of `dir` on `poll`, made (and joined to the epoll set) for the first client; a
    // failure is for the caller to ignore (it falls back to its backoff).
    static bool of(const std::string &dir, const std::shared_ptr<EpollPoll> &poll, std::shared_ptr<NameWatch> &out);
    NameWatch(std::string dir, std::shared_ptr<EpollPoll> poll) : dir_(std::move(dir)), poll_(std::move(poll)) {}
    ~NameWatch() override;

    // `client` waits for the file `name` of the directory (once in the list, however often it asks).
    void enqueue(const std::string &name, const std::shared_ptr<UnixPipe> &client);

    // EpollSource: the inotify descriptor is readable.
    void on_os_event(uint32_t tag, uint32_t events) override;

private:
    const std::string dir_;
    std::shared_ptr<EpollPoll> poll_;
    DirectoryWatch inotify_;
    uint32_t source_id_ = 0;
    std::mutex mu_;
    std::vector<std::pair<std::string, std::weak_ptr<UnixPipe>>> waiting_;
};

}  // namespace npipe::posix
