/* Misuse under stress (issue #8, part 6): many threads call the whole API at once, on shared
 * handles, without any locking of their own: sends, closes, getters and callback changes race
 * with ws_free of the same handle on another thread; NULLs, invalid UTF-8, invalid codes and
 * reasons, stale (already freed) handles, double frees, options misuse, manual dispatch from
 * several threads, and callbacks that send, close, free their own socket and create sockets.
 *
 *   misuse SECONDS [THREADS]          e.g. misuse 5 (short form, under ASan), misuse 60
 *
 * The library runs two I/O threads here, so callbacks of different sockets also run at once.
 * Passes when nothing crashed (ASan/LSan watch memory), no thread stalled for 20 s (a watchdog
 * aborts on a deadlock), every call returned one of its documented results (never WS_PANIC),
 * and after freeing everything ws_live_handles() is 0.
 */
#include "rel.h"

#define SLOTS 32
#define MAX_THREADS 16
#define GRAVE 64

static _Atomic(ws *) slots[SLOTS];
/* Options handles are used under the read side; the stale-options checks (which would free
 * a reused address) take the write side. */
static pthread_rwlock_t options_lock = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int stop, progress, created_any;
static atomic_llong calls, stale_frees, results[16];
static int port;
static char urls[6][128];

static const char *url_path[6] = {"/echo", "/echo", "/close?code=4002&after_ms=10",
                                  "/drop?after_ms=10", "/never-handshake", "/push?n=20&size=100"};

/* Checks a result against the allowed set (a bit mask of ws_result values). */
#define ALLOW(r, mask) check_result((r), (mask), __LINE__)
#define B(x) (1u << (x))
static void check_result(ws_result r, unsigned mask, int line) {
    atomic_fetch_add(&calls, 1);
    if ((unsigned)r < 16) atomic_fetch_add(&results[r], 1);
    if (r == WS_PANIC || !(mask & B(r))) {
        rel_fail("line %d: unexpected %s: %s", line, ws_result_name(r), ws_last_error_message());
    }
}

static uint64_t seed_of(void) {
    static atomic_ullong n = 1;
    return 0x5DEECE66DULL * atomic_fetch_add(&n, 1) + 11;
}
static __thread uint64_t rng;
static uint64_t rnd(void) {
    if (!rng) rng = seed_of();
    return rel_rand(&rng);
}

static ws *create(bool in_callback);

/* ---- Callbacks: send, close, free their own socket, create sockets into empty slots ---- */

static void free_own(ws *s) {
    for (int i = 0; i < SLOTS; i++) {
        ws *expected = s;
        if (atomic_compare_exchange_strong(&slots[i], &expected, NULL)) {
            ALLOW(ws_free(s), B(WS_OK) | B(WS_INVALID_HANDLE));
            return;
        }
    }
}

static void cb_open(ws *s, void *ud) {
    (void)ud;
    uint64_t r = rnd();
    if (r % 3 == 0) ALLOW(ws_send_text(s, "hello from onopen"), B(WS_OK) | B(WS_INVALID_HANDLE));
    if (r % 7 == 0) free_own(s);
    if (r % 11 == 0) ALLOW(ws_dispatch(0, NULL), B(WS_INVALID_STATE_ERROR));
    atomic_fetch_add(&progress, 1);
}
static void cb_message(ws *s, void *ud, ws_message_type t, const char *d, size_t n) {
    (void)ud;
    if (t == WS_MESSAGE_TEXT && d[n] != 0) rel_fail("text not NUL-terminated");
    uint64_t r = rnd();
    if (r % 4 == 0) ALLOW(ws_send(s, t, d, n), B(WS_OK) | B(WS_INVALID_HANDLE));
    if (r % 5 == 0) ALLOW(ws_close(s, 3000 + (int)(r % 2000), "cb", 2), B(WS_OK) | B(WS_INVALID_HANDLE));
    if (r % 9 == 0) free_own(s);
    if (r % 13 == 0 && !atomic_load(&stop)) {
        ws *n2 = create(true);
        if (n2) {
            ws *expected = NULL;
            if (!atomic_compare_exchange_strong(&slots[r % SLOTS], &expected, n2))
                ALLOW(ws_free(n2), B(WS_OK));
        }
    }
    atomic_fetch_add(&progress, 1);
}
static void cb_error(ws *s, void *ud, const char *m) {
    (void)ud;
    if (!m) rel_fail("NULL error message");
    if (rnd() % 3 == 0) free_own(s);
}
static void cb_close(ws *s, void *ud, uint16_t code, const char *reason, size_t len, bool clean) {
    (void)ud, (void)clean;
    if (!reason || reason[len] != 0 || code < 1000) rel_fail("bad close event");
    if (ws_ready_state(s) != WS_CLOSED && ws_ready_state(s) != -1) rel_fail("not CLOSED in onclose");
    if (rnd() % 2 == 0) free_own(s);
    atomic_fetch_add(&progress, 1);
}

