"""Rewrites used by rhino-legalize-for-iree: one module per op family, one shared builder."""
