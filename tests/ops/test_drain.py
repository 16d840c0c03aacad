"""SIGTERM drains: a request in progress when the signal arrives is still answered (with
Connection: close), new connections are refused, and the daemon exits 0. A request that never
completes is cut at shutdown_timeout, and the exit status is still 0."""
import os
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

opslib.isolate()
binary = opslib.main_args()
check = opslib.Check()
daemons = []


def read_all(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data.decode(errors="replace")


with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
    d = opslib.Daemon(binary, opslib.base_config(), tmp)
    daemons.append(d)
    port = d.wait_listening()
    s = socket.create_connection(("127.0.0.1", port))
    # Half a request: the connection is busy reading it when SIGTERM arrives.
    s.sendall(b"GET /zstack/v1/vips/192.0.2.1/usedports?protocol=TCP HTTP/1.1\r\n"
              b"Host: x\r\nAuthorization: OAuth t\r\n")
    time.sleep(0.2)  # let the server read the partial header
    mark = d.log_count()
    d.signal(signal.SIGTERM)
    check("shutdown logged", d.wait_log("shutting down", mark) is not None, d.log_text())
    check("still running while the request is in flight", d.proc.poll() is None)
    refused = False
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        refused = True
    check("new connections refused after SIGTERM", refused)
    s.sendall(b"\r\n")
    answer = read_all(s, 5)
    s.close()
    check("in-flight request answered 200", answer.startswith("HTTP/1.1 200"), answer[:200])
    check("answer says Connection: close", "connection: close" in answer.lower(), answer[:400])
    rc = d.stop()
    check("exit 0 after draining", rc == 0, f"rc={rc}")

with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
    cfg = opslib.base_config().replace("shutdown_timeout = 5", "shutdown_timeout = 0.5")
    d = opslib.Daemon(binary, cfg, tmp)
    daemons.append(d)
    port = d.wait_listening()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
    time.sleep(0.2)
    start = time.monotonic()
    d.signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(5)
    except Exception:
        rc = "timeout"
    took = time.monotonic() - start
    s.close()
    check(f"stalled request cut at shutdown_timeout ({took:.2f} s)", 0.4 <= took < 3, d.log_text())
    check("exit 0 after the timeout", rc == 0, f"rc={rc}")
    check("timeout logged", "shutdown_timeout over" in d.log_text(), d.log_text())

# More SIGTERMs while it stops (an impatient operator, a supervisor's cleanup): every one of them,
# whenever it lands (during the drain or the teardown after "vipportd stopped"), leaves a clean
# exit 0, never death by the signal.
for attempt in range(5):
    with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
        d = opslib.Daemon(binary, opslib.base_config(), tmp)
        daemons.append(d)
        d.wait_listening()
        sent = 0
        while d.proc.poll() is None and sent < 2000:
            d.signal(signal.SIGTERM)
            sent += 1
            time.sleep(0.0005)
        try:
            rc = d.proc.wait(5)
        except Exception:
            rc = "timeout"
        check(f"SIGTERM repeated until exit (attempt {attempt + 1}, {sent} signals): exit 0",
              rc == 0, f"rc={rc}")

check.finish(daemons)
