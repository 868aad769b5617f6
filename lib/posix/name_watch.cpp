#include "lib/posix/name_watch.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "lib/core/deadline.hpp"
#include "lib/posix/unix_pipe.hpp"

namespace npipe::posix {
namespace {

constexpr uint32_t kAppearMask = IN_CREATE | IN_MOVED_TO | IN_ONLYDIR;

// The watches that exist, by (directory, poll): found again by the next client on the same poll,
// released when the poll closes.
std::mutex &watches_mutex() {
    static std::mutex mu;
    return mu;
}

std::map<std::pair<std::string, const EpollPoll *>, std::shared_ptr<NameWatch>> &watches() {
    static std::map<std::pair<std::string, const EpollPoll *>, std::shared_ptr<NameWatch>> all;
    return all;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// DirectoryWatch

DirectoryWatch::~DirectoryWatch() {
    if (fd_ >= 0) ::close(fd_);
}

bool DirectoryWatch::watch(const std::string &dir) {
    if (wd_ >= 0) return true;
    if (fd_ < 0) fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) return false;
    wd_ = inotify_add_watch(fd_, dir.c_str(), kAppearMask);
    return wd_ >= 0;
}

void DirectoryWatch::unwatch() {
    if (wd_ < 0) return;
    inotify_rm_watch(fd_, wd_);
    wd_ = -1;
    std::vector<std::string> stale;  // what came before, and the removal's IN_IGNORED
    read_events(stale);
}

bool DirectoryWatch::read_events(std::vector<std::string> &appeared) {
    if (fd_ < 0) return false;
    bool lost = false;
    alignas(inotify_event) char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return lost;  // EAGAIN: nothing more reported
        for (size_t at = 0; at + sizeof(inotify_event) <= static_cast<size_t>(n);) {
            inotify_event ev;
            std::memcpy(&ev, buf + at, sizeof ev);
            if (ev.mask & IN_Q_OVERFLOW) lost = true;
            if (ev.len > 0 && (ev.mask & (IN_CREATE | IN_MOVED_TO)))
                appeared.emplace_back(buf + at + sizeof(inotify_event));  // NUL-padded name
            at += sizeof(inotify_event) + ev.len;
        }
    }
}

void DirectoryWatch::wait_for(const std::string &name, int32_t ms) {
    const Deadline deadline = Deadline::after_ms(ms);
    for (;;) {
        pollfd p{fd_, POLLIN, 0};
        const int rc = ::poll(&p, 1, deadline.bound(ms));
        if (rc < 0 && errno != EINTR) return;
        if (rc > 0) {
            std::vector<std::string> appeared;
            if (read_events(appeared) || std::find(appeared.begin(), appeared.end(), name) != appeared.end()) return;
        }
        if (deadline.passed()) return;
    }
}

DirectoryWatch &thread_directory_watch() {
    thread_local DirectoryWatch watch;
    return watch;
}

// ---------------------------------------------------------------------------------------------
// NameWatch

bool NameWatch::of(const std::string &dir, const std::shared_ptr<EpollPoll> &poll, std::shared_ptr<NameWatch> &out) {
    std::lock_guard<std::mutex> lock(watches_mutex());
    const auto key = std::make_pair(dir, poll.get());
    auto it = watches().find(key);
    if (it != watches().end()) {
        out = it->second;
        return true;
    }
    auto watch = std::make_shared<NameWatch>(dir, poll);
    if (!watch->inotify_.watch(dir)) return false;
    watch->source_id_ = poll->add_source(std::weak_ptr<EpollSource>(watch));
    if (poll->ctl(EPOLL_CTL_ADD, watch->inotify_.fd(), watch->source_id_, 0, EPOLLIN | EPOLLET) != 0)
        return false;  // the destructor cleans up
    watches().emplace(key, watch);
    out = std::move(watch);
    return true;
}

void NameWatch::release_poll(const EpollPoll *poll) {
    std::vector<std::shared_ptr<NameWatch>> gone;  // destroyed outside the lock
    std::lock_guard<std::mutex> lock(watches_mutex());
    for (auto it = watches().begin(); it != watches().end();) {
        if (it->first.second == poll) {
            gone.push_back(std::move(it->second));
            it = watches().erase(it);
        } else {
            ++it;
        }
    }
}

NameWatch::~NameWatch() {
    if (source_id_ != 0) poll_->remove_source(source_id_);
    // inotify_'s descriptor leaves the epoll set as it is closed (nobody else shares its file).
}

bool NameWatch::enqueue(const std::string &name, const std::shared_ptr<UnixPipe> &client) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!inotify_.watch(dir_)) return false;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        auto w = it->second.lock();
        if (!w) {
            it = waiting_.erase(it);  // a closed client
            continue;
        }
        if (w == client) return true;
        ++it;
    }
    waiting_.emplace_back(name, client);
    return true;
}

void NameWatch::forget(const UnixPipe *client) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(),
                                  [client](const auto &entry) {
                                      const auto w = entry.second.lock();
                                      return !w || w.get() == client;
                                  }),
                   waiting_.end());
    unwatch_if_unused();
}

void NameWatch::unwatch_if_unused() {
    if (waiting_.empty()) inotify_.unwatch();  // no wake-ups for the directory's other files
}

void NameWatch::on_os_event(uint32_t, uint32_t) {
    std::vector<std::shared_ptr<UnixPipe>> wake;
    {
        std::lock_guard<std::mutex> lock(mu_);
        std::vector<std::string> appeared;
        const bool lost = inotify_.read_events(appeared);
        for (auto it = waiting_.begin(); it != waiting_.end();) {
            if (lost || std::find(appeared.begin(), appeared.end(), it->first) != appeared.end()) {
                if (auto w = it->second.lock()) wake.push_back(std::move(w));
                it = waiting_.erase(it);  // one that still finds nobody queues itself again
            } else {
                ++it;
            }
        }
        unwatch_if_unused();
    }
    for (auto &client : wake) client->name_appeared();
}

}  // namespace npipe::posix
