/* Load (issue #8, part 3): N concurrent connections each echo M messages of random size
 * (1 B to 64 KiB: log-uniform, plus the frame-length boundaries 125/126/127/65535/65536),
 * random type (text with 1- to 4-byte UTF-8 characters, or binary), through the
 * non-recording echo server (wsdom-bulk-echo, WSDOM_BULK_PORT) on 127.0.0.1. Every message
 * must come back exactly once, in order, byte-identical: each echo is checked against the
 * length, type and FNV-1a checksum recorded when it was sent.
 * A quarter of the connections negotiate permessage-deflate (/deflate).
 *
 *   load N M [TIMEOUT_S [WINDOW]]     e.g. load 200 100 (short form), load 1000 1000 (stress)
 */
#include "rel.h"

#include <malloc.h>
#include <math.h>

typedef struct {
    ws *sock;
    int id;
    int sent, received, window;
    uint32_t *len;
    uint64_t *sum;
    uint8_t *type;
    atomic_int opened, closed, errored;
    int close_code;
    bool clean;
    int mismatches, extra;
    char error[256];
} conn;

static int M;
static atomic_int closed_count, failures_seen;
static atomic_llong bytes_sent, bytes_received;

static __thread unsigned char *buf;

/* Fills buf with message `seq` of connection `id`; returns its length and type. */
static size_t make(int id, int seq, ws_message_type *type) {
    uint64_t s = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)id << 32) ^ (uint64_t)seq;
    for (int i = 0; i < 4; i++) rel_rand(&s);
    static const size_t edges[] = {1, 2, 125, 126, 127, 128, 65535, 65536};
    size_t n;
    if (rel_rand(&s) % 10 == 0)
        n = edges[rel_rand(&s) % 8];
    else
        n = (size_t)exp((double)(rel_rand(&s) >> 11) / 9007199254740992.0 * log(65536.0));
    if (n < 1) n = 1;
    if (n > 65536) n = 65536;
    if (!buf) buf = malloc(65536 + 8);
    if (rel_rand(&s) & 1) {
        *type = WS_MESSAGE_BINARY;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = rel_rand(&s);
            memcpy(buf + i, &r, 8);
        }
    } else {
        *type = WS_MESSAGE_TEXT;
        size_t i = 0;
        while (i < n) {
            size_t left = n - i;
            uint64_t r = rel_rand(&s);
            unsigned k = (unsigned)(r % 8);
            uint32_t cp;
            if (k == 0 && left >= 4) { /* U+10000..U+10FFFF */
                cp = 0x10000 + (uint32_t)((r >> 8) % 0x100000);
                buf[i++] = (unsigned char)(0xF0 | (cp >> 18));
                buf[i++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                buf[i++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                buf[i++] = (unsigned char)(0x80 | (cp & 0x3F));
            } else if (k == 1 && left >= 3) { /* U+0800..U+FFFF without surrogates */
                cp = 0x800 + (uint32_t)((r >> 8) % (0x10000 - 0x800 - 0x800));
                if (cp >= 0xD800) cp += 0x800;
                buf[i++] = (unsigned char)(0xE0 | (cp >> 12));
                buf[i++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                buf[i++] = (unsigned char)(0x80 | (cp & 0x3F));
            } else if (k == 2 && left >= 2) { /* U+0080..U+07FF */
                cp = 0x80 + (uint32_t)((r >> 8) % (0x800 - 0x80));
                buf[i++] = (unsigned char)(0xC0 | (cp >> 6));
                buf[i++] = (unsigned char)(0x80 | (cp & 0x3F));
            } else {
                buf[i++] = (unsigned char)(0x20 + (r >> 8) % 95);
            }
        }
    }
    return n;
}

static void send_next(conn *c, ws *sock) {
    ws_message_type type;
    size_t n = make(c->id, c->sent, &type);
    c->len[c->sent] = (uint32_t)n;
    c->type[c->sent] = (uint8_t)type;
    c->sum[c->sent] = rel_fnv64(buf, n);
    c->sent++;
    ws_result r = ws_send(sock, type, buf, n);
    if (r != WS_OK) {
        snprintf(c->error, sizeof c->error, "ws_send: %s", ws_last_error_message());
        atomic_fetch_add(&failures_seen, 1);
        return;
    }
    atomic_fetch_add(&bytes_sent, (long long)n);
}

static void on_open(ws *s, void *ud) {
    conn *c = ud;
    atomic_store(&c->opened, 1);
    while (c->sent < M && c->sent < c->window) send_next(c, s);
}

static void on_message(ws *s, void *ud, ws_message_type t, const char *d, size_t n) {
    conn *c = ud;
    atomic_fetch_add(&bytes_received, (long long)n);
    int k = c->received++;
    if (k >= c->sent) {
        c->extra++;
        return;
    }
    if (n != c->len[k] || t != c->type[k] || rel_fnv64(d, n) != c->sum[k]) {
        if (c->mismatches++ == 0)
            snprintf(c->error, sizeof c->error,
                     "message %d: got %zu bytes type %u, expected %u bytes type %u (or checksum)",
                     k, n, t, c->len[k], c->type[k]);
    }
    if (c->sent < M)
        send_next(c, s);
    else if (c->received == M)
        ws_close(s, 1000, "done", 4);
}

static void on_error(ws *s, void *ud, const char *msg) {
    conn *c = ud;
    (void)s;
    snprintf(c->error, sizeof c->error, "onerror: %s", msg);
    atomic_store(&c->errored, 1);
}

static void on_close(ws *s, void *ud, uint16_t code, const char *r, size_t n, bool clean) {
    conn *c = ud;
    (void)s, (void)r, (void)n;
    c->close_code = code;
    c->clean = clean;
    atomic_store(&c->closed, 1);
    atomic_fetch_add(&closed_count, 1);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONNECTIONS MESSAGES [TIMEOUT_S [WINDOW]]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    M = atoi(argv[2]);
    double timeout_s = argc > 3 ? atof(argv[3]) : 120;
    int window = argc > 4 ? atoi(argv[4]) : 4;
    int port = rel_env_port("WSDOM_BULK_PORT");
    /* Every Kth connection uses permessage-deflate (REL_DEFLATE_EVERY, default 4; 0: none). */
    int deflate_every = getenv("REL_DEFLATE_EVERY") ? atoi(getenv("REL_DEFLATE_EVERY")) : 4;
    conn *conns = calloc((size_t)n, sizeof(conn));
    char url_plain[128], url_deflate[128];
    snprintf(url_plain, sizeof url_plain, "ws://127.0.0.1:%d/echo", port);
    snprintf(url_deflate, sizeof url_deflate, "ws://127.0.0.1:%d/deflate", port);
    ws_options *o = rel_options();
    /* A slow start under load is not a failure: 60 s to connect. */
    ws_options_set_connect_timeout(o, 60000);
    long rss0 = rel_rss_kb();
    double t0 = rel_now_ms();
    for (int i = 0; i < n; i++) {
        conn *c = &conns[i];
        c->id = i;
        c->window = window;
        c->len = calloc((size_t)M, sizeof *c->len);
        c->sum = calloc((size_t)M, sizeof *c->sum);
        c->type = calloc((size_t)M, 1);
        ws_callbacks cb = {on_open, on_message, on_error, on_close, c};
        if (ws_new_with_options(deflate_every && i % deflate_every == deflate_every - 1 ? url_deflate : url_plain, NULL, 0, o, &cb, &c->sock) !=
            WS_OK) {
            fprintf(stderr, "ws_new: %s\n", ws_last_error_message());
            return 1;
        }
    }
    ws_options_free(o);
    double deadline = t0 + timeout_s * 1000, last = t0;
    long rss_max = 0;
    while (atomic_load(&closed_count) < n && rel_now_ms() < deadline) {
        rel_sleep_ms(50);
        long rss = rel_rss_kb();
        if (rss > rss_max) rss_max = rss;
        if (rel_now_ms() - last > 5000) {
            last = rel_now_ms();
            printf("   ... %.0f s: %d/%d connections done, %.1f MiB echoed, RSS %ld KiB\n",
                   (last - t0) / 1000, atomic_load(&closed_count), n,
                   atomic_load(&bytes_received) / 1048576.0, rss);
            fflush(stdout);
        }
    }
    double secs = (rel_now_ms() - t0) / 1000;
    long long total_sent = 0, total_received = 0, mism = 0, extra = 0;
    int bad = 0, unclean = 0, unfinished = 0;
    for (int i = 0; i < n; i++) {
        conn *c = &conns[i];
        total_sent += c->sent;
        total_received += c->received;
        mism += c->mismatches;
        extra += c->extra;
        bool ok = atomic_load(&c->closed) && c->clean && c->close_code == 1000 &&
                  c->received == M && c->sent == M && !c->mismatches && !c->extra &&
                  !atomic_load(&c->errored);
        if (!atomic_load(&c->closed)) unfinished++;
        else if (!c->clean) unclean++;
        if (!ok && bad++ < 5)
            fprintf(stderr, "connection %d: sent %d received %d closed=%d code %d clean=%d %s\n", i,
                    c->sent, c->received, atomic_load(&c->closed), c->close_code, c->clean,
                    c->error);
    }
    printf("load: %d connections x %d messages in %.1f s: %lld sent, %lld received in order and "
           "byte-identical, %lld mismatched, %lld extra; %d unfinished, %d unclean; %.1f MiB each "
           "way (%.0f msg/s, %.1f MiB/s); peak RSS %ld KiB (start %ld KiB)\n",
           n, M, secs, total_sent, total_received - mism - extra, mism, extra, unfinished, unclean,
           atomic_load(&bytes_sent) / 1048576.0, total_received / secs,
           atomic_load(&bytes_received) / 1048576.0 / secs, rss_max, rss0);
    REL_CHECK(bad == 0, "%d connections failed", bad);
    REL_CHECK(total_received == (long long)n * M && mism == 0 && extra == 0,
              "every message exactly once, in order, byte-identical");
    long rss_closed = rel_rss_kb();
    for (int i = 0; i < n; i++) {
        ws_free(conns[i].sock);
        free(conns[i].len);
        free(conns[i].sum);
        free(conns[i].type);
    }
    free(conns);
    rel_sleep_ms(200);
    long rss_freed = rel_rss_kb();
    malloc_trim(0);
    long rss_trimmed = rel_rss_kb();
    printf("   RSS with every socket closed %ld KiB, after ws_free of all %ld KiB, after "
           "malloc_trim %ld KiB; handles left %zu\n",
           rss_closed, rss_freed, rss_trimmed, ws_live_handles());
    REL_CHECK(ws_live_handles() == 0, "handles left");
    /* Whatever the allocator keeps cached, the memory is back: within 16 MiB of the start. */
    REL_CHECK(rss_trimmed <= rss0 + 16384, "memory released: %ld KiB after, %ld KiB before",
              rss_trimmed, rss0);
    return rel_finish("load");
}
