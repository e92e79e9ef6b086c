"""The HTTP reward server (`stvg serve-rewards`): FastAPI + uvicorn workers around rewards.score_batch.

Light on purpose: importing this package does not import FastAPI; use `rewards.server.app.create_app`
to build the app and `rewards.server.run.serve` to run it. docs/reward-server.md is the operator guide.
"""

from rewards.server.settings import ServerSettings

__all__ = ["ServerSettings"]
