#include "ready_poll.hpp"

#include <algorithm>
#include <chrono>

#include "error_detail.hpp"
#include "status.hpp"

namespace npipe {
namespace {

// Releases the single-waiter flag on every return path.
class WaiterGuard {
public:
    explicit WaiterGuard(std::atomic<bool> &flag) : flag_(flag) {}
    ~WaiterGuard() { flag_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> &flag_;
};

}  // namespace

int32_t ReadyPoll::wait(Event *events, size_t capacity, int32_t timeout_ms) {
    if (waiting_.exchange(true, std::memory_order_acq_rel))
        return fail(st::busy, "another thread is already waiting on this poll");
    WaiterGuard guard(waiting_);
    {
        std::lock_guard<std::mutex> lock(mu_);
        waiter_ = std::this_thread::get_id();
    }
    const Deadline deadline = Deadline::after_ms(timeout_ms);
    bool looked_at_os = false;
    for (;;) {
        if (is_closed()) return fail(st::badf, "the poll was closed while waiting");
        // When sources are already queued (a level-triggered pipe that stays ready, say), take
        // what the OS has finished first, without blocking: otherwise every wait would return the
        // queued events at once and other pipes' completions would never be processed.
        if (!looked_at_os) {
            looked_at_os = true;
            bool queued;
            {
                std::lock_guard<std::mutex> lock(mu_);
                queued = !ready_.empty();
            }
            if (queued) {
                run_deferred();  // what waits for a wait (a probe to arm) must not starve either
                const int32_t rc = process_os_events(0);
                if (rc < 0) return rc;
            }
        }
        const size_t n = harvest(events, capacity);
        if (n > 0) return static_cast<int32_t>(n);

        const int32_t remaining = deadline.remaining_ms();
        // Always look at the OS once, also for a zero timeout: completions may already be queued.
        // A lingering pipe's deadline bounds the OS wait, so it is released on time.
        int32_t rc = st::ok;
        // Work put off until a wait happens is due before the OS is asked (a wait that returns
        // events at once leaves it to the calls the caller makes next, or to the next wait).
        run_deferred();
        if (enter_blocking()) {
            rc = process_os_events(nearest_deadline().bound(remaining));
            leave_blocking();
        } else if (remaining == 0) {
            continue;  // something was queued meanwhile: harvest it
        }
        expire_lingers();
        fire_timers();
        if (rc < 0) return rc;
        if (remaining == 0) return static_cast<int32_t>(harvest(events, capacity));
    }
}

bool ReadyPoll::enter_blocking() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ready_.empty() || !wakes_.empty() || !deferred_members_.empty()) return false;
    blocked_ = true;
    return true;
}

void ReadyPoll::leave_blocking() {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = false;
}

size_t ReadyPoll::harvest(Event *events, size_t capacity) {
    size_t n = 0;
    std::vector<std::shared_ptr<ReadySource>> keep;
    size_t budget;
    {
        std::lock_guard<std::mutex> lock(mu_);
        // Wake events first, never merged with pipe events.
        while (n < capacity && !wakes_.empty()) {
            events[n++] = Event{wakes_.front(), ev::wake, 0};
            wakes_.erase(wakes_.begin());
        }
        budget = ready_.size();  // level sources re-queue; ask each at most once per harvest
    }
    while (n < capacity && budget-- > 0) {
        std::shared_ptr<ReadySource> source;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (ready_.empty()) break;
            source = std::move(ready_.front());
            ready_.pop_front();
            source->queued_ = false;
        }
        bool keep_queued = false;
        Event event{0, 0, 0};
        if (source->collect(event, keep_queued) && event.events != 0) events[n++] = event;
        if (keep_queued) keep.push_back(std::move(source));
    }
    if (!keep.empty()) {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto &source : keep) {
            if (!source->queued_) {
                source->queued_ = true;
                ready_.push_back(std::move(source));
            }
        }
    }
    return n;
}

void ReadyPoll::notify(const std::shared_ptr<ReadySource> &source) {
    bool must_interrupt = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!source->queued_) {
            source->queued_ = true;
            ready_.push_back(source);
        }
        must_interrupt = blocked_ && waiter_ != std::this_thread::get_id();
    }
    if (must_interrupt) interrupt();
}

int32_t ReadyPoll::wake(uint64_t token) {
    if (is_closed()) return fail(st::badf, "the poll is closed");
    bool must_interrupt = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (std::find(wakes_.begin(), wakes_.end(), token) == wakes_.end()) {
            if (wakes_.size() >= kMaxPendingWakes)
                return failf(st::busy, 0, "%u distinct wake tokens are already pending",
                             static_cast<unsigned>(kMaxPendingWakes));
            wakes_.push_back(token);
        }
        must_interrupt = blocked_ && waiter_ != std::this_thread::get_id();
    }
    if (must_interrupt) interrupt();
    return st::ok;
}

