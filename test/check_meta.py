#!/usr/bin/env python3
"""Check META.json against the PGXN Meta Spec 1.0.0 (https://pgxn.org/spec/):
the keys it requires and allows, and the shape of each value (terms,
SemVer versions, version ranges, licenses, provides, prereqs, resources);
then that it agrees with the tree: the files it names exist, and its
version is the extension's (oprec_fdw.control) and the Debian package's
(debian/changelog).  Prints "meta: N passed, M failed"."""

import json
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

SEMVER = (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
          r"(-(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?"
          r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?")
RANGE_ITEM = r"((==|!=|<=|>=|<|>)\s*)?" + SEMVER
RANGE = re.compile(r"^(0|" + RANGE_ITEM + r"(,\s*" + RANGE_ITEM + r")*)$")
LICENSES = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
            "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
            "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
            "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source", "restricted",
            "unrestricted", "unknown"}
REQUIRED = ["name", "version", "abstract", "maintainer", "license", "provides", "meta-spec"]
OPTIONAL = ["description", "generated_by", "tags", "no_index", "prereqs", "release_status",
            "resources"]
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}

problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def custom(key):
    return re.match(r"^[xX]_.", key) is not None


def is_term(value):
    return (isinstance(value, str) and len(value) >= 2
            and re.search(r"[/\\\s\x00-\x1f\x7f]", value) is None)


def is_semver(value):
    return isinstance(value, str) and re.fullmatch(SEMVER, value) is not None


def is_uri(value):
    return isinstance(value, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value) is not None


def nonempty_string(value):
    return isinstance(value, str) and len(value) > 0


def check_keys(where, obj, allowed, required=()):
    for key in required:
        if key not in obj:
            problem(where, f"missing required key {key!r}")
    for key in obj:
        if key not in allowed and not custom(key):
            problem(where, f"unknown key {key!r}")


def check_license(value):
    if isinstance(value, str):
        ok = value in LICENSES
    elif isinstance(value, list):
        ok = len(value) > 0 and all(v in LICENSES for v in value)
    elif isinstance(value, dict):
        ok = len(value) > 0 and all(is_uri(v) for v in value.values())
    else:
        ok = False
    if not ok:
        problem("license", f"not a known license, a list of them, or names of URIs: {value!r}")


def check_provides(value):
    if not isinstance(value, dict) or not value:
        problem("provides", "must name at least one extension")
        return
    for name, ext in value.items():
        where = f"provides.{name}"
        if not is_term(name):
            problem(where, "the name is not a term")
        if not isinstance(ext, dict):
            problem(where, "must be an object")
            continue
        check_keys(where, ext, {"file", "version", "abstract", "docfile", "docpath"},
                   ("file", "version"))
        if not is_semver(ext.get("version")):
            problem(where, f"version is not SemVer: {ext.get('version')!r}")
        for key in ("file", "docfile"):
            path = ext.get(key)
            if path is None:
                continue
            if not nonempty_string(path) or path.startswith("/") or "\\" in path:
                problem(where, f"{key} is not a relative unix path: {path!r}")
            elif not os.path.isfile(os.path.join(ROOT, path)):
                problem(where, f"{key} {path!r} is not a file of the distribution")
        if "abstract" in ext and not nonempty_string(ext["abstract"]):
            problem(where, "abstract is empty")


def check_prereqs(value):
    if not isinstance(value, dict) or not value:
        problem("prereqs", "must be a non-empty object")
        return
    for phase, relations in value.items():
        if custom(phase):
            continue
        if phase not in PHASES:
            problem("prereqs", f"unknown phase {phase!r}")
            continue
        if not isinstance(relations, dict) or not relations:
            problem(f"prereqs.{phase}", "must be a non-empty object")
            continue
        for relation, reqs in relations.items():
            where = f"prereqs.{phase}.{relation}"
            if relation not in RELATIONS and not custom(relation):
                problem(where, "unknown relationship")
                continue
            if not isinstance(reqs, dict) or not reqs:
                problem(where, "must map names to version ranges")
                continue
            for name, version_range in reqs.items():
                if not is_term(name):
                    problem(where, f"{name!r} is not a term")
                if not (version_range == 0 or (isinstance(version_range, str)
                                               and RANGE.match(version_range))):
                    problem(where, f"{name}: not a version range: {version_range!r}")


