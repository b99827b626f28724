/* wsdom from C, used the way include/wsdom.h shows: callbacks on the library's event thread
 * (the default), the next message sent from inside onmessage (a direct write on that thread).
 * Streaming sends come from the main thread and respect ws_buffered_amount, as browser code
 * does. The compression workloads (zpush, zsend) set ws_options_set_deflate(true) (the
 * default) explicitly. Command line and output as every client (see bench/src/lib.rs). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "wsdom.h"

#define FILL 0x5a
#define HIGH_WATER (4u << 20)

static const char *mode = "rr";
static const char *base = "ws://127.0.0.1:9001";
static size_t size = 256;
static size_t n = 1000;
static double duration = 2.0;
static size_t warmup = 100;
static unsigned char *payload;
static const char *pool_file;

/* The message pool of zpush/zsend (format: bench/src/lib.rs). */
static struct {
    bool text;
    size_t count;
    const unsigned char **data;
    size_t *len;
    const char *name; /* the file name without ".pool" */
} pool;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
    fprintf(stderr, "error: %s (%s)\n", what, ws_last_error_message());
    exit(1);
}

static void check(ws_result r, const char *what) {
    if (r != WS_OK) die(what);
}

/* Counters the callbacks bump and the main thread waits on. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static atomic_ulong opened, messages, closed, done;
static atomic_bool stop;
static double t_open, t_done, c_open, c_done;

static void bump(atomic_ulong *c) {
    atomic_fetch_add(c, 1);
    pthread_mutex_lock(&mu);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits until *c >= target (60 s at most). */
static void wait_for(atomic_ulong *c, unsigned long target, const char *what) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    pthread_mutex_lock(&mu);
    while (atomic_load(c) < target) {
        if (pthread_cond_timedwait(&cv, &mu, &deadline) != 0) {
            fprintf(stderr, "error: timed out waiting for %s\n", what);
            exit(1);
        }
    }
    pthread_mutex_unlock(&mu);
}

static void on_error(ws *s, void *u, const char *message) {
    (void)s, (void)u;
    fprintf(stderr, "error event: %s\n", message);
    exit(1);
}

static void on_close(ws *s, void *u, uint16_t code, const char *r, size_t rl, bool clean) {
    (void)s, (void)u, (void)code, (void)r, (void)rl, (void)clean;
    bump(&closed);
}

static void on_open_count(ws *s, void *u) {
    (void)s, (void)u;
    bump(&opened);
}

static ws *open_socket(const char *url, const ws_callbacks *cbs) {
    ws *s;
    check(ws_new_with_options(url, NULL, 0, NULL, cbs, &s), "ws_new");
    return s;
}

/* A socket that offers permessage-deflate. */
static ws *open_deflate(const char *url, const ws_callbacks *cbs) {
    ws_options *o;
    ws *s;
    check(ws_options_new(&o), "ws_options_new");
    check(ws_options_set_deflate(o, true), "ws_options_set_deflate");
    check(ws_new_with_options(url, NULL, 0, o, cbs, &s), "ws_new");
    ws_options_free(o);
    return s;
}

static void check_deflate(ws *s) {
    const char *ext = ws_extensions(s);
    if (!ext || !strstr(ext, "permessage-deflate")) {
        fprintf(stderr, "error: permessage-deflate was not negotiated (extensions \"%s\")\n", ext ? ext : "");
        exit(1);
    }
}

static void load_pool(void) {
    if (!pool_file) {
        fprintf(stderr, "error: zpush and zsend need --pool FILE\n");
        exit(2);
    }
    FILE *f = fopen(pool_file, "rb");
    if (!f) {
        perror(pool_file);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (size <= 0 || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "error: cannot read %s\n", pool_file);
        exit(1);
    }
    fclose(f);
    unsigned char *nl = memchr(buf, '\n', (size_t)size);
    char kind[16];
    size_t count = 0;
    if (!nl || sscanf((char *)buf, "wsdom-bench-pool 1 %15s %zu", kind, &count) != 2 || count == 0 ||
        (strcmp(kind, "text") && strcmp(kind, "binary"))) {
        fprintf(stderr, "error: %s is not a pool file\n", pool_file);
        exit(1);
    }
    pool.text = !strcmp(kind, "text");
    pool.count = count;
    pool.data = calloc(count, sizeof *pool.data);
    pool.len = calloc(count, sizeof *pool.len);
    size_t at = (size_t)(nl - buf) + 1;
    for (size_t i = 0; i < count; i++) {
        if (at + 4 > (size_t)size) goto short_file;
        uint32_t len = buf[at] | buf[at + 1] << 8 | buf[at + 2] << 16 | (uint32_t)buf[at + 3] << 24;
        at += 4;
        if (at + len > (size_t)size) goto short_file;
        pool.data[i] = buf + at;
        pool.len[i] = len;
        at += len;
    }
    if (at != (size_t)size) goto short_file;
    const char *slash = strrchr(pool_file, '/');
    char *name = strdup(slash ? slash + 1 : pool_file);
    size_t nlen = strlen(name);
    if (nlen > 5 && !strcmp(name + nlen - 5, ".pool")) name[nlen - 5] = 0;
    pool.name = name;
    return;
short_file:
    fprintf(stderr, "error: %s is cut short or has trailing bytes\n", pool_file);
    exit(1);
}

