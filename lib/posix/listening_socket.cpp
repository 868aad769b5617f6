#include "lib/posix/listening_socket.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/posix/errno_map.hpp"

namespace npipe::posix {
namespace {

constexpr int kListenBacklog = 128;  // clients beyond this get NPIPE_EBUSY from npipe_open

std::mutex &registry_mutex() {
    static std::mutex mu;
    return mu;
}

std::map<std::string, std::shared_ptr<ListeningSocket>> &registry() {
    static std::map<std::string, std::shared_ptr<ListeningSocket>> listeners;
    return listeners;
}

// Whether a listening AF_UNIX socket is bound to the file `sb` describes, asked of the kernel's
// socket table through sock_diag: a listening socket reports the inode of the file it is bound to
// (also when the file was link()ed into place, as NPIPE_CURRENT_USER_ONLY does). Never connects:
// a probe connection would be a phantom client to a live server. `known` is false when the
// kernel cannot be asked (no sock_diag for AF_UNIX).
bool listening_on(const struct stat &sb, bool &known) {
    known = false;
    const int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return false;
    struct {
        nlmsghdr header;
        unix_diag_req request;
    } query{};
    query.header.nlmsg_len = sizeof query;
    query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    query.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    query.request.sdiag_family = AF_UNIX;
    query.request.udiag_states = 1u << 10;  // TCP_LISTEN: listening sockets only
    query.request.udiag_show = UDIAG_SHOW_VFS;
    if (send(nl, &query, sizeof query, 0) != static_cast<ssize_t>(sizeof query)) {
        close(nl);
        return false;
    }
    bool found = false;
    alignas(nlmsghdr) char buffer[16384];
    for (bool done = false; !done;) {
        const ssize_t n = recv(nl, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        // NLMSG_OK / NLMSG_NEXT written out: the macros compare signed with unsigned.
        size_t left = static_cast<size_t>(n);
        for (auto *h = reinterpret_cast<nlmsghdr *>(buffer);
             left >= sizeof(nlmsghdr) && h->nlmsg_len >= sizeof(nlmsghdr) && h->nlmsg_len <= left;
             left -= std::min<size_t>(left, NLMSG_ALIGN(h->nlmsg_len)),
                  h = reinterpret_cast<nlmsghdr *>(reinterpret_cast<char *>(h) + NLMSG_ALIGN(h->nlmsg_len))) {
            if (h->nlmsg_type == NLMSG_DONE) {
                known = true;
                done = true;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                done = true;
                break;
            }
            auto *msg = static_cast<unix_diag_msg *>(NLMSG_DATA(h));
            int attr_left = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *msg));
            for (auto *a = reinterpret_cast<rtattr *>(msg + 1); RTA_OK(a, attr_left); a = RTA_NEXT(a, attr_left)) {
                if (a->rta_type != UNIX_DIAG_VFS) continue;
                const auto *vfs = static_cast<const unix_diag_vfs *>(RTA_DATA(a));
                // The device is in the kernel's own encoding; the inode number identifies the file.
                if (vfs->udiag_vfs_ino == static_cast<uint32_t>(sb.st_ino)) found = true;
            }
        }
    }
    close(nl);
    return found;
}

// bind() found `path` taken. Returns st::ok when the path is free again (a stale socket was
// removed, or the file vanished); fails when something live or foreign is there.
int32_t clear_stale(const std::string &path) {
    struct stat sb;
    if (lstat(path.c_str(), &sb) < 0) {
        if (errno == ENOENT) return st::ok;
        return fail_errno(errno, "lstat of the socket path");
    }
    if (!S_ISSOCK(sb.st_mode))
        return failf(st::exist, 0, "%s exists and is not a socket; it is left alone", path.c_str());
    bool known = false;
    if (listening_on(sb, known))
        return failf(st::exist, 0, "a live server (another process or socket) is listening on %s", path.c_str());
    if (!known)
        return failf(
            st::exist, 0,
            "%s exists and the kernel cannot tell whether a server listens on it (no sock_diag); it is left alone",
            path.c_str());
    // Nobody listens: a leftover of a crashed server. Replace it.
    if (unlink(path.c_str()) < 0 && errno != ENOENT) {
        if (errno == EACCES || errno == EPERM)
            return failf(st::acces, static_cast<uint32_t>(errno), "%s is a stale socket this user may not remove",
                         path.c_str());
        return fail_errno(errno, "unlink of a stale socket file");
    }
    return st::ok;
}

int32_t bind_failure(int err, const std::string &path) {
    if (err == ENOENT)
        return failf(st::noent, static_cast<uint32_t>(err), "the directory of %s does not exist", path.c_str());
    return fail_errno(err, "bind of the pipe's socket path");
}

// Plain creation: bind at the path, replacing a stale socket file.
int32_t bind_plain(int fd, const std::string &path) {
    sockaddr_un addr;
    socklen_t len;
    int32_t rc = make_address(path, addr, len);
    if (rc < 0) return rc;
    for (int attempt = 0; attempt < 8; ++attempt) {
        if (bind(fd, reinterpret_cast<const sockaddr *>(&addr), len) == 0) {
            if (listen(fd, kListenBacklog) < 0) {
                const int err = errno;
                unlink(path.c_str());
                return fail_errno(err, "listen");
            }
            return st::ok;
        }
        const int err = errno;
        if (err != EADDRINUSE) return bind_failure(err, path);
        rc = clear_stale(path);
        if (rc < 0) return rc;
    }
    return failf(st::exist, 0, "%s keeps being re-created by someone else", path.c_str());
}

// NPIPE_CURRENT_USER_ONLY: bind and chmod 0600 in a private 0700 directory, listen, then link the
// socket into place. The socket is never reachable under a wider mode.
int32_t bind_private(int fd, const std::string &path) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == 0 || slash == std::string::npos ? std::string("/") : path.substr(0, slash);
    std::string tmpdir = (dir == "/" ? std::string() : dir) + "/.npipe-XXXXXX";
    const std::string leaf = "/s";
    sockaddr_un addr;
    socklen_t len;
    int32_t rc = make_address(tmpdir + leaf, addr, len);
    if (rc < 0)
        return failf(st::nametoolong, 0, "the private socket path %s%s (NPIPE_CURRENT_USER_ONLY) is too long",
                     tmpdir.c_str(), leaf.c_str());
    if (!mkdtemp(tmpdir.data())) {
        if (errno == ENOENT) return bind_failure(ENOENT, path);
        return fail_errno(errno, "mkdtemp of the private socket directory");
    }
    const std::string tmp = tmpdir + leaf;
    make_address(tmp, addr, len);
    rc = st::ok;
    if (bind(fd, reinterpret_cast<const sockaddr *>(&addr), len) < 0) {
        rc = fail_errno(errno, "bind in the private socket directory");
    } else if (chmod(tmp.c_str(), 0600) < 0) {
        rc = fail_errno(errno, "chmod 0600 of the socket");
    } else if (listen(fd, kListenBacklog) < 0) {
        rc = fail_errno(errno, "listen");
    } else {
        rc = failf(st::exist, 0, "%s keeps being re-created by someone else", path.c_str());
        for (int attempt = 0; attempt < 8; ++attempt) {
            if (link(tmp.c_str(), path.c_str()) == 0) {
                rc = st::ok;
                break;
            }
            const int err = errno;
            if (err == EEXIST) {
                rc = clear_stale(path);
                if (rc < 0) break;
                continue;
            }
            if (err == EPERM || err == EOPNOTSUPP || err == EXDEV) {
                // No hard links here: check, then rename (only a racing creator can be clobbered).
                rc = clear_stale(path);
                if (rc < 0) break;
                struct stat sb;
                if (lstat(path.c_str(), &sb) == 0) continue;
                rc = rename(tmp.c_str(), path.c_str()) == 0 ? st::ok
                                                            : fail_errno(errno, "rename of the socket into place");
                break;
            }
            rc = bind_failure(err, path);
            break;
        }
    }
    unlink(tmp.c_str());
    rmdir(tmpdir.c_str());
    return rc;
}

}  // namespace

