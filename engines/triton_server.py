"""Start the `tritonserver` binary bundled with the nvidia-pytriton wheel on this machine.

For CPU test servers and the tests: a real Triton Inference Server (Python backend only, no GPU
needed) serving a repository written with `export-triton --platform python`. A GPU host runs
NVIDIA's container instead (README, "Many robots, one GPU server").

pytriton's own `Triton().bind()` API fails on Python 3.11.7, so this drives the binary directly:
the wheel's server tree is linked into a working folder with the Python-backend stub built for
this interpreter's version, the wheel's shared libraries go on LD_LIBRARY_PATH, and this
interpreter's bin folder leads PATH so that the stub's embedded Python finds our packages.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install nvidia-pytriton==0.7.0 (a CPU test server; GPU hosts run NVIDIA's tritonserver container)"


class TritonServerError(RuntimeError):
    """The bundled server is missing, or did not come up."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bundled_server_dir() -> Path:
    """pytriton's `tritonserver/` folder (bin/tritonserver, backends/python, python_backend_stubs)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonServerError(f"no bundled tritonserver: the nvidia-pytriton wheel is not installed ({INSTALL_HINT})")
    root = Path(next(iter(spec.submodule_search_locations)))
    server = root / "tritonserver"
    if not (server / "bin" / "tritonserver").is_file():
        raise TritonServerError(f"{server}/bin/tritonserver not found: a broken nvidia-pytriton install? ({INSTALL_HINT})")
    return server


def _libs_dir(server: Path) -> Path:
    # A wheel install keeps the server's shared libraries in `nvidia_pytriton.libs` beside the package.
    return server.parent.parent / "nvidia_pytriton.libs"


@dataclass
class LocalTritonServer:
    """`with LocalTritonServer(repo) as server:` a tritonserver on 127.0.0.1 until the block ends."""

    repository: Path
    address: str = "127.0.0.1"  # where the server listens; 0.0.0.0 serves other machines too
    http_port: int = 0  # 0: a free port
    grpc_port: int = 0
    startup_timeout_s: float = 120.0
    log_verbose: int = 0
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = field(default=None, init=False)
    log_path: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.repository = Path(self.repository)
        if not self.repository.is_dir():
            raise TritonServerError(f"{self.repository} is not a folder: write a repository with "
                                    "`socialmae-rt export-triton --platform python --out DIR` first")
        self.http_port = self.http_port or free_port()
        self.grpc_port = self.grpc_port or free_port()
        self._workdir: Path | None = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def _prepare(self) -> tuple[Path, dict[str, str]]:
        server = bundled_server_dir()
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = server / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.is_file():
            raise TritonServerError(f"the bundled Python backend has no stub for Python {version} ({stub})")
        self._workdir = Path(tempfile.mkdtemp(prefix="socialmae-tritonserver-"))
        backends = self._workdir / "backends" / "python"
        backends.mkdir(parents=True)
        for item in (server / "backends" / "python").iterdir():
            os.symlink(item, backends / item.name)
        shutil.copy2(stub, backends / "triton_python_backend_stub")
        env = dict(os.environ)
        libs = _libs_dir(server)
        env["LD_LIBRARY_PATH"] = ":".join(p for p in (env.get("LD_LIBRARY_PATH"), str(libs)) if p)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        return server / "bin" / "tritonserver", env

    def start(self) -> "LocalTritonServer":
        binary, env = self._prepare()
        self.log_path = self._workdir / "tritonserver.log"
        command = [str(binary), f"--model-repository={self.repository}", f"--backend-directory={self._workdir / 'backends'}",
                   f"--http-port={self.http_port}", f"--grpc-port={self.grpc_port}", "--allow-metrics=false",
                   f"--http-address={self.address}", f"--grpc-address={self.address}", f"--log-verbose={self.log_verbose}",
                   "--exit-on-error=true", "--strict-readiness=true", *self.extra_args]
        with open(self.log_path, "wb") as sink:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import tritonclient.http as http

        deadline = time.monotonic() + self.startup_timeout_s
        client = http.InferenceServerClient(self.http_url, connection_timeout=2.0, network_timeout=2.0)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise TritonServerError(f"tritonserver exited with {self.process.returncode} while starting:\n"
                                            f"{self.log_tail()}")
                try:
                    if client.is_server_ready():
                        return
                except Exception:  # noqa: BLE001 - not listening yet: try again until the deadline
                    pass
                time.sleep(0.2)
        finally:
            client.close()
        self.stop()
        raise TritonServerError(f"tritonserver not ready after {self.startup_timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crashed or unplugged server would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "LocalTritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
