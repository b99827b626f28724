/* Options beyond the browser API: proxy, keepalive, compression. (Headers, TLS, timeouts and
 * size limits are covered with their scenarios in test_events.c and test_tls.c.) */
#include "harness.h"

#include <unistd.h>

/* Opens u with opts, waits for open, checks an echo, closes; returns the first text. */
static void echo_round_trip(const char *u, ws_options *opts, const char *expect_error) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(u, opts, &r);
    if (!sock) return;
    if (expect_error) {
        if (!rec_wait_close(&r, 10000)) test_failf(__FILE__, __LINE__, "%s: no close", u);
        CHECK_EVENTS(&r, "error,close:1006::unclean");
        CHECK_CONTAINS(r.error_message, expect_error);
    } else {
        if (!rec_wait_count(&r, 1, 10000)) test_failf(__FILE__, __LINE__, "%s: no open", u);
        CHECK_OK(ws_send_text(sock, "through"));
        if (!rec_wait_messages(&r, 1, 5000)) test_failf(__FILE__, __LINE__, "%s: no echo", u);
        CHECK_OK(ws_close(sock, 1000, NULL, 0));
        if (!rec_wait_close(&r, 5000)) test_failf(__FILE__, __LINE__, "%s: no close", u);
        CHECK_EVENTS(&r, "open,message:text:through,close:1000::clean");
    }
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(proxy_option) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_RESULT(ws_options_set_proxy(NULL, NULL), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_proxy(opts, "gopher://127.0.0.1:1"), WS_SYNTAX_ERROR);
    CHECK_CONTAINS(ws_last_error_message(), "invalid proxy");
    CHECK_RESULT(ws_options_set_proxy(opts, "http://user:s3cret@[::1"), WS_SYNTAX_ERROR);
    CHECK(strstr(ws_last_error_message(), "s3cret") == NULL); /* never shows the password */
    CHECK_RESULT(ws_options_set_proxy(opts, "\xff"), WS_INVALID_UTF8);

    /* Through the test server's HTTP CONNECT proxy. */
    char proxy[128];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%s", getenv("WSDOM_TEST_PROXY_PORT"));
    CHECK_OK(ws_options_set_proxy(opts, proxy));
    echo_round_trip(url("/echo"), opts, NULL);
    /* A proxy that is not there: the connection fails (so the setting is used). */
    CHECK_OK(ws_options_set_proxy(opts, "http://127.0.0.1:1"));
    echo_round_trip(url("/echo"), opts, "127.0.0.1:1");
    /* Direct, and back to the environment. */
    CHECK_OK(ws_options_set_proxy(opts, ""));
    echo_round_trip(url("/echo"), opts, NULL);
    CHECK_OK(ws_options_set_proxy(opts, NULL));
    echo_round_trip(url("/echo"), opts, NULL);
    CHECK_OK(ws_options_free(opts));
}

/* ws and wss through every proxy kind (HTTP CONNECT, HTTPS, SOCKS5, SOCKS5h), with and without
 * authentication; a wrong password fails without showing it. */
TEST(every_proxy_kind_for_ws_and_wss) {
    const char *kinds[] = {"http", "https", "socks5", "socks5h"};
    const char *servers[] = {"HTTP", "HTTPS", "SOCKS5", "SOCKS5"}; /* socks5h: same server */
    for (size_t k = 0; k < 4; k++) {
        for (int a = 0; a < 2; a++) {
            char var[64], proxy[160];
            snprintf(var, sizeof var, "WSDOM_TEST_PROXY_%s_%s", servers[k], a ? "USER" : "NONE");
            const char *port = getenv(var);
            REQUIRE(port != NULL);
            const char *host = strcmp(kinds[k], "https") == 0 ? "localhost" : "127.0.0.1";
            snprintf(proxy, sizeof proxy, "%s://%s%s:%s", kinds[k], a ? "user:p%40ss@" : "", host, port);
            ws_options *opts;
            REQUIRE(ws_options_new(&opts) == WS_OK);
            CHECK_OK(ws_options_set_proxy(opts, proxy));
            CHECK_OK(ws_options_add_ca_file(opts, tls_ca_path()));
            if (strcmp(kinds[k], "https") == 0)
                CHECK_OK(ws_options_add_ca_file(opts, getenv(a ? "WSDOM_TEST_PROXY_CA_USER" : "WSDOM_TEST_PROXY_CA_NONE")));
            echo_round_trip(url("/echo"), opts, NULL);
            echo_round_trip(tls_url("/echo"), opts, NULL);
            if (a) {
                snprintf(proxy, sizeof proxy, "%s://user:Wr0ngPw@%s:%s", kinds[k], host, port);
                CHECK_OK(ws_options_set_proxy(opts, proxy));
                rec r;
                rec_init(&r);
                ws *sock = open_recorded(url("/echo"), opts, &r);
                REQUIRE(sock);
                REQUIRE(rec_wait_close(&r, 10000));
                CHECK_EVENTS(&r, "error,close:1006::unclean");
                CHECK_CONTAINS(r.error_message, port);
                CHECK(strstr(r.error_message, "Wr0ngPw") == NULL);
                CHECK_OK(ws_free(sock));
                rec_destroy(&r);
            }
            CHECK_OK(ws_options_free(opts));
        }
    }
}

