//! `render`: to be written.
