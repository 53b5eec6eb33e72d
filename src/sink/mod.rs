//! `sink`: to be written.
