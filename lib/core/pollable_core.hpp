// What every object a caller registers with a poll shares, written once: pipes and listeners.
//   registration  cancelled -> not registered / bound elsewhere -> bind for life (joins the poll's
//                 member list and the OS wait set) -> arm -> the object's own start-up and
//                 re-raise, in that order on every platform;
//   events        EventState (edge/level, READ_CLOSED/WRITE_CLOSED once per connection);
//   npipe_wait    a private poll driven by whichever waiting thread gets there first, the others
//                 asleep on a condition variable woken by every change.
// A derived class supplies the OS attach, what registration starts, and its conditions.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "backend.hpp"
#include "deadline.hpp"
#include "event_state.hpp"
#include "fast_mutex.hpp"

namespace npipe {

// The wake a close sends to a private poll it shares, so a thread waiting there looks again.
constexpr uint64_t kCloseWakeToken = ~uint64_t{0};

class PollableCore : public ReadySource, public PollMember, public std::enable_shared_from_this<PollableCore> {
public:
    // The Endpoint calls, implemented once (the derived class forwards to them).
    int32_t register_with(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests);
    int32_t reregister(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests);
    int32_t deregister(const std::shared_ptr<Poll> &poll);
    int32_t wait(uint32_t interests, int32_t timeout_ms);

    // ReadySource
    bool collect(Event &event, bool &keep_queued) override;

protected:
    explicit PollableCore(const char *what) : what_(what) {}

    // Joins the OS wait set of `poll` (completion port, epoll), once, at the first registration.
    virtual int32_t os_attach(ReadyPoll &poll) = 0;
    // Registration armed the events: start what waited for a poll, then re-raise what holds now.
    virtual void on_registered() = 0;
    // Reregistration: re-raise what holds now.
    virtual void raise_current_state() = 0;
    // Level mode: the readable/writable condition now.
    virtual uint32_t level_condition() = 0;
    // npipe_wait: the bits of `interests` that hold now (0: keep waiting).
    virtual uint32_t wait_condition(uint32_t interests) = 0;
    // npipe_wait, when no other thread drives the poll: wait inside an OS call that does the work
    // as it wakes (a pipe's blocking receive), instead of on the poll. True: it waited (the caller
    // looks at the condition again); false: wait on the poll. It may unlock `lock` meanwhile.
    virtual bool wait_without_poll(uint32_t, const Deadline &, std::unique_lock<FastMutex> &) { return false; }
    // The waiter asks for this object's event: first bring the state up to date (a listener takes
    // what its instances finished).
    virtual void on_collect() {}

    int32_t register_locked(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests);
    // The poll the object is bound to (null before the first registration and after the poll closed).
    const std::shared_ptr<Poll> &poll() const { return poll_; }
    void raise(uint32_t bits);
    // The failure for calls on an object whose poll was closed.
    int32_t fail_canceled() const;
    // Ends every npipe_wait on the object (after closed_ was set).
    void wake_waiters() { waiters_.notify_all(); }
    // An object driven by npipe_wait, with no thread waiting on its private poll right now: takes
    // what the OS has finished, without waiting (`lock` is released meanwhile). False when that is
    // not this call's to do (a caller's poll, or a thread is driving the private one).
    bool look_at_private_poll(std::unique_lock<FastMutex> &lock);
    // npipe_close, the part every object shares: once only; the events stop; `release` (under the
    // lock) lets go of what the object holds; every npipe_wait ends (EBADF); and a private poll is
    // closed after the lock, since nobody waits on it any more. `release` learns whether the poll
    // is private (then nothing drives a linger).
    template <class Release>
    void close_with(Release &&release) {
        std::shared_ptr<Poll> private_poll;
        {
            std::lock_guard lock(mu_);
            if (closed_) return;
            closed_ = true;
            events_.disarm();
            if (poll_) poll_->cancel_timer(this);
            release(private_poll_);
            if (private_poll_ && poll_) {
                if (poll_->drop_private_user())
                    private_poll = poll_;
                else
                    poll_->wake(kCloseWakeToken);  // the thread driving the shared poll looks again
            }
            waiters_.notify_all();
        }
        if (private_poll) private_poll->close();
    }
    // Bound to a private poll another object made (a listener's, for the pipes it accepted).
    void share_private_poll() {
        private_poll_ = true;
        if (poll_) poll_->add_private_user();
    }

    FastMutex mu_;
    std::shared_ptr<Poll> poll_;  // bound for life at the first registration
    EventState events_;
    bool closed_ = false;        // npipe_close ran
    bool canceled_ = false;      // the poll was closed: no more progress
    bool private_poll_ = false;  // bound to npipe_wait's private poll
    // Set while a listener owns this pipe (an instance waiting for a client, or a connected pipe
    // not accepted yet): its changes are the listener's news, so the poll is told to ask the
    // listener. The pipe never locks the listener: the lock order is listener, then pipe.
    std::weak_ptr<ReadySource> owner_;

private:
    const char *what_;      // "pipe" / "listener", for messages
    bool driving_ = false;  // one waiting thread drives the private poll, the others sleep on waiters_
    std::condition_variable_any waiters_;
};

// The Endpoint calls every pollable object answers the same way, for a pipe or a listener.
template <class Interface>
class PollableEndpoint : public Interface, public PollableCore {
public:
    int32_t register_with(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) final {
        return PollableCore::register_with(poll, token, interests);
    }
    int32_t reregister(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) final {
        return PollableCore::reregister(poll, token, interests);
    }
    int32_t deregister(const std::shared_ptr<Poll> &poll) final { return PollableCore::deregister(poll); }
    int32_t wait(uint32_t interests, int32_t timeout_ms) final { return PollableCore::wait(interests, timeout_ms); }

protected:
    explicit PollableEndpoint(const char *what) : PollableCore(what) {}
};

}  // namespace npipe
