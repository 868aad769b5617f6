#include <doctest.h>

#include "lib/core/event_state.hpp"

using namespace npipe;

TEST_SUITE("core") {
    TEST_CASE("edge mode reports each raised bit once, honouring interests") {
        EventState s;
        CHECK_FALSE(s.raise(ev::readable));  // not registered: nothing to queue
        s.arm(7, ev::readable);
        CHECK_FALSE(s.raise(ev::writable));  // not an interest
        CHECK(s.raise(ev::readable));
        bool keep = true;
        CHECK(s.take(0, keep) == ev::readable);
        CHECK_FALSE(keep);
        CHECK(s.take(0, keep) == 0);
    }

    TEST_CASE("closed bits come once per connection whatever the interests") {
        EventState s;
        s.arm(1, ev::writable);
        CHECK(s.raise(ev::read_closed | ev::readable));
        bool keep = false;
        CHECK(s.take(0, keep) == ev::read_closed);
        CHECK_FALSE(s.raise(ev::read_closed));
        s.reset_connection();
        CHECK(s.raise(ev::read_closed));
    }

    TEST_CASE("level mode repeats while the condition holds") {
        EventState s;
        s.arm(1, ev::readable | ev::level);
        bool keep = false;
        CHECK(s.take(ev::readable | ev::writable, keep) == ev::readable);
        CHECK(keep);
        CHECK(s.take(ev::readable, keep) == ev::readable);
        CHECK(s.take(0, keep) == 0);
        CHECK_FALSE(keep);
    }

    TEST_CASE("re-arming drops bits of the earlier registration") {
        EventState s;
        s.arm(1, ev::readable);
        CHECK(s.raise(ev::readable));
        s.disarm();
        s.arm(2, ev::readable);
        bool keep = false;
        CHECK(s.take(0, keep) == 0);
    }
}
