#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Checks for host/tests/gate.sh.
#   check.py schema GATE.json            validate against lua/schema/gate.schema.json
#   check.py expr GATE.json EXPRESSION   EXPRESSION (Python, the document is d) is true
#   check.py colors PNG HEX...           each colour covers at least 400 pixels of PNG
#   check.py ci-yaml MARKDOWN            the GitLab and GitHub examples parse as YAML and
#                                        run `rigor gate` in a job with artifacts
#   check.py ci-doc MARKDOWN             docs/ci.md: the GitLab and GitHub examples parse
#                                        and run `rigor run` with JUnit kept always
import json
import sys


def main():
    what = sys.argv[1]
    if what == "schema":
        import jsonschema
        schema = json.load(open("lua/schema/gate.schema.json"))
        jsonschema.Draft202012Validator.check_schema(schema)
        doc = json.load(open(sys.argv[2]))
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
        for e in errors[:5]:
            print("schema:", "/".join(map(str, e.absolute_path)), e.message)
        return 1 if errors else 0
    if what == "expr":
        d = json.load(open(sys.argv[2]))
        cells = {c["suite"] + "@" + c["device_type"]: c for c in d["cells"]}
        v = eval(sys.argv[3], {"d": d, "cells": cells})
        if not v:
            print("false:", sys.argv[3])
            print(json.dumps(d, indent=1)[:3000])
        return 0 if v else 1
    if what == "colors":
        from PIL import Image
        img = Image.open(sys.argv[2]).convert("RGB")
        counts = {}
        for hexc in sys.argv[3:]:
            counts[hexc] = 0
        want = {h: tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in sys.argv[3:]}
        for px in img.getdata():
            for h, rgb in want.items():
                if all(abs(a - b) <= 6 for a, b in zip(px, rgb)):
                    counts[h] += 1
        print("pixels:", counts)
        return 0 if all(n >= 400 for n in counts.values()) else 1
    if what == "ci-yaml":
        import re
        import yaml
        text = open(sys.argv[2]).read()
        blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
        if len(blocks) != 2:
            print("expected 2 yaml blocks, found", len(blocks))
            return 1
        gitlab, github = (yaml.safe_load(b) for b in blocks)
        job = gitlab["release-gate"]
        assert any(s.startswith("rigor gate ") for s in job["script"]), job["script"]
        assert job["artifacts"]["when"] == "always" and "gate/" in job["artifacts"]["paths"]
        steps = github["jobs"]["gate"]["steps"]
        assert any("rigor gate " in s.get("run", "") for s in steps), steps
        assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") and s.get("if") == "always()"
                   for s in steps), steps
        print("gitlab job and github job parse")
        return 0
    if what == "ci-doc":
        import re
        import yaml
        blocks = re.findall(r"```yaml\n(.*?)```", open(sys.argv[2]).read(), re.S)
        if len(blocks) != 2:
            print("expected 2 yaml blocks, found", len(blocks))
            return 1
        gitlab, github = (yaml.safe_load(b) for b in blocks)
        tmpl = gitlab[".rigor-board"]
        script = " ".join(tmpl["script"])
        assert script.startswith("rigor ") and " run " in script and "--junit junit.xml" in script, script
        assert tmpl["retry"]["exit_codes"] == [3], tmpl["retry"]
        assert tmpl["artifacts"]["reports"]["junit"] == "junit.xml"
        assert tmpl["artifacts"]["when"] == "always"
        jobs = [j for k, j in gitlab.items() if not k.startswith(".") and isinstance(j, dict) and "extends" in j]
        assert len(jobs) == 2 and all(j["tags"] and j["variables"]["RIG"] for j in jobs), jobs
        steps = github["jobs"]["board"]["steps"]
        assert any("rigor --rig" in st.get("run", "") and "--junit junit.xml" in st.get("run", "") for st in steps)
        assert any(st.get("uses", "").startswith("actions/upload-artifact") and st.get("if") == "always()" for st in steps)
        assert github["jobs"]["board"]["strategy"]["fail-fast"] is False
        print("docs/ci.md: gitlab and github examples parse")
        return 0
    print("usage: check.py schema|expr|colors|ci-yaml|ci-doc ...", file=sys.stderr)
    return 2


sys.exit(main())
