#include "handle_table.hpp"

#include <thread>

namespace npipe::capi {
namespace {
constexpr uint32_t kMaxSlots = 0xFFFFFFFEu;
}

uint64_t HandleTable::insert(std::shared_ptr<Object> object) {
    std::lock_guard<std::mutex> lock(mu_);
    uint32_t index;
    if (!free_.empty()) {
        index = free_.back();
        free_.pop_back();
    } else {
        const uint32_t size = size_.load(std::memory_order_relaxed);
        if (size >= kMaxSlots) return 0;
        index = size;
        const uint32_t q = index / kFirstChunk + 1;
        const int c = std::bit_width(q) - 1;
        if (c >= kChunks) return 0;
        if (!chunks_[c].load(std::memory_order_relaxed))
            chunks_[c].store(new Slot[size_t{kFirstChunk} << c], std::memory_order_release);  // never freed
        free_.reserve(size_t{index} + 1);  // remove() must not fail for lack of memory
        size_.store(index + 1, std::memory_order_release);
    }
    Slot &slot = slot_at(index);
    slot.raw = object.get();
    slot.object = std::move(object);
    // Live from here on; publishes raw and object to lookups (which acquire the word).
    const uint64_t word = slot.word.fetch_or(kLive, std::memory_order_acq_rel);
    return (word >> 32 << 32) | (static_cast<uint64_t>(index) + 1);
}

std::shared_ptr<Object> HandleTable::find(uint64_t handle, ObjectKind kind) {
    Slot *slot = enter(handle, kind);
    if (!slot) return nullptr;
    std::shared_ptr<Object> object = slot->object;
    slot->word.fetch_sub(1, std::memory_order_release);
    return object;
}

std::shared_ptr<Object> HandleTable::remove(uint64_t handle, ObjectKind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    Slot *slot = enter(handle, kind);
    if (!slot) return nullptr;
    // Dead from here on, under the next generation (generation 0 would make handles without a
    // high bit: skipped on wrap-around); new lookups fail. Our own count goes with it.
    uint64_t word = slot->word.load(std::memory_order_relaxed);
    for (;;) {
        uint64_t next_generation = (word >> 32) + 1;
        if ((next_generation & 0xFFFFFFFFu) == 0) next_generation = 1;
        const uint64_t next = (next_generation << 32) | ((word & kBorrowers) - 1);
        if (slot->word.compare_exchange_weak(word, next, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
    }
    // Calls that borrowed the object before finish first (they never block).
    while ((slot->word.load(std::memory_order_acquire) & kBorrowers) != 0) std::this_thread::yield();
    std::shared_ptr<Object> object = std::move(slot->object);
    slot->object.reset();
    slot->raw = nullptr;
    free_.push_back(static_cast<uint32_t>((handle & 0xFFFFFFFFu) - 1));  // capacity reserved by insert
    return object;
}

}  // namespace npipe::capi