static ws *create(bool in_callback) {
    uint64_t r = rnd();
    ws_options *o = NULL;
    pthread_rwlock_rdlock(&options_lock);
    ALLOW(ws_options_new(&o), B(WS_OK));
    ws_options_set_proxy(o, "");
    ws_options_set_connect_timeout(o, 300);
    ws_options_set_close_timeout(o, 300);
    if (r & 1) ws_options_set_manual_dispatch(o, true);
    if (r & 2) ws_options_set_deflate(o, false);
    ws_callbacks cb = {cb_open, cb_message, cb_error, cb_close, NULL};
    ws *s = NULL;
    const char *protos[] = {"chat", "v2"};
    ws_result res = ws_new_with_options(urls[(r >> 8) % 6], protos, (r >> 4) % 3, o,
                                        (r & 4) ? &cb : NULL, &s);
    ALLOW(res, B(WS_OK));
    if (res == WS_OK) atomic_store(&created_any, 1);
    ALLOW(ws_options_free(o), B(WS_OK));
    pthread_rwlock_unlock(&options_lock);
    if (res == WS_OK && !(r & 4) && !in_callback) {
        /* Callbacks set after the fact, by any of the setters. */
        if (r & 8)
            ALLOW(ws_set_callbacks(s, &cb), B(WS_OK));
        else {
            ALLOW(ws_set_onopen(s, cb_open, NULL), B(WS_OK));
            ALLOW(ws_set_onmessage(s, cb_message, NULL), B(WS_OK));
            ALLOW(ws_set_onclose(s, cb_close, NULL), B(WS_OK));
            ALLOW(ws_set_onerror(s, cb_error, NULL), B(WS_OK));
        }
    }
    return res == WS_OK ? s : NULL;
}

/* ---- The calling threads ---- */

