"""Thin kopf handlers: parse spec, gather observations, call the planner, apply, report."""
