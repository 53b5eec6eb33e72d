//! `tail`: to be written.
