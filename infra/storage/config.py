"""Checkpoint settings of a run (the `checkpoint:` section of a run config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.config import check_range
from infra.errors import ConfigError, UserError
from infra.storage.uris import parse_location

if TYPE_CHECKING:
    from infra.storage.checkpoints import CheckpointStore


@dataclass
class CheckpointConfig:
    """Where and how often training checkpoints are written. Credentials are never set here."""

    uri: str = ""
    """Checkpoint root: `s3://bucket/prefix`, `file:///abs/dir` or a directory path (relative to
    the working directory); '' = `<run output dir>/checkpoints`. S3 endpoint, region and credentials come from the AWS environment
    (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, IAM role)."""

    every_n_steps: int = 50
    """Save a checkpoint every this many training steps; 0 disables periodic checkpoints."""

    keep_last: int = 3
    """Complete checkpoints to keep after each save (older ones are deleted); 0 keeps all."""

    multipart_threshold_mb: float = 16.0
    """S3 only: files of at least this many MiB are uploaded in parallel parts."""

    multipart_chunk_mb: float = 16.0
    """S3 only: size of each part in MiB (S3 needs 5 to 5120; enlarged automatically past 10,000 parts)."""

    max_concurrency: int = 8
    """S3 only: parts and files transferred at once, in one shared thread pool."""

    export_hf: bool = True
    """Also store a consolidated Hugging Face model (`hf/`) in every checkpoint, so that `stvg eval`
    and rollout workers can load it directly (costs one full copy of the weights per checkpoint)."""

    def __post_init__(self) -> None:
        try:
            parse_location(self.uri or ".")
        except UserError as err:
            raise ConfigError(f"checkpoint.uri: {err}") from None
        check_range("checkpoint.every_n_steps", self.every_n_steps, 0)
        check_range("checkpoint.keep_last", self.keep_last, 0)
        check_range("checkpoint.multipart_threshold_mb", self.multipart_threshold_mb, 0, low_open=True)
        check_range("checkpoint.multipart_chunk_mb", self.multipart_chunk_mb, 5, 5120)
        check_range("checkpoint.max_concurrency", self.max_concurrency, 1, 64)

    def open(self) -> CheckpointStore:
        """The CheckpointStore these settings describe (checks S3 access now). The run's driver
        resolves an empty uri to its output folder before anything opens the store."""
        if not self.uri:
            raise UserError("checkpoint.uri is empty: resolve it to the run's folder first")
        from infra.storage.checkpoints import open_checkpoints

        return open_checkpoints(self.uri, self.keep_last,
                                multipart_threshold_mb=self.multipart_threshold_mb,
                                multipart_chunk_mb=self.multipart_chunk_mb,
                                max_concurrency=self.max_concurrency)
