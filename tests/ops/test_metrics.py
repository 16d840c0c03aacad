"""/metrics is valid Prometheus text (parsed by python3-prometheus-client) with the request,
latency, scan, source and VIP families; /version and /readyz answer JSON; a non-200 request is
logged once, with the client's text escaped."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("SKIP: python3-prometheus-client is not installed")
    sys.exit(77)

opslib.isolate()
binary = opslib.main_args()
check = opslib.Check()

VIPS = ('[[vip]]\nuuid = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\nip = "192.0.2.10"\n'
        '[[vip]]\nuuid = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"\nip = "192.0.2.11"\n')

with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
    d = opslib.Daemon(binary, opslib.base_config(VIPS), tmp)
    d.wait_listening()
    check("usedports 200", d.usedports("a" * 32)[0] == 200)
    s, _, _ = d.usedports("c" * 32)
    check("unknown uuid 503", s == 503)
    mark = d.log_count()
    s, _, _ = d.request('/no/such/"path"%01')
    check("unknown path 404", s == 404)
    i = d.wait_log('\\"path\\"', mark, timeout=3)
    check("non-200 logged with the client text escaped",
          i is not None and "404" in d.lines[i], d.log_text()[-500:])
    lines = [l for l in d.log_text().splitlines()[mark:] if "/no/such/" in l]
    check("logged exactly once", len(lines) == 1, "\n".join(lines))

    s, h, body = d.request("/version")
    j = opslib.json_body(body)
    check("/version JSON", s == 200 and j and j.get("name") == "vipportd" and j.get("version"), body)
    s, h, body = d.request("/readyz")
    j = opslib.json_body(body)
    check("/readyz 200 with sources", s == 200 and j and j["ready"] is True and
          any(x["name"] == "sockets" and x["ok"] for x in j["sources"]), body)

    s, h, text = d.request("/metrics")
    check("/metrics 200", s == 200, text[:200])
    check("/metrics content type", h.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
          str(h))
    try:
        families = {f.name: f for f in text_string_to_metric_families(text)}
        parsed = True
    except Exception as e:  # the parser raises ValueError and friends on malformed input
        families, parsed = {}, False
        check("parsed by prometheus_client", False, repr(e))
    if parsed:
        check("parsed by prometheus_client", True)

    def samples(name):
        f = families.get(name)
        return f.samples if f else []

    req = samples("vipportd_http_requests")
    check("requests by route and status",
          any(x.labels == {"route": "usedports", "status": "200"} and x.value >= 1 for x in req) and
          any(x.labels == {"route": "other", "status": "404"} for x in req), str(req))
    lat = families.get("vipportd_http_request_duration_seconds")
    check("latency histogram", lat is not None and lat.type == "histogram" and
          any(x.name.endswith("_bucket") and x.labels.get("route") == "usedports"
              for x in lat.samples), str(lat))
    scan = families.get("vipportd_scan_duration_seconds")
    check("scan duration per source", scan is not None and
          any(x.labels.get("source") == "sockets" for x in scan.samples), str(scan))
    check("source errors family present",
          any(x.labels.get("source") == "sockets" for x in samples("vipportd_source_errors")))
    vips = samples("vipportd_vips_configured")
    check("vips configured = 2", len(vips) == 1 and vips[0].value == 2, str(vips))
    conns = samples("vipportd_http_connections")
    check("open connections counted (this one)", len(conns) == 1 and conns[0].value >= 1,
          str(conns))
    info = samples("vipportd_build_info")
    check("build info", len(info) == 1 and info[0].labels.get("version"), str(info))
    rc = d.stop()
    check("exit 0", rc == 0, f"rc={rc}")

check.finish([d])
