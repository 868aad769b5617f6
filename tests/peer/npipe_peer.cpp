// npipe_peer: the other process of the killed-peer tests (suite killed_peers). It runs one end of
// a verified two-way transfer (transfer.hpp) against the test process:
//
//   npipe_peer server NAME SEED BYTES   creates an instance of NAME and waits for its client
//   npipe_peer client NAME SEED BYTES   opens NAME (waiting up to 30 s for a server)
//
// BYTES is what each side sends; 0 means endless: the transfer runs until the process is killed
// (that is what the test does) or the peer leaves. After a complete transfer the client flushes
// and closes first; the server waits for that EOF, so neither side discards bytes the other has
// not read yet.
// Exit status: 0 transfer complete and every byte verified; 1 a byte differed, a read returned
// more than asked, or the peer left early; 2 usage; 3 a bound passed; 4 a call failed.
#include "transfer.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

constexpr int32_t kBoundMs = 60000;  // the whole run; far above any transfer the tests ask for

int fail(const char *what, int64_t rc, int status) {
    std::fprintf(stderr, "npipe_peer: %s: %s (%s)\n", what, npipe_err_name(static_cast<int>(rc)),
                 npipe_last_error_message());
    return status;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 5 || (std::string(argv[1]) != "server" && std::string(argv[1]) != "client")) {
        std::fprintf(stderr, "usage: npipe_peer server|client NAME SEED BYTES\n");
        return 2;
    }
    const bool is_server = std::string(argv[1]) == "server";
    const char *name = argv[2];
    const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
    uint64_t bytes = std::strtoull(argv[4], nullptr, 10);
    if (bytes == 0) bytes = UINT64_MAX;

    npipe_poll_t poll = 0;
    int64_t rc = npipe_poll_create(&poll);
    if (rc != NPIPE_OK) return fail("npipe_poll_create", rc, 4);
    npipe_t pipe = 0;
    if (is_server) {
        rc = npipe_create(name, nullptr, &pipe);
        if (rc != NPIPE_OK) return fail("npipe_create", rc, 4);
    } else {
        npipe_client_options_t o;
        npipe_client_options_init(&o);
        o.timeout_ms = 30000;
        rc = npipe_open(name, &o, &pipe);
        if (rc != NPIPE_OK) return fail("npipe_open", rc, 4);
    }
    rc = npipe_register(poll, pipe, 1, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc != NPIPE_OK) return fail("npipe_register", rc, 4);
    if (is_server) {
        rc = peer::connect_server(poll, pipe, 30000);
        if (rc != NPIPE_OK) return fail("npipe_connect", rc, rc == NPIPE_EAGAIN ? 3 : 4);
    }

    peer::Transfer t(pipe, is_server, seed, bytes, bytes);
    const bool finished = peer::pump_until(poll, t, [&] { return t.done() || t.peer_gone(); }, kBoundMs);
    std::fprintf(stderr, "npipe_peer %s: sent %llu, received %llu%s\n", argv[1],
                 static_cast<unsigned long long>(t.sent), static_cast<unsigned long long>(t.received),
                 t.failed() ? " (a byte differed or a read overflowed)" : "");
    if (t.failed()) return 1;
    if (!finished) return 3;
    if (!t.done()) return fail("the peer left before the end", t.write_error ? t.write_error : t.read_error, 1);

    // Every byte of ours handed to the OS, then the closing order described above.
    npipe_event_t ev[8];
    const auto flushed = [&] {
        for (int i = 0; i < kBoundMs / 50; ++i) {
            if (npipe_flush(pipe) == NPIPE_OK) return true;
            npipe_poll_wait(poll, ev, 8, 50);
        }
        return false;
    };
    if (!flushed()) return fail("npipe_flush", npipe_flush(pipe), 3);
    if (is_server) {
        char byte;
        int64_t n = NPIPE_EAGAIN;
        for (int i = 0; i < kBoundMs / 50 && n == NPIPE_EAGAIN; ++i) {
            n = npipe_read(pipe, &byte, 1);
            if (n == NPIPE_EAGAIN) npipe_poll_wait(poll, ev, 8, 50);
        }
        if (n != 0) return fail("waiting for the client's EOF", n, n == NPIPE_EAGAIN ? 3 : 1);
    }
    npipe_close(pipe);
    npipe_poll_close(poll);
    return 0;
}
