#include "lib/posix/epoll_poll.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "lib/core/backend.hpp"
#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/posix/errno_map.hpp"
#include "lib/posix/name_watch.hpp"

namespace npipe {

int32_t create_poll(std::shared_ptr<Poll> &out) {
    std::shared_ptr<posix::EpollPoll> poll;
    const int32_t rc = posix::EpollPoll::create(poll);
    if (rc < 0) return rc;
    out = std::move(poll);
    return st::ok;
}

namespace posix {
namespace {
constexpr uint64_t kWakeData = 0;  // the eventfd's epoll data (source id 0)
constexpr int kBatch = 128;        // epoll events per epoll_wait
}  // namespace

int32_t EpollPoll::create(std::shared_ptr<EpollPoll> &out) {
    const int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return fail_errno(errno, "epoll_create1");
    const int evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (evfd < 0) {
        const int err = errno;
        ::close(epfd);
        return fail_errno(err, "eventfd");
    }
    epoll_event e{};
    e.events = EPOLLIN;  // level: a pending interrupt is never lost
    e.data.u64 = kWakeData;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &e) < 0) {
        const int err = errno;
        ::close(evfd);
        ::close(epfd);
        return fail_errno(err, "epoll_ctl(ADD eventfd)");
    }
    out = std::make_shared<EpollPoll>(epfd, evfd);
    return st::ok;
}

EpollPoll::~EpollPoll() {
    ::close(evfd_);
    ::close(epfd_);
}

uint32_t EpollPoll::add_source(std::weak_ptr<EpollSource> source) {
    std::lock_guard<std::mutex> lock(src_mu_);
    while (next_id_ == 0 || sources_.count(next_id_)) ++next_id_;
    const uint32_t id = next_id_++;
    sources_.emplace(id, std::move(source));
    return id;
}

void EpollPoll::remove_source(uint32_t id) {
    std::weak_ptr<EpollSource> dropped;  // released outside the lock
    std::lock_guard<std::mutex> lock(src_mu_);
    auto it = sources_.find(id);
    if (it == sources_.end()) return;
    dropped = std::move(it->second);
    sources_.erase(it);
}

int EpollPoll::ctl(int op, int fd, uint32_t id, uint32_t tag, uint32_t events) noexcept {
    epoll_event e{};
    e.events = events;
    e.data.u64 = (static_cast<uint64_t>(id) << 32) | tag;
    return epoll_ctl(epfd_, op, fd, &e) < 0 ? errno : 0;
}

int32_t EpollPoll::process_os_events(int32_t timeout_ms) {
    epoll_event events[kBatch];
    const int n = epoll_wait(epfd_, events, kBatch, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return st::ok;
        return fail_errno(errno, "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
        const uint64_t data = events[i].data.u64;
        if (data == kWakeData) {
            uint64_t count;
            while (read(evfd_, &count, sizeof count) > 0) {}
            interrupt_pending_.store(false, std::memory_order_release);
            continue;
        }
        std::shared_ptr<EpollSource> source;
        {
            std::lock_guard<std::mutex> lock(src_mu_);
            auto it = sources_.find(static_cast<uint32_t>(data >> 32));
            if (it != sources_.end()) source = it->second.lock();
        }
        if (source) source->on_os_event(static_cast<uint32_t>(data), events[i].events);
    }
    return st::ok;
}

void EpollPoll::interrupt() {
    // Coalesced: one eventfd write until the waiter has drained it.
    if (interrupt_pending_.exchange(true, std::memory_order_acq_rel)) return;
    const uint64_t one = 1;
    while (write(evfd_, &one, sizeof one) < 0 && errno == EINTR) {}
}

void EpollPoll::on_close() {
    // ReadyPoll stopped every pipe already (each removed its own source); drop what is left.
    NameWatch::release_poll(this);
    std::unordered_map<uint32_t, std::weak_ptr<EpollSource>> sources;
    std::lock_guard<std::mutex> lock(src_mu_);
    sources.swap(sources_);
}

}  // namespace posix
}  // namespace npipe
