// --progress of `listen` and `connect`: bytes each way, rate and elapsed time on stderr.
// On a terminal the line is redrawn in place twice a second once a transfer has run for a
// second (short transfers print nothing until the end); elsewhere (a log file) one line per
// 5 s. The closing line is always printed when progress is on.
#pragma once
#include <cstdint>
#include <string>

namespace tool {

class TransferProgress {
public:
    TransferProgress(bool on, std::string label);
    // Call after every batch of I/O; draws when it is time to.
    void update(uint64_t sent, uint64_t received);
    // The closing line ("... in 1.20 s (81.20 MiB/s)"); no-op when off.
    void finish(uint64_t sent, uint64_t received);
    // The poll timeout to use so an idle transfer still gets its line refreshed: -1 when off.
    int wait_ms() const { return on_ ? 500 : -1; }

private:
    std::string line(uint64_t sent, uint64_t received, double elapsed) const;
    bool on_;
    bool tty_;
    std::string label_;
    double start_;
    double last_draw_ = 0;
    size_t last_len_ = 0;  // length of the line drawn in place, to blank its tail
};

}  // namespace tool
