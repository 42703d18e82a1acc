"""S3 stores under the names users of persidict know: ``BasicS3Dict`` and ``S3Dict``.

Both are thin presets of FsspecDict on an ``s3://`` URL: the bucket, an
optional key prefix and region, and object names without digest suffixes
(``<root_prefix><k1>/<k2>.<format>``).  They honour the standard AWS
configuration (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, credential files);
``storage_options`` passes anything else to s3fs (an endpoint, keys).
"""

from __future__ import annotations

from typing import Any

from .backends.s3 import S3Backend
from .fsspec_dict import FsspecDict
from .persi_dict import PersiDict
from .results import ValueType

__all__ = ["BasicS3Dict"]


class BasicS3Dict(FsspecDict[ValueType]):
    """One S3 object per value; the bucket is created if it does not exist."""

    def __init__(
        self,
        *,
        bucket_name: str = "my_bucket",
        region: str | None = None,
        root_prefix: str = "",
        serialization_format: str = "pkl",
        append_only: bool = False,
        base_class_for_values: type | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if root_prefix and not root_prefix.endswith("/"):
            root_prefix += "/"
        options = dict(storage_options or {})
        if region:
            options["client_kwargs"] = {**options.get("client_kwargs", {}), "region_name": region}
        self.region = region
        super().__init__(
            f"s3://{bucket_name}/{root_prefix}",
            storage_options=options,
            serialization_format=serialization_format,
            append_only=append_only,
            base_class_for_values=base_class_for_values,
        )
        self._storage_options = storage_options

    @property
    def _s3(self) -> S3Backend:
        return self._backend  # type: ignore[return-value]

    @property
    def bucket_name(self) -> str:
        """The bucket holding the objects."""
        return self._s3.bucket

    @property
    def root_prefix(self) -> str:
        """The key prefix of every object, ending in ``/`` (or empty)."""
        return self._s3.prefix

    @property
    def base_url(self) -> str:
        """``s3://<bucket>/<root_prefix>``."""
        return f"s3://{self.bucket_name}/{self.root_prefix}"

    def get_params(self) -> dict[str, Any]:
        params = PersiDict.get_params(self)
        params.update(
            bucket_name=self.bucket_name,
            region=self.region,
            root_prefix=self.root_prefix,
            storage_options=self._storage_options,
        )
        return dict(sorted(params.items()))
