"""The core: prediction, lifecycle, clock, store, engine interface, and the service."""
