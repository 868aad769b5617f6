#include "progress.hpp"

#include <cstdio>

#include "common.hpp"

namespace tool {

TransferProgress::TransferProgress(bool on, std::string label)
    : on_(on), tty_(stderr_is_tty()), label_(std::move(label)), start_(now_seconds()) {}

std::string TransferProgress::line(uint64_t sent, uint64_t received, double elapsed) const {
    double rate = elapsed > 0 ? static_cast<double>(sent + received) / elapsed : 0.0;
    return "npipe: " + label_ + format_bytes(sent) + " sent, " + format_bytes(received) + " received in " +
           format_duration(elapsed) + " (" + format_bytes(static_cast<uint64_t>(rate)) + "/s)";
}

void TransferProgress::update(uint64_t sent, uint64_t received) {
    if (!on_) return;
    double t = now_seconds();
    double interval = tty_ ? 0.5 : 5.0;
    if (t - start_ < 1.0 || t - last_draw_ < interval) return;
    last_draw_ = t;
    std::string s = line(sent, received, t - start_);
    if (tty_) {
        size_t len = s.size();
        if (len < last_len_) s.append(last_len_ - len, ' ');
        last_len_ = len;
        std::fprintf(stderr, "\r%s", s.c_str());
    } else {
        std::fprintf(stderr, "%s\n", s.c_str());
    }
    std::fflush(stderr);
}

void TransferProgress::finish(uint64_t sent, uint64_t received) {
    if (!on_) return;
    std::string s = line(sent, received, now_seconds() - start_);
    if (tty_ && s.size() < last_len_) s.append(last_len_ - s.size(), ' ');
    std::fprintf(stderr, "%s%s\n", tty_ && last_len_ ? "\r" : "", s.c_str());
    std::fflush(stderr);
    on_ = false;
}

}  // namespace tool