static void null_calls(void) {
    ws *out = (ws *)1;
    ALLOW(ws_new(NULL, NULL, 0, &out), B(WS_NULL_ARGUMENT));
    if (out != NULL) rel_fail("*out not NULL after a failed ws_new");
    ALLOW(ws_new(urls[0], NULL, 0, NULL), B(WS_NULL_ARGUMENT));
    ALLOW(ws_new(urls[0], NULL, 2, &out), B(WS_NULL_ARGUMENT));
    const char *pnull[] = {"a", NULL};
    ALLOW(ws_new(urls[0], pnull, 2, &out), B(WS_NULL_ARGUMENT));
    ALLOW(ws_new("ws://\xc3\x28/", NULL, 0, &out), B(WS_INVALID_UTF8));
    ALLOW(ws_new("ws://h/#f", NULL, 0, &out), B(WS_SYNTAX_ERROR));
    ALLOW(ws_send(NULL, WS_MESSAGE_TEXT, "x", 1), B(WS_NULL_ARGUMENT));
    ALLOW(ws_send_text(NULL, NULL), B(WS_NULL_ARGUMENT));
    ALLOW(ws_send_binary(NULL, NULL, 0), B(WS_NULL_ARGUMENT));
    ALLOW(ws_close(NULL, 1000, NULL, 0), B(WS_NULL_ARGUMENT));
    ALLOW(ws_free(NULL), B(WS_OK));
    ALLOW(ws_set_onopen(NULL, NULL, NULL), B(WS_NULL_ARGUMENT));
    ALLOW(ws_set_callbacks(NULL, NULL), B(WS_NULL_ARGUMENT));
    ALLOW(ws_options_new(NULL), B(WS_NULL_ARGUMENT));
    ALLOW(ws_options_free(NULL), B(WS_OK));
    ALLOW(ws_options_add_header(NULL, "a", "b"), B(WS_NULL_ARGUMENT));
    ALLOW(ws_options_set_proxy(NULL, NULL), B(WS_NULL_ARGUMENT));
    ALLOW(ws_event_fd(NULL), B(WS_NULL_ARGUMENT));
    if (ws_ready_state(NULL) != -1 || ws_buffered_amount(NULL) != 0 || !ws_url(NULL) ||
        ws_url(NULL)[0] || !ws_protocol(NULL) || !ws_extensions(NULL))
        rel_fail("getters on NULL");
    if (!ws_result_name(-5) || !ws_last_error_message() || !ws_version()) rel_fail("strings");
}

static void options_misuse(void) {
    ws_options *o = NULL;
    pthread_rwlock_wrlock(&options_lock);
    ALLOW(ws_options_new(&o), B(WS_OK));
    ALLOW(ws_options_add_header(o, "Host", "x"), B(WS_SYNTAX_ERROR));
    ALLOW(ws_options_add_header(o, "X-A", "a\r\nb"), B(WS_SYNTAX_ERROR));
    ALLOW(ws_options_add_header(o, "X-\xff", "v"), B(WS_INVALID_UTF8));
    ALLOW(ws_options_set_connect_timeout(o, 0), B(WS_INVALID_ARGUMENT));
    ALLOW(ws_options_set_max_message_size(o, 0), B(WS_INVALID_ARGUMENT));
    ALLOW(ws_options_set_proxy(o, "gopher://x"), B(WS_SYNTAX_ERROR));
    ALLOW(ws_options_set_base_url(o, "\xfe"), B(WS_INVALID_UTF8));
    ALLOW(ws_options_free(o), B(WS_OK));
    /* Freed: every call reports it, a second free too. */
    ALLOW(ws_options_free(o), B(WS_INVALID_HANDLE));
    ALLOW(ws_options_set_deflate(o, true), B(WS_INVALID_HANDLE));
    ws *out = NULL;
    ALLOW(ws_new_with_options(urls[0], NULL, 0, o, NULL, &out), B(WS_INVALID_HANDLE));
    pthread_rwlock_unlock(&options_lock);
}

