"""The fast submission path: what concurrent ``POST /v1/jobs`` requests of one API process share.

What is grouped. Each of these is handled by one background thread per API process that takes
every item waiting at that moment (``coalescing``), so a group grows with the load and a lone
request waits for nothing:

* job rows: one INSERT per group, in one transaction (``job_writer``);
* broker messages: the group's messages in one Redis round trip (``job_writer``, through
  ``tasks.enqueue.JobPublisher``);
* rate-limit hits: the group's sliding-window scripts pipelined in one round trip
  (``api.auth.ratelimit``);
* ``Prefer: wait``: one Redis subscription per process to every job's completion channel
  (``completions``), which wakes the requests waiting on a job (``waiting``).

What a 202 guarantees. The job's row is committed before the request is answered. A message
that could not be published leaves its row marked unpublished, and the requeue sweep sends it;
a row that breaks a constraint (a raced ``Idempotency-Key``) fails alone, the rest of its group
is stored. Submissions that store more than their row (a webhook subscription, an uploaded
file) always take the request's own transaction.

How to turn it off. ``SAMO_GROUP_COMMIT=false`` (``Settings.group_commit``): each submission is
inserted by its request's own session in one transaction and published by the request, and each
request makes its own rate-limit round trip. ``Prefer: wait`` keeps the shared subscription.
"""
