"""tether explain: every status of the table, the seed's codes in both mbedTLS readings, and the
error reference in docs/ generated from the same tables."""
import json
from pathlib import Path

from conftest import tether

DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_every_status_of_the_table_is_explained():
    lines = tether("explain", "--all", "--json", check=True).stdout.splitlines()
    statuses = [json.loads(line) for line in lines]
    assert len(statuses) > 80
    for s in statuses:
        assert s["name"].isupper() and len(s["message"]) > 5 and len(s["hint"]) > 5
        one = tether("explain", s["name"], check=True).stdout
        assert one.startswith(s["name"]) and s["message"] in one and s["hint"] in one


def test_error_reference_is_generated_from_the_table():
    generated = tether("explain", "--all", "--markdown", check=True).stdout
    assert DOCS.read_text() == generated, \
        "docs/errors.md is stale: build/tether explain --all --markdown > docs/errors.md"


def test_the_seed_codes_in_both_readings():
    out = tether("explain", "-0x7500", check=True).stdout
    assert "mbedTLS 3.x" in out and "unsupported extension" in out
    assert "MBEDTLS_ERR_SSL_CERTIFICATE_TOO_LARGE" in out
    assert "TLS_CERT_CHAIN_TOO_LARGE in the 2.x reading" in out
    assert "TLS_PEER_CLOSED_IN_HANDSHAKE" in tether("explain", "-0x7280", check=True).stdout
    assert "TLS_PEER_CLOSED_IN_HANDSHAKE" in tether("explain", "29312", check=True).stdout
    assert "TLS_ALLOC_FAILED" in tether("explain", "0x7F00", check=True).stdout


def test_combined_codes_are_split():
    out = tether("explain", "-0x2710", check=True).stdout
    assert "high-level part -0x2700" in out and "low-level part  -0x0010" in out
    assert "TLS_SERVER_CERT_UNTRUSTED" in out


def test_connack_verify_flags_and_azure_codes():
    assert "MQTT_CONNACK_NOT_AUTHORIZED" in tether("explain", "connack", "5", check=True).stdout
    flags = tether("explain", "verify:0x0C", check=True).stdout
    assert "CN_MISMATCH" in flags and "NOT_TRUSTED" in flags and "(2 set)" in flags
    dps = tether("explain", "401002", check=True).stdout
    assert "DPS: Unauthorized" in dps and "IoT Hub: IotHubUnauthorizedAccess" in dps
    assert "DeviceNotOnline" in tether("explain", "404103", check=True).stdout
    throttled = json.loads(tether("explain", "429001", "--json", check=True).stdout)
    assert throttled["http"] == 429 and throttled["hub"] == "ThrottlingException"


def test_nonsense_is_a_usage_error():
    p = tether("explain", "banana")
    assert p.returncode == 2 and "not a tether status" in p.stderr
