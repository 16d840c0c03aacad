"""VIP registration through the API against the real daemon (README "VIP registration"):
PUT/GET/DELETE /vipportd/v1/vips with curl, presence following `ip addr add/del` (HA backup:
absent VIPs still answer usedports, /readyz lists them), registrations surviving a restart,
a config reload that defines a registered uuid (the file wins, the conflict is shown), a corrupt
registry file (the daemon starts, writes answer 503, a reload after the fix recovers), and
kill -9 in the middle of PUT/DELETE storms, 100 times: the registry file always parses, holds
every acknowledged change, and the restarted daemon serves exactly what it holds."""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

opslib.isolate()
binary = opslib.main_args()
check = opslib.Check()
if os.geteuid() != 0 or os.environ.get("OPS_ISOLATED") != "1":
    print("SKIP: needs root (its own network namespace, ip addr add)")
    sys.exit(77)
if not shutil.which("curl"):
    print("SKIP: curl is not installed")
    sys.exit(77)

AUTH = "Authorization: OAuth ops-test"
CFG = "c" * 32
API = "a" * 32


def config(state_dir, extra=""):
    return opslib.base_config(f'state_dir = "{state_dir}"\n'
                              f'[[vip]]\nuuid = "{CFG}"\nip = "1.2.3.4"\n' + extra)


def curl(d, method, path, body=None):
    """(status, body) of one request made with curl."""
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H", AUTH,
           f"http://127.0.0.1:{d.port}{path}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", body]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    text, _, code = out.rpartition("\n")
    return int(code or 0), text


def listing(d):
    s, body = curl(d, "GET", "/vipportd/v1/vips")
    j = opslib.json_body(body)
    return s, j, body


def vip_of(j, uuid, origin=None):
    for v in (j or {}).get("vips", []):
        if v["uuid"] == uuid and (origin is None or v["origin"] == origin):
            return v
    return None


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)


