"""What repros may import inside the child: helpers of the child side (harness.attempt.CHILD_CODE).

Only the child side (this module, harness.child and what it imports) is on the child's
path (a copy of it, made for each attempt), never the harness's own site-packages: the
child must import the libraries under test from the cell's env and nothing else.
"""
import os
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"


def local_endpoint(environ=None):
    """The local AWS server's URL, after checking that every AWS endpoint in the environment
    is 127.0.0.1. A repro calls it before its first request: never real AWS."""
    environ = os.environ if environ is None else environ
    urls = {k: v for k, v in environ.items() if k.startswith(("AWS_ENDPOINT_URL", "AWS_ENDPOINT"))}
    if "AWS_ENDPOINT_URL" not in urls or any(urlsplit(u).hostname != LOOPBACK for u in urls.values()):
        raise RuntimeError("refusing to run: the AWS endpoints are not the local moto server: %r" % (urls,))
    return urls["AWS_ENDPOINT_URL"]
