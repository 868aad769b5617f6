// The stdin/stdout <-> pipe relay used by `listen` and `connect`: one poll, the pipe under
// kPipeToken, stdin chunks arriving as wakes under kStdinToken.
//
// Ends of a session (documented in the --help of both commands):
//   byte mode: there is no half-close on a pipe, so stdin EOF can only be signalled by closing.
//     exit_on=auto   (default) stdin EOF after stdin carried data: as exit_on=stdin, the way
//                    `nc -N` ends a connection at the end of its input; an empty stdin (< /dev/null):
//                    as exit_on=pipe, so a side that only receives keeps receiving.
//     exit_on=pipe   stdin EOF: flush, keep copying the pipe to stdout until the peer closes.
//     exit_on=stdin  stdin EOF: flush, then end the session (a server first waits until the client
//                    has read everything: see drain_before_close).
//     exit_on=echoed stdin EOF: flush, then close once as many bytes came back as were sent
//                    (for --echo servers).
//   message mode: stdin EOF sends a zero-length message, the end-of-stream marker; a zero-length
//     message from the peer means the peer's input ended. exit_on=auto and exit_on=pipe then end
//     the session once both markers have passed (a clean, lossless two-way close); the other
//     modes act as above.
//   The peer closing always ends the session. If it closes while stdin still has input for it, or
//   with bytes we accepted still undelivered, the transfer is broken (SessionResult::broken): a receiver in
//   byte mode cannot tell a killed sender from a finished one, so it is the sender that reports.
#pragma once
#include <npipe.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "common.hpp"
#include "progress.hpp"
#include "stdio_pump.hpp"

namespace tool {

constexpr uint64_t kPipeToken = 1;
constexpr uint64_t kStdinToken = 2;

enum class ExitOn { automatic, pipe, stdin_eof, echoed };

struct RelayOptions {
    bool message = false;
    bool lines = false;  // message mode: one message per stdin line (else one per stdin read)
    ExitOn exit_on = ExitOn::automatic;
    bool progress = false;  // --progress; default: stderr is a terminal and stdout is not
};

struct SessionResult {
    Failure failure;          // failed() when the session broke
    bool peer_closed = false; // the peer closed (as opposed to our side ending the session)
    uint64_t sent = 0;        // payload bytes written to the pipe
    uint64_t received = 0;    // payload bytes copied to stdout
    bool interrupted = false; // Ctrl-C / SIGTERM asked us to stop (interrupt.hpp)
    std::string broken;       // non-empty: the peer left before everything was delivered (why)
};

// Reads --message, --lines, --exit-on (auto, pipe, stdin, and echoed if `allow_echoed`),
// --progress and --no-progress; prints a usage error and returns false when they do not fit.
bool relay_options_from(std::string_view cmd, const ParsedArgs &args, bool allow_echoed, RelayOptions &out);

class Relay {
public:
    Relay(npipe_poll_t poll, std::shared_ptr<StdinPump> in, RelayOptions opts)
        : poll_(poll), in_(std::move(in)), opts_(opts) {}

    // Relays over a connected, registered pipe until the session ends. Data taken from stdin but
    // not yet sent when a peer leaves is kept for the next session. `peer` names the other end in
    // messages ("the server", "client 2").
    SessionResult session(npipe_t pipe, const std::string &peer);

private:
    static constexpr size_t kMaxPending = 256 * 1024;  // stdin bytes held for the pipe
    bool pull_stdin();  // moves stdin chunks into out_ (bounded); false on stdin read error
    void settle_stdin();  // after the peer left: pull until there is input, its end, or 250 ms
    npipe_poll_t poll_;
    std::shared_ptr<StdinPump> in_;
    RelayOptions opts_;
    std::deque<std::string> out_;   // chunks / messages waiting for the pipe
    size_t out_off_ = 0;            // byte mode: bytes of out_.front() already written
    size_t out_bytes_ = 0;
    std::string line_tail_;         // --lines: an incomplete last line
    bool stdin_eof_ = false;
    bool stdin_had_data_ = false;   // exit_on=automatic: stdin carried at least one byte
    bool stdin_starved_ = false;    // the last pull found the pump empty (a wake will follow)
};

// A server that ends a session: wait until the client has read every accepted byte (npipe_drain),
// because npipe_disconnect discards what the client has not read yet, as DisconnectNamedPipe does.
// The wait is bounded by `stall_ms` without progress. Returns "" when everything was delivered,
// else why not (a broken transfer). A client needs no drain: closing keeps its data for the server.
std::string drain_before_close(npipe_poll_t poll, npipe_t pipe, int stall_ms, const std::string &peer);

// The line a broken transfer ends with: "<why> (N bytes sent, M received)".
std::string broken_transfer_message(const SessionResult &s);

}  // namespace tool
