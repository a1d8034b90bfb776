"""Video generation jobs: the gateway's record of each upstream job, how a
new upstream state is applied to it, and the reconciler.

A video is held for at creation (its price for the seconds asked, through the
metered-call pipeline; the hold outlives the request) and its hold is closed
when the job ends: settled when it completes, released in full when it fails,
is cancelled, expires upstream, or outlives ``MAX_AGE_S``. Exactly once,
however many pollers and replicas (lifecycle.py).

- ``jobs``: the job and its states; ``store``: the table;
- ``upstream``: requests to the job's channel, through its provider;
- ``lifecycle``: applying the upstream's answer, closing the money once;
- ``reconciler``: polling open jobs nobody watches.
"""
