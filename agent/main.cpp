// vipportd entry point: command line, configuration, logging, sources, HTTP server, signals.
// The only translation unit that sees all three layers (README "Architecture").

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <linux/netlink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/config.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/socket_source.hpp"
#include "agent/sources.hpp"
#include "agent/vip_registry.hpp"
#include "http/auth.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "netlink/kernel_transport.hpp"

namespace {

using namespace vipportd;

constexpr std::string_view kUsage = R"(usage: vipportd [options]

Answers ZStack's GET /zstack/v1/vips/{uuid}/usedports from the kernel's sockets and
netfilter rules.

options:
  --config FILE        read configuration from FILE (TOML); without it the built-in default
                       is used: listen on 127.0.0.1:8080 and [::1]:8080, auth none, no VIPs
                       (literal addresses still work as {uuid})
  --check-config       validate the configuration (and the tokens file) and exit 0, or print
                       the error and exit 1
  --log-level LEVEL    trace, debug, info, warn, error, critical or off (overrides log_level)
  --version            print "vipportd <version>" and exit
  --help               print this help and exit
)";

struct CliOptions {
    std::optional<std::filesystem::path> config;
    std::optional<std::string> log_level;
    bool check_config = false;
    bool version = false;
    bool help = false;
};

class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

CliOptions parse_cli(int argc, char** argv) {
    CliOptions o;
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view a = args[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= args.size()) {
                throw UsageError("option " + std::string(a) + " needs a value");
            }
            return std::string(args[++i]);
        };
        if (a == "--config") {
            o.config = value();
        } else if (a.starts_with("--config=")) {
            o.config = std::string(a.substr(9));
        } else if (a == "--log-level") {
            o.log_level = value();
        } else if (a.starts_with("--log-level=")) {
            o.log_level = std::string(a.substr(12));
        } else if (a == "--check-config") {
            o.check_config = true;
        } else if (a == "--version") {
            o.version = true;
        } else if (a == "--help" || a == "-h") {
            o.help = true;
        } else {
            throw UsageError("unknown argument '" + std::string(a) + "' (see --help)");
        }
    }
    return o;
}

void setup_logging(const std::string& level_name) {
    auto level = spdlog::level::from_str(level_name);
    if (level == spdlog::level::off && level_name != "off") {
        throw UsageError("unknown log level '" + level_name +
                         "' (trace, debug, info, warn, error, critical, off)");
    }
    auto logger = spdlog::stderr_logger_mt("vipportd");
    // Under systemd, journald stamps every line itself (JOURNAL_STREAM is set for stderr
    // connected to the journal, systemd.exec(5)).
    logger->set_pattern(std::getenv("JOURNAL_STREAM") != nullptr ? "%l: %v"
                                                                 : "%Y-%m-%dT%H:%M:%S.%e %l: %v");
    logger->set_level(level);
    spdlog::set_default_logger(logger);
}

std::string describe(const agent::Config& c) {
    std::string listen;
    for (const auto& l : c.listen) {
        listen += (listen.empty() ? "" : ",") + l.to_string();
    }
    return "listen=" + listen + " vips=" + std::to_string(c.vips.size()) +
           " auth=" + (c.auth.mode == agent::AuthConfig::Mode::none ? "none" : "tokens");
}

