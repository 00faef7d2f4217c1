"""`ssh://user@host[:port]`: a device reached with the system's OpenSSH client (`ssh`), as a user
reaches a Raspberry Pi or a Jetson: keys and host keys are OpenSSH's own (~/.ssh, ssh-agent, or
`identity=` / `known_hosts=`), and the deploy folder goes over the same connection as a tar stream
into ~/.cache/pilotopt-edge/deploy/<address> (renamed into place when complete)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from pilotopt.targets import (EDGE_INSTALL, EDGE_VERSION, DeviceReport, Target, TargetError, pack, register_scheme,
                              take_settings, threads_of)

SETTINGS = {"python": "the device's Python with the edge package, default python3",
            "threads": "model threads, default 1",
            "identity": "private key file (ssh -i)",
            "known_hosts": "known_hosts file to use (default OpenSSH's own)",
            "cache": "folder under the login's home for deploy folders, default .cache/pilotopt-edge/deploy",
            "timeout": "seconds one remote command may take, default 600"}
CONNECT_TIMEOUT = 10


@register_scheme("ssh")
class SshTarget(Target):
    def __init__(self, spec: str, user: str | None, host: str, port: int | None, python: str = "python3",
                 threads: int = 1, identity: str | None = None, known_hosts: str | None = None,
                 cache: str = ".cache/pilotopt-edge/deploy", timeout: float = 600.0) -> None:
        super().__init__(spec, threads)
        self.user, self.host, self.port = user, host, port
        self.python, self.identity, self.known_hosts = python, identity, known_hosts
        self.cache, self.timeout = cache.rstrip("/"), timeout

    @classmethod
    def from_spec(cls, spec: str, rest: str, settings: dict[str, str]) -> "SshTarget":
        settings = take_settings(spec, settings, SETTINGS)
        login, _, hostport = rest.rpartition("@")
        host, _, port = hostport.partition(":")
        if not host or "/" in hostport:
            raise TargetError(f"target '{spec}' names no host; write ssh://user@host[:port]")
        if port and not port.isdigit():
            raise TargetError(f"target '{spec}': port must be a number, got '{port}'")
        for key in ("identity",):  # known_hosts is made by OpenSSH on first contact
            if key in settings and not Path(settings[key]).expanduser().is_file():
                raise TargetError(f"target '{spec}': {key} file '{settings[key]}' does not exist")
        try:
            timeout = float(settings.get("timeout", 600))
        except ValueError:
            raise TargetError(f"target '{spec}': timeout must be seconds, got '{settings['timeout']}'") from None
        return cls(spec, login or None, host, int(port) if port else None, python=settings.get("python", "python3"),
                   threads=threads_of(spec, settings), identity=settings.get("identity"),
                   known_hosts=settings.get("known_hosts"),
                   cache=settings.get("cache", ".cache/pilotopt-edge/deploy"), timeout=timeout)

    # -- one remote command --------------------------------------------------------------------
    def _argv(self, command: str) -> list[str]:
        if shutil.which("ssh") is None:
            raise TargetError("the OpenSSH client (ssh) is not installed here: apt-get install openssh-client")
        argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.identity:
            argv += ["-i", str(Path(self.identity).expanduser()), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={Path(self.known_hosts).expanduser()}",
                     "-o", "StrictHostKeyChecking=accept-new"]
        argv.append(f"{self.user}@{self.host}" if self.user else self.host)
        return argv + ["--", command]

    def _run(self, command: str, what: str, data: bytes | None = None, ok_codes=(0,)) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(self._argv(command), input=data, capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise TargetError(f"{self.name} did not finish {what} in {self.timeout:g} s; "
                              "rerun (finished variants are kept) or raise ?timeout=") from None
        if proc.returncode not in ok_codes:
            raise TargetError(self._why(proc, what))
        return proc

    def _why(self, proc: subprocess.CompletedProcess, what: str) -> str:
        """One line for a remote command that failed: unreachable, refused, no Python, no edge
        package, or the device's own error."""
        err = proc.stderr.decode(errors="replace")
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        text = " ".join(lines)
        if proc.returncode == 255:
            if "Permission denied" in text:
                return (f"{self.name} refused the login ({last}); pass ?identity=KEY with a key listed in the "
                        "device's ~/.ssh/authorized_keys (ssh-copy-id puts it there)")
            if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
                return (f"{self.name}: the device's host key is not the one known here ({last}); check the "
                        "device, then remove its old line from known_hosts (ssh-keygen -R HOST)")
            if any(s in text for s in ("Connection refused", "timed out", "No route to host", "Could not resolve",
                                       "Name or service not known", "Network is unreachable")):
                return f"cannot reach {self.name} ({last}); check the host and port, and that sshd runs there"
            return (f"{self.name} stopped answering during {what} ({last}); check the device and rerun: "
                    "variants measured before are kept")
        if re.search(r"No module named '?pilotopt_edge", text):
            return f"the edge package is not installed for {self.python} on {self.name}: {EDGE_INSTALL}"
        if proc.returncode == 127 or ("not found" in text and self.python in text):
            return (f"no Python at '{self.python}' on {self.name} ({last}); pass ?python=/path/to/venv/bin/python "
                    "of the device's Python that has the edge package")
        if "invalid choice" in text and "pilotopt-edge" in text:
            return f"the edge package on {self.name} is older than this pilotopt's ({EDGE_VERSION}): {EDGE_INSTALL}"
        if last.startswith("error: "):  # pilotopt-edge's own one-line error
            return f"on {self.name}: {last[len('error: '):]}"
        if proc.returncode < 0 or proc.returncode > 128:
            return (f"the device's process died during {what} on {self.name} (exit code {proc.returncode}"
                    + (f": {last}" if lines else "") + "); check the device's memory and logs, then rerun: "
                    "variants measured before are kept")
        return f"{what} failed on {self.name}: {last}"

    def _edge(self, args: str) -> str:
        return f"{shlex.quote(self.python)} -m pilotopt_edge.cli {args}"

    def _json_line(self, proc: subprocess.CompletedProcess, what: str) -> dict:
        out = proc.stdout.decode(errors="replace").strip().splitlines()
        try:
            doc = json.loads(out[-1])
            if isinstance(doc, dict):
                return doc
        except (IndexError, ValueError):
            pass
        raise TargetError(f"{self.name} gave no result for {what} (its output was cut or is not pilotopt-edge's); "
                          "rerun: variants measured before are kept")

    # -- the Target interface ----------------------------------------------------------------------
    def report(self) -> DeviceReport:
        proc = self._run(self._edge("device"), "the device check")
        return DeviceReport(self._json_line(proc, "the device check"))

    def _folder(self, address: str) -> str:
        return f"{shlex.quote(self.cache)}/{address}"

    def has(self, address: str) -> bool:
        proc = self._run(f"test -f {self._folder(address)}/.complete", "looking for the deploy folder", ok_codes=(0, 1))
        return proc.returncode == 0

    def send(self, folder: Path, address: str) -> None:
        final = self._folder(address)
        script = (f'set -e; d={final}; t="$d.part.$$"; rm -rf "$t"; mkdir -p "$t"; tar -xf - -C "$t"; '
                  f'touch "$t/.complete"; rm -rf "$d"; mv "$t" "$d"')
        self._run(script, "copying the deploy folder", data=pack(folder))

    def bench(self, address: str, iterations: int, warmup: int) -> dict:
        args = (f"bench {self._folder(address)} --threads {self.threads} --iterations {iterations} "
                f"--warmup {warmup} --check --json")
        proc = self._run(self._edge(args), "the bench")
        return self._json_line(proc, "the bench")
