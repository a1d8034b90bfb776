"""Management operations (accounts, tokens, models, channels, usage, the
billing-mode advisor), shared by the /api endpoints, the CLI and the web
console. Each takes the Gateway and plain values and raises ApiError for what
a caller got wrong."""
