#include "listener_core.hpp"

#include <algorithm>

#include "error_detail.hpp"
#include "status.hpp"

namespace npipe {
namespace {

constexpr uint32_t kMaxWaiting = 64;
constexpr int32_t kQuietMs = 1000;  // a second without a burst ends the growth
constexpr int32_t kMaxRetryBackoffMs = 1000;

}  // namespace

ServerConfig server_config_of(const ListenerConfig &config) {
    ServerConfig server;
    server.flags = config.flags;
    server.in_buffer_size = config.in_buffer_size;
    server.out_buffer_size = config.out_buffer_size;
    server.linger_ms = config.linger_ms;
    server.has_sddl = config.has_sddl;
    server.sddl = config.sddl;
    return server;
}

ListenerCore::ListenerCore(const ListenerConfig &config)
    : PollableEndpoint<Listener>("listener"), config_(config), target_(config.spare_instances) {}

int32_t ListenerCore::os_new_instance(std::shared_ptr<PipeCore> &, Failure &failure) {
    failure = Failure{st::notsup, 0, "this platform keeps no instances for a listener"};
    return failure.code;
}

void ListenerCore::os_take_connections(std::vector<std::shared_ptr<PipeCore>> &, size_t) {}

// ---------------------------------------------------------------------------------------------
// The pool

bool ListenerCore::adopt(const std::shared_ptr<PipeCore> &pipe, bool wait_for_client, Failure &failure) {
    const KeptDetail kept;  // a background step: the caller's detail stays as it was
    const int32_t rc = pipe->join_listener(poll_, weak_from_this(), wait_for_client);
    if (rc < 0) {
        failure = kept.captured(rc);
        pipe->close();
        return false;
    }
    return true;
}

void ListenerCore::note_failure(const Failure &failure) {
    failure_.note(failure);
    retry_backoff_ms_ = retry_backoff_ms_ == 0 ? 1 : std::min(retry_backoff_ms_ * 2, kMaxRetryBackoffMs);
    retry_at_ = Deadline::after_ms(retry_backoff_ms_);
    raise(ev::error);
}

// Brings the pool up to date: instances that finished move to the pending list (or are dropped
// when their wait failed), the OS's own queue is taken, the growth and decay rules apply, and
// the pool is refilled. Runs whenever the poll asks the listener, at accept and on the timer.
void ListenerCore::sweep() {
    if (closed_ || canceled_ || !poll_) return;
    const size_t pending_before = pending_.size();
    const bool had_waiting = !waiting_.empty();
    size_t taken = 0;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        Failure failure;
        const PipeCore::Progress progress = (*it)->listener_progress(failure);
        if (progress == PipeCore::Progress::waiting) {
            ++it;
            continue;
        }
        if (progress == PipeCore::Progress::connected) {
            pending_.push_back(*it);
            ++taken;
        } else {
            failure_.note(failure);
            raise(ev::error);
            (*it)->close();
        }
        it = waiting_.erase(it);
    }
    if (!os_uses_instances() && pending_.size() < config_.max_pending) {
        std::vector<std::shared_ptr<PipeCore>> fresh;
        os_take_connections(fresh, config_.max_pending - pending_.size());
        for (auto &pipe : fresh) {
            Failure failure;
            if (adopt(pipe, false, failure))
                pending_.push_back(std::move(pipe));
            else
                note_failure(failure);
        }
    }
    // A burst took every waiting instance between two refills: keep more waiting from now on.
    if (had_waiting && waiting_.empty() && taken > 0 && target_ < kMaxWaiting) {
        target_ = std::min<uint32_t>(target_ * 2, kMaxWaiting);
        grown_ = true;
    }
    if (taken > 0 && grown_) burst_ends_ = Deadline::after_ms(kQuietMs);
    if (grown_ && burst_ends_.passed()) {
        target_ = config_.spare_instances;
        grown_ = false;
        while (waiting_.size() > target_) {  // the surplus that waited in vain
            waiting_.back()->close();
            waiting_.pop_back();
        }
    }
    replenish();
    schedule_timer();
    if (pending_.size() > pending_before) raise(ev::readable);
}

