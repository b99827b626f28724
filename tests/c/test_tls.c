/* wss:// against the test server's own CA. */
#include "harness.h"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    size_t got = fread(buf, 1, (size_t)len, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

/* Opens the TLS echo with `opts`, and either expects an echo round trip, or a failure whose
 * diagnostic contains `error` (when not NULL). */
static void tls_case(ws_options *opts, const char *error) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(tls_url("/echo"), opts, &r);
    if (!sock) return;
    if (error) {
        if (!rec_wait_close(&r, 10000)) test_failf(__FILE__, __LINE__, "no close");
        CHECK_EVENTS(&r, "error,close:1006::unclean");
        CHECK_CONTAINS(r.error_message, error);
    } else {
        if (!rec_wait_count(&r, 1, 10000)) test_failf(__FILE__, __LINE__, "no open");
        CHECK_OK(ws_send_text(sock, "secret"));
        if (!rec_wait_messages(&r, 1, 5000)) test_failf(__FILE__, __LINE__, "no echo");
        CHECK_OK(ws_close(sock, 1000, NULL, 0));
        if (!rec_wait_close(&r, 5000)) test_failf(__FILE__, __LINE__, "no close");
        CHECK_EVENTS(&r, "open,message:text:secret,close:1000::clean");
    }
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(tls_with_the_ca_file_option) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_add_ca_file(opts, tls_ca_path()));
    tls_case(opts, NULL);
    /* Only that CA, without the system roots, is enough too. */
    CHECK_OK(ws_options_set_default_roots(opts, false));
    tls_case(opts, NULL);
    CHECK_OK(ws_options_free(opts));
}

TEST(tls_with_the_ca_pem_option) {
    char *pem = read_file(tls_ca_path());
    REQUIRE(pem);
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_add_ca_pem(opts, pem));
    free(pem); /* copied */
    tls_case(opts, NULL);
    CHECK_OK(ws_options_free(opts));
}

TEST(tls_fails_without_the_ca) {
    tls_case(NULL, "TLS handshake");
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_set_default_roots(opts, false));
    tls_case(opts, "TLS handshake");
    CHECK_OK(ws_options_free(opts));
}

TEST(tls_insecure_option_skips_verification) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_set_insecure(opts, true));
    tls_case(opts, NULL);
    CHECK_OK(ws_options_free(opts));
}

TEST(tls_bad_trust_and_client_cert_settings_fail_the_connection) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_add_ca_file(opts, "/nonexistent/ca.pem"));
    tls_case(opts, "cannot read CA file /nonexistent/ca.pem");
    CHECK_OK(ws_options_free(opts));

    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_add_ca_pem(opts, "not a certificate"));
    tls_case(opts, "no PEM certificate");
    CHECK_OK(ws_options_free(opts));

    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_add_ca_file(opts, tls_ca_path()));
    CHECK_OK(ws_options_set_client_cert(opts, "not a certificate", "not a key"));
    tls_case(opts, "client certificate");
    CHECK_OK(ws_options_free(opts));
}
