"""Parse the storage URIs users write in configs: `s3://bucket/prefix`, `file:///abs/dir` or a path.

Kept free of boto3 so configs can validate a URI without importing the AWS SDK.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from infra.errors import UserError

SCHEMES = ("s3", "file", "a local path")


@dataclass(frozen=True)
class StorageLocation:
    """Where a store's root is: an S3 bucket and key prefix, or a local directory."""

    scheme: str
    """"s3" or "file"."""
    bucket: str = ""
    """S3 bucket (s3 only)."""
    prefix: str = ""
    """S3 key prefix without leading or trailing slash (s3 only); may be empty."""
    path: Path | None = None
    """Absolute local directory (file only)."""

    @property
    def uri(self) -> str:
        """The canonical URI, used in messages and returned to callers."""
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return str(self.path)


def parse_location(uri: str) -> StorageLocation:
    """`s3://bucket/a/b` -> (s3, bucket, "a/b"); `file:///x` or `x` -> (file, path=abspath(x)).

    Relative local paths are resolved against the current directory now, so a store keeps
    pointing at the same place if the process later changes directory.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise UserError("storage URI is empty; use s3://bucket/prefix, file:///abs/dir or a directory path")
    uri = uri.strip()
    if "://" not in uri:
        return StorageLocation("file", path=Path(os.path.abspath(os.path.expanduser(uri))))
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "s3":
        bucket = parsed.netloc
        if len(bucket) < 3:
            raise UserError(f"storage URI {uri!r} has no valid bucket name (s3://bucket/prefix, bucket >= 3 chars)")
        prefix = parsed.path.strip("/")
        if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
            raise UserError(f"storage URI {uri!r} has an empty, '.' or '..' path segment")
        return StorageLocation("s3", bucket=bucket, prefix=prefix)
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UserError(f"storage URI {uri!r}: file:// URIs must be local (file:///abs/dir)")
        return StorageLocation("file", path=Path(os.path.abspath(unquote(parsed.path))))
    raise UserError(f"storage URI {uri!r} has unsupported scheme {scheme!r}; use one of: {', '.join(SCHEMES)}")


def join_key(*parts: str) -> str:
    """Join key parts with '/', ignoring empty ones."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def check_key(key: str) -> str:
    """A store key is a relative '/'-separated path without '.', '..' or empty segments."""
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid object key {key!r}: must be a relative path without '.', '..' or '//'")
    return key
