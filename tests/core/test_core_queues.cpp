// The pipe's building blocks on their own: the frame decoder, the read and write queues, deadlines.
#include <doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "lib/core/deadline.hpp"
#include "lib/core/framing.hpp"
#include "lib/core/read_queue.hpp"
#include "lib/core/status.hpp"
#include "lib/core/write_queue.hpp"

using namespace npipe;

namespace {

std::vector<uint8_t> frame(const std::string &payload) {
    std::vector<uint8_t> out(framing::kHeaderSize + payload.size());
    framing::put_length(out.data(), static_cast<uint32_t>(payload.size()));
    for (size_t i = 0; i < payload.size(); ++i) out[framing::kHeaderSize + i] = static_cast<uint8_t>(payload[i]);
    return out;
}

// Every message read back with a buffer of `len` bytes, flags recorded per read.
std::vector<std::string> drain(ReadQueue &q, size_t len, std::vector<uint32_t> *flags = nullptr) {
    std::vector<std::string> out;
    std::string buf(len, '\0');
    for (;;) {
        IoVec v{buf.data(), len};
        const ReadQueue::MessageRead r = q.read_message(&v, 1, len, false, false);
        if (!r.got) break;
        out.emplace_back(buf.data(), r.bytes);
        if (flags) flags->push_back(r.flags);
    }
    return out;
}

}  // namespace

