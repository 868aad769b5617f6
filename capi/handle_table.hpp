// Generation-counted handles (sokol / nng style). A handle is (generation << 32) | (slot + 1);
// generations start at 1 so every valid handle has a bit at or above bit 32 set, and a closed
// slot's generation moves on so stale and double-closed handles never match again. Lookup copies
// the shared_ptr under the lock, so an object stays alive for the whole call even when another
// thread closes its handle meanwhile.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "lib/core/object.hpp"

namespace npipe::capi {

class HandleTable {
public:
    // Returns 0 (never a valid handle) only if the table cannot grow.
    uint64_t insert(std::shared_ptr<Object> object);
    // The live object of `handle` if it is of `kind`, else nullptr.
    std::shared_ptr<Object> find(uint64_t handle, ObjectKind kind);
    // Removes and returns the object (nullptr for a dead or wrong-kind handle).
    std::shared_ptr<Object> remove(uint64_t handle, ObjectKind kind);

    static HandleTable &instance();

private:
    struct Slot {
        uint32_t generation = 1;
        std::shared_ptr<Object> object;
    };
    Slot *slot_of(uint64_t handle, ObjectKind kind);

    std::mutex mu_;
    std::vector<Slot> slots_;
    std::vector<uint32_t> free_;
};

}  // namespace npipe::capi
