// The Linux pipe end: the OS half of one end of an AF_UNIX stream connection (client, adopted
// socket, or a server instance that accepts from its name's shared listening socket; see
// listener.hpp). The pipe's rules live in PipeCore; this class only makes the system calls:
//   - reads go straight from the socket into the caller's buffers in byte mode; in message mode
//     they are cut into messages by the core's frame decoder (lib/core/framing.hpp);
//   - writes go to the kernel at once, straight from the caller's buffers when nothing is queued;
//     what the kernel does not take waits in the core's write queue and is sent on EPOLLOUT;
//   - readiness comes from the poll's epoll set (edge-triggered), tagged with the connection's
//     generation so that an event of an earlier connection never reaches a later one;
//   - npipe_wait(READABLE) may wait in a blocking recv instead (PipeCore::wait_without_poll).
#pragma once
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/framing.hpp"
#include "lib/core/pipe_core.hpp"
#include "lib/posix/epoll_poll.hpp"
#include "lib/posix/listening_socket.hpp"
#include "lib/posix/name_watch.hpp"
#include "lib/posix/socket_watch.hpp"

namespace npipe::posix {

class UnixPipe final : public PipeCore, public EpollSource {
public:
    // A server instance (IDLE) of `listener`'s name.
    UnixPipe(const PipeSetup &setup, std::shared_ptr<ListeningSocket> listener);
    // A connected end (an adopted socket); takes ownership of `fd`.
    UnixPipe(const PipeSetup &setup, int fd, uint64_t peer_pid);
    // A client still to connect to the socket at `path`.
    UnixPipe(const PipeSetup &setup, const sockaddr_un &address, socklen_t address_len, std::string path);
    ~UnixPipe() override;

    // EpollSource
    void on_os_event(uint32_t tag, uint32_t events) override;

    // A client the name's socket watch accepted, offered to this instance (socket_watch.hpp).
    enum class Offer { taken, not_waiting, refused };
    Offer offer_client(int fd);
    // The file of the name this client waits for appeared (name_watch.hpp).
    void name_appeared();

private:
    // PipeCore
    int32_t os_attach(ReadyPoll &poll) override;
    int32_t os_start_connect(Failure &failure) override;
    void os_disconnect() override;
    int64_t os_read_direct(const IoVec *iov, size_t iovcnt, size_t total) override;
    bool os_fill_read_queue() override;
    int64_t os_write_direct(const uint8_t *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt) override;
    void os_write_more() override;
    OpenAttempt os_try_open() override;
    void os_watch_for_server() override;
    void os_pause_before_retry(OpenAttempt::Outcome outcome, int32_t ms) override;
    void os_open_ended() override;
    uint32_t os_condition() override;
    bool os_readable() override;
    bool os_begin_receive(int32_t timeout_ms, uint8_t *buf, size_t len) override;
    int64_t os_receive(uint8_t *buf, size_t len) override;
    bool os_end_receive(int64_t result, size_t asked) override;
    void os_closing() override;
    void os_release() override;
    void os_query_info(PipeInfo &info) override;
    int64_t os_peer_unread() override;
    int32_t os_peer_identity(PeerIdentity &out) override;
    intptr_t os_raw_handle() override;

    EpollPoll &epoll() const { return static_cast<EpollPoll &>(*poll()); }
    uint32_t conn_tag() const;
    int attach_connection(int fd, uint64_t peer_pid);
    int next_waiting_client();
    int32_t try_accept(Failure &failure);
    int32_t take_client(int fd, Failure &failure);
    bool refuses(const PeerCred &cred) const;
    void close_connection();
    void drop_waiting_client();
    void release_listener();
    void stop_watching_name();
    void read_failed(int err);
    void forget_input();
    void took_input(size_t n, size_t asked);
    int64_t read_spilling(const IoVec *iov, size_t iovcnt, size_t total);
    int64_t took_direct(ssize_t n, size_t asked, size_t total, bool spilled);
    void took_nothing(int err);
    uint32_t conn_events() const;
    void want_write_space(bool wanted);
    Failure write_failure(int err);

    std::shared_ptr<ListeningSocket> listener_;  // server: until close or poll close
    sockaddr_un address_{};                      // client: where to connect
    socklen_t address_len_ = 0;
    std::string path_;
    int fd_ = -1;                            // the connection
    std::shared_ptr<SocketWatch> watch_;     // server: the name's socket watched on our poll
    std::shared_ptr<NameWatch> name_watch_;  // client on a poll: waits for the name to appear
    bool uses_thread_watch_ = false;         // client in a blocking open: its thread's watch
    uint32_t generation_ = 0;                // of the connection: tags epoll events of fd_
    uint32_t source_id_ = 0;                 // in the poll's source table (0: not attached)
    framing::FrameDecoder decoder_;          // message mode
    std::vector<uint8_t> receive_buffer_;    // message mode: one recv before decoding
    uint64_t peer_pid_ = 0;
    uint64_t sent_on_connection_ = 0;  // bytes handed to the kernel on this connection
    bool peer_reset_ = false;          // the peer closed with bytes unread (ECONNRESET seen)
    bool out_armed_ = false;           // EPOLLOUT asked for (want_write_space)
    // What this end knows of the socket's receive queue without asking (os_readable). `empty`
    // holds until the next EPOLLIN: bytes that come after a read or poll(2) found none are always
    // reported by the poll. `arrived` holds until a read: epoll reports EPOLLIN only when the socket
    // is readable as the event is collected (it asks the socket again then), not for bytes an
    // earlier read already took.
    enum class KernelInput : uint8_t { unknown, empty, arrived };
    KernelInput input_ = KernelInput::unknown;
    // A byte-mode read that fills the caller's buffers exactly (a reply read with its own size)
    // cannot tell whether more is queued, so the next read would be a recv that finds nothing.
    // While reads come back short, each read made while a thread waits on the poll asks for kSpill
    // bytes more than the caller's buffers (into a buffer on the stack; what lands there is queued
    // for the next read): one that still comes back short shows the queue empty. A read that
    // fills even that is streaming: plain reads again.
    bool spill_ = true;
    bool peer_finished_ = false;  // EPOLLRDHUP or EPOLLHUP came: the peer sends nothing more
    // Server: a client may have come for this instance and not been taken yet. A Windows instance
    // listens from its creation and from each npipe_connect until npipe_disconnect (os_disconnect).
    bool listening_ = true;
    // npipe_wait's receive (PipeCore::wait_without_poll): a blocking recv with SO_RCVTIMEO, which
    // needs the socket's O_NONBLOCK cleared (every other call here passes MSG_DONTWAIT).
    // The descriptor recv blocks on, open until the receive ends. While it is open its number
    // cannot be fd_'s again, so fd_ != receiving_fd_ at the end means the connection went meanwhile
    // (close_connection left the descriptor to the receive to close).
    int receiving_fd_ = -1;
    bool blocking_allowed_ = false;   // O_NONBLOCK is cleared on fd_
    int32_t receive_timeout_ms_ = 0;  // SO_RCVTIMEO on fd_ (< 0: none)
};

}  // namespace npipe::posix
