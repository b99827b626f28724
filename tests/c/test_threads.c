/* Threads: where callbacks run, callbacks that close or free their socket, concurrent
 * sends, and callbacks set late on many sockets. */
#include "harness.h"

#include <stdatomic.h>

/* ---- All callbacks of all sockets run one at a time on one library thread. ---- */

static struct {
    pthread_mutex_t mu;
    pthread_t thread;
    int seen;
    atomic_int running;
    int overlaps;
    int other_thread;
    atomic_int closes;
} one = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void one_enter(void) {
    if (atomic_fetch_add(&one.running, 1) != 0) one.overlaps++;
    pthread_mutex_lock(&one.mu);
    if (one.seen++ == 0)
        one.thread = pthread_self();
    else if (!pthread_equal(one.thread, pthread_self()))
        one.other_thread++;
    pthread_mutex_unlock(&one.mu);
    sleep_ms(0);
}

static void one_leave(void) { atomic_fetch_sub(&one.running, 1); }

static void one_open(ws *s, void *u) {
    (void)u;
    one_enter();
    ws_send_text(s, "x");
    one_leave();
}

static void one_message(ws *s, void *u, ws_message_type t, const char *d, size_t n) {
    (void)t, (void)d, (void)n, (void)u;
    one_enter();
    ws_close(s, 1000, NULL, 0);
    one_leave();
}

static void one_close(ws *s, void *u, uint16_t c, const char *r, size_t n, bool clean) {
    (void)s, (void)u, (void)c, (void)r, (void)n, (void)clean;
    one_enter();
    atomic_fetch_add(&one.closes, 1);
    one_leave();
}

TEST(callbacks_of_all_sockets_run_on_one_library_thread) {
    enum { N = 30 };
    ws *s[N];
    ws_callbacks cb = {one_open, one_message, NULL, one_close, NULL};
    for (int i = 0; i < N; i++)
        REQUIRE(ws_new_with_options(url("/push?n=20&size=10"), NULL, 0, NULL, &cb, &s[i]) ==
                WS_OK);
    int64_t deadline = now_ms() + 10000;
    while (atomic_load(&one.closes) < N && now_ms() < deadline) sleep_ms(10);
    CHECK_INT(atomic_load(&one.closes), N);
    CHECK_INT(one.overlaps, 0);
    CHECK_INT(one.other_thread, 0);
    CHECK(!pthread_equal(one.thread, pthread_self()));
    for (int i = 0; i < N; i++) CHECK_OK(ws_free(s[i]));
}

/* ---- Callbacks that close or free their own socket. ---- */

