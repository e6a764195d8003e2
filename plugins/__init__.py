"""The pytest plugin, Hypothesis strategies and the contract check."""