/* Payload bytes of the first n messages of the pool's cycle. */
static double pool_bytes(size_t count) {
    double pass = 0, rest = 0;
    for (size_t i = 0; i < pool.count; i++) {
        pass += pool.len[i];
        if (i < count % pool.count) rest += pool.len[i];
    }
    return pass * (double)(count / pool.count) + rest;
}

static char url[256];

/* rr: onmessage sends the next message; only the warm-up mark wakes the main thread. */
static void rr_open(ws *s, void *u) {
    (void)u;
    check(ws_send_binary(s, payload, size), "send");
}

static void rr_message(ws *s, void *u, ws_message_type t, const char *data, size_t len) {
    (void)u, (void)t, (void)data;
    if (len != size) {
        fprintf(stderr, "error: echo of %zu bytes, expected %zu\n", len, size);
        exit(1);
    }
    unsigned long c = atomic_fetch_add_explicit(&messages, 1, memory_order_relaxed) + 1;
    if (c == warmup) bump(&done);
    if (!atomic_load_explicit(&stop, memory_order_relaxed)) check(ws_send_binary(s, payload, size), "send");
}

static void rr(void) {
    snprintf(url, sizeof url, "%s/echo", base);
    if (warmup == 0) warmup = 1;
    ws_callbacks cbs = {rr_open, rr_message, on_error, on_close, NULL};
    ws *s = open_socket(url, &cbs);
    wait_for(&done, 1, "warm-up");
    unsigned long c0 = atomic_load(&messages);
    double t0 = now(), k0 = cpu();
    struct timespec d = {(time_t)duration, (long)((duration - (time_t)duration) * 1e9)};
    nanosleep(&d, NULL);
    unsigned long c1 = atomic_load(&messages);
    double secs = now() - t0, k = cpu() - k0;
    atomic_store(&stop, true);
    check(ws_close(s, WS_CLOSE_NO_CODE, NULL, 0), "close");
    wait_for(&closed, 1, "close");
    ws_free(s);
    printf("RESULT {\"rate\": %f, \"count\": %lu, \"seconds\": %f, \"cpu_s\": %f}\n", (c1 - c0) / secs, c1 - c0, secs, k);
}

/* push: count binary messages; the text "done" stops the clock. */
static void push_open(ws *s, void *u) {
    (void)s, (void)u;
    t_open = now();
    c_open = cpu();
}

static void push_message(ws *s, void *u, ws_message_type t, const char *data, size_t len) {
    (void)u;
    if (t == WS_MESSAGE_BINARY) {
        if (len != size) {
            fprintf(stderr, "error: message of %zu bytes, expected %zu\n", len, size);
            exit(1);
        }
        atomic_fetch_add_explicit(&messages, 1, memory_order_relaxed);
    } else if (len == 4 && memcmp(data, "done", 4) == 0) {
        t_done = now();
        c_done = cpu();
        check(ws_close(s, WS_CLOSE_NO_CODE, NULL, 0), "close");
    }
}

static void push(void) {
    snprintf(url, sizeof url, "%s/push?n=%zu&size=%zu", base, n, size);
    ws_callbacks cbs = {push_open, push_message, on_error, on_close, NULL};
    ws *s = open_socket(url, &cbs);
    wait_for(&closed, 1, "close");
    ws_free(s);
    if (atomic_load(&messages) != n) {
        fprintf(stderr, "error: received %lu messages, expected %zu\n", atomic_load(&messages), n);
        exit(1);
    }
    double secs = t_done - t_open, rate = n / secs;
    printf("RESULT {\"rate\": %f, \"mbps\": %f, \"seconds\": %f, \"cpu_s\": %f}\n", rate, rate * size / 1e6, secs, c_done - c_open);
}

/* send: the main thread streams; "done" from the sink stops the clock. */
static void send_message(ws *s, void *u, ws_message_type t, const char *data, size_t len) {
    (void)s, (void)u;
    if (t == WS_MESSAGE_TEXT && len == 4 && memcmp(data, "done", 4) == 0) {
        t_done = now();
        c_done = cpu();
        bump(&done);
    }
}

