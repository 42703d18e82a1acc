"""A bucket on the moto server, as the compatibility tests use it from both sides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..servers.moto_s3 import CREDENTIALS


@dataclass(frozen=True)
class Bucket:
    """A fresh, empty bucket on the session's moto server."""

    name: str
    url: str
    client: Any

    def storage_options(self) -> dict[str, Any]:
        """s3fs options for our stores."""
        return {"endpoint_url": self.url, **CREDENTIALS}

    def reference_env(self) -> dict[str, str]:
        """The environment that points 0.309.0's boto3 at this server."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": CREDENTIALS["key"],
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret"], "AWS_DEFAULT_REGION": "us-east-1"}

    def upload_folder(self, folder: Path) -> None:
        """Upload every file under ``folder`` as the object named by its relative path."""
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.client.put_object(Bucket=self.name, Key=path.relative_to(folder).as_posix(), Body=path.read_bytes())

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket: name to content."""
        names = [obj["Key"] for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
                 for obj in page.get("Contents", [])]
        return {name: self.client.get_object(Bucket=self.name, Key=name)["Body"].read() for name in names}