void ListenerCore::replenish() {
    if (!os_uses_instances() || (!events_.registered() && !private_poll_)) return;
    if (retry_backoff_ms_ != 0 && !retry_at_.passed()) return;  // backing off after a failure
    while (waiting_.size() < target_ && pending_.size() < config_.max_pending) {
        std::shared_ptr<PipeCore> instance;
        Failure failure;
        if (os_new_instance(instance, failure) < 0 || !adopt(instance, true, failure)) {
            note_failure(failure);
            return;
        }
        waiting_.push_back(std::move(instance));
        retry_backoff_ms_ = 0;
    }
}

void ListenerCore::schedule_timer() {
    Deadline next = Deadline::never();
    if (grown_) next = Deadline::earlier(next, burst_ends_);
    if (retry_backoff_ms_ != 0) next = Deadline::earlier(next, retry_at_);
    if (!next.is_never()) poll_->set_timer(shared_from_this(), next);
}

void ListenerCore::timer_fired() {
    std::lock_guard lock(mu_);
    sweep();
}

// ---------------------------------------------------------------------------------------------
// Registration, events, accept

void ListenerCore::on_registered() {
    if (first_) {
        Failure failure;
        if (adopt(first_, true, failure))
            waiting_.push_back(std::move(first_));
        else
            note_failure(failure);
        first_.reset();
    }
    sweep();
    raise_current_state();
}

void ListenerCore::raise_current_state() {
    uint32_t bits = level_condition();
    if (failure_.has()) bits |= ev::error;
    raise(bits);
}

uint32_t ListenerCore::level_condition() { return pending_.empty() || closed_ || canceled_ ? 0 : ev::readable; }

uint32_t ListenerCore::wait_condition(uint32_t interests) {
    sweep();
    return level_condition() & interests;
}

int32_t ListenerCore::accept(std::shared_ptr<Pipe> &out) {
    std::lock_guard lock(mu_);
    if (canceled_) return fail_canceled();
    if (!poll_) return fail(st::again, "the listener is not registered with a poll: it makes progress once it is");
    sweep();
    if (pending_.empty()) return fail(st::again, "no connected pipe waits to be accepted; wait for NPIPE_READABLE");
    std::shared_ptr<PipeCore> pipe = std::move(pending_.front());
    pending_.pop_front();
    pipe->leave_listener(private_poll_);
    replenish();  // room under back pressure, maybe
    schedule_timer();
    out = std::move(pipe);
    return st::ok;
}

int32_t ListenerCore::take_error() {
    std::lock_guard lock(mu_);
    if (canceled_) return fail_canceled();
    if (failure_.has()) return report(failure_.take());
    return st::ok;
}

// ---------------------------------------------------------------------------------------------
// Close, poll close, info

void ListenerCore::close_all() {
    if (first_) first_->close();
    first_.reset();
    for (auto &instance : waiting_) instance->close();
    for (auto &pipe : pending_) pipe->close();  // their clients see EOF / a broken pipe
    waiting_.clear();
    pending_.clear();
    os_release();
}

void ListenerCore::close() {
    close_with([this](bool) { close_all(); });
}

void ListenerCore::poll_closed() {
    std::lock_guard lock(mu_);
    if (canceled_) return;
    canceled_ = true;
    events_.disarm();
    close_all();  // the instances were the poll's members too: each stopped already
    poll_.reset();
    wake_waiters();
}

int32_t ListenerCore::get_info(PipeInfo &info) {
    std::lock_guard lock(mu_);
    info = PipeInfo{};
    info.flags = pf::info_listener | config_.flags;
    info.in_buffer_size = config_.in_buffer_size;
    info.out_buffer_size = config_.out_buffer_size;
    info.waiting_instances = static_cast<uint32_t>(waiting_.size() + (first_ ? 1 : 0));
    info.pending_accepts = static_cast<uint32_t>(pending_.size());
    return st::ok;
}

}  // namespace npipe
