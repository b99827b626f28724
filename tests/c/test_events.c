/* Event order for the scenarios of the test server, with callbacks on the library thread. */
#include "harness.h"

/* Opens `path` with a recorder, waits for its close, checks the events. */
static void expect_events(const char *u, const ws_options *opts, const char *expected) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(u, opts, &r);
    if (!sock) return;
    if (!rec_wait_close(&r, 10000)) test_failf(__FILE__, __LINE__, "%s: no close event", u);
    char *j = rec_joined(&r);
    if (strcmp(j, expected) != 0)
        test_failf(__FILE__, __LINE__, "%s: events \"%s\", expected \"%s\" (error: %s)", u, j,
                   expected, r.error_message);
    free(j);
    CHECK_INT(r.bad_state + r.bad_args, 0);
    CHECK_INT(ws_ready_state(sock), WS_CLOSED);
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(echo_text_binary_and_close) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url("/echo"), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    CHECK_INT(ws_ready_state(sock), WS_OPEN);
    CHECK_OK(ws_send_text(sock, "hello"));
    CHECK_OK(ws_send(sock, WS_MESSAGE_TEXT, "a\0b", 3)); /* text with a NUL character */
    CHECK_OK(ws_send_binary(sock, "\x00\x01\x02", 3));
    CHECK_OK(ws_send_text(sock, "h\xc3\xa9llo w\xc3\xb6rld")); /* UTF-8 */
    CHECK(ws_buffered_amount(sock) <= 5 + 3 + 3 + 13);
    REQUIRE(rec_wait_messages(&r, 4, 5000));
    CHECK_OK(ws_close(sock, 1000, "done", 4));
    CHECK_INT(ws_ready_state(sock), WS_CLOSING);
    /* Sending while CLOSING is not an error; the data is discarded but counted. */
    uint64_t before = ws_buffered_amount(sock);
    CHECK_OK(ws_send_text(sock, "late"));
    CHECK_INT(ws_buffered_amount(sock), before + 4);
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_EVENTS(&r, "open,message:text:hello,message:text:a,message:binary:3,"
                     "message:text:h\xc3\xa9llo w\xc3\xb6rld,close:1000:done:clean");
    CHECK_INT(r.bad_state + r.bad_args, 0);
    CHECK_INT(ws_ready_state(sock), WS_CLOSED);
    CHECK_OK(ws_close(sock, 1000, NULL, 0)); /* nothing to do when CLOSED */
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(server_close_with_code_and_reason) {
    expect_events(url("/close?code=4001&reason=bye%20now"), NULL, "open,close:4001:bye now:clean");
}

TEST(server_close_without_code_is_1005) {
    expect_events(url("/close?empty=1"), NULL, "open,close:1005::clean");
}

TEST(client_close_without_code_or_with_reason_only) {
    const char *tag_a = strdup(unique_tag("nocode"));
    const char *tag_b = strdup(unique_tag("reasononly"));
    char pa[128], pb[128];
    snprintf(pa, sizeof pa, "/echo?tag=%s", tag_a);
    snprintf(pb, sizeof pb, "/echo?tag=%s", tag_b);
    rec ra, rb;
    rec_init(&ra);
    rec_init(&rb);
    ws *a = open_recorded(url(pa), NULL, &ra);
    ws *b = open_recorded(url(pb), NULL, &rb);
    REQUIRE(a && b);
    REQUIRE(rec_wait_count(&ra, 1, 5000) && rec_wait_count(&rb, 1, 5000));
    CHECK_OK(ws_close(a, WS_CLOSE_NO_CODE, NULL, 0));
    CHECK_OK(ws_close(b, WS_CLOSE_NO_CODE, "why", 3)); /* a reason alone is sent with 1000 */
    REQUIRE(rec_wait_close(&ra, 5000) && rec_wait_close(&rb, 5000));
    CHECK_EVENTS(&ra, "open,close:1005::clean");
    CHECK_EVENTS(&rb, "open,close:1000:why:clean");
    char *oa = observed_connection(tag_a, "\"opcode\":8", 5000);
    char *ob = observed_connection(tag_b, "\"opcode\":8", 5000);
    CHECK_CONTAINS(oa, "\"opcode\":8,\"fin\":true,\"rsv\":0,\"masked\":true,\"payload_hex\":\"\"");
    CHECK_CONTAINS(ob, "\"payload_hex\":\"03e8776879\""); /* 1000 "why" */
    free(oa);
    free(ob);
    CHECK_OK(ws_free(a));
    CHECK_OK(ws_free(b));
    rec_destroy(&ra);
    rec_destroy(&rb);
    free((void *)tag_a);
    free((void *)tag_b);
}

