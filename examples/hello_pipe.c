/* hello_pipe.c -- a server and a client in one process, driven by one poll loop.
 * The server waits for a client, the client sends "hello", the server echoes it back. */
#include <npipe.h>
#include <stdio.h>
#include <string.h>

#define SERVER 1
#define CLIENT 2

static int check(int64_t rc, const char *what) {
    if (rc < 0 && rc != NPIPE_EAGAIN) {
        fprintf(stderr, "%s: %s (%s)\n", what, npipe_last_error_message(), npipe_err_name((int)rc));
        return 1;
    }
    return 0;
}

int main(void) {
    npipe_poll_t poll = 0;
    npipe_t server = 0, client = 0;
    npipe_client_options_t copts;
    npipe_event_t events[8];
    char buf[64];
    size_t got = 0;
    int done = 0, rounds = 0;

    if (check(npipe_poll_create(&poll), "npipe_poll_create")) return 1;
    if (check(npipe_create("npipe-hello-example", NULL, &server), "npipe_create")) return 1;
    if (check(npipe_register(poll, server, SERVER, NPIPE_READABLE | NPIPE_WRITABLE), "npipe_register")) return 1;
    if (check(npipe_connect(server), "npipe_connect")) return 1; /* NPIPE_EAGAIN: waiting for a client */

    npipe_client_options_init(&copts);
    copts.timeout_ms = 2000; /* wait up to 2 s for a free instance */
    if (check(npipe_open("npipe-hello-example", &copts, &client), "npipe_open")) return 1;
    if (check(npipe_register(poll, client, CLIENT, NPIPE_READABLE | NPIPE_WRITABLE), "npipe_register")) return 1;
    if (check(npipe_write(client, "hello", 5), "npipe_write")) return 1; /* buffered, sent at once */

    while (!done && rounds++ < 100) {
        int32_t n = npipe_poll_wait(poll, events, 8, 1000);
        if (check(n, "npipe_poll_wait")) return 1;
        for (int32_t i = 0; i < n; i++) {
            if (events[i].token == SERVER && (events[i].events & NPIPE_READABLE)) {
                int64_t r;
                while ((r = npipe_read(server, buf, sizeof buf)) > 0) /* edge-triggered: drain */
                    if (check(npipe_write(server, buf, (size_t)r), "echo")) return 1;
                if (check(r, "server read")) return 1;
            }
            if (events[i].token == CLIENT && (events[i].events & NPIPE_READABLE)) {
                int64_t r;
                while ((r = npipe_read(client, buf + got, sizeof buf - got)) > 0) got += (size_t)r;
                if (check(r, "client read")) return 1;
                done = got >= 5;
            }
        }
    }
    printf("client got back: %.*s\n", (int)got, buf);
    npipe_close(client);
    npipe_close(server);
    npipe_poll_close(poll);
    return got == 5 && memcmp(buf, "hello", 5) == 0 ? 0 : 1;
}
