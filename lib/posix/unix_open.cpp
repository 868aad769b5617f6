// The backend factories for Linux: npipe_create (server instances on a shared listener),
// npipe_open (clients, with bounded retry) and npipe_from_raw_handle (adopted sockets).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "lib/core/backend.hpp"
#include "lib/core/deadline.hpp"
#include "lib/core/error_detail.hpp"
#include "lib/core/names.hpp"
#include "lib/core/status.hpp"
#include "lib/posix/errno_map.hpp"
#include "lib/posix/listening_socket.hpp"
#include "lib/posix/unix_listener.hpp"
#include "lib/posix/unix_pipe.hpp"

namespace npipe {

using posix::ListeningSocket;
using posix::UnixPipe;

namespace {

// The name's shared listening socket, for a server instance or a listener.
int32_t create_listening_socket(const char *name, const ServerConfig &config, std::shared_ptr<ListeningSocket> &out) {
    if (config.has_sddl)
        return fail(st::notsup, "security descriptors (sddl) are Windows-only; on Linux use NPIPE_CURRENT_USER_ONLY");
    if (config.flags & pf::allow_remote) return fail(st::notsup, "NPIPE_ALLOW_REMOTE: AF_UNIX sockets are local only");
    std::string path;
    const int32_t rc = map_pipe_name(name, NameRole::server, path);
    if (rc < 0) return rc;
    return ListeningSocket::acquire(path, config, out);
}

}  // namespace

int32_t create_server(const char *name, const ServerConfig &config, std::shared_ptr<Pipe> &out) {
    std::shared_ptr<ListeningSocket> listener;
    const int32_t rc = create_listening_socket(name, config, listener);
    if (rc < 0) return rc;
    PipeSetup setup = server_setup(config);
    setup.framed = true;
    try {
        out = std::make_shared<UnixPipe>(setup, listener);
    } catch (...) {
        listener->release();
        throw;
    }
    return st::ok;
}

int32_t create_listener(const char *name, const ListenerConfig &config, std::shared_ptr<Listener> &out) {
    const ServerConfig server = server_config_of(config);
    std::shared_ptr<ListeningSocket> socket;
    int32_t rc = create_listening_socket(name, server, socket);
    if (rc < 0) return rc;
    PipeSetup accepted = server_setup(server);
    accepted.connected = true;
    accepted.framed = true;
    try {
        out = std::make_shared<posix::UnixListener>(config, socket, accepted);
    } catch (...) {
        socket->release();
        throw;
    }
    return st::ok;
}

int32_t open_client(const char *name, const ClientConfig &config, std::shared_ptr<Pipe> &out) {
    std::string path;
    int32_t rc = map_pipe_name(name, NameRole::client, path);
    if (rc < 0) return rc;
    sockaddr_un addr;
    socklen_t len;
    rc = posix::make_address(path, addr, len);
    if (rc < 0) return rc;
    PipeSetup setup = client_setup(config);
    setup.framed = true;
    out = std::make_shared<UnixPipe>(setup, addr, len, path);  // the attempts: UnixPipe::os_try_open
    return st::ok;
}

int32_t adopt_raw_handle(intptr_t raw, uint32_t flags, std::shared_ptr<Pipe> &out) {
    if (raw < 0 || raw > INT32_MAX)
        return failf(st::inval, 0, "%lld is not a file descriptor", static_cast<long long>(raw));
    const int fd = static_cast<int>(raw);
    struct stat sb;
    if (fstat(fd, &sb) < 0) return posix::fail_errno_as(st::inval, errno, "fstat of the raw handle");
    if (!S_ISSOCK(sb.st_mode)) return failf(st::inval, 0, "fd %d is not a socket", fd);
    int value = 0;
    socklen_t vlen = sizeof value;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &vlen) < 0 || value != AF_UNIX)
        return failf(st::inval, 0, "fd %d is not an AF_UNIX socket", fd);
    vlen = sizeof value;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &vlen) < 0 || value != SOCK_STREAM)
        return failf(st::inval, 0, "fd %d is not a stream socket", fd);
    sockaddr_un peer{};
    socklen_t peer_len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &peer_len) < 0)
        return posix::fail_errno_as(st::inval, errno, "the raw handle is not a connected socket");
    const int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return posix::fail_errno(errno, "fcntl(O_NONBLOCK)");
    const int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return posix::fail_errno(errno, "fcntl(FD_CLOEXEC)");
    PipeSetup setup;
    setup.connected = true;
    setup.flags = flags & pf::message;
    setup.message_read = setup.message_write = setup.framed = (flags & pf::message) != 0;
    out = std::make_shared<UnixPipe>(setup, fd, posix::peer_cred(fd).pid);
    return st::ok;
}

}  // namespace npipe
