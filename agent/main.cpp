// vipportd entry point: command line, configuration, logging, sources, HTTP server, and the
// service life cycle (readiness, watchdog, reload, drop-in VIPs, draining shutdown).
// The only translation unit that sees all three layers (README "Architecture").

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <malloc.h>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>
#include <linux/netlink.h>
#include <spdlog/spdlog.h>

#include "agent/address_table.hpp"
#include "agent/config.hpp"
#include "agent/logging.hpp"
#include "agent/metrics.hpp"
#include "agent/namespaces.hpp"
#include "agent/nft_source.hpp"
#include "agent/process_index.hpp"
#include "agent/query_cli.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/socket_source.hpp"
#include "agent/sources.hpp"
#include "agent/systemd.hpp"
#include "agent/vip_catalog.hpp"
#include "agent/vip_registry.hpp"
#include "agent/vip_store.hpp"
#include "agent/vips_dir.hpp"
#include "http/auth.hpp"
#include "http/claims_json.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "netlink/kernel_transport.hpp"

namespace {

using namespace vipportd;
using namespace std::chrono_literals;
namespace net = boost::asio;

constexpr std::string_view kUsage = R"(usage: vipportd [options]
       vipportd query <uuid-or-ip>|--all [options]   (see vipportd query --help)

Answers ZStack's GET /zstack/v1/vips/{uuid}/usedports from the kernel's sockets and
netfilter rules.

options:
  --config FILE        read configuration from FILE (TOML); without it the built-in default
                       is used: listen on 127.0.0.1:8080 and [::1]:8080, auth none, no VIPs
                       (literal addresses still work as {uuid})
  --check-config       validate the configuration, the tokens file and the vips_dir drop-in
                       files, then exit 0, or print the errors and exit 1
  --log-level LEVEL    trace, debug, info, warn, error, critical or off (overrides log_level,
                       also across reloads)
  --log-format FORMAT  text (default) or json: one JSON object per line (overrides log_format,
                       also across reloads)
  --version            print "vipportd <version>" and exit
  --help               print this help and exit

signals:
  SIGHUP               reload the configuration file and the vips_dir drop-ins; an invalid
                       file is reported (FILE:LINE) and the running configuration stays
  SIGTERM, SIGINT      stop accepting, finish requests in progress (at most shutdown_timeout),
                       exit 0

environment (set by systemd; all optional):
  NOTIFY_SOCKET        readiness, status, reload and stop notifications (Type=notify)
  WATCHDOG_USEC        watchdog interval: a kernel scan and a ping every half of it
  JOURNAL_STREAM       stderr goes to the journal: log lines carry no timestamp
)";

