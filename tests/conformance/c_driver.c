/*
 * The C conformance driver: runs the scenario table through libwsdom's C API.
 *
 *   c_driver --plan PLAN.jsonl --server NAME --out TRACE.jsonl [--jobs N] -- SERVER_CMD [ARGS...]
 *
 * PLAN.jsonl is `tests/scenarios/scenarios.py plan --lang c --server NAME` (one JSON object per
 * line, matrices expanded, text and bytes as hex). SERVER_CMD starts a server that prints
 * `LISTENING <port>` and runs until its stdin reaches EOF (wsdom-testserver, or one of the
 * external servers). Each of the N worker processes (default 2) starts its own server, so the
 * scenario server's observation log (`GET /observed`) belongs to one scenario at a time, and
 * runs scenarios one after the other on its own thread with manual dispatch: ws_event_fd /
 * ws_dispatch is the event loop, timers fire between events, exactly like the Rust driver
 * (core/tests/conformance.rs). The trace (tests/scenarios/README.md, "The trace format") goes
 * to TRACE.jsonl; `scenarios.py compare TRACE.jsonl` checks it against the table.
 *
 * WSDOM_SCENARIOS=text runs only the ids containing `text` (compare then reports the others as
 * not run). Exit status: 0 when every worker finished (mismatches are compare's business), 1
 * if a worker crashed or hung, 2 on usage errors.
 */
#define _GNU_SOURCE
#include <wsdom.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DATA_INLINE_MAX 1024
#define MAX_SOCKETS 64
#define UNSUPPORTED_FIELDS "[\"binary_type\", \"origin\"]"

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("c_driver: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

/* ---- growable strings ---------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_grow(sbuf *b, size_t more) {
    if (b->len + more + 1 <= b->cap) return;
    b->cap = (b->len + more + 1) * 2;
    b->p = xrealloc(b->p, b->cap);
}
static void sb_add(sbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    sb_grow(b, 64);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) die("vsnprintf failed");
    if ((size_t)n >= b->cap - b->len) {
        sb_grow(b, (size_t)n);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}
/* A JSON string literal of `n` bytes (UTF-8 passed through, control characters escaped). */
static void sb_jstr(sbuf *b, const char *s, size_t n) {
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_add(b, e, 2);
        } else if (c < 0x20) {
            sb_printf(b, "\\u%04x", c);
        } else {
            sb_add(b, (const char *)&c, 1);
        }
    }
    sb_add(b, "\"", 1);
}
static void sb_jcstr(sbuf *b, const char *s) { sb_jstr(b, s, strlen(s)); }
static void sb_hex(sbuf *b, const unsigned char *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    sb_grow(b, 2 * n);
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = digits[p[i] >> 4];
        b->p[b->len++] = digits[p[i] & 15];
    }
    b->p[b->len] = 0;
}

/* ---- a small JSON reader (the plan lines and GET /observed) -------------------------- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;
typedef struct jval {
    jtype t;
    int b;
    double num;
    char *s; /* J_STR: bytes (WTF-8 for lone surrogates), NUL-terminated, slen long */
    size_t slen;
    size_t n;           /* J_ARR / J_OBJ: number of items */
    struct jval *items; /* the values */
    char **keys;        /* J_OBJ: the keys */
} jval;

typedef struct {
    const char *p, *end;
    int err;
} jparser;

