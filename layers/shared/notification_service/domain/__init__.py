"""Pure domain: model, recipient addresses, fallback rounds, retry policy. No I/O, no AWS."""
