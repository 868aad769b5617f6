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
    // The same without a reference: only for a call that never blocks.
    Borrow borrow(uint64_t handle, ObjectKind kind);
    // Removes and returns the object (nullptr for a dead or wrong-kind handle).
    std::shared_ptr<Object> remove(uint64_t handle, ObjectKind kind);

    static HandleTable &instance();

private:
    static constexpr uint64_t kLive = uint64_t{1} << 31;
    static constexpr uint64_t kBorrowers = kLive - 1;
    static constexpr uint32_t kFirstChunk = 64;  // chunk c holds kFirstChunk << c slots
    static constexpr int kChunks = 27;           // enough for kMaxSlots

    struct Slot {
        // generation << 32 | kLive | borrowers. The generation starts at 1.
        std::atomic<uint64_t> word{uint64_t{1} << 32};
        Object *raw = nullptr;           // written only while not live, under mu_
        std::shared_ptr<Object> object;  // likewise
    };

    // The slot of `handle` if its generation is current, it is live and of `kind`, counted in as
    // a borrower; nullptr otherwise (then not counted).
    Slot *enter(uint64_t handle, ObjectKind kind);
    Slot &slot_at(uint32_t index) const;

    std::mutex mu_;  // insert and remove
    std::atomic<Slot *> chunks_[kChunks] = {};
    std::atomic<uint32_t> size_{0};  // slots made so far; all below are readable
    std::vector<uint32_t> free_;
};

}  // namespace npipe::capi
