/* Opens and frees many sockets (issue #8, part 2): run under LeakSanitizer (ASan build) and
 * valgrind for leaks, and plain for memory and descriptor growth.
 *
 *   open_free [COUNT [CONCURRENCY]]      defaults: 10000 sockets, 100 at a time
 *
 * Sockets are released in every way the API allows, in turn: freed while connecting, freed
 * while open (1001), closed then freed, freed by their own onopen callback, closed by the
 * server, dropped by the server. Checks: events in order, ws_live_handles() back to 0, the
 * process's descriptors back to their count after the first batch, and (unless
 * REL_SKIP_RSS is set, e.g. under ASan or valgrind) RSS after COUNT sockets within 4 MiB +
 * 10% of RSS after the first 1000.
 */
#include "rel.h"

typedef struct {
    ws *sock;
    rel_events ev;
    int mode;
    atomic_int freed_in_callback;
} slot;

static void free_on_open(ws *s, void *ud) {
    slot *sl = ud;
    rel_on_open(s, &sl->ev);
    if (ws_free(s) != WS_OK) rel_fail("ws_free in onopen: %s", ws_last_error_message());
    atomic_store(&sl->freed_in_callback, 1);
}
static void on_open(ws *s, void *ud) { rel_on_open(s, &((slot *)ud)->ev); }
static void on_message(ws *s, void *ud, ws_message_type t, const char *d, size_t n) {
    rel_on_message(s, &((slot *)ud)->ev, t, d, n);
}
static void on_error(ws *s, void *ud, const char *m) { rel_on_error(s, &((slot *)ud)->ev, m); }
static void on_close(ws *s, void *ud, uint16_t c, const char *r, size_t n, bool clean) {
    rel_on_close(s, &((slot *)ud)->ev, c, r, n, clean);
}

static const char *PATHS[] = {"/echo", "/echo", "/echo", "/echo", "/close?code=4001&reason=x",
                              "/drop?after_ms=5"};
#define MODES 6

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 10000;
    int conc = argc > 2 ? atoi(argv[2]) : 100;
    int port = rel_env_port("WSDOM_TEST_PORT");
    bool check_rss = getenv("REL_SKIP_RSS") == NULL;
    slot *slots = calloc((size_t)conc, sizeof(slot));
    char urls[MODES][128];
    for (int m = 0; m < MODES; m++)
        snprintf(urls[m], sizeof urls[m], "ws://127.0.0.1:%d%s", port, PATHS[m]);
    ws_options *opts = rel_options();
    int fds_base = -1;
    long rss_1000 = -1;
    int opened = 0, closed_events = 0;
    double t0 = rel_now_ms();
    for (int done = 0; done < count; done += conc) {
        int n = count - done < conc ? count - done : conc;
        for (int i = 0; i < n; i++) {
            slot *sl = &slots[i];
            memset(sl, 0, sizeof *sl);
            sl->mode = (done + i) % MODES;
            ws_callbacks cb = {sl->mode == 3 ? free_on_open : on_open, on_message, on_error,
                               on_close, sl};
            if (ws_new_with_options(urls[sl->mode], NULL, 0, opts, &cb, &sl->sock) != WS_OK) {
                rel_fail("ws_new_with_options: %s", ws_last_error_message());
                return 1;
            }
            if (sl->mode == 0) { /* freed while connecting: no callback ever runs */
                if (ws_free(sl->sock) != WS_OK) rel_fail("ws_free (connecting)");
                sl->sock = NULL;
            }
        }
        for (int i = 0; i < n; i++) {
            slot *sl = &slots[i];
            switch (sl->mode) {
            case 0:
                break;
            case 1: /* freed while open: 1001 in the background */
                REL_CHECK(rel_wait_flag(&sl->ev.opened, 10000), "open (mode 1)");
                break;
            case 2: /* closed, then freed after onclose */
                REL_CHECK(rel_wait_flag(&sl->ev.opened, 10000), "open (mode 2)");
                REL_CHECK(ws_close(sl->sock, 1000, "bye", 3) == WS_OK, "close");
                REL_CHECK(rel_wait_flag(&sl->ev.closed, 10000), "close event (mode 2)");
                REL_CHECK(sl->ev.was_clean && sl->ev.close_code == 1000, "clean 1000");
                break;
            case 3: /* freed by its own onopen */
                REL_CHECK(rel_wait_flag(&sl->freed_in_callback, 10000), "freed in onopen");
                sl->sock = NULL;
                break;
            case 4: /* the server closes */
                REL_CHECK(rel_wait_flag(&sl->ev.closed, 10000), "close event (mode 4)");
                REL_CHECK(sl->ev.close_code == 4001 && sl->ev.was_clean, "server close 4001");
                break;
            case 5: /* the server drops TCP */
                REL_CHECK(rel_wait_flag(&sl->ev.closed, 10000), "close event (mode 5)");
                REL_CHECK(sl->ev.close_code == 1006 && atomic_load(&sl->ev.errored), "1006");
                break;
            }
            if (sl->sock && ws_free(sl->sock) != WS_OK) rel_fail("ws_free: %s", ws_last_error_message());
            REL_CHECK(atomic_load(&sl->ev.order_errors) == 0, "events in order");
            opened += atomic_load(&sl->ev.opened);
            closed_events += atomic_load(&sl->ev.closed);
        }
        if (fds_base < 0) {
            rel_sleep_ms(300); /* the first batch finishes its background closes */
            fds_base = rel_fd_count();
        }
        if (done + n == 1000 || (count < 1000 && done == 0)) rss_1000 = rel_rss_kb();
    }
    ws_options_free(opts);
    double secs = (rel_now_ms() - t0) / 1000;
    /* Background closing handshakes (1001 after ws_free) end; every descriptor comes back. */
    int fds = rel_fd_count();
    for (int i = 0; i < 1000 && fds > fds_base; i++) {
        rel_sleep_ms(10);
        fds = rel_fd_count();
    }
    long rss_end = rel_rss_kb();
    printf("open_free: %d sockets (%d at a time) in %.1f s: %d opened, %d close events, "
           "handles left %zu, descriptors %d (after the first batch %d), RSS after 1000 %ld KiB, "
           "after %d %ld KiB\n",
           count, conc, secs, opened, closed_events, ws_live_handles(), fds, fds_base, rss_1000,
           count, rss_end);
    REL_CHECK(ws_live_handles() == 0, "handles left: %zu", ws_live_handles());
    REL_CHECK(fds <= fds_base, "descriptors leaked: %d > %d", fds, fds_base);
    if (check_rss)
        REL_CHECK(rss_end <= rss_1000 + 4096 + rss_1000 / 10, "RSS grew from %ld to %ld KiB",
                  rss_1000, rss_end);
    free(slots);
    return rel_finish("open_free");
}
