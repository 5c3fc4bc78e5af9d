"""Structural-schema pruning, defaulting, validation and CEL rules (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from sim.kube import cel, schema
from sim.kube.errors import ApiError
from sim.kube.selectors import parse_field_selector, parse_label_selector

SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["provisionPublicIps"],
    "properties": {
        "provisionPublicIps": {"type": "boolean", "default": True},
        "defaultRoute": {
            "type": "string",
            "default": "staticEgressGateway",
            "enum": ["azureNetworking", "staticEgressGateway"],
        },
        "gatewayVmssProfile": {
            "type": "object",
            "properties": {
                "vmssName": {"type": "string", "minLength": 1},
                "publicIpPrefixSize": {"type": "integer", "minimum": 0, "maximum": 31},
            },
        },
        "excludeCidrs": {"type": "array", "items": {"type": "string", "format": "cidr"}},
        "port": {"x-kubernetes-int-or-string": True},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
        "note": {"type": "string", "nullable": True, "pattern": "^[a-z]+$"},
    },
}
ROOT: dict[str, Any] = {"type": "object", "properties": {"spec": SPEC}}


def test_prune_drops_unknown_fields_but_keeps_preserved_ones() -> None:
    value = {
        "apiVersion": "x/v1",
        "kind": "K",
        "metadata": {"name": "n", "bogus": 1},
        "spec": {"junk": 1, "extra": {"anything": [1]}, "labels": {"a": "b"}},
        "top": 2,
    }
    pruned, paths = schema.prune(ROOT, value)
    assert pruned == {
        "apiVersion": "x/v1",
        "kind": "K",
        "metadata": {"name": "n"},
        "spec": {"extra": {"anything": [1]}, "labels": {"a": "b"}},
    }
    assert sorted(paths) == ["metadata.bogus", "spec.junk", "top"]


def test_defaults_apply_at_every_level_and_replace_non_nullable_nulls() -> None:
    defaulted = schema.apply_defaults(SPEC, {"defaultRoute": None, "note": None})
    assert defaulted == {
        "provisionPublicIps": True,
        "defaultRoute": "staticEgressGateway",
        "note": None,
    }
    assert schema.apply_defaults(SPEC, {"provisionPublicIps": False})["provisionPublicIps"] is False


@pytest.mark.parametrize(
    ("value", "field", "reason", "message"),
    [
        (
            {"provisionPublicIps": "yes"},
            "spec.provisionPublicIps",
            "FieldValueTypeInvalid",
            'Invalid value: "string": '
            'spec.provisionPublicIps in body must be of type boolean: "string"',
        ),
        ({}, "spec.provisionPublicIps", "FieldValueRequired", "Required value"),
        (
            {"provisionPublicIps": True, "defaultRoute": "x"},
            "spec.defaultRoute",
            "FieldValueNotSupported",
            'Unsupported value: "x": supported values: "azureNetworking", "staticEgressGateway"',
        ),
        (
            {"provisionPublicIps": True, "gatewayVmssProfile": {"publicIpPrefixSize": 32}},
            "spec.gatewayVmssProfile.publicIpPrefixSize",
            "FieldValueInvalid",
            "Invalid value: 32: spec.gatewayVmssProfile.publicIpPrefixSize in body "
            "should be less than or equal to 31",
        ),
        (
            {"provisionPublicIps": True, "gatewayVmssProfile": {"vmssName": ""}},
            "spec.gatewayVmssProfile.vmssName",
            "FieldValueInvalid",
            'Invalid value: "": '
            "spec.gatewayVmssProfile.vmssName in body should be at least 1 chars long",
        ),
        (
            {"provisionPublicIps": True, "excludeCidrs": ["10.0.0.0/8", "nope"]},
            "spec.excludeCidrs[1]",
            "FieldValueInvalid",
            'Invalid value: "nope": spec.excludeCidrs[1] in body must be of type cidr: "nope"',
        ),
        (
            {"provisionPublicIps": True, "port": 1.5},
            "spec.port",
            "FieldValueTypeInvalid",
            'Invalid value: "number": spec.port in body must be of type integer,string: "number"',
        ),
        (
            {"provisionPublicIps": True, "labels": {"k": "long"}},
            "spec.labels[k]",
            "FieldValueTooLong",
            "Too long: may not be more than 3 bytes",
        ),
        (
            {"provisionPublicIps": True, "note": "A1"},
            "spec.note",
            "FieldValueInvalid",
            "Invalid value: \"A1\": spec.note in body should match '^[a-z]+$'",
        ),
    ],
)
def test_validation_reports_apiserver_causes(
    value: Any, field: str, reason: str, message: str
) -> None:
    causes = schema.validate(SPEC, value, "spec")
    assert [(c.field, c.reason, c.message) for c in causes] == [(field, reason, message)]


def test_valid_values_pass() -> None:
    ok = {"provisionPublicIps": True, "port": "http", "note": None, "excludeCidrs": ["fd00::/8"]}
    assert schema.validate(SPEC, ok, "spec") == []


RULES: dict[str, Any] = {
    "type": "object",
    "x-kubernetes-validations": [
        {
            "rule": "has(self.gatewayNodepoolName) != has(self.gatewayVmssProfile)",
            "message": "exactly one of gatewayNodepoolName or gatewayVmssProfile must be set",
        },
        {
            "rule": "!has(self.publicIpPrefixId) || self.provisionPublicIps",
            "messageExpression": "'publicIpPrefixId ' + self.publicIpPrefixId + ' needs PIPs'",
            "reason": "FieldValueForbidden",
            "fieldPath": ".publicIpPrefixId",
        },
        {
            "rule": "self.excludeCidrs.all(c, isCIDR(c) && cidr(c).prefixLength() >= 8)",
            "message": "bad cidr",
        },
        {
            "rule": "self.gatewayNodepoolName.lowerAscii() == self.gatewayNodepoolName",
            "message": "lowercase",
        },
        {"rule": "self.gatewayNodepoolName == oldSelf.gatewayNodepoolName", "message": "immutable"},
    ],
    "properties": {
        "gatewayNodepoolName": {"type": "string", "default": ""},
        "gatewayVmssProfile": {"type": "object"},
        "provisionPublicIps": {"type": "boolean"},
        "publicIpPrefixId": {"type": "string"},
        "excludeCidrs": {"type": "array", "items": {"type": "string"}},
    },
}


def test_cel_rules_message_reason_field_path_and_transition() -> None:
    value = {
        "gatewayNodepoolName": "Pool",
        "gatewayVmssProfile": {},
        "provisionPublicIps": False,
        "publicIpPrefixId": "/p",
        "excludeCidrs": ["10.0.0.0/16", "1.0.0.0/4"],
    }
    causes = cel.check_rules(RULES, value, {"gatewayNodepoolName": "other"}, "spec")
    assert [(c.field, c.reason, c.message) for c in causes] == [
        (
            "spec",
            "FieldValueInvalid",
            'Invalid value: "object": '
            "exactly one of gatewayNodepoolName or gatewayVmssProfile must be set",
        ),
        (
            "spec.publicIpPrefixId",
            "FieldValueForbidden",
            "Forbidden: publicIpPrefixId /p needs PIPs",
        ),
        ("spec", "FieldValueInvalid", 'Invalid value: "object": bad cidr'),
        ("spec", "FieldValueInvalid", 'Invalid value: "object": lowercase'),
        ("spec", "FieldValueInvalid", 'Invalid value: "object": immutable'),
    ]
    # On create (no old object) transition rules are skipped.
    fresh = {"gatewayNodepoolName": "pool", "provisionPublicIps": True, "excludeCidrs": []}
    assert cel.check_rules(RULES, fresh, path="spec") == []


@pytest.mark.parametrize(
    "expression",
    [
        'isIP("10.0.0.1") && !isIP("10.0.0") && ip("10.0.0.1").family() == 4',
        'ip("::1").isLoopback() && cidr("10.1.2.0/24").containsIP("10.1.2.9")',
        'cidr("10.0.0.0/8").containsCIDR("10.2.0.0/16")',
        'string(cidr("10.1.2.3/8").masked()) == "10.0.0.0/8"',
        'url("https://example.com:8443/x").getHostname() == "example.com"',
        '"A-b".upperAscii() == "A-B" && "a,b".split(",").join("+") == "a+b"',
        '"abc".indexOf("c") == 2 && "AbC".lowerAscii() == "abc"',
        '[3, 1].indexOf(1) == 1 && "abc".startsWith("a") && "abc".endsWith("c")',
        '"abc".matches("^a.c$")',
        '[1, 2].exists(x, x == 2) && size("abc") == 3 && "x".substring(0) == "x"',
    ],
)
def test_kubernetes_cel_library(expression: str) -> None:
    result, error = cel.evaluate(expression, {})
    assert error == "" and bool(result) is True


def test_rule_compile_errors_are_reported() -> None:
    bad = {"x-kubernetes-validations": [{"rule": "self.a =="}]}
    causes = cel.rule_errors(bad, "spec.versions[0].schema.openAPIV3Schema")
    assert len(causes) == 1 and "compilation failed" in causes[0].message


def test_label_selector_parsing_and_matching() -> None:
    selector = parse_label_selector("app in (web,db),tier!=cache,!legacy,env")
    assert selector.matches({"app": "web", "env": "prod"})
    assert not selector.matches({"app": "web", "env": "prod", "legacy": "1"})
    assert not selector.matches({"app": "api", "env": "prod"})
    assert parse_label_selector("a=b").matches({"a": "b"}) and parse_label_selector("a==b").matches(
        {"a": "b"}
    )
    assert parse_label_selector("a notin (x)").matches({})
    for bad in ["a in (", "a in ()", "=b", "a,,b", "a in (b c)", "a=b c"]:
        with pytest.raises(ApiError) as info:
            parse_label_selector(bad)
        assert info.value.code == 400, bad


def test_field_selectors() -> None:
    selector = parse_field_selector(
        "involvedObject.name=p1,type!=Warning", ("involvedObject.name", "type")
    )
    assert selector.matches({"involvedObject": {"name": "p1"}, "type": "Normal"})
    assert not selector.matches({"involvedObject": {"name": "p1"}, "type": "Warning"})
    with pytest.raises(ApiError):
        parse_field_selector("spec.size=1", ())