with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
    state = os.path.join(tmp, "state")  # created by the daemon at the first write
    registry_file = os.path.join(state, "vips.json")
    sh("ip addr add 1.2.3.4/32 dev lo")
    d = opslib.Daemon(binary, config(state), tmp)
    d.wait_listening()
    check("daemon ready", d.wait_log("ready") is not None, d.log_text())

    # ---- registration and presence ------------------------------------------------------------
    s, body = curl(d, "PUT", f"/vipportd/v1/vips/{API}", '{"ip":"1.2.3.5"}')
    check("PUT new VIP: 201", s == 201, body)
    check("registry file written", os.path.exists(registry_file))
    s, body = curl(d, "PUT", f"/vipportd/v1/vips/{API}", '{"ip":"1.2.3.5"}')
    check("PUT again: 200 (idempotent)", s == 200, body)
    s, j, body = listing(d)
    v = vip_of(j, API)
    check("GET lists the registration, absent", s == 200 and v and v["origin"] == "api" and
          v["present"] is False and v["state"] == "absent", body)
    c = vip_of(j, CFG)
    check("GET lists the config VIP, present on lo", c and c["origin"] == "config" and
          c["present"] is True and c["interface"] == "lo", body)
    s, _, body = d.usedports(API)
    check("an absent VIP still answers usedports (HA backup)", s == 200, body)
    s, _, body = d.request("/readyz")
    r = opslib.json_body(body) or {}
    check("/readyz ready, lists the absent VIP", s == 200 and r.get("ready") is True and
          [a["uuid"] for a in r["vips"]["absent"]] == [API], body)
    s, _, body = d.request("/metrics")
    check("/metrics counts present and absent VIPs",
          'vipportd_vips{state="absent"} 1' in body and
          'vipportd_vips{state="present"} 1' in body, body[-2000:])

    sh("ip addr add 1.2.3.5/32 dev lo")
    s, j, body = listing(d)
    v = vip_of(j, API)
    check("after ip addr add: present on lo", v and v["present"] is True and
          v["interface"] == "lo", body)
    sh("ip addr del 1.2.3.5/32 dev lo")
    s, j, body = listing(d)
    check("after ip addr del: absent again", vip_of(j, API)["present"] is False, body)

    s, body = curl(d, "PUT", "/vipportd/v1/vips/v6", '{"ip":"2001:db8::5"}')
    check("PUT IPv6 VIP: 201", s == 201, body)
    sh("ip -6 addr add 2001:db8::5/128 dev lo nodad")
    s, j, body = listing(d)
    check("IPv6 VIP present after ip -6 addr add", vip_of(j, "v6")["present"] is True, body)
    s, body = curl(d, "DELETE", "/vipportd/v1/vips/v6")
    check("DELETE: 204", s == 204 and body == "", body)
    s, body = curl(d, "DELETE", "/vipportd/v1/vips/v6")
    check("DELETE again: 404 SYS.1003", s == 404 and "SYS.1003" in body, body)
    s, body = curl(d, "PUT", f"/vipportd/v1/vips/{CFG}", '{"ip":"1.2.3.9"}')
    check("PUT of a config uuid: 409", s == 409 and "change it there" in body, body)
    s, body = curl(d, "DELETE", f"/vipportd/v1/vips/{CFG}")
    check("DELETE of a config uuid: 409", s == 409, body)
    s, body = curl(d, "PUT", "/vipportd/v1/vips/bad", '{"ip":"1.2.3.0/24"}')
    check("PUT with a prefix: 400 SYS.1007", s == 400 and "SYS.1007" in body, body)
    out = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", "PUT",
         f"http://127.0.0.1:{d.port}/vipportd/v1/vips/x", "--data-binary", '{"ip":"1.2.3.9"}'],
        capture_output=True, text=True).stdout
    body, _, s = out.rpartition("\n")
    check("PUT without Authorization: 400 like usedports", s == "400", out)

    # ---- restart: registrations survive -------------------------------------------------------
    check("SIGTERM: exit 0", d.stop() == 0)
    d = opslib.Daemon(binary, config(state), tmp)
    d.wait_listening()
    s, j, body = listing(d)
    check("after a restart the registration is still there", vip_of(j, API, "api") is not None and
          vip_of(j, "v6") is None, body)
    s, _, body = d.usedports(API)
    check("and answers usedports", s == 200, body)

    # ---- a reload that defines a registered uuid: the file wins, the conflict is shown --------
    at = d.log_count()
    opslib.write(d.config, config(state, f'[[vip]]\nuuid = "{API}"\nip = "1.2.3.4"\n'))
    d.signal(signal.SIGHUP)
    i = d.wait_log("VIP conflict", at)
    check("reload: the conflict is logged naming both", i is not None and
          registry_file in d.lines[i] and d.config in d.lines[i], d.log_text()[-2000:])
    d.wait_log("reload done", at)
    s, j, body = listing(d)
    f, a = vip_of(j, API, "config"), vip_of(j, API, "api")
    check("GET shows the file's VIP active and the registration inactive with the conflict",
          f and f["active"] and a and a["active"] is False and "takes precedence" in a["conflict"],
          body)
    opslib.write(d.config, config(state))
    at = d.log_count()
    d.signal(signal.SIGHUP)
    d.wait_log("reload done", at)
    s, j, body = listing(d)
    check("the file drops the uuid: the registration is active again",
          vip_of(j, API, "api")["active"] is True and vip_of(j, API, "config") is None, body)
    check("SIGTERM: exit 0", d.stop() == 0)

    # ---- a corrupt registry file ---------------------------------------------------------------
    good = open(registry_file).read()
    opslib.write(registry_file, good[: len(good) // 2])  # torn: what atomic writes prevent
    d = opslib.Daemon(binary, config(state), tmp)
    d.wait_listening()
    check("corrupt file: the daemon starts anyway", d.wait_log("ready") is not None)
    check("corrupt file: the error is logged with the file name",
          d.wait_log("VIP registrations not loaded") is not None and registry_file in d.log_text())
    s, _, body = d.request("/readyz")
    check("corrupt file: /readyz 503 says why", s == 503 and "registry file is invalid" in body,
          body)
    s, body = curl(d, "PUT", "/vipportd/v1/vips/new", '{"ip":"1.2.3.6"}')
    check("corrupt file: PUT 503, the file is not overwritten",
          s == 503 and open(registry_file).read() == good[: len(good) // 2], body)
    s, _, body = d.usedports(CFG)
    check("corrupt file: config VIPs still answer", s == 200, body)
    opslib.write(registry_file, good)
    at = d.log_count()
    d.signal(signal.SIGHUP)
    check("fixed file + reload: loaded", d.wait_log("VIP registrations loaded", at) is not None,
          d.log_text()[-2000:])
    s, _, body = d.request("/readyz")
    check("fixed file + reload: /readyz 200", s == 200, body)
    s, body = curl(d, "PUT", "/vipportd/v1/vips/new", '{"ip":"1.2.3.6"}')
    check("fixed file + reload: PUT 201", s == 201, body)
    check("SIGTERM: exit 0", d.stop() == 0)

    # ---- kill -9 during PUT/DELETE storms, 100 times ------------------------------------------
    # Four writers, each owning its own uuids and doing one request at a time, so that for every
    # uuid the last acknowledged change is known; at most one change per writer is in flight
    # when SIGKILL lands, and its uuid may be in either state.
    def storm(port, writer, stop, acked, inflight):
        conn = None
        n = 0
        while not stop.is_set():
            uuid = f"k{writer}-{random.randrange(8)}"
            put = random.random() < 0.6
            inflight[writer] = uuid
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                if put:
                    body = json.dumps({"ip": f"10.{writer}.{n % 256}.1"})
                    conn.request("PUT", f"/vipportd/v1/vips/{uuid}", body=body,
                                 headers={"Authorization": "OAuth x"})
                else:
                    conn.request("DELETE", f"/vipportd/v1/vips/{uuid}",
                                 headers={"Authorization": "OAuth x"})
                r = conn.getresponse()
                r.read()
            except (OSError, http.client.HTTPException):
                return  # the daemon died: this change stays in flight
            if r.status in (200, 201):
                acked[uuid] = body and json.loads(body)["ip"]
            elif r.status in (204, 404):
                acked[uuid] = None
            inflight[writer] = None
            n += 1

    base = {e["uuid"]: e for e in json.load(open(registry_file))["vips"]}
    expected = {u: e["ip"] for u, e in base.items()}  # uuid -> ip, the registry's truth
    t0 = time.monotonic()
    problems = []
    startups = []
    changes = 0  # acknowledged changes, all rounds
    cut = 0  # rounds where SIGKILL landed while a change was in flight
    for it in range(100):
        ts = time.monotonic()
        d = opslib.Daemon(binary, config(state), tmp)
        d.wait_listening()
        startups.append(time.monotonic() - ts)
        # The restarted daemon serves exactly what the file held.
        s, j, body = listing(d)
        served = {v["uuid"]: v["ip"] for v in (j or {}).get("vips", []) if v["origin"] == "api"}
        if served != expected:
            problems.append(f"round {it}: served {served} != file {expected}")
        stop = threading.Event()
        acked, inflight = {}, {}
        threads = [threading.Thread(target=storm, args=(d.port, w, stop, acked, inflight))
                   for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.0, 0.05))
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        changes += len(acked)
        cut += any(v is not None for v in inflight.values())
        try:
            doc = json.load(open(registry_file))
            assert doc["version"] == 1
            on_disk = {e["uuid"]: e["ip"] for e in doc["vips"]}
        except (ValueError, KeyError, AssertionError) as e:
            problems.append(f"round {it}: registry file does not parse: {e}")
            break
        for uuid, ip in acked.items():
            if uuid in inflight.values():
                continue  # a later change of this uuid was in flight: either state is right
            if on_disk.get(uuid) != ip:
                problems.append(f"round {it}: {uuid} acknowledged as {ip}, file has "
                                f"{on_disk.get(uuid)}")
        expected = on_disk
    elapsed = time.monotonic() - t0
    check(f"kill -9 x100 during writes: the file always parses and holds every acknowledged "
          f"change ({elapsed:.1f} s, start-up median {sorted(startups)[50] * 1000:.0f} ms, "
          f"{changes} acknowledged changes, {cut} kills with a change in flight)",
          not problems and elapsed < 60 and cut >= 50, "\n".join(problems[:10]))
    d = opslib.Daemon(binary, config(state), tmp)
    d.wait_listening()
    s, j, body = listing(d)
    served = {v["uuid"]: v["ip"] for v in (j or {}).get("vips", []) if v["origin"] == "api"}
    check("the last restart serves the last file", served == expected, body)
    check("SIGTERM: exit 0", d.stop() == 0)

check.finish()
