// Generation-counted handles (sokol / nng style). A handle is (generation << 32) | (slot + 1);
// generations start at 1 so every valid handle has a bit at or above bit 32 set, and a closed
// slot's generation moves on so stale and double-closed handles never match again.
//
// Lookups take no lock: a slot's one atomic word holds its generation, a "live" bit and a count
// of borrowers. A lookup counts itself in, checks generation and liveness, and either copies the
// shared_ptr (find: the object stays alive for however long the call takes, even when another
// thread closes the handle meanwhile) or keeps its count for the length of a short call (borrow:
// no reference count touched). Insertion and removal are serialized by a mutex; removal moves
// the generation on first, then waits for the borrowers still counted in (calls that never block)
// before it lets go of the object. Slots live in chunks that never move, so a lookup never reads
// freed table memory.
#pragma once
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "lib/core/object.hpp"

namespace npipe::capi {

class HandleTable {
    struct Slot;

public:
    // Keeps the object of a handle alive while it lives; for calls that never block (removal of
    // the handle waits for it).
    class Borrow {
    public:
        Borrow() = default;
        Borrow(Slot *slot, Object *object) : slot_(slot), object_(object) {}
        Borrow(Borrow &&other) noexcept : slot_(other.slot_), object_(other.object_) {
            other.slot_ = nullptr;
            other.object_ = nullptr;
        }
        Borrow(const Borrow &) = delete;
        Borrow &operator=(const Borrow &) = delete;
        Borrow &operator=(Borrow &&) = delete;
        ~Borrow() {
            if (slot_) slot_->word.fetch_sub(1, std::memory_order_release);
        }
        Object *get() const { return object_; }
        explicit operator bool() const { return object_ != nullptr; }

    private:
        Slot *slot_ = nullptr;
        Object *object_ = nullptr;
    };

    // Returns 0 (never a valid handle) only if the table cannot grow.
    uint64_t insert(std::shared_ptr<Object> object);
    // The live object of `handle` if it is of `kind`, else nullptr.
    std::shared_ptr<Object> find(uint64_t handle, ObjectKind kind);
    // The same without a reference: only for a call that never blocks. Inline: it is the whole
    // cost of a handle on the hot path.
    Borrow borrow(uint64_t handle, ObjectKind kind) {
        Slot *slot = enter(handle, kind);
        return slot ? Borrow(slot, slot->raw) : Borrow();
    }
    // Removes and returns the object (nullptr for a dead or wrong-kind handle).
    std::shared_ptr<Object> remove(uint64_t handle, ObjectKind kind);

    static HandleTable &instance() {
        // Never destroyed: handles may still be closed from atexit handlers or other threads.
        static HandleTable *table = new HandleTable();
        return *table;
    }

private:
    static constexpr uint64_t kLive = uint64_t{1} << 31;
    static constexpr uint64_t kBorrowers = kLive - 1;
    static constexpr uint32_t kFirstChunk = 1024;  // chunk c holds kFirstChunk << c slots
    static constexpr int kChunks = 23;             // enough for kMaxSlots

    struct Slot {
        // generation << 32 | kLive | borrowers. The generation starts at 1.
        std::atomic<uint64_t> word{uint64_t{1} << 32};
        Object *raw = nullptr;           // written only while not live, under mu_
        std::shared_ptr<Object> object;  // likewise
    };

    // The slot of `handle` if its generation is current, it is live and of `kind`, counted in as
    // a borrower; nullptr otherwise (then not counted).
    Slot *enter(uint64_t handle, ObjectKind kind) {
        const uint64_t low = handle & 0xFFFFFFFFu;
        const uint64_t generation = handle >> 32;
        if (low == 0 || generation == 0 || low > size_.load(std::memory_order_acquire)) return nullptr;
        Slot &slot = slot_at(static_cast<uint32_t>(low - 1));
        const uint64_t word = slot.word.fetch_add(1, std::memory_order_acquire);
        if ((word >> 32) == generation && (word & kLive) && slot.raw->kind() == kind) return &slot;
        slot.word.fetch_sub(1, std::memory_order_release);
        return nullptr;
    }
    Slot &slot_at(uint32_t index) const {
        if (index < kFirstChunk) return first_[index];  // the usual case: a thousand handles or fewer
        // Chunk c starts at kFirstChunk * (2^c - 1).
        const uint32_t q = index / kFirstChunk + 1;
        const int c = std::bit_width(q) - 1;
        const uint32_t first = kFirstChunk * ((uint32_t{1} << c) - 1);
        return chunks_[c].load(std::memory_order_acquire)[index - first];
    }

    std::mutex mu_;                    // insert and remove
    mutable Slot first_[kFirstChunk];  // chunk 0
    std::atomic<Slot *> chunks_[kChunks] = {first_};
    std::atomic<uint32_t> size_{0};  // slots made so far; all below are readable
    std::vector<uint32_t> free_;
};

}  // namespace npipe::capi
