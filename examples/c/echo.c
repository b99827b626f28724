/* echo.c: the smallest wsdom program. Connects, sends one message, prints the echo, closes.
 *
 *   cc echo.c $(pkg-config --cflags --libs wsdom) -o echo
 *   ./echo ws://127.0.0.1:9001/echo
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <wsdom.h>

static atomic_int done; /* set by onclose: callbacks run on the library's event thread */

static void on_open(ws *socket, void *userdata) {
    (void)userdata;
    printf("open: %s\n", ws_url(socket));
    ws_send_text(socket, "Hello from C");
}

static void on_message(ws *socket, void *userdata, ws_message_type type, const char *data,
                       size_t len) {
    (void)userdata, (void)type;
    printf("received: %.*s\n", (int)len, data); /* data is valid during the call only */
    ws_close(socket, 1000, "bye", 3);           /* code 1000, reason "bye" */
}

static void on_error(ws *socket, void *userdata, const char *message) {
    (void)socket, (void)userdata;
    fprintf(stderr, "error: %s\n", message); /* onclose follows */
}

static void on_close(ws *socket, void *userdata, uint16_t code, const char *reason,
                     size_t reason_len, bool was_clean) {
    (void)socket, (void)userdata;
    printf("closed: code %u, reason \"%.*s\", clean %d\n", code, (int)reason_len, reason,
           was_clean);
    done = 1;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo";
    ws *socket;
    if (ws_new(url, NULL, 0, &socket) != WS_OK) { /* e.g. WS_SYNTAX_ERROR for a bad URL */
        fprintf(stderr, "ws_new: %s\n", ws_last_error_message());
        return 1;
    }
    /* Events wait until the first callback is set, so nothing is missed here. */
    ws_set_onopen(socket, on_open, NULL);
    ws_set_onmessage(socket, on_message, NULL);
    ws_set_onerror(socket, on_error, NULL);
    ws_set_onclose(socket, on_close, NULL);
    while (!done) nanosleep(&(struct timespec){0, 10000000}, NULL); /* or do other work */
    ws_free(socket); /* always: releases the handle; no callback runs after it */
    return 0;
}
