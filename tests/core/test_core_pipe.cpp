// The portable pipe's rules (lib/core/pipe_core.*), driven through the fake OS layer: the same
// rules every backend gets, checked natively and without a real pipe.
#include <doctest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fake_os.hpp"
#include "lib/core/error_detail.hpp"

using namespace npipe;

// The backend factory npipe_wait uses for its private poll: here, the fake OS's poll.
int32_t npipe::create_poll(std::shared_ptr<Poll> &out) {
    out = std::make_shared<fake::Poll>();
    return st::ok;
}

namespace {

struct Rig {
    std::shared_ptr<fake::Poll> poll = std::make_shared<fake::Poll>();
    std::shared_ptr<fake::Pipe> pipe;

    explicit Rig(const PipeSetup &setup, uint32_t interests = ev::readable | ev::writable)
        : pipe(std::make_shared<fake::Pipe>(setup)) {
        REQUIRE(pipe->register_with(poll, 7, interests) == st::ok);
    }
    ~Rig() { poll->close(); }

    // The bits reported for token 7 by one wait that does not block.
    uint32_t events() {
        Event out[8];
        const int32_t n = poll->wait(out, 8, 0);
        REQUIRE(n >= 0);
        uint32_t bits = 0;
        for (int32_t i = 0; i < n; ++i)
            if (out[i].token == 7) bits |= out[i].events;
        return bits;
    }
    int64_t write(const std::string &s) {
        IoVec v{const_cast<char *>(s.data()), s.size()};
        return pipe->write(&v, 1, s.size());
    }
    int64_t read(std::string &out, size_t len, uint32_t *flags = nullptr) {
        out.assign(len, '\0');
        IoVec v{out.data(), len};
        const int64_t n = pipe->read(&v, 1, len, flags);
        out.resize(n > 0 ? static_cast<size_t>(n) : 0);
        return n;
    }
};

std::string text(size_t n, char c = 'x') { return std::string(n, c); }

// A write through `rig` that holds the pipe's lock inside os_write_more (under Windows: across its
// WriteFile) until finish(); released and joined when it goes, also when a REQUIRE ends a test.
class HeldWrite {
public:
    HeldWrite(Rig &rig, std::string bytes) : rig_(rig) {
        rig_.pipe->while_handing_over = [this] {
            std::unique_lock lock(mu_);
            inside_ = true;
            changed_.notify_all();
            changed_.wait_for(lock, std::chrono::seconds(10), [&] { return released_; });
        };
        thread_ = std::thread([this, bytes = std::move(bytes)] { written_ = rig_.write(bytes); });
        id_ = thread_.get_id();
    }
    ~HeldWrite() { finish(); }
    HeldWrite(const HeldWrite &) = delete;
    HeldWrite &operator=(const HeldWrite &) = delete;

    // Waits (at most 10 s) until the write holds the lock.
    bool entered() {
        std::unique_lock lock(mu_);
        return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return inside_; });
    }
    // Lets the write go on and returns its result.
    int64_t finish() {
        {
            std::lock_guard lock(mu_);
            released_ = true;
            changed_.notify_all();
        }
        if (thread_.joinable()) thread_.join();
        rig_.pipe->while_handing_over = nullptr;
        return written_;
    }
    std::thread::id id() const { return id_; }

private:
    Rig &rig_;
    std::mutex mu_;
    std::condition_variable changed_;
    bool inside_ = false;
    bool released_ = false;
    int64_t written_ = 0;
    std::thread thread_;
    std::thread::id id_;
};

}  // namespace

