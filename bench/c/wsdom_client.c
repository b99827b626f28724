/* wsdom from C, used the way include/wsdom.h shows: callbacks on the library's event thread
 * (the default), the next message sent from inside onmessage (a direct write on that thread).
 * Streaming sends come from the main thread and respect ws_buffered_amount, as browser code
 * does. Command line and output as every client (see bench/src/lib.rs). */
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
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    fflush(stdout);
    _exit(0);
}
