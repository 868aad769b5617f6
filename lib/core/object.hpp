// Base of everything a public handle can name. capi/'s handle table stores shared_ptr<Object>
// and hands out generation-counted handles for them.
#pragma once

namespace npipe {

enum class ObjectKind { poll, pipe, listener };

class Object {
public:
    explicit Object(ObjectKind kind) : kind_(kind) {}
    virtual ~Object() = default;
    Object(const Object &) = delete;
    Object &operator=(const Object &) = delete;
    ObjectKind kind() const { return kind_; }

private:
    ObjectKind kind_;
};

}  // namespace npipe