static void *worker(void *arg) {
    (void)arg;
    ws *grave[GRAVE] = {0};
    int ngrave = 0;
    while (!atomic_load(&stop)) {
        uint64_t r = rnd();
        int i = (int)((r >> 8) % SLOTS);
        ws *s = atomic_load(&slots[i]); /* may be freed by another thread at any moment */
        const unsigned live_or_gone = B(WS_OK) | B(WS_INVALID_HANDLE) | B(WS_INVALID_STATE_ERROR);
        switch (r % 16) {
        case 0:
        case 1: { /* create into a slot, freeing what was there */
            ws *n = create(false);
            ws *old = atomic_exchange(&slots[i], n);
            if (old) {
                ws_result fr = ws_free(old);
                ALLOW(fr, B(WS_OK) | B(WS_INVALID_HANDLE));
                if (fr == WS_INVALID_HANDLE) atomic_fetch_add(&stale_frees, 1);
                if (ngrave < GRAVE) grave[ngrave++] = old;
            }
            break;
        }
        case 2: { /* free */
            ws *old = atomic_exchange(&slots[i], NULL);
            if (old) {
                ws_result fr = ws_free(old);
                ALLOW(fr, B(WS_OK) | B(WS_INVALID_HANDLE));
                if (ngrave < GRAVE) grave[ngrave++] = old;
            }
            break;
        }
        case 3:
        case 4: {
            char msg[300];
            size_t n = (size_t)(r >> 20) % sizeof msg;
            memset(msg, 'a' + (int)(r % 26), n);
            ALLOW(ws_send(s, (r & 0x100) ? WS_MESSAGE_TEXT : WS_MESSAGE_BINARY, msg, n),
                  live_or_gone | (s ? 0 : B(WS_NULL_ARGUMENT)));
            break;
        }
        case 5:
            ALLOW(ws_send(s, WS_MESSAGE_TEXT, "bad \xc0\xaf", 6),
                  B(WS_INVALID_UTF8) | B(WS_INVALID_HANDLE) | B(WS_NULL_ARGUMENT));
            ALLOW(ws_send(s, 99, "x", 1), B(WS_INVALID_ARGUMENT) | B(WS_INVALID_HANDLE) | B(WS_NULL_ARGUMENT));
            ALLOW(ws_send(s, WS_MESSAGE_BINARY, NULL, 3), B(WS_NULL_ARGUMENT) | B(WS_INVALID_HANDLE));
            break;
        case 6: {
            static const int codes[] = {WS_CLOSE_NO_CODE, 1000, 3000, 4999, 1001, 1005, 999, 5000};
            int code = codes[(r >> 12) % 8];
            char reason[130];
            size_t rl = (size_t)(r >> 24) % 130;
            memset(reason, 'r', rl);
            unsigned ok = (code == WS_CLOSE_NO_CODE || code == 1000 || (code >= 3000 && code <= 4999))
                              ? (rl > 123 ? B(WS_SYNTAX_ERROR) : B(WS_OK))
                              : B(WS_INVALID_ACCESS_ERROR);
            ALLOW(ws_close(s, code, reason, rl), ok | B(WS_INVALID_HANDLE) | (s ? 0 : B(WS_NULL_ARGUMENT)));
            ALLOW(ws_close(s, 1000, "\xff\xfe", 2), B(WS_INVALID_UTF8) | B(WS_INVALID_HANDLE) | B(WS_NULL_ARGUMENT));
            /* Double close: the second is a no-op. */
            ALLOW(ws_close(s, 1000, NULL, 0), B(WS_OK) | B(WS_INVALID_HANDLE) | B(WS_NULL_ARGUMENT));
            break;
        }
        case 7: {
            int st = ws_ready_state(s);
            if (st < -1 || st > 3) rel_fail("readyState %d", st);
            (void)ws_buffered_amount(s);
            if (!ws_url(s) || !ws_protocol(s) || !ws_extensions(s)) rel_fail("NULL string");
            break;
        }
        case 8: {
            ws_callbacks cb = {cb_open, (r & 0x200) ? cb_message : NULL, cb_error, cb_close, NULL};
            ALLOW(ws_set_callbacks(s, &cb), B(WS_OK) | B(WS_INVALID_HANDLE) | B(WS_NULL_ARGUMENT));
            ALLOW(ws_set_onmessage(s, cb_message, NULL), B(WS_OK) | B(WS_INVALID_HANDLE) | B(WS_NULL_ARGUMENT));
            break;
        }
        case 9:
            null_calls();
            break;
        case 10:
            options_misuse();
            break;
        case 11: { /* stale handles: freed earlier by this thread */
            if (ngrave) {
                ws *g = grave[(r >> 16) % (uint64_t)ngrave];
                /* Stale: WS_INVALID_HANDLE, unless the address now names a newer socket. */
                ALLOW(ws_send_text(g, "stale"), live_or_gone);
                (void)ws_ready_state(g);
                if (!ws_url(g)) rel_fail("NULL url");
            }
            break;
        }
        case 12: { /* double free right away */
            ws *old = atomic_exchange(&slots[i], NULL);
            if (old) {
                ALLOW(ws_free(old), B(WS_OK) | B(WS_INVALID_HANDLE));
                ALLOW(ws_free(old), B(WS_INVALID_HANDLE) | B(WS_OK));
            }
            break;
        }
        case 13:
            ALLOW(ws_dispatch((int)(r >> 40) % 3, NULL), B(WS_OK));
            break;
        case 14: { /* too late once the first socket exists */
            bool before_any = !atomic_load(&created_any);
            ALLOW(ws_set_io_threads(2), B(WS_INVALID_STATE_ERROR) | (before_any ? B(WS_OK) : 0));
            break;
        }
        default:
            rel_sleep_ms(0.2);
            break;
        }
        atomic_fetch_add(&progress, 1);
    }
    return NULL;
}

