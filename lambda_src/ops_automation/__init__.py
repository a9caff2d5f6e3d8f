"""Serverless AWS ops automation: shared core and per-module handlers (see docs/DESIGN.md)."""
