#!/usr/bin/env python3
"""Generate a rule file of N rules, each with a Unicode `\\w+` capture used in `group_by`.

Usage: bench/many_rules.py [--count 980] > rules-many.yaml

With bench/rules.yaml (20 rules) this makes the 1,000-rule configuration of bench/run.sh: the
shape of a large team's rule file, where most rules name one exception, component or error
code and capture a word of the line to group by. Deterministic: the same count gives the same
file. Almost none of these rules match the generated log (bench/gen.py); that is the point: a
large rule set costs memory and startup for every rule, and scan time for none of the lines
they do not match.
"""

import argparse

SERVICES = ["Order", "Payment", "User", "Stock", "Cart", "Search", "Invoice", "Refund", "Coupon",
            "Shipping", "Address", "Review", "Catalog", "Pricing", "Tax", "Ledger", "Wallet",
            "Session", "Token", "Audit", "Report", "Export", "Import", "Mail", "Sms", "Push",
            "Queue", "Batch", "Schedule", "Quota", "Tenant", "Region", "Vendor", "Contract",
            "Warehouse", "Parcel", "Loyalty", "Gift", "Bundle", "Fraud"]
THINGS = ["Lookup", "Update", "Create", "Delete", "Sync", "Render", "Parse", "Validate", "Lock",
          "Commit", "Rollback", "Publish", "Consume", "Index", "Cache", "Fetch", "Store", "Sign",
          "Verify", "Encrypt", "Decrypt", "Compress", "Upload", "Download", "Notify", "Retry",
          "Merge", "Split", "Reserve", "Release"]
TEMPLATES = [
    ("{S}{T}Exception: (?P<reason>\\w+)", "reason"),
    ("{s} {t} failed for (?P<id>\\w+)", "id"),
    ("{s}\\.{t} error code=(?P<code>\\w+)", "code"),
    ("(?P<who>\\w+) exceeded the {s} {t} quota", "who"),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=980)
    args = parser.parse_args()
    print(f"# {args.count} generated rules (bench/many_rules.py), each with a \\w+ capture.")
    print("rules:")
    for i in range(args.count):
        service = SERVICES[i % len(SERVICES)]
        thing = THINGS[(i // len(SERVICES)) % len(THINGS)]
        template, group = TEMPLATES[(i // (len(SERVICES) * len(THINGS)) + i) % len(TEMPLATES)]
        pattern = template.format(S=service, T=thing, s=service.lower(), t=thing.lower())
        print(f"  - name: gen-{i:04d}")
        print(f"    pattern: '{pattern}'")
        print(f"    group_by: [{group}]")
        print("    severity: warning")


if __name__ == "__main__":
    main()