static void send_rate(void) {
    snprintf(url, sizeof url, "%s/sink?n=%zu", base, n);
    ws_callbacks cbs = {on_open_count, send_message, on_error, on_close, NULL};
    ws *s = open_socket(url, &cbs);
    wait_for(&opened, 1, "open");
    double t0 = now(), k0 = cpu();
    struct timespec pause = {0, 100000};
    for (size_t i = 0; i < n; i++) {
        while (ws_buffered_amount(s) > HIGH_WATER) nanosleep(&pause, NULL);
        check(ws_send_binary(s, payload, size), "send");
    }
    wait_for(&done, 1, "done");
    double secs = t_done - t0, rate = n / secs, k = c_done - k0;
    check(ws_close(s, WS_CLOSE_NO_CODE, NULL, 0), "close");
    wait_for(&closed, 1, "close");
    ws_free(s);
    printf("RESULT {\"rate\": %f, \"mbps\": %f, \"seconds\": %f, \"cpu_s\": %f}\n", rate, rate * size / 1e6, secs, k);
}

/* zpush: check every message against the pool; the text "done" after the n-th stops the clock. */
static void zpush_open(ws *s, void *u) {
    (void)u;
    check_deflate(s);
    t_open = now();
    c_open = cpu();
}

static void zpush_message(ws *s, void *u, ws_message_type t, const char *data, size_t len) {
    (void)u;
    unsigned long i = atomic_load_explicit(&messages, memory_order_relaxed);
    if (i == n) {
        if (t != WS_MESSAGE_TEXT || len != 4 || memcmp(data, "done", 4) != 0) {
            fprintf(stderr, "error: expected done after %zu messages\n", n);
            exit(1);
        }
        t_done = now();
        c_done = cpu();
        check(ws_close(s, WS_CLOSE_NO_CODE, NULL, 0), "close");
        return;
    }
    size_t want = pool.len[i % pool.count];
    bool ok = (t == WS_MESSAGE_TEXT) == pool.text && len == want && (!pool.text || (len > 0 && data[0] == '{'));
    if (!ok) {
        fprintf(stderr, "error: message %lu: type %u, %zu bytes, expected %zu\n", i, (unsigned)t, len, want);
        exit(1);
    }
    atomic_store_explicit(&messages, i + 1, memory_order_relaxed);
}

static void zpush(void) {
    load_pool();
    snprintf(url, sizeof url, "%s/zpush?n=%zu&pool=%s", base, n, pool.name);
    ws_callbacks cbs = {zpush_open, zpush_message, on_error, on_close, NULL};
    ws *s = open_deflate(url, &cbs);
    wait_for(&closed, 1, "close");
    ws_free(s);
    if (atomic_load(&messages) != n || t_done == 0) {
        fprintf(stderr, "error: received %lu messages, expected %zu\n", atomic_load(&messages), n);
        exit(1);
    }
    double secs = t_done - t_open, bytes = pool_bytes(n);
    printf("RESULT {\"rate\": %f, \"mbps\": %f, \"seconds\": %f, \"cpu_s\": %f, \"payload_bytes\": %.0f}\n",
           n / secs, bytes / secs / 1e6, secs, c_done - c_open, bytes);
}

/* zsend: the main thread streams the pool; the sink's "done W R" stops the clock. */
static char done_text[128];

static void zsend_message(ws *s, void *u, ws_message_type t, const char *data, size_t len) {
    (void)s, (void)u;
    t_done = now();
    c_done = cpu();
    size_t k = len < sizeof done_text - 1 ? len : sizeof done_text - 1;
    memcpy(done_text, data, k);
    done_text[k] = 0;
    if (t != WS_MESSAGE_TEXT) done_text[0] = 0;
    bump(&done);
}

static void zsend(void) {
    load_pool();
    snprintf(url, sizeof url, "%s/zsink?n=%zu&pool=%s", base, n, pool.name);
    ws_callbacks cbs = {on_open_count, zsend_message, on_error, on_close, NULL};
    ws *s = open_deflate(url, &cbs);
    wait_for(&opened, 1, "open");
    check_deflate(s);
    ws_message_type type = pool.text ? WS_MESSAGE_TEXT : WS_MESSAGE_BINARY;
    double t0 = now(), k0 = cpu();
    struct timespec pause = {0, 100000};
    for (size_t i = 0; i < n; i++) {
        while (ws_buffered_amount(s) > HIGH_WATER) nanosleep(&pause, NULL);
        size_t j = i % pool.count;
        check(ws_send(s, type, pool.data[j], pool.len[j]), "send");
    }
    wait_for(&done, 1, "done");
    unsigned long long wire = 0, rsv1 = 0;
    if (sscanf(done_text, "done %llu %llu", &wire, &rsv1) != 2) {
        fprintf(stderr, "error: expected 'done W R' from the sink, got \"%s\"\n", done_text);
        exit(1);
    }
    double secs = t_done - t0, k = c_done - k0, bytes = pool_bytes(n);
    check(ws_close(s, WS_CLOSE_NO_CODE, NULL, 0), "close");
    wait_for(&closed, 1, "close");
    ws_free(s);
    printf("RESULT {\"rate\": %f, \"mbps\": %f, \"seconds\": %f, \"cpu_s\": %f, \"payload_bytes\": %.0f, "
           "\"wire_bytes\": %llu, \"rsv1_messages\": %llu}\n",
           n / secs, bytes / secs / 1e6, secs, k, bytes, wire, rsv1);
}

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

