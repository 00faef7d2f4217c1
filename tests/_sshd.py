"""A real OpenSSH server (Debian's openssh-server, `make test` installs it) on a loopback port,
with host and user keys made for the test; stopped, with every session it forked, on exit."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    for old in (path, path.with_name(path.name + ".pub")):  # ssh-keygen will not overwrite
        old.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   capture_output=True)
    return path


def sshd_processes(config: Path) -> list[int]:
    """Every process whose command line names this server's config (the server and its sessions)."""
    r = subprocess.run(["pgrep", "-f", str(config)], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


@contextmanager
def sshd(root: Path):
    """Yields {"host", "port", "user", "identity", "known_hosts", "log", "config", "spec"}."""
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        raise RuntimeError("openssh-server is not installed: run make test (it installs it) or "
                           "apt-get install openssh-server")
    root.mkdir(parents=True, exist_ok=True)
    host_key, user_key = keygen(root / "host_ed25519"), keygen(root / "user_ed25519")
    (root / "authorized_keys").write_text((root / "user_ed25519.pub").read_text())
    port = _free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "PermitRootLogin prohibit-password", "StrictModes no",
        "LogLevel VERBOSE", ""]))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
    log = root / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {log.read_text()[-500:]}")
                time.sleep(0.1)
        user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        known = root / "known_hosts"
        yield {"host": "127.0.0.1", "port": port, "user": user, "identity": user_key, "known_hosts": known,
               "log": log, "config": config,
               "spec": f"ssh://{user}@127.0.0.1:{port}?identity={user_key}&known_hosts={known}"}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in sshd_processes(config):  # sessions sshd forked into sessions of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
