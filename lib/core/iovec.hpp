// The caller's scatter/gather buffers. capi/ has already checked them (no NULL base with a length,
// at most kMaxIovecs) and computed their total without overflow, so nothing here re-checks.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "types.hpp"

namespace npipe {

// Fills the caller's buffers in order, across as many put() calls as needed.
class IoVecWriter {
public:
    IoVecWriter(const IoVec *iov, size_t iovcnt) : iov_(iov), cnt_(iovcnt) { skip_full(); }
    // Copies as much of [src, src + n) as fits; returns the count copied.
    size_t put(const uint8_t *src, size_t n) {
        size_t done = 0;
        while (done < n && idx_ < cnt_) {
            const size_t k = std::min(n - done, iov_[idx_].len - off_);
            std::memcpy(static_cast<uint8_t *>(iov_[idx_].base) + off_, src + done, k);
            done += k;
            off_ += k;
            skip_full();
        }
        return done;
    }
    bool full() const { return idx_ >= cnt_; }

private:
    void skip_full() {
        while (idx_ < cnt_ && off_ >= iov_[idx_].len) {
            ++idx_;
            off_ = 0;
        }
    }
    const IoVec *iov_;
    size_t cnt_;
    size_t idx_ = 0;
    size_t off_ = 0;
};

// Appends bytes [skip, skip + count) of the caller's buffers to `out`.
inline void append_iovecs(const IoVec *iov, size_t iovcnt, size_t skip, size_t count, std::vector<uint8_t> &out) {
    out.reserve(out.size() + count);
    for (size_t i = 0; i < iovcnt && count > 0; ++i) {
        if (skip >= iov[i].len) {
            skip -= iov[i].len;
            continue;
        }
        const auto *p = static_cast<const uint8_t *>(iov[i].base) + skip;
        const size_t k = std::min(iov[i].len - skip, count);
        out.insert(out.end(), p, p + k);
        count -= k;
        skip = 0;
    }
}

}  // namespace npipe