static void j_ws(jparser *jp) {
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}
static void utf8_put(sbuf *b, unsigned cp) {
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        o[0] = (char)(0xF0 | cp >> 18);
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sb_add(b, o, n);
}
static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}
static int j_string(jparser *jp, sbuf *out) {
    jp->p++; /* the opening quote */
    while (jp->p < jp->end && *jp->p != '"') {
        if (*jp->p != '\\') {
            const char *q = jp->p;
            while (q < jp->end && *q != '"' && *q != '\\') q++;
            sb_add(out, jp->p, (size_t)(q - jp->p));
            jp->p = q;
            continue;
        }
        if (jp->end - jp->p < 2) return -1;
        char c = jp->p[1];
        jp->p += 2;
        switch (c) {
        case '"': case '\\': case '/': sb_add(out, &c, 1); break;
        case 'b': sb_add(out, "\b", 1); break;
        case 'f': sb_add(out, "\f", 1); break;
        case 'n': sb_add(out, "\n", 1); break;
        case 'r': sb_add(out, "\r", 1); break;
        case 't': sb_add(out, "\t", 1); break;
        case 'u': {
            unsigned cp, lo;
            if (jp->end - jp->p < 4 || hex4(jp->p, &cp)) return -1;
            jp->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && jp->end - jp->p >= 6 && jp->p[0] == '\\' &&
                jp->p[1] == 'u' && !hex4(jp->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                jp->p += 6;
            }
            utf8_put(out, cp); /* a lone surrogate becomes WTF-8 */
            break;
        }
        default: return -1;
        }
    }
    if (jp->p >= jp->end) return -1;
    jp->p++;
    return 0;
}
static void j_value(jparser *jp, jval *v) {
    memset(v, 0, sizeof *v);
    j_ws(jp);
    if (jp->p >= jp->end) {
        jp->err = 1;
        return;
    }
    char c = *jp->p;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v->t = obj ? J_OBJ : J_ARR;
        jp->p++;
        size_t cap = 0;
        for (;;) {
            j_ws(jp);
            if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) {
                jp->p++;
                return;
            }
            if (v->n) {
                if (jp->p >= jp->end || *jp->p != ',') break;
                jp->p++;
                j_ws(jp);
            }
            if (v->n == cap) {
                cap = cap ? cap * 2 : 4;
                v->items = xrealloc(v->items, cap * sizeof *v->items);
                if (obj) v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
            }
            if (obj) {
                sbuf k = {0};
                if (jp->p >= jp->end || *jp->p != '"' || j_string(jp, &k)) break;
                v->keys[v->n] = k.p ? k.p : calloc(1, 1);
                j_ws(jp);
                if (jp->p >= jp->end || *jp->p != ':') break;
                jp->p++;
            }
            j_value(jp, &v->items[v->n]);
            v->n++;
            if (jp->err) return;
        }
        jp->err = 1;
    } else if (c == '"') {
        sbuf s = {0};
        v->t = J_STR;
        if (j_string(jp, &s)) jp->err = 1;
        v->s = s.p ? s.p : calloc(1, 1);
        v->slen = s.len;
    } else if (!strncmp(jp->p, "true", 4) || !strncmp(jp->p, "false", 5)) {
        v->t = J_BOOL;
        v->b = c == 't';
        jp->p += v->b ? 4 : 5;
    } else if (!strncmp(jp->p, "null", 4)) {
        v->t = J_NULL;
        jp->p += 4;
    } else {
        char *e;
        v->t = J_NUM;
        v->num = strtod(jp->p, &e);
        if (e == jp->p) jp->err = 1;
        jp->p = e;
    }
}
static int j_parse(const char *s, size_t n, jval *out) {
    jparser jp = {s, s + n, 0};
    j_value(&jp, out);
    return jp.err ? -1 : 0;
}
static void j_free(jval *v) {
    for (size_t i = 0; i < v->n; i++) {
        j_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
}
static const jval *j_get(const jval *o, const char *key) {
    if (!o || o->t != J_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->items[i];
    return NULL;
}
static const char *j_str(const jval *o, const char *key) {
    const jval *v = j_get(o, key);
    return v && v->t == J_STR ? v->s : NULL;
}
static double j_num(const jval *o, const char *key, double dflt) {
    const jval *v = j_get(o, key);
    return v && v->t == J_NUM ? v->num : dflt;
}
static void j_write(sbuf *b, const jval *v) {
    switch (v->t) {
    case J_NULL: sb_puts(b, "null"); break;
    case J_BOOL: sb_puts(b, v->b ? "true" : "false"); break;
    case J_NUM: sb_printf(b, "%.17g", v->num); break;
    case J_STR: sb_jstr(b, v->s, v->slen); break;
    case J_ARR:
    case J_OBJ:
        sb_puts(b, v->t == J_OBJ ? "{" : "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_puts(b, ",");
            if (v->t == J_OBJ) {
                sb_jcstr(b, v->keys[i]);
                sb_puts(b, ":");
            }
            j_write(b, &v->items[i]);
        }
        sb_puts(b, v->t == J_OBJ ? "}" : "]");
        break;
    }
}

/* ---- small helpers --------------------------------------------------------------------- */

static unsigned char *hex_decode(const char *h, size_t *len) {
    size_t n = h ? strlen(h) / 2 : 0;
    unsigned char *out = xrealloc(NULL, n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        char pair[5] = {'0', '0', h[2 * i], h[2 * i + 1], 0};
        if (hex4(pair, &v)) die("bad hex in the plan");
        out[i] = (unsigned char)v;
    }
    out[n] = 0;
    *len = n;
    return out;
}

static const char *fnv1a64(const void *data, size_t n, char out[17]) {
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return out;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* A port nobody listens on (bound, then released). */
static int dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &al))
        die("no ephemeral port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* `s` with {base}, {host}, {port} and {dead_port} replaced. */
static char *subst(const char *s, int port, int dport) {
    sbuf b = {0};
    sb_puts(&b, "");
    while (*s) {
        if (!strncmp(s, "{base}", 6)) {
            sb_printf(&b, "ws://127.0.0.1:%d", port);
            s += 6;
        } else if (!strncmp(s, "{host}", 6)) {
            sb_puts(&b, "127.0.0.1");
            s += 6;
        } else if (!strncmp(s, "{port}", 6)) {
            sb_printf(&b, "%d", port);
            s += 6;
        } else if (!strncmp(s, "{dead_port}", 11)) {
            sb_printf(&b, "%d", dport);
            s += 11;
        } else {
            sb_add(&b, s++, 1);
        }
    }
    return b.p;
}

/* The DOMException name of a ws_result, as the trace writes it. */
static const char *result_name(ws_result r) {
    switch (r) {
    case WS_OK: return "ok";
    case WS_SYNTAX_ERROR: return "SyntaxError";
    case WS_INVALID_STATE_ERROR: return "InvalidStateError";
    case WS_INVALID_ACCESS_ERROR: return "InvalidAccessError";
    default: return ws_result_name(r); /* a C-only error: never expected, so a mismatch */
    }
}

/* ---- the scenario server's observation log (GET /observed over plain HTTP) ------------ */

static char *http_get(int port, const char *target, size_t *body_len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    sbuf req = {0};
    sb_printf(&req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", target, port);
    if (write(fd, req.p, req.len) != (ssize_t)req.len) {
        close(fd);
        free(req.p);
        return NULL;
    }
    free(req.p);
    sbuf resp = {0};
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) sb_add(&resp, buf, (size_t)n);
    close(fd);
    char *body = resp.p ? strstr(resp.p, "\r\n\r\n") : NULL;
    if (!body) {
        free(resp.p);
        return NULL;
    }
    body += 4;
    *body_len = resp.len - (size_t)(body - resp.p);
    char *out = xrealloc(NULL, *body_len + 1);
    memcpy(out, body, *body_len);
    out[*body_len] = 0;
    free(resp.p);
    return out;
}

/* Waits until `count` connections finished (at most 3 s, as the Rust driver), then appends
 * the `observed` entry's fields to `out`. */
static void observed_entry(int port, int count, sbuf *out) {
    jval arr = {0};
    double until = now_ms() + 3000;
    for (;;) {
        size_t n = 0;
        char *body = http_get(port, "/observed", &n);
        j_free(&arr);
        memset(&arr, 0, sizeof arr);
        int ok = body && !j_parse(body, n, &arr) && arr.t == J_ARR;
        free(body);
        int finished = 0;
        for (size_t i = 0; ok && i < arr.n; i++) {
            const jval *f = j_get(&arr.items[i], "finished");
            finished += f && f->t == J_BOOL && f->b;
        }
        if ((ok && finished >= count) || now_ms() >= until) break;
        sleep_ms(20);
    }
    const jval *first = arr.t == J_ARR && arr.n ? &arr.items[0] : NULL;
    sb_printf(out, "\"t\":\"observed\",\"connections\":%zu,\"path\":", arr.t == J_ARR ? arr.n : 0);
    const jval *v;
    if ((v = j_get(first, "path"))) j_write(out, v); else sb_puts(out, "null");
    sb_puts(out, ",\"headers\":");
    if ((v = j_get(first, "headers"))) j_write(out, v); else sb_puts(out, "{}");
    sb_puts(out, ",\"frames\":");
    if ((v = j_get(first, "frames"))) j_write(out, v); else sb_puts(out, "[]");
    const char *flags[] = {"client_closed_tcp", "server_closed_tcp"};
    for (int i = 0; i < 2; i++) {
        sb_printf(out, ",\"%s\":", flags[i]);
        if ((v = j_get(first, flags[i]))) j_write(out, v); else sb_puts(out, "null");
    }
    j_free(&arr);
}

/* ---- running one scenario ------------------------------------------------------------ */

struct run;

typedef struct {
    struct run *run;
    int idx;
    ws *sock;
    int messages;
    int closed;
    sbuf *entries; /* one JSON object body (no braces) per trace entry */
    size_t n_entries;
} sockstate;

typedef struct run {
    const jval *plan;
    double start;
    int nsocks;
    sockstate socks[MAX_SOCKETS];
} run;

static sbuf *new_entry(sockstate *ss) {
    ss->entries = xrealloc(ss->entries, (ss->n_entries + 1) * sizeof *ss->entries);
    sbuf *e = &ss->entries[ss->n_entries++];
    memset(e, 0, sizeof *e);
    return e;
}
static long ms_since(const run *r) { return (long)(now_ms() - r->start); }

static void attrs(sbuf *e, ws *sock) {
    sb_printf(e, ",\"readyState\":%d,\"bufferedAmount\":%llu", ws_ready_state(sock),
              (unsigned long long)ws_buffered_amount(sock));
}
static void names(sbuf *e, ws *sock) {
    sb_puts(e, ",\"protocol\":");
    sb_jcstr(e, ws_protocol(sock));
    sb_puts(e, ",\"extensions\":");
    sb_jcstr(e, ws_extensions(sock));
}

/* Runs one planned action on socket `ss` and records it. */
static void run_action(sockstate *ss, ws *sock, const jval *a) {
    const char *op = j_str(a, "op");
    sbuf *e = new_entry(ss);
    sbuf extra = {0};
    const char *result = "ok";
    sb_puts(&extra, "");
    if (!op) die("an action without op");
    if (!strcmp(op, "send_text") || !strcmp(op, "send_binary")) {
        int text = op[5] == 't';
        size_t n;
        unsigned char *data = hex_decode(j_str(a, text ? "text_hex" : "bytes_hex"), &n);
        result = result_name(text ? ws_send(sock, WS_MESSAGE_TEXT, data, n) : ws_send_binary(sock, data, n));
        free(data);
    } else if (!strcmp(op, "close")) {
        const jval *c = j_get(a, "code");
        int32_t code = WS_CLOSE_NO_CODE;
        if (c) { /* [Clamp] unsigned short: what the WebIDL binding does before the call */
            double d = c->num < 0 ? 0 : c->num > 65535 ? 65535 : c->num;
            code = (int32_t)d;
        }
        size_t n = 0;
        unsigned char *reason = j_get(a, "reason_hex") ? hex_decode(j_str(a, "reason_hex"), &n) : NULL;
        result = result_name(ws_close(sock, code, (const char *)reason, n));
        free(reason);
    } else if (!strcmp(op, "sleep_ms")) {
        sleep_ms(j_num(a, "value", 0));
        op = "sleep";
    } else if (!strcmp(op, "snapshot")) {
        names(&extra, sock);
        sb_puts(&extra, ",\"url\":");
        sb_jcstr(&extra, ws_url(sock));
    } else if (!strcmp(op, "set_binary_type")) {
        result = "unsupported";
        sb_puts(&extra, ",\"detail\":\"the C API has no binaryType: binary messages are bytes\"");
    } else if (!strcmp(op, "constants")) {
        sb_printf(&extra, ",\"values\":[%d,%d,%d,%d]", WS_CONNECTING, WS_OPEN, WS_CLOSING, WS_CLOSED);
    } else {
        die("unknown action %s", op);
    }
    sb_printf(e, "\"t\":\"action\",\"op\":\"%s\",\"result\":\"%s\"%s", op, result, extra.p);
    attrs(e, sock);
    sb_printf(e, ",\"ms\":%ld", ms_since(ss->run));
    free(extra.p);
}

/* The actions of the script entries that `trigger` (message number `n`) selects. */
static void run_trigger(sockstate *ss, ws *sock, const char *trigger, int n) {
    const jval *script = j_get(ss->run->plan, "script");
    for (size_t i = 0; script && i < script->n; i++) {
        const jval *entry = &script->items[i];
        const char *on = j_str(entry, "on");
        if (!on || strcmp(on, trigger)) continue;
        if (!strcmp(trigger, "message") && (int)j_num(entry, "n", 1) != n) continue;
        const jval *acts = j_get(entry, "do");
        for (size_t k = 0; acts && k < acts->n; k++) run_action(ss, sock, &acts->items[k]);
    }
}

static sbuf *begin_event(sockstate *ss, ws *sock, const char *type) {
    sbuf *e = new_entry(ss);
    sb_printf(e, "\"t\":\"event\",\"type\":\"%s\"", type);
    attrs(e, sock);
    names(e, sock);
    sb_printf(e, ",\"target_ok\":%s", sock == ss->sock ? "true" : "false");
    return e;
}

static void on_open(ws *sock, void *ud) {
    sockstate *ss = ud;
    sbuf *e = begin_event(ss, sock, "open");
    sb_printf(e, ",\"ms\":%ld", ms_since(ss->run));
    run_trigger(ss, sock, "open", 0);
}

static void on_message(ws *sock, void *ud, ws_message_type type, const char *data, size_t len) {
    sockstate *ss = ud;
    char h[17];
    sbuf *e = begin_event(ss, sock, "message");
    int text = type == WS_MESSAGE_TEXT;
    sb_printf(e, ",\"data_type\":\"%s\",\"length\":%zu,\"fnv1a64\":\"%s\"", text ? "text" : "binary", len,
              fnv1a64(data, len, h));
    if (len <= DATA_INLINE_MAX) {
        sb_puts(e, ",\"data\":");
        if (text) {
            sb_jstr(e, data, len);
        } else {
            sb_puts(e, "\"");
            sb_hex(e, (const unsigned char *)data, len);
            sb_puts(e, "\"");
        }
    }
    sb_printf(e, ",\"ms\":%ld", ms_since(ss->run));
    ss->messages++;
    run_trigger(ss, sock, "message", ss->messages);
}

static void on_error(ws *sock, void *ud, const char *message) {
    sockstate *ss = ud;
    sbuf *e = begin_event(ss, sock, "error");
    sb_puts(e, ",\"detail\":");
    sb_jcstr(e, message ? message : "");
    sb_printf(e, ",\"ms\":%ld", ms_since(ss->run));
    run_trigger(ss, sock, "error", 0);
}

static void on_close(ws *sock, void *ud, uint16_t code, const char *reason, size_t reason_len, bool clean) {
    sockstate *ss = ud;
    sbuf *e = begin_event(ss, sock, "close");
    sb_printf(e, ",\"code\":%u,\"reason\":", code);
    sb_jstr(e, reason, reason_len);
    sb_printf(e, ",\"wasClean\":%s,\"ms\":%ld", clean ? "true" : "false", ms_since(ss->run));
    ss->closed = 1;
    run_trigger(ss, sock, "close", 0);
}

typedef struct {
    double at;
    const jval *actions;
} timer;

static int timer_cmp(const void *a, const void *b) {
    double x = ((const timer *)a)->at, y = ((const timer *)b)->at;
    return x < y ? -1 : x > y;
}

/* Runs planned scenario `p` against the server on `port`; writes its trace lines to `out`. */
static void run_scenario(const jval *p, const char *server, int port, FILE *out) {
    const char *id = j_str(p, "id");
    sbuf tag = {0}; /* the fields every line carries */
    sb_puts(&tag, ",\"id\":");
    sb_jcstr(&tag, id);
    sb_printf(&tag, ",\"server\":\"%s\",\"lang\":\"c\"", server);
    const char *skip = j_str(p, "skip");
    const jval *bag = j_get(p, "option_bag");
    if (!skip && bag && bag->t == J_BOOL && bag->b) /* compare fails a skip without a table entry */
        skip = "option_bag: the C API has no options-bag protocols and the table gives no skip for c";
    if (skip) {
        sbuf r = {0};
        sb_jcstr(&r, skip);
        fprintf(out, "{\"t\":\"end\",\"result\":\"skip\",\"reason\":%s%s,\"socket\":0}\n", r.p, tag.p);
        free(r.p);
        free(tag.p);
        return;
    }
    int observing = j_get(p, "observe") && j_get(p, "observe")->b;
    if (!strcmp(server, "wsdom")) {
        size_t n;
        free(http_get(port, "/observed?clear=1", &n));
    }
    int dport = dead_port();
    run *r = calloc(1, sizeof *r);
    r->plan = p;
    r->nsocks = (int)j_num(p, "sockets", 1);
    if (r->nsocks < 1 || r->nsocks > MAX_SOCKETS) die("%s: bad socket count", id);
    double timeout = j_num(p, "timeout_ms", 10000), linger = j_num(p, "linger_ms", 100);
    char *url = subst(j_str(p, "url") ? j_str(p, "url") : "{base}/", port, dport);
    char *base = j_str(p, "base_url") ? subst(j_str(p, "base_url"), port, dport) : NULL;
    const jval *prots = j_get(p, "protocols");
    size_t nprot = prots ? prots->n : 0;
    const char **protv = xrealloc(NULL, (nprot + 1) * sizeof *protv);
    for (size_t i = 0; i < nprot; i++) protv[i] = prots->items[i].s;
    ws_options *opts;
    if (ws_options_new(&opts) != WS_OK || ws_options_set_manual_dispatch(opts, true) != WS_OK)
        die("ws_options: %s", ws_last_error_message());
    if (base && ws_options_set_base_url(opts, base) != WS_OK)
        die("%s: ws_options_set_base_url: %s", id, ws_last_error_message());

    r->start = now_ms();
    for (int i = 0; i < r->nsocks; i++) {
        sockstate *ss = &r->socks[i];
        ss->run = r;
        ss->idx = i;
        ws_callbacks cb = {on_open, on_message, on_error, on_close, ss};
        ws *sock = NULL;
        ws_result rc = ws_new_with_options(url, protv, nprot, opts, &cb, &sock);
        sbuf *e = new_entry(ss);
        if (rc == WS_OK) {
            ss->sock = sock;
            sb_puts(e, "\"t\":\"construct\",\"result\":\"ok\",\"url\":");
            sb_jcstr(e, ws_url(sock));
            attrs(e, sock);
            names(e, sock);
            sb_printf(e, ",\"ms\":%ld", ms_since(r));
            run_trigger(ss, sock, "construct", 0);
        } else {
            sb_printf(e, "\"t\":\"construct\",\"result\":\"%s\",\"detail\":", result_name(rc));
            sb_jcstr(e, ws_last_error_message());
            sb_printf(e, ",\"ms\":%ld", ms_since(r));
            ss->closed = 1;
        }
    }
    ws_options_free(opts);

    timer timers[64];
    size_t ntimers = 0, next_timer = 0;
    const jval *script = j_get(p, "script");
    for (size_t i = 0; script && i < script->n; i++) {
        const char *on = j_str(&script->items[i], "on");
        if (on && !strcmp(on, "timer") && ntimers < 64) {
            timers[ntimers].at = r->start + j_num(&script->items[i], "after_ms", 0);
            timers[ntimers++].actions = j_get(&script->items[i], "do");
        }
    }
    qsort(timers, ntimers, sizeof *timers, timer_cmp);
    double deadline = r->start + timeout, done_at = -1;
    for (;;) {
        double now = now_ms();
        while (next_timer < ntimers && timers[next_timer].at <= now) {
            const jval *acts = timers[next_timer++].actions;
            for (int i = 0; i < r->nsocks; i++)
                for (size_t k = 0; r->socks[i].sock && acts && k < acts->n; k++)
                    run_action(&r->socks[i], r->socks[i].sock, &acts->items[k]);
        }
        int all_closed = 1;
        for (int i = 0; i < r->nsocks; i++) all_closed &= r->socks[i].closed;
        if (all_closed && next_timer == ntimers) {
            if (done_at < 0) done_at = now + linger;
            if (now >= done_at) break;
        }
        if (now >= deadline) {
            for (int i = 0; i < r->nsocks; i++)
                if (!r->socks[i].closed)
                    sb_printf(new_entry(&r->socks[i]), "\"t\":\"timeout\",\"ms\":%ld", ms_since(r));
            break;
        }
        double wake = deadline < now + 50 ? deadline : now + 50;
        if (next_timer < ntimers && timers[next_timer].at < wake) wake = timers[next_timer].at;
        if (done_at >= 0 && done_at < wake) wake = done_at;
        ws_result rc = ws_dispatch((int)ceil(wake - now), NULL);
        if (rc != WS_OK) die("ws_dispatch: %s", ws_last_error_message());
    }
    /* Leave nothing running: sockets still open are closed (no code), then released; no
     * callback runs after ws_free, so their later events are not recorded. */
    for (int i = 0; i < r->nsocks; i++) {
        if (!r->socks[i].sock) continue;
        if (!r->socks[i].closed) ws_close(r->socks[i].sock, WS_CLOSE_NO_CODE, NULL, 0);
        ws_free(r->socks[i].sock);
    }

    fprintf(out, "{\"t\":\"start\",\"host\":\"127.0.0.1\",\"port\":%d,\"dead_port\":%d%s,\"socket\":0}\n", port,
            dport, tag.p);
    for (int i = 0; i < r->nsocks; i++) {
        sockstate *ss = &r->socks[i];
        for (size_t k = 0; k < ss->n_entries; k++) {
            fprintf(out, "{%s%s,\"socket\":%d,\"seq\":%zu}\n", ss->entries[k].p, tag.p, i, k);
            free(ss->entries[k].p);
        }
        free(ss->entries);
    }
    if (observing) {
        sbuf o = {0};
        observed_entry(port, r->nsocks, &o);
        fprintf(out, "{%s%s,\"socket\":0}\n", o.p, tag.p);
        free(o.p);
    }
    /* The verdict is scenarios.py compare's; the driver only marks the run as complete. */
    fprintf(out, "{\"t\":\"end\",\"result\":\"ran\"%s,\"socket\":0}\n", tag.p);
    fflush(out);
    free(url);
    free(base);
    free(protv);
    free(tag.p);
    free(r);
}

/* ---- servers and workers -------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int in; /* its stdin: closing it stops the server */
    int port;
} server_proc;

static server_proc start_server(char **cmd) {
    int in[2], out[2];
    server_proc s = {0};
    if (pipe(in) || pipe(out)) die("pipe: %s", strerror(errno));
    s.pid = fork();
    if (s.pid < 0) die("fork: %s", strerror(errno));
    if (s.pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execvp(cmd[0], cmd);
        fprintf(stderr, "c_driver: cannot run %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s.in = in[1];
    fcntl(s.in, F_SETFD, FD_CLOEXEC);
    char line[128];
    size_t n = 0;
    double until = now_ms() + 20000;
    while (n < sizeof line - 1) {
        struct pollfd pfd = {out[0], POLLIN, 0};
        int left = (int)(until - now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0) break;
        if (read(out[0], &line[n], 1) != 1 || line[n] == '\n') break;
        n++;
    }
    line[n] = 0;
    close(out[0]);
    if (sscanf(line, "LISTENING %d", &s.port) != 1) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, NULL, 0);
        die("%s did not print LISTENING <port> (got \"%s\")", cmd[0], line);
    }
    return s;
}

static void stop_server(server_proc *s) {
    close(s->in); /* EOF asks it to stop */
    for (int i = 0; i < 150; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) return;
        sleep_ms(20);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
}

typedef struct {
    jval v;
    double weight; /* long scenarios first, so they overlap with the many short ones */
    size_t order;
} planned;

static int by_weight(const void *a, const void *b) {
    const planned *x = a, *y = b;
    if (x->weight != y->weight) return x->weight > y->weight ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void usage(void) {
    fprintf(stderr, "usage: c_driver --plan PLAN.jsonl --server NAME --out TRACE.jsonl [--jobs N] -- CMD [ARGS...]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *plan_path = NULL, *server = NULL, *out_path = NULL;
    int jobs = 2, i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--") && i + 1 < argc) break;
        if (i + 1 >= argc) usage();
        if (!strcmp(argv[i], "--plan")) plan_path = argv[++i];
        else if (!strcmp(argv[i], "--server")) server = argv[++i];
        else if (!strcmp(argv[i], "--out")) out_path = argv[++i];
        else if (!strcmp(argv[i], "--jobs")) jobs = atoi(argv[++i]);
        else usage();
    }
    if (!plan_path || !server || !out_path || i >= argc || jobs < 1) usage();
    char **cmd = &argv[i + 1];
    const char *filter = getenv("WSDOM_SCENARIOS");

    /* Read the plan. */
    FILE *pf = fopen(plan_path, "r");
    if (!pf) die("%s: %s", plan_path, strerror(errno));
    planned *plan = NULL;
    size_t nplan = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, pf)) > 0) {
        jval v;
        if (j_parse(line, (size_t)len, &v) || v.t != J_OBJ || !j_str(&v, "id")) die("%s: bad line %zu", plan_path, nplan + 1);
        if (filter && *filter && !strstr(j_str(&v, "id"), filter)) {
            j_free(&v);
            continue;
        }
        plan = xrealloc(plan, (nplan + 1) * sizeof *plan);
        double w = j_num(&v, "timeout_ms", 10000) / 4;
        const jval *script = j_get(&v, "script");
        for (size_t k = 0; script && k < script->n; k++) {
            double at = j_num(&script->items[k], "after_ms", 0);
            if (at > w) w = at;
        }
        plan[nplan] = (planned){v, w, nplan};
        nplan++;
    }
    free(line);
    fclose(pf);
    qsort(plan, nplan, sizeof *plan, by_weight);

    /* Workers take the next scenario from a shared counter; each writes its own part file. */
    size_t *next = mmap(NULL, sizeof *next, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (next == MAP_FAILED) die("mmap: %s", strerror(errno));
    *next = 0;
    if ((size_t)jobs > nplan) jobs = nplan ? (int)nplan : 1;
    pid_t *pids = calloc((size_t)jobs, sizeof *pids);
    char **parts = calloc((size_t)jobs, sizeof *parts);
    fflush(NULL);
    for (int w = 0; w < jobs; w++) {
        sbuf p = {0};
        sb_printf(&p, "%s.part%d", out_path, w);
        parts[w] = p.p;
        pids[w] = fork();
        if (pids[w] < 0) die("fork: %s", strerror(errno));
        if (pids[w] == 0) {
            FILE *out = fopen(parts[w], "w");
            if (!out) die("%s: %s", parts[w], strerror(errno));
            server_proc srv = start_server(cmd);
            for (;;) {
                size_t k = __atomic_fetch_add(next, 1, __ATOMIC_SEQ_CST);
                if (k >= nplan) break;
                /* A scenario that hangs (a callback that never returns, a dispatch that never
                 * wakes) kills this worker; the parent reports it and its scenarios as not run. */
                alarm((unsigned)(j_num(&plan[k].v, "timeout_ms", 10000) / 1000) + 30);
                fprintf(out, "#%zu\n", plan[k].order);
                run_scenario(&plan[k].v, server, srv.port, out);
                alarm(0);
            }
            fclose(out);
            stop_server(&srv);
            _exit(ws_live_handles() == 0 ? 0 : 3);
        }
    }
    int status = 0;
    for (int w = 0; w < jobs; w++) {
        int st;
        waitpid(pids[w], &st, 0);
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "c_driver[%s]: worker %d died with signal %d (%s)\n", server, w, WTERMSIG(st),
                    WTERMSIG(st) == SIGALRM ? "a scenario hung" : strsignal(WTERMSIG(st)));
            status = 1;
        } else if (WEXITSTATUS(st) != 0) {
            fprintf(stderr, "c_driver[%s]: worker %d exited with %d%s\n", server, w, WEXITSTATUS(st),
                    WEXITSTATUS(st) == 3 ? " (handles not freed)" : "");
            status = 1;
        }
    }

    /* Merge the parts in plan order (blocks start with "#<order>"). */
    char **blocks = calloc(nplan + 1, sizeof *blocks);
    for (int w = 0; w < jobs; w++) {
        FILE *f = fopen(parts[w], "r");
        if (!f) continue;
        sbuf cur = {0};
        size_t at = nplan;
        line = NULL;
        cap = 0;
        while ((len = getline(&line, &cap, f)) > 0) {
            if (line[0] == '#') {
                if (at < nplan) blocks[at] = cur.p;
                memset(&cur, 0, sizeof cur);
                at = (size_t)strtoul(line + 1, NULL, 10);
                if (at >= nplan) at = nplan;
                sb_puts(&cur, "");
            } else {
                sb_add(&cur, line, (size_t)len);
            }
        }
        if (at < nplan) blocks[at] = cur.p;
        else free(cur.p);
        free(line);
        fclose(f);
        unlink(parts[w]);
    }
    FILE *out = fopen(out_path, "w");
    if (!out) die("%s: %s", out_path, strerror(errno));
    fprintf(out, "{\"t\":\"driver\",\"lang\":\"c\",\"server\":\"%s\",\"unsupported_fields\":%s,\"libwsdom\":\"%s\"}\n",
            server, UNSUPPORTED_FIELDS, ws_version());
    for (size_t k = 0; k < nplan; k++)
        if (blocks[k]) fputs(blocks[k], out);
    fclose(out);
    fprintf(stderr, "c_driver[%s]: %zu scenario runs, %d workers, trace in %s\n", server, nplan, jobs, out_path);
    for (size_t k = 0; k < nplan; k++) {
        j_free(&plan[k].v);
        free(blocks[k]);
    }
    for (int w = 0; w < jobs; w++) free(parts[w]);
    free(blocks);
    free(parts);
    free(pids);
    free(plan);
    munmap(next, sizeof *next);
    return status;
}
