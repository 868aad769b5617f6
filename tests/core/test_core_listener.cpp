// The listener's pool policy (lib/core/listener_core.*) against the fake OS: spare instances,
// replacement at completion, growth under a burst and decay after a quiet second, back pressure,
// failed replenishment retried with backoff, accept and close.
#include <doctest.h>

#include <memory>
#include <vector>

#include "fake_os.hpp"
#include "lib/core/listener_core.hpp"

using namespace npipe;

namespace {

class FakeListener final : public ListenerCore {
public:
    explicit FakeListener(const ListenerConfig &config) : ListenerCore(config) {}

    std::vector<std::shared_ptr<fake::Pipe>> made;  // every instance, in order
    bool fail_next = false;

    size_t waiting() {
        PipeInfo info;
        get_info(info);
        return info.waiting_instances;
    }
    size_t pending() {
        PipeInfo info;
        get_info(info);
        return info.pending_accepts;
    }

private:
    bool os_uses_instances() const override { return true; }
    int32_t os_attach(ReadyPoll &) override { return st::ok; }
    int32_t os_new_instance(std::shared_ptr<PipeCore> &out, Failure &failure) override {
        if (fail_next) {
            fail_next = false;
            failure = Failure{st::io, 0, "CreateNamedPipeW failed (fake)"};
            return failure.code;
        }
        made.push_back(std::make_shared<fake::Pipe>(fake::server_setup()));
        out = made.back();
        return st::ok;
    }
    void os_release() override {}
};

ListenerConfig config_of(uint32_t spare, uint32_t max_pending = 128) {
    ListenerConfig c;
    c.spare_instances = spare;
    c.max_pending = max_pending;
    return c;
}

// One harvest: the listener's bits for token 1.
uint32_t harvest(fake::Poll &poll, int32_t timeout_ms = 0) {
    Event e[16];
    const int32_t n = poll.wait(e, 16, timeout_ms);
    uint32_t bits = 0;
    for (int32_t i = 0; i < n; ++i)
        if (e[i].token == 1) bits |= e[i].events;
    return bits;
}

}  // namespace

TEST_SUITE("core") {
    TEST_CASE("listener: spare instances wait once registered; a connected one is replaced at once") {
        auto poll = std::make_shared<fake::Poll>();
        auto l = std::make_shared<FakeListener>(config_of(3));
        CHECK(l->made.empty());  // no progress before registration
        REQUIRE(l->register_with(poll, 1, ev::readable) == st::ok);
        CHECK(l->waiting() == 3u);
        CHECK(l->made.size() == 3u);
        CHECK(l->made[0]->connects_started == 1);
        l->made[1]->finish_connect();
        CHECK(harvest(*poll) == ev::readable);
        CHECK(l->pending() == 1u);
        CHECK(l->waiting() == 3u);  // replaced at completion, not at accept
        CHECK(l->made.size() == 4u);
        std::shared_ptr<Pipe> pipe;
        CHECK(l->accept(pipe) == st::ok);
        CHECK(pipe.get() == l->made[1].get());
        CHECK(l->accept(pipe) == st::again);
        CHECK(harvest(*poll) == 0u);
        l->close();
        for (auto &p : l->made) CHECK(p->releases == (p == l->made[1] ? 0 : 1));  // accepted: not affected
        poll->close();
    }

    TEST_CASE("listener: a burst doubles the instances kept waiting; a quiet second takes it back") {
        auto poll = std::make_shared<fake::Poll>();
        auto l = std::make_shared<FakeListener>(config_of(2));
        REQUIRE(l->register_with(poll, 1, ev::readable) == st::ok);
        REQUIRE(l->waiting() == 2u);
        l->made[0]->finish_connect();
        l->made[1]->finish_connect();  // every waiting instance taken between two refills
        CHECK(harvest(*poll) == ev::readable);
        CHECK(l->pending() == 2u);
        CHECK(l->waiting() == 4u);
        for (size_t i = 2; i < 6; ++i) l->made[i]->finish_connect();  // and again
        harvest(*poll);
        CHECK(l->waiting() == 8u);
        CHECK(harvest(*poll, 1500) == 0u);  // a quiet second: the timer shrinks the pool back
        CHECK(l->waiting() == 2u);
        size_t closed = 0;
        for (auto &p : l->made) closed += p->releases;
        CHECK(closed == 6u);  // the six surplus instances that waited in vain
        l->close();
        poll->close();
    }

    TEST_CASE("listener: max_pending connected pipes stop new instances until one is accepted") {
        auto poll = std::make_shared<fake::Poll>();
        auto l = std::make_shared<FakeListener>(config_of(1, 2));
        REQUIRE(l->register_with(poll, 1, ev::readable) == st::ok);
        l->made[0]->finish_connect();
        harvest(*poll);
        const size_t waiting = l->waiting();  // the burst may have grown the pool
        REQUIRE(waiting >= 1u);
        for (size_t i = 1; i < l->made.size(); ++i) l->made[i]->finish_connect();
        const size_t made = l->made.size();
        harvest(*poll);
        // Instances already waiting may still connect (pending may pass max_pending by those), but
        // no new instance is made while max_pending pipes wait to be accepted.
        CHECK(l->pending() >= 2u);
        CHECK(l->waiting() == 0u);
        CHECK(l->made.size() == made);
        std::shared_ptr<Pipe> pipe;
        while (l->pending() >= 2u) REQUIRE(l->accept(pipe) == st::ok);
        CHECK(l->made.size() > made);  // room again: instances wait for clients
        CHECK(l->waiting() >= 1u);
        l->close();
        poll->close();
    }

    TEST_CASE("listener: a failed replenishment raises ERROR and is retried on the clock") {
        auto poll = std::make_shared<fake::Poll>();
        auto l = std::make_shared<FakeListener>(config_of(1));
        l->fail_next = true;
        REQUIRE(l->register_with(poll, 1, ev::readable) == st::ok);
        CHECK((harvest(*poll) & ev::error) != 0u);
        CHECK(l->take_error() == st::io);
        CHECK(l->take_error() == st::ok);
        harvest(*poll, 200);  // the retry comes within the first backoff (1 ms)
        CHECK(l->waiting() == 1u);
        l->close();
        poll->close();
    }

    TEST_CASE("listener: a wait that failed is dropped and reported; close ends everything") {
        auto poll = std::make_shared<fake::Poll>();
        auto l = std::make_shared<FakeListener>(config_of(1));
        REQUIRE(l->register_with(poll, 1, ev::readable) == st::ok);
        l->made[0]->finish_connect(Failure{st::io, 0, "ConnectNamedPipe failed (fake)"});
        CHECK((harvest(*poll) & ev::error) != 0u);
        CHECK(l->take_error() == st::io);
        CHECK(l->made[0]->releases == 1);
        CHECK(l->waiting() == 1u);  // replaced
        l->made[1]->finish_connect();
        harvest(*poll);
        l->close();
        for (auto &p : l->made) CHECK(p->releases == 1);
        std::shared_ptr<Pipe> pipe;
        poll->close();
    }
}