struct CliOptions {
    std::optional<std::filesystem::path> config;
    std::optional<std::string> log_level;
    std::optional<agent::LogFormat> log_format;
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
        auto format = [](const std::string& text) {
            auto f = agent::parse_log_format(text);
            if (!f) {
                throw UsageError("unknown log format '" + text + "' (text, json)");
            }
            return *f;
        };
        if (a == "--config") {
            o.config = value();
        } else if (a.starts_with("--config=")) {
            o.config = std::string(a.substr(9));
        } else if (a == "--log-level") {
            o.log_level = value();
        } else if (a.starts_with("--log-level=")) {
            o.log_level = std::string(a.substr(12));
        } else if (a == "--log-format") {
            o.log_format = format(value());
        } else if (a.starts_with("--log-format=")) {
            o.log_format = format(std::string(a.substr(13)));
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
    if (o.log_level && !agent::parse_log_level(*o.log_level)) {
        throw UsageError("unknown log level '" + *o.log_level +
                         "' (trace, debug, info, warn, error, critical, off)");
    }
    return o;
}

bool under_journald() { return std::getenv("JOURNAL_STREAM") != nullptr; }

void apply_logging(const CliOptions& cli, const agent::Config& c) {
    const auto level = agent::parse_log_level(cli.log_level.value_or(c.log_level));
    agent::setup_logging(level.value_or(spdlog::level::info), cli.log_format.value_or(c.log_format),
                         !under_journald());
}

std::string describe(const agent::Config& c) {
    std::string listen;
    for (const auto& l : c.listen) {
        listen += (listen.empty() ? "" : ",") + l.to_string();
    }
    std::string s = "listen=" + listen + " vips=" + std::to_string(c.vips.size()) +
                    " auth=" + (c.auth.mode == agent::AuthConfig::Mode::none ? "none" : "tokens");
    if (!c.vips_dir.empty()) {
        s += " vips_dir=" + c.vips_dir.string();
    }
    return s;
}

agent::Config read_config(const CliOptions& cli) {
    if (cli.config) {
        return agent::load_config(*cli.config);
    }
    agent::Config c = agent::default_config();
    agent::validate(c);
    return c;
}

std::string iso_time(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/// The Authenticator the routers hold; a reload swaps what it delegates to (the tokens file is
/// re-read on SIGHUP).
class SwappableAuthenticator final : public http::Authenticator {
  public:
    explicit SwappableAuthenticator(std::shared_ptr<const http::Authenticator> a)
        : current_(std::move(a)) {}
    void check(const http::Credentials& credentials, Callback done) const override {
        get()->check(credentials, std::move(done));
    }
    void set(std::shared_ptr<const http::Authenticator> a) {
        std::lock_guard lock(mutex_);
        current_ = std::move(a);
    }

  private:
    [[nodiscard]] std::shared_ptr<const http::Authenticator> get() const {
        std::lock_guard lock(mutex_);
        return current_;
    }
    mutable std::mutex mutex_;
    std::shared_ptr<const http::Authenticator> current_;
};

/// Taps the nf_tables source on the scan worker: its generation is read right after each
/// collection, on the thread that owns the source, and published for /metrics.
class GenerationTap final : public agent::PortSource {
  public:
    GenerationTap(std::unique_ptr<agent::PortSource> inner,
                  agent::NftSource* nft,
                  std::shared_ptr<std::atomic<std::int64_t>> out)
        : inner_(std::move(inner)), nft_(nft), out_(std::move(out)) {}
    [[nodiscard]] std::string_view name() const override { return inner_->name(); }
    [[nodiscard]] netlink::Result<std::vector<agent::Claim>> collect() override {
        auto r = inner_->collect();
        publish();
        return r;
    }
    [[nodiscard]] netlink::Result<agent::Collected> collect_shared() override {
        auto r = inner_->collect_shared();
        publish();
        return r;
    }
    [[nodiscard]] bool may_be_slow() const override { return inner_->may_be_slow(); }

  private:
    void publish() {
        if (const auto g = nft_->generation()) {
            out_->store(*g);
        }
    }
    std::unique_ptr<agent::PortSource> inner_;
    agent::NftSource* nft_;
    std::shared_ptr<std::atomic<std::int64_t>> out_;
};

/// Every snapshot handed out passes here once: metrics, readiness and the status line see the
/// scans that requests trigger as well as the daemon's own periodic scan.
class ObservedSnapshots final : public agent::SnapshotProvider {
  public:
    ObservedSnapshots(std::shared_ptr<agent::NamespaceScanners> inner,
                      std::shared_ptr<agent::Metrics> metrics,
                      std::shared_ptr<std::atomic<std::int64_t>> nft_generation)
        : inner_(std::move(inner)),
          metrics_(std::move(metrics)),
          nft_generation_(std::move(nft_generation)) {}

    void async_fresh(Callback cb) override {
        inner_->async_fresh([this, cb = std::move(cb)](agent::SnapshotPtr snap) {
            observe(snap);
            cb(std::move(snap));
        });
    }

    void async_fresh_many(std::vector<std::string> netns, ManyCallback cb) override {
        // Metrics and readiness describe the daemon's own namespace; other namespaces' scans
        // are answered but not observed (their sequence numbers are their own).
        auto own = std::find(netns.begin(), netns.end(), std::string());
        const auto index = static_cast<std::size_t>(own - netns.begin());
        inner_->async_fresh_many(
            std::move(netns), [this, index, cb = std::move(cb)](std::vector<agent::SnapshotPtr> s) {
                if (index < s.size()) {
                    observe(s[index]);
                }
                cb(std::move(s));
            });
    }

    /// Blocking, for start-up (before the HTTP threads get callbacks).
    agent::SnapshotPtr fresh() {
        std::promise<agent::SnapshotPtr> done;
        auto result = done.get_future();
        async_fresh([&done](agent::SnapshotPtr s) { done.set_value(std::move(s)); });
        return result.get();
    }

    [[nodiscard]] agent::SnapshotPtr latest() const {
        std::lock_guard lock(mutex_);
        return latest_;
    }

  private:
    void observe(const agent::SnapshotPtr& snap) {
        if (!snap) {
            return;
        }
        {
            std::lock_guard lock(mutex_);
            // One batch of waiters shares a snapshot: count each scan once.
            if (latest_ && latest_->sequence >= snap->sequence) {
                return;
            }
            // Readiness and the status line need the sources and addresses only; holding the
            // whole snapshot would keep its claims alive into the next scan (peak memory).
            latest_ = snap->summary();
        }
        metrics_->observe_snapshot(*snap);
        if (const auto g = nft_generation_->load(); g >= 0) {
            metrics_->set_nftables_generation(static_cast<std::uint32_t>(g));
        }
    }

    std::shared_ptr<agent::NamespaceScanners> inner_;
    std::shared_ptr<agent::Metrics> metrics_;
    std::shared_ptr<std::atomic<std::int64_t>> nft_generation_;
    mutable std::mutex mutex_;
    agent::SnapshotPtr latest_;
};

/// "ok", or the failed sources ("nftables failed: ...; ...").
std::string failures(const agent::Snapshot& s, bool required_only) {
    std::string out;
    for (const auto& src : s.sources) {
        if (!src.ok && (src.required || !required_only)) {
            out += (out.empty() ? "" : "; ") + src.name + " failed: " + src.error;
        }
    }
    return out;
}

/// The registrations of state_dir, loaded (null when state_dir is "": registration disabled).
/// A registry file that cannot be read or parsed does not stop the daemon: the files' VIPs are
/// served, PUT/DELETE answer 503 and /readyz says why, until the file is fixed or removed and
/// the daemon reloaded (README "VIP registration").
std::unique_ptr<agent::VipStore> open_store(const agent::Config& c) {
    if (c.state_dir.empty()) {
        spdlog::info("VIP registration disabled (state_dir = \"\")");
        return nullptr;
    }
    auto store = std::make_unique<agent::VipStore>(c.state_dir);
    if (auto r = store->load(); !r) {
        spdlog::error("VIP registrations not loaded, PUT/DELETE /vipportd/v1/vips refused: {}",
                      netlink::to_string(r.error()));
    } else {
        spdlog::info("{}: {} registered VIP(s)", store->file().string(), store->entries().size());
    }
    return store;
}

class Daemon {
  public:
    Daemon(CliOptions cli, agent::Config config)
        : cli_(std::move(cli)),
          config_(std::move(config)),
          notifier_(agent::systemd::Notifier::from_environment()),
          watchdog_(agent::systemd::watchdog_interval(::getpid())),
          control_(net::make_strand(ioc_)),
          stop_signals_(control_, SIGTERM, SIGINT),
          hup_(control_, SIGHUP),
          scan_timer_(control_),
          drain_timer_(control_) {}

    int run() {
        spdlog::info("vipportd {} starting: {} config={}", VIPPORTD_VERSION, describe(config_),
                     config_path());
        if (notifier_.enabled()) {
            spdlog::debug("systemd notifications to {}", notifier_.address());
        }
        metrics_ = std::make_shared<agent::Metrics>(VIPPORTD_VERSION);
        auth_ = std::make_shared<SwappableAuthenticator>(http::make_authenticator(config_.auth));

        auto slots = agent::make_sources(config_);
        auto generation = std::make_shared<std::atomic<std::int64_t>>(-1);
        for (auto& slot : slots) {
            if (auto* nft = dynamic_cast<agent::NftSource*>(slot.source.get())) {
                slot.source =
                    std::make_unique<GenerationTap>(std::move(slot.source), nft, generation);
            }
        }
        // VIPs in other namespaces get scanners built there with the same [sources] (sources
        // are fixed at start-up, as for the own namespace).
        scanners_ = std::make_shared<agent::NamespaceScanners>(
            std::make_shared<agent::SnapshotService>(std::move(slots)),
            [config = config_](const std::filesystem::path& proc_net) {
                return agent::make_sources(config, proc_net);
            });
        snapshots_ = std::make_shared<ObservedSnapshots>(scanners_, metrics_, generation);
        scanners_->set_coalescing(std::chrono::microseconds(config_.sources.coalesce_gap_us),
                                  std::chrono::microseconds(config_.sources.coalesce_max_us));

        catalog_ = std::make_shared<agent::VipCatalog>(open_store(config_));
        catalog_->set_on_change([this] {
            metrics_->set_vips_configured(catalog_->registry()->size());
            retain_namespaces();
        });
        if (!config_.vips_dir.empty()) {
            vips_dir_.emplace(config_.vips_dir);
            rescan_vips_dir();
        }
        rebuild_registry();
        start_servers();  // throws on a bind error: nothing else has started yet

        stop_signals_.async_wait(
            [this](const boost::system::error_code& ec, int signo) { on_stop(ec, signo); });
        arm_hup();
        start_vips_watcher();

        auto guard = net::make_work_guard(ioc_);
        std::vector<std::thread> threads;
        for (unsigned i = 0; i < std::max(1U, config_.http_threads); ++i) {
            threads.emplace_back([this] { ioc_.run(); });
        }
        first_scan();
        // From now on callbacks (rendering answers) run on the HTTP threads, so the scan workers
        // are free for the next scan at once. Not before: the first scan's own completion must
        // not need them, since a SIGTERM during it stops the io_context and the callback would
        // never run (start-up hung; tests/ops/test_drain.py sends SIGTERMs from the start).
        scanners_->set_dispatcher(
            [this](std::function<void()> f) { net::post(ioc_, std::move(f)); });
        guard.reset();
        for (auto& t : threads) {
            t.join();
        }
        // Before ioc_ goes: callbacks still waiting hold connections of ioc_ and would post to it.
        scanners_->shutdown();
        catalog_->shutdown();
        spdlog::info("vipportd stopped");
        ignore_late_signals();
        return 0;
    }

  private:
    /// Once stopped, a further SIGTERM/SIGINT/SIGHUP (an impatient operator, a supervisor's
    /// cleanup) must not turn the clean exit into death by that signal. Destroying the signal
    /// sets during teardown would restore SIG_DFL (Asio's signal_set_service::remove does, for a
    /// signal's last registration), so they are emptied now and the signals ignored: nothing is
    /// left for them to interrupt. tests/ops/test_drain.py sends SIGTERMs until the exit.
    void ignore_late_signals() {
        boost::system::error_code ignored;
        stop_signals_.clear(ignored);
        hup_.clear(ignored);
        for (const int signo : {SIGTERM, SIGINT, SIGHUP}) {
            (void)std::signal(signo, SIG_IGN);
        }
    }

    [[nodiscard]] std::string config_path() const {
        return cli_.config ? cli_.config->string() : std::string("built-in default");
    }

    // ---- start-up ------------------------------------------------------------------------------

    void start_servers() {
        // Observability endpoints answer without a token on loopback listeners by default
        // ([observability] auth): loopback and other listeners get separate routers.
        using ObsAuth = agent::ObservabilityConfig::Auth;
        std::vector<agent::ListenEndpoint> groups[2];  // [0] loopback, [1] others
        std::vector<int> inherited[2];                 // socket activation: fds, same grouping
        const auto passed = agent::systemd::listen_fds(::getpid());
        for (const auto& f : passed) {
            const auto ep = http::Server::inherited_endpoint(f.fd);  // throws: not a listener
            groups[ep.is_loopback() ? 0 : 1].push_back(ep);
            inherited[ep.is_loopback() ? 0 : 1].push_back(f.fd);
        }
        if (!passed.empty()) {
            spdlog::info("socket activation: {} listener(s) from systemd; 'listen' is not used",
                         passed.size());
        } else {
            for (const auto& l : config_.listen) {
                groups[l.is_loopback() ? 0 : 1].push_back(l);
            }
        }
        for (int g = 0; g < 2; ++g) {
            if (groups[g].empty()) {
                continue;
            }
            const bool open = config_.observability.auth == ObsAuth::open ||
                              (g == 0 && config_.observability.auth == ObsAuth::loopback);
            http::RouterDeps deps{snapshots_, [this] { return registry(); }, auth_};
            deps.processes = processes_;
            deps.vips = catalog_;
            http::Observability obs;
            obs.readiness = [this] { return readiness(); };
            obs.metrics = [this] { return render_metrics(); };
            obs.metrics_content_type = std::string(agent::Metrics::content_type);
            obs.version = VIPPORTD_VERSION;
            obs.open = open;
            obs.on_response = [this](const http::RequestOutcome& o) { on_response(o); };
            routers_.push_back(std::make_unique<http::Router>(std::move(deps), std::move(obs)));
            servers_.push_back(std::make_unique<http::Server>(ioc_, groups[g], *routers_.back(),
                                                              server_options()));
            if (inherited[g].empty()) {
                servers_.back()->start();
            } else {
                servers_.back()->start(inherited[g]);
            }
            for (const auto& ep : servers_.back()->local_endpoints()) {
                spdlog::info("listening on {}{}",
                             ep.address().is_v6()
                                 ? "[" + ep.address().to_string() + "]:" + std::to_string(ep.port())
                                 : ep.address().to_string() + ":" + std::to_string(ep.port()),
                             open ? "" : " (observability endpoints need a token)");
            }
        }
    }

    /// READY=1 only once every listener is bound and a scan succeeded for every required source
    /// (operations.md §2.1). Until then the scan is retried; systemd's TimeoutStartSec bounds
    /// the wait.
    void first_scan() {
        for (unsigned attempt = 1; !stopping_; ++attempt) {
            const auto snap = snapshots_->fresh();
            for (const auto& s : snap->sources) {
                if (s.ok) {
                    spdlog::info("source={} ok duration_us={}", s.name, s.duration.count());
                } else {
                    spdlog::warn("source={} required={} failed: {}", s.name, s.required, s.error);
                }
            }
            if (snap->failed_required() == nullptr) {
                net::post(control_, [this] {
                    if (stopping_) {
                        return;
                    }
                    notify("READY=1\n" + status_line());
                    spdlog::info("ready");
                    arm_scan();
                });
                return;
            }
            notify("STATUS=waiting for a first complete kernel scan (attempt " +
                   std::to_string(attempt) + "): " + failures(*snap, true));
            for (int i = 0; i < 10 && !stopping_; ++i) {
                std::this_thread::sleep_for(100ms);
            }
        }
    }

    // ---- periodic scan and watchdog ----------------------------------------------------------

    /// Without a watchdog the daemon still rescans now and then so that /readyz, /metrics and
    /// the status line do not go stale on an idle router.
    static constexpr auto kIdleScanPeriod = 30s;

    [[nodiscard]] std::chrono::milliseconds scan_period() const {
        if (watchdog_) {
            // sd_watchdog_enabled(3): ping every half of the interval.
            return std::max(std::chrono::milliseconds(1),
                            std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog_ / 2));
        }
        return kIdleScanPeriod;
    }

    void arm_scan() {
        scan_timer_.expires_after(scan_period());
        scan_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || stopping_) {
                return;
            }
            // The ping proves what the watchdog is for: the scan worker finished a kernel round
            // trip and the io_context ran its completion (a bare timer would keep pinging while
            // either is wedged, operations.md §2.2).
            snapshots_->async_fresh([this](const agent::SnapshotPtr&) {
                net::post(control_, [this] {
                    if (stopping_) {
                        return;
                    }
                    if (watchdog_) {
                        notify("WATCHDOG=1\n" + status_line());
                    } else {
                        notify(status_line());
                    }
                    arm_scan();
                });
            });
        });
    }

    [[nodiscard]] std::string status_line() const {
        const auto snap = snapshots_->latest();
        std::string s = "STATUS=" + std::to_string(registry()->size()) + " VIPs";
        if (snap) {
            const auto f = failures(*snap, false);
            s += ", last scan " + iso_time(snap->taken) + (f.empty() ? " ok" : " (" + f + ")");
        } else {
            s += ", no scan yet";
        }
        return s;
    }

    void notify(const std::string& state) const {
        std::string error;
        if (!notifier_.notify(state, &error)) {
            spdlog::warn("systemd notification failed: {}", error);
        }
    }

    // ---- observability -------------------------------------------------------------------------

    [[nodiscard]] std::pair<bool, std::string> readiness() const {
        namespace json = boost::json;
        json::object body;
        json::array reasons;
        json::array sources;
        const auto snap = snapshots_->latest();
        if (!snap) {
            reasons.emplace_back("no kernel snapshot yet");
        } else {
            const auto age =
                std::chrono::duration<double>(std::chrono::system_clock::now() - snap->taken);
            for (const auto& s : snap->sources) {
                json::object o;
                o["name"] = s.name;
                o["required"] = s.required;
                o["ok"] = s.ok;
                if (!s.ok) {
                    o["error"] = s.error;
                    // Without addresses only VIP presence is unknown; every answer stays right.
                    if (s.name != "addresses") {
                        reasons.emplace_back(s.name + " failed: " + s.error);
                    }
                }
                sources.emplace_back(std::move(o));
            }
            // A scan is due every scan_period(); three missed ones mean the worker is stuck.
            const auto stale = std::chrono::duration<double>(scan_period() * 3 + 5s);
            if (age > stale) {
                reasons.emplace_back("last snapshot is " + std::to_string(age.count()) + " s old");
            }
            body["snapshot"] = {{"sequence", snap->sequence},
                                {"taken", iso_time(snap->taken)},
                                {"age_seconds", age.count()}};
        }
        // Registrations that could not be loaded: their uuids answer SYS.1003 until fixed.
        if (catalog_->store_problem() && !catalog_->store_file().empty()) {
            reasons.emplace_back(*catalog_->store_problem());
        }
        // Absent VIPs are listed, but do not make the daemon unready: on an HA backup router
        // the VIP is elsewhere and usedports still answers (zstack-api.md §15).
        auto presence = vip_presence(snap);
        body["vips"] = {{"registered", registry()->size()},
                        {"present", presence.present},
                        {"absent", std::move(presence.absent)},
                        {"unknown", std::move(presence.unknown)}};
        const bool ready = reasons.empty();
        body["ready"] = ready;
        body["sources"] = std::move(sources);
        body["reasons"] = std::move(reasons);
        return {ready, json::serialize(body)};
    }

    [[nodiscard]] std::string render_metrics() const {
        std::size_t open = 0;
        for (const auto& s : servers_) {
            open += s->connection_count();
        }
        metrics_->set_open_connections(open);
        const auto presence = vip_presence(snapshots_->latest());
        metrics_->set_vip_presence(presence.present, presence.absent.size(),
                                   presence.unknown.size());
        return metrics_->render();
    }

    // The [http]/[tls] options, with the connection-level answers (400, 408, 413, 414, 431, 429)
    // logged and counted like the router's.
    [[nodiscard]] http::ServerOptions server_options() const {
        http::ServerOptions options = http::server_options(config_);
        options.on_reject = [this](const http::RequestOutcome& o) { on_response(o); };
        return options;
    }

    void on_response(const http::RequestOutcome& o) const {
        metrics_->observe_request(o.route, o.status, std::chrono::duration<double>(o.latency));
        if (o.status >= 200 && o.status < 300) {
            return;  // 201 and 204 of the registration API are successes too
        }
        // Once per non-200 answer, with what the client was told; client text escaped.
        const auto level =
            o.status >= 500 && o.route != "usedports" ? spdlog::level::warn : spdlog::level::info;
        spdlog::log(level, "http: {} \"{}\" -> {} ({}): {}", agent::log_escape(o.method, 16),
                    agent::log_escape(o.target), o.status, o.route,
                    o.reason.empty() ? std::string("(no body)") : agent::log_escape(o.reason, 512));
    }

    // ---- VIPs: main file plus drop-ins ---------------------------------------------------------

    /// The files' VIPs plus the active registrations (agent/vip_catalog.hpp).
    [[nodiscard]] std::shared_ptr<const agent::VipRegistry> registry() const {
        return catalog_->registry();
    }

    /// Control strand (or start-up) only.
    void rebuild_registry() {
        std::vector<std::string> conflicts;
        auto statics = agent::static_vips(config_.vips, cli_.config.value_or(""),
                                          vips_dir_ ? &*vips_dir_ : nullptr, &conflicts);
        for (const auto& c : conflicts) {
            spdlog::error("vips_dir: {}", c);
        }
        // A file defining a uuid registered through the API: the file wins (vip_catalog.hpp).
        for (const auto& w : catalog_->set_static(std::move(statics))) {
            spdlog::warn("VIP conflict: {}", w);
        }
        metrics_->set_vips_configured(registry()->size());
        retain_namespaces();
    }

    /// Stops the scanners of namespaces no VIP names any more (they start on first use).
    void retain_namespaces() {
        std::set<std::string> keep;
        for (const auto& vip : registry()->all()) {
            if (!vip.netns.empty()) {
                keep.insert(vip.netns);
            }
        }
        scanners_->retain(keep);
    }

    /// Per registered VIP of the daemon's own namespace, its presence in snap (readiness and
    /// metrics; the HTTP listing asks every namespace for a fresh snapshot instead).
    struct VipPresence {
        std::size_t present = 0;
        boost::json::array absent;   // {uuid, ip, state, interface}
        boost::json::array unknown;  // {uuid, ip, netns, reason}
    };
    [[nodiscard]] VipPresence vip_presence(const agent::SnapshotPtr& snap) const {
        VipPresence out;
        for (const auto& v : registry()->all()) {
            std::string why = "no kernel snapshot yet";
            std::optional<agent::Presence> p;
            if (!v.netns.empty()) {
                why = "in network namespace " + v.netns + " (see GET /vipportd/v1/vips)";
            } else if (snap) {
                p = agent::presence_in(*snap, v.ip, &why);
            }
            if (!p) {
                out.unknown.push_back({{"uuid", v.uuid},
                                       {"ip", v.ip.to_string()},
                                       {"netns", v.netns},
                                       {"reason", why}});
            } else if (p->present()) {
                ++out.present;
            } else {
                boost::json::object a{{"uuid", v.uuid},
                                      {"ip", v.ip.to_string()},
                                      {"state", std::string(agent::to_string(p->state))}};
                if (!p->interface.empty()) {
                    a["interface"] = p->interface;
                }
                out.absent.emplace_back(std::move(a));
            }
        }
        return out;
    }

    /// Control strand (or start-up) only. True when no file failed.
    bool rescan_vips_dir() {
        const auto scan = vips_dir_->rescan();
        for (const auto& e : scan.errors) {
            spdlog::error("vips_dir: {} (keeping that file's previous VIPs)", e);
        }
        if (scan.changed) {
            spdlog::info("vips_dir {}: {} file(s) read", vips_dir_->dir().string(),
                         vips_dir_->file_count());
        }
        return scan.errors.empty();
    }

    void start_vips_watcher() {
        watcher_.reset();
        if (!vips_dir_) {
            return;
        }
        watcher_ = std::make_unique<agent::VipsDirWatcher>(control_, vips_dir_->dir(), [this] {
            const bool ok = rescan_vips_dir();
            metrics_->count_reload("vips_dir", ok);
            rebuild_registry();
            spdlog::info("vips_dir applied: {} VIPs", registry()->size());
        });
        watcher_->start();
    }

    // ---- reload --------------------------------------------------------------------------------

    void arm_hup() {
        hup_.async_wait([this](const boost::system::error_code& ec, int) {
            if (ec || stopping_) {
                return;
            }
            reload();
            arm_hup();
        });
    }

    void reload() {
        notify(agent::systemd::reloading_message());
        spdlog::info("SIGHUP: reloading {}", config_path());
        agent::Config next;
        std::shared_ptr<const http::Authenticator> auth;
        try {
            next = read_config(cli_);
            auth = http::make_authenticator(next.auth);  // re-reads the tokens file
        } catch (const std::exception& e) {
            // ConfigError messages are "FILE:LINE:COL: key 'k': ..." lines.
            spdlog::error("reload failed, keeping the running configuration: {}", e.what());
            metrics_->count_reload("config", false);
            notify("READY=1\n" + status_line());
            return;
        }
        const auto restart_needed = [&](std::string_view what, bool changed) {
            if (changed) {
                spdlog::warn("reload: {} changed; it takes effect at the next restart", what);
            }
        };
        const auto listen_text = [](const agent::Config& c) {
            std::string s;
            for (const auto& l : c.listen) {
                s += l.to_string() + " ";
            }
            return s;
        };
        restart_needed("listen", listen_text(next) != listen_text(config_));
        restart_needed("http_threads", next.http_threads != config_.http_threads);
        restart_needed("[sources]",
                       next.sources.nftables != config_.sources.nftables ||
                           next.sources.iptables_legacy != config_.sources.iptables_legacy ||
                           next.sources.tcp_bound_inactive != config_.sources.tcp_bound_inactive);
        restart_needed("observability.auth", next.observability.auth != config_.observability.auth);
        restart_needed("state_dir", next.state_dir != config_.state_dir);
        // What cannot change at run time keeps its running value.
        next.state_dir = config_.state_dir;
        next.listen = config_.listen;
        next.http_threads = config_.http_threads;
        next.sources = config_.sources;
        next.observability = config_.observability;

        const bool dir_changed = next.vips_dir != config_.vips_dir;
        config_ = std::move(next);
        apply_logging(cli_, config_);
        auth_->set(std::move(auth));
        if (dir_changed) {
            vips_dir_.reset();
            if (!config_.vips_dir.empty()) {
                vips_dir_.emplace(config_.vips_dir);
            }
            start_vips_watcher();
        }
        if (vips_dir_) {
            rescan_vips_dir();
        }
        // A registry file that was invalid is read again (the operator fixed or removed it).
        if (catalog_->store_problem() && !catalog_->store_file().empty()) {
            if (auto still = catalog_->reload_store()) {
                spdlog::error("VIP registrations still not loaded: {}", *still);
            } else {
                spdlog::info("VIP registrations loaded from {}", catalog_->store_file());
            }
        }
        rebuild_registry();
        metrics_->count_reload("config", true);
        spdlog::info("reload done: {}", describe(config_));
        notify("READY=1\n" + status_line());
    }

    // ---- shutdown ------------------------------------------------------------------------------

    void on_stop(const boost::system::error_code& ec, int signo) {
        if (ec) {
            return;
        }
        spdlog::info("signal {}: shutting down (finishing requests in progress, at most {} ms)",
                     signo, config_.shutdown_timeout.count());
        stopping_ = true;
        notify("STOPPING=1\nSTATUS=stopping");
        hup_.cancel();
        scan_timer_.cancel();
        if (watcher_) {
            watcher_->stop();
        }
        for (auto& s : servers_) {
            s->stop();
        }
        drain_deadline_ = std::chrono::steady_clock::now() + config_.shutdown_timeout;
        wait_drained();
    }

    [[nodiscard]] std::size_t open_connections() const {
        std::size_t n = 0;
        for (const auto& s : servers_) {
            n += s->connection_count();
        }
        return n;
    }

    void wait_drained() {
        // Polled: the servers own their connections, and 20 ms is nothing against a shutdown.
        if (open_connections() == 0) {
            ioc_.stop();
            return;
        }
        if (std::chrono::steady_clock::now() >= drain_deadline_) {
            spdlog::warn("shutdown_timeout over; closing {} connection(s)", open_connections());
            ioc_.stop();
            return;
        }
        drain_timer_.expires_after(20ms);
        drain_timer_.async_wait([this](const boost::system::error_code& e) {
            if (!e) {
                wait_drained();
            }
        });
    }

    CliOptions cli_;
    agent::Config config_;  // control strand
    agent::systemd::Notifier notifier_;
    std::optional<std::chrono::microseconds> watchdog_;
    net::io_context ioc_;
    net::strand<net::io_context::executor_type> control_;
    net::signal_set stop_signals_;
    net::signal_set hup_;
    net::steady_timer scan_timer_;
    net::steady_timer drain_timer_;
    std::chrono::steady_clock::time_point drain_deadline_;
    std::atomic<bool> stopping_{false};

    std::shared_ptr<agent::Metrics> metrics_;
    std::shared_ptr<SwappableAuthenticator> auth_;
    std::shared_ptr<agent::NamespaceScanners> scanners_;  // own namespace + VIPs' namespaces
    std::shared_ptr<ObservedSnapshots> snapshots_;
    // Socket owners for the claims API, one cache for every listener group.
    std::shared_ptr<agent::ProcessIndex> processes_ = std::make_shared<agent::ProcessIndex>();
    // Every VIP with its origin; API registrations persisted in state_dir.
    std::shared_ptr<agent::VipCatalog> catalog_;
    std::optional<agent::VipsDir> vips_dir_;
    std::unique_ptr<agent::VipsDirWatcher> watcher_;
    // Routers outlive the servers' connections: both are destroyed after ioc_.run() returned.
    std::vector<std::unique_ptr<http::Router>> routers_;
    std::vector<std::unique_ptr<http::Server>> servers_;
};

