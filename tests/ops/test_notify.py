"""Type=notify: READY=1 only after the listener is bound and the first snapshot succeeded, with a
STATUS= line; then WATCHDOG=1 pings from the scan loop at half of WATCHDOG_USEC; STOPPING=1 and
exit 0 on SIGTERM. Both an abstract ('@') and a filesystem NOTIFY_SOCKET are exercised."""
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

opslib.isolate()
binary = opslib.main_args()
check = opslib.Check()
daemons = []

for abstract in (True, False):
    kind = "abstract" if abstract else "path"
    with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
        notify = opslib.NotifySocket(abstract=abstract)
        d = opslib.Daemon(binary, opslib.base_config(), tmp,
                          env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"})
        daemons.append(d)
        ready = notify.receive(lambda m: "READY=1" in m.split("\n"))
        check(f"{kind}: READY=1 received", ready is not None, f"messages: {notify.messages}")
        if ready is None:
            break
        # Ordering: by the time READY=1 is sent, the listener is bound and the first scan has
        # been logged (source=sockets ok comes from the first snapshot).
        # The daemon writes those lines to stderr before it sends READY=1; stderr reaches this
        # test through a pipe and a reader thread, a second channel that may lag the datagram
        # by a moment, so wait briefly for lines that are already written.
        bound = d.wait_log("listening on 127.0.0.1:", timeout=2)
        scanned = d.wait_log("source=sockets ok", timeout=2)
        log = d.log_text()
        check(f"{kind}: listener bound before READY=1", bound is not None, log)
        check(f"{kind}: first snapshot before READY=1", scanned is not None, log)
        check(f"{kind}: no READY=1 before it", all("READY=1" not in m.split("\n")
                                                  for m in notify.messages[:-1]),
              str(notify.messages))
        check(f"{kind}: READY carries STATUS with VIP count and last scan",
              "STATUS=0 VIPs, last scan " in ready, ready)
        d.wait_listening()
        status, _, body = d.request("/readyz")
        check(f"{kind}: /readyz 200 right after READY=1", status == 200, body)
        # 400 ms watchdog: a ping is due every 200 ms; 3 within 1.5 s proves the loop.
        start = time.monotonic()
        pings = 0
        while pings < 3 and time.monotonic() - start < 1.5:
            if notify.receive(lambda m: "WATCHDOG=1" in m.split("\n"),
                              timeout=1.5 - (time.monotonic() - start)):
                pings += 1
        check(f"{kind}: WATCHDOG=1 pings at half the interval", pings >= 3,
              f"{pings} pings; messages: {notify.messages[-5:]}")
        d.signal(signal.SIGTERM)
        stopping = notify.receive(lambda m: "STOPPING=1" in m.split("\n"))
        check(f"{kind}: STOPPING=1 on SIGTERM", stopping is not None, str(notify.messages[-3:]))
        rc = d.stop()
        check(f"{kind}: exit status 0", rc == 0, f"rc={rc}")

# Without NOTIFY_SOCKET everything is a silent no-op.
with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
    d = opslib.Daemon(binary, opslib.base_config(), tmp, env={"WATCHDOG_USEC": "400000"})
    daemons.append(d)
    check("no NOTIFY_SOCKET: ready", d.wait_log("info: ready") is not None, d.log_text())
    time.sleep(0.5)  # several watchdog periods
    rc = d.stop()
    check("no NOTIFY_SOCKET: exit 0", rc == 0, f"rc={rc}")
    check("no NOTIFY_SOCKET: no notification warnings", "notification failed" not in d.log_text(),
          d.log_text())

check.finish(daemons)
