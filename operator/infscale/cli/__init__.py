"""The infscale command line."""
