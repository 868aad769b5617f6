// The portable rules of npipe_drain and npipe_peer_identity (lib/core/pipe_core.*), driven through
// the fake OS layer: what the OS says (unread bytes, who the peer is) is scripted, the rules that
// turn it into NPIPE_OK / NPIPE_EAGAIN / NPIPE_EPIPE, events and re-checks are the real ones.
#include <doctest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "fake_os.hpp"
#include "lib/core/error_detail.hpp"

using namespace npipe;

namespace {

constexpr uint64_t kToken = 7;
constexpr int32_t kBoundMs = 2000;  // every wait here ends by then

struct Rig {
    std::shared_ptr<fake::Poll> poll = std::make_shared<fake::Poll>();
    std::shared_ptr<fake::Pipe> pipe;

    explicit Rig(const PipeSetup &setup) : pipe(std::make_shared<fake::Pipe>(setup)) {
        REQUIRE(pipe->register_with(poll, kToken, ev::readable | ev::writable) == st::ok);
    }
    ~Rig() { poll->close(); }

    // The bits reported for the pipe by waits of at most `ms` in total, stopping at the first event.
    uint32_t next_events(int32_t ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            const auto left =
                std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
            Event out[8];
            const int32_t n = poll->wait(out, 8, static_cast<int32_t>(left > 0 ? left : 0));
            REQUIRE(n >= 0);
            uint32_t bits = 0;
            for (int32_t i = 0; i < n; ++i)
                if (out[i].token == kToken) bits |= out[i].events;
            if (bits != 0 || left <= 0) return bits;
        }
    }
    uint32_t events() { return next_events(0); }
    int64_t write(const std::string &s) {
        IoVec v{const_cast<char *>(s.data()), s.size()};
        return pipe->write(&v, 1, s.size());
    }
    // A server instance whose client is connected now.
    void connect_server() {
        REQUIRE(pipe->connect() == st::again);
        pipe->finish_connect();
        REQUIRE((events() & ev::connected) != 0u);
    }
};

bool message_has(const char *part) { return std::strstr(last_error_message(), part) != nullptr; }

}  // namespace

