// An echo server on one poll: every client gets back exactly what it sent (message mode: the
// same messages, zero-length ones included). It serves through a listener, so a burst of new
// clients does not see "busy" while others are served; with max_instances it creates instances
// one by one instead, keeping one spare waiting. Used by `listen --echo`, `demo` and `bench`.
#pragma once
#include <npipe.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "common.hpp"
#include "interrupt.hpp"

namespace tool {

struct EchoServerConfig {
    std::string name;
    uint32_t flags = 0;          // npipe_create flags (NPIPE_MESSAGE, NPIPE_FIRST_INSTANCE, ...)
    uint32_t max_instances = 0;  // 0 = unlimited
    bool once = false;           // stop after the first client leaves
    bool verbose = false;        // one stderr line per client
    const std::atomic<bool> *stop = nullptr;  // checked after every wake (token kStopToken)
};

struct EchoStats {
    uint64_t clients = 0;
    uint64_t bytes = 0;     // echoed payload bytes
    uint64_t messages = 0;  // message mode: echoed messages
};

// Creates the first instance; returns its failure (npipe_create) before serving anything.
// `on_ready` (may be empty) is called once the first instance waits for clients.
// Runs until `stop` is set (and kStopToken woken), or --once, or a failure of the poll.
Failure run_echo_server(npipe_poll_t poll, const EchoServerConfig &cfg, EchoStats &stats,
                        void (*on_ready)(void *) = nullptr, void *ready_arg = nullptr);

}  // namespace tool
