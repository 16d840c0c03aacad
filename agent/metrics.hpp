#pragma once
// Metrics: the daemon's counters, gauges and histograms, rendered in the Prometheus text format
// by prometheus-cpp (core only; /metrics is served by the daemon's own HTTP server). The
// prometheus-cpp types stay behind this interface so that http/ never sees them.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/model.hpp"

namespace vipportd::agent {

class Metrics {
  public:
    explicit Metrics(std::string_view version);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    /// One answered request: route is a fixed name ("usedports", "healthz", ..., "other"), never
    /// client text, so label cardinality stays bounded. Thread-safe.
    void observe_request(std::string_view route, unsigned status, std::chrono::duration<double> d);
    /// One scan (call once per snapshot sequence): duration, outcome and error count per source,
    /// time of the scan. Thread-safe.
    void observe_snapshot(const Snapshot& snapshot);
    void set_nftables_generation(std::uint32_t generation);
    void set_vips_configured(std::size_t n);
    /// Registered VIPs by presence of their address (vipportd_vips{state=...}): present, absent
    /// (not configured, tentative, link down, DAD failed) and unknown (no address table).
    void set_vip_presence(std::size_t present, std::size_t absent, std::size_t unknown);
    void set_open_connections(std::size_t n);
    /// A configuration reload (SIGHUP) or drop-in rescan, by outcome.
    void count_reload(std::string_view kind, bool ok);

    /// Everything, in the Prometheus text exposition format 0.0.4.
    [[nodiscard]] std::string render() const;

    /// The Content-Type of render()'s output.
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vipportd::agent
