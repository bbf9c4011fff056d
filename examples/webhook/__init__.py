"""The signup wizard deployed as a webhook: worker processes sharing one Redis.

See docs/guides/deploy.md."""
