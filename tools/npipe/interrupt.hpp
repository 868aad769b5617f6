// Ctrl-C / SIGTERM (SIGINT, SIGTERM, SIGHUP on Linux; console control events on Windows). The
// first signal asks the poll loop registered with watch_interrupt() to stop, so the tool closes
// its pipes (on Linux that removes the socket file); without a watched loop, or if the loop does
// not stop within 2 s (e.g. inside a blocking npipe_open), the process exits at once. Either way
// the exit code is 128 + the signal number (130 for Ctrl-C).
#pragma once
#include <npipe.h>

#include <atomic>
#include <cstdint>

namespace tool {

constexpr uint64_t kStopToken = 0xFFFF'FFFF'0000'0001ull;  // the wake a stop request sends

void install_interrupt_handler();          // first thing in main, before any other thread starts
void watch_interrupt(npipe_poll_t poll);   // 0: nobody to ask, exit at once
const std::atomic<bool> &interrupt_flag(); // set once a stop was requested
int interrupted_exit_code();               // 128 + signal

}  // namespace tool
