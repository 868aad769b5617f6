// A name's listening socket watched in one poll's epoll set, once, for every server instance of
// the name on that poll that waits for a client: an instance holds no descriptor and no epoll
// entry of its own, and an incoming client wakes one epoll entry, not one per instance.
//
// Instances queue themselves when they start waiting (and try an accept of their own at once, for
// a client already in the backlog); when the socket becomes readable the watch accepts and offers
// each connection to the queued instances in order. The watch never holds its queue's lock while it
// calls an instance (an instance calls the watch with its own lock held); the lock that keeps its
// serves one at a time is held then, and an instance never takes it.
//
// The instances of one name may wait on several polls, each with its watch, and every watch sees
// every client arrive. A watch that accepted a client and found only instances that had stopped
// waiting (one that took its client itself, right after it queued, stays queued) leaves it with
// the name's socket, unclaimed, and has every watch of the name offer it again: their instances
// wait for a client the backlog no longer holds.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "lib/posix/epoll_poll.hpp"
#include "lib/posix/listening_socket.hpp"

namespace npipe::posix {

class UnixPipe;

class SocketWatch final : public EpollSource, public std::enable_shared_from_this<SocketWatch> {
public:
    // The watch of `socket` on `poll`, made (and joined to the epoll set) for the first instance.
    static int32_t of(const std::shared_ptr<ListeningSocket> &socket, const std::shared_ptr<EpollPoll> &poll,
                      std::shared_ptr<SocketWatch> &out);
    SocketWatch(std::shared_ptr<ListeningSocket> socket, std::shared_ptr<EpollPoll> poll)
        : socket_(std::move(socket)), poll_(std::move(poll)) {}
    ~SocketWatch() override;

    // `instance` waits for a client (once in the queue, however often it asks).
    void enqueue(const std::shared_ptr<UnixPipe> &instance);

    // EpollSource: the listening socket is readable.
    void on_os_event(uint32_t tag, uint32_t events) override;

private:
    // Offers clients to the queued instances: unclaimed ones first, then (from_backlog) the
    // backlog's. True if it left a client unclaimed.
    bool serve(bool from_backlog);
    // Offers the unclaimed clients to the instances waiting on every poll of the name.
    void offer_everywhere();
    std::shared_ptr<UnixPipe> next_waiting();  // out of the queue: the first instance still open

    std::shared_ptr<ListeningSocket> socket_;
    std::shared_ptr<EpollPoll> poll_;
    int fd_ = -1;  // our dup of the listening socket in the epoll set
    uint32_t source_id_ = 0;
    std::mutex serving_;  // held through serve(): one at a time; before mu_ and any instance's lock
    std::mutex mu_;
    std::deque<std::weak_ptr<UnixPipe>> waiting_;
};

}  // namespace npipe::posix
