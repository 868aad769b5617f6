#include "lib/posix/unix_listener.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/posix/errno_map.hpp"
#include "lib/posix/unix_pipe.hpp"

namespace npipe::posix {

UnixListener::UnixListener(const ListenerConfig &config, std::shared_ptr<ListeningSocket> socket,
                           const PipeSetup &accepted)
    : ListenerCore(config), socket_(std::move(socket)), accepted_(accepted) {}

UnixListener::~UnixListener() {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (socket_) socket_->release();
}

int32_t UnixListener::os_attach(ReadyPoll &poll_base) {
    auto &poll = static_cast<EpollPoll &>(poll_base);  // create_poll makes nothing else on Linux
    if (!socket_) return fail(st::badf, "the listener is closed");
    const uint32_t id =
        poll.add_source(std::weak_ptr<EpollSource>(std::static_pointer_cast<UnixListener>(shared_from_this())));
    listen_fd_ = fcntl(socket_->fd(), F_DUPFD_CLOEXEC, 0);
    int err = listen_fd_ < 0 ? errno : poll.ctl(EPOLL_CTL_ADD, listen_fd_, id, 0, EPOLLIN | EPOLLET);
    if (err != 0) {
        if (listen_fd_ >= 0) ::close(listen_fd_);
        listen_fd_ = -1;
        poll.remove_source(id);
        return fail_errno(err, "epoll_ctl(ADD) of the listening socket");
    }
    source_id_ = id;
    return st::ok;
}

void UnixListener::on_os_event(uint32_t, uint32_t) {
    std::lock_guard lock(mu_);
    refresh();
}

void UnixListener::os_take_connections(std::vector<std::shared_ptr<PipeCore>> &into, size_t room) {
    if (!socket_) return;
    while (into.size() < room) {
        const int c = accept4(socket_->fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;  // EAGAIN: the backlog is empty; anything else: the next readiness retries
        }
        const PeerCred cred = peer_cred(c);
        if ((accepted_.flags & pf::current_user_only) && cred.uid != geteuid()) {
            ::close(c);  // a foreign user's client: dropped, as for server instances
            continue;
        }
        try {
            into.push_back(std::make_shared<UnixPipe>(accepted_, c, cred.pid));
        } catch (...) {
            ::close(c);
            throw;
        }
    }
}

void UnixListener::os_release() {
    if (listen_fd_ >= 0) {
        // DEL before close: the dup shares its file with the listening socket.
        if (poll()) static_cast<EpollPoll &>(*poll()).ctl(EPOLL_CTL_DEL, listen_fd_, source_id_, 0, 0);
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
    if (poll() && source_id_ != 0) static_cast<EpollPoll &>(*poll()).remove_source(source_id_);
    source_id_ = 0;
    if (socket_) {
        socket_->release();
        socket_.reset();
    }
}

}  // namespace npipe::posix
