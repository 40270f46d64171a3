"""An S3 server on loopback for one test: moto's server mode, a bucket, and the AWS environment.

A test module makes it a fixture: `def s3(monkeypatch, tmp_path_factory): yield from
serve_s3(monkeypatch, tmp_path_factory)` (after importorskip("moto")).
Nothing leaves the machine: the endpoint is 127.0.0.1, credentials are dummies, and boto never
looks for instance metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

BUCKET = "vidpipe-test"


@dataclass
class S3:
    endpoint: str
    client: Any  # a boto3 S3 client on the same endpoint, for checks
    bucket: str

    def keys(self, prefix: str = "") -> dict[str, int]:
        """key -> size of every object under `prefix`."""
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        return found

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.read(key)).hexdigest()


def serve_s3(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """Start the server, set the AWS environment, create the bucket; stop when resumed."""
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import WSGIRequestHandler

    send_header = WSGIRequestHandler.send_header

    def one_server_header(self, keyword: str, value: str) -> None:
        # werkzeug writes a Server header and moto's answer brings another; aiohttp (under
        # python -X dev) refuses a response with two.
        sent = getattr(self, "_headers_buffer", [])
        if keyword.lower() == "server" and any(line.lower().startswith(b"server:") for line in sent):
            return
        send_header(self, keyword, value)

    monkeypatch.setattr(WSGIRequestHandler, "send_header", one_server_header)
    monkeypatch.setattr(WSGIRequestHandler, "log", lambda self, *args: None)  # no request lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        nowhere = tmp_path_factory.mktemp("aws") / "none"
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(nowhere),
            "AWS_SHARED_CREDENTIALS_FILE": str(nowhere),
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield S3(endpoint, client, BUCKET)
        client.close()
    finally:
        server.stop()
