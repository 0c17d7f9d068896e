"""Reading requests: bodies, job submissions, batch and audio uploads, idempotency keys and page cursors."""
