"""Provenance checks' argv: `gh attestation verify` or `cosign verify-attestation` of a published image
(ops/verify.py picks the tool that is installed and reads the answer)."""

from __future__ import annotations

import re


def provenance_argv(ref: str, repo: str, workflow: str) -> dict[str, list[str]]:
    """How each tool checks that `ref` was attested by `repo`'s workflow file `workflow`."""
    return {
        "gh": [
            "gh", "attestation", "verify", f"oci://{ref}", "--repo", repo, "--signer-workflow", f"{repo}/{workflow}",
        ],
        "cosign": [
            "cosign", "verify-attestation", "--type", "slsaprovenance1",
            "--certificate-oidc-issuer", "https://token.actions.githubusercontent.com",
            "--certificate-identity-regexp", f"^https://github\\.com/{re.escape(repo)}/{re.escape(workflow)}@",
            ref,
        ],
    }  # fmt: skip
