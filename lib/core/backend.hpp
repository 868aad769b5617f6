// The seam between the portable layers (capi/, lib/core) and a platform backend (lib/win or
// lib/posix). capi/ validates arguments and resolves handles, then calls these; a backend
// implements the two abstract classes and the factory functions below. Every failure goes
// through fail()/failf() (error_detail.hpp) so the caller gets a specific message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "object.hpp"
#include "ready_poll.hpp"
#include "types.hpp"

namespace npipe {

using Poll = ReadyPoll;

// What npipe_register & co. take: a pipe end or a listener.
class Endpoint : public Object {
public:
    using Object::Object;

    // npipe_register / npipe_reregister / npipe_deregister. The poll is alive and not closed.
    virtual int32_t register_with(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) = 0;
    virtual int32_t reregister(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) = 0;
    virtual int32_t deregister(const std::shared_ptr<Poll> &poll) = 0;
    virtual int32_t take_error() = 0;
    // npipe_close: the handle is already gone from the table. Never blocks.
    virtual void close() = 0;
    virtual int32_t get_info(PipeInfo &info) = 0;
    // npipe_wait: the condition bits of `interests` that hold (> 0), 0 at the timeout, or a failure.
    virtual int32_t wait(uint32_t interests, int32_t timeout_ms) = 0;
};

class Pipe : public Endpoint {
public:
    Pipe() : Endpoint(ObjectKind::pipe) {}

    virtual int32_t connect() = 0;
    virtual int32_t disconnect() = 0;

    // npipe_read / npipe_readv (msg_flags == nullptr: on a message pipe, skip empty messages) and
    // npipe_read_msg (msg_flags != nullptr: set to mf::partial / mf::empty). iovcnt >= 1, the
    // iovecs are valid and `total` is their summed length, computed without overflow (capi/
    // checked all of it); total may be 0.
    virtual int64_t read(const IoVec *iov, size_t iovcnt, size_t total, uint32_t *msg_flags) = 0;
    // npipe_write / npipe_writev (one message in message mode); the same guarantees.
    virtual int64_t write(const IoVec *iov, size_t iovcnt, size_t total) = 0;
    virtual int32_t flush() = 0;
    // npipe_drain: st::ok once the peer has read every accepted byte, st::pipe if it left before,
    // else st::again (NPIPE_WRITABLE follows).
    virtual int32_t drain() = 0;
    // npipe_peer_identity, on a connected pipe.
    virtual int32_t peer_identity(PeerIdentity &out) = 0;
    virtual int32_t raw_handle(intptr_t &out) = 0;
    // The blocking npipe_open: the open policy run on the caller's thread (a client made by
    // open_client and not yet published).
    virtual int32_t open_blocking() = 0;
};

// A listener (npipe_listen): keeps instances waiting for clients and hands out connected pipes.
class Listener : public Endpoint {
public:
    Listener() : Endpoint(ObjectKind::listener) {}
    // npipe_accept: a connected server pipe, registered nowhere (bound to the listener's poll).
    virtual int32_t accept(std::shared_ptr<Pipe> &out) = 0;
};

// Factories, implemented by the platform backend.
int32_t create_poll(std::shared_ptr<Poll> &out);
int32_t create_server(const char *name, const ServerConfig &config, std::shared_ptr<Pipe> &out);
int32_t open_client(const char *name, const ClientConfig &config, std::shared_ptr<Pipe> &out);
int32_t adopt_raw_handle(intptr_t raw, uint32_t flags, std::shared_ptr<Pipe> &out);
int32_t create_listener(const char *name, const ListenerConfig &config, std::shared_ptr<Listener> &out);

}  // namespace npipe
