/* The physical limit: blocking sockets, TCP_NODELAY, no library.
 *
 *   rr     after a fixed WebSocket upgrade to /raw, plain TCP ping-pong of SIZE bytes (the
 *          server echoes bytes as they arrive): the loopback round-trip floor.
 *          With --framing ws: the same against /echo with WebSocket frames, a frame encoded
 *          once (mask key 0, so no work per byte) and echoes skipped without a copy: the
 *          floor of any WebSocket client against this server (it unmasks, parses, reframes).
 *   push   a minimal WebSocket reader: parses frame headers and never copies payloads out of
 *          one 256 KiB read buffer: the server + loopback ceiling for receiving.
 *   send   writes a block of pre-masked frames (encoded once) again and again: the ceiling
 *          for sending.
 *   setup  connect, upgrade, Close frame, wait for the server's Close and EOF.
 *
 * Command line and output as every client (see bench/src/lib.rs). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FILL 0x5a
#define BUF (256 * 1024)

static const char *mode = "rr";
static int port = 9001;
static size_t size = 256;
static size_t n = 1000;
static double duration = 2.0;
static size_t warmup = 100;
static int ws_framing = 0;

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
    fprintf(stderr, "error: %s: %s\n", what, errno ? strerror(errno) : "");
    exit(1);
}

static void write_all(int fd, const void *p, size_t len) {
    const char *c = p;
    while (len > 0) {
        ssize_t w = write(fd, c, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        c += w;
        len -= (size_t)w;
    }
}

/* Read buffer shared by the handshake and the frame reader. */
static unsigned char *buf;
static size_t start, end;

static int fill(int fd) {
    if (start > 0) {
        memmove(buf, buf + start, end - start);
        end -= start;
        start = 0;
    }
    if (end == BUF) die("read buffer full");
    ssize_t r;
    do {
        r = read(fd, buf + end, BUF - end);
    } while (r < 0 && errno == EINTR);
    if (r < 0) die("read");
    end += (size_t)r;
    return r > 0;
}

static int dial(const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       path, port);
    write_all(fd, req, (size_t)len);
    start = end = 0;
    for (;;) {
        unsigned char *head_end = memmem(buf, end, "\r\n\r\n", 4);
        if (head_end) {
            if (end < 12 || memcmp(buf + 9, "101", 3) != 0) {
                errno = 0;
                die("handshake refused");
            }
            start = (size_t)(head_end + 4 - buf);
            return fd;
        }
        if (!fill(fd)) {
            errno = 0;
            die("EOF during handshake");
        }
    }
}

/* Sends a masked Close frame with code 1000 and reads until EOF. */
static void close_ws(int fd) {
    unsigned char frame[8] = {0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2};
    write_all(fd, frame, sizeof frame);
    for (;;) {
        start = end = 0;
        ssize_t r = read(fd, buf, BUF);
        if (r <= 0) break;
    }
    close(fd);
}

/* The next server frame: returns its opcode and sets *len, with the payload at buf+start
 * when `need_payload` (otherwise the payload is skipped without being buffered). */
static int next_frame(int fd, uint64_t *len, int need_payload) {
    for (;;) {
        size_t avail = end - start;
        unsigned char *b = buf + start;
        if (avail >= 2) {
            uint64_t l = b[1] & 0x7f;
            size_t at = 2;
            if (l == 126) {
                at = 4;
                if (avail >= 4) l = (uint64_t)b[2] << 8 | b[3];
            } else if (l == 127) {
                at = 10;
                if (avail >= 10) {
                    l = 0;
                    for (int i = 2; i < 10; i++) l = l << 8 | b[i];
                }
            }
            if (avail >= at && (!need_payload || avail >= at + l)) {
                int opcode = b[0] & 0x0f;
                *len = l;
                start += at;
                if (need_payload) return opcode;
                /* Skip the payload, reading through it if needed. */
                uint64_t skip = l;
                for (;;) {
                    size_t have = end - start;
                    if (skip <= have) {
                        start += skip;
                        return opcode;
                    }
                    skip -= have;
                    start = end = 0;
                    if (!fill(fd)) {
                        errno = 0;
                        die("EOF in a frame");
                    }
                }
            }
        }
        if (!fill(fd)) {
            errno = 0;
            die("EOF before done");
        }
    }
}

/* One binary frame (FIN) carrying SIZE bytes of FILL masked with `mask`; sets *len. */
static unsigned char *ws_frame(const unsigned char mask[4], size_t *len) {
    size_t hl = size < 126 ? 6 : size < 65536 ? 8 : 14;
    unsigned char *f = malloc(hl + size);
    f[0] = 0x82;
    if (size < 126) {
        f[1] = 0x80 | (unsigned char)size;
    } else if (size < 65536) {
        f[1] = 0x80 | 126;
        f[2] = (unsigned char)(size >> 8);
        f[3] = (unsigned char)size;
    } else {
        f[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++) f[2 + i] = (unsigned char)((uint64_t)size >> (8 * (7 - i)));
    }
    memcpy(f + hl - 4, mask, 4);
    for (size_t i = 0; i < size; i++) f[hl + i] = FILL ^ mask[i % 4];
    *len = hl + size;
    return f;
}