TEST_SUITE("core") {
    TEST_CASE("pipe: edge mode reports new data once; level mode repeats until drained") {
        Rig edge(fake::client_setup());
        CHECK(edge.events() == ev::writable);  // registration: room to write
        edge.pipe->arrive("abc");
        CHECK(edge.events() == ev::readable);
        CHECK(edge.events() == 0u);  // no repeat without a new change
        std::string got;
        CHECK(edge.read(got, 2) == 2);
        CHECK(edge.events() == 0u);  // data left, but no news
        CHECK(edge.read(got, 8) == 1);
        CHECK(edge.read(got, 8) == st::again);
        edge.pipe->arrive("d");
        CHECK(edge.events() == ev::readable);

        Rig level(fake::client_setup(), ev::readable | ev::level);
        level.pipe->arrive("abc");
        CHECK(level.events() == ev::readable);
        CHECK(level.events() == ev::readable);
        CHECK(level.read(got, 8) == 3);
        CHECK(level.events() == 0u);
    }

    TEST_CASE("pipe: register re-evaluates; deregister hides; the header's check order") {
        auto poll = std::make_shared<fake::Poll>();
        auto other = std::make_shared<fake::Poll>();
        auto pipe = std::make_shared<fake::Pipe>(fake::client_setup());
        CHECK(pipe->reregister(poll, 1, ev::readable) == st::noent);
        CHECK(pipe->deregister(poll) == st::noent);
        pipe->arrive("early");  // buffered before registration
        REQUIRE(pipe->register_with(poll, 1, ev::readable) == st::ok);
        Event e[4];
        REQUIRE(poll->wait(e, 4, 0) == 1);
        CHECK(e[0].events == ev::readable);
        CHECK(pipe->register_with(poll, 1, ev::readable) == st::exist);
        CHECK(pipe->deregister(other) == st::exist);
        REQUIRE(pipe->deregister(poll) == st::ok);
        pipe->arrive("more");
        CHECK(poll->wait(e, 4, 0) == 0);
        CHECK(pipe->reregister(other, 1, ev::readable) == st::noent);     // not registered comes first
        CHECK(pipe->register_with(other, 1, ev::readable) == st::exist);  // bound for life
        CHECK(pipe->register_with(poll, 2, ev::readable) == st::ok);
        REQUIRE(poll->wait(e, 4, 0) == 1);
        CHECK(e[0].token == 2u);
        poll->close();
        other->close();
    }

    TEST_CASE("pipe: message rules: whole when it fits, partial when not, empty reported or skipped") {
        Rig r(fake::client_setup(pf::message));
        std::string got;
        uint32_t flags = 0xFF;
        r.pipe->arrive("hel", false);  // half a message: a buffer that holds it all waits for the rest
        CHECK(r.read(got, 64, &flags) == st::again);
        r.pipe->arrive("lo", true);
        r.pipe->arrive("", true);
        r.pipe->arrive("next", true);
        CHECK(r.read(got, 64, &flags) == 5);
        CHECK(got == "hello");
        CHECK(flags == 0u);
        CHECK(r.read(got, 64, &flags) == 0);
        CHECK(flags == mf::empty);
        CHECK(r.read(got, 2, &flags) == 2);  // a small buffer: partial, never merged
        CHECK(flags == mf::partial);
        CHECK(r.read(got, 64, &flags) == 2);
        CHECK(got == "xt");
        CHECK(flags == 0u);
        r.pipe->arrive("", true);
        r.pipe->arrive("z", true);
        CHECK(r.read(got, 64) == 1);  // npipe_read skips the empty message
        CHECK(got == "z");
        // A message cut off by the end of the stream: its last piece is not "partial".
        r.pipe->arrive("cut", false);
        r.pipe->end_of_stream(false);
        CHECK(r.read(got, 64, &flags) == 3);
        CHECK(flags == 0u);
        CHECK(r.read(got, 64, &flags) == 0);
        CHECK(flags == 0u);
    }

    TEST_CASE("pipe: take_error reports a failed wait for a client first, then the first background failure") {
        Rig r(fake::server_setup());
        r.pipe->connect_answer = st::again;
        CHECK(r.pipe->connect() == st::again);
        r.pipe->finish_connect();
        CHECK((r.events() & ev::connected) != 0u);
        r.pipe->read_fails(Failure{st::io, 5, "first background"});
        r.pipe->write_fails(Failure{st::acces, 6, "second background"});
        CHECK(r.pipe->take_error() == st::io);
        CHECK(std::string(last_error_message()) == "first background");
        CHECK(r.pipe->take_error() == st::ok);  // once
        // A new connection whose wait fails: that comes first.
        CHECK(r.pipe->disconnect() == st::ok);
        CHECK(r.pipe->connect() == st::again);
        r.pipe->read_fails(Failure{st::io, 7, "stale background"});  // not connected: noted anyway
        r.pipe->finish_connect(Failure{st::busy, 8, "the wait failed"});
        CHECK(r.pipe->take_error() == st::busy);
        CHECK(r.pipe->take_error() == st::io);
        CHECK(r.pipe->take_error() == st::ok);
    }

    TEST_CASE("pipe: disconnect resets every per-connection field") {
        Rig r(fake::server_setup(pf::message));
        REQUIRE(r.pipe->connect() == st::again);
        r.pipe->finish_connect();
        r.events();
        r.pipe->arrive("left over");
        REQUIRE(r.write("queued") == 6);  // in flight, never completed
        r.pipe->read_fails(Failure{st::io, 1, "old failure"});
        r.pipe->end_of_stream(true);
        CHECK(r.pipe->disconnect() == st::ok);
        CHECK(r.pipe->disconnects == 1);
        CHECK(r.events() == 0u);  // nothing of the old connection is reported
        CHECK(r.pipe->take_error() == st::ok);
        std::string got;
        CHECK(r.read(got, 64) == st::notconn);
        CHECK(r.pipe->write_used() == 0u);
        REQUIRE(r.pipe->connect() == st::again);
        r.pipe->finish_connect();
        CHECK(r.events() == (ev::connected | ev::writable));
        CHECK(r.read(got, 64) == st::again);  // no stale data, no stale EOF
        CHECK(r.write("fresh") == 5);
        r.pipe->end_of_stream(true);
        CHECK((r.events() & (ev::read_closed | ev::write_closed)) == (ev::read_closed | ev::write_closed));
    }

    TEST_CASE("pipe: write acceptance: bytes take what fits, a message goes whole, WRITABLE only when owed") {
        Rig r(fake::client_setup());
        CHECK(r.events() == ev::writable);
        const std::string big = text(100 * 1024);
        CHECK(r.write(big) == 64 * 1024);  // the buffer holds 64 KiB (in flight counts)
        CHECK(r.write("y") == st::again);
        r.pipe->complete_writes();
        CHECK(r.events() == ev::writable);  // owed by the EAGAIN
        CHECK(r.write("z") == 1);
        r.pipe->complete_writes();
        CHECK(r.events() == 0u);  // a completion nobody waited for is no news
        CHECK(r.pipe->flush() == st::ok);
        CHECK(r.write("w") == 1);
        CHECK(r.pipe->flush() == st::again);
        r.pipe->complete_writes();
        CHECK(r.events() == ev::writable);  // owed by the flush
        CHECK(r.pipe->flush() == st::ok);

        Rig m(fake::client_setup(pf::message));
        m.events();
        CHECK(m.write(text(40 * 1024)) == 40 * 1024);
        CHECK(m.write(text(40 * 1024)) == st::again);  // never part of a message
        m.pipe->complete_writes();
        CHECK(m.write(text(200 * 1024)) == 200 * 1024);  // larger than the room, but the buffer is empty
        CHECK(m.write("") == 0);                         // an empty message is a message
        m.pipe->complete_writes();
        CHECK(m.pipe->handed_to_os.size() == 3u);
        CHECK(m.pipe->handed_to_os.back().empty());
        const std::string too_big = text(kMaxMessageSize + 1);
        CHECK(m.write(too_big) == st::msgsize);
    }

    TEST_CASE("pipe: the poll's thread leaves arming the wait to a read or write that holds the lock") {
        using namespace std::chrono_literals;
        Rig r(fake::client_setup());
        r.pipe->before_wait();  // nobody holds the lock: the poll's thread arms the wait itself
        CHECK(r.pipe->waits_armed == 1);

        // A write that holds the lock (under Windows: across its WriteFile) while the poll's
        // thread comes to arm the wait.
        {
            HeldWrite write(r, "abc");
            REQUIRE(write.entered());
            auto poll_thread = std::async(std::launch::async, [&] { r.pipe->before_wait(); });
            const bool returned = poll_thread.wait_for(5s) == std::future_status::ready;
            CHECK(returned);                  // it did not wait for the write
            CHECK(r.pipe->waits_armed == 1);  // the write owes the arming
            CHECK(write.finish() == 3);
            poll_thread.wait();
            CHECK(r.pipe->waits_armed == 2);  // paid once, by the write, as it unlocked
            CHECK(r.pipe->last_armed_on == write.id());
        }
        r.pipe->before_wait();  // no debt left over: the next wait is armed as usual
        CHECK(r.pipe->waits_armed == 3);

        // Out of memory while the write pays the debt: nothing escapes its lock's destructor, and
        // reading fails with the reason instead of waiting for bytes nobody will announce.
        {
            HeldWrite write(r, "def");
            REQUIRE(write.entered());
            r.pipe->arming_throws = true;
            r.pipe->before_wait();  // returns at once: the write holds the lock and owes the arming
            CHECK(write.finish() == 3);
        }
        CHECK(r.pipe->waits_armed == 3);
        CHECK((r.events() & ev::error) != 0u);
        std::string got;
        CHECK(r.read(got, 8) == st::nomem);
        CHECK(std::string(last_error_message()).find("out of memory arming") != std::string::npos);
    }

    TEST_CASE("pipe: a failed background write raises ERROR and fails every later write; the peer gone is EPIPE") {
        Rig r(fake::client_setup());
        r.events();
        REQUIRE(r.write("abc") == 3);
        r.pipe->write_fails(Failure{st::io, 9, "WriteFile failed"});
        CHECK((r.events() & (ev::error | ev::writable)) == (ev::error | ev::writable));
        CHECK(r.write("more") == st::io);
        CHECK(r.write("more") == st::io);  // sticky
        CHECK(r.pipe->take_error() == st::io);
        CHECK(r.pipe->take_error() == st::ok);

        Rig g(fake::client_setup());
        g.events();
        REQUIRE(g.write(text(70 * 1024)) == 64 * 1024);
        REQUIRE(g.write("x") == st::again);
        g.pipe->end_of_stream(true);  // Windows: the read side ended, so did writing
        CHECK((g.events() & (ev::write_closed | ev::writable | ev::readable | ev::read_closed)) ==
              (ev::write_closed | ev::writable | ev::readable | ev::read_closed));
        CHECK(g.write("x") == st::pipe);
        std::string got;
        CHECK(g.read(got, 8) == 0);  // sticky EOF
        CHECK(g.read(got, 8) == 0);
    }

    TEST_CASE("pipe: close lingers while bytes are undelivered, then releases; the poll's close stops it") {
        auto poll = std::make_shared<fake::Poll>();
        auto pipe = std::make_shared<fake::Pipe>(fake::client_setup());
        REQUIRE(pipe->register_with(poll, 1, ev::writable) == st::ok);
        IoVec v{const_cast<char *>("data"), 4};
        REQUIRE(pipe->write(&v, 1, 4) == 4);
        pipe->close();
        CHECK(pipe->releases == 0);  // lingering: the poll keeps it alive
        std::weak_ptr<fake::Pipe> weak = pipe;
        auto keep = pipe;
        pipe.reset();
        keep->complete_writes();  // delivered: the linger ends
        CHECK(keep->releases == 1);
        keep.reset();
        Event e[4];
        CHECK(poll->wait(e, 4, 0) == 0);  // a closed pipe reports nothing (and leaves the ready list)
        CHECK(weak.expired());            // the poll let go of it

        PipeSetup short_linger = fake::client_setup();
        short_linger.linger_ms = 50;
        auto expiring = std::make_shared<fake::Pipe>(short_linger);
        expiring->register_with(poll, 2, ev::writable);
        REQUIRE(expiring->write(&v, 1, 4) == 4);
        expiring->close();
        poll->wait(e, 4, 1000);  // the wait ends the 50 ms linger on time, whatever its own timeout
        CHECK(expiring->releases == 1);

        auto stopped = std::make_shared<fake::Pipe>(fake::client_setup());
        stopped->register_with(poll, 3, ev::writable);
        poll->close();
        CHECK(stopped->releases == 1);
        CHECK(stopped->write(&v, 1, 4) == st::canceled);
        CHECK(stopped->take_error() == st::canceled);
    }
}