int32_t make_address(const std::string &path, sockaddr_un &addr, socklen_t &len) {
    std::memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return failf(st::nametoolong, 0, "socket path %s is longer than %zu bytes", path.c_str(),
                     sizeof addr.sun_path - 1);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return st::ok;
}

PeerCred peer_cred(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    PeerCred out;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        out.pid = static_cast<uint64_t>(cred.pid);
        out.uid = cred.uid;
        out.gid = cred.gid;
    }
    return out;
}

int32_t ListeningSocket::acquire(const std::string &path, const ServerConfig &config,
                                 std::shared_ptr<ListeningSocket> &out) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(path);
    if (it != registry().end()) {
        ListeningSocket &l = *it->second;
        if (config.flags & pf::first_instance)
            return failf(st::exist, 0, "pipe %s already has instances in this process (NPIPE_FIRST_INSTANCE)",
                         path.c_str());
        if (l.max_instances_ != 0 && l.instances_ >= l.max_instances_)
            return failf(st::busy, 0, "all %u instances of %s exist (max_instances)",
                         static_cast<unsigned>(l.max_instances_), path.c_str());
        ++l.instances_;
        out = it->second;
        return st::ok;
    }
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail_errno(errno, "socket");
    int32_t rc = (config.flags & pf::current_user_only) ? bind_private(fd, path) : bind_plain(fd, path);
    struct stat sb;
    if (rc == st::ok && lstat(path.c_str(), &sb) < 0) rc = fail_errno(errno, "lstat of the new socket file");
    if (rc < 0) {
        close(fd);
        return rc;
    }
    auto listener = std::make_shared<ListeningSocket>(fd, path, sb.st_dev, sb.st_ino, config.max_instances);
    listener->instances_ = 1;
    registry()[path] = listener;
    out = std::move(listener);
    return st::ok;
}

