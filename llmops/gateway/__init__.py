"""`llmops gateway`: one OpenAI- and Anthropic-compatible endpoint in front of the whole fleet.

The request path is a pipeline of small stages (see `llmops.gateway.stages`); the route table is built
once from the `gateway:` section of llmops.yaml and the profiles (`llmops.gateway.table`). Nothing heavy
is imported here: the ASGI app, aiohttp, redis and prometheus_client load only when the gateway starts.
"""
