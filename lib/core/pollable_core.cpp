#include "pollable_core.hpp"

#include <string>

#include "deadline.hpp"
#include "error_detail.hpp"
#include "status.hpp"

namespace npipe {

int32_t PollableCore::fail_canceled() const {
    return failf(st::canceled, 0, "the %s's poll was closed; the %s can make no more progress", what_, what_);
}

int32_t PollableCore::register_with(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) {
    std::lock_guard lock(mu_);
    if (private_poll_)
        return failf(st::exist, 0,
                     "the %s is bound for life to the private poll of npipe_wait; keep waiting with npipe_wait", what_);
    return register_locked(poll, token, interests);
}

int32_t PollableCore::register_locked(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) {
    if (canceled_) return fail_canceled();
    if (poll_ && poll_ != poll)
        return failf(st::exist, 0, "the %s is bound for life to the poll it was first registered with", what_);
    if (events_.registered()) return failf(st::exist, 0, "the %s is already registered with this poll", what_);
    if (!poll_) {
        if (!poll->add_member(weak_from_this())) return fail(st::badf, "the poll is closed");
        const int32_t rc = os_attach(*poll);
        if (rc < 0) return rc;
        poll_ = poll;
    }
    events_.arm(token, interests);
    on_registered();
    return st::ok;
}

int32_t PollableCore::reregister(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) {
    std::lock_guard lock(mu_);
    if (canceled_) return fail_canceled();
    if (!events_.registered()) return failf(st::noent, 0, "the %s is not registered with a poll", what_);
    if (poll_ != poll) return failf(st::exist, 0, "the %s is registered with another poll", what_);
    events_.arm(token, interests);
    raise_current_state();
    return st::ok;
}

int32_t PollableCore::deregister(const std::shared_ptr<Poll> &poll) {
    std::lock_guard lock(mu_);
    if (canceled_) return fail_canceled();
    if (!events_.registered()) return failf(st::noent, 0, "the %s is not registered with a poll", what_);
    if (poll_ != poll) return failf(st::exist, 0, "the %s is registered with another poll", what_);
    // What is in flight keeps running (its results are buffered); only the reporting stops.
    events_.disarm();
    return st::ok;
}

void PollableCore::raise(uint32_t bits) {
    if (bits && events_.raise(bits) && poll_ && !canceled_) {
        if (auto owner = owner_.lock())
            poll_->notify(owner);
        else
            poll_->notify(shared_from_this());
    }
    if (private_poll_) waiters_.notify_all();
}

bool PollableCore::collect(Event &event, bool &keep_queued) {
    std::lock_guard lock(mu_);
    on_collect();
    const uint32_t level_bits = events_.level() ? level_condition() : 0;
    const uint32_t bits = events_.take(level_bits, keep_queued);
    if (bits == 0) return false;
    event = Event{events_.token(), bits, 0};
    return true;
}

bool PollableCore::look_at_private_poll(std::unique_lock<FastMutex> &lock) {
    if (!private_poll_ || driving_ || !poll_ || closed_ || canceled_) return false;
    const std::shared_ptr<Poll> poll = poll_;
    driving_ = true;  // a thread that starts waiting meanwhile sleeps until this look is over
    lock.unlock();
    Event events[8];
    poll->wait(events, 8, 0);  // what it reports is in the object's state, which callers look at
    lock.lock();
    driving_ = false;
    waiters_.notify_all();
    return true;
}

int32_t PollableCore::wait(uint32_t interests, int32_t timeout_ms) {
    const Deadline deadline = Deadline::after_ms(timeout_ms);
    std::shared_ptr<Poll> poll;
    {
        std::lock_guard lock(mu_);
        if (closed_) return failf(st::badf, 0, "the %s was closed while waiting", what_);
        if (canceled_) return fail_canceled();
        if (poll_ && !private_poll_)
            return failf(
                st::exist, 0,
                "the %s is (or was) registered with a poll, and bound to it for life: wait on its poll instead", what_);
        if (!poll_) {
            std::shared_ptr<Poll> own;
            int32_t rc = create_poll(own);
            if (rc < 0) return rc;
            rc = register_locked(own, 0, ev::readable | ev::writable);
            if (rc < 0) return rc;
            private_poll_ = true;
            own->add_private_user();
        }
        poll = poll_;
    }
    Event events[8];
    for (;;) {
        {
            std::unique_lock lock(mu_);
            if (closed_) return failf(st::badf, 0, "the %s was closed while waiting", what_);
            if (canceled_) return fail_canceled();
            const uint32_t bits = wait_condition(interests);
            if (bits) return static_cast<int32_t>(bits);
            if (deadline.passed()) return 0;
            if (!driving_ && wait_without_poll(interests, deadline, lock)) continue;
            if (driving_) {
                // Another thread drives the poll: it wakes us after each of its waits, and so does
                // every change of the object's state.
                if (deadline.is_never())
                    waiters_.wait(lock);
                else
                    waiters_.wait_until(lock, deadline.when());
                continue;
            }
            driving_ = true;
        }
        const int32_t rc = poll->wait(events, 8, deadline.remaining_ms());
        {
            std::lock_guard lock(mu_);
            driving_ = false;
        }
        waiters_.notify_all();
        if (rc < 0) {
            std::lock_guard lock(mu_);
            if (closed_) return failf(st::badf, 0, "the %s was closed while waiting", what_);
            return rc;
        }
    }
}

}  // namespace npipe
