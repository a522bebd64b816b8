#!/usr/bin/env python3
"""Parses a Prometheus text exposition from stdin with prometheus_client's
parser (strict about syntax) and prints `name{labels} value` per sample."""
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
        print(f"{family.type} {sample.name}{{{labels}}} {sample.value}")
