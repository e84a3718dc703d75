"""The sending engine: batch workflow (engine), transports, shared throttle, message building."""

from campaigns.sending.engine import (
    claim_deliveries,
    finish_if_done,
    new_worker_id,
    recover_stale_deliveries,
    release_claims,
    send_batch,
    work_remaining,
    worker_is_dead,
)

__all__ = [
    "claim_deliveries",
    "finish_if_done",
    "new_worker_id",
    "recover_stale_deliveries",
    "release_claims",
    "send_batch",
    "work_remaining",
    "worker_is_dead",
]
