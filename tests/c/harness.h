/* A small test harness for the libwsdom C tests.
 *
 * Each TEST(name) registers a test; the binary runs one test per process:
 *   wsdom_tests --list        prints the test names
 *   wsdom_tests NAME          runs one test, exit 0 if it passed
 * tests/c/run.sh runs every test with a time limit and counts the results.
 * The test server's ports come from WSDOM_TEST_PORT, WSDOM_TEST_TLS_PORT and WSDOM_TEST_CA.
 */
#ifndef WSDOM_TEST_HARNESS_H
#define WSDOM_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, strndup, vasprintf, nanosleep with -std=c11 */
#endif

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsdom.h"

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);

#define TEST(name)                                                              \
    static void test_##name(void);                                              \
    __attribute__((constructor)) static void register_##name(void) {            \
        test_register(#name, test_##name);                                      \
    }                                                                           \
    static void test_##name(void)

/* Failures are counted and reported; the test goes on (unless REQUIRE). */
void test_failf(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int test_failures(void);

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) test_failf(__FILE__, __LINE__, "CHECK(%s) failed", #cond); \
    } while (0)

#define REQUIRE(cond)                                                           \
    do {                                                                        \
        if (!(cond)) {                                                          \
            test_failf(__FILE__, __LINE__, "REQUIRE(%s) failed", #cond);        \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_INT(a, b)                                                         \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        if (a_ != b_)                                                           \
            test_failf(__FILE__, __LINE__, "%s == %lld, expected %s == %lld",   \
                       #a, a_, #b, b_);                                         \
    } while (0)

#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *a_ = (a), *b_ = (b);                                        \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                  \
            test_failf(__FILE__, __LINE__, "%s is \"%s\", expected \"%s\"", #a, \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)");                 \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                             \
    do {                                                                        \
        const char *h_ = (hay), *n_ = (needle);                                 \
        if (!h_ || !strstr(h_, n_))                                             \
            test_failf(__FILE__, __LINE__, "%s is \"%s\", expected to contain \"%s\"", \
                       #hay, h_ ? h_ : "(null)", n_);                           \
    } while (0)

/* Checks that `expr` returns `expected` (a ws_result); prints the error message if not. */
#define CHECK_RESULT(expr, expected)                                            \
    do {                                                                        \
        ws_result r_ = (expr);                                                  \
        if (r_ != (expected))                                                   \
            test_failf(__FILE__, __LINE__, "%s returned %s (%s), expected %s",  \
                       #expr, ws_result_name(r_), ws_last_error_message(),      \
                       ws_result_name(expected));                               \
    } while (0)

#define CHECK_OK(expr) CHECK_RESULT(expr, WS_OK)

/* ws://127.0.0.1:PORT<path> (plain) or wss://localhost:TLSPORT<path>, in a per-thread ring of
 * buffers (valid for the next 15 calls on the thread). */
const char *url(const char *path);
const char *tls_url(const char *path);
const char *tls_ca_path(void);
int server_port(void);

/* Time. */
int64_t now_ms(void);
void sleep_ms(int ms);

/* GET /observed?... from the test server; malloc'd body (free it) or NULL. */
char *http_get(const char *path);
/* The JSON object /observed has for the connection whose request path contains `tag`
 * (malloc'd), waiting up to timeout_ms until it contains `until` (or "finished":true if
 * until is NULL). NULL if not seen in time. */
char *observed_connection(const char *tag, const char *until, int timeout_ms);
/* A tag unique to this process and call, for request paths. */
const char *unique_tag(const char *prefix);

/* ---- Event recorder: callbacks that log every event of one socket. ---- */

#define REC_MAX_EVENTS 4096

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *events[REC_MAX_EVENTS]; /* "open", "message:text:hello", "message:binary:3", ... */
    int count;
    int opens, messages, errors, closes;
    int close_code;
    bool was_clean;
    char close_reason[256];
    char error_message[512];
    char protocol_at_open[128];
    char *first_text;    /* the whole first text message (malloc'd) */
    int bad_state;       /* callbacks that saw an unexpected readyState */
    int bad_args;        /* callbacks that got inconsistent arguments */
    pthread_t thread;    /* thread of the last callback */
    /* Optional behaviour: */
    int close_after_messages;  /* ws_close(1000, "enough") after this many messages (>0) */
    int free_on;               /* 'o' free in onopen, 'm' in onmessage, 'c' in onclose */
    bool freed;
    int sleep_in_message_ms;   /* sleep inside onmessage */
    volatile int in_callback;  /* set while a callback runs */
} rec;

void rec_init(rec *r);
void rec_destroy(rec *r);
ws_callbacks rec_callbacks(rec *r);
/* Sets the four callbacks one by one (onopen first). */
void rec_set_each(rec *r, ws *sock);
bool rec_wait_close(rec *r, int timeout_ms);
bool rec_wait_count(rec *r, int events, int timeout_ms);
bool rec_wait_messages(rec *r, int messages, int timeout_ms);
/* The events joined with ','; malloc'd. */
char *rec_joined(rec *r);
/* Checks the recorded events equal `expected` (comma separated). */
#define CHECK_EVENTS(r, expected)                                               \
    do {                                                                        \
        char *j_ = rec_joined(r);                                               \
        if (strcmp(j_, (expected)) != 0)                                        \
            test_failf(__FILE__, __LINE__, "events \"%s\", expected \"%s\"", j_, (expected)); \
        free(j_);                                                               \
    } while (0)

/* Opens `u` with a recorder's callbacks (given to ws_new_with_options) and the options. */
ws *open_recorded(const char *u, const ws_options *opts, rec *r);

#endif
