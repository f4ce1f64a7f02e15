"""The SDK's connection settings: tokens and TLS, keepalive and the clients' retry policy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from durable import TLSConfig
from durable._channel import (
    CLIENT_CHANNEL_OPTIONS,
    KEEPALIVE_TIME_MS,
    auth_metadata,
    check_token,
    connection_from_env,
    resolve_tls,
)
from durable.v1 import operations_service_pb2, schedule_service_pb2, workflow_service_pb2
from durable_server.app import KEEPALIVE_ENFORCEMENT
from durable_worker.worker import _CHANNEL_OPTIONS as WORKER_CHANNEL_OPTIONS


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


def _options(options: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    as_dict = dict(options)
    assert len(as_dict) == len(options), f"an option is given twice: {options}"
    return as_dict


def _methods(*modules: Any) -> dict[str, set[str]]:
    """Service full name -> its method names, from the generated descriptors."""
    return {
        service.full_name: {m.name for m in service.methods}
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
    }


def test_client_channels_carry_the_retry_policy_and_keepalive() -> None:
    options = _options(CLIENT_CHANNEL_OPTIONS)
    assert options["grpc.keepalive_time_ms"] == KEEPALIVE_TIME_MS
    assert options["grpc.keepalive_timeout_ms"] > 0
    assert options["grpc.http2.max_pings_without_data"] == 0
    assert options["grpc.enable_retries"] == 1
    config = json.loads(options["grpc.service_config"])
    [method_config] = config["methodConfig"]
    policy = method_config["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert 2 <= policy["maxAttempts"] <= 5  # gRPC caps it at 5
    for key in ("initialBackoff", "maxBackoff"):
        assert float(policy[key].removesuffix("s")) > 0
    assert policy["backoffMultiplier"] > 1
    named = {(n["service"], n["method"]) for n in method_config["name"]}

    # Every name is a real method; the ones that could act twice are not retried.
    services = _methods(workflow_service_pb2, schedule_service_pb2, operations_service_pb2)
    for service, method in named:
        assert method in services[service], f"{service}/{method} does not exist"
    never = {
        ("durable.v1.WorkflowService", m)
        for m in ("StartWorkflow", "StartWorkflows", "SendEvent", "CancelExecution")
    } | {("durable.v1.WorkflowService", "ProvideInput")}
    never |= {
        ("durable.v1.ScheduleService", m)
        for m in ("CreateSchedule", "DeleteSchedule", "TriggerSchedule")
    }
    never |= {("durable.v1.OperationsService", "RetryExecution")}
    assert named.isdisjoint(never)
    # Every read is retried: each Get*, List*, Wait* and Diagnose method.
    reads = {
        (service, m)
        for service, methods in services.items()
        for m in methods
        if m.startswith(("Get", "List", "Wait", "Diagnose"))
    }
    assert reads <= named, reads - named


def test_worker_channels_have_keepalive_but_no_retry_policy() -> None:
    options = _options(WORKER_CHANNEL_OPTIONS)
    assert options["grpc.keepalive_time_ms"] == KEEPALIVE_TIME_MS
    assert "grpc.service_config" not in options
    assert options["grpc.service_config_disable_resolution"] == 1


def test_the_orchestrator_accepts_the_clients_keepalive_pings() -> None:
    server = _options(KEEPALIVE_ENFORCEMENT)
    # gRPC's default, 5 minutes, would close a connection pinged during a long poll.
    assert server["grpc.http2.min_ping_interval_without_data_ms"] < KEEPALIVE_TIME_MS
