#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Checks for host/tests/gate.sh.
#   check.py schema GATE.json            validate against lua/schema/gate.schema.json
#   check.py expr GATE.json EXPRESSION   EXPRESSION (Python, the document is d) is true
#   check.py colors PNG HEX...           each colour covers at least 400 pixels of PNG
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
    print("usage: check.py schema|expr|colors ...", file=sys.stderr)
    return 2


sys.exit(main())
