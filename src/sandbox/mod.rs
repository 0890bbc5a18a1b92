//! A local fake of OpenRouter's management API (SPEC §8).
