/* The test harness: registration, main, server helpers and the event recorder. */
#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 256

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int test_count;
static int failures;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

void test_register(const char *name, test_fn fn) {
    if (test_count == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        abort();
    }
    tests[test_count].name = name;
    tests[test_count].fn = fn;
    test_count++;
}

void test_failf(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&fail_mu);
    failures++;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&fail_mu);
}

int test_failures(void) {
    pthread_mutex_lock(&fail_mu);
    int n = failures;
    pthread_mutex_unlock(&fail_mu);
    return n;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < test_count; i++) printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s --list | TEST\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < test_count; i++) {
        if (strcmp(tests[i].name, argv[1]) == 0) {
            tests[i].fn();
            /* Every test frees what it created. */
            size_t live = ws_live_handles();
            if (live != 0) test_failf(__FILE__, __LINE__, "%zu handles not freed", live);
            return test_failures() == 0 ? 0 : 1;
        }
    }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}

/* ---- Server helpers ---- */

static int env_int(const char *name) {
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "%s is not set (run the tests with tests/c/run.sh)\n", name);
        exit(2);
    }
    return atoi(v);
}

int server_port(void) { return env_int("WSDOM_TEST_PORT"); }

static __thread char url_ring[16][1024];
static __thread int url_next;

const char *url(const char *path) {
    char *buf = url_ring[url_next++ % 16];
    snprintf(buf, sizeof url_ring[0], "ws://127.0.0.1:%d%s", server_port(), path);
    return buf;
}

const char *tls_url(const char *path) {
    char *buf = url_ring[url_next++ % 16];
    snprintf(buf, sizeof url_ring[0], "wss://localhost:%d%s", env_int("WSDOM_TEST_TLS_PORT"),
             path);
    return buf;
}

const char *tls_ca_path(void) {
    const char *v = getenv("WSDOM_TEST_CA");
    if (!v) {
        fprintf(stderr, "WSDOM_TEST_CA is not set\n");
        exit(2);
    }
    return v;
}

const char *unique_tag(const char *prefix) {
    static int counter;
    static __thread char buf[128];
    snprintf(buf, sizeof buf, "%s-%d-%d", prefix, (int)getpid(),
             __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST));
    return buf;
}

int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

char *http_get(const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)server_port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return NULL;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got <= 0) break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    char *out = strdup(body ? body + 4 : "");
    free(buf);
    return out;
}

char *observed_connection(const char *tag, const char *until, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        char *all = http_get("/observed");
        if (all) {
            char *start = strstr(all, tag);
            if (start) {
                /* The entry starts at the "path" key before the tag... */
                while (start > all && strncmp(start, "{\"path\"", 7) != 0) start--;
                /* ...and ends before the next entry. */
                char *end = strstr(start + 1, "{\"path\"");
                size_t len = end ? (size_t)(end - start) : strlen(start);
                char *entry = strndup(start, len);
                free(all);
                if (strstr(entry, until ? until : "\"finished\":true")) return entry;
                free(entry);
            } else {
                free(all);
            }
        }
        if (now_ms() > deadline) return NULL;
        sleep_ms(20);
    }
}

/* ---- Recorder ---- */

void rec_init(rec *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->close_code = -1;
}

