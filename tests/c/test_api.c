/* The synchronous API: arguments, errors, getters, handles, options. */
#include "harness.h"

/* In the library but not in the header: makes the panic boundary catch a panic. */
ws_result wsdom_test_panic(int32_t kind);

TEST(version_and_result_names) {
    CHECK(ws_version() != NULL && ws_version()[0] != 0);
    CHECK_STR(ws_result_name(WS_OK), "WS_OK");
    CHECK_STR(ws_result_name(WS_SYNTAX_ERROR), "WS_SYNTAX_ERROR");
    CHECK_STR(ws_result_name(WS_INVALID_STATE_ERROR), "WS_INVALID_STATE_ERROR");
    CHECK_STR(ws_result_name(WS_INVALID_ACCESS_ERROR), "WS_INVALID_ACCESS_ERROR");
    CHECK_STR(ws_result_name(WS_NULL_ARGUMENT), "WS_NULL_ARGUMENT");
    CHECK_STR(ws_result_name(WS_INVALID_UTF8), "WS_INVALID_UTF8");
    CHECK_STR(ws_result_name(WS_OUT_OF_MEMORY), "WS_OUT_OF_MEMORY");
    CHECK_STR(ws_result_name(WS_PANIC), "WS_PANIC");
    CHECK_STR(ws_result_name(WS_INVALID_HANDLE), "WS_INVALID_HANDLE");
    CHECK_STR(ws_result_name(WS_INVALID_ARGUMENT), "WS_INVALID_ARGUMENT");
    CHECK_STR(ws_result_name(WS_IO_ERROR), "WS_IO_ERROR");
    CHECK_STR(ws_result_name(-1), "WS_UNKNOWN_RESULT");
    CHECK_STR(ws_result_name(1000), "WS_UNKNOWN_RESULT");
    CHECK_INT(WS_CONNECTING, 0);
    CHECK_INT(WS_OPEN, 1);
    CHECK_INT(WS_CLOSING, 2);
    CHECK_INT(WS_CLOSED, 3);
    CHECK_STR(ws_last_error_message(), "");
}

TEST(new_rejects_null_arguments) {
    ws *sock = (ws *)0x1;
    CHECK_RESULT(ws_new(NULL, NULL, 0, &sock), WS_NULL_ARGUMENT);
    CHECK(sock == NULL); /* *out is cleared on failure */
    CHECK_CONTAINS(ws_last_error_message(), "url is NULL");
    CHECK_RESULT(ws_new(url("/echo"), NULL, 0, NULL), WS_NULL_ARGUMENT);
    CHECK_CONTAINS(ws_last_error_message(), "out is NULL");
    CHECK_RESULT(ws_new(url("/echo"), NULL, 2, &sock), WS_NULL_ARGUMENT);
    CHECK_CONTAINS(ws_last_error_message(), "protocols");
    const char *protos[] = {"chat", NULL};
    CHECK_RESULT(ws_new(url("/echo"), protos, 2, &sock), WS_NULL_ARGUMENT);
    CHECK_CONTAINS(ws_last_error_message(), "protocols[1] is NULL");
    CHECK_RESULT(ws_new_with_options(NULL, NULL, 0, NULL, NULL, &sock), WS_NULL_ARGUMENT);
    CHECK(sock == NULL);
}

TEST(new_syntax_errors) {
    ws *sock = NULL;
    CHECK_RESULT(ws_new("ftp://127.0.0.1/", NULL, 0, &sock), WS_SYNTAX_ERROR);
    CHECK_CONTAINS(ws_last_error_message(), "WS_SYNTAX_ERROR: SyntaxError");
    CHECK_RESULT(ws_new("not a url", NULL, 0, &sock), WS_SYNTAX_ERROR);
    CHECK_RESULT(ws_new("/relative", NULL, 0, &sock), WS_SYNTAX_ERROR);
    CHECK_RESULT(ws_new("ws://127.0.0.1/#fragment", NULL, 0, &sock), WS_SYNTAX_ERROR);
    const char *bad[] = {"has space"};
    CHECK_RESULT(ws_new(url("/echo"), bad, 1, &sock), WS_SYNTAX_ERROR);
    const char *twice[] = {"chat", "chat"};
    CHECK_RESULT(ws_new(url("/echo"), twice, 2, &sock), WS_SYNTAX_ERROR);
    const char *empty[] = {""};
    CHECK_RESULT(ws_new(url("/echo"), empty, 1, &sock), WS_SYNTAX_ERROR);
    CHECK(sock == NULL);
}

