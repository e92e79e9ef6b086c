"""`stvg upload`: put a local folder (a Hugging Face model, a dataset) under an s3:// prefix, so every
node of a multi-node run can read it (docs/storage.md, "Models and data for multi-node runs").

    stvg upload ~/models/Qwen2.5-VL-7B-Instruct s3://my-bucket/models/qwen25vl-7b
    stvg train model.path=s3://my-bucket/models/qwen25vl-7b ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="local folder to upload (every file, same relative paths)")
    parser.add_argument("uri", help="destination prefix, s3://bucket/prefix (endpoint and keys from the AWS_* env)")
    parser.add_argument("--replace", action="store_true",
                        help="overwrite a prefix that already holds objects (deleting the ones the folder lacks)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from infra.storage.folders import upload_folder

    folder = Path(args.folder).expanduser()
    sent = upload_folder(folder, args.uri, replace=args.replace, progress=not args.quiet)
    kind = "Hugging Face model folder" if (folder / "config.json").is_file() else "folder"
    print(f"uploaded {kind} {folder} to {args.uri} ({sent / 2**20:,.1f} MiB)")
    if kind.startswith("Hugging Face"):
        print(f"  train from it: stvg train model.path={args.uri.rstrip('/')}", file=sys.stdout)
    return 0
