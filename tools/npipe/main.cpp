// npipe: the command-line tool of the npipe library. Dispatches to the subcommands.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "interrupt.hpp"

#if !defined(_WIN32)
#include <csignal>
#endif

namespace tool {

const char *const kExitCodeHelp =
    "exit codes:\n"
    "  0  success\n"
    "  1  other failure (I/O error, broken transfer, failed check)\n"
    "  2  usage error (unknown option, bad value)\n"
    "  3  bad pipe name (NPIPE_EINVAL, NPIPE_ENAMETOOLONG, NPIPE_ENOTSUP)\n"
    "  4  no such pipe (NPIPE_ENOENT)\n"
    "  5  pipe busy or timed out (NPIPE_EBUSY, NPIPE_ETIMEDOUT)\n"
    "  6  access denied / refused (NPIPE_EACCES)\n"
    "  7  name already in use (NPIPE_EEXIST)\n"
    "  130  interrupted (Ctrl-C; 128 + the signal): pipes were closed first where possible\n";

}  // namespace tool

namespace {

const char *const kHelp =
    "usage: npipe COMMAND [options]   (npipe COMMAND --help for details)\n"
    "\n"
    "A command-line tool for named pipes (Windows named pipes; AF_UNIX sockets on Linux),\n"
    "built on the npipe library.\n"
    "\n"
    "commands:\n"
    "  listen NAME    serve pipe NAME: relay stdin/stdout with one client at a time, or --echo\n"
    "  connect NAME   connect to pipe NAME and relay stdin/stdout\n"
    "  demo           an echo server and 4 clients in one process, with checked data\n"
    "  bench          throughput, ping-pong and fan-out: npipe vs. raw OS calls\n"
    "  bench burst    clients opening at once: a listener vs. a single instance\n"
    "  bench open     waiting for a server: CPU while waiting, delay until connected\n"
    "  version        print the tool's and the library's version\n"
    "\n"
    "Errors are one line on stderr: npipe: <what>: <detail> (<NPIPE_E... code>).\n"
    "\n";

}  // namespace

int main(int argc, char **argv) {
    using namespace tool;
    install_interrupt_handler();
#if !defined(_WIN32)
    std::signal(SIGPIPE, SIG_IGN);  // a vanished stdout reader is an error to report, not a kill
#endif
    set_binary_stdio();
    std::vector<std::string> args(argv + (argc > 1 ? 2 : 1), argv + argc);
    std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd.empty()) {
        std::fputs(kHelp, stderr);
        std::fputs(kExitCodeHelp, stderr);
        return exit_usage;
    }
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
        if (cmd == "help" && !args.empty()) {
            cmd = args[0];
            args = {"--help"};
        } else {
            std::printf("%s%s", kHelp, kExitCodeHelp);
            return exit_ok;
        }
    }
    if (cmd == "--version" || cmd == "version") {
        std::printf("npipe tool %s, library %s (%s)\n", NPIPE_TOOL_VERSION, npipe_version_string(), platform_name());
        return exit_ok;
    }
    if ((npipe_version() >> 16) != NPIPE_VERSION_MAJOR) {
        std::fprintf(stderr, "npipe: library version %s does not match the header's major version %d\n",
                     npipe_version_string(), NPIPE_VERSION_MAJOR);
        return exit_other;
    }
    if (cmd == "listen") return cmd_listen(args);
    if (cmd == "connect") return cmd_connect(args);
    if (cmd == "demo") return cmd_demo(args);
    if (cmd == "bench") return cmd_bench(args);
    return usage_error("", "unknown command '" + cmd + "'");
}
