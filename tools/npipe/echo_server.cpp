#include "echo_server.hpp"

#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <vector>

namespace tool {
namespace {

struct Conn {
    npipe_t h = 0;
    bool connected = false;
    bool eof = false;
    uint64_t number = 0;      // --verbose: which client this is
    bool user_known = true;   // --verbose: false until a Windows server can tell who the client is
    std::string pending;        // byte mode: bytes read, not yet written back
    size_t pending_off = 0;
    std::string assembling;     // message mode: a message arriving in parts
    std::deque<std::string> msgs;  // message mode: whole messages to write back

    // Back to a fresh, unconnected state of the same instance (after npipe_disconnect).
    void reset() {
        npipe_t keep = h;
        *this = Conn{};
        h = keep;
    }
};

enum class Pump { wait, finished, failed };

class EchoServer {
public:
    EchoServer(npipe_poll_t poll, const EchoServerConfig &cfg, EchoStats &stats)
        : poll_(poll), cfg_(cfg), stats_(stats), buf_(64 * 1024) {}

    Failure run(void (*on_ready)(void *), void *ready_arg) {
        // A listener keeps instances waiting for a burst of clients; a limit on instances is
        // something only instances created one by one can keep.
        Failure f = cfg_.max_instances ? add_spare(true) : listen();
        if (f.failed()) return f;
        if (on_ready) on_ready(ready_arg);
        npipe_event_t events[64];
        for (;;) {
            if (cfg_.stop && cfg_.stop->load()) break;
            int32_t n = npipe_poll_wait(poll_, events, 64, -1);
            if (n < 0) {
                f = capture(n, "echo server: cannot wait");
                break;
            }
            for (int32_t i = 0; i < n; ++i) {
                if (events[i].events & NPIPE_WAKE) continue;
                if (listener_ && events[i].token == kListenerToken) {
                    accept_all();
                    continue;
                }
                auto it = conns_.find(events[i].token);
                if (it == conns_.end()) continue;
                on_event(it->first, *it->second, events[i].events);
                if (done_) break;
            }
            if (done_) break;
        }
        for (auto &c : conns_) npipe_close(c.second->h);
        conns_.clear();
        if (listener_) npipe_close(listener_);
        listener_ = 0;
        return f;
    }

private:
    static constexpr uint64_t kListenerToken = 1;  // apart from the connections (100 on) and kStopToken

    Failure listen() {
        npipe_listener_options_t o;
        npipe_listener_options_init(&o);
        o.flags = cfg_.flags;
        int32_t rc = npipe_listen(cfg_.name.c_str(), &o, &listener_);
        if (rc < 0) return capture(rc, "cannot create pipe \"" + cfg_.name + "\"", true);
        rc = npipe_register(poll_, listener_, kListenerToken, NPIPE_READABLE);
        return rc < 0 ? capture(rc, "cannot register the listener") : Failure{};
    }

    // Takes every connected pipe that waits (the edge rule: until NPIPE_EAGAIN); registration
    // reports what each one holds already, so its data is echoed from the next wait on.
    void accept_all() {
        for (npipe_t h = 0;;) {
            int32_t rc = npipe_accept(listener_, &h);
            if (rc == NPIPE_EAGAIN) return;
            if (rc < 0) {
                if (cfg_.verbose) capture(rc, "accept failed").report();
                return;
            }
            uint64_t token = next_token_++;
            rc = npipe_register(poll_, h, token, NPIPE_READABLE | NPIPE_WRITABLE);
            if (rc < 0) {
                if (cfg_.verbose) capture(rc, "cannot register an accepted pipe").report();
                npipe_close(h);
                continue;
            }
            auto c = std::make_unique<Conn>();
            c->h = h;
            c->connected = true;
            conns_.emplace(token, std::move(c));
            ++stats_.clients;
            if (cfg_.verbose)
                std::fprintf(stderr, "npipe: client %llu connected (pid %llu)\n",
                             static_cast<unsigned long long>(stats_.clients), peer_pid_of(h));
        }
    }

    // Creates an instance waiting for the next client.
    Failure add_spare(bool first) {
        npipe_server_options_t o;
        npipe_server_options_init(&o);
        o.flags = cfg_.flags & (first ? ~0u : ~NPIPE_FIRST_INSTANCE);
        o.max_instances = cfg_.max_instances;
        npipe_t h = 0;
        int32_t rc = npipe_create(cfg_.name.c_str(), &o, &h);
        if (rc < 0) return capture(rc, "cannot create pipe \"" + cfg_.name + "\"", true);
        uint64_t token = next_token_++;
        auto c = std::make_unique<Conn>();
        c->h = h;
        rc = npipe_register(poll_, h, token, NPIPE_READABLE | NPIPE_WRITABLE);
        if (rc < 0) {
            npipe_close(h);
            return capture(rc, "cannot register the pipe");
        }
        Conn &ref = *c;
        conns_.emplace(token, std::move(c));
        spare_ = token;
        return start_connect(token, ref);
    }

    Failure start_connect(uint64_t token, Conn &c) {
        int32_t rc = npipe_connect(c.h);
        if (rc == NPIPE_OK) {
            on_event(token, c, NPIPE_CONNECTED);
        } else if (rc != NPIPE_EAGAIN) {
            Failure f = capture(rc, "cannot wait for a client");
            drop(token);
            return f;
        }
        return Failure{};
    }

