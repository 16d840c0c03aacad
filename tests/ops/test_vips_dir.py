"""vips_dir: drop-in *.toml files are applied within a second of being added, changed (in place,
by atomic rename, or editor-style with a backup) or removed; a broken file keeps its last good
VIPs; hidden and backup files are ignored."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

opslib.isolate()
binary = opslib.main_args()
check = opslib.Check()

A, B, C = "a" * 32, "b" * 32, "c" * 32


def vip(uuid, ip):
    return f'[[vip]]\nuuid = "{uuid}"\nip = "{ip}"\n'


def known(d, uuid):
    s, _, _ = d.usedports(uuid)
    return s == 200


def within_1s(d, uuid, want):
    start = time.monotonic()
    ok = opslib.poll(lambda: known(d, uuid) == want, 1.0)
    return ok, time.monotonic() - start


with tempfile.TemporaryDirectory(prefix="vipportd-ops.") as tmp:
    vd = os.path.join(tmp, "vips.d")
    os.mkdir(vd)
    opslib.write(os.path.join(vd, "00-a.toml"), vip(A, "192.0.2.1"))
    d = opslib.Daemon(binary, opslib.base_config(f'vips_dir = "{vd}"\n'), tmp)
    d.wait_listening()
    check("a file present at start is served", known(d, A))

    # add by atomic rename (ansible, config tools)
    opslib.write_atomic(os.path.join(vd, "10-b.toml"), vip(B, "192.0.2.2"))
    ok, t = within_1s(d, B, True)
    check(f"added by rename: served within 1 s ({t:.2f} s)", ok)

    # change in place: a second VIP appended
    with open(os.path.join(vd, "10-b.toml"), "a") as f:
        f.write(vip(C, "192.0.2.3"))
    ok, t = within_1s(d, C, True)
    check(f"changed in place: served within 1 s ({t:.2f} s)", ok)

    # editor pattern (vim backupcopy=no): rename to a backup, write a new file
    p = os.path.join(vd, "10-b.toml")
    os.rename(p, p + "~")
    opslib.write(p, vip(B, "192.0.2.2"))
    ok, t = within_1s(d, C, False)
    check(f"editor-style replace: removed entry gone within 1 s ({t:.2f} s)", ok)
    check("editor-style replace: kept entry still served", known(d, B))
    check("backup file x.toml~ ignored", not known(d, C))

    # a broken file keeps its last good entries, and says where it is broken
    mark = d.log_count()
    opslib.write(p, vip(B, "192.0.2.2") + "oops = \n")
    i = d.wait_log("vips_dir:", mark, timeout=2)
    check("broken file logged with file:line", i is not None and f"{p}:4:" in d.lines[i],
          d.log_text()[-600:])
    check("broken file keeps its last good VIPs", known(d, B))

    # hidden files are ignored
    opslib.write(os.path.join(vd, ".20-c.toml"), vip(C, "192.0.2.3"))
    time.sleep(0.3)  # longer than the debounce: a rescan would have happened
    check("hidden file ignored", not known(d, C))

    # remove
    os.unlink(p)
    ok, t = within_1s(d, B, False)
    check(f"removed: gone within 1 s ({t:.2f} s)", ok)
    check("other file still served", known(d, A))

    # the directory itself replaced (rm -r + mkdir)
    for name in os.listdir(vd):
        os.unlink(os.path.join(vd, name))
    os.rmdir(vd)
    os.mkdir(vd)
    opslib.write(os.path.join(vd, "30-c.toml"), vip(C, "192.0.2.3"))
    ok = opslib.poll(lambda: known(d, C), 3.0)
    check("directory re-created: new files served (retry period 1 s)", ok)
    check("directory re-created: old files gone", not known(d, A))

    rc = d.stop()
    check("exit 0", rc == 0, f"rc={rc}")

check.finish([d])