TEST(new_invalid_utf8) {
    ws *sock = NULL;
    CHECK_RESULT(ws_new("ws://127.0.0.1/\xff", NULL, 0, &sock), WS_INVALID_UTF8);
    CHECK_CONTAINS(ws_last_error_message(), "url is not valid UTF-8");
    const char *bad[] = {"ok", "\xc3\x28"};
    CHECK_RESULT(ws_new(url("/echo"), bad, 2, &sock), WS_INVALID_UTF8);
    CHECK_CONTAINS(ws_last_error_message(), "protocols[1]");
    CHECK(sock == NULL);
}

TEST(getters_before_open_and_url_rewrite) {
    ws *sock = NULL;
    char u[256];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/delay-handshake?ms=300", server_port());
    REQUIRE(ws_new(u, NULL, 0, &sock) == WS_OK);
    char expected[256];
    snprintf(expected, sizeof expected, "ws://127.0.0.1:%d/delay-handshake?ms=300", server_port());
    CHECK_STR(ws_url(sock), expected);
    const char *url_ptr = ws_url(sock);
    CHECK(ws_url(sock) == url_ptr); /* the same string until ws_free */
    CHECK_INT(ws_ready_state(sock), WS_CONNECTING);
    CHECK_STR(ws_protocol(sock), "");
    CHECK_STR(ws_extensions(sock), "");
    CHECK_INT(ws_buffered_amount(sock), 0);
    CHECK_OK(ws_free(sock));
}

TEST(calls_on_null_and_freed_handles_never_crash) {
    /* NULL handles. */
    CHECK_INT(ws_ready_state(NULL), -1);
    CHECK_CONTAINS(ws_last_error_message(), "WS_NULL_ARGUMENT");
    CHECK_INT(ws_buffered_amount(NULL), 0);
    CHECK_STR(ws_url(NULL), "");
    CHECK_STR(ws_protocol(NULL), "");
    CHECK_STR(ws_extensions(NULL), "");
    CHECK_RESULT(ws_send_text(NULL, "x"), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_send_binary(NULL, "x", 1), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_send(NULL, WS_MESSAGE_TEXT, "x", 1), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_close(NULL, WS_CLOSE_NO_CODE, NULL, 0), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_set_onopen(NULL, NULL, NULL), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_set_onmessage(NULL, NULL, NULL), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_set_onerror(NULL, NULL, NULL), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_set_onclose(NULL, NULL, NULL), WS_NULL_ARGUMENT);
    ws_callbacks cb = {0};
    CHECK_RESULT(ws_set_callbacks(NULL, &cb), WS_NULL_ARGUMENT);
    CHECK_OK(ws_free(NULL)); /* like free(NULL) */
    CHECK_OK(ws_options_free(NULL));

    /* A freed handle, and another one still alive: the live one is unaffected. */
    ws *a = NULL, *b = NULL;
    REQUIRE(ws_new(url("/echo"), NULL, 0, &a) == WS_OK);
    REQUIRE(ws_new(url("/echo"), NULL, 0, &b) == WS_OK);
    CHECK(a != b);
    CHECK_OK(ws_free(a));
    CHECK_RESULT(ws_free(a), WS_INVALID_HANDLE); /* double free is detected */
    CHECK_CONTAINS(ws_last_error_message(), "not a live ws handle");
    CHECK_INT(ws_ready_state(a), -1);
    CHECK_CONTAINS(ws_last_error_message(), "WS_INVALID_HANDLE");
    CHECK_INT(ws_buffered_amount(a), 0);
    CHECK_STR(ws_url(a), "");
    CHECK_STR(ws_protocol(a), "");
    CHECK_STR(ws_extensions(a), "");
    CHECK_RESULT(ws_send_text(a, "x"), WS_INVALID_HANDLE);
    CHECK_RESULT(ws_send_binary(a, "x", 1), WS_INVALID_HANDLE);
    CHECK_RESULT(ws_close(a, 1000, NULL, 0), WS_INVALID_HANDLE);
    CHECK_RESULT(ws_set_onopen(a, NULL, NULL), WS_INVALID_HANDLE);
    CHECK_RESULT(ws_set_callbacks(a, &cb), WS_INVALID_HANDLE);
    /* A pointer that never was a handle. */
    int not_a_handle;
    CHECK_RESULT(ws_send_text((ws *)&not_a_handle, "x"), WS_INVALID_HANDLE);
    CHECK_RESULT(ws_free((ws *)&not_a_handle), WS_INVALID_HANDLE);
    CHECK_RESULT(ws_options_free((ws_options *)&not_a_handle), WS_INVALID_HANDLE);
    /* b still works. */
    CHECK(ws_ready_state(b) >= WS_CONNECTING);
    CHECK_CONTAINS(ws_url(b), "/echo");
    CHECK_RESULT(ws_set_callbacks(b, NULL), WS_NULL_ARGUMENT);
    CHECK_CONTAINS(ws_last_error_message(), "callbacks is NULL");
    CHECK_OK(ws_free(b));
}

