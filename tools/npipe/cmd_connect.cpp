// npipe connect NAME: relay stdin -> pipe -> stdout with a server.
#include <cstdio>

#include "commands.hpp"
#include "interrupt.hpp"
#include "relay.hpp"

namespace tool {
namespace {

const char *const kHelp =
    "usage: npipe connect NAME [options]\n"
    "\n"
    "Opens the client end of pipe NAME and relays: stdin to the server, the server's data to\n"
    "stdout.\n"
    "\n"
    "options:\n"
    "  --timeout MS       wait up to MS milliseconds for a busy or absent server (default 0:\n"
    "                     fail at once; -1: wait forever); the attempts run on the tool's poll\n"
    "  --message          message mode (the server must use it too): each stdin read is one\n"
    "                     message; stdin EOF sends a zero-length message, the end-of-stream marker\n"
    "  --lines            with --message: one message per stdin line\n"
    "  --current-user-only  refuse a server owned by another user (exit 6)\n"
    "  --exit-on=MODE     when to finish (default auto):\n"
    "                       auto    if stdin carried data: at its end, flush and close, as\n"
    "                               `nc -N` does (the server reads everything sent; what it\n"
    "                               sends after that is not read). Empty stdin (< /dev/null):\n"
    "                               as pipe. Message mode: as pipe.\n"
    "                       pipe    after stdin EOF, keep copying the server's data to stdout\n"
    "                               until the server closes (message mode: until the server's\n"
    "                               end-of-stream marker arrives, or it closes)\n"
    "                       stdin   at stdin EOF: flush, then close (the server still reads\n"
    "                               everything sent)\n"
    "                       echoed  at stdin EOF: flush, then close once as many bytes came back\n"
    "                               as were sent (for `npipe listen --echo`)\n"
    "                     The server closing always ends the relay; before all of stdin was\n"
    "                     sent, that is a broken transfer (exit 1).\n"
    "  --progress         bytes, rate and elapsed time on stderr (default: when stderr is a\n"
    "                     terminal and stdout is not); --no-progress turns it off\n"
    "  -v, --verbose      a line on stderr when connected and when done\n"
    "  -h, --help         this text\n";

constexpr int32_t kInterrupted = 1;

// Waits until the pipe's open ended (NPIPE_CONNECTED; npipe_take_error says how): NPIPE_OK,
// kInterrupted when a stop was requested first, or the poll's failure. The events taken here are
// not lost to the relay: it reads and writes until NPIPE_EAGAIN before its first wait.
int32_t wait_for_open(npipe_poll_t poll) {
    npipe_event_t events[16];
    for (;;) {
        const int32_t n = npipe_poll_wait(poll, events, 16, -1);
        if (n < 0) return n;
        if (interrupt_flag()) return kInterrupted;
        for (int32_t i = 0; i < n; ++i)
            if (events[i].token == kPipeToken && (events[i].events & NPIPE_CONNECTED)) return NPIPE_OK;
    }
}

}  // namespace

int cmd_connect(const std::vector<std::string> &argv) {
    auto args = parse_args("connect", argv,
                           {{"help", false, 'h'},
                            {"timeout", true},
                            {"message", false},
                            {"lines", false},
                            {"current-user-only", false},
                            {"exit-on", true},
                            {"progress", false},
                            {"no-progress", false},
                            {"verbose", false, 'v'}});
    if (!args) return exit_usage;
    if (args->has("help")) {
        std::printf("%s\n%s", kHelp, kExitCodeHelp);
        return exit_ok;
    }
    if (args->positional.size() != 1) return usage_error("connect", "expected exactly one pipe NAME");
    const std::string &name = args->positional[0];
    int64_t timeout = 0;
    if (!int_option("connect", *args, "timeout", -1, INT32_MAX, timeout)) return exit_usage;
    RelayOptions ropts;
    if (!relay_options_from("connect", *args, true, ropts)) return exit_usage;
    bool verbose = args->has("verbose");

    // The open runs on the poll (NPIPE_NONBLOCK_OPEN): while the server is absent or busy no
    // thread sleeps in the library, and Ctrl-C ends the wait like any other.
    npipe_client_options_t o;
    npipe_client_options_init(&o);
    o.flags = NPIPE_NONBLOCK_OPEN;
    o.timeout_ms = static_cast<int32_t>(timeout);
    if (ropts.message) o.flags |= NPIPE_MESSAGE;
    if (args->has("current-user-only")) o.flags |= NPIPE_CURRENT_USER_ONLY;
    const std::string cannot = "cannot connect to pipe \"" + name + "\"";
    npipe_t pipe = 0;
    int32_t rc = npipe_open(name.c_str(), &o, &pipe);
    if (rc < 0) return capture(rc, cannot, true).report();

    npipe_poll_t poll = 0;
    rc = npipe_poll_create(&poll);
    if (rc < 0) return capture(rc, "cannot create a poll").report();
    watch_interrupt(poll);
    rc = npipe_register(poll, pipe, kPipeToken, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc < 0) return capture(rc, "cannot register the pipe").report();
    rc = wait_for_open(poll);
    if (rc == kInterrupted) {
        watch_interrupt(0);
        npipe_close(pipe);
        npipe_poll_close(poll);
        return interrupted_exit_code();
    }
    if (rc < 0) return capture(rc, "cannot wait for the open").report();
    rc = npipe_take_error(pipe);
    if (rc < 0) return capture(rc, cannot, true).report();
    if (verbose)
        std::fprintf(stderr, "npipe: connected to %s (server %s)\n", os_name_of(name).c_str(),
                     describe_peer(pipe).c_str());

    Relay relay(poll, StdinPump::start(poll, kStdinToken), ropts);
    SessionResult s = relay.session(pipe, "the server");
    if (verbose)
        std::fprintf(stderr, "npipe: done: %llu bytes sent, %llu received%s\n", static_cast<unsigned long long>(s.sent),
                     static_cast<unsigned long long>(s.received), s.peer_closed ? " (server closed)" : "");
    watch_interrupt(0);
    npipe_close(pipe);
    npipe_poll_close(poll);
    if (s.interrupted) return interrupted_exit_code();
    if (s.failure.failed()) return s.failure.report();
    if (!s.broken.empty()) return plain_failure("transfer broken", broken_transfer_message(s)).report();
    return exit_ok;
}

}  // namespace tool
