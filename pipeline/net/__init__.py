"""Talking to the service and its video CDN: the HTTP client and its retry and rate policy, the
request formats (`providers/`), streamed downloads, and the cleaning of everything a server sends."""
