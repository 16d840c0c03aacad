"""SIGHUP reload: a valid new configuration takes effect (a new VIP answers); an invalid one is
logged with FILE:LINE and the running configuration stays (both VIPs still answer). The
notification socket sees RELOADING=1 with MONOTONIC_USEC, then READY=1, for both."""
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

opslib.isolate()
binary = opslib.main_args()
check = opslib.Check()

VIP_A = '[[vip]]\nuuid = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\nip = "192.0.2.10"\n'
VIP_B = '[[vip]]\nuuid = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"\nip = "192.0.2.11"\n'


def code(body):
    j = opslib.json_body(body)
    return j.get("error", {}).get("code") if isinstance(j, dict) else None


with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
    notify = opslib.NotifySocket()
    d = opslib.Daemon(binary, opslib.base_config(VIP_A), tmp, env={"NOTIFY_SOCKET": notify.address})
    check("READY=1", notify.receive(lambda m: "READY=1" in m) is not None)
    d.wait_listening()
    s, _, body = d.usedports("a" * 32)
    check("vip A answers before reload", s == 200, body)
    s, _, body = d.usedports("b" * 32)
    check("vip B unknown before reload (SYS.1003)", s == 503 and code(body) == "SYS.1003", body)

    # Valid reload: B added.
    opslib.write_atomic(d.config, opslib.base_config(VIP_A + VIP_B))
    mark = d.log_count()
    d.signal(signal.SIGHUP)
    reloading = notify.receive(lambda m: "RELOADING=1" in m)
    check("RELOADING=1 with MONOTONIC_USEC", reloading is not None and "MONOTONIC_USEC=" in reloading,
          str(notify.messages[-3:]))
    check("READY=1 after the reload", notify.receive(lambda m: "READY=1" in m) is not None)
    check("reload logged", d.wait_log("reload done", mark) is not None, d.log_text())
    s, _, body = d.usedports("b" * 32)
    check("vip B answers after a valid reload", s == 200, body)

    # Invalid reload: an unknown key on line 3; nothing changes.
    bad = 'listen = ["127.0.0.1:0"]\nshutdown_timeout = 5\nlisten_port = 1\n' + VIP_A
    opslib.write(d.config, bad)
    mark = d.log_count()
    d.signal(signal.SIGHUP)
    check("READY=1 after the failed reload", notify.receive(lambda m: "READY=1" in m) is not None)
    i = d.wait_log("reload failed", mark)
    line = d.lines[i] if i is not None else ""
    check("failed reload logged with file:line", f"{d.config}:3:" in line and "listen_port" in line,
          line or d.log_text())
    s, _, body = d.usedports("b" * 32)
    check("vip B still answers after an invalid reload", s == 200, body)
    s, _, body = d.usedports("a" * 32)
    check("vip A still answers after an invalid reload", s == 200, body)
    s, _, _ = d.request("/healthz")
    check("daemon alive", s == 200 and d.proc.poll() is None)

    # Fixed again: B removed.
    opslib.write(d.config, opslib.base_config(VIP_A))
    mark = d.log_count()
    d.signal(signal.SIGHUP)
    check("reload after the fix", d.wait_log("reload done", mark) is not None, d.log_text())
    s, _, body = d.usedports("b" * 32)
    check("vip B gone after the next valid reload", s == 503 and code(body) == "SYS.1003", body)
    rc = d.stop()
    check("exit 0", rc == 0, f"rc={rc}")

check.finish([d])