TEST(handshake_failures_are_error_then_1006) {
    const char *paths[] = {"/raw?status=404", "/raw?status=500", "/raw?accept=bad",
                           "/raw?redirect=ws://127.0.0.1:1/echo", "/no-such-path"};
    enum { N = sizeof paths / sizeof paths[0] };
    rec r[N + 1];
    ws *s[N + 1];
    for (int i = 0; i < N; i++) {
        rec_init(&r[i]);
        s[i] = open_recorded(url(paths[i]), NULL, &r[i]);
    }
    /* Nothing listens on port 1: connection refused. */
    rec_init(&r[N]);
    s[N] = open_recorded("ws://127.0.0.1:1/echo", NULL, &r[N]);
    for (int i = 0; i <= N; i++) {
        const char *what = i < N ? paths[i] : "port 1";
        if (!s[i]) continue;
        if (!rec_wait_close(&r[i], 10000)) test_failf(__FILE__, __LINE__, "%s: no close", what);
        char *j = rec_joined(&r[i]);
        if (strcmp(j, "error,close:1006::unclean") != 0)
            test_failf(__FILE__, __LINE__, "%s: events %s", what, j);
        free(j);
        if (strlen(r[i].error_message) < 5)
            test_failf(__FILE__, __LINE__, "%s: no diagnostic in onerror", what);
        CHECK_INT(r[i].bad_state + r[i].bad_args, 0);
        CHECK_OK(ws_free(s[i]));
        rec_destroy(&r[i]);
    }
}

TEST(connect_timeout_option) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_set_connect_timeout(opts, 200));
    rec r;
    rec_init(&r);
    int64_t start = now_ms();
    ws *sock = open_recorded(url("/never-handshake"), opts, &r);
    CHECK_OK(ws_options_free(opts));
    REQUIRE(sock);
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK(now_ms() - start < 3000);
    CHECK_EVENTS(&r, "error,close:1006::unclean");
    CHECK_CONTAINS(r.error_message, "not established within");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(subprotocol_selection) {
    const char *protos[] = {"chat", "superchat"};
    rec r;
    rec_init(&r);
    ws *sock = NULL;
    ws_callbacks cb = rec_callbacks(&r);
    REQUIRE(ws_new(url("/protocol?select=superchat"), protos, 2, &sock) == WS_OK);
    sleep_ms(100);
    const char *before = ws_protocol(sock); /* "" until open is dispatched */
    CHECK_OK(ws_set_callbacks(sock, &cb));
    REQUIRE(rec_wait_count(&r, 1, 5000));
    CHECK_EVENTS(&r, "open");
    CHECK_STR(r.protocol_at_open, "superchat"); /* already set inside onopen */
    CHECK_STR(ws_protocol(sock), "superchat");
    CHECK(ws_protocol(sock) == ws_protocol(sock)); /* cached: one string until ws_free */
    CHECK_STR(before, "");                         /* an earlier pointer stays valid */
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);

    /* The server selecting a protocol that was not offered fails the connection. */
    rec_init(&r);
    REQUIRE(ws_new_with_options(url("/protocol?select=other"), protos, 2, NULL, &cb, &sock) ==
            WS_OK);
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_EVENTS(&r, "error,close:1006::unclean");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);

    /* Selecting none when some were offered fails too (WHATWG: the header must be there). */
    rec_init(&r);
    REQUIRE(ws_new_with_options(url("/protocol?none=1"), protos, 2, NULL, &cb, &sock) == WS_OK);
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_EVENTS(&r, "error,close:1006::unclean");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);

    /* Nothing offered, nothing selected: protocol is "". */
    rec_init(&r);
    REQUIRE(ws_new_with_options(url("/protocol?none=1"), NULL, 0, NULL, &cb, &sock) == WS_OK);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    CHECK_EVENTS(&r, "open");
    CHECK_STR(ws_protocol(sock), "");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(unrequested_extension_fails_the_connection) {
    expect_events(url("/extension?value=x-bogus"), NULL, "error,close:1006::unclean");
}

TEST(protocol_violations_fail_with_1006) {
    /* A reserved opcode (0x3): the client sends Close 1002, reports error then close 1006. */
    const char *tag = strdup(unique_tag("violation"));
    char path[256];
    snprintf(path, sizeof path, "/send?frames=8300&tag=%s", tag);
    expect_events(url(path), NULL, "open,error,close:1006::unclean");
    char *seen = observed_connection(tag, "\"opcode\":8", 5000);
    CHECK_CONTAINS(seen, "\"payload_hex\":\"03ea\""); /* 1002 */
    free(seen);
    free((void *)tag);
    /* A text message that is not UTF-8: Close 1007. */
    tag = strdup(unique_tag("badutf8"));
    snprintf(path, sizeof path, "/send?frames=8101ff&tag=%s", tag);
    expect_events(url(path), NULL, "open,error,close:1006::unclean");
    seen = observed_connection(tag, "\"opcode\":8", 5000);
    CHECK_CONTAINS(seen, "\"payload_hex\":\"03ef\""); /* 1007 */
    free(seen);
    free((void *)tag);
    /* A masked frame from the server. */
    expect_events(url("/send?frames=818100000000" "41"), NULL, "open,error,close:1006::unclean");
}

TEST(abrupt_drop_is_error_then_1006) {
    expect_events(url("/drop"), NULL, "open,error,close:1006::unclean");
    expect_events(url("/drop?rst=1"), NULL, "open,error,close:1006::unclean");
}

