"""The floor of a live check: one TLS handshake and one round of concurrent reviews.

A minimal client, no validation, no report: read the spec written by benchmarks/floors.py
(server, CA, token, the SubjectAccessReview bodies), open one urllib3 pool to the API server
and POST every body with 16 threads, as skycheck's default ``--max-inflight`` does.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import urllib3


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    pool = urllib3.PoolManager(maxsize=16, block=True, ca_certs=spec["ca"])
    url = spec["server"].rstrip("/") + "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    headers = {"Authorization": f"Bearer {spec['token']}", "Content-Type": "application/json"}

    def post(body: dict[str, object]) -> bool:
        response = pool.request("POST", url, body=json.dumps(body).encode(), headers=headers)
        return bool(json.loads(response.data)["status"].get("allowed"))

    with ThreadPoolExecutor(max_workers=16) as workers:
        answers = list(workers.map(post, spec["bodies"]))
    return 0 if len(answers) == len(spec["bodies"]) else 1


if __name__ == "__main__":
    sys.exit(main())
