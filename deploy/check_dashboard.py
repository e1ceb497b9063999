#!/usr/bin/env python3
"""Checks every PromQL expression of the Grafana dashboard with promtool: each becomes a
recording rule in a temporary rule file (Grafana's $__rate_interval stands in as 1m), and
`promtool check rules` parses them all.

usage: python3 deploy/check_dashboard.py deploy/grafana/dashboards/vitals.json
"""
import json, os, subprocess, sys, tempfile

dashboard = json.load(open(sys.argv[1], encoding="utf-8"))
rules = []
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", "1m")
        rules.append((f"dashboard:panel{panel['id']}:{target['refId']}", expr))
with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for record, expr in rules:
        f.write(f"      - record: {record}\n        expr: {json.dumps(expr)}\n")
try:
    result = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
finally:
    os.unlink(f.name)
print(result.stdout.strip() or result.stderr.strip())
print(f"dashboard: {len(rules)} expressions in {len(dashboard['panels'])} panels")
sys.exit(result.returncode)
