"""The `ebpf` receiver: LLM traffic captured in plaintext at the TLS library, and process events."""
