#include "relay.hpp"

#include "interrupt.hpp"

#include <vector>

namespace tool {

bool relay_options_from(std::string_view cmd, const ParsedArgs &args, bool allow_echoed, RelayOptions &out) {
    out.message = args.has("message");
    out.lines = args.has("lines");
    if (out.lines && !out.message) {
        usage_error(cmd, "--lines needs --message");
        return false;
    }
    if (auto e = args.value("exit-on")) {
        if (*e == "auto") out.exit_on = ExitOn::automatic;
        else if (*e == "pipe") out.exit_on = ExitOn::pipe;
        else if (*e == "stdin") out.exit_on = ExitOn::stdin_eof;
        else if (*e == "echoed" && allow_echoed) out.exit_on = ExitOn::echoed;
        else {
            usage_error(cmd, allow_echoed ? "--exit-on takes auto, pipe, stdin or echoed" : "--exit-on takes auto, pipe or stdin");
            return false;
        }
    }
    // On by default only where a person watches stderr and the data does not go to the same
    // terminal (a redrawn progress line would tear received text apart).
    out.progress = args.has("progress") || (!args.has("no-progress") && stderr_is_tty() && !stdout_is_tty());
    return true;
}

bool Relay::pull_stdin() {
    std::string chunk;
    stdin_starved_ = false;
    while (!stdin_eof_ && out_bytes_ < kMaxPending) {
        StdinPump::Take t = in_ ? in_->take(chunk) : StdinPump::Take::eof;
        if (t == StdinPump::Take::none) {
            stdin_starved_ = true;  // the pump wakes us when it has more
            break;
        }
        if (t == StdinPump::Take::eof || t == StdinPump::Take::error) {
            stdin_eof_ = true;
            if (!line_tail_.empty()) {
                out_bytes_ += line_tail_.size();
                out_.push_back(std::move(line_tail_));
                line_tail_.clear();
            }
            if (t == StdinPump::Take::error) return false;
            break;
        }
        stdin_had_data_ = true;
        if (opts_.message && opts_.lines) {
            line_tail_ += chunk;
            size_t start = 0;
            for (size_t nl; (nl = line_tail_.find('\n', start)) != std::string::npos; start = nl + 1) {
                out_.push_back(line_tail_.substr(start, nl + 1 - start));
                out_bytes_ += nl + 1 - start;
            }
            line_tail_.erase(0, start);
        } else {
            out_bytes_ += chunk.size();
            out_.push_back(std::move(chunk));
        }
    }
    return true;
}

void Relay::settle_stdin() {
    // The reader thread may not have seen the end of a stdin like /dev/null yet when a quick peer
    // has already left: give it a moment, so only input that was really there counts as unsent.
    // Nothing pending and no end within the bound (an idle terminal or producer): nothing was lost.
    double deadline = now_seconds() + 0.25;
    npipe_event_t events[16];
    while (pull_stdin() && out_.empty() && !stdin_eof_) {
        double left = deadline - now_seconds();
        if (left <= 0) break;
        npipe_poll_wait(poll_, events, 16, static_cast<int32_t>(left * 1000) + 1);
    }
}

SessionResult Relay::session(npipe_t pipe, const std::string &peer) {
    SessionResult r;
    TransferProgress progress(opts_.progress, "");
    std::vector<char> buf(64 * 1024);
    bool marker_sent = false;  // message mode: our zero-length end-of-stream message went out
    bool peer_done = false;    // message mode: the peer's marker arrived
    bool write_closed = false; // a write or flush found the peer gone
    npipe_event_t events[16];
    for (;;) {
        if (!pull_stdin()) {
            r.failure = plain_failure("cannot read stdin", "read failed");
            return r;
        }
        // pipe <- stdin
        while (!out_.empty() && !write_closed) {
            const std::string &m = out_.front();
            size_t off = opts_.message ? 0 : out_off_;
            int64_t w = npipe_write(pipe, m.data() + off, m.size() - off);
            if (w == NPIPE_EAGAIN) break;
            if (w == NPIPE_EPIPE) {
                write_closed = true;
                break;
            }
            if (w < 0) {
                r.failure = capture(static_cast<int>(w), "cannot write to the pipe");
                return r;
            }
            r.sent += static_cast<uint64_t>(w);
            if (opts_.message || off + static_cast<size_t>(w) == m.size()) {
                out_bytes_ -= m.size();
                out_off_ = 0;
                out_.pop_front();
            } else {
                out_off_ = off + static_cast<size_t>(w);
            }
        }
        if (!write_closed && opts_.message && stdin_eof_ && out_.empty() && !marker_sent) {
            int64_t w = npipe_write(pipe, "", 0);
            if (w == 0) marker_sent = true;
            else if (w == NPIPE_EPIPE) write_closed = true;
            else if (w != NPIPE_EAGAIN) {
                r.failure = capture(static_cast<int>(w), "cannot write the end-of-stream message");
                return r;
            }
        }
        // stdout <- pipe; also after a failed write, so what the peer sent before leaving is kept.
        for (;;) {
            uint32_t mf = 0;
            int64_t n = npipe_read_msg(pipe, buf.data(), buf.size(), &mf);
            if (n == NPIPE_EAGAIN) break;
            if (n == NPIPE_EPIPE || (n == 0 && !(mf & NPIPE_MSG_EMPTY))) {
                r.peer_closed = true;
                break;
            }
            if (n < 0) {
                r.failure = capture(static_cast<int>(n), "cannot read from the pipe");
                return r;
            }
            if (n == 0) {
                peer_done = true;
                continue;
            }
            if (!write_stdout(buf.data(), static_cast<size_t>(n))) {
                r.failure = plain_failure("cannot write stdout", "the reader went away");
                return r;
            }
            r.received += static_cast<uint64_t>(n);
        }
        progress.update(r.sent, r.received);
        if (write_closed) r.peer_closed = true;
        if (r.peer_closed) {
            // Accepted bytes that never reached the peer are reported once by npipe_take_error.
            bool undelivered = npipe_take_error(pipe) == NPIPE_EPIPE;
            settle_stdin();
            // Input still pending, or a stdin that carried data and has not ended (a producer
            // slower than settle_stdin's moment, as under load): the transfer was cut short.
            if (!out_.empty() || (stdin_had_data_ && !stdin_eof_))
                r.broken = peer + " closed the pipe before all of standard input was sent";
            else if (undelivered)
                r.broken = peer + " closed the pipe before all that was sent reached it";
            progress.finish(r.sent, r.received);
            return r;
        }

        bool input_done = stdin_eof_ && out_.empty() && (!opts_.message || marker_sent);
        bool end = false;
        if (input_done) {
            switch (opts_.exit_on) {
            case ExitOn::automatic: end = opts_.message ? peer_done : stdin_had_data_; break;
            case ExitOn::stdin_eof: end = true; break;
            case ExitOn::echoed: end = r.received >= r.sent; break;
            case ExitOn::pipe: end = opts_.message && peer_done; break;
            }
        }
        if (end) {
            int32_t f = npipe_flush(pipe);
            if (f == NPIPE_OK) {
                progress.finish(r.sent, r.received);
                return r;
            }
            if (f == NPIPE_EPIPE) {
                write_closed = true;  // read what is left, then report the undelivered bytes
                continue;
            }
            if (f != NPIPE_EAGAIN) {
                r.failure = capture(f, "cannot flush the pipe");
                return r;
            }
        }
        // Chunks left in the pump because out_ was full were announced by a wake we have already
        // consumed: take them now that there is room, instead of waiting for a wake that is gone.
        if (!stdin_eof_ && !stdin_starved_ && out_bytes_ < kMaxPending) continue;
        int32_t n = npipe_poll_wait(poll_, events, 16, progress.wait_ms());
        if (n < 0) {
            r.failure = capture(n, "cannot wait for the pipe");
            return r;
        }
        if (interrupt_flag()) {
            r.interrupted = true;
            return r;
        }
    }
}

std::string drain_before_close(npipe_poll_t poll, npipe_t pipe, int stall_ms, const std::string &peer) {
    double deadline = now_seconds() + stall_ms / 1000.0;
    uint64_t unread = UINT64_MAX;
    npipe_event_t events[16];
    for (;;) {
        // NPIPE_OK once the client has read every byte; while not, NPIPE_WRITABLE announces the
        // next answer (the library re-checks on the poll's clock).
        int32_t d = npipe_drain(pipe);
        if (d == NPIPE_OK) return "";
        if (d != NPIPE_EAGAIN) return peer + " went away before reading everything that was sent";
        npipe_info_t info{};
        info.size = sizeof info;
        if (npipe_get_info(pipe, &info) == NPIPE_OK) {
            const uint64_t left = info.write_pending + info.peer_unread;
            if (left < unread) deadline = now_seconds() + stall_ms / 1000.0;  // it is reading
            unread = left;
        }
        const double wait = deadline - now_seconds();
        if (wait <= 0)
            return peer + " read nothing for " + format_duration(stall_ms / 1000.0) + "; the last " +
                   format_bytes(unread == UINT64_MAX ? 0 : unread) + " were not delivered";
        npipe_poll_wait(poll, events, 16, static_cast<int32_t>(wait * 1000) + 1);
    }
}

std::string broken_transfer_message(const SessionResult &s) {
    return s.broken + " (" + std::to_string(s.sent) + " bytes sent, " + std::to_string(s.received) + " received)";
}

}  // namespace tool
