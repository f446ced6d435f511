"""The pure planner core: no Kubernetes, HTTP or clock. Specs and observations in, a plan out."""