void ListeningSocket::release() {
    std::shared_ptr<ListeningSocket> keep;  // the registry's reference, dropped after the lock
    std::lock_guard<std::mutex> lock(registry_mutex());
    if (instances_ == 0 || --instances_ > 0) return;
    auto it = registry().find(path_);
    if (it != registry().end() && it->second.get() == this) {
        keep = std::move(it->second);
        registry().erase(it);
    }
    // Remove the file before closing the socket, and only if it is still ours.
    struct stat sb;
    if (lstat(path_.c_str(), &sb) == 0 && sb.st_dev == dev_ && sb.st_ino == ino_) unlink(path_.c_str());
    close(fd_);
    fd_ = -1;
    std::lock_guard<std::mutex> unclaimed_lock(unclaimed_mu_);
    for (int fd : unclaimed_) close(fd);
    unclaimed_.clear();
}

ListeningSocket::~ListeningSocket() {
    if (fd_ >= 0) close(fd_);
    for (int fd : unclaimed_) close(fd);
}

void ListeningSocket::keep_unclaimed(int fd) {
    std::lock_guard<std::mutex> lock(unclaimed_mu_);
    unclaimed_.push_back(fd);
}

int ListeningSocket::take_unclaimed() {
    std::lock_guard<std::mutex> lock(unclaimed_mu_);
    if (unclaimed_.empty()) return -1;
    const int fd = unclaimed_.front();
    unclaimed_.pop_front();
    return fd;
}

bool ListeningSocket::has_unclaimed() {
    std::lock_guard<std::mutex> lock(unclaimed_mu_);
    return !unclaimed_.empty();
}

}  // namespace npipe::posix
