"""A local S3-compatible server for the tests: moto's server mode, a process of its own on
127.0.0.1, and the environment a user would set to reach it: credentials and endpoint in the
environment, nothing in URLs.

The server checks every request's signature (moto's IAM authentication): the credentials
are an access key it issued, so a request signed with anything else is refused, and a test
that reads the bucket shows the credentials reached whatever process made the request.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

_ALLOW_ALL = json.dumps({"Version": "2012-10-17",
                         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
_LISTENING = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")
_REQUEST = re.compile(  # werkzeug's access log, some lines coloured
    r'"(?:\x1b\[[0-9;]*m)*(?P<method>[A-Z]+) (?P<path>[^ ?"]+)\S* HTTP/')


class S3Server:
    """moto's server at ``endpoint`` (its requests logged to ``log``), an access key it
    accepts (``key_id``, ``secret``), and the environment that points the AWS SDKs at it
    (``env``). :meth:`start` runs one; :meth:`stop` ends it."""

    def __init__(self, process: subprocess.Popen, endpoint: str, log: Path) -> None:
        import boto3

        self.process, self.endpoint, self.log = process, endpoint, log
        setup = {"endpoint_url": endpoint, "region_name": "us-east-1",
                 "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        _require_signatures(endpoint, after=3)  # the three IAM calls below
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="makerlab-tests")
        iam.put_user_policy(UserName="makerlab-tests", PolicyName="all",
                            PolicyDocument=_ALLOW_ALL)
        key = iam.create_access_key(UserName="makerlab-tests")["AccessKey"]
        self.key_id: str = key["AccessKeyId"]
        self.secret: str = key["SecretAccessKey"]
        self.env = {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret,
                    "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
                    "AWS_DEFAULT_REGION": "us-east-1"}

    @classmethod
    def start(cls, log: Path, timeout_s: float = 60.0) -> S3Server:
        """Start ``python -m moto.server`` on a free port of 127.0.0.1, its output in
        ``log``; RuntimeError (with the log) if it is not listening within ``timeout_s``."""
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while (found := _LISTENING.search(log.read_text(errors="replace"))) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto's server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        try:
            return cls(process, found[1], log)
        except BaseException:
            process.kill()
            raise

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def bucket(self) -> str:
        """A new empty bucket, as ``s3://NAME``."""
        import boto3

        name = f"makerlab-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                     aws_access_key_id=self.key_id,
                     aws_secret_access_key=self.secret).create_bucket(Bucket=name)
        return f"s3://{name}"

    @contextlib.contextmanager
    def requests(self) -> Iterator[list[tuple[str, str]]]:
        """The ``(method, path)`` of every request the server answered meanwhile (the list
        is filled when the block ends)."""
        start = self.log.stat().st_size
        seen: list[tuple[str, str]] = []
        yield seen
        with open(self.log, "rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
        seen.extend((m["method"], m["path"]) for m in _REQUEST.finditer(text))


def _require_signatures(endpoint: str, after: int) -> None:
    """Have moto's server authenticate every request after the next ``after``."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", str(after).encode(),
                                     {"Content-Type": "text/plain"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