void rec_destroy(rec *r) {
    for (int i = 0; i < r->count; i++) free(r->events[i]);
    free(r->first_text);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void rec_add(rec *r, char *event) {
    if (r->count < REC_MAX_EVENTS)
        r->events[r->count++] = event;
    else
        free(event);
    r->thread = pthread_self();
    pthread_cond_broadcast(&r->cv);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    va_list ap;
    char *out = NULL;
    va_start(ap, f);
    if (vasprintf(&out, f, ap) < 0) out = NULL;
    va_end(ap);
    return out;
}

/* Counts (in r->field) and reports an unexpected observation inside a callback. */
#define FLAG_IF(r, field, cond)                                                     \
    do {                                                                            \
        if (cond) {                                                                 \
            (r)->field++;                                                           \
            fprintf(stderr, "%s:%d: in a callback: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

static void rec_enter(rec *r) {
    FLAG_IF(r, bad_state, __atomic_add_fetch(&r->in_callback, 1, __ATOMIC_SEQ_CST) != 1);
}

static void rec_leave(rec *r) { __atomic_sub_fetch(&r->in_callback, 1, __ATOMIC_SEQ_CST); }

static void on_open(ws *sock, void *userdata) {
    rec *r = userdata;
    rec_enter(r);
    pthread_mutex_lock(&r->mu);
    FLAG_IF(r, bad_state, ws_ready_state(sock) != WS_OPEN);
    snprintf(r->protocol_at_open, sizeof r->protocol_at_open, "%s", ws_protocol(sock));
    r->opens++;
    rec_add(r, strdup("open"));
    bool do_free = r->free_on == 'o';
    if (do_free) r->freed = true;
    pthread_mutex_unlock(&r->mu);
    FLAG_IF(r, bad_args, do_free && ws_free(sock) != WS_OK);
    rec_leave(r);
}

static void on_message(ws *sock, void *userdata, ws_message_type type, const char *data,
                       size_t len) {
    rec *r = userdata;
    rec_enter(r);
    if (r->sleep_in_message_ms) sleep_ms(r->sleep_in_message_ms);
    pthread_mutex_lock(&r->mu);
    int state = ws_ready_state(sock);
    FLAG_IF(r, bad_state, state != WS_OPEN && state != WS_CLOSING);
    FLAG_IF(r, bad_args, data == NULL);
    char *event;
    if (type == WS_MESSAGE_TEXT) {
        FLAG_IF(r, bad_args, data && data[len] != 0); /* text is NUL-terminated */
        event = fmt("message:text:%.*s", (int)(len > 60 ? 60 : len), data ? data : "");
        if (!r->first_text) r->first_text = strndup(data ? data : "", len);
    } else if (type == WS_MESSAGE_BINARY) {
        event = fmt("message:binary:%zu", len);
    } else {
        FLAG_IF(r, bad_args, "unknown message type");
        event = strdup("message:?");
    }
    r->messages++;
    rec_add(r, event);
    bool do_close = r->close_after_messages > 0 && r->messages == r->close_after_messages;
    bool do_free = r->free_on == 'm' && !r->freed;
    if (do_free) r->freed = true;
    pthread_mutex_unlock(&r->mu);
    FLAG_IF(r, bad_args, do_close && ws_close(sock, 1000, "enough", 6) != WS_OK);
    FLAG_IF(r, bad_args, do_free && ws_free(sock) != WS_OK);
    rec_leave(r);
}

static void on_error(ws *sock, void *userdata, const char *message) {
    rec *r = userdata;
    rec_enter(r);
    pthread_mutex_lock(&r->mu);
    FLAG_IF(r, bad_state, ws_ready_state(sock) != WS_CLOSED);
    FLAG_IF(r, bad_args, !message || !*message);
    snprintf(r->error_message, sizeof r->error_message, "%s", message ? message : "");
    r->errors++;
    rec_add(r, strdup("error"));
    pthread_mutex_unlock(&r->mu);
    rec_leave(r);
}

static void on_close(ws *sock, void *userdata, uint16_t code, const char *reason,
                     size_t reason_len, bool was_clean) {
    rec *r = userdata;
    rec_enter(r);
    pthread_mutex_lock(&r->mu);
    FLAG_IF(r, bad_state, ws_ready_state(sock) != WS_CLOSED);
    FLAG_IF(r, bad_args, !reason || reason[reason_len] != 0);
    r->close_code = code;
    r->was_clean = was_clean;
    snprintf(r->close_reason, sizeof r->close_reason, "%.*s", (int)reason_len, reason);
    r->closes++;
    rec_add(r, fmt("close:%u:%.*s:%s", code, (int)reason_len, reason,
                   was_clean ? "clean" : "unclean"));
    bool do_free = r->free_on == 'c';
    if (do_free) r->freed = true;
    pthread_mutex_unlock(&r->mu);
    FLAG_IF(r, bad_args, do_free && ws_free(sock) != WS_OK);
    rec_leave(r);
}

ws_callbacks rec_callbacks(rec *r) {
    ws_callbacks cb = {on_open, on_message, on_error, on_close, r};
    return cb;
}

void rec_set_each(rec *r, ws *sock) {
    CHECK_OK(ws_set_onopen(sock, on_open, r));
    CHECK_OK(ws_set_onmessage(sock, on_message, r));
    CHECK_OK(ws_set_onerror(sock, on_error, r));
    CHECK_OK(ws_set_onclose(sock, on_close, r));
}

static bool rec_wait(rec *r, int timeout_ms, bool (*done)(rec *, int), int arg) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    bool ok = true;
    while (!done(r, arg)) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &deadline) == ETIMEDOUT) {
            ok = done(r, arg);
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static bool closed(rec *r, int arg) { return r->closes > arg - 1; }
static bool counted(rec *r, int arg) { return r->count >= arg; }
static bool messaged(rec *r, int arg) { return r->messages >= arg; }

bool rec_wait_close(rec *r, int timeout_ms) { return rec_wait(r, timeout_ms, closed, 1); }
bool rec_wait_count(rec *r, int n, int timeout_ms) { return rec_wait(r, timeout_ms, counted, n); }
bool rec_wait_messages(rec *r, int n, int timeout_ms) {
    return rec_wait(r, timeout_ms, messaged, n);
}

char *rec_joined(rec *r) {
    pthread_mutex_lock(&r->mu);
    size_t len = 1;
    for (int i = 0; i < r->count; i++) len += strlen(r->events[i]) + 1;
    char *out = malloc(len);
    out[0] = 0;
    for (int i = 0; i < r->count; i++) {
        if (i) strcat(out, ",");
        strcat(out, r->events[i]);
    }
    pthread_mutex_unlock(&r->mu);
    return out;
}

ws *open_recorded(const char *u, const ws_options *opts, rec *r) {
    ws *sock = NULL;
    ws_callbacks cb = rec_callbacks(r);
    ws_result res = ws_new_with_options(u, NULL, 0, opts, &cb, &sock);
    if (res != WS_OK)
        test_failf(__FILE__, __LINE__, "ws_new_with_options(%s) returned %s: %s", u,
                   ws_result_name(res), ws_last_error_message());
    return sock;
}
