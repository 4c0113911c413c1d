//! CLI tests (in progress).
