#include "read_queue.hpp"

#include <utility>

#include "iovec.hpp"

namespace npipe {

void ReadQueue::push(std::vector<uint8_t> bytes, bool end_of_message) {
    buffered_ += bytes.size();
    const size_t size = bytes.size();
    pieces_.push_back(Piece{std::move(bytes), size, 0, end_of_message, false});
}

void ReadQueue::push_spare(std::vector<uint8_t> storage, size_t size, bool end_of_message) {
    buffered_ += size;
    pieces_.push_back(Piece{std::move(storage), size, 0, end_of_message, true});
}

void ReadQueue::push_filled(std::vector<uint8_t> storage, size_t got, bool end_of_message) {
    if (pieces_.empty() || got >= storage.size() / 4) {
        push_spare(std::move(storage), got, end_of_message);
        return;
    }
    push(std::vector<uint8_t>(storage.begin(), storage.begin() + static_cast<std::ptrdiff_t>(got)), end_of_message);
    give_back_spare(std::move(storage));
}

void ReadQueue::clear() {
    pieces_.clear();
    buffered_ = 0;
    std::vector<uint8_t>().swap(spare_);
}

std::vector<uint8_t> ReadQueue::take_spare(size_t size) {
    std::vector<uint8_t> storage = std::exchange(spare_, {});
    if (storage.size() < size) storage.resize(size);
    return storage;
}

void ReadQueue::give_back_spare(std::vector<uint8_t> storage) {
    if (storage.size() > spare_.size()) spare_ = std::move(storage);
}

void ReadQueue::pop_front() {
    Piece &p = pieces_.front();
    if (p.spare && p.data.size() > spare_.size()) spare_ = std::move(p.data);
    pieces_.pop_front();
}

size_t ReadQueue::read_bytes(const IoVec *iov, size_t iovcnt) {
    IoVecWriter out(iov, iovcnt);
    size_t n = 0;
    while (!pieces_.empty() && !out.full()) {
        Piece &p = pieces_.front();
        const size_t k = out.put(p.data.data() + p.offset, p.size - p.offset);
        p.offset += k;
        n += k;
        buffered_ -= k;
        if (p.offset == p.size) pop_front();
    }
    return n;
}

ReadQueue::MessageRead ReadQueue::read_message(const IoVec *iov, size_t iovcnt, size_t total, bool skip_empty,
                                               bool more_may_come) {
    MessageRead r;
    while (!pieces_.empty()) {
        const Piece &p = pieces_.front();
        if (!(p.size == 0 && p.end_of_message)) break;
        pop_front();
        if (!skip_empty) {
            r.flags = mf::empty;
            r.got = true;
            return r;
        }
    }
    if (pieces_.empty()) return r;
    if (more_may_come) {
        // Only part of the next message is here and all of it would fit: wait for the rest.
        size_t have = 0;
        bool whole = false;
        for (const Piece &p : pieces_) {
            have += p.size - p.offset;
            if (p.end_of_message) {
                whole = true;
                break;
            }
            if (have >= total) break;
        }
        if (!whole && have < total) return r;
    }
    IoVecWriter out(iov, iovcnt);
    bool partial = false;
    for (;;) {
        Piece &p = pieces_.front();
        const size_t k = out.put(p.data.data() + p.offset, p.size - p.offset);
        p.offset += k;
        r.bytes += k;
        buffered_ -= k;
        if (p.offset < p.size) {  // the caller's buffers are full mid-message
            partial = true;
            break;
        }
        const bool end = p.end_of_message;
        pop_front();
        if (end) break;         // never merge two messages
        if (pieces_.empty()) {  // the rest of this message has not arrived (yet)
            partial = more_may_come;
            break;
        }
        if (out.full()) {
            partial = true;
            break;
        }
    }
    r.got = r.bytes > 0;
    if (partial) r.flags = mf::partial;
    return r;
}

}  // namespace npipe
