"""The operator: wiring (start-up), handlers (kopf registry), runtime (loop, leader election),
cycle (one reconcile pass over services and pools), and the reconcilers it calls."""
