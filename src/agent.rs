//! `agent`: to be written.
