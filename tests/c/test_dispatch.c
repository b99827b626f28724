/* Manual dispatch: callbacks run inside ws_dispatch() on the caller's thread, woken by
 * poll() on ws_event_fd(). */
#include "harness.h"

#include <poll.h>

static pthread_t main_thread;

static struct {
    int opens, messages, closes, errors;
    int wrong_thread;
    ws_result nested_dispatch;
    int64_t nested_dispatched;
} md;

static void md_open(ws *s, void *u) {
    (void)u;
    if (!pthread_equal(pthread_self(), main_thread)) md.wrong_thread++;
    md.opens++;
    size_t n = 99;
    md.nested_dispatch = ws_dispatch(0, &n); /* dispatch does not nest */
    md.nested_dispatched = (int64_t)n;
    ws_send_text(s, "over poll");
}

static void md_message(ws *s, void *u, ws_message_type t, const char *d, size_t n) {
    (void)u, (void)t;
    if (!pthread_equal(pthread_self(), main_thread)) md.wrong_thread++;
    if (n != 9 || strcmp(d, "over poll") != 0) md.errors++;
    md.messages++;
    ws_close(s, 1000, "bye", 3);
}

static void md_error(ws *s, void *u, const char *m) {
    (void)s, (void)u;
    fprintf(stderr, "unexpected error: %s\n", m);
    md.errors++;
}

static void md_close(ws *s, void *u, uint16_t code, const char *r, size_t n, bool clean) {
    (void)s, (void)u, (void)r, (void)n;
    if (!pthread_equal(pthread_self(), main_thread)) md.wrong_thread++;
    if (code != 1000 || !clean) md.errors++;
    md.closes++;
}

static ws_options *manual_options(void) {
    ws_options *opts = NULL;
    if (ws_options_new(&opts) != WS_OK) return NULL;
    if (ws_options_set_manual_dispatch(opts, true) != WS_OK) return NULL;
    return opts;
}

TEST(manual_dispatch_with_poll_on_the_event_fd) {
    main_thread = pthread_self();
    enum { N = 10 };
    int fd = -1;
    CHECK_OK(ws_event_fd(&fd));
    REQUIRE(fd >= 0);
    int again = -1;
    CHECK_OK(ws_event_fd(&again));
    CHECK_INT(again, fd); /* one descriptor for the process */
    ws_options *opts = manual_options();
    REQUIRE(opts);
    ws_callbacks cb = {md_open, md_message, md_error, md_close, NULL};
    ws *s[N];
    for (int i = 0; i < N; i++)
        REQUIRE(ws_new_with_options(url("/echo"), NULL, 0, opts, &cb, &s[i]) == WS_OK);
    CHECK_OK(ws_options_free(opts));

    /* Nothing runs until we dispatch, but the descriptor says events wait. */
    sleep_ms(300);
    CHECK_INT(md.opens, 0);
    struct pollfd pfd = {fd, POLLIN, 0};
    CHECK_INT(poll(&pfd, 1, 0), 1);

    int64_t deadline = now_ms() + 10000;
    size_t total = 0;
    int wakeups = 0;
    while (md.closes + md.errors < N && now_ms() < deadline) {
        pfd.revents = 0;
        int ready = poll(&pfd, 1, 100);
        if (ready < 0) break;
        if (ready == 1) {
            wakeups++;
            size_t n = 0;
            CHECK_OK(ws_dispatch(0, &n));
            total += n;
        }
    }
    CHECK_INT(md.opens, N);
    CHECK_INT(md.messages, N);
    CHECK_INT(md.closes, N);
    CHECK_INT(md.errors, 0);
    CHECK_INT(md.wrong_thread, 0);
    CHECK_RESULT(md.nested_dispatch, WS_INVALID_STATE_ERROR);
    CHECK_INT(md.nested_dispatched, 0);
    CHECK(total >= 3 * N);
    CHECK(wakeups <= (int)total);
    /* All events were dispatched: the descriptor is no longer readable. */
    pfd.revents = 0;
    CHECK_INT(poll(&pfd, 1, 0), 0);
    for (int i = 0; i < N; i++) CHECK_OK(ws_free(s[i]));
}

