"""The S3 backend of ObjectStore, through boto3.

Endpoint, region and credentials come only from the standard AWS chain (AWS_ENDPOINT_URL,
AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/config, IRSA/instance
roles): never from a run config, so configs can be shared without leaking secrets.

Large files move through s3transfer's TransferManager: one thread pool of `max_concurrency`
shared by every part of every file, multipart uploads above the threshold and ranged parallel
GETs on the way down.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from infra.errors import UserError
from infra.storage.objects import TransferSettings
from infra.storage.uris import StorageLocation, check_key, join_key

_DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "AllAccessDisabled", "InvalidToken", "ExpiredToken", "AccountProblem"}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    """Objects under s3://bucket/prefix."""

    def __init__(self, location: StorageLocation, transfer: TransferSettings):
        import boto3
        import botocore.config

        self.uri = location.uri
        self.bucket = location.bucket
        self.prefix = location.prefix
        self.transfer = transfer
        # Timeouts keep an unreachable endpoint from hanging a job; the rest of the client
        # settings (retries, addressing style) stay with the user's AWS config.
        config = botocore.config.Config(connect_timeout=10, read_timeout=120,
                                        max_pool_connections=max(10, transfer.max_concurrency + 2))
        with self._errors():
            self.client = boto3.session.Session().client("s3", config=config)

    # --- ObjectStore ------------------------------------------------------------------------

    def put_files(self, items: Sequence[tuple[Path, str]], progress: Callable[[int], None] | None = None) -> None:
        subscribers = [_progress_subscriber(progress)] if progress is not None else None
        with self._errors(), self._manager() as manager:
            futures = [manager.upload(str(src), self.bucket, self._key(key), subscribers=subscribers)
                       for src, key in items]
            for future in futures:
                future.result()

    def get_files(self, items: Sequence[tuple[str, Path]], progress: Callable[[int], None] | None = None) -> None:
        for _, dst in items:
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
        subscribers = [_progress_subscriber(progress)] if progress is not None else None
        with self._manager() as manager:
            futures = [(key, manager.download(self.bucket, self._key(key), str(dst), subscribers=subscribers))
                       for key, dst in items]
            for key, future in futures:
                with self._errors(key):
                    future.result()

    def list(self, prefix: str = "") -> dict[str, int]:
        return {key: size for key, (size, _) in self.describe(prefix).items()}

    def describe(self, prefix: str = "") -> dict[str, tuple[int, str]]:
        """Every key starting with `prefix` -> (size in bytes, ETag): the ETag changes when an object
        is rewritten, even at the same size, so node caches of S3 folders can key on it."""
        root = f"{self.prefix}/" if self.prefix else ""
        out: dict[str, tuple[int, str]] = {}
        with self._errors():
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                        Prefix=root + prefix)
            for page in pages:
                for obj in page.get("Contents", ()):
                    out[obj["Key"][len(root):]] = (obj["Size"], str(obj.get("ETag", "")).strip('"'))
        return out

    def delete(self, keys: Iterable[str]) -> None:
        keys = [self._key(k) for k in keys]
        with self._errors():
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
                batch = [{"Key": k} for k in keys[start:start + 1000]]
                response = self.client.delete_objects(Bucket=self.bucket,
                                                       Delete={"Objects": batch, "Quiet": True})
                errors = response.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise UserError(f"cannot delete s3://{self.bucket}/{first.get('Key')}: "
                                    f"{first.get('Code')} {first.get('Message', '')}".strip())

    def check_access(self) -> None:
        """One LIST of at most one key: fails now, naming the URI, if the bucket is unusable."""
        with self._errors():
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "", MaxKeys=1)

    # --- helpers -----------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return join_key(self.prefix, check_key(key))

    @contextlib.contextmanager
    def _manager(self) -> Iterator:
        from boto3.s3.transfer import TransferConfig, create_transfer_manager

        config = TransferConfig(
            multipart_threshold=self.transfer.multipart_threshold,
            multipart_chunksize=self.transfer.multipart_chunk,
            max_concurrency=self.transfer.max_concurrency,
            # The CRT client ignores these settings and raises other exception types.
            preferred_transfer_client="classic",
        )
        with create_transfer_manager(self.client, config) as manager:
            yield manager

    @contextlib.contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Turn boto errors into one UserError that names the URI and says what to check."""
        from botocore import exceptions as bx

        where = f"{self.uri}/{key}" if key else self.uri
        try:
            yield
        except UserError:
            raise
        except (bx.NoCredentialsError, bx.PartialCredentialsError) as err:
            raise UserError(f"no usable AWS credentials for {where}: set AWS_ACCESS_KEY_ID and "
                            f"AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the pod an IAM role ({err})") from None
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ConnectionClosedError,
                bx.ReadTimeoutError) as err:
            raise UserError(f"cannot reach the S3 endpoint for {where}: {err}; "
                            "check AWS_ENDPOINT_URL / AWS_REGION and the network") from None
        except bx.ClientError as err:
            error = err.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = error.get("Message") or str(err)
            if code == "NoSuchBucket":
                raise UserError(f"S3 bucket {self.bucket!r} does not exist (from {where}); "
                                "create it or fix the URI / AWS_ENDPOINT_URL") from None
            if code in _DENIED:
                raise UserError(f"access denied to {where} ({code}: {message}); check the "
                                "credentials and the bucket policy") from None
            if code in _NOT_FOUND:
                raise UserError(f"{where} does not exist") from None
            raise UserError(f"S3 error on {where}: {code} {message}") from None
        except bx.BotoCoreError as err:
            raise UserError(f"S3 error on {where}: {err}") from None


def _progress_subscriber(callback: Callable[[int], None]):
    """An s3transfer subscriber passing every chunk's byte count to `callback` (from its threads)."""
    from s3transfer.subscribers import BaseSubscriber

    class Progress(BaseSubscriber):
        def on_progress(self, future, bytes_transferred, **kwargs):  # noqa: ARG002 - s3transfer's signature
            callback(bytes_transferred)

    return Progress()
