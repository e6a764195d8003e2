"""Synthetic media: MP4 writing and the synthetic clip renderer."""
