"""Serverless AWS ops automation.

`core` holds what every module does (scope, targeting, fan-out, completion, retention, purge, ledger, alerts);
each other package (`ami_backup`, ...) holds one Terraform module's handlers and its own decisions only.
"""