TEST(keepalive_option_sends_pings) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_RESULT(ws_options_set_pong_timeout(opts, 0), WS_INVALID_ARGUMENT);
    CHECK_RESULT(ws_options_set_ping_interval(NULL, 100), WS_NULL_ARGUMENT);
    CHECK_OK(ws_options_set_pong_timeout(opts, 2000));
    CHECK_OK(ws_options_set_ping_interval(opts, 100));
    const char *tag = strdup(unique_tag("keepalive"));
    char path[128];
    snprintf(path, sizeof path, "/echo?tag=%s", tag);
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url(path), opts, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    char *seen = observed_connection(tag, "\"opcode\":9", 5000);
    CHECK(seen != NULL); /* the server saw a ping */
    free(seen);
    CHECK_OK(ws_close(sock, 1000, NULL, 0));
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_EVENTS(&r, "open,close:1000::clean"); /* pongs kept it alive */
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
    /* 0 turns keepalive off again. */
    CHECK_OK(ws_options_set_ping_interval(opts, 0));
    CHECK_OK(ws_options_free(opts));
    free((void *)tag);
}

static char *first_text_of(const char *u, ws_options *opts, char *extensions, size_t n) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(u, opts, &r);
    char *text = NULL;
    if (sock && rec_wait_count(&r, 1, 5000)) {
        snprintf(extensions, n, "%s", ws_extensions(sock));
        CHECK_OK(ws_send_text(sock, "compressible compressible compressible"));
        if (rec_wait_messages(&r, 1, 5000)) {
            pthread_mutex_lock(&r.mu);
            text = strdup(r.first_text);
            pthread_mutex_unlock(&r.mu);
        }
    }
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
    return text;
}

TEST(deflate_option) {
    char ext[256];
    /* Offered by default, as browsers do; /headers shows the request. */
    char *headers = first_text_of(url("/headers"), NULL, ext, sizeof ext);
    CHECK_CONTAINS(headers, "permessage-deflate");
    free(headers);
    /* Negotiated with /deflate: extensions says so, and messages round-trip. */
    char *echo = first_text_of(url("/deflate"), NULL, ext, sizeof ext);
    CHECK_CONTAINS(ext, "permessage-deflate");
    CHECK_STR(echo, "compressible compressible compressible");
    free(echo);
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_set_deflate_threshold(opts, 1000)); /* short messages uncompressed */
    echo = first_text_of(url("/deflate"), opts, ext, sizeof ext);
    CHECK_STR(echo, "compressible compressible compressible");
    free(echo);
    /* Turned off: not offered. */
    CHECK_OK(ws_options_set_deflate(opts, false));
    headers = first_text_of(url("/headers"), opts, ext, sizeof ext);
    CHECK(headers && strstr(headers, "permessage-deflate") == NULL);
    free(headers);
    echo = first_text_of(url("/deflate"), opts, ext, sizeof ext);
    CHECK_STR(ext, "");
    CHECK_STR(echo, "compressible compressible compressible");
    free(echo);
    CHECK_RESULT(ws_options_set_deflate(NULL, false), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_deflate_threshold(NULL, 1), WS_NULL_ARGUMENT);
    CHECK_OK(ws_options_free(opts));
}

/* Compressed size of a ~40 KB JSON-like text on the wire at `level` (0: the default), read
 * from what the server observed; -1 if anything failed. */
static long wire_bytes_at_level(int level) {
    static int seq;
    char tag[64], u[256];
    snprintf(tag, sizeof tag, "level-%d-%d-%d", level, (int)getpid(), ++seq);
    snprintf(u, sizeof u, "%s?%s", url("/deflate"), tag);
    size_t cap = 64 << 10, len = 0;
    char *text = malloc(cap);
    for (unsigned i = 0; len < 40000; i++)
        len += (size_t)snprintf(text + len, cap - len, "{\"id\":%u,\"name\":\"user %u\",\"score\":%u},",
                                i * 7919 % 100003, i % 97, i * 31 % 1000);
    ws_options *opts = NULL;
    CHECK_OK(ws_options_new(&opts));
    if (level) CHECK_OK(ws_options_set_deflate_level(opts, level));
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(u, opts, &r);
    long wire = -1;
    if (sock && rec_wait_count(&r, 1, 5000)) {
        CHECK_OK(ws_send_text(sock, text));
        CHECK(rec_wait_messages(&r, 1, 5000));
        CHECK_OK(ws_close(sock, 1000, NULL, 0));
        char *seen = observed_connection(tag, "\"opcode\":8", 5000);
        /* The first text frame: compressed (RSV1, "rsv":4), its payload as hex. */
        char *frame = seen ? strstr(seen, "{\"opcode\":1,") : NULL;
        char *hex = frame ? strstr(frame, "\"payload_hex\":\"") : NULL;
        if (frame && hex) {
            CHECK(strncmp(strstr(frame, "\"rsv\":"), "\"rsv\":4", 7) == 0);
            hex += strlen("\"payload_hex\":\"");
            wire = (long)(strchr(hex, '"') - hex) / 2;
        }
        free(seen);
    }
    CHECK_OK(ws_free(sock));
    CHECK_OK(ws_options_free(opts));
    rec_destroy(&r);
    free(text);
    return wire;
}

TEST(deflate_level_option) {
    long fast = wire_bytes_at_level(1), dflt = wire_bytes_at_level(0), best = wire_bytes_at_level(9);
    CHECK(fast > 0 && dflt > 0 && best > 0);
    /* The default (6) and 9 put far fewer bytes on the wire than level 1. */
    CHECK(dflt * 5 < fast * 4);
    CHECK(best * 5 < fast * 4);
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_RESULT(ws_options_set_deflate_level(opts, 0), WS_INVALID_ARGUMENT);
    CHECK_RESULT(ws_options_set_deflate_level(opts, 10), WS_INVALID_ARGUMENT);
    CHECK_RESULT(ws_options_set_deflate_level(NULL, 6), WS_NULL_ARGUMENT);
    CHECK_OK(ws_options_free(opts));
}