static void *dispatcher(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        size_t n = 0;
        ALLOW(ws_dispatch(5, &n), B(WS_OK));
        atomic_fetch_add(&progress, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 5;
    int nthreads = argc > 2 ? atoi(argv[2]) : 8;
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    port = rel_env_port("WSDOM_TEST_PORT");
    /* Two I/O threads: callbacks of different sockets run at the same time too. */
    ALLOW(ws_set_io_threads(2), B(WS_OK));
    for (int i = 0; i < 6; i++)
        snprintf(urls[i], sizeof urls[i], "ws://127.0.0.1:%d%s", port, url_path[i]);
    pthread_t th[MAX_THREADS + 2];
    for (int i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 2; i++) pthread_create(&th[nthreads + i], NULL, dispatcher, NULL);
    double end = rel_now_ms() + secs * 1000, last_change = rel_now_ms();
    int last = 0;
    while (rel_now_ms() < end) {
        rel_sleep_ms(100);
        int p = atomic_load(&progress);
        if (p != last) last = p, last_change = rel_now_ms();
        if (rel_now_ms() - last_change > 20000) {
            fprintf(stderr, "FAIL: no progress for 20 s: deadlock\n");
            abort();
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nthreads + 2; i++) pthread_join(th[i], NULL);
    /* Free what the slots hold. Callbacks of sockets not yet freed still run on the I/O
     * threads during a sweep, and one may have created a socket into a slot already swept
     * (it checked `stop` just before it was set), so sweep again until nothing is live: a
     * handle the library leaked is in no slot and stays counted. */
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < SLOTS; i++) {
            ws *old = atomic_exchange(&slots[i], NULL);
            if (old) ALLOW(ws_free(old), B(WS_OK) | B(WS_INVALID_HANDLE));
        }
        ALLOW(ws_dispatch(0, NULL), B(WS_OK));
        if (ws_live_handles() == 0) break;
        rel_sleep_ms(10);
    }
    printf("misuse: %.0f s, %d threads + 2 dispatchers: %lld calls (OK %lld, INVALID_HANDLE %lld, "
           "NULL_ARGUMENT %lld, INVALID_UTF8 %lld, INVALID_STATE %lld, SYNTAX %lld, "
           "INVALID_ACCESS %lld, INVALID_ARGUMENT %lld, PANIC %lld); stale double frees %lld; "
           "handles left %zu\n",
           secs, nthreads, atomic_load(&calls), atomic_load(&results[WS_OK]),
           atomic_load(&results[WS_INVALID_HANDLE]), atomic_load(&results[WS_NULL_ARGUMENT]),
           atomic_load(&results[WS_INVALID_UTF8]), atomic_load(&results[WS_INVALID_STATE_ERROR]),
           atomic_load(&results[WS_SYNTAX_ERROR]), atomic_load(&results[WS_INVALID_ACCESS_ERROR]),
           atomic_load(&results[WS_INVALID_ARGUMENT]), atomic_load(&results[WS_PANIC]),
           atomic_load(&stale_frees), ws_live_handles());
    REL_CHECK(ws_live_handles() == 0, "handles left: %zu", ws_live_handles());
    rel_sleep_ms(500); /* background closes finish before LeakSanitizer looks */
    return rel_finish("misuse");
}
