#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz target (tests/fuzz/corpus/). Each seed is a short
program in the target's input language (see the op switch at the end of fuzz_api.cpp) that walks
one path: a byte pair, a message pair, an adopted socketpair, misuse, threads, disconnect and a
poll closed under its pipes. The fuzzer mutates from there."""
import os
import struct
import sys

CREATE, OPEN, RAW, REGISTER, DEREGISTER, CONNECT, DISCONNECT, CLOSE = 0, 2, 4, 5, 7, 8, 9, 10
WRITE, READ, FLUSH, INFO, POLL_CREATE, POLL_CLOSE, WAIT_WAKE = 11, 13, 15, 16, 17, 18, 19
BAD, NAMES, THREADS, THREAD_READ = 20, 21, 22, 23
MESSAGE = 1


def small(n):  # Tape::length selector 6: 1 + n % 4096
    return [6] + list(struct.pack("<H", n - 1))


def mib(n):  # selector 4: u32 % 1 MiB
    return [4] + list(struct.pack("<I", n))


def pair(flags=0, e_server=0, e_client=1, poll=0):
    return ([CREATE, flags, OPEN, e_server // 1, 0, 0,  # pair index = e_server (one pair per seed)
             REGISTER, e_server, poll, 0, 0, REGISTER, e_client, poll, 0, 0, CONNECT, e_server])


def write(e, length, vec=False):
    return [WRITE, e] + length + ([1, 2, 0x10, 0, 0x20, 0] if vec else [0])


def read(e, length, how=0):
    return [READ, e] + length + [how]


def wait(poll=0):
    return [WAIT_WAKE, poll, 0xE0 | 16, poll, 3]


SEEDS = {
    "byte-pair": [POLL_CREATE, 0] + pair() + write(1, small(100)) + wait() + read(0, small(4096)) +
                 write(0, small(3000), vec=True) + [FLUSH, 0] + wait() + read(1, small(50), 1) +
                 read(1, small(4096), 2) + [INFO, 0, 0, 0, INFO, 1, 1, 1, CLOSE, 1] + read(0, small(10)),
    "message-pair": [POLL_CREATE, 0] + pair(MESSAGE) + write(1, [0]) + write(1, small(700)) +
                    write(1, mib(300000)) + wait() + read(0, small(100), 2) + read(0, small(4096), 2) +
                    read(0, small(4096), 0) + write(0, [5, 1]) + write(0, small(5), vec=True) + write(0, [5, 0]) + read(1, small(9), 2),
    "socketpair": [POLL_CREATE, 1, RAW, 0, REGISTER, 0, 1, 4, 0, REGISTER, 1, 1, 0, 0] +
                  write(0, small(2000)) + write(1, [3, 0, 0]) + wait(1) + read(1, small(4096)) + read(0, mib(70000), 1) +
                  [RAW, MESSAGE, REGISTER, 2, 1, 0, 0, REGISTER, 3, 1, 0, 0] + write(2, small(10)) + read(3, small(3), 2),
    "misuse": [POLL_CREATE, 0, CREATE, 0, CLOSE, 0, BAD, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 7,
               BAD] + [0xFF] * 16 + [3, 2, POLL_CLOSE, 0, BAD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 5,
               NAMES, 1, 12] + list(b"a-b-c/\xff\xfe") + [1, 200, 0x22, 1, 1, 0x20, 1, 5, 6, 7, 8] +
              [NAMES, 0, 40] + list(b"x" * 40) + [0, 10, 0x40, 0, 0, 0x40, 0, 3, 0, 0, 0],
    "threads": [POLL_CREATE, 0] + pair() + write(0, small(500)) + [THREAD_READ, 1] + [6, 0x40, 0] * 16 +
               [THREADS, 0, 1, 0] + [0, 6, 0x10, 0, 1, 3, 1, 2, 0, 3, 4, 5] * 2 + wait(),
    "disconnect": [POLL_CREATE, 0] + pair() + write(1, small(64)) + wait() + [DISCONNECT, 0, CONNECT, 0, OPEN, 1, 0, 0,
                   REGISTER, 1, 0, 0, 0, CONNECT, 0] + wait() + [CONNECT, 0] + write(1, small(64)) + wait() +
                  read(0, small(64)) + [POLL_CLOSE, 0] + read(0, small(4)) + write(1, small(4)),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, ops in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(b & 0xFF for b in ops))


if __name__ == "__main__":
    main()
