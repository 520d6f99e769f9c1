"""Example ZeroMQ subscriber: print what `socialmae-rt run --zmq ...` publishes.

    python -m socialmae_rt.sinks.zmq_subscriber [--endpoint tcp://127.0.0.1:5556] [--topic results]
        [--server-key server.key] [--count N]

A template for consumers in any language: connect a SUB socket, subscribe to a topic prefix
(empty = everything), and read two-part messages [topic, JSON].
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Iterator

import zmq
from zmq import auth as zmq_auth

from socialmae_rt.sinks.zmq_publisher import DEFAULT_ENDPOINT, TOPICS


def subscribe(endpoint: str, topics: list[str], server_key_file: str | None = None,
              context: zmq.Context | None = None, client_key_file: str | None = None) -> zmq.Socket:
    """A connected SUB socket; with `server_key_file` (the publisher's public certificate) it speaks
    CURVE, as `client_key_file` (this client's secret certificate; a publisher with an allow-list
    admits only the clients it lists) or with a throwaway key pair."""
    socket = (context or zmq.Context.instance()).socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    if server_key_file:
        server_public, _ = zmq_auth.load_certificate(server_key_file)
        if client_key_file:
            client_public, client_secret = zmq_auth.load_certificate(client_key_file)
            if client_secret is None:
                raise ValueError(f"{client_key_file} holds no secret key; pass the client's '.key_secret' certificate")
        else:
            client_public, client_secret = zmq.curve_keypair()
        socket.curve_serverkey, socket.curve_publickey, socket.curve_secretkey = server_public, client_public, client_secret
    for topic in topics or [""]:
        socket.setsockopt_string(zmq.SUBSCRIBE, topic)
    socket.connect(endpoint)
    return socket


def messages(socket: zmq.Socket, timeout_ms: int | None = None) -> Iterator[tuple[str, dict]]:
    """(topic, record) pairs; stops when nothing arrives for `timeout_ms` (None: wait forever)."""
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    while poller.poll(timeout_ms):
        topic, payload = socket.recv_multipart()
        yield topic.decode(), json.loads(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    parser.add_argument("--topic", action="append", choices=TOPICS, help="repeatable; default: every topic")
    parser.add_argument("--server-key", help="the publisher's public CURVE certificate (for encrypted streams)")
    parser.add_argument("--client-key", help="this client's secret CURVE certificate, when the publisher admits "
                        "only listed clients (--zmq-curve-clients)")
    parser.add_argument("--count", type=int, help="exit after this many messages")
    args = parser.parse_args(argv)
    socket = subscribe(args.endpoint, args.topic or [], args.server_key, client_key_file=args.client_key)
    try:
        for received, (topic, record) in enumerate(messages(socket), start=1):
            print(f"{topic}: {json.dumps(record)}", flush=True)
            if args.count and received >= args.count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        socket.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
