#include "agent/metrics.hpp"

#include <map>
#include <mutex>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unordered_map>
#include <utility>

namespace vipportd::agent {

namespace {

// Request latency: answers from a warm snapshot take well under a millisecond, cold ones about
// one dump (operations.md §8.1: budget p99 < 10 ms warm).
const prometheus::Histogram::BucketBoundaries kLatencyBuckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
// Scan duration per source: a listen-only sock_diag dump is ~2 ms, a large nf_tables dump about
// 0.5 s (kernel.md §1.11, §2.1).
const prometheus::Histogram::BucketBoundaries kScanBuckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

struct Metrics::Impl {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

    prometheus::Family<prometheus::Counter>& requests =
        prometheus::BuildCounter()
            .Name("vipportd_http_requests_total")
            .Help("HTTP requests answered, by route and status code")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& latency =
        prometheus::BuildHistogram()
            .Name("vipportd_http_request_duration_seconds")
            .Help("Time from a parsed request to its response, by route")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& scan_duration =
        prometheus::BuildHistogram()
            .Name("vipportd_scan_duration_seconds")
            .Help("Duration of one collection, by source")
            .Register(*registry);
    prometheus::Family<prometheus::Counter>& source_errors =
        prometheus::BuildCounter()
            .Name("vipportd_source_errors_total")
            .Help("Collections that failed, by source")
            .Register(*registry);
    prometheus::Family<prometheus::Gauge>& source_up =
        prometheus::BuildGauge()
            .Name("vipportd_source_up")
            .Help("1 when the last collection of the source succeeded, else 0")
            .Register(*registry);
    prometheus::Family<prometheus::Counter>& scans = prometheus::BuildCounter()
                                                         .Name("vipportd_scans_total")
                                                         .Help("Kernel snapshots taken")
                                                         .Register(*registry);
    prometheus::Family<prometheus::Gauge>& last_scan =
        prometheus::BuildGauge()
            .Name("vipportd_last_scan_timestamp_seconds")
            .Help("Unix time of the latest snapshot")
            .Register(*registry);
    prometheus::Family<prometheus::Gauge>& nft_generation =
        prometheus::BuildGauge()
            .Name("vipportd_nftables_generation")
            .Help("nf_tables ruleset generation of the cached rules (NFT_MSG_GETGEN)")
            .Register(*registry);
    prometheus::Family<prometheus::Gauge>& vips =
        prometheus::BuildGauge()
            .Name("vipportd_vips_configured")
            .Help("VIPs known by uuid (main configuration, vips_dir drop-ins, API registrations)")
            .Register(*registry);
    prometheus::Family<prometheus::Gauge>& vip_presence =
        prometheus::BuildGauge()
            .Name("vipportd_vips")
            .Help(
                "Registered VIPs by whether their address is configured and usable here "
                "(state: present, absent, unknown)")
            .Register(*registry);
    prometheus::Family<prometheus::Gauge>& connections = prometheus::BuildGauge()
                                                             .Name("vipportd_http_connections")
                                                             .Help("Open HTTP connections")
                                                             .Register(*registry);
    prometheus::Family<prometheus::Counter>& reloads =
        prometheus::BuildCounter()
            .Name("vipportd_config_reloads_total")
            .Help("Configuration reloads (SIGHUP) and vips_dir rescans, by kind and result")
            .Register(*registry);
    prometheus::Family<prometheus::Gauge>& build_info =
        prometheus::BuildGauge()
            .Name("vipportd_build_info")
            .Help("Always 1; the version is a label")
            .Register(*registry);

    // The children of each (route, status) seen so far: Family::Add builds a label map and
    // takes the family's lock, a dozen allocations for every answered request otherwise.
    struct RequestSeries {
        prometheus::Counter* count = nullptr;
        prometheus::Histogram* latency = nullptr;
    };
    std::mutex series_mutex;
    std::unordered_map<std::string, RequestSeries> series;  // "route status"

    prometheus::Counter& scans_total = scans.Add({});
    prometheus::Gauge& last_scan_time = last_scan.Add({});
    prometheus::Gauge& vips_configured = vips.Add({});
    prometheus::Gauge& open_connections = connections.Add({});
};

Metrics::Metrics(std::string_view version) : impl_(std::make_unique<Impl>()) {
    impl_->build_info.Add({{"version", std::string(version)}}).Set(1);
}

Metrics::~Metrics() = default;

void Metrics::observe_request(std::string_view route,
                              unsigned status,
                              std::chrono::duration<double> d) {
    // Routes are short fixed names: the key fits the string's inline buffer.
    std::string key(route);
    key += ' ';
    key += std::to_string(status);
    Impl::RequestSeries s;
    {
        std::lock_guard lock(impl_->series_mutex);
        auto& cached = impl_->series[key];
        if (cached.count == nullptr) {
            // Family::Add returns the existing child for known labels (thread-safe, family.h).
            cached.count = &impl_->requests.Add(
                {{"route", std::string(route)}, {"status", std::to_string(status)}});
            cached.latency = &impl_->latency.Add({{"route", std::string(route)}}, kLatencyBuckets);
        }
        s = cached;
    }
    s.count->Increment();
    s.latency->Observe(d.count());
}

void Metrics::observe_snapshot(const Snapshot& s) {
    impl_->scans_total.Increment();
    impl_->last_scan_time.Set(std::chrono::duration<double>(s.taken.time_since_epoch()).count());
    for (const auto& src : s.sources) {
        const prometheus::Labels labels{{"source", src.name}};
        impl_->scan_duration.Add(labels, kScanBuckets)
            .Observe(std::chrono::duration<double>(src.duration).count());
        auto& errors = impl_->source_errors.Add(labels);  // present from the first scan on
        if (!src.ok) {
            errors.Increment();
        }
        impl_->source_up.Add(labels).Set(src.ok ? 1 : 0);
    }
}

void Metrics::set_nftables_generation(std::uint32_t generation) {
    impl_->nft_generation.Add({}).Set(generation);
}

void Metrics::set_vips_configured(std::size_t n) {
    impl_->vips_configured.Set(static_cast<double>(n));
}

void Metrics::set_vip_presence(std::size_t present, std::size_t absent, std::size_t unknown) {
    impl_->vip_presence.Add({{"state", "present"}}).Set(static_cast<double>(present));
    impl_->vip_presence.Add({{"state", "absent"}}).Set(static_cast<double>(absent));
    impl_->vip_presence.Add({{"state", "unknown"}}).Set(static_cast<double>(unknown));
}

void Metrics::set_open_connections(std::size_t n) {
    impl_->open_connections.Set(static_cast<double>(n));
}

void Metrics::count_reload(std::string_view kind, bool ok) {
    impl_->reloads.Add({{"kind", std::string(kind)}, {"result", ok ? "ok" : "error"}}).Increment();
}

std::string Metrics::render() const {
    return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace vipportd::agent
