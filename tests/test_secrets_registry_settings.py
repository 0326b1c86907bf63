"""Secrets the settings hold are masked from start-up, before any code has used them (issue 9).

Inline values (``SecretStr``), the values of the environment variables ``*_env`` keys name,
and each secret of a rotating webhook pair; and the gateway's own Kubernetes token, plain or
from its token file.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from gateway.kube.connection import KubeConfig, load_configuration
from gateway.secrets_registry import MASK, remember_settings, scrub
from gateway.settings import Settings
from tests.fixtures.gateway import stack_configs


def _opaque() -> str:
    return "opq" + secrets.token_hex(12)


def _webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def test_inline_env_and_webhook_secrets_of_the_settings_are_masked(tmp_path: Path) -> None:
    """After remember_settings, an echo of any of them is masked; names of variables are not."""
    _, raw, _ = stack_configs(2, tmp_path=tmp_path)
    inline_pat, env_pat = _opaque(), _opaque()
    old_hook, new_hook, env_hook = _webhook_secret(), _webhook_secret(), _webhook_secret()
    raw["tenants"]["namespaces"] = {
        "inline": {
            "identity": {"type": "pat", "token": inline_pat},
            "webhooks": {"secret_value": f"{old_hook} {new_hook}"},
        },
        "from-env": {
            "identity": {"type": "pat", "token_env": "LAKEGATE_TEST_PAT"},
            "webhooks": {"secret_env": "LAKEGATE_TEST_HOOK"},
        },
    }
    raw["workspaces"] = {"emulated": {"host": "http://127.0.0.1:1"}}
    settings = Settings.model_validate(raw)
    environ = {"LAKEGATE_TEST_PAT": env_pat, "LAKEGATE_TEST_HOOK": env_hook}
    # The webhook pair apart: each secret of a rotation is held on its own.
    echo = f"{inline_pat} {env_pat} {old_hook} | {new_hook} {env_hook} LAKEGATE_TEST_PAT"
    assert scrub(echo) == echo  # nothing of it was held before
    remember_settings(settings, environ)
    assert scrub(echo) == f"{MASK} {MASK} {MASK} | {MASK} {MASK} LAKEGATE_TEST_PAT"


def test_an_unset_environment_variable_is_no_secret(tmp_path: Path) -> None:
    """A ``*_env`` naming no variable registers nothing (and fails later, where it is used)."""
    _, raw, _ = stack_configs(1, tmp_path=tmp_path)
    raw["tenants"]["namespaces"] = {"x": {"identity": {"type": "pat", "token_env": "UNSET_X"}}}
    raw["workspaces"] = {"emulated": {"host": "http://127.0.0.1:1"}}
    remember_settings(Settings.model_validate(raw), {})
    assert scrub("UNSET_X is not set") == "UNSET_X is not set"


async def test_the_gateways_own_kubernetes_token_is_masked(tmp_path: Path) -> None:
    """The Kubernetes bearer token, given inline or in a token file, is held once loaded."""
    inline, in_file = _opaque(), _opaque()
    token_file = tmp_path / "token"
    token_file.write_text(in_file + "\n")
    host = "http://127.0.0.1:1"
    await load_configuration(KubeConfig(mode="explicit", host=host, token=inline))
    await load_configuration(KubeConfig(mode="explicit", host=host, token_file=str(token_file)))
    assert scrub(f"User {inline} / {in_file}") == f"User {MASK} / {MASK}"
