// npipe listen NAME: serve one client at a time, relaying stdin -> pipe -> stdout;
// or, with --echo, echo to any number of clients at once.
#include <cstdio>

#include "commands.hpp"
#include "echo_server.hpp"
#include "interrupt.hpp"
#include "relay.hpp"

namespace tool {
namespace {

const char *const kHelp =
    "usage: npipe listen NAME [options]\n"
    "\n"
    "Creates the server end of pipe NAME (\"foo\" or \\\\.\\pipe\\foo; on Linux a bare name is the\n"
    "socket $TMPDIR/CoreFxPipe_NAME, a name starting with / is the socket path) and serves one\n"
    "client at a time: stdin goes to the client, the client's data to stdout. When a client\n"
    "leaves, the next one is served (stdin data not yet sent is kept for it).\n"
    "\n"
    "options:\n"
    "  --echo               echo server: send every client back what it sends, serving any\n"
    "                       number of clients at once through a listener (with\n"
    "                       --max-instances: instances one by one, one spare waiting);\n"
    "                       stdin is not read\n"
    "  --message            message mode (clients must use --message too); stdin EOF sends a\n"
    "                       zero-length message, the end-of-stream marker\n"
    "  --lines              with --message: one message per stdin line (default: per read)\n"
    "  --max-instances N    at most N instances of the name (1..254; default unlimited)\n"
    "  --current-user-only  only clients of the current user may connect\n"
    "  --first-instance     fail (exit 7) if the name already exists\n"
    "  --once               exit after the first client leaves\n"
    "  --exit-on=MODE       when a session ends (default auto):\n"
    "                         auto   if stdin carried data: as stdin; else as pipe (so\n"
    "                                `listen --once > file` ends when the client is done)\n"
    "                         pipe   when the client closes (message mode: or once both\n"
    "                                end-of-stream markers have passed)\n"
    "                         stdin  at stdin EOF: flush, wait until the client has read\n"
    "                                everything, then disconnect it\n"
    "                       A client that leaves before all of stdin was sent broke the\n"
    "                       transfer: with --once that is exit 1, else a line on stderr and\n"
    "                       the rest of stdin goes to the next client.\n"
    "  --progress           bytes, rate and elapsed time per client on stderr (default: when\n"
    "                       stderr is a terminal and stdout is not); --no-progress: off\n"
    "  -v, --verbose        a line on stderr per client: its pid and user\n"
    "  -h, --help           this text\n";

}  // namespace

int cmd_listen(const std::vector<std::string> &argv) {
    auto args = parse_args("listen", argv,
                           {{"help", false, 'h'},
                            {"echo", false},
                            {"message", false},
                            {"lines", false},
                            {"max-instances", true},
                            {"current-user-only", false},
                            {"first-instance", false},
                            {"once", false},
                            {"exit-on", true},
                            {"progress", false},
                            {"no-progress", false},
                            {"verbose", false, 'v'}});
    if (!args) return exit_usage;
    if (args->has("help")) {
        std::printf("%s\n%s", kHelp, kExitCodeHelp);
        return exit_ok;
    }
    if (args->positional.size() != 1) return usage_error("listen", "expected exactly one pipe NAME");
    const std::string &name = args->positional[0];
    int64_t max_instances = 0;
    if (!int_option("listen", *args, "max-instances", 1, 254, max_instances)) return exit_usage;
    RelayOptions ropts;
    if (!relay_options_from("listen", *args, false, ropts)) return exit_usage;
    bool verbose = args->has("verbose");
    bool once = args->has("once");
    uint32_t flags = 0;
    if (ropts.message) flags |= NPIPE_MESSAGE;
    if (args->has("current-user-only")) flags |= NPIPE_CURRENT_USER_ONLY;
    if (args->has("first-instance")) flags |= NPIPE_FIRST_INSTANCE;

    npipe_poll_t poll = 0;
    int32_t rc = npipe_poll_create(&poll);
    if (rc < 0) return capture(rc, "cannot create a poll").report();
    watch_interrupt(poll);

    if (args->has("echo")) {
        EchoServerConfig cfg;
        cfg.name = name;
        cfg.flags = flags;
        cfg.max_instances = static_cast<uint32_t>(max_instances);
        cfg.once = once;
        cfg.verbose = verbose;
        cfg.stop = &interrupt_flag();
        EchoStats stats;
        Failure f = run_echo_server(poll, cfg, stats);
        watch_interrupt(0);
        npipe_poll_close(poll);
        if (verbose)
            std::fprintf(stderr, "npipe: echoed %llu bytes to %llu clients\n",
                         static_cast<unsigned long long>(stats.bytes), static_cast<unsigned long long>(stats.clients));
        if (interrupt_flag()) return interrupted_exit_code();
        return f.failed() ? f.report() : exit_ok;
    }

    npipe_server_options_t o;
    npipe_server_options_init(&o);
    o.flags = flags;
    o.max_instances = static_cast<uint32_t>(max_instances);
    npipe_t server = 0;
    rc = npipe_create(name.c_str(), &o, &server);
    if (rc < 0) {
        int code = capture(rc, "cannot create pipe \"" + name + "\"", true).report();
        npipe_poll_close(poll);
        return code;
    }
    rc = npipe_register(poll, server, kPipeToken, NPIPE_READABLE | NPIPE_WRITABLE);
    if (rc < 0) return capture(rc, "cannot register the pipe").report();
    if (verbose) std::fprintf(stderr, "npipe: listening on %s\n", os_name_of(name).c_str());

    Relay relay(poll, StdinPump::start(poll, kStdinToken), ropts);
    int code = exit_ok;
    npipe_event_t events[16];
    for (uint64_t clients = 0;;) {
        rc = npipe_connect(server);
        while (rc == NPIPE_EAGAIN) {
            int32_t n = npipe_poll_wait(poll, events, 16, -1);
            if (n < 0) {
                rc = n;
                break;
            }
            for (int32_t i = 0; i < n; ++i)
                if (events[i].token == kPipeToken && (events[i].events & NPIPE_CONNECTED)) rc = npipe_take_error(server);
            if (interrupt_flag()) break;
        }
        if (interrupt_flag()) {
            code = interrupted_exit_code();
            break;
        }
        if (rc < 0) {
            Failure f = capture(rc, "waiting for a client failed");
            if (rc == NPIPE_EBADF || rc == NPIPE_ECANCELED) {
                code = f.report();
                break;
            }
            if (verbose) f.report();
            npipe_disconnect(server);
            npipe_poll_wait(poll, events, 16, 100);  // no hot loop if the failure repeats at once
            continue;  // a client that vanished before we saw it: wait for the next one
        }
        ++clients;
        bool user_known = true;
        if (verbose)
            std::fprintf(stderr, "npipe: client %llu connected (%s)\n", static_cast<unsigned long long>(clients),
                         describe_peer(server, &user_known).c_str());
        std::string peer = "client " + std::to_string(clients);
        SessionResult s = relay.session(server, peer);
        if (verbose && !user_known) {  // a Windows server learns its client from what the client sent
            const std::string who = describe_peer(server, &user_known);
            if (user_known) std::fprintf(stderr, "npipe: %s is %s\n", peer.c_str(), who.c_str());
        }
        // npipe_disconnect discards what the client has not read: first make sure it has.
        if (!s.peer_closed && !s.failure.failed() && !s.interrupted)
            s.broken = drain_before_close(poll, server, 5000, peer);
        if (verbose)
            std::fprintf(stderr, "npipe: %s done: %llu bytes sent, %llu received%s\n", peer.c_str(),
                         static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.received),
                         s.peer_closed ? " (client closed)" : "");
        if (s.interrupted) {
            code = interrupted_exit_code();
            break;
        }
        if (s.failure.failed()) code = s.failure.report();
        else if (!s.broken.empty()) {
            // Without --once the listener goes on (the rest of stdin goes to the next client), so
            // the exit code cannot carry it: the line on stderr does.
            int rc_broken = plain_failure("transfer broken", broken_transfer_message(s)).report();
            if (once) code = rc_broken;
        }
        if (once) break;
        npipe_disconnect(server);
    }
    watch_interrupt(0);
    npipe_close(server);
    npipe_poll_close(poll);
    return code;
}

}  // namespace tool
