"""Monitoring for what llmops serves: alert rules, dashboards, a live view and a diagnosis.

from llmops.monitor import rules, config
rs = rules.build(config.resolve(workspace)); rs.problems() == []
Nothing heavy is imported here.
"""
