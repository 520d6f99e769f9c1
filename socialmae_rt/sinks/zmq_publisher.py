"""ZeroMQ publisher: the pipeline's records as multipart [topic, JSON] messages on a PUB socket.

Topics: `results` (socialmae_rt.result/1), `laughter_onset` and `laughter_offset`
(socialmae_rt.event/1), `status` (socialmae_rt.status/1). Subscribers filter by topic prefix.
Loopback by default. A PUB socket drops messages for a subscriber whose queue is full (the
high-water mark) instead of blocking, so a slow or dead subscriber never stalls the pipeline.
Works with or without ROS: `socialmae-rt run --zmq tcp://127.0.0.1:5556`.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from zmq import auth as zmq_auth

from socialmae_rt.results import SocialPerception, event_to_json
from socialmae_rt.stream.postprocess import LaughterEvent
from socialmae_rt.stream.status import PipelineStatus

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"
LOOPBACK_HOSTS = ("localhost", "::1", "[::1]")
ZAP_DOMAIN = "socialmae_rt"  # the authenticator's allow-list applies to sockets of this domain
TOPICS = ("results", "laughter_onset", "laughter_offset", "status")


@dataclass
class ZmqConfig:
    endpoint: str = DEFAULT_ENDPOINT  # "tcp://127.0.0.1:*" picks a free port (see ZmqSink.endpoint)
    high_water_mark: int = 100  # messages queued per subscriber before new ones are dropped
    curve_secret_key_file: str | None = None  # a zmq certificate (zmq.auth.create_certificates) to encrypt
    curve_allowed_clients: str | None = None  # a folder of client public certificates: only they may subscribe
    stream: str = "default"
    include_embedding: bool = False

    def __post_init__(self) -> None:
        if "://" not in self.endpoint:
            raise ValueError(f"zmq endpoint must look like tcp://HOST:PORT or ipc://PATH, got {self.endpoint!r}")
        if self.high_water_mark < 1:
            raise ValueError(f"high_water_mark must be >= 1, got {self.high_water_mark}")
        if self.curve_secret_key_file is not None and not Path(self.curve_secret_key_file).is_file():
            raise FileNotFoundError(f"CURVE certificate not found: {self.curve_secret_key_file}")
        if self.curve_allowed_clients is not None:
            if self.curve_secret_key_file is None:
                raise ValueError("an allow-list of CURVE clients needs the server's CURVE secret certificate too")
            if not Path(self.curve_allowed_clients).is_dir() or not list(Path(self.curve_allowed_clients).glob("*.key")):
                raise FileNotFoundError(f"CURVE client allow-list {self.curve_allowed_clients}: expected a folder "
                                        "holding the clients' public certificates (*.key)")

    @property
    def on_loopback(self) -> bool:
        parsed = urllib.parse.urlparse(self.endpoint)
        if parsed.scheme in ("ipc", "inproc"):
            return True
        host = (parsed.hostname or "").lower()
        return host.startswith("127.") or host in LOOPBACK_HOSTS


class ZmqSink:
    """A pipeline sink that publishes every record; `close()` never waits on subscribers."""

    def __init__(self, config: ZmqConfig | None = None, context: zmq.Context | None = None) -> None:
        self.config = config or ZmqConfig()
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, self.config.high_water_mark)
        self._socket.setsockopt(zmq.LINGER, 0)  # shutting down never waits on a slow subscriber
        self._authenticator = None
        if self.config.curve_secret_key_file:
            self._enable_curve(self.config.curve_secret_key_file)
        elif not self.config.on_loopback:
            log.warning("publishing on %s without CURVE: anyone who can reach it can read every record; pass "
                        "--zmq-curve-key (and --zmq-curve-clients) or bind to 127.0.0.1", self.config.endpoint)
        try:
            self._socket.bind(self.config.endpoint)
        except zmq.ZMQError as err:
            self._socket.close()
            raise ValueError(f"cannot bind ZeroMQ PUB socket to {self.config.endpoint}: {err}") from err
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)  # the real port for "*"
        self.sent = 0

    def _enable_curve(self, certificate: str) -> None:
        if not zmq.has("curve"):
            raise RuntimeError("this libzmq was built without CURVE security; install pyzmq with libsodium")
        public, secret = zmq_auth.load_certificate(certificate)
        if secret is None:
            raise ValueError(f"{certificate} holds no secret key; pass the '.key_secret' certificate")
        self._socket.curve_secretkey = secret
        self._socket.curve_publickey = public
        self._socket.curve_server = True
        if self.config.curve_allowed_clients is None:
            log.warning("CURVE encrypts the stream but any client that knows the server key may subscribe; pass "
                        "--zmq-curve-clients FOLDER (client public certificates) to admit only those")
            return
        from zmq.auth.thread import ThreadAuthenticator

        # ZAP: the handshake of a client whose public key is not in the folder is refused.
        self._authenticator = ThreadAuthenticator(self._context)
        self._authenticator.start()
        self._authenticator.configure_curve(domain=ZAP_DOMAIN, location=self.config.curve_allowed_clients)
        self._socket.zap_domain = ZAP_DOMAIN.encode()

    def publish(self, topic: str, record: dict[str, Any]) -> None:
        payload = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
        # PUB never blocks: with a full queue the message is dropped for that subscriber.
        self._socket.send_multipart([topic.encode(), payload], flags=zmq.NOBLOCK)
        self.sent += 1

    def write_result(self, result: SocialPerception) -> None:
        self.publish("results", result.to_json(self.config.include_embedding))

    def write_event(self, event: LaughterEvent) -> None:
        self.publish(event.kind.value, event_to_json(event, self.config.stream))

    def write_status(self, status: PipelineStatus) -> None:
        self.publish("status", {"schema": "socialmae_rt.status/1", **status.to_dict()})

    def close(self) -> None:
        if not self._socket.closed:
            self._socket.close()
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
