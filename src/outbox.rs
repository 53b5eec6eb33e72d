//! `outbox`: to be written.
