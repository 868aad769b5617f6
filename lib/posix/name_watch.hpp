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
// Closing an inotify descriptor that ever watched something costs the closer 5-20 ms in the
// kernel (fsnotify waits for an SRCU grace period), and a client must not pay that between its
// connect and NPIPE_CONNECTED. So a descriptor is not closed when a wait ends, only its watch is
// removed (inotify_rm_watch is cheap, and no event wakes anyone meanwhile): a poll's NameWatch
// lives until the poll closes, a thread's DirectoryWatch until the thread exits.
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
    ~DirectoryWatch();
    DirectoryWatch(const DirectoryWatch &) = delete;
    DirectoryWatch &operator=(const DirectoryWatch &) = delete;

    // Watches `dir` for files created or moved in (making the descriptor if there is none yet);
    // false when it cannot: the caller falls back to its clock, so no error is reported.
    bool watch(const std::string &dir);
    // Stops watching and forgets what was reported; the descriptor stays for the next watch.
    void unwatch();
    bool watching() const { return wd_ >= 0; }
    int fd() const { return fd_; }
    // Reads what the kernel reported so far: the names created or moved in go to `appeared`;
    // true if events were lost (the queue overflowed), so any name may have appeared.
    bool read_events(std::vector<std::string> &appeared);
    // Blocks for at most `ms` until a file called `name` appears in the directory.
    void wait_for(const std::string &name, int32_t ms);

private:
    int fd_ = -1;
    int wd_ = -1;
};

// The calling thread's watch, for its blocking opens (kept until the thread exits).
DirectoryWatch &thread_directory_watch();

class NameWatch final : public EpollSource, public std::enable_shared_from_this<NameWatch> {
public:
    // The watch of `dir` on `poll`, made (and joined to the epoll set) for the first client and
    // kept until the poll closes; a failure is for the caller to ignore (it falls back to its
    // backoff).
    static bool of(const std::string &dir, const std::shared_ptr<EpollPoll> &poll, std::shared_ptr<NameWatch> &out);
    // The poll is closing: its watches go (EpollPoll::on_close).
    static void release_poll(const EpollPoll *poll);
    NameWatch(std::string dir, std::shared_ptr<EpollPoll> poll) : dir_(std::move(dir)), poll_(std::move(poll)) {}
    ~NameWatch() override;

    // `client` waits for the file `name` of the directory (once in the list, however often it
    // asks); false if the directory cannot be watched.
    bool enqueue(const std::string &name, const std::shared_ptr<UnixPipe> &client);
    // `client` waits no more (connected, failed or closed).
    void forget(const UnixPipe *client);

    // EpollSource: the inotify descriptor is readable.
    void on_os_event(uint32_t tag, uint32_t events) override;

private:
    void unwatch_if_unused();  // mu_ held

    const std::string dir_;
    std::shared_ptr<EpollPoll> poll_;
    uint32_t source_id_ = 0;
    std::mutex mu_;           // guards inotify_'s watch and waiting_
    DirectoryWatch inotify_;  // watching only while a client waits
    std::vector<std::pair<std::string, std::weak_ptr<UnixPipe>>> waiting_;
};

}  // namespace npipe::posix
