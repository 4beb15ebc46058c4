"""A local S3-compatible server for the tests (moto's), and the environment a user would set
to reach it: credentials and endpoint in the environment, nothing in URLs."""

from __future__ import annotations

S3_KEY_ID = "MAKERLABTESTKEYID0042"
S3_SECRET = "makerlab-test-secret-9f2c1e-never-shown"


class S3Server:
    """A local S3-compatible server (moto's, on 127.0.0.1) and the environment that points
    the AWS SDKs at it, as a user's would: credentials and endpoint, nothing in URLs."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.env = {"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                    "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
                    "AWS_DEFAULT_REGION": "us-east-1"}

    def bucket(self) -> str:
        """A new empty bucket, as ``s3://NAME``."""
        import uuid

        import boto3

        name = f"makerlab-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return f"s3://{name}"