int check_config(const CliOptions& cli, const agent::Config& config) {
    (void)http::make_authenticator(config.auth);  // throws on a bad tokens file
    std::size_t dropins = 0;
    if (!config.vips_dir.empty()) {
        agent::VipsDir dir(config.vips_dir);
        const auto scan = dir.rescan();
        std::vector<std::string> problems = scan.errors;
        (void)dir.merged(config.vips, &problems);
        if (!problems.empty()) {
            for (const auto& p : problems) {
                std::cerr << p << "\n";
            }
            return 1;
        }
        dropins = dir.file_count();
    }
    if (!config.state_dir.empty()) {
        agent::VipStore store(config.state_dir);
        if (auto r = store.load(); !r) {
            std::cerr << netlink::to_string(r.error()) << "\n";
            return 1;
        }
    }
    std::cout << (cli.config ? cli.config->string() : std::string("built-in default")) << ": ok ("
              << describe(config)
              << (config.vips_dir.empty() ? "" : " drop-in files=" + std::to_string(dropins))
              << ")\n";
    return 0;
}

int run(const CliOptions& cli) {
    agent::Config config = read_config(cli);
    if (cli.check_config) {
        return check_config(cli, config);
    }
    apply_logging(cli, config);
    Daemon daemon(cli, std::move(config));
    return daemon.run();
}

}  // namespace

