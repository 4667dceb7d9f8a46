"""Delivery to object storage over the S3 API (boto3): keys `<prefix>/<YYYY-MM-DD>/<file>`.

An object appears whole or not at all (a multipart upload is completed only at its end), and the
manifest is uploaded last, so a reader that waits for `manifest.json` sees a whole set. A re-run
overwrites the day's objects with identical bytes. Any S3-compatible service works through
`endpoint`; credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID... or a profile). A
bucket that does not exist, refused credentials or an unreachable endpoint raise DeliveryFailed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backoffice.domain.errors import InvalidInput
from backoffice.export.delivery import DeliveryFailed, manifest_last

if TYPE_CHECKING:
    from backoffice.config import Settings

# A dead endpoint fails the run in seconds rather than after boto3's default retries.
_CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})


@dataclass(frozen=True)
class S3Delivery:
    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Delivery:
        if not settings.export_s3_bucket:
            raise InvalidInput("export_s3_bucket", "is required when BACKOFFICE_EXPORT_DELIVERY is s3")
        return cls(
            bucket=settings.export_s3_bucket,
            prefix=settings.export_s3_prefix,
            endpoint=settings.export_s3_endpoint,
            region=settings.export_s3_region,
        )

    def key(self, folder: str, name: str) -> str:
        return "/".join(part for part in (self.prefix.strip("/"), folder, name) if part)

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region, config=_CLIENT_CONFIG)

    def deliver(self, folder: str, files: Mapping[str, Path]) -> str:
        where = f"s3://{self.bucket}/{self.key(folder, '')}"
        try:
            client = self.client()
            for name, source in manifest_last(files):
                client.upload_file(str(source), self.bucket, self.key(folder, name))
        except (BotoCoreError, ClientError, Boto3Error, OSError) as error:
            raise DeliveryFailed(where, error) from error
        return where
