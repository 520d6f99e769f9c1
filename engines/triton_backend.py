"""`--backend triton`: the model runs on a Triton Inference Server that holds our model repository.

One TritonBackend serves one checkpoint's three graphs (`<prefix>[_<task>]_<modality>`, written
by `export-triton`); a task bundle on the server is a BundleBackend of one TritonBackend per task.
All faces of a window go in one request; the server's dynamic batcher merges requests of many
robots. Before it trusts a server the client reads each model's config parameters: our format,
the preprocessing (which this client then runs), and, when local weights are named, their hashes.

When the server cannot be reached (refused, reset, timed out) `infer` raises BackendUnavailable
and the pipeline counts the window instead of failing it; further calls fail fast until the next
retry time (backoff from `retry_initial_s` doubling to `retry_max_s`), then try the server again,
re-checking its models, so a server restarted with other weights is refused, not used.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from socialmae_rt.backend import MODE_INPUTS, BackendInfo, BackendOutput, BackendUnavailable, check_finite, check_inputs
from socialmae_rt.engines.triton_repository import FORMAT, MODEL_PREFIX, PARAMETER_PREFIX, model_name, preprocess_sha256
from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model import Modality, SocialMAEConfig
from socialmae_rt.util.options import option

log = logging.getLogger(__name__)

PROTOCOLS = ("grpc", "http")
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
INSTALL_HINT = "pip install 'tritonclient[grpc,http]'"


class TritonModelMismatch(ValueError):
    """The server's models are not the ones this client was told to use, or not ours at all."""


@dataclass
class TritonConfig:
    """A Triton server and how to talk to it (`--backend triton`; the run flags --triton-*)."""

    # HOST:PORT of the server's gRPC or HTTP endpoint; None: 127.0.0.1 and the protocol's port
    url: str | None = option(None, "--backend triton: the server (default: 127.0.0.1:8001 for grpc, :8000 for "
                             "http)", metavar="HOST:PORT")
    protocol: str = option("grpc", "--backend triton: protocol (default: %(default)s)", choices=PROTOCOLS)
    model_prefix: str = option(MODEL_PREFIX, "--backend triton: model names on the server, as given to "
                               "export-triton (default: %(default)s)")
    timeout_s: float = option(10.0, "--backend triton: seconds one request may take (connection included) before "
                              "the server counts as down (default: %(default)s)", name="timeout")
    connect_timeout_s: float = 30.0  # at start: how long to wait for the server to answer
    retry_initial_s: float = 0.5
    retry_max_s: float = 10.0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"triton protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.url is None or not self.url.strip():
            self.url = f"127.0.0.1:{DEFAULT_PORTS[self.protocol]}"
        host, _, port = self.url.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"triton url must be HOST:PORT (e.g. 127.0.0.1:{DEFAULT_PORTS[self.protocol]}), "
                             f"got {self.url!r}")
        for name in ("timeout_s", "connect_timeout_s", "retry_initial_s", "retry_max_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TritonConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError(f"TritonConfig.retry_max_s ({self.retry_max_s}) must be >= retry_initial_s "
                             f"({self.retry_initial_s})")

    @property
    def call_options(self) -> dict[str, float]:
        """Per-call keyword arguments: gRPC calls take their timeout per call (the HTTP client
        gets its timeouts when it is made)."""
        return {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}


def _unreachable(config: TritonConfig, err: Exception | None) -> BackendUnavailable:
    return BackendUnavailable(f"Triton server at {config.url} ({config.protocol}) did not answer within "
                              f"{config.connect_timeout_s:.0f} s: {err}. Start the server (README, 'Many robots, "
                              "one GPU server') or check --triton-url/--triton-protocol")


@dataclass(frozen=True)
class Expected:
    """What the local weights say the server must hold (any field None: not checked)."""

    source: str
    weights_sha256: str | None = None  # an export's weights fingerprint
    checkpoint_sha256: str | None = None  # a checkpoint file's bytes
    preprocess: dict[str, Any] | None = None

    @classmethod
    def from_weights(cls, path: str | Path) -> "Expected":
        from socialmae_rt.engines.onnx_export import MANIFEST, load_export, sha256_file

        path = Path(path)
        if (path / MANIFEST).is_file():
            export = load_export(path)
            return cls(str(path), weights_sha256=export.manifest["weights_sha256"],
                       preprocess=export.manifest["preprocess"])
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint or export directory")
        preprocess = None
        if path.suffix == ".safetensors":
            from socialmae_rt.model.checkpoint import read_checkpoint_config

            preprocess = read_checkpoint_config(path)[1].to_dict()
        elif path.suffix in (".pth", ".pt"):
            preprocess = PreprocessConfig().to_dict()  # the released checkpoints' preprocessing
        return cls(str(path), checkpoint_sha256=sha256_file(path), preprocess=preprocess)


