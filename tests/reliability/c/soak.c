/* Soak (issue #8, part 3): connections churn for a fixed time while RSS is sampled twice a
 * second; memory must not grow.
 *
 *   soak SECONDS [CONCURRENCY]        e.g. soak 20 (short form), soak 300 (stress)
 *
 * CONCURRENCY (default 64) slots each run one connection after another, picking a scenario at
 * random: echo 1-200 messages of 1 B-16 KiB (text or binary, checked byte for byte, in order)
 * with or without permessage-deflate, then close; the server closes (4001); the server drops
 * TCP or resets it; a 404 handshake; freed while connecting; freed while open (1001).
 * Echo traffic goes to the non-recording echo server (WSDOM_BULK_PORT), the other scenarios
 * to the scenario server (WSDOM_TEST_PORT).
 *
 * Criterion: after a warm-up (the first quarter of the run), the peak RSS of the last quarter
 * is at most the peak RSS of the second quarter + max(2 MiB, 5%). RSS is sampled right after
 * malloc_trim(0), so memory the allocator caches after frees does not count as growth (the raw
 * RSS peak is reported too). At the end every handle is
 * freed and the descriptors are back to their count after the first connection.
 */
#include "rel.h"

#include <malloc.h>
#include <math.h>

enum { S_ECHO, S_DEFLATE, S_SERVER_CLOSE, S_DROP, S_RST, S_404, S_FREE_CONNECTING, S_FREE_OPEN,
       S_COUNT };
static const char *NAMES[S_COUNT] = {"echo", "deflate-echo", "server-close", "drop", "rst",
                                     "404", "free-connecting", "free-open"};

typedef struct {
    ws *sock;
    int scenario;
    int target, sent, received;
    uint64_t seed;
    uint32_t len[200];
    uint64_t sum[200];
    uint8_t type[200];
    atomic_int opened, closed, errored;
    int code;
    bool clean;
    int bad;
    double t_start;
} slot;

static atomic_llong messages, bytes, connections, failures_by[S_COUNT];
static unsigned char *bufs; /* callbacks run on the one event thread */

static void send_next(slot *s, ws *sock) {
    uint64_t r = rel_rand(&s->seed);
    size_t n = 1 + (size_t)(exp((double)(r >> 11) / 9007199254740992.0 * log(16384.0)));
    if (n > 16384) n = 16384;
    ws_message_type t = (r & 1) ? WS_MESSAGE_BINARY : WS_MESSAGE_TEXT;
    for (size_t i = 0; i < n; i++) bufs[i] = (unsigned char)(0x20 + rel_rand(&s->seed) % 95);
    s->len[s->sent] = (uint32_t)n;
    s->type[s->sent] = (uint8_t)t;
    s->sum[s->sent] = rel_fnv64(bufs, n);
    s->sent++;
    if (ws_send(sock, t, bufs, n) != WS_OK) s->bad++;
}

static void on_open(ws *sock, void *ud) {
    slot *s = ud;
    atomic_store(&s->opened, 1);
    if (s->scenario == S_ECHO || s->scenario == S_DEFLATE)
        for (int i = 0; i < 4 && s->sent < s->target; i++) send_next(s, sock);
}

static void on_message(ws *sock, void *ud, ws_message_type t, const char *d, size_t n) {
    slot *s = ud;
    int k = s->received++;
    atomic_fetch_add(&messages, 1);
    atomic_fetch_add(&bytes, (long long)n);
    if (k >= s->sent || n != s->len[k] || t != s->type[k] || rel_fnv64(d, n) != s->sum[k]) {
        s->bad++;
        return;
    }
    if (s->sent < s->target)
        send_next(s, sock);
    else if (s->received == s->target)
        ws_close(sock, 1000, NULL, 0);
}

static void on_error(ws *sock, void *ud, const char *m) {
    (void)sock, (void)m;
    atomic_store(&((slot *)ud)->errored, 1);
}

