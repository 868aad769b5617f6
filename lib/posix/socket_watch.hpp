// A name's listening socket watched in one poll's epoll set, once, for every server instance of
// the name on that poll that waits for a client: an instance holds no descriptor and no epoll
// entry of its own, and an incoming client wakes one epoll entry, not one per instance.
//
// Instances queue themselves when they start waiting (and try an accept of their own at once, for
// a client already in the backlog); when the socket becomes readable the watch accepts and offers
// each connection to the queued instances in order. The watch never holds its lock while it calls
// an instance (an instance calls the watch with its own lock held).
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
    // A client accepted for an instance that had stopped waiting meanwhile, or -1: the next
    // instance to wait takes it before it looks at the backlog.
    int take_unclaimed();

    // EpollSource: the listening socket is readable.
    void on_os_event(uint32_t tag, uint32_t events) override;

private:
    std::shared_ptr<ListeningSocket> socket_;
    std::shared_ptr<EpollPoll> poll_;
    int fd_ = -1;  // our dup of the listening socket in the epoll set
    uint32_t source_id_ = 0;
    std::mutex mu_;
    std::deque<std::weak_ptr<UnixPipe>> waiting_;
    std::deque<int> unclaimed_;
};

}  // namespace npipe::posix
