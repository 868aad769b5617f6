// The Linux listener: the kernel's listen backlog is the pool. The listener watches its name's
// shared listening socket (listening_socket.hpp) in its poll's epoll set and accepts connections
// as they come, as connected server pipes, up to max_pending not yet taken by npipe_accept;
// beyond that the backlog fills and clients see NPIPE_EBUSY. It keeps no instances.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "lib/core/listener_core.hpp"
#include "lib/posix/epoll_poll.hpp"
#include "lib/posix/listening_socket.hpp"

namespace npipe::posix {

class UnixListener final : public ListenerCore, public EpollSource {
public:
    // `accepted`: the setup of every accepted pipe (a connected server end).
    UnixListener(const ListenerConfig &config, std::shared_ptr<ListeningSocket> socket, const PipeSetup &accepted);
    ~UnixListener() override;

    // EpollSource: the listening socket is readable.
    void on_os_event(uint32_t tag, uint32_t events) override;

private:
    bool os_uses_instances() const override { return false; }
    int32_t os_attach(ReadyPoll &poll) override;
    void os_take_connections(std::vector<std::shared_ptr<PipeCore>> &into, size_t room) override;
    void os_release() override;

    std::shared_ptr<ListeningSocket> socket_;
    const PipeSetup accepted_;
    int listen_fd_ = -1;  // our dup of the listening socket in our poll's epoll set
    uint32_t source_id_ = 0;
};

}  // namespace npipe::posix