TEST_SUITE("core") {
    TEST_CASE("frame decoder: the same messages however the stream is split") {
        std::vector<uint8_t> stream;
        const std::vector<std::string> messages = {"", "a", "hello world", std::string(300, 'z'), ""};
        for (const auto &m : messages) {
            const auto f = frame(m);
            stream.insert(stream.end(), f.begin(), f.end());
        }
        for (size_t split = 1; split <= stream.size(); ++split) {
            CAPTURE(split);
            ReadQueue q;
            framing::FrameDecoder d;
            for (size_t at = 0; at < stream.size(); at += split) {
                const size_t n = std::min(split, stream.size() - at);
                CHECK_FALSE(d.feed(stream.data() + at, n, q));
            }
            CHECK(drain(q, 1024) == messages);
        }
    }

    TEST_CASE("frame decoder: a length over 16 MiB is a protocol error naming the likely cause") {
        ReadQueue q;
        framing::FrameDecoder d;
        const uint8_t bad[] = {'G', 'E', 'T', ' ', 'x'};  // text from a byte-mode writer
        const Failure f = d.feed(bad, sizeof bad, q);
        CHECK(f.code == st::io);
        CHECK(f.message.find("message mode") != std::string::npos);
        CHECK(q.empty());
    }

    TEST_CASE("read queue: byte reads cross pieces; message reads never merge") {
        ReadQueue q;
        q.push({'a', 'b'}, true);
        q.push({'c'}, true);
        CHECK(q.buffered() == 3u);
        char buf[8];
        IoVec halves[2] = {{buf, 1}, {buf + 1, 7}};
        CHECK(q.read_bytes(halves, 2) == 3u);
        CHECK(std::string(buf, 3) == "abc");
        CHECK(q.empty());

        q.push({'x', 'y', 'z'}, true);
        q.push({'w'}, true);
        std::vector<uint32_t> flags;
        CHECK(drain(q, 2, &flags) == std::vector<std::string>{"xy", "z", "w"});
        CHECK(flags == std::vector<uint32_t>{mf::partial, 0, 0});
        CHECK(q.buffered() == 0u);
    }

    TEST_CASE("write queue: acceptance, synchronous and asynchronous hand-over, the owed edge") {
        WriteQueue q(100);
        CHECK(q.acceptable(150, false) == 100u);
        CHECK(q.acceptable(150, true) == 150u);  // empty: a big message is still taken
        const std::string a(60, 'a');
        IoVec va{const_cast<char *>(a.data()), a.size()};
        q.append(nullptr, 0, &va, 1, 0, 60, false);
        CHECK(q.acceptable(50, true) == 0u);  // does not fit behind what waits
        CHECK(q.acceptable(50, false) == 40u);
        const uint8_t header[2] = {'H', 'H'};
        q.append(header, 2, &va, 1, 1, 30, true);  // bytes 1..30 of (header ++ a)
        CHECK(q.queued() == 90u);
        IoVec ranges[4];
        REQUIRE(q.peek(ranges, 4) == 2u);
        CHECK(ranges[1].len == 30u);
        CHECK(static_cast<char *>(ranges[1].base)[0] == 'H');
        CHECK(static_cast<char *>(ranges[1].base)[1] == 'a');
        q.owe_on_room();
        CHECK(q.settle_owed());  // room is 10: any room pays the debt
        q.consumed(70);
        CHECK(q.queued() == 20u);
        const std::vector<uint8_t> piece = q.take_front();  // the rest of the message
        CHECK(piece.size() == 20u);
        CHECK(q.in_flight() == 20u);
        CHECK_FALSE(q.idle());
        q.owe_on_drain();
        q.completed(20);
        q.piece_done();
        CHECK(q.idle());
        CHECK(q.settle_owed());
        CHECK_FALSE(q.settle_owed());

        WriteQueue full(10);
        full.append(nullptr, 0, &va, 1, 0, 10, false);
        full.owe_on_room();
        CHECK_FALSE(full.settle_owed());  // no room yet: still owed
        full.consumed(1);
        CHECK(full.settle_owed());
    }

    TEST_CASE("write queue: the storage of a piece the OS is through with holds the next piece") {
        WriteQueue q(100);
        const std::string a(40, 'a'), b(30, 'b');
        IoVec va{const_cast<char *>(a.data()), a.size()};
        IoVec vb{const_cast<char *>(b.data()), b.size()};
        // The asynchronous way (Windows): the op's storage comes back when its piece is done.
        q.append(nullptr, 0, &va, 1, 0, a.size(), true);
        std::vector<uint8_t> first = q.take_front();
        const uint8_t *storage = first.data();
        q.completed(first.size());
        q.piece_done();
        q.recycle(std::move(first));
        q.append(nullptr, 0, &vb, 1, 0, b.size(), true);
        std::vector<uint8_t> second = q.take_front();
        CHECK(second.data() == storage);
        CHECK(second.capacity() >= a.size());  // not storage made for b (an allocator may reuse an address)
        CHECK(std::string(second.begin(), second.end()) == b);
        // The synchronous way (Linux): a piece consumed whole gives its storage to the next one.
        q.completed(second.size());
        q.piece_done();
        q.append(nullptr, 0, &va, 1, 0, a.size(), true);
        IoVec range;
        REQUIRE(q.peek(&range, 1) == 1u);
        const void *held = range.base;
        q.consumed(a.size());
        q.append(nullptr, 0, &vb, 1, 0, b.size(), true);
        REQUIRE(q.peek(&range, 1) == 1u);
        CHECK(range.base == held);
        CHECK(std::string(static_cast<char *>(range.base), range.len) == b);
        const std::vector<uint8_t> third = q.take_front();
        CHECK(third.capacity() >= a.size());
        q.completed(third.size());
        q.piece_done();
        // An empty message handed over keeps the storage it was given for the piece after it.
        q.append(nullptr, 0, &va, 1, 0, a.size(), true);
        q.consumed(a.size());
        q.append(nullptr, 0, nullptr, 0, 0, 0, true);
        q.consumed(0);
        CHECK(q.idle());
        q.append(nullptr, 0, &vb, 1, 0, b.size(), true);
        CHECK(q.take_front().capacity() >= a.size());
        // Storage bigger than the buffer (a big message's) is not kept.
        WriteQueue small(16);
        std::vector<uint8_t> big(64);
        small.recycle(std::move(big));
        small.append(nullptr, 0, &vb, 1, 0, 8, true);
        REQUIRE(small.peek(&range, 1) == 1u);
        CHECK(range.len == 8u);
        // Told by the capacity, not the address: the allocator may hand the freed block out again.
        CHECK(small.take_front().capacity() < 64u);
    }

    TEST_CASE("read queue: the storage of a piece read out is read into again, in byte and message reads") {
        ReadQueue q;
        std::vector<uint8_t> storage = q.take_spare(64);
        REQUIRE(storage.size() >= 64u);
        const uint8_t *at = storage.data();
        storage[0] = 'm';
        storage[1] = 'n';
        q.push_filled(std::move(storage), 2, true);  // alone in the queue: waits in its storage
        CHECK(drain(q, 8) == std::vector<std::string>{"mn"});
        std::vector<uint8_t> again = q.take_spare(32);  // smaller: the same storage, not cut down
        CHECK(again.data() == at);
        CHECK(again.size() >= 64u);
        again[0] = 'x';
        q.push_filled(std::move(again), 1, true);
        char buf[4];
        IoVec v{buf, sizeof buf};
        CHECK(q.read_bytes(&v, 1) == 1u);
        CHECK(buf[0] == 'x');
        CHECK(q.take_spare(64).data() == at);
    }

    TEST_CASE("read queue: a read's storage waits with its bytes, unless they are a few behind others") {
        ReadQueue q;
        std::vector<uint8_t> first = q.take_spare(64);
        const uint8_t *first_at = first.data();
        first[0] = 'a';
        q.push_filled(std::move(first), 1, true);  // alone in the queue: waits in its storage
        std::vector<uint8_t> second = q.take_spare(64);
        CHECK(second.data() != first_at);  // still holding 'a'
        const uint8_t *second_at = second.data();
        second[0] = 'b';
        q.push_filled(std::move(second), 1, true);  // behind 'a': copied out, storage kept
        CHECK(q.take_spare(64).data() == second_at);
        std::vector<uint8_t> third = q.take_spare(64);
        std::fill(third.begin(), third.begin() + 32, uint8_t{'c'});
        q.push_filled(std::move(third), 32, true);  // a quarter or more: waits in its storage
        CHECK(q.buffered() == 34u);
        char buf[40];
        IoVec v{buf, sizeof buf};
        CHECK(q.read_bytes(&v, 1) == 34u);
        CHECK(std::string(buf, 34) == "ab" + std::string(32, 'c'));
    }

    TEST_CASE("deadline: never, bounds, rounding up") {
        CHECK(Deadline::never().remaining_ms() == -1);
        CHECK(Deadline::after_ms(-5).is_never());
        CHECK(Deadline::never().bound(30) == 30);
        CHECK(Deadline::never().bound(-1) == -1);
        const Deadline soon = Deadline::after_ms(200);
        CHECK(soon.remaining_ms() > 0);
        CHECK(soon.remaining_ms() <= 200);
        CHECK(soon.bound(-1) == soon.remaining_ms());
        CHECK(soon.bound(5) == 5);
        CHECK(Deadline::after_ms(0).passed());
        CHECK(Deadline::after_ms(0).remaining_ms() == 0);
        CHECK(Deadline::earlier(Deadline::never(), soon).when() == soon.when());
    }
}
