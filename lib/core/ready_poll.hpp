// The portable half of a poll: the ready list, the coalescing wake set, the single-waiter guard,
// the wait loop with honoured timeouts, the pipes to stop when the poll closes, the linger list
// of closed pipes still delivering bytes, and the members' timers (the wait is bounded by the
// nearest of those deadlines). A backend derives from it and supplies only the OS part: block for OS events and
// process them (IOCP completions on Windows, epoll on Linux), interrupt a blocked waiter, and
// tear down at close.
//
// Pipes are ReadySources: when a pipe's state changes it raises bits in its EventState and calls
// notify(); the waiter later calls collect() on it to get one merged event. Lock order: a pipe's
// own mutex may be held while calling notify() (which takes the poll's mutex); the poll never
// holds its mutex while calling into a pipe.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "deadline.hpp"
#include "object.hpp"
#include "types.hpp"

namespace npipe {

class ReadySource {
public:
    virtual ~ReadySource() = default;
    // Fills `event` with what the source has to report now; returns false if nothing. Sets
    // `keep_queued` when the source must be asked again at the next wait (level mode).
    virtual bool collect(Event &event, bool &keep_queued) = 0;

private:
    friend class ReadyPoll;
    bool queued_ = false;  // guarded by the poll's mutex
};

// A pipe as the poll's member: it joined at its first registration and is stopped when the poll
// closes. Both calls come without poll locks held, from a caller that holds a strong reference.
class PollMember {
public:
    virtual ~PollMember() = default;
    // The poll is closing: make no more progress, release the OS handles now.
    virtual void poll_closed() = 0;
    // A closed pipe's linger time ran out: release the OS handles now, whatever is undelivered.
    virtual void linger_expired() = 0;
    // The member's timer (ReadyPoll::set_timer) is due: retry, re-check, back off.
    virtual void timer_fired() {}
    // What the member put off until a thread is about to wait on the poll (ReadyPoll::defer) is
    // due now. Runs before the waiter harvests or blocks.
    virtual void before_wait() {}

private:
    friend class ReadyPoll;
    bool deferred_ = false;  // guarded by the poll's mutex
};

class ReadyPoll : public Object, public std::enable_shared_from_this<ReadyPoll> {
public:
    ReadyPoll() : Object(ObjectKind::poll) {}

    // npipe_poll_wait: count of events, 0 on timeout, or a failure (st::busy, st::badf, ...).
    int32_t wait(Event *events, size_t capacity, int32_t timeout_ms);
    // npipe_poll_wake: coalescing, thread-safe.
    int32_t wake(uint64_t token);
    // npipe_poll_close: idempotent; wakes a blocked waiter, which then returns st::badf.
    void close();
    bool is_closed() const { return closed_.load(std::memory_order_acquire); }

    // Queues `source` for the next harvest (no-op if already queued) and interrupts a waiter
    // blocked in the OS on another thread.
    void notify(const std::shared_ptr<ReadySource> &source);

    // A pipe joins at its first registration; false when the poll is closed.
    bool add_member(std::weak_ptr<PollMember> member);
    // Keeps a closed pipe alive until end_linger() or the deadline (then linger_expired()).
    // False when the poll is closing: nothing would drive the linger, the caller closes at once.
    bool linger(std::shared_ptr<PollMember> member, Deadline deadline);
    void end_linger(const PollMember *member);
    // The poll's clock, for retries and re-checks without a thread: one timer per member, fired
    // (timer_fired) by the thread waiting on the poll once `when` has passed. A new set_timer
    // replaces the member's earlier one.
    void set_timer(const std::shared_ptr<PollMember> &member, Deadline when);
    void cancel_timer(const PollMember *member);
    // Puts off work a member needs done only once a thread waits on the poll (Windows arms its
    // zero-byte read then, not after every read): the next wait calls member->before_wait() before
    // it harvests or blocks. False when a waiter is blocked on another thread right now: it would
    // not call it before its OS wait ends, so the caller does the work at once.
    bool defer(const std::shared_ptr<PollMember> &member);
    // A thread is blocked in the OS wait right now (or about to be), so whatever the OS reports is
    // taken without anybody else's call: the poll's event for it follows.
    bool has_blocked_waiter() const { return blocked_.load(std::memory_order_acquire); }

    // npipe_wait's private polls: the objects that wait on one (a listener and the pipes it
    // accepted share its poll). The last to close closes the poll.
    void add_private_user() { private_users_.fetch_add(1, std::memory_order_relaxed); }
    bool drop_private_user() { return private_users_.fetch_sub(1, std::memory_order_acq_rel) == 1; }
    bool is_private() const { return private_users_.load(std::memory_order_relaxed) > 0; }

protected:
    // Blocks for at most timeout_ms (< 0: no limit) for OS events and processes what arrived.
    // Must return early after interrupt(). Returns st::ok or a failure to hand to the caller.
    virtual int32_t process_os_events(int32_t timeout_ms) = 0;
    // Makes a blocked (or the next) process_os_events return soon. Thread-safe.
    virtual void interrupt() = 0;
    // Called once by close(), after the members were stopped and before a blocked waiter is
    // interrupted.
    virtual void on_close() = 0;

private:
    struct Lingering {
        std::shared_ptr<PollMember> member;
        Deadline deadline;
    };
    struct Timer {
        const PollMember *key;
        std::weak_ptr<PollMember> member;
        Deadline when;
    };
    // The nearest linger deadline or timer: the OS wait is bounded by it.
    Deadline nearest_deadline();
    void expire_lingers();
    void fire_timers();
    void run_deferred();

    size_t harvest(Event *events, size_t capacity);
    // True if the waiter may block: nothing queued. Marks the waiter as blocked.
    bool enter_blocking();
    void leave_blocking();

    std::mutex mu_;
    std::deque<std::shared_ptr<ReadySource>> ready_;
    std::vector<uint64_t> wakes_;
    std::vector<std::weak_ptr<PollMember>> members_;
    size_t members_prune_at_ = 64;
    std::vector<Lingering> lingering_;
    std::vector<Timer> timers_;
    std::vector<std::weak_ptr<PollMember>> deferred_members_;  // before_wait() is due at the next wait
    std::atomic<bool> any_deferred_{false};                    // deferred_members_ is not empty
    std::atomic<bool> blocked_{false};  // the waiter is (about to be) blocked in process_os_events
    std::thread::id waiter_;
    std::atomic<bool> waiting_{false};
    std::atomic<bool> closed_{false};
    std::atomic<int> private_users_{0};
};

}  // namespace npipe
