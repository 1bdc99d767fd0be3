"""Codec server: lets an authorised operator see decrypted payloads in the Temporal UI and CLI.

    python -m infra.codec_server [--port 8888] [--host 127.0.0.1]

Temporal's remote codec protocol: POST /encode and POST /decode with `{"payloads": [...]}` (payloads in
Temporal's JSON proto form: metadata values and data base64), answered in the same form. Every request needs
`Authorization: Bearer <CODEC_SERVER_TOKEN>` (else 401); CORS lets the UI at `CODEC_CORS_ORIGIN` call it.
The keys are the service's own (`PAYLOAD_KEYS` or the data dir's key file).
"""

from __future__ import annotations

import argparse
import hmac
import json
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from infra.codec import EncryptionCodec, PayloadKeyError, load_keys
from infra.settings import Settings

MAX_BODY = 16 * 1024 * 1024
ALLOW_HEADERS = "Authorization, Content-Type, X-Namespace"


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], codec: EncryptionCodec, token: str, cors_origin: str) -> None:
        super().__init__(address, CodecHandler)
        self.codec = codec
        self.token = token
        self.cors_origin = cors_origin


class CodecHandler(BaseHTTPRequestHandler):
    server: CodecServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # no per-request log on stderr

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", self.server.cors_origin)
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", ALLOW_HEADERS)
        self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("Vary", "Origin")

    def _reply(self, status: int, body: dict[str, object] | str) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        if self.path not in ("/encode", "/decode"):
            self._reply(404, {"error": "POST /encode or /decode"})
            return
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.server.token}".encode()):
            self._reply(401, {"error": "a valid 'Authorization: Bearer <token>' header is needed"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(413, {"error": "body too large"})
            return
        payloads = Payloads()
        try:
            json_format.Parse(self.rfile.read(length), payloads)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            self._reply(400, {"error": f"not a JSON Payloads object: {exc}"})
            return
        codec = self.server.codec
        try:
            if self.path == "/encode":
                out = [codec.encrypt(p) for p in payloads.payloads]
            else:
                out = [codec.decrypt(p) for p in payloads.payloads]
        except PayloadKeyError as exc:
            self._reply(400, {"error": str(exc)})
            return
        self._reply(200, json_format.MessageToJson(Payloads(payloads=out)))


def make_server(settings: Settings, *, host: str = "127.0.0.1", port: int = 8888, token: str | None = None) \
        -> CodecServer:
    token = token or settings.codec_server_token
    if not token:
        raise ValueError("no CODEC_SERVER_TOKEN")
    return CodecServer((host, port), EncryptionCodec(load_keys(settings)), token, settings.codec_cors_origin)


@contextmanager
def running(server: CodecServer) -> Iterator[str]:
    """Serve in a background thread; yields the base URL."""
    thread = threading.Thread(target=server.serve_forever, name="codec-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    args = parser.parse_args(argv)
    settings = Settings()
    token = settings.codec_server_token
    if not token:
        token = secrets.token_urlsafe(24)
        print(f"CODEC_SERVER_TOKEN is not set: this run's token is {token}", file=sys.stderr)
    try:
        server = make_server(settings, host=args.host, port=args.port, token=token)
    except (PayloadKeyError, OSError) as exc:
        print(f"codec server: {exc}", file=sys.stderr)
        return 1
    print(f"codec server on http://{args.host}:{args.port} (CORS origin {settings.codec_cors_origin}); Ctrl-C stops",
          file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