    void on_event(uint64_t token, Conn &c, uint32_t ev) {
        if (!c.connected) {
            if (!(ev & NPIPE_CONNECTED)) {
                int32_t rc = npipe_connect(c.h);  // spurious event, or the connect finished meanwhile
                if (rc == NPIPE_EAGAIN) return;
                if (rc < 0) return restart(token, c, rc);
            } else {
                int32_t rc = npipe_take_error(c.h);
                if (rc < 0) return restart(token, c, rc);
            }
            c.connected = true;
            ++stats_.clients;
            c.number = stats_.clients;
            if (cfg_.verbose)
                std::fprintf(stderr, "npipe: client %llu connected (%s)\n", static_cast<unsigned long long>(c.number),
                             describe_peer(c.h, &c.user_known).c_str());
            if (spare_ == token) {
                spare_ = 0;
                // At once, not after this round: on Linux a queued client is only safe while an
                // instance of the name is open. EBUSY (max instances) leaves no spare for now.
                if (Failure f = add_spare(false); f.failed() && cfg_.verbose) f.report();
            }
        }
        Pump p = (cfg_.flags & NPIPE_MESSAGE) ? pump_messages(c) : pump_bytes(c);
        if (cfg_.verbose && !c.user_known) {  // a Windows server learns its client from what it sent
            const std::string who = describe_peer(c.h, &c.user_known);
            if (c.user_known)
                std::fprintf(stderr, "npipe: client %llu is %s\n", static_cast<unsigned long long>(c.number), who.c_str());
        }
        if (p == Pump::wait) return;
        if (cfg_.verbose) std::fprintf(stderr, "npipe: a client left\n");
        if (cfg_.once) {
            done_ = true;
            return;
        }
        if (listener_) return drop(token);  // the listener keeps instances waiting
        // Never close the last instance while clients may be queued for the name: make sure a
        // spare exists first, else (max instances reached) this instance becomes the spare.
        if (spare_ == 0) (void)add_spare(false);
        if (spare_ == 0) {
            npipe_disconnect(c.h);
            c.reset();
            spare_ = token;
            (void)start_connect(token, c);
        } else {
            drop(token);
        }
    }

    // A failed connect: the instance starts waiting again (a client that vanished early).
    void restart(uint64_t token, Conn &c, int32_t rc) {
        if (cfg_.verbose) std::fprintf(stderr, "npipe: a connect failed: %s\n", npipe_err_name(rc));
        npipe_disconnect(c.h);
        c.reset();
        (void)start_connect(token, c);
    }

    void drop(uint64_t token) {
        auto it = conns_.find(token);
        if (it == conns_.end()) return;
        npipe_close(it->second->h);
        if (spare_ == token) spare_ = 0;
        conns_.erase(it);
    }

    Pump pump_bytes(Conn &c) {
        for (;;) {
            while (c.pending_off < c.pending.size()) {
                int64_t w = npipe_write(c.h, c.pending.data() + c.pending_off, c.pending.size() - c.pending_off);
                if (w == NPIPE_EAGAIN) return Pump::wait;
                if (w < 0) return w == NPIPE_EPIPE ? Pump::finished : Pump::failed;
                c.pending_off += static_cast<size_t>(w);
                stats_.bytes += static_cast<uint64_t>(w);
            }
            c.pending.clear();
            c.pending_off = 0;
            if (c.eof) return Pump::finished;
            int64_t r = npipe_read(c.h, buf_.data(), buf_.size());
            if (r == NPIPE_EAGAIN) return Pump::wait;
            if (r == 0) {
                c.eof = true;
                return Pump::finished;
            }
            if (r < 0) return r == NPIPE_EPIPE ? Pump::finished : Pump::failed;
            c.pending.assign(buf_.data(), static_cast<size_t>(r));
        }
    }

    Pump pump_messages(Conn &c) {
        for (;;) {
            while (!c.msgs.empty()) {
                const std::string &m = c.msgs.front();
                int64_t w = npipe_write(c.h, m.data(), m.size());
                if (w == NPIPE_EAGAIN) return Pump::wait;
                if (w < 0) return w == NPIPE_EPIPE ? Pump::finished : Pump::failed;
                stats_.bytes += m.size();
                ++stats_.messages;
                c.msgs.pop_front();
            }
            if (c.eof) return Pump::finished;
            uint32_t mf = 0;
            int64_t r = npipe_read_msg(c.h, buf_.data(), buf_.size(), &mf);
            if (r == NPIPE_EAGAIN) return Pump::wait;
            if (r < 0) return r == NPIPE_EPIPE ? Pump::finished : Pump::failed;
            if (r == 0 && !(mf & NPIPE_MSG_EMPTY)) {
                c.eof = true;
                return Pump::finished;
            }
            c.assembling.append(buf_.data(), static_cast<size_t>(r));
            if (!(mf & NPIPE_MSG_PARTIAL)) {
                c.msgs.push_back(std::move(c.assembling));
                c.assembling.clear();
            }
        }
    }

    npipe_poll_t poll_;
    const EchoServerConfig &cfg_;
    EchoStats &stats_;
    std::vector<char> buf_;
    std::map<uint64_t, std::unique_ptr<Conn>> conns_;
    uint64_t next_token_ = 100;
    uint64_t spare_ = 0;  // token of the instance waiting for the next client, 0 if none
    npipe_t listener_ = 0;  // without max_instances: the listener, and no spare instances
    bool done_ = false;
};

}  // namespace

Failure run_echo_server(npipe_poll_t poll, const EchoServerConfig &cfg, EchoStats &stats, void (*on_ready)(void *),
                        void *ready_arg) {
    EchoServer s(poll, cfg, stats);
    return s.run(on_ready, ready_arg);
}

}  // namespace tool
