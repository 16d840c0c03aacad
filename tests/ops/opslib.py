"""Helpers for the ops acceptance tests (tests/ops/test_*.py): run the real vipportd with a
configuration, a NOTIFY_SOCKET owned by the test, and talk HTTP to it on loopback.

Isolation: as root the test re-executes itself in a fresh network namespace (unshare -n, lo up),
so the daemon reads only that namespace's sockets and rules. Without root the daemon runs in the
current namespace with nf_tables optional and legacy iptables off (sock_diag needs no privilege).
Every wait is a deadline on an observable event (a log line, a datagram, an HTTP answer)."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

DEADLINE = float(os.environ.get("OPS_DEADLINE", "15"))


def isolate():
    """Re-exec in a fresh network namespace when root (once)."""
    if os.environ.get("OPS_ISOLATED") == "1" or os.geteuid() != 0:
        return
    if not shutil.which("unshare") or not shutil.which("ip"):
        return
    os.environ["OPS_ISOLATED"] = "1"
    os.execvp("unshare", ["unshare", "--net", "--", "sh", "-c",
                          'ip link set lo up && exec "$0" "$@"', sys.executable] + sys.argv)


class Check:
    def __init__(self):
        self.failures = 0
        self.count = 0

    def __call__(self, what, ok, detail=""):
        self.count += 1
        if ok:
            print(f"ok   {what}")
        else:
            self.failures += 1
            print(f"FAIL {what}" + (f"\n     {detail}" if detail else ""))
        sys.stdout.flush()
        return ok

    def finish(self, daemons=()):
        if self.failures:
            for d in daemons:
                print("--- daemon log\n" + d.log_text()[-4000:])
            print(f"{os.path.basename(sys.argv[0])}: {self.failures} of {self.count} checks FAILED")
            sys.exit(1)
        print(f"{os.path.basename(sys.argv[0])}: all {self.count} checks passed")
        sys.exit(0)


class NotifySocket:
    """A unix datagram socket standing in for systemd's notification socket."""

    def __init__(self, abstract=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"vipportd-ops-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="vipportd-notify.")
            self.address = os.path.join(self.dir, "notify")
            self.sock.bind(self.address)
        self.messages = []

    def receive(self, until, timeout=DEADLINE):
        """Reads datagrams until until(message) is true; returns that message or None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(data)
            if until(data):
                return data
        return None


class Daemon:
    def __init__(self, binary, config_text, tmp, env=None, args=()):
        self.tmp = tmp
        self.config = os.path.join(tmp, "vipportd.toml")
        write(self.config, config_text)
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                                 "LISTEN_PID", "JOURNAL_STREAM")}
        full_env.update(env or {})
        self.lines = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([binary, "--config", self.config, *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=full_env, text=True, errors="replace")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = None

    def _read(self):
        for line in self.proc.stderr:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def log_text(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait_log(self, needle, start=0, timeout=DEADLINE):
        """Index of the first log line at or after start containing needle, or None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for i in range(start, len(self.lines)):
                    if needle in self.lines[i]:
                        return i
            if self.proc.poll() is not None:
                time.sleep(0.05)  # let the reader drain the last lines
                with self.lock:
                    for i in range(start, len(self.lines)):
                        if needle in self.lines[i]:
                            return i
                return None
            time.sleep(0.01)
        return None

    def log_count(self):
        with self.lock:
            return len(self.lines)

    def wait_listening(self):
        i = self.wait_log("listening on 127.0.0.1:")
        if i is None:
            raise RuntimeError("vipportd did not listen:\n" + self.log_text())
        self.port = int(self.lines[i].split("listening on 127.0.0.1:")[1].split()[0])
        return self.port

    def request(self, path, method="GET", headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode(errors="replace")
        finally:
            c.close()

    def usedports(self, uuid, protocol="TCP"):
        return self.request(f"/zstack/v1/vips/{uuid}/usedports?protocol={protocol}",
                            headers={"Authorization": "OAuth ops-test"})

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=DEADLINE):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "timeout"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def write_atomic(path, text):
    """What config tools do: write a temporary file next to it, then rename over it."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    write(tmp, text)
    os.rename(tmp, path)


def base_config(extra=""):
    # Port 0: the kernel picks a free port, read back from the "listening on" log line.
    # Registrations stay off unless a test names its own state_dir: the host's
    # /var/lib/vipportd must never leak into (or be written by) a test.
    if "state_dir" not in extra:
        extra = 'state_dir = ""\n' + extra
    return ('listen = ["127.0.0.1:0"]\n'
            "shutdown_timeout = 5\n" + extra +
            '\n[sources]\nnftables = "optional"\niptables_legacy = "off"\n')


def poll(predicate, timeout):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            return value
        time.sleep(0.02)


def main_args():
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        print(f"usage: {sys.argv[0]} /path/to/vipportd", file=sys.stderr)
        sys.exit(2)
    return os.path.abspath(sys.argv[1])


def json_body(text):
    try:
        return json.loads(text)
    except ValueError:
        return None