TEST_SUITE("core") {
    TEST_CASE("drain: flushed is not enough; OK once the OS says the peer has read every accepted byte") {
        Rig r(fake::client_setup());
        r.events();
        CHECK(r.pipe->drain() == st::ok);  // nothing accepted: nothing to wait for
        CHECK(r.pipe->unread_queries() == 0);
        REQUIRE(r.write("hello") == 5);  // handed to the OS, not completed yet
        CHECK(r.pipe->drain() == st::again);
        CHECK(message_has("still being written"));
        r.pipe->set_unread(5);
        r.pipe->complete_writes();         // flushed, but the peer has not read the bytes
        CHECK(r.events() == 0u);           // no WRITABLE: not drained
        CHECK(r.pipe->flush() == st::ok);  // what npipe_flush promises is less
        CHECK(r.pipe->drain() == st::again);
        CHECK(message_has("has not read 5 written bytes"));
        CHECK(r.next_events(20) == 0u);  // re-checked on the poll's clock: still unread, no news
        const int before = r.pipe->unread_queries();
        CHECK(r.next_events(60) == 0u);
        CHECK(r.pipe->unread_queries() > before);  // it keeps asking while nothing changes
        r.pipe->set_unread(0);                     // the peer reads
        CHECK(r.next_events(kBoundMs) == ev::writable);
        CHECK(r.pipe->drain() == st::ok);
        // Drained: no more re-checks, and asking again costs no OS call until something new is written.
        const int asked = r.pipe->unread_queries();
        CHECK(r.next_events(80) == 0u);
        CHECK(r.pipe->drain() == st::ok);
        CHECK(r.pipe->unread_queries() == asked);
        REQUIRE(r.write("more") == 4);
        r.pipe->complete_writes();
        CHECK(r.pipe->drain() == st::ok);  // the OS says 0 unread at once
        CHECK(r.pipe->unread_queries() == asked + 1);
    }

    TEST_CASE("drain: a peer that leaves with bytes undelivered is EPIPE; one that read them all is not") {
        SUBCASE("bytes still in the library's buffer") {
            Rig r(fake::client_setup());
            REQUIRE(r.write("abc") == 3);  // in flight, never completed
            r.pipe->end_of_stream(true);
            CHECK(r.pipe->drain() == st::pipe);
            CHECK(message_has("before 3 accepted bytes were written"));
        }
        SUBCASE("written, not read, then the peer left") {
            Rig r(fake::client_setup());
            REQUIRE(r.write("abc") == 3);
            r.pipe->set_unread(3);
            r.pipe->complete_writes();
            CHECK(r.pipe->drain() == st::again);
            r.events();
            r.pipe->end_of_stream(true);  // a waiting drainer hears of it through the pipe's events
            CHECK((r.events() & (ev::writable | ev::write_closed)) == (ev::writable | ev::write_closed));
            CHECK(r.pipe->drain() == st::pipe);
            CHECK(message_has("left with 3 written bytes unread"));
        }
        SUBCASE("the OS knows the peer left without reading them (Linux: the connection was reset)") {
            Rig r(fake::client_setup());
            REQUIRE(r.write("abc") == 3);
            r.pipe->set_unread(st::pipe);
            r.pipe->complete_writes();
            CHECK(r.pipe->drain() == st::pipe);
            CHECK(message_has("without reading everything"));
        }
        SUBCASE("a write that failed in the background") {
            Rig r(fake::client_setup());
            REQUIRE(r.write("abc") == 3);
            r.pipe->write_fails(Failure{st::pipe, 232, "WriteFile: the peer closed or disconnected the pipe"});
            CHECK(r.pipe->drain() == st::pipe);
        }
        SUBCASE("everything read, then the peer left") {
            Rig r(fake::client_setup());
            REQUIRE(r.write("abc") == 3);
            r.pipe->complete_writes();  // the OS says 0 unread
            r.pipe->end_of_stream(true);
            CHECK(r.pipe->drain() == st::ok);
        }
        SUBCASE("drained before the peer left: nothing new was accepted") {
            Rig r(fake::client_setup());
            REQUIRE(r.write("abc") == 3);
            r.pipe->complete_writes();
            CHECK(r.pipe->drain() == st::ok);
            r.pipe->set_unread(st::pipe);  // whatever the OS would say now
            r.pipe->end_of_stream(true);
            CHECK(r.pipe->drain() == st::ok);
        }
    }

    TEST_CASE("drain: the header's check order; a new connection starts clean") {
        auto poll = std::make_shared<fake::Poll>();
        auto unregistered = std::make_shared<fake::Pipe>(fake::client_setup());
        CHECK(unregistered->drain() == st::again);  // nothing drives a re-check without a poll
        CHECK(message_has("not registered"));

        auto connecting = std::make_shared<fake::Pipe>(fake::pending_client_setup(-1));
        connecting->open_answer = fake::Pipe::Outcome::absent;
        REQUIRE(connecting->register_with(poll, 1, ev::writable) == st::ok);
        CHECK(connecting->drain() == st::again);
        CHECK(message_has("connection in progress"));
        connecting->close();
        poll->close();

        Rig r(fake::server_setup());
        CHECK(r.pipe->drain() == st::notconn);
        r.connect_server();
        REQUIRE(r.write("response") == 8);
        r.pipe->set_unread(8);
        r.pipe->complete_writes();
        CHECK(r.pipe->drain() == st::again);
        CHECK(r.pipe->disconnect() == st::ok);
        CHECK(r.pipe->drain() == st::notconn);
        r.connect_server();
        CHECK(r.pipe->drain() == st::ok);  // nothing written on this connection
        CHECK(r.next_events(80) == 0u);    // no WRITABLE left over from the old drain
        const int asked = r.pipe->unread_queries();
        CHECK(r.next_events(60) == 0u);
        CHECK(r.pipe->unread_queries() == asked);  // the old re-check was cancelled
    }

    TEST_CASE("timer: the pipe's one timer drives the open's retries, then the drain's re-checks") {
        auto poll = std::make_shared<fake::Poll>();
        auto pipe = std::make_shared<fake::Pipe>(fake::pending_client_setup(-1));
        pipe->open_answer = fake::Pipe::Outcome::absent;
        REQUIRE(pipe->register_with(poll, kToken, ev::writable) == st::ok);
        Event e[4];
        CHECK(poll->wait(e, 4, 20) == 0);
        CHECK(pipe->open_attempts >= 2);  // retried on the clock
        CHECK(pipe->unread_queries() == 0);
        pipe->open_answer = fake::Pipe::Outcome::connected;
        REQUIRE(poll->wait(e, 4, kBoundMs) == 1);
        CHECK(e[0].events == (ev::connected | ev::writable));
        const int attempts = pipe->open_attempts;
        IoVec v{const_cast<char *>("bye"), 3};
        REQUIRE(pipe->write(&v, 1, 3) == 3);
        pipe->set_unread(3);
        pipe->complete_writes();
        CHECK(pipe->drain() == st::again);
        CHECK(poll->wait(e, 4, 30) == 0);
        CHECK(pipe->unread_queries() >= 2);      // the timer now re-checks the drain ...
        CHECK(pipe->open_attempts == attempts);  // ... and makes no open attempt
        pipe->set_unread(0);
        REQUIRE(poll->wait(e, 4, kBoundMs) == 1);
        CHECK(e[0].events == ev::writable);
        CHECK(pipe->drain() == st::ok);
        pipe->close();
        poll->close();
    }

    TEST_CASE("identity: asked of the OS once per connection; EAGAIN is not kept; no poll needed") {
        Rig r(fake::server_setup());
        PeerIdentity id;
        CHECK(r.pipe->peer_identity(id) == st::notconn);
        CHECK(r.pipe->identity_queries == 0);
        r.connect_server();
        r.pipe->identity_answer = st::again;  // Windows: the client has sent nothing yet
        CHECK(r.pipe->peer_identity(id) == st::again);
        CHECK(r.pipe->peer_identity(id) == st::again);
        CHECK(r.pipe->identity_queries == 2);
        r.pipe->identity_answer = st::ok;
        r.pipe->identity.flags = peer::same_user;
        r.pipe->identity.pid = 77;
        r.pipe->identity.sid = "S-1-5-21-1-2-3-1000";
        REQUIRE(r.pipe->peer_identity(id) == st::ok);
        CHECK(id.flags == peer::same_user);
        CHECK(id.pid == 77u);
        CHECK(id.uid == UINT32_MAX);
        CHECK(id.sid == "S-1-5-21-1-2-3-1000");
        r.pipe->identity.pid = 78;    // the OS is not asked again on this connection ...
        r.pipe->end_of_stream(true);  // ... also once the client left
        REQUIRE(r.pipe->peer_identity(id) == st::ok);
        CHECK(id.pid == 77u);
        CHECK(r.pipe->identity_queries == 3);
        CHECK(r.pipe->disconnect() == st::ok);
        CHECK(r.pipe->peer_identity(id) == st::notconn);
        r.connect_server();
        REQUIRE(r.pipe->peer_identity(id) == st::ok);  // a new client: asked again
        CHECK(id.pid == 78u);
        CHECK(r.pipe->identity_queries == 4);

        // A client opened by the blocking npipe_open answers without ever being registered.
        auto client = std::make_shared<fake::Pipe>(fake::client_setup());
        client->identity.pid = 5;
        REQUIRE(client->peer_identity(id) == st::ok);
        CHECK(id.pid == 5u);
        // An OS failure is the caller's, with its code.
        auto denied = std::make_shared<fake::Pipe>(fake::client_setup());
        denied->identity_answer = st::acces;
        CHECK(denied->peer_identity(id) == st::acces);
    }

    TEST_CASE("identity: a client still connecting, a failed open and a closed poll") {
        auto poll = std::make_shared<fake::Poll>();
        PeerIdentity id;
        auto connecting = std::make_shared<fake::Pipe>(fake::pending_client_setup(-1));
        connecting->open_answer = fake::Pipe::Outcome::absent;
        REQUIRE(connecting->register_with(poll, 1, ev::writable) == st::ok);
        CHECK(connecting->peer_identity(id) == st::again);
        CHECK(message_has("connection in progress"));
        auto failed = std::make_shared<fake::Pipe>(fake::pending_client_setup(0));
        failed->open_answer = fake::Pipe::Outcome::failed;
        REQUIRE(failed->register_with(poll, 2, ev::writable) == st::ok);
        CHECK(failed->peer_identity(id) == st::acces);  // the open's own failure
        auto open = std::make_shared<fake::Pipe>(fake::client_setup());
        REQUIRE(open->register_with(poll, 3, ev::writable) == st::ok);
        poll->close();
        CHECK(open->peer_identity(id) == st::canceled);
        CHECK(open->drain() == st::canceled);
        CHECK(connecting->identity_queries + failed->identity_queries + open->identity_queries == 0);
    }
}