static void on_close(ws *sock, void *ud, uint16_t code, const char *r, size_t n, bool clean) {
    slot *s = ud;
    (void)sock, (void)r, (void)n;
    s->code = code;
    s->clean = clean;
    atomic_store(&s->closed, 1);
}

static char url_bulk[128], url_bulk_deflate[128], url_close[128], url_drop[128], url_rst[128],
    url_404[128];
static uint64_t rng = 42;

static void launch(slot *s) {
    int scenario = (int)(rel_rand(&rng) % 10);
    if (scenario >= S_COUNT) scenario = S_ECHO; /* echo twice as often */
    memset(s, 0, sizeof *s);
    s->scenario = scenario;
    s->seed = rel_rand(&rng) | 1;
    s->target = 1 + (int)(rel_rand(&rng) % 200);
    s->t_start = rel_now_ms();
    const char *url = url_bulk;
    switch (scenario) {
    case S_DEFLATE: url = url_bulk_deflate; break;
    case S_SERVER_CLOSE: url = url_close; break;
    case S_DROP: url = url_drop; break;
    case S_RST: url = url_rst; break;
    case S_404: url = url_404; break;
    default: break;
    }
    ws_options *o = rel_options();
    ws_callbacks cb = {on_open, on_message, on_error, on_close, s};
    if (ws_new_with_options(url, NULL, 0, o, &cb, &s->sock) != WS_OK) {
        rel_fail("ws_new: %s", ws_last_error_message());
        exit(1);
    }
    ws_options_free(o);
    atomic_fetch_add(&connections, 1);
    if (scenario == S_FREE_CONNECTING) {
        ws_free(s->sock);
        s->sock = NULL;
    }
}

