//! Fixture zones for every DNS check ID (in progress).
