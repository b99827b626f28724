/* poll_loop.c: manual dispatch for a single-threaded program with its own poll() loop.
 * Every callback runs on this thread, inside ws_dispatch(). Sends "ping 1".."ping 3", one
 * every 200 ms (a poll() timer), prints the echoes, then closes.
 *
 *   cc poll_loop.c $(pkg-config --cflags --libs wsdom) -o poll_loop
 *   ./poll_loop ws://127.0.0.1:9001/echo
 */
#include <poll.h>
#include <stdio.h>
#include <wsdom.h>

struct app {
    int pings_sent, echoes, closed;
};

static void on_open(ws *socket, void *userdata) {
    (void)socket, (void)userdata;
    printf("open\n");
}

static void on_message(ws *socket, void *userdata, ws_message_type type, const char *data,
                       size_t len) {
    struct app *app = userdata;
    (void)type;
    printf("echo: %.*s\n", (int)len, data);
    if (++app->echoes == 3) ws_close(socket, 1000, NULL, 0);
}

static void on_error(ws *socket, void *userdata, const char *message) {
    (void)socket, (void)userdata;
    fprintf(stderr, "error: %s\n", message);
}

static void on_close(ws *socket, void *userdata, uint16_t code, const char *reason,
                     size_t reason_len, bool was_clean) {
    struct app *app = userdata;
    (void)socket, (void)reason, (void)reason_len;
    printf("closed: code %u, clean %d\n", code, was_clean);
    app->closed = 1;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo";
    struct app app = {0, 0, 0};
    ws_options *options;
    ws *socket;
    int fd;

    /* Sockets created with these options queue their events for ws_dispatch(). */
    ws_options_new(&options);
    ws_options_set_manual_dispatch(options, true);
    ws_callbacks callbacks = {on_open, on_message, on_error, on_close, &app};
    if (ws_new_with_options(url, NULL, 0, options, &callbacks, &socket) != WS_OK) {
        fprintf(stderr, "ws_new_with_options: %s\n", ws_last_error_message());
        return 1;
    }
    ws_options_free(options); /* the socket keeps a copy */
    ws_event_fd(&fd);         /* readable while events wait */

    while (!app.closed) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = poll(&pfd, 1, 200); /* ... plus the program's own descriptors */
        if (ready > 0)
            ws_dispatch(0, NULL); /* runs the waiting callbacks here */
        else if (ready == 0 && ws_ready_state(socket) == WS_OPEN && app.pings_sent < 3) {
            char text[32];
            snprintf(text, sizeof text, "ping %d", ++app.pings_sent);
            ws_send_text(socket, text); /* a timer tick: send the next ping */
        }
    }
    ws_free(socket);
    return 0;
}
