/* Shared helpers of the C reliability programs in tests/reliability/c/.
 *
 * Servers come from the environment (tests/reliability/run.sh starts them):
 *   WSDOM_TEST_PORT   the scenario server (wsdom-testserver), ws://127.0.0.1:PORT
 *   WSDOM_FAULT_PORT  the fault server (tests/reliability/faultserver.py)
 * Each program prints what it measured and exits 0 on success, 1 on failure.
 */
#ifndef WSDOM_REL_H
#define WSDOM_REL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wsdom.h"

static atomic_int rel_failures;

static void rel_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void rel_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    atomic_fetch_add(&rel_failures, 1);
}

#define REL_CHECK(cond, ...)                                 \
    do {                                                     \
        if (!(cond)) {                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            rel_fail(__VA_ARGS__);                           \
        }                                                    \
    } while (0)

static inline double rel_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline void rel_sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

static inline int rel_env_port(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s is not set (run tests/reliability/run.sh)\n", name);
        exit(2);
    }
    return atoi(v);
}

/* A /proc/self/status field in KiB (VmRSS, VmHWM, ...). */
static inline long rel_status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = atol(line + n + 1);
            break;
        }
    }
    fclose(f);
    return kb;
}
static inline long rel_rss_kb(void) { return rel_status_kb("VmRSS"); }
static inline long rel_hwm_kb(void) { return rel_status_kb("VmHWM"); }

/* Resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0). */
static inline void rel_reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static inline int rel_fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static inline uint64_t rel_fnv64(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static inline uint64_t rel_rand(uint64_t *s) { /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

/* ---- One socket's events, with timestamps ---- */

typedef struct {
    atomic_int opened, errored, closed, messages, order_errors;
    double t_open, t_error, t_close;
    int close_code;
    bool was_clean;
    char error[512];
} rel_events;

static inline void rel_on_open(ws *s, void *ud) {
    rel_events *r = ud;
    (void)s;
    r->t_open = rel_now_ms();
    if (atomic_load(&r->closed) || atomic_load(&r->errored) || atomic_load(&r->opened))
        atomic_fetch_add(&r->order_errors, 1);
    atomic_store(&r->opened, 1);
}
static inline void rel_on_message(ws *s, void *ud, ws_message_type t, const char *d, size_t n) {
    rel_events *r = ud;
    (void)s, (void)t, (void)d, (void)n;
    if (atomic_load(&r->closed)) atomic_fetch_add(&r->order_errors, 1);
    atomic_fetch_add(&r->messages, 1);
}
static inline void rel_on_error(ws *s, void *ud, const char *msg) {
    rel_events *r = ud;
    (void)s;
    r->t_error = rel_now_ms();
    snprintf(r->error, sizeof r->error, "%s", msg);
    if (atomic_load(&r->closed) || atomic_load(&r->errored)) atomic_fetch_add(&r->order_errors, 1);
    atomic_store(&r->errored, 1);
}
static inline void rel_on_close(ws *s, void *ud, uint16_t code, const char *reason, size_t len, bool clean) {
    rel_events *r = ud;
    (void)s, (void)reason, (void)len;
    r->close_code = code;
    r->was_clean = clean;
    r->t_close = rel_now_ms();
    if (atomic_load(&r->closed)) atomic_fetch_add(&r->order_errors, 1);
    atomic_store(&r->closed, 1);
}

static inline ws_callbacks rel_callbacks(rel_events *r) {
    ws_callbacks c = {rel_on_open, rel_on_message, rel_on_error, rel_on_close, r};
    return c;
}

/* Waits until `flag` is set or `timeout_ms` passes; returns whether it was set. */
static inline bool rel_wait_flag(atomic_int *flag, double timeout_ms) {
    double end = rel_now_ms() + timeout_ms;
    while (!atomic_load(flag)) {
        if (rel_now_ms() > end) return false;
        rel_sleep_ms(1);
    }
    return true;
}

/* ws_options with a direct connection (no proxy from the environment). */
static inline ws_options *rel_options(void) {
    ws_options *o = NULL;
    if (ws_options_new(&o) != WS_OK) {
        fprintf(stderr, "ws_options_new: %s\n", ws_last_error_message());
        exit(2);
    }
    ws_options_set_proxy(o, "");
    return o;
}

static inline int rel_finish(const char *name) {
    int f = atomic_load(&rel_failures);
    printf("%s: %s\n", name, f ? "FAILED" : "ok");
    return f ? 1 : 0;
}

#endif