TEST_SUITE("core") {
    TEST_CASE("open: one attempt with timeout 0; the failure stays for every I/O call") {
        auto poll = std::make_shared<fake::Poll>();
        auto pipe = std::make_shared<fake::Pipe>(fake::pending_client_setup(0));
        pipe->open_answer = fake::Pipe::Outcome::busy;
        std::string got(8, '\0');
        IoVec v{got.data(), got.size()};
        REQUIRE(pipe->register_with(poll, 1, ev::readable) == st::ok);
        CHECK(pipe->open_attempts == 1);
        Event e[4];
        REQUIRE(poll->wait(e, 4, 0) == 1);
        CHECK(e[0].events == (ev::connected | ev::error | ev::readable));  // WRITABLE is not an interest
        CHECK(pipe->read(&v, 1, 8, nullptr) == st::busy);
        CHECK(pipe->write(&v, 1, 8) == st::busy);
        CHECK(pipe->take_error() == st::busy);
        CHECK(pipe->take_error() == st::ok);
        CHECK(pipe->read(&v, 1, 8, nullptr) == st::busy);  // sticky for I/O
        poll->close();
    }

    TEST_CASE("open: retries back off on the poll's clock until it succeeds; I/O waits meanwhile") {
        auto poll = std::make_shared<fake::Poll>();
        auto pipe = std::make_shared<fake::Pipe>(fake::pending_client_setup(-1));
        pipe->open_answer = fake::Pipe::Outcome::absent;
        std::string got(8, '\0');
        IoVec v{got.data(), got.size()};
        CHECK(pipe->read(&v, 1, 8, nullptr) == st::again);  // not registered yet
        REQUIRE(pipe->register_with(poll, 1, ev::readable | ev::writable) == st::ok);
        CHECK(pipe->write(&v, 1, 8) == st::again);
        CHECK(std::string(last_error_message()).find("connection in progress") != std::string::npos);
        Event e[4];
        // Retries 1, 2, 4, 8 ... ms apart: within 100 ms of waiting there are several, not hundreds.
        CHECK(poll->wait(e, 4, 100) == 0);
        CHECK(pipe->open_attempts >= 2);
        CHECK(pipe->open_attempts <= 12);
        pipe->open_answer = fake::Pipe::Outcome::connected;
        REQUIRE(poll->wait(e, 4, 1000) == 1);  // the next retry (at most 50 ms later) succeeds
        CHECK(e[0].events == (ev::connected | ev::writable));
        CHECK(pipe->take_error() == st::ok);
        CHECK(pipe->write(&v, 1, 8) == 8);
        const int attempts = pipe->open_attempts;
        CHECK(poll->wait(e, 4, 60) == 0);
        CHECK(pipe->open_attempts == attempts);  // no more timers once connected
        poll->close();
    }

    TEST_CASE("open: the deadline ends the retries with ETIMEDOUT; close cancels them") {
        auto poll = std::make_shared<fake::Poll>();
        auto pipe = std::make_shared<fake::Pipe>(fake::pending_client_setup(30));
        pipe->open_answer = fake::Pipe::Outcome::absent;
        REQUIRE(pipe->register_with(poll, 1, ev::writable) == st::ok);
        Event e[4];
        REQUIRE(poll->wait(e, 4, 1000) == 1);
        CHECK(e[0].events == (ev::connected | ev::error | ev::writable));
        CHECK(pipe->take_error() == st::timedout);

        auto cancelled = std::make_shared<fake::Pipe>(fake::pending_client_setup(-1));
        cancelled->open_answer = fake::Pipe::Outcome::absent;
        REQUIRE(cancelled->register_with(poll, 2, ev::writable) == st::ok);
        cancelled->close();
        const int attempts = cancelled->open_attempts;
        CHECK(poll->wait(e, 4, 80) == 0);
        CHECK(cancelled->open_attempts == attempts);
        poll->close();
    }

    TEST_CASE("open: the blocking open follows the same policy on the caller's thread") {
        auto pipe = std::make_shared<fake::Pipe>(fake::pending_client_setup(0));
        pipe->open_answer = fake::Pipe::Outcome::absent;
        CHECK(pipe->open_blocking() == st::noent);
        CHECK(pipe->open_attempts == 1);
        auto bounded = std::make_shared<fake::Pipe>(fake::pending_client_setup(40));
        bounded->open_answer = fake::Pipe::Outcome::busy;
        CHECK(bounded->open_blocking() == st::timedout);
        CHECK(bounded->open_attempts >= 2);
        CHECK(bounded->open_attempts <= 12);
        auto good = std::make_shared<fake::Pipe>(fake::pending_client_setup(0));
        CHECK(good->open_blocking() == st::ok);
        auto poll = std::make_shared<fake::Poll>();
        REQUIRE(good->register_with(poll, 1, ev::writable) == st::ok);
        Event e[4];
        REQUIRE(poll->wait(e, 4, 0) == 1);
        CHECK(e[0].events == ev::writable);  // the open ended before: no CONNECTED news
        poll->close();
    }

    TEST_CASE("wait: level conditions on a private poll; EEXIST once bound to a caller's poll") {
        auto pipe = std::make_shared<fake::Pipe>(fake::client_setup());
        CHECK(pipe->wait(ev::readable, 0) == 0);
        CHECK(pipe->wait(ev::writable, 0) == static_cast<int32_t>(ev::writable | ev::connected));
        pipe->arrive("x");
        CHECK(pipe->wait(ev::readable | ev::writable, 0) ==
              static_cast<int32_t>(ev::readable | ev::writable | ev::connected));
        auto poll = std::make_shared<fake::Poll>();
        CHECK(pipe->register_with(poll, 1, ev::readable) == st::exist);
        auto registered = std::make_shared<fake::Pipe>(fake::client_setup());
        REQUIRE(registered->register_with(poll, 1, ev::readable) == st::ok);
        CHECK(registered->wait(ev::readable, 0) == st::exist);
        // A failed open counts for both.
        auto failed = std::make_shared<fake::Pipe>(fake::pending_client_setup(0));
        failed->open_answer = fake::Pipe::Outcome::absent;
        CHECK(failed->wait(ev::readable, 1000) == static_cast<int32_t>(ev::readable | ev::connected));
        pipe->close();
        failed->close();
        poll->close();
    }
}