def client_module(protocol: str):
    try:
        if protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
    except ImportError as err:
        raise ImportError(f"backend 'triton' needs the tritonclient package: {INSTALL_HINT}") from err
    return module


def _is_connection_failure(err: Exception) -> bool:
    """Server unreachable, restarting, or too slow: worth retrying later (vs. a bad request)."""
    from tritonclient.utils import InferenceServerException

    if isinstance(err, (ConnectionError, TimeoutError, OSError)):
        return True
    if isinstance(err, InferenceServerException):
        status = (err.status() or "").upper()
        text = str(err).lower()
        return (any(code in status for code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN"))
                or any(word in text for word in ("connect", "unavailable", "deadline", "timed out", "timeout",
                                                  "socket closed", "reset", "not ready", "broken pipe")))
    # geventhttpclient and gRPC raise their own types for refused/reset connections
    name = type(err).__name__.lower()
    return any(word in name for word in ("connection", "timeout", "socket"))


def _parameters(config: dict[str, Any]) -> dict[str, str]:
    return {key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()}


class TritonBackend:
    """One checkpoint's graphs on a Triton server, behind the one backend protocol."""

    def __init__(self, config: TritonConfig | None = None, task: str | None = None,
                 expected: Expected | None = None, client_factory: Callable[[], Any] | None = None) -> None:
        self.config = config or TritonConfig()
        self.task = task
        self.expected = expected
        self._module = client_module(self.config.protocol)
        self._make_client = client_factory or self._new_client
        self._lock = threading.Lock()
        self._client = None
        self._closed = False
        self._retry_at = 0.0
        self._retry_s = self.config.retry_initial_s
        self.down_reason: str | None = None
        self.models = {modality: model_name(self.config.model_prefix, task, modality) for modality in MODE_INPUTS}
        started = time.perf_counter()
        self._connect_at_start()
        self.load_s = time.perf_counter() - started
        self.info = BackendInfo(name="triton", precision=self.variant, device=f"triton {self.config.protocol}://"
                                f"{self.config.url}", weights=expected.source if expected else
                                f"triton:{self.models[Modality.AUDIOVISUAL]}")

    # Connection and checks ------------------------------------------------------------------
    def _new_client(self):
        if self.config.protocol == "grpc":
            return self._module.InferenceServerClient(self.config.url)
        return self._module.InferenceServerClient(self.config.url, connection_timeout=self.config.timeout_s,
                                                  network_timeout=self.config.timeout_s)

    def _connect_at_start(self) -> None:
        _wait_for_server(self.config)  # up to connect_timeout_s for a server that is still starting
        try:
            self._client = self._make_client()
            self._check_models()
        except Exception as err:  # noqa: BLE001 - a connection failure is said as such; anything else re-raised
            self._drop_client()
            if isinstance(err, TritonModelMismatch) or not _is_connection_failure(err):
                raise
            raise _unreachable(self.config, err) from err

    def _model_config(self, name: str) -> dict[str, Any]:
        if self.config.protocol == "grpc":
            return self._client.get_model_config(name, as_json=True, **self.config.call_options)["config"]
        return self._client.get_model_config(name)

    def _check_models(self) -> None:
        """Read the three models' configs; refuse anything that is not the model we were told to use."""
        from tritonclient.utils import InferenceServerException

        found = {}
        for modality, name in self.models.items():
            try:
                if not self._client.is_model_ready(name, **self.config.call_options):
                    raise TritonModelMismatch(self._missing(name))
                found[modality] = self._model_config(name)
            except InferenceServerException as err:
                if _is_connection_failure(err):
                    raise
                raise TritonModelMismatch(f"{self._missing(name)} ({err})") from err
        parameters = {modality: _parameters(config) for modality, config in found.items()}
        audiovisual = parameters[Modality.AUDIOVISUAL]
        for modality, params in parameters.items():
            name = self.models[modality]
            if params.get(f"{PARAMETER_PREFIX}format") != FORMAT:
                raise TritonModelMismatch(f"Triton model {name!r} at {self.config.url} was not written by "
                                          f"`socialmae-rt export-triton` (format {params.get(PARAMETER_PREFIX + 'format')!r}, "
                                          f"expected {FORMAT!r})")
            for key in ("weights_sha256", "preprocess_sha256"):
                if params.get(PARAMETER_PREFIX + key) != audiovisual.get(PARAMETER_PREFIX + key):
                    raise TritonModelMismatch(f"Triton models {self.models[Modality.AUDIOVISUAL]!r} and {name!r} "
                                              f"hold different weights or preprocessing ({key}); export them again")
        preprocess = json.loads(audiovisual[f"{PARAMETER_PREFIX}preprocess"])
        if preprocess_sha256(preprocess) != audiovisual[f"{PARAMETER_PREFIX}preprocess_sha256"]:
            raise TritonModelMismatch(f"Triton model {self.models[Modality.AUDIOVISUAL]!r}: its preprocessing does "
                                      "not match its own hash (edited config.pbtxt?)")
        self._check_expected(audiovisual, preprocess)
        self.preprocess = PreprocessConfig.from_dict(preprocess)
        self.model_config = SocialMAEConfig.from_dict(json.loads(audiovisual[f"{PARAMETER_PREFIX}model"]))
        self.outputs = audiovisual[f"{PARAMETER_PREFIX}outputs"].split(",")
        self.variant = audiovisual.get(f"{PARAMETER_PREFIX}variant", "fp32")
        self.weights_sha256 = audiovisual[f"{PARAMETER_PREFIX}weights_sha256"]
        self.max_batch_size = int(found[Modality.AUDIOVISUAL].get("max_batch_size", 0))
        self.input_shapes = {item["name"]: tuple(int(d) for d in item["dims"])
                             for config in found.values() for item in config["input"]}

    def _missing(self, name: str) -> str:
        return (f"Triton server at {self.config.url} has no ready model {name!r}; export the repository with "
                f"`socialmae-rt export-triton`" + (f" (task {self.task!r})" if self.task else "")
                + " and check --triton-model-prefix")

    def _check_expected(self, params: dict[str, str], preprocess: dict[str, Any]) -> None:
        expected = self.expected
        if expected is None:
            return
        where = f"Triton model {self.models[Modality.AUDIOVISUAL]!r} at {self.config.url}"
        if expected.weights_sha256 and params[f"{PARAMETER_PREFIX}weights_sha256"] != expected.weights_sha256:
            raise TritonModelMismatch(f"{where} holds other weights than {expected.source} (weights sha256 "
                                      f"{params[PARAMETER_PREFIX + 'weights_sha256'][:12]}..., expected "
                                      f"{expected.weights_sha256[:12]}...)")
        if expected.checkpoint_sha256:
            served = params.get(f"{PARAMETER_PREFIX}checkpoint_sha256") or ""
            if not served:
                raise TritonModelMismatch(f"{where} does not record which checkpoint file it came from; name its "
                                          "ONNX export directory as --weights instead, or export the repository "
                                          "from the checkpoint")
            if served != expected.checkpoint_sha256:
                raise TritonModelMismatch(f"{where} holds another checkpoint than {expected.source} (file sha256 "
                                          f"{served[:12]}..., expected {expected.checkpoint_sha256[:12]}...)")
        if expected.preprocess is not None and preprocess_sha256(expected.preprocess) != preprocess_sha256(preprocess):
            raise TritonModelMismatch(f"{where} expects other preprocessing than {expected.source} is used with; "
                                      "export the repository again from these weights")

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as err:  # noqa: BLE001 - a dead connection may fail to close; it is gone either way
                log.debug("closing the Triton client: %s", err)

    # Inference --------------------------------------------------------------------------------
    def infer(self, audio: np.ndarray | None = None, video: np.ndarray | None = None) -> BackendOutput:
        modality, feeds, batch = check_inputs(audio, video, self.input_shapes)
        if self.max_batch_size and batch > self.max_batch_size:
            parts = [self.infer(*(feeds.get(k)[start:start + self.max_batch_size] if k in feeds else None
                                  for k in ("audio", "video")))
                     for start in range(0, batch, self.max_batch_size)]
            return BackendOutput(np.concatenate([p.embedding for p in parts]),
                                 {name: np.concatenate([p.heads[name] for p in parts]) for name in parts[0].heads})
        with self._lock:
            if self._closed:
                raise RuntimeError("TritonBackend is closed")
            self._reconnect_if_due()
            try:
                values = self._request(modality, feeds)
            except Exception as err:  # noqa: BLE001 - classified: unreachable -> down; else the window fails
                if _is_connection_failure(err):
                    self._mark_down(err)
                    raise BackendUnavailable(self._down_message()) from err
                raise
            if self.down_reason is not None:
                log.warning("Triton server at %s answers again", self.config.url)
                self.down_reason = None
            self._retry_s = self.config.retry_initial_s
        check_finite(values, f"triton {self.models[modality]}")
        embedding = values.pop("embedding")
        return BackendOutput(embedding=embedding, heads=values)

    def _reconnect_if_due(self) -> None:
        if self.down_reason is None:
            return
        if time.monotonic() < self._retry_at:
            raise BackendUnavailable(self._down_message())
        try:
            self._client = self._make_client()
            self._check_models()  # a server back with other weights is refused, not used
        except TritonModelMismatch:
            self._drop_client()
            raise
        except Exception as err:  # noqa: BLE001 - still down: back off further
            if not _is_connection_failure(err):
                raise
            self._mark_down(err)
            raise BackendUnavailable(self._down_message()) from err

    def _mark_down(self, err: Exception) -> None:
        self._drop_client()
        self.down_reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        self._retry_at = time.monotonic() + self._retry_s
        self._retry_s = min(self._retry_s * 2, self.config.retry_max_s)

    def _down_message(self) -> str:
        """Stable while the outage lasts (status lines change only when something changes)."""
        return f"Triton server at {self.config.url} unreachable ({self.down_reason})"

    def _request(self, modality: Modality, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._client is None:
            self._client = self._make_client()
        module = self._module
        inputs = []
        for name, array in feeds.items():
            item = module.InferInput(name, list(array.shape), "FP32")
            item.set_data_from_numpy(array)
            inputs.append(item)
        outputs = [module.InferRequestedOutput(name) for name in self.outputs]
        result = self._client.infer(self.models[modality], inputs, outputs=outputs, **self.config.call_options)
        return {name: result.as_numpy(name).astype(np.float32, copy=False) for name in self.outputs}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_client()


def discover_tasks(config: TritonConfig) -> list[str | None]:
    """The tasks whose three graphs the server holds under `model_prefix` ([None]: one single
    checkpoint without a task prefix)."""
    module = client_module(config.protocol)
    client = module.InferenceServerClient(config.url)
    try:
        index = client.get_model_repository_index(as_json=True) if config.protocol == "grpc" else \
            {"models": client.get_model_repository_index()}
    finally:
        client.close()
    names = {entry["name"] for entry in index.get("models", [])}
    tasks: list[str | None] = []
    suffix = f"_{Modality.AUDIOVISUAL.value}"
    for name in sorted(names):
        if not (name.startswith(config.model_prefix + "_") and name.endswith(suffix)):
            continue
        middle = name[len(config.model_prefix) + 1:-len(suffix)]
        task = middle or None
        if all(model_name(config.model_prefix, task, m) in names for m in MODE_INPUTS):
            tasks.append(task)
    return tasks


def _wait_for_server(config: TritonConfig) -> None:
    """Return once the server answers a liveness probe; BackendUnavailable after connect_timeout_s."""
    module = client_module(config.protocol)
    deadline = time.monotonic() + config.connect_timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        client = module.InferenceServerClient(config.url)
        try:
            if client.is_server_live():
                return
        except Exception as err:  # noqa: BLE001 - classified: only connection failures are waited out
            if not _is_connection_failure(err):
                raise
            last = err
        finally:
            client.close()
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    raise _unreachable(config, last)


def create_triton_backend(spec, *, triton: TritonConfig | None = None, on_status=None, **_local_options: Any):
    """The backend for `--backend triton`: `spec` (parsed --weights) names what the server must
    hold, or nothing (use whatever our repository on the server holds: one checkpoint, or every
    task of a bundle). Options for local backends (threads, cache_dir, ...) do not apply."""
    from socialmae_rt.engines.bundle_backend import BundleBackend, BundleMember

    config = triton or TritonConfig()
    if on_status is not None:
        on_status(f"connecting to the Triton server at {config.url} ({config.protocol})")
    _wait_for_server(config)
    if spec.is_bundle:
        members = []
        try:
            for entry in spec.entries:
                members.append(BundleMember(entry.task, entry.path,
                                            TritonBackend(config, entry.task, Expected.from_weights(entry.path))))
            return BundleBackend(members)
        except BaseException:
            for member in members:
                member.backend.close()
            raise
    tasks = discover_tasks(config)
    if not tasks:
        raise TritonModelMismatch(f"the Triton server at {config.url} holds no models named {config.model_prefix}_... "
                                  "with all three graphs; write them with `socialmae-rt export-triton` and check "
                                  "--triton-model-prefix")
    expected = Expected.from_weights(spec.single) if spec.single else None
    if expected is not None:
        refusals = []
        for task in tasks:
            try:
                return TritonBackend(config, task, expected)
            except TritonModelMismatch as refused:
                refusals.append(str(refused))
        raise TritonModelMismatch("; ".join(refusals))
    if tasks == [None]:
        return TritonBackend(config)
    if None in tasks:
        return TritonBackend(config)  # a single checkpoint beside task models: the unprefixed one
    members = []
    try:
        for task in tasks:
            members.append(BundleMember(task, f"triton:{model_name(config.model_prefix, task, Modality.AUDIOVISUAL)}",
                                        TritonBackend(config, task)))
        return BundleBackend(members)
    except BaseException:
        for member in members:
            member.backend.close()
        raise
