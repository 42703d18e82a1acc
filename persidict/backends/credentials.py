"""Tell a failure for want of credentials from the others, and say where each cloud looks for them.

The SDKs raise their own exception when they find no credentials at all
(botocore's ``NoCredentialsError``, google-auth's ``DefaultCredentialsError``,
azure-identity's ``CredentialUnavailableError``); the request runner wraps it
in an ``OSError``.  People meet this error in their first minutes with a
cloud store, so the store says plainly what is missing and where it was
looked for.  Matching by class name keeps every SDK unimported.
"""

from __future__ import annotations

__all__ = ["credentials_advice", "missing_credentials"]

_MISSING = {
    "NoCredentialsError": "s3",
    "PartialCredentialsError": "s3",
    "DefaultCredentialsError": "gcs",
    "CredentialUnavailableError": "azure",
}
"""The SDK exceptions that mean "no credentials found", by the cloud that raises them."""

_WHERE = {
    "s3": ("no AWS credentials were found. They are looked for in the environment (AWS_PROFILE, or "
           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), in ~/.aws/credentials and ~/.aws/config, and in "
           "the instance's or container's role"),
    "gcs": ("no Google Cloud credentials were found. They are looked for in GOOGLE_APPLICATION_CREDENTIALS (a "
            "service account's key file), in the application-default credentials of `gcloud auth "
            "application-default login`, and in the instance's service account"),
    "azure": ("no Azure credentials were found. They are looked for in AZURE_STORAGE_CONNECTION_STRING, or "
              "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, and by DefaultAzureCredential "
              "(AZURE_CLIENT_ID and its secret, `az login`, a managed identity)"),
}

_PASS = {
    "s3": ("storage_options={'key': ..., 'secret': ...}", "-o key=... -o secret=..."),
    "gcs": ("storage_options={'token': 'path/to/key.json'}", "-o token=path/to/key.json"),
    "azure": ("storage_options={'connection_string': ...}", "-o connection_string=..."),
}


def missing_credentials(exc: BaseException | None) -> str | None:
    """The cloud (``"s3"``, ``"gcs"``, ``"azure"``) whose SDK found no credentials, if that is among
    ``exc`` and its causes; else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        cloud = _MISSING.get(type(exc).__name__)
        if cloud is not None:
            return cloud
        exc = exc.__cause__ or exc.__context__
    return None


def credentials_advice(cloud: str, *, command_line: bool = False) -> str:
    """Where ``cloud``'s credentials are looked for, and how to give them to a store (or to the command line)."""
    python, cli = _PASS[cloud]
    if command_line:
        how = (f"or give them with {cli} (better: in $PERSIDICT_STORAGE_OPTIONS or --options-file, which the "
               "process list does not show)")
    else:
        how = f"or give them to the store: {python}"
    return f"{_WHERE[cloud]}; {how}"
