"""A small client of GitHub's REST API (issues): one authenticated JSON call, the open issues of
a label, and a list of planned calls sent in order.

The token is the caller's (the workflow's GITHUB_TOKEN) and goes only to api.github.com.
"""
from __future__ import annotations

import json
import urllib.request

API = "https://api.github.com"


def call(method: str, url: str, token: str, body: dict | None = None):
    """One REST call; the answer's JSON. HTTP errors are urllib's (HTTPError)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"}
    request = urllib.request.Request(url, method=method, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:  # the GitHub API only
        return json.load(response)


def open_issues(repo: str, token: str, label: str) -> list[dict]:
    """The open issues (and pull requests: GitHub lists both) of `repo` with `label`, up to 100."""
    return call("GET", f"{API}/repos/{repo}/issues?labels={label}&state=open&per_page=100", token)


def send(calls: list[dict], token: str) -> None:
    """Each planned call ({"method", "url", "json"}), in order."""
    for planned in calls:
        call(planned["method"], planned["url"], token, planned["json"])
