//! `checkpoint`: to be written.