def check_resources(value):
    if not isinstance(value, dict) or not value:
        problem("resources", "must be a non-empty object")
        return
    check_keys("resources", value, {"homepage", "bugtracker", "repository"})
    if "homepage" in value and not is_uri(value["homepage"]):
        problem("resources.homepage", "not a URI")
    for key, fields in (("bugtracker", {"web", "mailto"}), ("repository", {"url", "web", "type"})):
        if key in value:
            if not isinstance(value[key], dict) or not value[key]:
                problem(f"resources.{key}", "must be a non-empty object")
            else:
                check_keys(f"resources.{key}", value[key], fields)


def check_spec(meta):
    if not isinstance(meta, dict):
        problem("META.json", "must hold an object")
        return
    check_keys("META.json", meta, set(REQUIRED) | set(OPTIONAL), REQUIRED)
    if not is_term(meta.get("name")):
        problem("name", f"not a term: {meta.get('name')!r}")
    if not is_semver(meta.get("version")):
        problem("version", f"not SemVer: {meta.get('version')!r}")
    for key in ("abstract", "description", "generated_by"):
        if key in meta and not nonempty_string(meta[key]):
            problem(key, "must be a non-empty string")
    maintainer = meta.get("maintainer")
    if not (nonempty_string(maintainer) or (isinstance(maintainer, list) and maintainer
                                           and all(nonempty_string(m) for m in maintainer))):
        problem("maintainer", "must be a string or a non-empty list of strings")
    check_license(meta.get("license"))
    check_provides(meta.get("provides"))
    spec = meta.get("meta-spec")
    if not isinstance(spec, dict) or not re.fullmatch(r"1\.0\.\d+", str(spec.get("version"))):
        problem("meta-spec", "must say version 1.0.x")
    else:
        check_keys("meta-spec", spec, {"version", "url"}, ("version",))
        if "url" in spec and not is_uri(spec["url"]):
            problem("meta-spec.url", "not a URI")
    if "prereqs" in meta:
        check_prereqs(meta["prereqs"])
    if "resources" in meta:
        check_resources(meta["resources"])
    if "release_status" in meta and meta["release_status"] not in ("stable", "testing",
                                                                   "unstable"):
        problem("release_status", "must be stable, testing or unstable")
    tags = meta.get("tags")
    if tags is not None and not (isinstance(tags, list) and tags
                                 and all(nonempty_string(t) and len(t) <= 255 for t in tags)):
        problem("tags", "must be a non-empty list of strings of at most 255 characters")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def check_tree(meta):
    """The version everywhere it is written."""
    version = meta.get("version", "")
    control = re.search(r"^default_version\s*=\s*'([^']*)'", read("oprec_fdw.control"), re.M)
    if control is None or version.split(".")[:2] != control.group(1).split(".")[:2]:
        problem("version", f"{version} is not the extension's default_version "
                f"{control.group(1) if control else '?'} (major.minor)")
    changelog = re.match(r"^\S+ \(([^)]+)\)", read("debian/changelog"))
    if changelog is None or changelog.group(1).split("-")[0] != version:
        problem("version", f"{version} is not debian/changelog's "
                f"{changelog.group(1) if changelog else '?'}")
    dist = re.search(r"^DISTVERSION\s*=\s*(\S+)", read("Makefile"), re.M)
    if dist is None or dist.group(1) != version:
        problem("version", f"{version} is not the Makefile's DISTVERSION "
                f"{dist.group(1) if dist else '?'}")


def main():
    try:
        meta = json.loads(read("META.json"))
    except (OSError, ValueError) as exc:
        print(f"not ok - META.json is JSON: {exc}")
        print("meta: 0 passed, 1 failed")
        return 1
    results = []
    check_spec(meta)
    results.append(("META.json follows the PGXN Meta Spec 1.0.0", list(problems)))
    problems.clear()
    check_tree(meta)
    results.append(("its version is the extension's, the package's and make dist's",
                    list(problems)))
    failed = 0
    for what, found in results:
        if found:
            failed += 1
            print(f"not ok - {what}: " + "; ".join(found))
        else:
            print(f"ok - {what}")
    print(f"meta: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