/* True when the slot's connection is over (and checks its outcome). */
static bool finished(slot *s) {
    bool ok = true;
    switch (s->scenario) {
    case S_FREE_CONNECTING:
        return true;
    case S_FREE_OPEN:
        if (!atomic_load(&s->opened)) return false;
        return true; /* ws_free below: closes with 1001 in the background */
    case S_ECHO:
    case S_DEFLATE:
        if (!atomic_load(&s->closed)) return false;
        ok = s->clean && s->code == 1000 && s->received == s->target && !s->bad;
        break;
    case S_SERVER_CLOSE:
        if (!atomic_load(&s->closed)) return false;
        ok = s->clean && s->code == 4001;
        break;
    default: /* drop, rst, 404 */
        if (!atomic_load(&s->closed)) return false;
        ok = s->code == 1006 && !s->clean && atomic_load(&s->errored);
        break;
    }
    if (!ok && atomic_fetch_add(&failures_by[s->scenario], 1) < 3)
        rel_fail("%s: close %d clean=%d received %d/%d bad %d", NAMES[s->scenario], s->code,
                 s->clean, s->received, s->target, s->bad);
    return true;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 20;
    int conc = argc > 2 ? atoi(argv[2]) : 64;
    int port = rel_env_port("WSDOM_TEST_PORT"), bulk = rel_env_port("WSDOM_BULK_PORT");
    snprintf(url_bulk, sizeof url_bulk, "ws://127.0.0.1:%d/echo", bulk);
    snprintf(url_bulk_deflate, sizeof url_bulk_deflate, "ws://127.0.0.1:%d/deflate", bulk);
    snprintf(url_close, sizeof url_close, "ws://127.0.0.1:%d/close?code=4001&after_ms=20", port);
    snprintf(url_drop, sizeof url_drop, "ws://127.0.0.1:%d/drop?after_ms=20", port);
    snprintf(url_rst, sizeof url_rst, "ws://127.0.0.1:%d/rst-after-open", port);
    snprintf(url_404, sizeof url_404, "ws://127.0.0.1:%d/raw?status=404", port);
    bufs = malloc(16384);

    /* The first connection creates the library's threads and descriptors. */
    slot first;
    memset(&first, 0, sizeof first);
    first.scenario = S_ECHO;
    first.target = 1;
    first.seed = 7;
    {
        ws_options *o = rel_options();
        ws_callbacks cb = {on_open, on_message, on_error, on_close, &first};
        ws_new_with_options(url_bulk, NULL, 0, o, &cb, &first.sock);
        ws_options_free(o);
        REL_CHECK(rel_wait_flag(&first.closed, 10000) && first.clean, "first connection");
        ws_free(first.sock);
        rel_sleep_ms(200);
    }
    int fds_base = rel_fd_count();

    slot *slots = calloc((size_t)conc, sizeof(slot));
    for (int i = 0; i < conc; i++) launch(&slots[i]);
    int max_samples = (int)(secs * 2) + 8, nsamples = 0;
    long *rss = calloc((size_t)max_samples, sizeof(long)), raw_peak = 0;
    double t0 = rel_now_ms(), next_sample = t0 + 500, end = t0 + secs * 1000;
    while (rel_now_ms() < end) {
        for (int i = 0; i < conc; i++) {
            slot *s = &slots[i];
            if (finished(s)) {
                ws_free(s->sock);
                launch(s);
            } else if (rel_now_ms() - s->t_start > 30000) {
                rel_fail("a %s connection did not finish in 30 s", NAMES[s->scenario]);
                s->t_start = rel_now_ms();
            }
        }
        if (rel_now_ms() >= next_sample && nsamples < max_samples) {
            long raw = rel_rss_kb();
            if (raw > raw_peak) raw_peak = raw;
            malloc_trim(0);
            rss[nsamples++] = rel_rss_kb();
            next_sample += 500;
        }
        rel_sleep_ms(1);
    }
    /* Let every connection finish, then free everything. */
    double drain_end = rel_now_ms() + 30000;
    for (int i = 0; i < conc; i++) {
        while (!finished(&slots[i]) && rel_now_ms() < drain_end) rel_sleep_ms(1);
        ws_free(slots[i].sock);
    }
    int fds = rel_fd_count();
    for (int i = 0; i < 500 && fds > fds_base; i++) {
        rel_sleep_ms(10);
        fds = rel_fd_count();
    }

    /* The memory criterion. */
    int q = nsamples / 4;
    long warm = 0, last = 0;
    for (int i = q; i < 2 * q; i++) warm = rss[i] > warm ? rss[i] : warm;
    for (int i = nsamples - q; i < nsamples; i++) last = rss[i] > last ? rss[i] : last;
    long allowed = warm + (warm / 20 > 2048 ? warm / 20 : 2048);
    /* Least-squares slope over the samples after the warm-up, in KiB per minute. */
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = q; i < nsamples; i++, m++) {
        double x = i * 0.5, y = (double)rss[i];
        sx += x, sy += y, sxx += x * x, sxy += x * y;
    }
    double slope = m > 1 ? (m * sxy - sx * sy) / (m * sxx - sx * sx) * 60 : 0;
    long long fails = 0;
    for (int i = 0; i < S_COUNT; i++) fails += atomic_load(&failures_by[i]);
    printf("soak: %.0f s, %d slots: %lld connections, %lld messages echoed (%.1f MiB), %lld failed "
           "outcomes; RSS samples %d: first %ld KiB, second-quarter peak %ld KiB, last-quarter peak "
           "%ld KiB (allowed %ld), slope %.0f KiB/min, raw RSS peak %ld KiB; handles left %zu; "
           "descriptors %d (base %d)\n",
           secs, conc, atomic_load(&connections), atomic_load(&messages),
           atomic_load(&bytes) / 1048576.0, fails, nsamples, nsamples ? rss[0] : 0, warm, last,
           allowed, slope, raw_peak, ws_live_handles(), fds, fds_base);
    REL_CHECK(nsamples >= 8, "enough samples");
    REL_CHECK(last <= allowed, "RSS grew: last-quarter peak %ld KiB > %ld KiB", last, allowed);
    REL_CHECK(fails == 0, "every connection ended as its scenario says");
    REL_CHECK(ws_live_handles() == 0, "handles left");
    REL_CHECK(fds <= fds_base, "descriptors: %d > %d", fds, fds_base);
    free(rss);
    free(slots);
    return rel_finish("soak");
}
