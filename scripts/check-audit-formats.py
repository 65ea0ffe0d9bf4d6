#!/usr/bin/env python3
"""Validates audit records in OCSF or FHIR R4 with independent validators (not the SDK's own code).

Usage: check-audit-formats.py ocsf|fhir FILE   (FILE: one JSON object per line)

OCSF: every line against the JSON Schema (draft 2020-12) that `ocsf-json-schema` builds from its bundled,
compiled OCSF schema of the version in `metadata.version` (types, enums, required attributes, no unknown
attributes, `at_least_one` constraints; with the profiles the record names in `metadata.profiles`), checked with `jsonschema`; and parsed by the `pydantic-ocsf` model of its
class (which checks class_uid, type_uid = class_uid * 100 + activity_id and the enums).

FHIR: every line parsed by `fhirclient`'s AuditEvent model (generated from FHIR 4.0.1: required elements, types,
no unknown elements) and by `fhir.resources`' R4B AuditEvent model (AuditEvent is the same in R4 and R4B), plus
the codes of the required bindings of R4 (action, outcome, entity lifecycle is unused).

Prints one line per record (`ok CLASS/TYPE`) and every error; exits 1 when a record is invalid, 3 when a
package is missing.
"""
import json
import sys

MISSING = 3


def need(module, package):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        print(f"missing Python package `{package}` ({e}): run `eval \"$(bash scripts/python-env.sh)\"` and set "
              f"OBSERVER_PYTHON (scripts/python-requirements.txt lists it)", file=sys.stderr)
        sys.exit(MISSING)


def check_ocsf(records):
    ojs = need("ocsf_json_schema", "ocsf-json-schema")
    jsonschema = need("jsonschema", "jsonschema")
    need("ocsf", "pydantic-ocsf")
    import importlib
    validators = {}
    errors = 0
    for n, rec in records:
        version = rec.get("metadata", {}).get("version")
        class_uid = rec.get("class_uid")
        profiles = sorted(rec.get("metadata", {}).get("profiles", []))
        key = (version, class_uid, tuple(profiles))
        if key not in validators:
            schema = ojs.OcsfJsonSchemaEmbedded(ojs.get_ocsf_schema(version=version))
            class_name = schema.lookup_class_name_from_uid(class_uid=class_uid)
            js = schema.get_class_schema(class_name=class_name, profiles=profiles)
            jsonschema.Draft202012Validator.check_schema(js)
            events = importlib.import_module("ocsf.v" + version.replace(".", "_") + ".events")
            model = getattr(events, "".join(p.capitalize() for p in class_name.split("_")))
            validators[key] = (jsonschema.Draft202012Validator(js), model, class_name)
        validator, model, class_name = validators[key]
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(rec)]
        try:
            model.model_validate(rec)
        except Exception as e:  # pydantic.ValidationError
            problems.append(f"pydantic-ocsf {model.__name__}: {e}")
        if problems:
            errors += 1
            for p in problems:
                print(f"line {n}: OCSF {version} {class_name}: {p}")
        else:
            print(f"ok line {n}: OCSF {version} {class_name} type_uid {rec.get('type_uid')}")
    return errors


ACTION = {"C", "R", "U", "D", "E"}
OUTCOME = {"0", "4", "8", "12"}


def check_fhir(records):
    fc = need("fhirclient.models.auditevent", "fhirclient")
    r4b = need("fhir.resources.R4B.auditevent", "fhir.resources")
    errors = 0
    for n, rec in records:
        problems = []
        try:
            fc.AuditEvent(rec, strict=True)
        except Exception as e:  # FHIRValidationError
            problems.append(f"fhirclient (FHIR 4.0.1): {e}")
        try:
            r4b.AuditEvent.model_validate(rec)
        except Exception as e:
            problems.append(f"fhir.resources R4B: {e}")
        if rec.get("action") not in ACTION:
            problems.append(f"action {rec.get('action')!r} is not in the required value set audit-event-action")
        if rec.get("outcome") not in OUTCOME:
            problems.append(f"outcome {rec.get('outcome')!r} is not in the required value set audit-event-outcome")
        if problems:
            errors += 1
            for p in problems:
                print(f"line {n}: FHIR AuditEvent: {p}")
        else:
            print(f"ok line {n}: FHIR R4 AuditEvent {rec['type'].get('code')} action {rec.get('action')}")
    return errors


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("ocsf", "fhir"):
        print(__doc__, file=sys.stderr)
        return 2
    records = []
    with open(sys.argv[2], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                records.append((n, json.loads(line)))
    if not records:
        print("no records to check", file=sys.stderr)
        return 1
    errors = check_ocsf(records) if sys.argv[1] == "ocsf" else check_fhir(records)
    print(f"{len(records) - errors} valid, {errors} invalid")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
