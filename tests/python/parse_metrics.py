"""Parses Prometheus text exposition on stdin with the reference client library's parser and
prints it as JSON: {family: {"type": ..., "samples": [[name, labels, value], ...]}}. Exits
non-zero (with the parser's error) on text the parser refuses."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "help": family.documentation,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
json.dump(families, sys.stdout)
