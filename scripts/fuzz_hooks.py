"""schemathesis hooks for ``make fuzz`` (``SCHEMATHESIS_HOOKS``): NDJSON batch uploads are sent as the text they are."""
import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
