"""The downstream app's own ``contracts`` package (a name wavespeed-mock must not take)."""

OWNER = "downstream"