namespace {

/// glibc malloc settings for a daemon whose scans allocate megabytes and free them again.
/// By default glibc raises its mmap threshold each time a block above it is freed (up to 32 MiB,
/// mallopt(3) M_MMAP_THRESHOLD), and eight arenas per core let every HTTP thread keep a heap of
/// its own. Measured at the `huge` bench scale (README "Performance"): with blocks of 128 KiB
/// and up in mmap the peak is smallest (40 MiB), but every scan then faults its megabytes in
/// afresh, which on this VM made a warm query 55 ms instead of 43 and a cold one 122 ms instead
/// of 87 (peak 50 MiB); trimming after a rule dump cost the next queries as much again. So: a
/// fixed threshold (no drift) high enough that scan buffers come from the heap and are reused
/// scan after scan, and no trimming below 64 MiB (a fresh page costs ~13 µs to fault in on this
/// VM). Two arenas: with one, the scan worker, the rule dump's side thread and both HTTP threads
/// queue on its lock (__lll_lock_wait/wake were ~14% of the daemon's perf samples under wrk), and
/// two gave the router bench 0.60-0.68x nginx against 0.42-0.62x (three interleaved pairs each).
/// Two arenas cost peak RSS at `huge` (about 1 MiB: blocks freed in one arena are not reused by
/// the other); since claims share their RuleSite (agent/model.hpp) the peak is 28-29 MiB with
/// two.
void tune_malloc() {
    (void)mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    (void)mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    (void)mallopt(M_ARENA_MAX, 2);
}
}  // namespace

int main(int argc, char** argv) {
    tune_malloc();
    if (argc >= 2 && std::string_view(argv[1]) == "query") {
        // One scan in-process and a table or the claims API's JSON (agent/query_cli.hpp).
        const std::vector<std::string_view> args(argv + 2, argv + argc);
        const agent::QueryRenderers renderers{
            [](const agent::ClaimsReport& r) { return http::claims_json(r); },
            [](std::span<const agent::ClaimsReport> r) { return http::claims_json(r); }};
        return agent::run_query(args, renderers, std::cout, std::cerr);
    }
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
