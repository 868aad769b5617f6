#include "lib/posix/socket_watch.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <vector>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/posix/errno_map.hpp"
#include "lib/posix/unix_pipe.hpp"

namespace npipe::posix {
namespace {

// The watches that exist, by (socket, poll): found again by the next instance on the same poll.
std::mutex &watches_mutex() {
    static std::mutex mu;
    return mu;
}

std::map<std::pair<const ListeningSocket *, const EpollPoll *>, std::weak_ptr<SocketWatch>> &watches() {
    static std::map<std::pair<const ListeningSocket *, const EpollPoll *>, std::weak_ptr<SocketWatch>> all;
    return all;
}

// The live watches of one listening socket, one per poll.
std::vector<std::shared_ptr<SocketWatch>> watches_of(const ListeningSocket *socket) {
    std::vector<std::shared_ptr<SocketWatch>> found;
    std::lock_guard<std::mutex> lock(watches_mutex());
    for (const auto &[key, watch] : watches()) {
        if (key.first != socket) continue;
        if (auto w = watch.lock()) found.push_back(std::move(w));
    }
    return found;
}

}  // namespace

int32_t SocketWatch::of(const std::shared_ptr<ListeningSocket> &socket, const std::shared_ptr<EpollPoll> &poll,
                        std::shared_ptr<SocketWatch> &out) {
    std::lock_guard<std::mutex> lock(watches_mutex());
    const auto key = std::make_pair(socket.get(), poll.get());
    auto &slot = watches()[key];
    if ((out = slot.lock())) return st::ok;
    auto watch = std::make_shared<SocketWatch>(socket, poll);
    watch->fd_ = fcntl(socket->fd(), F_DUPFD_CLOEXEC, 0);
    if (watch->fd_ < 0) {
        watches().erase(key);
        return fail_errno(errno, "dup of the listening socket");
    }
    watch->source_id_ = poll->add_source(std::weak_ptr<EpollSource>(watch));
    const int err = poll->ctl(EPOLL_CTL_ADD, watch->fd_, watch->source_id_, 0, EPOLLIN | EPOLLET);
    if (err != 0) {
        watches().erase(key);
        return fail_errno(err, "epoll_ctl(ADD) of the listening socket");  // the destructor cleans up
    }
    slot = watch;
    out = std::move(watch);
    return st::ok;
}

SocketWatch::~SocketWatch() {
    {
        std::lock_guard<std::mutex> lock(watches_mutex());
        auto it = watches().find(std::make_pair(socket_.get(), poll_.get()));
        if (it != watches().end() && it->second.expired()) watches().erase(it);
    }
    if (fd_ >= 0) {
        // DEL before close: the dup shares its file with the listening socket.
        poll_->ctl(EPOLL_CTL_DEL, fd_, source_id_, 0, 0);
        ::close(fd_);
    }
    if (source_id_ != 0) poll_->remove_source(source_id_);
}

void SocketWatch::enqueue(const std::shared_ptr<UnixPipe> &instance) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        auto w = it->lock();
        if (!w) {
            it = waiting_.erase(it);  // a closed instance
            continue;
        }
        if (w == instance) return;
        ++it;
    }
    waiting_.push_back(instance);
}

void SocketWatch::on_os_event(uint32_t, uint32_t) {
    if (serve(true)) offer_everywhere();
}

bool SocketWatch::serve(bool from_backlog) {
    // One serve of this watch at a time: an instance one takes out of the queue is back in it
    // before another serve (another poll's offer) looks, so no offer finds the queue empty only
    // because a concurrent serve is holding its last instance.
    std::lock_guard<std::mutex> serving(serving_);
    int fd = -1;
    for (;;) {
        std::shared_ptr<UnixPipe> instance = next_waiting();
        if (!instance) {
            if (fd < 0) break;  // nobody waits: the connections stay in the backlog
            // Accepted (or taken unclaimed), then nobody waited any more: the client stays with the
            // socket, and the caller has every watch look again (offer_everywhere).
            socket_->keep_unclaimed(fd);
            return true;
        }
        if (fd < 0) fd = socket_->take_unclaimed();
        if (fd < 0 && from_backlog) fd = accept4(socket_->fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (from_backlog && (errno == EINTR || errno == ECONNABORTED)) {
                enqueue(instance);
                continue;
            }
            // The backlog is empty (or failing): the instance keeps its place at the front.
            {
                std::lock_guard<std::mutex> lock(mu_);
                waiting_.push_front(instance);
            }
            // Another poll's watch may have left a client unclaimed while the instance was out of
            // the queue, and found nobody here to offer it to.
            if (socket_->has_unclaimed()) continue;
            break;
        }
        switch (instance->offer_client(fd)) {
            case UnixPipe::Offer::taken: fd = -1; break;
            case UnixPipe::Offer::not_waiting: break;  // the next instance gets this client
            case UnixPipe::Offer::refused:             // a foreign user's client, closed; the instance still waits
                fd = -1;
                enqueue(instance);
                break;
        }
    }
    return false;
}

std::shared_ptr<UnixPipe> SocketWatch::next_waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    while (!waiting_.empty()) {
        std::shared_ptr<UnixPipe> instance = waiting_.front().lock();
        waiting_.pop_front();
        if (instance) return instance;  // else a closed instance
    }
    return nullptr;
}

// A client kept unclaimed was out of every queue's reach while a serve held it: an instance that
// started waiting meanwhile, on any poll (this one's too), found neither it nor the backlog, and
// waits for a look that nothing else would bring. So every watch of the socket looks again, and
// a look that keeps a client again (it took it for an instance that had stopped waiting, and used
// up that instance's place in its queue) brings another round; the rounds end when none keeps one.
void SocketWatch::offer_everywhere() {
    for (bool again = true; again;) {
        again = false;
        // Each round asks the watches that exist now: one made since the last round (the first
        // instance of a poll) may hold the instance that looked while a client was held.
        for (const auto &watch : watches_of(socket_.get())) again = watch->serve(false) || again;
    }
}

}  // namespace npipe::posix