static void rr(void) {
    int fd = dial(ws_framing ? "/echo" : "/raw");
    start = end = 0;
    size_t msg_len = size;
    static const unsigned char zero_mask[4] = {0, 0, 0, 0};
    unsigned char *msg = ws_framing ? ws_frame(zero_mask, &msg_len) : malloc(size);
    if (!ws_framing) memset(msg, FILL, size);
    unsigned char *in = malloc(size);
    double t0 = 0, c0 = 0;
    unsigned long count = 0;
    for (size_t i = 0;; i++) {
        if (i == warmup) t0 = now(), c0 = cpu();
        if (i >= warmup && now() - t0 >= duration) break;
        write_all(fd, msg, msg_len);
        if (ws_framing) {
            uint64_t len;
            if (next_frame(fd, &len, 0) != 2 || len != size) die("bad echo");
        } else {
            size_t got = 0;
            while (got < size) {
                ssize_t r = read(fd, in + got, size - got);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) die("read");
                got += (size_t)r;
            }
        }
        if (i >= warmup) count++;
    }
    double secs = now() - t0, c = cpu() - c0;
    if (ws_framing) close_ws(fd);
    else close(fd);
    printf("RESULT {\"rate\": %f, \"count\": %lu, \"seconds\": %f, \"cpu_s\": %f}\n", count / secs, count, secs, c);
}

static void push(void) {
    char path[128];
    snprintf(path, sizeof path, "/push?n=%zu&size=%zu", n, size);
    int fd = dial(path);
    double t0 = now(), c0 = cpu();
    size_t count = 0;
    for (;;) {
        uint64_t len;
        int op = next_frame(fd, &len, 0);
        if (op == 2) {
            if (len != size) {
                errno = 0;
                die("wrong message size");
            }
            count++;
        } else if (op == 1) {
            break; /* "done" */
        } else {
            errno = 0;
            die("unexpected frame");
        }
    }
    double secs = now() - t0, c = cpu() - c0;
    if (count != n) {
        errno = 0;
        die("wrong message count");
    }
    close_ws(fd);
    double rate = count / secs;
    printf("RESULT {\"rate\": %f, \"mbps\": %f, \"seconds\": %f, \"cpu_s\": %f}\n", rate, rate * size / 1e6, secs, c);
}

static void send_rate(void) {
    char path[128];
    snprintf(path, sizeof path, "/sink?n=%zu", n);
    int fd = dial(path);
    /* One masked frame, then a ~1 MiB block of copies. */
    static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t flen;
    unsigned char *frame = ws_frame(mask, &flen);
    size_t per = (1 << 20) / flen;
    if (per == 0) per = 1;
    unsigned char *block = malloc(per * flen);
    for (size_t i = 0; i < per; i++) memcpy(block + i * flen, frame, flen);
    double t0 = now(), c0 = cpu();
    size_t left = n;
    while (left >= per) {
        write_all(fd, block, per * flen);
        left -= per;
    }
    if (left) write_all(fd, block, left * flen);
    uint64_t len;
    int op = next_frame(fd, &len, 1);
    if (op != 1 || len != 4 || memcmp(buf + start, "done", 4) != 0) {
        errno = 0;
        die("expected done");
    }
    double secs = now() - t0, c = cpu() - c0;
    close_ws(fd);
    double rate = n / secs;
    printf("RESULT {\"rate\": %f, \"mbps\": %f, \"seconds\": %f, \"cpu_s\": %f}\n", rate, rate * size / 1e6, secs, c);
}

static void setup(void) {
    for (size_t i = 0; i < warmup && i < 20; i++) close_ws(dial("/echo"));
    double t0 = now(), c0 = cpu();
    unsigned long count = 0;
    while (now() - t0 < duration) {
        close_ws(dial("/echo"));
        count++;
    }
    double secs = now() - t0, c = cpu() - c0;
    printf("RESULT {\"rate\": %f, \"count\": %lu, \"seconds\": %f, \"cpu_s\": %f}\n", count / secs, count, secs, c);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (!strcmp(f, "--mode")) mode = v;
        else if (!strcmp(f, "--url")) {
            const char *colon = strrchr(v, ':');
            if (!colon) {
                fprintf(stderr, "bad url %s\n", v);
                return 2;
            }
            port = atoi(colon + 1);
        } else if (!strcmp(f, "--size")) size = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--n")) n = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--duration")) duration = atof(v);
        else if (!strcmp(f, "--warmup")) warmup = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--framing")) ws_framing = !strcmp(v, "ws");
        else {
            fprintf(stderr, "unknown flag %s\n", f);
            return 2;
        }
    }
    buf = malloc(BUF);
    if (!strcmp(mode, "rr")) rr();
    else if (!strcmp(mode, "push")) push();
    else if (!strcmp(mode, "send")) send_rate();
    else if (!strcmp(mode, "setup")) setup();
    else {
        fprintf(stderr, "raw client: mode %s not supported\n", mode);
        return 2;
    }
    return 0;
}
