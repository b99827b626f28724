/* The header is valid strict C99 (built with -std=c99 -pedantic -Wall -Wextra -Werror), and
 * every declaration is usable from C: the types, constants and function signatures below. */
#include <wsdom.h>

static void on_open(ws *socket, void *userdata) { (void)socket, (void)userdata; }
static void on_message(ws *socket, void *userdata, ws_message_type type, const char *data,
                       size_t len) {
    (void)socket, (void)userdata, (void)type, (void)data, (void)len;
}
static void on_error(ws *socket, void *userdata, const char *message) {
    (void)socket, (void)userdata, (void)message;
}
static void on_close(ws *socket, void *userdata, uint16_t code, const char *reason,
                     size_t reason_len, bool was_clean) {
    (void)socket, (void)userdata, (void)code, (void)reason, (void)reason_len, (void)was_clean;
}

int main(void) {
    ws_callbacks cb = {on_open, on_message, on_error, on_close, NULL};
    ws_onopen_callback o = on_open;
    ws_result r = WS_OK;
    int states[] = {WS_CONNECTING, WS_OPEN, WS_CLOSING, WS_CLOSED, WS_CLOSE_NO_CODE};
    ws_message_type types[] = {WS_MESSAGE_TEXT, WS_MESSAGE_BINARY};
    (void)cb, (void)o, (void)r, (void)states, (void)types;
    return 0;
}
