"""An echo server and client in one process, twice: with the blocking helpers, then on a Poll."""
import threading

import npipe

NAME = "npipe-python-example"

# 1. Script style: blocking helpers, no poll of your own.
with npipe.Server(NAME) as server:
    def echo_once() -> None:
        server.connect(timeout=5)
        server.sendall(server.recv(timeout=5).upper(), timeout=5)

    thread = threading.Thread(target=echo_once)
    thread.start()
    with npipe.open(NAME, timeout=5) as client:
        client.sendall(b"hello", timeout=5)
        print("blocking:", client.recv(timeout=5))
    thread.join()

# 2. Event-loop style: one Poll, non-blocking calls, read until BlockingIOError (edge-triggered).
SERVER, CLIENT = 1, 2
with npipe.Poll() as poll, npipe.Server(NAME) as server:
    poll.register(server, SERVER)
    server.connect(blocking=False)  # False: waiting; a CONNECTED event follows
    with npipe.open(NAME, timeout=5) as client:
        poll.register(client, CLIENT)
        client.write(b"ping")
        reply = b""
        while len(reply) < 4:
            events = poll.wait(timeout=5)
            if not events:
                raise TimeoutError("no event within 5 s")
            for event in events:
                pipe = server if event.token == SERVER else client
                while event.readable:
                    try:
                        data = pipe.read()
                    except BlockingIOError:
                        break  # drained: the next READABLE event will tell
                    if not data:
                        break  # the peer closed
                    if pipe is server:
                        server.write(data[::-1])
                    else:
                        reply += data
        print("poll:", reply)

# Errors are OSError subclasses with the library's code and message.
try:
    npipe.open("no-such-pipe")
except FileNotFoundError as e:
    print(type(e).__name__, e.name, "-", e.message)
