// libFuzzer target: the input is a program of C-API calls over a few pipes, two polls and short
// bursts of a second thread. Every call's result is checked against npipe.h as it happens (codes
// in range and the exact code where the header names one, never more bytes than asked, the bytes
// of a connected pair arrive in order and unchanged, message boundaries and flags), and at the end
// of each input every byte accepted between two live ends must have arrived, every handle closes,
// and the process holds as many descriptors as before. A broken promise aborts, which libFuzzer
// reports with the input that caused it; ASan/UBSan/LeakSanitizer catch the rest.
//
// Linux only (libFuzzer is a clang feature; the Windows backend is exercised by the doctest
// suites under Wine). Names are bare, so every socket file lands in $TMPDIR.
#include <npipe.h>

#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fputs("npipe fuzz: broken promise: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fprintf(stderr, " (last error message: %s)\n", npipe_last_error_message());
    va_end(ap);
    std::abort();
}

#define EXPECT(cond)                                             \
    do {                                                         \
        if (!(cond)) fail("%s:%d: %s", __FILE__, __LINE__, #cond); \
    } while (0)

// Every code the header defines.
bool known_code(int64_t rc) {
    switch (rc) {
    case NPIPE_EAGAIN: case NPIPE_EINVAL: case NPIPE_EBADF: case NPIPE_ENOENT: case NPIPE_EBUSY:
    case NPIPE_EEXIST: case NPIPE_EACCES: case NPIPE_EPIPE: case NPIPE_ENOTCONN: case NPIPE_ETIMEDOUT:
    case NPIPE_ENOMEM: case NPIPE_ENAMETOOLONG: case NPIPE_EMSGSIZE: case NPIPE_ENOTSUP:
    case NPIPE_ECANCELED: case NPIPE_EIO:
        return true;
    default:
        return rc >= 0;
    }
}

// A result must be a known code; a failure must leave a message.
int64_t checked(int64_t rc) {
    if (!known_code(rc)) fail("unknown status %lld", static_cast<long long>(rc));
    if (rc < 0) {
        const char *m = npipe_last_error_message();
        if (m == nullptr || *m == '\0') fail("status %lld without a message", static_cast<long long>(rc));
    }
    return rc;
}

constexpr size_t kMaxMessage = size_t(16) << 20;  // the header's message limit

// The byte at `off` of the stream `salt`: a mix of the offset, so a lost, repeated or reordered
// range shows up at any alignment.
uint8_t stream_byte(uint64_t salt, uint64_t off) {
    uint64_t x = (off ^ (salt << 40)) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return static_cast<uint8_t>(x >> 56);
}

// The input, read as a tape; past its end every read is 0.
struct Tape {
    const uint8_t *p;
    size_t n;
    int huge_left = 4;  // lengths above 1 MiB per input: each costs up to a second under ASan
    uint8_t u8() { return n ? (--n, *p++) : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
    uint32_t u32() { return u16() | (static_cast<uint32_t>(u16()) << 16); }
    uint64_t u64() { return u32() | (static_cast<uint64_t>(u32()) << 32); }
    bool more() const { return n > 0; }
    std::string bytes(size_t max) {
        const size_t len = std::min<size_t>(u8() % (max + 1), n);
        std::string s(reinterpret_cast<const char *>(p), len);
        p += len;
        n -= len;
        return s;
    }
    // A length: mostly small, sometimes around the buffer sizes, sometimes huge.
    size_t length() {
        switch (u8() % 8) {
        case 0: return 0;
        case 1: return 1 + u8();
        case 2: return u16();
        case 3: return 65536 + (u16() % 3) - 1;
        case 4: return u32() % (1u << 20);
        case 5: {  // around the 16 MiB message limit, rarely
            const uint8_t r = u8();
            if (r >= 32 || huge_left == 0) return 1 + r;
            --huge_left;
            return kMaxMessage + (r % 3) - 1;
        }
        default: return 1 + u16() % 4096;
        }
    }
};

// One direction of a pair: what the writer end got accepted and the reader end took out.
struct Direction {
    uint64_t salt = 0;
    uint64_t accepted = 0;
    uint64_t delivered = 0;
    std::deque<uint64_t> messages;  // message mode: sizes accepted and not completely read
    uint64_t msg_off = 0;           // bytes already read of messages.front()
    size_t skippable = 0;           // leading empty messages an npipe_read/readv may have dropped
    bool lossless = true;           // the header promises every accepted byte arrives
    // The writer was closed at this time with this linger_ms: it delivers only for that long.
    std::chrono::steady_clock::time_point writer_closed_at{};
    int32_t writer_linger_ms = -1;

    bool promised() const {
        if (!lossless) return false;
        if (writer_linger_ms < 0) return true;  // the writer is open
        // Half the linger time as the margin: a slow input (a 16 MiB message takes a second under
        // ASan) must not turn the one documented loss into a false alarm.
        return std::chrono::steady_clock::now() - writer_closed_at < std::chrono::milliseconds(writer_linger_ms / 2);
    }
    int closed_writer_poll = -1;    // the writer was closed while bound to this poll (lingering)
};

struct End {
    npipe_t h = 0;
    bool live = false;
    bool server = false;
    bool message = false;
    int pair = -1;       // -1: not part of a tracked connection (orphaned or never connected)
    int out_dir = -1;    // index into Pair::dir this end writes
    int poll = -1;       // the poll it is bound to for life (-1: none yet)
    bool registered = false;
    bool poll_closed = false;  // its poll was closed: ECANCELED from then on
    bool connected = false;    // server: npipe_connect said OK
    bool discards = false;     // linger < 0: close may drop accepted bytes
    int32_t linger_ms = 1000;  // the library's default (adopted ends have no options)
    uint64_t token = 0;
    uint64_t lifetime_read = 0, lifetime_written = 0;
};

struct Pair {
    std::string name;
    int server = -1, client = -1;  // end slots; -1 none yet, -2 closed (slots are reused)
    Direction dir[2];
    bool untracked = false;  // which client this connection gets is not known: no data checks  // 0: server -> client, 1: client -> server
};

constexpr int kEnds = 8;
constexpr int32_t kLingerMs = 60000;  // closed ends deliver what they accepted for this long
constexpr int kPolls = 2;
constexpr uint64_t kWakeBase = 1ull << 62;

std::vector<uint8_t> &big_buffer() {  // shared by huge reads and writes (16 MiB + 1)
    static std::vector<uint8_t> buf(kMaxMessage + 2);
    return buf;
}

// The descriptors of the kinds the library creates (sockets, epoll and eventfd instances); with
// `show`, each one's target on stderr. Other kinds are left out: libFuzzer itself opens pipes to
// a symbolizer when it reports new coverage.
size_t count_fds(bool show = false) {
    size_t n = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
        while (const dirent *ent = readdir(d)) {
            char target[256] = {0};
            const std::string path = std::string("/proc/self/fd/") + ent->d_name;
            if (readlink(path.c_str(), target, sizeof target - 1) < 0) continue;
            if (std::strncmp(target, "socket:", 7) != 0 && std::strncmp(target, "anon_inode:", 11) != 0) continue;
            ++n;
            if (show) std::fprintf(stderr, "  fd %s -> %s\n", ent->d_name, target);
        }
        closedir(d);
    }
    return n;
}

struct Session {
    End ends[kEnds];
    std::vector<Pair> pairs;
    npipe_poll_t polls[kPolls] = {0, 0};
    std::set<uint64_t> wakes[kPolls];             // wake tokens posted and not yet seen
    std::set<uint64_t> registered_tokens[kPolls]; // tokens a wait may report
    std::set<uint64_t> forbidden_tokens[kPolls];  // deregistered: no later wait may report them
    std::set<uint64_t> ever_tokens[kPolls];       // every token registered with this poll
    std::vector<npipe_t> stale_pipes;
    std::vector<npipe_poll_t> stale_polls;
    uint64_t next_token = 1;
    unsigned serial = 0;
    bool closing[kEnds] = {};  // another thread may close it right now: EBADF allowed
    bool trace = std::getenv("NPIPE_FUZZ_TRACE") != nullptr;  // what an input does, call by call

    void note(const char *what, int e, int64_t rc, size_t len = 0) {
        if (!trace) return;
        std::fprintf(stderr, "  %s end %d (pair %d%s) len %zu -> %lld\n", what, e, e >= 0 ? ends[e].pair : -1,
                     e >= 0 && ends[e].server ? ", server" : "", len, static_cast<long long>(rc));
    }

    std::string new_name() {
        static std::atomic<unsigned> counter{0};
        return "fz" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    }

    int free_end() {
        for (int i = 0; i < kEnds; ++i)
            if (!ends[i].live) return i;
        return -1;
    }

    Direction *out_of(int e) {
        const End &end = ends[e];
        if (end.pair < 0 || pairs[end.pair].untracked) return nullptr;
        return &pairs[end.pair].dir[end.out_dir];
    }
    Direction *in_of(int e) {
        const End &end = ends[e];
        if (end.pair < 0 || pairs[end.pair].untracked) return nullptr;
        return &pairs[end.pair].dir[1 - end.out_dir];
    }
    int peer_of(int e) {
        const End &end = ends[e];
        if (end.pair < 0) return -1;
        const Pair &p = pairs[end.pair];
        return p.server == e ? p.client : p.server;
    }

    // --- pipes ------------------------------------------------------------------------------

    // A new connection of `name` with fresh streams in both directions; returns its index.
    int new_pair(const std::string &name, int server, int client = -1) {
        Pair p;
        p.name = name;
        p.server = server;
        p.client = client;
        p.dir[0].salt = ++serial;
        p.dir[1].salt = ++serial;
        pairs.push_back(p);
        return static_cast<int>(pairs.size()) - 1;
    }

    void op_create(Tape &t) {
        const int e = free_end();
        if (e < 0) return;
        npipe_server_options_t o;
        npipe_server_options_init(&o);
        const uint8_t f = t.u8();
        o.flags = (f & 1 ? NPIPE_MESSAGE : 0) | (f & 2 ? NPIPE_FIRST_INSTANCE : 0);
        o.max_instances = f & 4 ? 1 : 0;
        o.linger_ms = f & 8 ? -1 : kLingerMs;
        o.in_buffer_size = f & 16 ? t.u16() : 0;
        o.out_buffer_size = f & 32 ? t.u16() : 0;
        const std::string name = new_name();
        npipe_t h = 0;
        const int64_t rc = checked(npipe_create(name.c_str(), &o, &h));
        EXPECT(rc == NPIPE_OK);
        EXPECT(h != 0 && (h >> 32) != 0);
        End &end = ends[e];
        end = End{};
        end.h = h;
        end.live = true;
        end.server = true;
        end.message = o.flags & NPIPE_MESSAGE;
        end.discards = o.linger_ms < 0;
        end.linger_ms = o.linger_ms;
        end.pair = new_pair(name, e);
        end.out_dir = 0;
        // A second instance of a one-instance pipe is refused.
        if (o.max_instances == 1) {
            npipe_t x = 0;
            const int64_t again = checked(npipe_create(name.c_str(), &o, &x));
            EXPECT(again == NPIPE_EBUSY || ((o.flags & NPIPE_FIRST_INSTANCE) && again == NPIPE_EEXIST));
        }
    }

    void op_open(Tape &t) {
        const int e = free_end();
        if (e < 0 || pairs.empty()) return;
        Pair &p = pairs[t.u8() % pairs.size()];
        if (p.client != -1 || p.untracked || p.server < 0 || !ends[p.server].live) return;
        npipe_client_options_t o;
        npipe_client_options_init(&o);
        o.flags = ends[p.server].message ? NPIPE_MESSAGE : 0;
        o.timeout_ms = t.u8() % 3;
        o.linger_ms = t.u8() & 1 ? -1 : kLingerMs;
        npipe_t h = 0;
        const int64_t rc = checked(npipe_open(p.name.c_str(), &o, &h));
        note("open", e, rc);
        // One instance, waiting or not yet asked to: the client gets in (the OS queues it),
        // unless the instance's poll was closed, which released its OS handle.
        EXPECT(rc == NPIPE_OK || rc == NPIPE_EBUSY || rc == NPIPE_ETIMEDOUT ||
               (ends[p.server].poll_closed && rc == NPIPE_ENOENT));
        if (rc != NPIPE_OK) return;
        End &end = ends[e];
        end = End{};
        end.h = h;
        end.live = true;
        end.message = o.flags & NPIPE_MESSAGE;
        end.discards = o.linger_ms < 0;
        end.linger_ms = o.linger_ms;
        end.pair = ends[p.server].pair;
        end.out_dir = 1;
        p.client = e;
    }

    // A Linux pair without a name: both halves of a socketpair adopted.
    void op_raw_pair(Tape &t) {
        const int a = free_end();
        if (a < 0) return;
        ends[a].live = true;  // reserve
        const int b = free_end();
        ends[a].live = false;
        if (b < 0) return;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
        const uint32_t flags = t.u8() & 1 ? NPIPE_MESSAGE : 0;
        npipe_t ha = 0, hb = 0;
        EXPECT(checked(npipe_from_raw_handle(sv[0], flags, &ha)) == NPIPE_OK);
        EXPECT(checked(npipe_from_raw_handle(sv[1], flags, &hb)) == NPIPE_OK);
        // a is the "server" of the bookkeeping only; neither is a server instance.
        const int idx = new_pair("(socketpair)", a, b);
        for (int i = 0; i < 2; ++i) {
            End &end = ends[i == 0 ? a : b];
            end = End{};
            end.h = i == 0 ? ha : hb;
            end.live = true;
            end.message = flags != 0;
            end.pair = idx;
            end.out_dir = i;
        }
        // Adopted ends are connected from the start; npipe_connect is for server instances only.
        EXPECT(checked(npipe_connect(ha)) == NPIPE_EINVAL);
        intptr_t raw = 0;
        EXPECT(checked(npipe_raw_handle(hb, &raw)) == NPIPE_OK && raw == sv[1]);
    }

    void op_register(Tape &t) {
        const int e = t.u8() % kEnds;
        const int pi = t.u8() % kPolls;
        if (!ends[e].live || polls[pi] == 0) return;
        End &end = ends[e];
        uint32_t interests = NPIPE_READABLE | NPIPE_WRITABLE;
        const uint8_t f = t.u8();
        if (f & 1) interests = NPIPE_READABLE;
        if (f & 2) interests = NPIPE_WRITABLE;
        if (f & 4) interests |= NPIPE_LEVEL;
        if ((f & 0xF0) == 0xF0) interests |= 0x80u << (f & 7);  // an unknown bit
        const bool bad_bits = (interests & ~(NPIPE_READABLE | NPIPE_WRITABLE | NPIPE_LEVEL)) != 0;
        const uint64_t token = next_token++;
        const bool re = t.u8() & 1;
        const int64_t rc = checked(re ? npipe_reregister(polls[pi], end.h, token, interests)
                                      : npipe_register(polls[pi], end.h, token, interests));
        if (closing[e] && rc == NPIPE_EBADF) return;
        if (end.poll_closed) {
            EXPECT(rc == NPIPE_ECANCELED || rc == NPIPE_EEXIST || rc == NPIPE_EINVAL || rc == NPIPE_ENOENT);
            return;
        }
        if (end.poll >= 0 && end.poll != pi) {
            // Bound for life to its first poll; but a reregister of an end registered nowhere
            // answers that first (ENOENT), on every platform (the parity suite).
            const int64_t other = re && !end.registered ? NPIPE_ENOENT : NPIPE_EEXIST;
            EXPECT(rc == other || (bad_bits && rc == NPIPE_EINVAL));
            return;
        }
        if (bad_bits) {
            EXPECT(rc == NPIPE_EINVAL || rc == NPIPE_EEXIST || rc == NPIPE_ENOENT);
            return;
        }
        if (re) {
            EXPECT(rc == (end.registered ? NPIPE_OK : NPIPE_ENOENT));
        } else {
            EXPECT(rc == (end.registered ? NPIPE_EEXIST : NPIPE_OK));
        }
        if (rc == NPIPE_OK) {
            registered_tokens[pi].erase(end.token);
            end.token = token;
            end.poll = pi;
            end.registered = true;
            registered_tokens[pi].insert(token);
            ever_tokens[pi].insert(token);
        }
    }

    void op_deregister(Tape &t) {
        const int e = t.u8() % kEnds;
        const int pi = t.u8() % kPolls;
        if (!ends[e].live || polls[pi] == 0) return;
        End &end = ends[e];
        const int64_t rc = checked(npipe_deregister(polls[pi], end.h));
        if (closing[e] && rc == NPIPE_EBADF) return;
        if (end.poll_closed) {
            EXPECT(rc < 0);
            return;
        }
        if (end.poll >= 0 && end.poll != pi) {
            EXPECT(rc == (end.registered ? NPIPE_EEXIST : NPIPE_ENOENT));  // as op_register says
            return;
        }
        EXPECT(rc == (end.registered ? NPIPE_OK : NPIPE_ENOENT));
        if (rc == NPIPE_OK) {
            end.registered = false;
            registered_tokens[pi].erase(end.token);
            forbidden_tokens[pi].insert(end.token);
        }
    }

    // What every server-only call answers where the end is no working server instance; true when
    // the end is one, and the caller checks the rest.
    bool server_answer(int e, int64_t rc) {
        const End &end = ends[e];
        if (closing[e] && rc == NPIPE_EBADF) return false;
        if (!end.server) {
            EXPECT(rc == NPIPE_EINVAL || (end.poll_closed && rc == NPIPE_ECANCELED));
            return false;
        }
        if (end.poll_closed) {
            EXPECT(rc == NPIPE_ECANCELED);
            return false;
        }
        return true;
    }

    void op_connect(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        End &end = ends[e];
        const int64_t rc = checked(npipe_connect(end.h));
        note("connect", e, rc);
        if (!server_answer(e, rc)) return;
        if (rc == NPIPE_OK) end.connected = true;
    }

    void op_disconnect(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        End &end = ends[e];
        // Whether the instance had taken its client yet decides what becomes of that client.
        npipe_info_t info;
        std::memset(&info, 0, sizeof info);
        info.size = sizeof info;
        const bool had_client = checked(npipe_get_info(end.h, &info)) == NPIPE_OK && (info.flags & NPIPE_INFO_CONNECTED);
        const int64_t rc = checked(npipe_disconnect(end.h));
        note("disconnect", e, rc);
        if (!server_answer(e, rc)) return;
        EXPECT(rc == NPIPE_OK);
        // The client of this connection is on its own now (it sees EOF / EPIPE); the instance
        // starts a new connection with fresh streams. Unread bytes are discarded by contract.
        Pair &old = pairs[end.pair];
        const int old_client = old.client;
        const bool old_untracked = old.untracked;
        if (old.client >= 0) {
            ends[old.client].pair = -1;
        }
        old.client = -1;
        old.server = -1;
        end.pair = new_pair(std::string(old.name), e);
        // A client that opened while the instance listened without taking it is dropped here on
        // both platforms (the parity suite checks that). One that opened after an earlier
        // npipe_disconnect got in only on Linux (the name's backlog; Windows answers busy) and stays
        // queued for the next npipe_connect. Not knowing which, the next connection's bytes are not
        // checked - until the instance has taken that stray client and let it go.
        pairs[end.pair].untracked = !had_client && (old_client != -1 || old_untracked);
        end.connected = false;
    }

    void forget_end(int e) {
        End &end = ends[e];
        if (end.registered && end.poll >= 0) registered_tokens[end.poll].erase(end.token);
        if (end.pair >= 0) {
            Pair &p = pairs[end.pair];
            if (Direction *out = out_of(e)) {
                // Lingering delivers what it accepted only while its poll is waited on.
                if (end.discards || end.poll_closed || end.poll < 0) out->lossless = false;
                out->closed_writer_poll = end.poll;
                out->writer_closed_at = std::chrono::steady_clock::now();
                out->writer_linger_ms = end.linger_ms;
            }
            if (p.server == e) p.server = -2;
            if (p.client == e) p.client = -2;
        }
        stale_pipes.push_back(end.h);
        end.live = false;
    }

    void op_close(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        note("close", e, 0);
        EXPECT(checked(npipe_close(ends[e].h)) == NPIPE_OK);
        EXPECT(checked(npipe_close(ends[e].h)) == NPIPE_EBADF);
        forget_end(e);
    }

    // A buffer of len + 1 bytes: `local`, or the shared one for huge lengths.
    static uint8_t *buffer_for(size_t len, std::vector<uint8_t> &local) {
        if (len > 65536) return big_buffer().data();
        local.resize(len + 1);
        return local.data();
    }

    // The data of a write of `len` bytes to end `e`, at its stream's current offset.
    const uint8_t *fill(int e, size_t len, std::vector<uint8_t> &local) {
        uint8_t *p = buffer_for(len, local);
        const Direction *d = out_of(e);
        for (size_t i = 0; i < len; ++i) p[i] = d ? stream_byte(d->salt, d->accepted + i) : 0xEE;
        return p;
    }

    // Checks a write's result against the header and books the accepted bytes.
    void after_write(int e, size_t len, int64_t rc) {
        note("write", e, rc, len);
        End &end = ends[e];
        if (closing[e] && rc == NPIPE_EBADF) return;
        EXPECT(rc <= static_cast<int64_t>(len));
        const bool too_big = end.message && len > kMaxMessage;  // either check may come first
        if (end.poll_closed) {
            EXPECT(rc == NPIPE_ECANCELED || (too_big && rc == NPIPE_EMSGSIZE));
            return;
        }
        if (end.poll < 0 || !end.registered) {
            // Not registered (never, or deregistered since): no progress (and the message says
            // why); for a message too big either complaint may come first.
            EXPECT(rc == NPIPE_EAGAIN || (too_big && rc == NPIPE_EMSGSIZE));
            return;
        }
        if (too_big) {
            // Never taken; which complaint comes first on an end that cannot send anyway (not
            // connected, peer gone) the header does not say.
            EXPECT(rc == NPIPE_EMSGSIZE || rc == NPIPE_ENOTCONN || rc == NPIPE_EPIPE);
            return;
        }
        if (len == 0 && !end.message && rc >= 0) EXPECT(rc == 0);
        if (end.message && rc >= 0) EXPECT(rc == static_cast<int64_t>(len));  // whole or nothing
        if (rc > 0 || (rc == 0 && end.message)) {
            // A server takes bytes only while a client is connected.
            if (end.server) EXPECT(end.pair >= 0 && (pairs[end.pair].client != -1 || pairs[end.pair].untracked));
            end.lifetime_written += static_cast<uint64_t>(rc);
            if (Direction *d = out_of(e)) {
                d->accepted += static_cast<uint64_t>(rc);
                if (end.message) d->messages.push_back(static_cast<uint64_t>(rc));
            }
        }
    }

    void op_write(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        const size_t len = t.length();
        std::vector<uint8_t> local;
        const uint8_t *data = fill(e, len, local);
        int64_t rc;
        if (t.u8() & 1) {
            // The same bytes cut into up to 4 buffers, some of them empty.
            npipe_iovec_t iov[4];
            size_t left = len, cnt = t.u8() % 4 + 1, used = 0;
            for (size_t i = 0; i < cnt; ++i) {
                const size_t part = i + 1 == cnt ? left : std::min<size_t>(left, t.u16());
                iov[i].base = const_cast<uint8_t *>(data + used);
                iov[i].len = part;
                used += part;
                left -= part;
            }
            rc = checked(npipe_writev(ends[e].h, iov, cnt));
        } else {
            rc = checked(npipe_write(ends[e].h, data, len));
        }
        after_write(e, len, rc);
    }

    // What a read, flush or drain answers before it looks at any data, in the order the header
    // fixes: EBADF for a handle closed meanwhile by another thread, ECANCELED once the poll is
    // closed, EAGAIN while not registered (never, or deregistered since). True if one of these
    // decided the answer (and it was checked).
    bool answered_first(int e, int64_t rc) {
        const End &end = ends[e];
        if (closing[e] && rc == NPIPE_EBADF) return true;
        if (end.poll_closed) {
            EXPECT(rc == NPIPE_ECANCELED);
            return true;
        }
        if (end.poll < 0 || !end.registered) {
            EXPECT(rc == NPIPE_EAGAIN);
            return true;
        }
        return false;
    }

    // Checks the bytes a read returned against the stream and the message bookkeeping.
    void after_read(int e, const uint8_t *buf, size_t len, int64_t rc, bool msg_call, uint32_t mflags) {
        note("read", e, rc, len);
        End &end = ends[e];
        EXPECT(rc <= static_cast<int64_t>(len));
        // Unregistered: no progress, whatever is buffered, and nothing skipped.
        if (answered_first(e, rc)) return;
        if (len == 0 && !end.message && rc >= 0) EXPECT(rc == 0);
        Direction *d = in_of(e);  // nullptr: orphaned, nothing is known about its stream
        if (d && end.message && !msg_call) {
            // npipe_read skips empty messages, also when it then answers NPIPE_EAGAIN: any of the
            // leading ones that had arrived may be gone.
            d->skippable = 0;
            while (d->skippable < d->messages.size() && d->messages[d->skippable] == 0) ++d->skippable;
        }
        if (rc < 0) return;
        if (!end.message || !msg_call) EXPECT(mflags == 0);
        end.lifetime_read += static_cast<uint64_t>(rc);
        if (d == nullptr) return;
        const bool eof = rc == 0 && len > 0 && !(mflags & NPIPE_MSG_EMPTY);
        if (eof) {
            // EOF only once the writer is gone (closed, or its poll closed, which releases its OS
            // handle), and (when nothing could be lost) after all of it.
            const int peer = peer_of(e);
            EXPECT(peer < 0 || !ends[peer].live || closing[peer] || ends[peer].poll_closed);
            if (d->promised()) EXPECT(d->delivered == d->accepted);
            return;
        }
        if (end.message) {
            if (msg_call && (mflags & NPIPE_MSG_EMPTY)) {
                EXPECT(rc == 0 && !d->messages.empty() && d->messages.front() == 0);
                // One of the leading empty messages; which one is not known, so as many of the
                // rest as before may have been dropped.
                d->messages.pop_front();
                d->skippable = std::min(d->skippable, d->messages.size());
                return;
            }
            if (rc == 0) return;  // len 0
            // Data: npipe_read skipped the empty messages before it; npipe_read_msg never skips one
            // (only those an earlier npipe_read may have dropped can be missing).
            size_t empties = 0;
            while (!d->messages.empty() && d->messages.front() == 0) {
                d->messages.pop_front();
                ++empties;
            }
            if (msg_call && d->msg_off == 0) EXPECT(empties <= d->skippable);
            d->skippable = 0;
            EXPECT(!d->messages.empty() && d->messages.front() > 0);
            const uint64_t left = d->messages.front() - d->msg_off;
            EXPECT(static_cast<uint64_t>(rc) <= left);  // never two messages in one read
            if (msg_call) EXPECT(((mflags & NPIPE_MSG_PARTIAL) != 0) == (static_cast<uint64_t>(rc) < left));
            d->msg_off += static_cast<uint64_t>(rc);
            if (d->msg_off == d->messages.front()) {
                d->messages.pop_front();
                d->msg_off = 0;
            }
        }
        EXPECT(d->delivered + static_cast<uint64_t>(rc) <= d->accepted);  // nothing out of thin air
        for (int64_t i = 0; i < rc; ++i)
            if (buf[i] != stream_byte(d->salt, d->delivered + static_cast<uint64_t>(i)))
                fail("byte %llu of a stream differs", static_cast<unsigned long long>(d->delivered + i));
        d->delivered += static_cast<uint64_t>(rc);
    }

    void read_once(int e, size_t len, int how, Tape *t) {
        std::vector<uint8_t> local;
        uint8_t *buf = buffer_for(len, local);
        // A canary past the requested length: a read that writes more than asked is caught even
        // when its count is right.
        const uint8_t canary = 0xA5;
        buf[len] = canary;
        int64_t rc;
        uint32_t mflags = 0xFFFFFFFFu;
        bool msg_call = false;
        if (how == 1) {
            npipe_iovec_t iov[3];
            size_t left = len, used = 0;
            for (int i = 0; i < 3; ++i) {
                const size_t part = i == 2 ? left : std::min<size_t>(left, t ? t->u16() : left);
                iov[i].base = buf + used;
                iov[i].len = part;
                used += part;
                left -= part;
            }
            rc = checked(npipe_readv(ends[e].h, iov, 3));
            mflags = 0;
        } else if (how == 2) {
            rc = checked(npipe_read_msg(ends[e].h, buf, len, &mflags));
            msg_call = true;
            if (rc < 0) mflags = 0;
            EXPECT((mflags & ~(NPIPE_MSG_PARTIAL | NPIPE_MSG_EMPTY)) == 0);
        } else {
            rc = checked(npipe_read(ends[e].h, buf, len));
            mflags = 0;
        }
        EXPECT(buf[len] == canary);
        after_read(e, buf, len, rc, msg_call, mflags);
    }

    void op_read(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        size_t len = t.length();
        const int how = t.u8() % 3;
        // Zero-length reads on a message pipe say nothing the header pins down (may an empty
        // message be taken by them?), so the bookkeeping avoids them.
        if (ends[e].message && len == 0) len = 1;
        read_once(e, len, how, &t);
    }

    // Flushes an end, then drains it. The drain takes no byte of the tape, so the inputs found
    // before it was added still make the same choices.
    void op_flush(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        (void)answered_first(e, checked(npipe_flush(ends[e].h)));
        drain(e);
    }

    // npipe_drain makes the checks of a flush first, in the same order; NPIPE_OK means every
    // accepted byte has been written (and read by the peer, which this model cannot see).
    void drain(int e) {
        End &end = ends[e];
        const int64_t rc = checked(npipe_drain(end.h));
        note("drain", e, rc, 0);
        if (answered_first(e, rc) || rc != NPIPE_OK) return;
        npipe_info_t info;
        std::memset(&info, 0, sizeof info);
        info.size = sizeof info;
        const int64_t got = checked(npipe_get_info(end.h, &info));
        if (closing[e] && got == NPIPE_EBADF) return;
        EXPECT(got == NPIPE_OK);
        EXPECT(info.write_pending == 0);
    }

    void op_info(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        struct {
            npipe_info_t i;
            uint8_t tail[16];
        } big;
        std::memset(&big, 0xCD, sizeof big);
        const uint8_t f = t.u8() % 5;
        const uint32_t size = f == 0   ? sizeof(npipe_info_t)
                              : f == 1 ? sizeof big
                              : f == 2 ? t.u8() % 72u  // below release 1.0's size: EINVAL
                                       : sizeof(npipe_info_t);
        big.i.size = size;
        const int64_t rc = checked(f == 3 ? npipe_get_info(ends[e].h, nullptr) : npipe_get_info(ends[e].h, &big.i));
        if (closing[e] && rc == NPIPE_EBADF) return;
        if (f == 3 || f == 2) {
            EXPECT(rc == NPIPE_EINVAL);
            return;
        }
        EXPECT(rc == NPIPE_OK);
        EXPECT(big.i.size == sizeof(npipe_info_t));
        for (uint8_t c : big.tail) EXPECT(c == 0xCD);
        const End &end = ends[e];
        EXPECT(((big.i.flags & NPIPE_INFO_SERVER) != 0) == end.server);
        EXPECT(((big.i.flags & NPIPE_MESSAGE) != 0) == end.message);
        EXPECT(big.i.reserved == 0);
        if (!closing[e]) {
            EXPECT(big.i.bytes_read == end.lifetime_read);
            EXPECT(big.i.bytes_written == end.lifetime_written);
            EXPECT(big.i.write_pending <= end.lifetime_written);
        }
        intptr_t raw = 0;
        const int64_t r2 = checked(npipe_raw_handle(end.h, &raw));
        if (!(closing[e] && r2 == NPIPE_EBADF)) EXPECT(r2 == NPIPE_OK);
        const int64_t r3 = checked(npipe_raw_handle(end.h, nullptr));
        if (!(closing[e] && r3 == NPIPE_EBADF)) EXPECT(r3 == NPIPE_EINVAL);
    }

    void op_take_error(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        const int64_t rc = checked(npipe_take_error(ends[e].h));
        if (closing[e] && rc == NPIPE_EBADF) return;
        EXPECT(rc <= 0);
        if (ends[e].poll_closed) EXPECT(rc == NPIPE_ECANCELED);
    }

    // --- polls ------------------------------------------------------------------------------

    void op_poll_create(Tape &t) {
        const int pi = t.u8() % kPolls;
        if (polls[pi] != 0) return;
        EXPECT(checked(npipe_poll_create(&polls[pi])) == NPIPE_OK);
        EXPECT(polls[pi] != 0 && (polls[pi] >> 32) != 0);
        wakes[pi].clear();
        registered_tokens[pi].clear();
        forbidden_tokens[pi].clear();
        ever_tokens[pi].clear();
    }

    void op_poll_close(Tape &t) {
        const int pi = t.u8() % kPolls;
        if (polls[pi] == 0) return;
        EXPECT(checked(npipe_poll_close(polls[pi])) == NPIPE_OK);
        EXPECT(checked(npipe_poll_close(polls[pi])) == NPIPE_EBADF);
        stale_polls.push_back(polls[pi]);
        polls[pi] = 0;
        for (int e = 0; e < kEnds; ++e) {
            if (!ends[e].live || ends[e].poll != pi) continue;
            ends[e].poll_closed = true;
            ends[e].registered = false;
            // No more progress: what it accepted may never arrive, what it has not read is gone.
            if (Direction *d = out_of(e)) d->lossless = false;
            if (Direction *d = in_of(e)) d->lossless = false;
        }
        // Closed pipes still lingering on it are released at once: their bytes may be lost.
        for (Pair &p : pairs)
            for (Direction &d : p.dir)
                if (d.closed_writer_poll == pi) d.lossless = false;
    }

    // Checks one batch of events against the poll's bookkeeping.
    void check_events(int pi, const npipe_event_t *ev, int32_t n, size_t cap) {
        EXPECT(n <= static_cast<int32_t>(cap));
        const uint32_t known = NPIPE_READABLE | NPIPE_WRITABLE | NPIPE_ERROR | NPIPE_READ_CLOSED |
                               NPIPE_WRITE_CLOSED | NPIPE_WAKE | NPIPE_CONNECTED;
        for (int32_t i = 0; i < n; ++i) {
            EXPECT(ev[i].events != 0 && (ev[i].events & ~known) == 0);
            EXPECT(ev[i].reserved == 0);
            if (ev[i].events & NPIPE_WAKE) {
                EXPECT(ev[i].events == NPIPE_WAKE);
                EXPECT(wakes[pi].erase(ev[i].token) == 1);  // posted here, reported once
                continue;
            }
            EXPECT(ev[i].token < kWakeBase && ever_tokens[pi].count(ev[i].token));
            EXPECT(forbidden_tokens[pi].count(ev[i].token) == 0 || registered_tokens[pi].count(ev[i].token));
            for (int32_t j = 0; j < i; ++j)
                if (!(ev[j].events & NPIPE_WAKE)) EXPECT(ev[j].token != ev[i].token);
        }
    }

    void op_poll_wait(Tape &t) {
        const int pi = t.u8() % kPolls;
        if (polls[pi] == 0) return;
        npipe_event_t ev[16];
        const uint8_t f = t.u8();
        const size_t cap = f % 17;
        const int32_t timeout = (f >> 5) == 7 ? 2 : 0;
        const int32_t n = static_cast<int32_t>(checked(npipe_poll_wait(polls[pi], cap ? ev : nullptr, cap, timeout)));
        if (cap == 0) {
            EXPECT(n == NPIPE_EINVAL);
            return;
        }
        EXPECT(n >= 0);
        check_events(pi, ev, n, cap);
        // NULL events with room for some: invalid.
        EXPECT(checked(npipe_poll_wait(polls[pi], nullptr, cap, 0)) == NPIPE_EINVAL);
    }

    void op_wake(Tape &t) {
        const int pi = t.u8() % kPolls;
        if (polls[pi] == 0) return;
        const uint64_t token = kWakeBase + t.u8() % 80;
        const int64_t rc = checked(npipe_poll_wake(polls[pi], token));
        if (rc == NPIPE_OK) {
            wakes[pi].insert(token);
        } else {
            // At least 64 distinct tokens may be pending.
            EXPECT(rc == NPIPE_EBUSY && wakes[pi].size() >= 64 && !wakes[pi].count(token));
        }
    }

    // --- stale, wrong-kind and invalid arguments -------------------------------------------------

    bool is_live_handle(uint64_t h) const {
        for (const End &e : ends)
            if (e.live && e.h == h) return true;
        for (npipe_poll_t p : polls)
            if (p == h) return true;
        return false;
    }

    // Every pipe function given a handle that is not a live pipe answers NPIPE_EBADF.
    void all_pipe_calls_ebadf(npipe_t h, npipe_poll_t poll) {
        char buf[8];
        npipe_iovec_t iov{buf, sizeof buf};
        npipe_info_t info;
        std::memset(&info, 0, sizeof info);
        info.size = sizeof info;
        intptr_t raw = 0;
        uint32_t mf = 0;
        EXPECT(checked(npipe_connect(h)) == NPIPE_EBADF);
        EXPECT(checked(npipe_disconnect(h)) == NPIPE_EBADF);
        EXPECT(checked(npipe_take_error(h)) == NPIPE_EBADF);
        EXPECT(checked(npipe_raw_handle(h, &raw)) == NPIPE_EBADF);
        EXPECT(checked(npipe_read(h, buf, sizeof buf)) == NPIPE_EBADF);
        EXPECT(checked(npipe_read(h, nullptr, SIZE_MAX)) == NPIPE_EBADF);
        EXPECT(checked(npipe_write(h, buf, sizeof buf)) == NPIPE_EBADF);
        EXPECT(checked(npipe_write(h, nullptr, SIZE_MAX)) == NPIPE_EBADF);
        EXPECT(checked(npipe_readv(h, &iov, 1)) == NPIPE_EBADF);
        EXPECT(checked(npipe_writev(h, nullptr, SIZE_MAX)) == NPIPE_EBADF);
        EXPECT(checked(npipe_read_msg(h, buf, sizeof buf, &mf)) == NPIPE_EBADF);
        EXPECT(checked(npipe_flush(h)) == NPIPE_EBADF);
        EXPECT(checked(npipe_get_info(h, &info)) == NPIPE_EBADF);
        EXPECT(checked(npipe_get_info(h, nullptr)) == NPIPE_EBADF);
        if (poll) {
            EXPECT(checked(npipe_register(poll, h, 1, NPIPE_READABLE)) == NPIPE_EBADF);
            EXPECT(checked(npipe_reregister(poll, h, 1, 0xFFFFFFFFu)) == NPIPE_EBADF);
            EXPECT(checked(npipe_deregister(poll, h)) == NPIPE_EBADF);
        }
        EXPECT(checked(npipe_close(h)) == NPIPE_EBADF);
    }

    void all_poll_calls_ebadf(npipe_poll_t h, npipe_t pipe) {
        npipe_event_t ev[2];
        EXPECT(checked(npipe_poll_wait(h, ev, 2, 0)) == NPIPE_EBADF);
        EXPECT(checked(npipe_poll_wait(h, nullptr, 0, 0)) == NPIPE_EBADF);
        EXPECT(checked(npipe_poll_wake(h, 1)) == NPIPE_EBADF);
        if (pipe) {
            EXPECT(checked(npipe_register(h, pipe, 1, NPIPE_READABLE)) == NPIPE_EBADF);
            EXPECT(checked(npipe_reregister(h, pipe, 1, NPIPE_READABLE)) == NPIPE_EBADF);
            EXPECT(checked(npipe_deregister(h, pipe)) == NPIPE_EBADF);
        }
        EXPECT(checked(npipe_poll_close(h)) == NPIPE_EBADF);
    }

    void op_bad_handles(Tape &t) {
        npipe_poll_t some_poll = polls[0] ? polls[0] : polls[1];
        npipe_t some_pipe = 0;
        for (const End &e : ends)
            if (e.live && !closing[&e - ends]) some_pipe = e.h;
        std::vector<uint64_t> candidates = {0, t.u64(), t.u32(), static_cast<uint64_t>(t.u32()) << 32};
        candidates.insert(candidates.end(), stale_pipes.begin(), stale_pipes.end());
        candidates.insert(candidates.end(), stale_polls.begin(), stale_polls.end());
        for (npipe_poll_t p : polls)
            if (p) candidates.push_back(p);  // a poll is the wrong kind for a pipe call
        const uint64_t h = candidates[t.u8() % candidates.size()];
        const bool is_poll = h == polls[0] || h == polls[1];
        if (!is_poll && is_live_handle(h)) return;  // a guessed value that happens to be live
        all_pipe_calls_ebadf(h, some_poll);
        bool is_pipe = false;
        for (const End &e : ends)
            if (e.live && e.h == h) is_pipe = true;
        if (!is_poll && !is_pipe) all_poll_calls_ebadf(h, some_pipe);
        if (some_pipe) all_poll_calls_ebadf(some_pipe, some_pipe);  // a pipe is the wrong kind for a poll call
    }

    void op_null_args(Tape &t) {
        npipe_t h = 0;
        char buf[4];
        const std::string name = new_name();
        switch (t.u8() % 8) {
        case 0: EXPECT(checked(npipe_poll_create(nullptr)) == NPIPE_EINVAL); break;
        case 1: EXPECT(checked(npipe_create(nullptr, nullptr, &h)) == NPIPE_EINVAL); break;
        case 2: EXPECT(checked(npipe_create(name.c_str(), nullptr, nullptr)) == NPIPE_EINVAL); break;
        case 3: EXPECT(checked(npipe_open(nullptr, nullptr, &h)) == NPIPE_EINVAL); break;
        case 4: EXPECT(checked(npipe_open(name.c_str(), nullptr, nullptr)) == NPIPE_EINVAL); break;
        case 5: EXPECT(checked(npipe_resolve_name(nullptr, buf, sizeof buf)) == NPIPE_EINVAL); break;
        case 6: EXPECT(checked(npipe_from_raw_handle(0, 0, nullptr)) == NPIPE_EINVAL); break;
        default: {
            const int e = t.u8() % kEnds;
            if (!ends[e].live || closing[e]) break;
            const End &end = ends[e];
            // On a working end the NULL is the one thing wrong; in other states the header does
            // not say which complaint comes first, so any failure will do there.
            const bool working = end.registered && !end.poll_closed && (!end.server || end.connected);
            const auto invalid = [&](int64_t rc) { EXPECT(working ? rc == NPIPE_EINVAL : rc < 0); };
            npipe_iovec_t bad[2] = {{buf, 4}, {nullptr, 3}};
            invalid(checked(npipe_read(end.h, nullptr, 5)));
            invalid(checked(npipe_write(end.h, nullptr, 5)));
            invalid(checked(npipe_read_msg(end.h, nullptr, 5, nullptr)));
            invalid(checked(npipe_readv(end.h, nullptr, 2)));
            invalid(checked(npipe_writev(end.h, bad, 2)));
            invalid(checked(npipe_readv(end.h, bad, 2)));
            break;
        }
        }
        npipe_server_options_init(nullptr);
        npipe_client_options_init(nullptr);
    }

    // Names and options straight from the input: any result is a known code, and whatever is
    // created is closed again.
    void op_names(Tape &t) {
        // Never a socket at an arbitrary path ('/' first), never the name of a pair this input
        // tracks ("fz..."), whose server would take the stray connection.
        std::string raw = "x" + t.bytes(t.u8() & 1 ? 255 : 40);
        if (t.u8() & 1) raw = "\\\\.\\pipe\\" + raw;
        std::vector<char> buf(t.u8() % 300 + 1, '\x7F');
        const int64_t len = checked(npipe_resolve_name(raw.c_str(), buf.data(), buf.size()));
        if (len >= 0) {
            EXPECT(static_cast<size_t>(len) < buf.size() && std::strlen(buf.data()) == static_cast<size_t>(len));
        }
        const int64_t need = checked(npipe_resolve_name(raw.c_str(), nullptr, 0));
        if (len >= 0) EXPECT(need == len);
        if (need >= 0 && len < 0) EXPECT(len == NPIPE_ENAMETOOLONG && static_cast<size_t>(need) >= buf.size());
        npipe_server_options_t so;
        npipe_server_options_init(&so);
        so.flags = t.u8() & 0x7F & ~NPIPE_ALLOW_REMOTE;
        so.max_instances = t.u8();
        so.size = t.u8() & 1 ? sizeof so : t.u8() % sizeof so;
        npipe_t h = 0;
        if (checked(npipe_create(raw.c_str(), &so, &h)) == NPIPE_OK) {
            EXPECT(checked(npipe_close(h)) == NPIPE_OK);
            stale_pipes.push_back(h);
        }
        npipe_client_options_t co;
        npipe_client_options_init(&co);
        co.flags = t.u8() & 0x7F;
        co.size = t.u8() & 1 ? sizeof co : t.u8() % sizeof co;
        if (checked(npipe_open(raw.c_str(), &co, &h)) == NPIPE_OK) {
            EXPECT(checked(npipe_close(h)) == NPIPE_OK);
            stale_pipes.push_back(h);
        }
        const int code = static_cast<int>(t.u32());
        EXPECT(npipe_strerror(code) != nullptr && npipe_err_name(code) != nullptr);
        EXPECT(npipe_last_error_message() != nullptr);
        (void)npipe_last_os_error();
        EXPECT(npipe_version() == (NPIPE_VERSION_MAJOR << 16 | NPIPE_VERSION_MINOR << 8 | NPIPE_VERSION_PATCH));
        EXPECT(npipe_version_string() != nullptr);
    }

    // --- a second thread ------------------------------------------------------------------------

    // One thread waits on a poll while this one wakes it: the wait ends with an event.
    void op_thread_wake(Tape &t) {
        const int pi = t.u8() % kPolls;
        if (polls[pi] == 0) return;
        const npipe_poll_t poll = polls[pi];
        npipe_event_t ev[8];
        std::atomic<int32_t> n{0};
        std::thread waiter([&] { n = npipe_poll_wait(poll, ev, 8, 10000); });
        const uint64_t token = kWakeBase + 100 + t.u8() % 4;
        const int64_t rc = checked(npipe_poll_wake(poll, token));
        EXPECT(rc == NPIPE_OK || rc == NPIPE_EBUSY);
        waiter.join();
        if (rc == NPIPE_OK) wakes[pi].insert(token);
        // It returned events (ours or others) well before its 10 s: never a timeout, never EBUSY
        // (this thread did not wait on the poll meanwhile).
        EXPECT(checked(n.load()) > 0);
        check_events(pi, ev, n, 8);
    }

    // One thread closes an end while this one keeps calling functions on it: each call either
    // does its work or answers NPIPE_EBADF, never anything else, and never crashes.
    void op_thread_close(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live) return;
        const npipe_t h = ends[e].h;
        closing[e] = true;
        std::atomic<bool> go{false};
        std::atomic<int32_t> rc{1};
        std::thread closer([&] {
            while (!go) std::this_thread::yield();
            rc = npipe_close(h);
        });
        go = true;
        for (int i = 0; i < 16; ++i) {
            switch (t.u8() % 6) {
            case 0: op_write_on(e, t); break;
            case 1: read_once(e, 1 + t.u8(), t.u8() % 3, nullptr); break;
            case 2: op_info_on(e); break;
            case 3: (void)checked(npipe_flush(h)); break;
            case 4: (void)checked(npipe_take_error(h)); break;
            default: std::this_thread::yield(); break;
            }
        }
        closer.join();
        EXPECT(rc == NPIPE_OK);
        closing[e] = false;
        forget_end(e);
        all_pipe_calls_ebadf(h, polls[0] ? polls[0] : polls[1]);
    }
    void op_write_on(int e, Tape &t) {
        const size_t len = 1 + t.u8();
        std::vector<uint8_t> local;
        const uint8_t *data = fill(e, len, local);
        after_write(e, len, checked(npipe_write(ends[e].h, data, len)));
    }
    void op_info_on(int e) {
        npipe_info_t info;
        std::memset(&info, 0, sizeof info);
        info.size = sizeof info;
        const int64_t rc = checked(npipe_get_info(ends[e].h, &info));
        EXPECT(rc == NPIPE_OK || rc == NPIPE_EBADF);
    }

    // One thread reads an end while this one writes to it and to its peer.
    void op_thread_read(Tape &t) {
        const int e = t.u8() % kEnds;
        if (!ends[e].live || ends[e].pair < 0 || ends[e].message) return;
        const int peer = peer_of(e);
        const npipe_t h = ends[e].h;
        std::vector<uint8_t> got;
        std::atomic<bool> stop{false};
        std::thread reader([&] {
            uint8_t buf[4096];
            for (int spins = 0; spins < 20000 && !stop; ++spins) {
                const int64_t n = npipe_read(h, buf, sizeof buf);
                if (n > static_cast<int64_t>(sizeof buf)) std::abort();
                if (n > 0) got.insert(got.end(), buf, buf + n);
                else if (n != NPIPE_EAGAIN) break;
                else std::this_thread::yield();
            }
        });
        for (int i = 0; i < 8; ++i) {
            if (peer >= 0 && ends[peer].live) op_write_on(peer, t);
            op_write_on(e, t);
        }
        stop = true;
        reader.join();
        // What the thread read is checked as if this thread had read it.
        if (!got.empty()) after_read(e, got.data(), got.size(), static_cast<int64_t>(got.size()), false, 0);
    }

    // --- the end of an input ------------------------------------------------------------------

    // Every byte accepted between two live ends (or from an end closed with linger) arrives,
    // in order and unchanged, within a bound.
    void drain() {
        // Every live end takes part: registered again where it was deregistered, servers connected.
        for (int e = 0; e < kEnds; ++e) {
            End &end = ends[e];
            if (!end.live || end.poll_closed || end.registered) continue;
            int pi = end.poll;
            if (pi < 0) {
                pi = polls[0] ? 0 : 1;
                if (polls[pi] == 0) EXPECT(checked(npipe_poll_create(&polls[pi])) == NPIPE_OK);
            }
            const uint64_t token = next_token++;
            EXPECT(checked(npipe_register(polls[pi], end.h, token, NPIPE_READABLE | NPIPE_WRITABLE)) == NPIPE_OK);
            end.poll = pi;
            end.registered = true;
            registered_tokens[pi].insert(token);
            ever_tokens[pi].insert(token);
            end.token = token;
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (;;) {
            bool pending = false;
            for (int e = 0; e < kEnds; ++e) {
                End &end = ends[e];
                if (!end.live || end.poll_closed) continue;
                if (end.server && !end.connected && end.pair >= 0 && pairs[end.pair].client != -1 &&
                    !pairs[end.pair].untracked) {
                    const int64_t rc = checked(npipe_connect(end.h));
                    if (rc == NPIPE_OK) end.connected = true;
                    else EXPECT(rc == NPIPE_EAGAIN);
                }
                Direction *in = in_of(e);
                if (in == nullptr || !in->promised()) continue;  // nothing promised any more
                for (;;) {
                    const uint64_t before = in->delivered;
                    const size_t msgs = in->messages.size();
                    if (before == in->accepted && msgs <= in->skippable) break;
                    read_once(e, 65536, end.message ? 2 : 0, nullptr);
                    if (in->delivered == before && in->messages.size() == msgs) break;
                }
                if (in->delivered < in->accepted || in->messages.size() > in->skippable) pending = true;
            }
            if (!pending) break;
            if (std::chrono::steady_clock::now() > deadline) {
                for (const Pair &p : pairs)
                    for (int d = 0; d < 2; ++d)
                        if (p.dir[d].delivered < p.dir[d].accepted)
                            std::fprintf(stderr, "pair %s dir %d: %llu of %llu bytes arrived\n", p.name.c_str(), d,
                                         static_cast<unsigned long long>(p.dir[d].delivered),
                                         static_cast<unsigned long long>(p.dir[d].accepted));
                fail("accepted bytes did not arrive within 10 s");
            }
            for (int pi = 0; pi < kPolls; ++pi) {
                if (polls[pi] == 0) continue;
                npipe_event_t ev[16];
                const int32_t n = static_cast<int32_t>(checked(npipe_poll_wait(polls[pi], ev, 16, 5)));
                EXPECT(n >= 0);
                check_events(pi, ev, n, 16);
            }
        }
    }

    void finish() {
        drain();
        if (trace) {
            for (const Pair &p : pairs)
                for (int d = 0; d < 2; ++d)
                    std::fprintf(stderr, "pair %s %s: %llu accepted, %llu delivered%s\n", p.name.c_str(),
                                 d ? "client->server" : "server->client",
                                 static_cast<unsigned long long>(p.dir[d].accepted),
                                 static_cast<unsigned long long>(p.dir[d].delivered),
                                 p.dir[d].lossless ? "" : " (lossy)");
        }
        for (int e = 0; e < kEnds; ++e) {
            if (!ends[e].live) continue;
            EXPECT(checked(npipe_close(ends[e].h)) == NPIPE_OK);
            ends[e].live = false;
        }
        for (npipe_poll_t &p : polls) {
            if (p == 0) continue;
            EXPECT(checked(npipe_poll_close(p)) == NPIPE_OK);
            p = 0;
        }
    }
};

size_t g_fd_baseline = 0;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    (void)big_buffer();
    // Whatever the library sets up once (and keeps) is there before the baseline is taken.
    npipe_poll_t p = 0;
    npipe_t s = 0;
    npipe_poll_create(&p);
    npipe_create(("fzinit" + std::to_string(getpid())).c_str(), nullptr, &s);
    npipe_register(p, s, 1, NPIPE_READABLE);
    npipe_close(s);
    npipe_poll_close(p);
    // A blocking open that waits for an absent name keeps its thread's inotify descriptor.
    npipe_client_options_t o;
    npipe_client_options_init(&o);
    o.timeout_ms = 2;
    npipe_t c = 0;
    npipe_open(("fzabsent" + std::to_string(getpid())).c_str(), &o, &c);
    g_fd_baseline = count_fds();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Tape t{data, size};
    Session s;
    int ops = 0;
    // At most 256 operations and 10 s of them per input, so that every input ends well inside
    // the fuzzer's per-input timeout whatever it asks for.
    const auto stop_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (t.more() && ops++ < 256 && std::chrono::steady_clock::now() < stop_at) {
        const int op = t.u8() % 24;
        if (s.trace) std::fprintf(stderr, "op %d: %d\n", ops, op);
        switch (op) {
        case 0: case 1: s.op_create(t); break;
        case 2: case 3: s.op_open(t); break;
        case 4: s.op_raw_pair(t); break;
        case 5: case 6: s.op_register(t); break;
        case 7: s.op_deregister(t); break;
        case 8: s.op_connect(t); break;
        case 9: s.op_disconnect(t); break;
        case 10: s.op_close(t); break;
        case 11: case 12: s.op_write(t); break;
        case 13: case 14: s.op_read(t); break;
        case 15: s.op_flush(t); break;
        case 16: s.op_info(t); s.op_take_error(t); break;
        case 17: s.op_poll_create(t); break;
        case 18: s.op_poll_close(t); break;
        case 19: s.op_poll_wait(t); s.op_wake(t); break;
        case 20: s.op_bad_handles(t); s.op_null_args(t); break;
        case 21: s.op_names(t); break;
        case 22: s.op_thread_wake(t); s.op_thread_close(t); break;
        default: s.op_thread_read(t); break;
        }
    }
    s.finish();
    const size_t fds = count_fds();
    if (fds != g_fd_baseline) count_fds(true);
    if (fds != g_fd_baseline) fail("%zu descriptors open after the input, %zu before", fds, g_fd_baseline);
    return 0;
}