static void count_message(ws *s, void *u, ws_message_type t, const char *data, size_t len) {
    (void)s, (void)u, (void)t, (void)data;
    if (len != size) {
        fprintf(stderr, "error: bad echo length\n");
        exit(1);
    }
    unsigned long c = atomic_fetch_add_explicit(&messages, 1, memory_order_relaxed) + 1;
    if (c == n) bump(&done);
}

static void conns(void) {
    snprintf(url, sizeof url, "%s/echo", base);
    ws_callbacks cbs = {on_open_count, count_message, on_error, on_close, NULL};
    /* Warm up the library's thread and the allocator with one connection. */
    ws *w = open_socket(url, &cbs);
    wait_for(&opened, 1, "open");
    check(ws_close(w, WS_CLOSE_NO_CODE, NULL, 0), "close");
    wait_for(&closed, 1, "close");
    ws_free(w);
    atomic_store(&opened, 0);
    atomic_store(&closed, 0);
    long rss0 = rss_bytes();
    ws **all = calloc(n, sizeof *all);
    double t0 = now();
    for (size_t i = 0; i < n; i++) all[i] = open_socket(url, &cbs);
    wait_for(&opened, n, "open");
    double open_s = now() - t0;
    t0 = now();
    for (size_t i = 0; i < n; i++) check(ws_send_binary(all[i], payload, size), "send");
    wait_for(&done, 1, "echo");
    double echo_s = now() - t0;
    long rss1 = rss_bytes();
    for (size_t i = 0; i < n; i++) check(ws_close(all[i], WS_CLOSE_NO_CODE, NULL, 0), "close");
    wait_for(&closed, n, "close");
    for (size_t i = 0; i < n; i++) ws_free(all[i]);
    printf("RESULT {\"rate\": %f, \"open_s\": %f, \"echo_s\": %f, \"rss_per_conn\": %f, "
           "\"rss_before\": %ld, \"rss_after\": %ld}\n",
           n / open_s, open_s, echo_s, (double)(rss1 - rss0) / n, rss0, rss1);
}

static void setup(void) {
    snprintf(url, sizeof url, "%s/echo", base);
    ws_callbacks cbs = {on_open_count, NULL, on_error, on_close, NULL};
    unsigned long k = 0;
    size_t warm = warmup < 20 ? warmup : 20;
    double t0 = 0, k0 = 0;
    unsigned long count = 0;
    for (size_t i = 0;; i++) {
        if (i == warm) t0 = now(), k0 = cpu();
        if (i >= warm && now() - t0 >= duration) break;
        ws *s = open_socket(url, &cbs);
        k++;
        wait_for(&opened, k, "open");
        check(ws_close(s, WS_CLOSE_NO_CODE, NULL, 0), "close");
        wait_for(&closed, k, "close");
        ws_free(s);
        if (i >= warm) count++;
    }
    double secs = now() - t0, used = cpu() - k0;
    printf("RESULT {\"rate\": %f, \"count\": %lu, \"seconds\": %f, \"cpu_s\": %f}\n", count / secs, count, secs, used);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (!strcmp(f, "--mode")) mode = v;
        else if (!strcmp(f, "--url")) base = v;
        else if (!strcmp(f, "--size")) size = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--n")) n = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--duration")) duration = atof(v);
        else if (!strcmp(f, "--warmup")) warmup = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--pool")) pool_file = v;
        else {
            fprintf(stderr, "unknown flag %s\n", f);
            return 2;
        }
    }
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    payload = malloc(size ? size : 1);
    memset(payload, FILL, size);
    if (!strcmp(mode, "rr")) rr();
    else if (!strcmp(mode, "push")) push();
    else if (!strcmp(mode, "send")) send_rate();
    else if (!strcmp(mode, "conns")) conns();
    else if (!strcmp(mode, "setup")) setup();
    else if (!strcmp(mode, "zpush")) zpush();
    else if (!strcmp(mode, "zsend")) zsend();
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    fflush(stdout);
    _exit(0);
}
