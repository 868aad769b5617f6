// The portable listener (npipe_listen / npipe_accept): the pool policy written once.
//   - While registered and fewer than max_pending pipes wait to be accepted, at least
//     `spare_instances` instances wait for clients (where the OS needs instances: Windows).
//   - A connected instance is replaced as soon as its completion is processed (the poll asks the
//     listener, which moves it to the pending list and creates the next one), not when the
//     caller accepts.
//   - A burst that takes every waiting instance between two refills doubles the number kept
//     waiting (up to 64); after a second without one the surplus is closed again.
//   - With max_pending pipes pending no instance is created (back pressure) until the caller
//     accepts.
//   - A failure to create an instance raises NPIPE_ERROR (npipe_take_error returns it) and is
//     retried on the poll's clock with backoff, at most 1 s apart.
// Where the OS queues connections itself (Linux' listen backlog), the backend hands them over
// as connected pipes instead (os_take_connections), up to max_pending.
//
// Lock order: the listener's mutex, then an instance's (the instances never lock the listener;
// their news reaches the poll, which asks the listener at the next harvest).
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "backend.hpp"
#include "deadline.hpp"
#include "failure.hpp"
#include "pipe_core.hpp"
#include "pollable_core.hpp"

namespace npipe {

// The server options a listener's name is created with (every backend's instances and sockets).
ServerConfig server_config_of(const ListenerConfig &config);

class ListenerCore : public PollableEndpoint<Listener> {
public:
    explicit ListenerCore(const ListenerConfig &config);

    // Endpoint (registration and npipe_wait: PollableEndpoint)
    int32_t take_error() final;
    void close() final;
    int32_t get_info(PipeInfo &info) final;

    // Listener
    int32_t accept(std::shared_ptr<Pipe> &out) final;

    // PollMember
    void poll_closed() final;
    void linger_expired() final {}
    void timer_fired() final;

protected:
    // ---- The OS hooks (mu_ held). ---------------------------------------------------------------
    // The OS keeps instances waiting for clients (Windows) rather than a queue of its own (Linux).
    virtual bool os_uses_instances() const = 0;
    // A new server instance of the name, not registered anywhere yet; or a failure.
    virtual int32_t os_new_instance(std::shared_ptr<PipeCore> &out, Failure &failure);
    // Connections the OS queued (Linux), as connected server pipes not registered anywhere yet, at
    // most `room` of them.
    virtual void os_take_connections(std::vector<std::shared_ptr<PipeCore>> &into, size_t room);
    // The listener is closed or its poll is: release what the OS holds for it.
    virtual void os_release() = 0;

    // The first instance, made by npipe_listen so the name exists at once; it waits for the
    // first registration to join the poll (Windows).
    void set_first_instance(std::shared_ptr<PipeCore> instance) { first_ = std::move(instance); }
    // Backends call it when the OS has news (Linux: the listening socket is readable).
    void refresh() { sweep(); }
    const ListenerConfig &config() const { return config_; }

private:
    // PollableCore
    void on_registered() override;
    void raise_current_state() override;
    uint32_t level_condition() override;
    uint32_t wait_condition(uint32_t interests) override;
    void on_collect() override { sweep(); }

    void sweep();
    void replenish();
    bool adopt(const std::shared_ptr<PipeCore> &pipe, bool wait_for_client, Failure &failure);
    void note_failure(const Failure &failure);
    void schedule_timer();
    void close_all();

    const ListenerConfig config_;
    std::shared_ptr<PipeCore> first_;
    std::vector<std::shared_ptr<PipeCore>> waiting_;  // instances waiting for a client
    std::deque<std::shared_ptr<PipeCore>> pending_;   // connected, not accepted yet
    uint32_t target_;                                 // instances to keep waiting now
    Deadline burst_ends_ = Deadline::never();         // the surplus goes after a quiet second
    bool grown_ = false;
    FirstFailure failure_;
    int32_t retry_backoff_ms_ = 0;  // 0: no failure to back off from
    Deadline retry_at_ = Deadline::never();
};

}  // namespace npipe