bool ReadyPoll::add_member(std::weak_ptr<PollMember> member) {
    std::lock_guard<std::mutex> lock(mu_);
    if (is_closed()) return false;
    if (members_.size() >= members_prune_at_) {
        members_.erase(std::remove_if(members_.begin(), members_.end(),
                                      [](const std::weak_ptr<PollMember> &m) { return m.expired(); }),
                       members_.end());
        members_prune_at_ = std::max<size_t>(64, members_.size() * 2);
    }
    members_.push_back(std::move(member));
    return true;
}

bool ReadyPoll::linger(std::shared_ptr<PollMember> member, Deadline deadline) {
    bool must_interrupt = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (is_closed()) return false;
        lingering_.push_back(Lingering{std::move(member), deadline});
        must_interrupt = blocked_ && waiter_ != std::this_thread::get_id();
    }
    if (must_interrupt) interrupt();  // a blocked waiter must pick up the new deadline
    return true;
}

void ReadyPoll::end_linger(const PollMember *member) {
    std::shared_ptr<PollMember> keep;  // the caller holds a reference too: never the last one here
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = lingering_.begin(); it != lingering_.end(); ++it) {
        if (it->member.get() == member) {
            keep = std::move(it->member);
            lingering_.erase(it);
            break;
        }
    }
}

Deadline ReadyPoll::nearest_deadline() {
    std::lock_guard<std::mutex> lock(mu_);
    Deadline nearest = Deadline::never();
    for (const auto &l : lingering_) nearest = Deadline::earlier(nearest, l.deadline);
    for (const auto &t : timers_) nearest = Deadline::earlier(nearest, t.when);
    return nearest;
}

void ReadyPoll::set_timer(const std::shared_ptr<PollMember> &member, Deadline when) {
    bool must_interrupt = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (is_closed()) return;
        auto it = std::find_if(timers_.begin(), timers_.end(), [&](const Timer &t) { return t.key == member.get(); });
        if (it != timers_.end()) {
            it->member = member;
            it->when = when;
        } else {
            timers_.push_back(Timer{member.get(), member, when});
        }
        must_interrupt = blocked_ && waiter_ != std::this_thread::get_id();
    }
    if (must_interrupt) interrupt();  // a blocked waiter must pick up the new deadline
}

void ReadyPoll::cancel_timer(const PollMember *member) {
    std::lock_guard<std::mutex> lock(mu_);
    timers_.erase(std::remove_if(timers_.begin(), timers_.end(), [&](const Timer &t) { return t.key == member; }),
                  timers_.end());
}

bool ReadyPoll::defer(const std::shared_ptr<PollMember> &member) {
    std::lock_guard<std::mutex> lock(mu_);
    if (is_closed() || (blocked_ && waiter_ != std::this_thread::get_id())) return false;
    if (!member->deferred_) {
        member->deferred_ = true;
        deferred_members_.push_back(member);
        any_deferred_.store(true, std::memory_order_release);
    }
    return true;
}

void ReadyPoll::run_deferred() {
    if (!any_deferred_.load(std::memory_order_acquire)) return;  // the usual case: no lock taken
    std::vector<std::shared_ptr<PollMember>> due;
    {
        std::lock_guard<std::mutex> lock(mu_);
        any_deferred_.store(false, std::memory_order_relaxed);
        for (auto &weak : deferred_members_) {
            if (auto member = weak.lock()) {
                member->deferred_ = false;
                due.push_back(std::move(member));
            }
        }
        deferred_members_.clear();
    }
    for (auto &member : due) member->before_wait();
}

void ReadyPoll::fire_timers() {
    std::vector<std::shared_ptr<PollMember>> due;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = timers_.begin(); it != timers_.end();) {
            if (it->when.passed()) {
                if (auto m = it->member.lock()) due.push_back(std::move(m));
                it = timers_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto &member : due) member->timer_fired();
}

void ReadyPoll::expire_lingers() {
    std::vector<std::shared_ptr<PollMember>> due;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = lingering_.begin(); it != lingering_.end();) {
            if (it->deadline.passed()) {
                due.push_back(std::move(it->member));
                it = lingering_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto &member : due) member->linger_expired();
}

void ReadyPoll::close() {
    if (closed_.exchange(true, std::memory_order_acq_rel)) return;
    std::vector<std::weak_ptr<PollMember>> members;
    std::vector<Lingering> lingering;
    {
        std::lock_guard<std::mutex> lock(mu_);
        members.swap(members_);
        lingering.swap(lingering_);
        timers_.clear();
        deferred_members_.clear();
    }
    // Stop every pipe of this poll: each releases its OS handles at once, so the names are free and
    // the peers see EOF now, not when some operation finally completes.
    for (auto &weak : members)
        if (auto member = weak.lock()) member->poll_closed();
    lingering.clear();
    on_close();
    std::deque<std::shared_ptr<ReadySource>> dropped;  // released outside the lock
    {
        std::lock_guard<std::mutex> lock(mu_);
        dropped.swap(ready_);
        wakes_.clear();
    }
    interrupt();
}

}  // namespace npipe
