// The listening socket behind a pipe name (the header's "Linux" notes on instances). All server instances of one
// name in this process share one listening AF_UNIX socket; a process-wide registry keyed by the
// socket path hands it out and counts the instances (max_instances counts this process's ones).
//
// Creating the socket file:
//   - bind(path); if the path is taken, look at what is there: a non-socket is never touched
//     (NPIPE_EEXIST), a socket file that a listening socket is bound to (the kernel's socket
//     table, asked through sock_diag: nothing connects to it) is a live server (NPIPE_EEXIST),
//     any other socket file is stale and is unlinked and replaced;
//   - NPIPE_CURRENT_USER_ONLY: bind inside a fresh mkdtemp (0700) directory next to the target,
//     chmod 0600 and listen there, then link() the socket into place (which, unlike rename(),
//     cannot clobber a file that appeared meanwhile) and remove the private name. The socket is
//     never reachable with a mode wider than 0600.
// The last instance's release removes the socket file, but only if the path still names the
// inode we created, and closes the listening socket.
#pragma once
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "lib/core/types.hpp"

namespace npipe::posix {

// sockaddr_un for `path`; NPIPE_ENAMETOOLONG if it does not fit sun_path.
int32_t make_address(const std::string &path, sockaddr_un &addr, socklen_t &len);

// SO_PEERCRED of a connected socket: the peer's pid (0 if unknown), uid and gid ((uid_t)-1 and
// (gid_t)-1 if unknown, with errno telling why).
struct PeerCred {
    uint64_t pid = 0;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
};
PeerCred peer_cred(int fd);

class ListeningSocket {
public:
    // Registers one more instance of `path`, creating the listening socket for the first one.
    static int32_t acquire(const std::string &path, const ServerConfig &config, std::shared_ptr<ListeningSocket> &out);
    // One instance is gone; the last one removes the socket file and closes the socket.
    void release();

    int fd() const { return fd_; }
    const std::string &path() const { return path_; }

    // A client accepted for no instance: the poll's watch that accepted it found only instances
    // that had stopped waiting. It belongs to the name, not to that poll: the next instance to
    // wait, on any poll, takes it (socket_watch.hpp).
    void keep_unclaimed(int fd);
    // The oldest unclaimed client, or -1.
    int take_unclaimed();
    bool has_unclaimed();

    ListeningSocket(int fd, std::string path, dev_t dev, ino_t ino, uint32_t max_instances)
        : fd_(fd), path_(std::move(path)), dev_(dev), ino_(ino), max_instances_(max_instances) {}
    ~ListeningSocket();

private:
    int fd_;
    std::string path_;
    dev_t dev_;
    ino_t ino_;
    uint32_t max_instances_;
    uint32_t instances_ = 0;  // guarded by the registry's mutex
    std::mutex unclaimed_mu_;
    std::deque<int> unclaimed_;  // closed with the socket: no instance is left to take them
};

}  // namespace npipe::posix
