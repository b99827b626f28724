// The header compiles as C++ (extern "C" guards) and links from C++.
// Built by tests/c/run.sh with g++ -std=c++11 -Wall -Wextra -pedantic -Werror.
#include <wsdom.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace {
struct State {
    std::atomic<int> closes{0};
    std::string first_message;
};
}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s WS_URL\n", argv[0]);
        return 2;
    }
    State state;
    ws_callbacks callbacks{};
    callbacks.onopen = [](ws *socket, void *) { ws_send_text(socket, "from C++"); };
    callbacks.onmessage = [](ws *socket, void *userdata, ws_message_type, const char *data,
                             size_t len) {
        static_cast<State *>(userdata)->first_message.assign(data, len);
        ws_close(socket, 1000, nullptr, 0);
    };
    callbacks.onclose = [](ws *, void *userdata, uint16_t, const char *, size_t, bool) {
        static_cast<State *>(userdata)->closes++;
    };
    callbacks.userdata = &state;
    ws *socket = nullptr;
    ws_result r = ws_new_with_options(argv[1], nullptr, 0, nullptr, &callbacks, &socket);
    if (r != WS_OK) {
        std::fprintf(stderr, "%s: %s\n", ws_result_name(r), ws_last_error_message());
        return 1;
    }
    for (int i = 0; i < 500 && state.closes == 0; i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ws_free(socket);
    bool ok = state.closes == 1 && state.first_message == "from C++" && ws_live_handles() == 0;
    std::printf("%s\n", ok ? "C++ ok" : "C++ FAILED");
    return ok ? 0 : 1;
}
