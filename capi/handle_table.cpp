#include "handle_table.hpp"

namespace npipe::capi {
namespace {
constexpr uint32_t kMaxSlots = 0xFFFFFFFEu;
}

HandleTable &HandleTable::instance() {
    // Never destroyed: handles may still be closed from atexit handlers or other threads.
    static HandleTable *table = new HandleTable();
    return *table;
}

uint64_t HandleTable::insert(std::shared_ptr<Object> object) {
    std::lock_guard<std::mutex> lock(mu_);
    uint32_t index;
    if (!free_.empty()) {
        index = free_.back();
        free_.pop_back();
    } else {
        if (slots_.size() >= kMaxSlots) return 0;
        index = static_cast<uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    Slot &slot = slots_[index];
    slot.object = std::move(object);
    return (static_cast<uint64_t>(slot.generation) << 32) | (static_cast<uint64_t>(index) + 1);
}

HandleTable::Slot *HandleTable::slot_of(uint64_t handle, ObjectKind kind) {
    const uint64_t low = handle & 0xFFFFFFFFu;
    const uint32_t generation = static_cast<uint32_t>(handle >> 32);
    if (low == 0 || generation == 0 || low > slots_.size()) return nullptr;
    Slot &slot = slots_[low - 1];
    if (slot.generation != generation || !slot.object || slot.object->kind() != kind) return nullptr;
    return &slot;
}

std::shared_ptr<Object> HandleTable::find(uint64_t handle, ObjectKind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    Slot *slot = slot_of(handle, kind);
    return slot ? slot->object : nullptr;
}

std::shared_ptr<Object> HandleTable::remove(uint64_t handle, ObjectKind kind) {
    std::shared_ptr<Object> object;
    std::lock_guard<std::mutex> lock(mu_);
    Slot *slot = slot_of(handle, kind);
    if (!slot) return nullptr;
    object = std::move(slot->object);
    slot->object.reset();
    // Generation 0 would make handles without a high bit: skip it on wrap-around.
    if (++slot->generation == 0) slot->generation = 1;
    free_.push_back(static_cast<uint32_t>(slot - slots_.data()));
    return object;
}

}  // namespace npipe::capi
