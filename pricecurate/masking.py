"""The one rule for what is a secret: credential-bearing setting names, and the credentials URIs carry.

Every value the manifest, the data card, the report, a log line or an error message holds passes
through here first. Masking too much costs a line of context; masking too little publishes a key.
"""

from __future__ import annotations

import re

MASK = "***"

# Names of Hadoop, Spark and cloud-connector settings (and of URI query parameters) whose value is a
# credential: fs.s3a[.bucket.B].secret.key, fs.s3a.session.token, fs.s3a.encryption.key,
# fs.azure.account.key.A, fs.azure.sas.C.A, fs.azure.account.oauth2.client.secret,
# fs.gs.auth.service.account.private.key, spark.authenticate.secret, spark.ssl.keyStorePassword,
# es.net.http.auth.pass, hadoop.security.credential.provider.path (where the keys are kept), and
# the query parameters of signed URLs: sig, X-Amz-Signature, X-Amz-Credential, X-Goog-Signature, token.
_SECRET_NAME = re.compile(
    r"secret|passw(?:or)?d|credential|signature"
    r"|token(?![a-z_])"  # a token, not max_tokens, token_count or tokenizer
    r"|(?<![a-z])(?:key|pass|pwd|sas|sig)(?![a-z])"  # a whole word: fs.gs.encryption.key, fs.azure.sas.C
    r"|access[._-]?key|(?:session|private|api|account|client|encryption)[._-]?key(?![a-z])",  # awsAccessKeyId
    re.IGNORECASE,
)

# A URI in free text: scheme, then everything up to whitespace or a quote.
_URI = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://)([^\s\"'<>]*)")
# name=value, as in a query string (?sig=...), a ;-parameter or a --conf line.
_ASSIGNMENT = re.compile(r"(?<![\w.-])([A-Za-z][\w.-]*)=([^\s&;#\"'<>]+)")


SECRET_NAME_PATTERN = _SECRET_NAME.pattern  # also Java's syntax: Spark redacts its UI and event log with it


def is_secret_key(name: str) -> bool:
    """Whether a setting (or query parameter) of this name holds a credential."""
    return bool(_SECRET_NAME.search(str(name)))


def mask_settings(settings: dict) -> dict:
    """Settings as they may be shown: credential values masked, credentials in other values' URIs too."""
    return {key: MASK if is_secret_key(key) else redact_text(value) if isinstance(value, str) else value
            for key, value in settings.items()}


def redact_uri(uri) -> str:
    """The URI without credentials: ``s3a://key:secret@bucket/x`` → ``s3a://***@bucket/x``,
    ``https://host/f?sv=1&sig=abc`` → ``https://host/f?sv=1&sig=***``."""
    return redact_text(str(uri))


def redact_text(text) -> str:
    """Free text with every URI's credentials and every ``secret-name=value`` masked."""
    text = _URI.sub(lambda match: match.group(1) + _without_userinfo(match.group(2)), str(text))
    return _ASSIGNMENT.sub(_masked_assignment, text)


def _masked_assignment(match: re.Match) -> str:
    name = match.group(1)
    return f"{name}={MASK}" if is_secret_key(name) else match.group(0)


def _without_userinfo(rest: str) -> str:
    """What follows ``scheme://``, with any ``user:password@`` masked.

    A secret may hold a ``/`` (AWS keys often do), which ends the authority for a URI parser:
    ``s3a://KEY:ab/cd@bucket/x`` would keep ``ab/cd`` as a path. So an authority of the form
    ``name:not-a-port`` followed later by an ``@`` is taken as user:password, masked up to that ``@``.
    """
    end = min([i for i in (rest.find("?"), rest.find("#")) if i >= 0], default=len(rest))
    slash = rest.find("/", 0, end)
    authority = rest[:slash] if slash >= 0 else rest[:end]
    if "@" in authority:
        return f"{MASK}@{rest[authority.rfind('@') + 1:]}"
    _, colon, after = authority.partition(":")
    at = rest.find("@", len(authority), end)
    if colon and at >= 0 and not (after.isdigit() and len(after) <= 5):
        return f"{MASK}@{rest[at + 1:]}"
    return rest
