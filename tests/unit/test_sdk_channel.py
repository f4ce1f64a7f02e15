"""The SDK's connection settings: tokens and TLS from arguments and the environment."""

from __future__ import annotations

import pytest

from durable import TLSConfig
from durable._channel import auth_metadata, check_token, connection_from_env, resolve_tls


def test_the_environment_names_the_token_and_tls() -> None:
    assert connection_from_env({}) == (None, None)
    assert connection_from_env({"DURABLE_TOKEN": "dur_x", "DURABLE_TLS": "true"}) == (
        "dur_x",
        TLSConfig(),
    )
    env = {
        "DURABLE_TLS_CA": "ca.pem",
        "DURABLE_TLS_CLIENT_CERT": "me.pem",
        "DURABLE_TLS_CLIENT_KEY": "me.key",
    }
    assert connection_from_env(env) == (None, TLSConfig("ca.pem", "me.pem", "me.key"))
    assert connection_from_env({"DURABLE_TLS": "off"}) == (None, None)
    with pytest.raises(ValueError, match="DURABLE_TLS"):
        connection_from_env({"DURABLE_TLS": "maybe"})


def test_tls_and_token_arguments_are_checked() -> None:
    assert resolve_tls(True) == TLSConfig()
    assert resolve_tls(False) is None
    assert resolve_tls(None) is None
    with pytest.raises(ValueError, match="both cert_file and key_file"):
        TLSConfig(cert_file="me.pem")
    with pytest.raises(ValueError, match="cannot read"):
        TLSConfig(ca_file="/nonexistent/ca.pem").credentials()
    assert check_token(" dur_a_b\n") == "dur_a_b"
    for bad in ("", "two words", "dur_\x00", "dür"):
        with pytest.raises(ValueError, match="printable ASCII"):
            check_token(bad)
    assert auth_metadata("t") == (("authorization", "Bearer t"),)
    assert auth_metadata(None) == ()
