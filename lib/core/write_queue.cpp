#include "write_queue.hpp"

#include <algorithm>
#include <utility>

#include "iovec.hpp"

namespace npipe {

size_t WriteQueue::acceptable(size_t unit, bool whole) const {
    if (whole) return used() == 0 || unit <= room() ? unit : 0;
    return std::min(unit, room());
}

void WriteQueue::append(const uint8_t *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt, size_t skip,
                        size_t count, bool new_piece) {
    if (count == 0 && !new_piece) return;
    if (new_piece || pieces_.empty()) {
        pieces_.emplace_back();
        pieces_.back().data = std::exchange(spare_, {});
    }
    Piece &p = pieces_.back();
    if (p.offset > 0 && p.offset >= p.data.size() / 2) {
        // A piece being sent while bytes keep joining it: drop what was sent so it cannot grow.
        p.data.erase(p.data.begin(), p.data.begin() + static_cast<std::ptrdiff_t>(p.offset));
        p.offset = 0;
    }
    queued_ += count;
    if (skip < prefix_len) {
        const size_t k = std::min(prefix_len - skip, count);
        p.data.insert(p.data.end(), prefix + skip, prefix + skip + k);
        count -= k;
        skip = 0;
    } else {
        skip -= prefix_len;
    }
    append_iovecs(iov, iovcnt, skip, count, p.data);
}

size_t WriteQueue::peek(IoVec *out, size_t max) const {
    size_t k = 0;
    for (const Piece &p : pieces_) {
        if (k == max) break;
        if (p.data.size() > p.offset)
            out[k++] = IoVec{const_cast<uint8_t *>(p.data.data()) + p.offset, p.data.size() - p.offset};
    }
    return k;
}

void WriteQueue::consumed(size_t n) {
    queued_ -= std::min(n, queued_);
    while (n > 0 && !pieces_.empty()) {
        Piece &p = pieces_.front();
        const size_t k = std::min(n, p.data.size() - p.offset);
        p.offset += k;
        n -= k;
        if (p.offset == p.data.size()) pop_sent();
    }
    // Empty pieces (an empty message already handed over with its header) go too.
    while (!pieces_.empty() && pieces_.front().offset == pieces_.front().data.size()) pop_sent();
}

void WriteQueue::pop_sent() {
    recycle(std::move(pieces_.front().data));
    pieces_.pop_front();
}

std::vector<uint8_t> WriteQueue::take_front() {
    Piece p = std::move(pieces_.front());
    pieces_.pop_front();
    if (p.offset > 0) p.data.erase(p.data.begin(), p.data.begin() + static_cast<std::ptrdiff_t>(p.offset));
    queued_ -= p.data.size();
    in_flight_ += p.data.size();
    ++pieces_in_flight_;
    return std::move(p.data);
}

void WriteQueue::completed(size_t n) { in_flight_ -= std::min(n, in_flight_); }

void WriteQueue::piece_done() {
    if (pieces_in_flight_ > 0) --pieces_in_flight_;
}

void WriteQueue::recycle(std::vector<uint8_t> storage) {
    // One spare, no bigger than the buffer: a message larger than the room is not kept around.
    if (storage.capacity() <= cap_ && storage.capacity() > spare_.capacity()) {
        storage.clear();
        spare_ = std::move(storage);
    }
}

void WriteQueue::discard_queued() {
    pieces_.clear();
    queued_ = 0;
}

void WriteQueue::reset() {
    discard_queued();
    std::vector<uint8_t>().swap(spare_);
    in_flight_ = 0;
    pieces_in_flight_ = 0;
    owed_room_ = owed_drain_ = false;
}

bool WriteQueue::settle_owed() {
    bool due = false;
    if (owed_room_ && room() > 0) {
        owed_room_ = false;
        due = true;
    }
    if (owed_drain_ && idle()) {
        owed_drain_ = false;
        due = true;
    }
    return due;
}

bool WriteQueue::clear_owed() {
    const bool owed = owed_room_ || owed_drain_;
    owed_room_ = owed_drain_ = false;
    return owed;
}

}  // namespace npipe