TEST(dispatch_waits_up_to_the_timeout) {
    size_t n = 99;
    int64_t start = now_ms();
    CHECK_OK(ws_dispatch(150, &n));
    int64_t took = now_ms() - start;
    CHECK_INT(n, 0);
    CHECK(took >= 140 && took < 2000);
    start = now_ms();
    CHECK_OK(ws_dispatch(0, NULL)); /* no wait, no count wanted */
    CHECK(now_ms() - start < 100);
    CHECK_RESULT(ws_event_fd(NULL), WS_NULL_ARGUMENT);

    /* A negative timeout waits for the next event. */
    rec r;
    rec_init(&r);
    ws_options *opts = manual_options();
    REQUIRE(opts);
    ws *sock = open_recorded(url("/delay-handshake?ms=100"), opts, &r);
    CHECK_OK(ws_options_free(opts));
    REQUIRE(sock);
    CHECK_OK(ws_dispatch(-1, &n));
    CHECK_INT(n, 1);
    CHECK_EVENTS(&r, "open");
    CHECK(pthread_equal(r.thread, pthread_self()));
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(manual_sockets_freed_before_dispatch_fire_nothing) {
    rec r;
    rec_init(&r);
    ws_options *opts = manual_options();
    REQUIRE(opts);
    ws *sock = open_recorded(url("/push?n=3&size=1"), opts, &r);
    CHECK_OK(ws_options_free(opts));
    REQUIRE(sock);
    sleep_ms(300); /* open and messages wait in the queue */
    CHECK_OK(ws_free(sock));
    size_t n = 0;
    CHECK_OK(ws_dispatch(100, &n));
    CHECK_EVENTS(&r, "");
    rec_destroy(&r);
}

TEST(manual_and_default_sockets_together) {
    main_thread = pthread_self();
    rec manual, automatic;
    rec_init(&manual);
    rec_init(&automatic);
    ws_options *opts = manual_options();
    REQUIRE(opts);
    ws *m = open_recorded(url("/close?code=4005"), opts, &manual);
    ws *a = open_recorded(url("/close?code=4006"), NULL, &automatic);
    CHECK_OK(ws_options_free(opts));
    REQUIRE(m && a);
    /* The default socket completes on the library thread without any dispatch. */
    REQUIRE(rec_wait_close(&automatic, 5000));
    CHECK_EVENTS(&automatic, "open,close:4006::clean");
    CHECK(!pthread_equal(automatic.thread, main_thread));
    CHECK_EVENTS(&manual, "");
    int64_t deadline = now_ms() + 5000;
    while (manual.closes == 0 && now_ms() < deadline) CHECK_OK(ws_dispatch(50, NULL));
    CHECK_EVENTS(&manual, "open,close:4005::clean");
    CHECK(pthread_equal(manual.thread, main_thread));
    CHECK_OK(ws_free(m));
    CHECK_OK(ws_free(a));
    rec_destroy(&manual);
    rec_destroy(&automatic);
}

TEST(set_callbacks_late_in_manual_mode) {
    ws_options *opts = manual_options();
    REQUIRE(opts);
    ws *sock = NULL;
    REQUIRE(ws_new_with_options(url("/push?n=2&size=1&type=text"), NULL, 0, opts, NULL, &sock) ==
            WS_OK);
    CHECK_OK(ws_options_free(opts));
    sleep_ms(300);
    /* Events wait for callbacks even when dispatched: nothing to deliver yet. */
    CHECK_OK(ws_dispatch(0, NULL));
    rec r;
    rec_init(&r);
    rec_set_each(&r, sock); /* on this thread, between dispatches: no event can slip by */
    int64_t deadline = now_ms() + 5000;
    while (r.messages < 3 && now_ms() < deadline) CHECK_OK(ws_dispatch(50, NULL));
    CHECK_EVENTS(&r, "open,message:text:x,message:text:x,message:text:done");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

/* Many events arriving while the loop dispatches: the descriptor must never miss a wake-up
 * (a lost wake-up would leave events waiting while poll() sleeps). Dispatches only when
 * poll() says so. */
static struct {
    int done, messages;
} burst;

static void burst_message(ws *s, void *u, ws_message_type t, const char *d, size_t n) {
    (void)s, (void)u, (void)t;
    burst.messages++;
    if (n == 4 && memcmp(d, "done", 4) == 0) burst.done++;
}

TEST(manual_dispatch_never_misses_a_wakeup) {
    enum { N = 20, PER = 500 };
    ws_options *opts = manual_options();
    REQUIRE(opts);
    ws_callbacks cb = {NULL, burst_message, NULL, NULL, NULL};
    ws *s[N];
    char path[64];
    snprintf(path, sizeof path, "/push?n=%d&size=8&type=text", PER);
    for (int i = 0; i < N; i++)
        REQUIRE(ws_new_with_options(url(path), NULL, 0, opts, &cb, &s[i]) == WS_OK);
    CHECK_OK(ws_options_free(opts));
    int fd;
    REQUIRE(ws_event_fd(&fd) == WS_OK);
    int64_t deadline = now_ms() + 20000;
    int stalls = 0;
    while (burst.done < N && now_ms() < deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = poll(&pfd, 1, 1000);
        if (ready == 0) stalls++; /* a whole second without a wake-up while events flow */
        if (ready > 0) CHECK_OK(ws_dispatch(0, NULL));
    }
    CHECK_INT(burst.done, N);
    CHECK_INT(burst.messages, N * (PER + 1));
    CHECK_INT(stalls, 0);
    for (int i = 0; i < N; i++) CHECK_OK(ws_free(s[i]));
}
