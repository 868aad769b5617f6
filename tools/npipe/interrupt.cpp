#include "interrupt.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#if defined(_WIN32)
#include <windows.h>
#else
#include <csignal>
#include <pthread.h>
#include <unistd.h>
#endif

namespace tool {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<npipe_poll_t> g_poll{0};
std::atomic<int> g_signal{0};

// Runs on a thread of its own (never in a signal handler): npipe_poll_wake takes locks.
void request_stop(int sig) {
    g_signal = sig;
    g_stop = true;
    npipe_poll_t poll = g_poll.load();
    if (poll != 0 && npipe_poll_wake(poll, kStopToken) == NPIPE_OK)
        std::this_thread::sleep_for(std::chrono::seconds(2));  // time to close pipes cleanly
    std::fflush(stdout);
    _exit(128 + sig);
}

#if defined(_WIN32)
BOOL WINAPI on_console_event(DWORD type) {
    request_stop(type == CTRL_C_EVENT ? 2 : 15);  // exits the process
    return TRUE;
}
#endif

}  // namespace

void install_interrupt_handler() {
#if defined(_WIN32)
    SetConsoleCtrlHandler(on_console_event, TRUE);
#else
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by every thread started later
    std::thread([set] {
        int sig = 0;
        while (sigwait(&set, &sig) != 0) {
        }
        request_stop(sig);
    }).detach();
#endif
}

void watch_interrupt(npipe_poll_t poll) { g_poll = poll; }

const std::atomic<bool> &interrupt_flag() { return g_stop; }

int interrupted_exit_code() { return 128 + g_signal.load(); }

}  // namespace tool
