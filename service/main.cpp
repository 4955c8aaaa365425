// The reqctx executable: parse the configuration, build the app, serve until SIGTERM/SIGINT.
// The only place in the service that creates a root context.

#include <csignal>
#include <exception>
#include <iostream>

#include "context/context.hpp"
#include "service/app.hpp"
#include "service/config.hpp"

int main(int argc, char** argv) {
    auto parsed = reqctx::parse_config(argc, argv, std::cout, std::cerr);
    if (!parsed.config) return parsed.exit_code;
    std::signal(SIGPIPE, SIG_IGN);
    try {
        reqctx::App app(std::move(*parsed.config));
        app.listen();
        auto [root, cancel_root] = reqctx::with_cancel(reqctx::background());
        app.run(root, std::move(cancel_root));
    } catch (const std::exception& e) {
        std::cerr << "reqctx: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
