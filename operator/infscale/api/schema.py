"""Turns a pydantic model's JSON schema into a Kubernetes structural OpenAPI v3 schema.

Kubernetes accepts only a subset of JSON schema in a CRD: no `$ref`, no `null` type, `anyOf` only
beside a full type, and `exclusiveMinimum` as a boolean next to `minimum`. The models declare
everything else the API server must enforce (defaults, bounds, enums, CEL rules in
`x-kubernetes-validations`) through ordinary pydantic fields and `json_schema_extra`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]

# Keys pydantic emits that carry no meaning for the API server.
_DROPPED_KEYS = frozenset({"title", "$defs", "discriminator"})


def structural_schema(model: type[BaseModel]) -> JsonSchema:
    """The structural schema of `model`, with every reference inlined."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions: dict[str, JsonSchema] = raw.get("$defs", {})
    return _convert(raw, definitions)


def _convert(node: JsonSchema, definitions: dict[str, JsonSchema]) -> JsonSchema:
    node = _inline_reference(node, definitions)
    node = _drop_null_alternative(node, definitions)
    if _is_int_or_string(node):
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "type")}
        return {"x-kubernetes-int-or-string": True, **_convert_children(rest, definitions)}
    return _convert_children(node, definitions)


def _convert_children(node: JsonSchema, definitions: dict[str, JsonSchema]) -> JsonSchema:
    result: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            result[key] = {name: _convert(child, definitions) for name, child in value.items()}
        elif key == "additionalProperties" and value is True:
            # Open objects are spelled x-kubernetes-preserve-unknown-fields in a CRD.
            continue
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = _convert(value, definitions)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            result["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            result[key] = True
        elif key == "default":
            if value is not None:
                result[key] = _without_nulls(value)
        else:
            result[key] = value
    return result


def _inline_reference(node: JsonSchema, definitions: dict[str, JsonSchema]) -> JsonSchema:
    """Replace `$ref` (alone or as the single member of allOf) by the definition it names."""
    reference = node.get("$ref")
    if reference is None and len(node.get("allOf", [])) == 1:
        reference = node["allOf"][0].get("$ref")
    if reference is None:
        return node
    target = definitions[reference.removeprefix("#/$defs/")]
    siblings = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
    # Field-level keys (description, default) override the referenced model's own.
    return {**target, **siblings}


def _drop_null_alternative(node: JsonSchema, definitions: dict[str, JsonSchema]) -> JsonSchema:
    """`X | None` becomes X: an optional field is one that is absent from `required`."""
    alternatives = node.get("anyOf")
    if not alternatives:
        return node
    non_null = [a for a in alternatives if a.get("type") != "null"]
    if len(non_null) == len(alternatives):
        return node
    siblings = {k: v for k, v in node.items() if k != "anyOf"}
    if len(non_null) == 1:
        inner = _inline_reference(non_null[0], definitions)
        return {**inner, **siblings}
    return {**siblings, "anyOf": non_null}


def _is_int_or_string(node: JsonSchema) -> bool:
    types = sorted(a.get("type", "") for a in node.get("anyOf", []))
    return types in (["integer", "string"], ["number", "string"])


def _without_nulls(value: Any) -> Any:
    """A default as Kubernetes stores it: unset optional fields are absent, not null."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