TEST(request_headers_option) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_add_header(opts, "X-Test", "yes"));
    CHECK_OK(ws_options_add_header(opts, "Authorization", "Bearer t0ken"));
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url("/headers"), opts, &r);
    CHECK_OK(ws_options_free(opts));
    REQUIRE(sock);
    REQUIRE(rec_wait_messages(&r, 1, 5000));
    pthread_mutex_lock(&r.mu);
    CHECK_CONTAINS(r.first_text, "\"x-test\":\"yes\"");
    CHECK_CONTAINS(r.first_text, "\"authorization\":\"Bearer t0ken\"");
    pthread_mutex_unlock(&r.mu);
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(close_while_connecting_aborts) {
    rec r;
    rec_init(&r);
    ws *sock = NULL;
    REQUIRE(ws_new(url("/delay-handshake?ms=500"), NULL, 0, &sock) == WS_OK);
    CHECK_OK(ws_close(sock, WS_CLOSE_NO_CODE, NULL, 0));
    CHECK_INT(ws_ready_state(sock), WS_CLOSING);
    sleep_ms(100);
    /* The error and close events wait for a callback: readyState changes when they run. */
    CHECK_INT(ws_ready_state(sock), WS_CLOSING);
    /* All callbacks at once: with separate setters, the first (onopen) would release the
     * waiting error and close events before their callbacks are set. */
    ws_callbacks cb = rec_callbacks(&r);
    CHECK_OK(ws_set_callbacks(sock, &cb));
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_EVENTS(&r, "error,close:1006::unclean");
    sleep_ms(700); /* the handshake would have completed by now: still no open */
    CHECK_EVENTS(&r, "error,close:1006::unclean");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(close_timeout_option) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_set_close_timeout(opts, 300));
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url("/no-close-reply"), opts, &r);
    CHECK_OK(ws_options_free(opts));
    REQUIRE(sock);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    int64_t start = now_ms();
    CHECK_OK(ws_close(sock, 1000, NULL, 0));
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK(now_ms() - start < 2000);
    CHECK_EVENTS(&r, "open,error,close:1006::unclean");
    CHECK_CONTAINS(r.error_message, "did not answer our Close frame");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(max_message_size_fails_with_1009) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_set_max_message_size(opts, 100));
    const char *tag = strdup(unique_tag("toobig"));
    char path[128];
    snprintf(path, sizeof path, "/push?n=1&size=1000&tag=%s", tag);
    expect_events(url(path), opts, "open,error,close:1006::unclean");
    char *seen = observed_connection(tag, "\"opcode\":8", 5000);
    CHECK_CONTAINS(seen, "\"payload_hex\":\"03f1\""); /* 1009 */
    free(seen);
    free((void *)tag);
    /* The frame size limit too. */
    CHECK_OK(ws_options_set_max_message_size(opts, 1 << 20));
    CHECK_OK(ws_options_set_max_frame_size(opts, 100));
    expect_events(url("/push?n=1&size=1000"), opts, "open,error,close:1006::unclean");
    CHECK_OK(ws_options_free(opts));
}

TEST(max_buffered_amount_fails_the_connection) {
    ws_options *opts;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_OK(ws_options_set_max_buffered_amount(opts, 16));
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url("/echo"), opts, &r);
    CHECK_OK(ws_options_free(opts));
    REQUIRE(sock);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    char big[100];
    memset(big, 'b', sizeof big);
    CHECK_OK(ws_send_binary(sock, big, sizeof big)); /* not an exception, as in a browser */
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_EVENTS(&r, "open,error,close:1006::unclean");
    CHECK_CONTAINS(r.error_message, "send buffer is full");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(many_messages_arrive_in_order) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url("/push?n=1000&size=4&type=text"), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_messages(&r, 1001, 10000));
    pthread_mutex_lock(&r.mu);
    CHECK_STR(r.events[0], "open");
    for (int i = 1; i <= 1000; i++) CHECK_STR(r.events[i], "message:text:xxxx");
    CHECK_STR(r.events[1001], "message:text:done");
    pthread_mutex_unlock(&r.mu);
    CHECK_OK(ws_close(sock, 1000, NULL, 0));
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(free_open_socket_sends_1001_and_silences_callbacks) {
    const char *tag = strdup(unique_tag("free1001"));
    char path[128];
    snprintf(path, sizeof path, "/echo?tag=%s", tag);
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url(path), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    CHECK_OK(ws_free(sock));
    char *seen = observed_connection(tag, "\"opcode\":8", 5000);
    CHECK_CONTAINS(seen, "\"payload_hex\":\"03e9\""); /* 1001 going away */
    free(seen);
    sleep_ms(300); /* the server's Close reply arrived: no callback reports it */
    CHECK_EVENTS(&r, "open");
    rec_destroy(&r);
    free((void *)tag);
}

TEST(free_connecting_socket_fires_nothing) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url("/delay-handshake?ms=200"), NULL, &r);
    REQUIRE(sock);
    CHECK_OK(ws_free(sock));
    sleep_ms(500);
    CHECK_EVENTS(&r, "");
    rec_destroy(&r);
}