int run(const CliOptions& cli) {
    agent::Config config = cli.config ? agent::load_config(*cli.config) : agent::default_config();
    if (!cli.config) {
        agent::validate(config);
    }
    auto auth = http::make_authenticator(config.auth);  // throws on a bad tokens file
    if (cli.check_config) {
        std::cout << (cli.config ? cli.config->string() : std::string("built-in default"))
                  << ": ok (" << describe(config) << ")\n";
        return 0;
    }
    setup_logging(cli.log_level.value_or(config.log_level));
    spdlog::info("vipportd {} starting: {} config={}", VIPPORTD_VERSION, describe(config),
                 cli.config ? cli.config->string() : std::string("built-in default"));

    auto snapshots = std::make_shared<agent::SnapshotService>(agent::make_sources(config));
    // A first scan before serving: a failing source is reported now, not at the first request.
    const auto first = snapshots->fresh();
    for (const auto& s : first->sources) {
        if (s.ok) {
            spdlog::info("source={} ok duration_us={}", s.name, s.duration.count());
        } else {
            spdlog::warn("source={} required={} failed: {}", s.name, s.required, s.error);
        }
    }

    const auto registry = std::make_shared<const agent::VipRegistry>(config.vips);
    http::Router router(http::RouterDeps{snapshots, [registry] { return registry; }, auth});
    boost::asio::io_context ioc;
    // Answers are rendered on the HTTP threads; the scan worker only hands out snapshots.
    snapshots->set_dispatcher(
        [&ioc](std::function<void()> f) { boost::asio::post(ioc, std::move(f)); });
    http::Server server(ioc, config.listen, router);
    server.start();
    for (const auto& ep : server.local_endpoints()) {
        spdlog::info("listening on {}",
                     ep.address().is_v6()
                         ? "[" + ep.address().to_string() + "]:" + std::to_string(ep.port())
                         : ep.address().to_string() + ":" + std::to_string(ep.port()));
    }

    // SIGTERM/SIGINT: stop accepting, let in-flight responses finish, give up after a grace
    // period shorter than systemd's default TimeoutStopSec (90 s).
    boost::asio::signal_set stop_signals(ioc, SIGTERM, SIGINT);
    boost::asio::signal_set hup(ioc, SIGHUP);
    boost::asio::steady_timer drain(ioc);
    const auto drain_deadline_after = std::chrono::seconds(10);
    std::chrono::steady_clock::time_point drain_deadline;
    std::function<void()> wait_drained = [&] {
        // Polled rather than signalled: Server owns its connections, and 20 ms is nothing
        // against a shutdown.
        drain.expires_after(std::chrono::milliseconds(20));
        drain.async_wait([&](const boost::system::error_code& e) {
            if (e) {
                return;
            }
            if (server.connection_count() == 0) {
                ioc.stop();
            } else if (std::chrono::steady_clock::now() >= drain_deadline) {
                spdlog::warn("shutdown grace period over; closing {} connection(s)",
                             server.connection_count());
                ioc.stop();
            } else {
                wait_drained();
            }
        });
    };
    stop_signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec) {
            return;
        }
        spdlog::info("signal {}: shutting down", signo);
        hup.cancel();
        server.stop();
        drain_deadline = std::chrono::steady_clock::now() + drain_deadline_after;
        wait_drained();
    });
    // SIGHUP would terminate the process by default; until configuration reload exists it is
    // acknowledged and ignored.
    std::function<void(const boost::system::error_code&, int)> on_hup =
        [&](const boost::system::error_code& ec, int) {
            if (ec) {
                return;
            }
            spdlog::warn("SIGHUP: configuration reload is not supported yet; ignored");
            hup.async_wait(on_hup);
        };
    hup.async_wait(on_hup);

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < config.http_threads; ++i) {
        threads.emplace_back([&ioc] { ioc.run(); });
    }
    ioc.run();
    for (auto& t : threads) {
        t.join();
    }
    // Before ioc goes: callbacks still waiting hold connections of ioc and would post to it.
    snapshots->shutdown();
    spdlog::info("vipportd stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CliOptions cli;
    try {
        cli = parse_cli(argc, argv);
    } catch (const UsageError& e) {
        std::cerr << "vipportd: " << e.what() << "\n";
        return 2;
    }
    if (cli.help) {
        std::cout << kUsage;
        return 0;
    }
    if (cli.version) {
        std::cout << "vipportd " << VIPPORTD_VERSION << "\n";
        return 0;
    }
    try {
        return run(cli);
    } catch (const std::exception& e) {
        // Start-up errors only (configuration, tokens file, binding): runtime errors are answered
        // per request and never reach here.
        if (spdlog::get("vipportd")) {
            spdlog::critical("{}", e.what());
        } else {
            std::cerr << "vipportd: " << e.what() << "\n";
        }
        return 1;
    }
}
