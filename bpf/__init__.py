"""The eBPF programs (C, compiled by bcc at start) and the header they share with user space."""
