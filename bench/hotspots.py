#!/usr/bin/env python3
"""The heaviest functions of a py-spy speedscope profile (bench/profile.py):
share of samples in which each function is on the stack (inclusive) and on
top of it (self), all threads together.

  .venv/bin/python bench/hotspots.py bench/profiles/claim-gateway.json [--top 40] [--match TEXT]

`--match TEXT`: only functions whose name or file contains TEXT (e.g. a module).
"""

import argparse
import json
import sys
from collections import Counter


def function_name(frame: dict) -> str:
    path = frame.get("file", "")
    for marker in ("site-packages/", "taskjournal/", "wt-claimpath/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{frame['name']} ({path})"


def weigh(profile: dict) -> tuple[Counter, Counter, float]:
    frames = [function_name(f) for f in profile["shared"]["frames"]]
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = 0.0
    for thread in profile["profiles"]:
        for stack, weight in zip(thread["samples"], thread["weights"]):
            total += weight
            for name in {frames[i] for i in stack}:
                inclusive[name] += weight
            if stack:
                own[frames[stack[-1]]] += weight
    return inclusive, own, total


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--match", default="")
    args = p.parse_args(argv)
    with open(args.profile) as f:
        inclusive, own, total = weigh(json.load(f))
    if not total:
        print("no samples")
        return 1
    print(f"{total:.1f} s sampled; % of samples with the function on the stack (incl) / on top (self)")
    for name, weight in inclusive.most_common():
        if args.match in name:
            print(f"{100 * weight / total:6.1f} {100 * own[name] / total:6.1f}  {name}")
            args.top -= 1
            if args.top <= 0:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
