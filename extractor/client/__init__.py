"""The client core: the `Extractor` facade and what it drives, one request at a time: settings, the
attempt loop, the modes, prompting, the transport with its SSE reader, the model catalog and the
response cache.

The public names are re-exported from `extractor`; this package's own namespace stays empty so that
importing one module (the transport, say) never imports the facade."""
