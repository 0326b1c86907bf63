"""Who a run was created as at Databricks, named without a secret.

A run is followed and cancelled only by an identity that is the same principal as the one it
was submitted under (a real workspace shows a one-time run to its creator only, and another
principal following it would be acting for a tenant with a credential that is not its own).
The ledger keeps the principal's ``record`` beside the run; ``same`` compares a resolution
with it.

A principal is the workspace host and whom Databricks sees there, in this order of what the
plan knows: the service principal's client id; else the object the credential is held in (a
Secret, a ServiceAccount, a token file); else where an inline value came from (the tenant
policy or the gateway's own environment). A PAT's user is not known without asking Databricks,
so a PAT is the Secret or source that holds it. Rotating a secret changes none of that, so
following goes on; another client id, Secret, host or source is another principal.

Client ids are shown masked (first 4 ... last 4) in records and messages; the comparison uses
a digest of the exact identity, so two ids that mask alike are still told apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway import secrets_registry

# Defined beside the token endpoints, whose errors mask it too; named here for the records.
from gateway.databricks.oauth import mask_client_id

if TYPE_CHECKING:  # strategy imports the masking from here
    from gateway.identity.strategy import Plan

# Enough of a 128-bit digest that two identities never collide in one ledger.
FINGERPRINT_CHARS = 32


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:FINGERPRINT_CHARS]


def client_subject(client_id: str) -> str:
    """A client id as a cache key or log names it: masked, with a digest that keeps it unique."""
    return f"{mask_client_id(client_id)}#{_digest(client_id)[:8]}"


@dataclass(frozen=True, slots=True)
class Principal:
    """The principal a plan makes Databricks see; ``who`` is exact and never a secret."""

    kind: str
    host: str
    who: str
    client_id: str | None = None
    service_account: str | None = None
    secret: str | None = None

    @property
    def fingerprint(self) -> str:
        return _digest(self.host, self.who)

    def record(self) -> dict[str, str]:
        """What the ledger keeps of it: names and a masked client id, never a secret."""
        out = {"kind": self.kind, "host": self.host, "fingerprint": self.fingerprint}
        if self.client_id:
            out["client_id"] = mask_client_id(self.client_id)
        if self.service_account:
            out["service_account"] = self.service_account
        if self.secret:
            out["secret"] = self.secret
        if not (self.client_id or self.service_account or self.secret):
            out["source"] = self.who
        return out


def of_plan(plan: Plan) -> Principal:
    """The principal a plan runs as (see the module docstring for the order)."""
    if plan.client_id:
        # From here on, a log line quoting it (a Jobs API error naming the service principal,
        # say) shows it masked, as records and messages do.
        secrets_registry.remember_shown(plan.client_id.strip(), mask_client_id(plan.client_id))
        who = f"client/{plan.client_id.strip()}"
    elif plan.secret_name:
        who = f"secret/{plan.secret_name}"
    elif plan.service_account:
        who = f"service_account/{plan.service_account}"
    elif plan.token_file:
        who = f"file/{plan.token_file}"
    else:
        who = "inline/default identity" if plan.shared else "inline/tenant policy"
    return Principal(
        kind=plan.kind,
        host=plan.workspace.host,
        who=who,
        client_id=plan.client_id,
        service_account=plan.service_account,
        secret=plan.secret_name,
    )


def same(recorded: Mapping[str, str], current: Principal) -> bool:
    """Whether ``current`` is the principal ``recorded``; a run recorded before principals
    were kept (an empty record) is followed as it always was."""
    fingerprint = recorded.get("fingerprint")
    return fingerprint is None or fingerprint == current.fingerprint


def group_key(
    namespace: str, identity_ref: Mapping[str, str], recorded: Mapping[str, str]
) -> tuple[str, str, str]:
    """The runs followed together by one identity: of one namespace, one identity choice
    (ServiceAccount or Secret) and one principal."""
    ref = ",".join(f"{k}={v}" for k, v in sorted(identity_ref.items()))
    return namespace, ref, recorded.get("fingerprint", "")


def describe(recorded: Mapping[str, str]) -> str:
    """A principal record in words, for a state message: no secret, the client id masked."""
    parts = [recorded.get("kind", "identity")]
    if "service_account" in recorded:
        parts.append(f"ServiceAccount '{recorded['service_account']}'")
    if "secret" in recorded:
        parts.append(f"Secret '{recorded['secret']}'")
    if "client_id" in recorded:
        parts.append(f"client id {recorded['client_id']}")
    source = recorded.get("source", "")
    if source.startswith("file/"):
        parts.append(f"token file {source.removeprefix('file/')}")
    elif source:
        parts.append(f"given inline in the {source.removeprefix('inline/')}")
    return f"{' '.join(parts)} at {recorded.get('host', '?')}"
