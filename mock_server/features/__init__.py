"""The features: account, scenarios, webhooks, uploads; each its domain and its routes."""
