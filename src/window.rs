//! `window`: to be written.