TEST(callback_closes_its_own_socket) {
    rec r;
    rec_init(&r);
    r.close_after_messages = 3;
    ws *sock = open_recorded(url("/push?n=10&size=2"), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_close(&r, 5000));
    /* Messages after close() are not delivered (readyState is CLOSING). */
    CHECK_EVENTS(&r, "open,message:binary:2,message:binary:2,message:binary:2,"
                     "close:1000:enough:clean");
    CHECK_INT(r.bad_state + r.bad_args, 0);
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(callback_frees_its_own_socket) {
    /* In onopen: nothing after. */
    rec r;
    rec_init(&r);
    r.free_on = 'o';
    ws *sock = open_recorded(url("/push?n=10&size=2"), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    sleep_ms(300);
    CHECK_EVENTS(&r, "open");
    CHECK_INT(r.bad_args, 0);
    CHECK_RESULT(ws_free(sock), WS_INVALID_HANDLE); /* already freed by the callback */
    rec_destroy(&r);

    /* In onmessage: exactly one message. */
    rec_init(&r);
    r.free_on = 'm';
    sock = open_recorded(url("/push?n=10&size=2"), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_messages(&r, 1, 5000));
    sleep_ms(300);
    CHECK_EVENTS(&r, "open,message:binary:2");
    CHECK_INT(r.bad_args, 0);
    rec_destroy(&r);

    /* In onclose. */
    rec_init(&r);
    r.free_on = 'c';
    sock = open_recorded(url("/close?code=4002"), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_close(&r, 5000));
    sleep_ms(100);
    CHECK_EVENTS(&r, "open,close:4002::clean");
    CHECK_INT(r.bad_args, 0);
    rec_destroy(&r);
    CHECK_INT(ws_live_handles(), 0);
}

TEST(free_waits_for_a_running_callback) {
    rec r;
    rec_init(&r);
    r.sleep_in_message_ms = 300;
    ws *sock = open_recorded(url("/push?n=20&size=1"), NULL, &r);
    REQUIRE(sock);
    /* Wait until the first onmessage is running (it sleeps 300 ms). */
    int64_t deadline = now_ms() + 5000;
    while (__atomic_load_n(&r.in_callback, __ATOMIC_SEQ_CST) == 0 || r.opens == 0) {
        if (now_ms() > deadline) break;
        sleep_ms(1);
    }
    sleep_ms(20);
    REQUIRE(__atomic_load_n(&r.in_callback, __ATOMIC_SEQ_CST) == 1);
    CHECK_OK(ws_free(sock));
    /* ws_free returned: the running callback has finished, and no other one starts. */
    CHECK_INT(__atomic_load_n(&r.in_callback, __ATOMIC_SEQ_CST), 0);
    pthread_mutex_lock(&r.mu);
    int count = r.count;
    pthread_mutex_unlock(&r.mu);
    sleep_ms(700);
    pthread_mutex_lock(&r.mu);
    CHECK_INT(r.count, count);
    pthread_mutex_unlock(&r.mu);
    CHECK(r.messages >= 1 && r.messages <= 2);
    rec_destroy(&r);
}

/* ---- A callback may create, set up and free other sockets. ---- */

static rec nested_rec;
static ws *nested_sock;

static void create_from_open(ws *s, void *u) {
    (void)u;
    ws_callbacks cb = rec_callbacks(&nested_rec);
    if (ws_new_with_options(url("/close?code=4003"), NULL, 0, NULL, &cb, &nested_sock) != WS_OK)
        nested_rec.bad_args++;
    ws_free(s);
}

TEST(callback_creates_another_socket) {
    rec_init(&nested_rec);
    ws *first = NULL;
    REQUIRE(ws_new(url("/echo"), NULL, 0, &first) == WS_OK);
    CHECK_OK(ws_set_onopen(first, create_from_open, NULL));
    REQUIRE(rec_wait_close(&nested_rec, 5000));
    CHECK_EVENTS(&nested_rec, "open,close:4003::clean");
    CHECK_RESULT(ws_free(first), WS_INVALID_HANDLE); /* freed in its onopen */
    CHECK_OK(ws_free(nested_sock));
    rec_destroy(&nested_rec);
}

/* ---- Sends from several threads at once. ---- */

enum { SEND_THREADS = 8, SENDS_PER_THREAD = 250 };

static struct {
    pthread_mutex_t mu;
    int next[SEND_THREADS]; /* next expected sequence number per thread */
    int received;
    int out_of_order;
    int malformed;
    int failed_sends;
    ws *sock;
} conc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void conc_message(ws *s, void *u, ws_message_type t, const char *d, size_t n) {
    (void)s, (void)u;
    int thread, seq;
    pthread_mutex_lock(&conc.mu);
    if (t != WS_MESSAGE_TEXT || sscanf(d, "t%d-%d", &thread, &seq) != 2 || thread < 0 ||
        thread >= SEND_THREADS || n < 4) {
        conc.malformed++;
    } else {
        if (seq != conc.next[thread]) conc.out_of_order++;
        conc.next[thread] = seq + 1;
    }
    conc.received++;
    pthread_mutex_unlock(&conc.mu);
}

static void *sender(void *arg) {
    int id = (int)(intptr_t)arg;
    char buf[64];
    for (int i = 0; i < SENDS_PER_THREAD; i++) {
        snprintf(buf, sizeof buf, "t%d-%d", id, i);
        if (ws_send_text(conc.sock, buf) != WS_OK)
            __atomic_add_fetch(&conc.failed_sends, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

TEST(sends_from_several_threads_at_once) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url("/echo"), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    CHECK_OK(ws_set_onmessage(sock, conc_message, NULL)); /* replace the recorder's */
    conc.sock = sock;
    pthread_t t[SEND_THREADS];
    for (int i = 0; i < SEND_THREADS; i++) pthread_create(&t[i], NULL, sender, (void *)(intptr_t)i);
    for (int i = 0; i < SEND_THREADS; i++) pthread_join(t[i], NULL);
    int64_t deadline = now_ms() + 10000;
    for (;;) {
        pthread_mutex_lock(&conc.mu);
        int got = conc.received;
        pthread_mutex_unlock(&conc.mu);
        if (got >= SEND_THREADS * SENDS_PER_THREAD || now_ms() > deadline) break;
        sleep_ms(10);
    }
    CHECK_INT(conc.failed_sends, 0);
    CHECK_INT(conc.received, SEND_THREADS * SENDS_PER_THREAD);
    CHECK_INT(conc.malformed, 0);
    CHECK_INT(conc.out_of_order, 0); /* each thread's messages stay in its order */
    for (int i = 0; i < SEND_THREADS; i++) CHECK_INT(conc.next[i], SENDS_PER_THREAD);
    CHECK_OK(ws_close(sock, 1000, NULL, 0));
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

/* ---- 500 sockets whose callbacks are set after all 500 ws_new calls. ---- */

enum { LATE_N = 500 };

typedef struct {
    int opens, messages, errors, closes;
    int order_errors;
    int close_code;
    char last[32];
} late_state;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int opens, messages, closes, errors;
} late = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void late_bump(int *counter) {
    pthread_mutex_lock(&late.mu);
    (*counter)++;
    pthread_cond_broadcast(&late.cv);
    pthread_mutex_unlock(&late.mu);
}

static void late_open(ws *s, void *u) {
    (void)s;
    late_state *st = u;
    if (st->opens || st->messages || st->closes) st->order_errors++;
    st->opens++;
    late_bump(&late.opens);
}

static void late_message(ws *s, void *u, ws_message_type t, const char *d, size_t n) {
    (void)s, (void)t;
    late_state *st = u;
    if (!st->opens || st->closes) st->order_errors++;
    snprintf(st->last, sizeof st->last, "%.*s", (int)n, d);
    st->messages++;
    late_bump(&late.messages);
}

static void late_error(ws *s, void *u, const char *m) {
    (void)s, (void)m;
    late_state *st = u;
    st->errors++;
    late_bump(&late.errors);
}

static void late_close(ws *s, void *u, uint16_t code, const char *r, size_t n, bool clean) {
    (void)s, (void)r, (void)n, (void)clean;
    late_state *st = u;
    if (st->closes) st->order_errors++;
    st->closes++;
    st->close_code = code;
    late_bump(&late.closes);
}

static bool late_wait(int *counter, int target, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    pthread_mutex_lock(&late.mu);
    while (*counter < target && now_ms() < deadline) {
        pthread_mutex_unlock(&late.mu);
        sleep_ms(5);
        pthread_mutex_lock(&late.mu);
    }
    bool ok = *counter >= target;
    pthread_mutex_unlock(&late.mu);
    return ok;
}

TEST(late_callbacks_on_500_sockets_lose_no_event) {
    ws **socks = calloc(LATE_N, sizeof *socks);
    late_state *st = calloc(LATE_N, sizeof *st);
    for (int i = 0; i < LATE_N; i++) REQUIRE(ws_new(url("/echo"), NULL, 0, &socks[i]) == WS_OK);
    /* By now many sockets are connected: their open events wait for a callback. */
    sleep_ms(200);
    int waiting = 0;
    for (int i = 0; i < LATE_N; i++) waiting += ws_ready_state(socks[i]) == WS_CONNECTING;
    CHECK_INT(waiting, LATE_N); /* readyState changes when open is dispatched */
    for (int i = 0; i < LATE_N; i++) {
        /* onopen first: open is the first event of a socket. */
        CHECK_OK(ws_set_onopen(socks[i], late_open, &st[i]));
        CHECK_OK(ws_set_onmessage(socks[i], late_message, &st[i]));
        CHECK_OK(ws_set_onerror(socks[i], late_error, &st[i]));
        CHECK_OK(ws_set_onclose(socks[i], late_close, &st[i]));
    }
    CHECK(late_wait(&late.opens, LATE_N, 30000));
    char msg[32];
    for (int i = 0; i < LATE_N; i++) {
        snprintf(msg, sizeof msg, "m%d", i);
        CHECK_OK(ws_send_text(socks[i], msg));
    }
    CHECK(late_wait(&late.messages, LATE_N, 30000));
    for (int i = 0; i < LATE_N; i++) CHECK_OK(ws_close(socks[i], 1000, NULL, 0));
    CHECK(late_wait(&late.closes, LATE_N, 30000));
    CHECK_INT(late.errors, 0);
    int bad = 0;
    for (int i = 0; i < LATE_N; i++) {
        snprintf(msg, sizeof msg, "m%d", i);
        if (st[i].opens != 1 || st[i].messages != 1 || st[i].closes != 1 || st[i].errors ||
            st[i].order_errors || st[i].close_code != 1000 || strcmp(st[i].last, msg) != 0) {
            if (bad++ < 5)
                test_failf(__FILE__, __LINE__,
                           "socket %d: opens %d messages %d closes %d errors %d order %d "
                           "code %d last %s",
                           i, st[i].opens, st[i].messages, st[i].closes, st[i].errors,
                           st[i].order_errors, st[i].close_code, st[i].last);
        }
    }
    CHECK_INT(bad, 0);
    for (int i = 0; i < LATE_N; i++) CHECK_OK(ws_free(socks[i]));
    free(socks);
    free(st);
}

TEST(late_callbacks_receive_every_waiting_event_in_order) {
    enum { N = 20 };
    ws *push[N], *closing[N];
    rec rp[N], rc[N];
    for (int i = 0; i < N; i++) {
        REQUIRE(ws_new(url("/push?n=5&size=3&type=text"), NULL, 0, &push[i]) == WS_OK);
        REQUIRE(ws_new(url("/close?code=4001&reason=r"), NULL, 0, &closing[i]) == WS_OK);
    }
    /* Everything happens before any callback is set: open, messages, even close. */
    sleep_ms(500);
    for (int i = 0; i < N; i++) {
        rec_init(&rp[i]);
        rec_init(&rc[i]);
        ws_callbacks cp = rec_callbacks(&rp[i]), cc = rec_callbacks(&rc[i]);
        CHECK_OK(ws_set_callbacks(push[i], &cp));
        CHECK_OK(ws_set_callbacks(closing[i], &cc));
    }
    for (int i = 0; i < N; i++) {
        REQUIRE(rec_wait_messages(&rp[i], 6, 5000));
        CHECK_EVENTS(&rp[i], "open,message:text:xxx,message:text:xxx,message:text:xxx,"
                             "message:text:xxx,message:text:xxx,message:text:done");
        REQUIRE(rec_wait_close(&rc[i], 5000));
        CHECK_EVENTS(&rc[i], "open,close:4001:r:clean");
        CHECK_INT(rp[i].bad_state + rp[i].bad_args + rc[i].bad_state + rc[i].bad_args, 0);
        CHECK_OK(ws_free(push[i]));
        CHECK_OK(ws_free(closing[i]));
        rec_destroy(&rp[i]);
        rec_destroy(&rc[i]);
    }
}