TEST(send_while_connecting_is_invalid_state) {
    ws *sock = NULL;
    REQUIRE(ws_new(url("/never-handshake"), NULL, 0, &sock) == WS_OK);
    CHECK_RESULT(ws_send_text(sock, "early"), WS_INVALID_STATE_ERROR);
    CHECK_CONTAINS(ws_last_error_message(), "InvalidStateError");
    CHECK_CONTAINS(ws_last_error_message(), "CONNECTING");
    CHECK_RESULT(ws_send_binary(sock, "ab", 2), WS_INVALID_STATE_ERROR);
    CHECK_RESULT(ws_send(sock, WS_MESSAGE_TEXT, "ab", 2), WS_INVALID_STATE_ERROR);
    CHECK_INT(ws_buffered_amount(sock), 0);
    CHECK_OK(ws_free(sock));
}

TEST(send_argument_errors) {
    rec r;
    rec_init(&r);
    ws *sock = open_recorded(url("/echo"), NULL, &r);
    REQUIRE(sock);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    CHECK_RESULT(ws_send_text(sock, NULL), WS_NULL_ARGUMENT);
    CHECK_CONTAINS(ws_last_error_message(), "text is NULL");
    CHECK_RESULT(ws_send_text(sock, "bad \xff utf-8"), WS_INVALID_UTF8);
    CHECK_CONTAINS(ws_last_error_message(), "offset 4");
    /* An encoded surrogate is not UTF-8 either. */
    CHECK_RESULT(ws_send(sock, WS_MESSAGE_TEXT, "\xed\xa0\x80", 3), WS_INVALID_UTF8);
    CHECK_RESULT(ws_send(sock, 7, "x", 1), WS_INVALID_ARGUMENT);
    CHECK_CONTAINS(ws_last_error_message(), "message_type 7");
    CHECK_RESULT(ws_send(sock, WS_MESSAGE_BINARY, NULL, 5), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_send_binary(sock, NULL, 5), WS_NULL_ARGUMENT);
    char small[1] = {0};
    CHECK_RESULT(ws_send(sock, WS_MESSAGE_BINARY, small, SIZE_MAX), WS_INVALID_ARGUMENT);
    /* A length no allocation can satisfy: reported, and the buffer is never read. */
    CHECK_RESULT(ws_send_binary(sock, small, (size_t)1 << 50), WS_OUT_OF_MEMORY);
    CHECK_CONTAINS(ws_last_error_message(), "cannot allocate a copy of data");
    CHECK_INT(ws_buffered_amount(sock), 0);
    /* Empty messages are fine, with or without a pointer. */
    CHECK_OK(ws_send_binary(sock, NULL, 0));
    CHECK_OK(ws_send(sock, WS_MESSAGE_TEXT, NULL, 0));
    REQUIRE(rec_wait_messages(&r, 2, 5000));
    CHECK_OK(ws_close(sock, 1000, NULL, 0));
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_EVENTS(&r, "open,message:binary:0,message:text:,close:1000::clean");
    CHECK_INT(r.bad_args + r.bad_state, 0);
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(close_argument_errors) {
    ws *sock = NULL;
    REQUIRE(ws_new(url("/never-handshake"), NULL, 0, &sock) == WS_OK);
    CHECK_RESULT(ws_close(sock, 999, NULL, 0), WS_INVALID_ACCESS_ERROR);
    CHECK_CONTAINS(ws_last_error_message(), "InvalidAccessError");
    CHECK_RESULT(ws_close(sock, 0, NULL, 0), WS_INVALID_ACCESS_ERROR);
    CHECK_RESULT(ws_close(sock, 1001, NULL, 0), WS_INVALID_ACCESS_ERROR);
    CHECK_RESULT(ws_close(sock, 2999, NULL, 0), WS_INVALID_ACCESS_ERROR);
    CHECK_RESULT(ws_close(sock, 5000, NULL, 0), WS_INVALID_ACCESS_ERROR);
    CHECK_RESULT(ws_close(sock, 70000, NULL, 0), WS_INVALID_ACCESS_ERROR);
    CHECK_RESULT(ws_close(sock, -2, NULL, 0), WS_INVALID_ACCESS_ERROR);
    char long_reason[124];
    memset(long_reason, 'r', sizeof long_reason);
    CHECK_RESULT(ws_close(sock, 1000, long_reason, 124), WS_SYNTAX_ERROR);
    CHECK_CONTAINS(ws_last_error_message(), "123");
    /* The code is checked before the reason. */
    CHECK_RESULT(ws_close(sock, 1234, long_reason, 124), WS_INVALID_ACCESS_ERROR);
    CHECK_RESULT(ws_close(sock, 1000, "\xff", 1), WS_INVALID_UTF8);
    CHECK_CONTAINS(ws_last_error_message(), "reason");
    CHECK_RESULT(ws_close(sock, 1000, NULL, 3), WS_NULL_ARGUMENT);
    /* None of these changed the state. */
    CHECK_INT(ws_ready_state(sock), WS_CONNECTING);
    /* 123 bytes and codes 3000/4999 are fine (this one aborts the connection attempt). */
    CHECK_OK(ws_close(sock, 4999, long_reason, 123));
    CHECK_INT(ws_ready_state(sock), WS_CLOSING);
    CHECK_OK(ws_close(sock, 3000, NULL, 0)); /* nothing more while CLOSING */
    CHECK_OK(ws_free(sock));
}

TEST(options_errors) {
    ws_options *opts = NULL;
    CHECK_RESULT(ws_options_new(NULL), WS_NULL_ARGUMENT);
    REQUIRE(ws_options_new(&opts) == WS_OK);
    CHECK_INT(ws_live_handles(), 1);
    CHECK_RESULT(ws_options_add_header(NULL, "A", "b"), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_add_header(opts, NULL, "b"), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_add_header(opts, "A", NULL), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_add_header(opts, "Bad Name", "b"), WS_SYNTAX_ERROR);
    CHECK_RESULT(ws_options_add_header(opts, "Sec-WebSocket-Key", "b"), WS_SYNTAX_ERROR);
    CHECK_CONTAINS(ws_last_error_message(), "set by the WebSocket handshake");
    CHECK_RESULT(ws_options_add_header(opts, "Host", "b"), WS_SYNTAX_ERROR);
    CHECK_RESULT(ws_options_add_header(opts, "X-A", "line\r\nbreak"), WS_SYNTAX_ERROR);
    CHECK_RESULT(ws_options_add_header(opts, "X-\xff", "b"), WS_INVALID_UTF8);
    CHECK_RESULT(ws_options_add_header(opts, "X-A", "\xff"), WS_INVALID_UTF8);
    CHECK_RESULT(ws_options_add_ca_file(opts, NULL), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_add_ca_pem(opts, NULL), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_add_ca_pem(opts, "\xff"), WS_INVALID_UTF8);
    CHECK_RESULT(ws_options_set_client_cert(opts, NULL, "k"), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_client_cert(opts, "c", NULL), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_connect_timeout(opts, 0), WS_INVALID_ARGUMENT);
    CHECK_RESULT(ws_options_set_close_timeout(opts, 0), WS_INVALID_ARGUMENT);
    CHECK_RESULT(ws_options_set_max_message_size(opts, 0), WS_INVALID_ARGUMENT);
    CHECK_RESULT(ws_options_set_max_frame_size(opts, 0), WS_INVALID_ARGUMENT);
    CHECK_RESULT(ws_options_set_max_buffered_amount(opts, 0), WS_INVALID_ARGUMENT);
    CHECK_CONTAINS(ws_last_error_message(), "max_buffered_amount");
    CHECK_RESULT(ws_options_set_base_url(opts, "\xff"), WS_INVALID_UTF8);
    CHECK_RESULT(ws_options_set_insecure(NULL, true), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_default_roots(NULL, true), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_manual_dispatch(NULL, true), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_connect_timeout(NULL, 1), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_close_timeout(NULL, 1), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_max_message_size(NULL, 1), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_max_frame_size(NULL, 1), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_max_buffered_amount(NULL, 1), WS_NULL_ARGUMENT);
    CHECK_RESULT(ws_options_set_base_url(NULL, NULL), WS_NULL_ARGUMENT);
    /* Valid settings. */
    CHECK_OK(ws_options_add_header(opts, "X-Ok", "yes"));
    CHECK_OK(ws_options_set_connect_timeout(opts, 1000));
    CHECK_OK(ws_options_set_close_timeout(opts, 1000));
    CHECK_OK(ws_options_set_max_message_size(opts, 1 << 20));
    CHECK_OK(ws_options_set_max_frame_size(opts, 1 << 20));
    CHECK_OK(ws_options_set_max_buffered_amount(opts, 1 << 20));
    CHECK_OK(ws_options_set_insecure(opts, false));
    CHECK_OK(ws_options_set_default_roots(opts, true));
    CHECK_OK(ws_options_set_base_url(opts, NULL));
    CHECK_OK(ws_options_set_manual_dispatch(opts, false));
    /* A header that failed validation was not kept: a socket can still be created. */
    ws *sock = NULL;
    CHECK_OK(ws_new_with_options(url("/echo"), NULL, 0, opts, NULL, &sock));
    CHECK_OK(ws_free(sock));
    /* Freed options. */
    CHECK_OK(ws_options_free(opts));
    CHECK_RESULT(ws_options_free(opts), WS_INVALID_HANDLE);
    CHECK_RESULT(ws_options_add_header(opts, "X-A", "b"), WS_INVALID_HANDLE);
    CHECK_RESULT(ws_options_set_insecure(opts, true), WS_INVALID_HANDLE);
    sock = (ws *)0x1;
    CHECK_RESULT(ws_new_with_options(url("/echo"), NULL, 0, opts, NULL, &sock), WS_INVALID_HANDLE);
    CHECK(sock == NULL);
    CHECK_CONTAINS(ws_last_error_message(), "ws_options");
}

TEST(relative_url_with_base_url_option) {
    ws_options *opts = NULL;
    REQUIRE(ws_options_new(&opts) == WS_OK);
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/app/page.html", server_port());
    CHECK_OK(ws_options_set_base_url(opts, base));
    rec r;
    rec_init(&r);
    ws *sock = open_recorded("../echo", opts, &r);
    CHECK_OK(ws_options_free(opts)); /* the socket keeps its copy */
    REQUIRE(sock);
    char expected[128];
    snprintf(expected, sizeof expected, "ws://127.0.0.1:%d/echo", server_port());
    CHECK_STR(ws_url(sock), expected);
    REQUIRE(rec_wait_count(&r, 1, 5000));
    CHECK_OK(ws_close(sock, WS_CLOSE_NO_CODE, NULL, 0));
    REQUIRE(rec_wait_close(&r, 5000));
    CHECK_EVENTS(&r, "open,close:1005::clean");
    CHECK_OK(ws_free(sock));
    rec_destroy(&r);
}

TEST(panic_is_caught_at_the_boundary) {
    CHECK_RESULT(wsdom_test_panic(0), WS_PANIC);
    CHECK_CONTAINS(ws_last_error_message(), "WS_PANIC: internal error (panic) in libwsdom");
    CHECK_CONTAINS(ws_last_error_message(), "wsdom_test_panic(0)");
    /* A getter that panics returns its neutral value (""), not garbage. */
    CHECK_OK(wsdom_test_panic(1));
    /* The library is still usable afterwards. */
    ws *sock = NULL;
    CHECK_OK(ws_new(url("/echo"), NULL, 0, &sock));
    CHECK_OK(ws_free(sock));
}

static void *other_thread_error(void *arg) {
    (void)arg;
    /* A fresh thread has no message; its failures do not touch the main thread's. */
    char *copy = strdup(ws_last_error_message());
    ws *sock;
    ws_new("ftp://x/", NULL, 0, &sock);
    return copy;
}

TEST(last_error_message_is_per_thread) {
    ws *sock;
    CHECK_RESULT(ws_new(NULL, NULL, 0, &sock), WS_NULL_ARGUMENT);
    const char *mine = ws_last_error_message();
    pthread_t t;
    pthread_create(&t, NULL, other_thread_error, NULL);
    void *theirs;
    pthread_join(t, &theirs);
    CHECK_STR((const char *)theirs, "");
    free(theirs);
    CHECK_CONTAINS(ws_last_error_message(), "url is NULL");
    CHECK(ws_last_error_message() == mine); /* success elsewhere changed nothing */
    /* A successful call leaves the message as it was. */
    CHECK_OK(ws_new(url("/echo"), NULL, 0, &sock));
    CHECK_CONTAINS(ws_last_error_message(), "url is NULL");
    CHECK_OK(ws_free(sock));
}

TEST(set_io_threads_only_before_the_first_socket) {
    CHECK_OK(ws_set_io_threads(2));
    ws *a = NULL;
    REQUIRE(ws_new(url("/echo"), NULL, 0, &a) == WS_OK);
    CHECK_RESULT(ws_set_io_threads(1), WS_INVALID_STATE_ERROR);
    CHECK_CONTAINS(ws_last_error_message(), "before the first socket");
    CHECK_OK(ws_free(a));
}
