"""`ray:RESOURCE`: a device that joined the Ray cluster as a node holding a custom resource (a
Jetson started with `ray start --address HEAD --resources '{"jetson": 1}'`). Each call is a Ray
task that asks for one unit of RESOURCE, so it runs on that node; the task is
`pilotopt_edge.remote.on_node` (standard library plus the edge package, all a node needs)."""

from __future__ import annotations

from pathlib import Path

from pilotopt_edge.remote import on_node

from pilotopt.targets import (EDGE_INSTALL, DeviceReport, Target, TargetError, pack, register_scheme,
                              take_settings, threads_of)

SETTINGS = {"threads": "model threads, default 1",
            "address": "the Ray cluster (default: the one this process is connected to, else RAY_ADDRESS / auto)"}


@register_scheme("ray")
class RayTarget(Target):
    def __init__(self, spec: str, resource: str, threads: int = 1, address: str | None = None) -> None:
        super().__init__(spec, threads)
        self.resource, self.address = resource, address
        self.node_id: str | None = None

    @classmethod
    def from_spec(cls, spec: str, rest: str, settings: dict[str, str]) -> "RayTarget":
        settings = take_settings(spec, settings, SETTINGS)
        if not rest or "/" in rest:
            raise TargetError(f"target '{spec}' names no resource; write ray:RESOURCE (the custom resource the "
                              "device's node was started with)")
        return cls(spec, rest, threads=threads_of(spec, settings), address=settings.get("address"))

    def _call(self, op: str, what: str, address: str = "", tar: bytes | None = None,
              args: list[str] | None = None) -> dict:
        try:
            import ray
        except ImportError:
            raise TargetError(f"target '{self.name}' needs Ray here: pip install 'pilotopt[ray]'") from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address or "auto", log_to_driver=False, configure_logging=False)
            except Exception as exc:  # noqa: BLE001 - Ray's own words, one line
                raise TargetError(f"cannot connect to the Ray cluster for {self.name} ({str(exc).splitlines()[0]}); "
                                  "start it with ray start, or pass ?address=HEAD:PORT") from None
        if not any(self.resource in (n.get("Resources") or {}) for n in ray.nodes() if n.get("Alive")):
            raise TargetError(f"no live node of the Ray cluster holds the resource '{self.resource}'; start the "
                              f"device with ray start --address HEAD:PORT --resources '{{\"{self.resource}\": 1}}'")
        task = ray.remote(on_node).options(resources={self.resource: 1}, num_cpus=0, max_retries=0)
        try:
            reply = ray.get(task.remote(op, address, tar, args))
        except Exception as exc:  # noqa: BLE001 - a node that died, a worker that crashed
            raise TargetError(f"{self.name} stopped answering during {what} ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}); rerun: variants measured before are kept") from None
        self.node_id = reply.get("node_id") or self.node_id
        if op in ("device", "bench"):
            if reply.get("result") is None:
                last = " ".join(reply.get("stderr") or []) or f"exit code {reply.get('returncode')}"
                if "No module named" in last and "pilotopt_edge" in last:
                    raise TargetError(f"the edge package is not installed on {self.name}'s node: {EDGE_INSTALL}")
                if last.startswith("error: "):
                    raise TargetError(f"on {self.name}: {last[len('error: '):]}")
                raise TargetError(f"{what} failed on {self.name}: {last}")
        return reply

    def report(self) -> DeviceReport:
        reply = self._call("device", "the device check")
        return DeviceReport(reply["result"], node_id=reply.get("node_id"))

    def has(self, address: str) -> bool:
        return bool(self._call("has", "looking for the deploy folder", address)["has"])

    def send(self, folder: Path, address: str) -> None:
        self._call("send", "copying the deploy folder", address, tar=pack(folder))

    def bench(self, address: str, iterations: int, warmup: int) -> dict:
        reply = self._call("bench", "the bench", address, args=["--threads", str(self.threads), "--iterations",
                                                               str(iterations), "--warmup", str(warmup),
                                                               "--check", "--json"])
        result = dict(reply["result"])
        result["device"] = {**result.get("device", {}), "node_id": reply.get("node_id")}
        return result
