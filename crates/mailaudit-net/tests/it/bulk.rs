//! The bulk driver over a real DNS server (in progress).
